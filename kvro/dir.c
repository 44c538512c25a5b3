/*
 * dir.c — the host-directory backend ("dir"): a read-write kvro_fs over a
 * directory, reaching KV_RO through the adaptor.
 *
 * Confinement: a key is resolved one component at a time beneath the root,
 * with fstatat(AT_SYMLINK_NOFOLLOW) and openat(O_NOFOLLOW) relative to the
 * directory reached so far, so nothing the host does with "..", absolute
 * paths or symlinks can take us out. Symlinks are expanded here, by hand:
 * a relative target is walked like the rest of the key (a ".." above the
 * root is refused), an absolute one is accepted only if it names a path
 * under the root's real path. openat2(RESOLVE_BENEATH) would refuse every
 * absolute symlink, even one that points back inside the tree, and some
 * sandboxes filter it, hence the hand-made walk. Like the kernel, we give
 * up after 40 links (a loop). list reports symlinks as stored (escaping
 * ones too) and lstat/readlink describe them without following; kvro_info.id
 * is the inode, so hard links share it.
 *
 * Every call opens what it needs and closes it again, so one handle is safe
 * from many threads: the only shared state is the root's descriptor.
 */
#include "walk.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#ifdef SYS_openat2
#include <linux/openat2.h>
#endif

typedef struct dir_root {
    int fd;             /* descriptor of the root */
    dev_t dev;          /* its device, for entry_id */
    bool walk_only;     /* $KVRO_DIR_WALK_ONLY: no fast path (tests of the walk) */
    char *real;         /* its real path, "" for "/" */
    kvro__walk_ops ops; /* the tree for walk.c, rooted at FD */
} dir_root;

/* Where a key leads: the directory that holds its last component, and that
 * component's name there ("." for a directory reached as a whole). */
typedef struct dir_at {
    int dirfd;
    bool owns_dirfd;
    bool exists;     /* false: only the last component is missing */
    bool via_link;   /* a symlink was followed on the way */
    char name[NAME_MAX + 1];
    struct stat st;  /* of the object, when it exists */
} dir_at;

static void at_done(dir_at *at)
{
    if (at->owns_dirfd)
        close(at->dirfd);
    at->owns_dirfd = false;
}

static kvro_status errno_status(kvro_error *err, const char *what, const char *name)
{
    int e = errno;
    return kvro_error_set(err, kvro_status_from_errno(e), "%s '%s': %s", what, name, strerror(e));
}

/* ---------------------------------------------------------------- walk */

/* The tree as walk.c sees it: nodes are descriptors (the root's, and
 * O_PATH ones of the directories entered), lookups are fstatat without
 * following. The last lookup's stat and name are kept: a walk asks about
 * a name right after looking it up, and ends with the lookup of its last
 * component. */
typedef struct dir_walk_ctx {
    struct stat st;
    char name[NAME_MAX + 1];
} dir_walk_ctx;

static kvro_status dw_lookup(void *ctx, uint64_t dir, const char *name, size_t n,
                             kvro__wentry *e, kvro_error *err)
{
    dir_walk_ctx *c = ctx;
    memcpy(c->name, name, n); /* n <= NAME_MAX: the walker checks name_max */
    c->name[n] = '\0';
    if (fstatat((int)dir, c->name, &c->st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT) {
            e->kind = KVRO__W_MISSING;
            return KVRO_OK;
        }
        return errno_status(err, "cannot stat", c->name);
    }
    e->kind = S_ISDIR(c->st.st_mode)   ? KVRO__W_DIR
              : S_ISLNK(c->st.st_mode) ? KVRO__W_SYMLINK
                                       : KVRO__W_OTHER;
    e->id[0] = (uint64_t)c->st.st_dev;
    e->id[1] = (uint64_t)c->st.st_ino;
    return KVRO_OK;
}

static kvro_status dw_readlink(void *ctx, uint64_t dir, const char *name, size_t n, char *buf,
                               size_t cap, kvro_error *err)
{
    (void)name, (void)n;
    dir_walk_ctx *c = ctx;
    ssize_t got = readlinkat((int)dir, c->name, buf, cap - 1);
    if (got < 0)
        return errno_status(err, "cannot read symbolic link", c->name);
    buf[got] = '\0';
    return KVRO_OK;
}

static kvro_status dw_enter(void *ctx, uint64_t dir, const char *name, size_t n,
                            const kvro__wentry *e, uint64_t *entered, kvro_error *err)
{
    (void)name, (void)n, (void)e;
    dir_walk_ctx *c = ctx;
    int fd = openat((int)dir, c->name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno_status(err, "cannot open directory", c->name);
    *entered = (uint64_t)fd;
    return KVRO_OK;
}

static void dw_leave(void *ctx, uint64_t entered)
{
    (void)ctx;
    close((int)entered);
}

/* Resolves KEY beneath the root. Every component but the last must exist
 * and be a directory (symlinks followed); the last is followed only if
 * FOLLOW_LAST, and may be missing (at->exists = false). */
static kvro_status dir_walk(const dir_root *r, const char *key, bool follow_last, dir_at *at,
                            kvro_error *err)
{
    memset(at, 0, sizeof *at);
    dir_walk_ctx c;
    memset(&c, 0, sizeof c);
    kvro__walk_end end;
    kvro_status s = kvro__walk(&r->ops, &c, key,
                               KVRO__WALK_MISSING | (follow_last ? KVRO__WALK_FOLLOW : 0), &end,
                               err);
    if (s != KVRO_OK)
        return s;
    at->dirfd = (int)end.dir;
    at->owns_dirfd = end.dir_entered;
    end.dir_entered = false; /* now AT's */
    at->via_link = end.via_link;
    at->exists = end.e.kind != KVRO__W_MISSING;
    snprintf(at->name, sizeof at->name, "%.*s", (int)end.name_len, end.name);
    if (at->exists && !strcmp(at->name, ".") && fstat(at->dirfd, &c.st) != 0)
        s = errno_status(err, "cannot stat", ".");
    at->st = c.st;
    kvro__walk_end_done(&r->ops, &c, &end);
    if (s != KVRO_OK)
        at_done(at);
    return s;
}

static kvro_status kind_of(const struct stat *st, kvro_kind *kind, kvro_error *err)
{
    if (S_ISREG(st->st_mode))
        *kind = KVRO_KIND_FILE;
    else if (S_ISDIR(st->st_mode))
        *kind = KVRO_KIND_DIR;
    else
        return kvro_error_set(err, KVRO_E_UNSUPPORTED, "is a %s, not a file or directory",
                              S_ISFIFO(st->st_mode)   ? "FIFO"
                              : S_ISSOCK(st->st_mode) ? "socket"
                              : S_ISCHR(st->st_mode)  ? "character device"
                              : S_ISBLK(st->st_mode)  ? "block device"
                                                      : "special file");
    return KVRO_OK;
}

/* Walks KEY following links and requires that it exists. */
static kvro_status walk_existing(const dir_root *r, const char *key, dir_at *at, kvro_kind *kind,
                                 kvro_error *err)
{
    kvro_status s = dir_walk(r, key, true, at, err);
    if (s == KVRO_OK && !at->exists)
        s = kvro_error_set(err, KVRO_E_NOT_FOUND, "no such file or directory");
    if (s == KVRO_OK)
        s = kind_of(&at->st, kind, err);
    if (s != KVRO_OK)
        at_done(at);
    return s;
}

/* Opens a regular file found by walk_existing, and checks it is still the
 * same one (the name may have been swapped in between). O_NONBLOCK keeps a
 * FIFO put there meanwhile from hanging us. */
static kvro_status open_file(dir_at *at, int flags, int *fd, kvro_error *err)
{
    *fd = openat(at->dirfd, at->name, flags | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (*fd < 0)
        return errno_status(err, "cannot open", at->name);
    struct stat st;
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_ino != at->st.st_ino ||
        st.st_dev != at->st.st_dev) {
        close(*fd);
        return kvro_error_set(err, KVRO_E_IO, "'%s' changed while being opened", at->name);
    }
    at->st = st;
    return KVRO_OK;
}

/* ------------------------------------------------------------ read side */

/* One stored entry's identity for kvro_info.id: the inode, mixed with the
 * device so that a mount point under the root does not collide with it
 * (a tree on one device, the usual case, gets exactly its inodes). Never
 * 0, which means "unknown". */
static uint64_t entry_id(const dir_root *r, const struct stat *st)
{
    uint64_t id = (uint64_t)st->st_ino;
    if (st->st_dev != r->dev)
        id ^= ((uint64_t)st->st_dev * 0x9E3779B97F4A7C15ull) << 1 | 1ull << 63;
    return id ? id : 1;
}

static void fill_info(const dir_root *r, const struct stat *hs, kvro_kind kind, kvro_info *st)
{
    st->kind = kind;
    st->size = kind == KVRO_KIND_DIR ? 0 : (int64_t)hs->st_size;
    st->mtime = (int64_t)hs->st_mtim.tv_sec;
    st->mtime_nsec = (int32_t)hs->st_mtim.tv_nsec;
    st->mode = hs->st_mode & 07777;
    st->has_mode = true;
    st->id = entry_id(r, hs);
    st->nlink = hs->st_nlink > UINT32_MAX ? UINT32_MAX : (uint32_t)hs->st_nlink;
}

/* ------------------------------------------------------------ fast path */

/* Most keys name no link at all, and for those the walk above costs three
 * calls per component. openat2(2) resolves such a key in one call with the
 * same confinement (RESOLVE_BENEATH: nothing leaves the root) while
 * refusing every symbolic link on the way (RESOLVE_NO_SYMLINKS), so a key
 * it resolves is one the walk would resolve to the same file; anything
 * else (a link, a missing name, a kernel or sandbox without openat2) goes
 * to the walk, whose answers and messages stay the only ones. Stats go
 * through an O_PATH descriptor, a directory to list is opened with
 * O_DIRECTORY and a value only once a stat said it is a regular file: a
 * device is never opened, a FIFO never waited on.
 * KVRO_DIR_WALK_ONLY=1 in the environment turns it off (the test suite
 * runs the directory tests both ways). */
static atomic_bool no_openat2;

/* KEY opened with FLAGS (O_CLOEXEC added) by the fast path, or -1. */
static int fast_openat(const dir_root *r, const char *key, int flags)
{
#ifdef SYS_openat2
    if (!*key || r->walk_only || atomic_load_explicit(&no_openat2, memory_order_relaxed))
        return -1;
    struct open_how how = {
        .flags = (uint64_t)(flags | O_CLOEXEC),
        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    long fd = syscall(SYS_openat2, r->fd, key, &how, sizeof how);
    if (fd < 0 && (errno == ENOSYS || errno == EPERM || errno == E2BIG))
        atomic_store_explicit(&no_openat2, true, memory_order_relaxed);
    return fd < 0 ? -1 : (int)fd;
#else
    (void)r, (void)key, (void)flags;
    return -1;
#endif
}

static int fast_resolve(const dir_root *r, const char *key, bool follow_last)
{
    return fast_openat(r, key, O_PATH | (follow_last ? 0 : O_NOFOLLOW));
}

/* KEY's stat by the fast path: true with *HS filled, or false (walk). */
static bool fast_stat(const dir_root *r, const char *key, bool follow_last, struct stat *hs)
{
    int fd = fast_resolve(r, key, follow_last);
    if (fd < 0)
        return false;
    bool ok = fstat(fd, hs) == 0;
    close(fd);
    return ok;
}

/* Regular file KEY opened for reading by the fast path (its stat in *HS):
 * the descriptor, or -1 (walk). A stat first, so that only what is a
 * regular file is ever opened (never a device; O_NONBLOCK for a FIFO put
 * there in between); that stat is not confined (links on the way are
 * followed) and only gates: the open is (openat2, as above) and must
 * reach the very file stated (device and inode), else the walk answers.
 * Three calls, not the four of an O_PATH descriptor reopened through
 * /proc/self/fd (and its lookup), for every value read. */
static int fast_open(const dir_root *r, const char *key, struct stat *hs)
{
    struct stat pre;
    if (!*key || r->walk_only || atomic_load_explicit(&no_openat2, memory_order_relaxed) ||
        fstatat(r->fd, key, &pre, AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT) != 0 ||
        !S_ISREG(pre.st_mode))
        return -1;
    int fd = fast_openat(r, key, O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
    if (fd >= 0 && (fstat(fd, hs) != 0 || !S_ISREG(hs->st_mode) || hs->st_ino != pre.st_ino ||
                    hs->st_dev != pre.st_dev)) {
        close(fd);
        fd = -1;
    }
    return fd;
}

static kvro_status dir_stat(void *self, const char *key, kvro_info *st, kvro_error *err)
{
    dir_at at;
    kvro_kind kind = KVRO_KIND_FILE;
    struct stat hs;
    if (fast_stat(self, key, true, &hs)) {
        kvro_status s = kind_of(&hs, &kind, err);
        if (s == KVRO_OK)
            fill_info(self, &hs, kind, st);
        return s;
    }
    kvro_status s = walk_existing(self, key, &at, &kind, err);
    if (s != KVRO_OK)
        return s;
    fill_info(self, &at.st, kind, st);
    at_done(&at);
    return KVRO_OK;
}

/* Walks KEY without following its last component, which must exist. */
static kvro_status walk_nofollow(const dir_root *r, const char *key, dir_at *at, kvro_error *err)
{
    kvro_status s = dir_walk(r, key, false, at, err);
    if (s == KVRO_OK && !at->exists) {
        at_done(at);
        s = kvro_error_set(err, KVRO_E_NOT_FOUND, "no such file or directory");
    }
    return s;
}

/* A symbolic link as it is (lstat's st_size is the target's length), or
 * whatever KEY is when it is not one. */
static kvro_status dir_lstat(void *self, const char *key, kvro_info *st, kvro_error *err)
{
    dir_at at;
    struct stat hs;
    if (fast_stat(self, key, false, &hs)) {
        kvro_kind kind = KVRO_KIND_LINK;
        kvro_status s = S_ISLNK(hs.st_mode) ? KVRO_OK : kind_of(&hs, &kind, err);
        if (s == KVRO_OK)
            fill_info(self, &hs, kind, st);
        return s;
    }
    kvro_status s = walk_nofollow(self, key, &at, err);
    if (s != KVRO_OK)
        return s;
    kvro_kind kind = KVRO_KIND_LINK;
    if (!S_ISLNK(at.st.st_mode))
        s = kind_of(&at.st, &kind, err);
    if (s == KVRO_OK)
        fill_info(self, &at.st, kind, st);
    at_done(&at);
    return s;
}

/* The target text as the host stores it: never resolved. */
static kvro_status dir_readlink(void *self, const char *key, char *buf, size_t size,
                                size_t *len, kvro_error *err)
{
    dir_at at;
    kvro_status s = walk_nofollow(self, key, &at, err);
    if (s != KVRO_OK)
        return s;
    /* Linux keeps a target under PATH_MAX bytes: one buffer holds any. */
    char target[PATH_MAX + 1];
    ssize_t got = -1;
    if (!S_ISLNK(at.st.st_mode))
        s = kvro_error_set(err, KVRO_E_INVALID, "not a symbolic link");
    else if ((got = readlinkat(at.dirfd, at.name, target, sizeof target)) < 0)
        s = errno_status(err, "cannot read symbolic link", at.name);
    at_done(&at);
    if (s != KVRO_OK)
        return s;
    size_t n = (size_t)got, k = size && n >= size ? size - 1 : n;
    if (size) {
        memcpy(buf, target, k);
        buf[k] = '\0';
    }
    if (len)
        *len = n;
    return KVRO_OK;
}

static kvro_status dir_read(void *self, const char *key, int64_t off, int64_t len, void *buf,
                            int64_t *nread, kvro_error *err)
{
    dir_at at;
    kvro_kind kind = KVRO_KIND_FILE;
    kvro_status s = KVRO_OK;
    int fd = fast_open(self, key, &at.st);
    if (fd >= 0) {
        const char *slash = strrchr(key, '/');
        snprintf(at.name, sizeof at.name, "%s", slash ? slash + 1 : key); /* for messages */
    } else {
        s = walk_existing(self, key, &at, &kind, err);
        if (s != KVRO_OK)
            return s;
        if (kind == KVRO_KIND_DIR) {
            at_done(&at);
            return kvro_error_set(err, KVRO_E_IS_DIR, "is a directory, not a value");
        }
        s = open_file(&at, O_RDONLY, &fd, err);
        at_done(&at);
        if (s != KVRO_OK)
            return s;
    }
    int64_t size = (int64_t)at.st.st_size;
    int64_t want = off >= size ? 0 : (len < size - off ? len : size - off);
    size_t got; /* short if it shrank since fstat: the end is there */
    int e = kvro__pread(fd, buf, (size_t)want, off, &got);
    if (e) {
        errno = e;
        s = errno_status(err, "cannot read", at.name);
    }
    close(fd);
    *nread = (int64_t)got;
    return s;
}

/* Opens directory DIR (links followed, never out of the root) for reading
 * its entries: *FD, and whether a link was followed on the way. A key with
 * no link in it is opened in one call by the fast path (O_DIRECTORY: a
 * device put there is refused, never opened); anything else is walked. */
static kvro_status open_listing(dir_root *r, const char *dir, int *fd, bool *via_link,
                                kvro_error *err)
{
    *via_link = false;
    if ((*fd = fast_openat(r, dir, O_RDONLY | O_DIRECTORY)) >= 0)
        return KVRO_OK;
    dir_at at;
    kvro_kind kind = KVRO_KIND_FILE;
    kvro_status s = walk_existing(r, dir, &at, &kind, err);
    if (s != KVRO_OK)
        return s;
    if (kind != KVRO_KIND_DIR) {
        at_done(&at);
        return kvro_error_set(err, KVRO_E_NOT_DIR, "is a file, not a directory");
    }
    *fd = openat(at.dirfd, at.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (*fd < 0)
        s = errno_status(err, "cannot open directory", at.name);
    /* Reached through a link, DIR's key may already have passed one of its
     * subdirectories (l -> a/b, a/b/up -> ..: "l/up" is a, and "l/up/b"
     * is a loop), so those are checked as keys too. */
    *via_link = at.via_link;
    at_done(&at);
    return s;
}

/* One entry of a scan: its kind and, if the scan was asked for them, its
 * lstat (HS; NULL with STATUS set when that failed). */
typedef int (*scan_fn)(void *arg, const char *name, kvro_kind kind, kvro_status status,
                       const struct stat *hs);

/* Calls FN for each entry of directory DIR that is a file, a directory or
 * a link (as stored, never followed: the core resolves links for callers
 * that follow, backend.h). With STATS each entry's lstat comes with it,
 * made relative to the directory's descriptor: one fstatat per entry, no
 * key resolved again from the root. */
static kvro_status dir_scan(dir_root *r, const char *dir, bool stats, scan_fn fn, void *arg,
                            kvro_error *err)
{
    int fd;
    bool via_link;
    kvro_status s = open_listing(r, dir, &fd, &via_link, err);
    if (s != KVRO_OK)
        return s;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return errno_status(err, "cannot list", dir);
    }
    size_t dlen = strlen(dir);
    char *child = via_link ? malloc(dlen + NAME_MAX + 2) : NULL;
    if (via_link && !child) {
        closedir(d);
        return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    }
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno)
                s = errno_status(err, "cannot list", dir);
            break;
        }
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        unsigned char type = e->d_type;
        struct stat hs;
        kvro_status st = KVRO_OK;
        if (stats || type == DT_UNKNOWN) { /* some file systems do not say: ask */
            if (fstatat(dirfd(d), e->d_name, &hs, AT_SYMLINK_NOFOLLOW) != 0) {
                if (errno == ENOENT)
                    continue; /* gone since readdir */
                if (type == DT_UNKNOWN)
                    continue; /* nothing to say what it is */
                st = kvro_status_from_errno(errno);
            } else {
                type = S_ISREG(hs.st_mode)   ? DT_REG
                       : S_ISDIR(hs.st_mode) ? DT_DIR
                       : S_ISLNK(hs.st_mode) ? DT_LNK
                                             : DT_FIFO;
            }
        }
        kvro_kind kind;
        if (type == DT_REG)
            kind = KVRO_KIND_FILE;
        else if (type == DT_LNK)
            kind = KVRO_KIND_LINK;
        else if (type == DT_DIR && !via_link)
            kind = KVRO_KIND_DIR;
        else if (type == DT_DIR) {
            snprintf(child, dlen + NAME_MAX + 2, "%s%s%s", dir, dlen ? "/" : "", e->d_name);
            kvro_info cst;
            kvro_error ignored;
            if (dir_stat(r, child, &cst, &ignored) != KVRO_OK)
                continue; /* a loop back through DIR's own path */
            kind = cst.kind;
        } else
            continue; /* FIFOs, sockets, devices are not values */
        if (fn(arg, e->d_name, kind, st, stats && st == KVRO_OK ? &hs : NULL))
            break;
    }
    free(child);
    closedir(d);
    return s;
}

typedef struct list_ctx {
    dir_root *r;
    kvro_list_fn fn;
    kvro_list_info_fn info_fn;
    void *arg;
} list_ctx;

static int list_entry(void *arg, const char *name, kvro_kind kind, kvro_status status,
                      const struct stat *hs)
{
    (void)status, (void)hs;
    list_ctx *c = arg;
    return c->fn(c->arg, name, kind);
}

static kvro_status dir_list(void *self, const char *dir, kvro_list_fn fn, void *arg,
                            kvro_error *err)
{
    list_ctx c = {.r = self, .fn = fn, .arg = arg};
    return dir_scan(self, dir, false, list_entry, &c, err);
}

static int list_info_entry(void *arg, const char *name, kvro_kind kind, kvro_status status,
                           const struct stat *hs)
{
    list_ctx *c = arg;
    if (!hs)
        return c->info_fn(c->arg, name, status, NULL);
    kvro_info info;
    memset(&info, 0, sizeof info);
    fill_info(c->r, hs, kind, &info);
    return c->info_fn(c->arg, name, KVRO_OK, &info);
}

/* kvro_list_info's pass (backend.h): what dir_lstat would say of each
 * entry, without resolving each key again from the root. */
static kvro_status dir_list_info(void *self, const char *dir, kvro_list_info_fn fn, void *arg,
                                 kvro_error *err)
{
    list_ctx c = {.r = self, .info_fn = fn, .arg = arg};
    return dir_scan(self, dir, true, list_info_entry, &c, err);
}

/* ----------------------------------------------------------- write side */

/* A key to be made must fit the host's names; one to be read that does not
 * fit simply does not exist (dir_walk says NOT_FOUND). */
static kvro_status check_names(const char *key, kvro_error *err)
{
    const char *p = key, *c;
    size_t n;
    while ((n = kvro__component(&p, &c, NULL)) > 0)
        if (n > NAME_MAX)
            return kvro_error_set(err, KVRO_E_BAD_KEY, "a name is longer than %d bytes", NAME_MAX);
    return KVRO_OK;
}

static kvro_status dir_mkdir(void *self, const char *key, kvro_error *err)
{
    if (check_names(key, err) != KVRO_OK)
        return KVRO_E_BAD_KEY;
    size_t len = strlen(key);
    char *prefix = malloc(len + 1);
    if (!prefix)
        return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    kvro_status s = KVRO_OK;
    /* Each prefix in turn, so missing parents are made on the way. */
    for (size_t end = 0; s == KVRO_OK && end < len;) {
        end++;
        while (end < len && key[end] != '/')
            end++;
        memcpy(prefix, key, end);
        prefix[end] = '\0';
        dir_at at;
        s = dir_walk(self, prefix, true, &at, err);
        if (s != KVRO_OK)
            break;
        if (!at.exists && mkdirat(at.dirfd, at.name, 0755) != 0 && errno != EEXIST)
            s = errno_status(err, "cannot make directory", at.name);
        else if (at.exists && !S_ISDIR(at.st.st_mode))
            s = end == len ? kvro_error_set(err, KVRO_E_EXISTS, "exists and is not a directory")
                           : kvro_error_set(err, KVRO_E_NOT_DIR, "'%s' is not a directory",
                                            at.name);
        at_done(&at);
    }
    free(prefix);
    return s;
}

static kvro_status dir_create(void *self, const char *key, kvro_error *err)
{
    if (check_names(key, err) != KVRO_OK)
        return KVRO_E_BAD_KEY;
    const char *slash = strrchr(key, '/');
    if (slash) {
        char *parent = strndup(key, (size_t)(slash - key));
        if (!parent)
            return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
        kvro_status s = dir_mkdir(self, parent, err);
        /* The parent is a file: it is in the key's path, the key itself
         * does not exist. */
        if (s == KVRO_E_EXISTS)
            s = kvro_error_set(err, KVRO_E_NOT_DIR, "'%s' is not a directory", parent);
        free(parent);
        if (s != KVRO_OK)
            return s;
    }
    dir_at at;
    kvro_status s = dir_walk(self, key, false, &at, err);
    if (s != KVRO_OK)
        return s;
    if (at.exists) {
        at_done(&at);
        return kvro_error_set(err, KVRO_E_EXISTS, "already exists");
    }
    int fd = openat(at.dirfd, at.name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
        s = errno_status(err, "cannot create", at.name);
    else
        close(fd);
    at_done(&at);
    return s;
}

static kvro_status dir_write(void *self, const char *key, int64_t off, const void *buf,
                             int64_t len, kvro_error *err)
{
    dir_at at;
    kvro_kind kind = KVRO_KIND_FILE;
    int fd;
    kvro_status s = walk_existing(self, key, &at, &kind, err);
    if (s != KVRO_OK)
        return s;
    if (kind == KVRO_KIND_DIR)
        s = kvro_error_set(err, KVRO_E_IS_DIR, "is a directory");
    else
        s = open_file(&at, O_WRONLY, &fd, err);
    at_done(&at);
    if (s != KVRO_OK)
        return s;
    int e = kvro__pwrite(fd, buf, (size_t)len, off);
    if (e) {
        errno = e;
        s = errno_status(err, "cannot write", at.name);
    }
    close(fd);
    return s;
}

static kvro_status dir_destroy(void *self, const char *key, kvro_error *err)
{
    dir_at at;
    kvro_status s = dir_walk(self, key, false, &at, err);
    if (s != KVRO_OK)
        return s;
    if (!at.exists)
        s = kvro_error_set(err, KVRO_E_NOT_FOUND, "no such file or directory");
    else if (unlinkat(at.dirfd, at.name, S_ISDIR(at.st.st_mode) ? AT_REMOVEDIR : 0) != 0)
        s = errno == EEXIST ? kvro_error_set(err, KVRO_E_NOT_EMPTY, "directory not empty")
                            : errno_status(err, "cannot remove", at.name);
    at_done(&at);
    return s;
}

static kvro_status dir_rename(void *self, const char *from, const char *to, kvro_error *err)
{
    if (check_names(to, err) != KVRO_OK)
        return KVRO_E_BAD_KEY;
    dir_at a, b;
    kvro_status s = dir_walk(self, from, false, &a, err);
    if (s != KVRO_OK)
        return s;
    if (!a.exists)
        s = kvro_error_set(err, KVRO_E_NOT_FOUND, "no such file or directory");
    if (s == KVRO_OK && (s = dir_walk(self, to, false, &b, err)) == KVRO_OK) {
        bool same = b.exists && a.st.st_dev == b.st.st_dev && a.st.st_ino == b.st.st_ino;
        if (b.exists && !same && S_ISDIR(a.st.st_mode))
            s = kvro_error_set(err, KVRO_E_EXISTS, "'%s' exists: a directory replaces nothing", to);
        else if (b.exists && !same && S_ISDIR(b.st.st_mode))
            s = kvro_error_set(err, KVRO_E_IS_DIR, "'%s' is a directory", to);
        else if (renameat(a.dirfd, a.name, b.dirfd, b.name) != 0)
            s = errno == EINVAL ? kvro_error_set(err, KVRO_E_INVALID,
                                                 "a directory is not moved into itself")
                                : errno_status(err, "cannot rename", a.name);
        at_done(&b);
    }
    at_done(&a);
    return s;
}

/* --------------------------------------------------------- open, close */

static int dir_bid(const kvro_probe *p)
{
    return p->dir_fd >= 0 ? KVRO_BID_CERTAIN : KVRO_BID_NONE;
}

static kvro_status dir_open(const kvro_probe *p, const kvro_options *o, bool writable,
                            void **self, kvro_error *err)
{
    (void)o;
    (void)writable; /* the core refuses writes on a read-only handle */
    if (p->dir_fd < 0)
        return kvro_error_set(err, KVRO_E_NOT_DIR, "not a directory (dir serves host directories)");
    dir_root *r = calloc(1, sizeof *r);
    if (!r)
        return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    /* The probe's descriptor, so the directory bid on is the one served. */
    const char *w = getenv("KVRO_DIR_WALK_ONLY");
    r->walk_only = w && *w && strcmp(w, "0") != 0;
    r->fd = fcntl(p->dir_fd, F_DUPFD_CLOEXEC, 0);
    struct stat st;
    if (r->fd < 0 || fstat(r->fd, &st) != 0) {
        kvro_status s = errno_status(err, "cannot open directory", p->dir_path);
        if (r->fd >= 0)
            close(r->fd);
        free(r);
        return s;
    }
    /* The real path of the directory opened, not of whatever the name
     * means now (/proc may be missing in a chroot: then the name's). */
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", r->fd);
    r->real = realpath(proc, NULL);
    if (!r->real)
        r->real = realpath(p->dir_path, NULL);
    if (!r->real) {
        kvro_status s = errno_status(err, "cannot resolve", p->dir_path);
        close(r->fd);
        free(r);
        return s;
    }
    r->dev = st.st_dev;
    if (!strcmp(r->real, "/")) /* the host's "/": every absolute target is inside */
        r->real[0] = '\0';
    r->ops = (kvro__walk_ops){.lookup = dw_lookup,
                              .readlink = dw_readlink,
                              .enter = dw_enter,
                              .leave = dw_leave,
                              .root = (uint64_t)r->fd,
                              .root_id = {(uint64_t)st.st_dev, (uint64_t)st.st_ino},
                              .root_real = r->real,
                              .root_word = "the root",
                              .name_max = NAME_MAX};
    *self = r;
    return KVRO_OK;
}

static kvro_status dir_close(void *self, kvro_error *err)
{
    (void)err;
    dir_root *r = self;
    close(r->fd);
    free(r->real);
    free(r);
    return KVRO_OK;
}

const kvro_backend kvro__backend_dir = {
    .name = "dir",
    .description = "a directory on the host (read-write)",
    .bid = dir_bid,
    .fs_open = dir_open,
    .close = dir_close,
    .stat = dir_stat,
    .read = dir_read,
    .list = dir_list,
    .list_info = dir_list_info,
    .lstat = dir_lstat,
    .readlink = dir_readlink,
    .create = dir_create,
    .mkdir = dir_mkdir,
    .write = dir_write,
    .destroy = dir_destroy,
    .rename = dir_rename,
};
