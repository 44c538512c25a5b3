/*
 * io.c — reading the host's files, the one way every backend does it.
 */
#include "backend.h"

#include <errno.h>
#include <unistd.h>

int kvro__pread(int fd, void *buf, size_t n, int64_t off, size_t *got)
{
    *got = 0;
    while (*got < n) {
        /* Linux moves at most ~2 GiB a call: ask in 1 GiB pieces. */
        size_t want = n - *got < ((size_t)1 << 30) ? n - *got : (size_t)1 << 30;
        ssize_t r = pread(fd, (char *)buf + *got, want, (off_t)(off + (int64_t)*got));
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return errno;
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}
