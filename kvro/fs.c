/*
 * fs.c — the read-write FS handle (mirage-fs) and the FS->KV_RO adaptor
 * (mirage-fs' To_KV_RO): mem and size come from stat, read and list pass
 * through.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

kvro_status kvro__fs_open_with(const kvro_backend *b, const kvro_probe *p,
                               const kvro_options *opts, bool writable, kvro_fs **out,
                               kvro_error *err)
{
    kvro_fs *fs = calloc(1, sizeof *fs);
    char *src = strdup(p->path);
    if (!fs || !src) {
        free(fs);
        free(src);
        return kvro_error_set(err, KVRO_E_NOMEM, "cannot allocate a handle");
    }
    kvro_status s = b->fs_open(p, opts, writable, &fs->self, err);
    if (s != KVRO_OK) {
        free(fs);
        free(src);
        return s;
    }
    fs->b = b;
    fs->source = src;
    fs->writable = writable;
    *out = fs;
    return KVRO_OK;
}

kvro_status kvro_fs_open(const char *path, int flags, const kvro_options *opts, kvro_fs **out,
                         kvro_error *err)
{
    static const kvro_options defaults;
    kvro__error_clear(err);
    if (!path || !out)
        return kvro__error_context(err, kvro_error_set(err, KVRO_E_INVALID, "NULL argument"),
                                   path, NULL);
    *out = NULL;
    if (flags != KVRO_FS_RDONLY && flags != KVRO_FS_RDWR)
        return kvro__error_context(
            err, kvro_error_set(err, KVRO_E_INVALID, "unknown open flags %d", flags), path, NULL);
    if (!opts)
        opts = &defaults;
    kvro_probe p;
    const kvro_backend *b = NULL;
    kvro_status s = kvro__probe(path, opts->backend, true, &p, &b, err);
    if (s == KVRO_OK)
        s = kvro__fs_open_with(b, &p, opts, flags == KVRO_FS_RDWR, out, err);
    kvro__probe_done(&p);
    return kvro__error_context(err, s, path, NULL);
}

kvro_status kvro_fs_close(kvro_fs *fs, kvro_error *err)
{
    kvro__error_clear(err);
    if (!fs)
        return KVRO_OK;
    kvro_status s = fs->b->close(fs->self, err);
    s = kvro__error_context(err, s, fs->source, NULL);
    free(fs->source);
    free(fs);
    return s;
}


/* Write-side entry: also refuses a read-only handle. */
#define BEGIN_WRITE(h, key, norm)                                                                 \
    BEGIN(h, key, norm);                                                                          \
    if (!(h)->writable)                                                                           \
        return END(h, key, kvro_error_set(err, KVRO_E_READ_ONLY, "filesystem opened read-only"))

kvro_status kvro_fs_stat(kvro_fs *fs, const char *key, kvro_info *st, kvro_error *err)
{
    BEGIN(fs, key, norm);
    if (!st)
        return END(fs, key, kvro_error_set(err, KVRO_E_INVALID, "NULL stat buffer"));
    memset(st, 0, sizeof *st);
    kvro_status s = fs->b->stat(fs->self, norm, st, err);
    if (s == KVRO_OK && !fs->writable)
        st->read_only = true;
    return END(fs, key, s);
}

kvro_status kvro_fs_size(kvro_fs *fs, const char *key, int64_t *size, kvro_error *err)
{
    kvro_info st;
    if (!size) {
        kvro__error_clear(err);
        return kvro__error_context(err, kvro_error_set(err, KVRO_E_INVALID, "NULL result pointer"),
                                   fs ? fs->source : NULL, key);
    }
    *size = 0;
    kvro_status s = kvro_fs_stat(fs, key, &st, err);
    if (s == KVRO_OK && st.kind == KVRO_KIND_DIR)
        return kvro__error_context(
            err, kvro_error_set(err, KVRO_E_IS_DIR, "is a directory, not a value"), fs->source,
            key);
    if (s == KVRO_OK)
        *size = st.size;
    return s;
}

kvro_status kvro_fs_read(kvro_fs *fs, const char *key, int64_t offset, int64_t length, void *buf,
                         int64_t *nread, kvro_error *err)
{
    if (nread) /* 0 on every failure, the early ones included */
        *nread = 0;
    BEGIN(fs, key, norm);
    if (!nread)
        return END(fs, key, kvro_error_set(err, KVRO_E_INVALID, "NULL result pointer"));
    *nread = 0;
    kvro_status s = kvro__check_rw_args(offset, length, buf, err);
    if (s == KVRO_OK)
        s = fs->b->read(fs->self, norm, offset, length, buf, nread, err);
    if (s != KVRO_OK)
        *nread = 0;
    return END(fs, key, s);
}

kvro_status kvro_fs_listdir(kvro_fs *fs, const char *dir, kvro_list_fn fn, void *arg,
                            kvro_error *err)
{
    BEGIN(fs, dir, norm);
    if (!fn)
        return END(fs, dir, kvro_error_set(err, KVRO_E_INVALID, "NULL callback"));
    return END(fs, dir, kvro__list_sorted(fs->b, fs->self, norm, fn, arg, err));
}

kvro_status kvro_fs_create(kvro_fs *fs, const char *key, kvro_error *err)
{
    BEGIN_WRITE(fs, key, norm);
    if (!norm[0])
        return END(fs, key, kvro_error_set(err, KVRO_E_EXISTS, "the root exists"));
    return END(fs, key, fs->b->create(fs->self, norm, err));
}

kvro_status kvro_fs_mkdir(kvro_fs *fs, const char *key, kvro_error *err)
{
    BEGIN_WRITE(fs, key, norm);
    if (!norm[0])
        return KVRO_OK;
    return END(fs, key, fs->b->mkdir(fs->self, norm, err));
}

kvro_status kvro_fs_write(kvro_fs *fs, const char *key, int64_t offset, const void *buf,
                          int64_t length, kvro_error *err)
{
    BEGIN_WRITE(fs, key, norm);
    kvro_status s = kvro__check_rw_args(offset, length, buf, err);
    if (s == KVRO_OK && length > INT64_MAX - offset)
        s = kvro_error_set(err, KVRO_E_INVALID, "offset + length overflows");
    if (s == KVRO_OK)
        s = fs->b->write(fs->self, norm, offset, buf, length, err);
    return END(fs, key, s);
}

kvro_status kvro_fs_destroy(kvro_fs *fs, const char *key, kvro_error *err)
{
    BEGIN_WRITE(fs, key, norm);
    if (!norm[0])
        return END(fs, key, kvro_error_set(err, KVRO_E_INVALID, "the root cannot be destroyed"));
    return END(fs, key, fs->b->destroy(fs->self, norm, err));
}

/* ------------------------------------------------------------- adaptor */

/* The adaptor's table: a KV_RO backend whose SELF is a kvro_fs. Keys
 * arrive normalised, so they go straight to the FS backend's table. */

static kvro_status adaptor_stat(void *self, const char *key, kvro_info *st, kvro_error *err)
{
    kvro_fs *fs = self;
    return fs->b->stat(fs->self, key, st, err);
}

static kvro_status adaptor_read(void *self, const char *key, int64_t off, int64_t len, void *buf,
                                int64_t *nread, kvro_error *err)
{
    kvro_fs *fs = self;
    return fs->b->read(fs->self, key, off, len, buf, nread, err);
}

static kvro_status adaptor_list(void *self, const char *dir, kvro_list_fn fn, void *arg,
                                kvro_error *err)
{
    kvro_fs *fs = self;
    return fs->b->list(fs->self, dir, fn, arg, err);
}

static kvro_status adaptor_close(void *self, kvro_error *err)
{
    (void)self; /* kvro_close closes an owned FS itself */
    (void)err;
    return KVRO_OK;
}

static const kvro_backend adaptor = {
    .name = "fs-adaptor",
    .description = "a kvro_fs seen as KV_RO",
    .close = adaptor_close,
    .stat = adaptor_stat,
    .read = adaptor_read,
    .list = adaptor_list,
};

kvro_status kvro_of_fs(kvro_fs *fs, int flags, kvro **kv, kvro_error *err)
{
    kvro__error_clear(err);
    if (!fs || !kv)
        return kvro_error_set(err, KVRO_E_INVALID, "NULL argument");
    kvro_status s = kvro__kv_new(&adaptor, fs, fs->b->name, fs->source,
                                 (flags & KVRO_OF_FS_OWN) ? fs : NULL, kv, err);
    return kvro__error_context(err, s, fs->source, NULL);
}
