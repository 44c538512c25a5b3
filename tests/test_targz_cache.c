/*
 * test_targz_cache.c — the .tar.gz read cache (tar/tar_gz_read.c): every
 * byte right under any access pattern and any budget, reading every member
 * in name or random order inflates the archive about once, round-robin
 * streams keep their cursors, the budget holds, and many threads reading
 * at once (sequential streams and random reads) get every byte right.
 *
 * The archive is made by GNU tar and gzip from files whose bytes are a
 * function of (member, offset), and python3's tarfile says where each
 * member's data lies in the uncompressed stream: the unit tests drive
 * tar_gz directly at those offsets and read its usage counters (the
 * documented hook kvro__tar_gz_usage); the threaded test goes through the
 * public API. Access points are made every 256 KiB (as in a large archive)
 * so that a read can start at many places.
 */
#include "support.h"

#include "kvro/kvro.h"
#include "tar/tar_gz.h"

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define NBIG 16
#define BIG_SIZE (512 << 10)
#define NSMALL 400
#define NMEM (NBIG + NSMALL)
#define SPACING (256 << 10)
#define PIECE 16384

typedef struct member {
    char name[64];
    uint32_t id;  /* what its bytes are made from */
    int64_t off;  /* where its data lies in the uncompressed stream */
    int64_t size;
} member;

static char *dir, *gz_path;
static member mem[NMEM];
static size_t nmem;
static int64_t usize; /* the uncompressed tar's size */

/* Byte I of member ID: about 4 bits of entropy a byte, so gzip halves it
 * and inflating is real work. */
static unsigned char gen(uint32_t id, uint64_t i)
{
    uint64_t x = ((uint64_t)id << 40) ^ (i >> 3);
    x *= 0x9E3779B97F4A7C15u;
    x ^= x >> 29;
    x *= 0xBF58476D1CE4E5B9u;
    x ^= x >> 32;
    return (unsigned char)('a' + ((x >> ((i & 7) * 4)) & 15));
}

static uint64_t rnd(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* BUF[N] must be member M's bytes from OFF. A plain loop (not cmocka's
 * asserts, which are not thread-safe): the first wrong byte's index, or -1. */
static int64_t mismatch(const member *m, int64_t off, const unsigned char *buf, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        if (buf[i] != gen(m->id, (uint64_t)(off + i)))
            return i;
    return -1;
}

static int setup(void **state)
{
    (void)state;
    if (!t_have("tar") || !t_have("gzip") || !t_have("python3"))
        return -1;
    dir = t_tempdir("targz-cache");
    char *tree = t_join(dir, "t");
    unsigned char *buf = malloc(BIG_SIZE);
    for (uint32_t id = 0; id < NMEM; id++) {
        /* Names out of step with the order the files are made in. */
        char name[64];
        int64_t size;
        if (id < NBIG) {
            snprintf(name, sizeof name, "big/b%02u.dat", (unsigned)id);
            size = BIG_SIZE;
        } else {
            uint32_t k = id - NBIG, n = (k * 37) % NSMALL;
            snprintf(name, sizeof name, "s/%02u/f%03u.txt", (unsigned)(n % 7), (unsigned)n);
            size = (int64_t)((k * 2654435761u) % 9000);
        }
        for (int64_t i = 0; i < size; i++)
            buf[i] = gen(id, (uint64_t)i);
        char *p = t_join(tree, name);
        t_write(p, buf, (size_t)size);
        free(p);
    }
    free(buf);
    char *cmd = t_fmt("cd '%s' && tar -cf ../x.tar big s && gzip -6 -k ../x.tar", tree);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    gz_path = t_join(dir, "x.tar.gz");

    char *out = NULL;
    cmd = t_fmt("python3 -c 'import sys, tarfile\n"
                "for m in tarfile.open(sys.argv[1]):\n"
                "    m.isfile() and print(m.name, m.offset_data, m.size)' '%s/x.tar'",
                dir);
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    free(cmd);
    char *line = out;
    for (char *nl; (nl = strchr(line, '\n')); line = nl + 1) {
        *nl = 0;
        member *m = &mem[nmem];
        long long off, size;
        assert_int_equal(sscanf(line, "%63s %lld %lld", m->name, &off, &size), 3);
        unsigned a, b;
        if (sscanf(m->name, "big/b%u.dat", &a) == 1)
            m->id = a;
        else if (sscanf(m->name, "s/%u/f%u.txt", &a, &b) == 2)
            m->id = NBIG + (b * 173) % NSMALL; /* 173 = 37^-1 mod 400 */
        else
            fail_msg("unexpected member %s", m->name);
        m->off = off;
        m->size = size;
        nmem++;
    }
    free(out);
    assert_int_equal(nmem, NMEM);
    char *tar = t_join(dir, "x.tar");
    size_t n;
    free(t_slurp(tar, &n));
    free(tar);
    usize = (int64_t)n;
    free(tree);
    setenv("KVRO_TARGZ_SPACING", "262144", 1); /* for the public-API test */
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    t_rmrf(dir);
    free(dir);
    free(gz_path);
    return 0;
}

/* ----------------------------------------------------- tar_gz, directly */

typedef struct opened {
    kvro_io *io;
    tar_gz gz;
} opened;

/* With access points every SPACING_AT bytes. */
static void open_gz_spaced(opened *o, int64_t budget, int64_t spacing_at)
{
    kvro_error e;
    assert_int_equal(kvro_io_open_path(gz_path, KVRO_IO_RDONLY, &o->io, &e), KVRO_OK);
    int64_t csize;
    assert_int_equal(kvro_io_size(o->io, &csize, &e), KVRO_OK);
    assert_int_equal(kvro__tar_gz_init(&o->gz, o->io, csize, budget, &e), KVRO_OK);
    kvro_options opts = {0};
    tar_gz_build *b = NULL;
    assert_int_equal(kvro__tar_gz_build_begin(&o->gz, &opts, spacing_at, false, &b, &e), KVRO_OK);
    assert_int_equal(kvro__tar_gz_build_finish(b, &e), KVRO_OK);
    kvro__tar_gz_build_free(b);
    assert_int_equal(o->gz.usize, usize);
    assert_true(o->gz.npoints >= (size_t)(usize / spacing_at) / 2);
}

static void open_gz(opened *o, int64_t budget)
{
    open_gz_spaced(o, budget, SPACING);
}

static void close_gz(opened *o)
{
    kvro__tar_gz_free(&o->gz);
    kvro_io_close(o->io);
}

static tar_gz_usage usage(opened *o)
{
    tar_gz_usage u;
    kvro__tar_gz_usage(&o->gz, &u);
    return u;
}

/* Reads LEN bytes of M from OFF in pieces of PIECE_LEN and checks them. */
static void read_check(opened *o, const member *m, int64_t off, int64_t len, int64_t piece_len)
{
    unsigned char *buf = malloc((size_t)(piece_len ? piece_len : 1));
    for (int64_t at = off; at < off + len;) {
        int64_t want = off + len - at < piece_len ? off + len - at : piece_len, got;
        kvro_error e;
        assert_int_equal(kvro__tar_gz_read(&o->gz, m->off + at, buf, want, &got, &e), KVRO_OK);
        assert_int_equal(got, want);
        int64_t bad = mismatch(m, at, buf, got);
        if (bad >= 0)
            fail_msg("%s: wrong byte at %lld", m->name, (long long)(at + bad));
        at += got;
    }
    free(buf);
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const member *)a)->name, ((const member *)b)->name);
}

/* Every member read whole, in the order ORDER gives, inflates the archive
 * about once with the default budget (which holds all of it). Before the
 * cache, each small file started again at its access point: ~128 KiB each,
 * ~5 times the archive here. */
static void read_all_in(member *order, const char *what)
{
    opened o;
    open_gz(&o, 0);
    for (size_t i = 0; i < nmem; i++)
        read_check(&o, &order[i], 0, order[i].size, PIECE);
    tar_gz_usage u = usage(&o);
    printf("%s: inflated %lld bytes for a %lld-byte stream (%.2fx)\n", what,
           (long long)u.inflated, (long long)usize, (double)u.inflated / (double)usize);
    assert_true(u.inflated <= usize + usize / 8);
    assert_true(u.peak <= u.budget);
    close_gz(&o);
}

static void test_name_order_inflates_once(void **state)
{
    (void)state;
    member order[NMEM];
    memcpy(order, mem, sizeof order);
    qsort(order, nmem, sizeof *order, by_name);
    assert_true(memcmp(order, mem, sizeof order) != 0); /* not archive order */
    read_all_in(order, "name order");
}

/* The members into ORDER, shuffled by SEED. */
static void shuffled(member *order, uint64_t seed)
{
    memcpy(order, mem, nmem * sizeof *order);
    for (size_t i = nmem - 1; i > 0; i--) {
        size_t j = (size_t)(rnd(&seed) % (i + 1));
        member t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

static void test_random_order_inflates_once(void **state)
{
    (void)state;
    member order[NMEM];
    shuffled(order, 12345);
    read_all_in(order, "random order");
}

/* Random order again, with the stream twice the budget and access points
 * 2 MiB apart (as in a large archive of text): the cache cannot hold it,
 * so evicted chunks are inflated again, but from a cursor copy parked
 * before them (cursor_checkpoint), not from a point up to 2 MiB back. The
 * eviction's random choices are seeded, so the figure is the same every
 * run: 4.1 times the stream, 4.95 without the copies. */
static void test_random_order_past_the_budget(void **state)
{
    (void)state;
    member order[NMEM];
    shuffled(order, 54321);
    opened o;
    int64_t budget = usize / 2;
    open_gz_spaced(&o, budget, 2 << 20);
    for (size_t i = 0; i < nmem; i++)
        read_check(&o, &order[i], 0, order[i].size, PIECE);
    tar_gz_usage u = usage(&o);
    printf("random order, budget %lld: inflated %lld bytes for a %lld-byte stream (%.2fx), "
           "peak %lld\n",
           (long long)budget, (long long)u.inflated, (long long)usize,
           (double)u.inflated / (double)usize, (long long)u.peak);
    assert_true(u.inflated <= usize * 9 / 2);
    assert_true(u.peak <= u.budget);
    close_gz(&o);
}

/* NBIG members read round-robin in 16 KiB pieces: each stream keeps its
 * cursor, so the whole costs about one inflate of what is read, plus
 * reaching each stream's start once. With four cursors for all (the old
 * cache) every piece restarted at its access point. */
static void test_round_robin_streams(void **state)
{
    (void)state;
    opened o;
    open_gz(&o, 0);
    const member *big[NBIG];
    size_t nb = 0;
    for (size_t i = 0; i < nmem; i++)
        if (mem[i].size == BIG_SIZE)
            big[nb++] = &mem[i];
    assert_int_equal(nb, NBIG);
    for (int64_t at = 0; at < BIG_SIZE; at += PIECE)
        for (size_t i = 0; i < nb; i++)
            read_check(&o, big[i], at, PIECE, PIECE);
    tar_gz_usage u = usage(&o);
    int64_t read = (int64_t)NBIG * BIG_SIZE;
    printf("round robin x%d: inflated %lld for %lld read\n", NBIG, (long long)u.inflated,
           (long long)read);
    assert_true(u.inflated <= read + read / 8 + (int64_t)NBIG * SPACING);
    close_gz(&o);
}

/* Random members at random offsets and lengths under a budget of BUDGET:
 * every byte right, and the cache never over the budget when it holds at
 * least what one read needs (a cursor and a chunk, ~170 KiB); below that,
 * never more than that. */
static void random_reads(int64_t budget, int rounds)
{
    opened o;
    open_gz(&o, budget);
    uint64_t s = (uint64_t)budget * 7919 + 1;
    for (int r = 0; r < rounds; r++) {
        const member *m = &mem[rnd(&s) % nmem];
        if (!m->size)
            continue;
        int64_t off = (int64_t)(rnd(&s) % (uint64_t)m->size);
        int64_t len = 1 + (int64_t)(rnd(&s) % (uint64_t)(200 << 10));
        if (len > m->size - off)
            len = m->size - off;
        read_check(&o, m, off, len, r % 3 ? len : 4096);
    }
    tar_gz_usage u = usage(&o);
    assert_int_equal(u.budget, budget);
    int64_t one_read = 256 << 10;
    printf("budget %lld: peak %lld, %lld chunks and %lld cursors kept, inflated %lld\n",
           (long long)budget, (long long)u.peak, (long long)u.chunks, (long long)u.cursors,
           (long long)u.inflated);
    assert_true(u.peak <= (budget > one_read ? budget : one_read));
    assert_true(u.used <= budget);
    close_gz(&o);
}

static void test_budget_honoured(void **state)
{
    (void)state;
    random_reads(1 << 20, 400);
    random_reads(3 << 20, 400);
}

/* One byte: nothing is ever kept, every read starts at an access point. */
static void test_tiny_budget(void **state)
{
    (void)state;
    random_reads(1, 150);
    opened o;
    open_gz(&o, 1);
    read_check(&o, &mem[0], 0, mem[0].size, PIECE);
    read_check(&o, &mem[1], 1000, 70000, 70000);
    tar_gz_usage u = usage(&o);
    assert_int_equal(u.used, 0);
    assert_int_equal(u.chunks + u.cursors, 0);
    close_gz(&o);
}

/* The budget: the option, else $KVRO_READ_CACHE (with K, M, G), else the
 * default; nonsense in the variable is the default. */
static void test_budget_sources(void **state)
{
    (void)state;
    static const struct {
        const char *env;
        int64_t option, want;
    } cases[] = {
        {NULL, 0, TAR_GZ_READ_CACHE_DEFAULT},
        {"3M", 0, 3 << 20},
        {"12345", 0, 12345},
        {"2g", 0, (int64_t)2 << 30},
        {"3M", 5000, 5000},
        {"lots", 0, TAR_GZ_READ_CACHE_DEFAULT},
        {"-5", 0, TAR_GZ_READ_CACHE_DEFAULT},
        {"5MB", 0, TAR_GZ_READ_CACHE_DEFAULT},
        {NULL, -1, TAR_GZ_READ_CACHE_DEFAULT},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        if (cases[i].env)
            setenv("KVRO_READ_CACHE", cases[i].env, 1);
        else
            unsetenv("KVRO_READ_CACHE");
        tar_gz gz;
        assert_int_equal(kvro__tar_gz_init(&gz, NULL, 0, cases[i].option, NULL), KVRO_OK);
        assert_int_equal(gz.rc.budget, cases[i].want);
        kvro__tar_gz_free(&gz);
    }
    unsetenv("KVRO_READ_CACHE");
}

/* ------------------------------------------------------------- threads */

#define THREADS 8

typedef struct worker {
    kvro *kv;        /* the public API */
    opened *o;       /* or tar_gz directly (then NULL kv) */
    size_t stream;   /* the big member it streams */
    uint64_t seed;
    const char *bad; /* what went wrong, or NULL */
    char why[160];
} worker;

static bool read_at(worker *w, const member *m, int64_t off, int64_t len, unsigned char *buf)
{
    int64_t got = -1;
    kvro_error e;
    kvro_status s = w->kv ? kvro_read(w->kv, m->name, off, len, buf, &got, &e)
                          : kvro__tar_gz_read(&w->o->gz, m->off + off, buf, len, &got, &e);
    int64_t bad = s == KVRO_OK && got == len ? mismatch(m, off, buf, got) : 0;
    if (s != KVRO_OK || got != len || bad >= 0) {
        snprintf(w->why, sizeof w->why, "%s at %lld+%lld: status %d, got %lld, byte %lld",
                 m->name, (long long)off, (long long)len, (int)s, (long long)got,
                 (long long)bad);
        w->bad = w->why;
        return false;
    }
    return true;
}

/* Streams its own member in 16 KiB pieces, and after every piece reads a
 * random member at a random offset (every third one a whole small file). */
static void *work(void *arg)
{
    worker *w = arg;
    unsigned char *buf = malloc(64 << 10);
    const member *mine = NULL;
    for (size_t i = 0, k = 0; i < nmem; i++)
        if (mem[i].size == BIG_SIZE && k++ == w->stream)
            mine = &mem[i];
    for (int64_t at = 0; at < BIG_SIZE && !w->bad; at += PIECE) {
        if (!read_at(w, mine, at, PIECE, buf))
            break;
        const member *m = &mem[rnd(&w->seed) % nmem];
        if (!m->size)
            continue;
        int64_t off = (int64_t)(rnd(&w->seed) % (uint64_t)m->size);
        int64_t len = 1 + (int64_t)(rnd(&w->seed) % (64 << 10));
        if (at % (3 * PIECE) == 0)
            off = 0, len = m->size;
        if (len > m->size - off)
            len = m->size - off;
        if (len <= 64 << 10)
            read_at(w, m, off, len, buf);
    }
    free(buf);
    return NULL;
}

static void run_workers(kvro *kv, opened *o)
{
    pthread_t t[THREADS];
    worker w[THREADS];
    for (size_t i = 0; i < THREADS; i++) {
        w[i] = (worker){.kv = kv, .o = o, .stream = i % NBIG, .seed = 1000 + i};
        assert_int_equal(pthread_create(&t[i], NULL, work, &w[i]), 0);
    }
    for (size_t i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (size_t i = 0; i < THREADS; i++)
        if (w[i].bad)
            fail_msg("thread %zu: %s", i, w[i].bad);
}

static void threads_public(int64_t budget)
{
    kvro_options opts = {.no_index_cache = true, .read_cache_bytes = budget};
    kvro *kv;
    kvro_error e;
    assert_int_equal(kvro_open_opts(gz_path, &opts, &kv, &e), KVRO_OK);
    run_workers(kv, NULL);
    kvro_close(kv);
}

static void test_threads(void **state)
{
    (void)state;
    threads_public(0);       /* the default: everything fits */
    threads_public(1 << 20); /* ~6 streams' worth for 8 threads: constant eviction */
    threads_public(1);       /* nothing kept */
}

/* The same on tar_gz itself, where the budget can be seen: with 8 threads
 * the cache holds at most the budget plus what reads in flight need. */
static void test_threads_budget(void **state)
{
    (void)state;
    int64_t budgets[] = {2 << 20, 300 << 10};
    for (size_t i = 0; i < 2; i++) {
        opened o;
        open_gz(&o, budgets[i]);
        run_workers(NULL, &o);
        tar_gz_usage u = usage(&o);
        printf("threads, budget %lld: peak %lld, inflated %lld\n", (long long)budgets[i],
               (long long)u.peak, (long long)u.inflated);
        assert_true(u.peak <= budgets[i] + THREADS * (int64_t)(256 << 10));
        assert_true(u.used <= budgets[i]);
        close_gz(&o);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_name_order_inflates_once),
        cmocka_unit_test(test_random_order_inflates_once),
        cmocka_unit_test(test_random_order_past_the_budget),
        cmocka_unit_test(test_round_robin_streams),
        cmocka_unit_test(test_budget_honoured),
        cmocka_unit_test(test_tiny_budget),
        cmocka_unit_test(test_budget_sources),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_threads_budget),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
