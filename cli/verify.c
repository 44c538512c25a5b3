/*
 * verify.c — mkkv verify SOURCE DIR: does SOURCE hold exactly the tree of
 * host directory DIR?
 *
 * Both sides are listed through the same KV_RO API, in step by sorted
 * name, without following links (kvro_list_info with KVRO_NOFOLLOW): a
 * link is compared as a link, and no link can lead the walk round a loop
 * or out of the tree. "Exactly" means, by default, the same keys on each
 * side, each of the same kind (file, directory, symbolic link), the same
 * bytes in every file and the same target text in every link — a link's
 * target is its content. --metadata adds modes and mtimes, the latter at
 * the coarser of the two sides' precisions (a ustar header has whole
 * seconds, a host directory nanoseconds).
 *
 * The walk compares names, kinds, link targets and metadata; the files'
 * bytes are compared after it, in the order SOURCE stores them (kvro_each),
 * each value read once, a slice at a time from each side: an archive is
 * read front to back once, a .tar.gz inflated once — in a thread of its
 * own, beside the comparing (see "values"). An entry that cannot be listed
 * or read is reported and the walk goes on, so one bad member does not
 * hide the state of the rest.
 */
#include "cli.h"

#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { OPT_METADATA = OPT_FIRST_CMD };

#define NSEC_PER_SEC 1000000000

typedef struct side {
    kvro *kv;
    const char *name; /* as messages show it */
} side;

/* One entry of a directory listing, with the lstat the listing made. */
typedef struct entry {
    char *name;
    kvro_status status; /* of describing this entry; INFO is valid if KVRO_OK */
    kvro_info info;
} entry;

typedef struct listing {
    entry *v;
    size_t n, cap;
    bool oom;
} listing;

/* A file found on both sides with the same kind, its bytes still to be
 * compared: after the walk, in the order SOURCE stores them. */
typedef struct pending {
    char *key;
    int64_t size_a, size_b;
    bool done;        /* reached by the reader (its own) */
    atomic_bool stop; /* the comparer has said what there is to say about it */
} pending;

typedef struct verify_ctx {
    side a, b; /* SOURCE, DIR */
    bool metadata;
    pending *todo;
    size_t ntodo, todo_cap;
    int64_t files, dirs, links, bytes, diffs, errors;
    progress_line p;
} verify_ctx;

/* ------------------------------------------------------------ reporting */

/* One line of the report, on standard output. */
__attribute__((format(printf, 2, 3))) static void difference(verify_ctx *v, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    progress_done(&v->p);
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    v->diffs++;
}

/* An error on standard error; the walk goes on. */
static void failed(verify_ctx *v, const kvro_error *err)
{
    progress_done(&v->p);
    report(err);
    v->errors++;
}

static void out_of_memory(verify_ctx *v, const side *s, const char *key)
{
    kvro_error err;
    kvro_error_set(&err, KVRO_E_NOMEM, "out of memory");
    error_about(&err, kvro_source(s->kv), key);
    failed(v, &err);
}

/* The listing could not describe KEY (STATUS alone): ask once more for the
 * cause in full, which says more than a status ("leads outside the root"). */
static void entry_failed(verify_ctx *v, const side *s, const char *key, kvro_status status)
{
    kvro_error err;
    kvro_info ignored;
    if (kvro_lstat(s->kv, key, &ignored, &err) == KVRO_OK) {
        kvro_error_set(&err, status, "%s", kvro_status_str(status));
        error_about(&err, kvro_source(s->kv), key);
    }
    failed(v, &err);
}

/* KEY as the report shows it: the root as "/". */
static const char *shown(const char *key)
{
    return *key ? quoted(key) : "/";
}

static const char *kind_name(kvro_kind k)
{
    switch (k) {
    case KVRO_KIND_FILE: return "a file";
    case KVRO_KIND_DIR: return "a directory";
    case KVRO_KIND_LINK: return "a symbolic link";
    }
    return "an entry of unknown kind";
}

/* "1 file", "2 files": into BUF, returned. */
static const char *count(char *buf, size_t size, int64_t n, const char *one, const char *many)
{
    snprintf(buf, size, "%lld %s", (long long)n, n == 1 ? one : many);
    return buf;
}

/* -------------------------------------------------------------- listing */

static int collect(void *arg, const char *name, kvro_status status, const kvro_info *info)
{
    listing *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 32;
        entry *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return l->oom = true;
        l->v = v;
        l->cap = cap;
    }
    entry *e = &l->v[l->n];
    if (!(e->name = strdup(name)))
        return l->oom = true;
    e->status = status == KVRO_OK && !info ? KVRO_E_IO : status;
    if (info)
        e->info = *info;
    else
        memset(&e->info, 0, sizeof e->info);
    l->n++;
    return 0;
}

static void listing_free(listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Lists DIR on side S; false (reported) if it cannot. */
static bool list_side(verify_ctx *v, const side *s, const char *dir, listing *l)
{
    kvro_error err;
    memset(l, 0, sizeof *l);
    kvro_status st = kvro_list_info(s->kv, dir, KVRO_NOFOLLOW, collect, l, &err);
    if (st == KVRO_OK && l->oom) { /* a cut listing must not pass for a whole one */
        kvro_error_set(&err, KVRO_E_NOMEM, "out of memory listing it");
        error_about(&err, kvro_source(s->kv), dir);
        st = KVRO_E_NOMEM;
    }
    if (st == KVRO_OK)
        return true;
    listing_free(l);
    failed(v, &err);
    return false;
}

/* ------------------------------------------------------------- metadata */

/* The precision a time carries, in nanoseconds, judged by its fraction: a
 * source without fractions (a ustar header) stores none, one with
 * microseconds leaves the last three digits zero. */
static int32_t precision(int32_t nsec)
{
    if (nsec == 0)
        return NSEC_PER_SEC;
    int32_t g = 1;
    while (g < NSEC_PER_SEC / 10 && nsec % (g * 10) == 0)
        g *= 10;
    return g;
}

/* Whether the source recorded a time for this entry at all: an implied tar
 * directory has no header, so no time and no mode. */
static bool has_time(const kvro_info *i)
{
    return i->mtime != 0 || i->mtime_nsec != 0 || i->has_mode;
}

/* "2024-05-01T12:00:00.25Z", to precision G. */
static void format_time(const kvro_info *i, int32_t g, char *buf, size_t size)
{
    time_t t = (time_t)i->mtime;
    struct tm tm;
    size_t n = 0;
    if ((int64_t)t == i->mtime && gmtime_r(&t, &tm))
        n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0)
        n = (size_t)snprintf(buf, size, "@%lld", (long long)i->mtime);
    int digits = 0;
    for (int32_t x = g; x < NSEC_PER_SEC; x *= 10)
        digits++;
    if (digits && n < size)
        n += (size_t)snprintf(buf + n, size - n, ".%0*d", digits, (int)(i->mtime_nsec / g));
    if (n < size)
        snprintf(buf + n, size - n, "Z");
}

/* Modes (not of links: Linux has no use for them) and mtimes, where both
 * sides have them. */
static void compare_metadata(verify_ctx *v, const char *key, const kvro_info *ia,
                             const kvro_info *ib)
{
    if (ia->kind != KVRO_KIND_LINK && ia->has_mode && ib->has_mode &&
        (ia->mode & 07777) != (ib->mode & 07777))
        difference(v, "mode differs: %s: %04o in %s, %04o in %s", shown(key),
                   (unsigned)(ia->mode & 07777), quoted(v->a.name), (unsigned)(ib->mode & 07777),
                   quoted(v->b.name));
    if (!has_time(ia) || !has_time(ib))
        return;
    int32_t ga = precision(ia->mtime_nsec), gb = precision(ib->mtime_nsec);
    int32_t g = ga > gb ? ga : gb;
    if (ia->mtime == ib->mtime && ia->mtime_nsec / g == ib->mtime_nsec / g)
        return;
    char ta[64], tb[64];
    format_time(ia, g, ta, sizeof ta);
    format_time(ib, g, tb, sizeof tb);
    difference(v, "mtime differs: %s: %s in %s, %s in %s", shown(key), ta, quoted(v->a.name), tb,
               quoted(v->b.name));
}

/* --------------------------------------------------------------- values */

/* The files' bytes are compared in two threads, as tar -dz is with gzip
 * beside it: a reader walks SOURCE in storage order and reads each value
 * (inflating a .tar.gz) into a ring of buffers, while the main thread reads
 * the same bytes from DIR and compares. On two cores the inflating and the
 * directory's reads overlap. The main thread alone prints, in the order the
 * reader queued things, so the report is the one a single thread gives:
 * the reader queues a chunk, a size difference or an error, never a
 * message. Memory is bounded: RING bytes of values in flight, a value
 * larger than SLICE queued a slice at a time. The ring is kept small so
 * that what the reader wrote is still in a cache when it is compared
 * (with 4 MiB, comparing small files cost a tenth more CPU); DIR's side is
 * read in larger windows (DWINDOW), each read of a host file being an
 * open, a stat and a close. */
enum {
    RING = 1 << 20,    /* bytes of SOURCE's values queued at most */
    SLICE = 256 << 10, /* the most of one value one item holds (at most RING / 4) */
    DWINDOW = 1 << 20, /* bytes of DIR's value read at once (more than SLICE) */
    QUEUE = 256,       /* items queued at most */
    /* A thread that waits is woken only once there is a batch for it: the
     * comparer once this many items or bytes are queued, the reader once
     * the queue is half empty. Waking either for every small file would
     * cost more than the comparing. */
    WAKE_ITEMS = QUEUE / 8,
    WAKE_BYTES = RING / 8,
};

_Static_assert(DWINDOW > SLICE && 4 * SLICE <= RING, "a slice fits a window, and four the ring");

typedef enum item_kind {
    IT_CHUNK, /* SLICE bytes or fewer of a value, from OFF */
    IT_SIZE,  /* the sizes differ: nothing was read */
    IT_ERROR, /* ERR; about file FILE (whose comparison ends) unless FILE is NONE */
    IT_END,   /* nothing more */
} item_kind;

#define NONE SIZE_MAX

typedef struct item {
    item_kind kind;
    size_t file;       /* index in the sorted todo list */
    int64_t off;       /* IT_CHUNK: where in the value the bytes start */
    int64_t want, got; /* ... bytes asked of SOURCE, and given */
    size_t at, span;   /* ... where they lie in the ring; bytes of it held (a skipped tail too) */
    kvro_error err;    /* IT_ERROR */
} item;

typedef struct pipeline {
    verify_ctx *v;
    pthread_mutex_t mu;
    pthread_cond_t can_put, can_take; /* the reader waits on the first, the comparer the other */
    item q[QUEUE];
    size_t q_first, q_n; /* the oldest item queued, and how many are */
    char *ring;          /* RING bytes */
    size_t ring_next, ring_used;
    char *dbuf;         /* DWINDOW bytes of DIR's value: */
    size_t dfile;       /* ... of file DFILE (NONE: none yet), */
    int64_t doff, dlen; /* ... from DOFF, DLEN of them, */
    bool dend;          /* ... and DLEN was all there was */
    bool threaded;      /* false: each item is compared as soon as it is queued */
    bool reader_waits, comparer_waits;
} pipeline;

/* Marks file I done: the reader reads no more of it. */
static void stop_file(verify_ctx *v, size_t i)
{
    atomic_store_explicit(&v->todo[i].stop, true, memory_order_relaxed);
}

/* DIR's bytes for IT's: *B, *NB of them (fewer than the item's at the
 * end, one more where the value is meant to end, so that a file grown
 * since it was listed shows as a difference there), from the window, read
 * again when it does not hold them. False (reported) if that fails. */
static bool dir_bytes(pipeline *pl, const item *it, const pending *p, const char **b, int64_t *nb)
{
    verify_ctx *v = pl->v;
    int64_t ask = it->want + (it->off + it->want == p->size_b);
    if (pl->dfile != it->file || it->off < pl->doff ||
        (it->off + ask > pl->doff + pl->dlen && !pl->dend)) {
        int64_t len = p->size_b + 1 - it->off; /* to one past the end, or a window */
        if (len > DWINDOW)
            len = DWINDOW;
        if (len < ask)
            len = ask;
        kvro_error err;
        pl->dfile = NONE;
        if (kvro_read(v->b.kv, p->key, it->off, len, pl->dbuf, &pl->dlen, &err) != KVRO_OK) {
            stop_file(v, it->file);
            failed(v, &err);
            return false;
        }
        pl->dfile = it->file;
        pl->doff = it->off;
        pl->dend = pl->dlen < len;
    }
    int64_t from = it->off - pl->doff, have = pl->dlen - from;
    *b = have > 0 ? pl->dbuf + from : pl->dbuf;
    *nb = have < 0 ? 0 : have < ask ? have : ask;
    return true;
}

/* Compares item IT, taken from the queue; main thread only. */
static void compare_item(pipeline *pl, const item *it)
{
    verify_ctx *v = pl->v;
    pending *p = it->file == NONE ? NULL : &v->todo[it->file];
    switch (it->kind) {
    case IT_SIZE:
        difference(v, "size differs: %s: %lld bytes in %s, %lld in %s", quoted(p->key),
                   (long long)p->size_a, quoted(v->a.name), (long long)p->size_b,
                   quoted(v->b.name));
        return;
    case IT_ERROR:
        if (p)
            stop_file(v, it->file);
        failed(v, &it->err);
        return;
    case IT_END: return;
    case IT_CHUNK: break;
    }
    if (atomic_load_explicit(&p->stop, memory_order_relaxed))
        return; /* a difference earlier in the value was reported */
    const char *b;
    int64_t nb;
    if (!dir_bytes(pl, it, p, &b, &nb))
        return;
    const char *a = pl->ring + it->at;
    int64_t n = it->got < nb ? it->got : nb;
    /* n == 0 before the end: a file changed under us; say where. */
    if (n == 0 || it->got != nb || memcmp(a, b, (size_t)n) != 0) {
        int64_t at = 0;
        while (at < n && a[at] == b[at])
            at++;
        stop_file(v, it->file);
        difference(v, "content differs: %s: first difference at byte %lld", quoted(p->key),
                   (long long)(it->off + at));
        return;
    }
    v->bytes += n;
    progress_update(&v->p, v->files, v->bytes, 0);
}

/* Frees the oldest item and its bytes; under the lock. */
static void release_oldest(pipeline *pl)
{
    pl->ring_used -= pl->q[pl->q_first].span;
    pl->q_first = (pl->q_first + 1) % QUEUE;
    pl->q_n--;
}

/* The next item's slot, with NEED bytes of the ring (contiguous) for its
 * data, waiting for room; the reader fills it and queues it with put_end. */
static item *put_begin(pipeline *pl, item_kind kind, size_t file, size_t need)
{
    size_t at = pl->ring_next, skip = 0;
    if (need && at + need > RING) { /* no room before the end: start over at 0 */
        skip = RING - at;
        at = 0;
    }
    pthread_mutex_lock(&pl->mu);
    while (pl->q_n == QUEUE || pl->ring_used + skip + need > RING) {
        pl->reader_waits = true;
        pthread_cond_wait(&pl->can_put, &pl->mu);
    }
    pl->ring_used += skip + need;
    item *it = &pl->q[(pl->q_first + pl->q_n) % QUEUE];
    pthread_mutex_unlock(&pl->mu);
    pl->ring_next = (at + need) % RING;
    it->kind = kind;
    it->file = file;
    it->off = it->want = it->got = 0;
    it->at = at;
    it->span = skip + need;
    return it;
}

/* Queues the item put_begin gave (or, single-threaded, compares it). */
static void put_end(pipeline *pl)
{
    pthread_mutex_lock(&pl->mu);
    pl->q_n++;
    if (pl->threaded) {
        if (pl->comparer_waits && (pl->q_n >= WAKE_ITEMS || pl->ring_used >= WAKE_BYTES ||
                                   pl->q[(pl->q_first + pl->q_n - 1) % QUEUE].kind == IT_END)) {
            pl->comparer_waits = false;
            pthread_cond_signal(&pl->can_take);
        }
    } else {
        compare_item(pl, &pl->q[pl->q_first]);
        release_oldest(pl);
    }
    pthread_mutex_unlock(&pl->mu);
}

/* Reads file I of SOURCE into the queue, a slice at a time, unless the
 * sizes differ or the comparer has stopped it. */
static void read_file(pipeline *pl, size_t i)
{
    verify_ctx *v = pl->v;
    const pending *p = &v->todo[i];
    if (p->size_a != p->size_b) {
        put_begin(pl, IT_SIZE, i, 0);
        put_end(pl);
        return;
    }
    for (int64_t off = 0; off < p->size_a;) {
        if (atomic_load_explicit(&p->stop, memory_order_relaxed))
            return;
        int64_t want = p->size_a - off < SLICE ? p->size_a - off : SLICE;
        item *it = put_begin(pl, IT_CHUNK, i, (size_t)want);
        it->off = off;
        it->want = want;
        if (kvro_read(v->a.kv, p->key, off, want, pl->ring + it->at, &it->got, &it->err) != KVRO_OK)
            it->kind = IT_ERROR;
        put_end(pl);
        if (it->kind == IT_ERROR || it->got == 0) /* the comparer says what happened */
            return;
        off += it->got;
    }
}

static int by_key(const void *x, const void *y)
{
    return strcmp(((const pending *)x)->key, ((const pending *)y)->key);
}

static int in_storage_order(void *arg, const char *key, kvro_status s, const kvro_info *info)
{
    pipeline *pl = arg;
    verify_ctx *v = pl->v;
    (void)s, (void)info;
    pending want = {.key = (char *)key};
    pending *p = bsearch(&want, v->todo, v->ntodo, sizeof *v->todo, by_key);
    if (p && !p->done) {
        p->done = true;
        read_file(pl, (size_t)(p - v->todo));
    }
    return 0;
}

/* The reader: every file found on both sides, in the order SOURCE stores
 * them (kvro_each), so a .tar.gz is inflated once front to back and a
 * plain tar read sequentially, whatever the names' order; then any the
 * pass did not reach, by name. */
static void *read_all(void *arg)
{
    pipeline *pl = arg;
    verify_ctx *v = pl->v;
    kvro_error err;
    if (kvro_each(v->a.kv, in_storage_order, pl, &err) != KVRO_OK) {
        item *it = put_begin(pl, IT_ERROR, NONE, 0);
        it->err = err;
        put_end(pl);
    }
    for (size_t i = 0; i < v->ntodo; i++)
        if (!v->todo[i].done)
            read_file(pl, i);
    put_begin(pl, IT_END, NONE, 0);
    put_end(pl);
    return NULL;
}

/* The comparer: items in the order they were queued, until IT_END. */
static void compare_all(pipeline *pl)
{
    pthread_mutex_lock(&pl->mu);
    for (;;) {
        while (!pl->q_n) {
            pl->comparer_waits = true;
            pthread_cond_wait(&pl->can_take, &pl->mu);
        }
        item *it = &pl->q[pl->q_first];
        pthread_mutex_unlock(&pl->mu); /* the reader does not touch a queued item */
        compare_item(pl, it);
        pthread_mutex_lock(&pl->mu);
        bool end = it->kind == IT_END;
        release_oldest(pl);
        /* Half empty: room for any item (2 * SLICE <= RING / 2). */
        if (pl->reader_waits && pl->q_n <= QUEUE / 2 && pl->ring_used <= RING / 2) {
            pl->reader_waits = false;
            pthread_cond_signal(&pl->can_put);
        }
        if (end)
            break;
    }
    pthread_mutex_unlock(&pl->mu);
}

/* Compares the bytes of every file queued by the walk. */
static void compare_pending(verify_ctx *v)
{
    if (!v->ntodo)
        return;
    qsort(v->todo, v->ntodo, sizeof *v->todo, by_key);
    pipeline *pl = calloc(1, sizeof *pl);
    char *ring = malloc(RING), *dbuf = malloc(DWINDOW);
    if (!pl || !ring || !dbuf) {
        out_of_memory(v, &v->a, "");
        free(pl), free(ring), free(dbuf);
        goto out;
    }
    pl->v = v;
    pl->ring = ring;
    pl->dbuf = dbuf;
    pl->dfile = NONE;
    pthread_mutex_init(&pl->mu, NULL);
    pthread_cond_init(&pl->can_put, NULL);
    pthread_cond_init(&pl->can_take, NULL);
    pthread_t reader;
    /* A thread only for more than one value; without one (none can be
     * started), all is done here, in the same order. */
    pl->threaded = v->ntodo > 1; /* before the reader looks */
    if (pl->threaded && pthread_create(&reader, NULL, read_all, pl) != 0)
        pl->threaded = false;
    if (pl->threaded) {
        compare_all(pl);
        pthread_join(reader, NULL);
    } else {
        read_all(pl);
    }
    pthread_cond_destroy(&pl->can_take);
    pthread_cond_destroy(&pl->can_put);
    pthread_mutex_destroy(&pl->mu);
    free(ring);
    free(dbuf);
    free(pl);
out:
    for (size_t i = 0; i < v->ntodo; i++)
        free(v->todo[i].key);
    free(v->todo);
    v->todo = NULL;
    v->ntodo = v->todo_cap = 0;
}

/* Queues file KEY for compare_pending. */
static void compare_files(verify_ctx *v, const char *key, const kvro_info *ia, const kvro_info *ib)
{
    v->files++;
    if (v->ntodo == v->todo_cap) {
        size_t cap = v->todo_cap ? v->todo_cap * 2 : 256;
        pending *t = realloc(v->todo, cap * sizeof *t);
        if (!t) {
            out_of_memory(v, &v->a, key);
            return;
        }
        v->todo = t;
        v->todo_cap = cap;
    }
    char *k = strdup(key);
    if (!k) {
        out_of_memory(v, &v->a, key);
        return;
    }
    v->todo[v->ntodo++] = (pending){.key = k, .size_a = ia->size, .size_b = ib->size};
}

/* Link KEY's target text on side S, malloc'd; NULL (reported) if not. */
static char *read_target(verify_ctx *v, const side *s, const char *key)
{
    size_t size = 256, len = 0;
    for (;;) {
        char *buf = malloc(size);
        if (!buf) {
            out_of_memory(v, s, key);
            return NULL;
        }
        kvro_error err;
        if (kvro_readlink(s->kv, key, buf, size, &len, &err) != KVRO_OK) {
            free(buf);
            failed(v, &err);
            return NULL;
        }
        if (len < size)
            return buf;
        free(buf); /* too small: now we know the length */
        size = len + 1;
    }
}

static void compare_links(verify_ctx *v, const char *key)
{
    v->links++;
    char *ta = read_target(v, &v->a, key);
    char *tb = ta ? read_target(v, &v->b, key) : NULL;
    if (ta && tb && strcmp(ta, tb) != 0)
        difference(v, "link target differs: %s: %s in %s, %s in %s", quoted(key), quoted(ta),
                   quoted(v->a.name), quoted(tb), quoted(v->b.name));
    free(ta);
    free(tb);
}

/* ------------------------------------------------------------- the walk */

static void compare_dirs(verify_ctx *v, const char *dir);

/* KEY is on both sides, as EA and EB. */
static void compare_entry(verify_ctx *v, const char *key, const entry *ea, const entry *eb)
{
    if (ea->status != KVRO_OK || eb->status != KVRO_OK) {
        if (ea->status != KVRO_OK)
            entry_failed(v, &v->a, key, ea->status);
        if (eb->status != KVRO_OK)
            entry_failed(v, &v->b, key, eb->status);
        return;
    }
    const kvro_info *ia = &ea->info, *ib = &eb->info;
    if (ia->kind != ib->kind) {
        difference(v, "kind differs: %s: %s in %s, %s in %s", quoted(key), kind_name(ia->kind),
                   quoted(v->a.name), kind_name(ib->kind), quoted(v->b.name));
        return;
    }
    if (v->metadata) /* before a directory's contents */
        compare_metadata(v, key, ia, ib);
    switch (ia->kind) {
    case KVRO_KIND_DIR: compare_dirs(v, key); break;
    case KVRO_KIND_LINK: compare_links(v, key); break;
    case KVRO_KIND_FILE: compare_files(v, key, ia, ib); break;
    default: {
        kvro_error err;
        kvro_error_set(&err, KVRO_E_UNSUPPORTED, "an entry of a kind mkkv does not know (%d)",
                       (int)ia->kind);
        error_about(&err, kvro_source(v->a.kv), key);
        failed(v, &err);
    }
    }
}

static void compare_dirs(verify_ctx *v, const char *dir)
{
    listing la, lb;
    if (!list_side(v, &v->a, dir, &la))
        return;
    if (!list_side(v, &v->b, dir, &lb)) {
        listing_free(&la);
        return;
    }
    v->dirs++;
    size_t i = 0, j = 0;
    while (i < la.n || j < lb.n) {
        int cmp = i == la.n ? 1 : j == lb.n ? -1 : strcmp(la.v[i].name, lb.v[j].name);
        const char *name = cmp <= 0 ? la.v[i].name : lb.v[j].name;
        char *key = key_join(dir, name);
        if (!key) {
            out_of_memory(v, &v->a, dir);
            break;
        }
        if (cmp < 0)
            difference(v, "only in %s: %s", quoted(v->a.name), quoted(key));
        else if (cmp > 0)
            difference(v, "only in %s: %s", quoted(v->b.name), quoted(key));
        else
            compare_entry(v, key, &la.v[i], &lb.v[j]);
        free(key);
        i += cmp <= 0;
        j += cmp >= 0;
    }
    listing_free(&la);
    listing_free(&lb);
}

/* The root has no entry in any listing: its metadata is asked for. */
static void compare_root_metadata(verify_ctx *v)
{
    kvro_info ia, ib;
    kvro_error err;
    if (kvro_lstat(v->a.kv, "", &ia, &err) != KVRO_OK ||
        kvro_lstat(v->b.kv, "", &ib, &err) != KVRO_OK)
        failed(v, &err);
    else
        compare_metadata(v, "", &ia, &ib);
}

/* ------------------------------------------------------------- the verb */

/* What was compared, for the last line: "4 files, 5 directories, 1 link,
 * 100018 bytes", and the size in binary units too once it is large. */
static void print_match(const verify_ctx *v)
{
    char files[48], dirs[48], links[48], bytes[48], human[48] = "";
    count(files, sizeof files, v->files, "file", "files");
    count(dirs, sizeof dirs, v->dirs, "directory", "directories");
    count(links, sizeof links, v->links, "link", "links");
    count(bytes, sizeof bytes, v->bytes, "byte", "bytes");
    if (v->bytes >= 1 << 20) {
        char h[32];
        human_bytes(h, sizeof h, v->bytes);
        snprintf(human, sizeof human, " (%s)", h);
    }
    printf("%s matches %s%s: %s, %s%s%s, %s%s\n", quoted(v->a.name), quoted(v->b.name),
           v->metadata ? ", modes and mtimes included" : "", files, dirs, v->links ? ", " : "",
           v->links ? links : "", bytes, human);
}

/* Why the exit status is 1, on standard error. */
static void print_mismatch(const verify_ctx *v)
{
    char diffs[48], errors[48];
    count(diffs, sizeof diffs, v->diffs, "difference", "differences");
    count(errors, sizeof errors, v->errors, "error", "errors");
    const char *a = quoted(v->a.name), *b = quoted(v->b.name);
    if (v->diffs && v->errors)
        fprintf(stderr, "mkkv: verify: %s and %s differ: %s, and %s reading them (above)\n", a, b,
                diffs, errors);
    else if (v->diffs)
        fprintf(stderr, "mkkv: verify: %s and %s differ: %s\n", a, b, diffs);
    else
        fprintf(stderr,
                "mkkv: verify: %s and %s could not be compared in full: %s reading them "
                "(above); the rest matches\n",
                a, b, errors);
}

static int verify_opt(int c, const char *arg, void *ctx)
{
    (void)arg;
    if (c == OPT_METADATA)
        ((verify_ctx *)ctx)->metadata = true;
    return -1;
}

static int verify_run(int argc, char **argv)
{
    static const struct option longs[] = {COMMON_LONG_OPTIONS,
                                          {"metadata", no_argument, 0, OPT_METADATA},
                                          {0, 0, 0, 0}};
    common_opts o = {0};
    verify_ctx v = {0};
    int rc =
        parse_args(&cmd_verify, argc, argv, COMMON_SHORT_OPTIONS, longs, &o, verify_opt, &v);
    if (rc >= 0)
        return rc;
    if (argc - optind != 2)
        return usage_error(&cmd_verify, "expects SOURCE DIR");
    if (source_is_stdin(argv[optind + 1]))
        return usage_error(&cmd_verify, "DIR is a host directory, not standard input (write ./- "
                                        "for a directory named '-')");
    v.a.name = source_name(argv[optind]);
    v.b.name = argv[optind + 1];
    common_opts dir_opts = {.open.backend = "dir", .quiet = o.quiet, .cmd = &cmd_verify};
    if ((rc = open_source(argv[optind], &o, &v.a.kv)) != EXIT_OK)
        return rc;
    if ((rc = open_source(v.b.name, &dir_opts, &v.b.kv)) != EXIT_OK) {
        kvro_close(v.a.kv);
        return rc;
    }
    progress_start(&v.p, "verifying", o.quiet);
    if (v.metadata)
        compare_root_metadata(&v);
    compare_dirs(&v, "");
    compare_pending(&v);
    progress_done(&v.p);
    if (v.diffs || v.errors) {
        print_mismatch(&v);
        rc = EXIT_FAIL;
    } else if (!o.quiet) {
        print_match(&v);
    }
    kvro_close(v.a.kv);
    kvro_close(v.b.kv);
    return rc;
}

const command cmd_verify = {
    "verify", verify_run, "check that a source holds exactly a directory's tree",
    "Usage: mkkv verify [OPTIONS] SOURCE DIR\n"
    "Check that SOURCE holds exactly the tree of host directory DIR. By default\n"
    "that means the same keys on each side, each of the same kind (a file, a\n"
    "directory or a symbolic link), every file with the same bytes and every\n"
    "link with the same target text. Links are compared as links, never\n"
    "followed: a link on one side and a file (even with the same bytes) on the\n"
    "other is a difference in kind. Files are read in the order SOURCE stores\n"
    "them, so an archive is read (a .tar.gz inflated) once. Modes and\n"
    "modification times count only with --metadata. (A source whose backend\n"
    "does not report links shows each as what it leads to.)\n"
    "\n"
    "Each difference is one line on standard output:\n"
    "  only in SOURCE: KEY            only in DIR: KEY\n"
    "  kind differs: KEY: a symbolic link in SOURCE, a file in DIR\n"
    "  size differs: KEY: N bytes in SOURCE, M in DIR\n"
    "  content differs: KEY: first difference at byte N\n"
    "  link target differs: KEY: TARGET in SOURCE, TARGET in DIR\n"
    "  mode differs: KEY: 0644 in SOURCE, 0755 in DIR        (--metadata)\n"
    "  mtime differs: KEY: TIME in SOURCE, TIME in DIR       (--metadata)\n"
    "An entry that cannot be read is reported on standard error and the rest is\n"
    "still compared. If all matches, a summary goes to standard output (unless\n"
    "-q); otherwise the count of differences and errors to standard error.\n" QUOTING_HELP
    "Exit status 0 if they match, 1 if they differ or something could not be\n"
    "read, 2 on bad usage.\n"
    "\n"
    "      --metadata        also compare modes (not a link's) and mtimes; mtimes\n"
    "                        to the coarser of the two sides' precisions: whole\n"
    "                        seconds if either side has no fractions (a ustar or\n"
    "                        GNU-format tar). An entry whose source records no\n"
    "                        time and no mode (a tar directory implied by its\n"
    "                        members) is not compared on them.\n" COMMON_HELP "\n"
    "-t, --image-offset and --image-length apply to SOURCE; DIR is always read as\n"
    "a host directory.\n" SOURCE_HELP,
};
