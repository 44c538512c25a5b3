/*
 * fat_bpb.c — the boot sector of a FAT volume: the BIOS Parameter Block
 * decoded and checked field by field, the FAT type told from it, and the
 * FAT32 FSInfo sector.
 *
 * Offsets and rules are Microsoft's "FAT: General Overview of On-Disk
 * Format" (the FAT32 specification, 1.03), sections 3.1-3.5 and 5. The
 * type is the specification's, by the count of data clusters (< 4085
 * FAT12, < 65525 FAT16), with the Linux driver's one exception
 * (fs/fat/inode.c): a BPB whose 16-bit FAT size is 0 and 32-bit one is not
 * is FAT32 whatever its cluster count, since `mkfs.fat -F 32` makes such
 * volumes when small and Linux, mtools and blkid read them. The checks are
 * those Linux makes before it mounts (media byte, root entries a whole
 * number of sectors, a FAT big enough for every cluster) plus the
 * specification's musts for FAT32 (no fixed root, the root cluster in
 * range): a field that fails is named in the error.
 */
#include "fat_vol.h"

#include <string.h>

static uint16_t le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static bool pow2(uint32_t x)
{
    return x && !(x & (x - 1));
}

bool kvro__fat_boot_jump(const unsigned char *s, size_t n)
{
    return n >= 512 && (s[0] == 0xEB || s[0] == 0xE9);
}

#define BAD(...) kvro_error_set(err, KVRO_E_CORRUPT, "FAT boot sector: " __VA_ARGS__)

/* The label (11 bytes, space padded) and serial number of the extended
 * boot record at AT, when its signature 0x29 says they are there. */
static void extended_record(const unsigned char *s, size_t at, fat_bpb *b)
{
    if (s[at] != 0x29)
        return;
    b->volume_id = le32(s + at + 1);
    memcpy(b->label, s + at + 5, 11);
    size_t n = 11;
    while (n && b->label[n - 1] == ' ')
        n--;
    b->label[n] = '\0';
    if (strcmp(b->label, "NO NAME") == 0)
        b->label[0] = '\0';
}

/* The layout after the fields are in: where the FATs, the root and the
 * data lie, how many clusters there are, and which type that makes. */
static kvro_status layout(const unsigned char *s, bool fat32, int64_t volume_size, fat_bpb *b,
                          kvro_error *err)
{
    uint64_t root_sectors =
        ((uint64_t)b->root_entries * FAT_DIRENT + b->sector_size - 1) / b->sector_size;
    uint64_t meta = b->reserved + (uint64_t)b->nfats * b->fat_sectors + root_sectors;
    if (meta >= b->total_sectors)
        return BAD("the reserved sectors, FATs and root directory (%llu sectors) fill the "
                   "whole volume (%llu sectors)",
                   (unsigned long long)meta, (unsigned long long)b->total_sectors);
    uint64_t clusters = (b->total_sectors - meta) / b->sectors_per_cluster;
    if (clusters == 0)
        return BAD("no data clusters");
    if (fat32)
        b->type = 32;
    else if (clusters < 4085)
        b->type = 12;
    else if (clusters < 65525)
        b->type = 16;
    else
        return BAD("%llu clusters, too many for FAT12/16, but the BPB is not a FAT32 one",
                   (unsigned long long)clusters);
    if (clusters > 0x0FFFFFF5 - 1)
        return BAD("%llu clusters, more than FAT32 can number", (unsigned long long)clusters);
    b->clusters = (uint32_t)clusters;
    uint64_t fat_entries = (uint64_t)b->fat_sectors * b->sector_size * 8 / (uint64_t)b->type;
    if (fat_entries < clusters + 2)
        return BAD("a FAT of %u sectors has room for %llu entries, not the %llu clusters",
                   b->fat_sectors, (unsigned long long)fat_entries, (unsigned long long)clusters);
    b->fat_off = (int64_t)b->reserved * b->sector_size;
    b->root_off = b->fat_off + (int64_t)b->nfats * b->fat_sectors * b->sector_size;
    b->root_bytes = b->root_entries * FAT_DIRENT;
    b->data_off = (int64_t)meta * b->sector_size;
    if (b->data_off > volume_size)
        return BAD("the data area would start at byte %lld, past the end of the volume (%lld "
                   "bytes)",
                   (long long)b->data_off, (long long)volume_size);
    if (fat32) {
        b->root_cluster = le32(s + 44);
        if (b->root_cluster < 2 || b->root_cluster > b->clusters + 1)
            return BAD("root cluster %u out of range (2..%u)", b->root_cluster, b->clusters + 1);
    }
    return KVRO_OK;
}

kvro_status kvro__fat_bpb_decode(const unsigned char *s, size_t n, int64_t volume_size, fat_bpb *b,
                                 kvro_error *err)
{
    memset(b, 0, sizeof *b);
    b->free_count = b->next_free = 0xFFFFFFFF;
    if (n < 512)
        return BAD("shorter than 512 bytes");
    if (!kvro__fat_boot_jump(s, n))
        return BAD("no jump instruction (0x%02x, not 0xeb or 0xe9)", s[0]);
    if (s[510] != 0x55 || s[511] != 0xAA)
        return BAD("no 0x55 0xaa signature at byte 510");
    b->sector_size = le16(s + 11);
    if (b->sector_size < 512 || b->sector_size > 4096 || !pow2(b->sector_size))
        return BAD("bytes per sector %u (not a power of two from 512 to 4096)", b->sector_size);
    b->sectors_per_cluster = s[13];
    if (!pow2(b->sectors_per_cluster))
        return BAD("sectors per cluster %u (not a power of two)", b->sectors_per_cluster);
    b->cluster_size = b->sectors_per_cluster * b->sector_size;
    b->reserved = le16(s + 14);
    if (b->reserved == 0)
        return BAD("no reserved sectors (the boot sector is one)");
    b->nfats = s[16];
    if (b->nfats == 0)
        return BAD("no FATs");
    if (s[21] != 0xF0 && s[21] < 0xF8)
        return BAD("media byte 0x%02x (0xf0 or 0xf8..0xff)", s[21]);
    b->root_entries = le16(s + 17);
    b->total_sectors = le16(s + 19) ? le16(s + 19) : le32(s + 32);
    if (b->total_sectors == 0)
        return BAD("total sectors 0");
    uint16_t fat16_size = le16(s + 22);
    bool fat32 = fat16_size == 0;
    b->fat_sectors = fat32 ? le32(s + 36) : fat16_size;
    if (b->fat_sectors == 0)
        return BAD("FAT size 0");
    if (fat32 && b->root_entries != 0)
        return BAD("a FAT32 BPB with %u fixed root entries (must be 0)", b->root_entries);
    if (!fat32 && b->root_entries == 0)
        return BAD("no root directory entries");
    if ((b->root_entries * FAT_DIRENT) % b->sector_size)
        return BAD("%u root entries do not fill whole sectors", b->root_entries);
    if (fat32) {
        uint16_t flags = le16(s + 40);
        /* Bit 7: only one FAT is active (mirroring off), the one in bits 0-3. */
        if (flags & 0x80)
            b->active_fat = flags & 0x0F;
        if (b->active_fat >= b->nfats)
            return BAD("active FAT %u of %u", b->active_fat, b->nfats);
        b->fsinfo_sector = le16(s + 48);
    }
    kvro_status st = layout(s, fat32, volume_size, b, err);
    if (st != KVRO_OK)
        return st;
    extended_record(s, fat32 ? 66 : 38, b);
    return KVRO_OK;
}

void kvro__fat_fsinfo_read(kvro_io *io, fat_bpb *b)
{
    if (b->type != 32 || b->fsinfo_sector == 0 || b->fsinfo_sector == 0xFFFF ||
        b->fsinfo_sector >= b->reserved)
        return;
    unsigned char s[512];
    size_t got = 0;
    kvro_error ignored;
    if (kvro_io_read(io, (int64_t)b->fsinfo_sector * b->sector_size, s, sizeof s, &got, &ignored) !=
            KVRO_OK ||
        got != sizeof s)
        return;
    /* Lead, structure and trail signatures (spec section 5). */
    if (le32(s) != 0x41615252 || le32(s + 484) != 0x61417272 || le32(s + 508) != 0xAA550000)
        return;
    b->has_fsinfo = true;
    b->free_count = le32(s + 488);
    b->next_free = le32(s + 492);
}
