/*
 * copy_floor.c — the least work any image builder must do: read every
 * file named on standard input (NUL-separated) and write their bytes,
 * back to back, into one new file (fsync it, with --fsync) and rename it
 * over OUT. No layout, no metadata, no checks. bench/fat_build.sh times it
 * beside mkkv fat and mkfs.fat + mcopy, so that a speed-up can be read
 * against the most that any builder could gain.
 *
 * Usage: find DIR -type f -print0 | copy_floor [--fsync] OUT
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { CHUNK = 256 << 10 };

int main(int argc, char **argv)
{
    int sync = argc == 3 && !strcmp(argv[1], "--fsync");
    if (argc != 2 + sync) {
        fprintf(stderr, "usage: find DIR -type f -print0 | copy_floor [--fsync] OUT\n");
        return 2;
    }
    const char *dest = argv[1 + sync];
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", dest);
    int out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    char *buf = malloc(CHUNK);
    if (out < 0 || !buf) {
        perror(tmp);
        return 1;
    }
    size_t n = 0;
    off_t at = 0;
    char *name = NULL;
    size_t cap = 0;
    while (getdelim(&name, &cap, '\0', stdin) > 0) {
        int in = open(name, O_RDONLY | O_CLOEXEC);
        if (in < 0) {
            perror(name);
            return 1;
        }
        for (;;) {
            if (n == CHUNK) {
                if (pwrite(out, buf, n, at) != (ssize_t)n) {
                    perror(tmp);
                    return 1;
                }
                at += (off_t)n, n = 0;
            }
            ssize_t k = read(in, buf + n, CHUNK - n);
            if (k < 0) {
                perror(name);
                return 1;
            }
            if (k == 0)
                break;
            n += (size_t)k;
        }
        close(in);
    }
    if ((n && pwrite(out, buf, n, at) != (ssize_t)n) || (sync && fsync(out) != 0) ||
        close(out) != 0 || rename(tmp, dest) != 0) {
        perror(tmp);
        return 1;
    }
    free(buf);
    free(name);
    return 0;
}
