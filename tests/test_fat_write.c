/*
 * test_fat_write.c — the FAT backend's write side (kvro_fs_create, mkdir,
 * write, destroy) on images made by the real tools (mkfs.fat + mcopy),
 * held in memory and opened read-write through kvro_fs_open_io. After
 * each sequence the image goes to a file and must pass `fsck.fat -n`
 * with nothing printed but its summary, and `mcopy -s` must extract
 * exactly a model directory kept beside it with the same operations.
 * FAT12, FAT16 and FAT32; errors (case-only collisions, bad names, a
 * directory not empty, a full root); out of space reached and recovered
 * from; a random sequence checked every 20 steps; and crash safety: a
 * put + mkdir + rm sequence with its Nth write failing, for every N.
 */
#include "support.h"

#include <kvro/kvro.h>

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

static char *work;

static const struct {
    int type;
    int kib;
} KINDS[] = {{12, 1024}, {16, 16384}, {32, 40960}};

/* The pre-existing tree every image starts with. */
static const struct {
    const char *key;
    int64_t size;
} OLD[] = {
    {"old.txt", 5000},        {"keep/Long Kept Name.bin", 70000},
    {"keep/readme.txt", 100}, {"keep/sub/deep.dat", 3000},
    {"gone/one.txt", 10},     {"Zeta.TXT", 1},
};
#define NOLD (sizeof OLD / sizeof *OLD)

static void sh(const char *cmd)
{
    char *out = NULL, *err = NULL;
    int rc = t_run(cmd, &out, &err);
    if (rc != 0)
        fail_msg("'%s' failed (%d): %s%s", cmd, rc, out, err);
    free(out), free(err);
}

/* An image of TYPE made by mkfs.fat, the tree above copied in by mcopy,
 * read into memory; *MODEL is a copy of that tree on the host. */
static unsigned char *base_image(int type, int kib, size_t *len, char **model)
{
    char *img = t_fmt("%s/base%d.img", work, type);
    *model = t_fmt("%s/model%d", work, type);
    t_rmrf(*model);
    for (size_t i = 0; i < NOLD; i++) {
        char *p = t_join(*model, OLD[i].key);
        t_write_pattern(p, i, (uint64_t)OLD[i].size);
        free(p);
    }
    char *cmd = t_fmt("rm -f '%s' && mkfs.fat -F %d -C '%s' %d >/dev/null && cd '%s' && "
                      "MTOOLS_SKIP_CHECK=1 mcopy -s -i '%s' * ::",
                      img, type, img, kib, *model, img);
    sh(cmd);
    free(cmd);
    unsigned char *data = (unsigned char *)t_slurp(img, len);
    unlink(img);
    free(img);
    return data;
}

static kvro_fs *open_rw(unsigned char *data, size_t len)
{
    kvro_io *io = NULL;
    kvro_error err;
    assert_status(kvro_io_from_memory_rw(data, len, &io, &err), KVRO_OK, &err);
    kvro_fs *fs = NULL;
    assert_status(kvro_fs_open_io(io, KVRO_FS_RDWR, NULL, &fs, &err), KVRO_OK, &err);
    kvro_io_close(io);
    return fs;
}

static char *save(const unsigned char *data, size_t len, const char *name)
{
    char *img = t_join(work, name);
    t_write(img, data, len);
    return img;
}

/* fsck.fat -n: its version line and summary, and nothing else but lines
 * that contain one of ALLOWED (NULL-terminated; NULL for none). */
static void fsck_clean(const char *img, const char *const *allowed)
{
    char *cmd = t_fmt("fsck.fat -n '%s'", img);
    char *out = NULL, *err = NULL;
    int rc = t_run(cmd, &out, &err);
    int lines = 0;
    bool bad = false;
    for (char *line = out, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        lines++;
        bool ok = lines == 1 ? strncmp(line, "fsck.fat", 8) == 0
                             : strstr(line, " files, ") && strstr(line, " clusters");
        for (size_t i = 0; !ok && allowed && allowed[i]; i++)
            ok = strstr(line, allowed[i]) != NULL;
        if (!ok && allowed && !*line)
            ok = true; /* the blank line before "Leaving filesystem unchanged." */
        if (!ok) {
            fprintf(stderr, "fsck.fat: %s\n", line);
            bad = true;
        }
        if (nl)
            *nl = '\n';
    }
    if ((rc != 0 && !allowed) || bad)
        fail_msg("fsck.fat -n on %s: status %d, output above", img, rc);
    free(cmd), free(out), free(err);
}

static void extract_equal(const char *img, const char *model)
{
    char *dir = t_join(work, "extract");
    t_rmrf(dir);
    t_mkdirs(dir);
    char *cmd = t_fmt("MTOOLS_SKIP_CHECK=1 mcopy -s -i '%s' ::/ '%s' && diff -r '%s' '%s'", img,
                      dir, model, dir);
    sh(cmd);
    free(cmd);
    t_rmrf(dir);
    free(dir);
}

/* --------------------------------------------------- model operations */

static void put(kvro_fs *fs, const char *model, const char *key, uint64_t seed, int64_t size)
{
    kvro_error err;
    assert_status(kvro_fs_create(fs, key, &err), KVRO_OK, &err);
    char *buf = malloc((size_t)size + 1);
    for (int64_t i = 0; i < size; i++)
        buf[i] = (char)t_pattern(seed, (uint64_t)i);
    /* In two writes, the second past the first's end. */
    int64_t half = size / 2;
    assert_status(kvro_fs_write(fs, key, 0, buf, half, &err), KVRO_OK, &err);
    assert_status(kvro_fs_write(fs, key, half, buf + half, size - half, &err), KVRO_OK, &err);
    char *p = t_join(model, key);
    t_write(p, buf, (size_t)size);
    free(p), free(buf);
}

static void write_at(kvro_fs *fs, const char *model, const char *key, int64_t off, int64_t n,
                     uint64_t seed)
{
    char *p = t_join(model, key);
    size_t len = 0;
    char *old = t_slurp(p, &len);
    size_t end = (size_t)off + (size_t)n > len ? (size_t)off + (size_t)n : len;
    char *buf = calloc(1, end);
    memcpy(buf, old, len);
    for (int64_t i = 0; i < n; i++)
        buf[off + i] = (char)t_pattern(seed, (uint64_t)i);
    kvro_error err;
    assert_status(kvro_fs_write(fs, key, off, buf + off, n, &err), KVRO_OK, &err);
    t_write(p, buf, end);
    free(p), free(old), free(buf);
}

static void destroy(kvro_fs *fs, const char *model, const char *key)
{
    kvro_error err;
    assert_status(kvro_fs_destroy(fs, key, &err), KVRO_OK, &err);
    char *p = t_join(model, key);
    t_rmrf(p);
    free(p);
}

static void make_dir(kvro_fs *fs, const char *model, const char *key)
{
    kvro_error err;
    assert_status(kvro_fs_mkdir(fs, key, &err), KVRO_OK, &err);
    char *p = t_join(model, key);
    t_mkdirs(p);
    free(p);
}

static void check(kvro_fs *fs, unsigned char *data, size_t len, const char *model)
{
    (void)fs;
    char *img = save(data, len, "check.img");
    fsck_clean(img, NULL);
    extract_equal(img, model);
    unlink(img);
    free(img);
}

/* ------------------------------------------------------------- tests */

static void sequence(int type, int kib)
{
    size_t len;
    char *model;
    unsigned char *data = base_image(type, kib, &len, &model);
    kvro_fs *fs = open_rw(data, len);
    kvro_error err;
    put(fs, model, "new/dir/hello.txt", 1, 12345);
    put(fs, model, "readme2.txt", 2, 10); /* 8.3 lower case */
    put(fs, model, "Données d'été (copie).txt", 3, 3000);
    put(fs, model, "keep/Long Kept Name (2).bin", 4, 100);
    put(fs, model, "empty file", 5, 0);
    make_dir(fs, model, "x/y/z");
    make_dir(fs, model, "x/y");                      /* exists: fine */
    write_at(fs, model, "old.txt", 4000, 9000, 6);   /* across the end */
    write_at(fs, model, "old.txt", 100, 10, 7);      /* inside */
    write_at(fs, model, "empty file", 50000, 10, 8); /* a gap of zeros */
    destroy(fs, model, "gone/one.txt");
    destroy(fs, model, "gone");
    destroy(fs, model, "Zeta.TXT");
    /* Errors, each leaving the image as it was. */
    assert_status(kvro_fs_create(fs, "KEEP/README.TXT", &err), KVRO_E_EXISTS, &err);
    assert_status(kvro_fs_create(fs, "keep/ReadMe.txt", &err), KVRO_E_EXISTS, &err);
    assert_status(kvro_fs_create(fs, "bad?name", &err), KVRO_E_INVALID, &err);
    assert_status(kvro_fs_create(fs, "trailing.", &err), KVRO_E_INVALID, &err);
    assert_status(kvro_fs_mkdir(fs, "old.txt/sub", &err), KVRO_E_NOT_DIR, &err);
    assert_status(kvro_fs_destroy(fs, "keep", &err), KVRO_E_NOT_EMPTY, &err);
    assert_status(kvro_fs_destroy(fs, "nothing", &err), KVRO_E_NOT_FOUND, &err);
    /* Many long names in one directory: it grows by clusters; ~1..~9 and
     * the hashed tails. */
    for (int i = 0; i < 150; i++) {
        char *key = t_fmt("many/a long file name number %d.text", i);
        put(fs, model, key, 100 + (uint64_t)i, i * 3);
        free(key);
    }
    for (int i = 0; i < 150; i += 3) {
        char *key = t_fmt("many/a long file name number %d.text", i);
        destroy(fs, model, key);
        free(key);
    }
    put(fs, model, "many/after the holes.txt", 9, 99);
    /* Read back through the same handle. */
    char buf[16];
    int64_t n = 0;
    assert_status(kvro_fs_read(fs, "new/dir/hello.txt", 12340, 16, buf, &n, &err), KVRO_OK, &err);
    assert_int_equal(n, 5);
    assert_int_equal((unsigned char)buf[0], t_pattern(1, 12340));
    check(fs, data, len, model);
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
    free(data), free(model);
}

static void test_sequence_fat12(void **state)
{
    (void)state;
    sequence(12, 1024);
}

static void test_sequence_fat16(void **state)
{
    (void)state;
    sequence(16, 16384);
}

static void test_sequence_fat32(void **state)
{
    (void)state;
    sequence(32, 40960);
}

/* Empty files F0, F1, ... in the root (and in MODEL) until it is full:
 * the last create must fail KVRO_E_NO_SPACE (*ERR says why). */
static void fill_root(kvro_fs *fs, const char *model, kvro_error *err)
{
    kvro_status s = KVRO_OK;
    for (int i = 0; i < 1000 && s == KVRO_OK; i++) {
        char *key = t_fmt("F%d", i);
        if ((s = kvro_fs_create(fs, key, err)) == KVRO_OK) {
            char *p = t_join(model, key);
            t_write(p, "", 0);
            free(p);
        }
        free(key);
    }
    assert_status(s, KVRO_E_NO_SPACE, err);
}

/* The FAT12/16 root has a fixed number of entries. */
static void test_root_full(void **state)
{
    (void)state;
    size_t len;
    char *model;
    unsigned char *data = base_image(12, 1024, &len, &model);
    kvro_fs *fs = open_rw(data, len);
    kvro_error err;
    fill_root(fs, model, &err);
    t_want_detail(&err, "root directory is full");
    check(fs, data, len, model);
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
    free(data), free(model);
}

/* Offset of the root directory of the FAT volume at D (FAT12/16: its
 * fixed region; FAT32: its first cluster). */
static size_t root_offset(const unsigned char *d)
{
    size_t bps = (size_t)(d[11] | d[12] << 8), spc = d[13];
    size_t reserved = (size_t)(d[14] | d[15] << 8), nfats = d[16];
    size_t root_entries = (size_t)(d[17] | d[18] << 8);
    size_t fat16 = (size_t)(d[22] | d[23] << 8);
    size_t fat32 = (size_t)d[36] | (size_t)d[37] << 8 | (size_t)d[38] << 16 | (size_t)d[39] << 24;
    size_t fatsz = fat16 ? fat16 : fat32;
    size_t root = (reserved + nfats * fatsz) * bps;
    if (root_entries)
        return root;
    size_t rootclus = (size_t)d[44] | (size_t)d[45] << 8 | (size_t)d[46] << 16;
    return root + (rootclus - 2) * spc * bps;
}

/* Slots after a directory's end marker (a 0x00 entry) are free and never
 * read. A damaged image may hold old entries there; a new entry written
 * over the marker must not bring them into view (the writer zeroes them
 * first). */
static void test_garbage_past_end_marker(void **state)
{
    (void)state;
    static const int types[][2] = {{12, 1024}, {32, 40960}};
    for (size_t t = 0; t < sizeof types / sizeof *types; t++) {
        size_t len;
        char *model;
        unsigned char *data = base_image(types[t][0], types[t][1], &len, &model);
        unsigned char *root = data + root_offset(data);
        size_t end = 0;
        while (root[end * 32] != 0)
            end++;
        assert_true(end > 0 && end < 12);
        /* Two plausible files, one and three slots past the marker. */
        for (size_t k = 1; k <= 3; k += 2) {
            unsigned char *e = root + (end + k) * 32;
            memcpy(e, k == 1 ? "GHOST   TXT" : "PHANTOM BIN", 11);
            e[11] = 0x20;
            e[28] = 7; /* 7 bytes, no cluster: a read would fail */
        }
        kvro_fs *fs = open_rw(data, len);
        put(fs, model, "new.txt", 91, 3000);
        put(fs, model, "A Longer New Name.data", 92, 100);
        kvro_error err;
        assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
        char *img = save(data, len, "ghost.img");
        fsck_clean(img, NULL);
        extract_equal(img, model);
        unlink(img);
        free(img), free(data), free(model);
    }
}

/* A damaged FAT: a lost chain (no entry names it) ends in a cluster whose
 * own entry says free. Taking that cluster would join the lost chain to a
 * new file's, and the reader refuses a chain something leads into: the
 * writer passes such a cluster over. */
static void test_lost_chain_into_free_cluster(void **state)
{
    (void)state;
    size_t len;
    char *model;
    unsigned char *data = base_image(16, 16384, &len, &model);
    size_t bps = (size_t)(data[11] | data[12] << 8), reserved = (size_t)(data[14] | data[15] << 8);
    size_t nfats = data[16], fatsz = (size_t)(data[22] | data[23] << 8);
    unsigned char *fat = data + reserved * bps;
    size_t free1 = 0, lost = 0;
    for (size_t c = 2; c < fatsz * bps / 2 && !lost; c++)
        if (fat[2 * c] == 0 && fat[2 * c + 1] == 0) {
            if (!free1)
                free1 = c;
            else if (c > free1 + 8)
                lost = c;
        }
    assert_true(free1 && lost);
    for (size_t k = 0; k < nfats; k++) { /* FAT[lost] = free1, in every copy */
        fat[k * fatsz * bps + 2 * lost] = (unsigned char)free1;
        fat[k * fatsz * bps + 2 * lost + 1] = (unsigned char)(free1 >> 8);
    }
    kvro_fs *fs = open_rw(data, len);
    put(fs, model, "after.bin", 93, 9000);
    make_dir(fs, model, "new dir");
    put(fs, model, "new dir/in.txt", 94, 10);
    kvro_error err;
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
    /* Every file reads as written (the reader would refuse a chain the
     * lost one leads into), and the lost chain is as it was. */
    kvro_io *io = NULL;
    assert_status(kvro_io_from_memory(data, len, &io, &err), KVRO_OK, &err);
    kvro *kv = NULL;
    assert_status(kvro_open_io(io, NULL, &kv, &err), KVRO_OK, &err);
    static const char *const keys[] = {"after.bin", "new dir/in.txt", "old.txt"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        char *p = t_join(model, keys[i]);
        size_t n;
        char *want = t_slurp(p, &n);
        char *got = malloc(n + 1);
        int64_t g = -1;
        assert_status(kvro_read(kv, keys[i], 0, (int64_t)n + 1, got, &g, &err), KVRO_OK, &err);
        assert_int_equal(g, (int64_t)n);
        assert_memory_equal(got, want, n);
        free(p), free(want), free(got);
    }
    assert_int_equal(fat[2 * lost] | fat[2 * lost + 1] << 8, (int)free1);
    assert_int_equal(fat[2 * free1] | fat[2 * free1 + 1] << 8, 0);
    kvro_close(kv);
    kvro_io_close(io);
    free(data), free(model);
}

static int first_region(void *arg, const kvro_region *r)
{
    *(int64_t *)arg = r->image_offset;
    return 1;
}

/* A damaged FAT: an entry whose chain starts at a cluster marked free.
 * The writer must not hand that cluster to a new file: the two entries
 * would share it, and whichever a reader met second would fail. */
static void test_entry_on_free_cluster(void **state)
{
    (void)state;
    size_t len;
    char *model;
    unsigned char *data = base_image(16, 16384, &len, &model);
    size_t bps = (size_t)(data[11] | data[12] << 8), spc = data[13];
    size_t reserved = (size_t)(data[14] | data[15] << 8), nfats = data[16];
    size_t root_entries = (size_t)(data[17] | data[18] << 8);
    size_t fatsz = (size_t)(data[22] | data[23] << 8);
    size_t data_off = (reserved + nfats * fatsz) * bps + root_entries * 32;
    kvro_io *io = NULL;
    kvro_error err;
    assert_status(kvro_io_from_memory(data, len, &io, &err), KVRO_OK, &err);
    kvro *kv = NULL;
    assert_status(kvro_open_io(io, NULL, &kv, &err), KVRO_OK, &err);
    int64_t at = -1;
    assert_status(kvro_regions(kv, "gone/one.txt", first_region, &at, &err), KVRO_OK, &err);
    kvro_close(kv);
    size_t c = ((size_t)at - data_off) / (spc * bps) + 2;
    unsigned char *fat = data + reserved * bps;
    for (size_t k = 0; k < nfats; k++) /* FAT[c] = 0: "free" */
        fat[k * fatsz * bps + 2 * c] = fat[k * fatsz * bps + 2 * c + 1] = 0;

    kvro_fs *fs = open_rw(data, len);
    put(fs, model, "taker.bin", 95, 5000);
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
    /* A fresh handle that reads the damaged file first (its one cluster
     * reads without the FAT) still reads the new file: they share no
     * cluster. */
    assert_status(kvro_open_io(io, NULL, &kv, &err), KVRO_OK, &err);
    char got[8192];
    int64_t g = -1;
    assert_status(kvro_read(kv, "gone/one.txt", 0, sizeof got, got, &g, &err), KVRO_OK, &err);
    char *old = t_join(model, "gone/one.txt"), *p = t_join(model, "taker.bin");
    size_t n;
    char *want = t_slurp(old, &n);
    assert_int_equal(g, (int64_t)n);
    assert_memory_equal(got, want, n);
    free(want);
    want = t_slurp(p, &n);
    assert_status(kvro_read(kv, "taker.bin", 0, sizeof got, got, &g, &err), KVRO_OK, &err);
    assert_int_equal(g, (int64_t)n);
    assert_memory_equal(got, want, n);
    assert_int_equal(fat[2 * c] | fat[2 * c + 1] << 8, 0);
    free(old);
    kvro_close(kv);
    /* The same where the entry's name is one no key can spell ('/' in its
     * short name: no listing shows it): the writer still sees its cluster. */
    unsigned char *e = NULL;
    for (size_t o = 0; o + 32 <= len && !e; o += 32)
        if (memcmp(data + o, "ONE     TXT", 11) == 0)
            e = data + o;
    assert_non_null(e);
    e[2] = '/';
    fs = open_rw(data, len);
    put(fs, model, "taker two.bin", 97, 5000);
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
    assert_int_equal(fat[2 * c] | fat[2 * c + 1] << 8, 0);
    assert_status(kvro_open_io(io, NULL, &kv, &err), KVRO_OK, &err);
    kvro_close(kv);
    kvro_io_close(io);
    free(p), free(want), free(data), free(model);
}

static void rename_model(const char *model, const char *from, const char *to)
{
    char *a = t_join(model, from), *b = t_join(model, to);
    assert_int_equal(rename(a, b), 0);
    free(a), free(b);
}

/* kvro_fs_rename on FAT: within a directory, across directories, over a
 * file, a new case of the same name; what it refuses, refused before
 * anything changes; and a rename that fails for want of room (a full
 * FAT12 root) leaves both names as they were. fsck.fat and mcopy agree
 * after each run. */
static void test_rename(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof KINDS / sizeof *KINDS; k++) {
        size_t len;
        char *model;
        unsigned char *data = base_image(KINDS[k].type, KINDS[k].kib, &len, &model);
        kvro_fs *fs = open_rw(data, len);
        kvro_error err;
        put(fs, model, "keep/a new one.bin", 96, 7000);
        assert_status(kvro_fs_rename(fs, "keep/a new one.bin", "keep/readme.txt", &err), KVRO_OK,
                      &err);
        rename_model(model, "keep/a new one.bin", "keep/readme.txt");
        assert_status(kvro_fs_rename(fs, "old.txt", "keep/sub/Moved Here.TXT", &err), KVRO_OK,
                      &err);
        rename_model(model, "old.txt", "keep/sub/Moved Here.TXT");
        assert_status(kvro_fs_rename(fs, "Zeta.TXT", "zeta.txt", &err), KVRO_OK, &err);
        rename_model(model, "Zeta.TXT", "zeta.txt");
        assert_status(kvro_fs_rename(fs, "zeta.txt", "zeta.txt", &err), KVRO_OK, &err);
        /* Directories: moved with what they hold, their ".." following
         * (fsck.fat checks it), renamed in place; never into themselves
         * or over anything. */
        assert_status(kvro_fs_rename(fs, "keep/sub", "gone/Sub Moved", &err), KVRO_OK, &err);
        rename_model(model, "keep/sub", "gone/Sub Moved");
        assert_status(kvro_fs_rename(fs, "gone", "Gone Too", &err), KVRO_OK, &err);
        rename_model(model, "gone", "Gone Too");
        assert_status(kvro_fs_rename(fs, "Gone Too/Sub Moved", "sub again", &err), KVRO_OK, &err);
        rename_model(model, "Gone Too/Sub Moved", "sub again");
        make_dir(fs, model, "keep/inner");
        assert_status(kvro_fs_rename(fs, "keep", "keep/inner/k", &err), KVRO_E_INVALID, &err);
        assert_status(kvro_fs_rename(fs, "keep", "zeta.txt", &err), KVRO_E_EXISTS, &err);
        assert_status(kvro_fs_rename(fs, "keep", "sub again", &err), KVRO_E_EXISTS, &err);
        /* Refused: a directory over a file's place, a missing source or
         * parent, a name FAT cannot hold. */
        assert_status(kvro_fs_rename(fs, "zeta.txt", "keep", &err), KVRO_E_IS_DIR, &err);
        assert_status(kvro_fs_rename(fs, "nothing", "x", &err), KVRO_E_NOT_FOUND, &err);
        assert_status(kvro_fs_rename(fs, "zeta.txt", "no/such/dir", &err), KVRO_E_NOT_FOUND, &err);
        assert_status(kvro_fs_rename(fs, "zeta.txt", "a:b", &err), KVRO_E_INVALID, &err);
        check(fs, data, len, model);
        assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
        free(data), free(model);
    }
    /* A full FAT12 root: the new name does not fit, the old stays. */
    size_t len;
    char *model;
    unsigned char *data = base_image(12, 1024, &len, &model);
    kvro_fs *fs = open_rw(data, len);
    kvro_error err;
    fill_root(fs, model, &err);
    assert_status(
        kvro_fs_rename(fs, "keep/Long Kept Name.bin", "A Long Name Needs Slots.bin", &err),
        KVRO_E_NO_SPACE, &err);
    check(fs, data, len, model);
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
    free(data), free(model);
}

static void test_out_of_space(void **state)
{
    (void)state;
    for (size_t k = 0; k < 3; k++) {
        int kib = KINDS[k].type == 12 ? 300 : KINDS[k].kib;
        size_t len;
        char *model;
        unsigned char *data = base_image(KINDS[k].type, kib, &len, &model);
        kvro_fs *fs = open_rw(data, len);
        kvro_error err;
        put(fs, model, "fill.bin", 1, 0);
        const int64_t chunk = 1 << 20;
        char *buf = malloc((size_t)chunk);
        memset(buf, 0x5A, (size_t)chunk);
        int64_t off = 0;
        kvro_status s;
        while ((s = kvro_fs_write(fs, "fill.bin", off, buf, chunk, &err)) == KVRO_OK)
            off += chunk;
        assert_status(s, KVRO_E_NO_SPACE, &err);
        /* Smaller pieces fill what is left. */
        for (int64_t piece = chunk / 2; piece >= 512; piece /= 2)
            while (kvro_fs_write(fs, "fill.bin", off, buf, piece, &err) == KVRO_OK)
                off += piece;
        char *p = t_join(model, "fill.bin");
        char *full = malloc((size_t)off + 1);
        memset(full, 0x5A, (size_t)off);
        t_write(p, full, (size_t)off);
        check(fs, data, len, model);
        /* Recovered: room again once something goes. */
        destroy(fs, model, "fill.bin");
        put(fs, model, "after.bin", 2, 100000);
        check(fs, data, len, model);
        assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
        free(p), free(full), free(buf), free(data), free(model);
    }
}

/* A random sequence against the model, fsck and mcopy every 20 steps. */
static void test_random(void **state)
{
    (void)state;
    static const char *const names[] = {
        "a.txt",      "Bee File.dat",   "cé.txt",    "dir1/x.bin",    "dir1/Long Name Y.bin",
        "dir2/sub/z", "dir2/sub/Ω.txt", "UPPER.TXT", "mixedCase.Txt", "dir1/empty",
    };
    const size_t nn = sizeof names / sizeof *names;
    for (size_t k = 0; k < 3; k++) {
        size_t len;
        char *model;
        unsigned char *data = base_image(KINDS[k].type, KINDS[k].kib, &len, &model);
        kvro_fs *fs = open_rw(data, len);
        unsigned seed = 1234 + (unsigned)k;
        bool exists[sizeof names / sizeof *names] = {0};
        for (int step = 1; step <= 200; step++) {
            size_t i = (size_t)rand_r(&seed) % nn;
            int op = rand_r(&seed) % 4;
            if (!exists[i]) {
                put(fs, model, names[i], (uint64_t)step, rand_r(&seed) % 20000);
                exists[i] = true;
            } else if (op == 0) {
                destroy(fs, model, names[i]);
                exists[i] = false;
            } else {
                write_at(fs, model, names[i], rand_r(&seed) % 30000, 1 + rand_r(&seed) % 9000,
                         (uint64_t)step);
            }
            if (step % 20 == 0)
                check(fs, data, len, model);
        }
        kvro_error err;
        assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
        free(data), free(model);
    }
}

/* ------------------------------------------------------ crash safety */

/* The sequence: a put, a mkdir, a put that replaces, an rm. Stops at
 * the first failure, as a crash would. */
static kvro_status crash_sequence(kvro_fs *fs)
{
    kvro_error err;
    static char data[9000];
    kvro_status s = kvro_fs_create(fs, "new dir/new file.txt", &err);
    if (s == KVRO_OK)
        s = kvro_fs_write(fs, "new dir/new file.txt", 0, data, sizeof data, &err);
    if (s == KVRO_OK)
        s = kvro_fs_mkdir(fs, "made/here", &err);
    if (s == KVRO_OK)
        s = kvro_fs_destroy(fs, "keep/readme.txt", &err);
    if (s == KVRO_OK)
        s = kvro_fs_create(fs, "keep/readme.txt", &err);
    if (s == KVRO_OK)
        s = kvro_fs_write(fs, "keep/readme.txt", 0, data, 700, &err);
    if (s == KVRO_OK)
        s = kvro_fs_destroy(fs, "old.txt", &err);
    return s;
}

static void test_crash(void **state)
{
    (void)state;
    /* What an interrupted sequence may leave: lost clusters (fsck.fat -n
     * says it would reclaim them), an FSInfo count written before or
     * after the FAT it counts, and FAT copies that differ when the write
     * that failed was the second copy's (fsck.fat then keeps the first,
     * as our reader does). */
    static const char *const allowed[] = {"Reclaimed ", "Free cluster summary wrong",
                                          "Auto-correcting",
                                          /* the failed write fell between the two FAT copies */
                                          "FATs differ but appear to be intact", "Using first FAT",
                                          "Leaving filesystem unchanged", NULL};
    for (size_t k = 0; k < 3; k++) {
        size_t len;
        char *model;
        unsigned char *base = base_image(KINDS[k].type, KINDS[k].kib, &len, &model);
        unsigned char *data = malloc(len);
        bool finished = false;
        for (int64_t n = 0; !finished && n < 1000; n++) {
            memcpy(data, base, len);
            t_fault f;
            t_fault_init(&f);
            f.fail_write = n;
            f.sticky = true;
            kvro_io *io = t_fault_memory_rw(&f, data, len, NULL);
            kvro_fs *fs = NULL;
            kvro_error err;
            assert_status(kvro_fs_open_io(io, KVRO_FS_RDWR, NULL, &fs, &err), KVRO_OK, &err);
            kvro_io_close(io);
            kvro_status s = crash_sequence(fs);
            kvro_fs_close(fs, &err);
            finished = f.injected == 0;
            assert_true(finished ? s == KVRO_OK : s != KVRO_OK);
            char *img = save(data, len, "crash.img");
            fsck_clean(img, allowed);
            /* Every file complete before is whole, or gone if it was
             * removed; never wrong bytes. */
            kvro *kv = NULL;
            assert_status(kvro_open(img, &kv, &err), KVRO_OK, &err);
            for (size_t i = 0; i < NOLD; i++) {
                char *buf = malloc((size_t)OLD[i].size + 1);
                int64_t got = -1;
                s = kvro_read(kv, OLD[i].key, 0, OLD[i].size + 1, buf, &got, &err);
                if (s == KVRO_E_NOT_FOUND &&
                    (!strcmp(OLD[i].key, "old.txt") || !strcmp(OLD[i].key, "keep/readme.txt"))) {
                    free(buf);
                    continue;
                }
                assert_status(s, KVRO_OK, &err);
                bool replaced = !strcmp(OLD[i].key, "keep/readme.txt") && got != OLD[i].size;
                if (!replaced) {
                    assert_int_equal(got, OLD[i].size);
                    for (int64_t j = 0; j < got; j++)
                        if ((unsigned char)buf[j] != t_pattern(i, (uint64_t)j))
                            fail_msg("%s: byte %lld wrong after write %lld failed", OLD[i].key,
                                     (long long)j, (long long)n);
                }
                free(buf);
            }
            kvro_close(kv);
            unlink(img);
            free(img);
        }
        assert_true(finished);
        free(base), free(data), free(model);
    }
}

static int setup(void **state)
{
    (void)state;
    if (!t_have("fsck.fat") || !t_have("mcopy") || !t_have("mkfs.fat"))
        return -1;
    work = t_tempdir("fat-write");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    t_rmrf(work);
    free(work);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sequence_fat12), cmocka_unit_test(test_sequence_fat16),
        cmocka_unit_test(test_sequence_fat32), cmocka_unit_test(test_root_full),
        cmocka_unit_test(test_out_of_space),   cmocka_unit_test(test_random),
        cmocka_unit_test(test_crash),          cmocka_unit_test(test_garbage_past_end_marker),
        cmocka_unit_test(test_lost_chain_into_free_cluster),
        cmocka_unit_test(test_entry_on_free_cluster),
        cmocka_unit_test(test_rename),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
