/* test_openapi.c — the OpenAPI document of src/openapi/openapi.c for C
 * specs: an operation declared without a summary gets one made from its
 * method and path (issue 10 item 12: linters report a missing summary as an
 * error), and a declared one is kept. */
#include <stdlib.h>
#include <string.h>

#include "unit.h"

#include "crest/crest.h"

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(operation_without_summary_gets_one),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
