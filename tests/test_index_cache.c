/*
 * test_index_cache.c — the shared .tar.gz index cache stays under its cap
 * (kvro_options.index_cache_max, $KVRO_CACHE_MAX), evicting the least
 * recently used entries (a load counts as a use) and never the one just
 * written; entries of deleted or rewritten archives are pruned; the
 * kvro_cache_* API and `mkkv cache show|clear|prune` agree with what is on
 * disk; and nothing in the cache directory that is not a kvro entry (by
 * name and magic) is ever removed. Archives are made by GNU tar and gzip.
 */
#include "support.h"

#include "kvro/kvro.h"

#include <dirent.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#define N_ARCHIVES 6

static char *dir;                  /* everything this test makes */
static char *xdg, *cache;          /* $XDG_CACHE_HOME and its kvro/ */
static char *archive[N_ARCHIVES];  /* a0.tar.gz ... (absolute paths) */
static int64_t entry_min, entry_max; /* the entries' sizes */

/* ------------------------------------------------------------- helpers */

static void sh(const char *cmd)
{
    char *err = NULL;
    int rc = t_run(cmd, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", cmd, err);
    assert_int_equal(rc, 0);
    free(err);
}

/* Let the clock move past the file-time granularity (a kernel tick), so
 * that uses in a row have mtimes in that order. */
static void tick(void)
{
    struct timespec t = {0, 30 * 1000 * 1000};
    nanosleep(&t, NULL);
}

/* Opens archive I with cap CAP (0: the default), checks a byte of it and
 * closes it; returns its stats. */
static kvro_stats use(int i, int64_t cap)
{
    kvro_options o = {.index_cache_max = cap};
    kvro *kv;
    kvro_error e;
    kvro_status s = kvro_open_opts(archive[i], &o, &kv, &e);
    if (s != KVRO_OK)
        kvro_error_print(stderr, "open", &e);
    assert_int_equal(s, KVRO_OK);
    kvro_stats st;
    assert_int_equal(kvro_get_stats(kv, &st, NULL), KVRO_OK);
    unsigned char c;
    int64_t got;
    assert_int_equal(kvro_read(kv, "f.bin", 500000, 1, &c, &got, NULL), KVRO_OK);
    assert_int_equal(got, 1);
    assert_int_equal(c, t_pattern(100 + (uint64_t)i, 500000));
    kvro_close(kv);
    tick();
    return st;
}

typedef struct seen {
    int n;
    int64_t total;
    char *archive[64];
    int64_t bytes[64];
    bool exists[64], usable[64];
    int64_t last_used[64];
} seen;

static int collect(void *arg, const kvro_cache_entry *e)
{
    seen *s = arg;
    assert_true(s->n < 64);
    assert_non_null(strstr(e->file, "/kvro/"));
    s->archive[s->n] = strdup(e->archive);
    s->bytes[s->n] = e->bytes;
    s->exists[s->n] = e->archive_exists;
    s->usable[s->n] = e->usable;
    s->last_used[s->n] = e->last_used;
    s->total += e->bytes;
    s->n++;
    return 0;
}

static seen list(void)
{
    seen s = {0};
    assert_int_equal(kvro_cache_list(collect, &s, NULL), KVRO_OK);
    return s;
}

static void seen_free(seen *s)
{
    for (int i = 0; i < s->n; i++)
        free(s->archive[i]);
}

/* Where archive I is in the listing (most recently used first), or -1. */
static int rank(const seen *s, int i)
{
    for (int k = 0; k < s->n; k++)
        if (!strcmp(s->archive[k], archive[i]))
            return k;
    return -1;
}

/* The cache holds entries for exactly the archives in WANT (-1 ends it),
 * in that order of use, most recent first. */
static void want_cached(const int *want)
{
    seen s = list();
    int k = 0;
    for (; want[k] >= 0; k++) {
        if (rank(&s, want[k]) != k)
            fprintf(stderr, "archive %d: rank %d, want %d\n", want[k], rank(&s, want[k]), k);
        assert_int_equal(rank(&s, want[k]), k);
    }
    assert_int_equal(s.n, k);
    seen_free(&s);
}

static int64_t cache_total(void)
{
    seen s = list();
    int64_t t = s.total;
    seen_free(&s);
    return t;
}

static int count_files(const char *d)
{
    DIR *dd = opendir(d);
    int n = 0;
    struct dirent *e;
    while (dd && (e = readdir(dd)))
        n += e->d_name[0] != '.';
    if (dd)
        closedir(dd);
    return n;
}

/* t_mkkv, saying on stderr what failed (callers assert success). */
static int mkkv(char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int mkkv(char **out, char **err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *args = t_vfmt(fmt, ap);
    va_end(ap);
    int rc = t_mkkv(out, err, "%s", args);
    if (rc != 0)
        fprintf(stderr, "'%s' %s: exit %d: %s\n", KVRO_TEST_MKKV, args, rc, *err);
    free(args);
    return rc;
}

/* --------------------------------------------------------------- setup */

static int setup(void **state)
{
    (void)state;
    dir = t_tempdir("index-cache");
    xdg = t_join(dir, "xdg");
    cache = t_join(xdg, "kvro");
    setenv("XDG_CACHE_HOME", xdg, 1);
    unsetenv("KVRO_CACHE_MAX");
    /* Points every 128 KiB, each with its window: entries of ~200 KiB from
     * 1 MiB archives, so the sizes below are the windows', not noise. */
    setenv("KVRO_TARGZ_SPACING", "131072", 1);
    for (int i = 0; i < N_ARCHIVES; i++) {
        char *src = t_fmt("%s/src%d/f.bin", dir, i);
        t_write_pattern(src, 100 + (uint64_t)i, 1 << 20);
        free(src);
        archive[i] = t_fmt("%s/a%d.tar.gz", dir, i);
        char *cmd = t_fmt("tar --format=gnu -C '%s/src%d' -cf - f.bin | gzip > '%s'", dir, i,
                          archive[i]);
        sh(cmd);
        free(cmd);
    }
    /* What an entry takes: the archives are alike, so their entries are
     * within a few bytes of each other (checked: the cap arithmetic of the
     * tests below depends on it). */
    for (int i = 0; i < N_ARCHIVES; i++)
        use(i, 0);
    seen s = list();
    assert_int_equal(s.n, N_ARCHIVES);
    entry_min = entry_max = s.bytes[0];
    for (int k = 0; k < s.n; k++) {
        entry_min = s.bytes[k] < entry_min ? s.bytes[k] : entry_min;
        entry_max = s.bytes[k] > entry_max ? s.bytes[k] : entry_max;
    }
    seen_free(&s);
    assert_true(entry_min > 1000);
    assert_true(entry_max * 100 < entry_min * 105);
    assert_int_equal(kvro_cache_clear(NULL, NULL), KVRO_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    t_rmrf(dir);
    for (int i = 0; i < N_ARCHIVES; i++)
        free(archive[i]);
    free(dir);
    free(xdg);
    free(cache);
    return 0;
}

static int fresh(void **state)
{
    (void)state;
    unsetenv("KVRO_CACHE_MAX");
    assert_int_equal(kvro_cache_clear(NULL, NULL), KVRO_OK);
    return 0;
}

/* Room for three entries, not four. */
static int64_t three(void)
{
    return 3 * entry_max + entry_min / 2;
}

/* --------------------------------------------------------------- tests */

static void test_lru_within_cap(void **state)
{
    (void)state;
    int64_t cap = three();
    for (int i = 0; i < 3; i++)
        assert_true(use(i, cap).index_saved);
    want_cached((int[]){2, 1, 0, -1});
    /* Loading a0 makes it the most recent: a1 is now the least. */
    assert_true(use(0, cap).index_loaded);
    want_cached((int[]){0, 2, 1, -1});
    assert_true(use(3, cap).index_saved);
    want_cached((int[]){3, 0, 2, -1});
    assert_true(cache_total() <= cap);
    assert_true(use(4, cap).index_saved);
    assert_true(use(5, cap).index_saved);
    want_cached((int[]){5, 4, 3, -1});
    assert_true(cache_total() <= cap);
    /* A smaller cap given later: the next save trims to it, keeping
     * itself. */
    assert_true(use(0, entry_max + entry_min / 2).index_saved);
    want_cached((int[]){0, -1});
}

static void test_cap_from_environment(void **state)
{
    (void)state;
    char num[32];
    snprintf(num, sizeof num, "%lld", (long long)three());
    setenv("KVRO_CACHE_MAX", num, 1);
    assert_int_equal(kvro_cache_cap(0), three());
    assert_int_equal(kvro_cache_cap(12345), 12345); /* the option wins */
    for (int i = 0; i < N_ARCHIVES; i++)
        use(i, 0);
    want_cached((int[]){5, 4, 3, -1});
    /* Through mkkv too: a0 saved, the least recent (a3) evicted. */
    char *out, *err;
    assert_int_equal(mkkv(&out, &err, "ls '%s'", archive[0]), 0);
    assert_string_equal(out, "f.bin\n");
    free(out), free(err);
    want_cached((int[]){0, 5, 4, -1});
    /* Suffixes are x1024; anything else is the default. */
    setenv("KVRO_CACHE_MAX", "64K", 1);
    assert_int_equal(kvro_cache_cap(0), 65536);
    setenv("KVRO_CACHE_MAX", "3G", 1);
    assert_int_equal(kvro_cache_cap(0), (int64_t)3 << 30);
    const char *bad[] = {"", "abc", "-5", "0", "12X", "1.5G"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        setenv("KVRO_CACHE_MAX", bad[i], 1);
        assert_int_equal(kvro_cache_cap(0), KVRO_CACHE_MAX_DEFAULT);
    }
    unsetenv("KVRO_CACHE_MAX");
    assert_int_equal(kvro_cache_cap(0), (int64_t)1 << 30);
    assert_int_equal(kvro_cache_cap(-1), (int64_t)1 << 30);
}

static void test_entry_over_cap_not_saved(void **state)
{
    (void)state;
    use(1, 0);
    kvro_stats st = use(2, entry_min / 2);
    assert_false(st.index_saved);
    assert_non_null(strstr(st.index_note, "cap"));
    want_cached((int[]){1, -1}); /* and nothing evicted for it */
}

/* A load touches its entry: what "last used" means does not depend on
 * atime, which noatime and relatime mounts do not keep. */
static void test_load_touches(void **state)
{
    (void)state;
    use(0, 0);
    seen s = list();
    assert_int_equal(s.n, 1);
    char *entry = NULL;
    DIR *d = opendir(cache);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tgzidx"))
            entry = t_join(cache, e->d_name);
    closedir(d);
    struct timespec old[2] = {{946684800, 0}, {946684800, 0}}; /* 2000-01-01 */
    assert_int_equal(utimensat(AT_FDCWD, entry, old, 0), 0);
    seen_free(&s);
    s = list();
    assert_int_equal(s.last_used[0], 946684800);
    seen_free(&s);
    assert_true(use(0, 0).index_loaded);
    s = list();
    assert_true(s.last_used[0] > (int64_t)time(NULL) - 60);
    seen_free(&s);
    free(entry);
}

static void test_prune(void **state)
{
    (void)state;
    for (int i = 0; i < 4; i++)
        use(i, 0);
    /* a1 deleted, a2 rewritten (another mtime): neither entry is usable. */
    char *moved = t_fmt("%s.away", archive[1]);
    assert_int_equal(rename(archive[1], moved), 0);
    struct timespec later[2] = {{2000000000, 0}, {2000000000, 0}};
    assert_int_equal(utimensat(AT_FDCWD, archive[2], later, 0), 0);
    seen s = list();
    assert_int_equal(s.n, 4);
    assert_false(s.exists[rank(&s, 1)]);
    assert_false(s.usable[rank(&s, 1)]);
    assert_true(s.exists[rank(&s, 2)]);
    assert_false(s.usable[rank(&s, 2)]);
    assert_true(s.usable[rank(&s, 0)] && s.usable[rank(&s, 3)]);
    seen_free(&s);
    /* Without KVRO_CACHE_STALE only the cap counts. */
    kvro_cache_result r;
    assert_int_equal(kvro_cache_trim(0, 0, &r, NULL), KVRO_OK);
    assert_int_equal(r.removed, 0);
    assert_int_equal(r.kept, 4);
    assert_int_equal(kvro_cache_trim(0, KVRO_CACHE_STALE, &r, NULL), KVRO_OK);
    assert_int_equal(r.removed, 2);
    assert_int_equal(r.kept, 2);
    want_cached((int[]){3, 0, -1});
    /* The cap too, least recent first. */
    assert_int_equal(kvro_cache_trim(entry_max, KVRO_CACHE_STALE, &r, NULL), KVRO_OK);
    assert_int_equal(r.removed, 1);
    want_cached((int[]){3, -1});
    /* An entry of the format before archive paths (version 3): listed with
     * no archive, never usable, pruned. */
    use(0, 0);
    DIR *d = opendir(cache);
    struct dirent *e;
    char *entry = NULL;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tgzidx") && !entry) {
            char *p = t_join(cache, e->d_name);
            int fd = open(p, O_RDWR);
            unsigned char v = 3;
            assert_int_equal(pwrite(fd, &v, 1, 8), 1);
            close(fd);
            entry = p;
        }
    closedir(d);
    s = list();
    assert_int_equal(s.n, 2);
    int old = !strcmp(s.archive[0], "") ? 0 : 1;
    assert_string_equal(s.archive[old], "");
    assert_false(s.usable[old]);
    seen_free(&s);
    assert_int_equal(kvro_cache_trim(0, KVRO_CACHE_STALE, &r, NULL), KVRO_OK);
    assert_int_equal(r.removed, 1);
    assert_int_equal(r.kept, 1);
    assert_int_equal(access(entry, F_OK), -1);
    assert_int_equal(rename(moved, archive[1]), 0);
    free(moved);
    free(entry);
}

/* `mkkv cache`: show, prune, clear. */
static void test_mkkv_cache(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++)
        use(i, 0);
    char *moved = t_fmt("%s.away", archive[1]);
    assert_int_equal(rename(archive[1], moved), 0);
    char *out, *err;
    assert_int_equal(mkkv(&out, &err, "cache"), 0);
    char *show = out;
    free(err);
    assert_int_equal(mkkv(&out, &err, "cache show"), 0);
    assert_string_equal(out, show);
    free(out), free(err);
    /* Most recent first, one line each, then the total against the cap. */
    char *a0 = strstr(show, archive[0]), *a1 = strstr(show, archive[1]),
         *a2 = strstr(show, archive[2]);
    assert_true(a0 && a1 && a2 && a2 < a1 && a1 < a0);
    char *gone = t_fmt("%s (archive gone)\n", archive[1]);
    assert_non_null(strstr(show, gone));
    free(gone);
    char *total = t_fmt("3 entries, %lld bytes", (long long)cache_total());
    assert_non_null(strstr(show, total));
    assert_non_null(strstr(show, "of a 1073741824-byte cap (1.0 GiB), in "));
    assert_non_null(strstr(show, cache));
    free(total);
    free(show);
    assert_int_equal(mkkv(&out, &err, "cache show --max 10M"), 0);
    assert_non_null(strstr(out, "of a 10485760-byte cap (10.0 MiB)"));
    free(out), free(err);

    assert_int_equal(mkkv(&out, &err, "cache prune"), 0);
    assert_non_null(strstr(out, "prune: removed 1 file"));
    assert_non_null(strstr(out, "2 entries left"));
    free(out), free(err);
    want_cached((int[]){2, 0, -1});
    assert_int_equal(mkkv(&out, &err, "cache prune --max %lld", (long long)entry_max), 0);
    free(out), free(err);
    want_cached((int[]){2, -1});

    assert_int_equal(mkkv(&out, &err, "cache clear"), 0);
    assert_non_null(strstr(out, "clear: removed 1 file"));
    assert_non_null(strstr(out, "0 entries left"));
    free(out), free(err);
    want_cached((int[]){-1});
    assert_int_equal(mkkv(&out, &err, "cache"), 0);
    assert_non_null(strstr(out, "0 entries, 0 bytes"));
    free(out), free(err);

    /* Usage errors, and the help. */
    char *cmd = t_fmt("'%s' cache bogus", KVRO_TEST_MKKV);
    assert_int_equal(t_run(cmd, &out, &err), 2);
    assert_non_null(strstr(err, "unknown action 'bogus'"));
    free(cmd), free(out), free(err);
    cmd = t_fmt("'%s' cache --max nope", KVRO_TEST_MKKV);
    assert_int_equal(t_run(cmd, &out, &err), 2);
    free(cmd), free(out), free(err);
    assert_int_equal(mkkv(&out, &err, "cache --help"), 0);
    assert_non_null(strstr(out, "Usage: mkkv cache"));
    assert_non_null(strstr(out, "KVRO_CACHE_MAX"));
    free(out), free(err);
    assert_int_equal(mkkv(&out, &err, "--help"), 0);
    assert_non_null(strstr(out, "  cache "));
    free(out), free(err);
    assert_int_equal(rename(moved, archive[1]), 0);
    free(moved);
}

/* What is not a kvro entry stays, whatever its name, through eviction,
 * prune and clear; a temporary a dead writer left is removed once old. */
static void test_foreign_files_kept(void **state)
{
    (void)state;
    use(0, 0);
    t_mkdirs(cache);
    char *notes = t_join(cache, "notes.txt");
    char *lookalike = t_join(cache, "0123456789abcdef.tgzidx");
    char *big = t_join(cache, "fedcba9876543210.tgzidx");
    char *tmp_junk = t_join(cache, "0123456789abcdef.tgzidx.abc123");
    char *subdir = t_join(cache, "00000000000000aa.tgzidx");
    char *link = t_join(cache, "00000000000000bb.tgzidx");
    char *outside = t_join(dir, "outside.idx");
    t_write(notes, "mine", 4);
    t_write(lookalike, "not an index", 12);
    t_write_pattern(big, 9, (uint64_t)(4 * entry_max)); /* bigger than any cap below */
    t_write(tmp_junk, "junk", 4);
    t_mkdirs(subdir);
    /* A link to a real index outside: neither the link nor its target go. */
    kvro_options o = {.index_path = outside};
    kvro *kv;
    assert_int_equal(kvro_open_opts(archive[5], &o, &kv, NULL), KVRO_OK);
    kvro_close(kv);
    assert_int_equal(symlink(outside, link), 0);
    struct timespec old[2] = {{946684800, 0}, {946684800, 0}};
    assert_int_equal(utimensat(AT_FDCWD, tmp_junk, old, 0), 0);
    assert_int_equal(utimensat(AT_FDCWD, lookalike, old, 0), 0);
    /* A temporary left behind (index magic, two hours old), and one that
     * a live writer may still be writing (recent). */
    char *left = t_join(cache, "1111111111111111.tgzidx.XYZ123");
    char *live = t_join(cache, "2222222222222222.tgzidx.XYZ123");
    t_write(left, "KVROTGZI....", 12);
    t_write(live, "KVROTGZI....", 12);
    struct timespec hours[2] = {{time(NULL) - 7200, 0}, {time(NULL) - 7200, 0}};
    assert_int_equal(utimensat(AT_FDCWD, left, hours, 0), 0);

    int64_t cap = three();
    for (int i = 1; i < N_ARCHIVES; i++)
        use(i, cap);
    assert_true(cache_total() <= cap);
    seen s = list(); /* only the real entries are listed */
    assert_int_equal(s.n, 3);
    seen_free(&s);
    assert_int_equal(access(left, F_OK), -1);
    assert_int_equal(access(live, F_OK), 0);
    kvro_cache_result r;
    assert_int_equal(kvro_cache_trim(1, KVRO_CACHE_STALE, &r, NULL), KVRO_OK);
    assert_int_equal(r.kept, 0);
    for (int i = 0; i < 3; i++)
        use(i, 0);
    char *out, *err;
    assert_int_equal(mkkv(&out, &err, "cache prune --max 1"), 0);
    free(out), free(err);
    for (int i = 0; i < 3; i++)
        use(i, 0);
    assert_int_equal(kvro_cache_clear(&r, NULL), KVRO_OK);
    assert_int_equal(r.removed, 3);
    assert_int_equal(r.kept, 0);

    size_t n;
    char *b = t_slurp(notes, &n);
    assert_true(n == 4 && !memcmp(b, "mine", 4));
    free(b);
    b = t_slurp(lookalike, &n);
    assert_true(n == 12 && !memcmp(b, "not an index", 12));
    free(b);
    struct stat st;
    assert_int_equal(stat(big, &st), 0);
    assert_int_equal(st.st_size, 4 * entry_max);
    assert_int_equal(stat(tmp_junk, &st), 0);
    assert_int_equal(stat(subdir, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(lstat(link, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    assert_int_equal(stat(outside, &st), 0);
    assert_int_equal(access(live, F_OK), 0);
    /* notes, lookalike, big, tmp_junk, subdir, link, live */
    assert_int_equal(count_files(cache), 7);
    for (char **p = (char *[]){notes, lookalike, big, tmp_junk, link, live, NULL}; *p; p++)
        unlink(*p);
    rmdir(subdir);
    free(notes), free(lookalike), free(big), free(tmp_junk), free(subdir), free(link);
    free(outside), free(left), free(live);
}

/* A handle that loaded an entry reads on, right, after the entry is
 * evicted or cleared: unlink never cuts a file someone has open. */
static void test_reader_survives_eviction(void **state)
{
    (void)state;
    use(0, 0);
    kvro *kv;
    assert_int_equal(kvro_open(archive[0], &kv, NULL), KVRO_OK);
    kvro_stats st;
    assert_int_equal(kvro_get_stats(kv, &st, NULL), KVRO_OK);
    assert_true(st.index_loaded);
    assert_int_equal(kvro_cache_clear(NULL, NULL), KVRO_OK);
    want_cached((int[]){-1});
    unsigned char *buf = malloc(1 << 20);
    int64_t got;
    assert_int_equal(kvro_read(kv, "f.bin", 0, 1 << 20, buf, &got, NULL), KVRO_OK);
    assert_int_equal(got, 1 << 20);
    for (int64_t i = (1 << 20) - 1; i >= 0; i -= 4099)
        assert_int_equal(buf[i], t_pattern(100, (uint64_t)i));
    assert_int_equal(kvro_get_stats(kv, &st, NULL), KVRO_OK);
    assert_int_equal(st.damaged_windows, 0);
    free(buf);
    kvro_close(kv);
}

static void test_cache_dir(void **state)
{
    (void)state;
    char *d;
    assert_int_equal(kvro_cache_dir(&d, NULL), KVRO_OK);
    assert_string_equal(d, cache);
    free(d);
    char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
    setenv("XDG_CACHE_HOME", "relative/is/ignored", 1);
    setenv("HOME", dir, 1);
    assert_int_equal(kvro_cache_dir(&d, NULL), KVRO_OK);
    char *want = t_fmt("%s/.cache/kvro", dir);
    assert_string_equal(d, want);
    free(want);
    free(d);
    unsetenv("XDG_CACHE_HOME");
    unsetenv("HOME");
    kvro_error e;
    assert_int_equal(kvro_cache_dir(&d, &e), KVRO_E_NOT_FOUND);
    assert_int_equal(kvro_cache_list(collect, &(seen){0}, &e), KVRO_E_NOT_FOUND);
    if (home)
        setenv("HOME", home, 1);
    free(home);
    setenv("XDG_CACHE_HOME", xdg, 1);
    /* A cache that does not exist yet is an empty one. */
    char *none = t_join(dir, "no-cache-yet");
    setenv("XDG_CACHE_HOME", none, 1);
    seen s = list();
    assert_int_equal(s.n, 0);
    kvro_cache_result r;
    assert_int_equal(kvro_cache_clear(&r, NULL), KVRO_OK);
    assert_int_equal(r.removed + r.kept, 0);
    assert_int_equal(access(none, F_OK), -1);
    setenv("XDG_CACHE_HOME", xdg, 1);
    free(none);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_lru_within_cap, fresh),
        cmocka_unit_test_setup(test_cap_from_environment, fresh),
        cmocka_unit_test_setup(test_entry_over_cap_not_saved, fresh),
        cmocka_unit_test_setup(test_load_touches, fresh),
        cmocka_unit_test_setup(test_prune, fresh),
        cmocka_unit_test_setup(test_mkkv_cache, fresh),
        cmocka_unit_test_setup(test_foreign_files_kept, fresh),
        cmocka_unit_test_setup(test_reader_survives_eviction, fresh),
        cmocka_unit_test_setup(test_cache_dir, fresh),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
