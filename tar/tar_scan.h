/*
 * tar_scan.h — the single sequential pass over a tar archive's headers
 * that fills the member index (tar_scan.c), and the byte sources it reads
 * from: a plain archive (tar_src.c), the inflating gzip reader (tar_gz_build.c).
 */
#ifndef KVRO_TAR_SCAN_H
#define KVRO_TAR_SCAN_H

#include "tar_index.h"

/* A forward-only view of the (uncompressed) archive. Each read starts at
 * or after the end of the previous read or has() call: a gzip source has
 * discarded what lies before. */
typedef struct tar_src tar_src;
struct tar_src {
    /* Up to N bytes at OFF; *got < N only at the end of the archive. */
    kvro_status (*read)(tar_src *s, int64_t off, void *buf, size_t n, size_t *got, kvro_error *err);
    /* *ok = whether the archive is at least END bytes long. Data before END
     * may be skipped without being read. */
    kvro_status (*has)(tar_src *s, int64_t end, bool *ok, kvro_error *err);
};

/* Members the scan did not serve (a "." or ".." in the path, ...), counted,
 * with the first one's reason kept for the user; and damaged extended
 * header records it read past (a pax mtime with junk, a last record
 * without its newline) where the member's name, size and data offset
 * stayed certain, likewise. */
#define TAR_WARNING_MAX 256
typedef struct tar_warnings {
    int64_t count;
    char first[TAR_WARNING_MAX];
    int64_t ignored;
    char first_ignored[TAR_WARNING_MAX];
} tar_warnings;

/* Reads every header from offset 0 to the end marker (two zero blocks, one
 * zero block then the end of the data, or just the end of the data at a
 * header boundary) and adds the members to IX (initialised). On a malformed
 * archive: KVRO_E_CORRUPT naming the byte offset. */
kvro_status kvro__tar_scan(tar_src *src, tar_index *ix, tar_warnings *w, kvro_error *err);

/* A plain file read with large buffered preads: a header next to the
 * previous member is usually in the buffer already, and a large member's
 * data is skipped by position, never read. */
typedef struct tar_file_src {
    tar_src base;
    kvro_io *io;              /* not owned */
    const unsigned char *mem; /* the image itself, when it is in memory: no staging copy */
    int64_t size;
    unsigned char *buf;
    int64_t buf_off;
    size_t buf_len;
    const kvro_options *opts;
    int64_t next_report;
} tar_file_src;

kvro_status kvro__tar_file_src_init(tar_file_src *s, kvro_io *io, int64_t size, const kvro_options *o,
                              kvro_error *err);
void kvro__tar_file_src_done(tar_file_src *s);

#endif
