/*
 * test_conformance.c — the one KV_RO conformance suite, run against every
 * backend in the table below. Each backend turns the reference tree (a
 * host directory made from REF) into its kind of source and opens it; every
 * check then compares what the handle says with REF, never with the disk.
 *
 * A new backend joins with one line in BACKENDS, e.g. {"tar", make_tar},
 * where make_tar packs REFDIR with the real tar into its WORKDIR and opens
 * the archive. An image backend runs once per kind of I/O object (a path,
 * a descriptor borrowed and owned, memory, a window at an odd offset of a
 * memory buffer and of a file with junk around the image, the caller's
 * callbacks): IMAGE_ROWS. KVRO_CONFORMANCE_ONLY=name runs only that row
 * (e.g. "tar.gz/window-file").
 */
#include "support.h"

#include <kvro/crunch.h>
#include <kvro/kvro.h>

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"

/* ------------------------------------------------------- reference tree */

#define MIB (1024 * 1024)
#define X10 "0123456789"
#define X50 X10 X10 X10 X10 X10
#define NAME200 X50 X50 X50 X50

typedef struct ref_entry {
    const char *key;
    kvro_kind kind;
    int64_t size;  /* files */
    uint64_t seed; /* files: content is t_pattern(seed, i) */
} ref_entry;

/* Parents come before children; the root is implicit. */
static const ref_entry REF[] = {
    {"empty", KVRO_KIND_FILE, 0, 1},
    {"one", KVRO_KIND_FILE, 1, 2},
    {"b4095", KVRO_KIND_FILE, 4095, 3},
    {"b4096", KVRO_KIND_FILE, 4096, 4},
    {"b4097", KVRO_KIND_FILE, 4097, 5},
    {"big", KVRO_KIND_FILE, MIB + 3, 6},
    {"a", KVRO_KIND_DIR, 0, 0},
    {"a/b", KVRO_KIND_DIR, 0, 0},
    {"a/b/c", KVRO_KIND_DIR, 0, 0},
    {"a/b/c/file", KVRO_KIND_FILE, 100, 7},
    {"a/b/sibling", KVRO_KIND_FILE, 7, 8},
    {"ab", KVRO_KIND_FILE, 9, 9}, /* shares a prefix with "a" */
    {"emptydir", KVRO_KIND_DIR, 0, 0},
    {"données", KVRO_KIND_DIR, 0, 0},
    {"données/été.txt", KVRO_KIND_FILE, 33, 10},
    {"日本語.txt", KVRO_KIND_FILE, 12, 11},
    {"long", KVRO_KIND_DIR, 0, 0},
    {"long/" NAME200, KVRO_KIND_FILE, 50, 12},
    /* strcmp order is B Z _x a é; a locale would say a B é _x Z. */
    {"order", KVRO_KIND_DIR, 0, 0},
    {"order/a", KVRO_KIND_FILE, 3, 13},
    {"order/B", KVRO_KIND_FILE, 2, 14},
    {"order/é", KVRO_KIND_FILE, 5, 15},
    {"order/Z", KVRO_KIND_DIR, 0, 0},
    {"order/_x", KVRO_KIND_FILE, 4, 16},
};
#define NREF (sizeof REF / sizeof REF[0])

static const ref_entry *ref_find(const char *key)
{
    for (size_t i = 0; i < NREF; i++)
        if (strcmp(REF[i].key, key) == 0)
            return &REF[i];
    return NULL;
}

/* Whether table key K is a direct child of directory DIR ("" = root). */
static const char *child_name(const char *k, const char *dir)
{
    size_t n = strlen(dir);
    if (n) {
        if (strncmp(k, dir, n) != 0 || k[n] != '/')
            return NULL;
        k += n + 1;
    }
    return strchr(k, '/') ? NULL : k;
}

static void make_ref_tree(const char *root)
{
    for (size_t i = 0; i < NREF; i++) {
        char *p = t_join(root, REF[i].key);
        if (REF[i].kind == KVRO_KIND_DIR)
            t_mkdirs(p);
        else
            t_write_pattern(p, REF[i].seed, (uint64_t)REF[i].size);
        free(p);
    }
}

/* ------------------------------------------------------------- backends */

typedef struct backend backend;

/* The images the image rows read: packed by GNU tar (and gzip -n), or
 * made by mkfs.fat and filled by mcopy. */
enum { FMT_TAR, FMT_TARGZ, FMT_FAT12, FMT_FAT16, FMT_FAT32, FMT_COUNT };
typedef kvro_status (*maker_fn)(const backend *b, const char *refdir, const char *workdir,
                                kvro **kv, kvro_error *err);

/* What an image row reads its archive through. */
typedef enum via {
    VIA_PATH,          /* kvro_open_opts(path) */
    VIA_IO_PATH,       /* kvro_io_open_path */
    VIA_FD,            /* kvro_io_from_fd, borrowed */
    VIA_FD_OWNED,      /* kvro_io_from_fd, KVRO_IO_OWN_FD */
    VIA_MEMORY,        /* kvro_io_from_memory over the whole file */
    VIA_WINDOW_MEMORY, /* kvro_io_window of a memory object, junk around the archive */
    VIA_WINDOW_FILE,   /* kvro_io_window of a file object, junk around the archive */
    VIA_CALLBACKS,     /* the caller's callbacks (t_fault, short reads, no faults) */
} via;

struct backend {
    const char *name;
    /* Builds a source from REFDIR (in WORKDIR, which is this backend's own
     * and lives for the whole run, so a maker may reuse what it built) and
     * opens it. */
    maker_fn make;
    /* Optional: runs after kvro_close; non-zero fails the test. */
    int (*done)(const backend *b);
    int fmt; /* image rows: which image (FMT_*) */
    via how; /* image rows: what the archive is read through */
};

static kvro_status make_dir(const backend *b, const char *refdir, const char *workdir, kvro **kv,
                            kvro_error *err)
{
    (void)b;
    (void)workdir;
    return kvro_open(refdir, kv, err);
}

static kvro_status make_fs_adaptor(const backend *b, const char *refdir, const char *workdir,
                                   kvro **kv, kvro_error *err)
{
    (void)b;
    (void)workdir;
    kvro_fs *fs = NULL;
    kvro_status s = kvro_fs_open(refdir, KVRO_FS_RDONLY, NULL, &fs, err);
    if (s != KVRO_OK)
        return s;
    s = kvro_of_fs(fs, KVRO_OF_FS_OWN, kv, err);
    if (s != KVRO_OK)
        kvro_fs_close(fs, NULL);
    return s;
}

/* The borrowed FS must outlive the handle, so it waits here for done(). */
static kvro_fs *borrowed_fs;

static kvro_status make_fs_borrowed(const backend *b, const char *refdir, const char *workdir,
                                    kvro **kv, kvro_error *err)
{
    (void)b;
    (void)workdir;
    kvro_status s = kvro_fs_open(refdir, KVRO_FS_RDONLY, NULL, &borrowed_fs, err);
    if (s == KVRO_OK)
        s = kvro_of_fs(borrowed_fs, 0, kv, err);
    return s;
}

static int done_fs_borrowed(const backend *b)
{
    (void)b;
    kvro_fs_close(borrowed_fs, NULL);
    borrowed_fs = NULL;
    return 0;
}

/* The crunch rows: REFDIR crunched by the real mkkv into C (fmt 1: with
 * --incbin, the data in ref1.bin), compiled by cc into a shared object and
 * dlopen()ed once a run; the table in it is opened as a program opens its
 * own. (--compress has no row: REF's bytes are random, no block shrinks,
 * and the table would be the plain one; tests/test_crunch.c reads
 * compressed tables at every block boundary.) */
#if defined(__SANITIZE_ADDRESS__)
#define CRUNCH_SAN " -fsanitize=address,undefined"
#elif defined(__SANITIZE_THREAD__)
#define CRUNCH_SAN " -fsanitize=thread"
#else
#define CRUNCH_SAN ""
#endif
static void *crunch_so[2];

static kvro_status make_crunch(const backend *b, const char *refdir, const char *workdir,
                               kvro **kv, kvro_error *err)
{
    int z = b->fmt;
    if (!crunch_so[z]) {
        char *cmd = t_fmt("cd '%s' && '%s' crunch -q --name ref %s '%s' ref%d.c && cc -shared "
                          "-fPIC -O1" CRUNCH_SAN " -I'" KVRO_TEST_SOURCE_DIR "/kvro/include' "
                          "-I. ref%d.c -o ref%d.so",
                          workdir, KVRO_TEST_MKKV, z ? "--incbin" : "", refdir, z, z, z);
        char *out = NULL, *errs = NULL;
        int rc = t_run(cmd, &out, &errs);
        if (rc)
            fprintf(stderr, "# %s\n%s%s", cmd, out, errs);
        free(cmd);
        free(out);
        free(errs);
        if (rc)
            return kvro_error_set(err, KVRO_E_IO, "crunching or compiling failed");
        char *so = t_fmt("%s/ref%d.so", workdir, z);
        crunch_so[z] = dlopen(so, RTLD_NOW | RTLD_LOCAL);
        free(so);
        if (!crunch_so[z])
            return kvro_error_set(err, KVRO_E_IO, "dlopen: %s", dlerror());
    }
    const kvro_crunch *t = dlsym(crunch_so[z], "ref");
    if (!t)
        return kvro_error_set(err, KVRO_E_IO, "dlsym: %s", dlerror());
    return kvro_open_crunch(t, kv, err);
}

/* The archives GNU tar (and gzip -n) pack from REFDIR, once a run, in
 * ARCHIVES; each also as a memory image, and wrapped in junk (JUNK_BEFORE
 * bytes before it, JUNK_AFTER after) in memory and in a file. */
#define JUNK_BEFORE 4999 /* not a multiple of a tar block, nor of a page */
#define JUNK_AFTER 1234
static char *archives;

typedef struct image {
    char *path, *padded_path;
    unsigned char *bytes, *padded;
    size_t len;
} image;
static image images[FMT_COUNT];

/* The mkfs.fat command for FAT12, 16, 32 images of the reference tree. */
static char *fat_command(const char *refdir, int fmt, const char *img)
{
    /* mtools tells FAT32 by cluster count: it needs 65525 to fill one. */
    static const char *const how[] = {"-F 12 -C '%s' 4096", "-F 16 -s 1 -C '%s' 8192",
                                      "-F 32 -s 1 -C '%s' 34000"};
    char *mkfs = t_fmt(how[fmt - FMT_FAT12], img);
    char *cmd = t_fmt("mkfs.fat %s >/dev/null 2>&1 && cd '%s' && MTOOLS_SKIP_CHECK=1 "
                      "mcopy -s -i '%s' * ::",
                      mkfs, refdir, img);
    free(mkfs);
    return cmd;
}

static kvro_status archive_of(const char *refdir, int fmt, const image **out, kvro_error *err)
{
    image *im = &images[fmt];
    bool gz = fmt == FMT_TARGZ;
    if (!im->path) {
        int bits = fmt == FMT_FAT12 ? 12 : fmt == FMT_FAT16 ? 16 : 32;
        char *tar = fmt >= FMT_FAT12 ? t_fmt("%s/ref.fat%d", archives, bits)
                                     : t_join(archives, "ref.tar");
        char *cmd = fmt >= FMT_FAT12 ? fat_command(refdir, fmt, tar)
                    : gz ? t_fmt("tar -C '%s' --format=gnu -cf - . | gzip -n > '%s.gz'", refdir, tar)
                         : t_fmt("tar -C '%s' --format=gnu -cf '%s' .", refdir, tar);
        int rc = t_run(cmd, NULL, NULL);
        free(cmd);
        if (rc != 0) {
            free(tar);
            return kvro_error_set(err, KVRO_E_IO, "cannot pack the reference tree");
        }
        im->path = gz ? t_fmt("%s.gz", tar) : strdup(tar);
        free(tar);
        im->bytes = (unsigned char *)t_slurp(im->path, &im->len);
        im->padded = malloc(JUNK_BEFORE + im->len + JUNK_AFTER);
        for (size_t i = 0; i < JUNK_BEFORE + im->len + JUNK_AFTER; i++)
            im->padded[i] = t_pattern(99, i);
        memcpy(im->padded + JUNK_BEFORE, im->bytes, im->len);
        im->padded_path = t_fmt("%s.padded", im->path);
        t_write(im->padded_path, im->padded, JUNK_BEFORE + im->len + JUNK_AFTER);
    }
    *out = im;
    return KVRO_OK;
}

static void images_free(void)
{
    for (int i = 0; i < FMT_COUNT; i++) {
        free(images[i].path);
        free(images[i].padded_path);
        free(images[i].bytes);
        free(images[i].padded);
    }
    memset(images, 0, sizeof images);
}

/* What an open holds until done(): a borrowed descriptor, an owned one
 * (to see it closed), the callbacks' t_fault. */
static int held_fd = -1, owned_fd = -1;
static t_fault held_fault;

/* The I/O object for image row B, or NULL with ERR set. */
static kvro_io *image_io(const backend *b, const image *im, kvro_error *err)
{
    kvro_io *io = NULL, *base = NULL;
    int fd;
    switch (b->how) {
    case VIA_PATH: break;
    case VIA_IO_PATH: kvro_io_open_path(im->path, KVRO_IO_RDONLY, &io, err); break;
    case VIA_FD:
    case VIA_FD_OWNED:
        fd = open(im->path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            kvro_error_set(err, KVRO_E_IO, "cannot open %s", im->path);
            break;
        }
        if (b->how == VIA_FD)
            held_fd = fd;
        else
            owned_fd = fd;
        kvro_io_from_fd(fd, b->how == VIA_FD ? 0 : KVRO_IO_OWN_FD, &io, err);
        break;
    case VIA_MEMORY: kvro_io_from_memory(im->bytes, im->len, &io, err); break;
    case VIA_WINDOW_MEMORY:
        if (kvro_io_from_memory(im->padded, JUNK_BEFORE + im->len + JUNK_AFTER, &base, err) ==
            KVRO_OK)
            kvro_io_window(base, JUNK_BEFORE, (int64_t)im->len, &io, err);
        break;
    case VIA_WINDOW_FILE:
        if (kvro_io_open_path(im->padded_path, KVRO_IO_RDONLY, &base, err) == KVRO_OK)
            kvro_io_window(base, JUNK_BEFORE, (int64_t)im->len, &io, err);
        break;
    case VIA_CALLBACKS:
        t_fault_init(&held_fault);
        held_fault.max_read = 4099; /* every read comes in short pieces */
        io = t_fault_memory(&held_fault, im->bytes, im->len, "ref callbacks");
        break;
    }
    kvro_io_close(base); /* the window holds its own reference */
    return io;
}

/* An image row: the archive, opened through B's kind of I/O object. The
 * .tar.gz keeps its index in WORKDIR: the first setup builds it, the
 * others load it (and the user's ~/.cache is left alone). */
static kvro_status make_image(const backend *b, const char *refdir, const char *workdir, kvro **kv,
                              kvro_error *err)
{
    const image *im = NULL;
    kvro_status s = archive_of(refdir, b->fmt, &im, err);
    if (s != KVRO_OK)
        return s;
    char *idx = t_join(workdir, "ref.idx");
    kvro_options o = {.index_path = idx};
    if (b->how == VIA_PATH) {
        s = kvro_open_opts(im->path, &o, kv, err);
    } else {
        kvro_io *io = image_io(b, im, err);
        s = io ? kvro_open_io(io, &o, kv, err) : err->status;
        /* The handle holds its own reference. */
        if (s == KVRO_OK && strcmp(kvro_source(*kv), kvro_io_name(io)) != 0)
            s = kvro_error_set(err, KVRO_E_INVALID, "source '%s', not the object's name '%s'",
                               kvro_source(*kv), kvro_io_name(io));
        kvro_io_close(io);
    }
    free(idx);
    return s;
}

/* A borrowed descriptor outlives the handle, an owned one does not (its
 * number can not have been reused: nothing was opened since kvro_close),
 * and the callbacks are closed exactly once, at kvro_close. */
static int done_image(const backend *b)
{
    int rc = 0;
    if (owned_fd >= 0 && fcntl(owned_fd, F_GETFD) != -1) {
        fprintf(stderr, "%s: the owned descriptor outlived the handle\n", b->name);
        rc = -1;
    }
    owned_fd = -1;
    if (held_fd >= 0) {
        if (fcntl(held_fd, F_GETFD) == -1) {
            fprintf(stderr, "%s: the borrowed descriptor was closed\n", b->name);
            rc = -1;
        } else {
            close(held_fd);
        }
        held_fd = -1;
    }
    if (b->how == VIA_CALLBACKS && atomic_load(&held_fault.closes) != 1) {
        fprintf(stderr, "%s: the callbacks were closed %d times\n", b->name,
                atomic_load(&held_fault.closes));
        rc = -1;
    }
    return rc;
}

#define IMAGE_ROWS(name, fmt)                                                                      \
    {name, make_image, done_image, fmt, VIA_PATH},                                                 \
        {name "/io-path", make_image, done_image, fmt, VIA_IO_PATH},                               \
        {name "/fd", make_image, done_image, fmt, VIA_FD},                                         \
        {name "/fd-owned", make_image, done_image, fmt, VIA_FD_OWNED},                             \
        {name "/memory", make_image, done_image, fmt, VIA_MEMORY},                                 \
        {name "/window-memory", make_image, done_image, fmt, VIA_WINDOW_MEMORY},                   \
        {name "/window-file", make_image, done_image, fmt, VIA_WINDOW_FILE},                       \
        {name "/callbacks", make_image, done_image, fmt, VIA_CALLBACKS}

static const backend BACKENDS[] = {
    {"dir", make_dir, NULL, false, VIA_PATH},
    {"fs-adaptor", make_fs_adaptor, NULL, false, VIA_PATH},
    {"fs-adaptor-borrowed", make_fs_borrowed, done_fs_borrowed, false, VIA_PATH},
    IMAGE_ROWS("tar", FMT_TAR),
    IMAGE_ROWS("tar.gz", FMT_TARGZ),
    IMAGE_ROWS("fat12", FMT_FAT12),
    IMAGE_ROWS("fat16", FMT_FAT16),
    IMAGE_ROWS("fat32", FMT_FAT32),
    {"crunch", make_crunch, NULL, 0, VIA_PATH},
    {"crunch-incbin", make_crunch, NULL, 1, VIA_PATH},
};

static char *refdir;

typedef struct fixture {
    const backend *b;
    char *workdir;
    kvro *kv;
} fixture;

static int setup(void **state)
{
    fixture *f = *state;
    kvro_error err;
    memset(&err, 0, sizeof err);
    f->kv = NULL;
    kvro_status s = f->b->make(f->b, refdir, f->workdir, &f->kv, &err);
    if (s != KVRO_OK || !f->kv) {
        char msg[1400];
        kvro_error_format(&err, msg, sizeof msg);
        fprintf(stderr, "%s: cannot make the source: %s\n", f->b->name, msg);
        kvro_close(f->kv);
        f->kv = NULL;
        if (f->b->done)
            f->b->done(f->b);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    kvro_close(f->kv);
    f->kv = NULL;
    return f->b->done ? f->b->done(f->b) : 0;
}

static kvro *KV(void **state)
{
    return ((fixture *)*state)->kv;
}

/* -------------------------------------------------------------- helpers */

/* A key of TOTAL bytes that normalises to KEY: '/' padding in front. */
static char *padded_key(const char *key, size_t total)
{
    size_t n = strlen(key);
    char *k = malloc(total + 1);
    assert_non_null(k);
    memset(k, '/', total - n);
    memcpy(k + total - n, key, n + 1);
    return k;
}

typedef struct listing {
    size_t n;
    char *names[64];
    kvro_kind kinds[64];
    size_t stop_after; /* 0: never stop */
} listing;

static int collect(void *arg, const char *name, kvro_kind kind)
{
    listing *l = arg;
    if (l->n < 64) {
        l->names[l->n] = strdup(name);
        l->kinds[l->n] = kind;
    }
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

static void listing_free(listing *l)
{
    for (size_t i = 0; i < l->n && i < 64; i++)
        free(l->names[i]);
    memset(l, 0, sizeof *l);
}

static int by_strcmp(const void *a, const void *b)
{
    return strcmp((*(const ref_entry *const *)a)->key, (*(const ref_entry *const *)b)->key);
}

/* Lists DIR and compares with REF's children of NORM, in strcmp order. */
static void check_listing(kvro *kv, const char *dir, const char *norm)
{
    const ref_entry *want[NREF];
    const char *want_name[NREF];
    size_t nwant = 0;
    for (size_t i = 0; i < NREF; i++)
        if (child_name(REF[i].key, norm))
            want[nwant++] = &REF[i];
    /* Siblings share a parent, so sorting full keys sorts names. */
    qsort(want, nwant, sizeof want[0], by_strcmp);
    for (size_t i = 0; i < nwant; i++)
        want_name[i] = child_name(want[i]->key, norm);

    listing l = {0};
    kvro_error err;
    assert_status(kvro_list(kv, dir, collect, &l, &err), KVRO_OK, &err);
    if (l.n != nwant)
        fail_msg("list '%s': %zu entries, want %zu", dir, l.n, nwant);
    for (size_t i = 0; i < nwant; i++) {
        if (strcmp(l.names[i], want_name[i]) != 0)
            fail_msg("list '%s' [%zu]: '%s', want '%s'", dir, i, l.names[i], want_name[i]);
        assert_int_equal(l.kinds[i], want[i]->kind);
    }
    listing_free(&l);
}

/* ---------------------------------------------------------------- tests */

/* Missing keys, some a prefix or an extension of one that exists, one with
 * a name longer than most file systems allow. */
static const char *const MISSING[] = {
    "nope",       "a/nope",    "a/b/c/nope",
    "emptydir/x", "abc",       "a/b/c/d/e",
    "b409",       "a/b/c/fil", "long/" NAME200 NAME200,
};
/* A path through a file is not a key either. */
static const char *const THROUGH_FILE[] = {"one/x", "a/b/c/file/child", "big/a/b", "empty/x"};

static void test_mem(void **state)
{
    kvro *kv = KV(state);
    kvro_error err;
    bool present;
    for (size_t i = 0; i < NREF; i++) {
        present = false;
        assert_status(kvro_mem(kv, REF[i].key, &present, &err), KVRO_OK, &err);
        if (!present)
            fail_msg("'%s' is missing", REF[i].key);
    }
    const char *roots[] = {"", "/", "//"};
    for (size_t i = 0; i < 3; i++) {
        present = false;
        assert_status(kvro_mem(kv, roots[i], &present, &err), KVRO_OK, &err);
        assert_true(present);
    }
    for (size_t i = 0; i < sizeof MISSING / sizeof MISSING[0]; i++) {
        present = true;
        assert_status(kvro_mem(kv, MISSING[i], &present, &err), KVRO_OK, &err);
        if (present)
            fail_msg("'%s' should be missing", MISSING[i]);
    }
    for (size_t i = 0; i < sizeof THROUGH_FILE / sizeof THROUGH_FILE[0]; i++) {
        present = true;
        assert_status(kvro_mem(kv, THROUGH_FILE[i], &present, &err), KVRO_OK, &err);
        if (present)
            fail_msg("'%s' should be missing", THROUGH_FILE[i]);
    }
    assert_status(kvro_mem(kv, "a", NULL, &err), KVRO_E_INVALID, &err);
}

static void test_size(void **state)
{
    kvro *kv = KV(state);
    kvro_error err;
    int64_t size;
    for (size_t i = 0; i < NREF; i++) {
        size = -1;
        kvro_status s = kvro_size(kv, REF[i].key, &size, &err);
        if (REF[i].kind == KVRO_KIND_DIR) {
            assert_status(s, KVRO_E_IS_DIR, &err);
            continue;
        }
        assert_status(s, KVRO_OK, &err);
        if (size != REF[i].size)
            fail_msg("size of '%s': %lld, want %lld", REF[i].key, (long long)size,
                     (long long)REF[i].size);
    }
    assert_status(kvro_size(kv, "", &size, &err), KVRO_E_IS_DIR, &err);
    assert_status(kvro_size(kv, "/", &size, &err), KVRO_E_IS_DIR, &err);
    assert_status(kvro_size(kv, "nope", &size, &err), KVRO_E_NOT_FOUND, &err);
    assert_status(kvro_size(kv, "a/b/nope", &size, &err), KVRO_E_NOT_FOUND, &err);
    assert_status(kvro_size(kv, "one/x", &size, &err), KVRO_E_NOT_DIR, &err);
    assert_status(kvro_size(kv, "one", NULL, &err), KVRO_E_INVALID, &err);
}

static void test_stat(void **state)
{
    kvro *kv = KV(state);
    kvro_error err;
    kvro_info st;
    for (size_t i = 0; i < NREF; i++) {
        memset(&st, 0xA5, sizeof st);
        assert_status(kvro_stat(kv, REF[i].key, &st, &err), KVRO_OK, &err);
        if (st.kind != REF[i].kind)
            fail_msg("'%s': kind %d, want %d", REF[i].key, st.kind, REF[i].kind);
        assert_int_equal(st.size, REF[i].kind == KVRO_KIND_FILE ? REF[i].size : 0);
        assert_true(st.mtime_nsec >= 0 && st.mtime_nsec < 1000000000);
        if (st.has_mode)
            assert_int_equal(st.mode & ~07777u, 0);
    }
    assert_status(kvro_stat(kv, "", &st, &err), KVRO_OK, &err);
    assert_int_equal(st.kind, KVRO_KIND_DIR);
    assert_int_equal(st.size, 0);
    assert_status(kvro_stat(kv, "nope", &st, &err), KVRO_E_NOT_FOUND, &err);
    assert_status(kvro_stat(kv, "big/x", &st, &err), KVRO_E_NOT_DIR, &err);
    assert_status(kvro_stat(kv, "a", NULL, &err), KVRO_E_INVALID, &err);
}

/* Reads [OFF, OFF+LEN) of file E and checks count, bytes and that nothing
 * past the count was written. */
static void check_read(kvro *kv, const char *key, const ref_entry *e, int64_t off, int64_t len)
{
    enum { CANARY = 0xA5, SLACK = 64 };
    unsigned char *buf = malloc((size_t)len + SLACK);
    assert_non_null(buf);
    memset(buf, CANARY, (size_t)len + SLACK);
    int64_t want = off >= e->size ? 0 : (len < e->size - off ? len : e->size - off);
    int64_t got = -1;
    kvro_error err;
    assert_status(kvro_read(kv, key, off, len, buf, &got, &err), KVRO_OK, &err);
    if (got != want)
        fail_msg("read '%s' @%lld+%lld: %lld bytes, want %lld", key, (long long)off, (long long)len,
                 (long long)got, (long long)want);
    for (int64_t i = 0; i < got; i++)
        if (buf[i] != t_pattern(e->seed, (uint64_t)(off + i)))
            fail_msg("read '%s' @%lld+%lld: byte %lld differs", key, (long long)off, (long long)len,
                     (long long)i);
    for (int64_t i = got; i < len + SLACK; i++)
        if (buf[i] != CANARY)
            fail_msg("read '%s' @%lld+%lld: wrote past nread at %lld", key, (long long)off,
                     (long long)len, (long long)i);
    free(buf);
}

static void test_read_ranges(void **state)
{
    kvro *kv = KV(state);
    for (size_t i = 0; i < NREF; i++) {
        const ref_entry *e = &REF[i];
        if (e->kind != KVRO_KIND_FILE)
            continue;
        const int64_t offs[] = {0,           1,    e->size / 2, e->size - 1,   e->size,
                                e->size + 1, 4095, 4096,        INT64_MAX - 1, INT64_MAX};
        const int64_t lens[] = {0, 1, 2, 4095, 4096, 4097, e->size + 100};
        for (size_t o = 0; o < sizeof offs / sizeof offs[0]; o++)
            for (size_t l = 0; l < sizeof lens / sizeof lens[0]; l++)
                if (offs[o] >= 0)
                    check_read(kv, e->key, e, offs[o], lens[l]);
    }
    /* Whole big file in one call, and a read that spans block edges. */
    const ref_entry *big = ref_find("big");
    check_read(kv, "big", big, 0, big->size);
    check_read(kv, "big", big, 4000, 3 * 4096 + 200);
    check_read(kv, "big", big, big->size - 5000, 10000);
}

static void test_read_errors(void **state)
{
    kvro *kv = KV(state);
    kvro_error err;
    char buf[16];
    int64_t n;
    for (size_t i = 0; i < NREF; i++) {
        if (REF[i].kind != KVRO_KIND_DIR)
            continue;
        n = 99;
        assert_status(kvro_read(kv, REF[i].key, 0, sizeof buf, buf, &n, &err), KVRO_E_IS_DIR, &err);
        assert_int_equal(n, 0);
    }
    n = 99;
    assert_status(kvro_read(kv, "/", 0, 1, buf, &n, &err), KVRO_E_IS_DIR, &err);
    assert_int_equal(n, 0);
    n = 99;
    assert_status(kvro_read(kv, "one", -1, 1, buf, &n, &err), KVRO_E_INVALID, &err);
    assert_int_equal(n, 0);
    assert_status(kvro_read(kv, "one", INT64_MIN, 1, buf, &n, &err), KVRO_E_INVALID, &err);
    /* Arguments are checked before the key is looked up. */
    assert_status(kvro_read(kv, "nope", -1, 1, buf, &n, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_read(kv, "a", 0, -1, buf, &n, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_read(kv, "one", 0, -1, buf, &n, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_read(kv, "one", 0, INT64_MIN, buf, &n, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_read(kv, "one", 0, 1, NULL, &n, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_read(kv, "one", 0, 1, buf, NULL, &err), KVRO_E_INVALID, &err);
    /* No room needed for no bytes. */
    assert_status(kvro_read(kv, "one", 0, 0, NULL, &n, &err), KVRO_OK, &err);
    assert_int_equal(n, 0);
    n = 99;
    assert_status(kvro_read(kv, "nope", 0, 1, buf, &n, &err), KVRO_E_NOT_FOUND, &err);
    assert_int_equal(n, 0);
    assert_status(kvro_read(kv, "a/b/nope", 0, 1, buf, &n, &err), KVRO_E_NOT_FOUND, &err);
    assert_status(kvro_read(kv, "one/x", 0, 1, buf, &n, &err), KVRO_E_NOT_DIR, &err);
}

static void test_list(void **state)
{
    kvro *kv = KV(state);
    check_listing(kv, "", "");
    check_listing(kv, "/", "");
    for (size_t i = 0; i < NREF; i++)
        if (REF[i].kind == KVRO_KIND_DIR)
            check_listing(kv, REF[i].key, REF[i].key);

    /* Written out, so the sort itself is not the only judge of the sort. */
    static const char *const order[] = {"B", "Z", "_x", "a", "é"};
    listing l = {0};
    kvro_error err;
    assert_status(kvro_list(kv, "order", collect, &l, &err), KVRO_OK, &err);
    assert_int_equal(l.n, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(l.names[i], order[i]);
    assert_int_equal(l.kinds[1], KVRO_KIND_DIR);
    listing_free(&l);
}

static void test_list_stop_and_errors(void **state)
{
    kvro *kv = KV(state);
    kvro_error err;
    listing l = {.stop_after = 1};
    assert_status(kvro_list(kv, "a/b", collect, &l, &err), KVRO_OK, &err);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.names[0], "c");
    listing_free(&l);

    l.stop_after = 2;
    assert_status(kvro_list(kv, "", collect, &l, &err), KVRO_OK, &err);
    assert_int_equal(l.n, 2);
    listing_free(&l);

    assert_status(kvro_list(kv, "one", collect, &l, &err), KVRO_E_NOT_DIR, &err);
    assert_status(kvro_list(kv, "empty", collect, &l, &err), KVRO_E_NOT_DIR, &err);
    assert_status(kvro_list(kv, "nope", collect, &l, &err), KVRO_E_NOT_FOUND, &err);
    assert_status(kvro_list(kv, "a/nope", collect, &l, &err), KVRO_E_NOT_FOUND, &err);
    assert_status(kvro_list(kv, "one/x", collect, &l, &err), KVRO_E_NOT_DIR, &err);
    assert_status(kvro_list(kv, "a", NULL, NULL, &err), KVRO_E_INVALID, &err);
    assert_int_equal(l.n, 0);
}

static void test_bad_keys(void **state)
{
    kvro *kv = KV(state);
    char *too_long = padded_key("a/b/c/file", KVRO_KEY_MAX + 1);
    const char *bad[] = {"a/../x", "..", "./..", "a/./../b", "a/..", "/../one", too_long};
    kvro_error err;
    bool present;
    int64_t n;
    char buf[4];
    kvro_info st;
    listing l = {0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *k = bad[i];
        assert_status(kvro_mem(kv, k, &present, &err), KVRO_E_BAD_KEY, &err);
        assert_int_equal(err.status, KVRO_E_BAD_KEY);
        n = 77;
        assert_status(kvro_size(kv, k, &n, &err), KVRO_E_BAD_KEY, &err);
        assert_int_equal(n, 0); /* results are zeroed on every failure */
        n = 77;
        assert_status(kvro_read(kv, k, 0, sizeof buf, buf, &n, &err), KVRO_E_BAD_KEY, &err);
        assert_int_equal(n, 0);
        assert_status(kvro_stat(kv, k, &st, &err), KVRO_E_BAD_KEY, &err);
        assert_status(kvro_list(kv, k, collect, &l, &err), KVRO_E_BAD_KEY, &err);
        assert_int_equal(l.n, 0);
        if (k != too_long)
            assert_string_equal(err.key, k);
    }
    free(too_long);
    /* The limit counts the key as given: at the limit, it resolves. */
    char *at_limit = padded_key("a/b/c/file", KVRO_KEY_MAX);
    assert_status(kvro_size(kv, at_limit, &n, &err), KVRO_OK, &err);
    assert_int_equal(n, ref_find("a/b/c/file")->size);
    free(at_limit);
}

static void test_key_spelling(void **state)
{
    kvro *kv = KV(state);
    kvro_error err;
    kvro_info st;
    assert_status(kvro_stat(kv, "//a///b//", &st, &err), KVRO_OK, &err);
    assert_int_equal(st.kind, KVRO_KIND_DIR);
    check_listing(kv, "//a///b//", "a/b");
    check_listing(kv, "/a/b/", "a/b");
    check_read(kv, "//a///b//c//file", ref_find("a/b/c/file"), 0, 200);
    check_read(kv, "./a/./b/c/file", ref_find("a/b/c/file"), 0, 200);
    check_read(kv, "/données/été.txt", ref_find("données/été.txt"), 3, 200);
    check_read(kv, "long/" NAME200, ref_find("long/" NAME200), 0, 200);
    int64_t n;
    assert_status(kvro_size(kv, "///b4097", &n, &err), KVRO_OK, &err);
    assert_int_equal(n, 4097);
    check_listing(kv, "./a/./b/.", "a/b");
    assert_status(kvro_stat(kv, "a/b/.", &st, &err), KVRO_OK, &err);
    assert_int_equal(st.kind, KVRO_KIND_DIR);

    /* A trailing '/' names a directory (POSIX path resolution): on a file
     * it is KVRO_E_NOT_DIR from every call, never the file's bytes. */
    char buf[8];
    bool present = true;
    const char *slashed[] = {"a/b/c/file/", "a/b/c/file/.", "b4097//"};
    for (size_t i = 0; i < sizeof slashed / sizeof slashed[0]; i++) {
        const char *k = slashed[i];
        assert_status(kvro_stat(kv, k, &st, &err), KVRO_E_NOT_DIR, &err);
        assert_string_equal(err.key, k);
        assert_status(kvro_lstat(kv, k, &st, &err), KVRO_E_NOT_DIR, &err);
        n = 5;
        assert_status(kvro_size(kv, k, &n, &err), KVRO_E_NOT_DIR, &err);
        assert_int_equal(n, 0);
        assert_status(kvro_read(kv, k, 0, sizeof buf, buf, &n, &err), KVRO_E_NOT_DIR, &err);
        assert_int_equal(n, 0);
        assert_status(kvro_mem(kv, k, &present, &err), KVRO_OK, &err);
        assert_false(present);
    }
    assert_status(kvro_mem(kv, "a/b/", &present, &err), KVRO_OK, &err);
    assert_true(present);
    assert_status(kvro_size(kv, "a/b/", &n, &err), KVRO_E_IS_DIR, &err);
    assert_status(kvro_stat(kv, "nope/", &st, &err), KVRO_E_NOT_FOUND, &err);
}

/* kvro_each: every entry once, each directory before its contents, with
 * the stat a no-follow stat gives. */
typedef struct each_seen {
    kvro *kv;
    bool seen[NREF];
    size_t n;
} each_seen;

static int each_check(void *arg, const char *key, kvro_status s, const kvro_info *info)
{
    each_seen *e = arg;
    const ref_entry *r = ref_find(key);
    if (!r)
        fail_msg("kvro_each gave '%s', not in the tree", key);
    if (s != KVRO_OK || !info)
        fail_msg("kvro_each: '%s' failed: %d", key, s);
    size_t i = (size_t)(r - REF);
    if (e->seen[i])
        fail_msg("kvro_each gave '%s' twice", key);
    const char *slash = strrchr(key, '/');
    if (slash) {
        char parent[KVRO_KEY_MAX + 1];
        snprintf(parent, sizeof parent, "%.*s", (int)(slash - key), key);
        if (!e->seen[ref_find(parent) - REF])
            fail_msg("kvro_each gave '%s' before its directory", key);
    }
    e->seen[i] = true;
    e->n++;
    kvro_info want;
    kvro_error err;
    assert_status(kvro_lstat(e->kv, key, &want, &err), KVRO_OK, &err);
    assert_int_equal(info->kind, r->kind);
    assert_int_equal(info->kind, want.kind);
    assert_int_equal(info->size, want.size);
    assert_int_equal(info->mtime, want.mtime);
    return 0;
}

static int each_stop(void *arg, const char *key, kvro_status s, const kvro_info *info)
{
    (void)key, (void)s, (void)info;
    return ++*(int *)arg == 3;
}

static void test_each(void **state)
{
    kvro *kv = KV(state);
    each_seen e = {.kv = kv};
    kvro_error err;
    assert_status(kvro_each(kv, each_check, &e, &err), KVRO_OK, &err);
    assert_int_equal(e.n, NREF);
    int calls = 0;
    assert_status(kvro_each(kv, each_stop, &calls, &err), KVRO_OK, &err);
    assert_int_equal(calls, 3);
    assert_status(kvro_each(kv, NULL, NULL, &err), KVRO_E_INVALID, &err);
    assert_status(kvro_each(NULL, each_stop, &calls, &err), KVRO_E_INVALID, &err);
}

static void test_error_records(void **state)
{
    fixture *f = *state;
    kvro *kv = f->kv;
    const char *source = kvro_source(kv);
    assert_non_null(source);
    assert_true(source[0] != '\0');
    assert_non_null(kvro_backend_of(kv));

    kvro_error err;
    char buf[8];
    int64_t n;
    char msg[1400];
    assert_status(kvro_read(kv, "a/nope", 0, sizeof buf, buf, &n, &err), KVRO_E_NOT_FOUND, &err);
    assert_int_equal(err.status, KVRO_E_NOT_FOUND);
    assert_string_equal(err.source, source);
    assert_string_equal(err.key, "a/nope");
    size_t len = kvro_error_format(&err, msg, sizeof msg);
    assert_int_equal(len, strlen(msg));
    assert_non_null(strstr(msg, source));
    assert_non_null(strstr(msg, "a/nope"));

    /* The key is shown as the caller spelled it. */
    assert_status(kvro_size(kv, "//a/b", &n, &err), KVRO_E_IS_DIR, &err);
    assert_string_equal(err.key, "//a/b");
    assert_string_equal(err.source, source);
    listing l = {0};
    assert_status(kvro_list(kv, "big", collect, &l, &err), KVRO_E_NOT_DIR, &err);
    assert_string_equal(err.key, "big");
    assert_string_equal(err.source, source);
    kvro_error_format(&err, msg, sizeof msg);
    assert_non_null(strstr(msg, "big"));

    /* A failure reported by a backend's inner layer keeps its detail. */
    assert_status(kvro_read(kv, "a/b", 0, 1, buf, &n, &err), KVRO_E_IS_DIR, &err);
    assert_true(err.detail[0] != '\0');

    /* No record at all is fine, for successes and failures. */
    bool present;
    kvro_info st;
    assert_status(kvro_mem(kv, "one", &present, NULL), KVRO_OK, NULL);
    assert_true(present);
    assert_status(kvro_size(kv, "nope", &n, NULL), KVRO_E_NOT_FOUND, NULL);
    assert_status(kvro_read(kv, "one", 0, 1, buf, &n, NULL), KVRO_OK, NULL);
    assert_int_equal(n, 1);
    assert_status(kvro_read(kv, "a", 0, 1, buf, &n, NULL), KVRO_E_IS_DIR, NULL);
    assert_status(kvro_stat(kv, "..", &st, NULL), KVRO_E_BAD_KEY, NULL);
    assert_status(kvro_list(kv, "one", collect, &l, NULL), KVRO_E_NOT_DIR, NULL);
    assert_status(kvro_list(kv, "emptydir", collect, &l, NULL), KVRO_OK, NULL);
    assert_int_equal(l.n, 0);
}

/* ----------------------------------------------------------- concurrency */

#define THREADS 4
#define ROUNDS 300

/* The big file's bytes, computed once, so that checking is a memcmp and
 * the threads spend their time inside kvro, where they can collide. */
static unsigned char *big_bytes;
static pthread_barrier_t start_line;

typedef struct worker {
    kvro *kv;
    unsigned seed;
    int failures;
    char first[256];
} worker;

static void worker_fail(worker *w, const char *fmt, long long a, long long b)
{
    if (!w->failures++)
        snprintf(w->first, sizeof w->first, fmt, a, b);
}

static void *worker_run(void *arg)
{
    worker *w = arg;
    const ref_entry *big = ref_find("big");
    unsigned char *buf = malloc(70000);
    pthread_barrier_wait(&start_line);
    if (!buf) {
        w->failures++;
        return NULL;
    }
    uint64_t x = w->seed * 0x9E3779B97F4A7C15ull + 1;
    for (int r = 0; r < ROUNDS; r++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int64_t off = (int64_t)(x % (uint64_t)(big->size + 10));
        int64_t len = (int64_t)((x >> 32) % 70000);
        int64_t want = off >= big->size ? 0 : (len < big->size - off ? len : big->size - off);
        int64_t got = -1;
        kvro_error err;
        if (kvro_read(w->kv, "big", off, len, buf, &got, &err) != KVRO_OK || got != want) {
            worker_fail(w, "read @%lld: got %lld bytes", off, got);
            continue;
        }
        if (got && memcmp(buf, big_bytes + off, (size_t)got) != 0)
            worker_fail(w, "read @%lld+%lld: bytes differ", off, got);
        /* Other calls interleaved with the reads. */
        int64_t size = 0;
        if (r % 8 == 0 && (kvro_size(w->kv, "a/b/c/file", &size, &err) != KVRO_OK || size != 100))
            worker_fail(w, "size in round %lld: %lld", r, size);
        listing l = {0};
        if (r % 16 == 0 && (kvro_list(w->kv, "order", collect, &l, &err) != KVRO_OK || l.n != 5))
            worker_fail(w, "list in round %lld: %lld entries", r, (long long)l.n);
        listing_free(&l);
    }
    free(buf);
    return NULL;
}

static void test_concurrent_reads(void **state)
{
    worker w[THREADS];
    pthread_t t[THREADS];
    const ref_entry *big = ref_find("big");
    big_bytes = malloc((size_t)big->size);
    assert_non_null(big_bytes);
    for (int64_t i = 0; i < big->size; i++)
        big_bytes[i] = t_pattern(big->seed, (uint64_t)i);
    assert_int_equal(pthread_barrier_init(&start_line, NULL, THREADS), 0);
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker){.kv = KV(state), .seed = (unsigned)i + 1};
        assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    pthread_barrier_destroy(&start_line);
    free(big_bytes);
    big_bytes = NULL;
    for (int i = 0; i < THREADS; i++)
        if (w[i].failures)
            fail_msg("thread %d: %d failures, first: %s", i, w[i].failures, w[i].first);
}

/* ------------------------------------------------------------------ main */

typedef struct test_case {
    const char *name;
    CMUnitTestFunction fn;
} test_case;

static const test_case TESTS[] = {
    {"mem", test_mem},
    {"size", test_size},
    {"stat", test_stat},
    {"read_ranges", test_read_ranges},
    {"read_errors", test_read_errors},
    {"list", test_list},
    {"list_stop_and_errors", test_list_stop_and_errors},
    {"bad_keys", test_bad_keys},
    {"key_spelling", test_key_spelling},
    {"each", test_each},
    {"error_records", test_error_records},
    {"concurrent_reads", test_concurrent_reads},
};
#define NTESTS (sizeof TESTS / sizeof TESTS[0])
#define NBACKENDS (sizeof BACKENDS / sizeof BACKENDS[0])

int main(void)
{
    const char *only = getenv("KVRO_CONFORMANCE_ONLY");
    if (only && *only) {
        size_t i = 0;
        while (i < NBACKENDS && strcmp(BACKENDS[i].name, only) != 0)
            i++;
        if (i == NBACKENDS) {
            fprintf(stderr, "KVRO_CONFORMANCE_ONLY=%s: no such backend in the suite\n", only);
            return 1;
        }
    }
    refdir = t_tempdir("conformance-ref");
    make_ref_tree(refdir);
    archives = t_tempdir("conformance-archives");

    int failed = 0;
    for (size_t b = 0; b < NBACKENDS; b++) {
        if (only && *only && strcmp(BACKENDS[b].name, only) != 0)
            continue;
        char tag[64];
        snprintf(tag, sizeof tag, "conformance-%s", BACKENDS[b].name);
        for (char *c = tag; *c; c++)
            *c = *c == '/' ? '_' : *c;
        fixture f = {.b = &BACKENDS[b], .workdir = t_tempdir(tag)};
        /* One group per backend. These are the entries
         * cmocka_unit_test_prestate_setup_teardown makes, but named
         * "backend: test" rather than after the function. */
        struct CMUnitTest tests[NTESTS];
        char *names[NTESTS];
        for (size_t i = 0; i < NTESTS; i++) {
            names[i] = t_fmt("%s: %s", BACKENDS[b].name, TESTS[i].name);
            tests[i] = (struct CMUnitTest){.name = names[i],
                                           .test_func = TESTS[i].fn,
                                           .setup_func = setup,
                                           .teardown_func = teardown,
                                           .initial_state = &f};
        }
        failed += cmocka_run_group_tests_name(tag, tests, NULL, NULL);
        for (size_t i = 0; i < NTESTS; i++)
            free(names[i]);
        t_rmrf(f.workdir);
        free(f.workdir);
    }
    images_free();
    t_rmrf(archives);
    free(archives);
    t_rmrf(refdir);
    free(refdir);
    return failed;
}
