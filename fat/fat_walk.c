/*
 * fat_walk.c — resolving a key in a FAT volume, one component at a time
 * from the root directory (fat_dir.c looks each up), and the checks a
 * walk makes on the way.
 *
 * A directory whose first cluster is that of a directory above it on the
 * way is a loop in the tree, KVRO_E_CORRUPT. A chain named by two entries
 * (cross-linked: two files serving one file's bytes, a file serving a
 * directory's, or aliased directories, where a tree walk visits 2^depth
 * paths) is KVRO_E_CORRUPT for every entry but its owner, naming both
 * keys (see claim() below for which entry owns it); a chain that runs into
 * another is caught at the FAT (fat_table.c). The owners are the only
 * state a walk changes, under their own lock: walks run in any number of
 * threads at once.
 */
#include "fat_vol.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BAD(...) kvro_error_set(err, KVRO_E_CORRUPT, "FAT: " __VA_ARGS__)

fat_node kvro__fat_root(const fat_vol *v)
{
    return (fat_node){.first = v->bpb.type == 32 ? v->bpb.root_cluster : 0, .dir = true};
}

/* ------------------------------------------------- directory owners */

/* The slot of cluster C in O (CAP > 0): where it is, or the empty slot
 * where it would go. Under O's lock. */
static fat_owner *owner_slot(const fat_owners *o, uint32_t c)
{
    size_t mask = o->cap - 1, i = (size_t)(c * 2654435761u) & mask;
    while (o->slot[i].cluster && o->slot[i].cluster != c)
        i = (i + 1) & mask;
    return &o->slot[i];
}

/* The owner of cluster C, NULL if none yet. Under O's lock. */
static fat_owner *owner_find(const fat_owners *o, uint32_t c)
{
    if (!o->cap)
        return NULL;
    fat_owner *e = owner_slot(o, c);
    return e->cluster ? e : NULL;
}

/* Adds W (whose cluster has no owner yet); false out of memory. Under O's
 * lock. */
static bool owner_add(fat_owners *o, fat_owner w)
{
    if (2 * (o->n + 1) > o->cap) {
        fat_owners g = {.cap = o->cap ? 2 * o->cap : 64};
        g.slot = calloc(g.cap, sizeof *g.slot);
        if (!g.slot)
            return false;
        for (size_t i = 0; i < o->cap; i++)
            if (o->slot[i].cluster)
                *owner_slot(&g, o->slot[i].cluster) = o->slot[i];
        free(o->slot);
        o->slot = g.slot;
        o->cap = g.cap;
    }
    *owner_slot(o, w.cluster) = w;
    o->n++;
    return true;
}

/* Whether the entry W names still names W's file or directory: the write
 * side deletes entries and reuses clusters, so an owner can go stale. A
 * read that fails counts as yes (the alias is then reported, not hidden). */
static bool owner_live(fat_vol *v, const fat_owner *w)
{
    unsigned char e[FAT_DIRENT];
    if (kvro__fat_read_exact(v, w->pos, e, sizeof e, "a directory entry", NULL) != KVRO_OK)
        return true;
    uint32_t first = (uint32_t)(e[26] | e[27] << 8);
    if (v->bpb.type == 32)
        first |= (uint32_t)(e[20] | e[21] << 8) << 16;
    return e[0] != 0x00 && e[0] != 0xE5 && (e[11] & 0x3F) != 0x0F &&
           (e[11] & 0x18) == (w->dir ? 0x10 : 0x00) && first == w->cluster;
}

typedef struct name_at {
    int64_t pos;
    char *out; /* FAT_NAME_MAX + 1 bytes */
    bool found;
} name_at;

static int find_pos(void *arg, const fat_dirent *e)
{
    name_at *a = arg;
    if (e->node.pos != a->pos)
        return 0;
    memcpy(a->out, e->name, e->name_len + 1);
    a->found = true;
    return 1;
}

/* The key of the entry W names, from the owners of the directories above
 * it (each was resolved, and so owned, on the way to it), into OUT (SIZE
 * bytes, at least FAT_NAME_MAX + 8); false if it cannot be told. Only on
 * the way to an error: it reads a directory per level, so it gives up
 * past a few dozen levels ("..." then stands for the rest). */
static bool owner_key(fat_vol *v, fat_owner w, char *out, size_t size)
{
    const uint32_t root = kvro__fat_root(v).first;
    char *name = malloc(FAT_NAME_MAX + 1);
    size_t at = size - 1; /* the key is built backwards, from OUT + AT */
    out[at] = '\0';
    bool ok = name != NULL;
    for (int level = 0; ok; level++) {
        if (level == 24) {
            ok = at >= 4;
            if (ok)
                memcpy(out + (at -= 4), ".../", 4);
            break;
        }
        fat_node dir = {.first = w.parent, .pos = w.parent == root ? 0 : 1, .dir = true};
        name_at a = {w.pos, name, false};
        ok = kvro__fat_dir_each(v, &dir, find_pos, &a, NULL) == KVRO_OK && a.found;
        size_t n = ok ? strlen(name) : 0, sep = at < size - 1;
        ok = ok && n + sep <= at;
        if (!ok)
            break;
        if (sep)
            out[--at] = '/';
        memcpy(out + (at -= n), name, n);
        if (w.parent == root)
            break;
        pthread_mutex_lock(&v->owners.lock);
        const fat_owner *up = owner_find(&v->owners, w.parent);
        ok = up != NULL;
        if (ok)
            w = *up;
        pthread_mutex_unlock(&v->owners.lock);
    }
    free(name);
    if (ok)
        memmove(out, out + at, size - at);
    return ok;
}

typedef struct fill_ctx {
    fat_vol *v;
    uint32_t parent;
    bool oom;
} fill_ctx;

/* Gives entry N (a file or a subdirectory with a cluster) an owner unless
 * its cluster has one; non-zero out of memory. */
static int fill_one(fill_ctx *f, fat_node n)
{
    if (!n.first)
        return 0;
    fat_owners *o = &f->v->owners;
    pthread_mutex_lock(&o->lock);
    if (!owner_find(o, n.first) &&
        !owner_add(o, (fat_owner){n.first, f->parent, n.pos, n.dir, false}))
        f->oom = true;
    pthread_mutex_unlock(&o->lock);
    return f->oom;
}

static int fill_dirent(void *arg, const fat_dirent *e)
{
    return fill_one(arg, e->node);
}

/* Whether DIR's entries are all owned: where its flag is. Under the
 * lock, and only until the table grows. */
static bool *filled_flag(fat_owners *o, const fat_node *dir)
{
    if (dir->pos == 0)
        return &o->root_filled;
    fat_owner *e = owner_find(o, dir->first);
    return e ? &e->filled : NULL;
}

/* File or directory D (with a cluster), reached by KEY's first KLEN
 * bytes, named by an entry of directory DIR: its clusters are that
 * entry's, unless another entry owns them (two entries naming one chain:
 * cross-linked, KVRO_E_CORRUPT naming both). The first time one of DIR's
 * entries is met, all of them are given owners at once, in stored order:
 * of two entries in one directory naming one cluster, the first owns it
 * whichever is looked up first (fsck.fat too keeps the first). Between
 * directories, the first entry met owns it. */
/* D's owner, made PARENT's entry if it has none (*ADDED false if that
 * failed); *WAS the owner when another entry owns it. Under O's lock. */
static void owner_take(fat_owners *o, const fat_node *d, uint32_t parent, fat_owner *was,
                       bool *added)
{
    fat_owner *e = owner_find(o, d->first);
    if (!e)
        *added = owner_add(o, (fat_owner){d->first, parent, d->pos, d->dir, false});
    else if (e->pos != d->pos)
        *was = *e;
}

static kvro_status claim(fat_vol *v, const fat_node *dir, const fat_node *d, const char *key,
                         size_t klen, kvro_error *err)
{
    fat_owners *o = &v->owners;
    const uint32_t parent = dir->first;
    fat_owner was = {0};
    bool added = true;
    /* Once DIR's subdirectories are owned (every lookup but the first),
     * one lock: the check and the claim together. */
    pthread_mutex_lock(&o->lock);
    bool *flag = filled_flag(o, dir);
    bool fill = flag && !*flag;
    if (!fill)
        owner_take(o, d, parent, &was, &added);
    pthread_mutex_unlock(&o->lock);
    if (fill) {
        fill_ctx f = {v, parent, false};
        /* What cannot be read here is met by the calls that read it. The
         * listing the lookup just made is at hand (no read). */
        fat_listing *l = NULL;
        if (kvro__fat_listing_get(v, dir, &l, NULL) == KVRO_OK) {
            for (size_t i = 0; i < l->n && !fill_one(&f, l->e[i].node); i++)
                ;
            kvro__fat_listing_put(v, l);
        } else {
            kvro__fat_dir_each(v, dir, fill_dirent, &f, NULL);
        }
        if (f.oom)
            return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
        pthread_mutex_lock(&o->lock);
        flag = filled_flag(o, dir);
        if (flag)
            *flag = true;
        owner_take(o, d, parent, &was, &added);
        pthread_mutex_unlock(&o->lock);
    }
    if (!added)
        return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    if (!was.cluster)
        return KVRO_OK;
    if (!owner_live(v, &was)) {
        /* Deleted or changed since (fat_write.c): this entry owns it now. */
        pthread_mutex_lock(&o->lock);
        fat_owner *e = owner_find(o, d->first);
        if (e && e->pos == was.pos)
            *e = (fat_owner){d->first, parent, d->pos, d->dir, false};
        pthread_mutex_unlock(&o->lock);
        return KVRO_OK;
    }
    char *other = malloc(KVRO_KEY_MAX + 1);
    bool named = other && owner_key(v, was, other, KVRO_KEY_MAX + 1);
    int kl = (int)(klen > 200 ? 200 : klen);
    const char *what = d->dir ? "directory" : "file";
    kvro_status s =
        named ? BAD("%s '%.*s' shares its clusters with '%.200s' (both name cluster %u: "
                    "cross-linked; fsck.fat repairs this)",
                    what, kl, key, other, d->first)
              : BAD("%s '%.*s' shares its clusters with the entry at byte %lld (both name "
                    "cluster %u: cross-linked; fsck.fat repairs this)",
                    what, kl, key, (long long)was.pos, d->first);
    free(other);
    return s;
}

/* The checks a walk makes as it enters directory NEXT, an entry of
 * directory N named C (LEN bytes), reached by KEY's first KLEN bytes:
 * SEEN holds the first clusters of the DEPTH directories above it, N's
 * last. */
static kvro_status enter(fat_vol *v, const uint32_t *seen, size_t depth, const fat_node *n,
                         const fat_node *next, const char *key, size_t klen, const char *c,
                         size_t len, kvro_error *err)
{
    if (next->first == 0)
        return BAD("directory '%.*s' has no cluster", (int)len, c);
    for (size_t i = 0; i < depth; i++)
        if (seen[i] == next->first)
            return BAD("directory '%.*s' contains itself (cluster %u is also a directory above "
                       "it)",
                       (int)len, c, next->first);
    return claim(v, n, next, key, klen, err);
}

/* The checks for a file NEXT of directory N: its chain is not that of a
 * directory above it (the FAT32 root is owned by no entry, so claim
 * alone would not see a file naming it; a write there would overwrite
 * the directory), nor another entry's. */
static kvro_status file_check(fat_vol *v, const uint32_t *seen, size_t depth, const fat_node *n,
                              const fat_node *next, const char *key, size_t klen,
                              kvro_error *err)
{
    if (!next->first)
        return KVRO_OK;
    for (size_t i = 0; i < depth; i++)
        if (seen[i] == next->first)
            return BAD("file '%.*s' shares its clusters with a directory above it (cluster %u: "
                       "cross-linked; fsck.fat repairs this)",
                       (int)(klen > 200 ? 200 : klen), key, next->first);
    return claim(v, n, next, key, klen, err);
}

kvro_status kvro__fat_walk_seen(fat_vol *v, const char *key, fat_node *out, uint32_t *seen,
                                size_t *depth, kvro_error *err)
{
    fat_node n = kvro__fat_root(v);
    *depth = 0;
    seen[(*depth)++] = n.first;
    const char *p = key, *c;
    size_t len;
    while ((len = kvro__component(&p, &c, NULL)) != 0) {
        if (!n.dir)
            return kvro_error_set(err, KVRO_E_NOT_DIR, "FAT: a file is not a directory");
        fat_node next;
        bool found = false;
        kvro_status s = kvro__fat_dir_lookup(v, &n, c, len, &next, &found, err);
        if (s != KVRO_OK)
            return s;
        if (!found)
            return kvro_error_set(err, KVRO_E_NOT_FOUND, "FAT: no '%.*s' in its directory",
                                  (int)(len > 200 ? 200 : len), c);
        if (next.dir) {
            s = enter(v, seen, *depth, &n, &next, key, (size_t)(c + len - key), c, len, err);
            if (s != KVRO_OK)
                return s;
            seen[(*depth)++] = next.first;
        } else {
            s = file_check(v, seen, *depth, &n, &next, key, (size_t)(c + len - key), err);
            if (s != KVRO_OK)
                return s;
        }
        n = next;
    }
    *out = n;
    return KVRO_OK;
}

kvro_status kvro__fat_walk(fat_vol *v, const char *key, fat_node *out, kvro_error *err)
{
    uint32_t seen[FAT_DEPTH_MAX];
    size_t depth;
    return kvro__fat_walk_seen(v, key, out, seen, &depth, err);
}

kvro_status kvro__fat_entry_check(fat_vol *v, const uint32_t *seen, size_t depth,
                                  const fat_node *dir, const fat_node *e, const char *key,
                                  size_t klen, const char *name, size_t len, kvro_error *err)
{
    if (e->dir)
        return enter(v, seen, depth, dir, e, key, klen, name, len, err);
    return file_check(v, seen, depth, dir, e, key, klen, err);
}
