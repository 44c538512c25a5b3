/*
 * test_targz.c — the tar backend on gzip-compressed archives: every byte
 * and many random ranges read from the .tar.gz equal the plain tar's (one
 * gzip member, several concatenated), the saved index (a second open
 * inflates nothing; stale, truncated, edited or forged index files are
 * rebuilt; an unwritable cache costs nothing but speed), malformed gzip
 * data, progress reports and reads from many threads. A loaded index
 * reads only its metadata at open; a damaged window in it is found when a
 * read needs it, and the read still returns the right bytes.
 */
#include "support.h"

#include "kvro/kvro.h"

#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cmocka.h>

static char *dir;       /* everything this test makes */
static char *plain_tar; /* GNU tar of the tree */
static char *gz;        /* gzip -k of it */
static char *multi;     /* the same tar as four concatenated gzip members */
static int64_t plain_size;

/* ------------------------------------------------------------- helpers */

static kvro_status open_with(const char *path, const kvro_options *o, kvro **kv, kvro_error *e)
{
    *kv = NULL;
    kvro_status s = kvro_open_opts(path, o, kv, e);
    if (s != KVRO_OK && e)
        kvro_error_print(stderr, "open", e);
    return s;
}

static kvro *open_ok(const char *path, const kvro_options *o)
{
    kvro *kv;
    kvro_error e;
    assert_int_equal(open_with(path, o, &kv, &e), KVRO_OK);
    assert_string_equal(kvro_backend_of(kv), "tar");
    return kv;
}

static kvro_stats stats_of(kvro *kv)
{
    kvro_stats st;
    assert_int_equal(kvro_get_stats(kv, &st, NULL), KVRO_OK);
    return st;
}

static void open_fails(const char *path, kvro_status want, const char *needle)
{
    kvro_options o = {.backend = "tar", .no_index_cache = true};
    kvro *kv = NULL;
    kvro_error e;
    kvro_status s = kvro_open_opts(path, &o, &kv, &e);
    if (s != want || !strstr(e.detail, needle))
        fprintf(stderr, "open %s: %d '%s', want %d with '%s'\n", path, s, e.detail, want, needle);
    assert_int_equal(s, want);
    assert_non_null(strstr(e.detail, needle));
}

static char *sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *sh(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *cmd = NULL;
    assert_true(vasprintf(&cmd, fmt, ap) >= 0);
    va_end(ap);
    char *out = NULL, *err = NULL;
    int rc = t_run(cmd, &out, &err);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", cmd, err);
    assert_int_equal(rc, 0);
    free(cmd);
    free(err);
    return out;
}

/* Every file key of KV under KEY, collected recursively. */
typedef struct keys {
    char *v[1024];
    size_t n;
    const char *prefix;
    char *dirs[64];
    size_t ndirs;
} keys;

static int collect(void *arg, const char *name, kvro_kind kind)
{
    keys *k = arg;
    char *full = k->prefix[0] ? t_fmt("%s/%s", k->prefix, name) : strdup(name);
    if (kind == KVRO_KIND_DIR && k->ndirs < 64)
        k->dirs[k->ndirs++] = full;
    else if (kind == KVRO_KIND_FILE && k->n < 1024)
        k->v[k->n++] = full;
    else
        free(full);
    return 0;
}

static void all_files(kvro *kv, const char *key, keys *k)
{
    size_t first = k->ndirs;
    k->prefix = key;
    assert_int_equal(kvro_list(kv, key, collect, k, NULL), KVRO_OK);
    size_t last = k->ndirs;
    for (size_t i = first; i < last; i++)
        all_files(kv, k->dirs[i], k);
}

static void keys_free(keys *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->v[i]);
    for (size_t i = 0; i < k->ndirs; i++)
        free(k->dirs[i]);
}

static unsigned char *read_range(kvro *kv, const char *key, int64_t off, int64_t len, int64_t *got)
{
    unsigned char *buf = malloc(len ? (size_t)len : 1);
    kvro_error e;
    kvro_status s = kvro_read(kv, key, off, len, buf, got, &e);
    if (s != KVRO_OK)
        kvro_error_print(stderr, key, &e);
    assert_int_equal(s, KVRO_OK);
    return buf;
}

/* Every file of A and B, whole and in random ranges, must agree. */
static void compare(kvro *a, kvro *b, int random_reads)
{
    keys k = {.prefix = ""};
    all_files(a, "", &k);
    assert_true(k.n > 100);
    int64_t sizes[1024];
    for (size_t i = 0; i < k.n; i++) {
        int64_t sa, sb, ga, gb;
        assert_int_equal(kvro_size(a, k.v[i], &sa, NULL), KVRO_OK);
        assert_int_equal(kvro_size(b, k.v[i], &sb, NULL), KVRO_OK);
        assert_int_equal(sa, sb);
        sizes[i] = sa;
        unsigned char *da = read_range(a, k.v[i], 0, sa, &ga);
        unsigned char *db = read_range(b, k.v[i], 0, sb, &gb);
        assert_int_equal(ga, sa);
        assert_int_equal(gb, sb);
        assert_memory_equal(da, db, (size_t)sa);
        free(da);
        free(db);
    }
    for (int r = 0; r < random_reads; r++) {
        size_t i = t_pattern(77, (uint64_t)r * 3) % k.n;
        uint64_t x = (uint64_t)t_pattern(78, (uint64_t)r) << 16 | t_pattern(79, (uint64_t)r) << 8 |
                     t_pattern(80, (uint64_t)r);
        int64_t off = sizes[i] ? (int64_t)(x % (uint64_t)sizes[i]) : 0;
        int64_t len = (int64_t)(x % 300000), ga, gb;
        unsigned char *da = read_range(a, k.v[i], off, len, &ga);
        unsigned char *db = read_range(b, k.v[i], off, len, &gb);
        assert_int_equal(ga, gb);
        assert_memory_equal(da, db, (size_t)ga);
        free(da);
        free(db);
    }
    keys_free(&k);
}

static char *cache_dir(const char *tag)
{
    char *d = t_fmt("%s/cache-%s", dir, tag);
    setenv("XDG_CACHE_HOME", d, 1);
    return d;
}

static int count_index_files(const char *xdg)
{
    char *d = t_join(xdg, "kvro");
    DIR *dd = opendir(d);
    int n = 0;
    struct dirent *e;
    while (dd && (e = readdir(dd)))
        n += strstr(e->d_name, ".tgzidx") != NULL;
    if (dd)
        closedir(dd);
    free(d);
    return n;
}

/* --------------------------------------------------------------- setup */

static int setup(void **state)
{
    (void)state;
    dir = t_tempdir("targz");
    char *tree = t_join(dir, "tree");
    char *p = t_join(tree, "big/random.bin");
    t_write_pattern(p, 11, 3 << 20);
    free(p);
    char *text = malloc(2 << 20);
    size_t n = 0;
    for (int i = 0; n + 64 < (2 << 20); i++)
        n += (size_t)snprintf(text + n, 64, "line %d of a compressible text\n", i);
    p = t_join(tree, "big/text.txt");
    t_write(p, text, n);
    free(p);
    free(text);
    for (int i = 0; i < 150; i++) {
        p = t_fmt("%s/small/f%03d.bin", tree, i);
        t_write_pattern(p, (uint64_t)i, (uint64_t)i * 37);
        free(p);
    }
    p = t_join(tree, "empty");
    t_write(p, "", 0);
    free(p);
    plain_tar = t_join(dir, "t.tar");
    gz = t_join(dir, "t.tar.gz");
    multi = t_join(dir, "multi.tgz");
    free(sh("cd '%s' && ln -s big/text.txt sym && ln small/f001.bin hard && "
            "tar --format=gnu -cf '%s' . && gzip -k '%s' && "
            "(head -c 1000000 '%s' | gzip; gzip </dev/null; "
            "tail -c +1000001 '%s' | head -c 2000000 | gzip -1; "
            "tail -c +3000001 '%s' | gzip -9) > '%s'",
            tree, plain_tar, plain_tar, plain_tar, plain_tar, plain_tar, multi));
    struct stat st;
    assert_int_equal(stat(plain_tar, &st), 0);
    plain_size = st.st_size;
    free(tree);
    unsetenv("KVRO_TARGZ_SPACING");
    char *c = cache_dir("default");
    free(c);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    t_rmrf(dir);
    free(dir);
    free(plain_tar);
    free(gz);
    free(multi);
    return 0;
}

/* --------------------------------------------------------------- tests */

static void test_reads_match_plain(void **state)
{
    (void)state;
    kvro_options none = {.no_index_cache = true};
    kvro *a = open_ok(plain_tar, NULL);
    /* Default spacing: the index stays under 2% of the compressed size. */
    kvro *b = open_ok(gz, &none);
    kvro_stats st = stats_of(b);
    struct stat gst;
    assert_int_equal(stat(gz, &gst), 0);
    assert_true(st.compressed && !st.index_loaded && !st.index_saved);
    assert_int_equal(st.inflated_at_open, plain_size);
    assert_true(st.access_points >= 1);
    assert_true(st.index_bytes * 100 <= (int64_t)gst.st_size * 2);
    compare(a, b, 300);
    kvro_close(b);
    /* Dense points (every 64 KiB), so reads start from many of them. */
    setenv("KVRO_TARGZ_SPACING", "65536", 1);
    b = open_ok(gz, &none);
    unsetenv("KVRO_TARGZ_SPACING");
    assert_true(stats_of(b).access_points > 40); /* points fall on deflate block boundaries */
    compare(a, b, 300);
    kvro_close(b);
    kvro_close(a);
}

static void test_concatenated_members(void **state)
{
    (void)state;
    kvro_options none = {.no_index_cache = true};
    kvro *a = open_ok(plain_tar, NULL);
    kvro *b = open_ok(multi, &none);
    assert_int_equal(stats_of(b).inflated_at_open, plain_size);
    compare(a, b, 200);
    kvro_close(b);
    setenv("KVRO_TARGZ_SPACING", "100000", 1);
    b = open_ok(multi, &none);
    unsetenv("KVRO_TARGZ_SPACING");
    assert_true(stats_of(b).access_points > 30);
    compare(a, b, 300);
    kvro_close(b);
    kvro_close(a);
}

static void test_second_open_inflates_nothing(void **state)
{
    (void)state;
    char *xdg = cache_dir("second");
    kvro *a = open_ok(plain_tar, NULL);
    kvro *b = open_ok(gz, NULL);
    kvro_stats st = stats_of(b);
    assert_false(st.index_loaded);
    assert_true(st.index_saved);
    assert_int_equal(st.inflated_at_open, plain_size);
    kvro_close(b);
    assert_int_equal(count_index_files(xdg), 1);
    b = open_ok(gz, NULL);
    st = stats_of(b);
    if (!st.index_loaded)
        fprintf(stderr, "cache: %s\n", st.index_note);
    assert_true(st.index_loaded);
    assert_int_equal(st.inflated_at_open, 0);
    assert_true(st.index_bytes_read > 0);
    compare(a, b, 100);
    assert_int_equal(stats_of(b).damaged_windows, 0);
    kvro_close(b);

    /* no_index_cache: nothing saved. */
    free(xdg);
    xdg = cache_dir("none");
    kvro_options none = {.no_index_cache = true};
    b = open_ok(gz, &none);
    kvro_close(b);
    b = open_ok(gz, &none);
    assert_false(stats_of(b).index_loaded);
    kvro_close(b);
    assert_int_equal(count_index_files(xdg), 0);

    /* Without XDG_CACHE_HOME: ~/.cache/kvro. */
    char *home = t_join(dir, "home"), *old_home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    t_mkdirs(home);
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", home, 1);
    b = open_ok(gz, NULL);
    kvro_close(b);
    char *home_cache = t_join(home, ".cache");
    assert_int_equal(count_index_files(home_cache), 1);
    b = open_ok(gz, NULL);
    assert_true(stats_of(b).index_loaded);
    kvro_close(b);
    if (old_home)
        setenv("HOME", old_home, 1);
    free(old_home);
    free(home_cache);
    free(home);
    free(xdg);
    xdg = cache_dir("default");
    free(xdg);
    kvro_close(a);
}

/* gzip at level 0 (stored blocks): the compressed size depends only on
 * the data's length, so an edited archive keeps its size. */
static void gzip0(const char *tar, const char *out)
{
    free(sh("python3 -c 'import gzip, sys; open(sys.argv[2], \"wb\").write(gzip.compress("
            "open(sys.argv[1], \"rb\").read(), compresslevel=0, mtime=0))' '%s' '%s'",
            tar, out));
}

static void flip_byte(const char *path, int64_t at)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    assert_int_equal(pread(fd, &c, 1, at), 1);
    c ^= 0x55;
    assert_int_equal(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

static kvro_stats open_stats(const char *path, const kvro_options *o, char *first_byte, int64_t at)
{
    kvro *kv = open_ok(path, o);
    kvro_stats st = stats_of(kv);
    int64_t got;
    assert_int_equal(kvro_read(kv, "f", at, 1, first_byte, &got, NULL), KVRO_OK);
    assert_int_equal(got, 1);
    kvro_close(kv);
    return st;
}

static void set_mtime(const char *path, struct timespec t)
{
    struct timespec ts[2] = {t, t};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void test_stale_index_rebuilt(void **state)
{
    (void)state;
    if (!t_have("python3")) {
        fprintf(stderr, "python3 missing: skipped\n");
        return;
    }
    char *sub = t_join(dir, "stale"), *f = t_join(dir, "stale/f");
    char *tar = t_join(dir, "stale.tar"), *tgz = t_join(dir, "stale.tgz");
    char *idx = t_join(dir, "stale.idx");
    t_write_pattern(f, 1, 300000);
    free(sh("tar -C '%s' -cf '%s' f", sub, tar)); /* "f"'s data starts at 512 */
    gzip0(tar, tgz);
    kvro_options o = {.index_path = idx};
    char byte, orig = (char)t_pattern(1, 150000);
    kvro_stats st = open_stats(tgz, &o, &byte, 150000);
    assert_true(!st.index_loaded && st.index_saved);
    st = open_stats(tgz, &o, &byte, 150000);
    assert_true(st.index_loaded);
    assert_int_equal(byte, orig);

    /* Same size, other bytes (far from both ends), a newer mtime. */
    struct stat before, after;
    assert_int_equal(stat(tgz, &before), 0);
    flip_byte(tar, 512 + 150000);
    gzip0(tar, tgz);
    struct timespec later = before.st_mtim;
    later.tv_sec += 10;
    set_mtime(tgz, later);
    assert_int_equal(stat(tgz, &after), 0);
    assert_int_equal(after.st_size, before.st_size);
    st = open_stats(tgz, &o, &byte, 150000);
    assert_false(st.index_loaded);
    assert_non_null(strstr(st.index_note, "stale"));
    assert_int_equal(byte, orig ^ 0x55);

    /* Same size, same mtime to the nanosecond, a byte in the first 64 KiB:
     * the edge checksum notices. */
    st = open_stats(tgz, &o, &byte, 100);
    assert_true(st.index_loaded);
    assert_int_equal(stat(tgz, &before), 0);
    flip_byte(tar, 512 + 100);
    gzip0(tar, tgz);
    set_mtime(tgz, before.st_mtim);
    st = open_stats(tgz, &o, &byte, 100);
    assert_false(st.index_loaded);
    assert_non_null(strstr(st.index_note, "contents changed"));
    assert_int_equal(byte, (char)(t_pattern(1, 100) ^ 0x55));

    /* Another size. */
    t_write_pattern(f, 2, 1000);
    free(sh("tar -C '%s' -cf '%s' f", sub, tar));
    gzip0(tar, tgz);
    st = open_stats(tgz, &o, &byte, 999);
    assert_false(st.index_loaded);
    assert_non_null(strstr(st.index_note, "stale"));
    assert_int_equal(byte, (char)t_pattern(2, 999));
    st = open_stats(tgz, &o, &byte, 999);
    assert_true(st.index_loaded);
    free(sub);
    free(f);
    free(tar);
    free(tgz);
    free(idx);
}

static uint32_t le32(const unsigned char *p)
{
    return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const unsigned char *p)
{
    return le32(p) | (uint64_t)le32(p + 4) << 32;
}

/* The index file's layout (tar_cache.c): the header, points, nodes,
 * sparse maps and their regions, names, the CRC-32 of all that ("meta"),
 * then the windows. */
enum { H_POINTS = 48, H_NODES = 52, H_ARENA = 56, H_WINS = 64, H_SPARSE = 336, H_REGIONS = 340 };
enum { HEADER = 348, POINT = 37, P_WIN = 16, P_ZLEN = 24, P_LEN = 28, NODE = 44, SPARSE = 24 };

/* Where the metadata ends (its CRC included) and the windows begin. */
static size_t meta_end(const unsigned char *b)
{
    return HEADER + le32(b + H_POINTS) * POINT + le32(b + H_NODES) * NODE +
           le32(b + H_SPARSE) * SPARSE + le64(b + H_REGIONS) * SPARSE + le64(b + H_ARENA) + 4;
}

/* Rewrites the metadata's CRC (it ends at END) after a forgery. */
static void fix_crc(unsigned char *buf, size_t end)
{
    uint32_t c = (uint32_t)crc32(0, buf, (uInt)(end - 4));
    for (int i = 0; i < 4; i++)
        buf[end - 4 + (size_t)i] = (unsigned char)(c >> (8 * i));
}

/* What damaged() does to the index file B[*N] (see the cases). */
typedef enum damage {
    CUT,         /* to ARG bytes */
    CUT_META,    /* to ARG bytes from the end of the metadata */
    CUT_WINDOWS, /* in the middle of the windows */
    CUT_LAST,    /* one byte short */
    APPEND,      /* one byte long (t_slurp leaves a NUL after the data) */
    EDIT,        /* byte ARG (from the end of the metadata if negative) */
    FORGE,       /* the u64 at ARG becomes VAL, and the metadata's CRC is fixed */
    FORGE32,     /* the same with a u32 */
} damage;

static void edit(unsigned char *b, size_t *n, damage what, int64_t arg, uint64_t val)
{
    size_t end = meta_end(b);
    int64_t at = arg + (what == CUT_META || arg < 0 ? (int64_t)end : 0);
    assert_true(at >= 0 && at < (int64_t)*n);
    switch (what) {
    case CUT:
    case CUT_META: *n = (size_t)at; break;
    case CUT_WINDOWS: *n = (end + *n) / 2; break;
    case CUT_LAST: (*n)--; break;
    case APPEND: (*n)++; break;
    case EDIT: b[at] ^= 0x21; break;
    case FORGE:
    case FORGE32:
        for (int i = 0; i < (what == FORGE ? 8 : 4); i++)
            b[at + i] = (unsigned char)(val >> (8 * i));
        fix_crc(b, end); /* where it was before the forgery */
        break;
    }
}

/* Damages the index file IDX (see edit()), then expects the next open to
 * rebuild (with NOTE in the reason) and the one after to load again. */
static void damaged(const char *idx, damage what, int64_t arg, uint64_t val, const char *note)
{
    kvro_options o = {.index_path = idx};
    kvro *kv = open_ok(gz, &o);
    kvro_close(kv);
    size_t n;
    unsigned char *buf = (unsigned char *)t_slurp(idx, &n);
    edit(buf, &n, what, arg, val);
    t_write(idx, buf, n);
    free(buf);
    kv = open_ok(gz, &o);
    kvro_stats st = stats_of(kv);
    if (st.index_loaded || !strstr(st.index_note, note))
        fprintf(stderr, "after damage: %s (want '%s')\n", st.index_note, note);
    assert_false(st.index_loaded);
    assert_non_null(strstr(st.index_note, note));
    assert_int_equal(st.inflated_at_open, plain_size);
    kvro_close(kv);
    kv = open_ok(gz, &o);
    assert_true(stats_of(kv).index_loaded);
    kvro *a = open_ok(plain_tar, NULL);
    compare(a, kv, 20);
    kvro_close(a);
    kvro_close(kv);
}

/* Damage to the metadata, and a file of the wrong length (cut anywhere or
 * grown), is caught at open and the index rebuilt. (Damage to a window is
 * caught by the read that needs it: test_damaged_window.) */
static void test_damaged_index_rebuilt(void **state)
{
    (void)state;
    char *idx = t_join(dir, "damaged.idx");
    setenv("KVRO_TARGZ_SPACING", "1000000", 1); /* a few points to forge with */
    const char *length = "damaged: bad length", *crc = "damaged: bad checksum";
    /* Too short for a header, then cut in the points, the nodes, the
     * names, around the metadata's CRC and in the windows. */
    static const int64_t cuts[] = {0, 7, 100, HEADER - 1, HEADER + 3};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
        damaged(idx, CUT, cuts[i], 0, "damaged: not an index file");
    static const int64_t meta_cuts[] = {-600, -5, -4, -1, 0, 1};
    for (size_t i = 0; i < sizeof meta_cuts / sizeof meta_cuts[0]; i++)
        damaged(idx, CUT_META, meta_cuts[i], 0, length);
    damaged(idx, CUT, HEADER + 4, 0, length);
    damaged(idx, CUT, HEADER + POINT + 3, 0, length);
    damaged(idx, CUT, HEADER + 1000, 0, length);
    damaged(idx, CUT_WINDOWS, 0, 0, length);
    damaged(idx, CUT_LAST, 0, 0, length);
    damaged(idx, APPEND, 0, 0, length);
    /* A byte of the header, the points, the nodes and names, the CRC. */
    damaged(idx, EDIT, H_SPARSE - 1, 0, crc); /* the first warning's NUL padding */
    damaged(idx, EDIT, HEADER + POINT + 2, 0, crc);
    damaged(idx, EDIT, -800, 0, crc);
    damaged(idx, EDIT, -20, 0, crc);
    damaged(idx, EDIT, -1, 0, crc);
    /* Forged with the CRC fixed: each field is still checked. */
    kvro_options o = {.index_path = idx};
    kvro_close(open_ok(gz, &o));
    size_t n;
    unsigned char *b = (unsigned char *)t_slurp(idx, &n);
    assert_true(le32(b + H_POINTS) >= 2);
    int64_t last_node = (int64_t)meta_end(b) - 4 - (int64_t)le64(b + H_ARENA) - NODE;
    damaged(idx, FORGE32, last_node + 32, 65535, "bad member record"); /* its parent */
    damaged(idx, FORGE, HEADER + POINT, 0, "bad access point 1");      /* output offset 0 again */
    damaged(idx, FORGE, HEADER + POINT + P_WIN, le64(b + H_WINS), "bad access point 1");
    damaged(idx, FORGE32, HEADER + P_LEN, 1, "bad access point 0"); /* history at the start */
    damaged(idx, FORGE, H_WINS, le64(b + H_WINS) + 1, length);
    damaged(idx, FORGE32, H_NODES, UINT32_MAX, length);
    /* The magic forged: the load refuses it, and the file, no longer
     * recognisably an index, is not written over (test_index_safety.c):
     * with saving on the open fails, with it off the index is built anew. */
    kvro_close(open_ok(gz, &o));
    t_write(idx, "XVROTGZI", 8);
    kvro *kv = NULL;
    kvro_error e;
    assert_int_equal(kvro_open_opts(gz, &o, &kv, &e), KVRO_E_EXISTS);
    t_want_detail(&e, "not a kvro index");
    kvro_options read_only = {.index_path = idx, .no_index_cache = true};
    kv = open_ok(gz, &read_only);
    assert_non_null(strstr(stats_of(kv).index_note, "not an index file"));
    kvro_close(kv);
    unlink(idx);
    free(b);
    unsetenv("KVRO_TARGZ_SPACING");
    free(idx);
}

/* Reads the files of KV in 40,000-byte pieces, last file and last piece
 * first, and compares them with the plain tar's (A): a read never finds a
 * cursor below its offset, so each starts from an access point, and with
 * every piece read (PIECES 0) every point is the start of some read (the
 * pieces are shorter than the spacing). Else the last PIECES of each. */
static void compare_backwards(kvro *a, kvro *kv, int pieces)
{
    keys k = {.prefix = ""};
    all_files(a, "", &k);
    assert_true(k.n > 100);
    for (size_t i = k.n; i-- > 0;) {
        int64_t size;
        assert_int_equal(kvro_size(a, k.v[i], &size, NULL), KVRO_OK);
        for (int64_t end = size, done = 0; end > 0 && (!pieces || done < pieces); done++) {
            int64_t off = end > 40000 ? end - 40000 : 0, ga, gb;
            unsigned char *da = read_range(a, k.v[i], off, end - off, &ga);
            unsigned char *db = read_range(kv, k.v[i], off, end - off, &gb);
            assert_int_equal(ga, end - off);
            assert_int_equal(gb, end - off);
            assert_memory_equal(da, db, (size_t)ga);
            free(da);
            free(db);
            end = off;
        }
    }
    keys_free(&k);
}

static void run_readers(kvro *g, kvro *plain);

/* A byte of a window edited: the open uses the index (the metadata is
 * intact), the reads that need that window start from the point before and
 * return the right bytes, the damage is counted and the file unlinked, and
 * the next open rebuilds it. With every window damaged, reads go back to
 * the stream's start and are still right. */
static void test_damaged_window(void **state)
{
    (void)state;
    char *idx = t_join(dir, "window.idx");
    kvro_options o = {.index_path = idx};
    setenv("KVRO_TARGZ_SPACING", "65536", 1);
    kvro *kv = open_ok(gz, &o);
    assert_true(stats_of(kv).index_saved);
    kvro_close(kv);
    unsetenv("KVRO_TARGZ_SPACING"); /* the file records the points */
    size_t n;
    unsigned char *b = (unsigned char *)t_slurp(idx, &n);
    size_t meta = meta_end(b), np = le32(b + H_POINTS);
    assert_true(np > 40);
    /* The window that compressed best: text, which later data refers back
     * to, so a wrong window would give wrong bytes, not only slow ones. */
    const unsigned char *p = NULL;
    for (size_t i = 1; i < np; i++) {
        const unsigned char *q = b + HEADER + i * POINT;
        if (le32(q + P_LEN) == 32768 && (!p || le32(q + P_ZLEN) < le32(p + P_ZLEN)))
            p = q;
    }
    assert_non_null(p);
    b[meta + le64(p + P_WIN) + le32(p + P_ZLEN) / 2] ^= 0x10;
    t_write(idx, b, n);

    kvro *a = open_ok(plain_tar, NULL);
    kv = open_ok(gz, &o);
    kvro_stats st = stats_of(kv);
    assert_true(st.index_loaded);
    assert_int_equal(st.damaged_windows, 0);
    compare_backwards(a, kv, 0);
    compare(a, kv, 100);
    run_readers(kv, a);
    st = stats_of(kv);
    assert_true(st.damaged_windows > 0);
    assert_true(st.index_loaded);
    assert_int_equal(st.inflated_at_open, 0);
    assert_int_equal(access(idx, F_OK), -1); /* unlinked when the damage was seen */
    kvro_close(kv);
    setenv("KVRO_TARGZ_SPACING", "65536", 1);
    kv = open_ok(gz, &o);
    unsetenv("KVRO_TARGZ_SPACING");
    st = stats_of(kv);
    assert_false(st.index_loaded);
    assert_true(st.index_saved);
    assert_int_equal(st.inflated_at_open, plain_size);
    kvro_close(kv);
    kv = open_ok(gz, &o);
    assert_true(stats_of(kv).index_loaded);
    compare_backwards(a, kv, 0);
    assert_int_equal(stats_of(kv).damaged_windows, 0);
    kvro_close(kv);

    /* Every window zeroed: reads go back to point 0, so only the last two
     * pieces of each file (that still starts reads at most points). */
    free(b);
    b = (unsigned char *)t_slurp(idx, &n);
    meta = meta_end(b);
    memset(b + meta, 0, n - meta);
    t_write(idx, b, n);
    kv = open_ok(gz, &o);
    assert_true(stats_of(kv).index_loaded);
    compare_backwards(a, kv, 2);
    compare(a, kv, 20);
    st = stats_of(kv);
    assert_true(st.damaged_windows > 40);
    assert_int_equal(access(idx, F_OK), -1);
    kvro_close(kv);
    kvro_close(a);
    free(b);
    free(idx);
}

/* A loaded index reads its metadata at open, none of its windows: with
 * many points (so the windows are most of the file) the bytes read are
 * exactly the metadata. */
static void test_open_reads_metadata_only(void **state)
{
    (void)state;
    char *idx = t_join(dir, "meta.idx");
    /* A one-byte read cache keeps nothing, so every read below needs a
     * window (with the default, the reads before the cut would leave the
     * data cached and the cut unseen). */
    kvro_options o = {.index_path = idx, .read_cache_bytes = 1};
    setenv("KVRO_TARGZ_SPACING", "65536", 1);
    kvro *kv = open_ok(gz, &o);
    unsetenv("KVRO_TARGZ_SPACING");
    kvro_stats built = stats_of(kv);
    assert_true(built.index_saved);
    assert_int_equal(built.index_bytes_read, 0);
    kvro_close(kv);
    size_t n;
    unsigned char *b = (unsigned char *)t_slurp(idx, &n);
    int64_t meta = (int64_t)meta_end(b), wins = (int64_t)le64(b + H_WINS);
    assert_int_equal(meta + wins, (int64_t)n);
    assert_true(built.access_points > 40);
    assert_int_equal(built.index_bytes, built.access_points * POINT + wins);

    kv = open_ok(gz, &o);
    kvro_stats st = stats_of(kv);
    assert_true(st.index_loaded);
    assert_int_equal(st.access_points, built.access_points);
    assert_int_equal(st.index_bytes, built.index_bytes);
    assert_int_equal(st.index_bytes_read, meta);
    assert_true(st.index_bytes_read * 10 < wins);
    kvro *a = open_ok(plain_tar, NULL);
    compare(a, kv, 50);
    assert_int_equal(stats_of(kv).index_bytes_read, meta); /* windows are read, not counted */
    assert_int_equal(stats_of(kv).damaged_windows, 0);
    /* The file cut under the open handle: windows are read, not mapped, so
     * this is a damaged window (never a SIGBUS), and reads stay right. */
    assert_int_equal(truncate(idx, meta), 0);
    compare_backwards(a, kv, 1);
    assert_true(stats_of(kv).damaged_windows > 0);
    kvro_close(a);
    kvro_close(kv);
    free(b);
    free(idx);
}

static void test_unwritable_cache(void **state)
{
    (void)state;
    /* XDG_CACHE_HOME names a file: nothing can be made under it. */
    char *file = t_join(dir, "not-a-dir");
    t_write(file, "x", 1);
    setenv("XDG_CACHE_HOME", file, 1);
    kvro *kv = open_ok(gz, NULL);
    kvro_stats st = stats_of(kv);
    assert_false(st.index_saved);
    assert_non_null(strstr(st.index_note, "not saved"));
    kvro_close(kv);

    /* A read-only directory (root writes there anyway: then it is saved). */
    char *ro = t_join(dir, "ro");
    t_mkdirs(ro);
    chmod(ro, 0500);
    setenv("XDG_CACHE_HOME", ro, 1);
    kv = open_ok(gz, NULL);
    if (geteuid() != 0)
        assert_false(stats_of(kv).index_saved);
    kvro_close(kv);
    chmod(ro, 0700);

    /* An index_path in a missing directory, and one that is a directory:
     * the caller asked for that file, so the open fails saying why
     * (test_index_safety.c); with saving off the index is built in memory. */
    char *missing = t_join(dir, "no/such/dir/x.idx");
    kvro_options o = {.index_path = missing};
    kvro_error e;
    assert_int_equal(kvro_open_opts(gz, &o, &kv, &e), KVRO_E_NOT_FOUND);
    t_want_detail(&e, "does not exist");
    o.index_path = ro;
    assert_int_equal(kvro_open_opts(gz, &o, &kv, &e), KVRO_E_EXISTS);
    t_want_detail(&e, "a directory");
    o.no_index_cache = true;
    kv = open_ok(gz, &o);
    assert_false(stats_of(kv).index_loaded);
    assert_false(stats_of(kv).index_saved);
    kvro *a = open_ok(plain_tar, NULL);
    compare(a, kv, 10);
    kvro_close(a);
    kvro_close(kv);
    char *c = cache_dir("default");
    free(c);
    free(file);
    free(ro);
    free(missing);
}

static void test_corrupt_gzip(void **state)
{
    (void)state;
    size_t n;
    char *data = t_slurp(gz, &n);
    char *p = t_join(dir, "bad.tar.gz");

    t_write(p, data, n / 2);
    open_fails(p, KVRO_E_CORRUPT, "gzip: the compressed data ends early");
    t_write(p, data, n - 4); /* without the length in the trailer */
    open_fails(p, KVRO_E_CORRUPT, "gzip:");
    memcpy(data + n / 2, "garbage!", 8);
    t_write(p, data, n);
    open_fails(p, KVRO_E_CORRUPT, "gzip:");
    unsigned char junk[4096] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    for (size_t i = 10; i < sizeof junk; i++)
        junk[i] = t_pattern(5, i);
    t_write(p, junk, sizeof junk);
    open_fails(p, KVRO_E_CORRUPT, "gzip:");

    /* Valid gzip of a tar cut inside a member, and of what is not a tar. */
    free(sh("head -c 2000000 '%s' | gzip > '%s'", plain_tar, p));
    open_fails(p, KVRO_E_CORRUPT, "run past the end");
    free(sh("head -c 100000 /dev/zero | tr '\\0' x | gzip > '%s'", p));
    open_fails(p, KVRO_E_CORRUPT, "bad header checksum at offset 0");
    free(data);
    free(p);
}

typedef struct progress_log {
    int calls, bad;
    int64_t last_done, last_total;
} progress_log;

static void on_progress(void *arg, const char *what, int64_t done, int64_t total)
{
    progress_log *l = arg;
    l->bad += strcmp(what, "indexing") != 0 || done < l->last_done || done > total;
    l->calls++;
    l->last_done = done;
    l->last_total = total;
}

static void test_progress_and_bid(void **state)
{
    (void)state;
    progress_log log = {0};
    kvro_options o = {.no_index_cache = true, .progress = on_progress, .progress_arg = &log};
    kvro *kv = open_ok(gz, &o); /* no forced backend: the gzip head bids */
    kvro_close(kv);
    struct stat st;
    assert_int_equal(stat(gz, &st), 0);
    assert_true(log.calls >= 2);
    assert_int_equal(log.bad, 0);
    assert_int_equal(log.last_done, st.st_size);
    assert_int_equal(log.last_total, st.st_size);
}

typedef struct reader_arg {
    kvro *gz, *plain;
    uint64_t seed;
    int bad;
} reader_arg;

static void *reader(void *p)
{
    reader_arg *a = p;
    static const char *keys[] = {"big/random.bin", "big/text.txt", "small/f149.bin"};
    unsigned char *x = malloc(70000), *y = malloc(70000);
    for (int i = 0; i < 150; i++) {
        const char *k = keys[t_pattern(a->seed, (uint64_t)i) % 3];
        int64_t size;
        kvro_size(a->plain, k, &size, NULL);
        uint64_t r = (uint64_t)t_pattern(a->seed + 1, (uint64_t)i) << 16 |
                     (uint64_t)t_pattern(a->seed + 2, (uint64_t)i) << 8 |
                     t_pattern(a->seed + 3, (uint64_t)i);
        int64_t off = (int64_t)(r % (uint64_t)size), len = (int64_t)(r % 70000), gx, gy;
        if (kvro_read(a->gz, k, off, len, x, &gx, NULL) != KVRO_OK ||
            kvro_read(a->plain, k, off, len, y, &gy, NULL) != KVRO_OK || gx != gy ||
            memcmp(x, y, (size_t)gx) != 0)
            a->bad++;
    }
    free(x);
    free(y);
    return NULL;
}

static void run_readers(kvro *g, kvro *plain)
{
    pthread_t th[6];
    reader_arg args[6];
    for (int i = 0; i < 6; i++) {
        args[i] = (reader_arg){g, plain, (uint64_t)i * 7 + 1, 0};
        assert_int_equal(pthread_create(&th[i], NULL, reader, &args[i]), 0);
    }
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].bad, 0);
    }
}

static void test_concurrent_reads(void **state)
{
    (void)state;
    kvro_options none = {.no_index_cache = true};
    setenv("KVRO_TARGZ_SPACING", "262144", 1);
    kvro *g = open_ok(gz, &none);
    unsetenv("KVRO_TARGZ_SPACING");
    kvro *plain = open_ok(plain_tar, NULL);
    run_readers(g, plain);
    kvro_close(g);
    kvro_close(plain);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reads_match_plain),
        cmocka_unit_test(test_concatenated_members),
        cmocka_unit_test(test_second_open_inflates_nothing),
        cmocka_unit_test(test_stale_index_rebuilt),
        cmocka_unit_test(test_damaged_index_rebuilt),
        cmocka_unit_test(test_damaged_window),
        cmocka_unit_test(test_open_reads_metadata_only),
        cmocka_unit_test(test_unwritable_cache),
        cmocka_unit_test(test_corrupt_gzip),
        cmocka_unit_test(test_progress_and_bid),
        cmocka_unit_test(test_concurrent_reads),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
