/*
 * check.h — cmocka checks shared by kvro's tests. Include after cmocka.h.
 */
#ifndef KVRO_TEST_CHECK_H
#define KVRO_TEST_CHECK_H

#include "support.h"

#include <kvro/kvro.h>
#include <stdlib.h>

/* Fails with both statuses spelled out, and the error record if any. */
#define assert_status(got, want, err)                                                              \
    do {                                                                                           \
        kvro_status g_ = (got), w_ = (want);                                                       \
        const kvro_error *e_ = (err);                                                              \
        if (g_ != w_) {                                                                            \
            char m_[1400] = "";                                                                    \
            if (e_)                                                                                \
                kvro_error_format(e_, m_, sizeof m_);                                              \
            fail_msg("%s: got '%s', want '%s' (%s)", #got, kvro_status_str(g_),                    \
                     kvro_status_str(w_), m_);                                                     \
        }                                                                                          \
    } while (0)

/* A test that needs a peer tool (bsdtar, python3...) is skipped where the
 * tool is missing, but fails under CI (CI set): there the set-up installs
 * every tool, so a missing one is a broken set-up, not a reason to pass. */
#define require_tool(prog)                                                                         \
    do {                                                                                           \
        if (!t_have(prog)) {                                                                       \
            if (getenv("CI"))                                                                      \
                fail_msg("%s is not installed (scripts/deps.sh installs it)", prog);              \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

#endif
