/* test_field.c — the one field validator (src/query/field.c): a JSON value
 * checked against a field and turned into a typed value, and the value a
 * write gives a field (crest__field_input: the client's, the default, `now`,
 * "is required"), which REST bodies and SQL endpoint bodies both use. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "query/model.h"

static crest__arena A;

static int setup(void **state)
{
    (void)state;
    crest__arena_init(&A, 1024, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    crest__arena_dispose(&A);
    return 0;
}

static crest__mfield field(crest_field_type t)
{
    crest__mfield f;
    memset(&f, 0, sizeof f);
    f.f.name = "x";
    f.f.type = t;
    return f;
}

/* The message for JSON text j against f (NULL: accepted, value in *out). */
static const char *check(const crest__mfield *f, const char *j, crest__val *out)
{
    json_t *v = json_loads(j, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    assert_non_null(v);
    const char *msg = crest__field_value(&A, f, v, out);
    /* Text values may point into v: copy what the assertions read first. */
    if (!msg && crest__vkind_is_text(out->k)) {
        char *s = crest__arena_strndup(&A, out->s, out->n);
        assert_non_null(s);
        out->s = s;
    }
    json_decref(v);
    return msg;
}

static void ints_take_integral_numbers_only(void **state)
{
    (void)state;
    crest__mfield f = field(CREST_F_INT);
    crest__val v;
    assert_null(check(&f, "3", &v));
    assert_int_equal(v.k, CREST__V_INT);
    assert_int_equal(v.i, 3);
    assert_null(check(&f, "3.0", &v)); /* a JSON number, integral: 3 */
    assert_int_equal(v.k, CREST__V_INT);
    assert_int_equal(v.i, 3);
    assert_string_equal(check(&f, "3.5", &v), "must be an integer");
    assert_string_equal(check(&f, "\"3\"", &v), "must be an integer");
    assert_string_equal(check(&f, "true", &v), "must be an integer");
}

static void bounds_are_named_with_their_limit(void **state)
{
    (void)state;
    crest__mfield f = field(CREST_F_INT);
    f.f.has_min = f.f.has_max = true;
    f.f.min = 0;
    f.f.max = 10;
    crest__val v;
    assert_null(check(&f, "0", &v));
    assert_null(check(&f, "10", &v));
    assert_string_equal(check(&f, "-1", &v), "must be >= 0");
    assert_string_equal(check(&f, "11", &v), "must be <= 10");
    crest__mfield g = field(CREST_F_FLOAT);
    g.f.has_min = true;
    g.f.min = 0.5;
    assert_string_equal(check(&g, "0.25", &v), "must be >= 0.5");
    assert_null(check(&g, "1", &v));
    assert_int_equal(v.k, CREST__V_FLOAT);
}

static void strings_count_characters_and_refuse_nul(void **state)
{
    (void)state;
    crest__mfield f = field(CREST_F_STRING);
    f.f.min_length = 2;
    f.f.max_length = 4;
    crest__val v;
    assert_null(check(&f, "\"\u00e9\u00e9\u00e9\u00e9\"", &v)); /* 4 characters, 8 bytes */
    assert_int_equal(v.n, 8);
    assert_string_equal(check(&f, "\"a\"", &v), "must be at least 2 characters long");
    assert_string_equal(check(&f, "\"abcde\"", &v), "must be at most 4 characters long");
    assert_string_equal(check(&f, "\"a\\u0000b\"", &v), "must not contain NUL characters");
    assert_string_equal(check(&f, "5", &v), "must be a string");
}

static void allowed_values_are_listed(void **state)
{
    (void)state;
    static const char *const colors[] = {"red", "blue", NULL};
    crest__mfield f = field(CREST_F_STRING);
    f.f.values = colors;
    crest__val v;
    assert_null(check(&f, "\"blue\"", &v));
    assert_string_equal(check(&f, "\"green\"", &v), "must be one of: red, blue");
    assert_string_equal(check(&f, "\"re\"", &v), "must be one of: red, blue"); /* a prefix is not a value */
}

static void null_is_refused_when_required(void **state)
{
    (void)state;
    crest__mfield f = field(CREST_F_STRING);
    crest__val v;
    assert_null(check(&f, "null", &v));
    assert_int_equal(v.k, CREST__V_NULL);
    f.f.required = true;
    assert_string_equal(check(&f, "null", &v), "must not be null");
}

static void input_on_create_fills_defaults(void **state)
{
    (void)state;
    crest__mfield f = field(CREST_F_INT);
    crest__val v;
    bool set = false;
    /* Optional, no default: NULL is written. */
    assert_null(crest__field_input(&A, &f, NULL, true, &v, &set));
    assert_true(set);
    assert_int_equal(v.k, CREST__V_NULL);
    /* Required, no default: named. */
    f.f.required = true;
    assert_string_equal(crest__field_input(&A, &f, NULL, true, &v, &set), "is required");
    /* Required with a default: the default, checked like a value. */
    f.defv = json_integer(7);
    assert_null(crest__field_input(&A, &f, NULL, true, &v, &set));
    assert_int_equal(v.k, CREST__V_INT);
    assert_int_equal(v.i, 7);
    f.f.has_max = true;
    f.f.max = 5;
    assert_string_equal(crest__field_input(&A, &f, NULL, true, &v, &set), "must be <= 5");
    json_decref(f.defv);
}

static void input_on_update_leaves_absent_fields(void **state)
{
    (void)state;
    crest__mfield f = field(CREST_F_INT);
    f.f.required = true;
    crest__val v;
    bool set = true;
    assert_null(crest__field_input(&A, &f, NULL, false, &v, &set));
    assert_false(set);
    json_t *j = json_integer(4);
    assert_null(crest__field_input(&A, &f, j, false, &v, &set));
    assert_true(set);
    assert_int_equal(v.i, 4);
    json_decref(j);
}

static void input_now_is_the_time_of_the_write(void **state)
{
    (void)state;
    crest__mfield f = field(CREST_F_DATETIME);
    f.def_now = true;
    crest__val v;
    bool set;
    char before[40], after[40];
    crest__now_stored(before, sizeof before);
    assert_null(crest__field_input(&A, &f, NULL, true, &v, &set));
    crest__now_stored(after, sizeof after);
    assert_int_equal(v.k, CREST__V_DATETIME);
    assert_int_equal(v.n, 24); /* YYYY-MM-DDTHH:MM:SS.sssZ */
    assert_true(strncmp(before, v.s, v.n) <= 0 && strncmp(v.s, after, v.n) <= 0);
    crest__mfield d = field(CREST_F_DATE);
    d.def_now = true;
    assert_null(crest__field_input(&A, &d, NULL, true, &v, &set));
    assert_int_equal(v.k, CREST__V_DATE);
    assert_int_equal(v.n, 10);
    assert_true(crest__date_valid(v.s, v.n));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(ints_take_integral_numbers_only, setup, teardown),
        cmocka_unit_test_setup_teardown(bounds_are_named_with_their_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(strings_count_characters_and_refuse_nul, setup, teardown),
        cmocka_unit_test_setup_teardown(allowed_values_are_listed, setup, teardown),
        cmocka_unit_test_setup_teardown(null_is_refused_when_required, setup, teardown),
        cmocka_unit_test_setup_teardown(input_on_create_fills_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(input_on_update_leaves_absent_fields, setup, teardown),
        cmocka_unit_test_setup_teardown(input_now_is_the_time_of_the_write, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
