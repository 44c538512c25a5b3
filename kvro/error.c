/*
 * error.c — errors as values: the status phrases, the error record and its
 * one printer. Nothing here is global or mutable, so any thread may fail
 * into its own record.
 */
#include "backend.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

static const char *const status_text[KVRO_STATUS_COUNT] = {
    [KVRO_OK] = "success",
    [KVRO_E_NOT_FOUND] = "no such key",
    [KVRO_E_IS_DIR] = "is a directory",
    [KVRO_E_NOT_DIR] = "not a directory",
    [KVRO_E_INVALID] = "invalid argument",
    [KVRO_E_BAD_KEY] = "bad key",
    [KVRO_E_CORRUPT] = "corrupt image",
    [KVRO_E_IO] = "I/O error",
    [KVRO_E_NOMEM] = "out of memory",
    [KVRO_E_UNSUPPORTED] = "unsupported",
    [KVRO_E_LINK] = "bad symbolic link",
    [KVRO_E_EXISTS] = "already exists",
    [KVRO_E_NO_SPACE] = "no space left",
    [KVRO_E_NOT_EMPTY] = "directory not empty",
    [KVRO_E_READ_ONLY] = "read-only",
};

const char *kvro_status_str(kvro_status s)
{
    if ((unsigned)s >= KVRO_STATUS_COUNT)
        return "unknown error";
    return status_text[s];
}

/* Copies SRC into DST[SIZE], marking a cut with "..." so a truncated key is
 * never mistaken for another key. */
static void copy_marked(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n < size) {
        memcpy(dst, src, n + 1);
        return;
    }
    memcpy(dst, src, size - 4);
    memcpy(dst + size - 4, "...", 4);
}

void kvro__error_clear(kvro_error *err)
{
    if (!err)
        return;
    err->status = KVRO_OK;
    err->source[0] = err->key[0] = err->detail[0] = '\0';
}

kvro_status kvro_error_set(kvro_error *err, kvro_status s, const char *fmt, ...)
{
    if (!err)
        return s;
    /* A fresh cause: the context (source, key) is added as the error
     * travels up (kvro_error_context), never left over from before. */
    err->status = s;
    err->source[0] = err->key[0] = '\0';
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err->detail, sizeof err->detail, fmt, ap);
        va_end(ap);
        if (n >= (int)sizeof err->detail)
            memcpy(err->detail + sizeof err->detail - 4, "...", 4);
    } else {
        err->detail[0] = '\0';
    }
    return s;
}

kvro_status kvro_error_context(kvro_error *err, kvro_status s, const char *source,
                                const char *key)
{
    if (!err || s == KVRO_OK)
        return s;
    /* A backend that returned a status without setting one still yields a
     * coherent record. */
    if (err->status != s) {
        err->status = s;
        err->detail[0] = '\0';
    }
    if (source && !err->source[0])
        copy_marked(err->source, sizeof err->source, source);
    if (key && !err->key[0])
        copy_marked(err->key, sizeof err->key, key[0] ? key : "/");
    return s;
}

size_t kvro_error_format(const kvro_error *err, char *buf, size_t size)
{
    if (!err)
        return (size_t)snprintf(buf, size, "%s", "no error record");
    const char *detail = err->detail[0] ? err->detail : kvro_status_str(err->status);
    int n = snprintf(buf, size, "%s%s%s%s%s", err->source, err->source[0] ? ": " : "", err->key,
                     err->key[0] ? ": " : "", detail);
    return n < 0 ? 0 : (size_t)n;
}

void kvro_error_print(FILE *f, const char *prefix, const kvro_error *err)
{
    char msg[KVRO_ERROR_SOURCE_MAX + KVRO_ERROR_KEY_MAX + KVRO_ERROR_DETAIL_MAX + 8];
    kvro_error_format(err, msg, sizeof msg);
    if (prefix)
        fprintf(f, "%s: %s\n", prefix, msg);
    else
        fprintf(f, "%s\n", msg);
}

kvro_status kvro_status_from_errno(int e)
{
    switch (e) {
    case ENOENT:
        return KVRO_E_NOT_FOUND;
    case ENOTDIR:
        return KVRO_E_NOT_DIR;
    case EISDIR:
        return KVRO_E_IS_DIR;
    case EINVAL:
        return KVRO_E_INVALID;
    case ENOMEM:
        return KVRO_E_NOMEM;
    case ELOOP:
    case EXDEV:
        return KVRO_E_LINK;
    case EEXIST:
        return KVRO_E_EXISTS;
    case ENOSPC:
    case EDQUOT:
    case EFBIG:
        return KVRO_E_NO_SPACE;
    case ENOTEMPTY:
        return KVRO_E_NOT_EMPTY;
    case EROFS:
        return KVRO_E_READ_ONLY;
    case ENAMETOOLONG:
        return KVRO_E_BAD_KEY;
    default:
        return KVRO_E_IO;
    }
}

int kvro_status_to_errno(kvro_status s)
{
    switch (s) {
    case KVRO_OK:
        return 0;
    case KVRO_E_NOT_FOUND:
        return ENOENT;
    case KVRO_E_IS_DIR:
        return EISDIR;
    case KVRO_E_NOT_DIR:
        return ENOTDIR;
    case KVRO_E_INVALID:
        return EINVAL;
    case KVRO_E_BAD_KEY:
        return EINVAL; /* "." or ".." is not a name; the length is checked by the kernel first */
    case KVRO_E_NOMEM:
        return ENOMEM;
    case KVRO_E_UNSUPPORTED:
        return EOPNOTSUPP;
    case KVRO_E_LINK:
        return ELOOP;
    case KVRO_E_EXISTS:
        return EEXIST;
    case KVRO_E_NO_SPACE:
        return ENOSPC;
    case KVRO_E_NOT_EMPTY:
        return ENOTEMPTY;
    case KVRO_E_READ_ONLY:
        return EROFS;
    case KVRO_E_CORRUPT:
    case KVRO_E_IO:
    case KVRO_STATUS_COUNT:
        break;
    }
    return EIO;
}
