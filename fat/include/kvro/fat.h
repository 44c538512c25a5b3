/*
 * kvro/fat.h — building FAT12/16/32 images in one pass (what `mkkv fat`
 * does), beside kvro.h.
 *
 * The caller describes a tree (kvro_fat_builder_add: directories before
 * their contents, each entry under its parent's index), the builder lays
 * it out (kvro_fat_builder_layout: the FAT type, cluster size and image
 * size by mkfs.fat's rules unless the parameters fix them; short names;
 * every file contiguous) and writes the image to an I/O object
 * (kvro_fat_builder_write): the boot sector, the FATs and every directory
 * built in memory and written once, then the files' bytes, asked of the
 * caller in the order the files were added (so a caller copying an
 * archive adds in its storage order, kvro_each, and reads it once). The
 * same tree, order of adds and parameters give the same bytes; directory
 * entries are sorted by name whatever the order.
 */
#ifndef KVRO_FAT_PUBLIC_H
#define KVRO_FAT_PUBLIC_H

#include <kvro/kvro.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kvro_fat_params {
    /* The volume's size in bytes (the partition table's megabyte not
     * counted); 0: the smallest that holds the tree with 1/16 of its size
     * and 64 KiB free, in 64 KiB steps. */
    int64_t size;
    int fat_type;          /* 12, 16 or 32; 0: as mkfs.fat chooses for the size */
    uint32_t cluster_size; /* bytes, a power of two from 512 to 32768; 0: mkfs.fat's */
    const char *label;     /* up to 11 characters of a short name; NULL or "": none */
    uint32_t volume_id;
    int64_t mtime; /* every entry's timestamps, seconds since the epoch */
    bool mbr;      /* the volume in partition 1 of an MBR, at 1 MiB */
} kvro_fat_params;

typedef struct kvro_fat_builder kvro_fat_builder;

/* The index of the root directory, the parent of the tree's top entries. */
#define KVRO_FAT_ROOT 0

KVRO_EXPORT kvro_status kvro_fat_builder_new(const kvro_fat_params *p, kvro_fat_builder **b,
                                             kvro_error *err);
/* Adds NAME (one component) in directory PARENT (an index returned
 * before, or KVRO_FAT_ROOT) as a directory or a file of SIZE bytes; its
 * index in *INDEX. Names are checked at layout. */
KVRO_EXPORT kvro_status kvro_fat_builder_add(kvro_fat_builder *b, size_t parent, const char *name,
                                             kvro_kind kind, int64_t size, size_t *index,
                                             kvro_error *err);
/* Settles the layout: names FAT cannot hold (KVRO_E_INVALID), names one
 * directory holds twice in different case (KVRO_E_EXISTS), a tree that
 * does not fit the size or type asked for (KVRO_E_NO_SPACE,
 * KVRO_E_INVALID) fail here, the key named in ERR. *IMAGE_SIZE is the
 * bytes the image takes. */
KVRO_EXPORT kvro_status kvro_fat_builder_layout(kvro_fat_builder *b, int64_t *image_size,
                                                kvro_error *err);
/* What the layout is, e.g. "FAT16, 8190 clusters of 2048 bytes". */
KVRO_EXPORT const char *kvro_fat_builder_describe(const kvro_fat_builder *b);

/* Asked for N bytes at OFF of file INDEX (all of them, or an error). */
typedef kvro_status (*kvro_fat_read_fn)(void *arg, size_t index, int64_t off, void *buf, size_t n,
                                        kvro_error *err);
/* Writes the image to OUT (a writable I/O object of at least
 * *IMAGE_SIZE bytes, or a file that grows), the files asked for in the
 * image's order (names sorted, depth first), whatever order they were
 * added in. Free clusters are not written: a new file or a zeroed buffer
 * reads zeros there. */
KVRO_EXPORT kvro_status kvro_fat_builder_write(kvro_fat_builder *b, kvro_io *out,
                                               kvro_fat_read_fn read, void *arg, kvro_error *err);
KVRO_EXPORT void kvro_fat_builder_free(kvro_fat_builder *b);

#ifdef __cplusplus
}
#endif
#endif
