/*
 * test_zero_copy.c — kvro_map and kvro_file_extent. A plain tar in memory
 * (whole, or in a window of a larger buffer) maps every value to exactly
 * the bytes kvro_read returns, at a pointer inside the caller's buffer; a
 * plain tar in a file (whole, through a borrowed descriptor, or in a
 * window at an odd offset of a larger file) gives every value as a range
 * of a descriptor that pread reads the same bytes from. Where the bytes do
 * not lie plain (a .tar.gz, the other kind of image, a host directory,
 * the caller's callbacks) both say KVRO_E_UNSUPPORTED; a directory key is
 * KVRO_E_IS_DIR. Empty values, hard links and symbolic links included.
 */
#include "support.h"

#include <kvro/kvro.h>

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"

#define JUNK 3001 /* junk before the archive in the padded buffer and file */

static char *dir, *tree;
static char *tar_path, *tgz_path, *padded_path;
static unsigned char *tar_img, *tgz_img, *padded;
static size_t tar_len, tgz_len, padded_len;

/* The values: name, size, and a link made after them. */
static const struct {
    const char *key;
    size_t size;
} VALUES[] = {
    {"empty", 0},  {"one", 1},          {"b511", 511},    {"b512", 512},
    {"b513", 513}, {"big.bin", 200000}, {"d/e/deep", 77}, {"d/empty2", 0},
};
#define NVALUES (sizeof VALUES / sizeof VALUES[0])
/* Links: a hard link and a symbolic link to b513, read as its bytes. */
static const char *const LINKS[] = {"hard", "sym"};

static int group_setup(void **state)
{
    (void)state;
    dir = t_tempdir("zerocopy");
    tree = t_join(dir, "tree");
    for (size_t i = 0; i < NVALUES; i++) {
        char *p = t_join(tree, VALUES[i].key);
        t_write_pattern(p, 100 + i, VALUES[i].size);
        free(p);
    }
    tar_path = t_join(dir, "t.tar");
    tgz_path = t_join(dir, "t.tar.gz");
    char *cmd = t_fmt("cd '%s' && mkdir emptydir && ln b513 hard && ln -s b513 sym && "
                      "tar --format=gnu -cf '%s' . && gzip -n -c '%s' > '%s'",
                      tree, tar_path, tar_path, tgz_path);
    int rc = t_run(cmd, NULL, NULL);
    free(cmd);
    if (rc != 0)
        return -1;
    tar_img = (unsigned char *)t_slurp(tar_path, &tar_len);
    tgz_img = (unsigned char *)t_slurp(tgz_path, &tgz_len);
    padded_len = JUNK + tar_len + 999;
    padded = malloc(padded_len);
    for (size_t i = 0; i < padded_len; i++)
        padded[i] = t_pattern(7, i);
    memcpy(padded + JUNK, tar_img, tar_len);
    padded_path = t_join(dir, "padded.bin");
    t_write(padded_path, padded, padded_len);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    t_rmrf(dir);
    free(dir);
    free(tree);
    free(tar_path);
    free(tgz_path);
    free(padded_path);
    free(tar_img);
    free(tgz_img);
    free(padded);
    return 0;
}

/* ------------------------------------------------------------- helpers */

static kvro *open_io(kvro_io *io)
{
    kvro *kv = NULL;
    kvro_error e;
    kvro_options o = {.no_index_cache = true};
    assert_status(kvro_open_io(io, &o, &kv, &e), KVRO_OK, &e);
    kvro_io_close(io);
    return kv;
}

static kvro *open_memory(const void *data, size_t len)
{
    kvro_io *io = NULL;
    kvro_error e;
    assert_status(kvro_io_from_memory(data, len, &io, &e), KVRO_OK, &e);
    return open_io(io);
}

static kvro *open_window(kvro_io *base, int64_t off, int64_t len)
{
    kvro_io *io = NULL;
    kvro_error e;
    assert_status(kvro_io_window(base, off, len, &io, &e), KVRO_OK, &e);
    kvro_io_close(base);
    return open_io(io);
}

static kvro *open_path(const char *path)
{
    kvro *kv = NULL;
    kvro_error e;
    kvro_options o = {.no_index_cache = true};
    assert_status(kvro_open_opts(path, &o, &kv, &e), KVRO_OK, &e);
    return kv;
}

/* Key I of all the values the tests walk: VALUES, then LINKS. */
static size_t nkeys(void)
{
    return NVALUES + sizeof LINKS / sizeof LINKS[0];
}

static const char *key_at(size_t i)
{
    return i < NVALUES ? VALUES[i].key : LINKS[i - NVALUES];
}

/* The bytes kvro_read gives for KEY (checked against the tree's file too);
 * *N gets the size. */
static unsigned char *read_value(kvro *kv, const char *key, int64_t *n)
{
    kvro_error e;
    assert_status(kvro_size(kv, key, n, &e), KVRO_OK, &e);
    unsigned char *buf = malloc((size_t)*n + 1);
    int64_t got = -1;
    assert_status(kvro_read(kv, key, 0, *n + 1, buf, &got, &e), KVRO_OK, &e);
    assert_int_equal(got, *n);
    char *p = t_join(tree, key);
    size_t len;
    char *disk = t_slurp(p, &len);
    assert_int_equal(len, *n);
    assert_memory_equal(buf, disk, len);
    free(disk);
    free(p);
    return buf;
}

/* Every value of KV maps to its bytes, inside [LO, LO + LEN). */
static void check_map_all(kvro *kv, const unsigned char *lo, size_t len)
{
    for (size_t i = 0; i < nkeys(); i++) {
        const char *key = key_at(i);
        int64_t n;
        unsigned char *want = read_value(kv, key, &n);
        const void *data = NULL;
        int64_t size = -1;
        kvro_error e;
        assert_status(kvro_map(kv, key, &data, &size, &e), KVRO_OK, &e);
        assert_int_equal(size, n);
        const unsigned char *p = data;
        assert_non_null(p);
        if (p < lo || p + size > lo + len)
            fail_msg("'%s' maps to %p+%lld, outside the buffer %p+%zu", key, data, (long long)size,
                     (const void *)lo, len);
        assert_memory_equal(p, want, (size_t)n);
        free(want);
    }
}

/* Every value of KV is a range of a descriptor holding its bytes; FD, if
 * >= 0, is the descriptor it must be, and every range starts at MIN_OFF
 * or later. */
static void check_extent_all(kvro *kv, int fd, int64_t min_off)
{
    for (size_t i = 0; i < nkeys(); i++) {
        const char *key = key_at(i);
        int64_t n;
        unsigned char *want = read_value(kv, key, &n);
        kvro_extent x = {-1, -1, -1};
        kvro_error e;
        assert_status(kvro_file_extent(kv, key, &x, &e), KVRO_OK, &e);
        assert_true(x.fd >= 0);
        if (fd >= 0)
            assert_int_equal(x.fd, fd);
        assert_int_equal(x.length, n);
        assert_true(x.offset >= min_off);
        unsigned char *got = malloc((size_t)n + 1);
        assert_int_equal(pread(x.fd, got, (size_t)n, (off_t)x.offset), n);
        assert_memory_equal(got, want, (size_t)n);
        free(got);
        free(want);
    }
}

/* The failures both calls share: a directory, a missing key, a bad key,
 * NULL results; the results are cleared. */
static void check_map_errors(kvro *kv)
{
    static const char *const dirs[] = {"", "/", "d", "d/e", "emptydir"};
    kvro_error e;
    const void *data;
    int64_t size;
    kvro_extent x;
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        data = kv;
        size = 5;
        assert_status(kvro_map(kv, dirs[i], &data, &size, &e), KVRO_E_IS_DIR, &e);
        assert_null(data);
        assert_int_equal(size, 0);
        x = (kvro_extent){5, 5, 5};
        assert_status(kvro_file_extent(kv, dirs[i], &x, &e), KVRO_E_IS_DIR, &e);
        assert_int_equal(x.fd, -1);
        assert_int_equal(x.length, 0);
    }
    assert_status(kvro_map(kv, "nope", &data, &size, &e), KVRO_E_NOT_FOUND, &e);
    assert_string_equal(e.key, "nope");
    assert_string_equal(e.source, kvro_source(kv));
    assert_status(kvro_file_extent(kv, "d/nope", &x, &e), KVRO_E_NOT_FOUND, &e);
    assert_status(kvro_map(kv, "one/x", &data, &size, &e), KVRO_E_NOT_DIR, &e);
    assert_status(kvro_map(kv, "../one", &data, &size, &e), KVRO_E_BAD_KEY, &e);
    assert_status(kvro_file_extent(kv, "d/../one", &x, &e), KVRO_E_BAD_KEY, &e);
    assert_status(kvro_map(kv, "one", NULL, &size, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_map(kv, "one", &data, NULL, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_file_extent(kv, "one", NULL, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_map(NULL, "one", &data, &size, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_file_extent(NULL, "one", &x, &e), KVRO_E_INVALID, &e);
}

static void want_map_unsupported(kvro *kv)
{
    for (size_t i = 0; i < nkeys(); i++) {
        const void *data = kv;
        int64_t size = 5;
        kvro_error e;
        assert_status(kvro_map(kv, key_at(i), &data, &size, &e), KVRO_E_UNSUPPORTED, &e);
        assert_null(data);
        assert_int_equal(size, 0);
        assert_string_equal(e.key, key_at(i));
        assert_true(e.detail[0] != '\0');
    }
}

static void want_extent_unsupported(kvro *kv)
{
    for (size_t i = 0; i < nkeys(); i++) {
        kvro_extent x = {5, 5, 5};
        kvro_error e;
        assert_status(kvro_file_extent(kv, key_at(i), &x, &e), KVRO_E_UNSUPPORTED, &e);
        assert_int_equal(x.fd, -1);
        assert_int_equal(x.offset, 0);
        assert_int_equal(x.length, 0);
        assert_string_equal(e.key, key_at(i));
    }
}

/* ---------------------------------------------------------------- tests */

static void test_map_memory(void **state)
{
    (void)state;
    kvro *kv = open_memory(tar_img, tar_len);
    check_map_all(kv, tar_img, tar_len);
    check_map_errors(kv);
    want_extent_unsupported(kv);

    /* No copy: the pointer is the archive's own byte, where the file
     * extent of the same archive on disk says the value lies. */
    kvro *disk = open_path(tar_path);
    for (size_t i = 0; i < nkeys(); i++) {
        const void *data;
        int64_t size;
        kvro_extent x;
        kvro_error e;
        assert_status(kvro_map(kv, key_at(i), &data, &size, &e), KVRO_OK, &e);
        assert_status(kvro_file_extent(disk, key_at(i), &x, &e), KVRO_OK, &e);
        assert_ptr_equal(data, tar_img + x.offset);
        assert_int_equal(size, x.length);
    }
    kvro_close(disk);
    kvro_close(kv);
}

static void test_map_memory_window(void **state)
{
    (void)state;
    kvro_io *base = NULL;
    kvro_error e;
    assert_status(kvro_io_from_memory(padded, padded_len, &base, &e), KVRO_OK, &e);
    kvro *kv = open_window(base, JUNK, (int64_t)tar_len);
    check_map_all(kv, padded + JUNK, tar_len);
    check_map_errors(kv);
    want_extent_unsupported(kv);
    /* The same offsets as the archive alone, shifted by the window's. */
    kvro *alone = open_memory(tar_img, tar_len);
    for (size_t i = 0; i < nkeys(); i++) {
        const void *a, *b;
        int64_t na, nb;
        assert_status(kvro_map(kv, key_at(i), &a, &na, &e), KVRO_OK, &e);
        assert_status(kvro_map(alone, key_at(i), &b, &nb, &e), KVRO_OK, &e);
        assert_int_equal((const unsigned char *)a - padded - JUNK,
                         (const unsigned char *)b - tar_img);
    }
    kvro_close(alone);
    kvro_close(kv);
}

static void test_extent_file(void **state)
{
    (void)state;
    kvro *kv = open_path(tar_path);
    check_extent_all(kv, -1, 0);
    check_map_errors(kv);
    want_map_unsupported(kv);
    kvro_close(kv);

    /* A borrowed descriptor: the ranges are of it. */
    int fd = open(tar_path, O_RDONLY | O_CLOEXEC);
    kvro_io *io = NULL;
    kvro_error e;
    assert_status(kvro_io_from_fd(fd, 0, &io, &e), KVRO_OK, &e);
    kv = open_io(io);
    check_extent_all(kv, fd, 0);
    want_map_unsupported(kv);
    kvro_close(kv);
    close(fd);
}

static void test_extent_file_window(void **state)
{
    (void)state;
    int fd = open(padded_path, O_RDONLY | O_CLOEXEC);
    kvro_io *base = NULL;
    kvro_error e;
    assert_status(kvro_io_from_fd(fd, 0, &base, &e), KVRO_OK, &e);
    kvro *kv = open_window(base, JUNK, (int64_t)tar_len);
    check_extent_all(kv, fd, JUNK);
    check_map_errors(kv);
    want_map_unsupported(kv);
    /* Offsets in the file are the archive's, plus JUNK. */
    kvro *alone = open_path(tar_path);
    for (size_t i = 0; i < nkeys(); i++) {
        kvro_extent a, b;
        assert_status(kvro_file_extent(kv, key_at(i), &a, &e), KVRO_OK, &e);
        assert_status(kvro_file_extent(alone, key_at(i), &b, &e), KVRO_OK, &e);
        assert_int_equal(a.offset, b.offset + JUNK);
    }
    kvro_close(alone);
    kvro_close(kv);
    close(fd);

    /* A window of a window of a file opened by path. */
    assert_status(kvro_io_open_path(padded_path, KVRO_IO_RDONLY, &base, &e), KVRO_OK, &e);
    kvro_io *outer = NULL;
    assert_status(kvro_io_window(base, 1000, -1, &outer, &e), KVRO_OK, &e);
    kvro_io_close(base);
    kv = open_window(outer, JUNK - 1000, (int64_t)tar_len);
    check_extent_all(kv, -1, JUNK);
    kvro_close(kv);
}

/* Where the bytes do not lie plain, both calls say so. */
static void test_unsupported(void **state)
{
    (void)state;
    /* A .tar.gz, in memory and on disk. */
    kvro *kv = open_memory(tgz_img, tgz_len);
    want_map_unsupported(kv);
    want_extent_unsupported(kv);
    check_map_errors(kv);
    kvro_close(kv);
    kv = open_path(tgz_path);
    want_map_unsupported(kv);
    want_extent_unsupported(kv);
    kvro_close(kv);

    /* A host directory. */
    kv = open_path(tree);
    assert_string_equal(kvro_backend_of(kv), "dir");
    want_map_unsupported(kv);
    want_extent_unsupported(kv);
    check_map_errors(kv);
    kvro_close(kv);

    /* The caller's callbacks: neither memory kvro may point into nor a
     * descriptor. */
    t_fault f;
    t_fault_init(&f);
    kv = open_io(t_fault_memory(&f, tar_img, tar_len, NULL));
    want_map_unsupported(kv);
    want_extent_unsupported(kv);
    kvro_close(kv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_memory),
        cmocka_unit_test(test_map_memory_window),
        cmocka_unit_test(test_extent_file),
        cmocka_unit_test(test_extent_file_window),
        cmocka_unit_test(test_unsupported),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
