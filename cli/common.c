/*
 * common.c — options, error reporting and progress shared by mkkv's
 * commands.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Takes a byte count for option NAME into *OUT; false after saying why. */
static bool size_arg(const command *cmd, const char *name, const char *arg, int64_t *out, int *rc)
{
    if (parse_size(arg, out))
        return true;
    *rc = usage_error(cmd, "%s: '%s' is not a byte count (digits, optional K/M/G/T)", name, arg);
    return false;
}

/* Handles option C if it is a common one: 1 if it was (*RC is then -1 to
 * go on, or an exit code: 0 after the help), 0 if it is the command's own. */
static int common_option(int c, const char *arg, common_opts *o, const command *cmd, int *rc)
{
    *rc = -1;
    switch (c) {
    case 't':
        o->open.backend = arg;
        return 1;
    case OPT_INDEX:
        o->open.index_path = arg;
        return 1;
    case OPT_NO_INDEX_CACHE:
        o->open.no_index_cache = true;
        return 1;
    case OPT_IMAGE_OFFSET:
        if (size_arg(cmd, "--image-offset", arg, &o->image_offset, rc))
            o->window = true;
        return 1;
    case OPT_IMAGE_LENGTH:
        if (size_arg(cmd, "--image-length", arg, &o->image_length, rc))
            o->window = true;
        return 1;
    case OPT_PARTITION: {
        char *end;
        errno = 0;
        long n = strtol(arg, &end, 10);
        if (*arg < '1' || *arg > '9' || *end || errno || n > INT_MAX)
            *rc = usage_error(cmd, "--partition: '%s' is not a partition number (1, 2, ...)", arg);
        else
            o->open.partition = (int)n;
        return 1;
    }
    case 'q':
        o->quiet = true;
        return 1;
    case 'h':
        fputs(cmd->help, stdout);
        *rc = EXIT_OK;
        return 1;
    default:
        return 0;
    }
}

int usage_error(const command *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = NULL;
    if (vasprintf(&msg, fmt, ap) < 0)
        msg = NULL;
    va_end(ap);
    /* Messages quote operands and options as given: escaped whole (mkkv's
     * own words pass unchanged). */
    fprintf(stderr, "mkkv: %s: %s\nTry 'mkkv %s --help'.\n", cmd->name,
            msg ? quoted(msg) : "out of memory", cmd->name);
    free(msg);
    return EXIT_USAGE;
}

int report(const kvro_error *err)
{
    print_error(err);
    return EXIT_FAIL;
}

void error_about(kvro_error *err, const char *source, const char *key)
{
    err->source[0] = err->key[0] = '\0'; /* whatever the record held before */
    kvro_error_context(err, err->status, source, key);
}

bool parse_size(const char *s, int64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || v < 0)
        return false;
    int shift = 0;
    switch (*end) {
    case 'K': shift = 10; end++; break;
    case 'M': shift = 20; end++; break;
    case 'G': shift = 30; end++; break;
    case 'T': shift = 40; end++; break;
    default: break;
    }
    if (*end || (shift && v > (INT64_MAX >> shift)))
        return false;
    *out = (int64_t)v << shift;
    return true;
}

static int64_t now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

void progress_start(progress_line *p, const char *what, bool quiet)
{
    p->on = !quiet && isatty(STDERR_FILENO);
    p->what = what;
    p->start_ms = p->last_ms = now_ms();
}

static void human(char *buf, size_t n, double v)
{
    const char *unit[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    snprintf(buf, n, u ? "%.1f %s" : "%.0f %s", v, unit[u]);
}

void human_bytes(char *buf, size_t n, int64_t bytes)
{
    human(buf, n, (double)bytes);
}

void format_bytes(char *buf, size_t n, int64_t bytes)
{
    human(buf, n, (double)bytes);
}

void progress_update(progress_line *p, int64_t items, int64_t bytes, int64_t total)
{
    if (!p->on)
        return;
    int64_t t = now_ms();
    if (t - p->last_ms < 100)
        return;
    p->last_ms = t;
    char done[32], rate[32];
    human(done, sizeof done, (double)bytes);
    double secs = (double)(t - p->start_ms) / 1000.0;
    human(rate, sizeof rate, secs > 0 ? (double)bytes / secs : 0);
    fprintf(stderr, "\r\033[K%s: ", p->what);
    if (items >= 0)
        fprintf(stderr, "%lld files, ", (long long)items);
    fprintf(stderr, "%s", done);
    if (total > 0)
        fprintf(stderr, " (%lld%%)", (long long)(bytes * 100 / total));
    fprintf(stderr, ", %s/s", rate);
    fflush(stderr);
}

void progress_done(progress_line *p)
{
    if (p->on)
        fprintf(stderr, "\r\033[K");
    p->on = false;
}

static int collect(void *arg, const char *name, kvro_kind kind)
{
    entry_list *l = arg;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 32;
        char **names = realloc(l->names, cap * sizeof *names);
        if (names)
            l->names = names;
        kvro_kind *kinds = names ? realloc(l->kinds, cap * sizeof *kinds) : NULL;
        if (!kinds)
            return l->oom = true;
        l->kinds = kinds;
        l->cap = cap;
    }
    if (!(l->names[l->n] = strdup(name)))
        return l->oom = true;
    l->kinds[l->n++] = kind;
    return 0;
}

kvro_status list_dir(kvro *kv, const char *dir, entry_list *out, kvro_error *err)
{
    memset(out, 0, sizeof *out);
    kvro_status s = kvro_list(kv, dir, collect, out, err);
    if (s == KVRO_OK && out->oom) { /* a cut listing must not pass for a whole one */
        s = kvro_error_set(err, KVRO_E_NOMEM, "out of memory listing it");
        error_about(err, kvro_source(kv), dir);
    }
    if (s != KVRO_OK)
        entry_list_free(out);
    return s;
}

void entry_list_free(entry_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->names[i]);
    free(l->names);
    free(l->kinds);
    memset(l, 0, sizeof *l);
}

char *key_join(const char *dir, const char *name)
{
    size_t d = strlen(dir), n = strlen(name);
    char *k = malloc(d + n + 2);
    if (!k)
        return NULL;
    memcpy(k, dir, d);
    if (d)
        k[d++] = '/';
    memcpy(k + d, name, n + 1);
    return k;
}

/* The argument getopt_long just failed on. It leaves optind past the
 * element once it has used its last character, and on it while inside a
 * cluster of short options ("-dash-key" stops at 'd'); operands skipped on
 * the way (it permutes) lie between BEFORE, optind on entry, and it. */
static const char *failed_arg(int argc, char **argv, int before)
{
    int prev = optind - 1;
    if (prev >= 1 && prev >= before && argv[prev][0] == '-' && argv[prev][1]) {
        const char *a = argv[prev];
        if (a[1] == '-' || (optopt && a[strlen(a) - 1] == optopt))
            return a;
    }
    return optind < argc ? argv[optind] : NULL;
}

/* Says what was wrong with an option: C is '?' (unknown, ambiguous, or a
 * value given to a flag) or ':' (a value missing). */
static int bad_option(const command *cmd, int c, int argc, char **argv, int before,
                      const struct option *longs)
{
    const char *a = failed_arg(argc, argv, before);
    if (!a || a[0] != '-') /* should not happen; still name what we know */
        return optopt ? usage_error(cmd, "bad option '-%c'", optopt)
                      : usage_error(cmd, "bad option");
    if (a[1] != '-') { /* a short option, maybe in a cluster */
        if (c == ':')
            return usage_error(cmd, "option '-%c' needs a value", optopt);
        if (strlen(a) == 2)
            return usage_error(cmd, "unknown option '%s'", a);
        return usage_error(cmd,
                           "unknown option '-%c' in '%s' (an operand that starts with '-' "
                           "goes after '--')",
                           optopt, a);
    }
    size_t n = strcspn(a, "=");
    if (c == ':')
        return usage_error(cmd, "option '%.*s' needs a value", (int)n, a);
    if (optopt) /* known, but it takes no value */
        return usage_error(cmd, "option '%.*s' takes no value", (int)n, a);
    char names[256] = "";
    size_t len = 0, matches = 0;
    for (const struct option *l = longs; l && l->name; l++)
        if (!strncmp(l->name, a + 2, n - 2) && len < sizeof names) {
            matches++;
            len += (size_t)snprintf(names + len, sizeof names - len, "%s--%s", len ? ", " : "",
                                    l->name);
        }
    if (matches > 1)
        return usage_error(cmd, "ambiguous option '%.*s' (%s)", (int)n, a, names);
    return usage_error(cmd, "unknown option '%.*s'", (int)n, a);
}

int parse_args(const command *cmd, int argc, char **argv, const char *shorts,
               const struct option *longs, common_opts *o, on_opt_fn on_opt, void *ctx)
{
    o->cmd = cmd;
    o->image_length = -1;
    opterr = 0;
    optind = 0; /* GNU: full reset */
    for (;;) {
        int before = optind;
        int c = getopt_long(argc, argv, shorts, longs, NULL);
        if (c == -1)
            break;
        if (c == '?' || c == ':')
            return bad_option(cmd, c, argc, argv, before, longs);
        int rc;
        if (common_option(c, optarg, o, cmd, &rc)) {
            if (rc >= 0)
                return rc;
            continue;
        }
        rc = on_opt ? on_opt(c, optarg, ctx)
                    : usage_error(cmd, "bad option '%s'", argv[optind - 1]);
        if (rc >= 0)
            return rc;
    }
    return -1;
}
