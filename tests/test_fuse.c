/*
 * test_fuse.c — kvfuse over real mounts: a host directory, a plain tar and
 * a .tar.gz, both made by GNU tar, are mounted and compared with the tree
 * they came from by diff -r, lstat and reads at odd offsets (pread and dd);
 * writes of every kind fail with EROFS; links read back as their text;
 * 8 threads read at random against the source bytes (multithreaded and
 * -s); a corrupt archive is refused before anything is mounted; a
 * directory of 100,000 entries (a tar made by Python's tarfile) lists each
 * exactly once, seekdir/telldir included.
 *
 * Needs /dev/fuse and fusermount3: without them every test skips, saying
 * why, except under CI (CI set), where that is a failure. Every mount is
 * undone in the teardown, a failed test's too.
 */
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#define KVFUSE KVRO_TEST_BINARY_DIR "/fuse/kvfuse"

typedef struct fixture {
    char *dir;  /* scratch */
    char *tree; /* the reference tree */
    char *tar, *tgz, *idx;
    char *mnt; /* dir/mnt */
} fixture;

/* ------------------------------------------------------------ mounting */

/* Whether PATH is a mount point now (/proc/self/mountinfo's 5th field). */
static bool is_mounted(const char *path)
{
    FILE *f = fopen("/proc/self/mountinfo", "r");
    assert_non_null(f);
    char line[4096], mp[4096];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "%*s %*s %*s %*s %4095s", mp) == 1 && strcmp(mp, path) == 0;
    fclose(f);
    return found;
}

static void unmount(const char *mnt)
{
    if (is_mounted(mnt)) {
        char *cmd = t_fmt("fusermount3 -u -z '%s' 2>/dev/null", mnt);
        t_run(cmd, NULL, NULL);
        free(cmd);
    }
}

/* Runs kvfuse with ARGS (a shell fragment); its exit status, *err its
 * standard error (NULL: discarded). */
static int kvfuse(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int kvfuse(char **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *args;
    assert_true(vasprintf(&args, fmt, ap) >= 0);
    va_end(ap);
    char *cmd = t_fmt("timeout 120 '%s' %s", KVFUSE, args);
    char *e = NULL;
    int rc = t_run(cmd, NULL, &e);
    if (err)
        *err = e;
    else
        free(e);
    free(cmd);
    free(args);
    return rc;
}

/* Mounts SOURCE with OPTS on f->mnt; the mount is there when kvfuse
 * returns (no waiting: that is the promise under test). */
static void mount_ok(fixture *f, const char *source, const char *opts)
{
    char *err;
    int rc = kvfuse(&err, "%s '%s' '%s'", opts, source, f->mnt);
    if (rc != 0)
        fail_msg("kvfuse %s %s: exit %d: %s", opts, source, rc, err);
    free(err);
    assert_true(is_mounted(f->mnt));
}

static void unmount_ok(fixture *f)
{
    char *cmd = t_fmt("fusermount3 -u '%s'", f->mnt);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    assert_false(is_mounted(f->mnt));
}

/* Skips (or fails under CI) where mounting cannot work. */
static bool fuse_missing(void)
{
    const char *why = NULL;
    if (access("/dev/fuse", R_OK | W_OK) != 0)
        why = "/dev/fuse is not usable";
    else if (!t_have("fusermount3"))
        why = "fusermount3 is missing (apt-get install fuse3)";
    else if (access(KVFUSE, X_OK) != 0)
        why = "kvfuse was not built (libfuse3-dev missing)";
    if (!why)
        return false;
    const char *ci = getenv("CI");
    if (ci && *ci)
        fail_msg("%s, and CI is set: the FUSE tests must run", why);
    printf("SKIP: %s\n", why);
    return true;
}

#define NEED_FUSE()                                                                                \
    do {                                                                                           \
        if (fuse_missing()) {                                                                      \
            skip();                                                                                \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------ the tree */

#define ODD_SIZE 1234567
#define BIG_SIZE (5 * 1024 * 1024 + 13)

static int64_t mtime_next = 1600000000;

static int set_mtime(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    struct timespec ts[2] = {{mtime_next, 0}, {mtime_next, 0}};
    mtime_next += 3607;
    return utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW);
}

static void make_tree(const char *t)
{
    char *p;
    t_write(p = t_join(t, "hello.txt"), "hello, world\n", 13), free(p);
    t_write_pattern(p = t_join(t, "data/odd.bin"), 7, ODD_SIZE), free(p);
    t_write_pattern(p = t_join(t, "data/big.bin"), 9, BIG_SIZE), free(p);
    t_write(p = t_join(t, "data/empty"), "", 0), free(p);
    t_write(p = t_join(t, "data/nested/deep/x.txt"), "deep\n", 5), free(p);
    t_write(p = t_join(t, "name with space.txt"), "spaced\n", 7), free(p);
    t_write(p = t_join(t, "caf\xc3\xa9.md"), "# caf\xc3\xa9\n", 9), free(p);
    t_mkdirs(p = t_join(t, "empty-dir")), free(p);
    assert_int_equal(chmod(p = t_join(t, "hello.txt"), 0640), 0), free(p);
    assert_int_equal(chmod(p = t_join(t, "data/nested"), 0750), 0), free(p);
    /* Links: absolute, escaping, inside (to a file and to a directory). */
    assert_int_equal(symlink("/etc/hostname", p = t_join(t, "abs")), 0), free(p);
    assert_int_equal(symlink("../../outside", p = t_join(t, "data/esc")), 0), free(p);
    assert_int_equal(symlink("hello.txt", p = t_join(t, "rel")), 0), free(p);
    assert_int_equal(symlink("data", p = t_join(t, "dirlink")), 0), free(p);
    /* Distinct mtimes, children before their directory. */
    assert_int_equal(nftw(t, set_mtime, 16, FTW_PHYS | FTW_DEPTH), 0);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    f->dir = t_tempdir("fuse");
    f->tree = t_join(f->dir, "tree");
    f->tar = t_join(f->dir, "tree.tar");
    f->tgz = t_join(f->dir, "tree.tar.gz");
    f->idx = t_join(f->dir, "tree.idx");
    f->mnt = t_join(f->dir, "mnt");
    t_mkdirs(f->mnt);
    make_tree(f->tree);
    char *cmd = t_fmt("tar -cf '%s' -C '%s' . && tar -czf '%s' -C '%s' .", f->tar, f->tree, f->tgz,
                      f->tree);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    unmount(f->mnt);
    t_rmrf(f->dir);
    free(f->tree), free(f->tar), free(f->tgz), free(f->idx), free(f->mnt), free(f->dir);
    free(f);
    return 0;
}

/* ------------------------------------------------------- the checks */

/* The mount's path of tree path P. */
static const char *tree_root, *mnt_root;
static char *in_mnt(const char *p)
{
    return t_fmt("%s%s", mnt_root, p + strlen(tree_root));
}

/* Each entry of the tree against the mount: kind, size, mtime, mode. */
static int compare_stat(const char *path, const struct stat *want, int flag, struct FTW *ftw)
{
    (void)flag, (void)ftw;
    char *m = in_mnt(path);
    struct stat got, again;
    if (lstat(m, &got) != 0)
        fail_msg("lstat %s: %s", m, strerror(errno));
    assert_int_equal(lstat(m, &again), 0);
    assert_int_equal(got.st_ino, again.st_ino); /* stable */
    if ((got.st_mode & S_IFMT) != (want->st_mode & S_IFMT))
        fail_msg("%s: kind %o, want %o", m, got.st_mode & S_IFMT, want->st_mode & S_IFMT);
    if (!S_ISDIR(want->st_mode))
        assert_int_equal(got.st_size, want->st_size);
    if (got.st_mtim.tv_sec != want->st_mtim.tv_sec)
        fail_msg("%s: mtime %lld, want %lld", m, (long long)got.st_mtim.tv_sec,
                 (long long)want->st_mtim.tv_sec);
    if (!S_ISLNK(want->st_mode))
        assert_int_equal(got.st_mode & 07777, want->st_mode & 07777);
    if (S_ISREG(want->st_mode))
        assert_int_equal(got.st_blocks, (want->st_size + 511) / 512);
    assert_true(got.st_nlink >= 1);
    free(m);
    return 0;
}

static void check_reads(const char *mnt)
{
    char *path = t_join(mnt, "data/odd.bin");
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    static const int64_t offs[] = {
        0, 1, 4095, 4097, 131071, 1000003, ODD_SIZE - 1, ODD_SIZE, ODD_SIZE + 100};
    static const size_t lens[] = {1, 7, 4096, 65537, 300000};
    char *buf = malloc(300000);
    for (size_t i = 0; i < sizeof offs / sizeof *offs; i++)
        for (size_t j = 0; j < sizeof lens / sizeof *lens; j++) {
            ssize_t n = pread(fd, buf, lens[j], offs[i]);
            int64_t want = offs[i] >= ODD_SIZE                     ? 0
                           : (int64_t)lens[j] < ODD_SIZE - offs[i] ? (int64_t)lens[j]
                                                                   : ODD_SIZE - offs[i];
            assert_int_equal(n, want);
            for (ssize_t k = 0; k < n; k++)
                if ((uint8_t)buf[k] != t_pattern(7, (uint64_t)(offs[i] + k)))
                    fail_msg("odd.bin: byte %lld differs", (long long)(offs[i] + k));
        }
    free(buf);
    close(fd);
    /* And dd, as a user would. */
    char *out = t_join(mnt, "../dd.out");
    char *cmd = t_fmt("dd if='%s' of='%s' bs=7 skip=1001 count=333 status=none", path, out);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    size_t n;
    char *got = t_slurp(out, &n);
    assert_int_equal(n, 7 * 333);
    for (size_t k = 0; k < n; k++)
        assert_int_equal((uint8_t)got[k], t_pattern(7, 7 * 1001 + k));
    unlink(out);
    free(got), free(cmd), free(out), free(path);
}

/* Every write-type call fails with EROFS. */
static void check_erofs(const char *mnt)
{
    char *file = t_join(mnt, "hello.txt"), *dir = t_join(mnt, "empty-dir");
    char *newf = t_join(mnt, "new"), *moved = t_join(mnt, "moved");
    errno = 0;
#define WANT_EROFS(call)                                                                           \
    do {                                                                                           \
        errno = 0;                                                                                 \
        if ((call) != -1 || errno != EROFS)                                                        \
            fail_msg("%s: want EROFS, got %s", #call, strerror(errno));                            \
    } while (0)
    WANT_EROFS(open(file, O_WRONLY));
    WANT_EROFS(open(file, O_RDWR));
    WANT_EROFS(open(newf, O_WRONLY | O_CREAT, 0644));
    WANT_EROFS(unlink(file));
    WANT_EROFS(mkdir(newf, 0755));
    WANT_EROFS(rmdir(dir));
    WANT_EROFS(rename(file, moved));
    WANT_EROFS(chmod(file, 0777));
    WANT_EROFS(truncate(file, 0));
    WANT_EROFS(symlink("x", newf));
    WANT_EROFS(link(file, newf));
#undef WANT_EROFS
    free(file), free(dir), free(newf), free(moved);
}

/* Errors map to the errno a path walk expects. */
static void check_errnos(const char *mnt)
{
    struct stat st;
    char *p = t_join(mnt, "no-such");
    assert_int_equal(stat(p, &st), -1);
    assert_int_equal(errno, ENOENT);
    free(p);
    p = t_join(mnt, "hello.txt/x");
    assert_int_equal(stat(p, &st), -1);
    assert_int_equal(errno, ENOTDIR);
    free(p);
    p = t_join(mnt, "data");
    int fd = open(p, O_RDONLY);
    char c;
    assert_true(fd >= 0);
    assert_int_equal(read(fd, &c, 1), -1);
    assert_int_equal(errno, EISDIR);
    close(fd);
    free(p);
}

static void check_links(const char *mnt)
{
    static const char *const links[][2] = {{"abs", "/etc/hostname"},
                                           {"data/esc", "../../outside"},
                                           {"rel", "hello.txt"},
                                           {"dirlink", "data"}};
    char buf[256];
    for (size_t i = 0; i < sizeof links / sizeof *links; i++) {
        char *p = t_join(mnt, links[i][0]);
        struct stat st;
        assert_int_equal(lstat(p, &st), 0);
        assert_true(S_ISLNK(st.st_mode));
        ssize_t n = readlink(p, buf, sizeof buf - 1);
        assert_true(n >= 0);
        buf[n] = '\0';
        assert_string_equal(buf, links[i][1]);
        assert_int_equal(st.st_size, n);
        free(p);
    }
    /* Inside links work as links do: the kernel follows them in the mount. */
    char *p = t_join(mnt, "rel");
    size_t n;
    char *s = t_slurp(p, &n);
    assert_int_equal(n, 13);
    free(s), free(p);
    p = t_join(mnt, "dirlink/nested/deep/x.txt");
    s = t_slurp(p, &n);
    assert_int_equal(n, 5);
    free(s), free(p);
}

static void check_source(fixture *f, const char *source, const char *opts)
{
    mount_ok(f, source, opts);
    char *cmd = t_fmt("diff -r --no-dereference '%s' '%s'", f->tree, f->mnt);
    char *out;
    if (t_run(cmd, &out, NULL) != 0)
        fail_msg("%s differs from the tree:\n%s", source, out);
    free(out), free(cmd);
    tree_root = f->tree, mnt_root = f->mnt;
    assert_int_equal(nftw(f->tree, compare_stat, 16, FTW_PHYS), 0);
    check_reads(f->mnt);
    check_erofs(f->mnt);
    check_errnos(f->mnt);
    check_links(f->mnt);
    struct statvfs sv;
    assert_int_equal(statvfs(f->mnt, &sv), 0);
    assert_true(sv.f_flag & ST_RDONLY);
    unmount_ok(f);
}

static void test_directory(void **state)
{
    NEED_FUSE();
    fixture *f = *state;
    check_source(f, f->tree, "");
}

static void test_tar(void **state)
{
    NEED_FUSE();
    fixture *f = *state;
    check_source(f, f->tar, "");
    check_source(f, f->tar, "-s -o backend=tar");
}

static void test_tar_gz(void **state)
{
    NEED_FUSE();
    fixture *f = *state;
    char *opts = t_fmt("-o index='%s'", f->idx);
    check_source(f, f->tgz, opts); /* builds the index */
    struct stat st;
    assert_int_equal(stat(f->idx, &st), 0);
    check_source(f, f->tgz, opts); /* loads it */
    free(opts);
}

/* An archive inside a bigger file, as kvro_io_window reads it. */
static void test_image_offset(void **state)
{
    NEED_FUSE();
    fixture *f = *state;
    char *img = t_join(f->dir, "prefixed.img");
    char *cmd =
        t_fmt("head -c 1000 /dev/zero | tr '\\0' x > '%s' && cat '%s' >> '%s'", img, f->tar, img);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    check_source(f, img, "-o image_offset=1000");
    free(cmd), free(img);
}

/* ----------------------------------------------------- concurrency */

typedef struct reader {
    const char *mnt;
    unsigned seed;
    long mismatches, reads;
} reader;

static const struct {
    const char *name;
    uint64_t seed, size;
} pattern_files[] = {{"data/odd.bin", 7, ODD_SIZE}, {"data/big.bin", 9, BIG_SIZE}};

static void *read_randomly(void *arg)
{
    reader *r = arg;
    char *buf = malloc(256 * 1024);
    int fds[2];
    for (int i = 0; i < 2; i++) {
        char *p = t_join(r->mnt, pattern_files[i].name);
        fds[i] = open(p, O_RDONLY);
        free(p);
    }
    for (int i = 0; i < 400; i++) {
        int which = rand_r(&r->seed) % 2;
        uint64_t size = pattern_files[which].size;
        uint64_t off = (uint64_t)rand_r(&r->seed) % (size + 1000);
        size_t len = 1 + (size_t)rand_r(&r->seed) % (256 * 1024);
        ssize_t n = pread(fds[which], buf, len, (off_t)off);
        uint64_t want = off >= size ? 0 : (len < size - off ? len : size - off);
        r->reads++;
        if (n < 0 || (uint64_t)n != want) {
            r->mismatches++;
            continue;
        }
        for (ssize_t k = 0; k < n; k++)
            if ((uint8_t)buf[k] != t_pattern(pattern_files[which].seed, off + (uint64_t)k)) {
                r->mismatches++;
                break;
            }
    }
    close(fds[0]), close(fds[1]);
    free(buf);
    return NULL;
}

/* 8 threads of random preads over f->mnt, each byte checked. */
static void run_readers(fixture *f, const char *what)
{
    pthread_t th[8];
    reader rs[8];
    for (int i = 0; i < 8; i++) {
        rs[i] = (reader){.mnt = f->mnt, .seed = 1234u + (unsigned)i};
        assert_int_equal(pthread_create(&th[i], NULL, read_randomly, &rs[i]), 0);
    }
    long bad = 0, reads = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        bad += rs[i].mismatches, reads += rs[i].reads;
    }
    assert_int_equal(reads, 8 * 400);
    if (bad)
        fail_msg("%s: %ld of %ld reads differ", what, bad, reads);
}

static void read_in_threads(fixture *f, const char *source, const char *opts)
{
    mount_ok(f, source, opts);
    char *what = t_fmt("%s %s", source, opts);
    run_readers(f, what);
    free(what);
    unmount_ok(f);
}

static void test_threads(void **state)
{
    NEED_FUSE();
    fixture *f = *state;
    read_in_threads(f, f->tar, "");
    read_in_threads(f, f->tar, "-s");
    char *opts = t_fmt("-o index='%s'", f->idx);
    read_in_threads(f, f->tgz, opts);
    free(opts);
}

/* ------------------------------------------------ refusals and usage */

static void want_refused(fixture *f, const char *source, const char *opts, int want_rc,
                         const char *needle)
{
    char *err;
    int rc = kvfuse(&err, "%s '%s' '%s'", opts, source, f->mnt);
    if (rc != want_rc || !strstr(err, needle))
        fail_msg("kvfuse %s %s: exit %d (want %d), stderr: %s", opts, source, rc, want_rc, err);
    assert_false(is_mounted(f->mnt));
    free(err);
}

static void test_corrupt_refused(void **state)
{
    NEED_FUSE();
    fixture *f = *state;
    /* The second member's header loses its checksum. */
    size_t n;
    char *tar = t_slurp(f->tar, &n);
    char *bad = t_join(f->dir, "bad.tar");
    assert_true(n > 1024);
    memset(tar + 512 + 148, 'x', 8); /* GNU tar's "./" has no data: 512 is "./abs" or so */
    t_write(bad, tar, n);
    want_refused(f, bad, "", 1, "kvfuse: ");
    want_refused(f, bad, "", 1, "bad.tar");
    free(tar), free(bad);
    /* Truncated inside a member. */
    char *cut = t_join(f->dir, "cut.tar");
    char *cmd = t_fmt("head -c 100000 '%s' > '%s'", f->tar, cut);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    want_refused(f, cut, "", 1, "cut.tar");
    free(cmd), free(cut);
    char *none = t_join(f->dir, "no-such.tar");
    want_refused(f, none, "", 1, "no-such.tar");
    want_refused(f, f->tar, "-o backend=no-such", 1, "kvfuse: ");
    free(none);
}

static void test_usage(void **state)
{
    fixture *f = *state;
    char *out, *err;
    char *cmd = t_fmt("'%s' --help", KVFUSE);
    if (access(KVFUSE, X_OK) != 0) {
        NEED_FUSE();
    }
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    assert_non_null(strstr(out, "index=FILE"));
    assert_non_null(strstr(out, "fuse.kvfuse"));
    assert_non_null(strstr(out, "tar")); /* the backends are listed */
    free(out), free(cmd);
    cmd = t_fmt("'%s' --version", KVFUSE);
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    assert_true(strncmp(out, "kvfuse 0.", 9) == 0);
    free(out), free(cmd);
    assert_int_equal(kvfuse(&err, "%s", ""), 2);
    assert_non_null(strstr(err, "missing"));
    free(err);
    assert_int_equal(kvfuse(NULL, "'%s'", f->tar), 2);
    assert_int_equal(kvfuse(NULL, "'%s' '%s' extra", f->tar, f->mnt), 2);
    assert_int_equal(kvfuse(NULL, "-o image_offset=x '%s' '%s'", f->tar, f->mnt), 2);
    assert_int_equal(kvfuse(NULL, "-o no_such_option '%s' '%s'", f->tar, f->mnt), 2);
    assert_false(is_mounted(f->mnt));
}

/* mount.fuse3 (what `mount -t fuse.kvfuse` and /etc/fstab run) calls
 * `kvfuse SOURCE MNT -o OPTS`: options after the operands, fstab's own
 * among them. */
static void test_mount_helper_form(void **state)
{
    NEED_FUSE();
    fixture *f = *state;
    char *opts = t_fmt("'%s' '%s' -o ro,dev,suid,allow_other,default_permissions,index='%s'",
                       f->tgz, f->mnt, f->idx);
    assert_int_equal(kvfuse(NULL, "%s", opts), 0);
    assert_true(is_mounted(f->mnt));
    char *p = t_join(f->mnt, "data/nested/deep/x.txt");
    size_t n;
    free(t_slurp(p, &n));
    assert_int_equal(n, 5);
    unmount_ok(f);
    free(opts);
    if (!t_have("mount.fuse3")) {
        printf("note: mount.fuse3 missing; its form was tested by hand above\n");
        free(p);
        return;
    }
    char *cmd = t_fmt("PATH='%s/fuse':\"$PATH\" mount.fuse3 '%s' '%s' -t fuse.kvfuse "
                      "-o ro,nofail,_netdev,allow_other",
                      KVRO_TEST_BINARY_DIR, f->tar, f->mnt);
    char *err;
    if (t_run(cmd, NULL, &err) != 0)
        fail_msg("%s: %s", cmd, err);
    free(t_slurp(p, &n));
    assert_int_equal(n, 5);
    unmount_ok(f);
    free(err), free(cmd), free(p);
}

/* -f: the daemon stays in the foreground, logging to standard error, and
 * exits 0 once unmounted (under the sanitizers: nothing leaked, no
 * undefined behaviour, which a daemonised kvfuse could not report). */
static void test_foreground(void **state)
{
    NEED_FUSE();
    fixture *f = *state;
    char *rcfile = t_join(f->dir, "rc"), *errfile = t_join(f->dir, "err");
    char *cmd = t_fmt("('%s' -f -o index='%s' '%s' '%s' 2>'%s'; echo $? > '%s') "
                      ">/dev/null 2>&1 </dev/null &",
                      KVFUSE, f->idx, f->tgz, f->mnt, errfile, rcfile);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    for (int i = 0; i < 600 && !is_mounted(f->mnt); i++)
        usleep(50 * 1000);
    assert_true(is_mounted(f->mnt));
    check_reads(f->mnt);
    run_readers(f, "kvfuse -f");
    char *p = t_join(f->mnt, "no-such");
    struct stat st;
    assert_int_equal(stat(p, &st), -1);
    free(p);
    unmount_ok(f);
    struct stat rs;
    for (int i = 0; i < 600 && (stat(rcfile, &rs) != 0 || rs.st_size == 0); i++)
        usleep(50 * 1000);
    size_t n;
    char *rc = t_slurp(rcfile, &n), *err = t_slurp(errfile, &n);
    if (strcmp(rc, "0\n") != 0 || n != 0)
        fail_msg("kvfuse -f exited %s with: %s", rc, err);
    free(rc), free(err), free(cmd), free(rcfile), free(errfile);
}

/* ------------------------------------------------- 100,000 entries */

#define MANY 100000

static void test_many_entries(void **state)
{
    NEED_FUSE();
    fixture *f = *state;
    char *tar = t_join(f->dir, "many.tar");
    char *cmd = t_fmt("python3 -c 'import io, sys, tarfile\n"
                      "with tarfile.open(sys.argv[1], \"w\", format=tarfile.GNU_FORMAT) as t:\n"
                      "    for i in range(%d):\n"
                      "        t.addfile(tarfile.TarInfo(\"big/f%%06d\" %% i), io.BytesIO())\n' "
                      "'%s'",
                      MANY, tar);
    assert_int_equal(t_run(cmd, NULL, NULL), 0);
    free(cmd);
    mount_ok(f, tar, "");
    char *dir = t_join(f->mnt, "big");
    DIR *d = opendir(dir);
    assert_non_null(d);
    unsigned char *seen = calloc(MANY, 1);
    long count = 0, dots = 0, mark = -1;
    char after_mark[256] = "";
    struct dirent *de;
    while ((errno = 0, de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) {
            dots++;
            continue;
        }
        int i;
        char tail;
        if (sscanf(de->d_name, "f%6d%c", &i, &tail) != 1 || i < 0 || i >= MANY)
            fail_msg("unexpected entry '%s'", de->d_name);
        if (seen[i]++)
            fail_msg("'%s' listed twice", de->d_name);
        assert_int_not_equal(de->d_ino, 0);
        if (++count == MANY / 2) { /* telldir here; later seekdir back */
            mark = telldir(d);
        } else if (count == MANY / 2 + 1) {
            snprintf(after_mark, sizeof after_mark, "%s", de->d_name);
        }
    }
    assert_int_equal(errno, 0);
    assert_int_equal(count, MANY);
    assert_int_equal(dots, 2);
    seekdir(d, mark);
    de = readdir(d);
    assert_non_null(de);
    assert_string_equal(de->d_name, after_mark);
    closedir(d);
    /* And ls, as a user would: every name once. */
    char *out;
    cmd = t_fmt("ls '%s' | sort | uniq -c | awk '$1 != 1' | wc -l; ls -U '%s' | wc -l", dir, dir);
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    assert_string_equal(out, "0\n100000\n");
    free(out), free(cmd);
    unmount_ok(f);
    free(seen), free(dir), free(tar);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tar, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tar_gz, setup, teardown),
        cmocka_unit_test_setup_teardown(test_image_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mount_helper_form, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreground, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_entries, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
