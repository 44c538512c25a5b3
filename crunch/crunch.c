/*
 * crunch.c — the "crunch" backend: a tree compiled into the program by
 * `mkkv crunch` (kvro/crunch.h describes the table), served as a KV_RO
 * handle.
 *
 * Not in the registry: nothing is probed or bid on, a program names its
 * table (kvro_open_crunch). So a static program that only opens tables
 * links this file and the core, never tar, dir or the registry; and zlib
 * only through a compressed table's own pointer to kvro_crunch_inflate
 * (crunch_inflate.c).
 *
 * Lookups are binary searches over the entries, ordered as paths are
 * walked ('/' before every other byte), so a directory's subtree follows
 * it and a listing steps from child to child by their END indexes.
 */
#include "core.h"

#include <kvro/crunch.h>

#include <stdlib.h>
#include <string.h>

typedef struct crunch {
    const kvro_crunch *t;
    kvro_io *io; /* over t->data, for locate (kvro_map) */
} crunch;

/* Key order: bytes, with '/' before anything else (keys hold no NUL). */
static int path_cmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        unsigned ca = *a == '/' ? 1u : (unsigned char)*a + 1u;
        unsigned cb = *b == '/' ? 1u : (unsigned char)*b + 1u;
        if (!*a || !*b || ca != cb)
            return (int)(*a ? ca : 0) - (int)(*b ? cb : 0);
    }
}

/* The entry of normalised KEY, or NULL ("" is the root: NULL too). */
static const kvro_crunch_entry *lookup(const kvro_crunch *t, const char *key)
{
    size_t lo = 0, hi = t->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = path_cmp(key, t->names + t->entries[mid].key);
        if (c == 0)
            return &t->entries[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

/* Why normalised KEY is missing: KVRO_E_NOT_DIR when one of its parents
 * is a file, else KVRO_E_NOT_FOUND. */
static kvro_status missing(const kvro_crunch *t, const char *key, kvro_error *err)
{
    char parent[KVRO_KEY_MAX + 1];
    for (const char *p = strchr(key, '/'); p; p = strchr(p + 1, '/')) {
        memcpy(parent, key, (size_t)(p - key));
        parent[p - key] = '\0';
        const kvro_crunch_entry *e = lookup(t, parent);
        if (!e)
            break;
        if (!(e->flags & KVRO_CRUNCH_DIR))
            return kvro_error_set(err, KVRO_E_NOT_DIR, "a parent of the key is a file");
    }
    return kvro_error_set(err, KVRO_E_NOT_FOUND, "no such key");
}

static void fill_info(const crunch *c, const kvro_crunch_entry *e, kvro_info *st)
{
    memset(st, 0, sizeof *st);
    if (!e) { /* the root */
        st->kind = KVRO_KIND_DIR;
        st->mode = 0755;
        st->has_mode = true;
        st->id = 1;
        st->nlink = 1;
        return;
    }
    st->kind = e->flags & KVRO_CRUNCH_DIR ? KVRO_KIND_DIR : KVRO_KIND_FILE;
    st->size = e->size;
    st->mtime = e->mtime;
    st->mtime_nsec = (int32_t)e->mtime_nsec;
    st->mode = e->mode & 07777;
    st->has_mode = true;
    st->id = (uint64_t)(e - c->t->entries) + 2; /* the root is 1 */
    st->nlink = 1;
}

static kvro_status crunch_stat(void *self, const char *key, kvro_info *st, kvro_error *err)
{
    crunch *c = self;
    const kvro_crunch_entry *e = *key ? lookup(c->t, key) : NULL;
    if (*key && !e)
        return missing(c->t, key, err);
    fill_info(c, e, st);
    return KVRO_OK;
}

/* The file entry of KEY, or why there is none. */
static kvro_status file_of(const crunch *c, const char *key, const kvro_crunch_entry **out,
                           kvro_error *err)
{
    const kvro_crunch_entry *e = *key ? lookup(c->t, key) : NULL;
    if (*key && !e)
        return missing(c->t, key, err);
    if (!e || (e->flags & KVRO_CRUNCH_DIR))
        return kvro_error_set(err, KVRO_E_IS_DIR, "is a directory, not a value");
    *out = e;
    return KVRO_OK;
}

/* Bytes [OFF, OFF + LEN) of compressed value E into BUF: each block the
 * range touches is inflated once, straight into BUF when wholly wanted,
 * else into a scratch block of which the wanted part is copied. */
static kvro_status read_blocks(const crunch *c, const kvro_crunch_entry *e, int64_t off,
                               int64_t len, unsigned char *buf, kvro_error *err)
{
    const kvro_crunch *t = c->t;
    if (!t->inflate || !t->blocks)
        return kvro_error_set(err, KVRO_E_CORRUPT, "crunch: compressed value in a table "
                                                   "without an inflater");
    const unsigned char *base = t->data + e->data;
    const uint32_t *bo = t->blocks + e->block;
    unsigned char *scratch = NULL;
    kvro_status s = KVRO_OK;
    for (int64_t pos = off; s == KVRO_OK && pos < off + len;) {
        int64_t i = pos / KVRO_CRUNCH_BLOCK, start = i * KVRO_CRUNCH_BLOCK;
        int64_t raw = e->size - start < KVRO_CRUNCH_BLOCK ? e->size - start : KVRO_CRUNCH_BLOCK;
        int64_t skip = pos - start, want = raw - skip;
        if (want > off + len - pos)
            want = off + len - pos;
        const unsigned char *in = base + bo[i];
        size_t in_len = bo[i + 1] - bo[i];
        unsigned char *dst = buf + (pos - off);
        if ((int64_t)in_len == raw) { /* stored raw: deflate did not shrink it */
            memcpy(dst, in + skip, (size_t)want);
        } else if (want == raw) {
            s = t->inflate(in, in_len, dst, (size_t)raw, err);
        } else {
            if (!scratch && !(scratch = malloc(KVRO_CRUNCH_BLOCK)))
                return kvro_error_set(err, KVRO_E_NOMEM, "cannot allocate a block buffer");
            s = t->inflate(in, in_len, scratch, (size_t)raw, err);
            if (s == KVRO_OK)
                memcpy(dst, scratch + skip, (size_t)want);
        }
        pos += want;
    }
    free(scratch);
    return s;
}

static kvro_status crunch_read(void *self, const char *key, int64_t off, int64_t len, void *buf,
                               int64_t *nread, kvro_error *err)
{
    crunch *c = self;
    const kvro_crunch_entry *e = NULL;
    kvro_status s = file_of(c, key, &e, err);
    if (s != KVRO_OK)
        return s;
    *nread = 0;
    if (off >= e->size || len == 0)
        return KVRO_OK;
    if (len > e->size - off)
        len = e->size - off;
    if (e->flags & KVRO_CRUNCH_DEFLATE)
        s = read_blocks(c, e, off, len, buf, err);
    else
        memcpy(buf, c->t->data + e->data + off, (size_t)len);
    if (s == KVRO_OK)
        *nread = len;
    return s;
}

/* The entry index range [*FIRST, *END) of directory KEY's subtree. */
static kvro_status dir_range(const crunch *c, const char *key, size_t *first, size_t *end,
                             kvro_error *err)
{
    if (!*key) {
        *first = 0;
        *end = c->t->count;
        return KVRO_OK;
    }
    const kvro_crunch_entry *e = lookup(c->t, key);
    if (!e)
        return missing(c->t, key, err);
    if (!(e->flags & KVRO_CRUNCH_DIR))
        return kvro_error_set(err, KVRO_E_NOT_DIR, "not a directory");
    *first = (size_t)(e - c->t->entries) + 1;
    *end = e->end;
    return KVRO_OK;
}

static const char *base_name(const char *key)
{
    const char *slash = strrchr(key, '/');
    return slash ? slash + 1 : key;
}

static kvro_status crunch_list(void *self, const char *dir, kvro_list_fn fn, void *arg,
                               kvro_error *err)
{
    crunch *c = self;
    size_t i = 0, end = 0;
    kvro_status s = dir_range(c, dir, &i, &end, err);
    /* Children in order; each one's END skips its subtree. */
    for (; s == KVRO_OK && i < end && i < c->t->count; i = c->t->entries[i].end) {
        const kvro_crunch_entry *e = &c->t->entries[i];
        if (fn(arg, base_name(c->t->names + e->key),
               e->flags & KVRO_CRUNCH_DIR ? KVRO_KIND_DIR : KVRO_KIND_FILE))
            break;
        if (e->end <= i) /* a damaged table must not loop */
            return kvro_error_set(err, KVRO_E_CORRUPT, "crunch: entry %zu ends before itself",
                                  i);
    }
    return s;
}

/* The entries are stored depth first, parents first: storage order. */
static kvro_status crunch_each(void *self, kvro_list_info_fn fn, void *arg, kvro_error *err)
{
    (void)err;
    crunch *c = self;
    for (size_t i = 0; i < c->t->count; i++) {
        kvro_info st;
        fill_info(c, &c->t->entries[i], &st);
        if (fn(arg, c->t->names + c->t->entries[i].key, KVRO_OK, &st))
            break;
    }
    return KVRO_OK;
}

static kvro_status crunch_locate(void *self, const char *key, kvro_io **io, int64_t *off,
                                 int64_t *len, kvro_error *err)
{
    crunch *c = self;
    const kvro_crunch_entry *e = NULL;
    kvro_status s = file_of(c, key, &e, err);
    if (s != KVRO_OK)
        return s;
    if (e->flags & KVRO_CRUNCH_DEFLATE)
        return kvro_error_set(err, KVRO_E_UNSUPPORTED,
                              "crunch: the value is stored compressed (use kvro_read)");
    *io = c->io;
    *off = (int64_t)e->data;
    *len = e->size;
    return KVRO_OK;
}

static void crunch_stats(void *self, kvro_stats *st)
{
    crunch *c = self;
    st->entries = (int64_t)c->t->count + 1;
    st->compressed = c->t->inflate != NULL;
}

static kvro_status crunch_close(void *self, kvro_error *err)
{
    (void)err;
    crunch *c = self;
    kvro_io_close(c->io);
    free(c);
    return KVRO_OK;
}

const kvro_backend kvro__backend_crunch = {
    .name = "crunch",
    .description = "a tree compiled into the program (mkkv crunch, kvro_open_crunch)",
    .close = crunch_close,
    .stat = crunch_stat,
    .read = crunch_read,
    .list = crunch_list,
    .locate = crunch_locate,
    .each = crunch_each,
    .stats = crunch_stats,
};

kvro_status kvro_open_crunch(const kvro_crunch *table, kvro **kv, kvro_error *err)
{
    kvro__error_clear(err);
    if (kv)
        *kv = NULL;
    if (!table || !kv)
        return kvro_error_set(err, KVRO_E_INVALID, "NULL argument");
    char source[80];
    snprintf(source, sizeof source, "crunch:%.64s", table->magic == KVRO_CRUNCH_MAGIC && table->name
                                                        ? table->name
                                                        : "?");
    if (table->magic != KVRO_CRUNCH_MAGIC)
        return kvro_error_context(
            err, kvro_error_set(err, KVRO_E_CORRUPT, "not a crunched table (bad magic)"), source,
            "");
    if (table->version != KVRO_CRUNCH_VERSION)
        return kvro_error_context(
            err,
            kvro_error_set(err, KVRO_E_UNSUPPORTED,
                           "table layout %u, this kvro (%s) reads layout %u: regenerate it "
                           "with this kvro's mkkv crunch",
                           (unsigned)table->version, KVRO_VERSION_STRING, KVRO_CRUNCH_VERSION),
            source, "");
    crunch *c = calloc(1, sizeof *c);
    if (!c)
        return kvro_error_set(err, KVRO_E_NOMEM, "cannot allocate a handle");
    c->t = table;
    /* An empty table's data may be NULL: the I/O object wants a buffer. */
    static const unsigned char none[1];
    kvro_status s = kvro_io_from_memory(table->data ? (const void *)table->data : none,
                                        (size_t)table->data_size, &c->io, err);
    if (s == KVRO_OK)
        s = kvro__kv_new(&kvro__backend_crunch, c, "crunch", source, kv, err);
    if (s != KVRO_OK) {
        kvro_io_close(c->io);
        free(c);
        return kvro_error_context(err, s, source, "");
    }
    return KVRO_OK;
}

kvro_status kvro_sha256(kvro *kv, const char *key, unsigned char out[32], kvro_error *err)
{
    kvro__handle *h = kv ? &kv->h : NULL;
    BEGIN(h, key, norm);
    if (!out)
        return END(h, key, kvro_error_set(err, KVRO_E_INVALID, "NULL result pointer"));
    if (h->b != &kvro__backend_crunch)
        return END(h, key,
                   kvro_error_set(err, KVRO_E_UNSUPPORTED, "%s: no SHA-256 is stored",
                                  h->b->name));
    const kvro_crunch_entry *e = NULL;
    kvro_status s = file_of(h->self, norm, &e, err);
    if (s == KVRO_OK)
        memcpy(out, e->sha256, 32);
    return END(h, key, s);
}
