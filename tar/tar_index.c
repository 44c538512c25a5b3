/*
 * tar_index.c — the member table (see tar_index.h): building it member by
 * member with tar semantics, and resolving keys through it.
 *
 * Tar semantics followed (as GNU tar extracts): a later member of the same
 * name replaces an earlier one; "a/b/c" implies directories "a" and "a/b";
 * a member inside a non-directory, or a file replacing a directory that has
 * members inside it, is a malformed archive (KVRO_E_CORRUPT at open, naming
 * both). Symbolic links are resolved at lookup, relative to the link's
 * directory, never above the archive's root (POSIX path resolution, with
 * the archive as the whole tree); hard links name another member exactly.
 */
#include "tar_index.h"

#include "walk.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The size of a transparent huge page on x86-64 and arm64 (4 KiB pages). */
#define HUGE_PAGE ((size_t)2 << 20)

static uint32_t hash_of(uint32_t parent, const char *name, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull ^ ((uint64_t)parent * 0x9E3779B97F4A7C15ull);
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)name[i]) * 0x100000001b3ull;
    return (uint32_t)(h ^ (h >> 32));
}

static kvro_status oom(kvro_error *err)
{
    return kvro_error_set(err, KVRO_E_NOMEM, "tar: out of memory building the member index");
}

/* Appends NAME[N] and a NUL; *at gets its offset. Offsets are 32-bit to
 * keep nodes small, which bounds the names of one archive to 4 GiB. */
static kvro_status arena_add(tar_index *ix, const char *name, size_t n, uint32_t *at,
                             kvro_error *err)
{
    if (n + 1 > (size_t)UINT32_MAX - ix->arena_len)
        return kvro_error_set(err, KVRO_E_UNSUPPORTED, "tar: member names exceed 4 GiB");
    if (ix->arena_len + n + 1 > ix->arena_cap) {
        size_t cap = ix->arena_cap ? ix->arena_cap : 65536;
        while (cap < ix->arena_len + n + 1)
            cap *= 2;
        if (cap > UINT32_MAX)
            cap = UINT32_MAX;
        char *a = realloc(ix->arena, cap);
        if (!a)
            return oom(err);
        ix->arena = a;
        ix->arena_cap = cap;
    }
    memcpy(ix->arena + ix->arena_len, name, n);
    ix->arena[ix->arena_len + n] = '\0';
    *at = (uint32_t)ix->arena_len;
    ix->arena_len += n + 1;
    return KVRO_OK;
}

static void bucket_insert(tar_index *ix, uint32_t i)
{
    uint32_t b = ix->hash[i] & (ix->nbuckets - 1);
    ix->nodes[i].hnext = ix->buckets[b];
    ix->buckets[b] = i;
}

/* Rebuilds the chains over NBUCKETS buckets from the stored hashes: one
 * pass in node order, no name read. */
static kvro_status rehash(tar_index *ix, uint32_t nbuckets, kvro_error *err)
{
    uint32_t *b = malloc((size_t)nbuckets * sizeof *b);
    if (!b)
        return oom(err);
    memset(b, 0xff, (size_t)nbuckets * sizeof *b); /* TAR_NONE */
    free(ix->buckets);
    ix->buckets = b;
    ix->nbuckets = nbuckets;
    for (uint32_t i = 1; i < ix->n; i++) /* the root is never looked up by name */
        bucket_insert(ix, i);
    return KVRO_OK;
}

/* Doubles the table in place: each chain splits in two by the next bit of
 * its nodes' hashes, in its order, so only the new half of the buckets is
 * written afresh and no name is read. */
static kvro_status grow_buckets(tar_index *ix, kvro_error *err)
{
    uint32_t old = ix->nbuckets;
    uint32_t *b = realloc(ix->buckets, (size_t)old * 2 * sizeof *b);
    if (!b)
        return oom(err);
    ix->buckets = b;
    ix->nbuckets = old * 2;
    for (uint32_t k = 0; k < old; k++) {
        uint32_t lo = TAR_NONE, hi = TAR_NONE, *lo_end = &lo, *hi_end = &hi;
        for (uint32_t i = b[k]; i != TAR_NONE; i = ix->nodes[i].hnext) {
            uint32_t **end = ix->hash[i] & old ? &hi_end : &lo_end;
            **end = i; /* links the previous node of that half: I's own link is read next */
            *end = &ix->nodes[i].hnext;
        }
        *lo_end = *hi_end = TAR_NONE;
        b[k] = lo;
        b[k + old] = hi;
    }
    return KVRO_OK;
}

/* The node for NAME[N] in directory PARENT, whose hash is H. */
static uint32_t find_hashed(const tar_index *ix, uint32_t parent, const char *name, size_t n,
                            uint32_t h)
{
    uint32_t i = ix->buckets[h & (ix->nbuckets - 1)];
    for (; i != TAR_NONE; i = ix->nodes[i].hnext) {
        if (ix->hash[i] != h)
            continue;
        const tar_node *d = &ix->nodes[i];
        if (d->parent == parent && strncmp(ix->arena + d->name, name, n) == 0 &&
            ix->arena[d->name + n] == '\0')
            return i;
    }
    return TAR_NONE;
}

static uint32_t find(const tar_index *ix, uint32_t parent, const char *name, size_t n)
{
    return find_hashed(ix, parent, name, n, hash_of(parent, name, n));
}

/* Resizes table P, of which USED bytes are in use, to BYTES. A table of
 * 2 MiB or more is placed on a 2 MiB boundary and advised for transparent
 * huge pages: filled 4 KiB at a time, a 100,000-member archive's nodes
 * take 1,400 page faults, and where a fault is dear (tens of microseconds
 * in a VM) they were most of the time an open took. Resident memory grows
 * by under one huge page, since only the pages touched are ever backed. */
static void *table_resize(void *p, size_t used, size_t old, size_t bytes)
{
    if (bytes < HUGE_PAGE)
        return realloc(p, bytes);
    if (old >= HUGE_PAGE) { /* placed so already: the allocator moves its pages, not bytes */
        void *q = realloc(p, bytes);
#ifdef MADV_HUGEPAGE
        uintptr_t from = ((uintptr_t)q + 4095) & ~(uintptr_t)4095;
        uintptr_t to = ((uintptr_t)q + bytes) & ~(uintptr_t)4095;
        if (q && to > from)
            (void)madvise((void *)from, to - from, MADV_HUGEPAGE);
#endif
        return q;
    }
    size_t size = (bytes + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1);
    void *q = aligned_alloc(HUGE_PAGE, size);
    if (!q)
        return NULL;
#ifdef MADV_HUGEPAGE
    (void)madvise(q, size, MADV_HUGEPAGE); /* advice: refused, it costs only speed */
#endif
    if (used)
        memcpy(q, p, used);
    free(p);
    return q;
}

/* Grows the node table (and its hashes) to CAP entries. */
static kvro_status grow_nodes(tar_index *ix, uint32_t cap, kvro_error *err)
{
    tar_node *v = table_resize(ix->nodes, (size_t)ix->n * sizeof *v, (size_t)ix->cap * sizeof *v,
                               (size_t)cap * sizeof *v);
    if (!v)
        return oom(err);
    ix->nodes = v;
    uint32_t *h = realloc(ix->hash, (size_t)cap * sizeof *h);
    if (!h)
        return oom(err);
    ix->hash = h;
    ix->cap = cap;
    return KVRO_OK;
}

kvro_status kvro__tar_index_init(tar_index *ix, kvro_error *err)
{
    memset(ix, 0, sizeof *ix);
    uint32_t name;
    if (grow_nodes(ix, 1024, err) != KVRO_OK || arena_add(ix, "", 0, &name, err) != KVRO_OK ||
        rehash(ix, 1024, err) != KVRO_OK) {
        kvro__tar_index_free(ix);
        return oom(err);
    }
    ix->nodes[0] = (tar_node){.name = name,
                              .link = TAR_NONE,
                              .parent = 0,
                              .child = TAR_NONE,
                              .sibling = TAR_NONE,
                              .hnext = TAR_NONE,
                              .mode = 0755,
                              .kind = TAR_K_DIR};
    ix->hash[0] = 0; /* never looked up: the root is in no chain */
    ix->n = 1;
    return KVRO_OK;
}

void kvro__tar_index_reserve(tar_index *ix, uint64_t members)
{
    /* Only a table of huge pages is reserved: a smaller one doubles as it
     * fills, cheaply, and takes no more heap than its members need. The
     * cap keeps a huge archive of huge members from asking for much more
     * address space than it will use: past it, the table doubles. */
    members += members / 8 + 1024; /* and the directories their paths imply, and the root */
    uint64_t cap = members < (1u << 22) ? members : (1u << 22);
    kvro_error ignored; /* a hint: without the room, the table grows as before */
    if (cap > ix->cap && cap * sizeof *ix->nodes >= HUGE_PAGE)
        (void)grow_nodes(ix, (uint32_t)cap, &ignored);
}

void kvro__tar_index_free(tar_index *ix)
{
    free(ix->nodes);
    free(ix->hash);
    free(ix->last_path);
    free(ix->arena);
    free(ix->buckets);
    free(ix->sparse);
    free(ix->regions);
    free(ix->hl_owner);
    memset(ix, 0, sizeof *ix);
}

kvro_status kvro__tar_sparse_check(tar_region *r, size_t *n, int64_t size, int64_t stored,
                                   const char *name, kvro_error *err)
{
    int64_t end = 0, data = 0;
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        const char *why = NULL;
        if (r[i].off < 0 || r[i].len < 0)
            why = "a negative offset or length";
        else if (r[i].off < end)
            why = "out of order or overlapping the one before";
        else if (r[i].off > size || r[i].len > size - r[i].off)
            why = "past the logical size";
        else if (r[i].len > stored - data)
            why = "more data than the member stores";
        if (why)
            return kvro_error_set(err, KVRO_E_CORRUPT,
                                  "tar: sparse member '%s': region %zu (offset %lld, %lld bytes) "
                                  "is %s",
                                  name, i, (long long)r[i].off, (long long)r[i].len, why);
        end = r[i].off + r[i].len;
        if (r[i].len == 0)
            continue;
        r[kept] = (tar_region){.off = r[i].off, .len = r[i].len, .data = data};
        data += r[i].len;
        kept++;
    }
    if (data != stored)
        return kvro_error_set(err, KVRO_E_CORRUPT,
                              "tar: sparse member '%s': its map holds %lld bytes of data, the "
                              "member stores %lld",
                              name, (long long)data, (long long)stored);
    *n = kept;
    return KVRO_OK;
}

uint64_t kvro__tar_sparse_find(const tar_index *ix, const tar_sparse *sp, int64_t off)
{
    if (sp->count == 0) /* ix->regions may be NULL: no arithmetic on it */
        return 0;
    const tar_region *r = ix->regions + sp->first;
    uint64_t lo = 0, hi = sp->count; /* the first region ending after OFF is in [lo, hi] */
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (r[mid].off + r[mid].len <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Keeps M's map; *AT gets its tar_sparse index. */
static kvro_status sparse_add(tar_index *ix, const tar_member *m, uint32_t *at, kvro_error *err)
{
    if (ix->nsparse == ix->sparse_cap) {
        if (ix->sparse_cap >= TAR_NONE / 2)
            return kvro_error_set(err, KVRO_E_UNSUPPORTED, "tar: too many sparse members");
        uint32_t cap = ix->sparse_cap ? ix->sparse_cap * 2 : 16;
        tar_sparse *v = realloc(ix->sparse, (size_t)cap * sizeof *v);
        if (!v)
            return oom(err);
        ix->sparse = v;
        ix->sparse_cap = cap;
    }
    if (m->nregions > ix->regions_cap - ix->nregions) {
        uint64_t cap = ix->regions_cap ? ix->regions_cap : 64;
        while (cap - ix->nregions < m->nregions)
            cap *= 2;
        if (cap > SIZE_MAX / sizeof(tar_region))
            return oom(err);
        tar_region *v = realloc(ix->regions, (size_t)cap * sizeof *v);
        if (!v)
            return oom(err);
        ix->regions = v;
        ix->regions_cap = cap;
    }
    if (m->nregions)
        memcpy(ix->regions + ix->nregions, m->regions, m->nregions * sizeof *m->regions);
    ix->sparse[ix->nsparse] =
        (tar_sparse){.first = ix->nregions, .count = m->nregions, .stored = m->stored};
    ix->nregions += m->nregions;
    *at = ix->nsparse++;
    return KVRO_OK;
}

tar_path_check kvro__tar_path_normalise(const char *in, size_t n, char *out)
{
    /* Copied first, then split in place: the write position never passes
     * the read position. A NUL in IN ends the name, as it would in C. */
    memcpy(out, in, n);
    out[n] = '\0';
    const char *p = out, *c;
    size_t len, o = 0;
    bool leading = true;
    while ((len = kvro__component(&p, &c, NULL)) > 0) {
        /* Leading "/" and "./" are how archivers spell "relative to here". */
        if (leading && len == 1 && c[0] == '.')
            continue;
        leading = false;
        if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
            return TAR_PATH_DOT;
        if (o)
            out[o++] = '/';
        memmove(out + o, c, len);
        o += len;
    }
    out[o] = '\0';
    return TAR_PATH_OK;
}

/* A new node for NAME[N] (hash H) in directory PARENT. */
static kvro_status new_node(tar_index *ix, uint32_t parent, const char *name, size_t n, uint32_t h,
                            uint32_t *out, kvro_error *err)
{
    if (ix->n == TAR_NONE - 1)
        return kvro_error_set(err, KVRO_E_UNSUPPORTED, "tar: too many members");
    if (ix->n == ix->cap) {
        kvro_status s = grow_nodes(ix, ix->cap > (TAR_NONE >> 1) ? TAR_NONE - 1 : ix->cap * 2, err);
        if (s != KVRO_OK)
            return s;
    }
    if (ix->n >= ix->nbuckets && ix->nbuckets < (1u << 31)) {
        kvro_status s = grow_buckets(ix, err);
        if (s != KVRO_OK)
            return s;
    }
    uint32_t at = 0;
    kvro_status s = arena_add(ix, name, n, &at, err);
    if (s != KVRO_OK)
        return s;
    uint32_t i = ix->n++;
    ix->nodes[i] = (tar_node){.name = at,
                              .link = TAR_NONE,
                              .parent = parent,
                              .child = TAR_NONE,
                              .sibling = ix->nodes[parent].child,
                              .hnext = TAR_NONE,
                              .kind = TAR_K_DIR};
    ix->hash[i] = h;
    ix->nodes[parent].child = i;
    bucket_insert(ix, i);
    *out = i;
    return KVRO_OK;
}

static const char *kind_word(uint8_t kind)
{
    switch (kind) {
    case TAR_K_DIR: return "directory";
    case TAR_K_HARDLINK: return "hard link";
    case TAR_K_SYMLINK: return "symbolic link";
    case TAR_K_SPECIAL: return "special file";
    default: return "file";
    }
}

/* Fills node I from M, keeping its place in the tree. */
static kvro_status set_member(tar_index *ix, uint32_t i, const tar_member *m, kvro_error *err)
{
    uint32_t link = TAR_NONE;
    if (m->kind == TAR_K_SPARSE) {
        kvro_status s = sparse_add(ix, m, &link, err);
        if (s != KVRO_OK)
            return s;
    } else if (m->link) {
        kvro_status s = arena_add(ix, m->link, strlen(m->link), &link, err);
        if (s != KVRO_OK)
            return s;
    }
    tar_node *d = &ix->nodes[i];
    d->off = m->off;
    d->size = m->kind == TAR_K_DIR ? 0 : m->size;
    d->mtime = m->mtime;
    d->nsec = m->nsec;
    d->mode = (uint16_t)(m->mode & 07777);
    d->kind = (uint8_t)m->kind;
    d->link = link;
    d->flags |= TAR_F_EXPLICIT;
    return KVRO_OK;
}

/* Adds M as NAME[N], the last component of its path, in directory DIR. */
static kvro_status add_leaf(tar_index *ix, uint32_t dir, const char *name, size_t n,
                            const tar_member *m, int64_t hdr, kvro_error *err)
{
    uint32_t h = hash_of(dir, name, n);
    uint32_t i = find_hashed(ix, dir, name, n, h);
    if (i == TAR_NONE) {
        kvro_status s = new_node(ix, dir, name, n, h, &i, err);
        if (s != KVRO_OK)
            return s;
    } else if (m->kind != TAR_K_DIR && ix->nodes[i].child != TAR_NONE) {
        return kvro_error_set(err, KVRO_E_CORRUPT,
                              "tar: member '%s' at offset %lld is a %s, but earlier "
                              "members are inside it",
                              m->path, (long long)hdr, kind_word((uint8_t)m->kind));
    }
    return set_member(ix, i, m, err);
}

/* Remembers DIR as the directory whose path is P[N]. The map from a path
 * to its directory never changes: nodes are never removed, and a
 * directory with something in it never becomes a file (that is
 * KVRO_E_CORRUPT). Without room to remember, nothing is remembered. */
static void remember_dir(tar_index *ix, const char *p, size_t n, uint32_t dir)
{
    ix->last_len = 0;
    if (n + 1 > ix->last_cap) {
        size_t cap = ix->last_cap ? ix->last_cap : 256;
        while (cap < n + 1)
            cap *= 2;
        char *v = realloc(ix->last_path, cap);
        if (!v)
            return;
        ix->last_path = v;
        ix->last_cap = cap;
    }
    memcpy(ix->last_path, p, n);
    ix->last_len = n;
    ix->last_dir = dir;
}

kvro_status kvro__tar_index_add(tar_index *ix, const tar_member *m, int64_t hdr, kvro_error *err)
{
    const char *p = m->path;
    uint32_t cur = 0;
    if (!*p) /* "./": the root's own member */
        return m->kind == TAR_K_DIR ? set_member(ix, 0, m, err) : KVRO_OK;
    /* In the directory of the member before: straight to its last
     * component. (A normalised path has no trailing '/'.) */
    const char *slash = strrchr(p, '/');
    size_t dlen = slash ? (size_t)(slash - p) : 0;
    if (dlen && slash[1] && dlen == ix->last_len && memcmp(p, ix->last_path, dlen) == 0 &&
        ix->nodes[ix->last_dir].kind == TAR_K_DIR)
        return add_leaf(ix, ix->last_dir, slash + 1, strlen(slash + 1), m, hdr, err);
    const char *c;
    size_t n;
    bool last;
    while ((n = kvro__component(&p, &c, &last)) > 0) {
        if (last) {
            if (dlen && slash[1])
                remember_dir(ix, m->path, dlen, cur);
            return add_leaf(ix, cur, c, n, m, hdr, err);
        }
        uint32_t h = hash_of(cur, c, n);
        uint32_t i = find_hashed(ix, cur, c, n, h);
        if (i == TAR_NONE) {
            kvro_status s = new_node(ix, cur, c, n, h, &i, err);
            if (s != KVRO_OK)
                return s;
        } else if (ix->nodes[i].kind != TAR_K_DIR) {
            return kvro_error_set(err, KVRO_E_CORRUPT,
                                  "tar: member '%s' at offset %lld is inside '%.*s', an earlier "
                                  "member that is a %s, not a directory",
                                  m->path, (long long)hdr, (int)(c + n - m->path), m->path,
                                  kind_word(ix->nodes[i].kind));
        }
        cur = i;
    }
    return KVRO_OK; /* not reached: a normalised path ends in a component */
}

void kvro__tar_index_path(const tar_index *ix, uint32_t node, char *buf, size_t size)
{
    /* Components are collected leaf first, then written root first. */
    uint32_t chain[64];
    size_t depth = 0;
    bool cut = false;
    for (uint32_t i = node; i != 0; i = ix->nodes[i].parent) {
        if (depth == 64) {
            cut = true;
            break;
        }
        chain[depth++] = i;
    }
    size_t o = 0;
    buf[0] = '\0';
    if (cut)
        o += (size_t)snprintf(buf, size, ".../");
    while (depth && o < size) {
        depth--;
        o += (size_t)snprintf(buf + o, size - o, "%s%s", tar_node_name(ix, chain[depth]),
                              depth ? "/" : "");
    }
}

/* ------------------------------------------------------------ resolving */

/* The index as walk.c sees it: nodes are node numbers, and link targets
 * are at hand in the arena. */
static kvro_status tw_lookup(void *ctx, uint64_t dir, const char *name, size_t n,
                             kvro__wentry *e, kvro_error *err)
{
    (void)err;
    const tar_index *ix = ctx;
    uint32_t i = find(ix, (uint32_t)dir, name, n);
    if (i == TAR_NONE) {
        e->kind = KVRO__W_MISSING;
        return KVRO_OK;
    }
    const tar_node *d = &ix->nodes[i];
    e->node = i;
    e->id[0] = i;
    switch (d->kind) {
    case TAR_K_DIR:
        e->kind = KVRO__W_DIR;
        break;
    case TAR_K_SYMLINK:
    case TAR_K_HARDLINK:
        e->kind = d->kind == TAR_K_SYMLINK ? KVRO__W_SYMLINK : KVRO__W_HARDLINK;
        e->target = ix->arena + d->link;
        break;
    default:
        e->kind = KVRO__W_OTHER;
        break;
    }
    return KVRO_OK;
}

static kvro_status tw_enter(void *ctx, uint64_t dir, const char *name, size_t n,
                            const kvro__wentry *e, uint64_t *entered, kvro_error *err)
{
    (void)ctx, (void)dir, (void)name, (void)n, (void)err;
    *entered = e->node;
    return KVRO_OK;
}

/* Absolute targets lead outside: an archive has no real path of its own. */
static const kvro__walk_ops tar_walk_ops = {
    .lookup = tw_lookup,
    .enter = tw_enter,
    .root = 0,
    .root_word = "the archive root",
};

static kvro_status servable(const tar_index *ix, uint32_t node, kvro_error *err)
{
    uint8_t k = ix->nodes[node].kind;
    if (k == TAR_K_DIR || k == TAR_K_FILE || k == TAR_K_SPARSE)
        return KVRO_OK;
    char name[512];
    kvro__tar_index_path(ix, node, name, sizeof name);
    return kvro_error_set(err, KVRO_E_UNSUPPORTED, "tar: '%s' is a %s, not a file or directory",
                          name, kind_word(k));
}

kvro_status kvro__tar_index_resolve(const tar_index *ix, const char *key, uint32_t *node,
                                    kvro_error *err)
{
    kvro__walk_end end;
    kvro_status s = kvro__walk(&tar_walk_ops, (void *)ix, key, KVRO__WALK_FOLLOW, &end, err);
    if (s != KVRO_OK)
        return s;
    *node = (uint32_t)end.e.node;
    kvro__walk_end_done(&tar_walk_ops, (void *)ix, &end);
    return servable(ix, *node, err);
}

kvro_status kvro__tar_index_lookup(const tar_index *ix, const char *key, uint32_t *node,
                                   kvro_error *err)
{
    kvro__walk_end end;
    kvro_status s = kvro__walk(&tar_walk_ops, (void *)ix, key, 0, &end, err);
    if (s != KVRO_OK)
        return s;
    *node = (uint32_t)end.e.node;
    kvro__walk_end_done(&tar_walk_ops, (void *)ix, &end);
    s = kvro__tar_index_owner(ix, *node, node, err);
    if (s != KVRO_OK || ix->nodes[*node].kind == TAR_K_SYMLINK)
        return s;
    return servable(ix, *node, err);
}

kvro_status kvro__tar_index_owner(const tar_index *ix, uint32_t node, uint32_t *owner,
                                  kvro_error *err)
{
    /* Each step walks the target's path from the root, its last component
     * not followed: a hard link to a symlink is that symlink (GNU tar
     * archives one so). */
    for (int hops = 0; ix->nodes[node].kind == TAR_K_HARDLINK; hops++) {
        const char *target = ix->arena + ix->nodes[node].link;
        char name[512];
        kvro__walk_end end;
        kvro_status s = hops >= KVRO_MAX_LINKS
                            ? kvro_error_set(err, KVRO_E_LINK, "too many levels of links")
                            : kvro__walk(&tar_walk_ops, (void *)ix, target, 0, &end, err);
        if (s == KVRO_E_NOT_FOUND || s == KVRO_E_NOT_DIR) {
            kvro__tar_index_path(ix, node, name, sizeof name);
            return kvro_error_set(err, KVRO_E_CORRUPT,
                                  "hard link '%s' -> '%s': no such member in the archive", name,
                                  target);
        }
        if (s != KVRO_OK)
            return s;
        node = (uint32_t)end.e.node;
        kvro__walk_end_done(&tar_walk_ops, (void *)ix, &end);
    }
    *owner = node;
    return KVRO_OK;
}

static int by_node(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

kvro_status kvro__tar_index_links(tar_index *ix, kvro_error *err)
{
    free(ix->hl_owner);
    ix->hl_owner = NULL;
    ix->nhl = 0;
    uint32_t n = 0;
    for (uint32_t i = 1; i < ix->n; i++)
        n += ix->nodes[i].kind == TAR_K_HARDLINK;
    if (!n)
        return KVRO_OK;
    uint32_t *v = malloc((size_t)n * sizeof *v);
    if (!v)
        return oom(err);
    uint32_t k = 0;
    for (uint32_t i = 1; i < ix->n; i++) {
        kvro_error ignored;
        if (ix->nodes[i].kind == TAR_K_HARDLINK &&
            kvro__tar_index_owner(ix, i, &v[k], &ignored) == KVRO_OK)
            k++;
    }
    qsort(v, k, sizeof *v, by_node);
    ix->hl_owner = v;
    ix->nhl = k;
    return KVRO_OK;
}

/* The first index of HL_OWNER holding a value >= NODE. */
static uint32_t owner_bound(const tar_index *ix, uint64_t node)
{
    uint32_t lo = 0, hi = ix->nhl;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ix->hl_owner[mid] < node)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint32_t kvro__tar_index_nlink(const tar_index *ix, uint32_t node)
{
    if (!ix->nhl)
        return 1;
    return 1 + owner_bound(ix, (uint64_t)node + 1) - owner_bound(ix, node);
}

/* ------------------------------------------------------ loaded from disk */

static bool valid_string(const tar_index *ix, uint32_t at, bool component)
{
    if (at >= ix->arena_len)
        return false;
    const char *s = ix->arena + at;
    size_t n = strnlen(s, ix->arena_len - at);
    if (n == ix->arena_len - at) /* no NUL before the end */
        return false;
    if (component)
        return n > 0 && !memchr(s, '/', n) && strcmp(s, ".") && strcmp(s, "..");
    return true;
}

/* A loaded map must be exactly what kvro__tar_sparse_check leaves. */
static bool sparse_relink_ok(const tar_index *ix, const tar_sparse *sp, int64_t size)
{
    int64_t end = 0, data = 0;
    for (uint64_t i = 0; i < sp->count; i++) {
        const tar_region *r = &ix->regions[sp->first + i];
        if (r->off < end || r->len <= 0 || r->off > size || r->len > size - r->off ||
            r->data != data || r->len > sp->stored - data)
            return false;
        end = r->off + r->len;
        data += r->len;
    }
    return data == sp->stored;
}

kvro_status kvro__tar_index_relink(tar_index *ix, int64_t data_end, kvro_error *err)
{
    if (ix->n == 0 || ix->arena_len == 0 || ix->arena[ix->arena_len - 1] != '\0')
        return kvro_error_set(err, KVRO_E_CORRUPT, "index: empty member table");
    /* Each map belongs to one node at most. */
    unsigned char *used = calloc(ix->nsparse ? ix->nsparse : 1, 1);
    if (!used)
        return oom(err);
    for (uint32_t i = 0; i < ix->n; i++) {
        tar_node *d = &ix->nodes[i];
        bool ok = d->kind >= TAR_K_DIR && d->kind <= TAR_K_LAST && d->mode <= 07777 &&
                  d->nsec >= 0 && d->nsec < 1000000000 && (d->flags & ~TAR_F_EXPLICIT) == 0 &&
                  valid_string(ix, d->name, i != 0) && d->size >= 0 && d->off >= 0;
        /* Parents come before their children (the scan implies them
         * first), which also rules out cycles. */
        ok = ok && (i == 0 ? d->parent == 0 && d->kind == TAR_K_DIR
                           : d->parent < i && ix->nodes[d->parent].kind == TAR_K_DIR);
        bool is_link = d->kind == TAR_K_HARDLINK || d->kind == TAR_K_SYMLINK;
        ok = ok && (!is_link || valid_string(ix, d->link, false));
        ok = ok && (d->kind == TAR_K_SPARSE ? d->link < ix->nsparse && !used[d->link]++
                                            : is_link || d->link == TAR_NONE);
        if (ok && d->kind == TAR_K_FILE)
            ok = d->size <= data_end && d->off <= data_end - d->size;
        if (ok && d->kind == TAR_K_SPARSE) {
            tar_sparse *sp = &ix->sparse[d->link];
            ok = sp->stored >= 0 && sp->stored <= data_end && d->off <= data_end - sp->stored &&
                 sp->first <= ix->nregions && sp->count <= ix->nregions - sp->first &&
                 sparse_relink_ok(ix, sp, d->size);
        }
        if (!ok) {
            free(used);
            return kvro_error_set(err, KVRO_E_CORRUPT, "index: bad member record %u", i);
        }
        d->child = TAR_NONE;
    }
    free(used);
    for (uint32_t i = ix->n; i-- > 1;) {
        tar_node *d = &ix->nodes[i];
        d->sibling = ix->nodes[d->parent].child;
        ix->nodes[d->parent].child = i;
    }
    uint32_t *h = realloc(ix->hash, (size_t)ix->n * sizeof *h);
    if (!h)
        return oom(err);
    ix->hash = h;
    h[0] = 0;
    for (uint32_t i = 1; i < ix->n; i++) {
        const char *name = tar_node_name(ix, i);
        h[i] = hash_of(ix->nodes[i].parent, name, strlen(name));
    }
    uint32_t nb = 1024;
    while (nb < ix->n && nb < (1u << 31))
        nb *= 2;
    kvro_status s = rehash(ix, nb, err);
    if (s != KVRO_OK)
        return s;
    for (uint32_t i = 1; i < ix->n; i++) {
        const char *name = tar_node_name(ix, i);
        if (find(ix, ix->nodes[i].parent, name, strlen(name)) != i)
            return kvro_error_set(err, KVRO_E_CORRUPT, "index: duplicate member record %u", i);
    }
    return KVRO_OK;
}
