/*
 * tar_format.h — the tar on-disk structures, decoded in one place
 * (tar_format.c): the 512-byte header block, its numeric fields (octal or
 * GNU base-256) and pax extended-header records. Nothing here does I/O or
 * allocates; everything else in the backend works on the decoded structs.
 */
#ifndef KVRO_TAR_FORMAT_H
#define KVRO_TAR_FORMAT_H

#include "backend.h"

#define TAR_BLOCK 512

/* prefix (155) + '/' + name (100) + NUL. */
#define TAR_HEADER_NAME_MAX 257

/* What a header block announces. The first group are archive members; the
 * rest only modify the member that follows (or, for 'g', all that follow). */
typedef enum tar_type {
    TAR_T_FILE,       /* '0', '\0', '7', and unknown types, as POSIX says */
    TAR_T_HARDLINK,   /* '1' */
    TAR_T_SYMLINK,    /* '2' */
    TAR_T_SPECIAL,    /* '3' '4' '6' devices and FIFOs, 'M' continuations */
    TAR_T_DIR,        /* '5', GNU 'D' dumpdir (and, told by the scan, an old-style
                       * directory: kvro__tar_old_style_dir) */
    TAR_T_SPARSE,     /* GNU 'S' */
    TAR_T_LONGNAME,   /* GNU 'L': the data is the next member's name */
    TAR_T_LONGLINK,   /* GNU 'K': the data is the next member's link target */
    TAR_T_PAX,        /* pax 'x' (and Solaris 'X'): records for the next member */
    TAR_T_PAX_GLOBAL, /* pax 'g': records for every member that follows */
    TAR_T_IGNORED,    /* GNU 'V' volume label, 'N' old long names, Solaris 'A'/'E'/'I' */
} tar_type;

typedef struct tar_header {
    tar_type type;
    char typeflag;
    char name[TAR_HEADER_NAME_MAX]; /* ustar prefix + "/" + name, NUL-terminated */
    char link[101];
    int64_t size; /* the size field: bytes of data after this block */
    int64_t mtime;
    uint32_t mode;   /* permission bits only (07777) */
    bool sparse_ext; /* GNU 'S': extension blocks follow the header */
} tar_header;

/* Whether BLK ends the archive: GNU tar's test, every byte but the checksum
 * field is zero. */
bool kvro__tar_block_is_zero(const unsigned char *blk);

/* Whether BLK has a valid header checksum (signed or unsigned sum). */
bool kvro__tar_header_valid(const unsigned char *blk);

/* Decodes the header block BLK found at archive offset OFF (for messages).
 * KVRO_E_CORRUPT with the offset on a bad checksum or numeric field. */
kvro_status kvro__tar_header_decode(const unsigned char *blk, int64_t off, tar_header *h,
                              kvro_error *err);

/* Whether a member of type TYPEFLAG whose final name (after a GNU long name
 * or pax path) is NAME is an old-style directory: type '0' or '\0' with a
 * trailing '/' (v7 tars; libarchive, GNU tar and Python all read it so). */
bool kvro__tar_old_style_dir(char typeflag, const char *name);

/* Whether a member of type TYPEFLAG has no data whatever its size field
 * says: links, devices, FIFOs and directories ('1' to '6'). */
bool kvro__tar_header_only(char typeflag);

/* Whether a GNU sparse extension block says another one follows it. */
bool kvro__tar_sparse_ext_continues(const unsigned char *blk);

/* Old GNU sparse ('S'): the map entries of the header (4 at byte 386) and
 * of each extension block (21 at byte 0), 12 octal bytes of offset then 12
 * of length. */
#define TAR_SPARSE_IN_HEADER 4
#define TAR_SPARSE_IN_EXT 21
typedef enum tar_sparse_entry_kind {
    TAR_SPARSE_ENTRY, /* *off and *len hold a region */
    TAR_SPARSE_END,   /* an empty length field: the map ends (GNU tar's rule) */
    TAR_SPARSE_BAD,   /* a field that is not a number */
} tar_sparse_entry_kind;
/* Entry I of the map in header block BLK (EXT false) or extension block
 * BLK (EXT true). */
tar_sparse_entry_kind kvro__tar_sparse_entry(const unsigned char *blk, bool ext, size_t i,
                                             int64_t *off, int64_t *len);
/* The logical size of an old GNU sparse member (its "realsize" field at
 * 483); false if it is not a number. */
bool kvro__tar_sparse_realsize(const unsigned char *blk, int64_t *size);

/* A numeric header field: octal as GNU tar reads it (one leading NUL, then
 * white space, digits ended by NUL or white space, anything after that
 * ignored) or base-256 (high bit of the first byte set, GNU and star). */
bool kvro__tar_number(const unsigned char *field, size_t n, int64_t *out);

/* ------------------------------------------------------------------ pax */

/* One record "LEN KEY=VALUE\n" of a pax extended header. KEY and VALUE
 * point into the parsed buffer and are not NUL-terminated. */
typedef struct tar_pax_record {
    const char *key;
    size_t key_len;
    const char *value;
    size_t value_len;
} tar_pax_record;

/* Steps through the records of DATA[LEN] (the extended header's data at
 * archive offset OFF). *POS starts at 0. Returns KVRO_OK with *more = true
 * and the next record, or *more = false at the end (trailing NUL padding is
 * accepted as the end); KVRO_E_CORRUPT naming the record's offset when its
 * length is not its length or it is not "KEY=VALUE\n". */
kvro_status kvro__tar_pax_next(const char *data, size_t len, size_t *pos, int64_t off,
                         tar_pax_record *rec, bool *more, kvro_error *err);

/* Whether REC's key is KEY. */
bool kvro__tar_pax_is(const tar_pax_record *rec, const char *key);

/* A pax decimal integer, no sign (size, uid, gid). */
bool kvro__tar_pax_uint(const char *v, size_t n, int64_t *out);

/* A pax time: [-]SECONDS[.FRACTION]; digits past nanoseconds are dropped.
 * A negative time -1.25 is (-2 s, 750000000 ns). */
bool kvro__tar_pax_time(const char *v, size_t n, int64_t *sec, int32_t *nsec);

#endif
