/*
 * core.c — the KV_RO handle: probing and bidding at open, then the checks
 * every backend shares (keys, offsets, kinds) before one call into the
 * backend's table.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---------------------------------------------------------------- probe */

static const kvro_backend *find_backend(const char *name)
{
    for (size_t i = 0; kvro__backends[i]; i++)
        if (strcmp(kvro__backends[i]->name, name) == 0)
            return kvro__backends[i];
    return NULL;
}

static void backend_names(char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; kvro__backends[i] && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? ", " : "", kvro__backends[i]->name);
}

static kvro_status read_head(const char *path, unsigned char *head, size_t *len, kvro_error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return kvro_error_set(err, kvro__status_of_errno(errno), "cannot open: %s",
                              strerror(errno));
    int e = kvro__pread(fd, head, KVRO_PROBE_HEAD, 0, len);
    close(fd);
    if (e)
        return kvro_error_set(err, KVRO_E_IO, "cannot read: %s", strerror(e));
    return KVRO_OK;
}

void kvro__probe_done(kvro_probe *p)
{
    free((void *)p->head);
    p->head = NULL;
}

kvro_status kvro__probe(const char *path, const char *force, bool fs_only, kvro_probe *p,
                        const kvro_backend **out, kvro_error *err)
{
    memset(p, 0, sizeof *p);
    p->path = path;
    if (stat(path, &p->st) != 0)
        return kvro_error_set(err, kvro__status_of_errno(errno), "%s", strerror(errno));
    if (S_ISREG(p->st.st_mode) || S_ISBLK(p->st.st_mode)) {
        unsigned char *head = malloc(KVRO_PROBE_HEAD);
        if (!head)
            return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
        p->head = head;
        kvro_status s = read_head(path, head, &p->head_len, err);
        if (s != KVRO_OK)
            return s;
    }

    if (force) {
        const kvro_backend *b = find_backend(force);
        if (!b) {
            char names[256];
            backend_names(names, sizeof names);
            return kvro_error_set(err, KVRO_E_INVALID, "unknown backend '%s' (known: %s)", force,
                                  names);
        }
        if (fs_only && !b->fs_open)
            return kvro_error_set(err, KVRO_E_UNSUPPORTED,
                                  "backend '%s' is read-only (KV_RO), not a filesystem", force);
        *out = b;
        return KVRO_OK;
    }

    const kvro_backend *best = NULL;
    int best_bid = KVRO_BID_NONE;
    for (size_t i = 0; kvro__backends[i]; i++) {
        const kvro_backend *b = kvro__backends[i];
        if (fs_only && !b->fs_open)
            continue;
        int bid = b->bid(p);
        if (bid > best_bid) {
            best = b;
            best_bid = bid;
        }
    }
    if (!best) {
        char names[256];
        backend_names(names, sizeof names);
        return kvro_error_set(err, KVRO_E_UNSUPPORTED,
                              "not a source kvro recognises (backends: %s)", names);
    }
    *out = best;
    return KVRO_OK;
}

size_t kvro_backend_count(void)
{
    size_t n = 0;
    while (kvro__backends[n])
        n++;
    return n;
}

const char *kvro_backend_name(size_t i)
{
    return i < kvro_backend_count() ? kvro__backends[i]->name : NULL;
}

const char *kvro_backend_description(size_t i)
{
    return i < kvro_backend_count() ? kvro__backends[i]->description : NULL;
}

/* ----------------------------------------------------------------- open */

kvro_status kvro__kv_new(const kvro_backend *b, void *self, const char *name, const char *source,
                         kvro_fs *owned, kvro **out, kvro_error *err)
{
    kvro *kv = calloc(1, sizeof *kv);
    char *src = strdup(source);
    if (!kv || !src) {
        free(kv);
        free(src);
        return kvro_error_set(err, KVRO_E_NOMEM, "cannot allocate a handle");
    }
    kv->b = b;
    kv->self = self;
    kv->name = name;
    kv->source = src;
    kv->owned_fs = owned;
    *out = kv;
    return KVRO_OK;
}

kvro_status kvro_open(const char *path, kvro **kv, kvro_error *err)
{
    return kvro_open_opts(path, NULL, kv, err);
}

kvro_status kvro_open_opts(const char *path, const kvro_options *opts, kvro **out, kvro_error *err)
{
    static const kvro_options defaults;
    kvro__error_clear(err);
    if (!path || !out)
        return kvro__error_context(err, kvro_error_set(err, KVRO_E_INVALID, "NULL argument"),
                                   path, NULL);
    *out = NULL;
    if (!opts)
        opts = &defaults;

    kvro_probe p;
    const kvro_backend *b = NULL;
    kvro_status s = kvro__probe(path, opts->backend, false, &p, &b, err);
    if (s == KVRO_OK && b->fs_open) {
        kvro_fs *fs = NULL;
        s = kvro__fs_open_with(b, &p, opts, false, &fs, err);
        if (s == KVRO_OK) {
            s = kvro_of_fs(fs, KVRO_OF_FS_OWN, out, err);
            if (s != KVRO_OK)
                kvro_fs_close(fs, NULL);
        }
    } else if (s == KVRO_OK) {
        void *self = NULL;
        s = b->open(&p, opts, &self, err);
        if (s == KVRO_OK) {
            s = kvro__kv_new(b, self, b->name, path, NULL, out, err);
            if (s != KVRO_OK)
                b->close(self, NULL);
        }
    }
    kvro__probe_done(&p);
    return kvro__error_context(err, s, path, NULL);
}

void kvro_close(kvro *kv)
{
    if (!kv)
        return;
    kv->b->close(kv->self, NULL);
    if (kv->owned_fs)
        kvro_fs_close(kv->owned_fs, NULL);
    free(kv->source);
    free(kv);
}

const char *kvro_backend_of(const kvro *kv)
{
    return kv ? kv->name : NULL;
}

const char *kvro_source(const kvro *kv)
{
    return kv ? kv->source : NULL;
}

/* ----------------------------------------------------------- operations */


kvro_status kvro_stat(kvro *kv, const char *key, kvro_info *st, kvro_error *err)
{
    BEGIN(kv, key, norm);
    if (!st)
        return END(kv, key, kvro_error_set(err, KVRO_E_INVALID, "NULL stat buffer"));
    memset(st, 0, sizeof *st);
    return END(kv, key, kv->b->stat(kv->self, norm, st, err));
}

kvro_status kvro_mem(kvro *kv, const char *key, bool *present, kvro_error *err)
{
    if (present)
        *present = false;
    BEGIN(kv, key, norm);
    if (!present)
        return END(kv, key, kvro_error_set(err, KVRO_E_INVALID, "NULL result pointer"));
    kvro_info st;
    kvro_error tmp;
    kvro__error_clear(&tmp);
    kvro_status s = kv->b->stat(kv->self, norm, &st, &tmp);
    *present = s == KVRO_OK;
    /* Absent is an answer, not an error; so is a path through a file. */
    if (s == KVRO_E_NOT_FOUND || s == KVRO_E_NOT_DIR)
        return KVRO_OK;
    if (s != KVRO_OK && err)
        *err = tmp;
    return END(kv, key, s);
}

kvro_status kvro_size(kvro *kv, const char *key, int64_t *size, kvro_error *err)
{
    if (size)
        *size = 0;
    BEGIN(kv, key, norm);
    if (!size)
        return END(kv, key, kvro_error_set(err, KVRO_E_INVALID, "NULL result pointer"));
    kvro_info st;
    memset(&st, 0, sizeof st);
    kvro_status s = kv->b->stat(kv->self, norm, &st, err);
    if (s == KVRO_OK && st.kind == KVRO_KIND_DIR)
        s = kvro_error_set(err, KVRO_E_IS_DIR, "is a directory, not a value");
    *size = s == KVRO_OK ? st.size : 0;
    return END(kv, key, s);
}

kvro_status kvro__check_rw_args(int64_t offset, int64_t length, const void *buf, kvro_error *err)
{
    if (offset < 0)
        return kvro_error_set(err, KVRO_E_INVALID, "negative offset %lld", (long long)offset);
    if (length < 0)
        return kvro_error_set(err, KVRO_E_INVALID, "negative length %lld", (long long)length);
    if (!buf && length > 0)
        return kvro_error_set(err, KVRO_E_INVALID, "NULL buffer");
    return KVRO_OK;
}

kvro_status kvro_read(kvro *kv, const char *key, int64_t offset, int64_t length, void *buf,
                      int64_t *nread, kvro_error *err)
{
    if (nread) /* 0 on every failure, the early ones included */
        *nread = 0;
    BEGIN(kv, key, norm);
    if (!nread)
        return END(kv, key, kvro_error_set(err, KVRO_E_INVALID, "NULL result pointer"));
    *nread = 0;
    kvro_status s = kvro__check_rw_args(offset, length, buf, err);
    if (s == KVRO_OK)
        s = kv->b->read(kv->self, norm, offset, length, buf, nread, err);
    if (s != KVRO_OK)
        *nread = 0;
    return END(kv, key, s);
}

kvro_status kvro_list(kvro *kv, const char *dir, kvro_list_fn fn, void *arg, kvro_error *err)
{
    BEGIN(kv, dir, norm);
    if (!fn)
        return END(kv, dir, kvro_error_set(err, KVRO_E_INVALID, "NULL callback"));
    return END(kv, dir, kvro__list_sorted(kv->b, kv->self, norm, fn, arg, err));
}

/* ------------------------------------------------------- sorted listing */

typedef struct entry {
    size_t name; /* offset in the arena */
    kvro_kind kind;
} entry;

typedef struct collector {
    entry *v;
    size_t n, cap;
    char *arena;
    size_t used, size;
    bool oom;
} collector;

static int collect(void *arg, const char *name, kvro_kind kind)
{
    collector *c = arg;
    size_t len = strlen(name) + 1;
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 64;
        entry *v = realloc(c->v, cap * sizeof *v);
        if (!v)
            return c->oom = true;
        c->v = v;
        c->cap = cap;
    }
    if (c->used + len > c->size) {
        size_t size = c->size ? c->size * 2 : 4096;
        while (size < c->used + len)
            size *= 2;
        char *a = realloc(c->arena, size);
        if (!a)
            return c->oom = true;
        c->arena = a;
        c->size = size;
    }
    memcpy(c->arena + c->used, name, len);
    c->v[c->n++] = (entry){c->used, kind};
    c->used += len;
    return 0;
}

/* qsort has no context argument in C11; names are resolved before sorting. */
typedef struct sorted {
    const char *name;
    kvro_kind kind;
} sorted;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const sorted *)a)->name, ((const sorted *)b)->name);
}

kvro_status kvro__list_sorted(const kvro_backend *b, void *self, const char *dir, kvro_list_fn fn,
                              void *arg, kvro_error *err)
{
    collector c = {0};
    kvro_status s = b->list(self, dir, collect, &c, err);
    if (s == KVRO_OK && c.oom)
        s = kvro_error_set(err, KVRO_E_NOMEM, "out of memory listing the directory");
    sorted *v = NULL;
    if (s == KVRO_OK && c.n) {
        v = malloc(c.n * sizeof *v);
        if (!v)
            s = kvro_error_set(err, KVRO_E_NOMEM, "out of memory listing the directory");
    }
    if (s == KVRO_OK && c.n) {
        for (size_t i = 0; i < c.n; i++)
            v[i] = (sorted){c.arena + c.v[i].name, c.v[i].kind};
        qsort(v, c.n, sizeof *v, by_name);
        for (size_t i = 0; i < c.n; i++)
            if (fn(arg, v[i].name, v[i].kind))
                break;
    }
    free(v);
    free(c.v);
    free(c.arena);
    return s;
}
