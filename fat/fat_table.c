/*
 * fat_table.c — the File Allocation Table: its entries (12, 16 or 32 bits,
 * FAT32's top four bits reserved), cluster chains, and the cache of chains
 * that keeps reads from walking a chain from its start on every call.
 *
 * Entry values are the specification's (section 4): 0 free, 1 reserved,
 * >= 0x?FF8 end of chain, 0x?FF7 bad, anything else above the last
 * cluster out of range. The active FAT is read once at open, as stored
 * (the write side will change entries in place and write them back), and
 * checked once: one pass over it marks every cluster some chain continues
 * into, and those two chains continue into (a cross-link). A chain is then
 * sound exactly when its first cluster has no predecessor and it meets no
 * cross-linked cluster: a loop either comes back to the first cluster
 * (which then has a predecessor) or joins itself further on (a cluster
 * with two), so every walk visits distinct clusters and ends, with no
 * visited set. Chains shared between two files the same way are refused;
 * two directory entries naming the same first cluster are fat.c's (claim).
 *
 * A chain is kept as runs of consecutive clusters (one run for a file
 * written in one go), cached by first cluster: a sequential read of a big
 * file walks its chain once, then finds each offset by binary search over
 * the runs. The cache is a small table under one mutex; chains are
 * reference-counted, so a reader keeps using a chain another thread has
 * evicted. Distinct files have disjoint chains, so the cached runs stay
 * under the cluster count; the bound below only guards against aliases.
 */
#include "fat_vol.h"

#include <stdlib.h>
#include <string.h>

#define BAD(...) kvro_error_set(err, KVRO_E_CORRUPT, "FAT: " __VA_ARGS__)

static bool bit(const uint8_t *m, uint32_t i)
{
    return m[i >> 3] >> (i & 7) & 1;
}

static void set_bit(uint8_t *m, uint32_t i)
{
    m[i >> 3] |= (uint8_t)(1u << (i & 7));
}

/* Entry C as stored, FAT32's reserved top bits cleared. */
uint32_t kvro__fat_get(const fat_table *t, uint32_t c)
{
    const unsigned char *r = t->raw;
    if (t->type == 12) {
        size_t o = c + c / 2;
        uint32_t v = (uint32_t)(r[o] | r[o + 1] << 8);
        return c & 1 ? v >> 4 : v & 0xFFF;
    }
    if (t->type == 16)
        return (uint32_t)(r[2 * c] | r[2 * c + 1] << 8);
    const unsigned char *p = r + 4 * (size_t)c;
    return ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24) &
           0x0FFFFFFF;
}

/* The value from which entries mean "end of chain"; one less is "bad". */
static uint32_t end_mark(int type)
{
    return type == 12 ? 0xFF8 : type == 16 ? 0xFFF8 : 0x0FFFFFF8;
}

static bool in_range(const fat_table *t, uint32_t c)
{
    return c >= 2 && c <= t->clusters + 1;
}

static kvro_status load(kvro_io *io, const fat_bpb *b, fat_table *t, kvro_error *err)
{
    t->type = b->type;
    t->clusters = b->clusters;
    uint64_t n = (uint64_t)b->clusters + 2;
    t->raw_len = (size_t)(b->type == 12 ? (n * 3 + 1) / 2 : n * (uint64_t)b->type / 8);
    size_t bits = (size_t)(n + 7) / 8;
    /* All three are bounded by the FAT's size on disk (fat_bpb.c checked
     * it holds every cluster), read in full below. */
    t->raw = malloc(t->raw_len);
    t->pred = calloc(1, bits);
    t->merged = calloc(1, bits);
    if (!t->raw || !t->pred || !t->merged)
        return kvro_error_set(err, KVRO_E_NOMEM, "FAT: cannot hold a FAT of %zu bytes", t->raw_len);
    int64_t off = b->fat_off + (int64_t)b->active_fat * b->fat_sectors * b->sector_size;
    size_t got = 0;
    kvro_status s = kvro_io_read(io, off, t->raw, t->raw_len, &got, err);
    if (s != KVRO_OK)
        return s;
    if (got != t->raw_len)
        return BAD("the image ends inside the FAT (at byte %lld)", (long long)(off + got));
    for (uint32_t c = 2; c <= t->clusters + 1; c++) {
        uint32_t next = kvro__fat_get(t, c);
        if (!in_range(t, next))
            continue;
        if (bit(t->pred, next))
            set_bit(t->merged, next);
        set_bit(t->pred, next);
    }
    return KVRO_OK;
}

kvro_status kvro__fat_table_load(kvro_io *io, const fat_bpb *b, fat_table *t, kvro_error *err)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->lock, NULL);
    kvro_status s = load(io, b, t, err);
    if (s != KVRO_OK)
        kvro__fat_table_free(t);
    return s;
}

void kvro__fat_table_free(fat_table *t)
{
    for (size_t i = 0; i < FAT_CACHE_SLOTS; i++)
        free(t->slot[i]);
    free(t->raw);
    free(t->pred);
    free(t->merged);
    pthread_mutex_destroy(&t->lock);
    memset(t, 0, sizeof *t);
}

/* Appends cluster C (file cluster INDEX) to the runs in *C, growing it. */
static kvro_status append(fat_chain **cp, uint32_t *cap, uint32_t index, uint32_t c,
                          kvro_error *err)
{
    fat_chain *ch = *cp;
    if (ch->nruns) {
        fat_run *last = &ch->runs[ch->nruns - 1];
        if (last->cluster + last->count == c) {
            last->count++;
            return KVRO_OK;
        }
    }
    if (ch->nruns == *cap) {
        uint32_t ncap = *cap * 2;
        fat_chain *n = realloc(ch, sizeof *ch + ncap * sizeof(fat_run));
        if (!n)
            return kvro_error_set(err, KVRO_E_NOMEM, "FAT: out of memory for a cluster chain");
        *cp = ch = n;
        *cap = ncap;
    }
    ch->runs[ch->nruns++] = (fat_run){index, c, 1};
    return KVRO_OK;
}

/* Walks the chain from FIRST (see the header comment for why it ends). */
static kvro_status build(const fat_table *t, uint32_t first, uint32_t want, bool dir,
                         fat_chain **out, kvro_error *err)
{
    if (!in_range(t, first))
        return BAD("first cluster %u out of range (2..%u)", first, t->clusters + 1);
    if (bit(t->pred, first))
        return BAD("cluster %u starts a chain but another chain leads into it (cross-linked or "
                   "looping chains)",
                   first);
    uint32_t cap = 4;
    fat_chain *ch = calloc(1, sizeof *ch + cap * sizeof(fat_run));
    if (!ch)
        return kvro_error_set(err, KVRO_E_NOMEM, "FAT: out of memory for a cluster chain");
    ch->first = first;
    uint32_t c = first, end = end_mark(t->type);
    kvro_status s = KVRO_OK;
    while (s == KVRO_OK && ch->length < want) {
        if (bit(t->merged, c)) {
            s = BAD("cluster %u is in two chains (cross-linked chains)", c);
            break;
        }
        s = append(&ch, &cap, ch->length, c, err);
        if (s != KVRO_OK)
            break;
        ch->length++;
        uint32_t next = kvro__fat_get(t, c);
        if (next >= end) {
            ch->whole = true;
            break;
        }
        /* A file's chain may run on past its size (fsck.fat would cut it):
         * what lies beyond is not ours to judge. */
        if (!dir && ch->length == want)
            break;
        if (next == 0)
            s = BAD("the chain from cluster %u runs into a free cluster after %u", first, c);
        else if (next == end - 1)
            s = BAD("the chain from cluster %u runs into a bad cluster after %u", first, c);
        else if (!in_range(t, next))
            s = BAD("cluster %u continues at %u, out of range (2..%u)", c, next, t->clusters + 1);
        else if (ch->length == want)
            s = BAD("the directory at cluster %u is longer than %u clusters (65536 entries)", first,
                    want);
        c = next;
    }
    if (s == KVRO_OK && !dir && ch->length < want)
        s = BAD("the file's size needs %u clusters, its chain from cluster %u has %u", want, first,
                ch->length);
    if (s != KVRO_OK) {
        free(ch);
        return s;
    }
    *out = ch;
    return KVRO_OK;
}

static size_t slot_of(uint32_t first)
{
    return (size_t)((first * 2654435761u) >> 24) % FAT_CACHE_SLOTS;
}

/* Drops a reference; under the lock. */
static void unref(fat_chain *c)
{
    if (c && --c->refs == 0)
        free(c);
}

kvro_status kvro__fat_chain_get(fat_table *t, uint32_t first, uint32_t want, bool dir,
                                fat_chain **out, kvro_error *err)
{
    size_t i = slot_of(first);
    pthread_mutex_lock(&t->lock);
    fat_chain *c = t->slot[i];
    /* A directory's chain is cached whole; a file's as far as its size. */
    if (c && c->first == first && (c->length >= want || (dir && c->whole))) {
        c->refs++;
        pthread_mutex_unlock(&t->lock);
        *out = c;
        return KVRO_OK;
    }
    pthread_mutex_unlock(&t->lock);

    kvro_status s = build(t, first, want, dir, &c, err);
    if (s != KVRO_OK)
        return s;
    uint64_t bound = (uint64_t)t->clusters + 65536;
    pthread_mutex_lock(&t->lock);
    c->refs = 1;
    if (c->nruns <= bound) {
        for (size_t k = 0; t->cached_runs + c->nruns > bound && k < FAT_CACHE_SLOTS; k++)
            if (t->slot[k]) {
                t->cached_runs -= t->slot[k]->nruns;
                unref(t->slot[k]);
                t->slot[k] = NULL;
            }
        if (t->slot[i]) {
            t->cached_runs -= t->slot[i]->nruns;
            unref(t->slot[i]);
        }
        t->slot[i] = c;
        t->cached_runs += c->nruns;
        c->refs++;
    }
    pthread_mutex_unlock(&t->lock);
    *out = c;
    return KVRO_OK;
}

void kvro__fat_chain_put(fat_table *t, fat_chain *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&t->lock);
    unref(c);
    pthread_mutex_unlock(&t->lock);
}

const fat_run *kvro__fat_chain_find(const fat_chain *c, uint32_t index)
{
    uint32_t lo = 0, hi = c->nruns;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (c->runs[mid].index <= index)
            lo = mid;
        else
            hi = mid;
    }
    return &c->runs[lo];
}

/* ------------------------------------------------------------ writing */

uint32_t kvro__fat_eoc(const fat_table *t)
{
    return t->type == 12 ? 0xFFF : t->type == 16 ? 0xFFFF : 0x0FFFFFFF;
}

bool kvro__fat_is_end(const fat_table *t, uint32_t v)
{
    return v >= end_mark(t->type);
}

/* Changes entry C to V in memory (fat_write.c writes the dirty bytes to
 * every FAT copy), keeping the predecessor bits true: a cluster has at
 * most one predecessor in an image we write to (fat_write.c refuses one
 * with cross-links), so the old successor has none after this. FAT32's
 * reserved top four bits are kept, as the specification asks. */
void kvro__fat_set(fat_table *t, uint32_t c, uint32_t v)
{
    uint32_t old = kvro__fat_get(t, c);
    if (in_range(t, old))
        t->pred[old >> 3] &= (uint8_t) ~(1u << (old & 7));
    if (in_range(t, v))
        set_bit(t->pred, v);
    unsigned char *r = t->raw;
    size_t lo, hi;
    if (t->type == 12) {
        size_t o = c + c / 2;
        if (c & 1) {
            r[o] = (unsigned char)((r[o] & 0x0F) | (v << 4 & 0xF0));
            r[o + 1] = (unsigned char)(v >> 4);
        } else {
            r[o] = (unsigned char)v;
            r[o + 1] = (unsigned char)((r[o + 1] & 0xF0) | (v >> 8 & 0x0F));
        }
        lo = o, hi = o + 2;
    } else if (t->type == 16) {
        r[2 * c] = (unsigned char)v;
        r[2 * c + 1] = (unsigned char)(v >> 8);
        lo = 2 * (size_t)c, hi = lo + 2;
    } else {
        unsigned char *p = r + 4 * (size_t)c;
        v = (v & 0x0FFFFFFF) | ((uint32_t)p[3] & 0xF0) << 24;
        p[0] = (unsigned char)v, p[1] = (unsigned char)(v >> 8);
        p[2] = (unsigned char)(v >> 16), p[3] = (unsigned char)(v >> 24);
        lo = 4 * (size_t)c, hi = lo + 4;
    }
    if (t->dirty_hi == 0 || lo < t->dirty_lo)
        t->dirty_lo = lo;
    if (hi > t->dirty_hi)
        t->dirty_hi = hi;
}

bool kvro__fat_cross_linked(const fat_table *t)
{
    for (size_t i = 0; i < ((size_t)t->clusters + 2 + 7) / 8; i++)
        if (t->merged[i])
            return true;
    return false;
}

bool kvro__fat_takeable(const fat_table *t, uint32_t c)
{
    return kvro__fat_get(t, c) == 0 && !bit(t->pred, c);
}

void kvro__fat_chain_forget(fat_table *t, uint32_t first)
{
    size_t i = slot_of(first);
    pthread_mutex_lock(&t->lock);
    if (t->slot[i] && t->slot[i]->first == first) {
        t->cached_runs -= t->slot[i]->nruns;
        unref(t->slot[i]);
        t->slot[i] = NULL;
    }
    pthread_mutex_unlock(&t->lock);
}
