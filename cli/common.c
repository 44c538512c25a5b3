/*
 * common.c — options, error reporting and progress shared by mkkv's
 * commands.
 */
#include "cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int common_option(int c, const char *arg, common_opts *o, const command *cmd)
{
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
    case 'q':
        o->quiet = true;
        return 1;
    case 'h':
        fputs(cmd->help, stdout);
        return -1;
    default:
        return 0;
    }
}

int usage_error(const command *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mkkv: %s: ", cmd->name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'mkkv %s --help'.\n", cmd->name);
    va_end(ap);
    return EXIT_USAGE;
}

int report(const kvro_error *err)
{
    kvro_error_print(stderr, "mkkv", err);
    return EXIT_FAIL;
}

/* Progress reported by the library while opening (e.g. indexing a tar.gz). */
static void open_progress(void *arg, const char *what, int64_t done, int64_t total)
{
    progress *p = arg;
    if (!p->what)
        progress_start(p, what, false);
    progress_update(p, -1, done, total);
}

static void open_warning(void *arg, const char *message)
{
    fprintf(stderr, "mkkv: warning: %s: %s\n", (const char *)arg, message);
}

int open_source(const char *path, const common_opts *o, kvro **kv)
{
    kvro_error err;
    kvro_options opts = o->open;
    opts.warning = open_warning;
    opts.warning_arg = (void *)path;
    progress p = {0};
    if (!o->quiet && isatty(STDERR_FILENO)) {
        opts.progress = open_progress;
        opts.progress_arg = &p;
    }
    kvro_status s = kvro_open_opts(path, &opts, kv, &err);
    if (p.what)
        progress_done(&p);
    return s == KVRO_OK ? EXIT_OK : report(&err);
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

void progress_start(progress *p, const char *what, bool quiet)
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

void progress_update(progress *p, int64_t items, int64_t bytes, int64_t total)
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

void progress_done(progress *p)
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
    if (s == KVRO_OK && out->oom) /* a cut listing must not pass for a whole one */
        s = kvro_error_set(err, KVRO_E_NOMEM, "out of memory listing '%s'", dir);
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

int parse_args(const command *cmd, int argc, char **argv, const char *shorts,
                 const struct option *longs, common_opts *o, on_opt_fn on_opt, void *ctx)
{
    opterr = 0;
    optind = 0; /* GNU: full reset */
    int c;
    while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
        if (c == '?')
            return usage_error(cmd, "unknown option '%s'", argv[optind - 1]);
        if (c == ':')
            return usage_error(cmd, "option '%s' needs a value", argv[optind - 1]);
        int r = common_option(c, optarg, o, cmd);
        if (r < 0)
            return EXIT_OK;
        if (r > 0)
            continue;
        r = on_opt ? on_opt(c, optarg, ctx) : usage_error(cmd, "bad option '%s'", argv[optind - 1]);
        if (r >= 0)
            return r;
    }
    return -1;
}

