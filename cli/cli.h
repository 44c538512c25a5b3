/*
 * cli.h — what mkkv's commands share: the command table, common options,
 * error reporting in the one "mkkv: SOURCE: KEY: reason" shape, and a
 * progress line. Uses only the public kvro API.
 */
#ifndef KVRO_CLI_H
#define KVRO_CLI_H

#include <kvro/kvro.h>

#include <stdbool.h>
#include <stdint.h>

/* Exit codes. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary; /* one line for mkkv --help */
    const char *help;    /* full text for mkkv CMD --help */
} command;

extern const command cmd_ls, cmd_cat, cmd_stat, cmd_verify, cmd_tar, cmd_cache;
/* build_fat.c, fs_cmds.c */
extern const command cmd_fat, cmd_put, cmd_mkdir, cmd_rm;

/* Options every command that opens a source understands. */
typedef struct common_opts {
    kvro_options open;
    bool quiet;
    /* --image-offset / --image-length: the image is a window of SOURCE. */
    bool window;
    int64_t image_offset;
    int64_t image_length; /* -1: up to SOURCE's end */
    const command *cmd;   /* for usage errors (set by parse_args) */
} common_opts;

/* Long options shared by commands, with these ids (> 255). */
enum {
    OPT_TYPE = 256,
    OPT_INDEX,
    OPT_NO_INDEX_CACHE,
    OPT_IMAGE_OFFSET,
    OPT_IMAGE_LENGTH,
    OPT_PARTITION,
    OPT_HELP,
    OPT_FIRST_CMD
};
#define COMMON_LONG_OPTIONS                                                                       \
    {"type", required_argument, 0, 't'}, {"index", required_argument, 0, OPT_INDEX},              \
        {"no-index-cache", no_argument, 0, OPT_NO_INDEX_CACHE},                                   \
        {"image-offset", required_argument, 0, OPT_IMAGE_OFFSET},                                 \
        {"image-length", required_argument, 0, OPT_IMAGE_LENGTH},                                 \
        {"partition", required_argument, 0, OPT_PARTITION}, {"quiet", no_argument, 0, 'q'},       \
        {"help", no_argument, 0, 'h'}
/* ':' first: a missing value is told apart from an unknown option. Options
 * and operands may be mixed; "--" ends the options. */
#define COMMON_SHORT_OPTIONS ":t:qh"
#define COMMON_HELP                                                                               \
    "  -t, --type NAME       open SOURCE with backend NAME (default: detected)\n"                 \
    "      --image-offset N  the image starts N bytes into SOURCE (a partition of a\n"            \
    "                        disk image, an archive appended to a program)\n"                     \
    "      --image-length N  the image is N bytes long (default: up to SOURCE's end)\n"           \
    "      --partition N     a disk image's partition N, numbered from 1 as Linux\n"              \
    "                        does (default: the only FAT one; 'mkkv stat IMAGE'\n"               \
    "                        lists them)\n"                                                        \
    "      --index FILE      tar.gz: keep the access index in FILE (a new file or a\n"            \
    "                        kvro index; never the archive or any other file)\n"                  \
    "      --no-index-cache  tar.gz: do not save the access index\n"                              \
    "  -q, --quiet           no progress output\n"                                                \
    "  -h, --help            show this help\n"                                                    \
    "N is a byte count: decimal, with an optional K, M, G or T (x1024).\n"
/* What SOURCE '-' and '--' do; at the end of each command's help. */
#define SOURCE_HELP                                                                               \
    "\n"                                                                                          \
    "SOURCE '-' is an image read from standard input (a terminal is refused;\n"                   \
    "write ./- for a file named '-'). A file redirected there (< IMAGE) is read\n"                \
    "in place, from its current position. Anything else (a pipe) is read whole:\n"                \
    "into memory up to 64 MiB, or up to $KVRO_STDIN_MEMORY_MAX bytes if set (e.g.\n"              \
    "16M); past that, all of it into an unlinked temporary file in $TMPDIR (else\n"               \
    "/tmp), gone when mkkv exits. A .tar.gz on standard input has no path to key\n"               \
    "a saved index on: its index is built in memory, or kept in --index FILE.\n"                  \
    "\n"                                                                                          \
    "Options may come before or after the operands; '--' ends them, so an operand\n"              \
    "that starts with '-' goes after it: mkkv cat SOURCE -- -KEY.\n"

/* Runs getopt_long over a command's arguments; common options are handled
 * there, others go to ON_OPT (which returns -1 to go on, or an exit code
 * after saying why). An unknown option, or one missing its value, is a
 * usage error naming it. Returns -1 to go on with the operands at optind,
 * or an exit code. */
struct option;
typedef int (*on_opt_fn)(int c, const char *arg, void *ctx);
int parse_args(const command *cmd, int argc, char **argv, const char *shorts,
               const struct option *longs, common_opts *o, on_opt_fn on_opt, void *ctx);

/* Prints "mkkv: CMD: MSG" and a pointer to --help; returns EXIT_USAGE. */
int usage_error(const command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints a kvro error as "mkkv: SOURCE: KEY: reason"; returns EXIT_FAIL. */
int report(const kvro_error *err);

/* ----------------------------------------------------------- quote.c */

/* Names are shown escaped (GNU's "escape" style, independent of the
 * locale): printable ASCII and valid UTF-8 as is, a backslash doubled,
 * \a \b \t \n \v \f \r, and any other control character (C0, DEL, C1)
 * or byte that is not valid UTF-8 as \ooo octal. So no name can drive the
 * terminal or pass for two lines. */
#define QUOTING_HELP                                                                              \
    "Names are shown escaped, as GNU ls -b does: a backslash as \\\\, a newline as\n"         \
    "\\n (also \\a \\b \\t \\v \\f \\r), any other control character and any byte\n" \
    "that is not valid UTF-8 as \\ooo octal (ESC is \\033); printable UTF-8 is kept.\n"
/* S escaped, in one of a few buffers used in turn: valid until 7 more
 * calls. Never NULL (a placeholder if out of memory). */
const char *quoted(const char *s);
/* Writes S escaped to F. */
void quote_put(FILE *f, const char *s);
/* "mkkv: SOURCE: KEY: reason\n" on stderr, each part escaped (what
 * kvro_error_print writes, made safe for a terminal). */
void print_error(const kvro_error *err);

/* Names what ERR is about, ERR having just been filled by kvro_error_set
 * (which sets only the status and the detail): SOURCE, and KEY (NULL for
 * the source itself), through kvro_error_context. */
void error_about(kvro_error *err, const char *source, const char *key);

/* ---------------------------------------------------------- source.c */

/* The name messages give SOURCE: "standard input" for "-". */
const char *source_name(const char *source);
/* Whether SOURCE is "-", standard input. */
bool source_is_stdin(const char *source);

/* Opens SOURCE with the common options: a path through kvro_open; "-"
 * (standard input) or any SOURCE with --image-offset/--image-length as an
 * I/O object through kvro_open_io. Reports failure; returns EXIT_OK or an
 * exit code. */
int open_source(const char *source, const common_opts *o, kvro **kv);

/* Parses a non-negative decimal number (with an optional K/M/G/T binary
 * suffix); false if it is not one. */
bool parse_size(const char *s, int64_t *out);

/* A directory's entries, in the order kvro_list gives them (by name). */
typedef struct entry_list {
    char **names;
    kvro_kind *kinds;
    size_t n, cap;
    bool oom;
} entry_list;
kvro_status list_dir(kvro *kv, const char *dir, entry_list *out, kvro_error *err);
void entry_list_free(entry_list *l);
/* DIR + "/" + NAME ("" + NAME for the root); malloc'd, NULL if out of memory. */
char *key_join(const char *dir, const char *name);

/* A progress line on stderr, only when stderr is a terminal and not quiet;
 * redrawn at most ten times a second. */
typedef struct progress_line {
    bool on;
    const char *what;
    int64_t last_ms, start_ms;
} progress_line;
void progress_start(progress_line *p, const char *what, bool quiet);
void progress_update(progress_line *p, int64_t items, int64_t bytes, int64_t total_bytes);
void progress_done(progress_line *p);
/* BYTES for people: "512 B", "1.5 KiB", "2.0 GiB". */
void format_bytes(char *buf, size_t n, int64_t bytes);
/* BYTES in binary units for people: "1.2 MiB", "512 B". */
void human_bytes(char *buf, size_t n, int64_t bytes);

#endif
