/*
 * outfile.h — how every mkkv builder (tar, crunch, fat) writes its output
 * (outfile.c): into a temporary file beside the final name, renamed over
 * it once complete, removed on failure and by a SIGINT/SIGTERM/SIGHUP
 * handler, so that nothing half-written is ever left under OUT's name or
 * beside it, and a failed build never touches an existing OUT. Up to
 * TMP_SLOTS files at once (crunch writes OUT.c, OUT.h, a depfile and
 * OUT.bin).
 */
#ifndef KVRO_CLI_OUTFILE_H
#define KVRO_CLI_OUTFILE_H

#include <stdbool.h>
#include <stdio.h>

enum { TMP_SLOTS = 4 };

/*
 * Durability is asked for (--fsync), not the default: like tar, bsdtar,
 * mcopy, the compiler and the linker, a builder's output is left to the
 * kernel's write-back, because it can be made again from its source, and
 * syncing costs a build of 50 MB 40% more here (mkkv fat 96 ms, 136 ms
 * synced; bench/fat_build.sh). The rename still means that an error or a
 * signal never leaves a part under OUT's name; only a crash of the
 * machine soon after a build can (ext4's auto_da_alloc writes a file
 * renamed over another out with the rename, so there the old OUT or the
 * new one survives whole).
 */
#define FSYNC_HELP                                                                                 \
    "      --fsync           make OUT durable (fsync it and its directory) before\n"               \
    "                        saying done; without it, like tar and the linker,\n"                  \
    "                        OUT is left to the kernel's write-back\n"

/* Installs (ON) or restores the handler that removes live temporaries;
 * around every use of the slots. */
void tmp_signals(bool on);
/* A temporary file ".NAME.XXXXXX" beside PATH, as slot I: its descriptor,
 * or -1 with errno set (nothing reported). The handler removes it from
 * the moment it exists. */
int tmp_open(int i, const char *path);
/* The same as a stdio stream; NULL after saying why on standard error. */
FILE *tmp_create(int i, const char *path);
/* Gives descriptor FD the mode a new file gets, syncs it if SYNC, and
 * closes it; false (errno set) if any of it failed. */
bool tmp_close(int fd, bool sync);
/* Flushes and closes F (slot I) as tmp_close does FD; false after saying
 * why, naming PATH. */
bool tmp_finish(int i, FILE *f, const char *path, bool sync);
/* Renames slot I's file over PATH, then, if SYNC, syncs the directory so
 * that the rename lasts; false (errno set) if the rename failed. Nothing
 * to do if the slot is not live. */
bool tmp_rename(int i, const char *path, bool sync);
/* tmp_rename, saying why on standard error if it failed. */
bool tmp_commit(int i, const char *path, bool sync);
/* Removes slot I's file if it is still there, and forgets it. */
void tmp_drop(int i);

#endif
