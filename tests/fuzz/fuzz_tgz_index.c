/*
 * fuzz_tgz_index.c — libFuzzer harness for the saved .tar.gz index (the
 * cache file tar_cache.c loads): the archive is fixed, each input is its
 * index file. The file is untrusted like the archive, and the promise is:
 * a damaged index is rebuilt (or a damaged window skipped), never served
 * wrong. So every entry, stat and byte read through the input's index is
 * compared with the same archive opened without any index (the
 * reference), and any difference traps.
 *
 * One exception, on purpose: the index's CRC-32s catch damage, not forgery
 * (they are not MACs, and libFuzzer's comparison tracing can fix a CRC up
 * just as test_targz.c does by hand). An input whose metadata passes its
 * CRC yet differs from the genuine index's, or whose window passes its
 * CRC yet differs from the genuine window, is a forgery; for those only
 * the contract holds (memory safety, clean errors, valid records, sorted
 * listings), not equality — no reader can tell a consistent lie.
 *
 * Set-up (once, LLVMFuzzerInitialize): a small tar is built in memory
 * (text and binary files, a directory, links, a pax mtime), gzipped as two
 * members with a block boundary every 4 KiB, and written to a temporary
 * directory; KVRO_TARGZ_SPACING=4096 gives it about ten access points.
 * The genuine index is saved once, and, when KVRO_FUZZ_SEED_DIR names a
 * directory, written there with a few damaged copies as seeds. Each input
 * is then written over the index file (a damaged window gets the file
 * unlinked, so it is rewritten every time), and opened with
 * no_index_cache so a rebuilt index is never saved over it.
 *
 * Input format: one mode byte, then the index file. Mode bit 0: the rest
 * is only the metadata, and the genuine windows are appended (they are
 * most of the file: this lets the fuzzer spend its mutations, and its
 * time, on the records: a 1 KiB input, not 80 KiB). Bit 1: the harness
 * sets the metadata's CRC right, so edited records reach the decoder's
 * own checks instead of stopping at the CRC (such an input is a forgery
 * unless the metadata is the genuine one).
 */
#include "walk.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* The cache file's layout (tar_cache.c): the header's fields used here and
 * the record sizes. */
#define HEADER 348
#define H_POINTS 48
#define H_NODES 52
#define H_ARENA 56
#define H_SPARSE 336
#define H_REGIONS 340
#define POINT 37
#define NODE 44
#define SPARSE 24 /* a sparse map's record, and a region's */
#define P_WIN 16
#define P_ZLEN 24
#define P_LEN 28
#define P_CRC 32
/* The genuine index stays under this, and so under run.sh's -max_len. */
#define INDEX_MAX (192 << 10)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *dir, *archive, *index_file;
static unsigned char *genuine;
static size_t genuine_len, genuine_meta;

/* -------------------------------------------------------- the archive */

typedef struct buf {
    unsigned char *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *data, size_t n)
{
    if (n == 0)
        return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 65536;
        while (cap < b->n + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        FZ_CHECK(b->p != NULL);
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
}

static void pad(buf *b)
{
    static const unsigned char zero[512];
    if (b->n % 512)
        put(b, zero, 512 - b->n % 512);
}

static void header(buf *b, const char *name, char type, size_t size, const char *link)
{
    unsigned char h[512] = {0};
    snprintf((char *)h, 100, "%s", name);
    snprintf((char *)h + 100, 8, "%07o", type == '5' ? 0755 : 0644);
    snprintf((char *)h + 108, 8, "%07o", 1000);
    snprintf((char *)h + 116, 8, "%07o", 1000);
    snprintf((char *)h + 124, 12, "%011zo", size);
    snprintf((char *)h + 136, 12, "%011o", 1700000000);
    h[156] = (unsigned char)type;
    if (link)
        snprintf((char *)h + 157, 100, "%s", link);
    memcpy(h + 257,
           "ustar\0"
           "00",
           8);
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (int i = 0; i < 512; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    put(b, h, 512);
}

static void member(buf *b, const char *name, const unsigned char *data, size_t n)
{
    header(b, name, '0', n, NULL);
    put(b, data, n);
    pad(b);
}

/* Text that refers back to itself (so windows matter) or xorshift bytes. */
static unsigned char *content(size_t n, uint64_t seed, bool text)
{
    static const char *const words[] = {"access", "point",  "window", "deflate", "block",
                                        "member", "header", "index",  "kvro",    "tar"};
    unsigned char *p = malloc(n);
    FZ_CHECK(p != NULL);
    uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < n;) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if (!text) {
            p[i++] = (unsigned char)x;
            continue;
        }
        const char *w = words[x % 10];
        for (size_t k = 0; w[k] && i < n; k++)
            p[i++] = (unsigned char)w[k];
        if (i < n)
            p[i++] = x % 7 ? ' ' : '\n';
    }
    return p;
}

/* Every key the archive serves, with what it holds. */
static const struct {
    const char *key;
    kvro_kind kind;
    size_t size;
    uint64_t seed;
    bool text;
} files[] = {
    {"dir", KVRO_KIND_DIR, 0, 0, false},
    {"dir/a.txt", KVRO_KIND_FILE, 20000, 1, true},
    {"dir/b.bin", KVRO_KIND_FILE, 8000, 2, false},
    {"dir/sub", KVRO_KIND_DIR, 0, 0, false},
    {"dir/sub/c.txt", KVRO_KIND_FILE, 15000, 3, true},
    {"empty", KVRO_KIND_FILE, 0, 0, false},
    {"hard", KVRO_KIND_FILE, 8000, 2, false},
    {"link", KVRO_KIND_FILE, 20000, 1, true},
    {"small", KVRO_KIND_FILE, 700, 4, false},
};

static void build_tar(buf *t)
{
    unsigned char *a = content(20000, 1, true), *b = content(8000, 2, false);
    unsigned char *c = content(15000, 3, true), *d = content(700, 4, false);
    header(t, "dir/", '5', 0, NULL);
    member(t, "dir/a.txt", a, 20000);
    member(t, "dir/b.bin", b, 8000);
    header(t, "link", '2', 0, "dir/a.txt");
    header(t, "hard", '1', 0, "dir/b.bin");
    member(t, "empty", NULL, 0);
    static const char rec[] = "30 mtime=1700000000.123456789\n";
    header(t, "PaxHeaders/c.txt", 'x', sizeof rec - 1, NULL);
    put(t, rec, sizeof rec - 1);
    pad(t);
    member(t, "dir/sub/c.txt", c, 15000);
    member(t, "small", d, 700);
    static const unsigned char end[1024];
    put(t, end, sizeof end);
    free(a);
    free(b);
    free(c);
    free(d);
}

/* Gzip of T[FROM, TO) as one member, a sync flush (a block boundary)
 * every 4 KiB. */
static void gzip_member(buf *out, const buf *t, size_t from, size_t to)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    FZ_CHECK(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    unsigned char chunk[16384];
    for (size_t at = from;;) {
        size_t k = to - at < 4096 ? to - at : 4096;
        z.next_in = t->p + at;
        z.avail_in = (uInt)k;
        at += k;
        int flush = at == to ? Z_FINISH : Z_SYNC_FLUSH;
        int ret;
        do {
            z.next_out = chunk;
            z.avail_out = sizeof chunk;
            ret = deflate(&z, flush);
            FZ_CHECK(ret != Z_STREAM_ERROR);
            put(out, chunk, sizeof chunk - z.avail_out);
        } while (z.avail_out == 0);
        if (ret == Z_STREAM_END)
            break;
    }
    deflateEnd(&z);
}

/* --------------------------------------------------------------- files */

static char *join(const char *a, const char *b)
{
    size_t n = strlen(a) + strlen(b) + 2;
    char *s = malloc(n);
    FZ_CHECK(s != NULL);
    snprintf(s, n, "%s/%s", a, b);
    return s;
}

static void write_file(const char *path, const void *data, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FZ_CHECK(fd >= 0);
    for (size_t done = 0; done < n;) {
        ssize_t r = write(fd, (const char *)data + done, n - done);
        FZ_CHECK(r > 0);
        done += (size_t)r;
    }
    FZ_CHECK(close(fd) == 0);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    FZ_CHECK(fd >= 0);
    struct stat st;
    FZ_CHECK(fstat(fd, &st) == 0);
    unsigned char *p = malloc((size_t)st.st_size + 1);
    FZ_CHECK(p != NULL);
    FZ_CHECK(read(fd, p, (size_t)st.st_size) == st.st_size);
    close(fd);
    *n = (size_t)st.st_size;
    return p;
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            char *p = join(dir, e->d_name);
            unlink(p);
            free(p);
        }
    }
    closedir(d);
    rmdir(dir);
}

static void at_exit(void)
{
    remove_dir();
}

/* ------------------------------------------------------- the index file */

static uint64_t le(const unsigned char *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Where the metadata of D[N] ends (with its CRC) by its own counts, or 0
 * if they do not fit N. */
static size_t meta_end(const unsigned char *d, size_t n)
{
    if (n < HEADER + 4)
        return 0;
    uint64_t np = le(d + H_POINTS, 4), nn = le(d + H_NODES, 4), arena = le(d + H_ARENA, 8);
    uint64_t ns = le(d + H_SPARSE, 4), nr = le(d + H_REGIONS, 8);
    if (arena > n || nr > n)
        return 0;
    uint64_t m = HEADER + np * POINT + nn * NODE + (ns + nr) * SPARSE + arena + 4;
    return m <= n ? (size_t)m : 0;
}

static bool crc_ok(const unsigned char *p, size_t n, uint32_t want)
{
    return (uint32_t)crc32_z(0, p, n) == want;
}

/* Whether D[N] is a forgery (see the top): a CRC-protected part that
 * passes its CRC, yet is not the genuine index's. */
static bool forged(const unsigned char *d, size_t n)
{
    size_t m = meta_end(d, n);
    if (m == 0 || !crc_ok(d, m - 4, (uint32_t)le(d + m - 4, 4)))
        return false; /* the metadata is rejected */
    if (m != genuine_meta || memcmp(d, genuine, m) != 0)
        return true;
    size_t np = (size_t)le(genuine + H_POINTS, 4);
    for (size_t i = 0; i < np; i++) {
        const unsigned char *p = genuine + HEADER + i * POINT;
        uint64_t at = m + le(p + P_WIN, 8), zlen = le(p + P_ZLEN, 4);
        if (le(p + P_LEN, 4) == 0 || at + zlen > n)
            continue;
        if (crc_ok(d + at, (size_t)zlen, (uint32_t)le(p + P_CRC, 4)) &&
            memcmp(d + at, genuine + at, (size_t)zlen) != 0)
            return true;
    }
    return false;
}

/* ------------------------------------------------------ the comparison */

/* What the reference serves, taken once: every entry's stat and every
 * file's bytes (the archive is small). */
typedef struct ref_entry {
    char *key;
    kvro_status s;
    kvro_info st;
    unsigned char *data;
} ref_entry;

#define REF_MAX 16
static ref_entry refs[REF_MAX];
static size_t nrefs;

static const ref_entry *ref_of(const char *key)
{
    for (size_t i = 0; i < nrefs; i++)
        if (strcmp(refs[i].key, key) == 0)
            return &refs[i];
    fz_broken(__FILE__, __LINE__, "a key the reference does not list");
}

static void take_ref(void *arg, const char *key, kvro_kind listed, kvro_status s,
                     const kvro_info *st)
{
    kvro *kv = arg;
    FZ_CHECK(nrefs < REF_MAX);
    ref_entry *r = &refs[nrefs++];
    r->key = strdup(key);
    r->s = s;
    r->st = *st;
    FZ_CHECK(r->key != NULL);
    if (s != KVRO_OK || listed != KVRO_KIND_FILE)
        return;
    r->data = malloc((size_t)st->size + 1);
    int64_t n;
    FZ_CHECK(r->data != NULL);
    FZ_CHECK(kvro_read(kv, key, 0, st->size, r->data, &n, NULL) == KVRO_OK && n == st->size);
}

typedef struct cmp {
    kvro *kv;
    bool strict; /* not a forgery: everything equals the reference */
    size_t entries;
    unsigned char piece[3000];
} cmp;

static void same_read(const char *key, int64_t off, const unsigned char *got, int64_t n)
{
    const ref_entry *r = ref_of(key);
    FZ_CHECK(r->data != NULL && off >= 0 && n <= r->st.size - off);
    FZ_CHECK(memcmp(got, r->data + off, (size_t)n) == 0);
}

static void on_read(void *arg, const char *key, int64_t off, const unsigned char *b, int64_t n)
{
    cmp *c = arg;
    if (c->strict)
        same_read(key, off, b, n);
}

/* The entry stats as the reference's does; its bytes, read backwards in
 * pieces (so reads start at many access points), are the reference's. */
static void on_entry(void *arg, const char *key, kvro_kind listed, kvro_status s,
                     const kvro_info *st)
{
    cmp *c = arg;
    c->entries++;
    if (!c->strict)
        return;
    const ref_entry *r = ref_of(key);
    FZ_CHECK(r->s == s);
    if (s != KVRO_OK)
        return;
    FZ_CHECK(r->st.kind == st->kind && r->st.size == st->size && r->st.mtime == st->mtime &&
             r->st.mtime_nsec == st->mtime_nsec && r->st.mode == st->mode &&
             r->st.has_mode == st->has_mode);
    if (listed != KVRO_KIND_FILE)
        return;
    for (int64_t end = st->size; end > 0;) {
        int64_t off = end > (int64_t)sizeof c->piece ? end - (int64_t)sizeof c->piece : 0, got;
        kvro_error e;
        kvro_status rs = kvro_read(c->kv, key, off, end - off, c->piece, &got, &e);
        fz_check_error(rs, &e);
        FZ_CHECK(rs == KVRO_OK && got == end - off);
        same_read(key, off, c->piece, got);
        end = off;
    }
}

static void walk(kvro *kv, cmp *c)
{
    fz_walk_opts o = {.max_depth = 16,
                      .max_entries = 1000,
                      .max_files = 1000,
                      .lenient = !c->strict,
                      .on_entry = on_entry,
                      .on_read = on_read,
                      .arg = c};
    fz_walk(kv, &o);
}

/* ------------------------------------------------------------- set-up */

/* Seed NAME: MODE (see LLVMFuzzerTestOneInput), then D[N]. */
static void seed(const char *seeds, const char *name, unsigned char mode, const unsigned char *d,
                 size_t n)
{
    char *p = join(seeds, name);
    unsigned char *b = malloc(n + 1);
    FZ_CHECK(b != NULL);
    b[0] = mode;
    memcpy(b + 1, d, n);
    write_file(p, b, n + 1);
    free(b);
    free(p);
}

static void write_seeds(const char *seeds)
{
    seed(seeds, "genuine", 0, genuine, genuine_len);
    seed(seeds, "metadata", 1, genuine, genuine_meta);
    seed(seeds, "metadata-crc-fixed", 3, genuine, genuine_meta);
    seed(seeds, "metadata-only", 0, genuine, genuine_meta);
    unsigned char *d = malloc(genuine_len);
    FZ_CHECK(d != NULL);
    memcpy(d, genuine, genuine_len);
    d[genuine_meta + (genuine_len - genuine_meta) / 2] ^= 0x10; /* a window's byte */
    seed(seeds, "window-flipped", 0, d, genuine_len);
    memset(d + genuine_meta, 0, genuine_len - genuine_meta);
    seed(seeds, "windows-zeroed", 0, d, genuine_len);
    free(d);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    setenv("KVRO_TARGZ_SPACING", "4096", 1);
    const char *tmp = getenv("TMPDIR");
    char *tmpl = join(tmp && *tmp ? tmp : "/tmp", "kvro-fuzz-index.XXXXXX");
    FZ_CHECK(mkdtemp(tmpl) != NULL);
    dir = tmpl;
    archive = join(dir, "a.tar.gz");
    index_file = join(dir, "fuzz.idx");
    atexit(at_exit);

    buf t = {0}, z = {0};
    build_tar(&t);
    gzip_member(&z, &t, 0, t.n / 3 + 77); /* two members, split mid-block */
    gzip_member(&z, &t, t.n / 3 + 77, t.n);
    write_file(archive, z.p, z.n);
    /* The index names the archive's mtime: a fixed one keeps an input (a
     * reproducer, the kept corpus) meaning the same in every process. */
    struct timespec mtime[2] = {{1700000000, 123456789}, {1700000000, 123456789}};
    FZ_CHECK(utimensat(AT_FDCWD, archive, mtime, 0) == 0);

    char *good = join(dir, "genuine.idx");
    kvro_options o = {.backend = "tar", .index_path = good};
    kvro *kv;
    FZ_CHECK(kvro_open_opts(archive, &o, &kv, NULL) == KVRO_OK);
    kvro_close(kv);
    genuine = slurp(good, &genuine_len);
    genuine_meta = meta_end(genuine, genuine_len);
    FZ_CHECK(genuine_meta > 0 && le(genuine + H_POINTS, 4) >= 8);
    FZ_CHECK(genuine_len < INDEX_MAX);
    unlink(good);
    free(good);

    /* The reference: the archive without an index, checked against what
     * the tar holds, then taken. */
    kvro_options r = {.backend = "tar", .no_index_cache = true};
    kvro *ref;
    FZ_CHECK(kvro_open_opts(archive, &r, &ref, NULL) == KVRO_OK);
    fz_walk_opts take = {.max_depth = 16, .max_entries = 1000, .on_entry = take_ref, .arg = ref};
    fz_walk(ref, &take);
    kvro_close(ref);
    FZ_CHECK(nrefs == sizeof files / sizeof files[0]);
    for (size_t i = 0; i < nrefs; i++) {
        const ref_entry *e = ref_of(files[i].key);
        FZ_CHECK(e->s == KVRO_OK && e->st.kind == files[i].kind &&
                 e->st.size == (int64_t)files[i].size);
        if (files[i].size) {
            unsigned char *want = content(files[i].size, files[i].seed, files[i].text);
            FZ_CHECK(memcmp(e->data, want, files[i].size) == 0);
            free(want);
        }
    }
    free(t.p);
    free(z.p);

    const char *seeds = getenv("KVRO_FUZZ_SEED_DIR");
    if (seeds && *seeds)
        write_seeds(seeds);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The mode byte: bit 0, the rest is the metadata and the genuine
     * windows follow it; bit 1, the metadata's CRC is set right. */
    unsigned mode = size ? data[0] : 0;
    size_t n = size ? size - 1 : 0;
    size_t len = n + (mode & 1 ? genuine_len - genuine_meta : 0);
    unsigned char *file = malloc(len + 1);
    FZ_CHECK(file != NULL);
    if (n)
        memcpy(file, data + 1, n);
    if (mode & 1)
        memcpy(file + n, genuine + genuine_meta, genuine_len - genuine_meta);
    size_t m = meta_end(file, len);
    if ((mode & 2) && m) {
        uint32_t crc = (uint32_t)crc32_z(0, file, m - 4);
        for (int i = 0; i < 4; i++)
            file[m - 4 + i] = (unsigned char)(crc >> (8 * i));
    }
    write_file(index_file, file, len);

    kvro_options o = {.backend = "tar", .index_path = index_file, .no_index_cache = true};
    kvro *kv = NULL;
    kvro_error e;
    fz_error_poison(&e);
    kvro_status s = kvro_open_opts(archive, &o, &kv, &e);
    fz_check_error(s, &e);
    FZ_CHECK(s == KVRO_OK); /* a bad index is rebuilt, never a failed open */
    cmp *c = calloc(1, sizeof *c);
    FZ_CHECK(c != NULL);
    c->kv = kv;
    c->strict = !forged(file, len);
    walk(kv, c);
    if (c->strict)
        FZ_CHECK(c->entries == nrefs);
    fz_hostile_keys(kv);
    kvro_close(kv);
    free(c);
    free(file);
    return 0;
}
