/* test_router.c — the segment-tree router (src/router/router.c): a literal
 * beats a {param}, backtracking out of a literal that leads nowhere, 404
 * versus 405 with the allow mask, HEAD falling back to GET, percent-decoding
 * of segments (bad escapes, %00, %2F kept inside its segment), trailing
 * slashes and empty segments as implemented, many parameters, and the
 * patterns and duplicates that crest__router_add refuses, and the paths that
 * could never be reached (crest__path_check), refused for C specs too. */
#include <stdlib.h>

#include "unit.h"

#include "router/router.h"
#include "crest/crest.h"

/* Distinct targets to tell routes apart. */
static int T[20];
#define TGT(i) ((void *)&T[i])

static char pathbuf[4096];
static crest__str segs[CREST_ROUTER_MAX_SEGMENTS];

/* Splits path (a copy is kept in pathbuf, so match values stay valid until
 * the next call) and matches it. Fails the test when the path does not split. */
static int match(const crest__router *r, crest_method m, const char *path, crest__match *mt)
{
    snprintf(pathbuf, sizeof pathbuf, "%s", path);
    int n = crest__path_split(pathbuf, segs, CREST_ROUTER_MAX_SEGMENTS);
    if (n < 0) {
        print_error("path '%s' does not split (%d)\n", path, n);
        fail();
    }
    return crest__router_match(r, m, segs, (unsigned)n, mt);
}

static void add(crest__router *r, crest_method m, const char *pattern, void *target)
{
    crest_error e = {0};
    int rc = crest__router_add(r, m, pattern, target, &e);
    if (rc) {
        print_error("adding %s failed (%d): %s\n", pattern, rc, e.msg);
        fail();
    }
}

static void value_is(const crest__match *m, unsigned i, const char *want)
{
    assert_true(i < m->nparams);
    assert_bytes_eq(m->values[i].ptr, m->values[i].len, want);
}

static void literal_beats_param(void **state)
{
    (void)state;
    crest__router *r = crest__router_new();
    assert_non_null(r);
    add(r, CREST_GET, "/users/{id}", TGT(1));
    add(r, CREST_GET, "/users/me", TGT(2)); /* declared after: still preferred */
    add(r, CREST_GET, "/users", TGT(3));
    crest__match m;
    assert_int_equal(match(r, CREST_GET, "/users/me", &m), 200);
    assert_ptr_equal(m.route->target, TGT(2));
    assert_int_equal(m.nparams, 0);
    assert_int_equal(match(r, CREST_GET, "/users/42", &m), 200);
    assert_ptr_equal(m.route->target, TGT(1));
    value_is(&m, 0, "42");
    assert_string_equal(m.route->param_names[0], "id");
    assert_int_equal(match(r, CREST_GET, "/users/mee", &m), 200); /* a prefix of a literal is not it */
    assert_ptr_equal(m.route->target, TGT(1));
    value_is(&m, 0, "mee");
    assert_int_equal(match(r, CREST_GET, "/users", &m), 200);
    assert_ptr_equal(m.route->target, TGT(3));
    /* Literal segments are case-sensitive. */
    assert_int_equal(match(r, CREST_GET, "/Users", &m), 404);
    crest__router_free(r);
}

static void backtracking(void **state)
{
    (void)state;
    crest__router *r = crest__router_new();
    add(r, CREST_GET, "/a/b/c", TGT(1));
    add(r, CREST_GET, "/a/{x}/d", TGT(2));
    add(r, CREST_GET, "/files/static/info", TGT(3));
    add(r, CREST_GET, "/files/{id}/raw", TGT(4));
    add(r, CREST_GET, "/p/{a}/{b}/end", TGT(5));
    add(r, CREST_GET, "/p/q/r/other", TGT(6));
    crest__match m;
    assert_int_equal(match(r, CREST_GET, "/a/b/c", &m), 200);
    assert_ptr_equal(m.route->target, TGT(1));
    /* "b" matches the literal, which has no "d" below it: back to {x}. */
    assert_int_equal(match(r, CREST_GET, "/a/b/d", &m), 200);
    assert_ptr_equal(m.route->target, TGT(2));
    value_is(&m, 0, "b");
    assert_int_equal(match(r, CREST_GET, "/files/static/raw", &m), 200);
    assert_ptr_equal(m.route->target, TGT(4));
    value_is(&m, 0, "static");
    /* Two levels deep into the literals before giving up. */
    assert_int_equal(match(r, CREST_GET, "/p/q/r/end", &m), 200);
    assert_ptr_equal(m.route->target, TGT(5));
    assert_int_equal(m.nparams, 2);
    value_is(&m, 0, "q");
    value_is(&m, 1, "r");
    assert_int_equal(match(r, CREST_GET, "/a/b/x", &m), 404);
    crest__router_free(r);
}

static void backtracking_on_method(void **state)
{
    (void)state;
    crest__router *r = crest__router_new();
    add(r, CREST_POST, "/users/me", TGT(1));
    add(r, CREST_GET, "/users/{id}", TGT(2));
    crest__match m;
    /* The literal path has no GET; the param path does. */
    assert_int_equal(match(r, CREST_GET, "/users/me", &m), 200);
    assert_ptr_equal(m.route->target, TGT(2));
    value_is(&m, 0, "me");
    assert_int_equal(match(r, CREST_POST, "/users/me", &m), 200);
    assert_ptr_equal(m.route->target, TGT(1));
    /* Neither has DELETE: 405, allowing what both paths allow. */
    assert_int_equal(match(r, CREST_DELETE, "/users/me", &m), 405);
    assert_int_equal(m.allow, (1u << CREST_POST) | (1u << CREST_GET) | (1u << CREST_HEAD));
    crest__router_free(r);
}

static void not_found_vs_method_not_allowed(void **state)
{
    (void)state;
    crest__router *r = crest__router_new();
    add(r, CREST_GET, "/items", TGT(1));
    add(r, CREST_POST, "/items", TGT(2));
    add(r, CREST_DELETE, "/items", TGT(3));
    add(r, CREST_PUT, "/only-put", TGT(4));
    add(r, CREST_GET, "/deep/x/y", TGT(5));
    crest__match m;
    assert_int_equal(match(r, CREST_PUT, "/items", &m), 405);
    assert_null(m.route);
    assert_int_equal(m.allow, (1u << CREST_GET) | (1u << CREST_HEAD) | (1u << CREST_POST) | (1u << CREST_DELETE));
    assert_int_equal(match(r, CREST_OPTIONS, "/items", &m), 405); /* dispatch turns this into 204 */
    /* No GET: HEAD is not allowed either. */
    assert_int_equal(match(r, CREST_GET, "/only-put", &m), 405);
    assert_int_equal(m.allow, 1u << CREST_PUT);
    assert_int_equal(match(r, CREST_HEAD, "/only-put", &m), 405);
    /* Unknown paths, and inner nodes that hold no route, are 404. */
    assert_int_equal(match(r, CREST_GET, "/nothing", &m), 404);
    assert_int_equal(m.allow, 0);
    assert_int_equal(match(r, CREST_GET, "/deep", &m), 404);
    assert_int_equal(match(r, CREST_GET, "/deep/x", &m), 404);
    assert_int_equal(match(r, CREST_GET, "/items/1", &m), 404);
    /* A method value the router does not know: the path exists, so 405. */
    assert_int_equal(match(r, (crest_method)0, "/items", &m), 405);
    assert_int_equal(match(r, (crest_method)99, "/items", &m), 405);
    crest__router_free(r);
}

static void head_falls_back_to_get(void **state)
{
    (void)state;
    crest__router *r = crest__router_new();
    add(r, CREST_GET, "/g", TGT(1));
    add(r, CREST_GET, "/both", TGT(2));
    add(r, CREST_HEAD, "/both", TGT(3));
    crest__match m;
    assert_int_equal(match(r, CREST_HEAD, "/g", &m), 200);
    assert_ptr_equal(m.route->target, TGT(1));
    assert_int_equal(match(r, CREST_HEAD, "/both", &m), 200);
    assert_ptr_equal(m.route->target, TGT(3)); /* an explicit HEAD route wins */
    crest__router_free(r);
}

static void percent_decoding_in_segments(void **state)
{
    (void)state;
    crest__router *r = crest__router_new();
    add(r, CREST_GET, "/f/{name}", TGT(1));
    add(r, CREST_GET, "/f/{name}/meta", TGT(2));
    add(r, CREST_GET, "/a b", TGT(3));
    add(r, CREST_GET, "/x/y", TGT(4));
    crest__match m;
    assert_int_equal(match(r, CREST_GET, "/f/hello%20world", &m), 200);
    value_is(&m, 0, "hello world");
    assert_int_equal(match(r, CREST_GET, "/f/caf%C3%A9", &m), 200);
    value_is(&m, 0, "caf\xC3\xA9");
    assert_int_equal(match(r, CREST_GET, "/f/%2f%2F", &m), 200); /* either hex case */
    value_is(&m, 0, "//");
    /* '+' is a plus in a path (only queries read it as a space). */
    assert_int_equal(match(r, CREST_GET, "/f/a+b", &m), 200);
    value_is(&m, 0, "a+b");
    /* %2F stays inside its segment: one param, not two segments. */
    assert_int_equal(match(r, CREST_GET, "/f/a%2Fmeta", &m), 200);
    assert_ptr_equal(m.route->target, TGT(1));
    value_is(&m, 0, "a/meta");
    /* ...and an encoded slash never matches a literal "x/y" split in two. */
    assert_int_equal(match(r, CREST_GET, "/x%2Fy", &m), 404);
    /* Literals match the decoded text. */
    assert_int_equal(match(r, CREST_GET, "/a%20b", &m), 200);
    assert_ptr_equal(m.route->target, TGT(3));
    assert_int_equal(match(r, CREST_GET, "/%61%20%62", &m), 200);
    crest__router_free(r);
}

static void bad_escapes(void **state)
{
    (void)state;
    static const char *const bad[] = {"/%", "/%2", "/a%", "/a%4", "/%zz", "/%G0", "/%0G", "/%%41", "/ok/%x1/z",
                                      "/%00", "/a%00b", "/x/%00"};
    for (size_t i = 0; i < COUNT_OF(bad); i++) {
        char buf[64];
        crest__str s[8];
        snprintf(buf, sizeof buf, "%s", bad[i]);
        int n = crest__path_split(buf, s, 8);
        if (n != -1) {
            print_error("path '%s' split into %d segments, want -1\n", bad[i], n);
            fail();
        }
    }
    /* Not starting with '/'. */
    char rel[] = "a/b";
    assert_int_equal(crest__path_split(rel, segs, 8), -1);
    char empty[] = "";
    assert_int_equal(crest__path_split(empty, segs, 8), -1);
}

static void percent_decode_function(void **state)
{
    (void)state;
    char dst[64];
    assert_int_equal(crest__percent_decode(dst, "a+b%20c", 7, true), 5);
    assert_memory_equal(dst, "a b c", 5);
    assert_int_equal(crest__percent_decode(dst, "a+b%20c", 7, false), 5);
    assert_memory_equal(dst, "a+b c", 5);
    assert_int_equal(crest__percent_decode(dst, "%2B", 3, true), 1); /* an encoded plus stays a plus */
    assert_int_equal(dst[0], '+');
    assert_int_equal(crest__percent_decode(dst, "%ff%00", 6, false), 2); /* any byte, NUL included */
    assert_int_equal((unsigned char)dst[0], 0xFF);
    assert_int_equal(dst[1], 0);
    assert_int_equal(crest__percent_decode(dst, "", 0, false), 0);
    assert_int_equal(crest__percent_decode(dst, "%4", 2, false), -1);
    assert_int_equal(crest__percent_decode(dst, "%-1", 3, false), -1);
    assert_int_equal(crest__percent_decode(dst, "% 1", 3, false), -1);
    /* In place, as path_split does it. */
    char inplace[] = "x%41%42y";
    assert_int_equal(crest__percent_decode(inplace, inplace, 8, false), 4);
    assert_memory_equal(inplace, "xABy", 4);
}

static void trailing_slash_and_empty_segments(void **state)
{
    (void)state;
    crest__router *r = crest__router_new();
    add(r, CREST_GET, "/", TGT(1));
    add(r, CREST_GET, "/users", TGT(2));
    add(r, CREST_GET, "/users/{id}", TGT(3));
    add(r, CREST_GET, "/dir/", TGT(4));
    crest__match m;
    /* "/" is one empty segment and matches the "/" route. */
    char root[] = "/";
    assert_int_equal(crest__path_split(root, segs, 8), 1);
    assert_int_equal(segs[0].len, 0);
    assert_int_equal(match(r, CREST_GET, "/", &m), 200);
    assert_ptr_equal(m.route->target, TGT(1));
    /* As implemented: no slash stripping and no redirect. A trailing slash is
     * an extra empty segment, and a {param} never matches an empty one. */
    assert_int_equal(match(r, CREST_GET, "/users/", &m), 404);
    assert_int_equal(match(r, CREST_GET, "/users//", &m), 404);
    assert_int_equal(match(r, CREST_GET, "//users", &m), 404);
    assert_int_equal(match(r, CREST_GET, "/users//x", &m), 404);
    /* A pattern with a trailing slash matches only with it. */
    assert_int_equal(match(r, CREST_GET, "/dir/", &m), 200);
    assert_ptr_equal(m.route->target, TGT(4));
    assert_int_equal(match(r, CREST_GET, "/dir", &m), 404);
    crest__router_free(r);
}

static void many_params(void **state)
{
    (void)state;
    crest__router *r = crest__router_new();
    char pat[512] = "", path[512] = "";
    size_t o = 0, q = 0;
    for (int i = 0; i < CREST_ROUTER_MAX_PARAMS; i++) {
        o += (size_t)snprintf(pat + o, sizeof pat - o, "/{p%d}", i);
        q += (size_t)snprintf(path + q, sizeof path - q, "/v%d", i);
    }
    add(r, CREST_GET, pat, TGT(1));
    crest__match m;
    assert_int_equal(match(r, CREST_GET, path, &m), 200);
    assert_int_equal(m.nparams, CREST_ROUTER_MAX_PARAMS);
    assert_int_equal(m.route->nparams, CREST_ROUTER_MAX_PARAMS);
    for (int i = 0; i < CREST_ROUTER_MAX_PARAMS; i++) {
        char want[8], name[8];
        snprintf(want, sizeof want, "v%d", i);
        snprintf(name, sizeof name, "p%d", i);
        value_is(&m, (unsigned)i, want);
        assert_string_equal(m.route->param_names[i], name);
    }
    /* One more parameter is refused. */
    char pat17[600];
    snprintf(pat17, sizeof pat17, "/more%s/{extra}", pat);
    crest_error e = {0};
    assert_int_equal(crest__router_add(r, CREST_GET, pat17, TGT(2), &e), CREST_EINVAL);
    assert_non_null(strstr(e.msg, "too many parameters"));
    crest__router_free(r);
}

static void segment_cap(void **state)
{
    (void)state;
    char path[300];
    size_t o = 0;
    for (int i = 0; i < CREST_ROUTER_MAX_SEGMENTS; i++)
        o += (size_t)snprintf(path + o, sizeof path - o, "/s");
    char copy[300];
    memcpy(copy, path, o + 1);
    crest__str s[CREST_ROUTER_MAX_SEGMENTS];
    assert_int_equal(crest__path_split(copy, s, CREST_ROUTER_MAX_SEGMENTS), CREST_ROUTER_MAX_SEGMENTS);
    snprintf(path + o, sizeof path - o, "/s");
    memcpy(copy, path, o + 3);
    assert_int_equal(crest__path_split(copy, s, CREST_ROUTER_MAX_SEGMENTS), -2);
}

static int h_none(crest_req *req, crest_res *res, void *ud)
{
    (void)req;
    (void)res;
    (void)ud;
    return 0;
}

/* Issue 10 item 7: "/custom/search?query=test" became a literal route only
 * "/custom/search%3Fquery=test" reached, and "/project/<id>" a literal
 * segment "<id>". Both are refused, with the reason (and the {id} hint). */
static void unreachable_paths_are_refused(void **state)
{
    (void)state;
    static const struct {
        const char *path, *words;
    } bad[] = {
        {"/custom/search?query=test", "'?'"},
        {"/docs#top", "'#'"},
        {"/caf%C3%A9", "'%' escapes"},
        {"/a b", "spaces"},
        {"/project/<id>", "'<id>' is not a parameter here: write {id}"},
        {"/project/<int:id>/env", "'<int:id>' is not a parameter here: write {id}"},
        {"/x>", "'<' or '>'"},
    };
    char msg[400];
    crest_app *app = crest_app_new();
    assert_non_null(app);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(crest__path_check(bad[i].path, msg, sizeof msg), -1);
        assert_non_null(strstr(msg, bad[i].words));
        /* The same through the public API, for a C spec. */
        crest_endpoint ep = {.method = CREST_GET, .path = bad[i].path, .handler = h_none};
        crest_error err = {0};
        assert_int_equal(crest_app_add_endpoint(app, &ep, NULL, &err), CREST_EINVAL);
        print_message("%s -> %s\n", bad[i].path, err.msg);
        assert_non_null(strstr(err.msg, bad[i].words));
    }
    assert_int_equal(crest__path_check("/project/{id}/env-vars_2.json", msg, sizeof msg), 0);
    crest_app_free(app);
}

static void duplicates_refused(void **state)
{
    (void)state;
    crest__router *r = crest__router_new();
    add(r, CREST_GET, "/x", TGT(1));
    add(r, CREST_GET, "/t/{id}", TGT(2));
    crest_error e = {0};
    assert_int_equal(crest__router_add(r, CREST_GET, "/x", TGT(3), &e), CREST_EEXIST);
    assert_string_equal(e.msg, "GET /x is declared twice");
    /* The same shape with another parameter name is the same route. */
    assert_int_equal(crest__router_add(r, CREST_GET, "/t/{other}", TGT(3), &e), CREST_EEXIST);
    /* Other methods on the same path are fine. */
    add(r, CREST_POST, "/x", TGT(4));
    add(r, CREST_PUT, "/t/{other}", TGT(5));
    crest__match m;
    assert_int_equal(match(r, CREST_GET, "/x", &m), 200);
    assert_ptr_equal(m.route->target, TGT(1)); /* the first one stays */
    assert_int_equal(match(r, CREST_PUT, "/t/9", &m), 200);
    assert_string_equal(m.route->param_names[0], "other"); /* names are per route */
    assert_int_equal(match(r, CREST_GET, "/t/9", &m), 200);
    assert_string_equal(m.route->param_names[0], "id");
    crest__router_free(r);
}

static void bad_patterns(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "", "x", "noslash/{a}", "/{a", "/a}", "/{a}b", "/a{b}", "/{a-b}", "/{a b}", "/{a.b}", "/{{a}}",
        "/{a}/{a}", "/{id}/x/{id}",
    };
    crest__router *r = crest__router_new();
    for (size_t i = 0; i < COUNT_OF(bad); i++) {
        crest_error e = {0};
        int rc = crest__router_add(r, CREST_GET, bad[i], TGT(1), &e);
        if (rc != CREST_EINVAL) {
            print_error("pattern '%s': %d, want CREST_EINVAL\n", bad[i], rc);
            fail();
        }
        assert_true(e.msg[0] != 0);
    }
    crest_error e = {0};
    assert_int_equal(crest__router_add(r, CREST_GET, NULL, TGT(1), &e), CREST_EINVAL);
    assert_int_equal(crest__router_add(r, (crest_method)0, "/ok", TGT(1), &e), CREST_EINVAL);
    assert_int_equal(crest__router_add(r, (crest_method)CREST_METHOD_COUNT, "/ok", TGT(1), NULL), CREST_EINVAL);
    /* The router still works after refusals (and LSan sees no leak). */
    add(r, CREST_GET, "/{a}/{b}", TGT(2));
    crest__match m;
    assert_int_equal(match(r, CREST_GET, "/1/2", &m), 200);
    crest__router_free(r);
    crest__router_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(literal_beats_param),
        cmocka_unit_test(backtracking),
        cmocka_unit_test(backtracking_on_method),
        cmocka_unit_test(not_found_vs_method_not_allowed),
        cmocka_unit_test(head_falls_back_to_get),
        cmocka_unit_test(percent_decoding_in_segments),
        cmocka_unit_test(bad_escapes),
        cmocka_unit_test(percent_decode_function),
        cmocka_unit_test(trailing_slash_and_empty_segments),
        cmocka_unit_test(many_params),
        cmocka_unit_test(segment_cap),
        cmocka_unit_test(duplicates_refused),
        cmocka_unit_test(unreachable_paths_are_refused),
        cmocka_unit_test(bad_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
