/* test_regressions.c — one regression test per bug found in src/ by the
 * unit tests and fuzzing, each named after the bug it pins (the comment
 * above each says where it was and what went wrong). All fixed. */
#define _GNU_SOURCE /* memmem */
#include <float.h>
#include <stdlib.h>
#include <unistd.h>

#include "unit.h"

#include "crest/rest.h"
#include "core/core.h"
#include "http/loopback.h"
#include "json/json_internal.h"
#include "router/router.h"

/* Serves one request on a loopback connection of app: the answer must
 * begin with status_line (12 bytes, "HTTP/1.1 200") and hold has (NULL:
 * anything). */
static void expect_answer(crest_app *app, const char *req, const char *status_line, const char *has)
{
    crest_error e = {0};
    crest__loopback *lb = crest__loopback_new(app, &e);
    assert_non_null(lb);
    assert_int_equal(crest__loopback_feed(lb, req, strlen(req)), 0);
    size_t n;
    const char *o = crest__loopback_output(lb, &n);
    assert_true(n > 12 && memcmp(o, status_line, 12) == 0);
    if (has)
        assert_non_null(memmem(o, n, has, strlen(has)));
    crest__loopback_free(lb);
}

/* src/core/arena.c:73 — `n = (n + 15) & ~15` wraps for n > SIZE_MAX - 15, so
 * a request for (nearly) SIZE_MAX bytes gets a 16-byte block instead of NULL.
 * crest_req_alloc(req, n) passes a handler's n straight here; a caller that
 * then writes n bytes overruns the heap. */
static void arena_alloc_size_rounding_overflow(void **state)
{
    (void)state;
    crest__arena a;
    crest__arena_init(&a, 128, 0);
    assert_null(crest__arena_alloc(&a, SIZE_MAX));
    assert_null(crest__arena_alloc(&a, SIZE_MAX - 8));
    /* (crest__arena_calloc(&a, 1, SIZE_MAX) would then memset SIZE_MAX bytes
     * into that block: not run here, it crashes.) */
    crest__arena_dispose(&a);
}

/* src/json/writer.c:80 (put) and :228 (write_string) — the output limit
 * is checked only inside grow(), i.e. when the buffer must be reallocated.
 * A writer whose buffer already has room (the first allocation is 512
 * bytes; a reset keeps the buffer, as every keep-alive connection does)
 * writes past `limit` without CREST_JSON_ETOOBIG; with a limit that is not
 * a power of two the overshoot reaches the next doubling of the buffer. */
static void json_writer_limit_checked_only_on_growth(void **state)
{
    (void)state;
    crest_json w;
    crest_json_init(&w, 100);
    crest_json_array_begin(&w); /* allocates 512 bytes */
    for (int i = 0; i < 60; i++)
        crest_json_int(&w, 1); /* 120 bytes of output */
    size_t n;
    crest_json_data(&w, &n);
    print_message("output %zu bytes with limit 100, error %d\n", n, crest_json_error(&w));
    assert_int_equal(crest_json_error(&w), CREST_JSON_ETOOBIG);
    assert_true(n <= 100);
    crest_json_dispose(&w);
}

/* src/json/writer.c:241 — a string that needs escaping reserves the worst
 * case, 6*len + 2, and grow() checks that reservation against the limit, so
 * a string whose real output fits is refused with CREST_JSON_ETOOBIG. */
static void json_writer_escape_reservation_counts_against_limit(void **state)
{
    (void)state;
    crest_json w;
    crest_json_init(&w, 100);
    char s[30];
    memset(s, 'a', sizeof s);
    s[10] = '\n'; /* output: 2 quotes + 29 + 2 = 33 bytes */
    crest_json_strn(&w, s, sizeof s);
    assert_int_equal(crest_json_error(&w), 0);
    size_t n;
    crest_json_data(&w, &n);
    assert_int_equal(n, 33);
    crest_json_dispose(&w);
}

/* src/core/buf.c:67 — crest__buf_appendf's long path (256 characters and
 * more) reserves n + 1 bytes for vsnprintf's NUL, and the NUL counts against
 * the limit: text that fits exactly is refused, while the short path
 * accepts the same case. */
static void buf_appendf_nul_counts_against_limit(void **state)
{
    (void)state;
    crest__buf b;
    crest__buf_init(&b, 300);
    char s[301];
    memset(s, 'x', 300);
    s[300] = 0;
    assert_int_equal(crest__buf_appendf(&b, "%s", s), 0); /* 300 bytes into a 300-byte limit */
    assert_int_equal(b.len, 300);
    crest__buf_dispose(&b);
}

/* src/core/util.c:78 — strtod sets ERANGE for subnormal results too, and
 * crest__parse_double treats any ERANGE as an error: valid finite numbers
 * below DBL_MIN ("5e-324", "1e-310") are refused, e.g. as a float query
 * parameter ("must be a number") or in an app file. */
static void parse_double_refuses_subnormals(void **state)
{
    (void)state;
    double v = 0;
    assert_int_equal(crest__parse_double("1e-310", 6, &v), 0);
    assert_true(v > 0 && v < DBL_MIN);
    assert_int_equal(crest__parse_double("5e-324", 6, &v), 0);
    assert_true(v > 0);
}

/* src/router/router.c:97 — "{}" passes as a parameter segment with an empty
 * name (the name check loops over zero characters), though the router's
 * contract is literal segments or "{name}". */
static void router_accepts_empty_param_name(void **state)
{
    (void)state;
    crest__router *r = crest__router_new();
    int target;
    crest_error e = {0};
    assert_int_equal(crest__router_add(r, CREST_GET, "/a/{}", &target, &e), CREST_EINVAL);
    crest__router_free(r);
}

/* src/app/dispatch.c:295 — crest_req_path() is documented in crest/crest.h
 * as "the decoded path, without the query string" (and app_internal.h says
 * req->path is decoded), but dispatch stores the raw request target's path:
 * a handler sees "/p/a%20b", not "/p/a b". */
static char seen_path[256];
static int h_path(crest_req *req, crest_res *res, void *ud)
{
    (void)res;
    (void)ud;
    snprintf(seen_path, sizeof seen_path, "%s", crest_req_path(req));
    crest_res_status(res, 204);
    return 0;
}
static const crest_param path_params[] = {{.name = "x", .in = CREST_IN_PATH, .type = CREST_T_STRING}, {0}};
static const crest_endpoint path_ep = {
    .method = CREST_GET, .path = "/p/{x}", .params = path_params, .handler = h_path};

static void req_path_is_not_decoded(void **state)
{
    (void)state;
    crest_app *app = crest_app_new();
    crest_app_set_access_log(app, false);
    crest_error e = {0};
    assert_int_equal(crest_app_add_endpoint(app, &path_ep, NULL, &e), 0);
    expect_answer(app, "GET /p/a%20b?q=1 HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 204", NULL);
    crest_app_free(app);
    assert_string_equal(seen_path, "/p/a b");
}

/* src/json/reader.c:41 — a body with "\u0000" in a string was refused with
 * jansson's own words, "\u0000 is not allowed without JSON_ALLOW_NUL": the
 * client was told about a flag of a library it does not know. */
static void json_nul_escape_detail_names_a_jansson_flag(void **state)
{
    (void)state;
    char err[200];
    const char *body = "{\"name\": \"ab\\u0000\"}";
    assert_null(crest__json_parse(body, strlen(body), 64, err, sizeof err));
    assert_null(strstr(err, "JSON_ALLOW_NUL"));
    assert_non_null(strstr(err, "NUL character"));
}

/* Adds one model Person of fields f (and links it through a module):
 * its error message, "" when accepted. */
static const char *person_refused(const crest_field *f, crest_error *e)
{
    crest_app *app = crest_app_new();
    const crest_model_def d = {.name = "Person", .fields = f};
    const crest_module_def m = {.name = "people", .model = "Person"};
    memset(e, 0, sizeof *e);
    if (!crest_app_add_model(app, &d, e))
        crest_app_add_module(app, &m, e);
    crest_app_free(app);
    return e->msg;
}

/* src/rest/model.c:116 (has_many_setup) and crest_app_add_model — a
 * relation's name was not checked against the columns: a has_many named
 * "id", or "boss_id" beside a ref "boss", or a ref "a_id" beside a ref "a",
 * or a has_many "reports" beside a field "reports_has_more", were all
 * accepted, and a row's JSON then held one key twice (the column and the
 * embed). */
static void relation_names_collide_with_a_rows_keys(void **state)
{
    (void)state;
    crest_error e;
#define BOSS {.name = "boss", .type = CREST_F_REF, .ref_model = "Person"}
    assert_string_equal(person_refused((const crest_field[]){{.name = "id", .has_many = "Person"}, BOSS, {0}}, &e),
                        "model Person: 'id' is implicit (an integer primary key)");
    assert_string_equal(
        person_refused((const crest_field[]){{.name = "boss_id", .has_many = "Person"}, BOSS, {0}}, &e),
        "model Person: field boss_id is defined twice (boss makes it)");
    assert_string_equal(
        person_refused((const crest_field[]){BOSS, {.name = "boss_id", .has_many = "Person"}, {0}}, &e),
        "model Person: field boss_id is defined twice (boss makes it)");
    assert_string_equal(
        person_refused((const crest_field[]){BOSS, {.name = "boss_id", .type = CREST_F_REF, .ref_model = "Person"}, {0}},
                       &e),
        "model Person: field boss_id is defined twice (boss makes it)");
    assert_string_equal(person_refused((const crest_field[]){{.name = "reports", .has_many = "Person"}, BOSS,
                                                             {.name = "reports_has_more", .type = CREST_F_BOOL}, {0}},
                                       &e),
                        "model Person: field reports_has_more is defined twice (reports makes it)");
    assert_string_equal(person_refused((const crest_field[]){{.name = "reports", .has_many = "Person", .via = "boss"},
                                                             {.name = "reports_has_more", .has_many = "Person",
                                                              .via = "boss"}, BOSS, {0}},
                                       &e),
                        "model Person: field reports_has_more is defined twice (reports makes it)");
    /* the names that do not collide still work */
    assert_string_equal(person_refused((const crest_field[]){{.name = "reports", .has_many = "Person"}, BOSS,
                                                             {.name = "boss_name", .type = CREST_F_STRING}, {0}},
                                       &e),
                        "");
#undef BOSS
}

/* src/rest/model.c (ref_setup, has_many_setup, field_setup) — embed_max on
 * a ref, on_delete on a has_many, and either on a plain field were
 * silently ignored by the C API (the app file refuses them): a C app
 * asking for on_delete cascade on the wrong side got restrict. */
static void relation_options_on_the_wrong_field_were_ignored(void **state)
{
    (void)state;
    crest_error e;
    assert_string_equal(
        person_refused((const crest_field[]){{.name = "boss", .type = CREST_F_REF, .ref_model = "Person", .embed_max = 5},
                                             {0}},
                       &e),
        "model Person: field boss: a ref takes model, on_delete, required, rest, description and permissions only");
    assert_string_equal(person_refused((const crest_field[]){{.name = "reports", .has_many = "Person", .via = "boss",
                                                              .on_delete = CREST_ON_DELETE_CASCADE},
                                                             {.name = "boss", .type = CREST_F_REF, .ref_model = "Person"},
                                                             {0}},
                                       &e),
                        "model Person: field reports: has_many takes via, through, embed_max, description and "
                        "read_permission only");
    assert_string_equal(
        person_refused((const crest_field[]){{.name = "n", .type = CREST_F_INT, .on_delete = CREST_ON_DELETE_CASCADE},
                                             {0}},
                       &e),
        "model Person: field n: on_delete is for a ref, embed_max for a has_many");
    assert_string_equal(person_refused((const crest_field[]){{.name = "n", .type = CREST_F_INT, .embed_max = 3}, {0}}, &e),
                        "model Person: field n: on_delete is for a ref, embed_max for a has_many");
}

/* src/rest/module_embed.c:282 (fetch_next) — a nested include whose
 * level above read no rows (GET /computers?include=owner.manager, the
 * owner out of Person's scope) called qsort(NULL, 0, ...): undefined
 * behaviour, an abort under UBSan (found by fuzz_http). */
static void embed_below_an_empty_level_sorts_no_keys(void **state)
{
    (void)state;
    static const crest_field person[] = {
        {.name = "name", .type = CREST_F_STRING},
        {.name = "age", .type = CREST_F_INT},
        {.name = "manager", .type = CREST_F_REF, .ref_model = "Person", .on_delete = CREST_ON_DELETE_SET_NULL},
        {0}};
    static const crest_field computer[] = {
        {.name = "name", .type = CREST_F_STRING},
        {.name = "owner", .type = CREST_F_REF, .ref_model = "Person", .on_delete = CREST_ON_DELETE_SET_NULL},
        {0}};
    static const crest_model_def models[] = {
        {.name = "Person", .fields = person, .seed = "[{\"name\": \"kid\", \"age\": 12}]"},
        {.name = "Computer", .fields = computer, .seed = "[{\"name\": \"c\", \"owner_id\": 1}]"}};
    static const crest_module_def modules[] = {{.name = "people", .model = "Person", .scope = "{\"age\": {\"$ge\": 18}}"},
                                               {.name = "computers", .model = "Computer"}};
    char db[64];
    snprintf(db, sizeof db, "/tmp/crest-unit-regress-%d.db", (int)getpid());
    unit_drop_db(db);
    crest_app *app = crest_app_new();
    crest_app_set_access_log(app, false);
    crest_app_set_database(app, db);
    crest_error e = {0};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(crest_app_add_model(app, &models[i], &e), 0);
        assert_int_equal(crest_app_add_module(app, &modules[i], &e), 0);
    }
    expect_answer(app, "GET /computers?include=owner.manager HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200",
                  "\"owner\":null"); /* (out of Person's scope) */
    crest_app_free(app);
    unit_drop_db(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(arena_alloc_size_rounding_overflow),
        cmocka_unit_test(json_writer_limit_checked_only_on_growth),
        cmocka_unit_test(json_writer_escape_reservation_counts_against_limit),
        cmocka_unit_test(buf_appendf_nul_counts_against_limit),
        cmocka_unit_test(parse_double_refuses_subnormals),
        cmocka_unit_test(router_accepts_empty_param_name),
        cmocka_unit_test(req_path_is_not_decoded),
        cmocka_unit_test(json_nul_escape_detail_names_a_jansson_flag),
        cmocka_unit_test(relation_names_collide_with_a_rows_keys),
        cmocka_unit_test(relation_options_on_the_wrong_field_were_ignored),
        cmocka_unit_test(embed_below_an_empty_level_sorts_no_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
