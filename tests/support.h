/*
 * support.h — small helpers shared by the tests: temporary trees, files
 * with a known byte pattern, running a command and capturing its output.
 * Test code only: a helper that cannot do its job fails the test (abort).
 */
#ifndef KVRO_TEST_SUPPORT_H
#define KVRO_TEST_SUPPORT_H

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
/* Reads a whole file; *n gets its size. free() the result. */
char *t_slurp(const char *path, size_t *n);
/* Runs CMD with sh -c; returns its exit status (128+signal if killed).
 * *out and *err (if not NULL) receive malloc'd, NUL-terminated output. */
int t_run(const char *cmd, char **out, char **err);
/* printf into a malloc'd string. */
char *t_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Whether a program is on PATH (for tests that need a real peer tool). */
int t_have(const char *prog);

#endif
