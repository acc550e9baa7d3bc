/* test_compress.c — gzip of answers (src/app/compress.c): the
 * Accept-Encoding parser (q-values, gzip;q=0 refusing, *, x-gzip, case,
 * whitespace, bad weights, several header lines), the header rewrite (Vary
 * merged into one line, -gzip inside the ETag's quotes), and the gzip
 * bodies themselves (inflated back to the bytes, pieces as one body, the
 * shared copy made once, no gzip when it is no smaller). */
#include <stdlib.h>
#include <zlib.h>

#include "unit.h"

#include "app/app_internal.h"

static void accept_encoding_values(void **state)
{
    (void)state;
    static const char *const yes[] = {
        "gzip", "GZIP", "x-gzip", "X-Gzip", "gzip;q=1", "gzip; q=0.5", "gzip ;Q=0.001", "deflate, gzip",
        "br;q=1.0, gzip;q=0.8, *;q=0.1", "*", "*;q=0.3", "identity, *", "  gzip  ,  br  ", "gzip;q=1.000",
        "gzip;level=2", "identity;q=0, gzip", "x-gzip;q=0.2, br", "\tgzip\t", "gzip;q=0, x-gzip;q=0.5",
        "*;q=0, gzip"};
    static const char *const no[] = {
        "", "identity", "br", "deflate, br", "gzip;q=0", "GZIP;Q=0", "gzip;q=0.000", "gzip; q=0 , br",
        "*;q=0", "gzip;q=0, *", "x-gzip;q=0", "gzipx", "gzip2", "xgzip", "gzip;q=2", "gzip;q=1.5",
        "gzip;q=0.0001", "gzip;q=abc", "gzip;q=", "gzip junk", "*;q=0, identity", "gzip;q=-1", NULL};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        if (!crest__accept_gzip_value(yes[i]))
            fail_msg("'%s' should allow gzip", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        if (crest__accept_gzip_value(no[i]))
            fail_msg("'%s' should not allow gzip", no[i] ? no[i] : "(no header)");
}

static void accept_encoding_lines_are_one_list(void **state)
{
    (void)state;
    crest__header h[3] = {
        {.name = "Accept-Encoding", .name_len = 15, .value = "br", .value_len = 2},
        {.name = "X-Other", .name_len = 7, .value = "gzip", .value_len = 4},
        {.name = "accept-encoding", .name_len = 15, .value = "gzip;q=0.5", .value_len = 10},
    };
    crest_req req = {.headers = h, .nheaders = 3};
    assert_true(crest__accept_gzip(&req));
    req.nheaders = 2; /* only br named: the X-Other line does not count */
    assert_false(crest__accept_gzip(&req));
    h[0].value = "gzip;q=0"; /* a refusal in one line, a weight in another: the larger */
    req.nheaders = 3;
    assert_true(crest__accept_gzip(&req));
    req.nheaders = 0;
    assert_false(crest__accept_gzip(&req));
}

static void headers_of(const char *in, bool gzipped, char *out, size_t cap)
{
    crest__buf h, o;
    crest__buf_init(&h, 0);
    crest__buf_init(&o, 0);
    assert_int_equal(crest__buf_appends(&h, in), 0);
    assert_int_equal(crest__gz_headers(&o, &h, gzipped), 0);
    assert_true(o.len < cap);
    memcpy(out, o.ptr, o.len);
    out[o.len] = 0;
    crest__buf_dispose(&h);
    crest__buf_dispose(&o);
}

static void vary_merged_and_etag_marked(void **state)
{
    (void)state;
    char out[512];
    headers_of("", false, out, sizeof out);
    assert_string_equal(out, "Vary: Accept-Encoding\r\n");
    headers_of("Access-Control-Allow-Origin: *\r\nVary: Origin\r\nX-A: 1\r\n", false, out, sizeof out);
    assert_string_equal(out, "Access-Control-Allow-Origin: *\r\nVary: Origin, Accept-Encoding\r\nX-A: 1\r\n");
    headers_of("vary: accept-encoding\r\n", true, out, sizeof out); /* named already: kept as it is */
    assert_string_equal(out, "vary: accept-encoding\r\n");
    headers_of("Vary:  * \r\n", true, out, sizeof out); /* "*" stays alone */
    assert_string_equal(out, "Vary:  * \r\n");
    headers_of("ETag: \"abc\"\r\nLocation: /x\r\n", true, out, sizeof out);
    assert_string_equal(out, "ETag: \"abc-gzip\"\r\nLocation: /x\r\nVary: Accept-Encoding\r\n");
    headers_of("ETag: W/\"v7\"\r\n", true, out, sizeof out);
    assert_string_equal(out, "ETag: W/\"v7-gzip\"\r\nVary: Accept-Encoding\r\n");
    headers_of("ETag: \"abc\"\r\n", false, out, sizeof out); /* identity: the ETag as it is */
    assert_string_equal(out, "ETag: \"abc\"\r\nVary: Accept-Encoding\r\n");
    headers_of("ETag: broken\r\nX-ETag: \"q\"\r\n", true, out, sizeof out); /* no quotes: untouched */
    assert_string_equal(out, "ETag: broken\r\nX-ETag: \"q\"\r\nVary: Accept-Encoding\r\n");
}

typedef struct {
    crest_app *app;
    crest__worker w;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || !(f->app = crest_app_new()))
        return -1;
    f->w.app = f->app;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    crest__gz_worker_free(&f->w);
    crest_app_free(f->app);
    free(f);
    return 0;
}

/* The bytes gz inflates to (malloc'd; *n their count). */
static char *gunzip(crest__str gz, size_t *n)
{
    size_t cap = 1 << 20;
    char *out = malloc(cap);
    z_stream zs = {0};
    assert_int_equal(inflateInit2(&zs, 15 + 16), Z_OK);
    zs.next_in = (Bytef *)gz.ptr;
    zs.avail_in = (uInt)gz.len;
    zs.next_out = (Bytef *)out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(inflate(&zs, Z_FINISH), Z_STREAM_END);
    assert_int_equal(zs.avail_in, 0);
    *n = cap - zs.avail_out;
    inflateEnd(&zs);
    return out;
}

static char *json_rows(int rows, size_t *n)
{
    crest__buf b;
    crest__buf_init(&b, 0);
    for (int i = 0; i < rows; i++)
        crest__buf_appendf(&b, "%s{\"id\":%d,\"title\":\"task number %d\"}", i ? "," : "[", i, i);
    crest__buf_appends(&b, "]");
    *n = b.len;
    return b.ptr;
}

static void bodies_inflate_to_the_bytes(void **state)
{
    fixture *f = *state;
    size_t n, got;
    char *rows = json_rows(200, &n);
    crest__str gz;
    /* Twice on the same worker: the state is reset between answers. */
    for (int k = 0; k < 2; k++) {
        crest__str parts[5] = {{"{\"", 2}, {"data", 4}, {"\":", 2}, {rows, n}, {"}", 1}};
        assert_int_equal(crest__gz_body(&f->w, parts, 5, &gz), 0);
        assert_true(gz.len < n / 3);
        char *back = gunzip(gz, &got);
        assert_int_equal(got, n + 9);
        assert_memory_equal(back, "{\"data\":", 8);
        assert_memory_equal(back + 8, rows, n);
        assert_int_equal(back[got - 1], '}');
        free(back);
        crest__gz_done(&f->w);
    }
    /* Empty pieces in the middle are nothing. */
    crest__str parts[3] = {{rows, n / 2}, {"", 0}, {rows + n / 2, n - n / 2}};
    assert_int_equal(crest__gz_body(&f->w, parts, 3, &gz), 0);
    char *back = gunzip(gz, &got);
    assert_int_equal(got, n);
    assert_memory_equal(back, rows, n);
    free(back);
    free(rows);
}

static void no_gzip_when_no_smaller(void **state)
{
    fixture *f = *state;
    crest__str gz = {0}, tiny = {"{}", 2};
    assert_int_not_equal(crest__gz_body(&f->w, &tiny, 1, &gz), 0);
    char noise[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof noise; i++) {
        x = x * 1103515245u + 12345u;
        noise[i] = (char)(x >> 24);
    }
    crest__str body = {noise, sizeof noise};
    assert_int_not_equal(crest__gz_body(&f->w, &body, 1, &gz), 0);
}

static void shared_bodies_are_compressed_once(void **state)
{
    fixture *f = *state;
    size_t n, got;
    char *rows = json_rows(300, &n);
    crest__gzslot slot = {0};
    crest__str a, b;
    assert_int_equal(crest__gz_shared(&f->w, &slot, rows, n, &a), 0);
    assert_int_equal(crest__gz_shared(&f->w, &slot, rows, n, &b), 0);
    assert_ptr_equal(a.ptr, b.ptr); /* the kept copy, not a second one */
    assert_int_equal(a.len, b.len);
    char *back = gunzip(a, &got);
    assert_int_equal(got, n);
    assert_memory_equal(back, rows, n);
    free(back);
    crest__gzslot_free(&slot);
    assert_null(slot.body);
    free(rows);
}

/* Regression: render gzipped the shared body of crest__res_send_shared
 * (its kept copy) when the answer had become a problem since: the problem
 * is what goes, and the shared body's copy is not even made. */
static void problem_after_a_shared_body_is_not_the_shared_gzip(void **state)
{
    fixture *f = *state;
    char body[4096];
    memset(body, 'a', sizeof body);
    crest__gzslot slot = {0};
    assert_int_equal(crest_app_set_compression(f->app, true, 0, 1), 0); /* any size */
    crest_json j;
    crest_json_init(&j, 0);
    crest__buf hdrs, out;
    crest__buf_init(&hdrs, 0);
    crest__buf_init(&out, 0);
    crest__header h = {.name = "Accept-Encoding", .name_len = 15, .value = "gzip", .value_len = 4};
    crest_req req = {.app = f->app, .worker = &f->w, .headers = &h, .nheaders = 1, .method = CREST_GET,
                     .http_major = 1, .http_minor = 1};
    crest_res res = {.req = &req, .json = &j, .headers = &hdrs};
    assert_int_equal(crest__res_send_shared(&res, "text/plain", body, sizeof body, &slot), 0);
    res.is_error = true;
    res.err_status = 500;
    res.err_code = "internal_error";
    crest__str shared = {0};
    size_t bytes = 0;
    assert_int_equal(crest__app_render(&req, &res, &out, "Thu, 01 Jan 2026 00:00:00 GMT", true, &bytes, &shared), 0);
    assert_int_equal(crest__buf_append(&out, "", 1), 0);
    assert_non_null(strstr(out.ptr, "Content-Type: application/problem+json\r\n"));
    assert_int_equal(shared.len, 0); /* nothing sent after the head: the problem is in out */
    assert_true(bytes < 200);
    assert_null(slot.body);
    crest__buf_dispose(&out);
    crest__buf_dispose(&hdrs);
    crest_json_dispose(&j);
}

static void setter_checks_the_level(void **state)
{
    fixture *f = *state;
    assert_int_equal(crest_app_set_compression(f->app, true, 10, 0), CREST_EINVAL);
    assert_int_equal(crest_app_set_compression(f->app, true, 10, 10), CREST_EINVAL);
    assert_int_equal(f->app->compress_level, CREST__GZ_LEVEL);
    assert_int_equal(f->app->compress_min, CREST__GZ_MIN);
    assert_false(f->app->compress_off);
    assert_int_equal(crest_app_set_compression(f->app, false, 10, 9), 0);
    assert_true(f->app->compress_off);
    assert_int_equal(f->app->compress_min, 10);
    assert_int_equal(f->app->compress_level, 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accept_encoding_values),
        cmocka_unit_test(accept_encoding_lines_are_one_list),
        cmocka_unit_test(vary_merged_and_etag_marked),
        cmocka_unit_test_setup_teardown(bodies_inflate_to_the_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(no_gzip_when_no_smaller, setup, teardown),
        cmocka_unit_test_setup_teardown(shared_bodies_are_compressed_once, setup, teardown),
        cmocka_unit_test_setup_teardown(problem_after_a_shared_body_is_not_the_shared_gzip, setup, teardown),
        cmocka_unit_test_setup_teardown(setter_checks_the_level, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
