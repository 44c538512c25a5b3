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
/* Closes F (slot I) as tmp_close without syncing; false after saying why,
 * naming PATH. */
bool tmp_finish(int i, FILE *f, const char *path);
/* Renames slot I's file over PATH, then, if SYNC, syncs the directory so
 * that the rename lasts; false (errno set) if the rename failed. Nothing
 * to do if the slot is not live. */
bool tmp_rename(int i, const char *path, bool sync);
/* tmp_rename without the sync, saying why on standard error if it failed. */
bool tmp_commit(int i, const char *path);
/* Removes slot I's file if it is still there, and forgets it. */
void tmp_drop(int i);

#endif
