/*
 * walk.c — the confined path walker of walk.h.
 *
 * The state of one walk: PATH is what is left to walk (the key, with link
 * targets spliced in front of its unwalked rest as they are met); a stack
 * of the directories entered (".." pops one); the directories the key's own
 * components have reached (the loop check). Small walks, the common case,
 * use the buffers inside the state and allocate nothing.
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
    char *path, path_small[512];
    size_t i;        /* next byte of PATH to walk */
    size_t key_tail; /* PATH's last KEY_TAIL bytes are still the caller's key */
    frame *st, st_small[SMALL];
    size_t depth, st_cap;
    uint64_t (*seen)[2], seen_small[SMALL][2];
    size_t nseen, seen_cap;
    int *links; /* shared with the walks of hard links' targets */
    bool check_loops;
} walk;

static kvro_status nomem(kvro_error *err)
{
    return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
}

/* Grows V (elements of SIZE, *CAP of them, initially SMALL_V) to hold one
 * more than N. */
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

/* PATH becomes A + "/" + B (just A if B is empty). A and B may lie in the
 * old PATH, so the new one is built in the other buffer. */
static kvro_status set_path(walk *w, const char *a, size_t an, const char *b, size_t bn,
                            kvro_error *err)
{
    size_t need = an + 1 + bn + 1;
    if (need > MAX_EXPANDED)
        return kvro_error_set(err, KVRO_E_LINK, "the path grows too long through symbolic links");
    char *p = need <= sizeof w->path_small && w->path != w->path_small ? w->path_small
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
    if (w->path != w->path_small)
        free(w->path);
    w->path = p;
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
    if (!grow((void **)&w->st, &w->st_cap, w->depth + 1, sizeof *w->st, w->st_small)) {
        if (w->ops->leave)
            w->ops->leave(w->ctx, node);
        return nomem(err);
    }
    w->st[++w->depth] = (frame){node, {id[0], id[1]}};
    return KVRO_OK;
}

/* A directory reached at two components of one key: the tree would be
 * infinite, so the key is a loop. */
static kvro_status check_loop(walk *w, const uint64_t id[2], kvro_error *err)
{
    if (!w->check_loops)
        return KVRO_OK;
    for (size_t k = 0; k < w->nseen; k++)
        if (w->seen[k][0] == id[0] && w->seen[k][1] == id[1])
            return kvro_error_set(err, KVRO_E_LINK,
                                  "symbolic links lead back to a directory the key already "
                                  "passed (a loop)");
    if (!grow((void **)&w->seen, &w->seen_cap, w->nseen, sizeof *w->seen, w->seen_small))
        return nomem(err);
    w->seen[w->nseen][0] = id[0];
    w->seen[w->nseen++][1] = id[1];
    return KVRO_OK;
}

static kvro_status too_many(const char *name, kvro_error *err)
{
    return kvro_error_set(err, KVRO_E_LINK, "too many levels of links at '%s' (a loop)", name);
}

/* The symbolic link NAME (entry E) in the current directory: its target
 * replaces it in PATH, before the rest. An absolute target restarts at the
 * root if it lies under the root's real path. */
static kvro_status follow(walk *w, const char *name, const kvro__wentry *e, kvro_error *err)
{
    const kvro__walk_ops *o = w->ops;
    if (++*w->links > KVRO_MAX_LINKS)
        return too_many(name, err);
    char buf[4096];
    const char *t = e->target;
    if (!t) {
        kvro_status s = o->readlink(w->ctx, w->st[w->depth].node, name, buf, sizeof buf, err);
        if (s != KVRO_OK)
            return s;
        t = buf;
    }
    if (!t[0])
        return kvro_error_set(err, KVRO_E_LINK, "symbolic link '%s' has an empty target", name);
    if (t[0] == '/') {
        size_t rl = o->root_real ? strlen(o->root_real) : 0;
        if (!o->root_real || strncmp(t, o->root_real, rl) != 0 ||
            (t[rl] != '/' && t[rl] != '\0'))
            return kvro_error_set(err, KVRO_E_LINK,
                                  "symbolic link '%s' -> '%s' leads outside %s%s", name, t,
                                  o->root_word, o->root_real ? "" : " (absolute target)");
        t += rl;
        pop_to(w, 0);
    }
    const char *rest = w->path + w->i;
    return set_path(w, t, strlen(t), rest, strlen(rest), err);
}

static kvro_status run(const kvro__walk_ops *ops, void *ctx, const char *key, int flags,
                       int *links, bool check_loops, kvro__walk_end *end, kvro_error *err);

/* A hard link: the entry at its target's path from the root (the last
 * component not followed) stands where the link is. */
static kvro_status hard_link(walk *w, const char *name, kvro__wentry *e, kvro_error *err)
{
    if (++*w->links > KVRO_MAX_LINKS)
        return too_many(name, err);
    kvro__walk_end t;
    kvro_status s = run(w->ops, w->ctx, e->target, 0, w->links, false, &t, err);
    if (s == KVRO_E_NOT_FOUND || s == KVRO_E_NOT_DIR)
        return kvro_error_set(err, KVRO_E_CORRUPT,
                              "hard link '%s' -> '%s': no such member in the archive", name,
                              e->target);
    if (s == KVRO_OK) {
        *e = t.e;
        kvro__walk_end_done(w->ops, w->ctx, &t);
    }
    return s;
}

static kvro_status land(walk *w, const char *name, size_t n, const kvro__wentry *e,
                        kvro__walk_end *end, kvro_error *err)
{
    char *d = n < sizeof end->name_buf ? end->name_buf : (end->name_heap = malloc(n + 1));
    if (!d)
        return nomem(err);
    memcpy(d, name, n);
    d[n] = '\0';
    end->name = d;
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
    char small[256], *name = n < sizeof small ? small : malloc(n + 1);
    if (!name)
        return nomem(err);
    memcpy(name, c, n);
    name[n] = '\0';
    kvro__wentry e = {0};
    bool follow_last = (flags & KVRO__WALK_FOLLOW) != 0;
    kvro_status s = o->lookup(w->ctx, w->st[w->depth].node, name, &e, err);
    while (s == KVRO_OK && e.kind == KVRO__W_HARDLINK && (!last || follow_last))
        s = hard_link(w, name, &e, err);
    if (s != KVRO_OK) {
    } else if (e.kind == KVRO__W_MISSING) {
        if (last && (flags & KVRO__WALK_MISSING)) {
            s = land(w, name, n, &e, end, err);
            *done = true;
        } else {
            s = last ? kvro_error_set(err, KVRO_E_NOT_FOUND, "no such key")
                     : kvro_error_set(err, KVRO_E_NOT_FOUND, "no such directory '%s'", name);
        }
    } else if (e.kind == KVRO__W_SYMLINK && (!last || follow_last)) {
        s = follow(w, name, &e, err);
    } else if (last) {
        if (follow_last && e.kind == KVRO__W_DIR)
            s = check_loop(w, e.id, err);
        if (s == KVRO_OK)
            s = land(w, name, n, &e, end, err);
        *done = true;
    } else if (e.kind != KVRO__W_DIR) {
        s = kvro_error_set(err, KVRO_E_NOT_DIR, "'%s' is not a directory", name);
    } else {
        uint64_t entered;
        s = o->enter(w->ctx, w->st[w->depth].node, name, &e, &entered, err);
        if (s == KVRO_OK)
            s = push(w, entered, e.id, err);
    }
    if (name != small)
        free(name);
    return s;
}

static kvro_status run(const kvro__walk_ops *ops, void *ctx, const char *key, int flags,
                       int *links, bool check_loops, kvro__walk_end *end, kvro_error *err)
{
    memset(end, 0, sizeof *end);
    walk w = {.ops = ops, .ctx = ctx, .links = links, .check_loops = check_loops};
    w.st = w.st_small;
    w.st_cap = SMALL;
    w.seen = w.seen_small;
    w.seen_cap = SMALL;
    w.st[0] = (frame){ops->root, {ops->root_id[0], ops->root_id[1]}};
    size_t klen = strlen(key);
    w.key_tail = klen;
    kvro_status s = set_path(&w, key, klen, "", 0, err);
    bool done = false;
    while (s == KVRO_OK && !done) {
        const char *path = w.path, *p = path + w.i, *c;
        size_t plen = strlen(path);
        bool last;
        size_t n = kvro__component(&p, &c, &last);
        /* Nearer the end than the key's unwalked rest: what stands before
         * was walked whole, targets spliced in for it included. */
        bool key_component = plen - (size_t)(c - path) <= w.key_tail;
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
            w.key_tail = plen - w.i;
        s = step(&w, c, n, last, flags, &done, end, err);
    }
    if (s != KVRO_OK)
        kvro__walk_end_done(ops, ctx, end);
    pop_to(&w, 0);
    if (w.path != w.path_small)
        free(w.path);
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
