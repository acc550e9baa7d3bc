/* test_openapi.c — C specs in the OpenAPI document of src/openapi/openapi.c
 * and through the spec check: an operation declared without a summary gets
 * one made from its method and path (issue 10 item 12: linters report a
 * missing summary as an error), a declared one is kept; a CREST_T_UUID
 * parameter is documented as format uuid, refused when malformed and handed
 * to the handler lower-case (issue 10 item 27). */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "crest/crest.h"
#include "http/loopback.h"

static int h_none(crest_req *req, crest_res *res, void *ud)
{
    (void)req;
    (void)res;
    (void)ud;
    return 0;
}

static void operation_without_summary_gets_one(void **state)
{
    (void)state;
    static const crest_param id[] = {{.name = "id", .in = CREST_IN_PATH, .type = CREST_T_INT}, {0}};
    static const crest_endpoint bare = {.method = CREST_DELETE, .path = "/things/{id}", .params = id,
                                        .handler = h_none};
    static const crest_endpoint named = {.method = CREST_GET, .path = "/things", .summary = "List things",
                                         .handler = h_none};
    crest_app *app = crest_app_new();
    assert_non_null(app);
    assert_int_equal(crest_app_set_api_prefix(app, "/api"), 0);
    assert_int_equal(crest_app_add_endpoint(app, &bare, NULL, NULL), 0);
    assert_int_equal(crest_app_add_endpoint(app, &named, NULL, NULL), 0);
    for (int v30 = 0; v30 <= 1; v30++) {
        size_t len;
        char *doc = crest_app_openapi(app, v30, &len);
        assert_non_null(doc);
        json_t *j = json_loads(doc, 0, NULL);
        assert_non_null(j);
        json_t *paths = json_object_get(j, "paths");
        const char *s1 = json_string_value(json_object_get(
            json_object_get(json_object_get(paths, "/api/things/{id}"), "delete"), "summary"));
        const char *s2 = json_string_value(
            json_object_get(json_object_get(json_object_get(paths, "/api/things"), "get"), "summary"));
        assert_non_null(s1);
        assert_string_equal(s1, "DELETE /api/things/{id}");
        assert_non_null(s2);
        assert_string_equal(s2, "List things");
        /* Every operation of the document has one (builtins included). */
        const char *p, *m;
        json_t *item, *op;
        json_object_foreach(paths, p, item) json_object_foreach(item, m, op)
        {
            if (!json_is_string(json_object_get(op, "summary")))
                fail_msg("%s %s has no summary", m, p);
        }
        json_decref(j);
        free(doc);
    }
    crest_app_free(app);
}

static char seen[64];
static int h_uuid(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    snprintf(seen, sizeof seen, "%s", crest_req_str(req, "id"));
    crest_res_status(res, 204);
    return 0;
}

static const char *answer(crest__loopback *lb, const char *request)
{
    crest__loopback_clear_output(lb);
    assert_int_equal(crest__loopback_feed(lb, request, strlen(request)), 0);
    size_t n;
    const char *o = crest__loopback_output(lb, &n);
    assert_true(n > 12);
    return o;
}

static void uuid_parameter_of_a_c_spec(void **state)
{
    (void)state;
    static const crest_param id[] = {{.name = "id", .in = CREST_IN_PATH, .type = CREST_T_UUID}, {0}};
    static const crest_endpoint ep = {.method = CREST_GET, .path = "/s/{id}", .params = id, .handler = h_uuid};
    crest_app *app = crest_app_new();
    crest_app_set_access_log(app, false);
    crest_error e = {0};
    assert_int_equal(crest_app_add_endpoint(app, &ep, NULL, &e), 0);
    char *doc = crest_app_openapi(app, false, NULL);
    assert_non_null(doc);
    assert_non_null(strstr(doc, "\"schema\":{\"type\":\"string\",\"format\":\"uuid\"}"));
    free(doc);
    crest__loopback *lb = crest__loopback_new(app, &e);
    assert_non_null(lb);
    const char *o = answer(lb, "GET /s/1B4E28BA-2FA1-11D2-883F-0016D3CCA427 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_memory_equal(o, "HTTP/1.1 204", 12);
    assert_string_equal(seen, "1b4e28ba-2fa1-11d2-883f-0016d3cca427");
    o = answer(lb, "GET /s/1b4e28ba-2fa1-11d2-883f-0016d3cca42 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_memory_equal(o, "HTTP/1.1 400", 12);
    assert_non_null(strstr(o, "must be a UUID"));
    crest__loopback_free(lb);
    crest_app_free(app);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(operation_without_summary_gets_one),
        cmocka_unit_test(uuid_parameter_of_a_c_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
