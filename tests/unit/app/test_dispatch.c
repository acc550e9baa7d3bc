/* test_dispatch.c — the query-string parser crest__query_parse (src/app/
 * dispatch.c) and the accessors over its result: repeated keys kept in
 * order, '+' and percent decoding, empty values and keys without '=', bad
 * escapes and NULs refused, and what bounds the number of pairs (the arena's
 * limit here; the request-line limit at the HTTP layer, see test_limits.c). */
#include <stdlib.h>

#include "unit.h"

#include "app/app_internal.h"

typedef struct {
    crest__arena arena;
    crest_req req;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    crest__arena_init(&f->arena, 4096, 0);
    f->req.arena = &f->arena;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    crest__arena_dispose(&f->arena);
    free(f);
    return 0;
}

static int parse(fixture *f, const char *q)
{
    crest__arena_reset(&f->arena);
    f->req.query = NULL;
    f->req.nquery = 0;
    return crest__query_parse(&f->req, q, strlen(q));
}

static void kv_is(const fixture *f, unsigned i, const char *k, const char *v)
{
    assert_true(i < f->req.nquery);
    assert_string_equal(f->req.query[i].key, k);
    assert_string_equal(f->req.query[i].value, v);
}

static void repeated_keys_in_order(void **state)
{
    fixture *f = *state;
    assert_int_equal(parse(f, "a=1&b=2&a=3&a=4"), 0);
    assert_int_equal(f->req.nquery, 4);
    kv_is(f, 0, "a", "1");
    kv_is(f, 1, "b", "2");
    kv_is(f, 2, "a", "3");
    kv_is(f, 3, "a", "4");
    assert_string_equal(crest_req_query(&f->req, "a"), "1");
    assert_string_equal(crest_req_query_at(&f->req, "a", 0), "1");
    assert_string_equal(crest_req_query_at(&f->req, "a", 1), "3");
    assert_string_equal(crest_req_query_at(&f->req, "a", 2), "4");
    assert_null(crest_req_query_at(&f->req, "a", 3));
    assert_string_equal(crest_req_query(&f->req, "b"), "2");
    assert_null(crest_req_query(&f->req, "c"));
    assert_null(crest_req_query(&f->req, "A")); /* keys are case-sensitive */
}

static void plus_and_percent_decoding(void **state)
{
    fixture *f = *state;
    assert_int_equal(parse(f, "q=hello+world&a%20b=c%26d%3De&plus=%2B&sp=%20+%20"), 0);
    assert_int_equal(f->req.nquery, 4);
    kv_is(f, 0, "q", "hello world");
    kv_is(f, 1, "a b", "c&d=e"); /* encoded '&' and '=' do not split */
    kv_is(f, 2, "plus", "+");
    kv_is(f, 3, "sp", "   ");
    assert_int_equal(parse(f, "name=caf%C3%A9&k+ey=v"), 0);
    kv_is(f, 0, "name", "caf\xC3\xA9");
    kv_is(f, 1, "k ey", "v");
    assert_int_equal(parse(f, "x=%7e%7E"), 0); /* either hex case */
    kv_is(f, 0, "x", "~~");
}

static void empty_values_and_bare_keys(void **state)
{
    fixture *f = *state;
    assert_int_equal(parse(f, "a=&flag&b=2&=v&c==x"), 0);
    assert_int_equal(f->req.nquery, 5);
    kv_is(f, 0, "a", "");
    kv_is(f, 1, "flag", ""); /* no '=': present, empty */
    kv_is(f, 2, "b", "2");
    kv_is(f, 3, "", "v");   /* an empty key is kept */
    kv_is(f, 4, "c", "=x"); /* only the first '=' splits */
    assert_non_null(crest_req_query(&f->req, "flag"));
}

static void empty_pieces_are_skipped(void **state)
{
    fixture *f = *state;
    assert_int_equal(parse(f, ""), 0);
    assert_int_equal(f->req.nquery, 0);
    assert_int_equal(parse(f, "&"), 0);
    assert_int_equal(f->req.nquery, 0);
    assert_int_equal(parse(f, "&&a=1&&&b&"), 0);
    assert_int_equal(f->req.nquery, 2);
    kv_is(f, 0, "a", "1");
    kv_is(f, 1, "b", "");
    assert_int_equal(parse(f, "="), 0);
    assert_int_equal(f->req.nquery, 1);
    kv_is(f, 0, "", "");
}

static void only_len_bytes_are_read(void **state)
{
    fixture *f = *state;
    crest__arena_reset(&f->arena);
    f->req.nquery = 0;
    assert_int_equal(crest__query_parse(&f->req, "a=12&b=3", 3), 0);
    assert_int_equal(f->req.nquery, 1);
    kv_is(f, 0, "a", "1");
}

static void bad_escapes_refused(void **state)
{
    fixture *f = *state;
    static const char *const bad[] = {"a=%",    "a=%2",   "a=%zz", "a=%G1",  "%4=1",      "%=1",
                                      "a=%00",  "%00=1",  "a=x%00y", "k%00k", "ok=1&b=%", "a=1&%zz"};
    for (size_t i = 0; i < COUNT_OF(bad); i++) {
        int rc = parse(f, bad[i]);
        if (rc != CREST_EINVAL) {
            print_error("query '%s': %d, want CREST_EINVAL\n", bad[i], rc);
            fail();
        }
    }
}

static void many_pairs(void **state)
{
    fixture *f = *state;
    /* The parser itself has no cap on pairs: a request line at the default
     * 8 KiB limit holds about 4000, and all are kept. */
    size_t cap = 4000 * 8 + 1, o = 0;
    char *q = malloc(cap);
    assert_non_null(q);
    for (int i = 0; i < 4000; i++)
        o += (size_t)snprintf(q + o, cap - o, "%sk=%d", i ? "&" : "", i % 10);
    assert_int_equal(parse(f, q), 0);
    assert_int_equal(f->req.nquery, 4000);
    assert_string_equal(crest_req_query_at(&f->req, "k", 3999), "9");
    assert_null(crest_req_query_at(&f->req, "k", 4000));
    /* Long keys and values are fine too. */
    memset(q, 'v', 8000);
    q[0] = 'k';
    q[1] = '=';
    q[8000] = 0;
    assert_int_equal(parse(f, q), 0);
    assert_int_equal(strlen(f->req.query[0].value), 7998);
    free(q);
}

static void arena_limit_bounds_the_parse(void **state)
{
    (void)state;
    /* Everything the parser keeps comes from the request arena, so the
     * arena's limit bounds it: past it the parse fails with CREST_ENOMEM. */
    crest__arena a;
    crest__arena_init(&a, 1024, 4096);
    crest_req req;
    memset(&req, 0, sizeof req);
    req.arena = &a;
    size_t cap = 2000 * 4 + 1, o = 0;
    char *q = malloc(cap);
    assert_non_null(q);
    for (int i = 0; i < 2000; i++)
        o += (size_t)snprintf(q + o, cap - o, "%sa=", i ? "&" : "");
    assert_int_equal(crest__query_parse(&req, q, o), CREST_ENOMEM);
    crest__arena_reset(&a);
    req.nquery = 0;
    assert_int_equal(crest__query_parse(&req, "a=1", 3), 0);
    assert_int_equal(req.nquery, 1);
    crest__arena_dispose(&a);
    free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(repeated_keys_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(plus_and_percent_decoding, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_values_and_bare_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(empty_pieces_are_skipped, setup, teardown),
        cmocka_unit_test_setup_teardown(only_len_bytes_are_read, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_escapes_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(many_pairs, setup, teardown),
        cmocka_unit_test(arena_limit_bounds_the_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
