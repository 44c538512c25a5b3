/*
 * fat_part.c — partition tables of whole-disk images (an SD-card dump, a
 * disk made with sfdisk or parted): MBR with its extended partitions, and
 * GPT. Only to find the FAT volumes in them: each partition is listed with
 * where it lies and whether its first sector is a FAT boot sector.
 *
 * MBR: four 16-byte entries at 446 (status, type @4, first LBA @8, sectors
 * @12), signature 0x55AA at 510; types 0x05/0x0F/0x85 are extended
 * partitions whose logical partitions hang off a chain of EBRs (each
 * EBR's first entry relative to itself, its second, the next EBR,
 * relative to the extended partition), numbered from 5 as Linux does.
 * Sectors are 512 bytes. A FAT boot sector also ends in 0x55AA and has
 * code where the entries would be, so a sector whose BPB decodes is a
 * volume, and an MBR must have status bytes 0x00 or 0x80 only.
 *
 * GPT (UEFI 2.10, section 5.3): a protective MBR (type 0xEE), the header
 * at LBA 1 ("EFI PART", its CRC32 over its own size with the CRC field
 * zeroed), and the entry array it points at (its CRC32 in the header).
 * The header is looked for at byte 512 and, for 4096-byte-sector disks,
 * at 4096. The backup header is not consulted: a damaged primary is
 * KVRO_E_CORRUPT.
 */
#include "fat_vol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD(...) kvro_error_set(err, KVRO_E_CORRUPT, __VA_ARGS__)

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* CRC-32 (IEEE 802.3, reflected), as GPT uses; bitwise, since it runs
 * once per open over at most the entry array. */
static uint32_t crc32(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFF;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = c >> 1 ^ (0xEDB88320 & (0u - (c & 1)));
    }
    return ~c;
}

static bool read_at(kvro_io *io, int64_t off, void *buf, size_t n)
{
    size_t got = 0;
    kvro_error ignored;
    return off >= 0 && kvro_io_read(io, off, buf, n, &got, &ignored) == KVRO_OK && got == n;
}

/* Whether the partition's first sector holds a FAT boot sector. */
static void probe(kvro_io *io, int64_t disk_size, fat_part *p)
{
    unsigned char s[512];
    fat_bpb b;
    p->inside = p->offset > 0 && p->length > 0 && p->offset <= disk_size &&
                p->length <= disk_size - p->offset;
    p->fat = p->inside && read_at(io, p->offset, s, sizeof s) &&
             kvro__fat_bpb_decode(s, sizeof s, p->length, &b, NULL) == KVRO_OK;
}

static const char *mbr_type_name(uint8_t t)
{
    switch (t) {
    case 0x01: return "FAT12";
    case 0x04: return "FAT16 <32M";
    case 0x06: return "FAT16";
    case 0x07: return "NTFS/exFAT";
    case 0x0B: return "FAT32";
    case 0x0C: return "FAT32 LBA";
    case 0x0E: return "FAT16 LBA";
    case 0x82: return "Linux swap";
    case 0x83: return "Linux";
    case 0xEF: return "EFI system";
    default: return "type";
    }
}

static bool extended(uint8_t t)
{
    return t == 0x05 || t == 0x0F || t == 0x85;
}

static void add(fat_part *parts, int *n, int number, int64_t offset, int64_t length,
                const char *type, kvro_io *io, int64_t disk_size)
{
    if (*n >= FAT_MAX_PARTS)
        return;
    fat_part *p = &parts[(*n)++];
    *p = (fat_part){.number = number, .offset = offset, .length = length};
    snprintf(p->type, sizeof p->type, "%s", type);
    probe(io, disk_size, p);
}

static void add_mbr(fat_part *parts, int *n, int number, const unsigned char *e, int64_t base,
                    kvro_io *io, int64_t disk_size)
{
    char type[48];
    snprintf(type, sizeof type, "%s (0x%02x)", mbr_type_name(e[4]), e[4]);
    add(parts, n, number, base + (int64_t)le32(e + 8) * 512, (int64_t)le32(e + 12) * 512, type, io,
        disk_size);
}

/* The logical partitions in the extended partition at BASE: a chain of
 * EBRs, bounded (a loop in it would otherwise never end). */
static kvro_status logical(kvro_io *io, int64_t disk_size, int64_t base, fat_part *parts, int *n,
                           kvro_error *err)
{
    int64_t ebr = base;
    for (int k = 0; k < FAT_MAX_PARTS; k++) {
        unsigned char s[512];
        if (!read_at(io, ebr, s, sizeof s))
            return BAD("MBR: the extended partition's boot record at byte %lld lies past the "
                       "end of the disk",
                       (long long)ebr);
        if (s[510] != 0x55 || s[511] != 0xAA)
            return BAD("MBR: no 0x55 0xaa signature in the extended boot record at byte %lld",
                       (long long)ebr);
        if (s[446 + 4] && le32(s + 446 + 12))
            add_mbr(parts, n, 5 + k, s + 446, ebr, io, disk_size);
        const unsigned char *next = s + 446 + 16;
        if (!next[4] || !le32(next + 8))
            return KVRO_OK;
        ebr = base + (int64_t)le32(next + 8) * 512;
    }
    return BAD("MBR: more than %d logical partitions (a loop in the extended partition?)",
               FAT_MAX_PARTS);
}

static void guid_name(const unsigned char *g, char *out, size_t size)
{
    static const struct {
        unsigned char g[16];
        const char *name;
    } known[] = {
        {{0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44, 0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99,
          0xC7},
         "basic data"},
        {{0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9,
          0x3B},
         "EFI system"},
        {{0xAF, 0x3D, 0xC6, 0x0F, 0x83, 0x84, 0x72, 0x47, 0x8E, 0x79, 0x3D, 0x69, 0xD8, 0x47, 0x7D,
          0xE4},
         "Linux filesystem"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (memcmp(g, known[i].g, 16) == 0) {
            snprintf(out, size, "%s", known[i].name);
            return;
        }
    /* The first three fields are little-endian on disk. */
    snprintf(out, size, "%08X-%04X-%04X-%02X%02X-%02X%02X%02X%02X%02X%02X", le32(g),
             g[4] | g[5] << 8, g[6] | g[7] << 8, g[8], g[9], g[10], g[11], g[12], g[13], g[14],
             g[15]);
}

static kvro_status gpt(kvro_io *io, int64_t disk_size, fat_part *parts, int *n, kvro_error *err)
{
    unsigned char h[4096];
    uint32_t ss = 512;
    if (!read_at(io, 512, h, 512) || memcmp(h, "EFI PART", 8) != 0) {
        ss = 4096;
        if (!read_at(io, 4096, h, 4096) || memcmp(h, "EFI PART", 8) != 0)
            return BAD("GPT: a protective MBR (type 0xee), but no GPT header at LBA 1");
    }
    uint32_t hsize = le32(h + 12);
    if (hsize < 92 || hsize > ss)
        return BAD("GPT: header size %u", hsize);
    uint32_t want = le32(h + 16);
    memset(h + 16, 0, 4);
    if (crc32(h, hsize) != want)
        return BAD("GPT: the header's CRC32 does not match");
    uint64_t lba = le64(h + 72);
    uint32_t count = le32(h + 80), esize = le32(h + 84);
    if (esize < 128 || esize > 4096 || esize % 8)
        return BAD("GPT: partition entry size %u", esize);
    /* 128 entries of 128 bytes is the usual array; refuse what no disk has. */
    if (count > 4096 || (uint64_t)count * esize > (1u << 20))
        return BAD("GPT: %u partition entries of %u bytes", count, esize);
    size_t bytes = (size_t)count * esize;
    if (lba > (uint64_t)disk_size / ss || (int64_t)(lba * ss) > disk_size - (int64_t)bytes)
        return BAD("GPT: the partition entries (LBA %llu) lie past the end of the disk",
                   (unsigned long long)lba);
    unsigned char *a = malloc(bytes ? bytes : 1);
    if (!a)
        return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    kvro_status s = KVRO_OK;
    if (!read_at(io, (int64_t)(lba * ss), a, bytes))
        s = kvro_error_set(err, KVRO_E_IO, "GPT: cannot read the partition entries");
    else if (crc32(a, bytes) != le32(h + 88))
        s = BAD("GPT: the partition entries' CRC32 does not match");
    static const unsigned char unused[16];
    for (uint32_t i = 0; s == KVRO_OK && i < count; i++) {
        const unsigned char *e = a + (size_t)i * esize;
        if (memcmp(e, unused, 16) == 0)
            continue;
        uint64_t first = le64(e + 32), last = le64(e + 40);
        if (last < first || last >= (uint64_t)INT64_MAX / ss) {
            s = BAD("GPT: partition %u ends (LBA %llu) before it starts (LBA %llu)", i + 1,
                    (unsigned long long)last, (unsigned long long)first);
            break;
        }
        char type[48];
        guid_name(e, type, sizeof type);
        add(parts, n, (int)i + 1, (int64_t)(first * ss), (int64_t)((last - first + 1) * ss), type,
            io, disk_size);
    }
    free(a);
    return s;
}

kvro_status kvro__fat_part_scan(kvro_io *io, int64_t size, const unsigned char *head,
                                size_t head_len, bool *is_disk, const char **table, fat_part *parts,
                                int *nparts, kvro_error *err)
{
    *is_disk = false;
    *nparts = 0;
    *table = "";
    if (head_len < 512 || head[510] != 0x55 || head[511] != 0xAA)
        return kvro_error_set(err, KVRO_E_UNSUPPORTED, "no boot sector (0x55 0xaa at 510)");
    fat_bpb b;
    if (kvro__fat_bpb_decode(head, head_len, size, &b, NULL) == KVRO_OK)
        return KVRO_OK;
    bool any = false, protective = false;
    for (int i = 0; i < 4; i++) {
        const unsigned char *e = head + 446 + 16 * i;
        if (e[0] != 0x00 && e[0] != 0x80)
            return kvro__fat_boot_jump(head, head_len)
                       ? KVRO_OK /* a damaged FAT volume: its BPB's error says what */
                       : kvro_error_set(err, KVRO_E_UNSUPPORTED,
                                        "neither a FAT boot sector "
                                        "nor a partition table");
        any |= e[4] != 0;
        protective |= e[4] == 0xEE;
    }
    if (!any)
        return kvro__fat_boot_jump(head, head_len)
                   ? KVRO_OK
                   : kvro_error_set(err, KVRO_E_UNSUPPORTED, "an empty partition table");
    *is_disk = true;
    if (protective) {
        *table = "GPT";
        return gpt(io, size, parts, nparts, err);
    }
    *table = "MBR";
    for (int i = 0; i < 4; i++) {
        const unsigned char *e = head + 446 + 16 * i;
        if (!e[4] || !le32(e + 12))
            continue;
        if (extended(e[4])) {
            kvro_status s = logical(io, size, (int64_t)le32(e + 8) * 512, parts, nparts, err);
            if (s != KVRO_OK)
                return s;
        } else {
            add_mbr(parts, nparts, i + 1, e, 0, io, size);
        }
    }
    return KVRO_OK;
}
