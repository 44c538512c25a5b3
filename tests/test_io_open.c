/*
 * test_io_open.c — handles opened on I/O objects (kvro_open_io,
 * kvro_fs_open_io): reference counting (a handle keeps its object; an
 * owned descriptor is closed exactly at the last reference, a borrowed one
 * never; the callbacks' close runs once; a failed open keeps nothing),
 * what is refused (a pipe, a directory, a FIFO that must not hang, "dir"
 * on an image, a read-write filesystem on a read-only object), the names
 * handles and error records carry, and a .tar.gz opened from memory (its
 * index built in memory and never saved unless index_path says where; a
 * saved one is loaded by the next open from memory).
 *
 * Only the public API, with t_fault (support.h) for callbacks.
 */
#include "support.h"

#include <kvro/kvro.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"

/* ------------------------------------------------------------- fixtures */

static char *dir;      /* everything this file makes */
static char *tree;     /* a small tree: a.txt, big.bin, sub/c.txt, empty */
static char *tar_path; /* GNU tar of it */
static char *tgz_path; /* gzip -n of that */
static unsigned char *tar_bytes, *tgz_bytes;
static size_t tar_len, tgz_len;

#define BIG_SIZE (300 * 1024)
#define BIG_SEED 42

static int group_setup(void **state)
{
    (void)state;
    dir = t_tempdir("io-open");
    tree = t_join(dir, "tree");
    char *p = t_join(tree, "a.txt");
    t_write(p, "hello, world\n", 13);
    free(p);
    p = t_join(tree, "sub/c.txt");
    t_write(p, "see", 3);
    free(p);
    p = t_join(tree, "empty");
    t_write(p, "", 0);
    free(p);
    p = t_join(tree, "big.bin");
    t_write_pattern(p, BIG_SEED, BIG_SIZE);
    free(p);
    tar_path = t_join(dir, "t.tar");
    tgz_path = t_join(dir, "t.tar.gz");
    char *cmd = t_fmt("tar -C '%s' --format=gnu -cf '%s' . && gzip -n -c '%s' > '%s'", tree,
                      tar_path, tar_path, tgz_path);
    if (t_run(cmd, NULL, NULL) != 0) {
        fprintf(stderr, "cannot run: %s\n", cmd);
        return -1;
    }
    free(cmd);
    tar_bytes = (unsigned char *)t_slurp(tar_path, &tar_len);
    tgz_bytes = (unsigned char *)t_slurp(tgz_path, &tgz_len);
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
    free(tar_bytes);
    free(tgz_bytes);
    return 0;
}

/* ------------------------------------------------------------- helpers */

/* The value of KEY in KV must be WANT[N]. */
static void want_bytes(kvro *kv, const char *key, const void *want, size_t n)
{
    unsigned char *buf = malloc(n + 1);
    int64_t got = -1;
    kvro_error e;
    assert_status(kvro_read(kv, key, 0, (int64_t)n + 1, buf, &got, &e), KVRO_OK, &e);
    assert_int_equal(got, n);
    assert_memory_equal(buf, want, n);
    free(buf);
}

static void want_big(kvro *kv)
{
    unsigned char *want = malloc(BIG_SIZE);
    for (size_t i = 0; i < BIG_SIZE; i++)
        want[i] = t_pattern(BIG_SEED, i);
    want_bytes(kv, "big.bin", want, BIG_SIZE);
    free(want);
}

/* Every value of the small tree, through KV. */
static void want_tree(kvro *kv)
{
    want_bytes(kv, "a.txt", "hello, world\n", 13);
    want_bytes(kv, "sub/c.txt", "see", 3);
    want_bytes(kv, "empty", "", 0);
    want_big(kv);
}


/* ---------------------------------------------------- reference counts */

static void test_handle_keeps_object(void **state)
{
    (void)state;
    kvro_error e;
    t_fault f;
    t_fault_init(&f);
    kvro_io *io = t_fault_memory(&f, tar_bytes, tar_len, "held");
    kvro *kv = NULL;
    assert_status(kvro_open_io(io, NULL, &kv, &e), KVRO_OK, &e);
    kvro_io_close(io); /* the caller's reference */
    assert_int_equal(atomic_load(&f.closes), 0);
    want_tree(kv);
    kvro_close(kv);
    assert_int_equal(atomic_load(&f.closes), 1);

    /* kvro_io_ref: one more close each. */
    t_fault_init(&f);
    io = t_fault_memory(&f, tar_bytes, tar_len, NULL);
    assert_ptr_equal(kvro_io_ref(io), io);
    kvro_io_close(io);
    assert_int_equal(atomic_load(&f.closes), 0);
    kvro_io_close(io);
    assert_int_equal(atomic_load(&f.closes), 1);
    assert_null(kvro_io_ref(NULL));
    kvro_io_close(NULL);

    /* A window keeps its base. */
    t_fault_init(&f);
    io = t_fault_memory(&f, tar_bytes, tar_len, NULL);
    kvro_io *w = t_window(io, 0, (int64_t)tar_len);
    kvro_io_close(io);
    assert_status(kvro_open_io(w, NULL, &kv, &e), KVRO_OK, &e);
    kvro_io_close(w);
    assert_int_equal(atomic_load(&f.closes), 0);
    want_tree(kv);
    kvro_close(kv);
    assert_int_equal(atomic_load(&f.closes), 1);

    /* A failed open keeps no reference. */
    t_fault_init(&f);
    unsigned char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = t_pattern(1, i);
    io = t_fault_memory(&f, junk, sizeof junk, "junk");
    kv = (kvro *)&f;
    assert_status(kvro_open_io(io, NULL, &kv, &e), KVRO_E_UNSUPPORTED, &e);
    assert_null(kv);
    kvro_io_close(io);
    assert_int_equal(atomic_load(&f.closes), 1);
}

static void test_fd_ownership(void **state)
{
    (void)state;
    kvro_error e;
    /* Owned: closed with the last reference, which is the handle's. */
    int fd = open(tar_path, O_RDONLY | O_CLOEXEC);
    kvro_io *io = NULL;
    assert_status(kvro_io_from_fd(fd, KVRO_IO_OWN_FD, &io, &e), KVRO_OK, &e);
    kvro *kv = NULL;
    assert_status(kvro_open_io(io, NULL, &kv, &e), KVRO_OK, &e);
    kvro_io_close(io);
    assert_true(t_fd_open(fd));
    want_tree(kv);
    assert_true(t_fd_open(fd));
    kvro_close(kv);
    assert_true(t_fd_closed(fd));

    /* Borrowed: never closed. */
    fd = open(tar_path, O_RDONLY | O_CLOEXEC);
    assert_status(kvro_io_from_fd(fd, 0, &io, &e), KVRO_OK, &e);
    assert_status(kvro_open_io(io, NULL, &kv, &e), KVRO_OK, &e);
    kvro_io_close(io);
    want_tree(kv);
    kvro_close(kv);
    assert_true(t_fd_open(fd));
    char c;
    assert_int_equal(pread(fd, &c, 1, 0), 1);
    close(fd);

    /* Owned and refused: closed all the same (so the caller never has to). */
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_status(kvro_io_from_fd(p[0], KVRO_IO_OWN_FD, &io, &e), KVRO_E_UNSUPPORTED, &e);
    assert_null(io);
    assert_true(t_fd_closed(p[0]));
    assert_status(kvro_io_from_fd(p[1], KVRO_IO_OWN_FD | 0x40, &io, &e), KVRO_E_INVALID, &e);
    assert_true(t_fd_closed(p[1]));
}

/* ------------------------------------------------------------- refusals */

static void test_fd_refusals(void **state)
{
    (void)state;
    kvro_error e;
    kvro_io *io = NULL;
    int p[2];
    assert_int_equal(pipe(p), 0);
    io = (kvro_io *)&e;
    assert_status(kvro_io_from_fd(p[0], 0, &io, &e), KVRO_E_UNSUPPORTED, &e);
    assert_null(io);
    t_want_detail(&e, "pipe");
    assert_true(t_fd_open(p[0])); /* borrowed, refused: still the caller's */
    close(p[0]);
    close(p[1]);

    int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_status(kvro_io_from_fd(d, 0, &io, &e), KVRO_E_IS_DIR, &e);
    assert_null(io);
    assert_true(t_fd_open(d));
    close(d);

    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_status(kvro_io_from_fd(null, 0, &io, &e), KVRO_E_UNSUPPORTED, &e);
    close(null);

    assert_status(kvro_io_from_fd(-1, 0, &io, &e), KVRO_E_INVALID, &e);
    int fd = open(tar_path, O_RDONLY | O_CLOEXEC);
    assert_status(kvro_io_from_fd(fd, 0x40, &io, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_from_fd(fd, 0, NULL, &e), KVRO_E_INVALID, &e);
    close(fd);

    assert_status(kvro_io_from_memory(NULL, 5, &io, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_from_memory(tar_bytes, 5, NULL, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_from_memory(NULL, 0, &io, &e), KVRO_OK, &e); /* nothing at all */
    int64_t size = -1;
    assert_status(kvro_io_size(io, &size, &e), KVRO_OK, &e);
    assert_int_equal(size, 0);
    kvro_io_close(io);
}

static void test_open_path_errors(void **state)
{
    (void)state;
    kvro_error e;
    kvro_io *io = (kvro_io *)&e;
    char *missing = t_join(dir, "no-such-file.tar");
    assert_status(kvro_io_open_path(missing, KVRO_IO_RDONLY, &io, &e), KVRO_E_NOT_FOUND, &e);
    assert_null(io);
    assert_string_equal(e.source, missing);
    t_want_detail(&e, strerror(ENOENT));
    char msg[1400];
    kvro_error_format(&e, msg, sizeof msg);
    assert_non_null(strstr(msg, missing));
    free(missing);

    assert_status(kvro_io_open_path(dir, KVRO_IO_RDONLY, &io, &e), KVRO_E_IS_DIR, &e);
    assert_null(io);
    assert_string_equal(e.source, dir);
    assert_status(kvro_io_open_path(NULL, KVRO_IO_RDONLY, &io, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_io_open_path(tar_path, KVRO_IO_OWN_FD, &io, &e), KVRO_E_INVALID, &e);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "test_io_open: opening a FIFO hung\n";
    if (write(2, msg, sizeof msg - 1) < 0)
        _exit(3);
    _exit(2);
}

/* A FIFO with no writer: every open refuses it at once (a blocking open
 * or read would hang here; the alarm turns that into a failure). */
static void test_fifo_does_not_hang(void **state)
{
    (void)state;
    char *fifo = t_join(dir, "fifo");
    assert_int_equal(mkfifo(fifo, 0600), 0);
    signal(SIGALRM, on_alarm);
    alarm(20);
    kvro_error e;
    kvro *kv = (kvro *)&e;
    kvro_status s = kvro_open(fifo, &kv, &e);
    assert_true(s != KVRO_OK);
    assert_null(kv);
    assert_string_equal(e.source, fifo);
    assert_status(s, KVRO_E_UNSUPPORTED, &e);
    kvro_io *io = (kvro_io *)&e;
    assert_status(kvro_io_open_path(fifo, KVRO_IO_RDONLY, &io, &e), KVRO_E_UNSUPPORTED, &e);
    assert_null(io);
    assert_string_equal(e.source, fifo);
    kvro_fs *fs = NULL;
    assert_true(kvro_fs_open(fifo, KVRO_FS_RDONLY, NULL, &fs, &e) != KVRO_OK);
    assert_null(fs);
    alarm(0);
    signal(SIGALRM, SIG_DFL);
    unlink(fifo);
    free(fifo);
}

/* An I/O object is an image: the "dir" backend never bids on one, and
 * forcing it fails clearly. */
static void test_open_io_never_dir(void **state)
{
    (void)state;
    kvro_error e;
    unsigned char junk[4096];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = t_pattern(2, i);
    kvro_io *io = t_mem_io(junk, sizeof junk);
    kvro *kv = (kvro *)&e;
    assert_status(kvro_open_io(io, NULL, &kv, &e), KVRO_E_UNSUPPORTED, &e);
    assert_null(kv);
    assert_string_equal(e.source, kvro_io_name(io));
    kvro_options o = {.backend = "dir"};
    kvro_status s = kvro_open_io(io, &o, &kv, &e);
    assert_true(s != KVRO_OK);
    assert_null(kv);
    assert_string_equal(e.source, kvro_io_name(io));
    t_want_detail(&e, "dir");
    kvro_fs *fs = (kvro_fs *)&e;
    assert_true(kvro_fs_open_io(io, KVRO_FS_RDONLY, NULL, &fs, &e) != KVRO_OK);
    assert_null(fs);
    assert_true(kvro_fs_open_io(io, KVRO_FS_RDONLY, &o, &fs, &e) != KVRO_OK);
    assert_null(fs);
    kvro_io_close(io);

    /* A tar, by bidding or forced, is the tar backend's. */
    io = t_mem_io(tar_bytes, tar_len);
    assert_status(kvro_open_io(io, NULL, &kv, &e), KVRO_OK, &e);
    assert_string_equal(kvro_backend_of(kv), "tar");
    kvro_close(kv);
    s = kvro_open_io(io, &o, &kv, &e);
    assert_true(s != KVRO_OK);
    assert_null(kv);
    o.backend = "tar";
    assert_status(kvro_open_io(io, &o, &kv, &e), KVRO_OK, &e);
    kvro_close(kv);
    o.backend = "no-such-backend";
    assert_status(kvro_open_io(io, &o, &kv, &e), KVRO_E_INVALID, &e);
    t_want_detail(&e, "no-such-backend");
    kvro_io_close(io);

    assert_status(kvro_open_io(NULL, NULL, &kv, &e), KVRO_E_INVALID, &e);
}

static void test_fs_open_io_read_only(void **state)
{
    (void)state;
    kvro_error e;
    kvro_io *io = t_mem_io(tar_bytes, tar_len);
    kvro_fs *fs = (kvro_fs *)&e;
    assert_status(kvro_fs_open_io(io, KVRO_FS_RDWR, NULL, &fs, &e), KVRO_E_READ_ONLY, &e);
    assert_null(fs);
    assert_int_equal(e.status, KVRO_E_READ_ONLY);
    assert_string_equal(e.source, kvro_io_name(io));
    t_want_detail(&e, "read-only");
    assert_status(kvro_fs_open_io(io, 7, NULL, &fs, &e), KVRO_E_INVALID, &e);
    assert_status(kvro_fs_open_io(NULL, KVRO_FS_RDONLY, NULL, &fs, &e), KVRO_E_INVALID, &e);
    kvro_io_close(io);
    /* A file opened read-only is refused the same way. */
    assert_status(kvro_io_open_path(tar_path, KVRO_IO_RDONLY, &io, &e), KVRO_OK, &e);
    assert_status(kvro_fs_open_io(io, KVRO_FS_RDWR, NULL, &fs, &e), KVRO_E_READ_ONLY, &e);
    assert_string_equal(e.source, tar_path);
    kvro_io_close(io);
}

/* ---------------------------------------------------------------- names */

static void test_source_is_io_name(void **state)
{
    (void)state;
    kvro_error e;
    t_fault f;
    t_fault_init(&f);
    kvro_io *io = t_fault_memory(&f, tar_bytes, tar_len, NULL);
    assert_status(kvro_io_set_name(io, "the archive", &e), KVRO_OK, &e);
    kvro *kv = NULL;
    assert_status(kvro_open_io(io, NULL, &kv, &e), KVRO_OK, &e);
    kvro_io_close(io);
    assert_string_equal(kvro_source(kv), "the archive");
    assert_string_equal(kvro_backend_of(kv), "tar");

    char buf[16];
    int64_t n;
    assert_status(kvro_read(kv, "sub/nope", 0, 1, buf, &n, &e), KVRO_E_NOT_FOUND, &e);
    assert_string_equal(e.source, "the archive");
    assert_string_equal(e.key, "sub/nope");
    char msg[1400];
    kvro_error_format(&e, msg, sizeof msg);
    assert_non_null(strstr(msg, "the archive: sub/nope: "));

    /* An I/O failure under a read names the source, the key and the cause. */
    f.fail_read = atomic_load(&f.reads);
    f.error = ETIMEDOUT;
    assert_status(kvro_read(kv, "a.txt", 0, sizeof buf, buf, &n, &e), KVRO_E_IO, &e);
    assert_int_equal(n, 0);
    assert_string_equal(e.source, "the archive");
    assert_string_equal(e.key, "a.txt");
    t_want_detail(&e, strerror(ETIMEDOUT));
    assert_status(kvro_read(kv, "a.txt", 0, sizeof buf, buf, &n, &e), KVRO_OK, &e);
    assert_int_equal(n, 13);
    kvro_close(kv);

    /* An open that fails names the object too. */
    t_fault_init(&f);
    f.fail_read = 0;
    io = t_fault_memory(&f, tar_bytes, tar_len, "dead device");
    kv = (kvro *)&f;
    assert_status(kvro_open_io(io, NULL, &kv, &e), KVRO_E_IO, &e);
    assert_null(kv);
    assert_string_equal(e.source, "dead device");
    t_want_detail(&e, strerror(EIO));
    kvro_io_close(io);

    /* kvro_open(path): the path, whatever the object is called inside. */
    assert_status(kvro_open(tar_path, &kv, &e), KVRO_OK, &e);
    assert_string_equal(kvro_source(kv), tar_path);
    kvro_close(kv);
}

/* --------------------------------------------- a .tar.gz opened from memory */

static int count_files(const char *root)
{
    DIR *d = opendir(root);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *ent;
    while ((ent = readdir(d))) {
        if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
            continue;
        char *p = t_join(root, ent->d_name);
        struct stat st;
        if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode))
            n += count_files(p);
        else
            n++;
        free(p);
    }
    closedir(d);
    return n;
}

static kvro_stats stats(kvro *kv)
{
    kvro_stats st;
    kvro_error e;
    assert_status(kvro_get_stats(kv, &st, &e), KVRO_OK, &e);
    return st;
}

/* Without index_path: built in memory, read right, nothing saved (the
 * cache directory stays empty); with one, the next open from memory, of
 * another copy at another address, loads it. */
static void test_targz_from_memory(void **state)
{
    (void)state;
    kvro_error e;
    char *xdg = t_join(dir, "xdg");
    t_mkdirs(xdg);
    char *old = getenv("XDG_CACHE_HOME") ? strdup(getenv("XDG_CACHE_HOME")) : NULL;
    setenv("XDG_CACHE_HOME", xdg, 1);

    kvro_io *io = t_mem_io(tgz_bytes, tgz_len);
    kvro *kv = NULL;
    for (int round = 0; round < 2; round++) {
        assert_status(kvro_open_io(io, NULL, &kv, &e), KVRO_OK, &e);
        kvro_stats st = stats(kv);
        assert_true(st.compressed);
        assert_false(st.index_loaded);
        assert_false(st.index_saved);
        assert_int_equal(st.inflated_at_open, tar_len);
        want_tree(kv);
        kvro_close(kv);
        assert_int_equal(count_files(xdg), 0);
    }
    kvro_io_close(io);

    /* With index_path: saved, then loaded by the next open from memory. */
    char *idx = t_join(dir, "mem.idx");
    kvro_options o = {.index_path = idx};
    io = t_mem_io(tgz_bytes, tgz_len);
    assert_status(kvro_open_io(io, &o, &kv, &e), KVRO_OK, &e);
    kvro_io_close(io);
    kvro_stats st = stats(kv);
    assert_false(st.index_loaded);
    assert_true(st.index_saved);
    assert_int_equal(st.inflated_at_open, tar_len);
    want_tree(kv);
    kvro_close(kv);
    assert_int_equal(access(idx, F_OK), 0);

    unsigned char *copy = malloc(tgz_len);
    memcpy(copy, tgz_bytes, tgz_len);
    io = t_mem_io(copy, tgz_len);
    assert_status(kvro_open_io(io, &o, &kv, &e), KVRO_OK, &e);
    kvro_io_close(io);
    st = stats(kv);
    if (!st.index_loaded)
        fprintf(stderr, "index not loaded: %s\n", st.index_note);
    assert_true(st.index_loaded);
    assert_int_equal(st.inflated_at_open, 0);
    want_tree(kv);
    kvro_close(kv);

    free(copy);

    /* Another archive (the same tar, gzip -1) is not this one: rebuilt. */
    char *other = t_join(dir, "other.tar.gz");
    char *cmd = t_fmt("gzip -1 -n -c '%s' > '%s'", tar_path, other);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    size_t other_len;
    unsigned char *other_bytes = (unsigned char *)t_slurp(other, &other_len);
    assert_true(other_len != tgz_len);
    io = t_mem_io(other_bytes, other_len);
    assert_status(kvro_open_io(io, &o, &kv, &e), KVRO_OK, &e);
    kvro_io_close(io);
    st = stats(kv);
    assert_false(st.index_loaded);
    assert_int_equal(st.inflated_at_open, tar_len);
    want_tree(kv);
    kvro_close(kv);
    free(other_bytes);
    free(other);
    free(cmd);
    assert_int_equal(count_files(xdg), 0);

    if (old)
        setenv("XDG_CACHE_HOME", old, 1);
    else
        unsetenv("XDG_CACHE_HOME");
    free(old);
    free(idx);
    free(xdg);
}

/* Two .tar.gz of one size whose first and last 64 KiB agree, differing
 * only in a member's name in the middle (gzip level 0: the size follows
 * the data's; two gzip members, so the CRC in the last trailer covers the
 * same tail). From memory they have no mtime, so an index saved for one
 * must not be loaded for the other: every byte is checksummed. */
static void test_targz_same_size_from_memory(void **state)
{
    (void)state;
    kvro_error e;
    char *a = t_join(dir, "same-a.tgz"), *b = t_join(dir, "same-b.tgz");
    char *idx = t_join(dir, "same.idx");
    char *py = t_join(dir, "same.py");
    static const char script[] =
            "import gzip, io, sys, tarfile\n"
            "def make(name):\n"
            "    out = io.BytesIO()\n"
            "    with tarfile.open(fileobj=out, mode='w', format=tarfile.USTAR_FORMAT) as t:\n"
            "        for n, size in (('head', 200000), (name, 10), ('tail', 200000)):\n"
            "            i = tarfile.TarInfo(n); i.size = size; i.mtime = 0\n"
            "            t.addfile(i, io.BytesIO(b'x' * size))\n"
            "    data = out.getvalue()\n"
            "    cut = tarfile.open(fileobj=io.BytesIO(data)).getmember('tail').offset\n"
            "    z = lambda b: gzip.compress(b, compresslevel=0, mtime=0)\n"
            "    return z(data[:cut]) + z(data[cut:])\n"
            "for path, name in zip(sys.argv[1:], ('name_a', 'name_b')):\n"
            "    open(path, 'wb').write(make(name))\n";
    t_write(py, script, sizeof script - 1);
    char *cmd = t_fmt("python3 '%s' '%s' '%s'", py, a, b);
    free(py);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    size_t alen, blen;
    unsigned char *abytes = (unsigned char *)t_slurp(a, &alen);
    unsigned char *bbytes = (unsigned char *)t_slurp(b, &blen);
    assert_int_equal(alen, blen);
    assert_memory_equal(abytes, bbytes, 65536);
    assert_memory_equal(abytes + alen - 65536, bbytes + blen - 65536, 65536);
    kvro_options o = {.index_path = idx};
    const char *want[] = {"name_a", "name_b"};
    unsigned char *bytes[] = {abytes, bbytes};
    for (int i = 0; i < 2; i++) {
        kvro *kv = NULL;
        kvro_io *io = t_mem_io(bytes[i], alen);
        assert_status(kvro_open_io(io, &o, &kv, &e), KVRO_OK, &e);
        kvro_io_close(io);
        kvro_stats st = stats(kv);
        assert_false(st.index_loaded); /* the second is not the first */
        int64_t size;
        assert_status(kvro_size(kv, want[i], &size, &e), KVRO_OK, &e);
        assert_int_equal(size, 10);
        assert_status(kvro_size(kv, want[1 - i], &size, &e), KVRO_E_NOT_FOUND, &e);
        kvro_close(kv);
    }
    free(abytes);
    free(bbytes);
    free(cmd);
    free(a);
    free(b);
    free(idx);
}

/* An image no backend takes is named when it is something well known,
 * with what to do; an empty file is not an empty tar. */
static void test_unrecognised_named(void **state)
{
    (void)state;
    static const struct {
        const char *bytes;
        size_t len;
        const char *said;
    } cases[] = {
        {"", 0, "an empty file"},
        {"\xfd" "7zXZ\0\0\x04", 8, "xz -d"},
        {"\x28\xb5\x2f\xfd\0\0", 6, "zstd -d"},
        {"BZh91AY&SY", 10, "bzip2 -d"},
        {"\x1f\x8b\x08\0\0\0\0\0\0\x03", 10, "gzip-compressed, but not a tar"},
        {"!<arch>\ndebian-binary   ", 24, "dpkg-deb --fsys-tarfile"},
        {"PK\x03\x04\x14\0", 6, "a zip archive"},
        {"hsqs\0\0\0\0", 8, "squashfs"},
        {"just some text\n", 15, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *p = t_fmt("%s/unknown%zu", dir, i);
        t_write(p, cases[i].bytes, cases[i].len);
        kvro *kv = NULL;
        kvro_error e;
        assert_status(kvro_open(p, &kv, &e), KVRO_E_UNSUPPORTED, &e);
        t_want_detail(&e, "not a source kvro recognises");
        if (cases[i].said)
            t_want_detail(&e, cases[i].said);
        else
            assert_null(strstr(e.detail, ": a"));
        free(p);
    }
    /* Forced, an empty file is still not a tar. */
    char *p = t_fmt("%s/unknown0", dir);
    kvro_options o = {.backend = "tar"};
    kvro *kv = NULL;
    kvro_error e;
    assert_status(kvro_open_opts(p, &o, &kv, &e), KVRO_E_CORRUPT, &e);
    t_want_detail(&e, "an empty file");
    free(p);
}

/* kvro_open(path) opens the path once and serves that file for good:
 * the descriptor it reads is the inode the path named at open, and a file
 * renamed over the path afterwards changes nothing it serves. */
static void test_path_opened_once(void **state)
{
    (void)state;
    kvro_error e;
    char *p = t_join(dir, "swapped.tar"), *other = t_join(dir, "other.tar");
    t_write(p, tar_bytes, tar_len);
    struct stat before;
    assert_int_equal(stat(p, &before), 0);
    kvro *kv = NULL;
    assert_status(kvro_open(p, &kv, &e), KVRO_OK, &e);
    char *cmd = t_fmt("cd '%s' && tar --format=gnu -cf '%s' t.tar", dir, other);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    assert_int_equal(rename(other, p), 0); /* the name now means another archive */
    kvro_extent ext;
    assert_status(kvro_file_extent(kv, "a.txt", &ext, &e), KVRO_OK, &e);
    struct stat served;
    assert_int_equal(fstat(ext.fd, &served), 0);
    assert_true(served.st_dev == before.st_dev && served.st_ino == before.st_ino);
    want_bytes(kv, "a.txt", "hello, world\n", 13);
    kvro_close(kv);
    free(cmd);
    free(p);
    free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_handle_keeps_object),
        cmocka_unit_test(test_fd_ownership),
        cmocka_unit_test(test_fd_refusals),
        cmocka_unit_test(test_open_path_errors),
        cmocka_unit_test(test_fifo_does_not_hang),
        cmocka_unit_test(test_open_io_never_dir),
        cmocka_unit_test(test_fs_open_io_read_only),
        cmocka_unit_test(test_source_is_io_name),
        cmocka_unit_test(test_targz_from_memory),
        cmocka_unit_test(test_targz_same_size_from_memory),
        cmocka_unit_test(test_unrecognised_named),
        cmocka_unit_test(test_path_opened_once),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
