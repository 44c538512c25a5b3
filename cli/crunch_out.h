/*
 * crunch_out.h — mkkv crunch's output (crunch_out.c): the buffered writer
 * of C string literals, depfile paths and table names; its files are
 * outfile.h's temporaries (slots 0 .. N_OUT-1: OUT.c, OUT.h, the depfile,
 * and OUT.bin with --incbin).
 */
#ifndef KVRO_CLI_CRUNCH_OUT_H
#define KVRO_CLI_CRUNCH_OUT_H

#include "cli.h"
#include "outfile.h"

#include <stdbool.h>
#include <stdio.h>

/* Output slots (outfile.h): OUT.c, OUT.h, the depfile, OUT.bin. */
enum { N_OUT = 4 };

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
