/*
 * outfile.c — the builders' temporary output files (outfile.h says the
 * promise). The signal handler reads only what it may: a path pointer and
 * a flag per slot, both set with the signals blocked so that it never
 * sees a slot half made.
 */
#include "outfile.h"

#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *volatile tmp_path[TMP_SLOTS];
static volatile sig_atomic_t tmp_live[TMP_SLOTS];
static const int caught[] = {SIGINT, SIGTERM, SIGHUP};
#define N_CAUGHT (sizeof caught / sizeof *caught)
static struct sigaction saved[N_CAUGHT];

static void on_signal(int sig)
{
    for (int i = 0; i < TMP_SLOTS; i++)
        if (tmp_live[i])
            unlink(tmp_path[i]);
    raise(sig); /* SA_RESETHAND put the default back: die of the same signal */
}

void tmp_signals(bool on)
{
    if (!on) {
        for (size_t k = 0; k < N_CAUGHT; k++)
            sigaction(caught[k], &saved[k], NULL);
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t k = 0; k < N_CAUGHT; k++)
        sigaction(caught[k], &sa, &saved[k]);
}

int tmp_open(int i, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    char *tmp = malloc(strlen(path) + 16);
    if (!tmp) {
        errno = ENOMEM;
        return -1;
    }
    sprintf(tmp, "%.*s.%s.XXXXXX", (int)dir_len, path, path + dir_len);
    /* No signal between creating the file and arming its removal. */
    sigset_t block, old;
    sigemptyset(&block);
    for (size_t k = 0; k < N_CAUGHT; k++)
        sigaddset(&block, caught[k]);
    sigprocmask(SIG_BLOCK, &block, &old);
    int fd = mkostemp(tmp, O_CLOEXEC);
    int saved_errno = errno;
    tmp_path[i] = tmp;
    tmp_live[i] = fd >= 0;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (fd < 0) {
        tmp_path[i] = NULL;
        free(tmp);
        errno = saved_errno;
    }
    return fd;
}

FILE *tmp_create(int i, const char *path)
{
    int fd = tmp_open(i, path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "mkkv: %s: cannot create a temporary file beside it: %s\n",
                quoted(path), strerror(errno));
        if (fd >= 0)
            close(fd);
        tmp_drop(i);
    }
    return f;
}

bool tmp_close(int fd, bool sync)
{
    mode_t mask = umask(0);
    umask(mask);
    bool ok = fchmod(fd, 0666 & ~mask) == 0 && (!sync || fsync(fd) == 0);
    int saved_errno = errno;
    ok = close(fd) == 0 && ok;
    if (ok || errno == 0)
        errno = saved_errno;
    return ok;
}

bool tmp_finish(int i, FILE *f, const char *path, bool sync)
{
    (void)i;
    bool ok = !ferror(f) && fflush(f) == 0;
    mode_t mask = umask(0);
    umask(mask);
    ok = ok && fchmod(fileno(f), 0666 & ~mask) == 0 && (!sync || fsync(fileno(f)) == 0);
    ok = fclose(f) == 0 && ok;
    if (!ok)
        fprintf(stderr, "mkkv: %s: cannot write: %s\n", quoted(path), strerror(errno));
    return ok;
}

bool tmp_rename(int i, const char *path, bool sync)
{
    if (!tmp_live[i])
        return true;
    if (rename(tmp_path[i], path) != 0)
        return false;
    tmp_live[i] = 0;
    if (!sync)
        return true;
    /* Make the rename itself durable; a failure here loses nothing. */
    const char *slash = strrchr(tmp_path[i], '/');
    char *dir = slash ? strndup(tmp_path[i], (size_t)(slash - tmp_path[i])) : strdup(".");
    int dfd = dir ? open(*dir ? dir : "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    free(dir);
    return true;
}

bool tmp_commit(int i, const char *path, bool sync)
{
    if (tmp_rename(i, path, sync))
        return true;
    fprintf(stderr, "mkkv: %s: cannot rename the temporary file over it: %s\n", quoted(path),
            strerror(errno));
    return false;
}

void tmp_drop(int i)
{
    if (tmp_live[i])
        unlink(tmp_path[i]);
    tmp_live[i] = 0;
    free(tmp_path[i]);
    tmp_path[i] = NULL;
}
