/*
 * assert_status.h — cmocka assertion on a kvro_status that, on failure,
 * spells out both statuses and the error record. Include after cmocka.h.
 */
#ifndef KVRO_TEST_ASSERT_STATUS_H
#define KVRO_TEST_ASSERT_STATUS_H

#include <kvro/kvro.h>

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

#endif
