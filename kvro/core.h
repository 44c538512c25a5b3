/*
 * core.h — the handles' insides, shared by core.c, fs.c and open.c only.
 *
 * Both handles start with the same kvro__handle, and the read-side entry
 * points of both (stat, size, read, list) are the kvro__h_* functions in
 * core.c: the checks are written once. Dependencies run one way: open.c
 * (probing, bidding) uses fs.c and core.c; fs.c (the FS handle and the
 * FS->KV_RO adaptor) uses core.c; core.c uses neither.
 */
#ifndef KVRO_CORE_H
#define KVRO_CORE_H

#include "backend.h"

typedef struct kvro__handle {
    const kvro_backend *b;
    void *self;
    char *source;
} kvro__handle;

struct kvro {
    kvro__handle h;   /* the backend's table, or the FS adaptor's */
    const char *name; /* backend name shown to users */
};

struct kvro_fs {
    kvro__handle h;
    bool writable;
};

/* Every entry point starts the same way: clear the record, check the handle
 * and normalise the key into NORM; a key with a trailing '/' must then be a
 * directory (KVRO_E_NOT_DIR otherwise). BEGIN_KEY leaves that check to the
 * caller, in DIR_ONLY. END adds source and key to a failure. */
#define BEGIN_KEY(h, key, norm, dir_only)                                                         \
    char norm[KVRO_KEY_MAX + 1];                                                                  \
    bool dir_only;                                                                                \
    kvro__error_clear(err);                                                                       \
    if (!(h))                                                                                     \
        return kvro_error_set(err, KVRO_E_INVALID, "NULL handle");                                \
    do {                                                                                          \
        kvro_status s_ = kvro__key_normalise(key, norm, &dir_only, err);                          \
        if (s_ != KVRO_OK)                                                                        \
            return kvro_error_context(err, s_, (h)->source, key);                                 \
    } while (0)

#define BEGIN(h, key, norm)                                                                       \
    BEGIN_KEY(h, key, norm, dir_only_);                                                           \
    do {                                                                                          \
        kvro_status d_ = dir_only_ ? kvro__must_be_dir(h, norm, err) : KVRO_OK;                   \
        if (d_ != KVRO_OK)                                                                        \
            return kvro_error_context(err, d_, (h)->source, key);                                 \
    } while (0)

#define END(h, key, s) kvro_error_context(err, (s), (h)->source, key)

/* key.c: kvro_key_normalise, also saying whether KEY ends in '/' or "/.". */
kvro_status kvro__key_normalise(const char *key, char *out, bool *dir_only, kvro_error *err);
/* KVRO_OK if normalised KEY is a directory (links followed), else why not:
 * KVRO_E_NOT_DIR for anything else. */
kvro_status kvro__must_be_dir(kvro__handle *h, const char *norm, kvro_error *err);

/* A KV_RO handle over backend B's SELF (owned: closed with it). */
kvro_status kvro__kv_new(const kvro_backend *b, void *self, const char *name, const char *source,
                         kvro **out, kvro_error *err);

/* The read side both handles share (H may be NULL: KVRO_E_INVALID). */
kvro_status kvro__h_stat(kvro__handle *h, const char *key, kvro_info *st, kvro_error *err);
kvro_status kvro__h_size(kvro__handle *h, const char *key, int64_t *size, kvro_error *err);
kvro_status kvro__h_read(kvro__handle *h, const char *key, int64_t offset, int64_t length,
                         void *buf, int64_t *nread, kvro_error *err);
kvro_status kvro__h_list(kvro__handle *h, const char *dir, kvro_list_fn fn, void *arg,
                         kvro_error *err);
kvro_status kvro__h_list_info(kvro__handle *h, const char *dir, int flags,
                              kvro_list_info_fn fn, void *arg, kvro_error *err);
kvro_status kvro__h_lstat(kvro__handle *h, const char *key, kvro_info *st, kvro_error *err);
kvro_status kvro__h_readlink(kvro__handle *h, const char *key, char *buf, size_t size,
                             size_t *len, kvro_error *err);
/* Where normalised KEY's bytes lie (the backend's locate, or why not). */
kvro_status kvro__h_locate(kvro__handle *h, const char *norm, kvro_io **io, int64_t *off,
                           int64_t *len, kvro_error *err);
/* The data regions of normalised KEY (kvro_regions): the backend's, or
 * one region placed by its locate. */
kvro_status kvro__regions(const kvro_backend *b, void *self, const char *norm, kvro_region_fn fn,
                          void *arg, kvro_error *err);
kvro_status kvro__check_rw_args(int64_t offset, int64_t length, const void *buf,
                                kvro_error *err);

/* An FS handle over backend B opened on probe P (fs.c). */
kvro_status kvro__fs_new(const kvro_backend *b, const kvro_probe *p, const kvro_options *opts,
                         bool writable, kvro_fs **out, kvro_error *err);

/* An I/O object over FD, already open on PATH (io.c; FD is owned, and
 * closed on failure too). */
kvro_status kvro__io_from_path_fd(int fd, const char *path, int flags, kvro_io **out,
                                  kvro_error *err);

#endif
