/*
 * inodes.c — kvfuse's inode numbers: key <-> number, stable for the life of
 * the mount.
 *
 * A number is handed out the first time the kernel sees a key (lookup,
 * readdir) and kept until unmount: the image never changes, so a number
 * can never come to mean another file, and keeping them all costs about
 * 100 bytes an entry — less than counting FUSE_FORGETs right would cost in
 * code. Numbers are dense (1 is the root), so a number is an index into an
 * array of nodes; keys are found through an open-addressing hash. Keys of
 * one stored entry (the same kvro_info.id and kind) share a number, as
 * `find -samefile` and `du` expect: the second key becomes an alias. That
 * covers hard links of a tar or a directory, and a FAT volume's
 * case-insensitive names: README.TXT looked up after readme.txt is the
 * same inode, not a second one with its own page cache. (A directory
 * source that recycles a deleted file's inode number while mounted could
 * alias a new file to the old key; the kernel's day-long caches make such
 * a live tree stale anyway.)
 *
 * Many FUSE worker threads call in at once; a read-write lock keeps
 * lookups of known keys parallel. Nodes never move, so callers keep
 * node pointers without the lock.
 */
#include "kvfuse.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct key_slot {
    char *key; /* owned; NULL: empty */
    fuse_ino_t ino;
    uint64_t hash; /* the key's: probes compare it first, growing never rehashes a string */
} key_slot;

typedef struct id_slot {
    uint64_t id; /* 0: empty (ids are never 0) */
    fuse_ino_t ino;
} id_slot;

struct kvfuse_inodes {
    pthread_rwlock_t lock;
    kvfuse_node **nodes; /* by number; [0] unused */
    size_t count, cap;   /* numbers handed out + 1, room */
    key_slot *keys;      /* power-of-two sized, at most half full */
    size_t nkeys, keys_cap;
    id_slot *ids;
    size_t nids, ids_cap;
};

/* FNV-1a: short keys, no adversary worth a keyed hash (the image is the
 * mounter's own). */
static uint64_t hash_key(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3u;
    return h;
}

static uint64_t hash_id(uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdu;
    return id ^ (id >> 33);
}

static key_slot *key_probe(key_slot *slots, size_t cap, const char *key, uint64_t hash)
{
    for (size_t i = hash & (cap - 1);; i = (i + 1) & (cap - 1))
        if (!slots[i].key || (slots[i].hash == hash && strcmp(slots[i].key, key) == 0))
            return &slots[i];
}

static id_slot *id_probe(id_slot *slots, size_t cap, uint64_t id)
{
    for (size_t i = hash_id(id) & (cap - 1);; i = (i + 1) & (cap - 1))
        if (!slots[i].id || slots[i].id == id)
            return &slots[i];
}

/* Makes room for one more key (and id); the write lock is held. */
static bool grow(kvfuse_inodes *t)
{
    if (t->count == t->cap) {
        size_t cap = t->cap * 2;
        kvfuse_node **n = realloc(t->nodes, cap * sizeof *n);
        if (!n)
            return false;
        t->nodes = n, t->cap = cap;
    }
    if ((t->nkeys + 1) * 2 > t->keys_cap) {
        size_t cap = t->keys_cap * 2;
        key_slot *k = calloc(cap, sizeof *k);
        if (!k)
            return false;
        for (size_t i = 0; i < t->keys_cap; i++)
            if (t->keys[i].key)
                *key_probe(k, cap, t->keys[i].key, t->keys[i].hash) = t->keys[i];
        free(t->keys);
        t->keys = k, t->keys_cap = cap;
    }
    if ((t->nids + 1) * 2 > t->ids_cap) {
        size_t cap = t->ids_cap * 2;
        id_slot *k = calloc(cap, sizeof *k);
        if (!k)
            return false;
        for (size_t i = 0; i < t->ids_cap; i++)
            if (t->ids[i].id)
                *id_probe(k, cap, t->ids[i].id) = t->ids[i];
        free(t->ids);
        t->ids = k, t->ids_cap = cap;
    }
    return true;
}

kvfuse_inodes *kvfuse_inodes_new(const kvro_info *root)
{
    kvfuse_inodes *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    pthread_rwlock_init(&t->lock, NULL);
    t->cap = t->keys_cap = t->ids_cap = 1024;
    t->nodes = calloc(t->cap, sizeof *t->nodes);
    t->keys = calloc(t->keys_cap, sizeof *t->keys);
    t->ids = calloc(t->ids_cap, sizeof *t->ids);
    t->count = 1;
    if (!t->nodes || !t->keys || !t->ids || kvfuse_inode_of(t, "", root) != FUSE_ROOT_ID) {
        kvfuse_inodes_free(t);
        return NULL;
    }
    return t;
}

void kvfuse_inodes_free(kvfuse_inodes *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->keys_cap && t->keys; i++)
        free(t->keys[i].key); /* a node's key is its slot's */
    for (size_t i = 1; i < t->count; i++)
        free(t->nodes[i]);
    free(t->nodes);
    free(t->keys);
    free(t->ids);
    pthread_rwlock_destroy(&t->lock);
    free(t);
}

const kvfuse_node *kvfuse_inode_get(kvfuse_inodes *t, fuse_ino_t ino)
{
    const kvfuse_node *n = NULL;
    pthread_rwlock_rdlock(&t->lock);
    if (ino > 0 && ino < t->count)
        n = t->nodes[ino];
    pthread_rwlock_unlock(&t->lock);
    return n;
}

fuse_ino_t kvfuse_inode_find(kvfuse_inodes *t, const char *key, const kvfuse_node **node)
{
    uint64_t h = hash_key(key);
    pthread_rwlock_rdlock(&t->lock);
    fuse_ino_t ino = key_probe(t->keys, t->keys_cap, key, h)->ino;
    if (node)
        *node = ino ? t->nodes[ino] : NULL;
    pthread_rwlock_unlock(&t->lock);
    return ino;
}

/* Whether INFO says which stored entry it is (then its id is kept, and a
 * later key with the same id and kind is an alias). */
static bool has_id(const kvro_info *info)
{
    return info && info->id != 0;
}

fuse_ino_t kvfuse_inode_of(kvfuse_inodes *t, const char *key, const kvro_info *info)
{
    fuse_ino_t ino = kvfuse_inode_find(t, key, NULL);
    if (ino)
        return ino;
    uint64_t h = hash_key(key);
    pthread_rwlock_wrlock(&t->lock);
    char *copy = NULL;
    kvfuse_node *n = NULL;
    key_slot *ks = key_probe(t->keys, t->keys_cap, key, h);
    if (ks->key) { /* another thread made it meanwhile */
        ino = ks->ino;
        goto out;
    }
    if (!grow(t) || !(copy = strdup(key)))
        goto out;
    ks = key_probe(t->keys, t->keys_cap, key, h); /* grow may have moved the slots */
    id_slot *is = has_id(info) ? id_probe(t->ids, t->ids_cap, info->id) : NULL;
    if (is && is->id && t->nodes[is->ino]->info.kind != info->kind)
        is = NULL;      /* not the same entry after all: a source's ids are per kind at worst */
    if (is && is->id) { /* another key of an entry already numbered */
        *ks = (key_slot){copy, is->ino, h};
        t->nkeys++;
        ino = is->ino;
        copy = NULL;
        goto out;
    }
    if (!(n = calloc(1, sizeof *n)))
        goto out;
    ino = t->count++;
    n->key = copy;
    if (info)
        n->info = *info, n->has_info = true;
    t->nodes[ino] = n;
    *ks = (key_slot){copy, ino, h};
    t->nkeys++;
    if (is) {
        *is = (id_slot){info->id, ino};
        t->nids++;
    }
    copy = NULL;
out:
    pthread_rwlock_unlock(&t->lock);
    free(copy);
    return ino;
}

uint64_t kvfuse_inode_count(kvfuse_inodes *t)
{
    pthread_rwlock_rdlock(&t->lock);
    uint64_t n = t->count - 1;
    pthread_rwlock_unlock(&t->lock);
    return n;
}
