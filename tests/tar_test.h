/*
 * tar_test.h — helpers shared by the tar tests (see tar_test.c). Include
 * after cmocka.h.
 */
#ifndef KVRO_TEST_TAR_TEST_H
#define KVRO_TEST_TAR_TEST_H

#include "support.h"

#include "backend.h"
#include "kvro/kvro.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct listing {
    char *names[256];
    kvro_kind kinds[256];
    size_t n;
} listing;

typedef struct tarbuf {
    unsigned char *p;
    size_t n, cap;
} tarbuf;

/* The directory tb_save writes to: made by tb_setup, removed by tb_teardown. */
extern char *tb_dir;

kvro *open_ok(const char *path, bool force);
void open_fails(const char *path, kvro_status s, const char *needle);
kvro_stats stats_of(kvro *kv);
char *read_all(kvro *kv, const char *key, int64_t *n);
void want_value(kvro *kv, const char *key, const char *want);
void want_status(kvro *kv, const char *key, kvro_status want, const char *needle);
/* A kvro_list callback filling a listing. */
int list_collect(void *arg, const char *name, kvro_kind kind);
void list_of(kvro *kv, const char *dir, listing *l);
void list_free(listing *l);
char *names_of(kvro *kv, const char *dir);
void want_names(kvro *kv, const char *dir, const char *want);
void tb_add(tarbuf *t, const void *data, size_t n);
void tb_pad(tarbuf *t);
void tb_fix_sum(unsigned char *h);
void tb_raw_header(unsigned char *h, const char *name, char type, int64_t size, const char *link);
void tb_header(tarbuf *t, const char *name, char type, int64_t size, const char *link);
void tb_file(tarbuf *t, const char *name, const char *data);
void tb_ext(tarbuf *t, char type, const char *data, size_t n);
char *tb_pax_rec(const char *key, const char *value);
void tb_pax(tarbuf *t, char type, const char *key, const char *value);
void tb_end(tarbuf *t);
char *tb_save_n(const tarbuf *t, const char *name, size_t n);
char *tb_save(tarbuf *t, const char *name);
int tb_setup(void **state);
int tb_teardown(void **state);
/* N copies of C, malloc'd. */
char *rep(char c, size_t n);

extern const kvro_backend kvro__backend_tar;

#endif
