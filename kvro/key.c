/*
 * key.c — the one place keys are checked and normalised, so that no
 * backend ever resolves "." or "..", and every backend sees the same
 * spelling of the same key.
 *
 * "." is dropped, as a path resolver would ("./usr/bin/hello" is how
 * `tar -tf` prints a Debian package's names); ".." is refused, since it is
 * the one component that could climb out of the root. A key that ends in
 * '/' (or "/.") must name a directory, as POSIX says of paths: the core
 * checks that, so "index.html/" never serves the file.
 */
#include "core.h"

#include <string.h>

kvro_status kvro__key_normalise(const char *key, char *out, bool *dir_only, kvro_error *err)
{
    if (dir_only)
        *dir_only = false;
    if (!key || !out)
        return kvro_error_set(err, KVRO_E_INVALID, "key is NULL");
    size_t len = strlen(key);
    if (len > KVRO_KEY_MAX)
        return kvro_error_set(err, KVRO_E_BAD_KEY, "key is %zu bytes, longer than %d", len,
                              KVRO_KEY_MAX);
    size_t o = 0, n;
    const char *p = key, *c;
    bool last_dot = false;
    while ((n = kvro__component(&p, &c, NULL)) > 0) {
        last_dot = n == 1 && c[0] == '.';
        if (last_dot)
            continue;
        if (n == 2 && c[0] == '.' && c[1] == '.')
            return kvro_error_set(err, KVRO_E_BAD_KEY, "'..' is not allowed in a key");
        if (o)
            out[o++] = '/';
        memcpy(out + o, c, n);
        o += n;
    }
    out[o] = '\0';
    if (dir_only && o)
        *dir_only = last_dot || key[len - 1] == '/';
    return KVRO_OK;
}

kvro_status kvro_key_normalise(const char *key, char *out, kvro_error *err)
{
    return kvro__key_normalise(key, out, NULL, err);
}
