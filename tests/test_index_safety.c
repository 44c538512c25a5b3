/*
 * test_index_safety.c — an explicit .tar.gz index file (mkkv --index,
 * kvro_options.index_path) is written only where nothing is or over a kvro
 * index: never over the archive itself (by its name, a hard link, a
 * symbolic link, or standard input redirected from it), never over an
 * unrelated file or a directory, never into a missing directory. Each
 * refusal fails the open with a message naming the index file, before any
 * inflating, and leaves every byte as it was; a file that appears there
 * during the build is not overwritten either. Archives are made by GNU tar
 * and gzip.
 */
#include "support.h"

#include "kvro/kvro.h"

#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char *dir;    /* everything this test makes */
static char *victim; /* a .tar.gz by GNU tar + gzip */
static char *other;  /* another one */
static char *orig;   /* victim's bytes */
static size_t orig_n;

static int mkkv(char **out, char **err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int mkkv(char **out, char **err, const char *fmt, ...)
{
    char *in_dir = t_fmt("cd '%s' && '%s' ", dir, KVRO_TEST_MKKV);
    va_list ap;
    va_start(ap, fmt);
    int rc = t_vsh(in_dir, out, err, fmt, ap);
    va_end(ap);
    free(in_dir);
    return rc;
}

static int setup(void **state)
{
    (void)state;
    dir = t_tempdir("index-safety");
    char *p = t_join(dir, "tree/big.bin");
    t_write_pattern(p, 7, 2 << 20);
    free(p);
    p = t_join(dir, "tree/hello.txt");
    t_write(p, "hello\n", 6);
    free(p);
    p = t_join(dir, "tree2/x.bin");
    t_write_pattern(p, 8, 300000);
    free(p);
    victim = t_join(dir, "victim.tgz");
    other = t_join(dir, "other.tgz");
    char *cmd = t_fmt("cd '%s' && tar --format=gnu -C tree -cf - . | gzip > victim.tgz && "
                      "tar --format=gnu -C tree2 -cf - . | gzip > other.tgz",
                      dir);
    char *err = NULL;
    int rc = t_run(cmd, NULL, &err);
    if (rc != 0)
        fprintf(stderr, "%s: %s\n", cmd, err);
    assert_int_equal(rc, 0);
    free(cmd);
    free(err);
    orig = t_slurp(victim, &orig_n);
    char *xdg = t_join(dir, "xdg");
    setenv("XDG_CACHE_HOME", xdg, 1);
    free(xdg);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    t_rmrf(dir);
    free(dir);
    free(victim);
    free(other);
    free(orig);
    return 0;
}

/* The archive still holds exactly its bytes. */
static void victim_intact(void)
{
    size_t n;
    char *now = t_slurp(victim, &n);
    assert_int_equal(n, orig_n);
    assert_memory_equal(now, orig, n);
    free(now);
}

/* mkkv ARGS fails with exit 1 and a message with NEEDLE and NAME in it. */
static void refused(const char *needle, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void refused(const char *needle, const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *args = t_vfmt(fmt, ap);
    va_end(ap);
    char *out, *err;
    int rc = mkkv(&out, &err, "%s", args);
    if (rc != 1 || !strstr(err, needle) || !strstr(err, name))
        fprintf(stderr, "mkkv %s: exit %d, stderr '%s' (want 1, '%s', '%s')\n", args, rc, err,
                needle, name);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, needle));
    assert_non_null(strstr(err, name));
    assert_string_equal(out, ""); /* nothing listed: the open failed */
    free(out);
    free(err);
    free(args);
}

static void test_never_over_the_archive(void **state)
{
    (void)state;
    const char *self = "is the archive itself; not overwritten";
    refused(self, "index file victim.tgz", "ls --index victim.tgz victim.tgz");
    victim_intact();
    refused(self, "victim.tgz", "cat --index victim.tgz victim.tgz hello.txt");
    victim_intact();
    /* Other names for the same file: the device and inode decide. */
    char *hard = t_join(dir, "hard.tgz"), *sym = t_join(dir, "sym.tgz");
    assert_int_equal(link(victim, hard), 0);
    assert_int_equal(symlink("victim.tgz", sym), 0);
    refused(self, "index file hard.tgz", "ls --index hard.tgz victim.tgz");
    victim_intact();
    refused(self, "index file sym.tgz", "ls --index sym.tgz victim.tgz");
    victim_intact();
    refused(self, "index file victim.tgz", "ls --index victim.tgz sym.tgz");
    victim_intact();
    refused(self, "index file ./victim.tgz", "ls --index ./victim.tgz hard.tgz");
    victim_intact();
    /* Read through standard input, redirected from the archive. */
    refused(self, "index file victim.tgz", "ls --index victim.tgz - < victim.tgz");
    victim_intact();
    /* An archive inside a bigger file: the file is still the archive's. */
    refused(self, "index file victim.tgz", "ls --image-offset 0 --index victim.tgz victim.tgz");
    victim_intact();
    /* With saving off nothing is written, so nothing is refused. */
    char *out, *err;
    assert_int_equal(mkkv(&out, &err, "ls --no-index-cache --index victim.tgz victim.tgz"), 0);
    assert_non_null(strstr(out, "hello.txt"));
    free(out), free(err);
    victim_intact();
    unlink(hard);
    unlink(sym);
    free(hard);
    free(sym);
}

static void test_never_over_other_files(void **state)
{
    (void)state;
    char *important = t_join(dir, "important.txt");
    t_write(important, "keep me\n", 8);
    refused("index file important.txt: exists and is not a kvro index; not overwritten",
            "important.txt", "ls --index important.txt victim.tgz");
    size_t n;
    char *now = t_slurp(important, &n);
    assert_int_equal(n, 8);
    assert_memory_equal(now, "keep me\n", 8);
    free(now);
    /* A file that starts like a gzip stream, the other archive: not ours. */
    refused("not a kvro index", "other.tgz", "ls --index other.tgz victim.tgz");
    /* A directory, and a symbolic link that leads nowhere. */
    char *sub = t_join(dir, "sub");
    t_mkdirs(sub);
    refused("not a kvro index (a directory)", "index file sub", "ls --index sub victim.tgz");
    char *dangling = t_join(dir, "dangling.idx");
    assert_int_equal(symlink("no-such-file", dangling), 0);
    refused("leads nowhere", "dangling.idx", "ls --index dangling.idx victim.tgz");
    struct stat st;
    assert_int_equal(lstat(dangling, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    char *target = t_join(dir, "no-such-file");
    assert_int_equal(access(target, F_OK), -1);
    free(target);
    /* A missing directory is an error too, and is not made. */
    refused("its directory missing/dir does not exist", "missing/dir/x.idx",
            "ls --index missing/dir/x.idx victim.tgz");
    char *missing = t_join(dir, "missing");
    assert_int_equal(access(missing, F_OK), -1);
    refused("important.txt is not a directory", "important.txt/x.idx",
            "ls --index important.txt/x.idx victim.tgz");
    victim_intact();
    free(missing);
    free(dangling);
    free(sub);
    free(important);
}

static void test_over_an_index_accepted(void **state)
{
    (void)state;
    char *idx = t_join(dir, "good.idx");
    unlink(idx);
    char *out, *err;
    assert_int_equal(mkkv(&out, &err, "ls --index good.idx victim.tgz"), 0);
    assert_non_null(strstr(out, "hello.txt"));
    free(out), free(err);
    struct stat st;
    assert_int_equal(stat(idx, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    size_t n;
    char *b = t_slurp(idx, &n);
    assert_true(n > 8 && memcmp(b, "KVROTGZI", 8) == 0);
    free(b);
    /* Used again, then rewritten for another archive (stale for it), then
     * loaded for that one. */
    kvro_options o = {.index_path = idx};
    kvro *kv;
    assert_int_equal(kvro_open_opts(victim, &o, &kv, NULL), KVRO_OK);
    kvro_stats s;
    assert_int_equal(kvro_get_stats(kv, &s, NULL), KVRO_OK);
    assert_true(s.index_loaded);
    kvro_close(kv);
    assert_int_equal(mkkv(&out, &err, "ls --index good.idx other.tgz"), 0);
    assert_non_null(strstr(out, "x.bin"));
    free(out), free(err);
    assert_int_equal(kvro_open_opts(other, &o, &kv, NULL), KVRO_OK);
    assert_int_equal(kvro_get_stats(kv, &s, NULL), KVRO_OK);
    assert_true(s.index_loaded);
    kvro_close(kv);
    /* An empty file holds nothing to lose (made by touch or mktemp). */
    char *empty = t_join(dir, "empty.idx");
    t_write(empty, "", 0);
    assert_int_equal(mkkv(&out, &err, "ls --index empty.idx victim.tgz"), 0);
    free(out), free(err);
    b = t_slurp(empty, &n);
    assert_true(n > 8 && memcmp(b, "KVROTGZI", 8) == 0);
    free(b);
    /* A symbolic link to an index is followed for the check. */
    char *link = t_join(dir, "link.idx");
    assert_int_equal(symlink("good.idx", link), 0);
    assert_int_equal(mkkv(&out, &err, "ls --index link.idx victim.tgz"), 0);
    free(out), free(err);
    victim_intact();
    free(link);
    free(empty);
    free(idx);
}

static int progress_calls;
static void count_progress(void *arg, const char *what, int64_t done, int64_t total)
{
    (void)arg, (void)what, (void)done, (void)total;
    progress_calls++;
}

/* kvro_open_opts refuses with STATUS and a detail holding NEEDLE and the
 * index path, having inflated nothing (no progress report). */
static void api_refuses(const char *path, const char *index, kvro_status status,
                        const char *needle)
{
    kvro_options o = {.index_path = index, .progress = count_progress};
    kvro *kv = NULL;
    kvro_error e;
    progress_calls = 0;
    kvro_status s = kvro_open_opts(path, &o, &kv, &e);
    if (s != status || !strstr(e.detail, needle))
        fprintf(stderr, "open %s --index %s: %d '%s'\n", path, index, s, e.detail);
    assert_int_equal(s, status);
    assert_null(kv);
    t_want_detail(&e, needle);
    t_want_detail(&e, index);
    assert_int_equal(progress_calls, 0);
}

static void test_api_refuses(void **state)
{
    (void)state;
    char *hard = t_join(dir, "hard2.tgz"), *sym = t_join(dir, "sym2.tgz");
    char *txt = t_join(dir, "notes.txt"), *missing = t_join(dir, "nope/x.idx");
    assert_int_equal(link(victim, hard), 0);
    assert_int_equal(symlink(victim, sym), 0);
    t_write(txt, "notes", 5);
    api_refuses(victim, victim, KVRO_E_EXISTS, "is the archive itself");
    api_refuses(victim, hard, KVRO_E_EXISTS, "is the archive itself");
    api_refuses(victim, sym, KVRO_E_EXISTS, "is the archive itself");
    api_refuses(sym, victim, KVRO_E_EXISTS, "is the archive itself");
    api_refuses(victim, txt, KVRO_E_EXISTS, "exists and is not a kvro index");
    api_refuses(victim, missing, KVRO_E_NOT_FOUND, "does not exist");
    victim_intact();

    /* Through an I/O object: a file's (its descriptor decides) and memory. */
    kvro_io *io;
    assert_int_equal(kvro_io_open_path(victim, KVRO_IO_RDONLY, &io, NULL), KVRO_OK);
    kvro_options o = {.index_path = hard};
    kvro *kv = NULL;
    kvro_error e;
    assert_int_equal(kvro_open_io(io, &o, &kv, &e), KVRO_E_EXISTS);
    t_want_detail(&e, "is the archive itself");
    kvro_io_close(io);
    kvro_io *mem = t_mem_io(orig, orig_n);
    o.index_path = txt;
    assert_int_equal(kvro_open_io(mem, &o, &kv, &e), KVRO_E_EXISTS);
    t_want_detail(&e, "not a kvro index");
    kvro_io_close(mem);
    size_t n;
    char *b = t_slurp(txt, &n);
    assert_int_equal(n, 5);
    assert_memory_equal(b, "notes", 5);
    free(b);
    victim_intact();
    unlink(hard);
    unlink(sym);
    free(hard);
    free(sym);
    free(txt);
    free(missing);
}

/* A file put at the index path while the index is being built (here by
 * the progress callback, as another process might) is not overwritten
 * either: the check is made again before the rename. The open stands, and
 * says through the warning callback that the index was not saved. */
static const char *late_path;
static void make_file_late(void *arg, const char *what, int64_t done, int64_t total)
{
    (void)arg, (void)what, (void)done, (void)total;
    if (access(late_path, F_OK) != 0)
        t_write(late_path, "arrived late", 12);
}

static char warned[1024];
static void on_warning(void *arg, const char *message)
{
    (void)arg;
    snprintf(warned, sizeof warned, "%s", message);
}

static void test_checked_again_before_rename(void **state)
{
    (void)state;
    char *late = t_join(dir, "late.idx");
    unlink(late);
    late_path = late;
    warned[0] = '\0';
    kvro_options o = {.index_path = late, .progress = make_file_late, .warning = on_warning};
    kvro *kv;
    kvro_error e;
    assert_int_equal(kvro_open_opts(victim, &o, &kv, &e), KVRO_OK);
    kvro_stats s;
    assert_int_equal(kvro_get_stats(kv, &s, NULL), KVRO_OK);
    assert_false(s.index_saved);
    assert_non_null(strstr(s.index_note, "not a kvro index"));
    int64_t n;
    char buf[8];
    assert_int_equal(kvro_read(kv, "hello.txt", 0, sizeof buf, buf, &n, NULL), KVRO_OK);
    assert_int_equal(n, 6);
    kvro_close(kv);
    assert_non_null(strstr(warned, "index file"));
    assert_non_null(strstr(warned, "late.idx"));
    assert_non_null(strstr(warned, "not saved"));
    size_t len;
    char *b = t_slurp(late, &len);
    assert_int_equal(len, 12);
    assert_memory_equal(b, "arrived late", 12);
    free(b);
    /* No temporary left beside it. */
    char *cmd = t_fmt("ls '%s' | grep -c 'late.idx.' || true", dir);
    char *out;
    assert_int_equal(t_run(cmd, &out, NULL), 0);
    assert_string_equal(out, "0\n");
    free(out);
    free(cmd);
    free(late);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_never_over_the_archive),
        cmocka_unit_test(test_never_over_other_files),
        cmocka_unit_test(test_over_an_index_accepted),
        cmocka_unit_test(test_api_refuses),
        cmocka_unit_test(test_checked_again_before_rename),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
