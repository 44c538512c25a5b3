/*
 * test_dir.c — what only the host-directory backend has: confinement of
 * keys and symbolic links to the root, special files, and the FS write
 * side. Every write is checked twice: through kvro, and on the host with
 * plain POSIX calls.
 */
#include "support.h"

#include <kvro/kvro.h>

#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"

/* ------------------------------------------------------------- the tree */

#define FILE_SIZE 5000
#define FILE_SEED 1
#define INNER_SIZE 300
#define INNER_SEED 2
#define SECRET "secret\n"

/* OUTER holds ROOT, the root served, and things a link might reach
 * outside it. */
typedef struct tree {
    char *outer, *root;
    char *real_outer, *real_root; /* absolute link targets need real paths */
} tree;

static char *in(const char *dir, const char *rel)
{
    return t_join(dir, rel);
}

static void link_at(const char *dir, const char *name, const char *target)
{
    char *p = in(dir, name);
    if (symlink(target, p) != 0)
        fail_msg("symlink %s: %s", p, strerror(errno));
    free(p);
}

static void link_abs(const char *dir, const char *name, const char *base, const char *rel)
{
    char *target = t_join(base, rel);
    link_at(dir, name, target);
    free(target);
}

static void put_pattern(const char *dir, const char *rel, uint64_t seed, uint64_t n)
{
    char *p = in(dir, rel);
    t_write_pattern(p, seed, n);
    free(p);
}

static void put_secret(const char *dir, const char *rel)
{
    char *p = in(dir, rel);
    t_write(p, SECRET, strlen(SECRET));
    free(p);
}

static int setup(void **state)
{
    tree *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->outer = t_tempdir("dir");
    t->root = in(t->outer, "root");
    put_pattern(t->root, "file", FILE_SEED, FILE_SIZE);
    put_pattern(t->root, "sub/inner", INNER_SEED, INNER_SIZE);
    put_secret(t->outer, "outside");
    put_secret(t->outer, "outdir/there");
    /* Its name starts with the root's: a prefix test alone would let it in. */
    put_secret(t->outer, "root-evil/file");
    t->real_outer = realpath(t->outer, NULL);
    t->real_root = realpath(t->root, NULL);
    assert_non_null(t->real_outer);
    assert_non_null(t->real_root);

    /* Leading out of the root. */
    link_at(t->root, "link_etc", "/etc");
    link_at(t->root, "sub/up", "../../outside");
    link_at(t->root, "outrel", "../outdir");
    link_abs(t->root, "outabs", t->real_outer, "outdir");
    link_abs(t->root, "abs_outside", t->real_outer, "outside");
    link_abs(t->root, "abs_evil", t->real_outer, "root-evil/file");
    /* Leading nowhere. */
    link_at(t->root, "loop1", "loop2");
    link_at(t->root, "loop2", "loop1");
    link_at(t->root, "self", "self");
    link_at(t->root, "dangling", "nowhere");
    /* Back to an ancestor: the tree would be infinite (dot/dot/dot/...). */
    link_at(t->root, "dot", ".");
    link_at(t->root, "sub/parent", "..");
    /* Staying inside. */
    link_at(t->root, "rel_file", "sub/inner");
    link_at(t->root, "rel_dir", "sub");
    link_at(t->root, "sub/back", "../file");
    link_abs(t->root, "abs_in", t->real_root, "sub/inner");
    link_abs(t->root, "abs_dir", t->real_root, "sub");
    link_at(t->root, "abs_root", t->real_root); /* an ancestor too */
    /* Each stays inside, together they loop (ping/to_pong/to_ping/...). */
    char *d;
    t_mkdirs(d = in(t->root, "ping")), free(d);
    t_mkdirs(d = in(t->root, "pong")), free(d);
    /* A directory reached through a link whose own subdirectory the key
     * has already passed: via/up is deep, and via/up/b is via again. */
    t_mkdirs(d = in(t->root, "deep/b")), free(d);
    link_at(t->root, "deep/b/up", "..");
    link_at(t->root, "via", "deep/b");
    link_at(t->root, "ping/to_pong", "../pong");
    link_at(t->root, "pong/to_ping", "../ping");

    char *p = in(t->root, "fifo");
    if (mkfifo(p, 0644) != 0)
        fail_msg("mkfifo %s: %s", p, strerror(errno));
    free(p);
    link_at(t->root, "fifo_link", "fifo");
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    tree *t = *state;
    alarm(0); /* test_fifo's guard, if it failed before disarming it */
    t_rmrf(t->outer);
    free(t->outer);
    free(t->root);
    free(t->real_outer);
    free(t->real_root);
    free(t);
    return 0;
}

static kvro *open_kv(const tree *t)
{
    kvro *kv = NULL;
    kvro_error err;
    assert_status(kvro_open(t->root, &kv, &err), KVRO_OK, &err);
    assert_string_equal(kvro_backend_of(kv), "dir");
    return kv;
}

static kvro_fs *open_fs(const tree *t, int flags)
{
    kvro_fs *fs = NULL;
    kvro_error err;
    assert_status(kvro_fs_open(t->root, flags, NULL, &fs, &err), KVRO_OK, &err);
    return fs;
}

/* ---------------------------------------------------- host second opinion */

/* lstat of DIR/REL: 0 or the errno. */
static int host_lstat(const char *dir, const char *rel, struct stat *st)
{
    char *p = in(dir, rel);
    int r = lstat(p, st) == 0 ? 0 : errno;
    free(p);
    return r;
}

static void assert_host_kind(const char *dir, const char *rel, mode_t type)
{
    struct stat st;
    int e = host_lstat(dir, rel, &st);
    if (e)
        fail_msg("host: %s/%s: %s", dir, rel, strerror(e));
    if ((st.st_mode & S_IFMT) != type)
        fail_msg("host: %s/%s has type %o, want %o", dir, rel, st.st_mode & S_IFMT, type);
}

static void assert_host_absent(const char *dir, const char *rel)
{
    struct stat st;
    int e = host_lstat(dir, rel, &st);
    if (e != ENOENT && e != ENOTDIR)
        fail_msg("host: %s/%s exists", dir, rel);
}

static void assert_host_content(const char *dir, const char *rel, const void *want, size_t n)
{
    char *p = in(dir, rel);
    size_t got;
    char *data = t_slurp(p, &got);
    if (got != n)
        fail_msg("host: %s holds %zu bytes, want %zu", p, got, n);
    assert_memory_equal(data, want, n);
    free(data);
    free(p);
}

static void assert_host_pattern(const char *dir, const char *rel, uint64_t seed, size_t n)
{
    unsigned char *want = malloc(n ? n : 1);
    assert_non_null(want);
    for (size_t i = 0; i < n; i++)
        want[i] = t_pattern(seed, i);
    assert_host_content(dir, rel, want, n);
    free(want);
}

/* ---------------------------------------------------------- read helpers */

typedef struct listing {
    size_t n;
    char names[32][64];
    kvro_kind kinds[32];
} listing;

static int collect(void *arg, const char *name, kvro_kind kind)
{
    listing *l = arg;
    if (l->n < 32) {
        snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
        l->kinds[l->n] = kind;
    }
    l->n++;
    return 0;
}

typedef struct want_entry {
    const char *name;
    kvro_kind kind;
} want_entry;

static void check_list(kvro *kv, const char *dir, const want_entry *want, size_t n)
{
    listing l = {0};
    kvro_error err;
    assert_status(kvro_list(kv, dir, collect, &l, &err), KVRO_OK, &err);
    if (l.n != n)
        fail_msg("list '%s': %zu entries, want %zu", dir, l.n, n);
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(l.names[i], want[i].name);
        assert_int_equal(l.kinds[i], want[i].kind);
    }
}

static void check_pattern(kvro *kv, const char *key, uint64_t seed, int64_t size)
{
    unsigned char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    int64_t n = -1;
    kvro_error err;
    assert_status(kvro_read(kv, key, 0, size + 1, buf, &n, &err), KVRO_OK, &err);
    assert_int_equal(n, size);
    for (int64_t i = 0; i < size; i++)
        if (buf[i] != t_pattern(seed, (uint64_t)i))
            fail_msg("'%s': byte %lld differs", key, (long long)i);
    free(buf);
}

static void expect_link_error(kvro *kv, const char *key, const char *why)
{
    kvro_error err;
    kvro_info st;
    char buf[16];
    int64_t n;
    listing l = {0};
    assert_status(kvro_stat(kv, key, &st, &err), KVRO_E_LINK, &err);
    if (!strstr(err.detail, why))
        fail_msg("'%s': detail '%s' does not say '%s'", key, err.detail, why);
    assert_status(kvro_read(kv, key, 0, sizeof buf, buf, &n, &err), KVRO_E_LINK, &err);
    assert_status(kvro_list(kv, key, collect, &l, &err), KVRO_E_LINK, &err);
    assert_int_equal(l.n, 0);
    bool present = true;
    assert_status(kvro_mem(kv, key, &present, &err), KVRO_E_LINK, &err);
    assert_false(present);
}

/* ---------------------------------------------------------- confinement */

static void test_traversal_keys(void **state)
{
    tree *t = *state;
    kvro *kv = open_kv(t);
    kvro_error err;
    int64_t n;
    bool present = true;
    assert_status(kvro_size(kv, "../outside", &n, &err), KVRO_E_BAD_KEY, &err);
    assert_status(kvro_size(kv, "sub/../../outside", &n, &err), KVRO_E_BAD_KEY, &err);
    /* An absolute-looking key is a key under the root like any other. */
    assert_status(kvro_size(kv, "/etc/passwd", &n, &err), KVRO_E_NOT_FOUND, &err);
    assert_status(kvro_mem(kv, "/etc/passwd", &present, &err), KVRO_OK, &err);
    assert_false(present);
    assert_status(kvro_size(kv, "/file", &n, &err), KVRO_OK, &err);
    assert_int_equal(n, FILE_SIZE);
    kvro_close(kv);
}

static void test_links_leading_out(void **state)
{
    tree *t = *state;
    kvro *kv = open_kv(t);
    expect_link_error(kv, "link_etc", "outside the root");
    expect_link_error(kv, "link_etc/passwd", "outside the root");
    expect_link_error(kv, "abs_outside", "outside the root");
    expect_link_error(kv, "abs_evil", "outside the root");
    expect_link_error(kv, "outabs/there", "outside the root");
    expect_link_error(kv, "sub/up", "above the root");
    expect_link_error(kv, "outrel", "above the root");
    expect_link_error(kv, "outrel/there", "above the root");
    /* Through an inner link to the same place. */
    expect_link_error(kv, "rel_dir/up", "above the root");
    kvro_close(kv);
}

static void test_link_loops(void **state)
{
    tree *t = *state;
    kvro *kv = open_kv(t);
    expect_link_error(kv, "loop1", "loop");
    expect_link_error(kv, "loop2/x", "loop");
    expect_link_error(kv, "self", "loop");
    expect_link_error(kv, "dot", "loop");
    expect_link_error(kv, "dot/file", "loop");
    expect_link_error(kv, "sub/parent", "loop");
    expect_link_error(kv, "sub/parent/sub/inner", "loop");
    expect_link_error(kv, "rel_dir/parent", "loop");
    expect_link_error(kv, "abs_root", "loop");
    expect_link_error(kv, "abs_root/sub/inner", "loop");
    expect_link_error(kv, "ping/to_pong/to_ping", "loop");
    expect_link_error(kv, "ping/to_pong/to_ping/to_pong", "loop");
    kvro_error err;
    int64_t n;
    bool present = true;
    assert_status(kvro_size(kv, "dangling", &n, &err), KVRO_E_NOT_FOUND, &err);
    assert_status(kvro_mem(kv, "dangling", &present, &err), KVRO_OK, &err);
    assert_false(present);
    kvro_close(kv);
}

static void test_links_inside(void **state)
{
    tree *t = *state;
    kvro *kv = open_kv(t);
    check_pattern(kv, "rel_file", INNER_SEED, INNER_SIZE);
    check_pattern(kv, "rel_dir/inner", INNER_SEED, INNER_SIZE);
    check_pattern(kv, "abs_in", INNER_SEED, INNER_SIZE);
    check_pattern(kv, "abs_dir/inner", INNER_SEED, INNER_SIZE);
    /* ".." in a target is taken from where the link lives. */
    check_pattern(kv, "sub/back", FILE_SEED, FILE_SIZE);
    check_pattern(kv, "abs_dir/back", FILE_SEED, FILE_SIZE);
    check_pattern(kv, "rel_dir/back", FILE_SEED, FILE_SIZE);

    kvro_info st;
    kvro_error err;
    assert_status(kvro_stat(kv, "rel_dir", &st, &err), KVRO_OK, &err);
    assert_int_equal(st.kind, KVRO_KIND_DIR);
    assert_status(kvro_stat(kv, "rel_file", &st, &err), KVRO_OK, &err);
    assert_int_equal(st.kind, KVRO_KIND_FILE);
    assert_int_equal(st.size, INNER_SIZE);

    static const want_entry sub[] = {{"back", KVRO_KIND_FILE}, {"inner", KVRO_KIND_FILE}};
    check_list(kv, "sub", sub, 2);
    check_list(kv, "rel_dir", sub, 2);
    check_list(kv, "abs_dir", sub, 2);
    kvro_close(kv);
}

/* Escaping links, loops (to an ancestor too), dangling links and the FIFO
 * are not keys. */
static void test_listing_omits(void **state)
{
    tree *t = *state;
    kvro *kv = open_kv(t);
    static const want_entry root[] = {
        {"abs_dir", KVRO_KIND_DIR},   {"abs_in", KVRO_KIND_FILE}, {"deep", KVRO_KIND_DIR},
        {"file", KVRO_KIND_FILE},     {"ping", KVRO_KIND_DIR},    {"pong", KVRO_KIND_DIR},
        {"rel_dir", KVRO_KIND_DIR},   {"rel_file", KVRO_KIND_FILE}, {"sub", KVRO_KIND_DIR},
        {"via", KVRO_KIND_DIR},
    };
    check_list(kv, "", root, sizeof root / sizeof root[0]);
    /* The link is listed where its key is fine, left out where it loops. */
    static const want_entry ping[] = {{"to_pong", KVRO_KIND_DIR}};
    check_list(kv, "ping", ping, 1);
    check_list(kv, "ping/to_pong", NULL, 0);
    /* Every listed entry must stat: "b" in via/up would loop, so it is
     * left out, though the directory itself has it. */
    check_list(kv, "via/up", NULL, 0);
    expect_link_error(kv, "via/up/b", "loop");
    static const want_entry deep[] = {{"b", KVRO_KIND_DIR}};
    check_list(kv, "deep", deep, 1);
    static const want_entry sub[] = {{"back", KVRO_KIND_FILE}, {"inner", KVRO_KIND_FILE}};
    check_list(kv, "sub", sub, 2);
    kvro_close(kv);
}

static void test_fifo(void **state)
{
    tree *t = *state;
    kvro *kv = open_kv(t);
    /* Opening a FIFO for reading blocks until a writer comes: if kvro ever
     * did, the alarm ends the test instead of hanging it. */
    alarm(20);
    kvro_error err;
    kvro_info st;
    int64_t n = 5;
    char buf[16];
    assert_status(kvro_stat(kv, "fifo", &st, &err), KVRO_E_UNSUPPORTED, &err);
    assert_non_null(strstr(err.detail, "FIFO"));
    assert_status(kvro_size(kv, "fifo", &n, &err), KVRO_E_UNSUPPORTED, &err);
    assert_status(kvro_read(kv, "fifo", 0, sizeof buf, buf, &n, &err), KVRO_E_UNSUPPORTED, &err);
    assert_int_equal(n, 0);
    listing l = {0};
    assert_status(kvro_list(kv, "fifo", collect, &l, &err), KVRO_E_UNSUPPORTED, &err);
    assert_status(kvro_stat(kv, "fifo_link", &st, &err), KVRO_E_UNSUPPORTED, &err);
    assert_status(kvro_read(kv, "fifo_link", 0, sizeof buf, buf, &n, &err), KVRO_E_UNSUPPORTED,
                  &err);
    kvro_close(kv);

    kvro_fs *fs = open_fs(t, KVRO_FS_RDWR);
    assert_status(kvro_fs_write(fs, "fifo", 0, "x", 1, &err), KVRO_E_UNSUPPORTED, &err);
    assert_status(kvro_fs_write(fs, "fifo_link", 0, "x", 1, &err), KVRO_E_UNSUPPORTED, &err);
    assert_status(kvro_fs_create(fs, "fifo", &err), KVRO_E_EXISTS, &err);
    assert_host_kind(t->root, "fifo", S_IFIFO);
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
    alarm(0);
}

/* The root itself may be reached through a link: absolute targets are
 * judged against its real path, and errors show the path as given. */
static void test_root_through_link(void **state)
{
    tree *t = *state;
    char *via = in(t->outer, "via");
    assert_int_equal(symlink(t->root, via), 0);
    kvro *kv = NULL;
    kvro_error err;
    assert_status(kvro_open(via, &kv, &err), KVRO_OK, &err);
    assert_string_equal(kvro_source(kv), via);
    check_pattern(kv, "abs_in", INNER_SEED, INNER_SIZE);
    int64_t n;
    assert_status(kvro_size(kv, "abs_outside", &n, &err), KVRO_E_LINK, &err);
    assert_string_equal(err.source, via);
    assert_string_equal(err.key, "abs_outside");
    kvro_close(kv);
    free(via);
}

/* kvro_list_info comes from one pass over the directory (an fstatat per
 * entry): each entry must be described exactly as kvro_lstat (NOFOLLOW) or
 * kvro_stat (following) describes its key, with the names kvro_list gives
 * when following, and every link, escaping and looping ones too, but no
 * FIFO, when not. */
typedef struct info_listing {
    size_t n;
    char names[32][64];
    kvro_status status[32];
    kvro_info info[32];
} info_listing;

static int collect_info(void *arg, const char *name, kvro_status s, const kvro_info *info)
{
    info_listing *l = arg;
    if (l->n < 32) {
        snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
        l->status[l->n] = s;
        if (info)
            l->info[l->n] = *info;
    }
    l->n++;
    return 0;
}

static void check_list_info(kvro *kv, const char *dir, int flags)
{
    info_listing l = {0};
    kvro_error err;
    assert_status(kvro_list_info(kv, dir, flags, collect_info, &l, &err), KVRO_OK, &err);
    assert_true(l.n <= 32);
    if (!(flags & KVRO_NOFOLLOW)) { /* the names and kinds of kvro_list */
        listing names = {0};
        assert_status(kvro_list(kv, dir, collect, &names, &err), KVRO_OK, &err);
        assert_int_equal(l.n, names.n);
        for (size_t i = 0; i < l.n; i++) {
            assert_string_equal(l.names[i], names.names[i]);
            assert_int_equal(l.info[i].kind, names.kinds[i]);
        }
    }
    for (size_t i = 0; i < l.n; i++) {
        if (i)
            assert_true(strcmp(l.names[i - 1], l.names[i]) < 0);
        char *key = *dir ? t_fmt("%s/%s", dir, l.names[i]) : t_fmt("%s", l.names[i]);
        kvro_info want;
        kvro_status s = (flags & KVRO_NOFOLLOW) ? kvro_lstat(kv, key, &want, &err)
                                                : kvro_stat(kv, key, &want, &err);
        if (s != l.status[i])
            fail_msg("'%s' (flags %d): listed with status %d, stat says %d", key, flags,
                     (int)l.status[i], (int)s);
        if (s == KVRO_OK) {
            const kvro_info *got = &l.info[i];
            if (got->kind != want.kind || got->size != want.size || got->mtime != want.mtime ||
                got->mtime_nsec != want.mtime_nsec || got->mode != want.mode ||
                got->has_mode != want.has_mode || got->id != want.id || got->nlink != want.nlink)
                fail_msg("'%s' (flags %d): listed as kind %d size %lld id %llu, stat says kind "
                         "%d size %lld id %llu",
                         key, flags, (int)got->kind, (long long)got->size,
                         (unsigned long long)got->id, (int)want.kind, (long long)want.size,
                         (unsigned long long)want.id);
        }
        free(key);
    }
}

static void test_list_info_one_pass(void **state)
{
    tree *t = *state;
    kvro *kv = open_kv(t);
    /* Directories reached plainly, through links inside, and through a
     * link whose target the key has passed (via/up, where b loops). */
    const char *dirs[] = {"", "sub", "ping", "ping/to_pong", "deep", "deep/b", "via", "via/up",
                          "rel_dir", "abs_dir"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        check_list_info(kv, dirs[i], 0);
        check_list_info(kv, dirs[i], KVRO_NOFOLLOW);
    }
    /* Not following: every link as stored, the FIFO left out. */
    info_listing l = {0};
    kvro_error err;
    assert_status(kvro_list_info(kv, "", KVRO_NOFOLLOW, collect_info, &l, &err), KVRO_OK, &err);
    static const char *const root[] = {
        "abs_dir", "abs_evil", "abs_in",  "abs_outside", "abs_root", "dangling", "deep",
        "dot",     "fifo_link", "file",   "link_etc",    "loop1",    "loop2",    "outabs",
        "outrel",  "ping",     "pong",    "rel_dir",     "rel_file", "self",     "sub",
        "via"};
    assert_int_equal(l.n, sizeof root / sizeof *root);
    for (size_t i = 0; i < l.n; i++)
        assert_string_equal(l.names[i], root[i]);
    /* Listing a key that is not a directory, or leads out, fails as ever. */
    memset(&l, 0, sizeof l);
    assert_status(kvro_list_info(kv, "file", KVRO_NOFOLLOW, collect_info, &l, &err),
                  KVRO_E_NOT_DIR, &err);
    assert_status(kvro_list_info(kv, "outabs", KVRO_NOFOLLOW, collect_info, &l, &err),
                  KVRO_E_LINK, &err);
    assert_status(kvro_list_info(kv, "fifo", 0, collect_info, &l, &err), KVRO_E_UNSUPPORTED,
                  &err);
    assert_int_equal(l.n, 0);
    kvro_close(kv);
}

/* A value is read by the fast path only if its key names a regular file
 * with no link on the way: a key through a link that leads out (whose
 * target a plain stat would find) is still refused, and the secret never
 * read. */
static void test_read_through_links(void **state)
{
    tree *t = *state;
    kvro *kv = open_kv(t);
    char buf[64];
    int64_t n = -1;
    kvro_error err;
    const char *out[] = {"outabs/there", "outrel/there", "abs_outside", "abs_evil"};
    for (size_t i = 0; i < sizeof out / sizeof *out; i++) {
        assert_status(kvro_read(kv, out[i], 0, sizeof buf, buf, &n, &err), KVRO_E_LINK, &err);
        assert_int_equal(n, 0);
    }
    check_pattern(kv, "file", FILE_SEED, FILE_SIZE);
    check_pattern(kv, "sub/inner", INNER_SEED, INNER_SIZE);
    check_pattern(kv, "rel_dir/inner", INNER_SEED, INNER_SIZE); /* the walk's */
    kvro_close(kv);
}

/* ------------------------------------------------------------ write side */

static void test_fs_create(void **state)
{
    tree *t = *state;
    kvro_fs *fs = open_fs(t, KVRO_FS_RDWR);
    kvro_error err;
    int64_t size;
    assert_status(kvro_fs_create(fs, "x/y/z.txt", &err), KVRO_OK, &err);
    assert_host_kind(t->root, "x", S_IFDIR);
    assert_host_kind(t->root, "x/y", S_IFDIR);
    assert_host_kind(t->root, "x/y/z.txt", S_IFREG);
    assert_host_content(t->root, "x/y/z.txt", "", 0);

    assert_status(kvro_fs_create(fs, "x/y/z.txt", &err), KVRO_E_EXISTS, &err);
    assert_status(kvro_fs_create(fs, "/x//y/./z.txt", &err), KVRO_E_EXISTS, &err);
    assert_status(kvro_fs_create(fs, "/x//y/z.txt/", &err), KVRO_E_NOT_DIR, &err);
    assert_status(kvro_fs_create(fs, "x", &err), KVRO_E_EXISTS, &err);
    assert_status(kvro_fs_create(fs, "", &err), KVRO_E_EXISTS, &err);
    /* An existing file is not truncated by a second create. */
    assert_status(kvro_fs_create(fs, "file", &err), KVRO_E_EXISTS, &err);
    assert_host_pattern(t->root, "file", FILE_SEED, FILE_SIZE);

    assert_status(kvro_fs_create(fs, "file/x", &err), KVRO_E_NOT_DIR, &err);
    assert_status(kvro_fs_create(fs, "../x", &err), KVRO_E_BAD_KEY, &err);
    assert_host_absent(t->outer, "x");

    /* A name the host can not hold is refused, not reported missing. */
    char name[NAME_MAX + 2];
    memset(name, 'n', NAME_MAX + 1);
    name[NAME_MAX + 1] = '\0';
    char *nested = t_fmt("x/%s/f", name);
    assert_status(kvro_fs_create(fs, name, &err), KVRO_E_BAD_KEY, &err);
    assert_status(kvro_fs_create(fs, nested, &err), KVRO_E_BAD_KEY, &err);
    assert_status(kvro_fs_mkdir(fs, nested, &err), KVRO_E_BAD_KEY, &err);
    assert_status(kvro_fs_size(fs, name, &size, &err), KVRO_E_NOT_FOUND, &err);
    name[NAME_MAX] = '\0'; /* the longest that fits */
    assert_status(kvro_fs_create(fs, name, &err), KVRO_OK, &err);
    assert_host_kind(t->root, name, S_IFREG);
    free(nested);

    size = -1;
    assert_status(kvro_fs_size(fs, "x/y/z.txt", &size, &err), KVRO_OK, &err);
    assert_int_equal(size, 0);
    assert_status(kvro_fs_size(fs, "x/y/z.txt", NULL, &err), KVRO_E_INVALID, &err);
    assert_string_equal(err.source, t->root);
    assert_string_equal(err.key, "x/y/z.txt");
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
}

static void test_fs_mkdir(void **state)
{
    tree *t = *state;
    kvro_fs *fs = open_fs(t, KVRO_FS_RDWR);
    kvro_error err;
    assert_status(kvro_fs_mkdir(fs, "m/n/o", &err), KVRO_OK, &err);
    assert_host_kind(t->root, "m", S_IFDIR);
    assert_host_kind(t->root, "m/n", S_IFDIR);
    assert_host_kind(t->root, "m/n/o", S_IFDIR);
    assert_status(kvro_fs_mkdir(fs, "m/n/o", &err), KVRO_OK, &err);
    assert_status(kvro_fs_mkdir(fs, "m", &err), KVRO_OK, &err);
    assert_status(kvro_fs_mkdir(fs, "", &err), KVRO_OK, &err);
    assert_host_kind(t->root, "m/n/o", S_IFDIR);

    assert_status(kvro_fs_mkdir(fs, "file", &err), KVRO_E_EXISTS, &err);
    assert_host_kind(t->root, "file", S_IFREG);
    assert_host_pattern(t->root, "file", FILE_SEED, FILE_SIZE);
    assert_status(kvro_fs_mkdir(fs, "file/d", &err), KVRO_E_NOT_DIR, &err);
    assert_host_absent(t->root, "file/d");

    /* A link to a directory inside is that directory. */
    assert_status(kvro_fs_mkdir(fs, "rel_dir", &err), KVRO_OK, &err);
    assert_host_kind(t->root, "rel_dir", S_IFLNK);
    assert_status(kvro_fs_mkdir(fs, "rel_dir/new", &err), KVRO_OK, &err);
    assert_host_kind(t->root, "sub/new", S_IFDIR);
    assert_status(kvro_fs_mkdir(fs, "../m", &err), KVRO_E_BAD_KEY, &err);
    assert_host_absent(t->outer, "m");
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
}

static void test_fs_write(void **state)
{
    tree *t = *state;
    kvro_fs *fs = open_fs(t, KVRO_FS_RDWR);
    kvro_error err;
    assert_status(kvro_fs_create(fs, "w", &err), KVRO_OK, &err);
    assert_status(kvro_fs_write(fs, "w", 0, "hello", 5, &err), KVRO_OK, &err);
    assert_host_content(t->root, "w", "hello", 5);

    /* Past the end: the gap reads as zeros. */
    assert_status(kvro_fs_write(fs, "w", 10, "XY", 2, &err), KVRO_OK, &err);
    assert_host_content(t->root, "w", "hello\0\0\0\0\0XY", 12);

    /* In the middle: overwritten, not inserted. */
    assert_status(kvro_fs_write(fs, "w", 1, "AB", 2, &err), KVRO_OK, &err);
    static const char want[] = "hABlo\0\0\0\0\0XY";
    assert_host_content(t->root, "w", want, 12);
    char buf[32];
    memset(buf, '#', sizeof buf);
    int64_t n = -1;
    assert_status(kvro_fs_read(fs, "w", 0, sizeof buf, buf, &n, &err), KVRO_OK, &err);
    assert_int_equal(n, 12);
    assert_memory_equal(buf, want, 12);
    assert_int_equal(buf[12], '#');

    assert_status(kvro_fs_write(fs, "missing", 0, "x", 1, &err), KVRO_E_NOT_FOUND, &err);
    assert_host_absent(t->root, "missing");
    assert_status(kvro_fs_write(fs, "sub", 0, "x", 1, &err), KVRO_E_IS_DIR, &err);
    assert_status(kvro_fs_write(fs, "w", -1, "x", 1, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_fs_write(fs, "w", 0, "x", -1, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_fs_write(fs, "w", 0, NULL, 1, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_fs_write(fs, "w", INT64_MAX, "xy", 2, &err), KVRO_E_INVALID, &err);
    assert_host_content(t->root, "w", want, 12);

    /* A large write at an odd offset lands byte for byte. */
    size_t big = 1024 * 1024 + 3;
    unsigned char *data = malloc(big + 4095);
    assert_non_null(data);
    memset(data, 0, 4095);
    for (size_t i = 0; i < big; i++)
        data[4095 + i] = t_pattern(7, i);
    assert_status(kvro_fs_create(fs, "big", &err), KVRO_OK, &err);
    assert_status(kvro_fs_write(fs, "big", 4095, data + 4095, (int64_t)big, &err), KVRO_OK, &err);
    assert_host_content(t->root, "big", data, big + 4095);
    free(data);
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
}

static void test_fs_destroy(void **state)
{
    tree *t = *state;
    kvro_fs *fs = open_fs(t, KVRO_FS_RDWR);
    kvro_error err;
    assert_status(kvro_fs_destroy(fs, "file", &err), KVRO_OK, &err);
    assert_host_absent(t->root, "file");
    assert_status(kvro_fs_destroy(fs, "file", &err), KVRO_E_NOT_FOUND, &err);

    assert_status(kvro_fs_destroy(fs, "sub", &err), KVRO_E_NOT_EMPTY, &err);
    assert_host_kind(t->root, "sub", S_IFDIR);
    assert_host_kind(t->root, "sub/inner", S_IFREG);

    char *e = in(t->root, "e");
    assert_int_equal(mkdir(e, 0755), 0);
    free(e);
    assert_status(kvro_fs_destroy(fs, "e", &err), KVRO_OK, &err);
    assert_host_absent(t->root, "e");

    assert_status(kvro_fs_destroy(fs, "", &err), KVRO_E_INVALID, &err);
    assert_status(kvro_fs_destroy(fs, "/", &err), KVRO_E_INVALID, &err);
    assert_host_kind(t->outer, "root", S_IFDIR);
    assert_status(kvro_fs_destroy(fs, "missing", &err), KVRO_E_NOT_FOUND, &err);
    assert_status(kvro_fs_destroy(fs, "missing/x", &err), KVRO_E_NOT_FOUND, &err);
    assert_status(kvro_fs_destroy(fs, "../outside", &err), KVRO_E_BAD_KEY, &err);
    assert_host_content(t->outer, "outside", SECRET, strlen(SECRET));

    /* Destroying a link removes the link, never what it leads to. */
    assert_status(kvro_fs_destroy(fs, "sub/up", &err), KVRO_OK, &err);
    assert_host_absent(t->root, "sub/up");
    assert_host_content(t->outer, "outside", SECRET, strlen(SECRET));
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
}

static void test_fs_rename(void **state)
{
    tree *t = *state;
    kvro_fs *fs = open_fs(t, KVRO_FS_RDWR);
    kvro_error err;
    assert_status(kvro_fs_create(fs, "new", &err), KVRO_OK, &err);
    assert_status(kvro_fs_write(fs, "new", 0, "fresh", 5, &err), KVRO_OK, &err);
    /* Over an existing file: replaced. */
    assert_status(kvro_fs_rename(fs, "new", "file", &err), KVRO_OK, &err);
    assert_host_absent(t->root, "new");
    assert_host_content(t->root, "file", "fresh", 5);
    /* Into another directory; into a missing one. */
    assert_status(kvro_fs_rename(fs, "file", "sub/moved", &err), KVRO_OK, &err);
    assert_host_content(t->root, "sub/moved", "fresh", 5);
    assert_status(kvro_fs_rename(fs, "sub/moved", "nowhere/x", &err), KVRO_E_NOT_FOUND, &err);
    assert_host_content(t->root, "sub/moved", "fresh", 5);
    /* A directory is never replaced; one moves to a free name, not into
     * itself. */
    assert_status(kvro_fs_rename(fs, "sub/moved", "sub", &err), KVRO_E_IS_DIR, &err);
    assert_status(kvro_fs_mkdir(fs, "d1/d2", &err), KVRO_OK, &err);
    assert_status(kvro_fs_rename(fs, "d1", "d1/d2/in", &err), KVRO_E_INVALID, &err);
    assert_status(kvro_fs_rename(fs, "d1", "sub", &err), KVRO_E_EXISTS, &err);
    assert_status(kvro_fs_rename(fs, "d1", "sub/d1moved", &err), KVRO_OK, &err);
    assert_host_kind(t->root, "sub/d1moved/d2", S_IFDIR);
    assert_host_absent(t->root, "d1");
    assert_host_kind(t->root, "sub", S_IFDIR);
    assert_status(kvro_fs_rename(fs, "missing", "x", &err), KVRO_E_NOT_FOUND, &err);
    assert_status(kvro_fs_rename(fs, "sub/moved", "", &err), KVRO_E_INVALID, &err);
    assert_status(kvro_fs_rename(fs, "sub/moved", "x/", &err), KVRO_E_NOT_DIR, &err);
    /* Never out of the root, either way. */
    assert_status(kvro_fs_rename(fs, "sub/moved", "../outside", &err), KVRO_E_BAD_KEY, &err);
    assert_status(kvro_fs_rename(fs, "sub/moved", "outrel/there", &err), KVRO_E_LINK, &err);
    assert_status(kvro_fs_rename(fs, "outrel/there", "stolen", &err), KVRO_E_LINK, &err);
    assert_host_content(t->outer, "outside", SECRET, strlen(SECRET));
    assert_host_content(t->outer, "outdir/there", SECRET, strlen(SECRET));
    assert_host_absent(t->root, "stolen");
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
    fs = open_fs(t, KVRO_FS_RDONLY);
    assert_status(kvro_fs_rename(fs, "sub/moved", "back", &err), KVRO_E_READ_ONLY, &err);
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
}

static void test_fs_read_only(void **state)
{
    tree *t = *state;
    kvro_fs *fs = open_fs(t, KVRO_FS_RDONLY);
    kvro_error err;
    assert_status(kvro_fs_create(fs, "new", &err), KVRO_E_READ_ONLY, &err);
    assert_host_absent(t->root, "new");
    assert_status(kvro_fs_mkdir(fs, "newdir", &err), KVRO_E_READ_ONLY, &err);
    assert_host_absent(t->root, "newdir");
    assert_status(kvro_fs_write(fs, "file", 0, "x", 1, &err), KVRO_E_READ_ONLY, &err);
    assert_host_pattern(t->root, "file", FILE_SEED, FILE_SIZE);
    assert_status(kvro_fs_destroy(fs, "file", &err), KVRO_E_READ_ONLY, &err);
    assert_host_kind(t->root, "file", S_IFREG);
    assert_string_equal(err.key, "file");
    assert_string_equal(err.source, t->root);

    kvro_info st;
    assert_status(kvro_fs_stat(fs, "file", &st, &err), KVRO_OK, &err);
    assert_true(st.read_only);
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);

    fs = open_fs(t, KVRO_FS_RDWR);
    assert_status(kvro_fs_stat(fs, "file", &st, &err), KVRO_OK, &err);
    assert_false(st.read_only);
    assert_true(st.has_mode);
    struct stat hs;
    assert_int_equal(host_lstat(t->root, "file", &hs), 0);
    assert_int_equal(st.mode, hs.st_mode & 07777);
    assert_int_equal(st.mtime, hs.st_mtim.tv_sec);
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
}

/* Nothing is written, made or removed outside the root through a link. */
static void test_fs_escaping_writes(void **state)
{
    tree *t = *state;
    kvro_fs *fs = open_fs(t, KVRO_FS_RDWR);
    kvro_error err;
    assert_status(kvro_fs_create(fs, "outrel/new", &err), KVRO_E_LINK, &err);
    assert_status(kvro_fs_create(fs, "outabs/new", &err), KVRO_E_LINK, &err);
    assert_host_absent(t->outer, "outdir/new");
    assert_status(kvro_fs_mkdir(fs, "outabs/d/e", &err), KVRO_E_LINK, &err);
    assert_status(kvro_fs_mkdir(fs, "outrel", &err), KVRO_E_LINK, &err);
    assert_host_absent(t->outer, "outdir/d");
    assert_status(kvro_fs_write(fs, "sub/up", 0, "pwned", 5, &err), KVRO_E_LINK, &err);
    assert_status(kvro_fs_write(fs, "abs_outside", 0, "pwned", 5, &err), KVRO_E_LINK, &err);
    assert_status(kvro_fs_write(fs, "outrel/there", 0, "pwned", 5, &err), KVRO_E_LINK, &err);
    assert_host_content(t->outer, "outside", SECRET, strlen(SECRET));
    assert_host_content(t->outer, "outdir/there", SECRET, strlen(SECRET));
    assert_status(kvro_fs_destroy(fs, "outrel/there", &err), KVRO_E_LINK, &err);
    assert_status(kvro_fs_destroy(fs, "outabs/there", &err), KVRO_E_LINK, &err);
    assert_host_kind(t->outer, "outdir/there", S_IFREG);
    assert_status(kvro_fs_create(fs, "link_etc/kvro-test", &err), KVRO_E_LINK, &err);
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
}

/* A KV_RO view of a writable FS sees what was written. */
static void test_fs_writes_seen_by_kv(void **state)
{
    tree *t = *state;
    kvro_fs *fs = open_fs(t, KVRO_FS_RDWR);
    kvro *kv = NULL;
    kvro_error err;
    assert_status(kvro_of_fs(fs, 0, &kv, &err), KVRO_OK, &err);
    assert_status(kvro_fs_create(fs, "sub/new", &err), KVRO_OK, &err);
    assert_status(kvro_fs_write(fs, "sub/new", 0, "fresh", 5, &err), KVRO_OK, &err);
    char buf[8];
    int64_t n = -1;
    assert_status(kvro_read(kv, "sub/new", 0, sizeof buf, buf, &n, &err), KVRO_OK, &err);
    assert_int_equal(n, 5);
    assert_memory_equal(buf, "fresh", 5);
    static const want_entry sub[] = {
        {"back", KVRO_KIND_FILE}, {"inner", KVRO_KIND_FILE}, {"new", KVRO_KIND_FILE}};
    check_list(kv, "sub", sub, 3);
    kvro_close(kv);
    /* The borrowed FS is still usable after the view is gone. */
    assert_status(kvro_fs_destroy(fs, "sub/new", &err), KVRO_OK, &err);
    assert_host_absent(t->root, "sub/new");
    assert_status(kvro_fs_close(fs, &err), KVRO_OK, &err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_traversal_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links_leading_out, setup, teardown),
        cmocka_unit_test_setup_teardown(test_link_loops, setup, teardown),
        cmocka_unit_test_setup_teardown(test_links_inside, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listing_omits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fifo, setup, teardown),
        cmocka_unit_test_setup_teardown(test_root_through_link, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_info_one_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_through_links, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fs_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fs_mkdir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fs_write, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fs_destroy, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fs_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fs_read_only, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fs_escaping_writes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fs_writes_seen_by_kv, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
