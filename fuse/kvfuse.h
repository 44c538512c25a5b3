/*
 * kvfuse.h — what kvfuse's files share: the mount's context, the inode
 * table (inodes.c) and the low-level operations (ops.c). kvfuse uses only
 * kvro's public header, like mkkv.
 */
#ifndef KVRO_FUSE_KVFUSE_H
#define KVRO_FUSE_KVFUSE_H

/* fuse/CMakeLists.txt picks 312 (fuse_loop_cfg_*, max_threads) where
 * libfuse has it, else 35 (fuse_file_info.cache_readdir, the loop config of
 * 3.2): 3.14 mishandles the old config's thread limit. */
#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 35
#endif

#include <fuse_lowlevel.h>
#include <kvro/kvro.h>

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------ inodes */

/* One inode: the key it was first found under and, when that succeeded,
 * its stat. A node never changes nor moves once made, so a pointer to it
 * stays valid without the table's lock until kvfuse_inodes_free. */
typedef struct kvfuse_node {
    char *key;
    kvro_info info;
    bool has_info; /* false: its stat failed when listed; ask again */
} kvfuse_node;

typedef struct kvfuse_inodes kvfuse_inodes;

/* A table whose inode 1 (FUSE_ROOT_ID) is the root, described by ROOT. */
kvfuse_inodes *kvfuse_inodes_new(const kvro_info *root);
void kvfuse_inodes_free(kvfuse_inodes *t);
/* The node of INO, or NULL for a number never handed out. */
const kvfuse_node *kvfuse_inode_get(kvfuse_inodes *t, fuse_ino_t ino);
/* The inode KEY already has (and its node), or 0. */
fuse_ino_t kvfuse_inode_find(kvfuse_inodes *t, const char *key, const kvfuse_node **node);
/* The inode of KEY, made on first sight with INFO (NULL if unknown). Keys
 * of one stored entry (the same INFO id and kind: hard links, a FAT
 * volume's other-case names) share one inode. 0 only when out of memory. */
fuse_ino_t kvfuse_inode_of(kvfuse_inodes *t, const char *key, const kvro_info *info);
/* Inodes handed out so far (statfs's f_files). */
uint64_t kvfuse_inode_count(kvfuse_inodes *t);

/* ----------------------------------------------------------- the mount */

typedef struct kvfuse_ctx {
    kvro *kv;
    kvfuse_inodes *inodes;
    uid_t uid; /* owner of every entry (-o uid=, else the mounter) */
    gid_t gid;
    mode_t umask;        /* -o umask=, taken from every mode but a link's */
    double timeout;      /* entry and attribute timeout, seconds */
    int64_t image_bytes; /* the image's size for statfs; 0 for a directory */
} kvfuse_ctx;

/* The operations table (ops.c); the session's userdata is a kvfuse_ctx. */
extern const struct fuse_lowlevel_ops kvfuse_ops;

/* A message to standard error while in the foreground, to syslog once
 * daemonised (kvfuse_log_to_syslog). LEVEL is a syslog level. */
void kvfuse_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void kvfuse_log_to_syslog(void);

/* "DIR/NAME" (or NAME when DIR is the root, "") into OUT of KVRO_KEY_MAX + 1
 * bytes; false if it does not fit. */
bool kvfuse_key_join(char *out, const char *dir, const char *name);

#endif
