/*
 * test_tar_sparse.c — GNU sparse members (issue #7, "Sparse members: read
 * them, at random"): the four encodings (old GNU 'S' with extension
 * blocks, pax 0.0, 0.1 and 1.0) made by hand block by block, and the same
 * made by GNU tar and compared with what `tar -xSOf` extracts; logical
 * size, holes as zeros, reads at any offset, one read of the archive per
 * data region touched; damaged maps refused as KVRO_E_CORRUPT naming the
 * member; .tar.gz with the maps in the saved index; kvro_map and
 * kvro_file_extent refusing sparse values.
 */
#include "tar_test.h"

#include <fcntl.h>
#include <malloc.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

/* ---------------------------------------------------------- the model */

typedef struct region {
    int64_t off, len;
} region;

typedef enum enc { OLD_GNU, PAX_00, PAX_01, PAX_10, ENC_COUNT } enc;
static const char *const enc_name[] = {"old GNU", "pax 0.0", "pax 0.1", "pax 1.0"};

/* The logical byte at X of a file whose data regions are R[N]: never zero
 * inside a region, so a hole read as data (or the reverse) shows. */
static unsigned char byte_at(const region *r, size_t n, int64_t x)
{
    for (size_t i = 0; i < n; i++)
        if (x >= r[i].off && x < r[i].off + r[i].len)
            return (unsigned char)('a' + x % 23);
    return 0;
}

/* The logical bytes [OFF, OFF + LEN) into BUF, region by region. */
static void expect_range(const region *r, size_t n, int64_t off, int64_t len, unsigned char *buf)
{
    memset(buf, 0, (size_t)len);
    for (size_t i = 0; i < n; i++) {
        int64_t a = r[i].off > off ? r[i].off : off;
        int64_t b = r[i].off + r[i].len < off + len ? r[i].off + r[i].len : off + len;
        for (int64_t x = a; x < b; x++)
            buf[x - off] = (unsigned char)('a' + x % 23);
    }
}

static int64_t stored_of(const region *r, size_t n)
{
    int64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += r[i].len;
    return s;
}

static void add_stored(tarbuf *t, const region *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (int64_t x = r[i].off; x < r[i].off + r[i].len; x++) {
            unsigned char c = byte_at(r, n, x);
            tb_add(t, &c, 1);
        }
    tb_pad(t);
}

static void put_octal(unsigned char *f, int64_t v)
{
    char s[13];
    snprintf(s, sizeof s, "%011llo", (unsigned long long)v);
    memcpy(f, s, 12);
}

static char *cat_free(char *a, char *b)
{
    char *s = t_fmt("%s%s", a, b);
    free(a);
    free(b);
    return s;
}

/* A sparse member NAME of logical SIZE with data regions R[N], as E spells
 * it. */
static void add_sparse(tarbuf *t, enc e, const char *name, const region *r, size_t n, int64_t size)
{
    int64_t stored = stored_of(r, n);
    char *recs = strdup("");
    char *fake = t_fmt("GNUSparseFile.0/%s", name);
    if (e == OLD_GNU) {
        unsigned char h[512];
        tb_raw_header(h, name, 'S', stored, NULL);
        memcpy(h + 257, "ustar  \0", 8);
        for (size_t i = 0; i < n && i < 4; i++) {
            put_octal(h + 386 + 24 * i, r[i].off);
            put_octal(h + 386 + 24 * i + 12, r[i].len);
        }
        put_octal(h + 483, size);
        h[482] = n > 4;
        tb_fix_sum(h);
        tb_add(t, h, 512);
        for (size_t i = 4; i < n; i += 21) {
            unsigned char x[512] = {0};
            for (size_t k = 0; k < 21 && i + k < n; k++) {
                put_octal(x + 24 * k, r[i + k].off);
                put_octal(x + 24 * k + 12, r[i + k].len);
            }
            x[504] = i + 21 < n;
            tb_add(t, x, 512);
        }
        add_stored(t, r, n);
    } else if (e == PAX_00 || e == PAX_01) {
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)size);
        recs = cat_free(recs, tb_pax_rec("GNU.sparse.size", num));
        snprintf(num, sizeof num, "%zu", n);
        recs = cat_free(recs, tb_pax_rec("GNU.sparse.numblocks", num));
        recs = cat_free(recs, tb_pax_rec("path", name));
        char *map = strdup("");
        for (size_t i = 0; i < n; i++) {
            char *o = t_fmt("%lld", (long long)r[i].off), *l = t_fmt("%lld", (long long)r[i].len);
            if (e == PAX_00) {
                recs = cat_free(recs, tb_pax_rec("GNU.sparse.offset", o));
                recs = cat_free(recs, tb_pax_rec("GNU.sparse.numbytes", l));
            }
            map = cat_free(map, t_fmt("%s%s,%s", i ? "," : "", o, l));
            free(o);
            free(l);
        }
        if (e == PAX_01)
            recs = cat_free(recs, tb_pax_rec("GNU.sparse.map", map));
        free(map);
        tb_ext(t, 'x', recs, strlen(recs));
        tb_header(t, fake, '0', stored, NULL);
        add_stored(t, r, n);
    } else {
        char *map = t_fmt("%zu\n", n);
        for (size_t i = 0; i < n; i++)
            map = cat_free(map, t_fmt("%lld\n%lld\n", (long long)r[i].off, (long long)r[i].len));
        size_t mlen = (strlen(map) + 511) / 512 * 512;
        recs = cat_free(recs, tb_pax_rec("GNU.sparse.major", "1"));
        recs = cat_free(recs, tb_pax_rec("GNU.sparse.minor", "0"));
        recs = cat_free(recs, tb_pax_rec("GNU.sparse.name", name));
        char num[32];
        snprintf(num, sizeof num, "%lld", (long long)size);
        recs = cat_free(recs, tb_pax_rec("GNU.sparse.realsize", num));
        tb_ext(t, 'x', recs, strlen(recs));
        tb_header(t, fake, '0', (int64_t)mlen + stored, NULL);
        tb_add(t, map, strlen(map));
        tb_pad(t);
        add_stored(t, r, n);
        free(map);
    }
    free(recs);
    free(fake);
}

/* Every byte of KEY, read whole and at scattered offsets and lengths,
 * against the model. */
static void want_sparse(kvro *kv, const char *key, const region *r, size_t n, int64_t size)
{
    kvro_info st;
    kvro_error e;
    assert_int_equal(kvro_stat(kv, key, &st, &e), KVRO_OK);
    assert_int_equal(st.kind, KVRO_KIND_FILE);
    assert_int_equal(st.size, size);
    if (size <= (1 << 22)) {
        int64_t got;
        char *v = read_all(kv, key, &got);
        unsigned char *want = malloc((size_t)size + 1);
        expect_range(r, n, 0, size, want);
        assert_memory_equal(v, want, (size_t)size);
        free(want);
        free(v);
    }
    uint64_t seed = 12345;
    unsigned char buf[9000], exp[9000];
    for (int k = 0; k < 300; k++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int64_t off = (int64_t)((seed >> 11) % (uint64_t)(size + 100));
        if (k % 3 == 0 && n) /* near a region's edge */
            off = r[(seed >> 7) % n].off + (int64_t)((seed >> 20) % 7) - 3;
        if (off < 0)
            off = 0;
        int64_t len = (int64_t)((seed >> 33) % sizeof buf), got;
        assert_int_equal(kvro_read(kv, key, off, len, buf, &got, &e), KVRO_OK);
        int64_t want = off >= size ? 0 : len < size - off ? len : size - off;
        assert_int_equal(got, want);
        expect_range(r, n, off, got, exp);
        assert_memory_equal(buf, exp, (size_t)got);
    }
}

/* Thirty regions of uneven sizes (old GNU needs two extension blocks),
 * one at 0 and one ending exactly at the logical end. */
static size_t many_regions(region *r)
{
    size_t n = 0;
    for (int i = 0; i < 29; i++)
        r[n++] = (region){(int64_t)i * 4096 + (i * 37) % 1000, 100 + i * 31};
    r[0].off = 0;
    r[n++] = (region){200000, 777};
    return n;
}

/* ------------------------------------------------------- the encodings */

static void test_each_encoding(void **state)
{
    (void)state;
    region few[] = {{10, 5}, {100, 1}, {4000, 700}};
    region many[40];
    size_t nmany = many_regions(many);
    region none[1] = {{0, 0}};
    for (enc e = 0; e < ENC_COUNT; e++) {
        tarbuf t = {0};
        tb_file(&t, "before", "plain before");
        add_sparse(&t, e, "few", few, 3, 5000);
        add_sparse(&t, e, "dir/many", many, nmany, 200777);
        add_sparse(&t, e, "holes", none, 0, 3000); /* no data at all */
        add_sparse(&t, e, "empty", none, 0, 0);    /* nothing */
        add_sparse(&t, e, "tail", few, 3, 4700);   /* ends with data */
        tb_header(&t, "link", '1', 0, "few");      /* a hard link to one */
        tb_file(&t, "after", "plain after");
        tb_end(&t);
        char *name = t_fmt("enc%d.tar", (int)e);
        char *p = tb_save(&t, name);
        fprintf(stderr, "# %s\n", enc_name[e]);
        kvro *kv = open_ok(p, true);
        want_names(kv, "", "after before dir empty few holes link tail");
        want_sparse(kv, "few", few, 3, 5000);
        want_sparse(kv, "link", few, 3, 5000);
        want_sparse(kv, "dir/many", many, nmany, 200777);
        want_sparse(kv, "holes", none, 0, 3000);
        want_sparse(kv, "empty", none, 0, 0);
        want_sparse(kv, "tail", few, 3, 4700);
        want_value(kv, "before", "plain before");
        want_value(kv, "after", "plain after");
        kvro_close(kv);
        free(p);
        free(name);
    }
}

/* GNU tar ends every map with an empty region at the logical end, and
 * Python reads unused old GNU entries as (0, 0): both are no data. GNU
 * tar's 1.0 map may carry '#' comment lines (libarchive skips them). */
static void test_empty_regions_and_comments(void **state)
{
    (void)state;
    region r[] = {{0, 3}, {50, 0}, {60, 2}, {100, 0}};
    region data[] = {{0, 3}, {60, 2}};
    tarbuf t = {0};
    for (enc e = 0; e < ENC_COUNT; e++) {
        char *name = t_fmt("e%d", (int)e);
        add_sparse(&t, e, name, r, 4, 100);
        free(name);
    }
    char *recs = tb_pax_rec("GNU.sparse.major", "1");
    recs = cat_free(recs, tb_pax_rec("GNU.sparse.minor", "0"));
    recs = cat_free(recs, tb_pax_rec("GNU.sparse.name", "commented"));
    recs = cat_free(recs, tb_pax_rec("GNU.sparse.realsize", "100"));
    tb_ext(&t, 'x', recs, strlen(recs));
    free(recs);
    const char *map = "#!gnu-sparse-format\n#format:1.0\n2\n0\n3\n#a comment\n60\n2\n";
    tb_header(&t, "GNUSparseFile.0/commented", '0', 512 + 5, NULL);
    tb_add(&t, map, strlen(map));
    tb_pad(&t);
    add_stored(&t, data, 2);
    tb_end(&t);
    char *p = tb_save(&t, "empty-regions.tar");
    kvro *kv = open_ok(p, true);
    for (int e = 0; e < ENC_COUNT; e++) {
        char *name = t_fmt("e%d", e);
        want_sparse(kv, name, data, 2, 100);
        free(name);
    }
    want_sparse(kv, "commented", data, 2, 100);
    kvro_close(kv);
    free(p);
}

/* ------------------------------------------------ one read per region */

typedef struct counted {
    const unsigned char *p;
    size_t n;
    int reads;
} counted;

static int counted_read(void *ctx, int64_t off, void *buf, size_t n, size_t *got)
{
    counted *c = ctx;
    c->reads++;
    size_t k = off >= (int64_t)c->n ? 0 : c->n - (size_t)off < n ? c->n - (size_t)off : n;
    memcpy(buf, c->p + off, k);
    *got = k;
    return 0;
}

static int counted_size(void *ctx, int64_t *size)
{
    *size = (int64_t)((counted *)ctx)->n;
    return 0;
}

/* A 60 GiB logical file with 1 MiB of data in 64 regions: it opens, its
 * map costs memory for its regions only, a read inside a hole reads
 * nothing from the archive, and a read across three regions reads the
 * archive three times. */
static void test_huge_and_reads_per_region(void **state)
{
    (void)state;
    const int64_t size = INT64_C(60) << 30, step = size / 64;
    region r[64];
    for (int i = 0; i < 64; i++)
        r[i] = (region){i * step + (i == 63 ? step - 16384 : 0), 16384};
    tarbuf t = {0};
    add_sparse(&t, PAX_01, "huge", r, 64, size);
    tb_end(&t);
    counted c = {t.p, t.n, 0};
    kvro_io_callbacks cb = {.read = counted_read, .size = counted_size};
    kvro_io *io = NULL;
    assert_int_equal(kvro_io_from_callbacks(&cb, &c, "counted", KVRO_IO_RDONLY, &io, NULL),
                     KVRO_OK);
    /* What opening a one-member plain archive costs, for comparison. */
    tarbuf plain = {0};
    tb_file(&plain, "huge", "x");
    tb_end(&plain);
    kvro_io *pio = t_mem_io(plain.p, plain.n);
    kvro *kv = NULL;
    kvro_error e;
    struct mallinfo2 before = mallinfo2();
    assert_int_equal(kvro_open_io(pio, NULL, &kv, &e), KVRO_OK);
    struct mallinfo2 after = mallinfo2();
    size_t base = after.uordblks - before.uordblks;
    kvro_close(kv);
    kvro_io_close(pio);
    free(plain.p);
    before = mallinfo2();
    assert_int_equal(kvro_open_io(io, NULL, &kv, &e), KVRO_OK);
    after = mallinfo2();
    /* A plain open's fixed tables plus 64 regions, a few KiB, nothing like
     * 60 GiB (under ASan mallinfo2 says 0 and this proves nothing,
     * harmlessly). */
    size_t used = after.uordblks - before.uordblks;
    fprintf(stderr,
            "# open: %zu bytes of heap for a 60 GiB value of 64 regions, %zu for one "
            "plain member\n",
            used, base);
    assert_true(used < base + 8192);
    kvro_io_close(io);
    want_sparse(kv, "huge", r, 64, size);

    unsigned char *buf = malloc(100000);
    int64_t got;
    c.reads = 0;
    assert_int_equal(kvro_read(kv, "huge", 20000, 100000, buf, &got, &e), KVRO_OK);
    assert_int_equal(got, 100000);
    assert_int_equal(c.reads, 0); /* all hole */
    free(buf);
    /* Across regions 10, 11 and 12 with the holes between: three reads. */
    size_t span = (size_t)(r[12].off + 5 - (r[10].off + 5));
    buf = malloc(span);
    c.reads = 0;
    assert_int_equal(kvro_read(kv, "huge", r[10].off + 5, (int64_t)span, buf, &got, &e), KVRO_OK);
    assert_int_equal(got, (int64_t)span);
    assert_int_equal(c.reads, 3);
    for (size_t i = 0; i < span; i += 4093)
        assert_int_equal(buf[i], byte_at(r, 64, r[10].off + 5 + (int64_t)i));
    free(buf);
    /* The last bytes, at 60 GiB. */
    unsigned char tail[32];
    assert_int_equal(kvro_read(kv, "huge", size - 16, 32, tail, &got, &e), KVRO_OK);
    assert_int_equal(got, 16);
    for (int i = 0; i < 16; i++)
        assert_int_equal(tail[i], byte_at(r, 64, size - 16 + i));
    kvro_close(kv);
    free(t.p);
}

/* ------------------------------------------------------ damaged maps */

static void corrupt_case(const char *file, tarbuf *t, const char *needle)
{
    tb_file(t, "after", "x");
    tb_end(t);
    char *p = tb_save(t, file);
    open_fails(p, KVRO_E_CORRUPT, needle);
    free(p);
}

static void test_bad_maps(void **state)
{
    (void)state;
    static const struct {
        region r[3];
        size_t n;
        int64_t size;
        const char *why;
    } bad[] = {
        {{{100, 10}, {50, 10}}, 2, 1000, "out of order"},
        {{{0, 60}, {50, 10}}, 2, 1000, "overlapping"},
        {{{0, 10}, {995, 10}}, 2, 1000, "past the logical size"},
        {{{2000, 1}}, 1, 1000, "past the logical size"},
    };
    for (enc e = 0; e < ENC_COUNT; e++)
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            tarbuf t = {0};
            add_sparse(&t, e, "victim", bad[i].r, bad[i].n, bad[i].size);
            char *f = t_fmt("bad-%d-%zu.tar", (int)e, i);
            corrupt_case(f, &t, bad[i].why);
            free(f);
        }
    /* A map whose total is not the data stored: more, then less. */
    region r[] = {{0, 10}, {20, 10}};
    for (enc e = 0; e < ENC_COUNT; e++)
        for (int more = 0; more < 2; more++) {
            tarbuf t = {0};
            add_sparse(&t, e, "victim", r, 2, 100);
            /* Rewrite the stored size in the member's header: the data
             * block is padded, so a size one off still fits the archive. */
            size_t hdr = e == OLD_GNU ? 0 : t.n - (e == PAX_10 ? 1536 : 1024);
            int64_t sz = (e == PAX_10 ? 512 : 0) + 20 + (more ? 1 : -1);
            put_octal(t.p + hdr + 124, sz);
            tb_fix_sum(t.p + hdr);
            char *f = t_fmt("sum-%d-%d.tar", (int)e, more);
            corrupt_case(f, &t, more ? "the member stores 21" : "more data than the member");
            free(f);
        }
}

static void pax_member(tarbuf *t, const char *recs, const char *data, int64_t size)
{
    tb_ext(t, 'x', recs, strlen(recs));
    tb_header(t, "GNUSparseFile.0/victim", '0', size, NULL);
    tb_add(t, data, strlen(data));
    tb_pad(t);
}

/* Pax records that spell no usable map, and 1.0 maps that are not one. */
static void test_bad_pax_maps(void **state)
{
    (void)state;
    static const struct {
        const char *recs[4][2];
        const char *data;
        int64_t size;
        const char *why;
    } bad[] = {
        {{{"GNU.sparse.size", "10"}, {"GNU.sparse.offset", "0"}}, "", 0, "without its numbytes"},
        {{{"GNU.sparse.size", "10"}, {"GNU.sparse.numbytes", "3"}}, "", 0, "GNU.sparse.numbytes"},
        {{{"GNU.sparse.size", "10"}, {"GNU.sparse.map", "0,3,7"}}, "abc", 3, "GNU.sparse.map"},
        {{{"GNU.sparse.size", "10"}, {"GNU.sparse.map", "0,x"}}, "", 0, "GNU.sparse.map"},
        {{{"GNU.sparse.size", "-1"}}, "", 0, "GNU.sparse.size"},
        {{{"GNU.sparse.map", "0,3"}}, "abc", 3, "no GNU.sparse.size"},
        {{{"GNU.sparse.numblocks", "1"}}, "", 0, "no sparse map"},
        {{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}, {"GNU.sparse.realsize", "9"}},
         "1\n0\nx\n",
         512,
         "bad text"},
        {{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}, {"GNU.sparse.realsize", "9"}},
         NULL,
         512,
         "runs past its data"}, /* a full block of map, then no more data */
        {{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}, {"GNU.sparse.realsize", "9"}},
         "9999\n",
         512,
         "more regions than"},
        {{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}}, "0\n", 512, "no GNU.sparse.size"},
        {{{"GNU.sparse.major", "1"}, {"GNU.sparse.minor", "0"}, {"GNU.sparse.realsize", "9"}},
         "1\n0\n99999999999999999999\n",
         512,
         "too large"},
    };
    char full[513] = "100\n"; /* 169 of the 200 numbers, and a digit at the block's end */
    for (size_t k = 4; k < 511; k += 3)
        memcpy(full + k, "11\n", 3);
    full[511] = '1';
    full[512] = '\0';
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *recs = strdup("");
        for (int k = 0; k < 4 && bad[i].recs[k][0]; k++)
            recs = cat_free(recs, tb_pax_rec(bad[i].recs[k][0], bad[i].recs[k][1]));
        tarbuf t = {0};
        pax_member(&t, recs, bad[i].data ? bad[i].data : full, bad[i].size);
        char *f = t_fmt("badpax-%zu.tar", i);
        fprintf(stderr, "# case %zu\n", i);
        corrupt_case(f, &t, bad[i].why);
        free(f);
        free(recs);
    }
    /* A version kvro does not know is refused as such, not misread. */
    char *recs = cat_free(tb_pax_rec("GNU.sparse.major", "2"), tb_pax_rec("GNU.sparse.minor", "0"));
    tarbuf t = {0};
    pax_member(&t, recs, "data", 4);
    tb_end(&t);
    char *p = tb_save(&t, "v2.tar");
    open_fails(p, KVRO_E_UNSUPPORTED, "2.0");
    free(p);
    free(recs);
    /* An old GNU map entry that is not a number. */
    region r[] = {{0, 3}};
    tb_file(&t, "x", "y");
    add_sparse(&t, OLD_GNU, "victim", r, 1, 10);
    memcpy(t.p + 1024 + 386, "zz", 2);
    tb_fix_sum(t.p + 1024);
    corrupt_case("oldbad.tar", &t, "bad number");
    /* A pax map in a global header describes no member: ignored. */
    recs = tb_pax_rec("GNU.sparse.map", "0,1");
    tb_ext(&t, 'g', recs, strlen(recs));
    free(recs);
    tb_file(&t, "plain", "abc");
    tb_end(&t);
    p = tb_save(&t, "global.tar");
    kvro *kv = open_ok(p, true);
    want_value(kv, "plain", "abc");
    kvro_close(kv);
    free(p);
}

/* ------------------------------------------------ zero copy refuses */

static void test_map_and_extent_refuse(void **state)
{
    (void)state;
    region r[] = {{0, 4}, {100, 4}};
    tarbuf t = {0};
    add_sparse(&t, PAX_01, "sp", r, 2, 200);
    tb_file(&t, "plain", "contiguous");
    tb_end(&t);
    kvro_io *io = t_mem_io(t.p, t.n);
    kvro *kv = NULL;
    assert_int_equal(kvro_open_io(io, NULL, &kv, NULL), KVRO_OK);
    const void *data;
    int64_t size;
    kvro_error e;
    assert_int_equal(kvro_map(kv, "sp", &data, &size, &e), KVRO_E_UNSUPPORTED);
    t_want_detail(&e, "sparse");
    assert_int_equal(kvro_map(kv, "plain", &data, &size, &e), KVRO_OK);
    assert_int_equal(size, 10);
    kvro_close(kv);
    kvro_io_close(io);
    char *p = tb_save(&t, "extent.tar");
    kv = open_ok(p, true);
    kvro_extent x;
    assert_int_equal(kvro_file_extent(kv, "sp", &x, &e), KVRO_E_UNSUPPORTED);
    t_want_detail(&e, "sparse");
    assert_int_equal(kvro_file_extent(kv, "plain", &x, &e), KVRO_OK);
    kvro_close(kv);
    free(p);
}

/* --------------------------------------------- .tar.gz and its index */

static void test_targz_index_keeps_maps(void **state)
{
    (void)state;
    region few[] = {{10, 5}, {100, 1}, {4000, 700}};
    region many[40];
    size_t nmany = many_regions(many);
    tarbuf t = {0};
    for (enc e = 0; e < ENC_COUNT; e++) {
        char *a = t_fmt("few%d", (int)e), *b = t_fmt("many%d", (int)e);
        add_sparse(&t, e, a, few, 3, 5000);
        add_sparse(&t, e, b, many, nmany, 300000);
        free(a);
        free(b);
    }
    tb_file(&t, "plain", "abc");
    tb_end(&t);
    char *p = tb_save(&t, "sp.tar");
    char *cmd = t_fmt("gzip -kn '%s'", p);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    char *gz = t_fmt("%s.gz", p), *idx = t_join(tb_dir, "sp.idx");
    kvro_options o = {.index_path = idx};
    for (int pass = 0; pass < 2; pass++) {
        kvro *kv = NULL;
        kvro_error e;
        assert_int_equal(kvro_open_opts(gz, &o, &kv, &e), KVRO_OK);
        kvro_stats st = stats_of(kv);
        assert_true(pass == 0 ? st.index_saved : st.index_loaded);
        if (pass == 1)
            assert_int_equal(st.inflated_at_open, 0);
        for (enc k = 0; k < ENC_COUNT; k++) {
            char *a = t_fmt("few%d", (int)k), *b = t_fmt("many%d", (int)k);
            want_sparse(kv, a, few, 3, 5000);
            want_sparse(kv, b, many, nmany, 300000);
            free(a);
            free(b);
        }
        want_value(kv, "plain", "abc");
        kvro_close(kv);
    }
    /* An index of the format before sparse maps (version 2) is stale and
     * rebuilt, then saved anew. */
    size_t n;
    unsigned char *b = (unsigned char *)t_slurp(idx, &n);
    b[8] = 2;
    t_write(idx, b, n);
    free(b);
    kvro *kv = NULL;
    assert_int_equal(kvro_open_opts(gz, &o, &kv, NULL), KVRO_OK);
    kvro_stats st = stats_of(kv);
    assert_false(st.index_loaded);
    assert_non_null(strstr(st.index_note, "stale: other format version"));
    want_sparse(kv, "many2", many, nmany, 300000);
    kvro_close(kv);
    /* A map damaged in the saved index (its CRC fixed) is refused and the
     * index rebuilt: region 0 of the first map made to overlap region 1. */
    b = (unsigned char *)t_slurp(idx, &n);
    uint32_t np = b[48] | b[49] << 8, nn = b[52] | b[53] << 8;
    size_t regions = 348 + (size_t)np * 37 + (size_t)nn * 44 + (size_t)(b[336] | b[337] << 8) * 24;
    b[regions + 8] = 0xff; /* region 0's length */
    b[regions + 9] = 0xff;
    uint64_t arena = 0;
    for (int i = 0; i < 8; i++)
        arena |= (uint64_t)b[56 + i] << (8 * i);
    uint64_t nreg = 0;
    for (int i = 0; i < 8; i++)
        nreg |= (uint64_t)b[340 + i] << (8 * i);
    size_t end = regions + (size_t)nreg * 24 + (size_t)arena + 4;
    uLong c = crc32(0, b, (uInt)(end - 4));
    for (int i = 0; i < 4; i++)
        b[end - 4 + (size_t)i] = (unsigned char)(c >> (8 * i));
    t_write(idx, b, n);
    free(b);
    assert_int_equal(kvro_open_opts(gz, &o, &kv, NULL), KVRO_OK);
    st = stats_of(kv);
    assert_false(st.index_loaded);
    assert_non_null(strstr(st.index_note, "bad member record"));
    want_sparse(kv, "few0", few, 3, 5000);
    kvro_close(kv);
    free(gz);
    free(idx);
    free(p);
}

/* ------------------------------------------------ made by GNU tar */

/* A sparse file of 64 regions in 3 MiB, archived by GNU tar in each format
 * it writes, then compared byte for byte with what GNU tar extracts, whole
 * and at random, plain and gzip'd. */
typedef struct region_list {
    kvro_region v[256];
    size_t n;
} region_list;

static int add_region(void *arg, const kvro_region *r)
{
    region_list *l = arg;
    assert_true(l->n < 256);
    l->v[l->n++] = *r;
    return 0;
}

/* kvro_regions of KEY against its bytes EXPECT[N]: ordered, non-empty,
 * zeros between them, and (IMAGE given: a plain tar's file bytes) each
 * region's bytes exactly where image_offset says; -1 for a compressed one. */
static void check_regions(kvro *kv, const char *key, const char *expect, size_t n,
                          const char *image, size_t image_len, bool gz)
{
    region_list l = {.n = 0};
    kvro_error e;
    assert_int_equal(kvro_regions(kv, key, add_region, &l, &e), KVRO_OK);
    assert_true(l.n > 1); /* a sparse file: more than one region */
    int64_t at = 0;
    for (size_t i = 0; i < l.n; i++) {
        const kvro_region *r = &l.v[i];
        assert_true(r->length > 0 && r->offset >= at && r->offset + r->length <= (int64_t)n);
        for (int64_t k = at; k < r->offset; k++)
            assert_int_equal(expect[k], 0);
        if (gz) {
            assert_int_equal(r->image_offset, -1);
        } else {
            assert_true(r->image_offset >= 0 &&
                        r->image_offset + r->length <= (int64_t)image_len);
            assert_memory_equal(image + r->image_offset, expect + r->offset, (size_t)r->length);
        }
        at = r->offset + r->length;
    }
    for (size_t k = (size_t)at; k < n; k++)
        assert_int_equal(expect[k], 0);
}

static void test_gnu_tar_made(void **state)
{
    (void)state;
    if (!t_have("tar") || !t_have("gzip")) {
        fprintf(stderr, "# skipped: no tar or gzip\n");
        skip();
    }
    char *dir = t_join(tb_dir, "gnu");
    t_mkdirs(dir);
    char *src = t_join(dir, "vm.img");
    int fd = open(src, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    assert_true(fd >= 0);
    for (int i = 0; i < 64; i++) {
        char blk[5000];
        for (size_t k = 0; k < sizeof blk; k++)
            blk[k] = (char)('A' + (i + (int)k) % 50);
        assert_int_equal(pwrite(fd, blk, 1000 + (size_t)i * 61, (off_t)i * 49152 + i * 7),
                         1000 + i * 61);
    }
    assert_int_equal(ftruncate(fd, 3 << 20), 0);
    close(fd);
    static const char *const formats[] = {
        "-S --format=gnu",
        "--format=posix --sparse-version=0.0",
        "--format=posix --sparse-version=0.1",
        "--format=posix --sparse-version=1.0",
    };
    for (size_t f = 0; f < 4; f++) {
        char *tar = t_fmt("%s/f%zu.tar", dir, f), *want = t_fmt("%s/f%zu.out", dir, f);
        char *cmd = t_fmt("cd '%s' && tar %s -cf '%s' vm.img && tar -xSOf '%s' vm.img > '%s' && "
                          "gzip -kn '%s'",
                          dir, formats[f], tar, tar, want, tar);
        if (t_run(cmd, NULL, NULL) != 0) {
            fprintf(stderr, "# this GNU tar cannot: %s\n", formats[f]);
            free(cmd);
            free(tar);
            free(want);
            continue;
        }
        free(cmd);
        size_t n;
        char *expect = t_slurp(want, &n);
        assert_int_equal(n, 3 << 20);
        char *gz = t_fmt("%s.gz", tar);
        for (int z = 0; z < 2; z++) {
            kvro *kv = open_ok(z ? gz : tar, false);
            int64_t got;
            char *v = read_all(kv, "vm.img", &got);
            assert_int_equal(got, (int64_t)n);
            assert_memory_equal(v, expect, n);
            free(v);
            size_t image_len;
            char *image = t_slurp(tar, &image_len);
            check_regions(kv, "vm.img", expect, n, image, image_len, z == 1);
            free(image);
            uint64_t seed = f * 2 + (uint64_t)z + 1;
            char buf[70000];
            for (int k = 0; k < 200; k++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                int64_t off = (int64_t)((seed >> 13) % n), len = (int64_t)((seed >> 40) % 70000);
                assert_int_equal(kvro_read(kv, "vm.img", off, len, buf, &got, NULL), KVRO_OK);
                assert_int_equal(got, off + len <= (int64_t)n ? len : (int64_t)n - off);
                assert_memory_equal(buf, expect + off, (size_t)got);
            }
            kvro_close(kv);
        }
        /* mkkv verify against what GNU tar extracts (holes and all). */
        char *x = t_fmt("%s/x%zu", dir, f);
        cmd = t_fmt("mkdir -p '%s' && tar -xSf '%s' -C '%s' && '%s' verify '%s' '%s' && "
                    "'%s' verify '%s' '%s'",
                    x, tar, x, KVRO_TEST_MKKV, tar, x, KVRO_TEST_MKKV, gz, x);
        char *out = NULL, *errs = NULL;
        int rc = t_run(cmd, &out, &errs);
        if (rc != 0)
            fprintf(stderr, "%s\n%s%s", cmd, out ? out : "", errs ? errs : "");
        assert_int_equal(rc, 0);
        free(out);
        free(errs);
        free(cmd);
        free(x);
        free(expect);
        free(gz);
        free(tar);
        free(want);
    }
    free(src);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_each_encoding),
        cmocka_unit_test(test_empty_regions_and_comments),
        cmocka_unit_test(test_huge_and_reads_per_region),
        cmocka_unit_test(test_bad_maps),
        cmocka_unit_test(test_bad_pax_maps),
        cmocka_unit_test(test_map_and_extent_refuse),
        cmocka_unit_test(test_targz_index_keeps_maps),
        cmocka_unit_test(test_gnu_tar_made),
    };
    int rc = tb_setup(NULL);
    rc |= cmocka_run_group_tests(tests, NULL, NULL);
    tb_teardown(NULL);
    return rc;
}
