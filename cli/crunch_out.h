/*
 * crunch_out.h — mkkv crunch's output files (crunch_out.c): temporaries
 * renamed into place (slots 0 .. N_OUT-1: OUT.c, OUT.h, the depfile, and
 * OUT.bin with --incbin), and the buffered writer of C string literals.
 */
#ifndef KVRO_CLI_CRUNCH_OUT_H
#define KVRO_CLI_CRUNCH_OUT_H

#include "cli.h"

#include <stdbool.h>
#include <stdio.h>

enum { N_OUT = 4 };

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

/* A C string literal being written: bytes go through BUF (stdio per
 * byte made generation as slow as xxd), escaped as crunch_out.c says. */
typedef struct lit_writer {
    FILE *f;
    size_t col, len; /* characters on the current line; bytes in buf */
    int pending;     /* a byte whose octal escape waits for the next byte, or -1 */
    char buf[1 << 16];
} lit_writer;

/* Starts a literal (on a new line) written to F. */
void lit_open(lit_writer *w, FILE *f);
/* Appends N bytes to the literal. */
void lit_bytes(lit_writer *w, const unsigned char *p, size_t n);
/* Ends the literal (the closing quote) and flushes it to F. */
void lit_close(lit_writer *w);

/* Writes P as Make reads a path in a rule; false if it holds a line break. */
bool put_make_path(FILE *f, const char *p);

/* Table names: a C identifier ([A-Za-z_][A-Za-z0-9_]*); C and C++
 * keywords (and the generated file's crunch__ statics), which a table
 * cannot be named; OUT's base name less ".c" made an identifier
 * (malloc'd). */
bool crunch_is_ident(const char *s);
bool crunch_is_keyword(const char *s);
char *crunch_default_name(const char *out);
/* Whether OUT's directory lies inside directory SOURCE. */
bool crunch_out_inside(const char *source, const char *out);

#endif
