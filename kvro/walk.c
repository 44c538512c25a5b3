/*
 * walk.c — the confined path walker of walk.h.
 *
 * The state of one walk: PATH is what is left to walk — the caller's key
 * itself until a link is met, then a buffer holding the link's target
 * spliced in front of the key's unwalked rest; a stack of the directories
 * entered (".." pops one); and, once a link has been followed, the
 * directories the key's own components have reached (the loop check).
 *
 * A lookup is the hot path of every read, so the common walk (no link)
 * copies nothing, allocates nothing and keeps no loop list: until a link
 * is followed the key only descends, so the directories it has reached are
 * exactly the stack, and the list is seeded from it at the first link.
 */
#include "walk.h"

#include <stdlib.h>
#include <string.h>

/* Bound on a path grown by link expansion: 16 targets of PATH_MAX. */
#define MAX_EXPANDED (16 * 4096)
#define SMALL 16

typedef struct frame {
    uint64_t node;
    uint64_t id[2];
} frame;

typedef struct walk {
    const kvro__walk_ops *ops;
    void *ctx;
    const char *path; /* the key, or BUF */
    char *buf;        /* NULL, BUF_SMALL or a heap copy */
    size_t plen;      /* strlen(PATH) */
    size_t i;         /* next byte of PATH to walk */
    size_t key_tail;  /* PATH's last KEY_TAIL bytes are still the caller's key */
    frame *st;
    size_t depth, st_cap;
    uint64_t (*seen)[2];
    size_t nseen, seen_cap;
    bool seeded;      /* SEEN holds the key's directories (a link was followed) */
    bool check_loops; /* the key's own walk, not a hard link's target's */
    int *links;       /* shared with the walks of hard links' targets */
    frame st_small[SMALL];
    uint64_t seen_small[SMALL][2];
    char buf_small[512];
} walk;

static kvro_status nomem(kvro_error *err)
{
    return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
}

/* Makes room in V (elements of SIZE, *CAP of them, initially SMALL_V) for
 * element N. */
static bool grow(void **v, size_t *cap, size_t n, size_t size, void *small_v)
{
    if (n < *cap)
        return true;
    void *w = malloc(2 * *cap * size);
    if (!w)
        return false;
    memcpy(w, *v, n * size);
    if (*v != small_v)
        free(*v);
    *v = w;
    *cap *= 2;
    return true;
}

/* PATH becomes A + "/" + B (just A if B is empty). Both may lie in the old
 * PATH, so the new one goes to the other buffer. */
static kvro_status splice(walk *w, const char *a, size_t an, const char *b, size_t bn,
                          kvro_error *err)
{
    size_t need = an + 1 + bn + 1;
    if (need > MAX_EXPANDED)
        return kvro_error_set(err, KVRO_E_LINK, "the path grows too long through symbolic links");
    char *p = need <= sizeof w->buf_small && w->buf != w->buf_small ? w->buf_small
                                                                      : malloc(need);
    if (!p)
        return nomem(err);
    memcpy(p, a, an);
    size_t o = an;
    if (bn) {
        p[o++] = '/';
        memcpy(p + o, b, bn);
        o += bn;
    }
    p[o] = '\0';
    if (w->buf != w->buf_small)
        free(w->buf);
    w->buf = p;
    w->path = p;
    w->plen = o;
    w->i = 0;
    return KVRO_OK;
}

static void pop_to(walk *w, size_t depth)
{
    for (; w->depth > depth; w->depth--)
        if (w->ops->leave)
            w->ops->leave(w->ctx, w->st[w->depth].node);
}

static kvro_status push(walk *w, uint64_t node, const uint64_t id[2], kvro_error *err)
{
    if (w->depth + 1 >= w->st_cap &&
        !grow((void **)&w->st, &w->st_cap, w->depth + 1, sizeof *w->st, w->st_small)) {
        if (w->ops->leave)
            w->ops->leave(w->ctx, node);
        return nomem(err);
    }
    w->st[++w->depth] = (frame){node, {id[0], id[1]}};
    return KVRO_OK;
}

static kvro_status seen_add(walk *w, const uint64_t id[2], kvro_error *err)
{
    if (!grow((void **)&w->seen, &w->seen_cap, w->nseen, sizeof *w->seen, w->seen_small))
        return nomem(err);
    w->seen[w->nseen][0] = id[0];
    w->seen[w->nseen++][1] = id[1];
    return KVRO_OK;
}

/* A link is about to be followed: from now on the directories the key
 * reaches are remembered, starting with those it has (the stack). */
static kvro_status seed(walk *w, kvro_error *err)
{
    if (w->seeded || !w->check_loops)
        return KVRO_OK;
    w->seeded = true;
    for (size_t d = 0; d <= w->depth; d++)
        if (seen_add(w, w->st[d].id, err) != KVRO_OK)
            return KVRO_E_NOMEM;
    return KVRO_OK;
}

/* A directory reached at two components of one key: the tree would be
 * infinite, so the key is a loop. Without a link followed the key only
 * descends, and nothing needs checking. */
static kvro_status check_loop(walk *w, const uint64_t id[2], kvro_error *err)
{
    if (!w->seeded)
        return KVRO_OK;
    for (size_t k = 0; k < w->nseen; k++)
        if (w->seen[k][0] == id[0] && w->seen[k][1] == id[1])
            return kvro_error_set(err, KVRO_E_LINK,
                                  "symbolic links lead back to a directory the key already "
                                  "passed (a loop)");
    return seen_add(w, id, err);
}

static kvro_status too_many(const char *name, size_t n, kvro_error *err)
{
    return kvro_error_set(err, KVRO_E_LINK, "too many levels of links at '%.*s' (a loop)",
                          (int)n, name);
}

/* The symbolic link NAME (entry E) in the current directory: its target
 * replaces it in PATH, before the rest. An absolute target restarts at the
 * root if it lies under the root's real path. */
static kvro_status follow(walk *w, const char *name, size_t n, const kvro__wentry *e,
                          kvro_error *err)
{
    const kvro__walk_ops *o = w->ops;
    if (++*w->links > KVRO_MAX_LINKS)
        return too_many(name, n, err);
    kvro_status s = seed(w, err);
    if (s != KVRO_OK)
        return s;
    char target[4096];
    const char *t = e->target;
    if (!t) {
        s = o->readlink(w->ctx, w->st[w->depth].node, name, n, target, sizeof target, err);
        if (s != KVRO_OK)
            return s;
        t = target;
    }
    if (!t[0])
        return kvro_error_set(err, KVRO_E_LINK, "symbolic link '%.*s' has an empty target",
                              (int)n, name);
    if (t[0] == '/') {
        size_t rl = o->root_real ? strlen(o->root_real) : 0;
        if (!o->root_real || strncmp(t, o->root_real, rl) != 0 ||
            (t[rl] != '/' && t[rl] != '\0'))
            return kvro_error_set(err, KVRO_E_LINK,
                                  "symbolic link '%.*s' -> '%s' leads outside %s%s", (int)n, name,
                                  t, o->root_word, o->root_real ? "" : " (absolute target)");
        t += rl;
        pop_to(w, 0);
    }
    return splice(w, t, strlen(t), w->path + w->i, w->plen - w->i, err);
}

static kvro_status run(const kvro__walk_ops *ops, void *ctx, const char *key, int flags,
                       int *links, bool check_loops, kvro__walk_end *end, kvro_error *err);

/* A hard link: the entry at its target's path from the root (the last
 * component not followed) stands where the link is. */
static kvro_status hard_link(walk *w, const char *name, size_t n, kvro__wentry *e,
                             kvro_error *err)
{
    if (++*w->links > KVRO_MAX_LINKS)
        return too_many(name, n, err);
    kvro_status s = seed(w, err);
    if (s != KVRO_OK)
        return s;
    kvro__walk_end t;
    s = run(w->ops, w->ctx, e->target, 0, w->links, false, &t, err);
    if (s == KVRO_E_NOT_FOUND || s == KVRO_E_NOT_DIR)
        return kvro_error_set(err, KVRO_E_CORRUPT,
                              "hard link '%.*s' -> '%s': no such member in the archive", (int)n,
                              name, e->target);
    if (s == KVRO_OK) {
        *e = t.e;
        kvro__walk_end_done(w->ops, w->ctx, &t);
    }
    return s;
}

/* The walk ends at NAME (entry E) in the current directory, which END
 * takes over. NAME stays where it is if that is the caller's key. */
static kvro_status land(walk *w, const char *name, size_t n, const kvro__wentry *e,
                        kvro__walk_end *end, kvro_error *err)
{
    if (w->buf && name >= w->buf && name < w->buf + w->plen + 1) {
        if (!(end->name_heap = malloc(n + 1)))
            return nomem(err);
        memcpy(end->name_heap, name, n);
        end->name_heap[n] = '\0';
        name = end->name_heap;
    }
    end->name = name;
    end->name_len = n;
    end->dir = w->st[w->depth].node;
    end->dir_entered = w->depth > 0;
    end->e = *e;
    end->via_link = *w->links > 0;
    if (w->depth > 0)
        w->depth--; /* handed over to END */
    return KVRO_OK;
}

/* One component of PATH, [C, C + N): LAST says nothing follows it. */
static kvro_status step(walk *w, const char *c, size_t n, bool last, int flags, bool *done,
                        kvro__walk_end *end, kvro_error *err)
{
    const kvro__walk_ops *o = w->ops;
    if (n == 1 && c[0] == '.')
        return KVRO_OK;
    if (n == 2 && c[0] == '.' && c[1] == '.') {
        if (w->depth == 0)
            return kvro_error_set(err, KVRO_E_LINK, "a symbolic link leads above %s",
                                  o->root_word);
        pop_to(w, w->depth - 1);
        return KVRO_OK;
    }
    if (o->name_max && n > o->name_max)
        return kvro_error_set(err, KVRO_E_NOT_FOUND, "a name is longer than %zu bytes",
                              o->name_max);
    kvro__wentry e = {0};
    bool follow_last = (flags & KVRO__WALK_FOLLOW) != 0;
    kvro_status s = o->lookup(w->ctx, w->st[w->depth].node, c, n, &e, err);
    while (s == KVRO_OK && e.kind == KVRO__W_HARDLINK && (!last || follow_last))
        s = hard_link(w, c, n, &e, err);
    if (s != KVRO_OK)
        return s;
    if (e.kind == KVRO__W_MISSING) {
        if (!last || !(flags & KVRO__WALK_MISSING))
            return last ? kvro_error_set(err, KVRO_E_NOT_FOUND, "no such key")
                        : kvro_error_set(err, KVRO_E_NOT_FOUND, "no such directory '%.*s'",
                                         (int)n, c);
        *done = true;
        return land(w, c, n, &e, end, err);
    }
    if (e.kind == KVRO__W_SYMLINK && (!last || follow_last))
        return follow(w, c, n, &e, err);
    if (last) {
        *done = true;
        if (follow_last && e.kind == KVRO__W_DIR && (s = check_loop(w, e.id, err)) != KVRO_OK)
            return s;
        return land(w, c, n, &e, end, err);
    }
    if (e.kind != KVRO__W_DIR)
        return kvro_error_set(err, KVRO_E_NOT_DIR, "'%.*s' is not a directory", (int)n, c);
    uint64_t entered;
    s = o->enter(w->ctx, w->st[w->depth].node, c, n, &e, &entered, err);
    return s == KVRO_OK ? push(w, entered, e.id, err) : s;
}

static kvro_status run(const kvro__walk_ops *ops, void *ctx, const char *key, int flags,
                       int *links, bool check_loops, kvro__walk_end *end, kvro_error *err)
{
    end->name = NULL;
    end->name_heap = NULL;
    end->dir_entered = false;
    /* Field by field: the inline buffers need no zeroing. */
    walk w;
    w.ops = ops;
    w.ctx = ctx;
    w.path = key;
    w.buf = NULL;
    w.plen = strlen(key);
    w.i = 0;
    w.key_tail = w.plen;
    w.st = w.st_small;
    w.st_cap = SMALL;
    w.depth = 0;
    w.seen = w.seen_small;
    w.seen_cap = SMALL;
    w.nseen = 0;
    w.seeded = false;
    w.check_loops = check_loops;
    w.links = links;
    w.st[0] = (frame){ops->root, {ops->root_id[0], ops->root_id[1]}};
    kvro_status s = w.plen > MAX_EXPANDED
                        ? kvro_error_set(err, KVRO_E_BAD_KEY, "the key is too long")
                        : KVRO_OK;
    bool done = false;
    while (s == KVRO_OK && !done) {
        const char *path = w.path, *p = path + w.i, *c;
        bool last;
        size_t n = kvro__component(&p, &c, &last);
        /* Nearer the end than the key's unwalked rest: what stands before
         * was walked whole, targets spliced in for it included. */
        bool key_component = w.plen - (size_t)(c - path) <= w.key_tail;
        if (key_component && (s = check_loop(&w, w.st[w.depth].id, err)) != KVRO_OK)
            break;
        if (n == 0) { /* ended on a directory: the root, or after ".." */
            kvro__wentry e = {KVRO__W_DIR, w.st[w.depth].node,
                              {w.st[w.depth].id[0], w.st[w.depth].id[1]}, NULL};
            s = land(&w, ".", 1, &e, end, err);
            break;
        }
        w.i = (size_t)(p - path);
        if (key_component)
            w.key_tail = w.plen - w.i;
        s = step(&w, c, n, last, flags, &done, end, err);
    }
    if (s != KVRO_OK)
        kvro__walk_end_done(ops, ctx, end);
    pop_to(&w, 0);
    if (w.buf != w.buf_small)
        free(w.buf);
    if (w.st != w.st_small)
        free(w.st);
    if (w.seen != w.seen_small)
        free(w.seen);
    return s;
}

kvro_status kvro__walk(const kvro__walk_ops *ops, void *ctx, const char *key, int flags,
                       kvro__walk_end *end, kvro_error *err)
{
    int links = 0;
    return run(ops, ctx, key, flags, &links, true, end, err);
}

void kvro__walk_end_done(const kvro__walk_ops *ops, void *ctx, kvro__walk_end *end)
{
    if (end->dir_entered && ops->leave)
        ops->leave(ctx, end->dir);
    end->dir_entered = false;
    free(end->name_heap);
    end->name_heap = NULL;
    end->name = NULL;
}
