/*
 * bench/targz_read.c — the timing half of bench/targz_streams.sh and
 * bench/targz_order.sh (see there).
 *
 * Usage:
 *   targz_read streams ARCHIVE INDEX THREADS KEY...
 *       opens ARCHIVE (index kept in INDEX) and reads every KEY whole in
 *       16 KiB pieces: THREADS 1 round-robin over the keys from one thread
 *       (a piece of the first, then of the second, ...), THREADS 0 one
 *       thread per key, each reading its key from start to end.
 *   targz_read files ARCHIVE INDEX LIST
 *       opens ARCHIVE and reads every key named in the file LIST (one a
 *       line) whole, in that order, one kvro_read each.
 *   targz_read random IMAGE INDEX KEY COUNT SIZE
 *       opens IMAGE (any source; INDEX for a .tar.gz, "" for none) and
 *       reads COUNT pieces of SIZE bytes of KEY at random offsets (a fixed
 *       sequence, the same for every image: the checksums of two images
 *       holding the same KEY must agree). bench/fat_build.sh.
 * Prints "seconds S", "cpu S" (all threads), "bytes N" and "checksum X"
 * (a sum of every byte read, so that two orders can be checked to read the
 * same data), timing the reads only: the open (loading INDEX, made by the first run) is not
 * counted. $KVRO_READ_CACHE sets the handle's read cache budget.
 */
#define _GNU_SOURCE
#include <kvro/kvro.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PIECE 16384

static void die(const char *what, const kvro_error *err)
{
    if (err)
        kvro_error_print(stderr, what, err);
    else
        fprintf(stderr, "targz_read: %s\n", what);
    exit(1);
}

static double clock_of(clockid_t id)
{
    struct timespec t;
    clock_gettime(id, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double now(void)
{
    return clock_of(CLOCK_MONOTONIC);
}

/* CPU seconds of all threads: on a loaded machine the wall clock also
 * counts other processes' turns, this does not. */
static double cpu(void)
{
    return clock_of(CLOCK_PROCESS_CPUTIME_ID);
}

static uint64_t sum_of(const unsigned char *p, int64_t n)
{
    uint64_t s = 0;
    for (int64_t i = 0; i < n; i++)
        s += p[i];
    return s;
}

typedef struct stream {
    kvro *kv;
    const char *key;
    int64_t size, at;
    uint64_t sum;
} stream;

/* The next piece of S; false at its end. */
static int piece(stream *s, unsigned char *buf)
{
    if (s->at >= s->size)
        return 0;
    int64_t got;
    kvro_error err;
    if (kvro_read(s->kv, s->key, s->at, PIECE, buf, &got, &err) != KVRO_OK)
        die(s->key, &err);
    if (got <= 0)
        die("short read", NULL);
    s->sum += sum_of(buf, got);
    s->at += got;
    return 1;
}

static void *stream_all(void *arg)
{
    stream *s = arg;
    unsigned char buf[PIECE];
    while (piece(s, buf))
        ;
    return NULL;
}

static kvro *open_archive(const char *path, const char *index)
{
    kvro_options o = {.index_path = index};
    kvro *kv;
    kvro_error err;
    if (kvro_open_opts(path, &o, &kv, &err) != KVRO_OK)
        die(path, &err);
    return kv;
}

static int streams(kvro *kv, int threads, int n, char **keys)
{
    stream *s = calloc((size_t)n, sizeof *s);
    pthread_t *t = calloc((size_t)n, sizeof *t);
    int64_t total = 0;
    kvro_error err;
    for (int i = 0; i < n; i++) {
        s[i] = (stream){.kv = kv, .key = keys[i]};
        if (kvro_size(kv, keys[i], &s[i].size, &err) != KVRO_OK)
            die(keys[i], &err);
        total += s[i].size;
    }
    double t0 = now(), c0 = cpu();
    if (threads) {
        unsigned char buf[PIECE];
        for (int more = 1; more;) {
            more = 0;
            for (int i = 0; i < n; i++)
                more |= piece(&s[i], buf);
        }
    } else {
        for (int i = 0; i < n; i++)
            if (pthread_create(&t[i], NULL, stream_all, &s[i]) != 0)
                die("pthread_create", NULL);
        for (int i = 0; i < n; i++)
            pthread_join(t[i], NULL);
    }
    double t1 = now(), c1 = cpu();
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        sum += s[i].sum;
    printf("seconds %.6f\ncpu %.6f\nbytes %lld\nchecksum %llu\n", t1 - t0, c1 - c0,
           (long long)total, (unsigned long long)sum);
    free(s);
    free(t);
    return 0;
}

static int files(kvro *kv, const char *list)
{
    FILE *f = fopen(list, "r");
    if (!f)
        die(list, NULL);
    char **keys = NULL;
    size_t n = 0, cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[len - 1] = 0;
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            keys = realloc(keys, cap * sizeof *keys);
        }
        keys[n++] = strdup(line);
    }
    free(line);
    fclose(f);
    int64_t *sizes = malloc(n * sizeof *sizes), biggest = 1, total = 0;
    kvro_error err;
    for (size_t i = 0; i < n; i++) {
        if (kvro_size(kv, keys[i], &sizes[i], &err) != KVRO_OK)
            die(keys[i], &err);
        biggest = sizes[i] > biggest ? sizes[i] : biggest;
    }
    unsigned char *buf = malloc((size_t)biggest);
    uint64_t sum = 0;
    double t0 = now(), c0 = cpu();
    for (size_t i = 0; i < n; i++) {
        int64_t got;
        if (kvro_read(kv, keys[i], 0, sizes[i], buf, &got, &err) != KVRO_OK)
            die(keys[i], &err);
        sum += sum_of(buf, got);
        total += got;
    }
    double t1 = now(), c1 = cpu();
    printf("seconds %.6f\ncpu %.6f\nbytes %lld\nchecksum %llu\nfiles %zu\n", t1 - t0, c1 - c0,
           (long long)total, (unsigned long long)sum, n);
    for (size_t i = 0; i < n; i++)
        free(keys[i]);
    free(keys);
    free(sizes);
    free(buf);
    return 0;
}

/* A fixed pseudo-random sequence (xorshift64*), the same everywhere. */
static uint64_t next_random(uint64_t *x)
{
    *x ^= *x >> 12, *x ^= *x << 25, *x ^= *x >> 27;
    return *x * 2685821657736338717ull;
}

static int random_reads(kvro *kv, const char *key, long count, long size)
{
    kvro_error err;
    int64_t total;
    if (kvro_size(kv, key, &total, &err) != KVRO_OK)
        die(key, &err);
    if (size <= 0 || total < size)
        die("the value is smaller than one read", NULL);
    unsigned char *buf = malloc((size_t)size);
    uint64_t x = 88172645463325252ull, sum = 0;
    double t0 = now(), c0 = cpu();
    for (long i = 0; i < count; i++) {
        int64_t off = (int64_t)(next_random(&x) % (uint64_t)(total - size + 1)), got;
        if (kvro_read(kv, key, off, size, buf, &got, &err) != KVRO_OK)
            die(key, &err);
        if (got != size)
            die("short read", NULL);
        sum += sum_of(buf, got);
    }
    double t1 = now(), c1 = cpu();
    printf("seconds %.6f\ncpu %.6f\nbytes %lld\nchecksum %llu\n", t1 - t0, c1 - c0,
           (long long)count * size, (unsigned long long)sum);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 7 && !strcmp(argv[1], "random")) {
        kvro *kv = open_archive(argv[2], *argv[3] ? argv[3] : NULL);
        int r = random_reads(kv, argv[4], atol(argv[5]), atol(argv[6]));
        kvro_close(kv);
        return r;
    }
    if (argc >= 6 && !strcmp(argv[1], "streams")) {
        kvro *kv = open_archive(argv[2], argv[3]);
        int r = streams(kv, atoi(argv[4]), argc - 5, argv + 5);
        kvro_close(kv);
        return r;
    }
    if (argc == 5 && !strcmp(argv[1], "files")) {
        kvro *kv = open_archive(argv[2], argv[3]);
        int r = files(kv, argv[4]);
        kvro_close(kv);
        return r;
    }
    fprintf(stderr, "usage: targz_read streams ARCHIVE INDEX THREADS KEY...\n"
                    "       targz_read files ARCHIVE INDEX LIST\n"
                    "       targz_read random IMAGE INDEX KEY COUNT SIZE\n");
    return 2;
}
