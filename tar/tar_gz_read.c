/*
 * tar_gz_read.c — reads from a gzip-compressed tar at any offset, through
 * the access points that tar_gz_build.c builds (see there for what they
 * are). Also here, below the builder: the tar_gz object's life (init,
 * free) and kvro__tar_gz_refill, which both sides read the archive with.
 *
 * Reading goes through a per-handle cache of 64 KiB chunks of the
 * uncompressed stream, aligned and keyed by their number, and of cursors —
 * inflate states — parked at chunk starts, all within one memory budget
 * (kvro_options.read_cache_bytes; the default and why: tar_gz.h). A read
 * copies from the chunks it covers; a missing chunk is inflated by the
 * reader that wants it (others wanting it wait for it, and nobody holds the
 * lock while inflating) with the cursor parked closest before it, else one
 * started at the nearest access point, keeping the whole chunks it passes
 * on the way; the cursor is parked again at the next chunk start. So a
 * sequential stream costs one chunk and one cursor however many streams
 * run, small files sharing a stretch of the archive inflate it once in
 * any order, and what is kept is bounded by bytes, never by a count.
 * Cursors use raw inflate and step over member trailers and headers
 * themselves; the CRCs were checked when the index was built.
 *
 * A loaded index keeps its windows in the cache file and preads one (at
 * most TAR_GZ_WINDOW_ZMAX bytes) when a cursor starts at its point, checking
 * the window's own CRC-32 first. A window that fails (damaged, or the file
 * cut since open) is not an error: the read starts from the point before
 * instead, down to point 0, which needs no window — slower, never wrong —
 * and the cache file is unlinked so the next open rebuilds it. The file is
 * read, never mapped: a truncation under a mapping would be a SIGBUS.
 */
#include "tar_gz.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* A cursor's compressed input buffer: reads of the archive this size. */
#define CURSOR_IN (64 << 10)
/* A cursor moving forward over chunks leaves a copy of itself parked every
 * this many chunks (256 KiB of the stream): a later read between two
 * access points then starts from the copy before it, not from the point.
 * A copy holds no input buffer, so it costs ~40 KiB (zlib's state and
 * window). */
#define CHECKPOINT_EVERY 4

static kvro_status nomem(kvro_error *err)
{
    return kvro_error_set(err, KVRO_E_NOMEM, "gzip: out of memory");
}

kvro_status kvro__tar_gz_refill(kvro_io *io, z_stream *z, unsigned char *in, size_t cap,
                                int64_t *read_off, size_t *got, kvro_error *err)
{
    size_t keep = z->avail_in;
    if (keep && z->next_in != in)
        memmove(in, z->next_in, keep);
    kvro_status s = kvro_io_read(io, *read_off, in + keep, cap - keep, got, err);
    if (s != KVRO_OK)
        return s;
    *read_off += (int64_t)*got;
    z->next_in = in;
    z->avail_in = (uInt)(keep + *got);
    return KVRO_OK;
}

/* $KVRO_READ_CACHE: bytes, or KiB, MiB, GiB with a K, M or G suffix; 0
 * if unset or not a positive size. */
static int64_t env_budget(void)
{
    const char *env = getenv("KVRO_READ_CACHE");
    if (!env || !*env)
        return 0;
    char *end;
    long long v = strtoll(env, &end, 10);
    int shift = 0;
    if (*end && !end[1])
        shift = *end == 'K' || *end == 'k' ? 10 : *end == 'M' || *end == 'm' ? 20
              : *end == 'G' || *end == 'g' ? 30 : -1;
    else if (*end)
        shift = -1;
    if (shift < 0 || v <= 0 || v > (INT64_MAX >> shift))
        return 0;
    return (int64_t)v << shift;
}

static kvro_status read_init(tar_gz *gz, int64_t read_cache, kvro_error *err)
{
    atomic_init(&gz->read_inflated, 0);
    gz->rc.budget = read_cache > 0 ? read_cache : env_budget();
    if (gz->rc.budget <= 0)
        gz->rc.budget = TAR_GZ_READ_CACHE_DEFAULT;
    gz->rc.rng = 0x9E3779B97F4A7C15u;
    if (pthread_mutex_init(&gz->rc.lock, NULL) != 0)
        return nomem(err);
    if (pthread_cond_init(&gz->rc.loaded, NULL) != 0) {
        pthread_mutex_destroy(&gz->rc.lock);
        return nomem(err);
    }
    return KVRO_OK;
}

static void item_free(tar_gz_item *it);

static void read_free(tar_gz *gz)
{
    for (size_t i = 0; i < gz->rc.n; i++)
        item_free(gz->rc.items[i]);
    free(gz->rc.items);
    free(gz->rc.buckets);
    pthread_cond_destroy(&gz->rc.loaded);
    pthread_mutex_destroy(&gz->rc.lock);
}

kvro_status kvro__tar_gz_init(tar_gz *gz, kvro_io *io, int64_t csize, int64_t read_cache,
                              kvro_error *err)
{
    memset(gz, 0, sizeof *gz);
    gz->io = io;
    gz->csize = csize;
    gz->index_fd = -1;
    atomic_init(&gz->index_dropped, false);
    atomic_init(&gz->damaged_windows, 0);
    return read_init(gz, read_cache, err);
}

void kvro__tar_gz_free(tar_gz *gz)
{
    read_free(gz);
    if (gz->index_fd >= 0)
        close(gz->index_fd);
    free(gz->index_path);
    free(gz->points);
    free(gz->wins);
    memset(gz, 0, sizeof *gz);
}

/* The cache holds two kinds of item, both keyed by a chunk number: a chunk
 * (TAR_GZ_CHUNK bytes of the stream from KEY * TAR_GZ_CHUNK) and a cursor
 * parked at the start of chunk KEY. */
enum { ITEM_CHUNK, ITEM_CURSOR };
#define NOT_CACHED SIZE_MAX

struct tar_gz_item {
    tar_gz_item *next; /* hash chain */
    int64_t key;
    uint64_t used;  /* tick of the last use: eviction takes the older of two */
    int64_t bytes;  /* what it is charged against the budget */
    size_t slot;    /* in rc.items, or NOT_CACHED */
    int kind;
};

typedef struct chunk {
    tar_gz_item head;
    int pins;     /* readers copying from it: not evictable */
    bool loading; /* a reader is inflating it; others wait on rc.loaded */
    bool priv;    /* no room in the cache: its reader's alone, freed after */
    int64_t len;  /* TAR_GZ_CHUNK, less for the last chunk */
    unsigned char data[];
} chunk;

typedef struct tar_gz_cursor {
    tar_gz_item head;
    z_stream strm;
    int64_t out;      /* uncompressed offset of the next byte it produces */
    int64_t read_off; /* next compressed byte to read */
    bool end;         /* past the last gzip member */
    int64_t zbytes;   /* what zlib allocated for it: the state and the window */
    /* CURSOR_IN bytes; NULL in a checkpoint copy until it runs, which
     * reads again what the cursor it copies had read and zlib had not
     * taken (READ_OFF is then the first byte zlib has not taken: zlib keeps
     * a partial byte itself). A cursor parked after a read keeps its
     * buffer, so that a sequential stream never reads input twice. */
    unsigned char *in;
} tar_gz_cursor;

/* zlib's allocations, counted so that a cursor is charged what it takes
 * (the window is allocated at the first output, not at inflateInit). */
typedef union zhead {
    size_t size;
    max_align_t align;
} zhead;

static voidpf zalloc_counted(voidpf opaque, uInt items, uInt size)
{
    size_t n = (size_t)items * size;
    zhead *h = malloc(sizeof *h + n);
    if (!h)
        return Z_NULL;
    h->size = n;
    *(int64_t *)opaque += (int64_t)(sizeof *h + n);
    return h + 1;
}

static void zfree_counted(voidpf opaque, voidpf p)
{
    zhead *h = (zhead *)p - 1;
    *(int64_t *)opaque -= (int64_t)(sizeof *h + h->size);
    free(h);
}

static int64_t cursor_bytes(const tar_gz_cursor *c)
{
    return (int64_t)sizeof *c + c->zbytes + (c->in ? CURSOR_IN : 0);
}

static void cursor_free(tar_gz_cursor *c)
{
    if (!c)
        return;
    inflateEnd(&c->strm);
    free(c->in);
    free(c);
}



static void item_free(tar_gz_item *it)
{
    if (it->kind == ITEM_CURSOR)
        cursor_free((tar_gz_cursor *)it);
    else
        free(it);
}

/* ----------------------------------------- the cache (all under rc.lock) */

static void charge(tar_gz_rcache *rc, int64_t bytes)
{
    rc->used += bytes;
    if (rc->used > rc->peak)
        rc->peak = rc->used;
}

static size_t bucket_of(const tar_gz_rcache *rc, int kind, int64_t key)
{
    uint64_t h = ((uint64_t)key * 2 + (uint64_t)kind) * 0x9E3779B97F4A7C15u;
    return (size_t)(h >> 32) & (rc->nbuckets - 1);
}

static tar_gz_item *find(const tar_gz_rcache *rc, int kind, int64_t key)
{
    if (!rc->buckets)
        return NULL;
    for (tar_gz_item *it = rc->buckets[bucket_of(rc, kind, key)]; it; it = it->next)
        if (it->key == key && it->kind == kind)
            return it;
    return NULL;
}

/* false (and IT not cached) if the arrays cannot grow. */
static bool cache_insert(tar_gz_rcache *rc, tar_gz_item *it)
{
    if (!rc->buckets) {
        /* One bucket per chunk the budget holds, within reason. */
        size_t nb = 16;
        while (nb < (1u << 16) && (int64_t)nb * TAR_GZ_CHUNK < rc->budget)
            nb *= 2;
        rc->buckets = calloc(nb, sizeof *rc->buckets);
        if (!rc->buckets)
            return false;
        rc->nbuckets = nb;
    }
    if (rc->n == rc->cap) {
        size_t cap = rc->cap ? rc->cap * 2 : 64;
        tar_gz_item **v = realloc(rc->items, cap * sizeof *v);
        if (!v)
            return false;
        rc->items = v;
        rc->cap = cap;
    }
    size_t b = bucket_of(rc, it->kind, it->key);
    it->next = rc->buckets[b];
    rc->buckets[b] = it;
    it->slot = rc->n;
    rc->items[rc->n++] = it;
    it->used = ++rc->tick;
    return true;
}

static void cache_remove(tar_gz_rcache *rc, tar_gz_item *it)
{
    tar_gz_item **pp = &rc->buckets[bucket_of(rc, it->kind, it->key)];
    while (*pp != it)
        pp = &(*pp)->next;
    *pp = it->next;
    tar_gz_item *last = rc->items[--rc->n];
    rc->items[it->slot] = last;
    last->slot = it->slot;
    it->slot = NOT_CACHED;
}

static bool evictable(const tar_gz_item *it)
{
    const chunk *ch = (const chunk *)it;
    return it->kind == ITEM_CURSOR || (!ch->loading && ch->pins == 0);
}

static tar_gz_item *sample(tar_gz_rcache *rc)
{
    rc->rng ^= rc->rng << 13; /* xorshift64 */
    rc->rng ^= rc->rng >> 7;
    rc->rng ^= rc->rng << 17;
    tar_gz_item *it = rc->items[rc->rng % rc->n];
    return evictable(it) ? it : NULL;
}

/* Evicts until NEED more bytes fit the budget; false if they cannot. The
 * victim is the less recently used of two taken at random, not the least
 * recently used of all: round-robin over more streams than the budget
 * holds makes strict LRU evict exactly the item needed next, every time
 * (no hit at all), while a random choice still hits now and then, and the
 * pair still spares what was used just now. */
static bool make_room(tar_gz_rcache *rc, int64_t need)
{
    while (rc->used + need > rc->budget) {
        tar_gz_item *victim = NULL;
        for (int tries = 0; tries < 8 && rc->n && !victim; tries++) {
            tar_gz_item *a = sample(rc), *b = sample(rc);
            victim = !a ? b : !b ? a : a->used < b->used ? a : b;
        }
        for (size_t i = 0; i < rc->n && !victim; i++) /* mostly pinned: look at all */
            if (evictable(rc->items[i]))
                victim = rc->items[i];
        if (!victim)
            return false;
        cache_remove(rc, victim);
        rc->used -= victim->bytes;
        item_free(victim);
    }
    return true;
}

/* A new chunk KEY, loading and pinned: in the cache if there is room (or
 * FORCE, then private to its reader when there is not), else NULL. */
static chunk *chunk_new(tar_gz_rcache *rc, int64_t key, bool force)
{
    int64_t bytes = (int64_t)(sizeof(chunk) + TAR_GZ_CHUNK);
    bool room = make_room(rc, bytes);
    if (!room && !force)
        return NULL;
    chunk *ch = malloc((size_t)bytes);
    if (!ch)
        return NULL;
    *ch = (chunk){.head = {.key = key, .bytes = bytes, .slot = NOT_CACHED, .kind = ITEM_CHUNK},
                  .pins = 1,
                  .loading = true};
    ch->priv = !room || !cache_insert(rc, &ch->head);
    if (ch->priv && !force) {
        free(ch);
        return NULL;
    }
    charge(rc, bytes);
    return ch;
}

/* A loaded (or failed: OK false) chunk is published to those waiting. */
static void chunk_done(tar_gz *gz, chunk *ch, bool ok, bool keep_pin)
{
    tar_gz_rcache *rc = &gz->rc;
    pthread_mutex_lock(&rc->lock);
    ch->loading = false;
    if (!keep_pin)
        ch->pins--;
    if (!ok && !ch->priv)
        cache_remove(rc, &ch->head);
    if (!ok || (ch->priv && !keep_pin)) {
        rc->used -= ch->head.bytes;
        free(ch);
    }
    pthread_cond_broadcast(&rc->loaded);
    pthread_mutex_unlock(&rc->lock);
}

static void chunk_release(tar_gz *gz, chunk *ch)
{
    tar_gz_rcache *rc = &gz->rc;
    pthread_mutex_lock(&rc->lock);
    if (ch->priv) {
        rc->used -= ch->head.bytes;
        free(ch);
    } else {
        ch->pins--;
    }
    pthread_mutex_unlock(&rc->lock);
}

/* ------------------------------------------------------------- cursors */

static kvro_status cursor_refill(tar_gz *gz, tar_gz_cursor *c, size_t *got, kvro_error *err)
{
    return kvro__tar_gz_refill(gz->io, &c->strm, c->in, CURSOR_IN, &c->read_off, got, err);
}

static kvro_status damaged(kvro_error *err, const char *what, int64_t at)
{
    return kvro_error_set(err, KVRO_E_CORRUPT,
                          "gzip: %s at compressed offset %lld (did the archive change after "
                          "it was indexed?)",
                          what, (long long)at);
}

/* Inflates point P's stored window into WIN, reading it from the cache
 * file into BUF (TAR_GZ_WINDOW_ZMAX bytes) if it is not in memory. false
 * if it cannot be read, fails its CRC or does not inflate to its length. */
static bool load_window(const tar_gz *gz, const tar_gz_point *p, unsigned char *buf,
                        unsigned char *win)
{
    const unsigned char *zwin = buf;
    size_t got = 0;
    if (gz->wins)
        zwin = gz->wins + p->win;
    else if (gz->index_fd < 0 || p->win_zlen > TAR_GZ_WINDOW_ZMAX ||
             kvro__pread(gz->index_fd, buf, p->win_zlen, gz->wins_off + (int64_t)p->win, &got) ||
             got != p->win_zlen)
        return false;
    if ((uint32_t)crc32(0, zwin, p->win_zlen) != p->win_crc)
        return false;
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK)
        return false;
    z.next_in = (unsigned char *)zwin;
    z.avail_in = p->win_zlen;
    z.next_out = win;
    z.avail_out = TAR_GZ_WINDOW;
    int ret = inflate(&z, Z_FINISH);
    bool ok = ret == Z_STREAM_END && TAR_GZ_WINDOW - z.avail_out == p->win_len;
    inflateEnd(&z);
    return ok;
}

/* A window of the loaded index is damaged: counted, and the cache file
 * unlinked (once) so that the next open rebuilds it — but only if its path
 * still names the file we read, which another process may have replaced
 * with a good one already. */
static void window_damaged(tar_gz *gz)
{
    atomic_fetch_add(&gz->damaged_windows, 1);
    if (!gz->index_path || atomic_exchange(&gz->index_dropped, true))
        return;
    struct stat ours, named;
    if (fstat(gz->index_fd, &ours) == 0 && stat(gz->index_path, &named) == 0 &&
        ours.st_dev == named.st_dev && ours.st_ino == named.st_ino)
        unlink(gz->index_path);
}

/* A cursor at point P; *BAD_WINDOW (with KVRO_E_CORRUPT) if P's window is
 * unusable, so the caller may start from an earlier point instead. */
static kvro_status cursor_open(tar_gz *gz, const tar_gz_point *p, tar_gz_cursor **out,
                               bool *bad_window, kvro_error *err)
{
    *bad_window = false;
    *out = NULL;
    tar_gz_cursor *c = calloc(1, sizeof *c);
    if (c && !(c->in = malloc(CURSOR_IN))) {
        free(c);
        c = NULL;
    }
    if (!c)
        return nomem(err);
    c->head = (tar_gz_item){.slot = NOT_CACHED, .kind = ITEM_CURSOR};
    c->strm.zalloc = zalloc_counted;
    c->strm.zfree = zfree_counted;
    c->strm.opaque = &c->zbytes;
    if (inflateInit2(&c->strm, -15) != Z_OK) {
        free(c->in);
        free(c);
        return nomem(err);
    }
    c->out = p->out;
    c->read_off = p->in;
    *out = c;
    if (p->bits) {
        /* The block starts inside the byte before IN: its top BITS bits. */
        unsigned char byte;
        size_t got = 0;
        kvro_status s = kvro_io_read(gz->io, p->in - 1, &byte, 1, &got, err);
        if (s != KVRO_OK) /* the device failed: say so, the archive may be fine */
            return s;
        if (got != 1)
            return damaged(err, "cannot read the access point", p->in - 1);
        inflatePrime(&c->strm, p->bits, byte >> (8 - p->bits));
    }
    if (p->win_len) {
        unsigned char *win = malloc(TAR_GZ_WINDOW);
        if (!win)
            return nomem(err);
        /* The cursor's input buffer is empty yet: it holds the stored window. */
        _Static_assert(CURSOR_IN >= TAR_GZ_WINDOW_ZMAX, "a stored window fits the input");
        kvro_status s = KVRO_OK;
        if (!load_window(gz, p, c->in, win) ||
            inflateSetDictionary(&c->strm, win, p->win_len) != Z_OK) {
            *bad_window = true;
            s = damaged(err, "damaged access-point window", p->in);
        }
        free(win);
        return s;
    }
    return KVRO_OK;
}

/* The raw deflate data of a member ended: step over its 8-byte trailer
 * and, if another member follows, over that member's header. */
static kvro_status cursor_next_member(tar_gz *gz, tar_gz_cursor *c, kvro_error *err)
{
    z_stream *z = &c->strm;
    size_t got;
    for (uInt skip = 8; skip;) {
        if (z->avail_in == 0) {
            kvro_status s = cursor_refill(gz, c, &got, err);
            if (s != KVRO_OK)
                return s;
            if (!got)
                return damaged(err, "truncated gzip trailer", c->read_off);
        }
        uInt k = z->avail_in < skip ? z->avail_in : skip;
        z->next_in += k;
        z->avail_in -= k;
        skip -= k;
    }
    if (z->avail_in < 2) {
        kvro_status s = cursor_refill(gz, c, &got, err);
        if (s != KVRO_OK)
            return s;
    }
    if (z->avail_in < 2 || z->next_in[0] != 0x1f || z->next_in[1] != 0x8b) {
        c->end = true;
        return KVRO_OK;
    }
    if (inflateReset2(z, 15 + 16) != Z_OK)
        return nomem(err);
    unsigned char none;
    do { /* Z_BLOCK stops right after the header, before any output */
        if (z->avail_in == 0) {
            kvro_status s = cursor_refill(gz, c, &got, err);
            if (s != KVRO_OK)
                return s;
            if (!got)
                return damaged(err, "truncated gzip header", c->read_off);
        }
        z->next_out = &none;
        z->avail_out = 1;
        int ret = inflate(z, Z_BLOCK);
        if (ret != Z_OK && ret != Z_BUF_ERROR)
            return damaged(err, z->msg ? z->msg : "bad gzip header", c->read_off);
    } while (!(z->data_type & 128));
    return inflateReset2(z, -15) == Z_OK ? KVRO_OK : nomem(err);
}

/* Inflates exactly N bytes into DST: the stream ending first means the
 * archive is not what was indexed. */
static kvro_status cursor_inflate(tar_gz *gz, tar_gz_cursor *c, unsigned char *dst, int64_t n,
                                  kvro_error *err)
{
    z_stream *z = &c->strm;
    int64_t produced = 0;
    kvro_status s = KVRO_OK;
    while (produced < n && s == KVRO_OK) {
        if (c->end)
            return damaged(err, "compressed data ends early", c->read_off);
        if (z->avail_in == 0) {
            size_t got;
            s = cursor_refill(gz, c, &got, err);
            if (s != KVRO_OK)
                break;
            if (!got)
                return damaged(err, "compressed data ends early", c->read_off);
        }
        z->next_out = dst + produced;
        z->avail_out = (uInt)(n - produced); /* n <= TAR_GZ_CHUNK */
        int ret = inflate(z, Z_NO_FLUSH);
        int64_t k = (int64_t)(n - produced) - z->avail_out;
        produced += k;
        c->out += k;
        if (ret == Z_STREAM_END)
            s = cursor_next_member(gz, c, err);
        else if (ret == Z_MEM_ERROR)
            s = nomem(err);
        else if (ret != Z_OK && !(ret == Z_BUF_ERROR && z->avail_in == 0))
            s = damaged(err, z->msg ? z->msg : "invalid compressed data", c->read_off);
    }
    atomic_fetch_add(&gz->read_inflated, produced);
    return s;
}

/* A copy of C (not running: parked, or its owner's), with no input buffer
 * (it reads again what C had read and zlib had not taken: zlib keeps a
 * partial byte itself), keyed at C's chunk, not charged; NULL if there is
 * no memory for it. */
static tar_gz_cursor *cursor_clone(tar_gz_cursor *c)
{
    tar_gz_cursor *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    /* inflateCopy allocates through C's allocator and counter: move what
     * it took over to D's, and point D's allocator at D's counter. */
    int64_t before = c->zbytes;
    if (inflateCopy(&d->strm, &c->strm) != Z_OK) {
        c->zbytes = before;
        free(d);
        return NULL;
    }
    d->zbytes = c->zbytes - before;
    c->zbytes = before;
    d->strm.opaque = &d->zbytes;
    d->head = (tar_gz_item){.key = c->out / TAR_GZ_CHUNK, .slot = NOT_CACHED, .kind = ITEM_CURSOR};
    d->out = c->out;
    d->end = c->end;
    d->read_off = c->read_off - c->strm.avail_in;
    d->strm.next_in = Z_NULL;
    d->strm.avail_in = 0;
    d->head.bytes = cursor_bytes(d);
    return d;
}

/* Takes a cursor for chunk K out of the cache (the one parked closest
 * below it, no further back than FLOOR), or NULL. A checkpoint (no input
 * buffer: cursor_checkpoint) stays parked for the reads after this one,
 * like an access point: this read gets a copy, charged. */
static tar_gz_cursor *cursor_take(tar_gz *gz, int64_t k, int64_t floor)
{
    tar_gz_rcache *rc = &gz->rc;
    tar_gz_item *it = NULL;
    pthread_mutex_lock(&rc->lock);
    /* Parked cursors sit at chunk starts: look them up one chunk at a
     * time (points are a few MiB apart, so a few dozen lookups). */
    for (int64_t j = k; j * TAR_GZ_CHUNK >= floor && !it && rc->n; j--)
        it = find(rc, ITEM_CURSOR, j);
    tar_gz_cursor *c = (tar_gz_cursor *)it;
    if (c && c->in) {
        cache_remove(rc, it); /* still charged: it is in use */
    } else if (c) {
        c = cursor_clone(c);
        if (c) {
            make_room(rc, c->head.bytes); /* needed whether or not it fits */
            charge(rc, c->head.bytes);
        }
    }
    pthread_mutex_unlock(&rc->lock);
    return c;
}

static void cursor_drop(tar_gz *gz, tar_gz_cursor *c);

/* A cursor at or before chunk K's start: parked, or started at the nearest
 * access point (charged to the budget, evicting for it). */
static kvro_status cursor_get(tar_gz *gz, int64_t k, tar_gz_cursor **out, kvro_error *err)
{
    int64_t target = k * TAR_GZ_CHUNK;
    size_t lo = 0, hi = gz->npoints; /* the last point at or before TARGET */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (gz->points[mid].out <= target)
            lo = mid;
        else
            hi = mid;
    }
    for (;;) {
        tar_gz_cursor *c = cursor_take(gz, k, gz->points[lo].out);
        if (c && c->in) {
            *out = c;
            return KVRO_OK;
        }
        if (c) { /* a checkpoint (cursor_checkpoint): it needs an input buffer */
            tar_gz_rcache *rc = &gz->rc;
            pthread_mutex_lock(&rc->lock);
            make_room(rc, CURSOR_IN); /* needed whether or not it fits */
            charge(rc, CURSOR_IN);
            c->head.bytes += CURSOR_IN;
            pthread_mutex_unlock(&rc->lock);
            if (!(c->in = malloc(CURSOR_IN))) {
                cursor_drop(gz, c);
                return nomem(err);
            }
            *out = c;
            return KVRO_OK;
        }
        bool bad_window;
        kvro_status s = cursor_open(gz, &gz->points[lo], &c, &bad_window, err);
        if (s == KVRO_OK) {
            tar_gz_rcache *rc = &gz->rc;
            pthread_mutex_lock(&rc->lock);
            /* zlib allocates the window at the first output, unless the
             * dictionary did: charge it now. */
            c->head.bytes = cursor_bytes(c);
            if (c->zbytes < TAR_GZ_WINDOW)
                c->head.bytes += TAR_GZ_WINDOW + (int64_t)sizeof(zhead);
            make_room(rc, c->head.bytes); /* needed whether or not it fits */
            charge(rc, c->head.bytes);
            pthread_mutex_unlock(&rc->lock);
            *out = c;
            return KVRO_OK;
        }
        cursor_free(c);
        if (!bad_window || lo == 0)
            return s;
        /* Point 0 has no window, so this ends; each step back costs
         * inflating one more spacing, never a wrong byte. */
        window_damaged(gz);
        lo--;
    }
}

/* Parks C at the chunk start it stopped at, unless one is parked there
 * already or the budget has no room left for it. */
static void cursor_put(tar_gz *gz, tar_gz_cursor *c)
{
    tar_gz_rcache *rc = &gz->rc;
    pthread_mutex_lock(&rc->lock);
    charge(rc, cursor_bytes(c) - c->head.bytes); /* what zlib took since */
    c->head.bytes = cursor_bytes(c);
    c->head.key = c->out / TAR_GZ_CHUNK;
    bool park = !c->end && c->out % TAR_GZ_CHUNK == 0 && !find(rc, ITEM_CURSOR, c->head.key) &&
                make_room(rc, 0) && cache_insert(rc, &c->head);
    if (!park)
        rc->used -= c->head.bytes;
    pthread_mutex_unlock(&rc->lock);
    if (!park)
        cursor_free(c);
}

static void cursor_drop(tar_gz *gz, tar_gz_cursor *c)
{
    pthread_mutex_lock(&gz->rc.lock);
    gz->rc.used -= c->head.bytes;
    pthread_mutex_unlock(&gz->rc.lock);
    cursor_free(c);
}

/* Parks a copy of C (running, at a chunk start) unless a cursor is parked
 * there already or the budget has no room: what a later read of a chunk
 * after it starts from. Best effort: a copy that cannot be made costs
 * only speed. */
static void cursor_checkpoint(tar_gz *gz, tar_gz_cursor *c)
{
    tar_gz_rcache *rc = &gz->rc;
    int64_t key = c->out / TAR_GZ_CHUNK;
    pthread_mutex_lock(&rc->lock);
    bool have = find(rc, ITEM_CURSOR, key) != NULL;
    pthread_mutex_unlock(&rc->lock);
    tar_gz_cursor *d = have ? NULL : cursor_clone(c);
    if (!d)
        return;
    pthread_mutex_lock(&rc->lock);
    bool park = !find(rc, ITEM_CURSOR, key) && make_room(rc, d->head.bytes) &&
                cache_insert(rc, &d->head);
    if (park)
        charge(rc, d->head.bytes);
    pthread_mutex_unlock(&rc->lock);
    if (!park)
        cursor_free(d);
}

/* ------------------------------------------------------ filling chunks */

/* Moves C forward to TARGET (a chunk start). Whole chunks it passes that
 * the cache lacks are kept if there is room, as the stretch from an access
 * point to a small file holds other small files, read next in another
 * order: so reading every file in any order inflates the archive about
 * once. Every CHECKPOINT_EVERY chunks it leaves a copy of itself parked,
 * so that once the archive outgrows the budget, a read of an evicted chunk
 * starts a little before it rather than at an access point megabytes back. */
static kvro_status cursor_advance(tar_gz *gz, tar_gz_cursor *c, int64_t target, kvro_error *err)
{
    tar_gz_rcache *rc = &gz->rc;
    unsigned char discard[16384];
    kvro_status s = KVRO_OK;
    const int64_t from = c->out;
    while (s == KVRO_OK && c->out < target) {
        chunk *mid = NULL;
        if (c->out % TAR_GZ_CHUNK == 0) {
            int64_t j = c->out / TAR_GZ_CHUNK;
            if (c->out > from && j % CHECKPOINT_EVERY == 0)
                cursor_checkpoint(gz, c);
            pthread_mutex_lock(&rc->lock);
            if (!find(rc, ITEM_CHUNK, j))
                mid = chunk_new(rc, j, false);
            pthread_mutex_unlock(&rc->lock);
        }
        if (mid) {
            mid->len = TAR_GZ_CHUNK; /* TARGET lies beyond: a whole chunk */
            s = cursor_inflate(gz, c, mid->data, mid->len, err);
            chunk_done(gz, mid, s == KVRO_OK, false);
            continue;
        }
        int64_t next = (c->out / TAR_GZ_CHUNK + 1) * TAR_GZ_CHUNK;
        int64_t k = next < target ? next - c->out : target - c->out;
        if (k > (int64_t)sizeof discard)
            k = (int64_t)sizeof discard;
        s = cursor_inflate(gz, c, discard, k, err);
    }
    return s;
}

/* Inflates chunk CH (loading, pinned by us). */
static kvro_status chunk_load(tar_gz *gz, chunk *ch, kvro_error *err)
{
    int64_t start = ch->head.key * TAR_GZ_CHUNK;
    ch->len = gz->usize - start < TAR_GZ_CHUNK ? gz->usize - start : TAR_GZ_CHUNK;
    tar_gz_cursor *c = NULL;
    kvro_status s = cursor_get(gz, ch->head.key, &c, err);
    if (s != KVRO_OK)
        return s;
    s = cursor_advance(gz, c, start, err);
    if (s == KVRO_OK)
        s = cursor_inflate(gz, c, ch->data, ch->len, err);
    if (s == KVRO_OK)
        cursor_put(gz, c);
    else
        cursor_drop(gz, c);
    return s;
}

/* Chunk K, loaded and pinned: from the cache, from another reader that is
 * inflating it (waiting for it), or inflated here. */
static kvro_status chunk_get(tar_gz *gz, int64_t k, chunk **out, kvro_error *err)
{
    tar_gz_rcache *rc = &gz->rc;
    chunk *ch;
    pthread_mutex_lock(&rc->lock);
    while ((ch = (chunk *)find(rc, ITEM_CHUNK, k)) && ch->loading)
        pthread_cond_wait(&rc->loaded, &rc->lock);
    if (ch) {
        ch->pins++;
        ch->head.used = ++rc->tick;
        /* A stream reading this chunk will want the cursor parked after
         * it next: keep that as fresh as the chunk. */
        tar_gz_item *next = find(rc, ITEM_CURSOR, k + 1);
        if (next)
            next->used = rc->tick;
        pthread_mutex_unlock(&rc->lock);
        *out = ch;
        return KVRO_OK;
    }
    ch = chunk_new(rc, k, true);
    pthread_mutex_unlock(&rc->lock);
    if (!ch)
        return nomem(err);
    kvro_status s = chunk_load(gz, ch, err);
    chunk_done(gz, ch, s == KVRO_OK, true);
    *out = s == KVRO_OK ? ch : NULL;
    return s;
}

kvro_status kvro__tar_gz_read(tar_gz *gz, int64_t off, void *buf, int64_t len, int64_t *got,
                        kvro_error *err)
{
    *got = 0;
    if (off >= gz->usize || len <= 0)
        return KVRO_OK;
    if (len > gz->usize - off)
        len = gz->usize - off;
    while (*got < len) {
        int64_t at = off + *got, k = at / TAR_GZ_CHUNK;
        chunk *ch = NULL;
        kvro_status s = chunk_get(gz, k, &ch, err);
        if (s != KVRO_OK)
            return s;
        int64_t in = at - k * TAR_GZ_CHUNK;
        int64_t n = ch->len - in < len - *got ? ch->len - in : len - *got;
        memcpy((char *)buf + *got, ch->data + in, (size_t)n);
        *got += n;
        chunk_release(gz, ch);
    }
    return KVRO_OK;
}

void kvro__tar_gz_usage(tar_gz *gz, tar_gz_usage *u)
{
    tar_gz_rcache *rc = &gz->rc;
    *u = (tar_gz_usage){0};
    pthread_mutex_lock(&rc->lock);
    u->budget = rc->budget;
    u->used = rc->used;
    u->peak = rc->peak;
    for (size_t i = 0; i < rc->n; i++) {
        if (rc->items[i]->kind == ITEM_CURSOR)
            u->cursors++;
        else
            u->chunks++;
    }
    pthread_mutex_unlock(&rc->lock);
    u->inflated = atomic_load(&gz->read_inflated);
}
