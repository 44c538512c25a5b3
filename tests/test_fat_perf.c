/*
 * test_fat_perf.c — the FAT backend's directory cache and its one-pass
 * listing with stats (list_info), by what they must not change and by the
 * reads they must not make:
 *   - kvro_list_info, kvro_each and kvro_stat agree on every entry of
 *     trees made by mkfs.fat + mcopy (FAT12/16/32, a read-only file, long,
 *     UTF-8 and 8.3 names, nested and empty directories), whichever is
 *     asked first on a handle;
 *   - on images with directories of 20,000 entries (made by the builder
 *     behind mkkv fat), opened through an I/O object that counts the
 *     reads: a listing with stats reads each directory cluster about once
 *     (not once per entry), stats and missing keys after it read nothing,
 *     a value read after the first makes one read of data and none of
 *     directories; more directories than the cache holds are still
 *     answered right, and by several threads at once;
 *   - on a handle opened read-write (kvro_fs), what the cache holds is
 *     forgotten at every change: a file destroyed and made again with
 *     another size, replaced the way a rename would be, grown, and
 *     directories made and removed, each seen at once through kvro_fs and
 *     through a KV_RO view of it.
 * No timing is asserted (a loaded machine would flake): read counts are.
 */
#include "support.h"

#include "fat/include/kvro/fat.h" /* the builder (installed as <kvro/fat.h>) */
#include <kvro/kvro.h>

#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"

static char *work, *tree;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------- list_info against kvro_stat */

static const t_entry TREE[] = {
    {"readme.txt", 6},
    {"UPPER.TXT", 3},
    {"ro.txt", 11}, /* made read-only by mattrib: mode 0444 */
    {"Mixed Case Long Name.markdown", 40},
    {"données été.txt", 33},
    {"empty", 0},
    {"emptydir", -1},
    {"a", -1},
    {"a/b", -1},
    {"a/b/c", -1},
    {"a/b/c/deep.txt", 100},
    {"a/b/Sibling File", 7},
    {"a/x.y.z", 5},
    {"big.bin", 300007},
};
#define NTREE (sizeof TREE / sizeof TREE[0])

/* mkfs.fat OPTS -C IMAGE KIB, the tree copied in by mcopy, ro.txt marked
 * read-only by mattrib. */
static char *make_image(const char *name, const char *opts, int kib)
{
    char *img = t_join(work, name);
    t_sh_ok("rm -f '%s' && mkfs.fat %s -C '%s' %d >/dev/null && cd '%s' && "
            "TZ=UTC MTOOLS_SKIP_CHECK=1 mcopy -s -m -i '%s' * :: && "
            "MTOOLS_SKIP_CHECK=1 mattrib -i '%s' +r ::/ro.txt",
            img, opts, img, kib, tree, img, img);
    return img;
}

typedef struct entry {
    char *name;
    kvro_status s;
    kvro_info info;
} entry;

typedef struct entries {
    size_t n, cap;
    entry *v;
} entries;

static int collect_info(void *arg, const char *name, kvro_status s, const kvro_info *info)
{
    entries *l = arg;
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        assert_non_null(l->v);
    }
    entry *e = &l->v[l->n++];
    e->name = strdup(name);
    e->s = s;
    memset(&e->info, 0, sizeof e->info);
    if (info)
        e->info = *info;
    return 0;
}

static void entries_free(entries *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].name);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Every field of kvro_info, so that a new one is compared too. */
static void same_info(const char *key, const char *what, const kvro_info *a, const kvro_info *b)
{
    if (a->kind != b->kind || a->size != b->size || a->mtime != b->mtime ||
        a->mtime_nsec != b->mtime_nsec || a->mode != b->mode || a->has_mode != b->has_mode ||
        a->read_only != b->read_only || a->id != b->id || a->nlink != b->nlink)
        fail_msg("'%s': %s says kind %d size %lld mtime %lld mode %o id %llu nlink %u, stat "
                 "kind %d size %lld mtime %lld mode %o id %llu nlink %u",
                 key, what, a->kind, (long long)a->size, (long long)a->mtime, a->mode,
                 (unsigned long long)a->id, a->nlink, b->kind, (long long)b->size,
                 (long long)b->mtime, b->mode, (unsigned long long)b->id, b->nlink);
}

typedef struct walk_count {
    int entries, read_only;
} walk_count;

/* DIR's kvro_list_info (both flags) against kvro_stat and kvro_lstat of
 * each key and against kvro_list's names, recursively. STAT_FIRST: each
 * key is stat'ed before the listing with stats is made (a cold cache for
 * the other order). */
static void check_dir(kvro *kv, const char *dir, bool stat_first, walk_count *c)
{
    kvro_error err;
    entries names = {0}, li = {0}, lf = {0};
    assert_status(kvro_list_info(kv, dir, KVRO_NOFOLLOW, collect_info, &names, &err), KVRO_OK,
                  &err);
    if (stat_first)
        for (size_t i = 0; i < names.n; i++) {
            char *key = *dir ? t_fmt("%s/%s", dir, names.v[i].name) : strdup(names.v[i].name);
            kvro_info st;
            assert_status(kvro_stat(kv, key, &st, &err), KVRO_OK, &err);
            free(key);
        }
    assert_status(kvro_list_info(kv, dir, KVRO_NOFOLLOW, collect_info, &li, &err), KVRO_OK, &err);
    assert_status(kvro_list_info(kv, dir, 0, collect_info, &lf, &err), KVRO_OK, &err);
    assert_int_equal(li.n, names.n);
    assert_int_equal(lf.n, names.n);
    for (size_t i = 0; i < li.n; i++) {
        const entry *e = &li.v[i];
        char *key = *dir ? t_fmt("%s/%s", dir, e->name) : strdup(e->name);
        assert_string_equal(e->name, lf.v[i].name);
        if (i)
            assert_true(strcmp(li.v[i - 1].name, e->name) < 0); /* sorted, once each */
        kvro_info st, lst;
        assert_status(kvro_stat(kv, key, &st, &err), KVRO_OK, &err);
        assert_status(kvro_lstat(kv, key, &lst, &err), KVRO_OK, &err);
        assert_status(e->s, KVRO_OK, NULL);
        assert_status(lf.v[i].s, KVRO_OK, NULL);
        same_info(key, "list_info", &e->info, &st);
        same_info(key, "list_info (following)", &lf.v[i].info, &st);
        same_info(key, "lstat", &lst, &st);
        c->entries++;
        c->read_only += st.mode == 0444;
        if (st.kind == KVRO_KIND_DIR)
            check_dir(kv, key, stat_first, c);
        free(key);
    }
    entries_free(&names);
    entries_free(&li);
    entries_free(&lf);
}

static int each_against_stat(void *arg, const char *key, kvro_status s, const kvro_info *info)
{
    kvro *kv = arg;
    kvro_info st;
    kvro_error err;
    assert_status(s, KVRO_OK, NULL);
    assert_status(kvro_stat(kv, key, &st, &err), KVRO_OK, &err);
    same_info(key, "kvro_each", info, &st);
    return 0;
}

static void check_image(const char *name, const char *opts, int kib)
{
    char *img = make_image(name, opts, kib);
    for (int stat_first = 0; stat_first < 2; stat_first++) {
        kvro *kv = NULL;
        kvro_error err;
        assert_status(kvro_open(img, &kv, &err), KVRO_OK, &err);
        assert_string_equal(kvro_backend_of(kv), "fat");
        walk_count c = {0};
        check_dir(kv, "", stat_first, &c);
        assert_int_equal(c.entries, NTREE);
        assert_int_equal(c.read_only, 1);
        assert_status(kvro_each(kv, each_against_stat, kv, &err), KVRO_OK, &err);
        kvro_close(kv);
    }
    /* The same through kvro_fs on a read-only handle. */
    kvro_fs *fs = NULL;
    kvro_error err;
    assert_status(kvro_fs_open(img, KVRO_FS_RDONLY, NULL, &fs, &err), KVRO_OK, &err);
    entries l = {0};
    assert_status(kvro_fs_list_info(fs, "a/b", 0, collect_info, &l, &err), KVRO_OK, &err);
    assert_int_equal(l.n, 2);
    for (size_t i = 0; i < l.n; i++) {
        char *key = t_fmt("a/b/%s", l.v[i].name);
        kvro_info st;
        assert_status(kvro_fs_stat(fs, key, &st, &err), KVRO_OK, &err);
        same_info(key, "kvro_fs_list_info", &l.v[i].info, &st);
        free(key);
    }
    entries_free(&l);
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
    free(img);
}

static void test_list_info_equals_stat(void **state)
{
    (void)state;
    check_image("f12.img", "-F 12", 4096);
    check_image("f16.img", "-F 16", 20000);
    check_image("f32.img", "-F 32", 40000);
}

/* ------------------------------------------------- reads, counted */

enum {
    DIRS = 14,       /* directories of ... */
    PER_DIR = 20000, /* ... this many files: more than the cache's 16 MiB in all */
    BIG = 4 << 20,   /* big.bin and a/b/c/deep.bin */
    PIECE = 4096,    /* a random read */
};

/* A file's size from its place: directory D, file I. Most are empty
 * (no cluster: the image stays small), the others of many sizes. */
static int64_t size_of(int d, int i)
{
    return i % 16 == d % 16 ? 1 + (i * 7 + d) % 500 : 0;
}

static kvro_status fill(void *arg, size_t index, int64_t off, void *buf, size_t n, kvro_error *err)
{
    (void)arg, (void)err;
    for (size_t k = 0; k < n; k++)
        ((unsigned char *)buf)[k] = t_pattern(index, (uint64_t)off + k);
    return KVRO_OK;
}

static unsigned char *img_data;
static size_t img_len, big_index, deep_index;
static uint32_t cluster_size;

/* The image: d00 .. d13, each with f00000.txt .. f19999.txt (8.3 names:
 * one 32-byte entry each), big.bin in the root and a/b/c/deep.bin. Made
 * once, in memory, by the builder mkkv fat uses. */
static void make_big_image(void)
{
    kvro_fat_params p = {.mtime = 1615000000, .cluster_size = 512};
    kvro_fat_builder *b = NULL;
    kvro_error err;
    assert_status(kvro_fat_builder_new(&p, &b, &err), KVRO_OK, &err);
    size_t ix, a, ab, abc;
    char name[32];
    for (int d = 0; d < DIRS; d++) {
        snprintf(name, sizeof name, "d%02d", d);
        size_t dir;
        assert_status(kvro_fat_builder_add(b, KVRO_FAT_ROOT, name, KVRO_KIND_DIR, 0, &dir, &err),
                      KVRO_OK, &err);
        for (int i = 0; i < PER_DIR; i++) {
            snprintf(name, sizeof name, "f%05d.txt", i);
            assert_status(
                kvro_fat_builder_add(b, dir, name, KVRO_KIND_FILE, size_of(d, i), &ix, &err),
                KVRO_OK, &err);
        }
    }
    assert_status(
        kvro_fat_builder_add(b, KVRO_FAT_ROOT, "big.bin", KVRO_KIND_FILE, BIG, &big_index, &err),
        KVRO_OK, &err);
    assert_status(kvro_fat_builder_add(b, KVRO_FAT_ROOT, "a", KVRO_KIND_DIR, 0, &a, &err), KVRO_OK,
                  &err);
    assert_status(kvro_fat_builder_add(b, a, "b", KVRO_KIND_DIR, 0, &ab, &err), KVRO_OK, &err);
    assert_status(kvro_fat_builder_add(b, ab, "c", KVRO_KIND_DIR, 0, &abc, &err), KVRO_OK, &err);
    assert_status(
        kvro_fat_builder_add(b, abc, "Deep Value.bin", KVRO_KIND_FILE, BIG, &deep_index, &err),
        KVRO_OK, &err);
    int64_t size = 0;
    assert_status(kvro_fat_builder_layout(b, &size, &err), KVRO_OK, &err);
    const char *desc = kvro_fat_builder_describe(b);
    const char *at = strstr(desc, "clusters of ");
    assert_non_null(at);
    cluster_size = (uint32_t)strtoul(at + strlen("clusters of "), NULL, 10);
    assert_true(cluster_size >= 512);
    img_len = (size_t)size;
    img_data = calloc(1, img_len);
    assert_non_null(img_data);
    kvro_io *out = NULL;
    assert_status(kvro_io_from_memory_rw(img_data, img_len, &out, &err), KVRO_OK, &err);
    assert_status(kvro_fat_builder_write(b, out, fill, NULL, &err), KVRO_OK, &err);
    kvro_io_close(out);
    print_message("%s, %zu bytes\n", desc, img_len);
    kvro_fat_builder_free(b);
}

static kvro *open_counted(t_fault *f)
{
    t_fault_init(f);
    kvro_io *io = t_fault_memory(f, img_data, img_len, "big.img");
    kvro *kv = NULL;
    kvro_error err;
    assert_status(kvro_open_io(io, NULL, &kv, &err), KVRO_OK, &err);
    kvro_io_close(io);
    assert_string_equal(kvro_backend_of(kv), "fat");
    return kv;
}

/* What reading one directory of PER_DIR entries whole may cost: its
 * clusters (and "." and "..") read about once, in reads of one or more
 * clusters, plus a few reads for the directories on the way. */
static long long dir_clusters(void)
{
    return ((long long)(PER_DIR + 2) * 32 + cluster_size - 1) / cluster_size;
}

typedef struct sizes {
    int d;
    int n, wrong;
} sizes;

static int check_sizes(void *arg, const char *name, kvro_status s, const kvro_info *info)
{
    sizes *z = arg;
    int i = -1;
    if (s != KVRO_OK || !info || sscanf(name, "f%05d.txt", &i) != 1 || i < 0 || i >= PER_DIR ||
        info->kind != KVRO_KIND_FILE || info->size != size_of(z->d, i))
        z->wrong++;
    z->n++;
    return 0;
}

static void read_piece(kvro *kv, const char *key, size_t index, int64_t off)
{
    unsigned char buf[PIECE];
    int64_t got = -1;
    kvro_error err;
    assert_status(kvro_read(kv, key, off, PIECE, buf, &got, &err), KVRO_OK, &err);
    assert_int_equal(got, PIECE);
    for (int k = 0; k < PIECE; k++)
        if (buf[k] != t_pattern(index, (uint64_t)off + (uint64_t)k))
            fail_msg("'%s' @%lld: wrong bytes", key, (long long)off + k);
}

/* kvro_each's entries: each file's size right, every status OK. */
static int check_each(void *arg, const char *key, kvro_status s, const kvro_info *info)
{
    int *n = arg;
    int d = -1, i = -1;
    assert_status(s, KVRO_OK, NULL);
    assert_non_null(info);
    if (sscanf(key, "d%02d/f%05d.txt", &d, &i) == 2 && info->size != size_of(d, i))
        fail_msg("'%s': kvro_each says %lld bytes, not %lld", key, (long long)info->size,
                 (long long)size_of(d, i));
    (*n)++;
    return 0;
}

static void test_big_directory(void **state)
{
    (void)state;
    t_fault f;
    kvro *kv = open_counted(&f);
    kvro_error err;

    /* A listing with stats: each directory cluster read about once (the
     * old stat-per-entry pass read the directory 20,000 times). */
    t_fault_reset(&f);
    sizes z = {.d = 3};
    double t0 = now_s();
    assert_status(kvro_list_info(kv, "d03", 0, check_sizes, &z, &err), KVRO_OK, &err);
    double list_s = now_s() - t0;
    assert_int_equal(z.n, PER_DIR);
    assert_int_equal(z.wrong, 0);
    long long reads = atomic_load(&f.reads), bytes = atomic_load(&f.read_bytes);
    print_message("kvro_list_info of %d entries: %.3f s, %lld reads, %lld bytes (%lld clusters "
                  "of %u bytes)\n",
                  PER_DIR, list_s, reads, bytes, dir_clusters(), cluster_size);
    assert_true(reads <= dir_clusters() + 8);
    assert_true(bytes <= (dir_clusters() + 8) * cluster_size + 65536);

    /* Then every stat, every miss, and the plain listing read nothing. */
    t_fault_reset(&f);
    char key[64];
    for (int i = 0; i < PER_DIR; i++) {
        snprintf(key, sizeof key, "d03/f%05d.txt", i);
        kvro_info st;
        assert_status(kvro_stat(kv, key, &st, &err), KVRO_OK, &err);
        assert_int_equal(st.size, size_of(3, i));
        snprintf(key, sizeof key, "D03/F%05d.TXT", i); /* FAT is case-insensitive */
        assert_status(kvro_stat(kv, key, &st, &err), KVRO_OK, &err);
        assert_int_equal(st.size, size_of(3, i));
    }
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "d03/nope%d", i);
        kvro_info st;
        assert_status(kvro_stat(kv, key, &st, &err), KVRO_E_NOT_FOUND, &err);
    }
    sizes again = {.d = 3};
    assert_status(kvro_list_info(kv, "d03", KVRO_NOFOLLOW, check_sizes, &again, &err), KVRO_OK,
                  &err);
    assert_int_equal(again.wrong, 0);
    assert_int_equal(atomic_load(&f.reads), 0);

    /* A value read again and again: after the first read (the root and
     * the chain), one read of data each, no directory read, in the root
     * and three directories down. */
    const struct {
        const char *key;
        size_t index;
    } VALUES[] = {{"big.bin", big_index}, {"a/b/c/Deep Value.bin", deep_index}};
    for (size_t v = 0; v < 2; v++) {
        read_piece(kv, VALUES[v].key, VALUES[v].index, 0);
        t_fault_reset(&f);
        uint64_t x = 88172645463325252u;
        for (int i = 0; i < 1000; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            read_piece(kv, VALUES[v].key, VALUES[v].index, (int64_t)(x % (BIG - PIECE)));
        }
        reads = atomic_load(&f.reads);
        bytes = atomic_load(&f.read_bytes);
        if (reads != 1000 || bytes != 1000LL * PIECE)
            fail_msg("'%s': 1,000 reads of %d bytes made %lld reads of %lld bytes", VALUES[v].key,
                     PIECE, reads, bytes);
    }
    kvro_close(kv);

    /* kvro_each on a fresh handle: the whole tree in one listing with stats
     * a directory, each read about once. */
    kv = open_counted(&f);
    t_fault_reset(&f);
    int n = 0;
    t0 = now_s();
    assert_status(kvro_each(kv, check_each, &n, &err), KVRO_OK, &err);
    print_message("kvro_each of %d entries: %.3f s, %lld reads\n", n, now_s() - t0,
                  (long long)atomic_load(&f.reads));
    assert_int_equal(n, DIRS * (PER_DIR + 1) + 5);
    assert_true(atomic_load(&f.reads) <= DIRS * (dir_clusters() + 4) + 32);
    kvro_close(kv);
}

/* Every directory listed, then every key of each stat'ed: more listings
 * than the cache's bound holds (DIRS of about 1.4 MiB each against 16
 * MiB), so some are dropped and read again, and every answer stays right.
 * Each directory is read at most twice more. */
static void test_more_than_the_cache(void **state)
{
    (void)state;
    t_fault f;
    kvro *kv = open_counted(&f);
    kvro_error err;
    char dir[16], key[64];
    for (int round = 0; round < 2; round++) {
        for (int d = 0; d < DIRS; d++) {
            snprintf(dir, sizeof dir, "d%02d", d);
            sizes z = {.d = d};
            assert_status(kvro_list_info(kv, dir, 0, check_sizes, &z, &err), KVRO_OK, &err);
            assert_int_equal(z.n, PER_DIR);
            assert_int_equal(z.wrong, 0);
        }
        for (int d = DIRS - 1; d >= 0; d--)
            for (int i = d; i < PER_DIR; i += 97) {
                snprintf(key, sizeof key, "d%02d/f%05d.txt", d, i);
                kvro_info st;
                assert_status(kvro_stat(kv, key, &st, &err), KVRO_OK, &err);
                assert_int_equal(st.size, size_of(d, i));
            }
    }
    long long reads = atomic_load(&f.reads);
    print_message("%d directories listed and searched twice: %lld reads\n", DIRS, reads);
    assert_true(reads <= 4LL * DIRS * (dir_clusters() + 4) + 64);
    kvro_close(kv);
}

/* Threads on one handle: listings, stats and reads at once, through a
 * cache that fills and evicts under them (TSan checks the locking). */
typedef struct reader {
    kvro *kv;
    int seed;
    int wrong;
} reader;

static void *reader_main(void *arg)
{
    reader *r = arg;
    kvro_error err;
    char key[64];
    unsigned char buf[PIECE];
    for (int k = 0; k < DIRS; k++) {
        int d = (k * 5 + r->seed * 3) % DIRS;
        snprintf(key, sizeof key, "d%02d", d);
        sizes z = {.d = d};
        if (kvro_list_info(r->kv, key, 0, check_sizes, &z, &err) != KVRO_OK || z.n != PER_DIR ||
            z.wrong)
            r->wrong++;
        for (int i = r->seed; i < PER_DIR; i += 499) {
            snprintf(key, sizeof key, "d%02d/f%05d.txt", d, i);
            kvro_info st;
            if (kvro_stat(r->kv, key, &st, &err) != KVRO_OK || st.size != size_of(d, i))
                r->wrong++;
        }
        int64_t off = (int64_t)(k * 65537 + r->seed * 4099) % (BIG - PIECE), got = 0;
        if (kvro_read(r->kv, "a/b/c/Deep Value.bin", off, PIECE, buf, &got, &err) != KVRO_OK ||
            got != PIECE || buf[0] != t_pattern(deep_index, (uint64_t)off) ||
            buf[PIECE - 1] != t_pattern(deep_index, (uint64_t)off + PIECE - 1))
            r->wrong++;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    enum { THREADS = 4 };
    t_fault f;
    kvro *kv = open_counted(&f);
    pthread_t t[THREADS];
    reader r[THREADS];
    for (int i = 0; i < THREADS; i++) {
        r[i] = (reader){kv, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, reader_main, &r[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(r[i].wrong, 0);
    }
    kvro_close(kv);
}

/* ------------------------------------------ the cache and the write side */

/* The image every write sequence starts from (mkfs.fat + mcopy). */
static unsigned char *rw_image(int type, int kib, size_t *len)
{
    char *img = t_fmt("%s/rw%d.img", work, type);
    t_sh_ok("rm -f '%s' && mkfs.fat -F %d -C '%s' %d >/dev/null && cd '%s' && "
            "MTOOLS_SKIP_CHECK=1 mcopy -s -i '%s' * ::",
            img, type, img, kib, tree, img);
    unsigned char *data = (unsigned char *)t_slurp(img, len);
    unlink(img);
    free(img);
    return data;
}

/* KEY's size through FS and through KV (a KV_RO view of FS): WANT, or
 * -1 for none. */
static void want_size(kvro_fs *fs, kvro *kv, const char *key, int64_t want)
{
    kvro_info st;
    kvro_error err;
    if (want < 0) {
        assert_status(kvro_fs_stat(fs, key, &st, &err), KVRO_E_NOT_FOUND, &err);
        assert_status(kvro_stat(kv, key, &st, &err), KVRO_E_NOT_FOUND, &err);
        return;
    }
    assert_status(kvro_fs_stat(fs, key, &st, &err), KVRO_OK, &err);
    if (st.kind != KVRO_KIND_FILE || st.size != want)
        fail_msg("'%s': kvro_fs_stat says %lld bytes (kind %d), not %lld", key, (long long)st.size,
                 st.kind, (long long)want);
    assert_status(kvro_stat(kv, key, &st, &err), KVRO_OK, &err);
    if (st.size != want)
        fail_msg("'%s': kvro_stat says %lld bytes, not %lld", key, (long long)st.size,
                 (long long)want);
}

/* Whether listing DIR with stats gives NAME, and its info. */
static bool listed(kvro_fs *fs, const char *dir, const char *name, kvro_info *info)
{
    entries l = {0};
    kvro_error err;
    assert_status(kvro_fs_list_info(fs, dir, 0, collect_info, &l, &err), KVRO_OK, &err);
    bool found = false;
    for (size_t i = 0; i < l.n; i++)
        if (strcmp(l.v[i].name, name) == 0) {
            found = true;
            if (info)
                *info = l.v[i].info;
        }
    entries_free(&l);
    return found;
}

static void put(kvro_fs *fs, const char *key, int64_t size, uint64_t seed)
{
    kvro_error err;
    unsigned char *b = malloc((size_t)size + 1);
    for (int64_t i = 0; i < size; i++)
        b[i] = t_pattern(seed, (uint64_t)i);
    assert_status(kvro_fs_create(fs, key, &err), KVRO_OK, &err);
    if (size)
        assert_status(kvro_fs_write(fs, key, 0, b, size, &err), KVRO_OK, &err);
    free(b);
}

static void want_bytes(kvro *kv, const char *key, int64_t size, uint64_t seed)
{
    unsigned char *b = malloc((size_t)size + 1);
    int64_t got = -1;
    kvro_error err;
    assert_status(kvro_read(kv, key, 0, size + 1, b, &got, &err), KVRO_OK, &err);
    assert_int_equal(got, size);
    for (int64_t i = 0; i < size; i++)
        if (b[i] != t_pattern(seed, (uint64_t)i))
            fail_msg("'%s' @%lld: not the bytes written", key, (long long)i);
    free(b);
}

static void write_sequence(int type, int kib)
{
    size_t len;
    unsigned char *data = rw_image(type, kib, &len);
    kvro_io *io = NULL;
    kvro_error err;
    assert_status(kvro_io_from_memory_rw(data, len, &io, &err), KVRO_OK, &err);
    kvro_fs *fs = NULL;
    assert_status(kvro_fs_open_io(io, KVRO_FS_RDWR, NULL, &fs, &err), KVRO_OK, &err);
    kvro_io_close(io);
    kvro *kv = NULL;
    assert_status(kvro_of_fs(fs, 0, &kv, &err), KVRO_OK, &err);
    kvro_info st;

    /* Destroyed and made again, another size: stat, list_info and read
     * see the new one (the old entry, cached, would say 6 bytes). */
    want_size(fs, kv, "readme.txt", 6);
    assert_true(listed(fs, "", "readme.txt", &st));
    assert_status(kvro_fs_destroy(fs, "readme.txt", &err), KVRO_OK, &err);
    want_size(fs, kv, "readme.txt", -1);
    assert_false(listed(fs, "", "readme.txt", NULL));
    put(fs, "readme.txt", 5000, 1);
    want_size(fs, kv, "readme.txt", 5000);
    want_size(fs, kv, "README.TXT", 5000);
    assert_true(listed(fs, "", "readme.txt", &st));
    assert_int_equal(st.size, 5000);
    want_bytes(kv, "readme.txt", 5000, 1);

    /* Grown in place (the entry's size changes, no name does). */
    unsigned char more[100];
    memset(more, 'x', sizeof more);
    assert_status(kvro_fs_write(fs, "readme.txt", 5000, more, sizeof more, &err), KVRO_OK, &err);
    want_size(fs, kv, "readme.txt", 5100);
    assert_true(listed(fs, "", "readme.txt", &st));
    assert_int_equal(st.size, 5100);

    /* A rename as a program without rename does it: the new content under
     * a temporary name, the old removed, the new made under its name, the
     * temporary removed; every step seen at once. */
    want_size(fs, kv, "a/b/Sibling File", 7);
    put(fs, "a/b/Sibling File.tmp", 12345, 2);
    want_size(fs, kv, "a/b/Sibling File.tmp", 12345);
    assert_status(kvro_fs_destroy(fs, "a/b/Sibling File", &err), KVRO_OK, &err);
    want_size(fs, kv, "a/b/Sibling File", -1);
    put(fs, "a/b/Sibling File", 12345, 2);
    assert_status(kvro_fs_destroy(fs, "a/b/Sibling File.tmp", &err), KVRO_OK, &err);
    want_size(fs, kv, "a/b/Sibling File", 12345);
    want_size(fs, kv, "a/b/Sibling File.tmp", -1);
    want_bytes(kv, "a/b/Sibling File", 12345, 2);
    assert_false(listed(fs, "a/b", "Sibling File.tmp", NULL));

    /* mkdir (parents too), then list: the new directories are there. */
    assert_false(listed(fs, "", "made", NULL));
    assert_status(kvro_fs_mkdir(fs, "made/inner/deepest", &err), KVRO_OK, &err);
    assert_true(listed(fs, "", "made", &st));
    assert_int_equal(st.kind, KVRO_KIND_DIR);
    assert_true(listed(fs, "made", "inner", &st));
    assert_true(listed(fs, "made/inner", "deepest", &st));
    assert_status(kvro_stat(kv, "made/inner/deepest", &st, &err), KVRO_OK, &err);
    assert_int_equal(st.kind, KVRO_KIND_DIR);
    put(fs, "made/inner/deepest/f.txt", 9, 3);
    assert_true(listed(fs, "made/inner/deepest", "f.txt", &st));
    assert_int_equal(st.size, 9);

    /* A directory removed and a file made under its name: the kind too. */
    assert_status(kvro_fs_destroy(fs, "made/inner/deepest/f.txt", &err), KVRO_OK, &err);
    assert_status(kvro_fs_destroy(fs, "made/inner/deepest", &err), KVRO_OK, &err);
    assert_status(kvro_stat(kv, "made/inner/deepest", &st, &err), KVRO_E_NOT_FOUND, &err);
    put(fs, "made/inner/deepest", 33, 4);
    want_size(fs, kv, "made/inner/deepest", 33);
    assert_status(kvro_stat(kv, "made/inner/deepest/f.txt", &st, &err), KVRO_E_NOT_DIR, &err);

    /* A key made by create's parents (create makes "new" and "new/sub"). */
    assert_status(kvro_stat(kv, "new/sub", &st, &err), KVRO_E_NOT_FOUND, &err);
    put(fs, "new/sub/leaf.bin", 70000, 5);
    want_size(fs, kv, "new/sub/leaf.bin", 70000);
    want_bytes(kv, "new/sub/leaf.bin", 70000, 5);

    kvro_close(kv);
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);

    /* And mtools reads what the handle said. */
    char *img = t_fmt("%s/after%d.img", work, type);
    t_write(img, data, len);
    t_sh_ok("MTOOLS_SKIP_CHECK=1 mdir -i '%s' ::/new/sub | grep -q 70000 && "
            "MTOOLS_SKIP_CHECK=1 mdir -i '%s' ::/made/inner | grep -i -q deepest",
            img, img);
    unlink(img);
    free(img);
    free(data);
}

static void test_write_invalidates(void **state)
{
    (void)state;
    write_sequence(12, 2048);
    write_sequence(16, 16384);
    write_sequence(32, 40960);
}

static int setup(void **state)
{
    (void)state;
    work = t_tempdir("fat-perf");
    tree = t_join(work, "tree");
    t_make_tree(tree, TREE, NTREE, 0);
    t_sh_ok("cd '%s' && find . -exec touch -h -d @1615000000 {} +", tree);
    make_big_image();
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    if (work)
        t_rmrf(work);
    free(work);
    free(tree);
    free(img_data);
    return 0;
}

int main(void)
{
    if (!t_have("mkfs.fat") || !t_have("mcopy") || !t_have("mattrib") || !t_have("mdir")) {
        fprintf(stderr, "test_fat_perf: mkfs.fat and mtools are needed (dosfstools, mtools)\n");
        return getenv("CI") ? 1 : 0;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_info_equals_stat), cmocka_unit_test(test_big_directory),
        cmocka_unit_test(test_more_than_the_cache),   cmocka_unit_test(test_threads),
        cmocka_unit_test(test_write_invalidates),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
