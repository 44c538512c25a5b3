/*
 * fat_vol.h — the FAT backend's insides, shared by the files of fat/ only.
 *
 * One file per on-disk structure: fat_bpb.c (boot sector, BPB, FSInfo),
 * fat_table.c (the FAT itself, cluster chains and their cache), fat_dir.c
 * (directory entries, long names, lookups), fat_part.c (MBR and GPT
 * partition tables) and fat.c (the backend table). Everything on disk is
 * decoded once, into the structs below; nothing else reads raw bytes.
 *
 * The structures are shaped for the write side to come: the FAT is kept
 * as stored (raw bytes, so a changed entry can be written back where it
 * lies), a node remembers where its short entry lies (to update size and
 * first cluster in place), and the chain cache is keyed by first cluster
 * (a write invalidates one key).
 */
#ifndef KVRO_FAT_VOL_H
#define KVRO_FAT_VOL_H

#include "backend.h"

#include <pthread.h>

enum {
    FAT_DIRENT = 32,          /* bytes per directory entry */
    FAT_LFN_UNITS = 255,      /* UTF-16 units in a long name at most */
    FAT_NAME_MAX = 255 * 3,   /* its UTF-8 bytes at most (BMP: 3 bytes a unit) */
    FAT_DIR_MAX = 65536 * 32, /* a directory's bytes at most (the spec's 65,536 entries) */
};

/* ------------------------------------------------------------ fat_bpb.c */

/* The boot sector, decoded and checked. Offsets are bytes from the start
 * of the volume; clusters are numbered 2 .. clusters + 1. */
typedef struct fat_bpb {
    uint32_t sector_size, sectors_per_cluster, cluster_size;
    uint32_t reserved, nfats, root_entries, fat_sectors;
    uint64_t total_sectors;
    int type;          /* 12, 16 or 32 */
    uint32_t clusters; /* data clusters */
    uint32_t active_fat;
    uint32_t root_cluster; /* FAT32 */
    uint32_t fsinfo_sector;
    int64_t fat_off, root_off, data_off;
    uint32_t root_bytes; /* FAT12/16: the fixed root directory's size */
    uint32_t volume_id;
    char label[12];
    bool has_fsinfo;
    uint32_t free_count, next_free; /* FSInfo, informational; 0xFFFFFFFF unknown */
} fat_bpb;

/* Decodes sector S (N bytes, at least 512) of a volume VOLUME_SIZE bytes
 * long; KVRO_E_CORRUPT naming the first field that is wrong. */
kvro_status kvro__fat_bpb_decode(const unsigned char *s, size_t n, int64_t volume_size, fat_bpb *b,
                                 kvro_error *err);
/* Whether S looks like a boot sector at all (a jump instruction): one
 * whose BPB then fails to decode is a damaged FAT volume. */
bool kvro__fat_boot_jump(const unsigned char *s, size_t n);
/* Reads the FAT32 FSInfo sector into B when its signatures hold. */
void kvro__fat_fsinfo_read(kvro_io *io, fat_bpb *b);

/* ---------------------------------------------------------- fat_table.c */

/* A chain as runs of consecutive clusters: file clusters [index, index +
 * count) lie at clusters [cluster, cluster + count). */
typedef struct fat_run {
    uint32_t index, cluster, count;
} fat_run;

typedef struct fat_chain {
    uint32_t first;  /* its first cluster: the cache's key */
    uint32_t length; /* clusters in it */
    uint32_t nruns;
    bool whole; /* walked to its end mark (a directory's always is) */
    int refs;   /* under the cache's lock */
    fat_run runs[];
} fat_chain;

#define FAT_CACHE_SLOTS 256

/* The active FAT as stored, checked once at open (see fat_table.c), and
 * the chains built from it. */
typedef struct fat_table {
    int type;
    uint32_t clusters;
    unsigned char *raw; /* the FAT's bytes covering clusters 0 .. clusters + 1 */
    size_t raw_len;
    uint8_t *pred;   /* bit per cluster: some chain continues into it */
    uint8_t *merged; /* ... two chains do (cross-linked) */
    pthread_mutex_t lock;
    fat_chain *slot[FAT_CACHE_SLOTS];
    uint64_t cached_runs;      /* in the slots, bounded (fat_table.c) */
    size_t dirty_lo, dirty_hi; /* raw bytes changed and not yet written (fat_write.c) */
} fat_table;

kvro_status kvro__fat_table_load(kvro_io *io, const fat_bpb *b, fat_table *t, kvro_error *err);
void kvro__fat_table_free(fat_table *t);
/* The chain starting at FIRST, at least WANT clusters of it (the whole
 * chain, up to WANT, for a directory: DIR true). From the cache or built
 * and cached; release it with kvro__fat_chain_put. KVRO_E_CORRUPT for a cluster
 * out of range, free or bad in the chain, a cross-link, or (a file) a
 * chain shorter than WANT. */
kvro_status kvro__fat_chain_get(fat_table *t, uint32_t first, uint32_t want, bool dir,
                                fat_chain **out, kvro_error *err);
void kvro__fat_chain_put(fat_table *t, fat_chain *c);
/* The run holding file cluster INDEX (which must be < C->length). */
const fat_run *kvro__fat_chain_find(const fat_chain *c, uint32_t index);
/* Write side: entry C; the end-of-chain mark written; whether V ends a
 * chain; entry C set to V in memory (marked dirty); whether any cluster
 * is in two chains; the cached chain from FIRST dropped. */
uint32_t kvro__fat_get(const fat_table *t, uint32_t c);
uint32_t kvro__fat_eoc(const fat_table *t);
bool kvro__fat_is_end(const fat_table *t, uint32_t v);
void kvro__fat_set(fat_table *t, uint32_t c, uint32_t v);
bool kvro__fat_cross_linked(const fat_table *t);
/* Whether cluster C is free to take: its entry 0, and no chain leading
 * into it (a damaged FAT's lost chain can end in a "free" cluster; taken,
 * it would join that chain to ours, and the reader refuses it). */
bool kvro__fat_takeable(const fat_table *t, uint32_t c);
void kvro__fat_chain_forget(fat_table *t, uint32_t first);

/* ------------------------------------------------------------ fat_dir.c */

/* A file or directory as its short entry describes it. */
typedef struct fat_node {
    uint32_t first; /* first cluster; 0: none (an empty file, the FAT12/16 root) */
    uint32_t size;
    uint8_t attr;
    uint16_t time, date; /* last write */
    int64_t pos;         /* the short entry's byte offset in the volume; 0: the root */
    bool dir;
} fat_node;

typedef struct fat_dirent {
    fat_node node;
    size_t name_len;
    char name[FAT_NAME_MAX + 1]; /* UTF-8: the long name, else the short one */
} fat_dirent;

struct fat_vol;
/* Calls FN for each entry of directory DIR in stored order, skipping "."
 * and "..", volume labels, deleted entries and names no key can spell;
 * a non-zero return stops. */
typedef int (*fat_dirent_fn)(void *arg, const fat_dirent *e);
kvro_status kvro__fat_dir_each(struct fat_vol *v, const fat_node *dir, fat_dirent_fn fn, void *arg,
                               kvro_error *err);
/* The same, passing entries no key can spell too (with an empty name):
 * for the write side, which must know every cluster an entry names. */
kvro_status kvro__fat_dir_each_all(struct fat_vol *v, const fat_node *dir, fat_dirent_fn fn,
                                   void *arg, kvro_error *err);
/* Looks NAME (N bytes of UTF-8) up in DIR, case-insensitively (fat_dir.c
 * says which folding); *FOUND says whether it is there. From DIR's cached
 * listing (read and cached first if need be), but during a write-side
 * operation by reading DIR as it is then. */
kvro_status kvro__fat_dir_lookup(struct fat_vol *v, const fat_node *dir, const char *name, size_t n,
                                 fat_node *out, bool *found, kvro_error *err);
/* The directory cache (fat_dir.c): directories decoded whole, so that a
 * key resolved again, a sibling's stat or a listing reads nothing. A
 * listing holds a directory's entries in stored order and a hash set of
 * their folded names; it is immutable once made, shared by reference
 * count, and cached by the directory's first cluster. */
typedef struct fat_listed {
    fat_node node;
    uint32_t hash; /* kvro__fat_fold_hash of the name */
    uint32_t len;  /* the name's bytes */
    size_t off;    /* the name in the listing's NAMES, NUL-terminated */
} fat_listed;

typedef struct fat_listing {
    uint32_t key;  /* the directory's first cluster (0: the FAT12/16 root) */
    uint64_t gen;  /* the cache's generation it was read in */
    int refs;      /* under the cache's lock */
    size_t bytes;  /* the memory it holds, for the cache's bound */
    size_t n;      /* entries */
    fat_listed *e; /* in stored order */
    char *names;
    size_t used, size; /* of NAMES */
    size_t cap;        /* of E */
    uint32_t *slot;    /* an index into E plus one; 0: empty */
    size_t nslots;     /* a power of two, at least twice N */
    /* The first entry whose name an earlier one has under the folding
     * (a damaged directory: a lookup finds only DUP_OF), N if none. */
    size_t dup, dup_of;
} fat_listing;

/* A direct-mapped table of listings, bounded in memory: FAT_LISTING_BYTES
 * holds the largest directory FAT allows with room for others (at most
 * 65,536 entries of 48 bytes and 8 of hash, their names at most 35 UTF-8
 * bytes for each 32-byte slot they take: under 7 MiB). */
#define FAT_LISTING_SLOTS 1024
#define FAT_LISTING_BYTES ((size_t)16 << 20)

typedef struct fat_dircache {
    pthread_mutex_t lock;
    fat_listing *slot[FAT_LISTING_SLOTS];
    size_t bytes; /* held by the listings in the slots */
    size_t hand;  /* where eviction looks next */
    /* Bumped before and after every write-side operation: odd while one is
     * under way, when the cache is neither used nor filled; a listing read
     * in another generation than the current one is never used. */
    uint64_t gen;
} fat_dircache;

void kvro__fat_dircache_init(fat_dircache *c);
void kvro__fat_dircache_free(fat_dircache *c);
/* Drops every listing and bumps the generation (fat.c, around every
 * write-side operation: the one place the write side invalidates). */
void kvro__fat_dircache_bump(struct fat_vol *v);
/* DIR's listing, from the cache or read (and cached, outside a write);
 * release it with kvro__fat_listing_put. */
kvro_status kvro__fat_listing_get(struct fat_vol *v, const fat_node *dir, fat_listing **out,
                                  kvro_error *err);
void kvro__fat_listing_put(struct fat_vol *v, fat_listing *l);
/* The entry a lookup of NAME (N bytes) finds in L, or NULL. */
const fat_listed *kvro__fat_listing_find(const fat_listing *l, const char *name, size_t n);

/* Whether UTF-8 names A and B are equal under that folding. */
bool kvro__fat_name_equal(const char *a, size_t an, const char *b, size_t bn);
/* A hash of NAME that names equal under that folding share. */
uint32_t kvro__fat_fold_hash(const char *name, size_t n);
/* Seconds since the epoch of a FAT date and time (read as UTC); 0 for no
 * date or an impossible one. */
int64_t kvro__fat_time(uint16_t date, uint16_t time);

/* ----------------------------------------------------------- fat_name.c */

/* A name parsed for storing: its UTF-16 units, the short-name basis and
 * what the rules of fat_name.c make of it. */
typedef struct fat_name {
    uint16_t u[FAT_LFN_UNITS];
    size_t units;
    unsigned char basis[11];      /* 8 + 3, space padded, upper case */
    size_t baselen, tail6, tail2; /* where "~N" and the hex tail go */
    uint8_t lcase;                /* NT flags when SHORT_ONLY */
    bool basis_ok;                /* the basis is the name but for case: no tail */
    bool short_only;              /* ... and needs no long name */
} fat_name;

/* One 32-byte short entry, as fields. */
typedef struct fat_entry {
    unsigned char name[11];
    uint8_t attr, lcase;
    uint32_t first, size;
    uint16_t time, date;
} fat_entry;

/* Whether short name SN is taken in the directory being filled. */
typedef bool (*fat_taken_fn)(void *arg, const unsigned char sn[11]);

/* KVRO_E_INVALID for a name FAT cannot hold (fat_name.c says which). */
kvro_status kvro__fat_name_parse(const char *name, size_t n, fat_name *nm, kvro_error *err);
/* The short name for NM in OUT, free by TAKEN: KVRO_E_EXISTS if the name
 * is taken in another case. */
kvro_status kvro__fat_name_short(const fat_name *nm, fat_taken_fn taken, void *arg,
                                 unsigned char out[11], kvro_error *err);
/* Long-name slots NM needs (0: the short entry alone). */
int kvro__fat_name_slots(const fat_name *nm);
/* The slots and the short entry E (its name the short name) into OUT:
 * (slots + 1) * 32 bytes. */
void kvro__fat_name_encode(const fat_name *nm, const fat_entry *e, unsigned char *out);
void kvro__fat_entry_encode(const fat_entry *e, unsigned char out[FAT_DIRENT]);
uint8_t kvro__fat_checksum(const unsigned char sn[11]);
uint32_t kvro__fat_name_hash(const uint16_t *u, size_t n);
/* Seconds since the epoch as a FAT date and time: 2-second steps,
 * clamped to 1980-01-01 .. 2107-12-31. */
void kvro__fat_time_encode(int64_t t, uint16_t *date, uint16_t *time);

/* ----------------------------------------------------------- fat_part.c */

typedef struct fat_part {
    int number;             /* as the table lists it, from 1 (logical MBR ones from 5) */
    int64_t offset, length; /* bytes */
    char type[48];          /* "FAT32 LBA (0x0c)", "EFI system", ... */
    bool fat;               /* its first sector holds a FAT boot sector */
    bool inside;            /* it lies within the disk */
} fat_part;

#define FAT_MAX_PARTS 128

/* What IMAGE is: a FAT volume itself (*NPARTS 0, *IS_DISK false), a disk
 * with an MBR or GPT table (*IS_DISK, its partitions in PARTS), or neither
 * (KVRO_E_UNSUPPORTED). HEAD is the image's first HEAD_LEN bytes. */
kvro_status kvro__fat_part_scan(kvro_io *io, int64_t size, const unsigned char *head,
                                size_t head_len, bool *is_disk, const char **table, fat_part *parts,
                                int *nparts, kvro_error *err);

/* ---------------------------------------------------------------- fat.c */

/* Which entry owns each directory chain met so far (fat.c): a directory
 * is named by one entry, so a second entry naming the same first cluster
 * is an alias (cross-linked directories), which would make every tree
 * walk exponential. Open addressing keyed by first cluster, under its own
 * lock: lookups on any number of threads fill it. */
typedef struct fat_owner {
    uint32_t cluster; /* the entry's first cluster; 0: an empty slot */
    uint32_t parent;  /* the first cluster of the directory holding the entry */
    int64_t pos;      /* the entry's short entry, as fat_node.pos */
    bool dir;         /* the entry is a directory's */
    bool filled;      /* a directory's entries with clusters are all owned */
} fat_owner;

typedef struct fat_owners {
    pthread_mutex_t lock;
    fat_owner *slot;
    size_t cap, n;    /* CAP a power of two (or 0); N at most CAP / 2 */
    bool root_filled; /* the root's entries with clusters are all owned */
} fat_owners;

typedef struct fat_vol {
    kvro_io *io; /* the volume: the image, or a window on its partition (our reference) */
    /* The image the handle was opened on (our reference; the same as IO
     * without a partition table) and where the volume starts in it:
     * locate answers in image offsets, as kvro_map, kvro_file_extent and
     * kvro_regions promise. */
    kvro_io *image;
    int64_t image_off, vol_size;
    fat_bpb bpb;
    fat_table table;
    fat_owners owners;
    fat_dircache dircache;
    bool writable;
    uint32_t free_count, next_free; /* counted at a read-write open (fat_write.c) */
    uint8_t *named; /* write side: bit per cluster some entry names as its first */
    char layout[512];               /* for kvro_stats.layout */
} fat_vol;

/* Reads N bytes at volume offset OFF, all of them or KVRO_E_CORRUPT
 * naming WHAT (the image ends too soon). (fat_dir.c) */
kvro_status kvro__fat_read_exact(fat_vol *v, int64_t off, void *buf, size_t n, const char *what,
                                 kvro_error *err);

/* ---------------------------------------------------------- fat_walk.c */

/* A key has at most KVRO_KEY_MAX / 2 + 1 components. */
#define FAT_DEPTH_MAX (KVRO_KEY_MAX / 2 + 2)

fat_node kvro__fat_root(const fat_vol *v);
/* Resolves normalised KEY to its entry, with every check on the way. */
kvro_status kvro__fat_walk(fat_vol *v, const char *key, fat_node *out, kvro_error *err);
/* The same, leaving in SEEN (FAT_DEPTH_MAX entries) the first clusters of
 * the directories entered, the root's first, *DEPTH of them. */
kvro_status kvro__fat_walk_seen(fat_vol *v, const char *key, fat_node *out, uint32_t *seen,
                                size_t *depth, kvro_error *err);
/* What a walk would say of entry E of directory DIR (named NAME, LEN
 * bytes, reached by KEY's first KLEN bytes; SEEN and DEPTH as
 * kvro__fat_walk_seen left them for DIR): for list_info, so that a
 * listing says of each entry what stat would. */
kvro_status kvro__fat_entry_check(fat_vol *v, const uint32_t *seen, size_t depth,
                                  const fat_node *dir, const fat_node *e, const char *key,
                                  size_t klen, const char *name, size_t len, kvro_error *err);

/* ---------------------------------------------------------- fat_write.c */

/* Ready V for writing (the clusters entries name found, free clusters
 * counted; an image with cross-linked chains refused); what it holds is
 * freed by kvro__fat_write_close. */
kvro_status kvro__fat_write_open(fat_vol *v, kvro_error *err);
void kvro__fat_write_close(fat_vol *v);
kvro_status kvro__fat_create(fat_vol *v, const char *key, kvro_error *err);
kvro_status kvro__fat_mkdir(fat_vol *v, const char *key, kvro_error *err);
kvro_status kvro__fat_write(fat_vol *v, const char *key, int64_t off, const void *buf, int64_t len,
                            kvro_error *err);
kvro_status kvro__fat_destroy(fat_vol *v, const char *key, kvro_error *err);
kvro_status kvro__fat_rename(fat_vol *v, const char *from, const char *to, kvro_error *err);

/* Code page 437, bytes 0x80-0xFF as Unicode (fat_dir.c). */
extern const uint16_t kvro__fat_cp437[128];

#endif
