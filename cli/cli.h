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

extern const command cmd_ls, cmd_cat, cmd_stat, cmd_verify, cmd_tar;

/* Options every command that opens a source understands. */
typedef struct common_opts {
    kvro_options open;
    bool quiet;
} common_opts;

/* Long options shared by commands, with these ids (> 255). */
enum { OPT_TYPE = 256, OPT_INDEX, OPT_NO_INDEX_CACHE, OPT_HELP, OPT_FIRST_CMD };
#define COMMON_LONG_OPTIONS                                                                       \
    {"type", required_argument, 0, 't'}, {"index", required_argument, 0, OPT_INDEX},              \
        {"no-index-cache", no_argument, 0, OPT_NO_INDEX_CACHE}, {"quiet", no_argument, 0, 'q'},   \
        {"help", no_argument, 0, 'h'}
#define COMMON_SHORT_OPTIONS "+t:qh"
#define COMMON_HELP                                                                               \
    "  -t, --type NAME       open SOURCE with backend NAME (default: detected)\n"                 \
    "      --index FILE      tar.gz: keep the access index in FILE\n"                             \
    "      --no-index-cache  tar.gz: do not save the access index\n"                              \
    "  -q, --quiet           no progress output\n"                                                \
    "  -h, --help            show this help\n"

/* Handles a common option C (from getopt_long); returns 1 if it was one,
 * 0 if not, -1 after printing the help (then exit 0). */
int common_option(int c, const char *arg, common_opts *o, const command *cmd);

/* Runs getopt_long over a command's arguments; common options are handled
 * there, others go to ON_OPT (which returns -1 to go on, or an exit code
 * after saying why). Returns -1 to go on with the operands at optind, or
 * an exit code. */
struct option;
typedef int (*on_opt_fn)(int c, const char *arg, void *ctx);
int parse_args(const command *cmd, int argc, char **argv, const char *shorts,
               const struct option *longs, common_opts *o, on_opt_fn on_opt, void *ctx);

/* Prints "mkkv: CMD: MSG" and a pointer to --help; returns EXIT_USAGE. */
int usage_error(const command *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints a kvro error as "mkkv: SOURCE: KEY: reason"; returns EXIT_FAIL. */
int report(const kvro_error *err);

/* Opens SOURCE with the common options, reporting failure. */
int open_source(const char *path, const common_opts *o, kvro **kv);

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
typedef struct progress {
    bool on;
    const char *what;
    int64_t last_ms, start_ms;
} progress;
void progress_start(progress *p, const char *what, bool quiet);
void progress_update(progress *p, int64_t items, int64_t bytes, int64_t total_bytes);
void progress_done(progress *p);

#endif
