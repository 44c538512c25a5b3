/*
 * walk.h — the one confined path walker, shared by every backend whose tree
 * has symbolic links (the host directory, tar's index).
 *
 * A key is walked one component at a time from the root. A symbolic link
 * met on the way has its target spliced in front of the rest of the path
 * and walked from the directory that holds the link; ".." goes back up the
 * directories actually entered and never above the root; an absolute
 * target is inside only if it names a path under the root's real path
 * (when the backend has one) and is otherwise refused. After
 * KVRO_MAX_LINKS links it is a loop, and so is a key that reaches the same
 * directory at two of its components (a -> "." would make the tree
 * infinite). A hard link (tar) is its target's path from the root, its
 * last component not followed, after which the entry it names is treated
 * as if found where the hard link is — as two names of one inode are.
 *
 * The backend supplies the tree through kvro__walk_ops; nodes are opaque
 * 64-bit values (a descriptor, an index). A walk holds no lock and touches
 * no shared state, so any number may run at once.
 */
#ifndef KVRO_WALK_H
#define KVRO_WALK_H

#include "backend.h"

typedef enum kvro__wkind {
    KVRO__W_MISSING = 0,
    KVRO__W_DIR,
    KVRO__W_OTHER, /* a file, a device...: anything the walk stops at */
    KVRO__W_SYMLINK,
    KVRO__W_HARDLINK,
} kvro__wkind;

/* What a name is, as the backend's lookup says. */
typedef struct kvro__wentry {
    kvro__wkind kind;
    uint64_t node;       /* the backend's handle of the entry */
    uint64_t id[2];      /* a directory's identity, for the loop check */
    const char *target;  /* a link's target, if at hand (else readlink is asked) */
} kvro__wentry;

/* NAME below is N bytes, not NUL-terminated (it lies in the key); every
 * call about a name follows the lookup of that name. */
typedef struct kvro__walk_ops {
    /* Looks NAME up in directory DIR. MISSING is not an error. */
    kvro_status (*lookup)(void *ctx, uint64_t dir, const char *name, size_t n, kvro__wentry *e,
                          kvro_error *err);
    /* A symbolic link's target when lookup left E->target NULL: into BUF
     * (CAP bytes), NUL-terminated. */
    kvro_status (*readlink)(void *ctx, uint64_t dir, const char *name, size_t n, char *buf,
                            size_t cap, kvro_error *err);
    /* Enters directory NAME (entry E) of DIR: the node that stands for it
     * while the walk is inside. */
    kvro_status (*enter)(void *ctx, uint64_t dir, const char *name, size_t n,
                         const kvro__wentry *e, uint64_t *entered, kvro_error *err);
    /* Undoes enter (NULL if nothing to undo). */
    void (*leave)(void *ctx, uint64_t entered);
    uint64_t root;
    uint64_t root_id[2];
    /* Absolute targets under this path lead inside ("" for the host's "/");
     * NULL: every absolute target leads outside. */
    const char *root_real;
    const char *root_word; /* for messages: "the root", "the archive root" */
    size_t name_max;       /* longer names do not exist (0: no limit) */
} kvro__walk_ops;

/* Where a walk ended. */
typedef struct kvro__walk_end {
    uint64_t dir;      /* the directory that holds the last component */
    bool dir_entered;  /* DIR was entered by the walk: release it */
    const char *name;  /* the last component, NAME_LEN bytes, not NUL-terminated */
    size_t name_len;   /* ("." if the walk ended on DIR itself) */
    kvro__wentry e;    /* what it is; MISSING if only the last component is */
    bool via_link;     /* a link was followed on the way */
    char *name_heap;   /* NAME, when it had to outlive the walk's own buffer */
} kvro__walk_end;

enum {
    KVRO__WALK_FOLLOW = 1,  /* follow a link in the last component too */
    KVRO__WALK_MISSING = 2, /* the last component may be missing (create, mkdir) */
};

/* Walks normalised KEY (or a link target) from OPS->root. KEY must stay
 * as it is until kvro__walk_end_done (END's name may point into it). */
kvro_status kvro__walk(const kvro__walk_ops *ops, void *ctx, const char *key, int flags,
                       kvro__walk_end *end, kvro_error *err);
/* Leaves END's directory if the walk entered it, frees its name. */
void kvro__walk_end_done(const kvro__walk_ops *ops, void *ctx, kvro__walk_end *end);

#endif
