/*
 * test_fuse.h — what the kvfuse tests (test_fuse.c, test_fuse_fat.c)
 * share: running kvfuse, mounting and unmounting for real, skipping where
 * FUSE cannot work, and the EROFS check. Each test program is one
 * translation unit (tests/CMakeLists.txt builds every test_*.c alone), so
 * these are static inline rather than a second support library.
 *
 * Include after <cmocka.h>.
 */
#ifndef KVRO_TEST_FUSE_H
#define KVRO_TEST_FUSE_H

#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define KVFUSE KVRO_TEST_BINARY_DIR "/fuse/kvfuse"

/* Whether PATH is a mount point now (/proc/self/mountinfo's 5th field). */
static inline bool tf_is_mounted(const char *path)
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

/* Undoes a mount a failed test left behind (teardown); lazily, so a
 * daemon that hangs cannot hang the teardown too. */
static inline void tf_unmount(const char *mnt)
{
    if (tf_is_mounted(mnt))
        t_sh(NULL, NULL, "fusermount3 -u -z '%s' 2>/dev/null", mnt);
}

/* Runs kvfuse with ARGS (a shell fragment); its exit status, *err its
 * standard error (NULL: discarded). */
static inline int tf_kvfuse(char **err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int tf_kvfuse(char **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = t_vsh("timeout 120 '" KVFUSE "' ", NULL, err, fmt, ap);
    va_end(ap);
    return rc;
}

/* Mounts SOURCE with OPTS on MNT; the mount is there when kvfuse returns
 * (no waiting: that is the promise under test). */
static inline void tf_mount_ok(const char *mnt, const char *source, const char *opts)
{
    char *err;
    int rc = tf_kvfuse(&err, "%s '%s' '%s'", opts, source, mnt);
    if (rc != 0)
        fail_msg("kvfuse %s %s: exit %d: %s", opts, source, rc, err);
    free(err);
    assert_true(tf_is_mounted(mnt));
}

static inline void tf_unmount_ok(const char *mnt)
{
    assert_int_equal(t_sh(NULL, NULL, "fusermount3 -u '%s'", mnt), 0);
    assert_false(tf_is_mounted(mnt));
}

/* Whether mounting cannot work here (then the test skips, saying why), or
 * fails the test if CI is set: there the FUSE tests must run. */
static inline bool tf_fuse_missing(void)
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
        if (tf_fuse_missing()) {                                                                   \
            skip();                                                                                \
            return;                                                                                \
        }                                                                                          \
    } while (0)

/* diff -r of TREE against the mount MNT (links compared as links). */
static inline void tf_diff_ok(const char *tree, const char *mnt, const char *what)
{
    char *out;
    if (t_sh(&out, NULL, "diff -r --no-dereference '%s' '%s'", tree, mnt) != 0)
        fail_msg("%s differs from the tree:\n%s", what, out);
    free(out);
}

/* lstat of M, where tree entry WANT is: twice, the same inode, of WANT's
 * kind; *got what the first said. */
static inline void tf_lstat_like(const char *m, const struct stat *want, struct stat *got)
{
    struct stat again;
    if (lstat(m, got) != 0)
        fail_msg("lstat %s: %s", m, strerror(errno));
    assert_int_equal(lstat(m, &again), 0);
    assert_int_equal(got->st_ino, again.st_ino); /* stable */
    if ((got->st_mode & S_IFMT) != (want->st_mode & S_IFMT))
        fail_msg("%s: kind %o, want %o", m, got->st_mode & S_IFMT, want->st_mode & S_IFMT);
}

/* Reads NAME at PATH, SIZE bytes of pattern SEED, by pread at each of the
 * N_OFFS offsets OFFS in reads of 1 to 300,000 bytes: each read as long as
 * the file allows, each byte checked. */
static inline void tf_check_preads(const char *path, const char *name, uint64_t seed, int64_t size,
                                   const int64_t *offs, size_t n_offs)
{
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    static const size_t lens[] = {1, 7, 4096, 65537, 300000};
    char *buf = malloc(300000);
    for (size_t i = 0; i < n_offs; i++)
        for (size_t j = 0; j < sizeof lens / sizeof *lens; j++) {
            ssize_t n = pread(fd, buf, lens[j], offs[i]);
            int64_t left = offs[i] >= size ? 0 : size - offs[i];
            assert_int_equal(n, (int64_t)lens[j] < left ? (int64_t)lens[j] : left);
            for (ssize_t k = 0; k < n; k++)
                if ((uint8_t)buf[k] != t_pattern(seed, (uint64_t)(offs[i] + k)))
                    fail_msg("%s: byte %lld differs", name, (long long)(offs[i] + k));
        }
    free(buf);
    close(fd);
}

/* Every write-type call on FILE and DIR (an empty directory) of mount MNT
 * fails with EROFS, and so does creating anything. */
static inline void tf_check_erofs(const char *mnt, const char *file, const char *dir)
{
    char *f = t_join(mnt, file), *d = t_join(mnt, dir);
    char *newf = t_join(mnt, "new"), *moved = t_join(mnt, "moved");
#define WANT_EROFS(call)                                                                           \
    do {                                                                                           \
        errno = 0;                                                                                 \
        if ((call) != -1 || errno != EROFS)                                                        \
            fail_msg("%s: want EROFS, got %s", #call, strerror(errno));                            \
    } while (0)
    WANT_EROFS(open(f, O_WRONLY));
    WANT_EROFS(open(f, O_RDWR));
    WANT_EROFS(open(newf, O_WRONLY | O_CREAT, 0644));
    WANT_EROFS(unlink(f));
    WANT_EROFS(mkdir(newf, 0755));
    WANT_EROFS(rmdir(d));
    WANT_EROFS(rename(f, moved));
    WANT_EROFS(chmod(f, 0777));
    WANT_EROFS(truncate(f, 0));
    WANT_EROFS(symlink("x", newf));
    WANT_EROFS(link(f, newf));
#undef WANT_EROFS
    free(f), free(d), free(newf), free(moved);
}

#endif
