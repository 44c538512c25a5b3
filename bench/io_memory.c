/*
 * bench/io_memory.c — the timing half of bench/io_memory.sh (see there).
 *
 * Usage: io_memory TAR [REPS [MODE]]
 *
 * For one archive, REPS times each (plus one untimed warm-up round):
 *   path  kvro_open(TAR), then kvro_read of every member into one buffer
 *   mem   kvro_io_from_memory + kvro_open_io over the whole file already
 *         read into a malloc'd buffer, then kvro_read of every member
 *   map   the same memory handle, kvro_map of every member
 * Open and read-all are timed apart; every mode sums the bytes it gets
 * (inside the timed part, so mapping does real work too) and the three
 * checksums must agree. The members are listed once (kvro_list, recursive)
 * before anything is timed and the same key list serves every mode. The
 * order of the modes rotates from round to round so that none always runs
 * first. Prints one line per figure, "name median_ns min_ns max_ns", for
 * the script to format, after "members N", "bytes N" and "checksum X".
 * MODE (path, mem or map) runs that mode alone, for a profiler
 * (perf record, valgrind --tool=callgrind); nothing is compared then.
 */
#define _GNU_SOURCE
#include <kvro/kvro.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct keys {
    char *arena;       /* NUL-terminated keys, back to back */
    size_t used, cap;
    size_t *at;        /* offset of each key in the arena */
    int64_t *size;
    size_t n, ncap;
} keys;

typedef struct walk {
    kvro *kv;
    keys *k;
    const char *dir;
    char **subdirs; /* collected first: kvro_list must not be re-entered */
    size_t nsub, subcap;
    int oom;
} walk;

static void die(const char *what, const kvro_error *err)
{
    if (err)
        kvro_error_print(stderr, what, err);
    else
        fprintf(stderr, "io_memory: %s\n", what);
    exit(1);
}

static char *join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char *s = malloc(a + b + 2);
    if (!s)
        die("out of memory", NULL);
    if (a) {
        memcpy(s, dir, a);
        s[a++] = '/';
    }
    memcpy(s + a, name, b + 1);
    return s;
}

static void add_key(keys *k, const char *key)
{
    size_t len = strlen(key) + 1;
    if (k->used + len > k->cap) {
        k->cap = k->cap ? k->cap * 2 : 1 << 20;
        if (!(k->arena = realloc(k->arena, k->cap)))
            die("out of memory", NULL);
    }
    if (k->n == k->ncap) {
        k->ncap = k->ncap ? k->ncap * 2 : 4096;
        k->at = realloc(k->at, k->ncap * sizeof *k->at);
        k->size = realloc(k->size, k->ncap * sizeof *k->size);
        if (!k->at || !k->size)
            die("out of memory", NULL);
    }
    memcpy(k->arena + k->used, key, len);
    k->at[k->n++] = k->used;
    k->used += len;
}

static int on_entry(void *arg, const char *name, kvro_kind kind)
{
    walk *w = arg;
    char *full = join(w->dir, name);
    if (kind == KVRO_KIND_DIR) {
        if (w->nsub == w->subcap) {
            w->subcap = w->subcap ? w->subcap * 2 : 64;
            if (!(w->subdirs = realloc(w->subdirs, w->subcap * sizeof *w->subdirs)))
                die("out of memory", NULL);
        }
        w->subdirs[w->nsub++] = full;
        return 0;
    }
    add_key(w->k, full);
    free(full);
    return 0;
}

static void list_tree(kvro *kv, keys *k, const char *dir)
{
    walk w = {.kv = kv, .k = k, .dir = dir};
    kvro_error err;
    if (kvro_list(kv, dir, on_entry, &w, &err) != KVRO_OK)
        die("io_memory: list", &err);
    for (size_t i = 0; i < w.nsub; i++) {
        list_tree(kv, k, w.subdirs[i]);
        free(w.subdirs[i]);
    }
    free(w.subdirs);
}

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Folds a member's bytes into the running checksum: every byte is read,
 * eight at a time, so that the sum costs little next to what is measured. */
static uint64_t fold(uint64_t acc, const unsigned char *p, int64_t n)
{
    uint64_t s = 0, w;
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        memcpy(&w, p + i, 8);
        s += w;
    }
    for (; i < n; i++)
        s += (uint64_t)p[i] << (8 * (i & 7));
    return acc * 1000003u + s + (uint64_t)n;
}

enum { M_PATH, M_MEM, M_MAP, NMODES };
static const char *const mode_name[NMODES] = {"path", "mem", "map"};

typedef struct ctx {
    const char *path;
    const unsigned char *image;
    size_t image_len;
    keys *k;
    unsigned char *buf;
} ctx;

/* One round of MODE: *open_ns and *read_ns get the two times, the
 * checksum is returned. */
static uint64_t run(const ctx *c, int mode, int64_t *open_ns, int64_t *read_ns)
{
    kvro_error err;
    kvro *kv = NULL;
    int64_t t0 = now_ns();
    if (mode == M_PATH) {
        if (kvro_open(c->path, &kv, &err) != KVRO_OK)
            die("io_memory: open", &err);
    } else {
        kvro_io *io;
        if (kvro_io_from_memory(c->image, c->image_len, &io, &err) != KVRO_OK)
            die("io_memory: memory", &err);
        kvro_status s = kvro_open_io(io, NULL, &kv, &err);
        kvro_io_close(io);
        if (s != KVRO_OK)
            die("io_memory: open_io", &err);
    }
    int64_t t1 = now_ns();
    uint64_t acc = 0;
    const keys *k = c->k;
    for (size_t i = 0; i < k->n; i++) {
        const char *key = k->arena + k->at[i];
        if (mode == M_MAP) {
            const void *p;
            int64_t n;
            if (kvro_map(kv, key, &p, &n, &err) != KVRO_OK)
                die("io_memory: map", &err);
            acc = fold(acc, p, n);
        } else {
            int64_t n;
            if (kvro_read(kv, key, 0, k->size[i], c->buf, &n, &err) != KVRO_OK)
                die("io_memory: read", &err);
            if (n != k->size[i]) {
                fprintf(stderr, "io_memory: %s: short read (%" PRId64 " of %" PRId64 ")\n",
                        key, n, k->size[i]);
                exit(1);
            }
            acc = fold(acc, c->buf, n);
        }
    }
    int64_t t2 = now_ns();
    kvro_close(kv);
    *open_ns = t1 - t0;
    *read_ns = t2 - t1;
    return acc;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void report(const char *name, int64_t *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_i64);
    printf("%s %" PRId64 " %" PRId64 " %" PRId64 "\n", name, v[n / 2], v[0], v[n - 1]);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s TAR [REPS [path|mem|map]]\n", argv[0]);
        return 2;
    }
    const char *path = argv[1];
    int reps = argc > 2 ? atoi(argv[2]) : 7;
    if (reps < 1)
        reps = 1;
    int only = -1;
    for (int m = 0; argc > 3 && m < NMODES; m++)
        if (strcmp(argv[3], mode_name[m]) == 0)
            only = m;
    if (argc > 3 && only < 0) {
        fprintf(stderr, "io_memory: unknown mode '%s'\n", argv[3]);
        return 2;
    }

    /* The key list, once, untimed. */
    keys k = {0};
    kvro_error err;
    kvro *kv;
    if (kvro_open(path, &kv, &err) != KVRO_OK)
        die("io_memory: open", &err);
    list_tree(kv, &k, "");
    int64_t total = 0, biggest = 1;
    for (size_t i = 0; i < k.n; i++) {
        if (kvro_size(kv, k.arena + k.at[i], &k.size[i], &err) != KVRO_OK)
            die("io_memory: size", &err);
        total += k.size[i];
        if (k.size[i] > biggest)
            biggest = k.size[i];
    }
    kvro_close(kv);

    /* The whole file into memory, once (timed for information only). */
    int64_t t0 = now_ns();
    FILE *f = fopen(path, "rb");
    if (!f || fseeko(f, 0, SEEK_END) != 0)
        die("cannot open the archive", NULL);
    size_t len = (size_t)ftello(f);
    rewind(f);
    unsigned char *image = malloc(len ? len : 1);
    if (!image || fread(image, 1, len, f) != len)
        die("cannot read the archive", NULL);
    fclose(f);
    int64_t load_ns = now_ns() - t0;

    ctx c = {path, image, len, &k, malloc((size_t)biggest)};
    if (!c.buf)
        die("out of memory", NULL);
    int64_t *open_t[NMODES], *read_t[NMODES];
    for (int m = 0; m < NMODES; m++) {
        open_t[m] = calloc((size_t)reps, sizeof(int64_t));
        read_t[m] = calloc((size_t)reps, sizeof(int64_t));
        if (!open_t[m] || !read_t[m])
            die("out of memory", NULL);
    }
    uint64_t sum[NMODES] = {0};
    for (int r = -1; r < reps; r++) { /* round -1 warms up, untimed */
        for (int j = 0; j < NMODES; j++) {
            int m = (r + 1 + j) % NMODES;
            if (only >= 0 && m != only)
                continue;
            int64_t o, rd;
            uint64_t s = run(&c, m, &o, &rd);
            if (r < 0) {
                sum[m] = s;
                continue;
            }
            if (s != sum[m]) {
                fprintf(stderr, "io_memory: %s: checksum changed between rounds\n",
                        mode_name[m]);
                return 1;
            }
            open_t[m][r] = o;
            read_t[m][r] = rd;
        }
    }
    if (only < 0 && (sum[M_MEM] != sum[M_PATH] || sum[M_MAP] != sum[M_PATH])) {
        fprintf(stderr,
                "io_memory: checksums differ: path %016" PRIx64 " mem %016" PRIx64
                " map %016" PRIx64 "\n",
                sum[M_PATH], sum[M_MEM], sum[M_MAP]);
        return 1;
    }
    printf("members %zu\nbytes %" PRId64 "\nimage %zu\nchecksum %016" PRIx64 "\n", k.n, total,
           len, sum[only < 0 ? M_PATH : only]);
    printf("load %" PRId64 " %" PRId64 " %" PRId64 "\n", load_ns, load_ns, load_ns);
    char name[32];
    for (int m = 0; m < NMODES; m++) {
        if (only >= 0 && m != only)
            continue;
        snprintf(name, sizeof name, "%s.open", mode_name[m]);
        report(name, open_t[m], reps);
        snprintf(name, sizeof name, "%s.read", mode_name[m]);
        report(name, read_t[m], reps);
    }
    for (int m = 0; m < NMODES; m++) {
        free(open_t[m]);
        free(read_t[m]);
    }
    free(c.buf);
    free(image);
    free(k.arena);
    free(k.at);
    free(k.size);
    return 0;
}
