/* test_rows.c — the one cell writer (src/store/rows.c): a cell as the
 * database typed it, and as a declared type (crest__cell_write_as: a model
 * field's, lenient; an SQL endpoint's `columns:`, strict). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "crest/rest.h"
#include "store/store.h"

static const crest__cell NUL = {.k = CREST__V_NULL};

static crest__cell I(int64_t i) { return (crest__cell){.v.i = i, .k = CREST__V_INT}; }
static crest__cell F(double f) { return (crest__cell){.v.f = f, .k = CREST__V_FLOAT}; }
static crest__cell B(int b) { return (crest__cell){.v.i = b, .k = CREST__V_BOOL}; }
static crest__cell T(const char *s) { return (crest__cell){.v.s = s, .n = (uint32_t)strlen(s), .k = CREST__V_TEXT}; }
static crest__cell J(const char *s) { return (crest__cell){.v.s = s, .n = (uint32_t)strlen(s), .k = CREST__V_JSON}; }

/* What c written as type t gives ("-1" when it refused). */
static const char *as(crest__cell c, int t, bool strict)
{
    static char out[512];
    crest_json w;
    crest_json_init(&w, 1 << 16);
    crest_json_array_begin(&w);
    int rc = crest__cell_write_as(&w, &c, t, strict);
    crest_json_array_end(&w);
    size_t len;
    const char *d = crest_json_data(&w, &len);
    if (rc)
        strcpy(out, "-1");
    else
        snprintf(out, sizeof out, "%.*s", (int)(len - 2), d + 1); /* inside [ ] */
    crest_json_dispose(&w);
    return out;
}

static void null_and_auto_are_as_typed(void **state)
{
    (void)state;
    assert_string_equal(as(NUL, CREST_F_INT, true), "null");
    assert_string_equal(as(I(3), 0, true), "3");
    assert_string_equal(as(T("x"), 0, true), "\"x\"");
    assert_string_equal(as(J("{\"a\":1}"), 0, true), "{\"a\":1}");
}

static void ints(void **state)
{
    (void)state;
    assert_string_equal(as(I(-7), CREST_F_INT, true), "-7");
    assert_string_equal(as(F(3.0), CREST_F_INT, true), "3");
    assert_string_equal(as(T("42"), CREST_F_INT, true), "42");
    /* An integer past 2^53 held as a float: its digits. */
    assert_string_equal(as(F(36893488147419103232.0), CREST_F_INT, true), "36893488147419103232");
    assert_string_equal(as(F(1.5), CREST_F_INT, true), "-1");
    assert_string_equal(as(T("forty"), CREST_F_INT, true), "-1");
    /* A model field (lenient): what another program stored, as stored. */
    assert_string_equal(as(F(1.5), CREST_F_INT, false), "1.5");
    assert_string_equal(as(T("forty"), CREST_F_INT, false), "\"forty\"");
}

static void floats(void **state)
{
    (void)state;
    assert_string_equal(as(F(1.5), CREST_F_FLOAT, true), "1.5");
    assert_string_equal(as(I(2), CREST_F_FLOAT, true), "2.0");
    assert_string_equal(as(T("0.25"), CREST_F_FLOAT, true), "0.25");
    assert_string_equal(as(T("cheap"), CREST_F_FLOAT, true), "-1");
    assert_string_equal(as(T("cheap"), CREST_F_FLOAT, false), "\"cheap\"");
}

static void bools(void **state)
{
    (void)state;
    assert_string_equal(as(I(1), CREST_F_BOOL, true), "true");
    assert_string_equal(as(I(0), CREST_F_BOOL, true), "false");
    assert_string_equal(as(B(1), CREST_F_BOOL, true), "true");
    assert_string_equal(as(F(0.5), CREST_F_BOOL, true), "true");
    assert_string_equal(as(T("t"), CREST_F_BOOL, true), "true");
    assert_string_equal(as(T("FALSE"), CREST_F_BOOL, true), "false");
    assert_string_equal(as(T("yes please"), CREST_F_BOOL, true), "-1");
    assert_string_equal(as(T("yes please"), CREST_F_BOOL, false), "\"yes please\"");
}

static void json_text_is_its_value(void **state)
{
    (void)state;
    assert_string_equal(as(T("{\"a\":[1,true]}"), CREST_F_JSON, true), "{\"a\":[1,true]}");
    assert_string_equal(as(T("not json"), CREST_F_JSON, true), "\"not json\"");
    assert_string_equal(as(I(5), CREST_F_JSON, true), "5");
}

static void text_types_are_the_values_text(void **state)
{
    (void)state;
    assert_string_equal(as(I(17), CREST_F_STRING, true), "\"17\"");
    assert_string_equal(as(F(100.0), CREST_F_TEXT, true), "\"100.0\"");
    assert_string_equal(as(T("2026-01-31"), CREST_F_DATE, true), "\"2026-01-31\"");
    assert_string_equal(as(I(20260131), CREST_F_DATE, false), "\"20260131\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(null_and_auto_are_as_typed), cmocka_unit_test(ints),
        cmocka_unit_test(floats),
        cmocka_unit_test(bools),
        cmocka_unit_test(json_text_is_its_value),
        cmocka_unit_test(text_types_are_the_values_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
