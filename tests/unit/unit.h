/* unit.h — what every unit test includes: cmocka (with the headers it needs
 * first), a few asserts that print both sides in a readable form (cmocka's
 * own print signed numbers as unsigned and strings without their lengths),
 * and the removal of a test's SQLite database. */
#ifndef CREST_UNIT_H
#define CREST_UNIT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* Signed integers, printed as such. */
#define assert_i64_eq(a, b)                                                                                \
    do {                                                                                                   \
        long long a_ = (long long)(a), b_ = (long long)(b);                                                \
        if (a_ != b_) {                                                                                    \
            print_error("%s == %s: %lld != %lld\n", #a, #b, a_, b_);                                       \
            fail();                                                                                        \
        }                                                                                                  \
    } while (0)

/* A byte range against a C string, printed with its length when they differ. */
#define assert_bytes_eq(ptr, len, str)                                                                     \
    do {                                                                                                   \
        const char *p_ = (const char *)(ptr);                                                              \
        size_t l_ = (size_t)(len), n_ = strlen(str);                                                       \
        if (l_ != n_ || memcmp(p_, (str), n_) != 0) {                                                      \
            print_error("%s: got [%.*s] (%zu bytes), want [%s] (%zu bytes)\n", #ptr, (int)l_, p_, l_,      \
                        (str), n_);                                                                        \
            fail();                                                                                        \
        }                                                                                                  \
    } while (0)

/* Removes a test's SQLite database file and its WAL files (-wal, -shm). */
static inline void unit_drop_db(const char *path)
{
    char p[1024];
    unlink(path);
    snprintf(p, sizeof p, "%s-wal", path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", path);
    unlink(p);
}

#endif
