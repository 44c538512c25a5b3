/*
 * core.c — the KV_RO handle and the read side both handles share: the
 * checks every backend would otherwise repeat (keys, offsets, kinds), then
 * one call into the backend's table. Opening (probing, bidding) is in
 * open.c; the FS handle and its adaptor in fs.c.
 */
#include "core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- handle */

kvro_status kvro__kv_new(const kvro_backend *b, void *self, const char *name, const char *source,
                         kvro **out, kvro_error *err)
{
    kvro *kv = calloc(1, sizeof *kv);
    char *src = strdup(source);
    if (!kv || !src) {
        free(kv);
        free(src);
        return kvro_error_set(err, KVRO_E_NOMEM, "cannot allocate a handle");
    }
    kv->h = (kvro__handle){b, self, src};
    kv->name = name;
    *out = kv;
    return KVRO_OK;
}

void kvro_close(kvro *kv)
{
    if (!kv)
        return;
    kv->h.b->close(kv->h.self, NULL);
    free(kv->h.source);
    free(kv);
}

const char *kvro_backend_of(const kvro *kv)
{
    return kv ? kv->name : NULL;
}

const char *kvro_source(const kvro *kv)
{
    return kv ? kv->h.source : NULL;
}

/* ---------------------------------------------------- the shared read side */

kvro_status kvro__must_be_dir(kvro__handle *h, const char *norm, kvro_error *err)
{
    kvro_info st;
    memset(&st, 0, sizeof st);
    kvro_status s = h->b->stat(h->self, norm, &st, err);
    if (s == KVRO_OK && st.kind != KVRO_KIND_DIR)
        s = kvro_error_set(err, KVRO_E_NOT_DIR,
                           "not a directory (the key ends in '/', which names a directory)");
    return s;
}

/* The backend's lstat, or stat for a backend without links. */
static kvro_status b_lstat(const kvro_backend *b, void *self, const char *norm, kvro_info *st,
                           kvro_error *err)
{
    return (b->lstat ? b->lstat : b->stat)(self, norm, st, err);
}

kvro_status kvro__h_lstat(kvro__handle *h, const char *key, kvro_info *st, kvro_error *err)
{
    /* A trailing '/' resolves the link (POSIX: "link/" is its target), so
     * BEGIN's directory check, which follows, is the whole answer then. */
    BEGIN_KEY(h, key, norm, dir_only);
    if (!st)
        return END(h, key, kvro_error_set(err, KVRO_E_INVALID, "NULL stat buffer"));
    memset(st, 0, sizeof *st);
    kvro_status s = dir_only ? h->b->stat(h->self, norm, st, err)
                             : b_lstat(h->b, h->self, norm, st, err);
    if (s == KVRO_OK && dir_only && st->kind != KVRO_KIND_DIR)
        s = kvro_error_set(err, KVRO_E_NOT_DIR,
                           "not a directory (the key ends in '/', which names a directory)");
    return END(h, key, s);
}

kvro_status kvro__h_readlink(kvro__handle *h, const char *key, char *buf, size_t size,
                             size_t *len, kvro_error *err)
{
    if (len)
        *len = 0;
    if (buf && size)
        buf[0] = '\0';
    BEGIN(h, key, norm);
    if (!buf && size)
        return END(h, key, kvro_error_set(err, KVRO_E_INVALID, "NULL buffer"));
    kvro_status s;
    if (h->b->readlink) {
        s = h->b->readlink(h->self, norm, buf, size, len, err);
    } else {
        kvro_info st;
        memset(&st, 0, sizeof st);
        s = h->b->stat(h->self, norm, &st, err);
        if (s == KVRO_OK)
            s = kvro_error_set(err, KVRO_E_INVALID, "not a symbolic link");
    }
    if (s != KVRO_OK && buf && size)
        buf[0] = '\0';
    return END(h, key, s);
}

kvro_status kvro__h_stat(kvro__handle *h, const char *key, kvro_info *st, kvro_error *err)
{
    BEGIN(h, key, norm);
    if (!st)
        return END(h, key, kvro_error_set(err, KVRO_E_INVALID, "NULL stat buffer"));
    memset(st, 0, sizeof *st);
    return END(h, key, h->b->stat(h->self, norm, st, err));
}

kvro_status kvro__h_size(kvro__handle *h, const char *key, int64_t *size, kvro_error *err)
{
    if (size)
        *size = 0;
    BEGIN(h, key, norm);
    if (!size)
        return END(h, key, kvro_error_set(err, KVRO_E_INVALID, "NULL result pointer"));
    kvro_info st;
    memset(&st, 0, sizeof st);
    kvro_status s = h->b->stat(h->self, norm, &st, err);
    if (s == KVRO_OK && st.kind == KVRO_KIND_DIR)
        s = kvro_error_set(err, KVRO_E_IS_DIR, "is a directory, not a value");
    *size = s == KVRO_OK ? st.size : 0;
    return END(h, key, s);
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

kvro_status kvro__h_read(kvro__handle *h, const char *key, int64_t offset, int64_t length,
                         void *buf, int64_t *nread, kvro_error *err)
{
    if (nread) /* 0 on every failure, the early ones included */
        *nread = 0;
    BEGIN(h, key, norm);
    if (!nread)
        return END(h, key, kvro_error_set(err, KVRO_E_INVALID, "NULL result pointer"));
    kvro_status s = kvro__check_rw_args(offset, length, buf, err);
    if (s == KVRO_OK)
        s = h->b->read(h->self, norm, offset, length, buf, nread, err);
    if (s != KVRO_OK)
        *nread = 0;
    return END(h, key, s);
}

kvro_status kvro__h_list(kvro__handle *h, const char *dir, kvro_list_fn fn, void *arg,
                         kvro_error *err)
{
    BEGIN(h, dir, norm);
    if (!fn)
        return END(h, dir, kvro_error_set(err, KVRO_E_INVALID, "NULL callback"));
    return END(h, dir, kvro__list_sorted(h->b, h->self, norm, fn, arg, err));
}

kvro_status kvro__h_list_info(kvro__handle *h, const char *dir, int flags,
                              kvro_list_info_fn fn, void *arg, kvro_error *err)
{
    BEGIN(h, dir, norm);
    if (!fn)
        return END(h, dir, kvro_error_set(err, KVRO_E_INVALID, "NULL callback"));
    if (flags & ~KVRO_NOFOLLOW)
        return END(h, dir, kvro_error_set(err, KVRO_E_INVALID, "unknown flags %#x", flags));
    return END(h, dir, kvro__list_info(h->b, h->self, norm, flags, fn, arg, err));
}

/* --------------------------------------------------------- KV_RO calls */

#define H(kv) ((kv) ? &(kv)->h : NULL)

kvro_status kvro_stat(kvro *kv, const char *key, kvro_info *st, kvro_error *err)
{
    return kvro__h_stat(H(kv), key, st, err);
}

kvro_status kvro_size(kvro *kv, const char *key, int64_t *size, kvro_error *err)
{
    return kvro__h_size(H(kv), key, size, err);
}

kvro_status kvro_read(kvro *kv, const char *key, int64_t offset, int64_t length, void *buf,
                      int64_t *nread, kvro_error *err)
{
    return kvro__h_read(H(kv), key, offset, length, buf, nread, err);
}

kvro_status kvro_list(kvro *kv, const char *dir, kvro_list_fn fn, void *arg, kvro_error *err)
{
    return kvro__h_list(H(kv), dir, fn, arg, err);
}

kvro_status kvro_list_info(kvro *kv, const char *dir, int flags, kvro_list_info_fn fn, void *arg,
                           kvro_error *err)
{
    return kvro__h_list_info(H(kv), dir, flags, fn, arg, err);
}

kvro_status kvro_lstat(kvro *kv, const char *key, kvro_info *st, kvro_error *err)
{
    return kvro__h_lstat(H(kv), key, st, err);
}

kvro_status kvro_readlink(kvro *kv, const char *key, char *buf, size_t size, size_t *len,
                          kvro_error *err)
{
    return kvro__h_readlink(H(kv), key, buf, size, len, err);
}

kvro_status kvro_mem(kvro *kv, const char *key, bool *present, kvro_error *err)
{
    if (present)
        *present = false;
    kvro__handle *h = H(kv);
    BEGIN_KEY(h, key, norm, dir_only);
    if (!present)
        return END(h, key, kvro_error_set(err, KVRO_E_INVALID, "NULL result pointer"));
    kvro_info st;
    memset(&st, 0, sizeof st);
    kvro_error tmp;
    kvro__error_clear(&tmp);
    kvro_status s = h->b->stat(h->self, norm, &st, &tmp);
    if (s == KVRO_OK && dir_only && st.kind != KVRO_KIND_DIR)
        s = KVRO_E_NOT_DIR;
    *present = s == KVRO_OK;
    /* Absent is an answer, not an error; so is a path through a file. */
    if (s == KVRO_E_NOT_FOUND || s == KVRO_E_NOT_DIR)
        return KVRO_OK;
    if (s != KVRO_OK && err)
        *err = tmp;
    return END(h, key, s);
}

/* ------------------------------------------------------------- zero copy */

/* Where KEY's bytes lie in an I/O object, or why they do not. One lookup:
 * the backend's locate says KVRO_E_IS_DIR itself. */
kvro_status kvro__h_locate(kvro__handle *h, const char *norm, kvro_io **io, int64_t *off,
                          int64_t *len, kvro_error *err)
{
    if (h->b->locate)
        return h->b->locate(h->self, norm, io, off, len, err);
    kvro_info st;
    memset(&st, 0, sizeof st);
    kvro_status s = h->b->stat(h->self, norm, &st, err);
    if (s == KVRO_OK)
        s = st.kind == KVRO_KIND_DIR
                ? kvro_error_set(err, KVRO_E_IS_DIR, "is a directory, not a value")
                : kvro_error_set(err, KVRO_E_UNSUPPORTED,
                                 "%s: values are not stored as plain bytes of an image",
                                 h->b->name);
    return s;
}

kvro_status kvro_map(kvro *kv, const char *key, const void **data, int64_t *size,
                     kvro_error *err)
{
    if (data)
        *data = NULL;
    if (size)
        *size = 0;
    kvro__handle *h = H(kv);
    BEGIN(h, key, norm);
    if (!data || !size)
        return END(h, key, kvro_error_set(err, KVRO_E_INVALID, "NULL result pointer"));
    kvro_io *io = NULL;
    int64_t off = 0, len = 0;
    kvro_status s = kvro__h_locate(h, norm, &io, &off, &len, err);
    size_t avail = 0;
    const unsigned char *mem = s == KVRO_OK ? kvro_io_memory(io, &avail) : NULL;
    if (s == KVRO_OK && !mem)
        s = kvro_error_set(err, KVRO_E_UNSUPPORTED,
                           "the image is not in memory (use kvro_read, or kvro_file_extent)");
    else if (s == KVRO_OK && (off > (int64_t)avail || len > (int64_t)avail - off))
        s = kvro_error_set(err, KVRO_E_CORRUPT, "the value lies past the end of the image");
    if (s == KVRO_OK) {
        *data = mem + off;
        *size = len;
    }
    return END(h, key, s);
}

kvro_status kvro_file_extent(kvro *kv, const char *key, kvro_extent *ext, kvro_error *err)
{
    if (ext)
        *ext = (kvro_extent){-1, 0, 0};
    kvro__handle *h = H(kv);
    BEGIN(h, key, norm);
    if (!ext)
        return END(h, key, kvro_error_set(err, KVRO_E_INVALID, "NULL result pointer"));
    kvro_io *io = NULL;
    int64_t off = 0, len = 0, base = 0;
    kvro_status s = kvro__h_locate(h, norm, &io, &off, &len, err);
    int fd = s == KVRO_OK ? kvro_io_fd(io, &base) : -1;
    int64_t avail = 0;
    if (s == KVRO_OK && fd < 0)
        s = kvro_error_set(err, KVRO_E_UNSUPPORTED,
                           "the image is not a file (use kvro_read, or kvro_map)");
    /* As kvro_map: a value said to lie past the image's end (a cut image)
     * is corrupt, not a range to hand out. */
    else if (s == KVRO_OK && (s = kvro_io_size(io, &avail, err)) == KVRO_OK &&
             (off < 0 || len < 0 || off > avail || len > avail - off))
        s = kvro_error_set(err, KVRO_E_CORRUPT, "the value lies past the end of the image");
    if (s == KVRO_OK)
        *ext = (kvro_extent){fd, base + off, len};
    return END(h, key, s);
}

kvro_status kvro__regions(const kvro_backend *b, void *self, const char *norm, kvro_region_fn fn,
                          void *arg, kvro_error *err)
{
    if (b->regions)
        return b->regions(self, norm, fn, arg, err);
    kvro_info st;
    memset(&st, 0, sizeof st);
    kvro_status s = b->stat(self, norm, &st, err);
    if (s == KVRO_OK && st.kind == KVRO_KIND_DIR)
        s = kvro_error_set(err, KVRO_E_IS_DIR, "is a directory, not a value");
    if (s != KVRO_OK || st.size == 0)
        return s;
    /* No holes: one region, in the image where the backend can say. */
    kvro_region r = {0, st.size, -1};
    kvro_io *io = NULL;
    int64_t off = 0, len = 0;
    kvro_error ignored;
    if (b->locate && b->locate(self, norm, &io, &off, &len, &ignored) == KVRO_OK &&
        len == st.size)
        r.image_offset = off;
    fn(arg, &r);
    return KVRO_OK;
}

kvro_status kvro_regions(kvro *kv, const char *key, kvro_region_fn fn, void *arg,
                         kvro_error *err)
{
    kvro__handle *h = H(kv);
    BEGIN(h, key, norm);
    if (!fn)
        return END(h, key, kvro_error_set(err, KVRO_E_INVALID, "NULL callback"));
    return END(h, key, kvro__regions(h->b, h->self, norm, fn, arg, err));
}

kvro_status kvro_get_stats(kvro *kv, kvro_stats *st, kvro_error *err)
{
    kvro__error_clear(err);
    if (!kv || !st)
        return kvro_error_set(err, KVRO_E_INVALID, "NULL argument");
    memset(st, 0, sizeof *st);
    if (kv->h.b->stats)
        kv->h.b->stats(kv->h.self, st);
    return KVRO_OK;
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

/* DIR/NAME into OUT (KVRO_KEY_MAX + 1 bytes); false if too long. */
static bool join_key(const char *dir, const char *name, char *out)
{
    int n = snprintf(out, KVRO_KEY_MAX + 1, "%s%s%s", dir, *dir ? "/" : "", name);
    return n >= 0 && n <= KVRO_KEY_MAX;
}

/* Collects DIR's entries as the backend stores them, sorted by name, into
 * *V (NULL when empty; the caller frees *V and C's buffers). */
static kvro_status collect_sorted(const kvro_backend *b, void *self, const char *dir,
                                  collector *c, sorted **out, kvro_error *err)
{
    *out = NULL;
    kvro_status s = b->list(self, dir, collect, c, err);
    if (s == KVRO_OK && c->oom)
        s = kvro_error_set(err, KVRO_E_NOMEM, "out of memory listing the directory");
    if (s != KVRO_OK || !c->n)
        return s;
    sorted *v = malloc(c->n * sizeof *v);
    if (!v)
        return kvro_error_set(err, KVRO_E_NOMEM, "out of memory listing the directory");
    for (size_t i = 0; i < c->n; i++)
        v[i] = (sorted){c->arena + c->v[i].name, c->v[i].kind};
    qsort(v, c->n, sizeof *v, by_name);
    *out = v;
    return KVRO_OK;
}

/* What a link in DIR resolves to, for callers that follow: false when it
 * leads nowhere inside the root (dangling, looping, escaping), and the
 * listing then leaves it out, as it always has. */
static bool follow(const kvro_backend *b, void *self, const char *dir, const char *name,
                   kvro_info *st)
{
    char key[KVRO_KEY_MAX + 1];
    kvro_error ignored;
    memset(st, 0, sizeof *st);
    return join_key(dir, name, key) && b->stat(self, key, st, &ignored) == KVRO_OK;
}

kvro_status kvro__list_sorted(const kvro_backend *b, void *self, const char *dir, kvro_list_fn fn,
                              void *arg, kvro_error *err)
{
    collector c = {0};
    sorted *v = NULL;
    kvro_status s = collect_sorted(b, self, dir, &c, &v, err);
    for (size_t i = 0; s == KVRO_OK && i < c.n; i++) {
        kvro_kind kind = v[i].kind;
        kvro_info st;
        if (kind == KVRO_KIND_LINK) {
            if (!follow(b, self, dir, v[i].name, &st))
                continue;
            kind = st.kind;
        }
        if (fn(arg, v[i].name, kind))
            break;
    }
    free(v);
    free(c.v);
    free(c.arena);
    return s;
}

/* A backend's own list_info pass (backend.h), collected: each entry's
 * status and info beside its name. */
typedef struct info_collector {
    collector c;
    kvro_status *status;
    kvro_info *info;
    size_t cap;
} info_collector;

static int collect_info(void *arg, const char *name, kvro_status s, const kvro_info *info)
{
    info_collector *ic = arg;
    if (collect(&ic->c, name, info ? info->kind : KVRO_KIND_FILE))
        return 1;
    if (ic->cap < ic->c.cap) {
        kvro_status *st = realloc(ic->status, ic->c.cap * sizeof *st);
        if (st)
            ic->status = st;
        kvro_info *in = realloc(ic->info, ic->c.cap * sizeof *in);
        if (in)
            ic->info = in;
        if (!st || !in)
            return ic->c.oom = true;
        ic->cap = ic->c.cap;
    }
    size_t i = ic->c.n - 1;
    ic->status[i] = info ? s : s == KVRO_OK ? KVRO_E_IO : s;
    if (info)
        ic->info[i] = *info;
    else
        memset(&ic->info[i], 0, sizeof ic->info[i]);
    return 0;
}

typedef struct sorted_ix {
    const char *name;
    size_t i;
} sorted_ix;

static int by_name_ix(const void *a, const void *b)
{
    return strcmp(((const sorted_ix *)a)->name, ((const sorted_ix *)b)->name);
}

/* kvro__list_info over b->list_info: the same answers as the generic
 * pass, each entry's stat made by the listing. */
static kvro_status list_info_native(const kvro_backend *b, void *self, const char *dir, int flags,
                                    kvro_list_info_fn fn, void *arg, char *key, kvro_error *err)
{
    info_collector ic = {0};
    sorted_ix *v = NULL;
    kvro_status s = b->list_info(self, dir, collect_info, &ic, err);
    if (s == KVRO_OK && ic.c.oom)
        s = kvro_error_set(err, KVRO_E_NOMEM, "out of memory listing the directory");
    if (s == KVRO_OK && ic.c.n && !(v = malloc(ic.c.n * sizeof *v)))
        s = kvro_error_set(err, KVRO_E_NOMEM, "out of memory listing the directory");
    if (s == KVRO_OK && v) {
        for (size_t i = 0; i < ic.c.n; i++)
            v[i] = (sorted_ix){ic.c.arena + ic.c.v[i].name, i};
        qsort(v, ic.c.n, sizeof *v, by_name_ix);
    }
    for (size_t k = 0; s == KVRO_OK && k < ic.c.n; k++) {
        size_t i = v[k].i;
        kvro_status e = ic.status[i];
        kvro_info st = ic.info[i];
        bool link = e == KVRO_OK && st.kind == KVRO_KIND_LINK;
        kvro_error ignored;
        if (!(flags & KVRO_NOFOLLOW) && link)
            e = follow(b, self, dir, v[k].name, &st) ? KVRO_OK : KVRO_E_LINK;
        else if (!join_key(dir, v[k].name, key))
            e = KVRO_E_BAD_KEY; /* as the generic pass: no key names it */
        else if (!(flags & KVRO_NOFOLLOW) && e != KVRO_OK)
            e = b->stat(self, key, &st, &ignored); /* the generic pass's answer, and cause */
        if (e == KVRO_E_LINK && !(flags & KVRO_NOFOLLOW) && link)
            continue; /* as kvro_list: a link that leads nowhere is left out */
        if (fn(arg, v[k].name, e, e == KVRO_OK ? &st : NULL))
            break;
    }
    free(v);
    free(ic.status);
    free(ic.info);
    free(ic.c.v);
    free(ic.c.arena);
    return s;
}

kvro_status kvro__list_info(const kvro_backend *b, void *self, const char *dir, int flags,
                            kvro_list_info_fn fn, void *arg, kvro_error *err)
{
    collector c = {0};
    sorted *v = NULL;
    /* On the heap: kvro_each's walk nests listings as deep as keys go. */
    char *key = malloc(KVRO_KEY_MAX + 1);
    if (key && b->list_info) {
        kvro_status s = list_info_native(b, self, dir, flags, fn, arg, key, err);
        free(key);
        return s;
    }
    kvro_status s = key ? collect_sorted(b, self, dir, &c, &v, err)
                        : kvro_error_set(err, KVRO_E_NOMEM, "out of memory listing the directory");
    for (size_t i = 0; s == KVRO_OK && i < c.n; i++) {
        kvro_info st;
        memset(&st, 0, sizeof st);
        kvro_status e;
        kvro_error ignored;
        if (!(flags & KVRO_NOFOLLOW) && v[i].kind == KVRO_KIND_LINK)
            e = follow(b, self, dir, v[i].name, &st) ? KVRO_OK : KVRO_E_LINK;
        else if (!join_key(dir, v[i].name, key))
            e = KVRO_E_BAD_KEY;
        else
            e = (flags & KVRO_NOFOLLOW) ? b_lstat(b, self, key, &st, &ignored)
                                        : b->stat(self, key, &st, &ignored);
        if (e == KVRO_E_LINK && !(flags & KVRO_NOFOLLOW) && v[i].kind == KVRO_KIND_LINK)
            continue; /* as kvro_list: a link that leads nowhere is left out */
        if (fn(arg, v[i].name, e, e == KVRO_OK ? &st : NULL))
            break;
    }
    free(key);
    free(v);
    free(c.v);
    free(c.arena);
    return s;
}

/* ------------------------------------------------------- storage order */

/* The walk kvro_each falls back on: sorted, depth first, KEY[LEN] the
 * directory's key in one buffer shared by every level. */
typedef struct each_walk {
    const kvro_backend *b;
    void *self;
    kvro_list_info_fn fn;
    void *arg;
    char key[KVRO_KEY_MAX + 1];
    size_t len;
    bool stopped;
    kvro_status failed; /* a directory that could not be listed */
    kvro_error err;
} each_walk;

static int each_entry(void *arg, const char *name, kvro_status s, const kvro_info *info)
{
    each_walk *w = arg;
    size_t len = w->len, n = strlen(name);
    if (len + (len ? 1 : 0) + n > KVRO_KEY_MAX)
        return 0; /* cannot be named as a key; kvro_list_info said so already */
    if (len)
        w->key[w->len++] = '/';
    memcpy(w->key + w->len, name, n + 1);
    w->len += n;
    if (w->fn(w->arg, w->key, s, info)) {
        w->stopped = true;
    } else if (s == KVRO_OK && info->kind == KVRO_KIND_DIR) {
        kvro_status e = kvro__list_info(w->b, w->self, w->key, KVRO_NOFOLLOW, each_entry, w,
                                        &w->err);
        if (e != KVRO_OK && !w->stopped) /* one directory that cannot be listed */
            w->stopped = w->fn(w->arg, w->key, e, NULL) != 0;
    }
    w->len = len;
    w->key[len] = '\0';
    return w->stopped;
}

kvro_status kvro_each(kvro *kv, kvro_list_info_fn fn, void *arg, kvro_error *err)
{
    kvro__handle *h = H(kv);
    kvro__error_clear(err);
    if (!h || !fn)
        return kvro_error_set(err, KVRO_E_INVALID, "NULL argument");
    if (h->b->each)
        return END(h, "", h->b->each(h->self, fn, arg, err));
    each_walk *w = calloc(1, sizeof *w);
    if (!w)
        return END(h, "", kvro_error_set(err, KVRO_E_NOMEM, "out of memory"));
    *w = (each_walk){.b = h->b, .self = h->self, .fn = fn, .arg = arg};
    kvro_status s = kvro__list_info(h->b, h->self, "", KVRO_NOFOLLOW, each_entry, w, err);
    free(w);
    return END(h, "", s);
}
