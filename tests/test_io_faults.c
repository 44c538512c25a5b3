/*
 * test_io_faults.c — what an image backend does when its I/O object fails
 * or moves few bytes at a time, through t_fault (support.h).
 *
 * A clean open of the archive and a read of every value makes R read
 * calls. Then, for every index i < R, the same with read i failing (EIO):
 * the open, and if it succeeds every read, must either succeed with
 * exactly the right bytes or fail with KVRO_E_IO and a clear record (the
 * status, the object's name as source, the key for a read, the cause in
 * the detail) — never a crash, never wrong bytes, never another status. A
 * read that failed is tried again and must then be right (the fault was
 * transient, and must not have poisoned the handle). Then the same with a
 * device that dies at read i (every later call fails too). Short reads (at
 * most K bytes a call) must change nothing.
 *
 * Archives: a plain tar and a .tar.gz made by GNU tar and gzip -n, read
 * from memory; the .tar.gz with its index built at every open (default
 * access-point spacing, and dense points so reads start at many of them)
 * and with it loaded from an index_path.
 */
#include "support.h"

#include <kvro/kvro.h>

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"

#define NAME "faulty image"
#define PIECE 20000

/* A name too long for a ustar header: GNU tar writes a long-name record. */
#define LONG_NAME                                                                                  \
    "long/a123456789b123456789c123456789d123456789e123456789f123456789g123456789"                  \
    "h123456789i123456789j123456789k123456789l123456789m123456789"

/* The values, in archive order (sorted, as they are given to tar). */
static const char *const KEYS[] = {
    "big.bin",  "dir/sub/deep.txt", "empty",    LONG_NAME,  "small/f0", "small/f1", "small/f2",
    "small/f3", "small/f4",         "small/f5", "small/f6", "small/f7", "text.txt",
};
#define NKEYS (sizeof KEYS / sizeof KEYS[0])

static char *dir;
static unsigned char *values[NKEYS];
static size_t value_len[NKEYS];
static unsigned char *tar_img, *tgz_img;
static size_t tar_len, tgz_len;

static int group_setup(void **state)
{
    (void)state;
    dir = t_tempdir("iofaults");
    char *tree = t_join(dir, "tree");
    for (size_t i = 0; i < NKEYS; i++) {
        char *p = t_join(tree, KEYS[i]);
        if (strcmp(KEYS[i], "big.bin") == 0) {
            /* Past the tar scanner's 256 KiB buffer, so the scan reads more
             * than once. */
            t_write_pattern(p, 1, 300 * 1024);
        } else if (strcmp(KEYS[i], "text.txt") == 0) {
            /* 64 letters: deflate codes them in Huffman blocks of ~16 KiB
             * each (many access points, each inside a byte) rather than
             * storing them. */
            size_t n = 400 * 1024;
            char *text = malloc(n);
            static const char abc[] =
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+\n";
            for (size_t k = 0; k < n; k++)
                text[k] = abc[t_pattern(2, k) % 64];
            t_write(p, text, n);
            free(text);
        } else if (strcmp(KEYS[i], "empty") == 0) {
            t_write(p, "", 0);
        } else {
            t_write_pattern(p, 10 + i, i * 300 + 1);
        }
        values[i] = (unsigned char *)t_slurp(p, &value_len[i]);
        free(p);
    }
    char *tar = t_join(dir, "t.tar");
    char *cmd = t_fmt("cd '%s' && find . ! -type d | LC_ALL=C sort | "
                      "tar --format=gnu --no-recursion -cf '%s' -T - && gzip -n -k '%s'",
                      tree, tar, tar);
    int rc = t_run(cmd, NULL, NULL);
    free(cmd);
    if (rc != 0)
        return -1;
    tar_img = (unsigned char *)t_slurp(tar, &tar_len);
    char *tgz = t_fmt("%s.gz", tar);
    tgz_img = (unsigned char *)t_slurp(tgz, &tgz_len);
    free(tgz);
    free(tar);
    free(tree);
    unsetenv("KVRO_TARGZ_SPACING");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    t_rmrf(dir);
    free(dir);
    for (size_t i = 0; i < NKEYS; i++)
        free(values[i]);
    free(tar_img);
    free(tgz_img);
    return 0;
}

/* ------------------------------------------------------------ one attempt */

typedef struct tally {
    int open_failed, read_failed, clean;
} tally;

/* A failure under fault F must be an I/O error, and say so clearly. */
static void want_io_error(kvro_status s, const kvro_error *e, const char *key, const char *what,
                          long long at)
{
    if (s != KVRO_E_IO) {
        char msg[1400];
        kvro_error_format(e, msg, sizeof msg);
        fail_msg("%s, fault at read %lld: '%s', want an I/O error (%s)", what, at,
                 kvro_status_str(s), msg);
    }
    assert_int_equal(e->status, KVRO_E_IO);
    assert_string_equal(e->source, NAME);
    if (key)
        assert_string_equal(e->key, key);
    if (!strstr(e->detail, strerror(EIO)))
        fail_msg("%s, fault at read %lld: the detail '%s' does not give the cause", what, at,
                 e->detail);
}

/* Reads value I whole into BUF: wrong bytes fail the test. */
static kvro_status read_value(kvro *kv, size_t i, unsigned char *buf, kvro_error *e)
{
    int64_t got = -1;
    kvro_status s = kvro_read(kv, KEYS[i], 0, (int64_t)value_len[i] + 1, buf, &got, e);
    if (s != KVRO_OK) {
        assert_int_equal(got, 0);
        return s;
    }
    if ((size_t)got != value_len[i] || memcmp(buf, values[i], value_len[i]) != 0)
        fail_msg("'%s': wrong bytes (%lld of %zu)", KEYS[i], (long long)got, value_len[i]);
    return s;
}

/* Opens IMG through fault F (its settings already made) and reads every
 * value in archive order, then (if PIECES) the big ones in pieces, last
 * first; checks every outcome. */
static void attempt(const unsigned char *img, size_t len, t_fault *f, const kvro_options *o,
                    bool pieces, long long at, tally *t)
{
    kvro_io *io = t_fault_memory(f, img, len, NAME);
    kvro *kv = NULL;
    kvro_error e;
    kvro_status s = kvro_open_io(io, o, &kv, &e);
    kvro_io_close(io);
    if (s != KVRO_OK) {
        want_io_error(s, &e, NULL, "open", at);
        assert_null(kv);
        assert_int_equal(atomic_load(&f->closes), 1); /* no reference leaked */
        t->open_failed++;
        return;
    }
    assert_string_equal(kvro_source(kv), NAME);
    kvro_stats st;
    assert_status(kvro_get_stats(kv, &st, &e), KVRO_OK, &e);
    if (at < 0 && o && o->index_path && !st.index_loaded)
        fail_msg("a clean open did not load the index: %s", st.index_note);
    unsigned char *buf = malloc(512 * 1024);
    bool failed = false;
    for (size_t i = 0; i < NKEYS; i++) {
        s = read_value(kv, i, buf, &e);
        if (s == KVRO_OK)
            continue;
        want_io_error(s, &e, KEYS[i], KEYS[i], at);
        failed = true;
        /* Again: right now, unless the device is dead. */
        s = read_value(kv, i, buf, &e);
        if (f->sticky)
            want_io_error(s, &e, KEYS[i], KEYS[i], at);
        else
            assert_status(s, KVRO_OK, &e);
    }
    /* The big values again in pieces, last first: each read starts at the
     * access point before it (reading the byte the point starts inside).
     * A piece that failed is read again: right, unless the device died. */
    for (size_t i = 0; pieces && i < NKEYS; i++) {
        for (int64_t end = (int64_t)value_len[i]; value_len[i] > 100000 && end > 0;) {
            int64_t off = end > PIECE ? end - PIECE : 0, got = -1;
            s = kvro_read(kv, KEYS[i], off, end - off, buf, &got, &e);
            if (s != KVRO_OK) {
                want_io_error(s, &e, KEYS[i], KEYS[i], at);
                assert_int_equal(got, 0);
                if (failed && !f->sticky)
                    fail_msg("'%s' @%lld failed twice, the fault once", KEYS[i], (long long)off);
                failed = true;
                if (f->sticky) /* dead: the next pieces must fail too */
                    end = off;
                continue;
            }
            if (got != end - off || memcmp(buf, values[i] + off, (size_t)got) != 0)
                fail_msg("'%s' @%lld: wrong bytes", KEYS[i], (long long)off);
            end = off;
        }
    }
    free(buf);
    assert_status(kvro_get_stats(kv, &st, &e), KVRO_OK, &e);
    if (st.damaged_windows)
        fail_msg("fault at read %lld: %lld index windows called damaged", at,
                 (long long)st.damaged_windows);
    kvro_close(kv);
    assert_int_equal(atomic_load(&f->closes), 1);
    if (failed)
        t->read_failed++;
    else
        t->clean++;
}

/* Every read index of a clean run, failing once (and with STICKY, for
 * good), with reads of at most MAX_READ bytes (0: any). */
static tally every_index(const unsigned char *img, size_t len, const kvro_options *o, bool pieces,
                         size_t max_read, bool sticky)
{
    t_fault f;
    t_fault_init(&f);
    f.max_read = max_read;
    tally clean = {0};
    attempt(img, len, &f, o, pieces, -1, &clean);
    assert_int_equal(clean.clean, 1);
    long long reads = atomic_load(&f.reads);
    assert_true(reads > 0);
    tally t = {0};
    for (long long i = 0; i <= reads; i++) {
        t_fault_init(&f);
        f.max_read = max_read;
        f.sticky = sticky;
        f.fail_read = i;
        attempt(img, len, &f, o, pieces, i, &t);
        /* The run is the same up to the fault, so the fault happened (one
         * past the last read: nothing to fail). */
        if (atomic_load(&f.injected) < 1 && i < reads)
            fail_msg("fault at read %lld of %lld was never reached", i, reads);
    }
    assert_int_equal(t.open_failed + t.read_failed + t.clean, reads + 1);
    assert_true(t.clean >= 1); /* the run past the last read at least */
    assert_true(t.open_failed >= 1);
    return t;
}

/* ------------------------------------------------------------------ tests */

static void test_plain_tar_every_read_fails(void **state)
{
    (void)state;
    tally t = every_index(tar_img, tar_len, NULL, true, 0, false);
    assert_true(t.read_failed >= (int)NKEYS - 1); /* every non-empty value read once */
    every_index(tar_img, tar_len, NULL, false, 4099, false);
    every_index(tar_img, tar_len, NULL, true, 0, true);
}

static void test_targz_every_read_fails(void **state)
{
    (void)state;
    kvro_options o = {.no_index_cache = true};
    /* One index built at each open: the reads after it come from the
     * cursors the open left. */
    tally t = every_index(tgz_img, tgz_len, &o, false, 0, false);
    assert_true(t.read_failed >= 1);
    every_index(tgz_img, tgz_len, &o, false, 4099, false);
    every_index(tgz_img, tgz_len, &o, false, 0, true);
}

/* Dense access points: most reads start at a point inside a byte, with a
 * window, and read that byte first. */
static void test_targz_dense_points_every_read_fails(void **state)
{
    (void)state;
    kvro_options o = {.no_index_cache = true};
    setenv("KVRO_TARGZ_SPACING", "32768", 1);
    tally t = every_index(tgz_img, tgz_len, &o, true, 0, false);
    assert_true(t.read_failed >= 1);
    every_index(tgz_img, tgz_len, &o, true, 0, true);
}

/* The index loaded from index_path: the open reads the archive's edges
 * (a failure there only costs a rebuild, which saves the index again:
 * hence the same spacing throughout), the reads use the saved windows. */
static void test_targz_loaded_index_every_read_fails(void **state)
{
    (void)state;
    char *idx = t_join(dir, "loaded.idx");
    kvro_options o = {.index_path = idx};
    setenv("KVRO_TARGZ_SPACING", "32768", 1);
    kvro_io *io = NULL;
    kvro *kv = NULL;
    kvro_error e;
    assert_status(kvro_io_from_memory(tgz_img, tgz_len, &io, &e), KVRO_OK, &e);
    assert_status(kvro_open_io(io, &o, &kv, &e), KVRO_OK, &e);
    kvro_stats st;
    assert_status(kvro_get_stats(kv, &st, &e), KVRO_OK, &e);
    assert_true(st.index_saved);
    assert_true(st.access_points > 10);
    kvro_close(kv);
    kvro_io_close(io);
    every_index(tgz_img, tgz_len, &o, true, 0, false);
    every_index(tgz_img, tgz_len, &o, true, 0, true);
    free(idx);
}

/* Short reads change nothing, down to a byte a call. */
static int unset_spacing(void **state)
{
    (void)state;
    unsetenv("KVRO_TARGZ_SPACING");
    return 0;
}

static void test_short_reads(void **state)
{
    (void)state;
    static const size_t limits[] = {1, 7, 512, 4099, 65537};
    kvro_options o = {.no_index_cache = true};
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        for (int gz = 0; gz < 2; gz++) {
            t_fault f;
            t_fault_init(&f);
            f.max_read = limits[i];
            tally t = {0};
            attempt(gz ? tgz_img : tar_img, gz ? tgz_len : tar_len, &f, &o, true, -1, &t);
            assert_int_equal(t.clean, 1);
            /* Each call moved at most the limit, and the image was read. */
            long long reads = atomic_load(&f.reads), bytes = atomic_load(&f.read_bytes);
            assert_true(bytes <= reads * (long long)limits[i]);
            assert_true(bytes >= (long long)(gz ? tgz_len : 0));
        }
    }
}

/* The size call failing fails the open, as an I/O error. */
static void test_size_fails(void **state)
{
    (void)state;
    for (int gz = 0; gz < 2; gz++) {
        t_fault f;
        t_fault_init(&f);
        f.fail_size = 0;
        tally t = {0};
        attempt(gz ? tgz_img : tar_img, gz ? tgz_len : tar_len, &f, NULL, false, 0, &t);
        assert_int_equal(t.open_failed, 1);
        assert_int_equal(atomic_load(&f.injected), 1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_tar_every_read_fails),
        cmocka_unit_test(test_targz_every_read_fails),
        cmocka_unit_test_teardown(test_targz_dense_points_every_read_fails, unset_spacing),
        cmocka_unit_test_teardown(test_targz_loaded_index_every_read_fails, unset_spacing),
        cmocka_unit_test(test_short_reads),
        cmocka_unit_test(test_size_fails),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
