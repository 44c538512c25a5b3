/*
 * open.c — opening a source: probe it once (a host directory, or an image
 * read through an I/O object), let every registered backend bid, open the
 * highest bidder. kvro_open(path) opens the path exactly once and hands
 * that descriptor on, so the file bid on is the file served.
 */
#include "core.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const kvro_options defaults;

static const kvro_backend *find_backend(const char *name)
{
    for (size_t i = 0; kvro__backends[i]; i++)
        if (strcmp(kvro__backends[i]->name, name) == 0)
            return kvro__backends[i];
    return NULL;
}

static void backend_names(char *buf, size_t size)
{
    size_t o = 0;
    buf[0] = '\0';
    for (size_t i = 0; kvro__backends[i] && o < size; i++)
        o += (size_t)snprintf(buf + o, size - o, "%s%s", i ? ", " : "", kvro__backends[i]->name);
}

static void probe_done(kvro_probe *p)
{
    free((void *)p->head);
    kvro_io_close(p->io);
    if (p->dir_fd >= 0)
        close(p->dir_fd);
    memset(p, 0, sizeof *p);
    p->dir_fd = -1;
}

/* Fills P's size and head from its I/O object. */
static kvro_status probe_image(kvro_probe *p, kvro_error *err)
{
    kvro_status s = kvro_io_size(p->io, &p->size, err);
    if (s != KVRO_OK)
        return s;
    size_t n = p->size < KVRO_PROBE_HEAD ? (size_t)p->size : KVRO_PROBE_HEAD;
    unsigned char *head = malloc(n ? n : 1);
    if (!head)
        return kvro_error_set(err, KVRO_E_NOMEM, "out of memory");
    p->head = head;
    return kvro_io_read(p->io, 0, head, n, &p->head_len, err);
}

/* Opens PATH once: a directory stays a descriptor, anything else becomes
 * an I/O object (which refuses what pread can not serve). */
static kvro_status probe_path(const char *path, bool writable, kvro_probe *p, kvro_error *err)
{
    p->name = path;
    int fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0 && writable && errno == EISDIR)
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return kvro_error_set(err, kvro_status_from_errno(errno), "%s", strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return kvro_error_set(err, KVRO_E_IO, "cannot stat: %s", strerror(e));
    }
    if (S_ISDIR(st.st_mode)) {
        p->dir_fd = fd;
        p->dir_path = path;
        return KVRO_OK;
    }
    kvro_status s = kvro__io_from_path_fd(fd, path, writable ? KVRO_IO_RDWR : 0, &p->io, err);
    return s == KVRO_OK ? probe_image(p, err) : s;
}

/* What an image no backend bids on is, when it is something well known,
 * and what to do about it: said in the error, so a user with a .tar.xz or
 * a .deb is not left with "not recognised". Signatures from each format's
 * specification (xz, zstd RFC 8878, bzip2, zip APPNOTE, ar, squashfs,
 * ISO 9660 ECMA-119 at sector 16, the boot sector's 0x55AA). */
static const char *what_it_is(const kvro_probe *p)
{
    static const struct {
        const char *magic;
        size_t len, at;
        const char *what;
    } known[] = {
        {"\xfd" "7zXZ\0", 6, 0, "an xz-compressed file (decompress it first: xz -d)"},
        {"\x28\xb5\x2f\xfd", 4, 0, "a zstd-compressed file (decompress it first: zstd -d)"},
        {"BZh", 3, 0, "a bzip2-compressed file (decompress it first: bzip2 -d)"},
        {"\x04\x22\x4d\x18", 4, 0, "an lz4-compressed file (decompress it first: lz4 -d)"},
        {"\x1f\x8b", 2, 0, "gzip-compressed, but not a tar archive inside (gzip -d it)"},
        {"!<arch>\ndebian-binary", 21, 0,
         "a Debian package (its files: dpkg-deb --fsys-tarfile PKG.deb > data.tar)"},
        {"!<arch>\n", 8, 0, "an ar archive (extract it with ar x)"},
        {"PK\x03\x04", 4, 0, "a zip archive (convert it: bsdtar -cf out.tar @in.zip)"},
        {"7z\xbc\xaf\x27\x1c", 6, 0, "a 7-Zip archive (convert it: bsdtar -cf out.tar @in.7z)"},
        {"hsqs", 4, 0, "a squashfs image (unsquashfs it, or mount it)"},
    };
    if (p->size == 0)
        return "an empty file, not an archive";
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (p->head_len >= known[i].at + known[i].len &&
            memcmp(p->head + known[i].at, known[i].magic, known[i].len) == 0)
            return known[i].what;
    unsigned char cd[5];
    size_t got = 0;
    kvro_error ignored;
    if (p->size >= 32774 && kvro_io_read(p->io, 32769, cd, 5, &got, &ignored) == KVRO_OK &&
        got == 5 && memcmp(cd, "CD001", 5) == 0)
        return "an ISO 9660 image (mount it, or extract it: bsdtar -xf)";
    if (p->head_len >= 512 && p->head[510] == 0x55 && p->head[511] == 0xaa)
        return "a boot sector or a partition table, but no FAT filesystem kvro can read";
    return NULL;
}

/* Picks the backend: the one named FORCE, else the highest bidder among
 * those that have fs_open (if FS_ONLY) or any. */
static kvro_status choose(const kvro_probe *p, const char *force, bool fs_only,
                          const kvro_backend **out, kvro_error *err)
{
    char names[256];
    if (force) {
        const kvro_backend *b = find_backend(force);
        if (!b) {
            backend_names(names, sizeof names);
            return kvro_error_set(err, KVRO_E_INVALID, "unknown backend '%s' (known: %s)", force,
                                  names);
        }
        if (fs_only && !b->fs_open)
            return kvro_error_set(err, KVRO_E_UNSUPPORTED,
                                  "backend '%s' is read-only (KV_RO), not a filesystem", force);
        *out = b;
        return KVRO_OK;
    }
    const kvro_backend *best = NULL;
    int best_bid = KVRO_BID_NONE;
    for (size_t i = 0; kvro__backends[i]; i++) {
        const kvro_backend *b = kvro__backends[i];
        if (fs_only && !b->fs_open)
            continue;
        int bid = b->bid(p);
        if (bid > best_bid) {
            best = b;
            best_bid = bid;
        }
    }
    if (!best) {
        backend_names(names, sizeof names);
        const char *what = p->io ? what_it_is(p) : NULL;
        return kvro_error_set(err, KVRO_E_UNSUPPORTED,
                              "not a source kvro recognises%s%s (backends: %s)",
                              what ? ": " : "", what ? what : "", names);
    }
    *out = best;
    return KVRO_OK;
}

/* Opens probe P as a KV_RO handle (an FS backend through the adaptor). */
static kvro_status open_kv(const kvro_probe *p, const kvro_options *opts, kvro **out,
                           kvro_error *err)
{
    const kvro_backend *b = NULL;
    kvro_status s = choose(p, opts->backend, false, &b, err);
    if (s == KVRO_OK && b->fs_open) {
        kvro_fs *fs = NULL;
        s = kvro__fs_new(b, p, opts, false, &fs, err);
        if (s == KVRO_OK) {
            s = kvro_of_fs(fs, KVRO_OF_FS_OWN, out, err);
            if (s != KVRO_OK)
                kvro_fs_close(fs, NULL);
        }
    } else if (s == KVRO_OK) {
        void *self = NULL;
        s = b->open(p, opts, &self, err);
        if (s == KVRO_OK) {
            s = kvro__kv_new(b, self, b->name, p->name, out, err);
            if (s != KVRO_OK)
                b->close(self, NULL);
        }
    }
    return s;
}

static kvro_status open_fs(const kvro_probe *p, int flags, const kvro_options *opts,
                           kvro_fs **out, kvro_error *err)
{
    const kvro_backend *b = NULL;
    kvro_status s = choose(p, opts->backend, true, &b, err);
    if (s == KVRO_OK)
        s = kvro__fs_new(b, p, opts, flags == KVRO_FS_RDWR, out, err);
    return s;
}

/* ------------------------------------------------------------ entry points */

kvro_status kvro_open(const char *path, kvro **kv, kvro_error *err)
{
    return kvro_open_opts(path, NULL, kv, err);
}

kvro_status kvro_open_opts(const char *path, const kvro_options *opts, kvro **out, kvro_error *err)
{
    kvro__error_clear(err);
    if (!path || !out)
        return kvro_error_context(err, kvro_error_set(err, KVRO_E_INVALID, "NULL argument"),
                                  path, NULL);
    *out = NULL;
    kvro_probe p = {.dir_fd = -1};
    kvro_status s = probe_path(path, false, &p, err);
    if (s == KVRO_OK)
        s = open_kv(&p, opts ? opts : &defaults, out, err);
    probe_done(&p);
    return kvro_error_context(err, s, path, NULL);
}

kvro_status kvro_open_io(kvro_io *io, const kvro_options *opts, kvro **out, kvro_error *err)
{
    kvro__error_clear(err);
    if (!io || !out)
        return kvro_error_set(err, KVRO_E_INVALID, "NULL argument");
    *out = NULL;
    kvro_probe p = {.dir_fd = -1, .name = kvro_io_name(io), .io = kvro_io_ref(io)};
    kvro_status s = probe_image(&p, err);
    if (s == KVRO_OK)
        s = open_kv(&p, opts ? opts : &defaults, out, err);
    const char *name = kvro_io_name(io);
    probe_done(&p);
    return kvro_error_context(err, s, name, NULL);
}

static kvro_status fs_args(const void *what, int flags, kvro_fs **out, kvro_error *err)
{
    if (!what || !out)
        return kvro_error_set(err, KVRO_E_INVALID, "NULL argument");
    *out = NULL;
    if (flags != KVRO_FS_RDONLY && flags != KVRO_FS_RDWR)
        return kvro_error_set(err, KVRO_E_INVALID, "unknown open flags %d", flags);
    return KVRO_OK;
}

kvro_status kvro_fs_open(const char *path, int flags, const kvro_options *opts, kvro_fs **out,
                         kvro_error *err)
{
    kvro__error_clear(err);
    kvro_probe p = {.dir_fd = -1};
    kvro_status s = fs_args(path, flags, out, err);
    if (s == KVRO_OK)
        s = probe_path(path, flags == KVRO_FS_RDWR, &p, err);
    if (s == KVRO_OK)
        s = open_fs(&p, flags, opts ? opts : &defaults, out, err);
    probe_done(&p);
    return kvro_error_context(err, s, path, NULL);
}

kvro_status kvro_fs_open_io(kvro_io *io, int flags, const kvro_options *opts, kvro_fs **out,
                            kvro_error *err)
{
    kvro__error_clear(err);
    kvro_status s = fs_args(io, flags, out, err);
    if (s == KVRO_OK && flags == KVRO_FS_RDWR && !kvro_io_writable(io))
        s = kvro_error_set(err, KVRO_E_READ_ONLY, "the I/O object is read-only");
    if (s != KVRO_OK)
        return kvro_error_context(err, s, io ? kvro_io_name(io) : NULL, NULL);
    kvro_probe p = {.dir_fd = -1, .name = kvro_io_name(io), .io = kvro_io_ref(io)};
    s = probe_image(&p, err);
    if (s == KVRO_OK)
        s = open_fs(&p, flags, opts ? opts : &defaults, out, err);
    const char *name = kvro_io_name(io);
    probe_done(&p);
    return kvro_error_context(err, s, name, NULL);
}
