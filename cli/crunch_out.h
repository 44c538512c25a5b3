/*
 * crunch_out.h — temporary output files for mkkv crunch (crunch_out.c).
 * Slots 0 .. N_OUT-1: OUT.c, OUT.h, the depfile.
 */
#ifndef KVRO_CLI_CRUNCH_OUT_H
#define KVRO_CLI_CRUNCH_OUT_H

#include "cli.h"

#include <stdbool.h>
#include <stdio.h>

enum { N_OUT = 3 };

/* Installs (ON) or restores the handler that removes live temporaries. */
void tmp_signals(bool on);
/* A temporary file beside PATH, as slot I; NULL (reported) on failure. */
FILE *tmp_create(int i, const char *path);
/* Closes F (slot I) with a new file's mode; false (reported) on failure. */
bool tmp_finish(int i, FILE *f, const char *path);
/* Renames slot I's file over PATH (nothing to do if it is not live). */
bool tmp_commit(int i, const char *path);
/* Removes slot I's file if still there and forgets it. */
void tmp_drop(int i);

#endif
