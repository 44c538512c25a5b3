/*
 * test_fat_corrupt.c — damaged FAT images: a volume made by mkfs.fat and
 * mcopy, then one thing broken by hand per case (a BPB field, a FAT entry,
 * a directory entry, the image cut short). Each must give KVRO_E_CORRUPT
 * naming what is wrong, from open or from the call that meets it, never
 * a hang or a crash (the suite runs under ASan too).
 */
#include "support.h"

#include <kvro/kvro.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"

static char *work;
static unsigned char *img16, *img32;
static size_t len16, len32;

/* 8.3 upper-case names: short entries only, easy to find by their bytes. */
static void make_images(void)
{
    char *tree = t_join(work, "tree");
    char *p = t_join(tree, "AAAA.BIN");
    t_write_pattern(p, 1, 5000); /* 10 clusters of 512 bytes */
    free(p);
    p = t_join(tree, "BBBB.BIN");
    t_write_pattern(p, 2, 5000);
    free(p);
    p = t_join(tree, "SUB/DEEP/F.TXT");
    t_write_pattern(p, 3, 10);
    free(p);
    const char *opts[] = {"-F 16 -s 1", "-F 32 -s 1"};
    const int kib[] = {8192, 34000};
    unsigned char **out[] = {&img16, &img32};
    size_t *lens[] = {&len16, &len32};
    for (int i = 0; i < 2; i++) {
        char *img = t_fmt("%s/v%d.img", work, i);
        char *cmd = t_fmt("mkfs.fat %s -C '%s' %d >/dev/null && cd '%s' && "
                          "MTOOLS_SKIP_CHECK=1 mcopy -s -i '%s' * ::",
                          opts[i], img, kib[i], tree, img);
        assert_int_equal(t_run(cmd, NULL, NULL), 0);
        *out[i] = (unsigned char *)t_slurp(img, lens[i]);
        free(cmd);
        free(img);
    }
    free(tree);
}

static uint32_t get(const unsigned char *p, int n)
{
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

static void set(unsigned char *p, int n, uint32_t v)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> 8 * i);
}

/* A copy of a base image to break. */
typedef struct vol {
    unsigned char *b;
    size_t len;
    int bits; /* 16 or 32 */
    size_t fat, data, cluster;
} vol;

static vol copy_of(int bits)
{
    vol v = {.bits = bits};
    const unsigned char *src = bits == 16 ? img16 : img32;
    v.len = bits == 16 ? len16 : len32;
    v.b = malloc(v.len);
    memcpy(v.b, src, v.len);
    uint32_t bps = get(v.b + 11, 2), spc = v.b[13];
    uint32_t fs = get(v.b + 22, 2) ? get(v.b + 22, 2) : get(v.b + 36, 4);
    v.fat = (size_t)get(v.b + 14, 2) * bps;
    v.data = v.fat + (size_t)v.b[16] * fs * bps + get(v.b + 17, 2) * 32u;
    v.cluster = (size_t)bps * spc;
    return v;
}

/* The short entry named NAME11 (11 bytes, space padded). */
static unsigned char *entry(vol *v, const char *name11)
{
    for (size_t o = 0; o + 32 <= v->len; o += 32)
        if (memcmp(v->b + o, name11, 11) == 0 && v->b[o + 11] != 0x0F)
            return v->b + o;
    fail_msg("no entry '%s'", name11);
    return NULL;
}

static uint32_t first_cluster(const unsigned char *e)
{
    return get(e + 26, 2) | get(e + 20, 2) << 16;
}

static void set_first(unsigned char *e, uint32_t c)
{
    set(e + 26, 2, c);
    set(e + 20, 2, c >> 16);
}

static void set_fat(vol *v, uint32_t c, uint32_t next)
{
    set(v->b + v->fat + (size_t)c * (v->bits / 8), v->bits / 8, next);
}

/* Opens V from memory; the status of the open. */
static kvro_status open_vol(vol *v, kvro **kv, kvro_error *err)
{
    kvro_io *io = t_mem_io(v->b, v->len);
    kvro_status s = kvro_open_io(io, NULL, kv, err);
    kvro_io_close(io);
    return s;
}

/* The open fails, corrupt, saying NEEDLE. */
static void open_fails(vol *v, const char *needle)
{
    kvro *kv = NULL;
    kvro_error err;
    assert_status(open_vol(v, &kv, &err), KVRO_E_CORRUPT, &err);
    t_want_detail(&err, needle);
    assert_null(kv);
    free(v->b);
}

/* The open works; reading (or stat/list of) KEY is corrupt, saying NEEDLE. */
static void read_fails(vol *v, const char *key, const char *needle)
{
    kvro *kv = NULL;
    kvro_error err;
    assert_status(open_vol(v, &kv, &err), KVRO_OK, &err);
    char buf[8192];
    int64_t n = -1;
    assert_status(kvro_read(kv, key, 0, sizeof buf, buf, &n, &err), KVRO_E_CORRUPT, &err);
    t_want_detail(&err, needle);
    assert_int_equal(n, 0);
    /* Twice: a failure is not cached as a success. */
    assert_status(kvro_read(kv, key, 0, sizeof buf, buf, &n, &err), KVRO_E_CORRUPT, &err);
    kvro_close(kv);
    free(v->b);
}

static void test_bpb_fields(void **state)
{
    (void)state;
    vol v = copy_of(16);
    set(v.b + 11, 2, 0);
    open_fails(&v, "bytes per sector 0");
    v = copy_of(16);
    set(v.b + 11, 2, 768);
    open_fails(&v, "bytes per sector 768");
    v = copy_of(16);
    v.b[13] = 3;
    open_fails(&v, "sectors per cluster 3");
    v = copy_of(16);
    v.b[13] = 0;
    open_fails(&v, "sectors per cluster 0");
    v = copy_of(16);
    set(v.b + 14, 2, 0);
    open_fails(&v, "reserved");
    v = copy_of(16);
    v.b[16] = 0;
    open_fails(&v, "no FATs");
    v = copy_of(16);
    v.b[21] = 0x12;
    open_fails(&v, "media byte");
    v = copy_of(16);
    set(v.b + 19, 2, 0);
    set(v.b + 32, 4, 0);
    open_fails(&v, "total sectors 0");
    v = copy_of(32);
    set(v.b + 36, 4, 0);
    open_fails(&v, "FAT size 0");
    v = copy_of(16);
    set(v.b + 17, 2, 0);
    open_fails(&v, "root directory entries");
    /* Absurd sizes: far more sectors than the FAT can number. */
    v = copy_of(16);
    set(v.b + 19, 2, 0);
    set(v.b + 32, 4, 0xFFFFFFF0);
    open_fails(&v, "clusters");
    v = copy_of(32);
    set(v.b + 36, 4, 0x7FFFFFF);
    open_fails(&v, "fill the whole volume");
    v = copy_of(32);
    set(v.b + 44, 4, 0x0FFFFFF0);
    open_fails(&v, "root cluster");
    v = copy_of(32);
    set(v.b + 44, 4, 0);
    open_fails(&v, "root cluster");
    /* The image ends inside the FAT. */
    v = copy_of(16);
    v.len = v.fat + 100;
    open_fails(&v, "past the end of the volume");
}

static void test_chains(void **state)
{
    (void)state;
    for (int bits = 16; bits <= 32; bits += 16) {
        vol v = copy_of(bits);
        uint32_t a = first_cluster(entry(&v, "AAAA    BIN"));
        /* A loop back to the first cluster. */
        set_fat(&v, a + 5, a);
        read_fails(&v, "AAAA.BIN", "looping");

        /* A loop in the middle (a cluster continuing into itself). */
        v = copy_of(bits);
        set_fat(&v, a + 5, a + 5);
        read_fails(&v, "AAAA.BIN", "cross-linked");

        /* Cross-linked: AAAA's chain runs on into BBBB's. */
        v = copy_of(bits);
        uint32_t b = first_cluster(entry(&v, "BBBB    BIN"));
        set_fat(&v, a + 9, b);
        read_fails(&v, "BBBB.BIN", "cross-linked");

        /* A free cluster, a bad one, one out of range in the chain. */
        v = copy_of(bits);
        set_fat(&v, a + 3, 0);
        read_fails(&v, "AAAA.BIN", "free cluster");
        v = copy_of(bits);
        set_fat(&v, a + 3, bits == 16 ? 0xFFF7 : 0x0FFFFFF7);
        read_fails(&v, "AAAA.BIN", "bad cluster");
        v = copy_of(bits);
        set_fat(&v, a + 3, bits == 16 ? 0xFFF0 : 0x0FFFFFF0);
        read_fails(&v, "AAAA.BIN", "out of range");

        /* The entry's first cluster out of range, or missing. */
        v = copy_of(bits);
        set_first(entry(&v, "AAAA    BIN"), bits == 16 ? 0xFFF0 : 0x0FFFFFF0);
        read_fails(&v, "AAAA.BIN", "out of range");
        v = copy_of(bits);
        set_first(entry(&v, "AAAA    BIN"), 0);
        read_fails(&v, "AAAA.BIN", "no first cluster");

        /* A size its chain cannot hold. */
        v = copy_of(bits);
        set(entry(&v, "AAAA    BIN") + 28, 4, 50000);
        read_fails(&v, "AAAA.BIN", "size needs");
        v = copy_of(bits);
        set(entry(&v, "AAAA    BIN") + 28, 4, 0xFFFFFFFF);
        read_fails(&v, "AAAA.BIN", "size needs");
    }
}

static void test_directories(void **state)
{
    (void)state;
    for (int bits = 16; bits <= 32; bits += 16) {
        /* DEEP is SUB again: SUB/DEEP/DEEP/... would never end. */
        vol v = copy_of(bits);
        uint32_t sub = first_cluster(entry(&v, "SUB        "));
        set_first(entry(&v, "DEEP       "), sub);
        kvro *kv = NULL;
        kvro_error err;
        assert_status(open_vol(&v, &kv, &err), KVRO_OK, &err);
        kvro_info st;
        assert_status(kvro_stat(kv, "SUB/DEEP", &st, &err), KVRO_E_CORRUPT, &err);
        t_want_detail(&err, "contains itself");
        assert_status(kvro_stat(kv, "SUB/DEEP/DEEP/DEEP", &st, &err), KVRO_E_CORRUPT, &err);
        /* A walk over everything stops there too, rather than going round. */
        char *cmd = t_fmt("%s/loop.img", work);
        t_write(cmd, v.b, v.len);
        char *run = t_fmt("timeout 60 '%s' verify '%s' '%s/tree' 2>&1", KVRO_TEST_MKKV, cmd, work);
        char *out = NULL;
        int rc = t_run(run, &out, NULL);
        assert_int_equal(rc, 1);
        assert_non_null(strstr(out, "contains itself"));
        free(out);
        free(run);
        free(cmd);
        kvro_close(kv);
        free(v.b);

        /* A directory with no cluster. */
        v = copy_of(bits);
        set_first(entry(&v, "DEEP       "), 0);
        read_fails(&v, "SUB/DEEP/F.TXT", "no cluster");

        /* A directory chain that loops. */
        v = copy_of(bits);
        set_fat(&v, sub, sub);
        read_fails(&v, "SUB/DEEP/F.TXT", "looping");

        /* The image cut short: a file's clusters past its end. */
        v = copy_of(bits);
        uint32_t a = first_cluster(entry(&v, "AAAA    BIN"));
        v.len = v.data + (size_t)(a - 2) * v.cluster + 700;
        read_fails(&v, "AAAA.BIN", "past the end of the image");
    }
}

static int each_entry(void *arg, const char *key, kvro_status s, const kvro_info *info)
{
    (void)key, (void)s, (void)info;
    return ++*(int *)arg > 10000; /* a tree bigger than the image is made up */
}

/* Random damage anywhere in the metadata: whatever it does, no hang and no
 * crash, and every failure a status. */
static void test_scribbles(void **state)
{
    (void)state;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    vol shapes[2] = {copy_of(16), copy_of(32)};
    free(shapes[0].b);
    free(shapes[1].b);
    for (int round = 0; round < 300; round++) {
        /* In place, put back after: the FAT32 image is 33 MB. */
        int bits = round & 1 ? 32 : 16;
        vol v = {.b = bits == 16 ? img16 : img32, .len = bits == 16 ? len16 : len32};
        const vol shape = shapes[bits == 32];
        size_t meta = shape.data + 4 * shape.cluster, at[8];
        unsigned char was[8];
        for (int k = 0; k < 8; k++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            at[k] = x % meta;
            was[k] = v.b[at[k]];
            v.b[at[k]] = (unsigned char)(x >> 40);
        }
        kvro *kv = NULL;
        if (open_vol(&v, &kv, NULL) == KVRO_OK) {
            char buf[6000];
            int64_t n;
            kvro_info st;
            const char *keys[] = {"AAAA.BIN", "BBBB.BIN", "SUB/DEEP/F.TXT"};
            for (int i = 0; i < 3; i++) {
                kvro_read(kv, keys[i], 0, sizeof buf, buf, &n, NULL);
                kvro_stat(kv, keys[i], &st, NULL);
            }
            int seen = 0;
            kvro_each(kv, each_entry, &seen, NULL);
            kvro_close(kv);
        }
        for (int k = 7; k >= 0; k--)
            v.b[at[k]] = was[k];
    }
}

/* ------------------------------------------- names twice, aliased dirs */

/* Where cluster C's bytes lie in V. */
static unsigned char *cluster_at(vol *v, uint32_t c)
{
    return v->b + v->data + (size_t)(c - 2) * v->cluster;
}

/* The first unused slot (a 0x00 entry) of directory cluster C. */
static unsigned char *free_slot(vol *v, uint32_t c)
{
    unsigned char *d = cluster_at(v, c);
    for (size_t o = 0; o + 32 <= v->cluster; o += 32)
        if (d[o] == 0)
            return d + o;
    fail_msg("directory cluster %u is full", c);
    return NULL;
}

static void put_short(unsigned char *e, const char *name11, uint8_t attr, uint32_t first,
                      uint32_t size)
{
    memset(e, 0, 32);
    memcpy(e, name11, 11);
    e[11] = attr;
    set(e + 22, 2, 0x6000); /* 12:00 */
    set(e + 24, 2, 0x5821); /* 2024-01-01 */
    set_first(e, first);
    set(e + 28, 4, size);
}

/* A long name (at most 13 ASCII characters, one slot) for short entry
 * SN11, at E; the short entry goes in the next slot. */
static void put_lfn(unsigned char *e, const char *name, const char *sn11)
{
    static const int at[13] = {1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30};
    uint8_t sum = 0;
    for (int i = 0; i < 11; i++)
        sum = (uint8_t)(((sum & 1) << 7) + (sum >> 1) + (unsigned char)sn11[i]);
    memset(e, 0, 32);
    e[0] = 0x41; /* the last (and only) slot, order 1 */
    e[11] = 0x0F;
    e[13] = sum;
    size_t n = strlen(name);
    for (size_t i = 0; i < 13; i++)
        set(e + at[i], 2, i < n ? (uint32_t)(unsigned char)name[i] : i == n ? 0 : 0xFFFF);
}

/* A free cluster, marked as a chain of one in both FATs and zeroed. */
static uint32_t alloc_cluster(vol *v)
{
    uint32_t bps = get(v->b + 11, 2);
    uint32_t fs = get(v->b + 22, 2) ? get(v->b + 22, 2) : get(v->b + 36, 4);
    size_t w = (size_t)v->bits / 8;
    for (uint32_t c = 3;; c++) {
        if (get(v->b + v->fat + c * w, (int)w) != 0)
            continue;
        for (uint32_t k = 0; k < v->b[16]; k++)
            set(v->b + v->fat + (size_t)k * fs * bps + c * w, (int)w,
                v->bits == 16 ? 0xFFFF : 0x0FFFFFFF);
        memset(cluster_at(v, c), 0, v->cluster);
        return c;
    }
}

/* A new directory NAME11 in directory cluster PARENT: its cluster, with
 * "." and "..". */
static uint32_t add_dir(vol *v, uint32_t parent, const char *name11)
{
    uint32_t c = alloc_cluster(v);
    put_short(cluster_at(v, c), ".          ", 0x10, c, 0);
    put_short(cluster_at(v, c) + 32, "..         ", 0x10, parent, 0);
    put_short(free_slot(v, parent), name11, 0x10, c, 0);
    return c;
}

/* Saves V as NAME in the work directory; fsck.fat -n's verdict: whether it
 * found the image damaged, saying NEEDLE. */
static bool fsck_says(vol *v, const char *name, const char *needle)
{
    char *path = t_fmt("%s/%s", work, name);
    t_write(path, v->b, v->len);
    char *cmd = t_fmt("fsck.fat -n '%s' 2>&1", path);
    char *out = NULL;
    int rc = t_run(cmd, &out, NULL);
    bool said = rc != 0 && out && strstr(out, needle);
    if (!said)
        print_message("fsck.fat -n (exit %d):\n%s\n", rc, out ? out : "");
    free(out);
    free(cmd);
    unlink(path);
    free(path);
    return said;
}

typedef struct seen {
    char *key[256];
    kvro_status s[256];
    kvro_kind kind[256];
    int n;
} seen;

static int on_each(void *arg, const char *key, kvro_status s, const kvro_info *info)
{
    seen *w = arg;
    assert_true(w->n < 256);
    w->key[w->n] = strdup(key);
    w->s[w->n] = s;
    w->kind[w->n] = info ? info->kind : (kvro_kind)-1;
    w->n++;
    return 0;
}

/* How often KEY was given with status S. */
static int count(const seen *w, const char *key, kvro_status s)
{
    int n = 0;
    for (int i = 0; i < w->n; i++)
        n += strcmp(w->key[i], key) == 0 && w->s[i] == s;
    return n;
}

static void seen_free(seen *w)
{
    for (int i = 0; i < w->n; i++)
        free(w->key[i]);
    w->n = 0;
}

static int on_name(void *arg, const char *name, kvro_kind kind)
{
    (void)kind;
    seen *w = arg;
    assert_true(w->n < 256);
    w->key[w->n] = strdup(name);
    w->s[w->n] = KVRO_OK;
    w->kind[w->n] = kind;
    w->n++;
    return 0;
}

static int on_info(void *arg, const char *name, kvro_status s, const kvro_info *info)
{
    (void)s, (void)info;
    return on_name(arg, name, info ? info->kind : (kvro_kind)-1);
}

/* DIR of the open V lists as refused: KVRO_E_CORRUPT saying each of the
 * NEEDLES from kvro_list and kvro_list_info, no name given to the caller. */
static void list_refused(kvro *kv, const char *dir, const char *const *needles, int n)
{
    kvro_error err;
    seen w = {.n = 0};
    assert_status(kvro_list(kv, dir, on_name, &w, &err), KVRO_E_CORRUPT, &err);
    for (int i = 0; i < n; i++)
        t_want_detail(&err, needles[i]);
    assert_int_equal(w.n, 0);
    assert_status(kvro_list_info(kv, dir, 0, on_info, &w, &err), KVRO_E_CORRUPT, &err);
    for (int i = 0; i < n; i++)
        t_want_detail(&err, needles[i]);
    assert_int_equal(w.n, 0);
}

/* One name twice in a directory (exactly, or equal under FAT's case
 * folding, or of another kind): a lookup finds only the first entry, so
 * a listing of both would show one that cannot be read, or a kind stat
 * contradicts. The directory's listing is refused, naming the directory
 * and the name (no channel for a warning after open), while lookups go on
 * finding the first entry; kvro_each names the directory it cannot list
 * and goes on. fsck.fat agrees an exact duplicate is damage; it compares
 * short names only, so two long names equal but for case pass it (and
 * the message does not send the user to it then). */
static void test_duplicate_names(void **state)
{
    (void)state;
    for (int bits = 16; bits <= 32; bits += 16) {
        /* The root: BBBB.BIN renamed AAAA.BIN, after the real one. */
        vol v = copy_of(bits);
        memcpy(entry(&v, "BBBB    BIN"), "AAAA    BIN", 11);
        if (bits == 32)
            assert_true(fsck_says(&v, "dup.img", "Duplicate directory entry"));
        kvro *kv = NULL;
        kvro_error err;
        assert_status(open_vol(&v, &kv, &err), KVRO_OK, &err);
        const char *root[] = {"the root directory", "'AAAA.BIN' twice", "the later one is hidden",
                              "fsck.fat repairs this"};
        list_refused(kv, "", root, 4);
        seen w = {.n = 0};
        assert_status(kvro_each(kv, on_each, &w, &err), KVRO_E_CORRUPT, &err);
        t_want_detail(&err, "'AAAA.BIN' twice");
        assert_int_equal(w.n, 0);
        /* The first entry, by any spelling. */
        kvro_info st;
        unsigned char buf[16];
        int64_t got;
        assert_status(kvro_stat(kv, "aaaa.bin", &st, &err), KVRO_OK, &err);
        assert_int_equal(st.size, 5000);
        assert_status(kvro_read(kv, "AAAA.BIN", 4990, 16, buf, &got, &err), KVRO_OK, &err);
        assert_int_equal(got, 10);
        for (int i = 0; i < 10; i++)
            assert_int_equal(buf[i], t_pattern(1, 4990 + (uint64_t)i));
        kvro_close(kv);
        free(v.b);

        /* SUB: a file DEEP after the directory DEEP; a file "Deep" (a long
         * name over DEEP~1) after that, equal to both under folding. Each
         * alone is refused; with a different name ("Deeper") it lists. */
        uint32_t sub = 0;
        for (int k = 0; k < 3; k++) {
            v = copy_of(bits);
            sub = first_cluster(entry(&v, "SUB        "));
            unsigned char *e = free_slot(&v, sub);
            if (k == 0) {
                put_short(e, "DEEP       ", 0x20, 0, 0);
            } else {
                put_lfn(e, k == 1 ? "Deep" : "Deeper", "DEEP~1     ");
                put_short(e + 32, "DEEP~1     ", 0x20, 0, 0);
            }
            assert_status(open_vol(&v, &kv, &err), KVRO_OK, &err);
            if (k < 2) {
                const char *kind[] = {"directory 'SUB'", "'DEEP' twice", "fsck.fat repairs this"};
                const char *fold[] = {"directory 'SUB'", "'DEEP' and 'Deep'", "case-insensitive",
                                      "fsck.fat does not compare long names"};
                list_refused(kv, "SUB", k == 0 ? kind : fold, k == 0 ? 3 : 4);
            } else {
                seen n = {.n = 0};
                assert_status(kvro_list(kv, "SUB", on_name, &n, &err), KVRO_OK, &err);
                assert_int_equal(n.n, 2);
                assert_string_equal(n.key[0], "DEEP");
                assert_string_equal(n.key[1], "Deeper");
                assert_int_equal(n.kind[1], KVRO_KIND_FILE);
                seen_free(&n);
            }
            /* What the lookup finds is the first entry, the directory,
             * however the name is spelt; the tree under it reads. */
            kvro_info d;
            assert_status(kvro_stat(kv, "SUB/DEEP", &d, &err), KVRO_OK, &err);
            assert_int_equal(d.kind, KVRO_KIND_DIR);
            assert_status(kvro_stat(kv, "SUB/Deep", &st, &err), KVRO_OK, &err);
            assert_int_equal(st.kind, KVRO_KIND_DIR);
            assert_true(st.id == d.id);
            assert_status(kvro_stat(kv, "SUB/DEEP/F.TXT", &st, &err), KVRO_OK, &err);
            /* kvro_each: the root and everything else, SUB named once as a
             * directory and once as one it cannot list, no name twice. */
            w.n = 0;
            assert_status(kvro_each(kv, on_each, &w, &err), KVRO_OK, &err);
            assert_int_equal(count(&w, "AAAA.BIN", KVRO_OK), 1);
            assert_int_equal(count(&w, "BBBB.BIN", KVRO_OK), 1);
            assert_int_equal(count(&w, "SUB", KVRO_OK), 1);
            assert_int_equal(count(&w, "SUB", KVRO_E_CORRUPT), k < 2);
            assert_int_equal(count(&w, "SUB/DEEP", KVRO_OK), k == 2);
            assert_int_equal(count(&w, "SUB/Deeper", KVRO_OK), k == 2);
            for (int i = 0; i < w.n; i++)
                for (int j = 0; j < i; j++)
                    assert_true(strcmp(w.key[i], w.key[j]) || w.s[i] != w.s[j]);
            seen_free(&w);
            kvro_close(kv);
            free(v.b);
        }
    }
}

typedef struct tree_walk {
    kvro *kv;
    int visited, failed;
    char detail[KVRO_ERROR_DETAIL_MAX]; /* the last failure's */
} tree_walk;

/* Lists DIR and every directory under it with kvro_list, as mkkv ls -R. */
static void list_tree(tree_walk *t, const char *dir)
{
    seen n = {.n = 0};
    kvro_error err;
    kvro_status s = kvro_list(t->kv, dir, on_name, &n, &err);
    if (s != KVRO_OK)
        snprintf(t->detail, sizeof t->detail, "%s", err.detail);
    t->failed += s != KVRO_OK;
    for (int i = 0; i < n.n; i++) {
        char *key = t_fmt("%s%s%s", dir, *dir ? "/" : "", n.key[i]);
        t->visited++;
        if (n.kind[i] == KVRO_KIND_DIR)
            list_tree(t, key);
        free(key);
    }
    seen_free(&n);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Directories named by two entries (aliased, cross-linked: one chain, two
 * names). SUB/TOP holds 40 levels, each naming the next twice, as A and B:
 * no loop, but 2^40 paths. The first entry of a directory to name a chain
 * owns it whatever is looked up first, the other is KVRO_E_CORRUPT naming
 * both; a whole walk is linear again. */
static void test_aliased_directories(void **state)
{
    (void)state;
    enum { LEVELS = 40 };
    for (int bits = 16; bits <= 32; bits += 16) {
        vol v = copy_of(bits);
        uint32_t sub = first_cluster(entry(&v, "SUB        "));
        uint32_t prev = add_dir(&v, sub, "TOP        ");
        for (int i = 0; i < LEVELS; i++) {
            uint32_t c = add_dir(&v, prev, "A          ");
            put_short(free_slot(&v, prev), "B          ", 0x10, c, 0);
            prev = c;
        }
        put_short(free_slot(&v, prev), "LEAF       ", 0x20, 0, 0);
        if (bits == 32)
            assert_true(fsck_says(&v, "alias.img", "share clusters"));

        /* B looked up first, on a fresh handle: A owns it all the same. */
        kvro *kv = NULL;
        kvro_error err;
        kvro_info st;
        assert_status(open_vol(&v, &kv, &err), KVRO_OK, &err);
        assert_status(kvro_stat(kv, "SUB/TOP/B", &st, &err), KVRO_E_CORRUPT, &err);
        t_want_detail(&err, "directory 'SUB/TOP/B' shares its clusters with 'SUB/TOP/A'");
        t_want_detail(&err, "cross-linked");
        assert_status(kvro_stat(kv, "SUB/TOP/B/A/LEAF", &st, &err), KVRO_E_CORRUPT, &err);
        assert_status(kvro_stat(kv, "SUB/TOP/A/B", &st, &err), KVRO_E_CORRUPT, &err);
        t_want_detail(&err, "'SUB/TOP/A/B' shares its clusters with 'SUB/TOP/A/A'");
        char *deep = calloc(1, 8 + 2 * LEVELS + 8);
        strcpy(deep, "SUB/TOP/");
        for (int i = 0; i < LEVELS; i++)
            strcat(deep, "A/");
        strcat(deep, "LEAF");
        assert_status(kvro_stat(kv, deep, &st, &err), KVRO_OK, &err);
        assert_int_equal(st.kind, KVRO_KIND_FILE);
        free(deep);
        kvro_close(kv);

        /* Whole walks, on fresh handles: kvro_each and a recursive
         * kvro_list, each well under a second (2^40 paths otherwise). */
        assert_status(open_vol(&v, &kv, &err), KVRO_OK, &err);
        seen w = {.n = 0};
        double t0 = now_s();
        assert_status(kvro_each(kv, on_each, &w, &err), KVRO_OK, &err);
        double each_s = now_s() - t0;
        /* The tree less the aliases: 4 + TOP + 40 A, 40 B, a LEAF. */
        assert_int_equal(w.n, 6 + 2 * LEVELS + 1);
        assert_int_equal(count(&w, "SUB/TOP/A", KVRO_OK), 1);
        assert_int_equal(count(&w, "SUB/TOP/B", KVRO_E_CORRUPT), 1);
        seen_free(&w);
        kvro_close(kv);
        assert_status(open_vol(&v, &kv, &err), KVRO_OK, &err);
        tree_walk t = {.kv = kv};
        t0 = now_s();
        list_tree(&t, "");
        double list_s = now_s() - t0;
        /* Every B is listed (its parent lists), none can be listed; the
         * last met is the shallowest. */
        assert_int_equal(t.visited, 6 + 2 * LEVELS + 1);
        assert_int_equal(t.failed, LEVELS);
        assert_non_null(strstr(t.detail, "'SUB/TOP/B' shares its clusters with 'SUB/TOP/A'"));
        kvro_close(kv);
        print_message("FAT%d, %d aliased levels: kvro_each %.3f s, kvro_list walk %.3f s\n", bits,
                      LEVELS, each_s, list_s);
        assert_true(each_s < 1.0 && list_s < 1.0);

        /* Aliases in two directories: the entry met first owns it. */
        uint32_t deepc = first_cluster(entry(&v, "DEEP       "));
        put_short(free_slot(&v, first_cluster(entry(&v, "TOP        "))), "OTHER      ", 0x10,
                  deepc, 0);
        assert_status(open_vol(&v, &kv, &err), KVRO_OK, &err);
        assert_status(kvro_stat(kv, "SUB/DEEP/F.TXT", &st, &err), KVRO_OK, &err);
        assert_status(kvro_stat(kv, "SUB/TOP/OTHER", &st, &err), KVRO_E_CORRUPT, &err);
        t_want_detail(&err, "'SUB/TOP/OTHER' shares its clusters with 'SUB/DEEP'");
        assert_status(kvro_stat(kv, "SUB/DEEP", &st, &err), KVRO_OK, &err);
        kvro_close(kv);
        free(v.b);
    }
}

/* A listing's status for NAME in DIR (kvro_list_info). */
static kvro_status listed_status(kvro *kv, const char *dir, const char *name)
{
    kvro_error err;
    seen w = {.n = 0};
    assert_status(kvro_list_info(kv, dir, 0, on_each, &w, &err), KVRO_OK, &err);
    kvro_status s = (kvro_status)-1;
    for (int i = 0; i < w.n; i++)
        if (!strcmp(w.key[i], name))
            s = w.s[i];
    seen_free(&w);
    return s;
}

/* Files naming a chain another entry names (cross-linked at the first
 * cluster, which the FAT alone cannot show): two files in one directory,
 * a file and a directory, two files in different directories. Each pair
 * has one owner that reads as stored, and the other entry is
 * KVRO_E_CORRUPT naming both, in stat, read and listings alike; which
 * owns it follows claim() in fat/fat.c (within a directory the first
 * stored, whatever is looked up first; between directories the first
 * met). fsck.fat calls each such pair damage. */
static void test_shared_file_chains(void **state)
{
    (void)state;
    for (int bits = 16; bits <= 32; bits += 16) {
        vol v = copy_of(bits);
        uint32_t sub = first_cluster(entry(&v, "SUB        "));
        uint32_t deep = first_cluster(entry(&v, "DEEP       "));
        uint32_t aaaa = first_cluster(entry(&v, "AAAA    BIN"));
        uint32_t c = alloc_cluster(&v);
        memcpy(cluster_at(&v, c), "one chain, two names\n", 21);
        put_short(free_slot(&v, sub), "X1      TXT", 0x20, c, 21);
        put_short(free_slot(&v, sub), "X2      TXT", 0x20, c, 21);
        put_short(free_slot(&v, sub), "Y       BIN", 0x20, deep, 32);
        put_short(free_slot(&v, sub), "Z       BIN", 0x20, aaaa, 5000);
        if (bits == 32)
            assert_true(fsck_says(&v, "shared.img", "share clusters"));

        kvro *kv = NULL;
        kvro_error err;
        kvro_info st;
        char buf[8192];
        int64_t n = -1;
        assert_status(open_vol(&v, &kv, &err), KVRO_OK, &err);
        /* X2 first, on a fresh handle: X1, stored first, owns the chain. */
        assert_status(kvro_stat(kv, "SUB/X2.TXT", &st, &err), KVRO_E_CORRUPT, &err);
        t_want_detail(&err, "file 'SUB/X2.TXT' shares its clusters with 'SUB/X1.TXT'");
        t_want_detail(&err, "cross-linked");
        assert_status(kvro_read(kv, "SUB/X2.TXT", 0, sizeof buf, buf, &n, &err), KVRO_E_CORRUPT,
                      &err);
        assert_status(kvro_read(kv, "SUB/X1.TXT", 0, sizeof buf, buf, &n, &err), KVRO_OK, &err);
        assert_int_equal(n, 21);
        assert_memory_equal(buf, "one chain, two names\n", 21);
        /* A file on a directory's chain: the directory, stored first, keeps
         * it and its contents. */
        assert_status(kvro_stat(kv, "SUB/Y.BIN", &st, &err), KVRO_E_CORRUPT, &err);
        t_want_detail(&err, "file 'SUB/Y.BIN' shares its clusters with 'SUB/DEEP'");
        assert_status(kvro_read(kv, "SUB/DEEP/F.TXT", 0, sizeof buf, buf, &n, &err), KVRO_OK,
                      &err);
        assert_int_equal(n, 10);
        /* Between directories, the first met: AAAA.BIN here. */
        assert_status(kvro_read(kv, "AAAA.BIN", 0, sizeof buf, buf, &n, &err), KVRO_OK, &err);
        assert_int_equal(n, 5000);
        assert_status(kvro_read(kv, "SUB/Z.BIN", 0, sizeof buf, buf, &n, &err), KVRO_E_CORRUPT,
                      &err);
        t_want_detail(&err, "file 'SUB/Z.BIN' shares its clusters with 'AAAA.BIN'");
        /* A listing says what stat says, entry by entry. */
        assert_int_equal(listed_status(kv, "SUB", "X1.TXT"), KVRO_OK);
        assert_int_equal(listed_status(kv, "SUB", "X2.TXT"), KVRO_E_CORRUPT);
        assert_int_equal(listed_status(kv, "SUB", "Y.BIN"), KVRO_E_CORRUPT);
        assert_int_equal(listed_status(kv, "SUB", "Z.BIN"), KVRO_E_CORRUPT);
        assert_int_equal(listed_status(kv, "SUB", "DEEP"), KVRO_OK);
        assert_int_equal(listed_status(kv, "", "BBBB.BIN"), KVRO_OK);
        kvro_close(kv);

        /* A listing first, on a fresh handle: the same owners. */
        assert_status(open_vol(&v, &kv, &err), KVRO_OK, &err);
        assert_int_equal(listed_status(kv, "SUB", "X2.TXT"), KVRO_E_CORRUPT);
        assert_int_equal(listed_status(kv, "SUB", "X1.TXT"), KVRO_OK);
        assert_status(kvro_stat(kv, "SUB/X1.TXT", &st, &err), KVRO_OK, &err);
        assert_status(kvro_stat(kv, "SUB/X2.TXT", &st, &err), KVRO_E_CORRUPT, &err);
        kvro_close(kv);
        free(v.b);
    }
}

/* A file on the chain of a directory above it: on FAT32 the root, which
 * no entry owns, or the directory holding it. Such a file is corrupt in
 * stat, read, listings and writes alike; a write would overwrite the
 * directory's entries. */
static void test_file_on_a_directory_above(void **state)
{
    (void)state;
    vol v = copy_of(32);
    uint32_t root = get(v.b + 44, 4), sub = first_cluster(entry(&v, "SUB        "));
    put_short(free_slot(&v, root), "ONROOT  TXT", 0x20, root, 64);
    put_short(free_slot(&v, sub), "ONSUB   TXT", 0x20, sub, 64);
    static const char *const keys[] = {"ONROOT.TXT", "SUB/ONSUB.TXT"};
    for (size_t i = 0; i < 2; i++) {
        kvro_io *io = NULL;
        kvro_fs *fs = NULL;
        kvro_error err;
        assert_status(kvro_io_from_memory_rw(v.b, v.len, &io, &err), KVRO_OK, &err);
        assert_status(kvro_fs_open_io(io, KVRO_FS_RDWR, NULL, &fs, &err), KVRO_OK, &err);
        kvro_info st;
        assert_status(kvro_fs_stat(fs, keys[i], &st, &err), KVRO_E_CORRUPT, &err);
        t_want_detail(&err, "shares its clusters with a directory above it");
        assert_status(kvro_fs_write(fs, keys[i], 0, "overwritten", 11, &err), KVRO_E_CORRUPT,
                      &err);
        char buf[64];
        int64_t n = -1;
        assert_status(kvro_fs_read(fs, keys[i], 0, sizeof buf, buf, &n, &err), KVRO_E_CORRUPT,
                      &err);
        /* The directories are as they were: every other entry still there. */
        assert_status(kvro_fs_read(fs, "AAAA.BIN", 0, sizeof buf, buf, &n, &err), KVRO_OK, &err);
        assert_status(kvro_fs_read(fs, "SUB/DEEP/F.TXT", 0, sizeof buf, buf, &n, &err), KVRO_OK,
                      &err);
        assert_int_equal(n, 10);
        assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
        kvro *kv = NULL;
        assert_status(kvro_open_io(io, NULL, &kv, &err), KVRO_OK, &err);
        assert_int_equal(listed_status(kv, i ? "SUB" : "", i ? "ONSUB.TXT" : "ONROOT.TXT"),
                         KVRO_E_CORRUPT);
        kvro_close(kv);
        kvro_io_close(io);
    }
    free(v.b);
}

static int setup(void **state)
{
    (void)state;
    work = t_tempdir("fat-corrupt");
    make_images();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    t_rmrf(work);
    free(work);
    free(img16);
    free(img32);
    return 0;
}

int main(void)
{
    if (!t_have("mkfs.fat") || !t_have("mcopy")) {
        fprintf(stderr, "test_fat_corrupt: mkfs.fat and mcopy are needed\n");
        return getenv("CI") ? 1 : 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bpb_fields),
        cmocka_unit_test(test_chains),
        cmocka_unit_test(test_directories),
        cmocka_unit_test(test_scribbles),
        cmocka_unit_test(test_duplicate_names),
        cmocka_unit_test(test_aliased_directories),
        cmocka_unit_test(test_shared_file_chains),
        cmocka_unit_test(test_file_on_a_directory_above),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
