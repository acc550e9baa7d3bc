/* test_postgres_array.c — PostgreSQL's text form of arrays read as JSON
 * arrays (src/store/postgres_array.c): array_out's quoting, NULL against
 * "NULL", nested dimensions, the "[lb:ub]=" decoration, elements typed by
 * the array type's element (numbers, bools, timestamps in crest's form,
 * JSON as JSON), and text that is no array's refused. */
#include "unit.h"

#include <jansson.h>

#include "store/postgres_internal.h"

/* The JSON crest__pg_array_json makes of s for the array type array_oid,
 * or "(not an array)" when it refuses s (static buffer). */
static const char *json_of(unsigned array_oid, const char *s)
{
    static char out[1024];
    crest__arena a;
    crest__arena_init(&a, 1024, 0);
    unsigned elem = crest__pg_array_elem(array_oid);
    assert_true(elem != 0);
    const char *j = NULL;
    size_t n = 0;
    int rc = crest__pg_array_json(&a, elem, s, strlen(s), &j, &n);
    assert_true(rc == 0 || rc == 1);
    if (rc == 1) {
        snprintf(out, sizeof out, "(not an array)");
    } else {
        assert_int_equal(strlen(j), n);
        /* Whatever it makes is JSON. */
        json_error_t je;
        json_t *v = json_loadb(j, n, JSON_DECODE_ANY, &je);
        if (!v) {
            print_error("not JSON: [%s]: %s\n", j, je.text);
            fail();
        }
        json_decref(v);
        snprintf(out, sizeof out, "%s", j);
    }
    crest__arena_dispose(&a);
    return out;
}

#define assert_json(oid, text, want) assert_string_equal(json_of(oid, text), want)

static void element_types_of_array_types(void **state)
{
    (void)state;
    static const struct {
        unsigned array, elem;
    } known[] = {{1000, PG_BOOL},  {1005, PG_INT2},   {1007, PG_INT4},        {1016, PG_INT8},
                 {1022, PG_FLOAT8}, {1231, PG_NUMERIC}, {1009, PG_TEXT},      {1015, PG_VARCHAR},
                 {3807, PG_JSONB}, {199, PG_JSON},    {1185, PG_TIMESTAMPTZ}, {2951, PG_UUID},
                 {1182, PG_DATE}};
    for (size_t i = 0; i < COUNT_OF(known); i++)
        assert_i64_eq(crest__pg_array_elem(known[i].array), known[i].elem);
    /* Scalar types are no arrays. */
    static const unsigned scalars[] = {PG_BOOL, PG_INT4, PG_TEXT, PG_JSONB, PG_TIMESTAMPTZ, PG_UUID, 0, 99999};
    for (size_t i = 0; i < COUNT_OF(scalars); i++)
        assert_i64_eq(crest__pg_array_elem(scalars[i]), 0);
}

static void numbers_and_nulls(void **state)
{
    (void)state;
    assert_json(1007, "{1,2,NULL,-3}", "[1,2,null,-3]");
    assert_json(1016, "{9223372036854775807,-9223372036854775808}", "[9223372036854775807,-9223372036854775808]");
    assert_json(1005, "{null,Null}", "[null,null]");
    assert_json(1022, "{1.5,-0.25,NaN,Infinity,-Infinity,1e+300}", "[1.5,-0.25,null,null,null,1e+300]");
    assert_json(1231, "{1,2.50,NaN,123456789012345678901234567890}", "[1,2.5,null,1.2345678901234568e+29]");
    assert_json(1000, "{t,f,NULL}", "[true,false,null]");
}

static void empty_arrays(void **state)
{
    (void)state;
    assert_json(1007, "{}", "[]");
    assert_json(1009, "{}", "[]");
    assert_json(1009, "{\"\"}", "[\"\"]");
}

/* array_out quotes an element holding a delimiter, a brace, a quote, a
 * backslash or white space, or reading NULL; inside quotes a backslash
 * makes the next character literal. */
static void quoted_text_elements(void **state)
{
    (void)state;
    assert_json(1009, "{plain,\"a,b\",\"c\\\"d\",\"e\\\\f\",\"{x}\",\"NULL\",NULL,\" sp \"}",
                "[\"plain\",\"a,b\",\"c\\\"d\",\"e\\\\f\",\"{x}\",\"NULL\",null,\" sp \"]");
    assert_json(1015, "{\"null\",nulls,NULLx}", "[\"null\",\"nulls\",\"NULLx\"]");
    assert_json(1009, "{\"\\u00e9\",é,\"tab\\there\"}", "[\"u00e9\",\"é\",\"tabthere\"]");
    assert_json(1009, "{\"line\nbreak\"}", "[\"line\\nbreak\"]");
}

static void nested_dimensions(void **state)
{
    (void)state;
    assert_json(1007, "{{1,2},{3,4}}", "[[1,2],[3,4]]");
    assert_json(1007, "{{{1},{2}},{{3},{NULL}}}", "[[[1],[2]],[[3],[null]]]");
    assert_json(1009, "{{\"a}\",b},{\"{\",NULL}}", "[[\"a}\",\"b\"],[\"{\",null]]");
    /* Six dimensions are PostgreSQL's most. */
    assert_json(1007, "{{{{{{1}}}}}}", "[[[[[[1]]]]]]");
    assert_string_equal(json_of(1007, "{{{{{{{1}}}}}}}"), "(not an array)");
}

/* Lower bounds other than 1 come as "[lb:ub]=" before the braces. */
static void dimension_decoration(void **state)
{
    (void)state;
    assert_json(1007, "[0:1]={7,8}", "[7,8]");
    assert_json(1007, "[-2:-1][1:2]={{1,2},{3,4}}", "[[1,2],[3,4]]");
    assert_string_equal(json_of(1007, "[0:1]{7,8}"), "(not an array)");
    assert_string_equal(json_of(1007, "[0:1={7,8}"), "(not an array)");
    assert_string_equal(json_of(1007, "[a:b]={7,8}"), "(not an array)");
}

static void typed_elements(void **state)
{
    (void)state;
    assert_json(1185, "{\"2026-01-31 12:00:00.123456+00\",\"2026-01-31 12:00:00+00\",NULL,infinity}",
                "[\"2026-01-31T12:00:00.123Z\",\"2026-01-31T12:00:00.000Z\",null,\"infinity\"]");
    assert_json(1115, "{\"2026-01-31 12:00:00.5\"}", "[\"2026-01-31T12:00:00.500Z\"]");
    assert_json(1182, "{2026-01-31,NULL}", "[\"2026-01-31\",null]");
    assert_json(2951, "{0b9b1d4e-4a1f-4c53-9d36-6f1f3d0e2a10}", "[\"0b9b1d4e-4a1f-4c53-9d36-6f1f3d0e2a10\"]");
    /* JSON elements are JSON, not strings of it. */
    assert_json(3807, "{\"{\\\"a\\\": [1, \\\"x,}\\\"]}\",\"[]\",\"null\",NULL,\"\\\"s\\\"\",3}",
                "[{\"a\": [1, \"x,}\"]},[],null,null,\"s\",3]");
    assert_json(199, "{\"{\\\"k\\\":true}\"}", "[{\"k\":true}]");
    /* Types crest does not type: their text. */
    assert_json(1187, "{\"1 day\",\"-02:00:00\"}", "[\"1 day\",\"-02:00:00\"]");
    assert_json(1041, "{127.0.0.1,::1/128}", "[\"127.0.0.1\",\"::1/128\"]");
    /* box[] is the one built-in array whose delimiter is ';'. */
    assert_json(1020, "{(1,1),(0,0);(2,2),(1,1)}", "[\"(1,1),(0,0)\",\"(2,2),(1,1)\"]");
}

/* array_in's looser forms: white space around elements and braces. */
static void white_space_around(void **state)
{
    (void)state;
    assert_json(1007, " { 1 , 2 } ", "[1,2]");
    assert_json(1009, "{ a b , \"c\" }", "[\"a b\",\"c\"]");
}

static void not_array_text(void **state)
{
    (void)state;
    static const char *const bad[] = {"",       "1,2",    "{1,2",   "{1,2}}", "{1,,2}",   "{,1}",     "{1,}",
                                      "{{1}",   "{1}x",   "{\"a}",  "{a\"b}", "{a\\,b}",  "{1}{2}",   "[0:1]=",
                                      "{{1},2", "}",      "{\"a\"b}"};
    for (size_t i = 0; i < COUNT_OF(bad); i++) {
        const char *got = json_of(1007, bad[i]);
        if (strcmp(got, "(not an array)")) {
            print_error("[%s] read as %s\n", bad[i], got);
            fail();
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(element_types_of_array_types),
        cmocka_unit_test(numbers_and_nulls),
        cmocka_unit_test(empty_arrays),
        cmocka_unit_test(quoted_text_elements),
        cmocka_unit_test(nested_dimensions),
        cmocka_unit_test(dimension_decoration),
        cmocka_unit_test(typed_elements),
        cmocka_unit_test(white_space_around),
        cmocka_unit_test(not_array_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
