/*
 * fuzz_tar.c — libFuzzer harness for the tar backend: each input is an
 * archive, plain or (when it starts with the gzip magic) gzip-compressed,
 * opened by the "tar" backend and walked through the public API (walk.c),
 * so the header scan, pax and GNU extensions, the member index, link
 * resolution and the gzip access points built at open are all driven by
 * the fuzzer's bytes.
 *
 * The input lives in a memfd opened by its /proc/self/fd path, and the
 * .tar.gz index cache is off (no_index_cache, no index_path): nothing is
 * written anywhere, so inputs are independent and runs leave no files.
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

static kvro_status open_as(const char *path, const char *backend, kvro **kv)
{
    kvro_options o = {
        .backend = backend, .no_index_cache = true, .warning = on_warning, .progress = on_progress};
    kvro_error e;
    fz_error_poison(&e);
    *kv = NULL;
    kvro_status s = kvro_open_opts(path, &o, kv, &e);
    fz_check_error(s, &e);
    FZ_CHECK((s == KVRO_OK) == (*kv != NULL));
    FZ_CHECK(s != KVRO_OK || strcmp(kvro_backend_of(*kv), "tar") == 0);
    return s;
}

/* The input is opened by bidding first (so the tar backend's bid, which
 * inflates a .tar.gz's head, is fuzzed too); where no backend bids, or the
 * bid's open fails, with "tar" forced. An open that failed after the bid
 * fails the same way forced: it is the same backend. */
static void run(const char *path)
{
    kvro *kv;
    kvro_status bid = open_as(path, NULL, &kv);
    if (bid != KVRO_OK) {
        kvro_status s = open_as(path, "tar", &kv);
        FZ_CHECK(bid == KVRO_E_UNSUPPORTED || s == bid);
        if (s != KVRO_OK)
            return;
    }
    fz_walk_opts w = {.max_depth = MAX_DEPTH, .max_entries = MAX_ENTRIES, .max_files = MAX_FILES};
    fz_walk(kv, &w);
    fz_hostile_keys(kv);
    kvro_close(kv);
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
    run(path);
    close(fd);
    return 0;
}
