/*
 * fs_cmds.c — mkkv put, mkdir and rm: the FS write side by hand, on any
 * source that opens as a read-write filesystem (kvro_fs_open with
 * KVRO_FS_RDWR: a FAT image, a FAT partition of a disk image, a host
 * directory). Each command is a few kvro_fs_* calls; the backend does
 * the rest (FAT: fat/fat_write.c, with its crash-safe order).
 */
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { CHUNK = 1 << 20 };

typedef struct rm_opts {
    bool recursive;
} rm_opts;

static int open_fs(const char *image, const common_opts *co, kvro_fs **fs)
{
    kvro_error err;
    if (kvro_fs_open(image, KVRO_FS_RDWR, &co->open, fs, &err) != KVRO_OK) {
        kvro_error_context(&err, err.status, image, NULL);
        return report(&err);
    }
    return EXIT_OK;
}

/* Closes FS (flushing), reporting a failure unless RC already is one. */
static int close_fs(kvro_fs *fs, const char *image, int rc)
{
    kvro_error err;
    if (kvro_fs_close(fs, &err) != KVRO_OK && rc == EXIT_OK) {
        kvro_error_context(&err, err.status, image, NULL);
        rc = report(&err);
    }
    return rc;
}

static int fail(kvro_error *err, const char *image, const char *key)
{
    kvro_error_context(err, err->status, image, key);
    return report(err);
}

static int no_opt(int c, const char *arg, void *ctx)
{
    (void)c, (void)arg, (void)ctx;
    return -1;
}

/* ----------------------------------------------------------------- put */

static int put_run(int argc, char **argv)
{
    static const struct option longs[] = {COMMON_LONG_OPTIONS, {0, 0, 0, 0}};
    common_opts co = {0};
    int rc = parse_args(&cmd_put, argc, argv, COMMON_SHORT_OPTIONS, longs, &co, no_opt, NULL);
    if (rc >= 0)
        return rc;
    if (argc - optind != 3)
        return usage_error(&cmd_put, "expects IMAGE KEY FILE");
    const char *image = argv[optind], *key = argv[optind + 1], *file = argv[optind + 2];
    int fd = strcmp(file, "-") ? open(file, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
    if (fd < 0) {
        fprintf(stderr, "mkkv: %s: %s\n", quoted(file), strerror(errno));
        return EXIT_FAIL;
    }
    char *buf = malloc(CHUNK);
    kvro_fs *fs = NULL;
    if (!buf) {
        fprintf(stderr, "mkkv: out of memory\n");
        rc = EXIT_FAIL;
    } else {
        rc = open_fs(image, &co, &fs);
    }
    kvro_error err;
    kvro_info st;
    char *tmp = NULL;
    if (rc == EXIT_OK) {
        /* The bytes go to a new file beside KEY, renamed over KEY once
         * whole: a failure before then (FILE unreadable, the image full)
         * leaves an old KEY as it was. A directory is never replaced. */
        kvro_status s = kvro_fs_stat(fs, key, &st, &err);
        if (s == KVRO_OK && st.kind == KVRO_KIND_DIR)
            s = kvro_error_set(&err, KVRO_E_IS_DIR, "a directory: not replaced by a file");
        else if (s == KVRO_E_NOT_FOUND)
            s = KVRO_OK;
        const char *slash = strrchr(key, '/');
        int plen = slash ? (int)(slash - key + 1) : 0;
        for (int k = 0; s == KVRO_OK; k++) {
            free(tmp);
            if (asprintf(&tmp, "%.*s.mkkv-put-%ld-%d", plen, key, (long)getpid(), k) < 0) {
                tmp = NULL;
                s = kvro_error_set(&err, KVRO_E_NOMEM, "out of memory");
                break;
            }
            s = kvro_fs_create(fs, tmp, &err);
            if (s == KVRO_OK || s != KVRO_E_EXISTS || k == 99)
                break;
            s = KVRO_OK;
        }
        bool created = s == KVRO_OK;
        for (int64_t off = 0; s == KVRO_OK;) {
            ssize_t n = read(fd, buf, CHUNK);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0) {
                fprintf(stderr, "mkkv: %s: %s\n", quoted(file), strerror(errno));
                rc = EXIT_FAIL;
                break;
            }
            if (n == 0)
                break;
            s = kvro_fs_write(fs, tmp, off, buf, n, &err);
            off += n;
        }
        if (s == KVRO_OK && rc == EXIT_OK)
            s = kvro_fs_rename(fs, tmp, key, &err);
        if (s == KVRO_OK && rc == EXIT_OK)
            created = false; /* it is KEY now */
        if (s != KVRO_OK)
            rc = fail(&err, image, key);
        /* A file that could not be written whole is not left there. */
        kvro_error ignored;
        if (created)
            kvro_fs_destroy(fs, tmp, &ignored);
        rc = close_fs(fs, image, rc);
    }
    free(tmp);
    if (fd != STDIN_FILENO)
        close(fd);
    free(buf);
    return rc;
}

/* --------------------------------------------------------------- mkdir */

static int mkdir_run(int argc, char **argv)
{
    static const struct option longs[] = {COMMON_LONG_OPTIONS, {0, 0, 0, 0}};
    common_opts co = {0};
    int rc = parse_args(&cmd_mkdir, argc, argv, COMMON_SHORT_OPTIONS, longs, &co, no_opt, NULL);
    if (rc >= 0)
        return rc;
    if (argc - optind != 2)
        return usage_error(&cmd_mkdir, "expects IMAGE PATH");
    const char *image = argv[optind], *key = argv[optind + 1];
    kvro_fs *fs;
    if ((rc = open_fs(image, &co, &fs)) != EXIT_OK)
        return rc;
    kvro_error err;
    if (kvro_fs_mkdir(fs, key, &err) != KVRO_OK)
        rc = fail(&err, image, key);
    return close_fs(fs, image, rc);
}

/* ------------------------------------------------------------------ rm */

static int collect(void *arg, const char *name, kvro_status s, const kvro_info *info)
{
    (void)s, (void)info;
    entry_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 32;
        char **v = realloc(l->names, cap * sizeof *v);
        if (!v)
            return l->oom = true;
        l->names = v, l->cap = cap;
    }
    if (!(l->names[l->n] = strdup(name)))
        return l->oom = true;
    l->n++;
    return 0;
}

/* Removes KEY and, if it is a directory, what it holds, deepest first. */
static kvro_status rm_tree(kvro_fs *fs, const char *key, kvro_error *err)
{
    kvro_info st;
    kvro_status s = kvro_fs_lstat(fs, key, &st, err);
    if (s == KVRO_OK && st.kind == KVRO_KIND_DIR) {
        entry_list l = {0};
        s = kvro_fs_list_info(fs, key, KVRO_NOFOLLOW, collect, &l, err);
        if (s == KVRO_OK && l.oom)
            s = kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
        for (size_t i = 0; s == KVRO_OK && i < l.n; i++) {
            char *sub = key_join(key, l.names[i]);
            s = sub ? rm_tree(fs, sub, err) : kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
            if (s != KVRO_OK && sub)
                kvro_error_context(err, s, NULL, sub);
            free(sub);
        }
        for (size_t i = 0; i < l.n; i++)
            free(l.names[i]);
        free(l.names);
    }
    if (s == KVRO_OK && key[0])
        s = kvro_fs_destroy(fs, key, err);
    return s;
}

static int rm_opt(int c, const char *arg, void *ctx)
{
    (void)arg;
    if (c == 'r') {
        ((rm_opts *)ctx)->recursive = true;
        return -1;
    }
    return usage_error(&cmd_rm, "unknown option");
}

static int rm_run(int argc, char **argv)
{
    static const struct option longs[] = {
        COMMON_LONG_OPTIONS, {"recursive", no_argument, 0, 'r'}, {0, 0, 0, 0}};
    common_opts co = {0};
    rm_opts o = {0};
    int rc = parse_args(&cmd_rm, argc, argv, COMMON_SHORT_OPTIONS "r", longs, &co, rm_opt, &o);
    if (rc >= 0)
        return rc;
    if (argc - optind != 2)
        return usage_error(&cmd_rm, "expects IMAGE PATH");
    const char *image = argv[optind], *key = argv[optind + 1];
    kvro_fs *fs;
    if ((rc = open_fs(image, &co, &fs)) != EXIT_OK)
        return rc;
    kvro_error err;
    kvro_status s = o.recursive ? rm_tree(fs, key, &err) : kvro_fs_destroy(fs, key, &err);
    if (s != KVRO_OK)
        rc = fail(&err, image, key);
    return close_fs(fs, image, rc);
}

const command cmd_put = {
    "put",
    put_run,
    "write a file into a filesystem image (FAT) or directory",
    "Usage: mkkv put [-t TYPE] IMAGE KEY FILE\n"
    "Write FILE ('-': standard input) as KEY into IMAGE, opened read-write as a\n"
    "filesystem (a FAT image, a disk image with one FAT partition, a directory).\n"
    "Missing parent directories are made; a directory at KEY is an error. FILE is\n"
    "written beside KEY under a temporary name (.mkkv-put-PID-N) and renamed to\n"
    "KEY once whole, replacing a file there: if FILE cannot be written whole (it\n"
    "cannot be read, the image is full), the temporary file is removed and an old\n"
    "KEY is as it was. Replacing a file so needs room for both for a moment.\n" COMMON_HELP,
};

const command cmd_mkdir = {
    "mkdir",
    mkdir_run,
    "make a directory (and its parents) in a filesystem image",
    "Usage: mkkv mkdir [-t TYPE] IMAGE PATH\n"
    "Make directory PATH in IMAGE, opened read-write as a filesystem, with any\n"
    "missing parents; a directory already there is not an error.\n" COMMON_HELP,
};

const command cmd_rm = {
    "rm",
    rm_run,
    "remove a file or directory from a filesystem image",
    "Usage: mkkv rm [-r] [-t TYPE] IMAGE PATH\n"
    "Remove file or empty directory PATH from IMAGE, opened read-write as a\n"
    "filesystem; with -r a directory and everything in it.\n"
    "  -r, --recursive       remove a directory and what it holds\n" COMMON_HELP,
};
