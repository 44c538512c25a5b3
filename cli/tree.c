/*
 * tree.c — the source walk of tree.h: host directories natively and
 * sorted, anything else through the KV_RO API in storage order.
 *
 * Each level of the walk is one directory's listing: its names packed in an
 * arena as "<kind><name>\0" records, sorted by name with qsort_r over the
 * record offsets. A walk in storage order is one level holding every key
 * (kvro_each), unsorted. Levels are kept when the walk climbs back up, so their
 * buffers are reused by the next directory at the same depth: a tree of
 * 100,000 files costs a handful of allocations, not one per file.
 *
 * Host files are opened with O_NOFOLLOW | O_NONBLOCK and checked with fstat,
 * so a name swapped for a link or a FIFO between readdir and open is never
 * followed or waited on; O_NOATIME (when permitted) keeps even the access
 * times of SOURCE as they were.
 */
#include "tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>


typedef struct level {
    DIR *dir;    /* host: the directory, anchor for openat */
    char *arena; /* "<kind byte><name>\0" records */
    size_t arena_len, arena_cap;
    size_t *offs; /* record offsets, sorted by name once filled */
    size_t n, cap, next;
    size_t path_len; /* this directory's path is t->path[0..path_len) */
    bool oom;        /* kvro_list was stopped: out of memory */
} level;

struct tree {
    const char *source; /* as the user gave it, for messages */
    kvro *kv;           /* NULL for a host directory */
    int rootfd;         /* host: the root */
    bool follow;        /* TREE_FOLLOW */
    bool each;          /* one level: every key in storage order (kvro_each) */
    char *real;         /* real path of SOURCE ("" for "/") */
    level *lv; /* lv[0..depth) are being walked */
    size_t depth, nlv;
    char *path; /* the current entry's path */
    size_t path_cap;
    int fd;       /* host: the current file (read with pread), or -1 */
    bool has_id; /* SOURCE's identity is known (tree_source_id) */
    dev_t id_dev;
    ino_t id_ino;
    bool noatime;
    char *link; /* the current link's stored target */
    size_t link_cap;
    tree_warn_fn warn;
    void *warn_arg;
};

/* ------------------------------------------------------------ helpers */

/* Names the entry (KEY; NULL for the source) ERR, just filled by
 * kvro_error_set, is about. Returns -1, tree_next's failure. */
static int fail(const tree *t, kvro_error *err, const char *key)
{
    error_about(err, t->source, key);
    return -1;
}

static int errno_err(const tree *t, kvro_error *err, const char *key, const char *what)
{
    int e = errno;
    kvro_error_set(err, kvro_status_from_errno(e), "%s: %s", what, strerror(e));
    return fail(t, err, key);
}

static int nomem(const tree *t, kvro_error *err, const char *key)
{
    kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    return fail(t, err, key);
}

/* Makes *BUF hold at least NEED bytes; false if out of memory. */
static bool grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap)
        return true;
    size_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    char *b = realloc(*buf, c);
    if (!b)
        return false;
    *buf = b;
    *cap = c;
    return true;
}

static void default_warn(void *arg, const kvro_error *w)
{
    (void)arg;
    print_error(w);
}

/* ------------------------------------------------------------- levels */

static bool level_add(level *l, unsigned char kind, const char *name)
{
    size_t n = strlen(name);
    if (!grow(&l->arena, &l->arena_cap, l->arena_len + n + 2))
        return false;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 64;
        size_t *o = realloc(l->offs, cap * sizeof *o);
        if (!o)
            return false;
        l->offs = o;
        l->cap = cap;
    }
    l->offs[l->n++] = l->arena_len;
    l->arena[l->arena_len] = (char)kind;
    memcpy(l->arena + l->arena_len + 1, name, n + 1);
    l->arena_len += n + 2;
    return true;
}

static int by_name(const void *a, const void *b, void *arena)
{
    const char *base = arena;
    return strcmp(base + *(const size_t *)a + 1, base + *(const size_t *)b + 1);
}

/* The next free level, emptied, for a directory whose path is
 * t->path[0..path_len); NULL if out of memory. */
static level *level_push(tree *t, size_t path_len)
{
    if (t->depth == t->nlv) {
        size_t n = t->nlv ? 2 * t->nlv : 16;
        level *lv = realloc(t->lv, n * sizeof *lv);
        if (!lv)
            return NULL;
        memset(lv + t->nlv, 0, (n - t->nlv) * sizeof *lv);
        t->lv = lv;
        t->nlv = n;
    }
    level *l = &t->lv[t->depth++];
    l->dir = NULL;
    l->arena_len = l->n = l->next = 0;
    l->path_len = path_len;
    l->oom = false;
    return l;
}

static void level_sort(level *l)
{
    if (l->n > 1) /* an empty level has no array to hand qsort_r */
        qsort_r(l->offs, l->n, sizeof *l->offs, by_name, l->arena);
}

static void level_pop(tree *t)
{
    level *l = &t->lv[--t->depth];
    if (l->dir)
        closedir(l->dir);
    l->dir = NULL;
}

/* Reads host directory FD (taken over) into a new level. */
static int host_push(tree *t, int fd, size_t path_len, kvro_error *err)
{
    const char *key = path_len ? t->path : "/";
    level *l = level_push(t, path_len);
    if (!l) {
        close(fd);
        return nomem(t, err, key);
    }
    if (!(l->dir = fdopendir(fd))) {
        close(fd);
        t->depth--;
        return errno_err(t, err, key, "cannot read directory");
    }
    errno = 0;
    for (struct dirent *d; (d = readdir(l->dir)) != NULL; errno = 0) {
        const char *n = d->d_name;
        if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2])))
            continue;
        if (!level_add(l, d->d_type, n))
            return nomem(t, err, key);
    }
    if (errno)
        return errno_err(t, err, key, "cannot read directory");
    level_sort(l);
    return 0;
}

/* Links as links (every one), whatever TREE_FOLLOW says: kv_entry decides
 * what to do with each, so one that leads outside is never just left out.
 * An entry the listing could not stat is kept (kind 0): kv_entry says why. */
static int kv_collect(void *arg, const char *name, kvro_status s, const kvro_info *info)
{
    level *l = arg;
    unsigned char kind = s == KVRO_OK ? (unsigned char)info->kind : 0;
    return l->oom = !level_add(l, kind, name);
}

/* Lists source directory t->path[0..path_len) into a new level. */
static int kv_push(tree *t, size_t path_len, kvro_error *err)
{
    const char *key = path_len ? t->path : "/";
    level *l = level_push(t, path_len);
    if (!l)
        return nomem(t, err, key);
    if (kvro_list_info(t->kv, path_len ? t->path : "", KVRO_NOFOLLOW, kv_collect, l, err) !=
        KVRO_OK)
        return -1;
    if (l->oom) /* the listing stopped early: a cut one must not pass for whole */
        return nomem(t, err, key);
    level_sort(l);
    return 0;
}

/* Every key of the source into one level, in the order the source stores
 * the values (kvro_each): an archive read once, front to back, whatever
 * its members' names. */
static int each_push(tree *t, kvro_error *err)
{
    level *l = level_push(t, 0);
    if (!l)
        return nomem(t, err, NULL);
    if (kvro_each(t->kv, kv_collect, l, err) != KVRO_OK)
        return -1;
    if (l->oom)
        return nomem(t, err, NULL);
    t->each = true;
    return 0;
}

/* -------------------------------------------------------- host entries */

static int open_file(tree *t, int dfd, const char *name)
{
    int flags = O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY;
    int fd = openat(dfd, name, flags | (t->noatime ? O_NOATIME : 0));
    if (fd < 0 && errno == EPERM && t->noatime) { /* O_NOATIME is for the owner only */
        t->noatime = false;
        fd = openat(dfd, name, flags);
    }
    return fd;
}

static const char *special_name(mode_t m)
{
    return S_ISFIFO(m)   ? "a FIFO"
           : S_ISSOCK(m) ? "a socket"
           : S_ISCHR(m)  ? "a character device"
           : S_ISBLK(m)  ? "a block device"
                         : "a special file";
}

/* Fills E for NAME (hinted to be of d_type HINT) in level L. Returns 1 to
 * yield it, 0 to skip it, -1 on an error. */
static int host_entry(tree *t, level *l, const char *name, unsigned char hint, tree_entry *e,
                      kvro_error *err)
{
    int dfd = dirfd(l->dir);
    struct stat st;
    if (hint == DT_REG && (t->fd = open_file(t, dfd, name)) >= 0 &&
        (fstat(t->fd, &st) != 0 || !S_ISREG(st.st_mode))) {
        close(t->fd); /* changed since readdir: look again below */
        t->fd = -1;
    }
    if (t->fd < 0 && fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno_err(t, err, t->path,
                         errno == ENOENT ? "vanished while being read" : "cannot stat");
    e->mode = st.st_mode & 07777;
    e->has_mode = true;
    e->mtime = st.st_mtim.tv_sec;
    e->mtime_nsec = (int32_t)st.st_mtim.tv_nsec;
    e->id[0] = (uint64_t)st.st_dev;
    e->id[1] = (uint64_t)st.st_ino;
    e->nlink = st.st_nlink > UINT32_MAX ? UINT32_MAX : (uint32_t)st.st_nlink;
    if (S_ISREG(st.st_mode)) {
        if (t->fd < 0) {
            if ((t->fd = open_file(t, dfd, name)) < 0)
                return errno_err(t, err, t->path, "cannot open");
            if (fstat(t->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
                kvro_error_set(err, KVRO_E_IO, "changed while being read");
                return fail(t, err, t->path);
            }
        }
        e->kind = TREE_FILE;
        e->size = st.st_size;
        return 1;
    }
    if (S_ISDIR(st.st_mode)) {
        e->kind = TREE_DIR;
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            return errno_err(t, err, t->path, "cannot open directory");
        return host_push(t, fd, e->path_len, err) < 0 ? -1 : 1;
    }
    if (S_ISLNK(st.st_mode)) {
        /* As stored: Linux keeps a target under PATH_MAX bytes. */
        if (!grow(&t->link, &t->link_cap, PATH_MAX + 1))
            return nomem(t, err, t->path);
        ssize_t n = readlinkat(dfd, name, t->link, PATH_MAX);
        if (n < 0)
            return errno_err(t, err, t->path, "cannot read symbolic link");
        t->link[n] = '\0';
        e->kind = TREE_SYMLINK;
        e->link = t->link;
        return 1;
    }
    kvro_error w;
    kvro_error_set(&w, KVRO_E_UNSUPPORTED, "skipped: %s is not stored", special_name(st.st_mode));
    error_about(&w, t->source, t->path);
    t->warn(t->warn_arg, &w);
    return 0;
}

/* -------------------------------------------------------- kvro entries */

/* The current link's target into t->link. */
static int kv_readlink(tree *t, kvro_error *err)
{
    size_t len = 0;
    for (;;) {
        if (kvro_readlink(t->kv, t->path, t->link, t->link_cap, &len, err) != KVRO_OK)
            return -1;
        if (len < t->link_cap)
            return 0;
        if (!grow(&t->link, &t->link_cap, len + 1))
            return nomem(t, err, t->path);
    }
}

static int kv_entry(tree *t, tree_entry *e, kvro_error *err)
{
    kvro_info st;
    if (kvro_lstat(t->kv, t->path, &st, err) != KVRO_OK)
        return -1;
    /* Followed, a link is what it leads to: its target's data, mode and
     * identity (so a file with hard links reached by a link is stored as
     * one of its names, as GNU tar -h does). A link that leads nowhere
     * inside is the library's KVRO_E_LINK, which names it. */
    if (st.kind == KVRO_KIND_LINK && t->follow && kvro_stat(t->kv, t->path, &st, err) != KVRO_OK)
        return -1;
    e->mode = st.has_mode ? st.mode & 07777 : 0;
    e->has_mode = st.has_mode;
    e->mtime = st.mtime;
    e->mtime_nsec = st.mtime_nsec;
    e->id[1] = st.id;
    e->nlink = st.nlink;
    if (st.kind == KVRO_KIND_LINK) {
        if (kv_readlink(t, err) < 0)
            return -1;
        e->kind = TREE_SYMLINK;
        e->link = t->link;
        return 1;
    }
    if (st.kind == KVRO_KIND_DIR) {
        e->kind = TREE_DIR;
        if (t->each) /* its contents come in the one list */
            return 1;
        return kv_push(t, e->path_len, err) < 0 ? -1 : 1;
    }
    e->kind = TREE_FILE;
    e->size = st.size;
    return 1;
}

/* ---------------------------------------------------------------- API */

int tree_open(const char *source, const common_opts *o, int flags, tree_warn_fn warn,
              void *warn_arg, tree **out)
{
    *out = NULL;
    tree *t = calloc(1, sizeof *t);
    if (!t) {
        fprintf(stderr, "mkkv: out of memory\n");
        return EXIT_FAIL;
    }
    t->source = source_name(source);
    t->rootfd = t->fd = -1;
    t->follow = (flags & TREE_FOLLOW) != 0;
    t->noatime = true;
    t->warn = warn ? warn : default_warn;
    t->warn_arg = warn_arg;
    kvro_error err;
    int rc = EXIT_OK;
    struct stat st;
    /* Standard input and a window of a file are images: open_source. */
    bool host = !o->open.backend && !o->window && !source_is_stdin(source) && !t->follow;
    if (host && stat(source, &st) == 0 && S_ISDIR(st.st_mode)) {
        t->rootfd = open(source, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int fd = t->rootfd < 0 ? -1 : dup(t->rootfd);
        if (fd < 0 || host_push(t, fd, 0, &err) < 0) {
            if (fd < 0)
                errno_err(t, &err, NULL, "cannot open directory");
            rc = report(&err);
        }
    } else if ((rc = open_source(source, o, &t->kv)) == EXIT_OK &&
               (t->follow || (flags & TREE_SORTED) ? kv_push(t, 0, &err) : each_push(t, &err)) <
                   0) {
        rc = report(&err);
    }
    /* What SOURCE is, for tree_source_id: stat'ed after the open, so a
     * name that was replaced in between is not taken for it. */
    struct stat id;
    if (rc == EXIT_OK &&
        (source_is_stdin(source) ? fstat(STDIN_FILENO, &id) == 0 && S_ISREG(id.st_mode)
                                 : stat(source, &id) == 0)) {
        t->has_id = true;
        t->id_dev = id.st_dev;
        t->id_ino = id.st_ino;
    }
    if (rc == EXIT_OK && !source_is_stdin(source)) {
        /* It lets a builder refuse to overwrite what it reads. */
        if (!(t->real = realpath(source, NULL))) {
            errno_err(t, &err, NULL, "cannot find the real path");
            rc = report(&err);
        } else if (!strcmp(t->real, "/")) {
            t->real[0] = '\0';
        }
    }
    if (rc != EXIT_OK) {
        tree_close(t);
        return rc;
    }
    *out = t;
    return EXIT_OK;
}

bool tree_is_host_dir(const tree *t)
{
    return t->kv == NULL;
}

bool tree_source_id(const tree *t, dev_t *dev, ino_t *ino)
{
    *dev = t->id_dev;
    *ino = t->id_ino;
    return t->has_id;
}

const char *tree_real_path(const tree *t)
{
    return !t->real ? NULL : t->real[0] ? t->real : "/";
}

int tree_next(tree *t, tree_entry *e, kvro_error *err)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
    while (t->depth > 0) {
        level *l = &t->lv[t->depth - 1];
        if (l->next == l->n) {
            level_pop(t);
            continue;
        }
        const char *rec = l->arena + l->offs[l->next++];
        const char *name = rec + 1;
        size_t nl = strlen(name), pl = l->path_len, len = pl + (pl > 0) + nl;
        if (!grow(&t->path, &t->path_cap, len + 1))
            return nomem(t, err, name);
        if (pl)
            t->path[pl] = '/';
        memcpy(t->path + pl + (pl > 0), name, nl + 1);
        memset(e, 0, sizeof *e);
        e->path = t->path;
        e->path_len = len;
        e->name = t->path + len - nl;
        e->depth = t->depth - 1;
        if (t->each) { /* NAME is a whole key */
            const char *slash = strrchr(name, '/');
            e->name = slash ? t->path + (slash + 1 - name) : t->path;
            for (const char *c = name; (c = strchr(c, '/')) != NULL; c++)
                e->depth++;
        }
        int r = t->kv ? kv_entry(t, e, err) : host_entry(t, l, name, (unsigned char)rec[0], e, err);
        if (r != 0)
            return r;
    }
    return 0;
}

int tree_read(tree *t, int64_t offset, void *buf, size_t len, size_t *n, kvro_error *err)
{
    *n = 0;
    if (t->kv) {
        int64_t got;
        if (kvro_read(t->kv, t->path, offset, (int64_t)len, buf, &got, err) != KVRO_OK)
            return -1;
        *n = (size_t)got;
        return 0;
    }
    /* One pread, not a kvro_io: a small file is then one call, not an
     * fstat to make the object and a second read to see the end (of
     * 100,000 small files' syscalls, a quarter). A short count is the
     * end for a regular file; the caller asks again if it needs more, so
     * a file that shrank is still told apart. */
    ssize_t r;
    do
        r = pread(t->fd, buf, len, (off_t)offset);
    while (r < 0 && errno == EINTR);
    if (r < 0)
        return errno_err(t, err, t->path, "cannot read");
    *n = (size_t)r;
    return 0;
}

void tree_close(tree *t)
{
    if (!t)
        return;
    while (t->depth > 0)
        level_pop(t);
    for (size_t i = 0; i < t->nlv; i++) {
        free(t->lv[i].arena);
        free(t->lv[i].offs);
    }
    free(t->lv);
    if (t->fd >= 0)
        close(t->fd);
    if (t->rootfd >= 0)
        close(t->rootfd);
    kvro_close(t->kv);
    free(t->real);
    free(t->path);
    free(t->link);
    free(t);
}
