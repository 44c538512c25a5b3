/*
 * key.c — the one place keys are checked and normalised, so that no
 * backend ever resolves "." or "..", and every backend sees the same
 * spelling of the same key.
 */
#include "backend.h"

#include <string.h>

kvro_status kvro_key_normalise(const char *key, char *out, kvro_error *err)
{
    if (!key || !out)
        return kvro_error_set(err, KVRO_E_INVALID, "key is NULL");
    size_t len = strlen(key);
    if (len > KVRO_KEY_MAX)
        return kvro_error_set(err, KVRO_E_BAD_KEY, "key is %zu bytes, longer than %d", len,
                              KVRO_KEY_MAX);
    size_t o = 0, n;
    const char *p = key, *c;
    while ((n = kvro__component(&p, &c, NULL)) > 0) {
        if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
            return kvro_error_set(err, KVRO_E_BAD_KEY, "'%.*s' is not allowed in a key", (int)n,
                                  c);
        if (o)
            out[o++] = '/';
        memcpy(out + o, c, n);
        o += n;
    }
    out[o] = '\0';
    return KVRO_OK;
}
