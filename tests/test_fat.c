/*
 * test_fat.c — the FAT backend against the real tools: images made by
 * mkfs.fat (dosfstools) and filled by mcopy (mtools) from a host tree with
 * long, UTF-8 (BMP: mtools drops the rest) and 8.3 lower-case names, empty
 * files and directories, nested directories and a file of many clusters;
 * every key, listing and byte is compared with the host tree. Then the
 * FAT type at the cluster-count boundaries, sector sizes, and whole-disk
 * images with an MBR or GPT table written here byte by byte (no sfdisk on
 * these machines), opened through kvro_open like any image.
 */
#include "support.h"

#include <kvro/kvro.h>

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"

static char *work, *tree;

/* The tree: names of every kind FAT stores differently. A fixed mtime
 * (an even second, since FAT keeps 2-second steps). */
#define MTIME 1615000000 /* 2021-03-06 03:06:40 UTC */
static const t_entry TREE[] = {
    {"readme.txt", 6}, /* 8.3 lower case: NT flags, no long name */
    {"UPPER.TXT", 3},  /* 8.3 upper case: nothing but the short name */
    {"Mixed Case Long Name.markdown", 40},
    {"données été.txt", 33},
    {"日本語のファイル名.txt", 12},
    {"empty", 0},
    {"emptydir", -1},
    {"a", -1},
    {"a/b", -1},
    {"a/b/c", -1},
    {"a/b/c/deep.txt", 100},
    {"a/b/Sibling File", 7},
    {"big.bin", 300007}, /* many clusters whatever the cluster size */
    {"a/x.y.z", 5},      /* dots: a long name */
};
#define NTREE (sizeof TREE / sizeof TREE[0])

/* mkfs.fat OPTS -C IMAGE KIB, then the tree copied in with mcopy. */
static char *make_image(const char *name, const char *opts, int kib)
{
    char *img = t_join(work, name);
    t_sh_ok("rm -f '%s' && mkfs.fat %s -C '%s' %d >/dev/null && cd '%s' && "
            "TZ=UTC MTOOLS_SKIP_CHECK=1 mcopy -s -m -i '%s' * ::",
            img, opts, img, kib, tree, img);
    return img;
}

static kvro *open_image(const char *img, const kvro_options *o)
{
    kvro *kv = NULL;
    kvro_error err;
    assert_status(kvro_open_opts(img, o, &kv, &err), KVRO_OK, &err);
    assert_string_equal(kvro_backend_of(kv), "fat");
    return kv;
}

static void want_layout(kvro *kv, const char *needle)
{
    kvro_stats st;
    kvro_error err;
    assert_status(kvro_get_stats(kv, &st, &err), KVRO_OK, &err);
    if (!strstr(st.layout, needle))
        fail_msg("layout '%s' does not say '%s'", st.layout, needle);
}

/* ------------------------------------------------ compare with the host */

typedef struct names {
    size_t n;
    char *v[64];
} names;

static int collect(void *arg, const char *name, kvro_kind kind)
{
    (void)kind;
    names *l = arg;
    if (l->n < 64)
        l->v[l->n++] = strdup(name);
    return 0;
}

static int by_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* KEY in KV against host path PATH, recursively. */
static void compare(kvro *kv, const char *path, const char *key)
{
    struct stat hs;
    assert_int_equal(lstat(path, &hs), 0);
    kvro_info st;
    kvro_error err;
    assert_status(kvro_stat(kv, key, &st, &err), KVRO_OK, &err);
    if (S_ISREG(hs.st_mode)) {
        assert_int_equal(st.kind, KVRO_KIND_FILE);
        assert_int_equal(st.size, hs.st_size);
        assert_int_equal(st.mtime, MTIME);
        assert_int_equal(st.mode, 0644);
        size_t n = 0;
        char *want = t_slurp(path, &n);
        char *got = malloc(n + 1);
        int64_t nread = -1;
        assert_status(kvro_read(kv, key, 0, (int64_t)n + 1, got, &nread, &err), KVRO_OK, &err);
        assert_int_equal(nread, n);
        if (n && memcmp(got, want, n) != 0)
            fail_msg("'%s': the bytes differ", key);
        /* And in odd pieces, across cluster edges. */
        for (size_t off = 0; off < n; off += 4093) {
            size_t len = n - off < 5000 ? n - off : 5000;
            assert_status(kvro_read(kv, key, (int64_t)off, (int64_t)len, got, &nread, &err),
                          KVRO_OK, &err);
            assert_int_equal(nread, len);
            if (memcmp(got, want + off, len) != 0)
                fail_msg("'%s' @%zu: the bytes differ", key, off);
        }
        free(want);
        free(got);
        return;
    }
    assert_int_equal(st.kind, KVRO_KIND_DIR);
    assert_int_equal(st.mode, 0755);
    names host = {0}, ours = {0};
    DIR *d = opendir(path);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            host.v[host.n++] = strdup(e->d_name);
    closedir(d);
    qsort(host.v, host.n, sizeof host.v[0], by_str);
    assert_status(kvro_list(kv, key, collect, &ours, &err), KVRO_OK, &err);
    if (ours.n != host.n)
        fail_msg("'%s': %zu entries, the host has %zu", key, ours.n, host.n);
    for (size_t i = 0; i < host.n; i++) {
        if (strcmp(ours.v[i], host.v[i]) != 0)
            fail_msg("'%s' [%zu]: '%s', the host has '%s'", key, i, ours.v[i], host.v[i]);
        char *p = t_join(path, host.v[i]);
        char *k = key[0] ? t_fmt("%s/%s", key, host.v[i]) : strdup(host.v[i]);
        compare(kv, p, k);
        free(p);
        free(k);
        free(host.v[i]);
        free(ours.v[i]);
    }
}

static void check_image(const char *name, const char *opts, int kib, const char *type)
{
    char *img = make_image(name, opts, kib);
    kvro *kv = open_image(img, NULL);
    want_layout(kv, type);
    compare(kv, tree, "");
    kvro_close(kv);
    /* The CLI agrees (it opens images the same way). */
    t_sh_ok("'%s' verify '%s' '%s'", KVRO_TEST_MKKV, img, tree);
    free(img);
}

static void test_fat12(void **state)
{
    (void)state;
    check_image("f12.img", "-F 12", 4096, "FAT12");
}

static void test_fat16(void **state)
{
    (void)state;
    check_image("f16.img", "-F 16", 20000, "FAT16");
}

static void test_fat32(void **state)
{
    (void)state;
    /* mkfs.fat makes FAT32 this small when forced: read as FAT32, as Linux does. */
    check_image("f32.img", "-F 32", 40000, "FAT32");
    check_image("f32-4k.img", "-F 32 -S 4096", 280000, "4096-byte sectors");
    check_image("f12-big-clusters.img", "-F 12 -s 64", 40000, "of 32768 bytes");
}

/* ---------------------------------------------------------- name rules */

static void test_names(void **state)
{
    (void)state;
    char *img = make_image("names.img", "-F 16 -s 1", 8192);
    /* readme.txt is stored as "README  TXT" with both NT lower-case flags
     * and no long name in front: what we list comes from the flags. */
    size_t n = 0;
    unsigned char *b = (unsigned char *)t_slurp(img, &n);
    size_t at = 0;
    for (size_t o = 0; o + 32 <= n && !at; o += 32)
        if (memcmp(b + o, "README  TXT", 11) == 0)
            at = o;
    assert_true(at != 0);
    assert_int_equal(b[at + 12] & 0x18, 0x18);
    assert_true((b[at - 32 + 11] & 0x3F) != 0x0F);
    free(b);

    kvro *kv = open_image(img, NULL);
    kvro_error err;
    int64_t size;
    /* Case-insensitive lookups: ASCII and Latin-1. */
    const char *spell[][2] = {
        {"README.TXT", "readme.txt"},
        {"upper.txt", "UPPER.TXT"},
        {"mixed case LONG name.MARKDOWN", "Mixed Case Long Name.markdown"},
        {"DONNÉES ÉTÉ.TXT", "données été.txt"},
        {"A/B/C/DEEP.TXT", "a/b/c/deep.txt"},
    };
    for (size_t i = 0; i < sizeof spell / sizeof spell[0]; i++) {
        int64_t want;
        assert_status(kvro_size(kv, spell[i][1], &want, &err), KVRO_OK, &err);
        assert_status(kvro_size(kv, spell[i][0], &size, &err), KVRO_OK, &err);
        assert_int_equal(size, want);
    }
    /* The generated short alias is not a key; a name that is too long is
     * simply missing. */
    assert_status(kvro_size(kv, "MIXEDC~1.MAR", &size, &err), KVRO_E_NOT_FOUND, &err);
    char longname[900];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_status(kvro_size(kv, longname, &size, &err), KVRO_E_NOT_FOUND, &err);
    assert_status(kvro_size(kv, "readme.txt/x", &size, &err), KVRO_E_NOT_DIR, &err);
    kvro_close(kv);

    /* The read-only attribute makes a file 0444. */
    t_sh_ok("MTOOLS_SKIP_CHECK=1 mattrib +r -i '%s' ::/UPPER.TXT", img);
    kv = open_image(img, NULL);
    kvro_info st;
    assert_status(kvro_stat(kv, "UPPER.TXT", &st, &err), KVRO_OK, &err);
    assert_int_equal(st.mode, 0444);
    assert_true(st.has_mode);
    assert_int_equal(st.nlink, 1);
    kvro_info st2;
    assert_status(kvro_stat(kv, "readme.txt", &st2, &err), KVRO_OK, &err);
    assert_true(st.id != st2.id && st.id && st2.id);
    kvro_close(kv);
    free(img);
}

/* ------------------------------------------- opening, zero copy, limits */

static void test_open_modes(void **state)
{
    (void)state;
    char *img = make_image("modes.img", "-F 12", 4096);
    kvro_fs *fs = NULL;
    kvro_error err;
    /* Read-write opens now (the write side: tests/test_fat_write.c). */
    assert_status(kvro_fs_open(img, KVRO_FS_RDWR, NULL, &fs, &err), KVRO_OK, &err);
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
    assert_status(kvro_fs_open(img, KVRO_FS_RDONLY, NULL, &fs, &err), KVRO_OK, &err);
    kvro_info st;
    assert_status(kvro_fs_stat(fs, "big.bin", &st, &err), KVRO_OK, &err);
    assert_true(st.read_only);
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);

    /* From memory: a file written in one go is contiguous, so it maps. */
    size_t n = 0;
    char *bytes = t_slurp(img, &n);
    kvro_io *io = t_mem_io(bytes, n);
    kvro *kv = NULL;
    assert_status(kvro_open_io(io, NULL, &kv, &err), KVRO_OK, &err);
    kvro_io_close(io);
    const void *data = NULL;
    int64_t size = 0;
    assert_status(kvro_map(kv, "big.bin", &data, &size, &err), KVRO_OK, &err);
    assert_int_equal(size, 300007);
    char *p = t_join(tree, "big.bin");
    size_t wn = 0;
    char *want = t_slurp(p, &wn);
    assert_memory_equal(data, want, wn);
    assert_status(kvro_map(kv, "a", &data, &size, &err), KVRO_E_IS_DIR, &err);
    kvro_close(kv);
    free(want);
    free(p);
    free(bytes);
    free(img);
}

/* --------------------------------------------------- type by clusters */

static uint32_t le(const unsigned char *p, int n)
{
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

/* Sets the volume's total sectors so that it has exactly CLUSTERS data
 * clusters (the FAT is left as it is: it has room), growing the file. */
static void set_clusters(const char *img, uint32_t clusters)
{
    size_t n = 0;
    unsigned char *b = (unsigned char *)t_slurp(img, &n);
    uint32_t bps = le(b + 11, 2), spc = b[13], res = le(b + 14, 2), nf = b[16];
    uint32_t re = le(b + 17, 2), fs = le(b + 22, 2) ? le(b + 22, 2) : le(b + 36, 4);
    uint32_t meta = res + nf * fs + (re * 32 + bps - 1) / bps;
    uint32_t ts = meta + clusters * spc;
    if (ts < 65536 && le(b + 19, 2)) {
        b[19] = (unsigned char)ts;
        b[20] = (unsigned char)(ts >> 8);
    } else {
        b[19] = b[20] = 0;
        for (int i = 0; i < 4; i++)
            b[32 + i] = (unsigned char)(ts >> 8 * i);
    }
    size_t len = (size_t)ts * bps > n ? (size_t)ts * bps : n;
    unsigned char *out = calloc(1, len);
    memcpy(out, b, n);
    t_write(img, out, len);
    free(out);
    free(b);
}

/* A volume of CLUSTERS clusters made from a mkfs.fat OPTS image, read. */
static void check_boundary(const char *opts, int kib, uint32_t clusters, const char *want)
{
    char *name = t_fmt("boundary-%u.img", clusters);
    char *img = make_image(name, opts, kib);
    set_clusters(img, clusters);
    kvro *kv = open_image(img, NULL);
    char *layout = t_fmt("%s, %u clusters", want, clusters);
    want_layout(kv, layout);
    compare(kv, tree, "");
    kvro_close(kv);
    free(layout);
    free(img);
    free(name);
}

static void test_type_boundaries(void **state)
{
    (void)state;
    check_boundary("-F 12 -s 1", 2060, 4084, "FAT12");
    check_boundary("-F 16 -s 1", 2200, 4085, "FAT16");
    check_boundary("-F 16 -s 1", 33000, 65524, "FAT16");
    check_boundary("-F 32 -s 1", 34000, 65525, "FAT32");
    /* A FAT32 BPB below the line is FAT32 all the same (Linux's rule). */
    check_boundary("-F 32 -s 1", 34000, 65524, "FAT32");

    /* A FAT16 BPB with 65525 clusters is FAT32 by count but has no FAT32
     * fields: not readable as either. */
    char *img = make_image("f16-over.img", "-F 16 -s 1", 33000);
    set_clusters(img, 65525);
    kvro *kv = NULL;
    kvro_error err;
    assert_status(kvro_open(img, &kv, &err), KVRO_E_CORRUPT, &err);
    t_want_detail(&err, "65525 clusters");
    free(img);
}

/* An image cut short inside a contiguous file still opens (its other
 * files read), but the file's extent lies past the image's end: neither
 * kvro_file_extent nor kvro_map hands it out, and a read fails. */
static void test_cut_image(void **state)
{
    (void)state;
    char *img = make_image("cut.img", "-F 16 -s 1", 8192);
    kvro *kv = open_image(img, NULL);
    kvro_extent ext;
    kvro_error err;
    assert_status(kvro_file_extent(kv, "big.bin", &ext, &err), KVRO_OK, &err);
    kvro_close(kv);
    assert_int_equal(truncate(img, (off_t)(ext.offset + 1000)), 0);
    kv = open_image(img, NULL);
    assert_status(kvro_file_extent(kv, "big.bin", &ext, &err), KVRO_E_CORRUPT, &err);
    t_want_detail(&err, "past the end");
    assert_int_equal(ext.fd, -1);
    char buf[16];
    int64_t got;
    assert_true(kvro_read(kv, "big.bin", 300000 - 16, 16, buf, &got, &err) != KVRO_OK);
    kvro_close(kv);
    /* The same bytes from memory: kvro_map refuses too. */
    size_t n;
    char *mem = t_slurp(img, &n);
    kvro_io *io;
    assert_status(kvro_io_from_memory(mem, n, &io, &err), KVRO_OK, &err);
    assert_status(kvro_open_io(io, NULL, &kv, &err), KVRO_OK, &err);
    kvro_io_close(io);
    const void *p;
    int64_t len;
    assert_status(kvro_map(kv, "big.bin", &p, &len, &err), KVRO_E_CORRUPT, &err);
    kvro_close(kv);
    free(mem);
    free(img);
}

/* ------------------------------------------------------ partition tables */

static void put64(unsigned char *p, uint64_t v)
{
    t_put_le32(p, (uint32_t)v);
    t_put_le32(p + 4, (uint32_t)(v >> 32));
}

struct regions {
    kvro_region *r;
    int *n;
};

static int region_one(void *arg, const kvro_region *r)
{
    struct regions *g = arg;
    if (*g->n < 2)
        g->r[*g->n] = *r;
    ++*g->n;
    return 0;
}

/* A disk of DISK_SECTORS with each volume image VOLS[i] at sector AT[i]. */
static unsigned char *disk_with(const char *const *vols, const uint32_t *at, int n,
                                size_t disk_sectors, uint32_t *lens)
{
    unsigned char *d = calloc(disk_sectors, 512);
    for (int i = 0; i < n; i++) {
        size_t len = 0;
        char *v = t_slurp(vols[i], &len);
        assert_true((at[i] + len / 512) <= disk_sectors);
        memcpy(d + (size_t)at[i] * 512, v, len);
        lens[i] = (uint32_t)(len / 512);
        free(v);
    }
    return d;
}

/* Every non-empty file of TREE, in KV opened on the disk image DISK: its
 * kvro_file_extent and kvro_regions offsets are byte offsets in DISK (not
 * in the partition), and the bytes there are the file's. */
static void want_disk_offsets(kvro *kv, const char *disk)
{
    int fd = open(disk, O_RDONLY);
    assert_true(fd >= 0);
    for (size_t i = 0; i < NTREE; i++) {
        if (TREE[i].size <= 0)
            continue;
        const char *key = TREE[i].key;
        size_t n = (size_t)TREE[i].size;
        char *want = malloc(n), *got = malloc(n);
        int64_t len = 0;
        kvro_error err;
        assert_status(kvro_read(kv, key, 0, (int64_t)n, want, &len, &err), KVRO_OK, &err);
        assert_int_equal(len, (int64_t)n);
        kvro_extent ext;
        kvro_status s = kvro_file_extent(kv, key, &ext, &err);
        if (s == KVRO_OK) { /* contiguous: mcopy lays a fresh image out so */
            assert_int_equal(ext.length, (int64_t)n);
            assert_int_equal(pread(ext.fd, got, n, ext.offset), (ssize_t)n);
            assert_memory_equal(got, want, n);
        } else {
            assert_status(s, KVRO_E_UNSUPPORTED, &err);
        }
        kvro_region r[2];
        int nr = 0;
        assert_status(kvro_regions(kv, key, region_one, &(struct regions){r, &nr}, &err), KVRO_OK,
                      &err);
        assert_int_equal(nr, 1);
        if (s == KVRO_OK)
            assert_int_equal(r[0].image_offset, ext.offset);
        if (r[0].image_offset >= 0) {
            assert_int_equal(pread(fd, got, n, r[0].image_offset), (ssize_t)n);
            assert_memory_equal(got, want, n);
        }
        free(want), free(got);
    }
    close(fd);
}

static void test_mbr(void **state)
{
    (void)state;
    char *v32 = make_image("part32.img", "-F 32", 34000);
    char *v16 = make_image("part16.img", "-F 16 -s 1", 8192);
    const char *vols[] = {v32, v16};
    uint32_t at[] = {2048, 2048 + 68000 + 100}, lens[2];
    size_t sectors = at[1] + 16384 + 50;
    unsigned char *d = disk_with(vols, at, 2, sectors, lens);
    char *disk = t_join(work, "disk.img");
    kvro_error err;
    kvro *kv = NULL;

    /* One FAT32 partition at 1 MiB (and a Linux one): opens as it is. */
    t_mbr_entry(d, 0, 0x0C, at[0], lens[0]);
    t_mbr_entry(d, 1, 0x83, at[1] + lens[1], 40);
    t_write(disk, d, sectors * 512);
    kv = open_image(disk, NULL);
    compare(kv, tree, "");
    want_layout(kv, "* MBR1: FAT32 LBA (0x0c) at byte 1048576");
    want_layout(kv, "MBR2: Linux (0x83)");
    want_disk_offsets(kv, disk);
    kvro_close(kv);

    /* Two FAT partitions: a choice to make, and the error lists them. */
    t_mbr_entry(d, 1, 0x06, at[1], lens[1]);
    t_write(disk, d, sectors * 512);
    assert_status(kvro_open(disk, &kv, &err), KVRO_E_INVALID, &err);
    t_want_detail(&err, "2 FAT partitions");
    t_want_detail(&err, "2: FAT16 (0x06)");
    kvro_options o = {.partition = 2};
    kv = open_image(disk, &o);
    want_layout(kv, "FAT16");
    compare(kv, tree, "");
    kvro_close(kv);
    o.partition = 3;
    assert_status(kvro_open_opts(disk, &o, &kv, &err), KVRO_E_INVALID, &err);
    t_want_detail(&err, "no partition 3");

    /* A partition past the end of the disk. */
    t_mbr_entry(d, 1, 0x06, (uint32_t)sectors - 10, 100);
    t_write(disk, d, sectors * 512);
    assert_status(kvro_open(disk, &kv, &err), KVRO_E_CORRUPT, &err);
    t_want_detail(&err, "past the end of the disk");

    /* Partition numbers on a volume without a table are an error. */
    o.partition = 1;
    assert_status(kvro_open_opts(v32, &o, &kv, &err), KVRO_E_INVALID, &err);

    /* Logical partitions: an extended partition with one EBR. */
    memset(d + 446, 0, 64);
    uint32_t ext = 1024;
    t_mbr_entry(d, 0, 0x0F, ext, (uint32_t)sectors - ext);
    memset(d + (size_t)ext * 512, 0, 512);
    t_mbr_entry(d + (size_t)ext * 512, 0, 0x0B, at[0] - ext, lens[0]);
    t_write(disk, d, sectors * 512);
    kv = open_image(disk, NULL);
    want_layout(kv, "* MBR5: FAT32 (0x0b)");
    compare(kv, tree, "");
    kvro_close(kv);

    free(d);
    free(disk);
    free(v32);
    free(v16);
}

static uint32_t crc32_ieee(const unsigned char *p, size_t n)
{
    uint32_t c = 0xFFFFFFFF;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ ((c & 1) ? 0xEDB88320u : 0);
    }
    return ~c;
}

static void test_gpt(void **state)
{
    (void)state;
    char *v32 = make_image("gpt32.img", "-F 32", 34000);
    const char *vols[] = {v32};
    uint32_t at[] = {2048}, lens[1];
    size_t sectors = 2048 + 68000 + 64;
    unsigned char *d = disk_with(vols, at, 1, sectors, lens);
    t_mbr_entry(d, 0, 0xEE, 1, (uint32_t)sectors - 1);
    unsigned char *h = d + 512, *a = d + 1024;
    /* One basic-data entry in an array of 128 at LBA 2. */
    static const unsigned char basic[16] = {0xA2, 0xA0, 0xD0, 0xEB, 0xE5, 0xB9, 0x33, 0x44,
                                            0x87, 0xC0, 0x68, 0xB6, 0xB7, 0x26, 0x99, 0xC7};
    memcpy(a, basic, 16);
    a[16] = 1;
    put64(a + 32, at[0]);
    put64(a + 40, at[0] + lens[0] - 1);
    memcpy(h, "EFI PART", 8);
    t_put_le32(h + 8, 0x00010000);
    t_put_le32(h + 12, 92);
    put64(h + 24, 1);
    put64(h + 72, 2);
    t_put_le32(h + 80, 128);
    t_put_le32(h + 84, 128);
    t_put_le32(h + 88, crc32_ieee(a, 128 * 128));
    t_put_le32(h + 16, crc32_ieee(h, 92));
    char *disk = t_join(work, "gpt.img");
    t_write(disk, d, sectors * 512);
    kvro *kv = open_image(disk, NULL);
    want_layout(kv, "* GPT1: basic data at byte 1048576");
    compare(kv, tree, "");
    kvro_close(kv);

    /* A damaged header is named. */
    h[40] ^= 1;
    t_write(disk, d, sectors * 512);
    kvro_error err;
    assert_status(kvro_open(disk, &kv, &err), KVRO_E_CORRUPT, &err);
    t_want_detail(&err, "CRC32");
    free(d);
    free(disk);
    free(v32);
}

/* ------------------------------------------------------------------ main */

static int setup(void **state)
{
    (void)state;
    if (!t_have("mkfs.fat") || !t_have("mcopy"))
        return getenv("CI") ? -1 : 0;
    work = t_tempdir("fat");
    tree = t_join(work, "tree");
    t_make_tree(tree, TREE, NTREE, 1);
    t_sh_ok("find '%s' -exec touch -h -d @%d {} +", tree, MTIME);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (work)
        t_rmrf(work);
    free(work);
    free(tree);
    return 0;
}

int main(void)
{
    if (!t_have("mkfs.fat") || !t_have("mcopy")) {
        fprintf(stderr, "test_fat: mkfs.fat and mcopy are needed (dosfstools, mtools)\n");
        return getenv("CI") ? 1 : 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fat12),      cmocka_unit_test(test_fat16),
        cmocka_unit_test(test_fat32),      cmocka_unit_test(test_names),
        cmocka_unit_test(test_open_modes), cmocka_unit_test(test_type_boundaries),
        cmocka_unit_test(test_mbr),        cmocka_unit_test(test_gpt),
        cmocka_unit_test(test_cut_image),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
