/*
 * tar_test.c — helpers shared by the tar tests: open and check a source,
 * read values and listings, and write archives block by block (tb_*), so a
 * hand-made case is exactly the bytes it claims.
 */
#include "tar_test.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* ------------------------------------------------------------- helpers */

kvro *open_ok(const char *path, bool force)
{
    kvro_options o = {.backend = force ? "tar" : NULL};
    kvro *kv = NULL;
    kvro_error e;
    kvro_status s = kvro_open_opts(path, &o, &kv, &e);
    if (s != KVRO_OK)
        kvro_error_print(stderr, "open", &e);
    assert_int_equal(s, KVRO_OK);
    assert_string_equal(kvro_backend_of(kv), "tar");
    return kv;
}

/* Opens PATH (forcing the tar backend) and expects status S with NEEDLE in
 * the message. */
void open_fails(const char *path, kvro_status s, const char *needle)
{
    kvro_options o = {.backend = "tar"};
    kvro *kv = NULL;
    kvro_error e;
    kvro_status got = kvro_open_opts(path, &o, &kv, &e);
    if (got != s || (needle && !strstr(e.detail, needle)))
        fprintf(stderr, "open %s: got %d '%s', want %d with '%s'\n", path, got, e.detail, s,
                needle ? needle : "");
    assert_int_equal(got, s);
    assert_null(kv);
    if (needle)
        assert_non_null(strstr(e.detail, needle));
}

kvro_stats stats_of(kvro *kv)
{
    kvro_stats st;
    assert_int_equal(kvro_get_stats(kv, &st, NULL), KVRO_OK);
    return st;
}

/* The whole value of KEY, NUL-terminated; *n gets its size. */
char *read_all(kvro *kv, const char *key, int64_t *n)
{
    int64_t size;
    kvro_error e;
    kvro_status s = kvro_size(kv, key, &size, &e);
    if (s != KVRO_OK)
        kvro_error_print(stderr, key, &e);
    assert_int_equal(s, KVRO_OK);
    char *buf = malloc((size_t)size + 1);
    int64_t got;
    assert_int_equal(kvro_read(kv, key, 0, size, buf, &got, &e), KVRO_OK);
    assert_int_equal(got, size);
    buf[size] = '\0';
    if (n)
        *n = size;
    return buf;
}

void want_value(kvro *kv, const char *key, const char *want)
{
    char *v = read_all(kv, key, NULL);
    assert_string_equal(v, want);
    free(v);
}

void want_status(kvro *kv, const char *key, kvro_status want, const char *needle)
{
    kvro_info st;
    kvro_error e;
    kvro_status s = kvro_stat(kv, key, &st, &e);
    if (s != want || (needle && !strstr(e.detail, needle)))
        fprintf(stderr, "stat %s: got %d '%s', want %d with '%s'\n", key, s, e.detail, want,
                needle ? needle : "");
    assert_int_equal(s, want);
    if (needle)
        assert_non_null(strstr(e.detail, needle));
}

int list_collect(void *arg, const char *name, kvro_kind kind)
{
    listing *l = arg;
    if (l->n < 256) {
        l->names[l->n] = strdup(name);
        l->kinds[l->n++] = kind;
    }
    return 0;
}

void list_of(kvro *kv, const char *dir, listing *l)
{
    kvro_error e;
    memset(l, 0, sizeof *l);
    kvro_status s = kvro_list(kv, dir, list_collect, l, &e);
    if (s != KVRO_OK)
        kvro_error_print(stderr, dir, &e);
    assert_int_equal(s, KVRO_OK);
}

void list_free(listing *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
}

/* The names in DIR joined by spaces, for compact assertions. */
char *names_of(kvro *kv, const char *dir)
{
    listing l;
    list_of(kv, dir, &l);
    char *s = strdup("");
    for (size_t i = 0; i < l.n; i++) {
        char *t = t_fmt("%s%s%s", s, i ? " " : "", l.names[i]);
        free(s);
        s = t;
    }
    list_free(&l);
    return s;
}

void want_names(kvro *kv, const char *dir, const char *want)
{
    char *got = names_of(kv, dir);
    assert_string_equal(got, want);
    free(got);
}
/* ------------------------------------------------- hand-made archives */

void tb_add(tarbuf *t, const void *data, size_t n)
{
    if (t->n + n > t->cap) {
        t->cap = (t->n + n) * 2 + 4096;
        t->p = realloc(t->p, t->cap);
    }
    memcpy(t->p + t->n, data, n);
    t->n += n;
}

void tb_pad(tarbuf *t)
{
    static const unsigned char zero[512];
    if (t->n % 512)
        tb_add(t, zero, 512 - t->n % 512);
}

void tb_fix_sum(unsigned char *h)
{
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
}

/* A ustar header; SIZE in octal, or base-256 if it does not fit. */
void tb_raw_header(unsigned char *h, const char *name, char type, int64_t size, const char *link)
{
    memset(h, 0, 512);
    memcpy(h, name, strnlen(name, 100));
    memcpy(h + 100, "0000644", 8);
    memcpy(h + 108, "0001750", 8);
    memcpy(h + 116, "0001750", 8);
    if (size < 077777777777LL) {
        snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
    } else {
        h[124] = 0x80;
        for (int i = 0; i < 8; i++)
            h[135 - i] = (unsigned char)((uint64_t)size >> (8 * i));
    }
    snprintf((char *)h + 136, 12, "%011o", 1700000000);
    h[156] = (unsigned char)type;
    if (link)
        memcpy(h + 157, link, strnlen(link, 100));
    memcpy(h + 257,
           "ustar\0"
           "00",
           8);
    tb_fix_sum(h);
}

void tb_header(tarbuf *t, const char *name, char type, int64_t size, const char *link)
{
    unsigned char h[512];
    tb_raw_header(h, name, type, size, link);
    tb_add(t, h, 512);
}

void tb_file(tarbuf *t, const char *name, const char *data)
{
    tb_header(t, name, '0', (int64_t)strlen(data), NULL);
    tb_add(t, data, strlen(data));
    tb_pad(t);
}

/* An extended header of TYPE ('x', 'g', 'L', 'K') holding DATA[N]. */
void tb_ext(tarbuf *t, char type, const char *data, size_t n)
{
    tb_header(t, type == 'L' || type == 'K' ? "././@LongLink" : "PaxHeader", type, (int64_t)n,
              NULL);
    tb_add(t, data, n);
    tb_pad(t);
}

/* One pax record: its length counts its own digits. */
char *tb_pax_rec(const char *key, const char *value)
{
    size_t body = strlen(key) + strlen(value) + 3; /* ' ', '=', '\n' */
    size_t len = body + 1;
    while (snprintf(NULL, 0, "%zu", len) + body != len)
        len++;
    return t_fmt("%zu %s=%s\n", len, key, value);
}

void tb_pax(tarbuf *t, char type, const char *key, const char *value)
{
    char *r = tb_pax_rec(key, value);
    tb_ext(t, type, r, strlen(r));
    free(r);
}

void tb_end(tarbuf *t)
{
    static const unsigned char zero[1024];
    tb_add(t, zero, sizeof zero);
}

char *tb_dir;

char *tb_save_n(const tarbuf *t, const char *name, size_t n)
{
    char *path = t_join(tb_dir, name);
    t_write(path, t->p, n);
    return path;
}

char *tb_save(tarbuf *t, const char *name)
{
    char *path = tb_save_n(t, name, t->n);
    free(t->p);
    memset(t, 0, sizeof *t);
    return path;
}

int tb_setup(void **state)
{
    (void)state;
    tb_dir = t_tempdir("tarcraft");
    return 0;
}

int tb_teardown(void **state)
{
    (void)state;
    t_rmrf(tb_dir);
    free(tb_dir);
    return 0;
}

char *rep(char c, size_t n)
{
    char *s = malloc(n + 1);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}
