/*
 * fuzz_tar.c — libFuzzer harness for the tar backend: each input is an
 * archive, plain or (when it starts with the gzip magic) gzip-compressed,
 * opened by the "tar" backend and walked through the public API (walk.c),
 * so the header scan, pax and GNU extensions, the member index, link
 * resolution and the gzip access points built at open are all driven by
 * the fuzzer's bytes.
 *
 * The input lives in a memfd opened by its /proc/self/fd path, and is
 * opened a second time straight from the fuzzer's buffer (kvro_io_from_
 * memory): both must open or fail alike, and on each every value's
 * zero-copy view (kvro_file_extent on the file, kvro_map in memory) must
 * be kvro_read's bytes exactly, and so must the value read in pieces at
 * scattered offsets (check_pieces: a sparse value's reads each search its
 * map and split into holes and regions differently). The .tar.gz index cache is off
 * (no_index_cache, no index_path): nothing is written anywhere, so inputs
 * are independent and runs leave no files.
 * The open bids first and falls back to forcing "tar" (see run()), so
 * whatever the bid says, the tar backend opens every input.
 *
 * Bounds per input: the walk stops at MAX_DEPTH levels, MAX_ENTRIES
 * entries and MAX_FILES files read (walk.c bounds the bytes); the input's
 * size is bounded by libFuzzer's -max_len (tests/fuzz/run.sh), and so is a
 * .tar.gz's output (deflate expands at most 1032:1), which bounds the
 * access points (see LLVMFuzzerInitialize).
 */
#include "walk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_DEPTH 64
#define MAX_ENTRIES 2000
#define MAX_FILES 256

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An access point every 64 KiB of output (not the default 1 MiB, under a
 * 2% budget), or no input of -max_len bytes would ever have a second one
 * and reads from points, windows and across gzip members would go
 * unfuzzed. Still bounded: a 64 KiB input inflates to at most ~66 MiB,
 * so at most ~1000 points, each window at most ~33 KiB. */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    setenv("KVRO_TARGZ_SPACING", "65536", 0);
    return 0;
}

static void on_warning(void *arg, const char *message)
{
    (void)arg;
    FZ_CHECK(message != NULL && strnlen(message, 4096) < 4096);
}

static void on_progress(void *arg, const char *what, int64_t done, int64_t total)
{
    (void)arg;
    FZ_CHECK(what != NULL);
    FZ_CHECK(done >= 0 && done <= total);
}

static kvro_status open_as(const char *path, kvro_io *io, const char *backend, kvro **kv)
{
    kvro_options o = {
        .backend = backend, .no_index_cache = true, .warning = on_warning, .progress = on_progress};
    kvro_error e;
    fz_error_poison(&e);
    *kv = NULL;
    kvro_status s = io ? kvro_open_io(io, &o, kv, &e) : kvro_open_opts(path, &o, kv, &e);
    fz_check_error(s, &e);
    FZ_CHECK((s == KVRO_OK) == (*kv != NULL));
    FZ_CHECK(s != KVRO_OK || strcmp(kvro_backend_of(*kv), "tar") == 0);
    return s;
}

/* The value read in pieces at scattered offsets is the value read whole:
 * a sparse member's map is searched afresh for every read, and each piece
 * splits differently into holes and data regions, so this holds only if
 * every read applies the same map to the same data (plain members: one
 * read at an offset, trivially). */
static void check_pieces(kvro *kv, const char *key, const unsigned char *want, int64_t n)
{
    unsigned char buf[4099];
    uint64_t seed = (uint64_t)n * 0x9E3779B97F4A7C15ull + 1;
    for (int k = 0; k < 16 && n > 0; k++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        int64_t off = (int64_t)((seed >> 11) % (uint64_t)n);
        int64_t len = (int64_t)((seed >> 40) % sizeof buf), got = -1;
        FZ_CHECK(kvro_read(kv, key, off, len, buf, &got, NULL) == KVRO_OK);
        FZ_CHECK(got == (len < n - off ? len : n - off));
        FZ_CHECK(memcmp(buf, want + off, (size_t)got) == 0);
    }
}

/* The zero-copy views of a value against its bytes as kvro_read gives
 * them (files up to 1 MiB: the walk bounds what it reads the same way). */
/* The image a handle was opened on, when it is the fuzzer's buffer. */
typedef struct opened {
    kvro *kv;
    const unsigned char *image;
    size_t image_len;
} opened;

typedef struct regions {
    kvro_region *v;
    size_t n, cap;
} regions;

static int collect_region(void *arg, const kvro_region *r)
{
    regions *g = arg;
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 16;
        g->v = realloc(g->v, g->cap * sizeof *g->v);
        FZ_CHECK(g->v != NULL);
    }
    g->v[g->n++] = *r;
    return 0;
}

/* A value's bytes are its map applied to the data: zeros in the holes,
 * and where a region lies in the image (a plain tar in the fuzzer's
 * buffer) exactly those bytes of it. WANT holds the value read whole. */
static void check_regions(const opened *o, const char *key, const unsigned char *want, int64_t n)
{
    regions g = {0};
    if (kvro_regions(o->kv, key, collect_region, &g, NULL) != KVRO_OK) {
        free(g.v);
        return; /* a read of the whole value worked: regions may still refuse (a loop) */
    }
    int64_t at = 0;
    for (size_t i = 0; i < g.n; i++) {
        const kvro_region *r = &g.v[i];
        FZ_CHECK(r->length > 0 && r->offset >= at && r->offset <= n - r->length);
        for (int64_t k = at; k < r->offset; k++)
            FZ_CHECK(want[k] == 0);
        if (o->image && r->image_offset >= 0) {
            FZ_CHECK((uint64_t)r->image_offset <= o->image_len &&
                     (uint64_t)r->length <= o->image_len - (uint64_t)r->image_offset);
            FZ_CHECK(memcmp(want + r->offset, o->image + r->image_offset, (size_t)r->length) == 0);
        }
        at = r->offset + r->length;
    }
    for (int64_t k = at; k < n; k++)
        FZ_CHECK(want[k] == 0);
    free(g.v);
}

static void check_zero_copy(void *arg, const char *key, kvro_kind listed, kvro_status s,
                            const kvro_info *st)
{
    const opened *o = arg;
    kvro *kv = o->kv;
    if (s != KVRO_OK || listed != KVRO_KIND_FILE || st->size > (1 << 20))
        return;
    unsigned char *want = malloc((size_t)st->size + 1);
    FZ_CHECK(want != NULL);
    int64_t n = 0;
    kvro_status r = kvro_read(kv, key, 0, st->size, want, &n, NULL);
    if (r == KVRO_OK && n == st->size) {
        check_pieces(kv, key, want, n);
        check_regions(o, key, want, n);
    }
    kvro_extent ext;
    const void *data;
    int64_t size;
    kvro_status m = kvro_map(kv, key, &data, &size, NULL);
    kvro_status f = kvro_file_extent(kv, key, &ext, NULL);
    /* A view exists only where a read of the whole value works. */
    FZ_CHECK(m != KVRO_OK || (r == KVRO_OK && n == st->size && size == n &&
                              memcmp(data, want, (size_t)n) == 0));
    if (f == KVRO_OK) {
        FZ_CHECK(r == KVRO_OK && n == st->size && ext.length == n && ext.fd >= 0);
        unsigned char *got = malloc((size_t)n + 1);
        FZ_CHECK(got != NULL);
        FZ_CHECK(pread(ext.fd, got, (size_t)n, ext.offset) == (ssize_t)n);
        FZ_CHECK(memcmp(got, want, (size_t)n) == 0);
        free(got);
    }
    FZ_CHECK(m == KVRO_OK || m == KVRO_E_UNSUPPORTED || m == r);
    FZ_CHECK(f == KVRO_OK || f == KVRO_E_UNSUPPORTED || f == r);
    free(want);
}

/* The input is opened by bidding first (so the tar backend's bid, which
 * inflates a .tar.gz's head, is fuzzed too); where no backend bids, or the
 * bid's open fails, with "tar" forced. An open that failed after the bid
 * fails the same way forced: it is the same backend. Returns the open's
 * status. */
static kvro_status run(const char *path, kvro_io *io, const uint8_t *data, size_t size)
{
    kvro *kv;
    kvro_status bid = open_as(path, io, NULL, &kv);
    if (bid != KVRO_OK) {
        kvro_status s = open_as(path, io, "tar", &kv);
        FZ_CHECK(bid == KVRO_E_UNSUPPORTED || s == bid);
        if (s != KVRO_OK)
            return s;
    }
    /* The file holds the fuzzer's bytes too: both handles' images are DATA. */
    opened o = {kv, data, size};
    fz_walk_opts w = {.max_depth = MAX_DEPTH,
                      .max_entries = MAX_ENTRIES,
                      .max_files = MAX_FILES,
                      .on_entry = check_zero_copy,
                      .arg = &o};
    fz_walk(kv, &w);
    fz_hostile_keys(kv);
    kvro_close(kv);
    return KVRO_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int fd = memfd_create("kvro-fuzz", MFD_CLOEXEC);
    FZ_CHECK(fd >= 0);
    for (size_t done = 0; done < size;) {
        ssize_t r = write(fd, data + done, size - done);
        FZ_CHECK(r > 0);
        done += (size_t)r;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    kvro_status from_file = run(path, NULL, data, size);
    close(fd);
    kvro_io *io;
    FZ_CHECK(kvro_io_from_memory(data, size, &io, NULL) == KVRO_OK);
    kvro_status from_memory = run(NULL, io, data, size);
    kvro_io_close(io);
    /* The same bytes: the same answer, whatever they are read from. */
    FZ_CHECK(from_file == from_memory);
    return 0;
}
