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
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
