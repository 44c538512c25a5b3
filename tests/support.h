/*
 * support.h — small helpers shared by the tests: temporary trees, files
 * with a known byte pattern, running a command and capturing its output,
 * and an I/O object that injects faults (t_fault).
 * Test code only: a helper that cannot do its job fails the test (abort).
 */
#ifndef KVRO_TEST_SUPPORT_H
#define KVRO_TEST_SUPPORT_H

#include <kvro/kvro.h>

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Paths known at build time (set by tests/CMakeLists.txt). */
#ifndef KVRO_TEST_MKKV
#define KVRO_TEST_MKKV "mkkv"
#endif
#ifndef KVRO_TEST_SOURCE_DIR
#define KVRO_TEST_SOURCE_DIR "."
#endif
#ifndef KVRO_TEST_BINARY_DIR
#define KVRO_TEST_BINARY_DIR "."
#endif

/* A fresh directory under $TMPDIR (or /tmp); free() the result. */
char *t_tempdir(const char *tag);
/* rm -rf PATH (never follows symlinks). */
void t_rmrf(const char *path);
/* A + "/" + B, malloc'd. */
char *t_join(const char *a, const char *b);
/* mkdir -p. */
void t_mkdirs(const char *path);
/* Writes N bytes to PATH, making parent directories. */
void t_write(const char *path, const void *data, size_t n);
/* The byte at position I of the pattern named SEED (not periodic at 4 KiB,
 * so an off-by-a-block read shows). */
uint8_t t_pattern(uint64_t seed, uint64_t i);
/* Writes N pattern bytes of SEED to PATH. */
void t_write_pattern(const char *path, uint64_t seed, uint64_t n);
/* An entry of a tree to make: KEY, a file of SIZE bytes or, if SIZE is
 * -1, a directory. */
typedef struct t_entry {
    const char *key;
    int64_t size;
} t_entry;
/* Makes the N entries E under ROOT, in order: the Ith, if a file, holds
 * the pattern SEED + I. */
void t_make_tree(const char *root, const t_entry *e, size_t n, uint64_t seed);
/* Reads a whole file; *n gets its size. free() the result. */
char *t_slurp(const char *path, size_t *n);
/* Runs CMD with sh -c; returns its exit status (128+signal if killed).
 * *out and *err (if not NULL) receive malloc'd, NUL-terminated output. */
int t_run(const char *cmd, char **out, char **err);
/* printf into a malloc'd string. */
char *t_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
char *t_vfmt(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
/* t_run of the command FMT... makes (*out, *err as there); its exit status. */
int t_sh(char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The same for PREFIX (NULL: none) followed by what FMT and AP make: for
 * a test's own runner that puts a "cd DIR && " or the like before every
 * command. */
int t_vsh(const char *prefix, char **out, char **err, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
/* t_sh of a command that must succeed: otherwise the test fails, saying
 * the command, its exit status and what it printed. */
void t_sh_ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Runs mkkv (KVRO_TEST_MKKV) with ARGS, a shell fragment FMT... makes;
 * its exit status, *out and *err as t_run's. */
int t_mkkv(char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* V little-endian at P (4 bytes), as on-disk formats store it. */
void t_put_le32(unsigned char *p, uint32_t v);
/* Slot SLOT (0-3) of the MBR at D: partition type TYPE, COUNT sectors
 * from sector LBA; the boot signature set. */
void t_mbr_entry(unsigned char *d, int slot, uint8_t type, uint32_t lba, uint32_t count);
/* Whether a program is on PATH (for tests that need a real peer tool). */
int t_have(const char *prog);

/* ------------------------------------------------ a fault-injecting I/O object
 *
 * A t_fault sits between kvro and an inner I/O object, as the caller's
 * callbacks (kvro_io_from_callbacks), and does to each call what its
 * settings say: fail the read (write, flush, size) call with a given
 * index with an errno; if sticky, fail every call after that too (a device
 * that died); move at most K bytes per read or write call (short
 * transfers, which kvro must retry); let the failing write put its first
 * bytes down before it fails (a write torn by a crash). It counts every
 * call, the bytes moved and the failures it injected.
 *
 *     t_fault f;
 *     t_fault_init(&f);
 *     f.fail_read = 3;                  // the fourth read call fails (EIO)
 *     kvro_io *io = t_fault_memory(&f, data, len, NULL);
 *     kvro_status s = kvro_open_io(io, NULL, &kv, &err);
 *     kvro_io_close(io);                // kv keeps its own reference
 *     ...; kvro_close(kv);              // now f.closes == 1
 *     // f.reads, f.injected, ... stay readable
 *
 * Indexes count calls of the callback since t_fault_init (or the last
 * t_fault_reset), failed ones included, from 0. The t_fault is the
 * caller's (a local will do) and must outlive the I/O object. Counters are
 * atomic, since kvro may read from many threads; set the settings only
 * while no call is in flight. Reads are pread-like (thread-safe) whatever
 * the settings; an index-triggered failure happens once.
 */
typedef struct t_fault {
    /* Settings (t_fault_init: nothing injected, no limits). */
    int64_t fail_read;  /* index of the read call that fails; -1: none */
    int64_t fail_write; /* ... the write call */
    int64_t fail_flush; /* ... the flush call */
    int64_t fail_size;  /* ... the size call */
    bool sticky;        /* after the first injected failure every call fails */
    size_t max_read;    /* bytes a read call moves at most; 0: all it is asked */
    size_t max_write;   /* bytes a write call moves at most; 0: all */
    size_t torn;        /* the write at fail_write first writes this many of its bytes */
    int error;          /* the errno of an injected failure; 0 means EIO */
    /* Counters. */
    atomic_llong reads, writes, flushes, sizes; /* calls, failed ones included */
    atomic_llong read_bytes, write_bytes;       /* bytes moved (a torn write's too) */
    atomic_llong injected;                      /* failures injected */
    atomic_int closes; /* the callbacks' close: once, at the last reference */
    kvro_io *inner;    /* the wrapped object (a reference of the t_fault's own, until close) */
} t_fault;

/* Nothing injected, no limits, counters 0. */
void t_fault_init(t_fault *f);
/* Counters back to 0 (settings kept): indexes count from here. */
void t_fault_reset(t_fault *f);
/* An I/O object over INNER (the t_fault takes its own reference) with F's
 * faults. FLAGS: KVRO_IO_RDONLY or KVRO_IO_RDWR (then INNER should be
 * writable). NAME NULL gives kvro's default for callbacks. Aborts on
 * failure. */
kvro_io *t_fault_io(t_fault *f, kvro_io *inner, int flags, const char *name);
/* The same over LEN bytes at DATA (kvro_io_from_memory; read-only). */
kvro_io *t_fault_memory(t_fault *f, const void *data, size_t len, const char *name);
/* The same over a writable buffer (kvro_io_from_memory_rw; KVRO_IO_RDWR). */
kvro_io *t_fault_memory_rw(t_fault *f, void *data, size_t len, const char *name);

/* Checked constructors for tests: the object, or the test fails. */
kvro_io *t_mem_io(const void *data, size_t len);
kvro_io *t_window(kvro_io *base, int64_t off, int64_t len);
/* Whether descriptor FD is open / was closed (EBADF). */
bool t_fd_open(int fd);
bool t_fd_closed(int fd);
/* Fails the test unless E's detail mentions NEEDLE. */
void t_want_detail(const kvro_error *e, const char *needle);

#endif
