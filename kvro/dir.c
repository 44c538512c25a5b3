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
 * up after 40 links (a loop).
 *
 * Every call opens what it needs and closes it again, so one handle is safe
 * from many threads: the only shared state is the root's descriptor.
 */
#include "backend.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bound on a path grown by symlink expansion (each target adds up to
 * PATH_MAX). */
#define DIR_MAX_EXPANDED (16 * PATH_MAX)

typedef struct dir_root {
    int fd;          /* descriptor of the root */
    dev_t dev;       /* and its identity, for check_cycle */
    ino_t ino;
    char *real;      /* its real path, "" for "/" */
    size_t real_len;
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

/* The state of one walk down from the root. The directories entered so far
 * are a stack of descriptors (".." in a link target pops one). PATH is what
 * is left to walk: the key, with link targets spliced in front of its
 * unwalked rest as they are met. */
typedef struct walker {
    const dir_root *r;
    char *path;
    size_t i;          /* next byte of PATH to walk */
    size_t key_tail;   /* PATH's last KEY_TAIL bytes are still the caller's key */
    struct dir_id {
        dev_t dev;
        ino_t ino;
    } * ids, *seen;    /* ids[d]: the directory fds[d] is; seen: see check_cycle */
    int *fds;
    size_t depth, cap, nseen, seen_cap;
    int links;
} walker;

static kvro_status walker_init(walker *w, const dir_root *r, const char *key, kvro_error *err)
{
    memset(w, 0, sizeof *w);
    w->r = r;
    w->cap = w->seen_cap = 16;
    w->path = strdup(key);
    w->key_tail = strlen(key);
    w->fds = malloc(w->cap * sizeof *w->fds);
    w->ids = malloc(w->cap * sizeof *w->ids);
    w->seen = malloc(w->seen_cap * sizeof *w->seen);
    if (!w->path || !w->fds || !w->ids || !w->seen)
        return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    w->fds[0] = r->fd;
    w->ids[0] = (struct dir_id){r->dev, r->ino};
    return KVRO_OK;
}

/* Closes what the walk opened, except the top descriptor if KEEP_TOP (it
 * was handed over to a dir_at). */
static void walker_done(walker *w, bool keep_top)
{
    if (w->fds)
        for (size_t d = w->depth - (keep_top && w->depth); d > 0; d--)
            close(w->fds[d]);
    free(w->path);
    free(w->fds);
    free(w->ids);
    free(w->seen);
}

static kvro_status walker_push(walker *w, int fd, const struct stat *st, kvro_error *err)
{
    if (w->depth + 1 == w->cap) {
        size_t cap = 2 * w->cap;
        int *fds = realloc(w->fds, cap * sizeof *fds);
        if (fds)
            w->fds = fds;
        struct dir_id *ids = fds ? realloc(w->ids, cap * sizeof *ids) : NULL;
        if (!ids) {
            close(fd);
            return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
        }
        w->ids = ids;
        w->cap = cap;
    }
    w->fds[++w->depth] = fd;
    w->ids[w->depth] = (struct dir_id){st->st_dev, st->st_ino};
    return KVRO_OK;
}

static void walker_pop_to(walker *w, size_t depth)
{
    while (w->depth > depth)
        close(w->fds[w->depth--]);
}

/* A directory reached at two different components of one key means a
 * symlink leads back to an ancestor (a -> ".", b -> ".."): the tree would be
 * infinite (a/a/a/...), so such keys are refused, as a loop. Checked each
 * time a component of the caller's key has been walked whole. */
static kvro_status check_cycle(walker *w, struct dir_id id, kvro_error *err)
{
    for (size_t k = 0; k < w->nseen; k++)
        if (w->seen[k].dev == id.dev && w->seen[k].ino == id.ino)
            return kvro_error_set(err, KVRO_E_LINK,
                                  "symbolic links lead back to an ancestor directory (a loop)");
    if (w->nseen == w->seen_cap) { /* one entry per key component at most */
        struct dir_id *v = realloc(w->seen, 2 * w->seen_cap * sizeof *v);
        if (!v)
            return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
        w->seen = v;
        w->seen_cap *= 2;
    }
    w->seen[w->nseen++] = id;
    return KVRO_OK;
}

/* Follows the symlink NAME in the current directory: its target replaces
 * it in PATH, before the rest (which starts at w->i). An absolute target
 * restarts at the root, and must lie under the root's real path. */
static kvro_status follow_link(walker *w, const char *name, kvro_error *err)
{
    if (++w->links > KVRO_MAX_LINKS)
        return kvro_error_set(err, KVRO_E_LINK,
                              "too many levels of symbolic links at '%s' (a loop)", name);
    char target[PATH_MAX];
    ssize_t n = readlinkat(w->fds[w->depth], name, target, sizeof target - 1);
    if (n < 0)
        return errno_status(err, "cannot read symbolic link", name);
    target[n] = '\0';
    const char *t = target;
    const dir_root *r = w->r;
    if (t[0] == '/') {
        if (strncmp(t, r->real, r->real_len) != 0 ||
            (t[r->real_len] != '/' && t[r->real_len] != '\0'))
            return kvro_error_set(err, KVRO_E_LINK,
                                  "symbolic link '%s' -> '%s' leads outside the root", name,
                                  target);
        t += r->real_len;
        walker_pop_to(w, 0);
    }
    size_t tl = strlen(t), rl = strlen(w->path + w->i);
    if (tl + rl + 2 > DIR_MAX_EXPANDED)
        return kvro_error_set(err, KVRO_E_LINK, "path grows too long through symbolic links");
    char *p = malloc(tl + rl + 2);
    if (!p)
        return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    memcpy(p, t, tl);
    p[tl] = '/';
    memcpy(p + tl + 1, w->path + w->i, rl + 1);
    free(w->path);
    w->path = p;
    w->i = 0;
    return KVRO_OK;
}

/* Hands the current directory and NAME over to AT. */
static void walker_land(walker *w, const char *name, dir_at *at)
{
    at->dirfd = w->fds[w->depth];
    at->owns_dirfd = w->depth > 0;
    at->via_link = w->links > 0;
    strcpy(at->name, name);
}

/* Resolves KEY beneath the root. Every component but the last must exist
 * and be a directory (symlinks followed); the last is followed only if
 * FOLLOW_LAST, and may be missing (at->exists = false). */
static kvro_status dir_walk(const dir_root *r, const char *key, bool follow_last, dir_at *at,
                            kvro_error *err)
{
    memset(at, 0, sizeof *at);
    walker w;
    kvro_status s = walker_init(&w, r, key, err);
    bool landed = false;
    while (s == KVRO_OK) {
        char *path = w.path;
        size_t plen = strlen(path);
        while (path[w.i] == '/')
            w.i++;
        /* Nearer the end than the key's unwalked rest: what stands before
         * was walked whole, targets spliced in for it included. */
        bool key_component = plen - w.i <= w.key_tail;
        if (key_component && (s = check_cycle(&w, w.ids[w.depth], err)) != KVRO_OK)
            break;
        if (!path[w.i]) { /* ended on a directory: the root, or after "." / ".." */
            walker_land(&w, ".", at);
            landed = at->exists = true;
            if (fstat(at->dirfd, &at->st) != 0)
                s = errno_status(err, "cannot stat", ".");
            break;
        }
        size_t start = w.i;
        while (path[w.i] && path[w.i] != '/')
            w.i++;
        if (key_component)
            w.key_tail = plen - w.i;
        size_t n = w.i - start, j = w.i;
        while (path[j] == '/')
            j++;
        bool last = !path[j];
        if (n == 1 && path[start] == '.')
            continue;
        if (n == 2 && path[start] == '.' && path[start + 1] == '.') {
            if (w.depth == 0)
                s = kvro_error_set(err, KVRO_E_LINK, "a symbolic link leads above the root");
            else
                walker_pop_to(&w, w.depth - 1);
            continue;
        }
        if (n > NAME_MAX) {
            s = kvro_error_set(err, KVRO_E_NOT_FOUND, "a name is longer than %d bytes", NAME_MAX);
            break;
        }
        char name[NAME_MAX + 1];
        memcpy(name, path + start, n);
        name[n] = '\0';
        struct stat st;
        if (fstatat(w.fds[w.depth], name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT && last) { /* for create and mkdir */
                walker_land(&w, name, at);
                landed = true;
            } else {
                s = errno == ENOENT ? kvro_error_set(err, KVRO_E_NOT_FOUND,
                                                     "no such directory '%s'", name)
                                    : errno_status(err, "cannot stat", name);
            }
            break;
        }
        if (S_ISLNK(st.st_mode) && (!last || follow_last)) {
            s = follow_link(&w, name, err);
            continue;
        }
        if (last) {
            /* A directory at the end is one more component walked whole. */
            if (follow_last && S_ISDIR(st.st_mode) &&
                (s = check_cycle(&w, (struct dir_id){st.st_dev, st.st_ino}, err)) != KVRO_OK)
                break;
            walker_land(&w, name, at);
            landed = at->exists = true;
            at->st = st;
            break;
        }
        if (!S_ISDIR(st.st_mode)) {
            s = kvro_error_set(err, KVRO_E_NOT_DIR, "'%s' is not a directory", name);
            break;
        }
        int fd = openat(w.fds[w.depth], name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        s = fd < 0 ? errno_status(err, "cannot open directory", name)
                   : walker_push(&w, fd, &st, err);
    }
    walker_done(&w, landed);
    if (s != KVRO_OK) {
        if (landed)
            at_done(at);
        memset(at, 0, sizeof *at);
    }
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

static kvro_status dir_stat(void *self, const char *key, kvro_info *st, kvro_error *err)
{
    dir_at at;
    kvro_kind kind;
    kvro_status s = walk_existing(self, key, &at, &kind, err);
    if (s != KVRO_OK)
        return s;
    st->kind = kind;
    st->size = kind == KVRO_KIND_FILE ? (int64_t)at.st.st_size : 0;
    st->mtime = (int64_t)at.st.st_mtim.tv_sec;
    st->mtime_nsec = (int32_t)at.st.st_mtim.tv_nsec;
    st->mode = at.st.st_mode & 07777;
    st->has_mode = true;
    at_done(&at);
    return KVRO_OK;
}

static kvro_status dir_read(void *self, const char *key, int64_t off, int64_t len, void *buf,
                            int64_t *nread, kvro_error *err)
{
    dir_at at;
    kvro_kind kind;
    int fd;
    kvro_status s = walk_existing(self, key, &at, &kind, err);
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

static kvro_status dir_list(void *self, const char *dir, kvro_list_fn fn, void *arg,
                            kvro_error *err)
{
    dir_at at;
    kvro_kind kind;
    kvro_status s = walk_existing(self, dir, &at, &kind, err);
    if (s != KVRO_OK)
        return s;
    if (kind != KVRO_KIND_DIR) {
        at_done(&at);
        return kvro_error_set(err, KVRO_E_NOT_DIR, "is a file, not a directory");
    }
    int fd = openat(at.dirfd, at.name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        s = errno_status(err, "cannot open directory", at.name);
    /* Reached through a link, DIR's key may already have passed one of its
     * subdirectories (l -> a/b, a/b/up -> ..: "l/up" is a, and "l/up/b"
     * is a loop), so those are checked as keys too. */
    bool via_link = at.via_link;
    at_done(&at);
    if (s != KVRO_OK)
        return s;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return errno_status(err, "cannot list", dir);
    }
    size_t dlen = strlen(dir);
    char *child = malloc(dlen + NAME_MAX + 2);
    if (!child) {
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
        if (e->d_type == DT_REG)
            kind = KVRO_KIND_FILE;
        else if (e->d_type == DT_DIR && !via_link)
            kind = KVRO_KIND_DIR;
        else if (e->d_type == DT_DIR || e->d_type == DT_LNK || e->d_type == DT_UNKNOWN) {
            /* A link is listed as what it leads to; one that leads nowhere
             * we may serve (outside, a loop, a FIFO) is not a key. */
            snprintf(child, dlen + NAME_MAX + 2, "%s%s%s", dir, dlen ? "/" : "", e->d_name);
            kvro_info cst;
            kvro_error ignored;
            if (dir_stat(self, child, &cst, &ignored) != KVRO_OK)
                continue;
            kind = cst.kind;
        } else
            continue; /* FIFOs, sockets, devices are not values */
        if (fn(arg, e->d_name, kind))
            break;
    }
    free(child);
    closedir(d);
    return s;
}

/* ----------------------------------------------------------- write side */

/* A key to be made must fit the host's names; one to be read that does not
 * fit simply does not exist (dir_walk says NOT_FOUND). */
static kvro_status check_names(const char *key, kvro_error *err)
{
    for (const char *p = key; *p;) {
        size_t n = strcspn(p, "/");
        if (n > NAME_MAX)
            return kvro_error_set(err, KVRO_E_BAD_KEY, "a name is longer than %d bytes", NAME_MAX);
        p += n + (p[n] == '/');
    }
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
    kvro_kind kind;
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
    for (int64_t done = 0; done < len;) {
        size_t chunk = (size_t)(len - done < (1 << 30) ? len - done : (1 << 30));
        ssize_t n = pwrite(fd, (const char *)buf + done, chunk, (off_t)(off + done));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            s = n < 0 ? errno_status(err, "cannot write", at.name)
                      : kvro_error_set(err, KVRO_E_NO_SPACE, "short write");
            break;
        }
        done += n;
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
    r->fd = fcntl(p->dir_fd, F_DUPFD_CLOEXEC, 0);
    struct stat st;
    if (r->fd < 0 || fstat(r->fd, &st) != 0) {
        kvro_status s = errno_status(err, "cannot open directory", p->dir_path);
        if (r->fd >= 0)
            close(r->fd);
        free(r);
        return s;
    }
    r->dev = st.st_dev;
    r->ino = st.st_ino;
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
    r->real_len = strlen(r->real);
    if (r->real_len == 1) /* the host's "/": every absolute target is inside */
        r->real_len = 0;
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
    .create = dir_create,
    .mkdir = dir_mkdir,
    .write = dir_write,
    .destroy = dir_destroy,
};
