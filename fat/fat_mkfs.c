/*
 * fat_mkfs.c — the image builder behind kvro/fat.h and `mkkv fat`: a
 * whole tree laid out and written in one pass, never through per-file
 * filesystem calls.
 *
 * Geometry (the FAT specification 1.03, sections 3-4, and what mkfs.fat
 * 4.2 chooses by default, checked against it by the tests): 512-byte
 * sectors, two FATs, media 0xF8. Under 512 MiB FAT12 or FAT16 with 2 KiB
 * clusters, FAT16 from 4085 clusters, the cluster doubled while there
 * would be more than 65524; from 512 MiB FAT32 with clusters of 512 bytes
 * up to 260 MiB, 4 KiB up to 8 GiB, 8 KiB to 16 GiB, 16 KiB to 32 GiB,
 * 32 KiB above (Microsoft's table, which mkfs.fat copies). A forced type
 * halves or doubles the cluster within 512 bytes .. 32 KiB to reach the
 * type's cluster counts (FAT12 < 4085 <= FAT16 < 65525 <= FAT32, the
 * counts that decide the type when it is read). Reserved sectors: 1
 * (FAT32: 32, with FSInfo at 1 and the backup boot sector at 6), padded
 * so that the data area starts on a cluster boundary, as mkfs.fat 4.2
 * does. The FAT12/16 root holds 512 entries, more if the tree's root
 * needs them.
 *
 * Layout: clusters from 2: the FAT32 root and every other directory in
 * the tree's order (each directory's names sorted by their bytes, depth
 * first), then every file, each contiguous, in the order the caller added
 * them: the files' bytes are then asked for in that order, so a caller
 * copying an archive adds in the archive's order and reads it once, front
 * to back. The image depends on the tree, the order of the adds and the
 * parameters only (a caller adding in sorted order gets the tree's order
 * throughout). Every entry has the same timestamps
 * (kvro_fat_params.mtime).
 */
#include "fat_vol.h"

#include "kvro/fat.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* WRITE_CHUNK fits in L2, so the pread into it and the pwrite out of it
 * hit the cache: with 4 MiB, mkkv fat of 50 MB spent 3x the system time. */
enum { SECTOR = 512, MAX_SPC = 64, WRITE_CHUNK = 256 << 10 };
#define MIB ((int64_t)1 << 20)

typedef struct mk_node {
    char *name;
    size_t len, parent;
    bool dir;
    int64_t size;
    size_t kid0, nkids; /* its entries in the sorted order (directories) */
    uint32_t entries;   /* 32-byte entries it holds (directories) */
    unsigned char sn[11];
    uint8_t slots, lcase;
    uint32_t first, clusters;
} mk_node;

typedef struct geom {
    int type;
    uint32_t spc, reserved, fat_sectors, root_entries, clusters;
    uint64_t total;
} geom;

struct kvro_fat_builder {
    kvro_fat_params p;
    char label[12];
    mk_node *v;
    size_t n, cap;
    size_t *order; /* non-root nodes sorted by (parent, name) */
    size_t *walk;  /* nodes in the image's order (pre-order) */
    geom g;
    bool laid_out;
    int64_t volume_off;
    char describe[160];
};

/* --------------------------------------------------------------- tree */

kvro_status kvro_fat_builder_new(const kvro_fat_params *p, kvro_fat_builder **out, kvro_error *err)
{
    kvro_fat_builder *b = calloc(1, sizeof *b);
    if (!b || !p)
        return free(b), kvro_error_set(err, p ? KVRO_E_NOMEM : KVRO_E_INVALID, "FAT builder");
    b->p = *p;
    memset(b->label, 0, sizeof b->label);
    if (p->label && *p->label) {
        size_t n = strlen(p->label);
        if (n > 11)
            return free(b),
                   kvro_error_set(err, KVRO_E_INVALID, "FAT: a label has at most 11 characters");
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)p->label[i];
            if (c < 0x20 || c >= 0x7F || strchr("*?<>|\":/\\.+,;=[]", c))
                return free(b), kvro_error_set(err, KVRO_E_INVALID,
                                               "FAT: a label holds ASCII letters, digits, spaces "
                                               "and !#$%%&'()-@^_`{}~ only");
            b->label[i] = (char)(c >= 'a' && c <= 'z' ? c - 32 : c);
        }
    }
    if (p->cluster_size && (p->cluster_size < SECTOR || p->cluster_size > SECTOR * MAX_SPC ||
                            (p->cluster_size & (p->cluster_size - 1))))
        return free(b), kvro_error_set(err, KVRO_E_INVALID,
                                       "FAT: a cluster size is a power of two from 512 to 32768");
    if (p->fat_type && p->fat_type != 12 && p->fat_type != 16 && p->fat_type != 32)
        return free(b), kvro_error_set(err, KVRO_E_INVALID, "FAT: the type is 12, 16 or 32");
    if (p->size < 0)
        return free(b), kvro_error_set(err, KVRO_E_INVALID, "FAT: a negative size");
    size_t root;
    kvro_status s = kvro_fat_builder_add(b, 0, "", KVRO_KIND_DIR, 0, &root, err);
    if (s != KVRO_OK)
        return kvro_fat_builder_free(b), s;
    *out = b;
    return KVRO_OK;
}

void kvro_fat_builder_free(kvro_fat_builder *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        free(b->v[i].name);
    free(b->v);
    free(b->order);
    free(b->walk);
    free(b);
}

kvro_status kvro_fat_builder_add(kvro_fat_builder *b, size_t parent, const char *name,
                                 kvro_kind kind, int64_t size, size_t *index, kvro_error *err)
{
    if (!b || !name || b->laid_out || (b->n && (parent >= b->n || !b->v[parent].dir)) ||
        (kind != KVRO_KIND_DIR && kind != KVRO_KIND_FILE) || size < 0)
        return kvro_error_set(err, KVRO_E_INVALID, "FAT builder: a bad entry");
    if (kind == KVRO_KIND_FILE && size > 0xFFFFFFFFll)
        return kvro_error_set(err, KVRO_E_INVALID,
                              "FAT: a file of %lld bytes (FAT holds at most 4 GiB - 1)",
                              (long long)size);
    if (b->n == b->cap) {
        size_t cap = b->cap ? 2 * b->cap : 256;
        mk_node *v = realloc(b->v, cap * sizeof *v);
        if (!v)
            return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
        b->v = v, b->cap = cap;
    }
    mk_node *e = &b->v[b->n];
    memset(e, 0, sizeof *e);
    e->len = strlen(name);
    if (!(e->name = malloc(e->len + 1)))
        return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    memcpy(e->name, name, e->len + 1);
    e->parent = parent;
    e->dir = kind == KVRO_KIND_DIR;
    e->size = e->dir ? 0 : size;
    *index = b->n++;
    return KVRO_OK;
}

/* Fills ERR's key with node I's full key. */
static kvro_status about(const kvro_fat_builder *b, size_t i, kvro_status s, kvro_error *err)
{
    char key[KVRO_ERROR_KEY_MAX];
    size_t at = sizeof key - 1;
    key[at] = '\0';
    for (; i != 0 && at > 0; i = b->v[i].parent) {
        const mk_node *e = &b->v[i];
        size_t n = e->len < at ? e->len : at;
        at -= n;
        memcpy(key + at, e->name + (e->len - n), n);
        if (e->parent != 0 && at > 0)
            key[--at] = '/';
    }
    return kvro_error_context(err, s, NULL, key + at);
}

static int by_parent_name(const void *x, const void *y, void *arg)
{
    const mk_node *v = arg;
    const mk_node *a = &v[*(const size_t *)x], *c = &v[*(const size_t *)y];
    if (a->parent != c->parent)
        return a->parent < c->parent ? -1 : 1;
    return strcmp(a->name, c->name);
}

/* ---------------------------------------------------------- names */

/* Open addressing over short names (11 bytes) or fold hashes. */
typedef struct name_set {
    unsigned char (*sn)[11];
    size_t *who; /* fold hashes: the node, +1 (0: empty) */
    uint32_t *hash;
    size_t cap;
} name_set;

static uint32_t sn_hash(const unsigned char *sn)
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 11; i++)
        h = (h ^ sn[i]) * 16777619u;
    return h;
}

static bool sn_taken(void *arg, const unsigned char sn[11])
{
    name_set *s = arg;
    for (size_t i = sn_hash(sn) & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
        if (s->sn[i][0] == 0)
            return false;
        if (memcmp(s->sn[i], sn, 11) == 0)
            return true;
    }
}

static void sn_put(name_set *s, const unsigned char sn[11])
{
    size_t i = sn_hash(sn) & (s->cap - 1);
    while (s->sn[i][0] != 0)
        i = (i + 1) & (s->cap - 1);
    memcpy(s->sn[i], sn, 11);
}

/* Short names and entry counts of directory D's entries (fat_name.c's
 * rules): first the names that are their own short name, so a generated
 * "~1" never takes one of them, then the others. */
static kvro_status name_dir(kvro_fat_builder *b, size_t d, name_set *set, fat_name *nm,
                            kvro_error *err)
{
    mk_node *dir = &b->v[d];
    size_t cap = 16;
    while (cap < 2 * dir->nkids + 4)
        cap *= 2;
    if (cap > set->cap) {
        free(set->sn), free(set->who), free(set->hash);
        set->sn = malloc(cap * 11);
        set->who = malloc(cap * sizeof *set->who);
        set->hash = malloc(cap * sizeof *set->hash);
        if (!set->sn || !set->who || !set->hash)
            return set->cap = 0, kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    }
    set->cap = cap;
    memset(set->sn, 0, cap * 11);
    memset(set->who, 0, cap * sizeof *set->who);
    uint64_t entries = d == 0 ? b->label[0] != 0 : 2;
    for (int pass = 0; pass < 2; pass++)
        for (size_t k = 0; k < dir->nkids; k++) {
            size_t i = b->order[dir->kid0 + k];
            mk_node *e = &b->v[i];
            kvro_status s = kvro__fat_name_parse(e->name, e->len, nm, err);
            if (s != KVRO_OK)
                return about(b, i, s, err);
            if (nm->basis_ok != (pass == 0))
                continue;
            if (pass == 0) {
                /* Names equal but for case: FAT could not tell them apart. */
                uint32_t h = kvro__fat_fold_hash(e->name, e->len);
                size_t at = h & (cap - 1);
                for (; set->who[at]; at = (at + 1) & (cap - 1))
                    if (set->hash[at] == h) {
                        mk_node *o = &b->v[set->who[at] - 1];
                        if (kvro__fat_name_equal(o->name, o->len, e->name, e->len))
                            return about(b, i,
                                         kvro_error_set(err, KVRO_E_EXISTS,
                                                        "FAT: the directory also holds '%s', "
                                                        "the same name in another case",
                                                        o->name),
                                         err);
                    }
                set->who[at] = i + 1;
                set->hash[at] = h;
            }
            s = kvro__fat_name_short(nm, sn_taken, set, e->sn, err);
            if (s != KVRO_OK)
                return about(b, i, s, err);
            sn_put(set, e->sn);
            e->slots = (uint8_t)kvro__fat_name_slots(nm);
            e->lcase = nm->lcase;
            entries += 1 + (uint64_t)e->slots;
        }
    /* Pass 1 saw the others' folded names only through their short
     * names: check the long ones too. */
    for (size_t k = 0; k < dir->nkids; k++) {
        size_t i = b->order[dir->kid0 + k];
        mk_node *e = &b->v[i];
        if (!e->slots || e->lcase)
            continue;
        uint32_t h = kvro__fat_fold_hash(e->name, e->len);
        size_t at = h & (cap - 1);
        for (; set->who[at]; at = (at + 1) & (cap - 1))
            if (set->hash[at] == h && set->who[at] - 1 != i) {
                mk_node *o = &b->v[set->who[at] - 1];
                if (kvro__fat_name_equal(o->name, o->len, e->name, e->len))
                    return about(b, i,
                                 kvro_error_set(err, KVRO_E_EXISTS,
                                                "FAT: the directory also holds '%s', the same "
                                                "name in another case",
                                                o->name),
                                 err);
            }
        set->who[at] = i + 1;
        set->hash[at] = h;
    }
    if (entries > 65536)
        return about(b, d,
                     kvro_error_set(err, KVRO_E_NO_SPACE,
                                    "FAT: a directory holds at most 65536 entries (this one "
                                    "needs %llu)",
                                    (unsigned long long)entries),
                     err);
    dir->entries = (uint32_t)entries;
    return KVRO_OK;
}

/* ---------------------------------------------------------- geometry */

/* The layout of TOTAL sectors as TYPE with SPC sectors a cluster; NULL,
 * or why not. */
static const char *geom_make(uint64_t total, int type, uint32_t spc, uint32_t root_entries, geom *g)
{
    memset(g, 0, sizeof *g);
    g->type = type, g->spc = spc, g->total = total;
    g->reserved = type == 32 ? 32 : 1;
    g->root_entries = type == 32 ? 0 : root_entries;
    uint64_t root_sec = (uint64_t)g->root_entries * 32 / SECTOR, fs = 1, clusters = 0;
    for (int round = 0; round < 64; round++) {
        uint64_t meta = g->reserved + 2 * fs + root_sec;
        if (meta >= total)
            return "too small for its FATs and root directory";
        clusters = (total - meta) / spc;
        uint64_t bytes =
            type == 12 ? ((clusters + 2) * 3 + 1) / 2 : (clusters + 2) * (uint64_t)type / 8;
        uint64_t need = (bytes + SECTOR - 1) / SECTOR;
        if (need <= fs)
            break;
        fs = need;
    }
    /* The data area on a cluster boundary (mkfs.fat 4.2). */
    uint64_t meta = g->reserved + 2 * fs + root_sec;
    g->reserved += (uint32_t)((spc - meta % spc) % spc);
    meta = g->reserved + 2 * fs + root_sec;
    if (meta >= total)
        return "too small for its FATs and root directory";
    clusters = (total - meta) / spc;
    g->fat_sectors = (uint32_t)fs;
    if (type == 12 && clusters > 4084)
        return "FAT12 has at most 4084 clusters";
    if (type == 16 && (clusters < 4085 || clusters > 65524))
        return clusters < 4085 ? "FAT16 needs at least 4085 clusters"
                               : "FAT16 has at most 65524 clusters";
    if (type == 32 && (clusters < 65525 || clusters > 0x0FFFFFF5))
        return clusters < 65525 ? "FAT32 needs at least 65525 clusters"
                                : "too many clusters for FAT32";
    if (clusters == 0)
        return "no room for data";
    g->clusters = (uint32_t)clusters;
    return NULL;
}

/* The type and cluster for a volume of BYTES (mkfs.fat's defaults, then
 * what the parameters force), as G; NULL or why not. */
static const char *geom_choose(const kvro_fat_builder *b, int64_t bytes, uint32_t root_entries,
                               geom *g)
{
    uint64_t total = (uint64_t)bytes / SECTOR;
    int type = b->p.fat_type;
    uint32_t spc = b->p.cluster_size / SECTOR;
    if (!type)
        type = bytes >= 512 * MIB ? 32 : 0;
    if (!spc && type == 32) {
        int64_t mb = (bytes + MIB - 1) / MIB;
        spc = mb > 32768 ? 64 : mb > 16384 ? 32 : mb > 8192 ? 16 : mb > 260 ? 8 : 1;
    }
    if (!type) {
        /* FAT12 or FAT16 by the count at mkfs.fat's first cluster size. */
        uint32_t first = spc ? spc : 4;
        geom t;
        const char *why = geom_make(total, 12, first, root_entries, &t);
        type = why && strstr(why, "at most") ? 16 : 12;
        if (type == 16 && !spc) {
            /* mkfs.fat doubles the cluster while FAT16 would have too many. */
            for (spc = 4; spc < MAX_SPC; spc *= 2)
                if (!(why = geom_make(total, 16, spc, root_entries, &t)) || !strstr(why, "at most"))
                    break;
        } else if (type == 16 && (why = geom_make(total, 16, spc, root_entries, &t)) &&
                   strstr(why, "at most")) {
            type = 32; /* a small cluster asked for: as many as FAT32 counts */
        }
    }
    if (!spc) {
        /* A forced type: mkfs.fat's size, then halved or doubled until
         * the count suits the type. */
        spc = type == 32 ? 1 : 4;
        const char *why;
        while ((why = geom_make(total, type, spc, root_entries, g)) != NULL) {
            if (strstr(why, "at least") && spc > 1)
                spc /= 2;
            else if (strstr(why, "at most") && spc < MAX_SPC)
                spc *= 2;
            else
                return why;
        }
        return NULL;
    }
    return geom_make(total, type, spc, root_entries, g);
}

/* Clusters the tree needs with clusters of CS bytes (the FAT32 root
 * included when TYPE is 32). */
static uint64_t clusters_needed(const kvro_fat_builder *b, uint32_t cs, int type)
{
    uint64_t n = 0;
    for (size_t i = 0; i < b->n; i++) {
        const mk_node *e = &b->v[i];
        if (e->dir && (i != 0 || type == 32))
            n += e->entries ? ((uint64_t)e->entries * 32 + cs - 1) / cs : 1;
        else if (!e->dir)
            n += ((uint64_t)e->size + cs - 1) / cs;
    }
    return n;
}

static kvro_status choose_size(kvro_fat_builder *b, kvro_error *err)
{
    uint32_t root_entries = 512;
    if (b->v[0].entries > 512)
        root_entries = (b->v[0].entries + 15) / 16 * 16;
    if (root_entries > 65520 && b->p.fat_type && b->p.fat_type != 32)
        return kvro_error_set(err, KVRO_E_NO_SPACE,
                              "FAT: a FAT12/16 root directory holds at most 65520 entries");
    uint64_t content = 0;
    for (size_t i = 0; i < b->n; i++)
        content += (uint64_t)b->v[i].size + (uint64_t)b->v[i].entries * 32;
    const char *why = NULL;
    if (b->p.size) {
        if (b->p.size % SECTOR)
            return kvro_error_set(err, KVRO_E_INVALID,
                                  "FAT: the size is a whole number of "
                                  "512-byte sectors");
        why = geom_choose(b, b->p.size, root_entries, &b->g);
        if (why)
            return kvro_error_set(err, KVRO_E_INVALID, "FAT: a volume of %lld bytes: %s",
                                  (long long)b->p.size, why);
        uint64_t need = clusters_needed(b, b->g.spc * SECTOR, b->g.type);
        if (need > b->g.clusters)
            return kvro_error_set(err, KVRO_E_NO_SPACE,
                                  "FAT: the tree needs %llu clusters of %u bytes, a volume of "
                                  "%lld bytes has %u",
                                  (unsigned long long)need, b->g.spc * SECTOR, (long long)b->p.size,
                                  b->g.clusters);
        return KVRO_OK;
    }
    /* The smallest size, in 64 KiB steps, that holds the tree plus 1/16
     * of it and 64 KiB free: grown until it fits (the cluster size and
     * the type change with the size, so this is a search, not a sum). */
    const int64_t step = 64 << 10;
    int64_t size = (int64_t)(content + content / 16) + 2 * step;
    size = (size + step - 1) / step * step;
    for (int round = 0; round < 4096; round++) {
        why = geom_choose(b, size, root_entries, &b->g);
        int64_t grow = size / 8 + step;
        if (!why) {
            uint64_t cs = b->g.spc * SECTOR;
            uint64_t need = clusters_needed(b, (uint32_t)cs, b->g.type);
            uint64_t want = need + (content / 16 + step + cs - 1) / cs;
            if (want <= b->g.clusters)
                return KVRO_OK;
            grow = (int64_t)((want - b->g.clusters) * cs);
        } else if (!strstr(why, "at least") && !strstr(why, "too small")) {
            return kvro_error_set(err, KVRO_E_INVALID, "FAT: no FAT%d volume holds this tree: %s",
                                  b->p.fat_type ? b->p.fat_type : b->g.type, why);
        }
        size = (size + grow + step - 1) / step * step;
    }
    return kvro_error_set(err, KVRO_E_INVALID, "FAT: no volume size found for this tree");
}

/* ---------------------------------------------------------- layout */

kvro_status kvro_fat_builder_layout(kvro_fat_builder *b, int64_t *image_size, kvro_error *err)
{
    if (!b || b->laid_out)
        return kvro_error_set(err, KVRO_E_INVALID, "FAT builder: laid out already");
    size_t n = b->n;
    b->order = malloc(n * sizeof *b->order);
    b->walk = malloc(n * sizeof *b->walk);
    if (!b->order || !b->walk)
        return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    for (size_t i = 1; i < n; i++)
        b->order[i - 1] = i;
    qsort_r(b->order, n - 1, sizeof *b->order, by_parent_name, b->v);
    for (size_t k = 0; k + 1 < n; k++) {
        mk_node *p = &b->v[b->v[b->order[k]].parent];
        if (p->nkids == 0)
            p->kid0 = k;
        p->nkids++;
        if (k > 0 && b->v[b->order[k - 1]].parent == b->v[b->order[k]].parent &&
            strcmp(b->v[b->order[k - 1]].name, b->v[b->order[k]].name) == 0)
            return about(b, b->order[k],
                         kvro_error_set(err, KVRO_E_EXISTS, "FAT builder: added twice"), err);
    }
    fat_name *nm = malloc(sizeof *nm);
    name_set set = {0};
    kvro_status s = nm ? KVRO_OK : kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    for (size_t i = 0; s == KVRO_OK && i < n; i++)
        if (b->v[i].dir)
            s = name_dir(b, i, &set, nm, err);
    free(nm);
    free(set.sn), free(set.who), free(set.hash);
    if (s == KVRO_OK)
        s = choose_size(b, err);
    if (s != KVRO_OK)
        return s;
    /* The image's order: pre-order, names sorted (an explicit stack of
     * (directory, next child) pairs, since trees may be deep). */
    size_t w = 0, *stack = malloc(2 * n * sizeof *stack), top = 0;
    if (!stack)
        return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    b->walk[w++] = 0;
    stack[top++] = 0, stack[top++] = 0;
    while (top) {
        size_t d = stack[top - 2], k = stack[top - 1];
        if (k == b->v[d].nkids) {
            top -= 2;
            continue;
        }
        stack[top - 1]++;
        size_t i = b->order[b->v[d].kid0 + k];
        b->walk[w++] = i;
        if (b->v[i].dir)
            stack[top++] = i, stack[top++] = 0;
    }
    free(stack);
    /* Clusters: directories first, in the tree's order, then files in the
     * order they were added. */
    uint32_t cs = b->g.spc * SECTOR, next = 2;
    for (int files = 0; files < 2; files++)
        for (size_t k = 0; k < n; k++) {
            mk_node *e = &b->v[files ? k : b->walk[k]];
            if (e->dir == files || (!files && b->walk[k] == 0 && b->g.type != 32))
                continue;
            uint64_t bytes = e->dir ? (uint64_t)e->entries * 32 : (uint64_t)e->size;
            /* An empty FAT32 root still has its cluster. */
            e->clusters = e->dir && !bytes ? 1 : (uint32_t)((bytes + cs - 1) / cs);
            e->first = e->clusters ? next : 0;
            next += e->clusters;
        }
    b->volume_off = b->p.mbr ? MIB : 0;
    *image_size = b->volume_off + (int64_t)b->g.total * SECTOR;
    snprintf(b->describe, sizeof b->describe, "FAT%d, %u clusters of %u bytes, %u used%s",
             b->g.type, b->g.clusters, cs, next - 2, b->p.mbr ? ", in an MBR partition" : "");
    b->laid_out = true;
    return KVRO_OK;
}

const char *kvro_fat_builder_describe(const kvro_fat_builder *b)
{
    return b && b->laid_out ? b->describe : "";
}

/* ---------------------------------------------------------- writing */

static void put16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, v & 0xFFFF);
    put16(p + 2, v >> 16);
}

/* The boot sector (spec section 3). */
static void boot_sector(const kvro_fat_builder *b, unsigned char *s)
{
    const geom *g = &b->g;
    memset(s, 0, SECTOR);
    s[0] = 0xEB, s[1] = g->type == 32 ? 0x58 : 0x3C, s[2] = 0x90;
    memcpy(s + 3, "MSWIN4.1", 8);
    put16(s + 11, SECTOR);
    s[13] = (unsigned char)g->spc;
    put16(s + 14, g->reserved);
    s[16] = 2;
    put16(s + 17, g->root_entries);
    put16(s + 19, g->total < 0x10000 ? (uint32_t)g->total : 0);
    s[21] = 0xF8;
    put16(s + 22, g->type == 32 ? 0 : g->fat_sectors);
    put16(s + 24, 32); /* sectors per track, heads: unused by LBA, as mkfs.fat sets */
    put16(s + 26, 64);
    put32(s + 28, (uint32_t)(b->volume_off / SECTOR));
    put32(s + 32, g->total < 0x10000 ? 0 : (uint32_t)g->total);
    size_t ext = 36;
    if (g->type == 32) {
        put32(s + 36, g->fat_sectors);
        put32(s + 44, 2); /* the root's cluster */
        put16(s + 48, 1); /* FSInfo */
        put16(s + 50, 6); /* the backup boot sector */
        ext = 64;
    }
    s[ext] = 0x80; /* drive number */
    s[ext + 2] = 0x29;
    put32(s + ext + 3, b->p.volume_id);
    memset(s + ext + 7, ' ', 11);
    memcpy(s + ext + 7, b->label[0] ? b->label : "NO NAME",
           strlen(b->label[0] ? b->label : "NO NAME"));
    memcpy(s + ext + 18, g->type == 12 ? "FAT12   " : g->type == 16 ? "FAT16   " : "FAT32   ", 8);
    /* No boot code: int 0x18 ("no bootable disk") where the jump lands. */
    size_t code = g->type == 32 ? 0x5A : 0x3E;
    s[code] = 0xCD, s[code + 1] = 0x18;
    s[510] = 0x55, s[511] = 0xAA;
}

static void fsinfo(const kvro_fat_builder *b, uint32_t used, unsigned char *s)
{
    memset(s, 0, SECTOR);
    put32(s, 0x41615252);
    put32(s + 484, 0x61417272);
    put32(s + 488, b->g.clusters - used);
    put32(s + 492, used + 2 <= b->g.clusters + 1 ? used + 2 : 2);
    put32(s + 508, 0xAA550000);
}

static void fat_set(unsigned char *fat, int type, uint32_t c, uint32_t v)
{
    if (type == 12) {
        size_t o = c + c / 2;
        if (c & 1) {
            fat[o] = (unsigned char)((fat[o] & 0x0F) | (v << 4 & 0xF0));
            fat[o + 1] = (unsigned char)(v >> 4);
        } else {
            fat[o] = (unsigned char)v;
            fat[o + 1] = (unsigned char)((fat[o + 1] & 0xF0) | (v >> 8 & 0x0F));
        }
    } else if (type == 16) {
        put16(fat + 2 * (size_t)c, v);
    } else {
        put32(fat + 4 * (size_t)c, v);
    }
}

/* The entries of directory D into BUF (zeroed, big enough). */
static void dir_fill(const kvro_fat_builder *b, size_t d, unsigned char *buf, uint16_t date,
                     uint16_t time, fat_name *nm)
{
    const mk_node *dir = &b->v[d];
    size_t at = 0;
    fat_entry e = {.time = time, .date = date};
    if (d != 0) {
        memcpy(e.name, ".          ", 11);
        e.attr = 0x10, e.first = dir->first;
        kvro__fat_entry_encode(&e, buf + at), at += 32;
        memcpy(e.name, "..         ", 11);
        e.first = dir->parent == 0 ? 0 : b->v[dir->parent].first;
        kvro__fat_entry_encode(&e, buf + at), at += 32;
    } else if (b->label[0]) {
        memset(e.name, ' ', 11);
        memcpy(e.name, b->label, strlen(b->label));
        e.attr = 0x08;
        kvro__fat_entry_encode(&e, buf + at), at += 32;
    }
    for (size_t k = 0; k < dir->nkids; k++) {
        const mk_node *c = &b->v[b->order[dir->kid0 + k]];
        /* Parsed at layout already: it cannot fail now. */
        kvro__fat_name_parse(c->name, c->len, nm, NULL);
        memcpy(e.name, c->sn, 11);
        e.attr = c->dir ? 0x10 : 0x20; /* directory; archive (as new files have) */
        e.first = c->first;
        e.size = c->dir ? 0 : (uint32_t)c->size;
        kvro__fat_name_encode(nm, &e, buf + at);
        at += (size_t)(c->slots + 1) * 32;
    }
}

typedef struct out_buf {
    kvro_io *io;
    int64_t at; /* where BUF's first byte goes */
    unsigned char *buf;
    size_t n;
} out_buf;

static kvro_status out_flush(out_buf *o, kvro_error *err)
{
    kvro_status s = o->n ? kvro_io_write(o->io, o->at, o->buf, o->n, err) : KVRO_OK;
    o->at += (int64_t)o->n;
    o->n = 0;
    return s;
}

/* Every file's bytes, then zeros to its cluster's end, in one stream. */
static kvro_status write_files(kvro_fat_builder *b, out_buf *o, kvro_fat_read_fn read, void *arg,
                               kvro_error *err)
{
    uint32_t cs = b->g.spc * SECTOR;
    kvro_status s = KVRO_OK;
    for (size_t i = 0; s == KVRO_OK && i < b->n; i++) { /* files in the order added */
        const mk_node *e = &b->v[i];
        if (e->dir || !e->size)
            continue;
        for (int64_t off = 0; s == KVRO_OK && off < e->size;) {
            if (o->n == WRITE_CHUNK)
                s = out_flush(o, err);
            size_t want = WRITE_CHUNK - o->n;
            if ((int64_t)want > e->size - off)
                want = (size_t)(e->size - off);
            if (s == KVRO_OK)
                s = read(arg, i, off, o->buf + o->n, want, err);
            o->n += want;
            off += (int64_t)want;
        }
        size_t pad = (size_t)((uint64_t)e->clusters * cs - (uint64_t)e->size);
        while (s == KVRO_OK && pad) {
            if (o->n == WRITE_CHUNK)
                s = out_flush(o, err);
            size_t z = WRITE_CHUNK - o->n < pad ? WRITE_CHUNK - o->n : pad;
            memset(o->buf + o->n, 0, z);
            o->n += z, pad -= z;
        }
    }
    return s == KVRO_OK ? out_flush(o, err) : s;
}

static kvro_status write_mbr(kvro_fat_builder *b, kvro_io *io, kvro_error *err)
{
    unsigned char s[SECTOR] = {0};
    put32(s + 440, b->p.volume_id); /* the disk signature */
    unsigned char *p = s + 446;
    p[1] = 0xFE, p[2] = 0xFF, p[3] = 0xFF; /* CHS past 8 GiB: LBA only */
    p[4] = b->g.type == 12 ? 0x01 : b->g.type == 16 ? 0x0E : 0x0C;
    p[5] = 0xFE, p[6] = 0xFF, p[7] = 0xFF;
    put32(p + 8, (uint32_t)(b->volume_off / SECTOR));
    put32(p + 12, (uint32_t)b->g.total);
    s[510] = 0x55, s[511] = 0xAA;
    return kvro_io_write(io, 0, s, sizeof s, err);
}

kvro_status kvro_fat_builder_write(kvro_fat_builder *b, kvro_io *out, kvro_fat_read_fn read,
                                   void *arg, kvro_error *err)
{
    if (!b || !b->laid_out || !out || !read)
        return kvro_error_set(err, KVRO_E_INVALID, "FAT builder: not laid out");
    const geom *g = &b->g;
    uint32_t cs = g->spc * SECTOR;
    uint16_t date, time;
    kvro__fat_time_encode(b->p.mtime, &date, &time);
    int64_t vo = b->volume_off;
    size_t meta = (size_t)(g->reserved + 2 * (uint64_t)g->fat_sectors) * SECTOR +
                  (size_t)g->root_entries * 32;
    uint64_t dir_clusters = 0;
    uint32_t used = 0;
    for (size_t i = 0; i < b->n; i++) {
        used += b->v[i].clusters;
        if (b->v[i].dir)
            dir_clusters += b->v[i].clusters;
    }
    /* Reserved sectors, both FATs and the fixed root; then every
     * directory cluster: two buffers, two writes. */
    unsigned char *m = calloc(1, meta);
    unsigned char *dirs = calloc(1, (size_t)dir_clusters * cs + 1);
    out_buf o = {out, 0, malloc(WRITE_CHUNK), 0};
    fat_name *nm = malloc(sizeof *nm);
    kvro_status s =
        m && dirs && o.buf && nm ? KVRO_OK : kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    if (s == KVRO_OK) {
        boot_sector(b, m);
        if (g->type == 32) {
            fsinfo(b, used, m + SECTOR);
            memcpy(m + 6 * SECTOR, m, 2 * SECTOR); /* backup boot sector and FSInfo */
        }
        unsigned char *fat = m + (size_t)g->reserved * SECTOR;
        uint32_t eoc = g->type == 12 ? 0xFFF : g->type == 16 ? 0xFFFF : 0x0FFFFFFF;
        fat_set(fat, g->type, 0, (eoc & ~0xFFu) | 0xF8);
        fat_set(fat, g->type, 1, eoc);
        for (size_t i = 0; i < b->n; i++) {
            const mk_node *e = &b->v[i];
            for (uint32_t c = 0; c < e->clusters; c++)
                fat_set(fat, g->type, e->first + c, c + 1 < e->clusters ? e->first + c + 1 : eoc);
        }
        size_t fat_bytes = (size_t)g->fat_sectors * SECTOR;
        memcpy(fat + fat_bytes, fat, fat_bytes);
        unsigned char *root = fat + 2 * fat_bytes;
        for (size_t k = 0; k < b->n; k++) {
            size_t i = b->walk[k];
            const mk_node *e = &b->v[i];
            if (!e->dir)
                continue;
            unsigned char *at = i == 0 && g->type != 32 ? root : dirs + (size_t)(e->first - 2) * cs;
            dir_fill(b, i, at, date, time, nm);
        }
        if (b->p.mbr)
            s = write_mbr(b, out, err);
    }
    if (s == KVRO_OK)
        s = kvro_io_write(out, vo, m, meta, err);
    int64_t data = vo + (int64_t)meta;
    if (s == KVRO_OK && dir_clusters)
        s = kvro_io_write(out, data, dirs, (size_t)dir_clusters * cs, err);
    o.at = data + (int64_t)dir_clusters * cs;
    if (s == KVRO_OK)
        s = write_files(b, &o, read, arg, err);
    /* The last sector, so a file is as long as the volume. */
    static const unsigned char zero[SECTOR];
    int64_t end = vo + (int64_t)g->total * SECTOR;
    if (s == KVRO_OK && o.at < end)
        s = kvro_io_write(out, end - SECTOR, zero, SECTOR, err);
    free(m), free(dirs), free(o.buf), free(nm);
    return s;
}
