/*
 * core.h — the handles' insides, shared by core.c and fs.c only.
 */
#ifndef KVRO_CORE_H
#define KVRO_CORE_H

#include "backend.h"

struct kvro {
    const kvro_backend *b; /* the backend's table, or the FS adaptor's */
    void *self;
    const char *name;      /* backend name shown to users */
    char *source;
    kvro_fs *owned_fs;     /* kvro_of_fs(..., KVRO_OF_FS_OWN) */
};

struct kvro_fs {
    const kvro_backend *b;
    void *self;
    char *source;
    bool writable;
};

/* Every entry point starts the same way: clear the record, check the handle
 * and normalise the key into NORM; END adds source and key to a failure. */
#define BEGIN(h, key, norm)                                                                       \
    char norm[KVRO_KEY_MAX + 1];                                                                  \
    kvro__error_clear(err);                                                                       \
    if (!(h))                                                                                     \
        return kvro_error_set(err, KVRO_E_INVALID, "NULL handle");                                \
    do {                                                                                          \
        kvro_status s_ = kvro_key_normalise(key, norm, err);                                      \
        if (s_ != KVRO_OK)                                                                        \
            return kvro__error_context(err, s_, (h)->source, key);                                \
    } while (0)

#define END(h, key, s) kvro__error_context(err, (s), (h)->source, key)

kvro_status kvro__kv_new(const kvro_backend *b, void *self, const char *name, const char *source,
                         kvro_fs *owned, kvro **out, kvro_error *err);
kvro_status kvro__fs_open_with(const kvro_backend *b, const kvro_probe *p,
                               const kvro_options *opts, bool writable, kvro_fs **out,
                               kvro_error *err);
kvro_status kvro__check_rw_args(int64_t offset, int64_t length, const void *buf,
                                kvro_error *err);

#endif
