/*
 * crunch_check.c — compiled by test_crunch.c with a table mkkv crunch
 * generated (table.c/table.h, --name table), as a user's program would
 * be (-std=c99 -pedantic -Werror, gcc and clang): compares every entry of
 * the compiled-in tree with the host directory it came from, opened with
 * the dir backend, and prints "SHA256  KEY" per file for sha256sum to
 * check. Exit 0 when all agree; each difference is printed.
 *
 *   crunch_check REFDIR MODE [EPOCH|- [FILE]]
 *     MODE  plain: every value must map (kvro_map); compressed: values
 *           may be compressed, and every read around each 64 KiB block
 *           boundary is compared too
 *     EPOCH the mtime every entry must have (SOURCE_DATE_EPOCH), "-" none
 *     FILE  a file's key, for the errors of paths through it
 */
#include "table.h"

#include <kvro/crunch.h>
#include <kvro/kvro.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static kvro *kv, *ref;
static int compressed;
static int has_epoch;
static long long epoch;
static long files, dirs, mapped;

#define FAIL(...)                                                                                 \
    do {                                                                                          \
        fprintf(stderr, "crunch_check: " __VA_ARGS__);                                           \
        fputc('\n', stderr);                                                                      \
        failures++;                                                                               \
    } while (0)

typedef struct names {
    char **v;
    kvro_kind *k;
    size_t n;
} names;

static int add_name(void *arg, const char *name, kvro_kind kind)
{
    names *l = arg;
    l->v = realloc(l->v, (l->n + 1) * sizeof *l->v);
    l->k = realloc(l->k, (l->n + 1) * sizeof *l->k);
    if (!l->v || !l->k)
        abort();
    l->v[l->n] = malloc(strlen(name) + 1);
    if (!l->v[l->n])
        abort();
    strcpy(l->v[l->n], name);
    l->k[l->n++] = kind;
    return 0;
}

static void names_free(names *l)
{
    size_t i;
    for (i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    free(l->k);
}

static unsigned char *read_all(kvro *h, const char *key, int64_t size)
{
    unsigned char *buf = malloc(size ? (size_t)size : 1);
    int64_t n = 0;
    kvro_error err;
    if (!buf)
        abort();
    if (kvro_read(h, key, 0, size, buf, &n, &err) != KVRO_OK || n != size) {
        kvro_error_print(stderr, "crunch_check", &err);
        FAIL("%s: read %lld of %lld bytes", key, (long long)n, (long long)size);
    }
    return buf;
}

/* Reads around every block boundary of a compressed value. */
static void check_boundaries(const char *key, const unsigned char *want, int64_t size)
{
    static const int64_t lens[] = {1, 2, 7, 4096, 65535, 65536, 65537, 200000};
    unsigned char *buf = malloc(200000);
    int64_t b, d;
    size_t l;
    if (!buf)
        abort();
    for (b = 0; b <= size; b += 65536)
        for (d = -3; d <= 3; d++)
            for (l = 0; l < sizeof lens / sizeof *lens; l++) {
                int64_t off = b + d, n = -1, exp;
                kvro_error err;
                if (off < 0)
                    continue;
                exp = off >= size ? 0 : (size - off < lens[l] ? size - off : lens[l]);
                if (kvro_read(kv, key, off, lens[l], buf, &n, &err) != KVRO_OK || n != exp ||
                    (exp && memcmp(buf, want + off, (size_t)exp))) {
                    FAIL("%s: read at %lld of %lld bytes differs", key, (long long)off,
                         (long long)lens[l]);
                    free(buf);
                    return;
                }
            }
    free(buf);
}

static void check_file(const char *key, const kvro_info *rs)
{
    kvro_info st;
    kvro_error err;
    unsigned char sha[32];
    const void *map;
    int64_t map_size;
    unsigned char *got, *want;
    int i;
    if (kvro_stat(kv, key, &st, &err) != KVRO_OK) {
        kvro_error_print(stderr, "crunch_check", &err);
        FAIL("%s: no stat", key);
        return;
    }
    if (st.kind != KVRO_KIND_FILE || st.size != rs->size || !st.has_mode ||
        st.mode != (rs->mode & 07777) || st.mtime != (has_epoch ? epoch : rs->mtime))
        FAIL("%s: stat differs (size %lld/%lld mode %o/%o mtime %lld/%lld)", key,
             (long long)st.size, (long long)rs->size, (unsigned)st.mode, (unsigned)rs->mode,
             (long long)st.mtime, (long long)rs->mtime);
    got = read_all(kv, key, st.size);
    want = read_all(ref, key, rs->size);
    if (st.size == rs->size && memcmp(got, want, (size_t)st.size))
        FAIL("%s: bytes differ", key);
    if (kvro_map(kv, key, &map, &map_size, &err) == KVRO_OK) {
        mapped++;
        if (map_size != st.size || memcmp(map, got, (size_t)st.size))
            FAIL("%s: kvro_map differs from kvro_read", key);
    } else if (!compressed || err.status != KVRO_E_UNSUPPORTED) {
        kvro_error_print(stderr, "crunch_check", &err);
        FAIL("%s: kvro_map failed", key);
    }
    if (compressed && st.size > 60000)
        check_boundaries(key, want, st.size);
    if (kvro_sha256(kv, key, sha, &err) != KVRO_OK) {
        kvro_error_print(stderr, "crunch_check", &err);
        FAIL("%s: no sha256", key);
    }
    for (i = 0; i < 32; i++)
        printf("%02x", sha[i]);
    /* sha256sum's line for a name with a backslash or newline starts with
     * '\' and escapes them; the test avoids newlines. */
    printf("  %s\n", key);
    free(got);
    free(want);
    files++;
}

static void walk(const char *dir)
{
    names a = {0}, b = {0};
    kvro_error err;
    size_t i;
    if (kvro_list(kv, dir, add_name, &a, &err) != KVRO_OK) {
        kvro_error_print(stderr, "crunch_check", &err);
        FAIL("%s: cannot list", dir);
    }
    if (kvro_list(ref, dir, add_name, &b, &err) != KVRO_OK) {
        kvro_error_print(stderr, "crunch_check", &err);
        FAIL("%s: cannot list the reference", dir);
    }
    if (a.n != b.n)
        FAIL("%s: %zu entries, the reference has %zu", dir, a.n, b.n);
    for (i = 0; i < a.n && i < b.n; i++) {
        char key[KVRO_KEY_MAX + 1];
        kvro_info rs;
        if (strcmp(a.v[i], b.v[i]) || a.k[i] != b.k[i]) {
            FAIL("%s: entry %zu is %s, the reference's %s", dir, i, a.v[i], b.v[i]);
            continue;
        }
        snprintf(key, sizeof key, "%s%s%s", dir, *dir ? "/" : "", a.v[i]);
        if (kvro_stat(ref, key, &rs, &err) != KVRO_OK) {
            FAIL("%s: no reference stat", key);
            continue;
        }
        if (a.k[i] == KVRO_KIND_DIR) {
            kvro_info st;
            dirs++;
            if (kvro_stat(kv, key, &st, &err) != KVRO_OK || st.kind != KVRO_KIND_DIR ||
                st.mtime != (has_epoch ? epoch : rs.mtime))
                FAIL("%s: directory stat differs", key);
            walk(key);
        } else {
            check_file(key, &rs);
        }
    }
    names_free(&a);
    names_free(&b);
}

static int count_each(void *arg, const char *name, kvro_status s, const kvro_info *info)
{
    (void)name;
    (void)info;
    if (s == KVRO_OK)
        ++*(long *)arg;
    return 0;
}

/* Answers that are errors, as every backend gives them. */
static void check_errors(void)
{
    kvro_info st;
    kvro_error err;
    unsigned char sha[32];
    char buf[4];
    int64_t n;
    if (kvro_stat(kv, "no/such/key", &st, &err) != KVRO_E_NOT_FOUND)
        FAIL("a missing key is not KVRO_E_NOT_FOUND");
    if (!strstr(err.key, "no/such/key") || strncmp(err.source, "crunch:table", 12))
        FAIL("the error names '%s' '%s'", err.source, err.key);
    if (kvro_read(kv, "", 0, 4, buf, &n, &err) != KVRO_E_IS_DIR)
        FAIL("reading the root is not KVRO_E_IS_DIR");
    if (kvro_sha256(kv, "", sha, &err) != KVRO_E_IS_DIR)
        FAIL("the root's sha256 is not KVRO_E_IS_DIR");
    if (kvro_sha256(ref, "", sha, &err) != KVRO_E_UNSUPPORTED)
        FAIL("a directory source's sha256 is not KVRO_E_UNSUPPORTED");
    if (kvro_stat(kv, "../x", &st, &err) != KVRO_E_BAD_KEY)
        FAIL("'..' is not KVRO_E_BAD_KEY");
}

/* For a file KEY: a path through it, a trailing '/', a listing. */
static void check_file_errors(const char *key)
{
    char k[KVRO_KEY_MAX + 1];
    kvro_info st;
    kvro_error err;
    names l = {0};
    snprintf(k, sizeof k, "%s/x", key);
    if (kvro_stat(kv, k, &st, &err) != KVRO_E_NOT_DIR)
        FAIL("%s: a path through a file is not KVRO_E_NOT_DIR", k);
    snprintf(k, sizeof k, "%s/", key);
    if (kvro_stat(kv, k, &st, &err) != KVRO_E_NOT_DIR)
        FAIL("%s: a file with a trailing '/' is not KVRO_E_NOT_DIR", k);
    if (kvro_list(kv, key, add_name, &l, &err) != KVRO_E_NOT_DIR)
        FAIL("%s: listing a file is not KVRO_E_NOT_DIR", key);
    names_free(&l);
}

int main(int argc, char **argv)
{
    kvro_error err;
    long each = 0;
    if (argc < 3) {
        fprintf(stderr, "usage: crunch_check REFDIR plain|compressed [EPOCH|- [FILE]]\n");
        return 2;
    }
    compressed = !strcmp(argv[2], "compressed");
    if (argc > 3 && strcmp(argv[3], "-")) {
        has_epoch = 1;
        epoch = atoll(argv[3]);
    }
    if (kvro_open_crunch(&table, &kv, &err) != KVRO_OK || kvro_open(argv[1], &ref, &err)) {
        kvro_error_print(stderr, "crunch_check", &err);
        return 1;
    }
    if (strcmp(kvro_backend_of(kv), "crunch"))
        FAIL("backend %s", kvro_backend_of(kv));
    walk("");
    check_errors();
    if (argc > 4)
        check_file_errors(argv[4]);
    kvro_each(kv, count_each, &each, &err);
    if (each != files + dirs)
        FAIL("kvro_each gave %ld entries, the walk %ld", each, files + dirs);
    fprintf(stderr, "crunch_check: %ld files, %ld directories, %ld mapped, %d failures\n",
            files, dirs, mapped, failures);
    kvro_close(kv);
    kvro_close(ref);
    return failures ? 1 : 0;
}
