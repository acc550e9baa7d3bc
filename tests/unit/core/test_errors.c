/* test_errors.c — the one table of error codes (src/core/errors.c): its rows
 * are sound, lookups by string work, crest__res_fail answers with a row. */
#include <stdlib.h>

#include "unit.h"

#include "app/app_internal.h"
#include "core/core.h"

static bool is_snake_case(const char *s)
{
    if (!(*s >= 'a' && *s <= 'z'))
        return false;
    for (const char *p = s; *p; p++) {
        bool ok = (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || (*p == '_' && p[1] && p[1] != '_');
        if (!ok)
            return false;
    }
    return true;
}

static void every_row_is_sound(void **state)
{
    (void)state;
    for (unsigned i = 0; i < CREST__E_COUNT; i++) {
        const crest__problem_def *d = crest__problem((crest__ecode)i);
        assert_non_null(d);
        assert_non_null(d->code);
        if (!is_snake_case(d->code)) {
            print_error("row %u: code '%s' is not snake_case\n", i, d->code);
            fail();
        }
        if (d->status < 400 || d->status > 599) {
            print_error("row %u (%s): status %d is not 4xx/5xx\n", i, d->code, d->status);
            fail();
        }
        /* The title is the status's reason phrase: there must be one. */
        if (!strcmp(crest__status_text(d->status), "Unknown")) {
            print_error("row %u (%s): status %d has no reason phrase\n", i, d->code, d->status);
            fail();
        }
        assert_non_null(d->detail);
        assert_true(d->detail[0] != 0);
        for (unsigned j = 0; j < i; j++)
            if (!strcmp(crest__problem((crest__ecode)j)->code, d->code)) {
                print_error("rows %u and %u share the code '%s'\n", j, i, d->code);
                fail();
            }
    }
    assert_null(crest__problem(CREST__E_COUNT));
    assert_null(crest__problem((crest__ecode)-1));
}

static void lookup_by_string(void **state)
{
    (void)state;
    for (unsigned i = 0; i < CREST__E_COUNT; i++) {
        crest__ecode e = CREST__E_COUNT;
        const crest__problem_def *d = crest__problem((crest__ecode)i);
        assert_ptr_equal(crest__problem_find(d->code, &e), d);
        assert_i64_eq(e, i);
    }
    crest__ecode e = CREST__E_COUNT;
    assert_ptr_equal(crest__problem_find("out_of_memory", &e), crest__problem(CREST__E_OUT_OF_MEMORY));
    assert_i64_eq(e, CREST__E_OUT_OF_MEMORY);
    assert_i64_eq(crest__problem_find("not_found", NULL)->status, 404);
    assert_null(crest__problem_find("no_such_code", &e));
    assert_null(crest__problem_find("", NULL));
    assert_null(crest__problem_find("NOT_FOUND", NULL));
    assert_null(crest__problem_find(NULL, NULL));
}

/* A response with an arena, as dispatch makes them. */
typedef struct fixture {
    crest__arena arena;
    crest_res res;
} fixture;

static int fixture_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    crest__arena_init(&f->arena, 1024, 0);
    f->res.arena = &f->arena;
    *state = f;
    return 0;
}

static int fixture_teardown(void **state)
{
    fixture *f = *state;
    crest__arena_dispose(&f->arena);
    free(f);
    return 0;
}

static void res_fail_answers_with_a_row(void **state)
{
    fixture *f = *state;
    crest_res *res = &f->res;
    assert_i64_eq(crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL), -1);
    assert_true(res->is_error);
    assert_i64_eq(res->err_status, 503);
    assert_string_equal(res->err_code, "out_of_memory");
    assert_string_equal(res->err_detail, "the server is short of memory");

    crest_res_error_field(res, "title", "is required");
    assert_i64_eq(crest__res_fail(res, CREST__E_NOT_FOUND, "no %s with this id", "Task"), -1);
    assert_i64_eq(res->err_status, 404);
    assert_string_equal(res->err_code, "not_found");
    assert_string_equal(res->err_detail, "no Task with this id");
    assert_null(res->err_fields); /* a new problem drops the field errors of the last */
    assert_i64_eq(res->nerr_fields, 0);

    /* Only an any_status row takes the caller's status, and only 4xx/5xx. */
    crest__res_fail_status(res, CREST__E_RAISED, 409, "%s", "Cannot delete a locked project");
    assert_i64_eq(res->err_status, 409);
    assert_string_equal(res->err_code, "raised");
    assert_string_equal(res->err_detail, "Cannot delete a locked project");
    crest__res_fail_status(res, CREST__E_RAISED, 200, NULL);
    assert_i64_eq(res->err_status, 500);
    crest__res_fail_status(res, CREST__E_CONFLICT, 418, NULL);
    assert_i64_eq(res->err_status, 409);
    assert_string_equal(res->err_detail, "a row with the same unique value exists");

    crest__res_fail_static(res, CREST__E_HEADERS_TOO_LARGE, "too many header fields");
    assert_i64_eq(res->err_status, 431);
    assert_string_equal(res->err_code, "headers_too_large");
    assert_string_equal(res->err_detail, "too many header fields");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_row_is_sound),
        cmocka_unit_test(lookup_by_string),
        cmocka_unit_test_setup_teardown(res_fail_answers_with_a_row, fixture_setup, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
