/*
 * fs.c — the read-write FS handle (mirage-fs) and the FS->KV_RO adaptor
 * (mirage-fs' To_KV_RO): mem and size come from stat, read and list pass
 * through. The read side is core.c's, shared with the KV_RO handle.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

kvro_status kvro__fs_new(const kvro_backend *b, const kvro_probe *p, const kvro_options *opts,
                         bool writable, kvro_fs **out, kvro_error *err)
{
    kvro_fs *fs = calloc(1, sizeof *fs);
    char *src = strdup(p->name);
    if (!fs || !src) {
        free(fs);
        free(src);
        return kvro_error_set(err, KVRO_E_NOMEM, "cannot allocate a handle");
    }
    void *self = NULL;
    kvro_status s = b->fs_open(p, opts, writable, &self, err);
    if (s != KVRO_OK) {
        free(fs);
        free(src);
        return s;
    }
    fs->h = (kvro__handle){b, self, src};
    fs->writable = writable;
    *out = fs;
    return KVRO_OK;
}

kvro_status kvro_fs_close(kvro_fs *fs, kvro_error *err)
{
    kvro__error_clear(err);
    if (!fs)
        return KVRO_OK;
    kvro_status s = fs->h.b->close(fs->h.self, err);
    s = kvro_error_context(err, s, fs->h.source, NULL);
    free(fs->h.source);
    free(fs);
    return s;
}

#define H(fs) ((fs) ? &(fs)->h : NULL)

kvro_status kvro_fs_stat(kvro_fs *fs, const char *key, kvro_info *st, kvro_error *err)
{
    kvro_status s = kvro__h_stat(H(fs), key, st, err);
    if (s == KVRO_OK && !fs->writable)
        st->read_only = true;
    return s;
}

kvro_status kvro_fs_size(kvro_fs *fs, const char *key, int64_t *size, kvro_error *err)
{
    return kvro__h_size(H(fs), key, size, err);
}

kvro_status kvro_fs_read(kvro_fs *fs, const char *key, int64_t offset, int64_t length, void *buf,
                         int64_t *nread, kvro_error *err)
{
    return kvro__h_read(H(fs), key, offset, length, buf, nread, err);
}

kvro_status kvro_fs_listdir(kvro_fs *fs, const char *dir, kvro_list_fn fn, void *arg,
                            kvro_error *err)
{
    return kvro__h_list(H(fs), dir, fn, arg, err);
}

/* Read-only handles mark what they describe read-only. */
typedef struct ro_list {
    kvro_list_info_fn fn;
    void *arg;
} ro_list;

static int ro_entry(void *arg, const char *name, kvro_status s, const kvro_info *info)
{
    ro_list *r = arg;
    kvro_info st;
    if (info) {
        st = *info;
        st.read_only = true;
        info = &st;
    }
    return r->fn(r->arg, name, s, info);
}

kvro_status kvro_fs_list_info(kvro_fs *fs, const char *dir, int flags, kvro_list_info_fn fn,
                              void *arg, kvro_error *err)
{
    ro_list r = {fn, arg};
    if (fs && !fs->writable && fn)
        return kvro__h_list_info(H(fs), dir, flags, ro_entry, &r, err);
    return kvro__h_list_info(H(fs), dir, flags, fn, arg, err);
}

kvro_status kvro_fs_lstat(kvro_fs *fs, const char *key, kvro_info *st, kvro_error *err)
{
    kvro_status s = kvro__h_lstat(H(fs), key, st, err);
    if (s == KVRO_OK && !fs->writable)
        st->read_only = true;
    return s;
}

kvro_status kvro_fs_readlink(kvro_fs *fs, const char *key, char *buf, size_t size, size_t *len,
                             kvro_error *err)
{
    return kvro__h_readlink(H(fs), key, buf, size, len, err);
}

/* Write-side entry: also refuses a read-only handle. A key ending in '/'
 * names a directory: only mkdir and destroy (of a directory) take one. */
#define BEGIN_WRITE(fs, key, norm, dir_ok)                                                        \
    kvro__handle *h = H(fs);                                                                      \
    BEGIN_KEY(h, key, norm, dir_only);                                                            \
    if (!(fs)->writable)                                                                          \
        return END(h, key, kvro_error_set(err, KVRO_E_READ_ONLY, "filesystem opened read-only")); \
    if (dir_only && !(dir_ok))                                                                    \
        return END(h, key,                                                                        \
                   kvro_error_set(err, KVRO_E_NOT_DIR,                                            \
                                  "the key ends in '/', which names a directory, not a file"))

kvro_status kvro_fs_create(kvro_fs *fs, const char *key, kvro_error *err)
{
    BEGIN_WRITE(fs, key, norm, false);
    if (!norm[0])
        return END(h, key, kvro_error_set(err, KVRO_E_EXISTS, "the root exists"));
    return END(h, key, h->b->create(h->self, norm, err));
}

kvro_status kvro_fs_mkdir(kvro_fs *fs, const char *key, kvro_error *err)
{
    BEGIN_WRITE(fs, key, norm, true);
    if (!norm[0])
        return KVRO_OK;
    return END(h, key, h->b->mkdir(h->self, norm, err));
}

kvro_status kvro_fs_write(kvro_fs *fs, const char *key, int64_t offset, const void *buf,
                          int64_t length, kvro_error *err)
{
    BEGIN_WRITE(fs, key, norm, false);
    kvro_status s = kvro__check_rw_args(offset, length, buf, err);
    if (s == KVRO_OK && length > INT64_MAX - offset)
        s = kvro_error_set(err, KVRO_E_INVALID, "offset + length overflows");
    if (s == KVRO_OK)
        s = h->b->write(h->self, norm, offset, buf, length, err);
    return END(h, key, s);
}

kvro_status kvro_fs_destroy(kvro_fs *fs, const char *key, kvro_error *err)
{
    BEGIN_WRITE(fs, key, norm, true);
    if (!norm[0])
        return END(h, key, kvro_error_set(err, KVRO_E_INVALID, "the root cannot be destroyed"));
    kvro_status d = dir_only ? kvro__must_be_dir(h, norm, err) : KVRO_OK;
    if (d != KVRO_OK)
        return END(h, key, d);
    return END(h, key, h->b->destroy(h->self, norm, err));
}

kvro_status kvro_fs_rename(kvro_fs *fs, const char *from, const char *to, kvro_error *err)
{
    BEGIN_WRITE(fs, from, norm, false);
    char tnorm[KVRO_KEY_MAX + 1];
    bool tdir = false;
    kvro_status s = kvro__key_normalise(to, tnorm, &tdir, err);
    if (s != KVRO_OK)
        return END(h, to, s);
    if (tdir)
        return END(h, to,
                   kvro_error_set(err, KVRO_E_NOT_DIR,
                                  "the key ends in '/', which names a directory, not a file"));
    if (!norm[0] || !tnorm[0])
        return END(h, norm[0] ? to : from,
                   kvro_error_set(err, KVRO_E_INVALID, "the root is not renamed"));
    if (!h->b->rename)
        return END(h, from, kvro_error_set(err, KVRO_E_UNSUPPORTED, "%s: no rename", h->b->name));
    return END(h, from, h->b->rename(h->self, norm, tnorm, err));
}

/* ------------------------------------------------------------- adaptor */

/* The adaptor's table: a KV_RO backend whose SELF is an adaptor. Keys
 * arrive normalised, so they go straight to the FS backend's table. */
typedef struct adaptor {
    kvro_fs *fs;
    bool own; /* closed with the KV_RO handle */
} adaptor;

static kvro_status adaptor_stat(void *self, const char *key, kvro_info *st, kvro_error *err)
{
    kvro__handle *h = &((adaptor *)self)->fs->h;
    return h->b->stat(h->self, key, st, err);
}

static kvro_status adaptor_read(void *self, const char *key, int64_t off, int64_t len, void *buf,
                                int64_t *nread, kvro_error *err)
{
    kvro__handle *h = &((adaptor *)self)->fs->h;
    return h->b->read(h->self, key, off, len, buf, nread, err);
}

static kvro_status adaptor_list(void *self, const char *dir, kvro_list_fn fn, void *arg,
                                kvro_error *err)
{
    kvro__handle *h = &((adaptor *)self)->fs->h;
    return h->b->list(h->self, dir, fn, arg, err);
}

/* The FS backend's own pass where it has one (a host directory), else the
 * generic one, links as links: what the core's list_info expects. */
static kvro_status adaptor_list_info(void *self, const char *dir, kvro_list_info_fn fn, void *arg,
                                     kvro_error *err)
{
    kvro__handle *h = &((adaptor *)self)->fs->h;
    if (h->b->list_info)
        return h->b->list_info(h->self, dir, fn, arg, err);
    return kvro__list_info(h->b, h->self, dir, KVRO_NOFOLLOW, fn, arg, err);
}

static kvro_status adaptor_lstat(void *self, const char *key, kvro_info *st, kvro_error *err)
{
    kvro__handle *h = &((adaptor *)self)->fs->h;
    return (h->b->lstat ? h->b->lstat : h->b->stat)(h->self, key, st, err);
}

static kvro_status adaptor_readlink(void *self, const char *key, char *buf, size_t size,
                                    size_t *len, kvro_error *err)
{
    kvro__handle *h = &((adaptor *)self)->fs->h;
    if (h->b->readlink)
        return h->b->readlink(h->self, key, buf, size, len, err);
    kvro_info st;
    kvro_status s = h->b->stat(h->self, key, &st, err);
    return s != KVRO_OK ? s : kvro_error_set(err, KVRO_E_INVALID, "not a symbolic link");
}

static kvro_status adaptor_regions(void *self, const char *key, kvro_region_fn fn, void *arg,
                                   kvro_error *err)
{
    kvro__handle *h = &((adaptor *)self)->fs->h;
    return kvro__regions(h->b, h->self, key, fn, arg, err);
}

static kvro_status adaptor_locate(void *self, const char *key, kvro_io **io, int64_t *off,
                                  int64_t *len, kvro_error *err)
{
    return kvro__h_locate(&((adaptor *)self)->fs->h, key, io, off, len, err);
}

static void adaptor_stats(void *self, kvro_stats *st)
{
    kvro__handle *h = &((adaptor *)self)->fs->h;
    if (h->b->stats)
        h->b->stats(h->self, st);
}

static kvro_status adaptor_close(void *self, kvro_error *err)
{
    adaptor *a = self;
    kvro_status s = a->own ? kvro_fs_close(a->fs, err) : KVRO_OK;
    free(a);
    return s;
}

static const kvro_backend adaptor_backend = {
    .name = "fs-adaptor",
    .description = "a kvro_fs seen as KV_RO",
    .close = adaptor_close,
    .stat = adaptor_stat,
    .read = adaptor_read,
    .list = adaptor_list,
    .list_info = adaptor_list_info,
    .lstat = adaptor_lstat,
    .readlink = adaptor_readlink,
    .locate = adaptor_locate,
    .regions = adaptor_regions,
    .stats = adaptor_stats,
};

kvro_status kvro_of_fs(kvro_fs *fs, int flags, kvro **kv, kvro_error *err)
{
    kvro__error_clear(err);
    if (!fs || !kv)
        return kvro_error_set(err, KVRO_E_INVALID, "NULL argument");
    adaptor *a = malloc(sizeof *a);
    if (!a)
        return kvro_error_context(err, kvro_error_set(err, KVRO_E_NOMEM, "out of memory"),
                                  fs->h.source, NULL);
    *a = (adaptor){fs, (flags & KVRO_OF_FS_OWN) != 0};
    kvro_status s = kvro__kv_new(&adaptor_backend, a, fs->h.b->name, fs->h.source, kv, err);
    if (s != KVRO_OK)
        free(a);
    return kvro_error_context(err, s, fs->h.source, NULL);
}
