/* test_errors.c — the one table of error codes (src/core/errors.c): its rows
 * are sound, lookups by string work, crest__res_fail answers with a row,
 * crest_res_error keeps its own copy of the caller's code, and
 * docs/internals/errors.md lists exactly the table's codes and statuses. */
#include <stdlib.h>

#include "unit.h"

#include "app/app_internal.h"
#include "core/core.h"
#include "http/loopback.h"

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

/* Regression: crest_res_error kept the caller's `code` pointer, so a code
 * built in a buffer the handler then reused or freed was read after the
 * handler returned, when the answer is rendered. */
static void test_crest_res_error_copies_its_code(void **state)
{
    fixture *f = *state;
    crest_res *res = &f->res;
    char *code = strdup("quota_exceeded");
    assert_non_null(code);
    assert_i64_eq(crest_res_error(res, 409, code, "over by %d", 3), -1);
    memset(code, 'x', strlen(code));
    assert_string_equal(res->err_code, "quota_exceeded");
    free(code);
    assert_string_equal(res->err_code, "quota_exceeded");
    assert_i64_eq(res->err_status, 409);
    assert_string_equal(res->err_detail, "over by 3");

    char buf[32];
    snprintf(buf, sizeof buf, "%s", "first_code");
    crest_res_error(res, 422, buf, NULL);
    snprintf(buf, sizeof buf, "%s", "second_code");
    assert_string_equal(res->err_code, "first_code");
    assert_string_equal(res->err_detail, "");

    crest_res_error(res, 200, NULL, "no code");
    assert_i64_eq(res->err_status, 500);
    assert_string_equal(res->err_code, "error");
}

/* Through a whole request: the body a handler's buffer-built code renders. */
static char handler_code[32];
static int h_reused_buffer(crest_req *req, crest_res *res, void *ud)
{
    (void)req;
    (void)ud;
    snprintf(handler_code, sizeof handler_code, "%s", "quota_exceeded");
    int rc = crest_res_error(res, 409, handler_code, "over by %d", 3);
    snprintf(handler_code, sizeof handler_code, "%s", "overwritten");
    return rc;
}
static const crest_endpoint reused_ep = {.method = CREST_GET, .path = "/q", .handler = h_reused_buffer};

static void crest_res_error_code_survives_the_handler(void **state)
{
    (void)state;
    crest_app *app = crest_app_new();
    assert_non_null(app);
    crest_app_set_access_log(app, false);
    crest_error e = {0};
    assert_int_equal(crest_app_add_endpoint(app, &reused_ep, NULL, &e), 0);
    crest__loopback *lb = crest__loopback_new(app, &e);
    assert_non_null(lb);
    static const char req[] = "GET /q HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(crest__loopback_feed(lb, req, sizeof req - 1), 0);
    size_t n;
    const char *o = crest__loopback_output(lb, &n);
    const char *body = o ? strstr(o, "\r\n\r\n") : NULL;
    assert_non_null(body);
    body += 4;
    assert_bytes_eq(body, n - (size_t)(body - o),
                    "{\"status\":409,\"title\":\"Conflict\",\"detail\":\"over by 3\",\"code\":\"quota_exceeded\"}");
    crest__loopback_free(lb);
    crest_app_free(app);
}

/* docs/internals/errors.md: a row "| `code` | status | ... |" for every
 * code of the table, with its status ("4xx/5xx" for any_status rows), and
 * no row for a code the table does not have. */
static void the_doc_lists_every_code(void **state)
{
    (void)state;
    FILE *fp = fopen(CREST_SOURCE_DIR "/docs/internals/errors.md", "r");
    assert_non_null(fp);
    bool listed[CREST__E_COUNT] = {0};
    char line[1024];
    while (fgets(line, sizeof line, fp)) {
        if (strncmp(line, "| `", 3))
            continue;
        char *code = line + 3, *end = strchr(code, '`');
        assert_non_null(end);
        *end = 0;
        crest__ecode e;
        const crest__problem_def *d = crest__problem_find(code, &e);
        if (!d) {
            print_error("errors.md lists '%s', which the table does not have\n", code);
            fail();
        }
        if (listed[e]) {
            print_error("errors.md lists '%s' twice\n", code);
            fail();
        }
        listed[e] = true;
        char want[32];
        if (d->any_status)
            snprintf(want, sizeof want, " | 4xx/5xx |");
        else
            snprintf(want, sizeof want, " | %d |", d->status);
        if (strncmp(end + 1, want, strlen(want))) {
            print_error("errors.md: '%s' should have the status%s\n", code, want + 2);
            fail();
        }
    }
    fclose(fp);
    for (unsigned i = 0; i < CREST__E_COUNT; i++)
        if (!listed[i]) {
            print_error("errors.md does not list '%s'\n", crest__problem((crest__ecode)i)->code);
            fail();
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_row_is_sound),
        cmocka_unit_test(lookup_by_string),
        cmocka_unit_test_setup_teardown(res_fail_answers_with_a_row, fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(test_crest_res_error_copies_its_code, fixture_setup, fixture_teardown),
        cmocka_unit_test(crest_res_error_code_survives_the_handler),
        cmocka_unit_test(the_doc_lists_every_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
