/*
 * crunch_inflate.c — the one place crunched tables meet zlib. Its own
 * object, reached only through a compressed table's `inflate` pointer, so
 * that a program whose tables are all stored plainly links no zlib.
 *
 * Each block is a raw deflate stream (RFC 1951, no zlib or gzip wrapper:
 * the table keeps the sizes and a SHA-256 per file), inflated in one call.
 */
#include <kvro/crunch.h>

#include <string.h>
#include <zlib.h>

kvro_status kvro_crunch_inflate(const unsigned char *in, size_t in_len, unsigned char *out,
                                size_t out_len, kvro_error *err)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (inflateInit2(&z, -15) != Z_OK)
        return kvro_error_set(err, KVRO_E_NOMEM, "crunch: cannot start inflating");
    z.next_in = (unsigned char *)(uintptr_t)in; /* zlib's API is not const */
    z.avail_in = (uInt)in_len;
    z.next_out = out;
    z.avail_out = (uInt)out_len;
    int r = inflate(&z, Z_FINISH);
    size_t got = out_len - z.avail_out;
    inflateEnd(&z);
    if (r != Z_STREAM_END || got != out_len)
        return kvro_error_set(err, KVRO_E_CORRUPT,
                              "crunch: a compressed block is damaged (zlib %d, %zu of %zu "
                              "bytes)",
                              r, got, out_len);
    return KVRO_OK;
}
