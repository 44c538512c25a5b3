/*
 * fat_write.c — the FAT backend's write side: create, mkdir, write at any
 * offset (allocating and extending chains) and destroy (freeing them), on
 * a handle opened read-write. Names go through fat_name.c, the encoder the
 * image builder uses too: long-name slots, short names with Linux's
 * numeric tails, collision-free in their directory.
 *
 * Crash safety. Every change is made in an order such that an
 * interruption anywhere (a failed write, power loss, a killed process)
 * leaves no directory entry pointing at free or foreign clusters and no
 * chain shared by two files; at worst lost clusters, which fsck.fat -a
 * reclaims:
 *   - new clusters are marked as a chain of their own in the FAT (both
 *     copies) and their contents written (a directory's "." and "..", a
 *     file's bytes, zeros) before anything points at them;
 *   - then they are linked: a file's or directory's new first cluster
 *     goes into its entry in the same 32-byte write as its size; clusters
 *     that extend a non-empty chain are linked in the FAT, and only then
 *     does the entry's size grow (an interruption in between leaves a
 *     chain longer than the size, every byte of the file as it was);
 *   - a new entry (long-name slots and short entry) is written with one
 *     call when its slots lie together, after any cluster added to hold
 *     it has been zeroed and linked, and, where it takes the directory's
 *     end marker (a 0x00 entry), after the slots beyond it are zeroed;
 *   - destroy marks the entry and its slots deleted first, and frees the
 *     chain after: an interruption leaves lost clusters, never a free
 *     cluster in use.
 * The FAT32 FSInfo free count and next-free hint are written with each
 * FAT update. Out of space is found before anything changes
 * (KVRO_E_NO_SPACE, the image as it was).
 *
 * Timestamps are the current time, in FAT's 2-second steps, clamped to
 * 1980..2107 (fat_name.c).
 */
#include "fat_vol.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NOSPACE(...) kvro_error_set(err, KVRO_E_NO_SPACE, "FAT: " __VA_ARGS__)
#define NOMEM() kvro_error_set(err, KVRO_E_NOMEM, "out of memory")

static int64_t cluster_off(const fat_vol *v, uint32_t c)
{
    return v->bpb.data_off + (int64_t)(c - 2) * v->bpb.cluster_size;
}

static void put16(unsigned char *p, uint32_t x)
{
    p[0] = (unsigned char)x;
    p[1] = (unsigned char)(x >> 8);
}

static void put32(unsigned char *p, uint32_t x)
{
    put16(p, x & 0xFFFF);
    put16(p + 2, x >> 16);
}

/* ------------------------------------------------- clusters entries name */

/* V->named holds two bitmaps of a bit per cluster: named by some entry,
 * and named by more than one (entries cross-linked: destroying one leaves
 * the cluster named). */
static size_t named_bytes(const fat_vol *v)
{
    return ((size_t)v->table.clusters + 2 + 7) / 8;
}

static bool named(const fat_vol *v, uint32_t c)
{
    return v->named[c >> 3] & (1u << (c & 7));
}

static void set_named(fat_vol *v, uint32_t c, bool on)
{
    uint8_t *twice = v->named + named_bytes(v), m = (uint8_t)(1u << (c & 7));
    if (on && (v->named[c >> 3] & m))
        twice[c >> 3] |= m;
    else if (on)
        v->named[c >> 3] |= m;
    else if (!(twice[c >> 3] & m))
        v->named[c >> 3] &= (uint8_t)~m;
}

/* Whether cluster C may be taken: free in the FAT, no chain leading into
 * it, and no entry naming it as its first. A sound image has neither; a
 * damaged one can have an entry whose chain starts at a cluster marked
 * free (the reader refuses to read it), and taking that cluster would
 * give two entries one chain. */
static bool takeable(const fat_vol *v, uint32_t c)
{
    return kvro__fat_takeable(&v->table, c) && !named(v, c);
}

typedef struct name_walk {
    fat_vol *v;
    fat_node *todo; /* directories still to read */
    size_t n, cap;
    bool oom;
} name_walk;

static int on_named(void *arg, const fat_dirent *e)
{
    name_walk *w = arg;
    uint32_t c = e->node.first;
    if (c < 2 || c > w->v->table.clusters + 1)
        return 0;
    bool again = named(w->v, c);
    set_named(w->v, c, true);
    if (!e->node.dir || again)
        return 0; /* a directory named twice is read once */
    if (w->n == w->cap) {
        size_t cap = w->cap ? 2 * w->cap : 64;
        fat_node *g = realloc(w->todo, cap * sizeof *g);
        if (!g) {
            w->oom = true;
            return 1;
        }
        w->todo = g, w->cap = cap;
    }
    w->todo[w->n++] = e->node;
    return 0;
}

/* Marks every cluster some entry names as its first, reading every
 * directory once (a directory's first cluster is marked before it is
 * read, so a loop or an alias is read once). A directory that cannot be
 * read is passed over: its entries stay unknown, as to any reader. Entries
 * whose names no key can spell count too (kvro__fat_dir_each_all). */
static kvro_status find_named(fat_vol *v, kvro_error *err)
{
    v->named = calloc(2, named_bytes(v));
    name_walk w = {.v = v};
    fat_node root = kvro__fat_root(v);
    if (!v->named)
        return NOMEM();
    if (root.first >= 2 && root.first <= v->table.clusters + 1)
        set_named(v, root.first, true);
    kvro_status s = kvro__fat_dir_each_all(v, &root, on_named, &w, NULL);
    while (!w.oom && w.n > 0) {
        fat_node d = w.todo[--w.n];
        s = kvro__fat_dir_each_all(v, &d, on_named, &w, NULL);
    }
    (void)s;
    free(w.todo);
    return w.oom ? NOMEM() : KVRO_OK;
}

kvro_status kvro__fat_write_open(fat_vol *v, kvro_error *err)
{
    fat_table *t = &v->table;
    if (kvro__fat_cross_linked(t))
        return kvro_error_set(err, KVRO_E_CORRUPT,
                              "FAT: cross-linked chains: not written to (run fsck.fat first)");
    kvro_status s = find_named(v, err);
    if (s != KVRO_OK)
        return s;
    v->free_count = 0;
    for (uint32_t c = 2; c <= t->clusters + 1; c++)
        v->free_count += takeable(v, c);
    v->next_free = 2;
    v->writable = true;
    return KVRO_OK;
}

void kvro__fat_write_close(fat_vol *v)
{
    free(v->named);
    v->named = NULL;
}

/* Writes the FAT bytes changed since the last flush to every copy, then
 * the FSInfo counts. */
static kvro_status flush_fat(fat_vol *v, kvro_error *err)
{
    fat_table *t = &v->table;
    const fat_bpb *b = &v->bpb;
    kvro_status s = KVRO_OK;
    if (t->dirty_hi > t->dirty_lo)
        for (uint32_t k = 0; s == KVRO_OK && k < b->nfats; k++) {
            int64_t off = b->fat_off + (int64_t)k * b->fat_sectors * b->sector_size;
            s = kvro_io_write(v->io, off + (int64_t)t->dirty_lo, t->raw + t->dirty_lo,
                              t->dirty_hi - t->dirty_lo, err);
        }
    if (s == KVRO_OK)
        t->dirty_lo = t->dirty_hi = 0;
    if (s == KVRO_OK && b->type == 32 && b->has_fsinfo) {
        unsigned char info[8];
        put32(info, v->free_count);
        put32(info + 4, v->next_free);
        s = kvro_io_write(v->io, (int64_t)b->fsinfo_sector * b->sector_size + 488, info, 8, err);
    }
    return s;
}

/* N free clusters chained together (in memory; flush_fat writes them), the
 * first in *FIRST, each in LIST (N entries) when given. Nothing changes
 * if there are not that many. */
static kvro_status alloc(fat_vol *v, uint32_t n, uint32_t *first, uint32_t *list, kvro_error *err)
{
    fat_table *t = &v->table;
    if (n > v->free_count)
        return NOSPACE("the volume is full (%u clusters wanted, %u free)", n, v->free_count);
    uint32_t c = v->next_free, prev = 0, got = 0, last = t->clusters + 1;
    /* FREE_COUNT is a count of takeable clusters, kept as clusters are
     * taken and freed; the scan is bounded all the same (one lap), so a
     * count that is wrong can never make it spin. */
    for (uint32_t seen = 0; got < n; seen++) {
        if (seen == t->clusters) {
            v->free_count = got; /* all there are */
            for (uint32_t k = got ? *first : 0; got > 0; got--) {
                uint32_t next = kvro__fat_get(t, k);
                kvro__fat_set(t, k, 0); /* untaken: nothing was written yet */
                k = next;
            }
            return NOSPACE("the volume is full (%u clusters wanted, %u free)", n, v->free_count);
        }
        if (c < 2 || c > last)
            c = 2;
        if (takeable(v, c)) {
            if (prev)
                kvro__fat_set(t, prev, c);
            else
                *first = c;
            kvro__fat_set(t, c, kvro__fat_eoc(t));
            if (list)
                list[got] = c;
            prev = c;
            got++;
        }
        c++;
    }
    v->free_count -= n;
    v->next_free = c > last ? 2 : c;
    kvro__fat_chain_forget(t, *first);
    return KVRO_OK;
}

/* Frees the chain from FIRST (in memory). */
static void free_chain(fat_vol *v, uint32_t first)
{
    fat_table *t = &v->table;
    kvro__fat_chain_forget(t, first);
    uint32_t c = first;
    for (uint32_t steps = 0; steps <= t->clusters && c >= 2 && c <= t->clusters + 1; steps++) {
        uint32_t next = kvro__fat_get(t, c);
        if (next == 0)
            break;
        kvro__fat_set(t, c, 0);
        v->free_count += takeable(v, c); /* not if a lost chain leads into it */
        if (kvro__fat_is_end(t, next))
            break;
        c = next;
    }
}

static kvro_status write_zeros(fat_vol *v, int64_t off, int64_t n, kvro_error *err)
{
    static const unsigned char zero[4096];
    kvro_status s = KVRO_OK;
    while (s == KVRO_OK && n > 0) {
        size_t k = n < (int64_t)sizeof zero ? (size_t)n : sizeof zero;
        s = kvro_io_write(v->io, off, zero, k, err);
        off += (int64_t)k, n -= (int64_t)k;
    }
    return s;
}

static void now(uint16_t *date, uint16_t *time_)
{
    kvro__fat_time_encode((int64_t)time(NULL), date, time_);
}

/* ---------------------------------------------------------- directories */

/* A directory held in memory whole, with where each entry lies. */
typedef struct dir_buf {
    fat_node node;
    unsigned char *buf;
    size_t len;       /* bytes */
    fat_chain *chain; /* NULL for the FAT12/16 root */
} dir_buf;

static void dir_release(fat_vol *v, dir_buf *d)
{
    kvro__fat_chain_put(&v->table, d->chain);
    free(d->buf);
    d->chain = NULL;
    d->buf = NULL;
}

static bool fixed_root(const fat_vol *v, const fat_node *n)
{
    return n->pos == 0 && v->bpb.type != 32;
}

static kvro_status dir_load(fat_vol *v, const fat_node *n, dir_buf *d, kvro_error *err)
{
    const fat_bpb *b = &v->bpb;
    memset(d, 0, sizeof *d);
    d->node = *n;
    if (fixed_root(v, n)) {
        d->len = b->root_bytes;
        if (!(d->buf = malloc(d->len)))
            return NOMEM();
        return kvro__fat_read_exact(v, b->root_off, d->buf, d->len, "the root directory", err);
    }
    uint32_t first = n->pos == 0 ? b->root_cluster : n->first;
    uint32_t max = (FAT_DIR_MAX + b->cluster_size - 1) / b->cluster_size;
    kvro_status s = kvro__fat_chain_get(&v->table, first, max < b->clusters ? max : b->clusters,
                                        true, &d->chain, err);
    if (s != KVRO_OK)
        return s;
    d->len = (size_t)d->chain->length * b->cluster_size;
    if (!(d->buf = malloc(d->len)))
        return NOMEM();
    for (uint32_t r = 0; s == KVRO_OK && r < d->chain->nruns; r++) {
        const fat_run *run = &d->chain->runs[r];
        s = kvro__fat_read_exact(v, cluster_off(v, run->cluster),
                                 d->buf + (size_t)run->index * b->cluster_size,
                                 (size_t)run->count * b->cluster_size, "a directory", err);
    }
    return s;
}

/* Where entry I of D lies in the volume, and how many entries from it on
 * lie together there (*RUN). */
static int64_t entry_pos(const fat_vol *v, const dir_buf *d, size_t i, size_t *run)
{
    const fat_bpb *b = &v->bpb;
    if (!d->chain) {
        *run = d->len / FAT_DIRENT - i;
        return b->root_off + (int64_t)i * FAT_DIRENT;
    }
    uint64_t byte = (uint64_t)i * FAT_DIRENT;
    const fat_run *r = kvro__fat_chain_find(d->chain, (uint32_t)(byte / b->cluster_size));
    uint64_t in = byte - (uint64_t)r->index * b->cluster_size;
    *run = (size_t)(((uint64_t)r->count * b->cluster_size - in) / FAT_DIRENT);
    return cluster_off(v, r->cluster) + (int64_t)in;
}

/* Writes entries [I, I + N) of D from its buffer, in as few calls as
 * their placement allows. */
static kvro_status dir_write(fat_vol *v, const dir_buf *d, size_t i, size_t n, kvro_error *err)
{
    kvro_status s = KVRO_OK;
    while (s == KVRO_OK && n) {
        size_t run;
        int64_t pos = entry_pos(v, d, i, &run);
        size_t k = run < n ? run : n;
        s = kvro_io_write(v->io, pos, d->buf + i * FAT_DIRENT, k * FAT_DIRENT, err);
        i += k, n -= k;
    }
    return s;
}

/* Adds CLUSTERS zeroed clusters to D's chain (zeroed and marked first,
 * then linked: see the header comment). */
static kvro_status dir_grow(fat_vol *v, dir_buf *d, uint32_t clusters, kvro_error *err)
{
    const fat_bpb *b = &v->bpb;
    if (!d->chain)
        return NOSPACE("the root directory is full (%u entries)", b->root_entries);
    if (d->len + (size_t)clusters * b->cluster_size > FAT_DIR_MAX)
        return NOSPACE("a directory holds at most 65536 entries");
    uint32_t first = 0;
    kvro_status s = alloc(v, clusters, &first, NULL, err);
    for (uint32_t c = first, k = 0; s == KVRO_OK && k < clusters; k++) {
        s = write_zeros(v, cluster_off(v, c), b->cluster_size, err);
        c = kvro__fat_get(&v->table, c);
    }
    if (s == KVRO_OK)
        s = flush_fat(v, err);
    const fat_run *last = &d->chain->runs[d->chain->nruns - 1];
    uint32_t tail = last->cluster + last->count - 1, head = d->chain->first;
    if (s == KVRO_OK) {
        kvro__fat_set(&v->table, tail, first);
        s = flush_fat(v, err);
    }
    if (s != KVRO_OK)
        return s;
    unsigned char *nb = realloc(d->buf, d->len + (size_t)clusters * b->cluster_size);
    if (!nb)
        return NOMEM();
    memset(nb + d->len, 0, (size_t)clusters * b->cluster_size);
    d->buf = nb;
    d->len += (size_t)clusters * b->cluster_size;
    kvro__fat_chain_put(&v->table, d->chain);
    d->chain = NULL;
    kvro__fat_chain_forget(&v->table, head);
    uint32_t max = (FAT_DIR_MAX + b->cluster_size - 1) / b->cluster_size;
    return kvro__fat_chain_get(&v->table, head, max < b->clusters ? max : b->clusters, true,
                               &d->chain, err);
}

typedef struct taken_ctx {
    const dir_buf *d;
} taken_ctx;

static bool sn_taken(void *arg, const unsigned char sn[11])
{
    const dir_buf *d = ((taken_ctx *)arg)->d;
    for (size_t o = 0; o + FAT_DIRENT <= d->len; o += FAT_DIRENT) {
        const unsigned char *e = d->buf + o;
        if (e[0] == 0)
            break;
        if (e[0] != 0xE5 && (e[11] & 0x3F) != 0x0F && memcmp(e, sn, 11) == 0)
            return true;
    }
    return false;
}

/* Zeroes D's slots from slot FROM to the end, where any is not zero
 * already. They lie past the end marker: free, and never read, so long
 * as a 0x00 entry comes before them. A new entry written over that
 * marker would bring whatever they hold into view (the specification
 * says they are zeros; a damaged or hostile image says otherwise): hence
 * zeroed first, before the entry, so that no order of interruption shows
 * them. */
static kvro_status clear_tail(fat_vol *v, dir_buf *d, size_t from, kvro_error *err)
{
    size_t total = d->len / FAT_DIRENT, lo = total, hi = 0;
    static const unsigned char zero[FAT_DIRENT];
    for (size_t i = from; i < total; i++)
        if (memcmp(d->buf + i * FAT_DIRENT, zero, FAT_DIRENT) != 0) {
            if (lo == total)
                lo = i;
            hi = i;
        }
    if (lo == total)
        return KVRO_OK;
    memset(d->buf + lo * FAT_DIRENT, 0, (hi - lo + 1) * FAT_DIRENT);
    return dir_write(v, d, lo, hi - lo + 1, err);
}

/* Adds NAME to directory DIR as entry E (its name filled here); *POS
 * gets where the short entry lies. The caller has looked NAME up. */
static kvro_status dir_add(fat_vol *v, const fat_node *dir, const char *name, size_t n,
                           fat_entry *e, int64_t *pos, kvro_error *err)
{
    fat_name *nm = malloc(sizeof *nm);
    if (!nm)
        return NOMEM();
    dir_buf d;
    kvro_status s = kvro__fat_name_parse(name, n, nm, err);
    if (s == KVRO_OK)
        s = dir_load(v, dir, &d, err);
    else
        memset(&d, 0, sizeof d);
    taken_ctx tc = {&d};
    if (s == KVRO_OK)
        s = kvro__fat_name_short(nm, sn_taken, &tc, e->name, err);
    size_t need = (size_t)kvro__fat_name_slots(nm) + 1, total = d.len / FAT_DIRENT;
    size_t start = total, len = 0;
    bool at_end = false; /* the run takes the end marker */
    for (size_t i = 0; s == KVRO_OK && i < total && len < need; i++) {
        unsigned char c = d.buf[i * FAT_DIRENT];
        if (c == 0x00) {
            /* This and everything after it is free. */
            if (!len)
                start = i;
            len = total - start;
            at_end = true;
            break;
        }
        if (c == 0xE5) {
            if (!len++)
                start = i;
        } else {
            len = 0;
            start = total;
        }
    }
    if (s == KVRO_OK && len < need) {
        size_t missing = need - (total - start);
        uint32_t cs = v->bpb.cluster_size;
        s = dir_grow(v, &d, (uint32_t)((missing * FAT_DIRENT + cs - 1) / cs), err);
    }
    if (s == KVRO_OK && at_end)
        s = clear_tail(v, &d, start + need, err);
    if (s == KVRO_OK) {
        kvro__fat_name_encode(nm, e, d.buf + start * FAT_DIRENT);
        s = dir_write(v, &d, start, need, err);
        size_t run;
        *pos = entry_pos(v, &d, start + need - 1, &run);
    }
    dir_release(v, &d);
    free(nm);
    return s;
}

/* The parent directory of KEY and KEY's last component. */
static void split(const char *key, char *parent, const char **name, size_t *n)
{
    const char *slash = strrchr(key, '/');
    size_t plen = slash ? (size_t)(slash - key) : 0;
    memcpy(parent, key, plen);
    parent[plen] = '\0';
    *name = slash ? slash + 1 : key;
    *n = strlen(*name);
}

/* A new directory NAME in DIR: its cluster with "." and ".." written and
 * marked, then its entry. */
static kvro_status make_dir(fat_vol *v, const fat_node *dir, const char *name, size_t n,
                            fat_node *out, kvro_error *err)
{
    const fat_bpb *b = &v->bpb;
    fat_name *nm = malloc(sizeof *nm);
    if (!nm)
        return NOMEM();
    kvro_status s = kvro__fat_name_parse(name, n, nm, err); /* before any cluster is taken */
    free(nm);
    uint32_t c = 0;
    if (s == KVRO_OK)
        s = alloc(v, 1, &c, NULL, err);
    if (s != KVRO_OK)
        return s;
    unsigned char *buf = calloc(1, b->cluster_size);
    if (!buf)
        return NOMEM();
    fat_entry e = {.attr = 0x10};
    now(&e.date, &e.time);
    memcpy(e.name, ".          ", 11);
    e.first = c;
    kvro__fat_entry_encode(&e, buf);
    memcpy(e.name, "..         ", 11);
    e.first = dir->pos == 0 ? 0 : dir->first; /* the root is 0, on FAT32 too */
    kvro__fat_entry_encode(&e, buf + FAT_DIRENT);
    s = kvro_io_write(v->io, cluster_off(v, c), buf, b->cluster_size, err);
    free(buf);
    if (s == KVRO_OK)
        s = flush_fat(v, err);
    e.first = c;
    int64_t pos = 0;
    if (s == KVRO_OK)
        s = dir_add(v, dir, name, n, &e, &pos, err);
    if (s != KVRO_OK) {
        /* Not linked anywhere: give the cluster back. */
        free_chain(v, c);
        flush_fat(v, NULL);
        return s;
    }
    *out = (fat_node){.first = c, .attr = 0x10, .pos = pos, .dir = true};
    return KVRO_OK;
}

/* Directory KEY, made with its missing parents. */
static kvro_status ensure_dir(fat_vol *v, const char *key, fat_node *out, kvro_error *err)
{
    fat_node n = kvro__fat_root(v);
    const char *p = key, *c;
    size_t len;
    while ((len = kvro__component(&p, &c, NULL)) != 0) {
        fat_node next;
        bool found = false;
        kvro_status s = kvro__fat_dir_lookup(v, &n, c, len, &next, &found, err);
        if (s == KVRO_OK && found && !next.dir)
            s = kvro_error_set(err, KVRO_E_NOT_DIR, "FAT: '%.*s' is a file, not a directory",
                               (int)len, c);
        if (s == KVRO_OK && !found)
            s = make_dir(v, &n, c, len, &next, err);
        if (s != KVRO_OK)
            return s;
        n = next;
    }
    *out = n;
    return KVRO_OK;
}

kvro_status kvro__fat_mkdir(fat_vol *v, const char *key, kvro_error *err)
{
    fat_node n;
    return ensure_dir(v, key, &n, err);
}

kvro_status kvro__fat_create(fat_vol *v, const char *key, kvro_error *err)
{
    char parent[KVRO_KEY_MAX + 1];
    const char *name;
    size_t n;
    split(key, parent, &name, &n);
    fat_node dir, old;
    bool found = false;
    kvro_status s = ensure_dir(v, parent, &dir, err);
    if (s == KVRO_OK)
        s = kvro__fat_dir_lookup(v, &dir, name, n, &old, &found, err);
    if (s == KVRO_OK && found)
        return kvro_error_set(err, KVRO_E_EXISTS,
                              "FAT: the name exists (FAT names are "
                              "case-insensitive)");
    fat_entry e = {.attr = 0x20};
    now(&e.date, &e.time);
    int64_t pos;
    return s == KVRO_OK ? dir_add(v, &dir, name, n, &e, &pos, err) : s;
}

/* ---------------------------------------------------------------- files */

/* Writes LEN bytes of BUF (zeros if BUF is NULL) at file offset OFF, into
 * the clusters CLUSTER_AT gives. */
typedef struct target {
    const fat_chain *old; /* the file's clusters before this write */
    uint32_t have;        /* ... how many */
    const uint32_t *added;
} target;

static uint32_t cluster_at(const target *t, uint32_t i)
{
    if (i < t->have) {
        const fat_run *r = kvro__fat_chain_find(t->old, i);
        return r->cluster + (i - r->index);
    }
    return t->added[i - t->have];
}

static kvro_status put_bytes(fat_vol *v, const target *t, int64_t off, const unsigned char *buf,
                             int64_t len, kvro_error *err)
{
    const int64_t cs = v->bpb.cluster_size;
    kvro_status s = KVRO_OK;
    while (s == KVRO_OK && len > 0) {
        uint32_t i = (uint32_t)(off / cs);
        uint32_t c = cluster_at(t, i);
        int64_t in = off % cs, n = cs - in;
        /* Consecutive clusters in one call. */
        while (n < len && cluster_at(t, i + 1) == c + (i + 1 - (uint32_t)(off / cs)))
            n += cs, i++;
        if (n > len)
            n = len;
        int64_t at = cluster_off(v, c) + in;
        s = buf ? kvro_io_write(v->io, at, buf, (size_t)n, err) : write_zeros(v, at, n, err);
        off += n, len -= n;
        if (buf)
            buf += n;
    }
    return s;
}

kvro_status kvro__fat_write(fat_vol *v, const char *key, int64_t off, const void *buf, int64_t len,
                            kvro_error *err)
{
    fat_node n;
    kvro_status s = kvro__fat_walk(v, key, &n, err);
    if (s == KVRO_OK && n.dir)
        s = kvro_error_set(err, KVRO_E_IS_DIR, "FAT: a directory, not a file");
    if (s != KVRO_OK || len == 0)
        return s;
    if (off + len > 0xFFFFFFFFll)
        return NOSPACE("a FAT file holds at most 4 GiB - 1 bytes");
    const uint32_t cs = v->bpb.cluster_size;
    uint32_t size = n.size, new_size = off + len > size ? (uint32_t)(off + len) : size;
    uint32_t have = n.first ? (uint32_t)(((uint64_t)size + cs - 1) / cs) : 0;
    if (!have && n.first)
        /* A cluster and no size: the old chain is dropped (lost), not
         * reused, as nothing says how long it is. */
        n.first = 0;
    uint32_t need = (uint32_t)(((uint64_t)new_size + cs - 1) / cs);
    target t = {NULL, have, NULL};
    if (have)
        s = kvro__fat_chain_get(&v->table, n.first, have, false, (fat_chain **)&t.old, err);
    uint32_t *added = NULL, first_new = 0;
    if (s == KVRO_OK && need > have) {
        added = malloc((size_t)(need - have) * sizeof *added);
        s = added ? alloc(v, need - have, &first_new, added, err) : NOMEM();
        t.added = added;
        /* The new chain, marked but reachable from nowhere yet. */
        if (s == KVRO_OK)
            s = flush_fat(v, err);
    }
    /* A gap between the old end and OFF reads as zeros. */
    if (s == KVRO_OK && off > size)
        s = put_bytes(v, &t, size, NULL, off - size, err);
    if (s == KVRO_OK)
        s = put_bytes(v, &t, off, buf, len, err);
    if (s == KVRO_OK && need > have && have) {
        /* Clusters past the size (left by another system) go first. */
        uint32_t last = cluster_at(&t, have - 1), rest = kvro__fat_get(&v->table, last);
        if (!kvro__fat_is_end(&v->table, rest)) {
            kvro__fat_set(&v->table, last, kvro__fat_eoc(&v->table));
            free_chain(v, rest);
        }
        kvro__fat_set(&v->table, last, first_new);
        kvro__fat_chain_forget(&v->table, n.first);
        s = flush_fat(v, err);
    }
    if (s == KVRO_OK) {
        /* Size, first cluster and time in one write of the entry. */
        unsigned char e[FAT_DIRENT];
        s = kvro__fat_read_exact(v, n.pos, e, sizeof e, "a directory entry", err);
        uint32_t first = have ? n.first : first_new;
        uint16_t date, time_;
        now(&date, &time_);
        put16(e + 20, first >> 16);
        put16(e + 26, first & 0xFFFF);
        put32(e + 28, new_size);
        put16(e + 22, time_);
        put16(e + 24, date);
        put16(e + 18, date);
        e[11] |= 0x20; /* archive: changed since the last backup */
        if (s == KVRO_OK)
            s = kvro_io_write(v->io, n.pos, e, sizeof e, err);
    }
    kvro__fat_chain_put(&v->table, (fat_chain *)t.old);
    free(added);
    return s;
}

/* ------------------------------------------------------------- destroy */

static int any_entry(void *arg, const fat_dirent *e)
{
    (void)e;
    *(bool *)arg = true;
    return 1;
}

/* Long-name slots an entry can have: 255 UTF-16 units, 13 a slot. */
#define LFN_SLOTS_MAX 20

/* Where an entry's slots were before they were marked deleted, and their
 * first bytes, so a change that fails after it can put them back. */
typedef struct unmarked {
    fat_node dir;
    size_t from, count;
    unsigned char first[LFN_SLOTS_MAX + 1];
} unmarked;

/* Marks entry N of directory DIR deleted, its long-name slots with it
 * (one write when they lie together); what was there in *U. */
static kvro_status entry_delete(fat_vol *v, const fat_node *dir, const fat_node *n, unmarked *u,
                                kvro_error *err)
{
    dir_buf d;
    kvro_status s = dir_load(v, dir, &d, err);
    /* The short entry, found by where it lies, and its slots before it. */
    size_t total = d.len / FAT_DIRENT, at = total, run;
    for (size_t i = 0; s == KVRO_OK && i < total; i++)
        if (entry_pos(v, &d, i, &run) == n->pos) {
            at = i;
            break;
        }
    if (s == KVRO_OK && at == total)
        s = kvro_error_set(err, KVRO_E_CORRUPT, "FAT: the entry is not where it was found");
    if (s == KVRO_OK) {
        uint8_t sum = kvro__fat_checksum(d.buf + at * FAT_DIRENT);
        size_t from = at;
        for (int ord = 1; from > 0 && ord <= LFN_SLOTS_MAX; ord++) {
            const unsigned char *e = d.buf + (from - 1) * FAT_DIRENT;
            if ((e[11] & 0x3F) != 0x0F || e[0] == 0xE5 || e[13] != sum || (e[0] & 0x1F) != ord)
                break;
            from--;
            if (e[0] & 0x40)
                break;
        }
        *u = (unmarked){.dir = *dir, .from = from, .count = at - from + 1};
        for (size_t i = from; i <= at; i++) {
            u->first[i - from] = d.buf[i * FAT_DIRENT];
            d.buf[i * FAT_DIRENT] = 0xE5;
        }
        s = dir_write(v, &d, from, at - from + 1, err);
    }
    dir_release(v, &d);
    return s;
}

/* Puts back what entry_delete marked (after a later step failed). */
static void entry_undelete(fat_vol *v, const unmarked *u)
{
    dir_buf d;
    if (dir_load(v, &u->dir, &d, NULL) == KVRO_OK && (u->from + u->count) * FAT_DIRENT <= d.len) {
        for (size_t i = 0; i < u->count; i++)
            d.buf[(u->from + i) * FAT_DIRENT] = u->first[i];
        dir_write(v, &d, u->from, u->count, NULL);
    }
    dir_release(v, &d);
}

/* Frees the chain of a file or directory whose entry is gone. */
static kvro_status release(fat_vol *v, uint32_t first, kvro_error *err)
{
    if (!first)
        return KVRO_OK;
    if (first <= v->table.clusters + 1)
        set_named(v, first, false); /* its entry is gone */
    free_chain(v, first);
    return flush_fat(v, err);
}

kvro_status kvro__fat_destroy(fat_vol *v, const char *key, kvro_error *err)
{
    char parent[KVRO_KEY_MAX + 1];
    const char *name;
    size_t nlen;
    split(key, parent, &name, &nlen);
    fat_node n, dir;
    kvro_status s = kvro__fat_walk(v, key, &n, err);
    if (s == KVRO_OK && n.pos == 0)
        s = kvro_error_set(err, KVRO_E_INVALID, "FAT: the root is not removed");
    if (s == KVRO_OK && n.dir) {
        bool any = false;
        s = kvro__fat_dir_each(v, &n, any_entry, &any, err);
        if (s == KVRO_OK && any)
            s = kvro_error_set(err, KVRO_E_NOT_EMPTY, "FAT: the directory is not empty");
    }
    if (s == KVRO_OK)
        s = kvro__fat_walk(v, parent, &dir, err);
    unmarked u;
    if (s == KVRO_OK)
        s = entry_delete(v, &dir, &n, &u, err);
    return s == KVRO_OK ? release(v, n.first, err) : s;
}

/* Points the ".." entry of the directory at cluster DIR at cluster PARENT
 * (0 for the root, on FAT32 too), where that entry is where it belongs
 * (the second of the directory's first cluster). */
static kvro_status set_dotdot(fat_vol *v, uint32_t dir, uint32_t parent, kvro_error *err)
{
    unsigned char e[FAT_DIRENT];
    int64_t at = cluster_off(v, dir) + FAT_DIRENT;
    kvro_status s = kvro__fat_read_exact(v, at, e, sizeof e, "a directory's '..'", err);
    if (s != KVRO_OK || memcmp(e, "..         ", 11) != 0 || !(e[11] & 0x10))
        return s;
    put16(e + 26, parent & 0xFFFF);
    put16(e + 20, v->bpb.type == 32 ? parent >> 16 : 0);
    return kvro_io_write(v->io, at, e, sizeof e, err);
}

/*
 * Renames FROM to TO: a file, replacing a file TO, or a directory, to a
 * name that is free and not inside itself. Two entries never name one
 * chain, even for an instant: TO's old entry and FROM's are marked deleted
 * first, then TO's entry is written with FROM's cluster, size, attributes
 * and times, and only then is the replaced file's chain freed. An
 * interruption between leaves lost clusters (fsck.fat -a), never a shared
 * chain; a step that fails (the directory full, say) puts the deleted
 * entries back, as they were. A directory moved to another parent has its
 * ".." pointed there last: an interruption just before leaves it pointing
 * at the old parent, which fsck.fat -a mends.
 */
kvro_status kvro__fat_rename(fat_vol *v, const char *from, const char *to, kvro_error *err)
{
    char fparent[KVRO_KEY_MAX + 1], tparent[KVRO_KEY_MAX + 1];
    const char *fname, *tname;
    size_t fn, tn;
    split(from, fparent, &fname, &fn);
    split(to, tparent, &tname, &tn);
    fat_node n, fdir, tdir, old;
    uint32_t seen[FAT_DEPTH_MAX];
    size_t depth = 0;
    kvro_status s = kvro__fat_walk(v, from, &n, err);
    if (s == KVRO_OK && n.pos == 0)
        s = kvro_error_set(err, KVRO_E_INVALID, "FAT: the root is not moved");
    if (s == KVRO_OK && !strcmp(from, to))
        return KVRO_OK;
    if (s == KVRO_OK)
        s = kvro__fat_walk(v, fparent, &fdir, err);
    if (s == KVRO_OK)
        s = kvro__fat_walk_seen(v, tparent, &tdir, seen, &depth, err);
    if (s == KVRO_OK && !tdir.dir)
        s = kvro_error_set(err, KVRO_E_NOT_DIR, "FAT: '%s' is not a directory", tparent);
    for (size_t i = 0; s == KVRO_OK && n.dir && i < depth; i++)
        if (seen[i] == n.first)
            s = kvro_error_set(err, KVRO_E_INVALID, "FAT: a directory is not moved into itself");
    bool found = false;
    if (s == KVRO_OK)
        s = kvro__fat_dir_lookup(v, &tdir, tname, tn, &old, &found, err);
    if (s == KVRO_OK && found && old.pos == n.pos)
        found = false; /* the same entry: a new case, or the same name */
    if (s == KVRO_OK && found && n.dir)
        s = kvro_error_set(err, KVRO_E_EXISTS, "FAT: '%s' exists: a directory replaces nothing",
                           to);
    if (s == KVRO_OK && found && old.dir)
        s = kvro_error_set(err, KVRO_E_IS_DIR, "FAT: '%s' is a directory", to);
    /* A name FAT cannot hold is refused before anything changes. */
    fat_name *nm = s == KVRO_OK ? malloc(sizeof *nm) : NULL;
    if (s == KVRO_OK && !nm)
        s = NOMEM();
    if (s == KVRO_OK)
        s = kvro__fat_name_parse(tname, tn, nm, err);
    free(nm);
    if (s != KVRO_OK)
        return s;
    unmarked uo, un;
    if (found && (s = entry_delete(v, &tdir, &old, &uo, err)) != KVRO_OK)
        return s;
    if ((s = entry_delete(v, &fdir, &n, &un, err)) != KVRO_OK) {
        if (found)
            entry_undelete(v, &uo);
        return s;
    }
    fat_entry e = {
        .attr = n.attr, .first = n.first, .size = n.size, .time = n.time, .date = n.date};
    int64_t pos;
    if ((s = dir_add(v, &tdir, tname, tn, &e, &pos, err)) != KVRO_OK) {
        entry_undelete(v, &un);
        if (found)
            entry_undelete(v, &uo);
        return s;
    }
    if (n.dir && tdir.first != fdir.first)
        return set_dotdot(v, n.first, tdir.pos == 0 ? 0 : tdir.first, err);
    return found ? release(v, old.first, err) : KVRO_OK;
}
