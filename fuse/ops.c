/*
 * ops.c — kvfuse's low-level FUSE operations over one kvro handle.
 *
 * Everything here may run on many worker threads at once: kvro's read-side
 * calls are thread-safe on one handle, the inode table locks itself, and
 * an open file or directory is one thread's at a time only as far as the
 * kernel serialises it (we never mutate a handle after open).
 *
 * The image never changes under the mount, so the kernel may cache
 * everything for as long as it likes: entries, attributes, negative
 * lookups and symlink targets get the context's long timeout, file pages
 * keep_cache, directory listings cache_readdir. Links are reported as
 * links (kvro_lstat, KVRO_NOFOLLOW): the kernel resolves their targets,
 * absolute ones included, so the daemon never follows anything.
 */
#include "kvfuse.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <syslog.h>

/* What stat reports as st_blksize: the I/O size worth asking for (cp and
 * cat read in chunks of it); a FUSE read can carry up to 1 MiB. */
#define KVFUSE_BLKSIZE (128 * 1024)

static kvfuse_ctx *ctx_of(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

bool kvfuse_key_join(char *out, const char *dir, const char *name)
{
    size_t d = strlen(dir), n = strlen(name);
    size_t need = d + (d ? 1 : 0) + n;
    if (need > KVRO_KEY_MAX)
        return false;
    memcpy(out, dir, d);
    if (d)
        out[d++] = '/';
    memcpy(out + d, name, n + 1);
    return true;
}

/* Replies to a failed kvro call. Damage and host I/O errors are logged
 * (the caller only sees EIO); not-found and the like are ordinary answers. */
static void reply_status(fuse_req_t req, kvro_status s, const kvro_error *err)
{
    if (s == KVRO_E_CORRUPT || s == KVRO_E_IO || s == KVRO_E_NOMEM) {
        char msg[KVRO_ERROR_SOURCE_MAX + KVRO_ERROR_KEY_MAX + KVRO_ERROR_DETAIL_MAX];
        kvro_error_format(err, msg, sizeof msg);
        kvfuse_log(LOG_ERR, "%s", msg);
    }
    fuse_reply_err(req, kvro_status_to_errno(s));
}

/* INFO as a struct stat. Sources without modes get read-only defaults;
 * directories report st_nlink 1, which find and fts take for "unknown"
 * (counting subdirectories would cost a listing per stat). */
static void fill_attr(const kvfuse_ctx *c, fuse_ino_t ino, const kvro_info *in, struct stat *st)
{
    memset(st, 0, sizeof *st);
    mode_t type = S_IFREG, perm = 0444;
    if (in->kind == KVRO_KIND_DIR)
        type = S_IFDIR, perm = 0555;
    if (in->has_mode)
        perm = in->mode & 07777;
    perm &= ~c->umask;
    if (in->kind == KVRO_KIND_LINK)
        type = S_IFLNK, perm = 0777; /* Linux shows every link as lrwxrwxrwx */
    st->st_ino = ino;
    st->st_mode = type | perm;
    st->st_nlink = in->kind == KVRO_KIND_FILE && in->nlink > 1 ? in->nlink : 1;
    st->st_uid = c->uid;
    st->st_gid = c->gid;
    st->st_size = in->size;
    st->st_blksize = KVFUSE_BLKSIZE;
    st->st_blocks = (in->size + 511) / 512;
    st->st_mtim.tv_sec = in->mtime;
    st->st_mtim.tv_nsec = in->mtime_nsec;
    st->st_atim = st->st_ctim = st->st_mtim;
}

/* The node of INO with its stat in *INFO; replies and returns NULL on
 * failure. */
static const kvfuse_node *node_info(fuse_req_t req, fuse_ino_t ino, kvro_info *info)
{
    kvfuse_ctx *c = ctx_of(req);
    const kvfuse_node *n = kvfuse_inode_get(c->inodes, ino);
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return NULL;
    }
    if (n->has_info) {
        *info = n->info;
        return n;
    }
    kvro_error err;
    kvro_status s = kvro_lstat(c->kv, n->key, info, &err);
    if (s != KVRO_OK) {
        reply_status(req, s, &err);
        return NULL;
    }
    return n;
}

/* The key of KEY's parent directory into OUT ("" for the root's). */
static void parent_key(char *out, const char *key)
{
    const char *slash = strrchr(key, '/');
    size_t n = slash ? (size_t)(slash - key) : 0;
    memcpy(out, key, n);
    out[n] = '\0';
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    kvfuse_ctx *c = ctx_of(req);
    const kvfuse_node *p = kvfuse_inode_get(c->inodes, parent);
    if (!p) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    char key[KVRO_KEY_MAX + 1];
    if (strcmp(name, ".") == 0) {
        strcpy(key, p->key);
    } else if (strcmp(name, "..") == 0) {
        parent_key(key, p->key);
    } else if (strlen(name) > NAME_MAX || !kvfuse_key_join(key, p->key, name)) {
        fuse_reply_err(req, ENAMETOOLONG);
        return;
    }
    const kvfuse_node *n;
    kvro_info info;
    fuse_ino_t ino = kvfuse_inode_find(c->inodes, key, &n);
    if (ino && n->has_info) {
        info = n->info;
    } else {
        kvro_error err;
        kvro_status s = kvro_lstat(c->kv, key, &info, &err);
        if (s == KVRO_E_NOT_FOUND) {
            /* A negative entry the kernel may keep: the name never appears. */
            struct fuse_entry_param e = {.entry_timeout = c->timeout};
            fuse_reply_entry(req, &e);
            return;
        }
        if (s != KVRO_OK) {
            reply_status(req, s, &err);
            return;
        }
        if (!ino && !(ino = kvfuse_inode_of(c->inodes, key, &info))) {
            fuse_reply_err(req, ENOMEM);
            return;
        }
    }
    struct fuse_entry_param e = {
        .ino = ino, .attr_timeout = c->timeout, .entry_timeout = c->timeout};
    fill_attr(c, ino, &info, &e.attr);
    fuse_reply_entry(req, &e);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)fi;
    kvro_info info;
    if (!node_info(req, ino, &info))
        return;
    struct stat st;
    fill_attr(ctx_of(req), ino, &info, &st);
    fuse_reply_attr(req, &st, ctx_of(req)->timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    kvfuse_ctx *c = ctx_of(req);
    const kvfuse_node *n = kvfuse_inode_get(c->inodes, ino);
    if (!n) {
        fuse_reply_err(req, ESTALE);
        return;
    }
    char small[PATH_MAX], *buf = small;
    size_t len;
    kvro_error err;
    kvro_status s = kvro_readlink(c->kv, n->key, small, sizeof small, &len, &err);
    if (s == KVRO_OK && len >= sizeof small) { /* longer than PATH_MAX: pass it on as is */
        if (!(buf = malloc(len + 1))) {
            fuse_reply_err(req, ENOMEM);
            return;
        }
        s = kvro_readlink(c->kv, n->key, buf, len + 1, &len, &err);
    }
    if (s == KVRO_OK)
        fuse_reply_readlink(req, buf);
    else
        reply_status(req, s, &err);
    if (buf != small)
        free(buf);
}

/* ------------------------------------------------------------- files */

/* A handle (fi->fh) is freed by RELEASE or RELEASEDIR, which the kernel
 * sends only once every request on the handle has been answered. That
 * order runs through /dev/fuse, where ThreadSanitizer cannot see it, and
 * it reported the free as racing a read answered a moment before. So a
 * request that reads a handle marks it, in release order, once it is done
 * with it and before it replies, and the release acquires those marks
 * before freeing: one atomic add per request, and the detector sees the
 * order the kernel guarantees (a real use after free would still show). */
static void handle_done(atomic_uint *uses)
{
    atomic_fetch_add_explicit(uses, 1, memory_order_release);
}

static void handle_drop(atomic_uint *uses)
{
    (void)atomic_load_explicit(uses, memory_order_acquire);
}

/* An open file: its key and, for a value stored plainly in a file (a
 * plain tar), where, so that reads are spliced from the image. */
typedef struct open_file {
    const char *key; /* the node's: lives as long as the mount */
    bool spliced;
    kvro_extent ext;
    atomic_uint uses; /* handle_done */
} open_file;

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
        fuse_reply_err(req, EROFS);
        return;
    }
    kvro_info info;
    const kvfuse_node *n = node_info(req, ino, &info);
    if (!n)
        return;
    if (info.kind != KVRO_KIND_FILE) {
        fuse_reply_err(req, info.kind == KVRO_KIND_DIR ? EISDIR : ELOOP);
        return;
    }
    open_file *f = calloc(1, sizeof *f);
    if (!f) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    f->key = n->key;
    f->spliced = kvro_file_extent(ctx_of(req)->kv, n->key, &f->ext, NULL) == KVRO_OK;
    fi->fh = (uintptr_t)f;
    fi->keep_cache = 1; /* the bytes never change: keep pages across opens */
    if (fuse_reply_open(req, fi) != 0)
        free(f); /* the open was interrupted: no release will come */
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    (void)ino;
    open_file *f = (open_file *)(uintptr_t)fi->fh;
    const char *key = f->key;
    bool spliced = f->spliced;
    kvro_extent ext = f->ext;
    handle_done(&f->uses);
    if (spliced) {
        if (off >= ext.length) {
            fuse_reply_buf(req, NULL, 0);
            return;
        }
        if ((uint64_t)size > (uint64_t)(ext.length - off))
            size = (size_t)(ext.length - off);
        /* libfuse splices these bytes from the image's descriptor into
         * /dev/fuse (FUSE_CAP_SPLICE_WRITE), or preads them if it cannot. */
        struct fuse_bufvec bv = FUSE_BUFVEC_INIT(size);
        bv.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
        bv.buf[0].fd = ext.fd;
        bv.buf[0].pos = ext.offset + off;
        fuse_reply_data(req, &bv, FUSE_BUF_SPLICE_MOVE);
        return;
    }
    char *buf = malloc(size ? size : 1);
    if (!buf) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    int64_t got;
    kvro_error err;
    kvro_status s = kvro_read(ctx_of(req)->kv, key, off, (int64_t)size, buf, &got, &err);
    if (s == KVRO_OK)
        fuse_reply_buf(req, buf, (size_t)got);
    else
        reply_status(req, s, &err);
    free(buf);
}

/* SEEK_DATA/SEEK_HOLE over a value's data regions (kvro_regions): a
 * sparse tar member's map, one region for any other value. The kernel
 * answers SEEK_SET/CUR/END itself. */
typedef struct seek_state {
    int64_t pos; /* where to look from; moved to the answer */
    int whence;
    bool found;
} seek_state;

static int seek_step(void *arg, const kvro_region *r)
{
    seek_state *st = arg;
    if (r->offset + r->length <= st->pos)
        return 0; /* wholly before */
    if (st->whence == SEEK_DATA) {
        if (r->offset > st->pos)
            st->pos = r->offset;
        return st->found = true;
    }
    if (r->offset > st->pos) /* a hole before this region: pos is in it */
        return st->found = true;
    st->pos = r->offset + r->length; /* data to here; adjacent regions go on */
    return 0;
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                     struct fuse_file_info *fi)
{
    open_file *f = (open_file *)(uintptr_t)fi->fh;
    const char *key = f->key;
    handle_done(&f->uses);
    kvro_info info;
    if (whence != SEEK_DATA && whence != SEEK_HOLE) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    if (!node_info(req, ino, &info))
        return;
    if (off < 0 || off >= info.size) {
        fuse_reply_err(req, ENXIO);
        return;
    }
    seek_state st = {.pos = off, .whence = whence};
    kvro_error err;
    kvro_status s = kvro_regions(ctx_of(req)->kv, key, seek_step, &st, &err);
    if (s != KVRO_OK)
        reply_status(req, s, &err);
    else if (whence == SEEK_DATA && !st.found)
        fuse_reply_err(req, ENXIO); /* only a hole from OFF to the end */
    else /* SEEK_HOLE past the last region: the implicit hole at the end */
        fuse_reply_lseek(req, st.pos < info.size ? st.pos : info.size);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    open_file *f = (open_file *)(uintptr_t)fi->fh;
    handle_drop(&f->uses);
    free(f);
    fuse_reply_err(req, 0);
}

/* -------------------------------------------------------- directories */

/* An open directory: its whole listing, taken once at opendir, so that an
 * offset (the entry's index; 0 and 1 are "." and "..") means the same
 * entry for every readdir of this handle, whatever seekdir/telldir do. */
typedef struct dir_entry {
    size_t name; /* offset into names */
    kvro_status status;
    kvro_info info;
} dir_entry;

typedef struct open_dir {
    const char *key;
    fuse_ino_t parent;
    dir_entry *e;
    size_t n, cap;
    char *names;
    size_t names_len, names_cap;
    bool nomem;
    atomic_uint uses; /* handle_done */
} open_dir;

static int collect(void *arg, const char *name, kvro_status status, const kvro_info *info)
{
    open_dir *d = arg;
    size_t len = strlen(name) + 1;
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        dir_entry *e = realloc(d->e, cap * sizeof *e);
        if (!e)
            return d->nomem = true;
        d->e = e, d->cap = cap;
    }
    if (d->names_len + len > d->names_cap) {
        size_t cap = d->names_cap ? d->names_cap * 2 : 4096;
        while (cap < d->names_len + len)
            cap *= 2;
        char *p = realloc(d->names, cap);
        if (!p)
            return d->nomem = true;
        d->names = p, d->names_cap = cap;
    }
    memcpy(d->names + d->names_len, name, len);
    d->e[d->n] = (dir_entry){.name = d->names_len, .status = status};
    if (info)
        d->e[d->n].info = *info;
    d->names_len += len;
    d->n++;
    return 0;
}

static void open_dir_free(open_dir *d)
{
    if (d) {
        free(d->e);
        free(d->names);
        free(d);
    }
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    kvfuse_ctx *c = ctx_of(req);
    kvro_info info;
    const kvfuse_node *n = node_info(req, ino, &info);
    if (!n)
        return;
    if (info.kind != KVRO_KIND_DIR) {
        fuse_reply_err(req, ENOTDIR);
        return;
    }
    open_dir *d = calloc(1, sizeof *d);
    char up[KVRO_KEY_MAX + 1];
    if (!d) {
        fuse_reply_err(req, ENOMEM);
        return;
    }
    d->key = n->key;
    parent_key(up, n->key);
    d->parent = ino == FUSE_ROOT_ID ? FUSE_ROOT_ID : kvfuse_inode_of(c->inodes, up, NULL);
    kvro_error err;
    kvro_status s = kvro_list_info(c->kv, n->key, KVRO_NOFOLLOW, collect, d, &err);
    if (s == KVRO_OK && (d->nomem || !d->parent))
        s = KVRO_E_NOMEM, kvro_error_set(&err, s, "listing %s", n->key);
    if (s != KVRO_OK) {
        open_dir_free(d);
        reply_status(req, s, &err);
        return;
    }
    fi->fh = (uintptr_t)d;
    fi->keep_cache = 1;    /* the listing never changes ... */
    fi->cache_readdir = 1; /* ... so the kernel may keep it */
    if (fuse_reply_open(req, fi) != 0)
        open_dir_free(d);
}

/* One reply's worth of entries from index OFF on; PLUS adds each entry's
 * attributes (readdirplus), which counts as a lookup of it. */
static void reply_dir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                      struct fuse_file_info *fi, bool plus)
{
    kvfuse_ctx *c = ctx_of(req);
    open_dir *d = (open_dir *)(uintptr_t)fi->fh;
    char *buf = malloc(size);
    if (!buf) {
        handle_done(&d->uses);
        fuse_reply_err(req, ENOMEM);
        return;
    }
    size_t used = 0;
    for (uint64_t i = off < 0 ? 0 : (uint64_t)off; i < d->n + 2; i++) {
        struct fuse_entry_param e = {0};
        const char *name;
        if (i < 2) { /* "." and "..": no lookup implied (ino 0 in the entry) */
            name = i == 0 ? "." : "..";
            e.attr.st_ino = i == 0 ? ino : d->parent;
            e.attr.st_mode = S_IFDIR;
        } else {
            const dir_entry *de = &d->e[i - 2];
            char key[KVRO_KEY_MAX + 1];
            name = d->names + de->name;
            if (!kvfuse_key_join(key, d->key, name))
                continue; /* the source has it, no path can name it */
            bool ok = de->status == KVRO_OK;
            fuse_ino_t child = kvfuse_inode_of(c->inodes, key, ok ? &de->info : NULL);
            if (!child)
                break; /* out of memory: a short listing now, the rest later */
            if (ok) {
                fill_attr(c, child, &de->info, &e.attr);
                e.ino = plus ? child : 0;
                e.attr_timeout = e.entry_timeout = c->timeout;
            } else {
                e.attr.st_ino = child; /* DT_UNKNOWN; a stat will say why */
            }
        }
        size_t room = size - used, need;
        if (plus)
            need = fuse_add_direntry_plus(req, buf + used, room, name, &e, (off_t)(i + 1));
        else
            need = fuse_add_direntry(req, buf + used, room, name, &e.attr, (off_t)(i + 1));
        if (need > room)
            break;
        used += need;
    }
    handle_done(&d->uses);
    fuse_reply_buf(req, buf, used);
    free(buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi)
{
    reply_dir(req, ino, size, off, fi, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                           struct fuse_file_info *fi)
{
    reply_dir(req, ino, size, off, fi, true);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    (void)ino;
    open_dir *d = (open_dir *)(uintptr_t)fi->fh;
    handle_drop(&d->uses);
    open_dir_free(d);
    fuse_reply_err(req, 0);
}

/* ----------------------------------------------------------- the rest */

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    (void)ino;
    kvfuse_ctx *c = ctx_of(req);
    struct statvfs sv = {.f_bsize = 4096, .f_frsize = 4096, .f_namemax = NAME_MAX};
    sv.f_blocks = (fsblkcnt_t)((c->image_bytes + 4095) / 4096);
    sv.f_files = kvfuse_inode_count(c->inodes);
    sv.f_flag = ST_RDONLY;
    fuse_reply_statfs(req, &sv);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
    (void)ino;
    fuse_reply_err(req, mask & W_OK ? EROFS : 0);
}

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
    (void)userdata;
    /* Reads of plain-tar members go from the image's page cache to the
     * reader's through a pipe, never through a buffer of ours. */
    if (conn->capable & FUSE_CAP_SPLICE_WRITE)
        conn->want |= FUSE_CAP_SPLICE_WRITE;
    if (conn->capable & FUSE_CAP_CACHE_SYMLINKS)
        conn->want |= FUSE_CAP_CACHE_SYMLINKS;
    if (conn->capable & FUSE_CAP_READDIRPLUS)
        conn->want |= FUSE_CAP_READDIRPLUS;
    /* Nothing changes behind the kernel's back: no need to re-check. */
    conn->want &= ~FUSE_CAP_AUTO_INVAL_DATA;
    conn->time_gran = 1;
}

/* Every write-type operation: the image is read-only. (A read-only mount
 * stops most of them in the kernel already; these answer the rest.) */
static void rofs(fuse_req_t req)
{
    fuse_reply_err(req, EROFS);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi)
{
    (void)ino, (void)attr, (void)to_set, (void)fi;
    rofs(req);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    (void)parent, (void)name, (void)mode, (void)rdev;
    rofs(req);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    (void)parent, (void)name, (void)mode;
    rofs(req);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    (void)parent, (void)name;
    rofs(req);
}

static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    (void)link, (void)parent, (void)name;
    rofs(req);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags)
{
    (void)parent, (void)name, (void)newparent, (void)newname, (void)flags;
    rofs(req);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    (void)ino, (void)newparent, (void)newname;
    rofs(req);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi)
{
    (void)ino, (void)buf, (void)size, (void)off, (void)fi;
    rofs(req);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi)
{
    (void)parent, (void)name, (void)mode, (void)fi;
    rofs(req);
}

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
                        size_t size, int flags)
{
    (void)ino, (void)name, (void)value, (void)size, (void)flags;
    rofs(req);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
    (void)ino, (void)name;
    rofs(req);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
                         struct fuse_file_info *fi)
{
    (void)ino, (void)mode, (void)offset, (void)length, (void)fi;
    rofs(req);
}

const struct fuse_lowlevel_ops kvfuse_ops = {
    .init = op_init,
    .lookup = op_lookup,
    .getattr = op_getattr,
    .readlink = op_readlink,
    .open = op_open,
    .read = op_read,
    .lseek = op_lseek,
    .release = op_release,
    .opendir = op_opendir,
    .readdir = op_readdir,
    .readdirplus = op_readdirplus,
    .releasedir = op_releasedir,
    .statfs = op_statfs,
    .access = op_access,
    .setattr = op_setattr,
    .mknod = op_mknod,
    .mkdir = op_mkdir,
    .unlink = op_unlink,
    .rmdir = op_unlink,
    .symlink = op_symlink,
    .rename = op_rename,
    .link = op_link,
    .write = op_write,
    .create = op_create,
    .setxattr = op_setxattr,
    .removexattr = op_removexattr,
    .fallocate = op_fallocate,
};
