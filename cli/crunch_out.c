/*
 * crunch_out.c — mkkv crunch's output files: each written as a temporary
 * file beside its final name and renamed over it once complete, removed on
 * failure and by a SIGINT/SIGTERM/SIGHUP handler, so nothing half-written
 * is ever left under OUT's name or beside it.
 */
#include "crunch_out.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The temporary files (OUT.c, OUT.h, the depfile), removed by the signal
 * handler too: only async-signal-safe reads there. */
static char *volatile tmp_path[N_OUT];
static volatile sig_atomic_t tmp_live[N_OUT];
static const int caught[] = {SIGINT, SIGTERM, SIGHUP};
static struct sigaction saved[3];

static void on_signal(int sig)
{
    for (int i = 0; i < N_OUT; i++)
        if (tmp_live[i])
            unlink(tmp_path[i]);
    raise(sig); /* SA_RESETHAND put the default back */
}

/* A temporary file beside PATH, as slot I; NULL (reported) on failure. */
FILE *tmp_create(int i, const char *path)
{
    const char *slash = strrchr(path, '/');
    size_t dir_len = slash ? (size_t)(slash - path) + 1 : 0;
    char *tmp = malloc(strlen(path) + 16);
    if (!tmp) {
        fprintf(stderr, "mkkv: out of memory\n");
        return NULL;
    }
    sprintf(tmp, "%.*s.%s.XXXXXX", (int)dir_len, path, path + dir_len);
    sigset_t block, old;
    sigemptyset(&block);
    for (size_t k = 0; k < 3; k++)
        sigaddset(&block, caught[k]);
    sigprocmask(SIG_BLOCK, &block, &old);
    int fd = mkostemp(tmp, O_CLOEXEC);
    tmp_path[i] = tmp;
    tmp_live[i] = fd >= 0;
    sigprocmask(SIG_SETMASK, &old, NULL);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        fprintf(stderr, "mkkv: %s: cannot create a temporary file beside it: %s\n",
                quoted(path), strerror(errno));
        if (fd >= 0) {
            close(fd);
            unlink(tmp);
        }
        tmp_live[i] = 0;
        tmp_path[i] = NULL;
        free(tmp);
    }
    return f;
}

void tmp_drop(int i)
{
    if (tmp_live[i])
        unlink(tmp_path[i]);
    tmp_live[i] = 0;
    free(tmp_path[i]);
    tmp_path[i] = NULL;
}

/* Closes F (slot I), giving it a new file's mode; false (reported) if
 * anything written failed. */
bool tmp_finish(int i, FILE *f, const char *path)
{
    mode_t mask = umask(0);
    umask(mask);
    bool ok = !ferror(f) && fchmod(fileno(f), 0666 & ~mask) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok)
        fprintf(stderr, "mkkv: %s: cannot write: %s\n", quoted(path), strerror(errno));
    (void)i;
    return ok;
}

void tmp_signals(bool on)
{
    if (!on) {
        for (size_t k = 0; k < 3; k++)
            sigaction(caught[k], &saved[k], NULL);
        return;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    for (size_t k = 0; k < 3; k++)
        sigaction(caught[k], &sa, &saved[k]);
}

bool tmp_commit(int i, const char *path)
{
    if (!tmp_live[i])
        return true;
    if (rename(tmp_path[i], path) != 0) {
        fprintf(stderr, "mkkv: %s: cannot rename the temporary file over it: %s\n",
                quoted(path), strerror(errno));
        return false;
    }
    tmp_live[i] = 0;
    return true;
}
