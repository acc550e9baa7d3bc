/* test_buf.c — the bounded growable buffer (src/core/buf.c): append and
 * growth, the hard limit (refused appends leave the buffer as it was),
 * formatted appends short and long, consume, and size arithmetic that would
 * overflow. */
#include <stdlib.h>

#include "unit.h"

#include "core/core.h"

static void append_and_grow(void **state)
{
    (void)state;
    crest__buf b;
    crest__buf_init(&b, 0);
    assert_null(b.ptr);
    assert_int_equal(crest__buf_append(&b, "abc", 3), 0);
    assert_int_equal(b.cap, 256); /* first allocation */
    assert_bytes_eq(b.ptr, b.len, "abc");
    char chunk[100];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 30; i++)
        assert_int_equal(crest__buf_append(&b, chunk, sizeof chunk), 0);
    assert_int_equal(b.len, 3003);
    assert_int_equal(b.cap, 4096); /* doubled from 256 */
    assert_memory_equal(b.ptr, "abcxxx", 6);
    assert_int_equal(b.ptr[3002], 'x');
    crest__buf_dispose(&b);
    assert_null(b.ptr);
    assert_int_equal(b.len, 0);
    /* Usable again after dispose. */
    assert_int_equal(crest__buf_appends(&b, "again"), 0);
    assert_bytes_eq(b.ptr, b.len, "again");
    crest__buf_dispose(&b);
}

static void empty_append_allocates_nothing(void **state)
{
    (void)state;
    crest__buf b;
    crest__buf_init(&b, 10);
    assert_int_equal(crest__buf_append(&b, NULL, 0), 0);
    assert_int_equal(b.len, 0);
    assert_null(b.ptr);
    crest__buf_dispose(&b);
}

static void limit_is_exact(void **state)
{
    (void)state;
    crest__buf b;
    crest__buf_init(&b, 300);
    char data[300];
    memset(data, 'a', sizeof data);
    assert_int_equal(crest__buf_append(&b, data, 299), 0);
    assert_int_equal(crest__buf_append(&b, "b", 1), 0); /* exactly the limit */
    assert_int_equal(b.len, 300);
    assert_true(b.cap <= 300); /* capacity is clamped to the limit, not doubled past it */
    assert_int_equal(crest__buf_append(&b, "c", 1), CREST_EINVAL);
    assert_int_equal(b.len, 300); /* unchanged */
    assert_int_equal(b.ptr[299], 'b');
    crest__buf_dispose(&b);
}

static void refused_append_leaves_buffer(void **state)
{
    (void)state;
    crest__buf b;
    crest__buf_init(&b, 64);
    assert_int_equal(crest__buf_appends(&b, "keep"), 0);
    char big[100];
    memset(big, 'z', sizeof big);
    assert_int_equal(crest__buf_append(&b, big, sizeof big), CREST_EINVAL);
    assert_bytes_eq(b.ptr, b.len, "keep");
    assert_int_equal(crest__buf_reserve(&b, 61), CREST_EINVAL);
    assert_int_equal(crest__buf_reserve(&b, 60), 0);
    assert_int_equal(b.len, 4);
    crest__buf_dispose(&b);
}

static void reserve_overflow_is_refused(void **state)
{
    (void)state;
    crest__buf b;
    crest__buf_init(&b, 0);
    assert_int_equal(crest__buf_appends(&b, "12345"), 0);
    /* len + extra would wrap around. */
    assert_int_equal(crest__buf_reserve(&b, SIZE_MAX), CREST_EINVAL);
    assert_int_equal(crest__buf_reserve(&b, SIZE_MAX - 4), CREST_EINVAL);
    assert_int_equal(crest__buf_append(&b, "x", SIZE_MAX - 2), CREST_EINVAL);
    assert_bytes_eq(b.ptr, b.len, "12345");
    crest__buf_dispose(&b);
}

static void appendf_short_and_long(void **state)
{
    (void)state;
    crest__buf b;
    crest__buf_init(&b, 0);
    assert_int_equal(crest__buf_appendf(&b, "%d-%s", 42, "x"), 0);
    assert_bytes_eq(b.ptr, b.len, "42-x");
    /* Longer than appendf's 256-byte stack buffer: the second path. */
    char s[1000];
    memset(s, 'k', sizeof s - 1);
    s[sizeof s - 1] = 0;
    assert_int_equal(crest__buf_appendf(&b, "[%s]", s), 0);
    assert_int_equal(b.len, 4 + 1001);
    assert_int_equal(b.ptr[4], '[');
    assert_int_equal(b.ptr[5], 'k');
    assert_int_equal(b.ptr[b.len - 1], ']');
    /* Exactly 255 and 256 characters, the edge of the stack buffer. */
    crest__buf_dispose(&b);
    crest__buf_init(&b, 0);
    assert_int_equal(crest__buf_appendf(&b, "%.255s", s), 0);
    assert_int_equal(b.len, 255);
    assert_int_equal(crest__buf_appendf(&b, "%.256s", s), 0);
    assert_int_equal(b.len, 511);
    crest__buf_dispose(&b);
}

static void appendf_respects_limit(void **state)
{
    (void)state;
    crest__buf b;
    crest__buf_init(&b, 100);
    assert_int_equal(crest__buf_appendf(&b, "%s", "short"), 0);
    char s[400];
    memset(s, 'k', sizeof s - 1);
    s[sizeof s - 1] = 0;
    assert_int_equal(crest__buf_appendf(&b, "%s", s), CREST_EINVAL); /* long path */
    assert_int_equal(crest__buf_appendf(&b, "%.96s", s), CREST_EINVAL); /* short path, 1 over */
    assert_bytes_eq(b.ptr, b.len, "short");
    assert_int_equal(crest__buf_appendf(&b, "%.95s", s), 0); /* exactly the limit */
    assert_int_equal(b.len, 100);
    crest__buf_dispose(&b);
}

static void consume(void **state)
{
    (void)state;
    crest__buf b;
    crest__buf_init(&b, 0);
    crest__buf_appends(&b, "hello world");
    crest__buf_consume(&b, 0);
    assert_bytes_eq(b.ptr, b.len, "hello world");
    crest__buf_consume(&b, 6);
    assert_bytes_eq(b.ptr, b.len, "world");
    crest__buf_consume(&b, 100); /* more than there is: empties */
    assert_int_equal(b.len, 0);
    crest__buf_appends(&b, "x");
    crest__buf_consume(&b, 1);
    assert_int_equal(b.len, 0);
    crest__buf_dispose(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(append_and_grow),
        cmocka_unit_test(empty_append_allocates_nothing),
        cmocka_unit_test(limit_is_exact),
        cmocka_unit_test(refused_append_leaves_buffer),
        cmocka_unit_test(reserve_overflow_is_refused),
        cmocka_unit_test(appendf_short_and_long),
        cmocka_unit_test(appendf_respects_limit),
        cmocka_unit_test(consume),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
