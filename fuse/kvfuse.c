/*
 * kvfuse.c — mounts any kvro source read-only: `kvfuse [options] SOURCE
 * MOUNTPOINT`, with libfuse 3's low-level API (ops.c).
 *
 * Order matters for the caller: the source is opened (and a .tar.gz
 * indexed) before anything is mounted, so a corrupt or unreadable source
 * fails here with kvro's message and exit 1, leaving no mount behind; then
 * the mount is made, and only then does the daemon detach
 * (fuse_daemonize), so when `kvfuse` returns the mount point already
 * answers — the kernel queues requests until the loop reads them.
 *
 * Options are FUSE's (passed through fuse_opt to libfuse), plus kvfuse's
 * own -o index=, backend=, image_offset=, partition=, uid=, gid=, umask=.
 * mount.fuse3 (`mount -t fuse.kvfuse SOURCE MNT -o ...`, /etc/fstab) runs
 * `kvfuse SOURCE MNT -o OPTS`, options after the operands: fuse_opt takes
 * them in any order. Exit status: 0, 1 failure, 2 usage.
 */
#include "kvfuse.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

/* A day: the image cannot change while mounted, so the kernel's caches
 * never need to ask again; only memory pressure evicts them. */
#define KVFUSE_TIMEOUT 86400.0

typedef struct conf {
    char *source;
    int operands; /* SOURCE and MOUNTPOINT seen */
    char *index;
    char *backend;
    char *image_offset;
    int partition;
    unsigned uid, gid, umask; /* -1: not given */
    bool help, version;
} conf;

enum { KEY_HELP, KEY_VERSION };

#define CONF_OPT(t, field)                                                                         \
    {                                                                                              \
        t, offsetof(conf, field), 0                                                                \
    }
static const struct fuse_opt conf_opts[] = {
    CONF_OPT("index=%s", index),
    CONF_OPT("backend=%s", backend),
    CONF_OPT("image_offset=%s", image_offset),
    CONF_OPT("partition=%d", partition),
    /* The high-level library's options; the low-level one would refuse
     * them, so kvfuse applies them itself. */
    CONF_OPT("uid=%u", uid),
    CONF_OPT("gid=%u", gid),
    CONF_OPT("umask=%o", umask),
    FUSE_OPT_KEY("-h", KEY_HELP),
    FUSE_OPT_KEY("--help", KEY_HELP),
    FUSE_OPT_KEY("-V", KEY_VERSION),
    FUSE_OPT_KEY("--version", KEY_VERSION),
    FUSE_OPT_END,
};

static bool use_syslog;

void kvfuse_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (use_syslog) {
        vsyslog(level, fmt, ap);
    } else {
        fputs("kvfuse: ", stderr);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
    }
    va_end(ap);
}

/* libfuse's own messages follow ours (its levels are syslog's). */
static void fuse_log_to(enum fuse_log_level level, const char *fmt, va_list ap)
{
    if (use_syslog)
        vsyslog((int)level, fmt, ap);
    else
        vfprintf(stderr, fmt, ap);
}

void kvfuse_log_to_syslog(void)
{
    openlog("kvfuse", LOG_PID, LOG_DAEMON);
    use_syslog = true;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("kvfuse: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nTry 'kvfuse --help'.\n", stderr);
    va_end(ap);
    return 2;
}

static void help(void)
{
    printf("Usage: kvfuse [OPTIONS] SOURCE MOUNTPOINT\n"
           "Mount a kvro source read-only. Unmount with 'fusermount3 -u MOUNTPOINT'.\n"
           "\nA SOURCE is any of:\n");
    for (size_t i = 0; i < kvro_backend_count(); i++)
        printf("  %-8s %s\n", kvro_backend_name(i), kvro_backend_description(i));
    printf("It is detected from its contents (-o backend=NAME forces one).\n"
           "\nkvfuse options:\n"
           "    -o index=FILE          .tar.gz: keep the access-point index in FILE\n"
           "    -o backend=NAME        open SOURCE with backend NAME\n"
           "    -o image_offset=N      the image starts N bytes into SOURCE\n"
           "    -o partition=N         a disk image's partition N (from 1)\n"
           "    -o uid=N,gid=N         owner of every entry (default: the mounter)\n"
           "    -o umask=M             octal permission bits to clear (not on links)\n"
           "    -o ro,allow_other,default_permissions,...   as for any FUSE mount\n"
           "In /etc/fstab (through mount.fuse3):\n"
           "    /srv/site.tar  /mnt/site  fuse.kvfuse  ro,allow_other,nofail  0 0\n"
           "Exit status: 0 success, 1 failure (unreadable or corrupt source, mount failed),\n"
           "2 usage.\n\nFUSE options:\n");
    fuse_cmdline_help();
    fuse_lowlevel_help();
}

static int conf_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
    (void)outargs;
    conf *c = data;
    switch (key) {
    case KEY_HELP: c->help = true; return 0;
    case KEY_VERSION: c->version = true; return 0;
    case FUSE_OPT_KEY_NONOPT:
        if (c->operands == 0) { /* SOURCE: ours; MOUNTPOINT: libfuse's */
            c->operands++;
            return (c->source = strdup(arg)) ? 0 : -1;
        }
        if (c->operands == 1) {
            c->operands++;
            return 1;
        }
        fprintf(stderr, "kvfuse: unexpected argument '%s'\n", arg);
        return -1;
    default: return 1; /* libfuse's */
    }
}

static void on_warning(void *arg, const char *message)
{
    kvfuse_log(LOG_WARNING, "%s: %s", (const char *)arg, message);
}

/* Opens the source as CONF says into *KV; prints why not. */
static int open_source(const conf *cf, kvro **kv)
{
    kvro_options o = {.backend = cf->backend,
                      .index_path = cf->index,
                      .partition = cf->partition,
                      .warning = on_warning,
                      .warning_arg = cf->source};
    kvro_error err;
    kvro_status s;
    if (cf->image_offset) {
        char *end;
        errno = 0;
        long long off = strtoll(cf->image_offset, &end, 0);
        if (errno || end == cf->image_offset || *end || off < 0)
            return usage_error("bad image_offset '%s'", cf->image_offset);
        kvro_io *base, *win = NULL;
        s = kvro_io_open_path(cf->source, KVRO_IO_RDONLY, &base, &err);
        if (s == KVRO_OK) {
            s = kvro_io_window(base, off, -1, &win, &err);
            kvro_io_close(base); /* the window keeps its own reference */
        }
        if (s == KVRO_OK)
            s = kvro_open_io(win, &o, kv, &err);
        kvro_io_close(win);
    } else {
        s = kvro_open_opts(cf->source, &o, kv, &err);
    }
    if (s != KVRO_OK) {
        kvro_error_print(stderr, "kvfuse", &err);
        return 1;
    }
    return 0;
}

/* The bytes statfs reports: the image's size; 0 for a directory. */
static int64_t image_bytes(const conf *cf)
{
    struct stat st;
    if (stat(cf->source, &st) != 0 || S_ISDIR(st.st_mode))
        return 0;
    long long off = cf->image_offset ? strtoll(cf->image_offset, NULL, 0) : 0;
    return st.st_size > off ? st.st_size - off : 0;
}

/* Serves the mount until it is unmounted or a signal comes. */
static int serve(struct fuse_args *args, struct fuse_cmdline_opts *fo, kvfuse_ctx *ctx,
                 const char *source)
{
    /* fsname shows SOURCE in mount(8) and df; the user's own -o fsname=
     * comes later and wins. -o ro last: an fstab "rw" cannot undo it. */
    int bad;
    char *fsname = NULL, *abs = realpath(source, NULL);
    bad = fuse_opt_add_opt_escaped(&fsname, abs ? abs : source);
    free(abs);
    if (bad)
        return 1;
    char *opt = malloc(strlen(fsname) + 16);
    if (!opt)
        return free(fsname), 1;
    sprintf(opt, "-ofsname=%s", fsname);
    free(fsname);
    bad = fuse_opt_insert_arg(args, 1, opt) || fuse_opt_insert_arg(args, 1, "-osubtype=kvfuse") ||
          fuse_opt_add_arg(args, "-oro");
    free(opt);
    if (bad)
        return 1;

    struct fuse_session *se = fuse_session_new(args, &kvfuse_ops, sizeof kvfuse_ops, ctx);
    if (!se) /* libfuse said which option it does not know */
        return 2;
    int rc = 1;
    if (fuse_set_signal_handlers(se) != 0)
        goto destroy;
    if (fuse_session_mount(se, fo->mountpoint) != 0)
        goto signals;
    /* After the mount: the parent returns only once this child is set up,
     * and the mount is there already. */
    if (fuse_daemonize(fo->foreground) != 0)
        goto unmount;
    if (!fo->foreground)
        kvfuse_log_to_syslog();
    if (fo->singlethread) {
        rc = fuse_session_loop(se);
    } else {
#if FUSE_USE_VERSION >= 312
        struct fuse_loop_config *lc = fuse_loop_cfg_create();
        if (!lc)
            goto unmount;
        fuse_loop_cfg_set_clone_fd(lc, (unsigned)fo->clone_fd);
        fuse_loop_cfg_set_max_threads(lc, fo->max_threads);
        if (fo->max_idle_threads != UINT_MAX) /* UINT_MAX: not given (libfuse warns of it) */
            fuse_loop_cfg_set_idle_threads(lc, fo->max_idle_threads);
        rc = fuse_session_loop_mt(se, lc);
        fuse_loop_cfg_destroy(lc);
#else
        struct fuse_loop_config lc = {.clone_fd = fo->clone_fd,
                                      .max_idle_threads = fo->max_idle_threads};
        rc = fuse_session_loop_mt(se, &lc);
#endif
    }
    if (rc != 0)
        kvfuse_log(LOG_ERR, "%s: the session ended with an error (%d)", fo->mountpoint, rc);
    rc = rc != 0;
unmount:
    fuse_session_unmount(se);
  signals:
    fuse_remove_signal_handlers(se);
destroy:
    fuse_session_destroy(se);
    return rc;
}

int main(int argc, char **argv)
{
    struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
    conf cf = {.uid = (unsigned)-1, .gid = (unsigned)-1, .umask = (unsigned)-1};
    struct fuse_cmdline_opts fo = {0};
    kvfuse_ctx ctx = {.timeout = KVFUSE_TIMEOUT};
    int rc = 2;
    fuse_set_log_func(fuse_log_to);
    if (fuse_opt_parse(&args, &cf, conf_opts, conf_proc) != 0) {
        usage_error("bad arguments");
        goto out;
    }
    if (cf.help) {
        help();
        rc = 0;
        goto out;
    }
    if (cf.version) {
        printf("kvfuse %s (libkvro %s, libfuse %s)\n", KVRO_VERSION_STRING, KVRO_VERSION_STRING,
               fuse_pkgversion());
        rc = 0;
        goto out;
    }
    if (cf.operands < 2) {
        rc = usage_error("missing %s", cf.operands ? "MOUNTPOINT" : "SOURCE and MOUNTPOINT");
        goto out;
    }
    if (fuse_parse_cmdline(&args, &fo) != 0) { /* e.g. a mount point that is not there */
        rc = 1;
        goto out;
    }
    if (cf.partition < 0) {
        rc = usage_error("bad partition %d", cf.partition);
        goto out;
    }
    rc = open_source(&cf, &ctx.kv);
    if (rc != 0)
        goto out;
    kvro_info root;
    kvro_error err;
    rc = 1;
    if (kvro_lstat(ctx.kv, "", &root, &err) != KVRO_OK) {
        kvro_error_print(stderr, "kvfuse", &err);
        goto out;
    }
    if (!(ctx.inodes = kvfuse_inodes_new(&root))) {
        fprintf(stderr, "kvfuse: out of memory\n");
        goto out;
    }
    ctx.uid = cf.uid != (unsigned)-1 ? (uid_t)cf.uid : getuid();
    ctx.gid = cf.gid != (unsigned)-1 ? (gid_t)cf.gid : getgid();
    ctx.umask = cf.umask != (unsigned)-1 ? (mode_t)(cf.umask & 07777) : 0;
    ctx.image_bytes = image_bytes(&cf);
    rc = serve(&args, &fo, &ctx, cf.source);
out:
    kvfuse_inodes_free(ctx.inodes);
    kvro_close(ctx.kv);
    fuse_opt_free_args(&args);
    free(fo.mountpoint);
    free(cf.source);
    free(cf.index);
    free(cf.backend);
    free(cf.image_offset);
    return rc;
}
