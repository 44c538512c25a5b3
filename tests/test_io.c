/*
 * test_io.c — the I/O objects (kvro_io_*) on their own: each constructor
 * and its name, reads (bounds, short reads retried, failures reported),
 * windows (nested, clipped, refused past the end, seen through by
 * kvro_io_memory and kvro_io_fd), writes (refused on a read-only object,
 * never past the end of a buffer or a window, through descriptors and
 * callbacks, short and failing), and the write-only sink. Handles opened
 * on I/O objects are test_io_open.c's.
 *
 * Only the public API, with t_fault (support.h) for callbacks.
 */
#include "support.h"

#include <kvro/kvro.h>

#include <errno.h>
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

/* ------------------------------------------------------------- fixtures */

static char *dir;            /* everything this file makes */
static char *image_path;     /* IMAGE_SIZE pattern bytes of IMAGE_SEED */
static unsigned char *image; /* ... and the same in memory */
static size_t image_len;

#define IMAGE_SIZE 4096
#define IMAGE_SEED 77

static int group_setup(void **state)
{
    (void)state;
    dir = t_tempdir("io");
    image_path = t_join(dir, "image.bin");
    t_write_pattern(image_path, IMAGE_SEED, IMAGE_SIZE);
    image = (unsigned char *)t_slurp(image_path, &image_len);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    t_rmrf(dir);
    free(dir);
    free(image_path);
    free(image);
    return 0;
}

/* ------------------------------------------------------------- helpers */

/* A file of N pattern bytes of SEED in DIR; free() the path. */
static char *pattern_file(const char *name, uint64_t seed, size_t n)
{
    char *p = t_join(dir, name);
    t_write_pattern(p, seed, n);
    return p;
}


/* ---------------------------------------------------------------- names */

static void test_names(void **state)
{
    (void)state;
    kvro_error e;
    kvro_io *io = NULL;

    /* A path is named by its path. */
    assert_status(kvro_io_open_path(image_path, KVRO_IO_RDONLY, &io, &e), KVRO_OK, &e);
    assert_string_equal(kvro_io_name(io), image_path);
    assert_false(kvro_io_writable(io));
    kvro_io_close(io);

    /* A descriptor by its number. */
    int fd = open(image_path, O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_status(kvro_io_from_fd(fd, KVRO_IO_RDONLY, &io, &e), KVRO_OK, &e);
    char *want = t_fmt("fd:%d", fd);
    assert_string_equal(kvro_io_name(io), want);
    free(want);
    kvro_io_close(io);
    close(fd);

    /* Memory by its address and length, read-only or not. */
    unsigned char buf[100];
    io = t_mem_io(buf, sizeof buf);
    want = t_fmt("memory:%p+100", (void *)buf);
    assert_string_equal(kvro_io_name(io), want);
    assert_int_equal(strncmp(kvro_io_name(io), "memory:0x", 9), 0);
    assert_false(kvro_io_writable(io));

    /* A window by its base's name, offset and length (-1 resolved), and a
     * window of a window by its whole path. */
    kvro_io *w = t_window(io, 10, -1);
    char *wname = t_fmt("%s@10+90", want);
    assert_string_equal(kvro_io_name(w), wname);
    kvro_io *w2 = t_window(w, 5, 20);
    char *w2name = t_fmt("%s@5+20", wname);
    assert_string_equal(kvro_io_name(w2), w2name);
    free(w2name);
    free(wname);
    kvro_io_close(w2);
    kvro_io_close(w);

    /* Renamed: the new name is copied, and later windows use it. */
    char name[] = "standard input";
    assert_status(kvro_io_set_name(io, name, &e), KVRO_OK, &e);
    name[0] = 'X';
    assert_string_equal(kvro_io_name(io), "standard input");
    w = t_window(io, 0, 0);
    assert_string_equal(kvro_io_name(w), "standard input@0+0");
    kvro_io_close(w);
    assert_status(kvro_io_set_name(io, NULL, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_set_name(NULL, "x", &e), KVRO_E_INVALID, &e);
    assert_string_equal(kvro_io_name(io), "standard input");
    kvro_io_close(io);
    free(want);

    assert_status(kvro_io_from_memory_rw(buf, sizeof buf, &io, &e), KVRO_OK, &e);
    want = t_fmt("memory:%p+100", (void *)buf);
    assert_string_equal(kvro_io_name(io), want);
    assert_true(kvro_io_writable(io));
    w = t_window(io, 1, 2);
    assert_true(kvro_io_writable(w)); /* writable if its base is */
    kvro_io_close(w);
    kvro_io_close(io);
    free(want);

    /* Callbacks: "callbacks:0xCTX" by default, else the name given (copied). */
    t_fault f;
    t_fault_init(&f);
    io = t_fault_memory(&f, buf, sizeof buf, NULL);
    want = t_fmt("callbacks:%p", (void *)&f);
    assert_string_equal(kvro_io_name(io), want);
    free(want);
    kvro_io_close(io);
    t_fault_init(&f);
    char given[] = "my device";
    io = t_fault_memory(&f, buf, sizeof buf, given);
    given[0] = 'X';
    assert_string_equal(kvro_io_name(io), "my device");
    kvro_io_close(io);

    assert_null(kvro_io_name(NULL));
    assert_false(kvro_io_writable(NULL));
}

/* ---------------------------------------------------------------- reads */

/* Reads of IO, whose bytes are pattern SEED (N of them): bounds and the
 * end. */
static void check_reads(kvro_io *io, uint64_t seed, size_t n)
{
    kvro_error e;
    int64_t size = -1;
    assert_status(kvro_io_size(io, &size, &e), KVRO_OK, &e);
    assert_int_equal(size, n);
    unsigned char *buf = malloc(n + 64);
    size_t got = 99;
    assert_status(kvro_io_read(io, 0, buf, n, &got, &e), KVRO_OK, &e);
    assert_int_equal(got, n);
    for (size_t i = 0; i < n; i++)
        if (buf[i] != t_pattern(seed, i))
            fail_msg("%s: byte %zu differs", kvro_io_name(io), i);
    /* Across the end: short, and only then. */
    memset(buf, 0xA5, n + 64);
    assert_status(kvro_io_read(io, (int64_t)n - 10, buf, 64, &got, &e), KVRO_OK, &e);
    assert_int_equal(got, 10);
    for (size_t i = 0; i < 10; i++)
        assert_int_equal(buf[i], t_pattern(seed, n - 10 + i));
    for (size_t i = 10; i < 64; i++)
        assert_int_equal(buf[i], 0xA5);
    /* At and past the end: nothing, and no error. */
    got = 99;
    assert_status(kvro_io_read(io, (int64_t)n, buf, 10, &got, &e), KVRO_OK, &e);
    assert_int_equal(got, 0);
    got = 99;
    assert_status(kvro_io_read(io, (int64_t)n + 1000000, buf, 10, &got, &e), KVRO_OK, &e);
    assert_int_equal(got, 0);
    got = 99;
    assert_status(kvro_io_read(io, 5, buf, 0, &got, &e), KVRO_OK, &e);
    assert_int_equal(got, 0);
    /* A negative offset, and a range whose end overflows. */
    got = 99;
    assert_status(kvro_io_read(io, -1, buf, 1, &got, &e), KVRO_E_INVALID, &e);
    assert_int_equal(got, 0);
    assert_status(kvro_io_read(io, INT64_MAX, buf, 2, &got, &e), KVRO_E_INVALID, &e);
    assert_int_equal(got, 0);
    assert_status(kvro_io_read(io, INT64_MIN, buf, 1, &got, &e), KVRO_E_INVALID, &e);
    free(buf);
}

static void test_reads(void **state)
{
    (void)state;
    enum { N = 10000, SEED = 7 };
    kvro_error e;
    unsigned char *data = malloc(N);
    for (size_t i = 0; i < N; i++)
        data[i] = t_pattern(SEED, i);

    kvro_io *io = t_mem_io(data, N);
    check_reads(io, SEED, N);
    kvro_io_close(io);

    char *path = pattern_file("reads.bin", SEED, N);
    assert_status(kvro_io_open_path(path, KVRO_IO_RDONLY, &io, &e), KVRO_OK, &e);
    check_reads(io, SEED, N);
    kvro_io_close(io);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    assert_status(kvro_io_from_fd(fd, KVRO_IO_RDONLY, &io, &e), KVRO_OK, &e);
    check_reads(io, SEED, N);
    kvro_io_close(io);
    close(fd);

    /* Callbacks that move at most 3 bytes a call: kvro_io_read asks again
     * until it has all or the device ends. */
    t_fault f;
    t_fault_init(&f);
    f.max_read = 3;
    io = t_fault_memory(&f, data, N, "three at a time");
    check_reads(io, SEED, N);
    size_t got;
    unsigned char buf[100];
    t_fault_reset(&f);
    assert_status(kvro_io_read(io, 1, buf, 100, &got, &e), KVRO_OK, &e);
    assert_int_equal(got, 100);
    assert_int_equal(atomic_load(&f.reads), 34);
    assert_memory_equal(buf, data + 1, 100);

    /* A failing callback: KVRO_E_IO naming the offset and the cause, the
     * bytes before it counted. */
    f.fail_read = 36; /* the third call of the next read */
    f.error = ENXIO;
    assert_status(kvro_io_read(io, 50, buf, 100, &got, &e), KVRO_E_IO, &e);
    assert_int_equal(e.status, KVRO_E_IO);
    t_want_detail(&e, strerror(ENXIO));
    t_want_detail(&e, "offset 56"); /* 50 + the 6 bytes the first two calls moved */
    assert_int_equal(atomic_load(&f.injected), 1);
    /* A transient failure: the next read is whole. */
    assert_status(kvro_io_read(io, 50, buf, 100, &got, &e), KVRO_OK, &e);
    assert_int_equal(got, 100);
    assert_memory_equal(buf, data + 50, 100);
    /* A failing size. */
    int64_t size;
    f.fail_size = atomic_load(&f.sizes);
    assert_status(kvro_io_size(io, &size, &e), KVRO_E_IO, &e);
    t_want_detail(&e, strerror(ENXIO));
    assert_status(kvro_io_size(io, &size, &e), KVRO_OK, &e);
    assert_int_equal(size, N);
    kvro_io_close(io);
    free(path);
    free(data);
}

/* Callbacks that break the contract: claim more than asked, make no
 * progress writing, report a negative size. */
static int lying_read(void *ctx, int64_t off, void *buf, size_t n, size_t *got)
{
    (void)ctx;
    (void)off;
    memset(buf, 'x', n);
    *got = n + 1;
    return 0;
}

static int lying_size(void *ctx, int64_t *size)
{
    *size = *(int64_t *)ctx;
    return 0;
}

static int stuck_write(void *ctx, int64_t off, const void *buf, size_t n, size_t *done)
{
    (void)ctx;
    (void)off;
    (void)buf;
    (void)n;
    *done = 0;
    return 0;
}

static void test_broken_callbacks(void **state)
{
    (void)state;
    kvro_error e;
    int64_t size = 100;
    kvro_io_callbacks cb = {.read = lying_read, .size = lying_size, .write = stuck_write};
    kvro_io *io = NULL;
    assert_status(kvro_io_from_callbacks(&cb, &size, "liar", KVRO_IO_RDWR, &io, &e), KVRO_OK, &e);
    unsigned char buf[16];
    size_t got = 0;
    assert_status(kvro_io_read(io, 0, buf, 8, &got, &e), KVRO_E_IO, &e);
    assert_int_equal(e.status, KVRO_E_IO);
    assert_status(kvro_io_write(io, 0, "abc", 3, &e), KVRO_E_IO, &e); /* never spins */
    size = -5;
    int64_t got_size = 1;
    assert_status(kvro_io_size(io, &got_size, &e), KVRO_E_IO, &e);
    assert_int_equal(got_size, 0);
    t_want_detail(&e, "negative");
    kvro_io_close(io);

    /* What the constructor refuses (and then close is never called). */
    t_fault f;
    t_fault_init(&f);
    kvro_io_callbacks none = {0};
    assert_status(kvro_io_from_callbacks(&none, &f, NULL, 0, &io, &e), KVRO_E_INVALID, &e);
    cb = (kvro_io_callbacks){.read = lying_read};
    assert_status(kvro_io_from_callbacks(&cb, &f, NULL, 0, &io, &e), KVRO_E_INVALID, &e);
    cb = (kvro_io_callbacks){.size = lying_size};
    assert_status(kvro_io_from_callbacks(&cb, &f, NULL, 0, &io, &e), KVRO_E_INVALID, &e);
    cb = (kvro_io_callbacks){.read = lying_read, .size = lying_size};
    assert_status(kvro_io_from_callbacks(&cb, &f, NULL, KVRO_IO_RDWR, &io, &e), KVRO_E_INVALID, &e);
    t_want_detail(&e, "write");
    assert_status(kvro_io_from_callbacks(&cb, &f, NULL, 0x40, &io, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_from_callbacks(NULL, &f, NULL, 0, &io, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_from_callbacks(&cb, &f, NULL, 0, NULL, &e), KVRO_E_INVALID, &e);
}

/* -------------------------------------------------------------- windows */

static void test_windows(void **state)
{
    (void)state;
    enum { N = 1000, SEED = 3 };
    kvro_error e;
    unsigned char data[N];
    for (size_t i = 0; i < N; i++)
        data[i] = t_pattern(SEED, i);
    kvro_io *base = t_mem_io(data, N);
    kvro_io *w1 = t_window(base, 100, 500); /* [100, 600) */
    kvro_io *w2 = t_window(w1, 50, 200);    /* [150, 350) */
    int64_t size;
    assert_status(kvro_io_size(w2, &size, &e), KVRO_OK, &e);
    assert_int_equal(size, 200);
    unsigned char buf[300];
    size_t got;
    assert_status(kvro_io_read(w2, 0, buf, 200, &got, &e), KVRO_OK, &e);
    assert_int_equal(got, 200);
    assert_memory_equal(buf, data + 150, 200);
    /* Clipped at the window's end, not the base's. */
    memset(buf, 0, sizeof buf);
    assert_status(kvro_io_read(w2, 190, buf, 100, &got, &e), KVRO_OK, &e);
    assert_int_equal(got, 10);
    assert_memory_equal(buf, data + 340, 10);
    assert_status(kvro_io_read(w1, 450, buf, 300, &got, &e), KVRO_OK, &e);
    assert_int_equal(got, 50);
    assert_memory_equal(buf, data + 550, 50);
    assert_status(kvro_io_read(w2, 200, buf, 1, &got, &e), KVRO_OK, &e);
    assert_int_equal(got, 0);
    assert_status(kvro_io_read(w2, -1, buf, 1, &got, &e), KVRO_E_INVALID, &e);

    /* Zero copy sees through windows: the innermost memory, offsets added. */
    size_t len = 0;
    assert_ptr_equal(kvro_io_memory(w2, &len), data + 150);
    assert_int_equal(len, 200);
    assert_ptr_equal(kvro_io_memory(base, &len), data);
    assert_int_equal(len, N);
    int64_t off = -1;
    assert_int_equal(kvro_io_fd(w2, &off), -1);

    /* Past the end (of the base, or of the window made on): refused. */
    kvro_io *bad = NULL;
    assert_status(kvro_io_window(base, N + 1, 0, &bad, &e), KVRO_E_INVALID, &e);
    assert_string_equal(e.source, kvro_io_name(base));
    t_want_detail(&e, "past the end");
    assert_status(kvro_io_window(base, 900, 101, &bad, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_window(w1, 0, 501, &bad, &e), KVRO_E_INVALID, &e);
    assert_string_equal(e.source, kvro_io_name(w1));
    assert_status(kvro_io_window(w1, 501, -1, &bad, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_window(base, INT64_MAX, 1, &bad, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_window(base, 1, INT64_MAX, &bad, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_window(base, -1, 1, &bad, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_window(base, 0, -2, &bad, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_window(NULL, 0, 1, &bad, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_window(base, 0, 1, NULL, &e), KVRO_E_INVALID, &e);
    /* Up to the end exactly, and empty at the end, are fine. */
    kvro_io *edge = t_window(base, 900, 100);
    kvro_io_close(edge);
    edge = t_window(base, N, -1);
    assert_status(kvro_io_size(edge, &size, &e), KVRO_OK, &e);
    assert_int_equal(size, 0);
    assert_status(kvro_io_read(edge, 0, buf, 1, &got, &e), KVRO_OK, &e);
    assert_int_equal(got, 0);
    kvro_io_close(edge);
    kvro_io_close(w2);
    kvro_io_close(w1);
    kvro_io_close(base);

    /* A window of a file: its descriptor, at the offsets added up. */
    char *path = pattern_file("window.bin", SEED, N);
    kvro_io *file = NULL;
    assert_status(kvro_io_open_path(path, KVRO_IO_RDONLY, &file, &e), KVRO_OK, &e);
    w1 = t_window(file, 100, 500);
    w2 = t_window(w1, 50, 200);
    int fd = kvro_io_fd(file, &off);
    assert_true(fd >= 0);
    assert_int_equal(off, 0);
    assert_int_equal(kvro_io_fd(w2, &off), fd);
    assert_int_equal(off, 150);
    assert_null(kvro_io_memory(w2, &len));
    assert_status(kvro_io_read(w2, 190, buf, 100, &got, &e), KVRO_OK, &e);
    assert_int_equal(got, 10);
    assert_memory_equal(buf, data + 340, 10);
    kvro_io_close(w2);
    kvro_io_close(w1);
    kvro_io_close(file);
    free(path);
}

/* --------------------------------------------------------------- writes */

static void test_read_only_writes(void **state)
{
    (void)state;
    kvro_error e;
    unsigned char data[64] = {0};
    kvro_io *ro[6];
    ro[0] = t_mem_io(data, sizeof data);
    ro[1] = t_window(ro[0], 8, 8);
    assert_status(kvro_io_open_path(image_path, KVRO_IO_RDONLY, &ro[2], &e), KVRO_OK, &e);
    int fd = open(image_path, O_RDWR | O_CLOEXEC); /* the descriptor could write; the object not */
    assert_status(kvro_io_from_fd(fd, KVRO_IO_RDONLY, &ro[3], &e), KVRO_OK, &e);
    t_fault f;
    t_fault_init(&f);
    ro[4] = t_fault_memory(&f, data, sizeof data, NULL);
    ro[5] = t_window(ro[3], 0, 512);
    for (size_t i = 0; i < 6; i++) {
        assert_false(kvro_io_writable(ro[i]));
        assert_status(kvro_io_write(ro[i], 0, "x", 1, &e), KVRO_E_READ_ONLY, &e);
        assert_int_equal(e.status, KVRO_E_READ_ONLY);
        /* Flushing nothing written is fine. */
        assert_status(kvro_io_flush(ro[i], &e), KVRO_OK, &e);
    }
    assert_int_equal(atomic_load(&f.writes), 0);
    assert_int_equal(atomic_load(&f.flushes), 0);
    for (size_t i = 0; i < 64; i++)
        assert_int_equal(data[i], 0);
    size_t n;
    char *now = t_slurp(image_path, &n);
    assert_int_equal(n, image_len);
    assert_memory_equal(now, image, n);
    free(now);
    for (size_t i = 6; i-- > 0;)
        kvro_io_close(ro[i]);
    close(fd);
}

static void test_memory_writes(void **state)
{
    (void)state;
    enum { N = 300 };
    kvro_error e;
    unsigned char data[N], want[N];
    for (size_t i = 0; i < N; i++)
        data[i] = want[i] = (unsigned char)i;
    kvro_io *io = NULL;
    assert_status(kvro_io_from_memory_rw(data, 200, &io, &e), KVRO_OK, &e);
    assert_status(kvro_io_write(io, 5, "hello", 5, &e), KVRO_OK, &e);
    memcpy(want + 5, "hello", 5);
    assert_memory_equal(data, want, N);
    assert_status(kvro_io_write(io, 195, "tail!", 5, &e), KVRO_OK, &e); /* up to the end */
    memcpy(want + 195, "tail!", 5);
    assert_memory_equal(data, want, N);
    /* Past the end, wholly or in part: KVRO_E_NO_SPACE, and no byte is
     * written, inside the buffer or out. */
    assert_status(kvro_io_write(io, 196, "12345", 5, &e), KVRO_E_NO_SPACE, &e);
    assert_int_equal(e.status, KVRO_E_NO_SPACE);
    assert_status(kvro_io_write(io, 200, "1", 1, &e), KVRO_E_NO_SPACE, &e);
    assert_status(kvro_io_write(io, 1000, "1", 1, &e), KVRO_E_NO_SPACE, &e);
    assert_status(kvro_io_write(io, INT64_MAX, "1", 1, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_write(io, -1, "1", 1, &e), KVRO_E_INVALID, &e);
    assert_memory_equal(data, want, N);
    assert_status(kvro_io_write(io, 200, "", 0, &e), KVRO_OK, &e);
    assert_status(kvro_io_flush(io, &e), KVRO_OK, &e);
    /* Read back through the object. */
    unsigned char buf[5];
    size_t got;
    assert_status(kvro_io_read(io, 5, buf, 5, &got, &e), KVRO_OK, &e);
    assert_memory_equal(buf, "hello", 5);

    /* Windows write inside themselves only: a window [100, 150) and one
     * [110, 130) inside it. */
    kvro_io *w = t_window(io, 100, 50), *w2 = t_window(w, 10, 20);
    assert_true(kvro_io_writable(w2));
    assert_status(kvro_io_write(w, 40, "0123456789", 10, &e), KVRO_OK, &e);
    memcpy(want + 140, "0123456789", 10);
    assert_memory_equal(data, want, N);
    assert_status(kvro_io_write(w, 45, "0123456789", 10, &e), KVRO_E_NO_SPACE, &e);
    assert_status(kvro_io_write(w2, 15, "0123456789", 10, &e), KVRO_E_NO_SPACE, &e);
    assert_status(kvro_io_write(w2, 20, "x", 1, &e), KVRO_E_NO_SPACE, &e);
    assert_memory_equal(data, want, N);
    assert_status(kvro_io_write(w2, 0, "AB", 2, &e), KVRO_OK, &e);
    memcpy(want + 110, "AB", 2);
    assert_memory_equal(data, want, N);
    kvro_io_close(w2);
    kvro_io_close(w);
    kvro_io_close(io);
}

static void test_fd_writes(void **state)
{
    (void)state;
    enum { N = 100, SEED = 9 };
    kvro_error e;
    char *path = pattern_file("writes.bin", SEED, N);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    assert_true(fd >= 0);
    kvro_io *io = NULL;
    assert_status(kvro_io_from_fd(fd, KVRO_IO_RDWR, &io, &e), KVRO_OK, &e);
    assert_true(kvro_io_writable(io));
    assert_status(kvro_io_write(io, 10, "abcde", 5, &e), KVRO_OK, &e);
    char buf[8];
    assert_int_equal(pread(fd, buf, 5, 10), 5);
    assert_memory_equal(buf, "abcde", 5);
    /* A file grows: the end of a file is no limit. */
    assert_status(kvro_io_write(io, 200, "xyz", 3, &e), KVRO_OK, &e);
    int64_t size;
    assert_status(kvro_io_size(io, &size, &e), KVRO_OK, &e);
    assert_int_equal(size, 203);
    assert_status(kvro_io_flush(io, &e), KVRO_OK, &e);

    /* A window of it does not: [50, 90). */
    kvro_io *w = t_window(io, 50, 40);
    size_t n;
    char *before = t_slurp(path, &n);
    assert_status(kvro_io_write(w, 35, "0123456789", 10, &e), KVRO_E_NO_SPACE, &e);
    assert_status(kvro_io_write(w, 40, "0", 1, &e), KVRO_E_NO_SPACE, &e);
    char *after = t_slurp(path, &n);
    assert_int_equal(n, 203);
    assert_memory_equal(before, after, n);
    free(after);
    assert_status(kvro_io_write(w, 30, "0123456789", 10, &e), KVRO_OK, &e);
    assert_status(kvro_io_flush(w, &e), KVRO_OK, &e);
    assert_int_equal(pread(fd, buf, 8, 80), 8);
    assert_memory_equal(buf, "01234567", 8);
    assert_int_equal(pread(fd, buf, 1, 90), 1);
    assert_int_equal(buf[0], before[90]);
    free(before);
    kvro_io_close(w);
    kvro_io_close(io);
    assert_true(t_fd_open(fd)); /* borrowed */
    close(fd);

    /* By path, read-write. */
    assert_status(kvro_io_open_path(path, KVRO_IO_RDWR, &io, &e), KVRO_OK, &e);
    assert_status(kvro_io_write(io, 0, "PATH", 4, &e), KVRO_OK, &e);
    assert_status(kvro_io_flush(io, &e), KVRO_OK, &e);
    kvro_io_close(io);
    char *now = t_slurp(path, &n);
    assert_memory_equal(now, "PATH", 4);
    free(now);
    free(path);
}

static void test_callback_writes(void **state)
{
    (void)state;
    enum { N = 64 };
    kvro_error e;
    unsigned char data[N];
    memset(data, '.', N);
    t_fault f;
    t_fault_init(&f);
    f.max_write = 3; /* short writes: kvro_io_write asks again */
    kvro_io *io = t_fault_memory_rw(&f, data, N, "rw device");
    assert_true(kvro_io_writable(io));
    assert_status(kvro_io_write(io, 4, "0123456789", 10, &e), KVRO_OK, &e);
    assert_memory_equal(data + 4, "0123456789", 10);
    assert_int_equal(data[3], '.');
    assert_int_equal(data[14], '.');
    assert_int_equal(atomic_load(&f.writes), 4);
    assert_int_equal(atomic_load(&f.write_bytes), 10);
    assert_status(kvro_io_flush(io, &e), KVRO_OK, &e);
    assert_int_equal(atomic_load(&f.flushes), 1);

    /* A write that fails: KVRO_E_IO with the cause and the offset; a torn
     * one leaves its first bytes, and only those. */
    f.max_write = 0;
    f.fail_write = atomic_load(&f.writes);
    f.torn = 2;
    assert_status(kvro_io_write(io, 20, "ABCDEF", 6, &e), KVRO_E_IO, &e);
    assert_string_equal(e.detail, "cannot write at offset 20: Input/output error");
    assert_memory_equal(data + 20, "AB....", 6);
    assert_int_equal(atomic_load(&f.injected), 1);
    /* ... and the next one works again. */
    assert_status(kvro_io_write(io, 20, "ABCDEF", 6, &e), KVRO_OK, &e);
    assert_memory_equal(data + 20, "ABCDEF", 6);
    f.fail_flush = atomic_load(&f.flushes);
    assert_status(kvro_io_flush(io, &e), KVRO_E_IO, &e);
    t_want_detail(&e, "flush");
    /* A full device is KVRO_E_NO_SPACE, as from a file. */
    f.fail_write = atomic_load(&f.writes);
    f.torn = 0;
    f.error = ENOSPC;
    assert_status(kvro_io_write(io, 30, "x", 1, &e), KVRO_E_NO_SPACE, &e);
    t_want_detail(&e, strerror(ENOSPC));
    f.error = EIO;
    /* A device that died: every call fails from then on. */
    f.sticky = true;
    unsigned char buf[4];
    size_t got;
    assert_status(kvro_io_write(io, 0, "zz", 2, &e), KVRO_E_IO, &e);
    assert_status(kvro_io_read(io, 0, buf, 4, &got, &e), KVRO_E_IO, &e);
    assert_status(kvro_io_flush(io, &e), KVRO_E_IO, &e);
    assert_int_equal(data[0], '.');
    kvro_io_close(io);
    assert_int_equal(atomic_load(&f.closes), 1);
}

/* A write-only sink: a pipe, written in order; nothing reads it. */
static void test_sink(void **state)
{
    (void)state;
    kvro_error e;
    int p[2];
    assert_int_equal(pipe(p), 0);
    kvro_io *io = NULL;
    assert_status(kvro_io_sink_fd(p[1], 0, &io, &e), KVRO_OK, &e);
    char *want = t_fmt("fd:%d", p[1]);
    assert_string_equal(kvro_io_name(io), want);
    free(want);
    assert_true(kvro_io_writable(io));
    assert_status(kvro_io_write(io, 0, "abc", 3, &e), KVRO_OK, &e);
    assert_status(kvro_io_write(io, 5, "x", 1, &e), KVRO_E_INVALID, &e); /* a gap */
    assert_status(kvro_io_write(io, 0, "x", 1, &e), KVRO_E_INVALID, &e); /* going back */
    assert_status(kvro_io_write(io, 3, "de", 2, &e), KVRO_OK, &e);
    int64_t size = -1;
    assert_status(kvro_io_size(io, &size, &e), KVRO_OK, &e);
    assert_int_equal(size, 5);
    assert_status(kvro_io_flush(io, &e), KVRO_OK, &e); /* a pipe has nothing to sync */
    char buf[8];
    size_t got = 99;
    assert_status(kvro_io_read(io, 0, buf, 1, &got, &e), KVRO_E_UNSUPPORTED, &e);
    assert_int_equal(got, 0);
    /* Not an image: opening it fails, and keeps no reference. */
    kvro *kv = NULL;
    assert_true(kvro_open_io(io, NULL, &kv, &e) != KVRO_OK);
    assert_null(kv);
    kvro_io_close(io);
    assert_true(t_fd_open(p[1])); /* borrowed */
    close(p[1]);
    assert_int_equal(read(p[0], buf, sizeof buf), 5);
    assert_memory_equal(buf, "abcde", 5);
    close(p[0]);

    /* Owned: closed with the object, or when refused. */
    assert_int_equal(pipe(p), 0);
    assert_status(kvro_io_sink_fd(p[1], KVRO_IO_OWN_FD, &io, &e), KVRO_OK, &e);
    kvro_io_close(io);
    assert_true(t_fd_closed(p[1]));
    assert_status(kvro_io_sink_fd(p[0], KVRO_IO_OWN_FD | KVRO_IO_RDWR, &io, &e), KVRO_E_INVALID,
                  &e);
    assert_null(io);
    assert_true(t_fd_closed(p[0]));
    assert_status(kvro_io_sink_fd(-1, 0, &io, &e), KVRO_E_INVALID, &e);
}

/* A constructor that fails leaves the caller's pointer NULL, never as it
 * was: a caller that closes it on failure must not free garbage. */
static void test_failures_clear_result(void **state)
{
    (void)state;
    kvro_error e;
    unsigned char data[16] = {0};
    kvro_io *base, *io;
    assert_status(kvro_io_from_memory(data, sizeof data, &base, &e), KVRO_OK, &e);
    io = (kvro_io *)data;
    assert_status(kvro_io_window(base, 10, 10, &io, &e), KVRO_E_INVALID, &e);
    assert_null(io);
    io = (kvro_io *)data;
    assert_status(kvro_io_window(base, 17, -1, &io, &e), KVRO_E_INVALID, &e);
    assert_null(io);
    io = (kvro_io *)data;
    assert_status(kvro_io_from_memory(NULL, 5, &io, &e), KVRO_E_INVALID, &e);
    assert_null(io);
    kvro_io_callbacks none = {0};
    io = (kvro_io *)data;
    assert_status(kvro_io_from_callbacks(&none, NULL, NULL, 0, &io, &e), KVRO_E_INVALID, &e);
    assert_null(io);
    io = (kvro_io *)data;
    assert_status(kvro_io_from_fd(-1, 0, &io, &e), KVRO_E_INVALID, &e);
    assert_null(io);
    /* And a NULL object is an error, not a crash. */
    size_t got;
    int64_t size;
    assert_status(kvro_io_read(NULL, 0, data, 1, &got, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_size(NULL, &size, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_write(NULL, 0, data, 1, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_flush(NULL, &e), KVRO_E_INVALID, &e);
    kvro_io_close(base);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_reads),
        cmocka_unit_test(test_broken_callbacks),
        cmocka_unit_test(test_windows),
        cmocka_unit_test(test_read_only_writes),
        cmocka_unit_test(test_memory_writes),
        cmocka_unit_test(test_fd_writes),
        cmocka_unit_test(test_callback_writes),
        cmocka_unit_test(test_sink),
        cmocka_unit_test(test_failures_clear_result),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
