/* test_callbacks.c — every C callback of a REST module (crest/rest.h),
 * driven through the socket-free loopback connection: parse_fields,
 * processor, before/after hooks (changing the object, rejecting the
 * request), after_parse_params, a pipeline that stops a request, scope_fn,
 * a computed field in C, meta_fn and error_fn (also for errors of the spec
 * check, before any handler runs); fields= with those (a C computed field
 * left out is not called; after hooks get the whole row); and a C
 * endpoint's strict_query. */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>
#include <unistd.h>

#include "unit.h"

#include "http/loopback.h"
#include "json/json_internal.h"
#include "crest/rest.h"

static const crest_field fields[] = {
    {.name = "title", .type = CREST_F_STRING, .required = true, .max_length = 50},
    {.name = "owner", .type = CREST_F_STRING, .rest = CREST_REST_READ},
    {.name = "n", .type = CREST_F_INT, .def = "0"},
    {0}};
static const crest_model_def model = {.name = "Note", .table = "notes", .fields = fields};

static int calls_after_create, calls_after_update, calls_after_delete, calls_params;
static int64_t last_deleted;
static char last_created_title[64];

/* title: trimmed of spaces; "bad" refused with a message. */
static const char *parse_title(const crest_rest_ctx *ctx, json_t **v)
{
    (void)ctx;
    const char *s = json_string_value(*v);
    if (!s)
        return NULL; /* the type check answers */
    if (!strcmp(s, "bad"))
        return "is not a nice title";
    while (*s == ' ')
        s++;
    *v = json_string(s);
    return NULL;
}
static const crest_parse_field parse_fields[] = {{"title", parse_title}, {0}};

/* processor: n doubled. */
static int processor(const crest_rest_ctx *ctx, json_t *obj)
{
    (void)ctx;
    json_t *n = json_object_get(obj, "n");
    if (json_is_integer(n))
        json_object_set_new(obj, "n", json_integer(2 * json_integer_value(n)));
    return 0;
}

static int before_create(const crest_rest_ctx *ctx, json_t *obj)
{
    const char *user = crest_req_header(ctx->req, "x-user");
    if (user && !strcmp(user, "mallory"))
        return crest_res_error(ctx->res, 403, "forbidden", "mallory may not write");
    json_object_set_new(obj, "owner", json_string(user ? user : "nobody"));
    return 0;
}

static int after_create(const crest_rest_ctx *ctx, json_t *row)
{
    (void)ctx;
    calls_after_create++;
    snprintf(last_created_title, sizeof last_created_title, "%s", json_string_value(json_object_get(row, "title")));
    return 0;
}

static int before_update(const crest_rest_ctx *ctx, json_t *obj)
{
    if (json_object_get(obj, "n") && json_integer_value(json_object_get(obj, "n")) > 1000)
        return crest_res_error(ctx->res, 422, "validation_failed", "n too large for an update");
    return 0;
}

static int after_update(const crest_rest_ctx *ctx, json_t *row)
{
    (void)ctx;
    (void)row;
    calls_after_update++;
    return 0;
}

static int before_delete(const crest_rest_ctx *ctx, int64_t id)
{
    if (id == 1)
        return crest_res_error(ctx->res, 400, "business_rule", "note 1 stays");
    return 0;
}

static int after_delete(const crest_rest_ctx *ctx, int64_t id)
{
    (void)ctx;
    calls_after_delete++;
    last_deleted = id;
    return 0;
}

static int after_params(const crest_rest_ctx *ctx)
{
    calls_params++;
    if (crest_req_header(ctx->req, "x-refuse"))
        return crest_res_error(ctx->res, 409, "refused", "after_parse_params said no");
    return 0;
}

/* Pipeline: a header on every answer; X-Stop ends the request early. */
static int pipe_header(crest_req *req, crest_res *res, void *ud)
{
    (void)req;
    (void)ud;
    return crest_res_header(res, "X-Pipe", "1");
}
static int pipe_stop(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    if (crest_req_header(req, "x-stop"))
        return crest_res_error(res, 429, "stopped", "the pipeline stopped it");
    return 0;
}
static const crest_handler pipeline[] = {pipe_header, pipe_stop, NULL};

/* scope_fn: X-Owner limits rows to that owner. */
static json_t *scope_fn(const crest_rest_ctx *ctx)
{
    const char *o = crest_req_header(ctx->req, "x-owner");
    return o ? json_pack("{s:s}", "owner", o) : NULL;
}

static int shout_calls;

static int shout(const crest_rest_ctx *ctx, const crest_row *row, crest_json *w)
{
    (void)ctx;
    shout_calls++;
    char buf[128];
    const char *t = crest_row_str(row, "title");
    size_t i = 0;
    for (; t && t[i] && i < sizeof buf - 2; i++)
        buf[i] = (char)(t[i] >= 'a' && t[i] <= 'z' ? t[i] - 32 : t[i]);
    buf[i++] = '!';
    buf[i] = 0;
    crest_json_str(w, buf);
    return 0;
}
static const crest_computed computed[] = {{.name = "shout", .fn = shout}, {.name = "n2", .sql = "n * 2"}, {0}};

static int meta_fn(const crest_rest_ctx *ctx, int64_t total, bool has_more, crest_json *w)
{
    (void)ctx;
    crest_json_key(w, "count");
    crest_json_int(w, total);
    crest_json_key(w, "more");
    crest_json_bool(w, has_more);
    return 0;
}

static int error_fn(const crest_rest_ctx *ctx, int status, const char *code, const char *detail, crest_json *w)
{
    (void)ctx;
    if (status == 429)
        return 1; /* keep the default problem body */
    crest_json_object_begin(w);
    crest_json_key(w, "error");
    crest_json_str(w, code);
    crest_json_key(w, "message");
    crest_json_str(w, detail);
    crest_json_key(w, "status");
    crest_json_int(w, status);
    crest_json_object_end(w);
    return 0;
}

static const crest_module_def module = {
    .name = "notes",
    .model = "Note",
    .enabled_methods = CREST_R_ALL,
    .computed = computed,
    .parse_fields = parse_fields,
    .processor = processor,
    .before_create = before_create,
    .after_create = after_create,
    .before_update = before_update,
    .after_update = after_update,
    .before_delete = before_delete,
    .after_delete = after_delete,
    .after_parse_params = after_params,
    .scope_fn = scope_fn,
    .pipeline = pipeline,
    .meta_fn = meta_fn,
    .error_fn = error_fn,
};

/* A second module without error_fn: problems as crest writes them. Its
 * parse callback takes "yes"/"no" for a bool and refuses anything else. */
static const crest_field todo_fields[] = {{.name = "is_completed", .type = CREST_F_BOOL}, {0}};
static const crest_model_def todo_model = {.name = "Todo", .table = "todos", .fields = todo_fields};

static const char *parse_yes_no(const crest_rest_ctx *ctx, json_t **v)
{
    (void)ctx;
    const char *s = json_string_value(*v);
    if (json_is_boolean(*v))
        return NULL;
    if (s && (!strcmp(s, "yes") || !strcmp(s, "no"))) {
        *v = json_boolean(!strcmp(s, "yes"));
        return NULL;
    }
    return "must be yes or no";
}
static const crest_parse_field todo_parse[] = {{"is_completed", parse_yes_no}, {0}};
static const crest_module_def todo_module = {.name = "todos", .model = "Todo", .parse_fields = todo_parse};

/* C endpoints: one refusing undeclared query parameters, one not. */
static int say_ok(crest_req *req, crest_res *res, void *ud)
{
    (void)req;
    (void)ud;
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "ok");
    crest_json_bool(w, true);
    crest_json_object_end(w);
    return 0;
}
static const crest_param a_param[] = {{.name = "a", .in = CREST_IN_QUERY, .type = CREST_T_INT}, {0}};
static const crest_endpoint strict_ep = {
    .method = CREST_GET, .path = "/strict", .params = a_param, .handler = say_ok, .strict_query = true};
static const crest_endpoint strict_bare_ep = {
    .method = CREST_GET, .path = "/strict-bare", .handler = say_ok, .strict_query = true};
static const crest_endpoint loose_ep = {.method = CREST_GET, .path = "/loose", .params = a_param, .handler = say_ok};

/* ---- harness ---- */

static char dbpath[64];
static crest_app *app;
static crest__loopback *lb;

static int setup(void **state)
{
    (void)state;
    snprintf(dbpath, sizeof dbpath, "/tmp/crest-unit-rest-%d.db", (int)getpid());
    unlink(dbpath);
    app = crest_app_new();
    crest_app_set_access_log(app, false);
    crest_app_set_database(app, dbpath);
    crest_error e = {0};
    if (crest_app_add_model(app, &model, &e) || crest_app_add_module(app, &module, &e) ||
        crest_app_add_model(app, &todo_model, &e) || crest_app_add_module(app, &todo_module, &e) ||
        crest_app_add_endpoint(app, &strict_ep, NULL, &e) || crest_app_add_endpoint(app, &strict_bare_ep, NULL, &e) ||
        crest_app_add_endpoint(app, &loose_ep, NULL, &e)) {
        fprintf(stderr, "setup: %s\n", e.msg);
        return -1;
    }
    lb = crest__loopback_new(app, &e);
    if (!lb)
        fprintf(stderr, "loopback: %s\n", e.msg);
    return lb ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    crest__loopback_free(lb);
    crest_app_free(app);
    unit_drop_db(dbpath);
    return 0;
}

typedef struct {
    int status;
    char head[2048];
    json_t *body;
} resp;

/* Sends one request and parses the answer. */
static resp call(const char *method, const char *path, const char *headers, const char *body)
{
    char req[4096];
    size_t blen = body ? strlen(body) : 0;
    int n = snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: t\r\n%s%sContent-Length: %zu\r\n\r\n%s", method,
                     path, headers ? headers : "", body ? "Content-Type: application/json\r\n" : "", blen,
                     body ? body : "");
    crest__loopback_clear_output(lb);
    assert_int_equal(crest__loopback_feed(lb, req, (size_t)n), 0);
    size_t len;
    const char *o = crest__loopback_output(lb, &len);
    resp r = {0};
    assert_true(len > 12);
    r.status = atoi(o + 9);
    const char *sep = strstr(o, "\r\n\r\n");
    assert_non_null(sep);
    snprintf(r.head, sizeof r.head, "%.*s", (int)(sep - o), o);
    size_t bl = len - (size_t)(sep + 4 - o);
    r.body = bl ? json_loadb(sep + 4, bl, 0, NULL) : NULL;
    return r;
}

static const char *str(const resp *r, const char *key) { return json_string_value(json_object_get(r->body, key)); }
static json_int_t num(const resp *r, const char *key) { return json_integer_value(json_object_get(r->body, key)); }

/* ---- tests (in order: they share one database) ---- */

static void create_runs_parse_fields_processor_and_hooks(void **state)
{
    (void)state;
    resp r = call("POST", "/notes", "X-User: alice\r\n", "{\"title\":\"  hello\",\"n\":21}");
    assert_int_equal(r.status, 201);
    assert_string_equal(str(&r, "title"), "hello");      /* parse_fields trimmed it */
    assert_i64_eq(num(&r, "n"), 42);                     /* processor doubled it */
    assert_string_equal(str(&r, "owner"), "alice");      /* before_create set a read-only field */
    assert_string_equal(str(&r, "shout"), "HELLO!");     /* computed in C */
    assert_i64_eq(num(&r, "n2"), 84);                    /* computed in SQL */
    assert_int_equal(calls_after_create, 1);
    assert_string_equal(last_created_title, "hello");
    assert_non_null(strstr(r.head, "X-Pipe: 1"));
    json_decref(r.body);
    r = call("POST", "/notes", "X-User: bob\r\n", "{\"title\":\"second\"}");
    assert_int_equal(r.status, 201);
    json_decref(r.body);
}

static void parse_field_rejection_is_a_field_error(void **state)
{
    (void)state;
    resp r = call("POST", "/notes", NULL, "{\"title\":\"bad\"}");
    assert_int_equal(r.status, 422);
    /* error_fn rewrote the body */
    assert_string_equal(str(&r, "error"), "validation_failed");
    assert_i64_eq(num(&r, "status"), 422);
    assert_int_equal(calls_after_create, 2); /* the two creates of the test before */
    json_decref(r.body);
}

/* A value the parse callback refused is named once, with the callback's
 * message, and counted once (it was also named by the type check, under
 * the same key, with "2 fields are invalid"). */
static void parse_callback_rejection_is_reported_once(void **state)
{
    (void)state;
    resp r = call("POST", "/todos", NULL, "{\"is_completed\":\"maybe\"}");
    assert_int_equal(r.status, 422);
    assert_string_equal(str(&r, "detail"), "1 field is invalid");
    json_t *errs = json_object_get(r.body, "errors");
    assert_int_equal(json_object_size(errs), 1);
    assert_string_equal(json_string_value(json_object_get(errs, "is_completed")), "must be yes or no");
    size_t len;
    const char *o = crest__loopback_output(lb, &len); /* not NUL-terminated */
    static const char key[] = "\"is_completed\":";
    const char *first = memmem(o, len, key, sizeof key - 1);
    assert_non_null(first);
    assert_null(memmem(first + 1, len - (size_t)(first + 1 - o), key, sizeof key - 1)); /* no duplicate key */
    json_decref(r.body);
    r = call("PATCH", "/todos/1", NULL, "{\"is_completed\":\"maybe\"}"); /* 404 first: no such row */
    assert_int_equal(r.status, 404);
    json_decref(r.body);
    r = call("POST", "/todos", NULL, "{\"is_completed\":\"yes\"}");
    assert_int_equal(r.status, 201);
    assert_true(json_is_true(json_object_get(r.body, "is_completed")));
    json_decref(r.body);
    r = call("PATCH", "/todos/1", NULL, "{\"is_completed\":\"maybe\"}");
    assert_int_equal(r.status, 422);
    assert_string_equal(str(&r, "detail"), "1 field is invalid");
    assert_int_equal(json_object_size(json_object_get(r.body, "errors")), 1);
    json_decref(r.body);
}

static void before_create_can_refuse(void **state)
{
    (void)state;
    resp r = call("POST", "/notes", "X-User: mallory\r\n", "{\"title\":\"x\"}");
    assert_int_equal(r.status, 403);
    assert_string_equal(str(&r, "error"), "forbidden");
    json_decref(r.body);
    r = call("GET", "/notes", NULL, NULL);
    assert_int_equal(json_array_size(json_object_get(r.body, "data")), 2);
    json_decref(r.body);
}

static void meta_fn_and_scope_fn(void **state)
{
    (void)state;
    resp r = call("GET", "/notes?page_size=1", NULL, NULL);
    assert_int_equal(r.status, 200);
    json_t *meta = json_object_get(r.body, "meta");
    assert_i64_eq(json_integer_value(json_object_get(meta, "count")), 2);
    assert_true(json_is_true(json_object_get(meta, "more")));
    assert_null(json_object_get(meta, "object"));
    json_decref(r.body);
    r = call("GET", "/notes", "X-Owner: bob\r\n", NULL);
    assert_int_equal(json_array_size(json_object_get(r.body, "data")), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(r.body, "data"), 0), "owner")),
                        "bob");
    json_decref(r.body);
    r = call("GET", "/notes/1", "X-Owner: bob\r\n", NULL); /* alice's note: outside bob's scope */
    assert_int_equal(r.status, 404);
    assert_string_equal(str(&r, "error"), "not_found");
    json_decref(r.body);
}

static void update_hooks(void **state)
{
    (void)state;
    resp r = call("PATCH", "/notes/2", NULL, "{\"n\":600}");
    assert_int_equal(r.status, 422); /* 600 doubled by the processor is over before_update's limit */
    json_decref(r.body);
    assert_int_equal(calls_after_update, 0);
    r = call("PATCH", "/notes/2", NULL, "{\"n\":5}");
    assert_int_equal(r.status, 200);
    assert_i64_eq(num(&r, "n"), 10);
    assert_int_equal(calls_after_update, 1);
    json_decref(r.body);
}

static void delete_hooks(void **state)
{
    (void)state;
    resp r = call("DELETE", "/notes/1", NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(str(&r, "error"), "business_rule");
    json_decref(r.body);
    r = call("DELETE", "/notes/2", NULL, NULL);
    assert_int_equal(r.status, 204);
    assert_int_equal(calls_after_delete, 1);
    assert_i64_eq(last_deleted, 2);
    r = call("DELETE", "/notes/2", NULL, NULL);
    assert_int_equal(r.status, 404);
    json_decref(r.body);
}

static void pipeline_stops_and_error_fn_can_keep_the_problem(void **state)
{
    (void)state;
    int before = calls_params;
    resp r = call("GET", "/notes", "X-Stop: 1\r\n", NULL);
    assert_int_equal(r.status, 429);
    assert_string_equal(str(&r, "code"), "stopped"); /* error_fn declined: the problem document stays */
    assert_non_null(strstr(r.head, "application/problem+json"));
    assert_int_equal(calls_params, before); /* the pipeline ran first */
    json_decref(r.body);
}

static void after_parse_params_can_refuse(void **state)
{
    (void)state;
    resp r = call("GET", "/notes", "X-Refuse: 1\r\n", NULL);
    assert_int_equal(r.status, 409);
    assert_string_equal(str(&r, "error"), "refused");
    json_decref(r.body);
}

static void error_fn_covers_spec_check_errors(void **state)
{
    (void)state;
    resp r = call("GET", "/notes?page=zero", NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(str(&r, "error"), "invalid_parameter");
    assert_non_null(strstr(r.head, "Content-Type: application/json"));
    json_decref(r.body);
}

static void fields_leave_out_a_c_computed_field_and_hooks_get_the_whole_row(void **state)
{
    (void)state;
    int calls = shout_calls, created = calls_after_create;
    resp r = call("GET", "/notes/1?fields=n2,title", NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_int_equal(json_object_size(r.body), 2);
    assert_string_equal(str(&r, "title"), "hello");
    assert_i64_eq(num(&r, "n2"), 84);
    assert_int_equal(shout_calls, calls); /* not asked: not called */
    json_decref(r.body);
    r = call("GET", "/notes/1?fields=shout", NULL, NULL);
    assert_int_equal(json_object_size(r.body), 1);
    assert_string_equal(str(&r, "shout"), "HELLO!");
    json_decref(r.body);
    r = call("POST", "/notes?fields=id", "X-User: carol\r\n", "{\"title\":\"third\"}");
    assert_int_equal(r.status, 201);
    assert_int_equal(json_object_size(r.body), 1);
    assert_int_equal(calls_after_create, created + 1);
    assert_string_equal(last_created_title, "third"); /* the hook's row has every field */
    json_decref(r.body);
    r = call("GET", "/notes?fields=nope", NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(str(&r, "message"), "fields: unknown field 'nope'"); /* through error_fn */
    json_decref(r.body);
}

static void strict_query_refuses_undeclared_parameters(void **state)
{
    (void)state;
    resp r = call("GET", "/strict?a=1", NULL, NULL);
    assert_int_equal(r.status, 200);
    json_decref(r.body);
    r = call("GET", "/strict?a=1&b=2", NULL, NULL);
    assert_int_equal(r.status, 400);
    assert_string_equal(str(&r, "code"), "invalid_parameter");
    assert_string_equal(str(&r, "detail"), "query parameter 'b' is unknown");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r.body, "errors"), "b")), "is unknown");
    json_decref(r.body);
    r = call("GET", "/strict-bare?x", NULL, NULL); /* no parameter declared at all */
    assert_int_equal(r.status, 400);
    assert_string_equal(str(&r, "detail"), "query parameter 'x' is unknown");
    json_decref(r.body);
    r = call("GET", "/strict-bare", NULL, NULL);
    assert_int_equal(r.status, 200);
    json_decref(r.body);
    r = call("GET", "/loose?a=1&b=2", NULL, NULL); /* without strict_query: ignored */
    assert_int_equal(r.status, 200);
    json_decref(r.body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_runs_parse_fields_processor_and_hooks),
        cmocka_unit_test(parse_field_rejection_is_a_field_error),
        cmocka_unit_test(parse_callback_rejection_is_reported_once),
        cmocka_unit_test(before_create_can_refuse),
        cmocka_unit_test(meta_fn_and_scope_fn),
        cmocka_unit_test(update_hooks),
        cmocka_unit_test(delete_hooks),
        cmocka_unit_test(pipeline_stops_and_error_fn_can_keep_the_problem),
        cmocka_unit_test(after_parse_params_can_refuse),
        cmocka_unit_test(error_fn_covers_spec_check_errors),
        cmocka_unit_test(fields_leave_out_a_c_computed_field_and_hooks_get_the_whole_row),
        cmocka_unit_test(strict_query_refuses_undeclared_parameters),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
