/*
 * test_mkkv_io.c — mkkv's sources that are not a plain path: an image on
 * standard input ("-"), in memory and spilled to a temporary file, and an
 * image inside a bigger file (--image-offset, --image-length). Archives
 * are made by GNU tar at test time; answers are compared with those for
 * the same archive given as a file, and with the directory it was made of.
 */
#include "support.h"

#include <setjmp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#define JUNK_BEFORE 1000 /* not a multiple of 512: a window must not need one */
#define JUNK_AFTER 777

typedef struct fixture {
    char *dir;  /* scratch */
    char *tree; /* dir/tree: what the archives hold */
    char *tar, *tgz;
    char *emb, *emb_gz; /* junk + tar (or tar.gz) + junk */
    long long tar_size, tgz_size;
    char *listing; /* mkkv ls -R of the tree */
} fixture;

static long long file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (long long)st.st_size;
}

/* JUNK_BEFORE pattern bytes, the file IN, JUNK_AFTER more: OUT. */
static void embed(const char *in, const char *out)
{
    size_t n;
    char *data = t_slurp(in, &n);
    size_t total = JUNK_BEFORE + n + JUNK_AFTER;
    unsigned char *buf = malloc(total);
    for (size_t i = 0; i < JUNK_BEFORE; i++)
        buf[i] = t_pattern(11, i);
    memcpy(buf + JUNK_BEFORE, data, n);
    for (size_t i = 0; i < JUNK_AFTER; i++)
        buf[JUNK_BEFORE + n + i] = t_pattern(12, i);
    t_write(out, buf, total);
    free(buf);
    free(data);
}

static int setup(void **state)
{
    if (!t_have("tar") || !t_have("gzip")) {
        fprintf(stderr, "test_mkkv_io: GNU tar and gzip are needed\n");
        return -1;
    }
    setenv("MKKV", KVRO_TEST_MKKV, 1);
    fixture *f = calloc(1, sizeof *f);
    f->dir = t_tempdir("mkkv-io");
    f->tree = t_join(f->dir, "tree");
    char *p;
    t_write(p = t_join(f->tree, "hello.txt"), "hello, world\n", 13), free(p);
    t_write_pattern(p = t_join(f->tree, "a/b/data.bin"), 7, 100000), free(p);
    t_write(p = t_join(f->tree, "a/empty"), "", 0), free(p);
    t_write(p = t_join(f->tree, "-dash-key"), "dash\n", 5), free(p);
    t_mkdirs(p = t_join(f->tree, "z/empty-dir")), free(p);
    f->tar = t_join(f->dir, "tree.tar");
    f->tgz = t_join(f->dir, "tree.tar.gz");
    f->emb = t_join(f->dir, "embedded.bin");
    f->emb_gz = t_join(f->dir, "embedded-gz.bin");
    assert_int_equal(t_sh(NULL, NULL, "tar -cf '%s' -C '%s' . && tar -czf '%s' -C '%s' .", f->tar,
                          f->tree, f->tgz, f->tree),
                     0);
    embed(f->tar, f->emb);
    embed(f->tgz, f->emb_gz);
    f->tar_size = file_size(f->tar);
    f->tgz_size = file_size(f->tgz);
    char *err;
    assert_int_equal(t_sh(&f->listing, &err, "\"$MKKV\" ls -R '%s'", f->tree), 0);
    free(err);
    assert_string_equal(f->listing, "-dash-key\na/\na/b/\na/b/data.bin\na/empty\nhello.txt\nz/\n"
                                    "z/empty-dir/\n");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    t_rmrf(f->dir);
    free(f->tree), free(f->tar), free(f->tgz), free(f->emb), free(f->emb_gz);
    free(f->listing), free(f->dir), free(f);
    return 0;
}

/* Asserts that command FMT... succeeds and prints WANT. */
#define assert_prints(want, ...)                                                                   \
    do {                                                                                           \
        char *out_, *err_;                                                                         \
        int rc_ = t_sh(&out_, &err_, __VA_ARGS__);                                                 \
        if (rc_ != 0)                                                                              \
            fail_msg("exit %d: %s", rc_, err_);                                                    \
        assert_string_equal(out_, want);                                                           \
        free(out_), free(err_);                                                                    \
    } while (0)

/* Asserts that command FMT... exits with CODE and that its standard error
 * holds NEEDLE. */
#define assert_fails(code, needle, ...)                                                            \
    do {                                                                                           \
        char *out_, *err_;                                                                         \
        int rc_ = t_sh(&out_, &err_, __VA_ARGS__);                                                 \
        if (rc_ != (code) || !strstr(err_, needle))                                                \
            fail_msg("exit %d (want %d), stderr: %s (want '%s')", rc_, code, err_, needle);        \
        free(out_), free(err_);                                                                    \
    } while (0)

/* --------------------------------------------------------- standard input */

static void test_stdin_listing(void **state)
{
    fixture *f = *state;
    /* The same answers as for the file, from a pipe and from a redirect. */
    assert_prints(f->listing, "\"$MKKV\" ls -R '%s'", f->tar);
    assert_prints(f->listing, "\"$MKKV\" ls -R '%s'", f->tgz);
    assert_prints(f->listing, "cat '%s' | \"$MKKV\" ls -R -", f->tar);
    assert_prints(f->listing, "cat '%s' | \"$MKKV\" ls -R -", f->tgz);
    assert_prints(f->listing, "\"$MKKV\" ls -R - < '%s'", f->tar);
    assert_prints(f->listing, "\"$MKKV\" ls -R - < '%s'", f->tgz);

    char *want, *err;
    assert_int_equal(t_sh(&want, &err, "\"$MKKV\" ls -l '%s' a/b", f->tar), 0);
    free(err);
    assert_prints(want, "cat '%s' | \"$MKKV\" ls -l - a/b", f->tar);
    free(want);

    assert_prints("hello, world\n", "cat '%s' | \"$MKKV\" cat - hello.txt", f->tgz);
    assert_prints("world", "cat '%s' | \"$MKKV\" cat --offset 7 --length 5 - /hello.txt", f->tar);
    char *stat_file;
    assert_int_equal(t_sh(&stat_file, &err, "\"$MKKV\" stat '%s' a/b/data.bin", f->tar), 0);
    free(err);
    assert_prints(stat_file, "cat '%s' | \"$MKKV\" stat - a/b/data.bin", f->tar);
    free(stat_file);
    char *want_v =
        t_fmt("standard input matches %s: 4 files, 5 directories, 100018 bytes\n", f->tree);
    assert_prints(want_v, "cat '%s' | \"$MKKV\" verify - '%s'", f->tgz, f->tree);
    free(want_v);

    /* A file redirected to standard input is read from where it stands. */
    assert_prints(f->listing,
                  "(dd bs=%d count=1 of=/dev/null 2>/dev/null; \"$MKKV\" ls -R -) < '%s'",
                  JUNK_BEFORE, f->emb);

    /* mkkv tar from standard input. */
    char *copy = t_join(f->dir, "from-stdin.tar");
    assert_prints("", "cat '%s' | \"$MKKV\" tar -q - '%s'", f->tgz, copy);
    assert_prints(f->listing, "\"$MKKV\" ls -R '%s'", copy);
    assert_prints("", "\"$MKKV\" verify -q '%s' '%s'", copy, f->tree);
    free(copy);
}

static void test_stdin_targz_index(void **state)
{
    fixture *f = *state;
    char *cache = t_join(f->dir, "cache"), *out, *err;
    /* From standard input: no path to key a cache file on, none written. */
    assert_prints(f->listing, "cat '%s' | XDG_CACHE_HOME='%s' \"$MKKV\" ls -R -", f->tgz, cache);
    assert_prints(f->listing, "XDG_CACHE_HOME='%s' \"$MKKV\" ls -R - < '%s'", cache, f->tgz);
    assert_int_equal(t_sh(&out, &err, "find '%s' -type f 2>/dev/null | wc -l", cache), 0);
    assert_string_equal(out, "0\n");
    free(out), free(err);
    /* ... while the file by its path is (so the check above can see one). */
    assert_prints(f->listing, "XDG_CACHE_HOME='%s' \"$MKKV\" ls -R '%s'", cache, f->tgz);
    assert_int_equal(t_sh(&out, &err, "find '%s' -type f | wc -l", cache), 0);
    assert_string_equal(out, "1\n");
    free(out), free(err);

    /* --index FILE keeps it, and the next open reads it back. */
    char *idx = t_join(f->dir, "stdin.idx");
    assert_prints(f->listing, "cat '%s' | \"$MKKV\" ls -R --index '%s' -", f->tgz, idx);
    assert_true(file_size(idx) > 0);
    assert_prints("hello, world\n", "cat '%s' | \"$MKKV\" cat --index '%s' - hello.txt", f->tgz,
                  idx);
    free(idx), free(cache);
}

/* A pipe larger than the memory limit goes to a temporary file; the
 * answers are the same. KVRO_STDIN_MEMORY_MAX stands in for 64 MiB. */
static void test_stdin_spill(void **state)
{
    fixture *f = *state;
    char *tmp = t_join(f->dir, "tmp"), *gone = t_join(f->dir, "no-such-dir"), *out, *err;
    t_mkdirs(tmp);
    const char *limits[] = {"4K", "0", "10000"};
    for (size_t i = 0; i < 3; i++) {
        assert_prints(f->listing,
                      "cat '%s' | TMPDIR='%s' KVRO_STDIN_MEMORY_MAX=%s \"$MKKV\" ls -R -", f->tar,
                      tmp, limits[i]);
        assert_prints(f->listing,
                      "cat '%s' | TMPDIR='%s' KVRO_STDIN_MEMORY_MAX=%s \"$MKKV\" ls -R -", f->tgz,
                      tmp, limits[i]);
    }
    /* Every byte of a large value. */
    char *dst = t_join(f->dir, "spilled.bin");
    assert_int_equal(t_sh(NULL, NULL,
                          "cat '%s' | TMPDIR='%s' KVRO_STDIN_MEMORY_MAX=4K \"$MKKV\" cat - "
                          "a/b/data.bin > '%s'",
                          f->tgz, tmp, dst),
                     0);
    size_t n;
    char *got = t_slurp(dst, &n);
    assert_int_equal(n, 100000);
    for (size_t i = 0; i < n; i++)
        if ((uint8_t)got[i] != t_pattern(7, i))
            fail_msg("byte %zu differs", i);
    free(got), free(dst);
    /* The temporary file was unlinked: nothing is left behind. */
    assert_int_equal(t_sh(&out, &err, "ls -A '%s' | wc -l", tmp), 0);
    assert_string_equal(out, "0\n");
    free(out), free(err);

    /* Past the limit the temporary file is really used (an unusable
     * $TMPDIR fails), below it never is. */
    assert_fails(1, "mkkv: standard input: cannot create a temporary file in",
                 "cat '%s' | TMPDIR='%s' KVRO_STDIN_MEMORY_MAX=4K \"$MKKV\" ls -", f->tar, gone);
    assert_prints(f->listing, "cat '%s' | TMPDIR='%s' KVRO_STDIN_MEMORY_MAX=%lld \"$MKKV\" ls -R -",
                  f->tar, gone, f->tar_size);
    assert_prints(f->listing, "cat '%s' | TMPDIR='%s' \"$MKKV\" ls -R -", f->tar, gone);
    assert_fails(2, "invalid KVRO_STDIN_MEMORY_MAX 'lots'",
                 "cat '%s' | KVRO_STDIN_MEMORY_MAX=lots \"$MKKV\" ls -", f->tar);
    free(tmp), free(gone);
}

static void test_stdin_errors(void **state)
{
    fixture *f = *state;
    assert_fails(1, "mkkv: standard input: nope: no such key", "cat '%s' | \"$MKKV\" cat - nope",
                 f->tar);
    assert_fails(1, "mkkv: standard input: nope: no such key", "cat '%s' | \"$MKKV\" cat - nope",
                 f->tgz);
    assert_fails(1, "mkkv: standard input: empty", ": | \"$MKKV\" ls -");
    assert_fails(1, "mkkv: standard input: empty", "\"$MKKV\" ls - < /dev/null");
    char *empty = t_join(f->dir, "empty-file");
    t_write(empty, "", 0);
    assert_fails(1, "mkkv: standard input: empty", "\"$MKKV\" stat - / < '%s'", empty);
    free(empty);
    assert_fails(1, "mkkv: standard input: ", "echo 'not an image' | \"$MKKV\" ls -");
    assert_fails(2, "DIR is a host directory, not standard input",
                 "cat '%s' | \"$MKKV\" verify '%s' -", f->tar, f->tree);
    /* A terminal on standard input is refused, not waited on. */
    if (t_have("script")) {
        char *out, *err;
        int rc = t_sh(&out, &err, "script -qec '\"$MKKV\" ls -' /dev/null");
        assert_int_equal(rc, 2);
        assert_non_null(strstr(out, "refusing to read an image from a terminal"));
        free(out), free(err);
    }
}

/* ------------------------------------------------------ an image in a file */

static void test_image_window(void **state)
{
    fixture *f = *state;
    int off = JUNK_BEFORE;
    long long len = f->tar_size;
    assert_prints(f->listing, "\"$MKKV\" ls -R --image-offset %d --image-length %lld '%s'", off,
                  len, f->emb);
    /* Without a length the image runs to the end of the file: a tar
     * reader stops at its end-of-archive blocks, before the junk. */
    assert_prints(f->listing, "\"$MKKV\" ls -R --image-offset %d '%s'", off, f->emb);
    /* Suffixes, and the options after the operands. */
    assert_prints(f->listing, "\"$MKKV\" ls -R '%s' --image-offset 1000 --image-length %lld",
                  f->emb, len);
    assert_prints("hello, world\n", "\"$MKKV\" cat --image-offset %d '%s' hello.txt", off, f->emb);
    /* --offset/--length pick bytes of the value, --image-* the image. */
    assert_prints("world",
                  "\"$MKKV\" cat --image-offset %d --image-length %lld --offset 7 --length 5 "
                  "'%s' hello.txt",
                  off, len, f->emb);
    assert_prints("dash\n", "\"$MKKV\" cat --image-offset %d '%s' -- -dash-key", off, f->emb);

    char *out, *err;
    assert_int_equal(
        t_sh(&out, &err, "\"$MKKV\" stat --image-offset %d '%s' a/b/data.bin", off, f->emb), 0);
    assert_non_null(strstr(out, "kind: file\nsize: 100000\n"));
    assert_non_null(strstr(out, "backend: tar\n"));
    free(out), free(err);

    assert_int_equal(t_sh(&out, &err,
                          "\"$MKKV\" verify --image-offset %d --image-length %lld '%s' '%s'", off,
                          len, f->emb, f->tree),
                     0);
    assert_non_null(strstr(out, "matches"));
    assert_non_null(strstr(out, ": 4 files, 5 directories, 100018 bytes\n"));
    free(out), free(err);

    /* A tar.gz inside a file, and the same from standard input. */
    assert_prints(f->listing, "\"$MKKV\" ls -R --image-offset %d --image-length %lld '%s'", off,
                  f->tgz_size, f->emb_gz);
    assert_prints(f->listing, "cat '%s' | \"$MKKV\" ls -R --image-offset %d --image-length %lld -",
                  f->emb_gz, off, f->tgz_size);
    assert_prints(f->listing, "cat '%s' | \"$MKKV\" ls -R --image-offset %d -", f->emb, off);
    assert_prints(f->listing, "\"$MKKV\" ls -R --image-offset %d - < '%s'", off, f->emb);
    /* ... and spilled to a temporary file. */
    assert_prints(f->listing,
                  "cat '%s' | KVRO_STDIN_MEMORY_MAX=1K \"$MKKV\" ls -R --image-offset %d -", f->emb,
                  off);

    /* mkkv tar of an image inside a file. */
    char *copy = t_join(f->dir, "from-window.tar");
    assert_prints("", "\"$MKKV\" tar -q --image-offset %d --image-length %lld '%s' '%s'", off, len,
                  f->emb, copy);
    assert_prints("", "\"$MKKV\" verify -q '%s' '%s'", copy, f->tree);
    free(copy);

    /* Errors inside the window name it. */
    assert_fails(1, "@1000+", "\"$MKKV\" cat --image-offset %d '%s' nope", off, f->emb);
}

static void test_image_window_errors(void **state)
{
    fixture *f = *state;
    long long size = file_size(f->emb);
    char *want =
        t_fmt("mkkv: %s: --image-offset 99999999 is past its end (%lld bytes)", f->emb, size);
    assert_fails(1, want, "\"$MKKV\" ls --image-offset 99999999 '%s'", f->emb);
    free(want);
    want = t_fmt("mkkv: %s: --image-offset 1000 with --image-length 1073741824 ends at byte "
                 "1073742824, past its end (%lld bytes)",
                 f->emb, size);
    assert_fails(1, want, "\"$MKKV\" cat --image-offset 1000 --image-length 1G '%s' hello.txt",
                 f->emb);
    free(want);
    want = t_fmt("mkkv: standard input: --image-offset %lld is past its end (%lld bytes)", size + 1,
                 size);
    assert_fails(1, want, "cat '%s' | \"$MKKV\" ls --image-offset %lld -", f->emb, size + 1);
    free(want);
    /* A length alone: from byte 0. */
    assert_fails(1, "ends at byte", "\"$MKKV\" stat --image-length %lld '%s' /", size + 1, f->emb);

    want = t_fmt("mkkv: %s: is a directory: --image-offset and --image-length", f->tree);
    assert_fails(1, want, "\"$MKKV\" ls --image-offset 0 '%s'", f->tree);
    assert_fails(1, want, "\"$MKKV\" tar --image-offset 512 '%s' '%s/x.tar'", f->tree, f->dir);
    free(want);
    want = t_fmt("mkkv: %s/none: ", f->dir);
    assert_fails(1, want, "\"$MKKV\" ls --image-offset 0 '%s/none'", f->dir);
    free(want);

    /* The junk is no image. */
    assert_fails(1, "not a source kvro recognises",
                 "\"$MKKV\" ls --image-offset 0 --image-length 1000 '%s'", f->emb);
    /* An image cut short is corrupt, not silently smaller. */
    assert_fails(1, "mkkv: ", "\"$MKKV\" ls -R --image-offset 1000 --image-length 2000 '%s'",
                 f->emb);

    assert_fails(2, "--image-offset: 'x' is not a byte count", "\"$MKKV\" ls --image-offset x '%s'",
                 f->emb);
    assert_fails(2, "--image-length: '-1' is not a byte count",
                 "\"$MKKV\" ls --image-length -1 '%s'", f->emb);
    assert_fails(2, "option '--image-offset' needs a value", "\"$MKKV\" ls '%s' --image-offset",
                 f->emb);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stdin_listing), cmocka_unit_test(test_stdin_targz_index),
        cmocka_unit_test(test_stdin_spill),   cmocka_unit_test(test_stdin_errors),
        cmocka_unit_test(test_image_window),  cmocka_unit_test(test_image_window_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
