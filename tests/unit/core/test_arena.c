/* test_arena.c — the request arena (src/core/arena.c): 16-byte alignment,
 * growth past a chunk, one-off big allocations, the byte limit, reset (one
 * chunk kept, cleanups newest first) and the string helpers. */
#include <stdlib.h>

#include "unit.h"

#include "core/core.h"

/* Under ASan a malloc of an impossible size aborts unless told to return
 * NULL, which is what the arena must cope with. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static bool aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

static void alloc_is_aligned_and_disjoint(void **state)
{
    (void)state;
    crest__arena a;
    crest__arena_init(&a, 256, 0);
    char *prev = NULL;
    size_t prev_n = 0;
    for (size_t n = 0; n < 100; n++) {
        char *p = crest__arena_alloc(&a, n);
        assert_non_null(p);
        assert_true(aligned16(p));
        memset(p, 0xAB, n); /* ASan: the whole block is ours */
        if (prev && p > prev)
            assert_true(p >= prev + prev_n); /* no overlap with the block before */
        prev = p;
        prev_n = n;
    }
    crest__arena_dispose(&a);
}

static void zero_size_gives_distinct_blocks(void **state)
{
    (void)state;
    crest__arena a;
    crest__arena_init(&a, 0, 0); /* 0: the default chunk size */
    assert_int_equal(a.chunk_size, 4096);
    void *p = crest__arena_alloc(&a, 0), *q = crest__arena_alloc(&a, 0);
    assert_non_null(p);
    assert_non_null(q);
    assert_ptr_not_equal(p, q);
    crest__arena_dispose(&a);
}

static void grows_past_a_chunk(void **state)
{
    (void)state;
    crest__arena a;
    crest__arena_init(&a, 128, 0);
    /* 8 blocks of 16 fill the first chunk; the 9th needs a second one. */
    for (int i = 0; i < 8; i++)
        assert_non_null(crest__arena_alloc(&a, 16));
    assert_int_equal(a.total, 128);
    char *p = crest__arena_alloc(&a, 16);
    assert_non_null(p);
    assert_int_equal(a.total, 256);
    memset(p, 1, 16);
    crest__arena_dispose(&a);
    assert_int_equal(a.total, 0);
    assert_null(a.head);
}

static void big_one_off_keeps_current_chunk(void **state)
{
    (void)state;
    crest__arena a;
    crest__arena_init(&a, 128, 0);
    char *small1 = crest__arena_alloc(&a, 16);
    char *big = crest__arena_alloc(&a, 1000); /* its own chunk, placed behind the current one */
    char *small2 = crest__arena_alloc(&a, 16);
    assert_non_null(small1);
    assert_non_null(big);
    assert_non_null(small2);
    assert_true(aligned16(big));
    memset(big, 7, 1000);
    /* Small allocations continue in the first chunk, right after small1. */
    assert_ptr_equal(small2, small1 + 16);
    assert_int_equal(a.total, 128 + 1008);
    crest__arena_dispose(&a);
}

static void limit_refuses_growth(void **state)
{
    (void)state;
    crest__arena a;
    crest__arena_init(&a, 128, 256);
    assert_non_null(crest__arena_alloc(&a, 128));
    assert_non_null(crest__arena_alloc(&a, 128)); /* second chunk: total 256 = limit */
    assert_null(crest__arena_alloc(&a, 16));      /* a third would pass the limit */
    assert_null(crest__arena_alloc(&a, 1000));
    assert_int_equal(a.total, 256);
    /* After a reset the kept chunk serves again. */
    crest__arena_reset(&a);
    assert_non_null(crest__arena_alloc(&a, 64));
    crest__arena_dispose(&a);
}

static void huge_sizes_fail_cleanly(void **state)
{
    (void)state;
    crest__arena a;
    crest__arena_init(&a, 128, 0);
    /* Sizes that do not overflow the rounding but cannot be malloc'd. */
    assert_null(crest__arena_alloc(&a, SIZE_MAX / 2));
    assert_null(crest__arena_alloc(&a, SIZE_MAX - sizeof(void *) * 8 - 64));
    /* calloc: count * size overflowing is refused before any allocation. */
    assert_null(crest__arena_calloc(&a, SIZE_MAX / 2, 4));
    assert_null(crest__arena_calloc(&a, 2, SIZE_MAX / 2 + 1));
    assert_null(crest__arena_strndup(&a, "x", SIZE_MAX));
    /* The arena is still usable. */
    assert_non_null(crest__arena_alloc(&a, 16));
    crest__arena_dispose(&a);
}

static void calloc_zeroes(void **state)
{
    (void)state;
    crest__arena a;
    crest__arena_init(&a, 256, 0);
    unsigned char *p = crest__arena_alloc(&a, 200);
    memset(p, 0xFF, 200);
    crest__arena_reset(&a);
    unsigned char *q = crest__arena_calloc(&a, 50, 4); /* the same memory, reused */
    assert_ptr_equal(p, q);
    for (int i = 0; i < 200; i++)
        assert_int_equal(q[i], 0);
    assert_non_null(crest__arena_calloc(&a, 0, 8));
    crest__arena_dispose(&a);
}

static int order[8];
static int norder;
static void record(void *p) { order[norder++] = (int)(intptr_t)p; }

static void reset_runs_cleanups_newest_first(void **state)
{
    (void)state;
    crest__arena a;
    crest__arena_init(&a, 128, 0);
    norder = 0;
    assert_int_equal(crest__arena_defer(&a, record, (void *)1), 0);
    assert_int_equal(crest__arena_defer(&a, record, (void *)2), 0);
    assert_int_equal(crest__arena_defer(&a, record, (void *)3), 0);
    crest__arena_reset(&a);
    assert_int_equal(norder, 3);
    assert_int_equal(order[0], 3);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 1);
    /* They ran once: a second reset runs nothing. */
    crest__arena_reset(&a);
    assert_int_equal(norder, 3);
    /* Dispose runs what is pending. */
    assert_int_equal(crest__arena_defer(&a, record, (void *)4), 0);
    crest__arena_dispose(&a);
    assert_int_equal(norder, 4);
    assert_int_equal(order[3], 4);
}

static void defer_fails_at_limit_and_does_not_run(void **state)
{
    (void)state;
    crest__arena a;
    crest__arena_init(&a, 128, 128);
    assert_non_null(crest__arena_alloc(&a, 128)); /* the arena is full */
    norder = 0;
    assert_int_equal(crest__arena_defer(&a, record, (void *)9), -1);
    crest__arena_dispose(&a);
    assert_int_equal(norder, 0);
}

static void reset_keeps_one_standard_chunk(void **state)
{
    (void)state;
    crest__arena a;
    crest__arena_init(&a, 128, 0);
    char *first = crest__arena_alloc(&a, 16);
    for (int i = 0; i < 40; i++)
        assert_non_null(crest__arena_alloc(&a, 16)); /* five chunks */
    assert_int_equal(a.total, 128 * 6);
    crest__arena_reset(&a);
    assert_int_equal(a.total, 128);
    assert_non_null(a.head);
    /* The kept chunk is the first one, reused from its start. */
    assert_ptr_equal(crest__arena_alloc(&a, 16), first);
    crest__arena_dispose(&a);
}

static void reset_drops_an_oversized_only_chunk(void **state)
{
    (void)state;
    crest__arena a;
    crest__arena_init(&a, 128, 0);
    assert_non_null(crest__arena_alloc(&a, 5000)); /* the first chunk is a one-off */
    assert_int_equal(a.total, 5008);
    crest__arena_reset(&a);
    assert_int_equal(a.total, 0);
    assert_null(a.head);
    assert_non_null(crest__arena_alloc(&a, 16));
    assert_int_equal(a.total, 128);
    crest__arena_dispose(&a);
}

static void string_helpers(void **state)
{
    (void)state;
    crest__arena a;
    crest__arena_init(&a, 64, 0);
    char *s = crest__arena_strndup(&a, "hello world", 5);
    assert_string_equal(s, "hello");
    assert_string_equal(crest__arena_strdup(&a, ""), "");
    char *z = crest__arena_strndup(&a, NULL, 0); /* no bytes: the source is not read */
    assert_string_equal(z, "");
    assert_string_equal(crest__arena_printf(&a, "%s-%d-%05.1f", "x", -42, 3.25), "x--42-003.2");
    /* Longer than a chunk. */
    char big[300];
    memset(big, 'q', sizeof big - 1);
    big[sizeof big - 1] = 0;
    char *p = crest__arena_printf(&a, "<%s>", big);
    assert_non_null(p);
    assert_int_equal(strlen(p), 301);
    assert_int_equal(p[0], '<');
    assert_int_equal(p[300], '>');
    crest__arena_dispose(&a);
}

static void many_allocations_survive_reset_cycles(void **state)
{
    (void)state;
    crest__arena a;
    crest__arena_init(&a, 512, 1 << 20);
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 200; i++) {
            size_t n = (size_t)((i * 37 + round) % 700);
            char *p = crest__arena_alloc(&a, n);
            assert_non_null(p);
            assert_true(aligned16(p));
            memset(p, round, n);
        }
        crest__arena_reset(&a);
        assert_true(a.total <= 512);
    }
    crest__arena_dispose(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(alloc_is_aligned_and_disjoint),
        cmocka_unit_test(zero_size_gives_distinct_blocks),
        cmocka_unit_test(grows_past_a_chunk),
        cmocka_unit_test(big_one_off_keeps_current_chunk),
        cmocka_unit_test(limit_refuses_growth),
        cmocka_unit_test(huge_sizes_fail_cleanly),
        cmocka_unit_test(calloc_zeroes),
        cmocka_unit_test(reset_runs_cleanups_newest_first),
        cmocka_unit_test(defer_fails_at_limit_and_does_not_run),
        cmocka_unit_test(reset_keeps_one_standard_chunk),
        cmocka_unit_test(reset_drops_an_oversized_only_chunk),
        cmocka_unit_test(string_helpers),
        cmocka_unit_test(many_allocations_survive_reset_cycles),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
