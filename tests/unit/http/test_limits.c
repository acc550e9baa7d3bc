/* test_limits.c — the HTTP engine's limits and framing, driven through the
 * socket-free loopback connection (src/http/loopback.h) of an app built with
 * the public API: 431 for a header line, too many headers and too many
 * header bytes; 414 for a long request target; 413 for a body announced or
 * sent too large, answered before the body is read; 400 for bad requests;
 * pipelined responses in order whatever the read boundaries; HEAD without a
 * body; chunked bodies; 404/405/OPTIONS; Expect; keep-alive and close; the
 * IMF-fixdate Date header. */
#define _GNU_SOURCE /* memmem, strcasestr, strptime */
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include "unit.h"

#include "http/loopback.h"
#include "json/json_internal.h"

/* ---- the app under test ---- */

static int h_hello(crest_req *req, crest_res *res, void *ud)
{
    (void)req;
    (void)ud;
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "hello");
    crest_json_str(w, "world");
    crest_json_object_end(w);
    return 0;
}

static int h_item(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "id");
    crest_json_int(w, crest_req_int(req, "id"));
    crest_json_object_end(w);
    return 0;
}

static int h_search(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "q");
    crest_json_str(w, crest_req_str(req, "q"));
    crest_json_key(w, "n");
    crest_json_int(w, crest_req_int(req, "n"));
    crest_json_object_end(w);
    return 0;
}

static int h_echo(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    crest_json *w = crest_res_json(res);
    json_t *j = crest_req_json(req);
    if (j)
        crest__json_write_value(w, j);
    else
        crest_json_null(w);
    return 0;
}

static int h_nobody(crest_req *req, crest_res *res, void *ud)
{
    (void)req;
    (void)ud;
    crest_res_status(res, 204);
    return 0;
}

/* A body that lives as long as the program, sent without a copy. */
static char big[40000];

static int h_big(crest_req *req, crest_res *res, void *ud)
{
    (void)req;
    (void)ud;
    return crest__res_send_shared(res, "text/plain", big, sizeof big, NULL);
}

static const crest_param item_params[] = {
    {.name = "id", .in = CREST_IN_PATH, .type = CREST_T_INT, .required = true, .has_min = true, .min = 1},
    {0},
};
static const crest_param search_params[] = {
    {.name = "q", .in = CREST_IN_QUERY, .type = CREST_T_STRING, .required = true},
    {.name = "n", .in = CREST_IN_QUERY, .type = CREST_T_INT, .def = "5", .has_max = true, .max = 100},
    {0},
};
static const crest_endpoint endpoints[] = {
    {.method = CREST_GET, .path = "/hello", .handler = h_hello},
    {.method = CREST_GET, .path = "/items/{id}", .params = item_params, .handler = h_item},
    {.method = CREST_DELETE, .path = "/items/{id}", .params = item_params, .handler = h_nobody},
    {.method = CREST_GET, .path = "/search", .params = search_params, .handler = h_search},
    {.method = CREST_POST, .path = "/echo", .json_body = true, .handler = h_echo},
    {.method = CREST_PUT, .path = "/echo", .json_body = true, .body_required = true, .handler = h_echo},
    {.method = CREST_GET, .path = "/big", .handler = h_big},
};

typedef struct {
    crest_app *app;
    crest__loopback *lb;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    if (!f || !(f->app = crest_app_new()))
        return -1;
    crest_app_set_access_log(f->app, false);
    crest_limits *L = crest_app_limits(f->app);
    L->request_line = 256;
    L->header_line = 128;
    L->headers_total = 512;
    L->headers_count = 8;
    L->body = 64;
    L->json_depth = 4;
    crest_error e = {0};
    if (crest_app_add_endpoints(f->app, endpoints, COUNT_OF(endpoints), NULL, &e)) {
        fprintf(stderr, "add: %s\n", e.msg);
        return -1;
    }
    f->lb = crest__loopback_new(f->app, &e);
    if (!f->lb) {
        fprintf(stderr, "loopback: %s\n", e.msg);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    crest__loopback_free(f->lb);
    crest_app_free(f->app);
    free(f);
    return 0;
}

/* ---- reading responses ---- */

typedef struct {
    int status;
    char head[2048];  /* status line and header lines, NUL-terminated */
    char body[4096];  /* NUL-terminated copy */
    size_t body_len;
} resp;

/* The value of header name in r (case-insensitive), copied into a static
 * buffer, or NULL. */
static const char *hdr(const resp *r, const char *name)
{
    static char val[512];
    size_t n = strlen(name);
    const char *line = strstr(r->head, "\r\n");
    while (line && line[2]) {
        line += 2;
        const char *e = strstr(line, "\r\n");
        if (!e)
            break;
        if ((size_t)(e - line) > n && line[n] == ':' && strncasecmp(line, name, n) == 0) {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            snprintf(val, sizeof val, "%.*s", (int)(e - v), v);
            return val;
        }
        line = e;
    }
    return NULL;
}

/* Reads one response at *p; is_head: it answers a HEAD (no body follows). */
static void read_resp(const char **p, const char *end, bool is_head, resp *r)
{
    memset(r, 0, sizeof *r);
    const char *eoh = memmem(*p, (size_t)(end - *p), "\r\n\r\n", 4);
    if (!eoh) {
        print_error("no complete response head in [%.*s]\n", (int)(end - *p), *p);
        fail();
    }
    size_t hl = (size_t)(eoh - *p) + 2;
    assert_true(hl < sizeof r->head);
    memcpy(r->head, *p, hl);
    r->head[hl] = 0;
    assert_int_equal(sscanf(r->head, "HTTP/1.1 %d ", &r->status), 1);
    const char *cl = hdr(r, "Content-Length");
    size_t blen = cl && !is_head ? (size_t)strtoul(cl, NULL, 10) : 0;
    const char *body = eoh + 4;
    if ((size_t)(end - body) < blen) {
        print_error("body shorter than Content-Length %zu: [%.*s]\n", blen, (int)(end - *p), *p);
        fail();
    }
    assert_true(blen < sizeof r->body);
    memcpy(r->body, body, blen);
    r->body[blen] = 0;
    r->body_len = blen;
    *p = body + blen;
}

/* Feeds text, expects exactly one response (not to a HEAD), clears the output. */
static void roundtrip(fixture *f, const char *text, resp *r)
{
    assert_int_equal(crest__loopback_feed(f->lb, text, strlen(text)), 0);
    size_t n;
    const char *o = crest__loopback_output(f->lb, &n);
    const char *p = o;
    read_resp(&p, o + n, false, r);
    if (p != o + n) {
        print_error("more output than one response: [%.*s]\n", (int)n, o);
        fail();
    }
    crest__loopback_clear_output(f->lb);
}

static void expect_status(fixture *f, const char *text, int status, const char *code)
{
    resp r;
    roundtrip(f, text, &r);
    if (r.status != status) {
        print_error("want %d, got:\n%s\n%s\n", status, r.head, r.body);
        fail();
    }
    if (code) {
        char want[128];
        snprintf(want, sizeof want, "\"code\":\"%s\"", code);
        if (!strstr(r.body, want)) {
            print_error("want %s in the body: %s\n", want, r.body);
            fail();
        }
        assert_string_equal(hdr(&r, "Content-Type"), "application/problem+json");
    }
}

static void expect_closed(fixture *f)
{
    assert_true(crest__loopback_closed(f->lb));
    static const char more[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(crest__loopback_feed(f->lb, more, sizeof more - 1), -1);
}

static char *repeat(char c, size_t n)
{
    static char buf[1024];
    assert_true(n < sizeof buf);
    memset(buf, c, n);
    buf[n] = 0;
    return buf;
}

/* ---- tests ---- */

static void plain_get(void **state)
{
    fixture *f = *state;
    resp r;
    roundtrip(f, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_true(strncmp(r.head, "HTTP/1.1 200 OK\r\n", 17) == 0);
    assert_string_equal(r.body, "{\"hello\":\"world\"}");
    assert_string_equal(hdr(&r, "Content-Type"), "application/json");
    assert_string_equal(hdr(&r, "Content-Length"), "17");
    assert_string_equal(hdr(&r, "Server"), "crest");
    assert_int_equal(strlen(hdr(&r, "X-Request-Id")), 16);
    assert_null(hdr(&r, "Connection")); /* HTTP/1.1 keep-alive is the default */
    assert_false(crest__loopback_closed(f->lb));
}

/* crest__loopback_reconnect: a closed connection, or one holding half a
 * request and unread output, gives way to a fresh one on the same app. */
static void reconnect_gives_a_fresh_connection(void **state)
{
    fixture *f = *state;
    static const char half[] = "GET /hello HTTP/1.1\r\nHost: x\r\n";
    assert_int_equal(crest__loopback_feed(f->lb, half, sizeof half - 1), 0);
    assert_true(crest__loopback_held(f->lb) > 0);
    assert_int_equal(crest__loopback_reconnect(f->lb), 0);
    size_t n;
    crest__loopback_output(f->lb, &n);
    assert_int_equal(n, 0);
    assert_int_equal(crest__loopback_held(f->lb), 0);
    resp r;
    roundtrip(f, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r); /* (not appended to the half) */
    assert_int_equal(r.status, 200);
    expect_status(f, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200, NULL);
    expect_closed(f);
    assert_int_equal(crest__loopback_reconnect(f->lb), 0);
    assert_false(crest__loopback_closed(f->lb));
    roundtrip(f, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
}

static void date_is_imf_fixdate(void **state)
{
    fixture *f = *state;
    resp r;
    time_t before = time(NULL);
    roundtrip(f, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    time_t after = time(NULL);
    const char *d = hdr(&r, "Date");
    assert_non_null(d);
    /* RFC 7231 7.1.1.1: "Sun, 06 Nov 1994 08:49:37 GMT", always 29 characters. */
    assert_int_equal(strlen(d), 29);
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(d, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    assert_non_null(end);
    assert_int_equal(*end, 0);
    time_t t = timegm(&tm);
    assert_true(t >= before - 1 && t <= after + 1); /* time() may read a coarser clock */
    /* English names whatever the locale, two-digit day, fixed layout. */
    assert_memory_equal(d, days[tm.tm_wday], 3);
    assert_memory_equal(d + 8, months[tm.tm_mon], 3);
    assert_true(d[3] == ',' && d[4] == ' ' && d[7] == ' ' && d[11] == ' ' && d[16] == ' ');
    assert_true(d[19] == ':' && d[22] == ':');
}

static void header_line_too_large(void **state)
{
    fixture *f = *state;
    char req[4096];
    snprintf(req, sizeof req, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", repeat('a', 200));
    expect_status(f, req, 431, "headers_too_large");
    expect_closed(f);
}

static void header_name_too_large(void **state)
{
    fixture *f = *state;
    char req[4096];
    snprintf(req, sizeof req, "GET /hello HTTP/1.1\r\nHost: x\r\nX-%s: 1\r\n\r\n", repeat('n', 200));
    expect_status(f, req, 431, "headers_too_large");
}

static void header_line_at_limit_is_fine(void **state)
{
    fixture *f = *state;
    char req[4096];
    /* name (5) + value (123) = 128 bytes = header_line. */
    snprintf(req, sizeof req, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Big: %s\r\n\r\n", repeat('a', 123));
    expect_status(f, req, 200, NULL);
}

static void too_many_headers(void **state)
{
    fixture *f = *state;
    char req[4096];
    size_t o = (size_t)snprintf(req, sizeof req, "GET /hello HTTP/1.1\r\nHost: x\r\n");
    for (int i = 0; i < 7; i++)
        o += (size_t)snprintf(req + o, sizeof req - o, "X-H%d: v\r\n", i);
    snprintf(req + o, sizeof req - o, "\r\n");
    expect_status(f, req, 200, NULL); /* Host and 7 more: 8 = headers_count */
    snprintf(req + o, sizeof req - o, "X-H7: v\r\n\r\n");
    expect_status(f, req, 431, "headers_too_large");
    expect_closed(f);
}

static void headers_too_large_in_total(void **state)
{
    fixture *f = *state;
    char req[4096];
    size_t o = (size_t)snprintf(req, sizeof req, "GET /hello HTTP/1.1\r\nHost: x\r\n");
    /* 6 headers of 100 bytes: each under header_line, 600 over headers_total. */
    for (int i = 0; i < 6; i++)
        o += (size_t)snprintf(req + o, sizeof req - o, "X-H%d: %s\r\n", i, repeat('v', 95));
    snprintf(req + o, sizeof req - o, "\r\n");
    expect_status(f, req, 431, "headers_too_large");
}

static void uri_too_long(void **state)
{
    fixture *f = *state;
    char req[4096];
    snprintf(req, sizeof req, "GET /%s HTTP/1.1\r\nHost: x\r\n\r\n", repeat('p', 300));
    expect_status(f, req, 414, "uri_too_long");
    expect_closed(f);
}

static void long_query_is_uri_too_long(void **state)
{
    fixture *f = *state;
    char req[4096];
    snprintf(req, sizeof req, "GET /search?q=%s HTTP/1.1\r\nHost: x\r\n\r\n", repeat('q', 250));
    expect_status(f, req, 414, "uri_too_long");
}

static void uri_at_limit_is_fine(void **state)
{
    fixture *f = *state;
    char req[4096];
    /* "/search?q=" (10) + 246 = 256 = request_line. */
    snprintf(req, sizeof req, "GET /search?q=%s HTTP/1.1\r\nHost: x\r\n\r\n", repeat('q', 246));
    expect_status(f, req, 200, NULL);
}

static void body_too_large_answered_before_body(void **state)
{
    fixture *f = *state;
    /* Only the head: the 413 must not wait for the 1000 announced bytes. */
    expect_status(f,
                  "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
                  413, "payload_too_large");
    expect_closed(f);
}

static void body_at_limit_is_fine(void **state)
{
    fixture *f = *state;
    char req[4096], body[65];
    memset(body, ' ', 64);
    body[0] = '[';
    body[62] = '1';
    body[63] = ']';
    body[64] = 0;
    snprintf(req, sizeof req, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n%s",
             body);
    resp r;
    roundtrip(f, req, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "[1]");
}

static void chunked_body(void **state)
{
    fixture *f = *state;
    resp r;
    roundtrip(f,
              "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
              "4\r\n{\"a\"\r\n"
              "3;ext=1\r\n:[1\r\n"
              "2\r\n]}\r\n"
              "0\r\nTrailer: x\r\n\r\n",
              &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"a\":[1]}");
    assert_false(crest__loopback_closed(f->lb));
    /* The connection goes on. */
    roundtrip(f, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
}

static void chunked_body_too_large(void **state)
{
    fixture *f = *state;
    char req[4096];
    /* Each chunk is fine, together they pass the 64-byte limit. */
    snprintf(req, sizeof req,
             "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
             "28\r\n%s\r\n28\r\n%s\r\n0\r\n\r\n",
             repeat(' ', 40), repeat(' ', 40));
    expect_status(f, req, 413, "payload_too_large");
    expect_closed(f);
}

static void bad_requests(void **state)
{
    static const char *const bad[] = {
        "HELLO\r\n\r\n",
        "GET\r\n\r\n",
        "GET /hello HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        "GET /hello HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
        "GET /he llo HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "\x01\x02\x03",
    };
    for (size_t i = 0; i < COUNT_OF(bad); i++) {
        fixture *f = *state;
        assert_int_equal(crest__loopback_feed(f->lb, bad[i], strlen(bad[i])), 0);
        size_t n;
        const char *o = crest__loopback_output(f->lb, &n);
        const char *p = o;
        resp r;
        read_resp(&p, o + n, false, &r);
        if (r.status != 400) {
            print_error("case %zu: want 400, got %d\n%s%s\n", i, r.status, r.head, r.body);
            fail();
        }
        assert_string_equal(hdr(&r, "Connection"), "close");
        assert_true(crest__loopback_closed(f->lb));
        /* A fresh connection for the next case. */
        teardown(state);
        assert_int_equal(setup(state), 0);
    }
}

static void bad_target_keeps_connection(void **state)
{
    fixture *f = *state;
    /* Errors found after the request was read whole answer 400 and keep the
     * connection: the framing is intact. */
    expect_status(f, "GET /items/%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request");
    expect_status(f, "GET /items/%00 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request");
    expect_status(f, "GET /search?q=%G1 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request");
    expect_status(f, "GET http://example.com/hello HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request");
    assert_false(crest__loopback_closed(f->lb));
    expect_status(f, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 200, NULL);
}

static void unsupported_method(void **state)
{
    fixture *f = *state;
    expect_status(f, "PROPFIND /hello HTTP/1.1\r\nHost: x\r\n\r\n", 501, "not_implemented");
}

static void not_found_and_method_not_allowed(void **state)
{
    fixture *f = *state;
    resp r;
    expect_status(f, "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404, "not_found");
    roundtrip(f, "PUT /items/3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", &r);
    assert_int_equal(r.status, 405);
    assert_string_equal(hdr(&r, "Allow"), "GET, HEAD, DELETE, OPTIONS");
    roundtrip(f, "OPTIONS /items/3 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 204);
    assert_string_equal(hdr(&r, "Allow"), "GET, HEAD, DELETE, OPTIONS");
    assert_null(hdr(&r, "Content-Length")); /* 204 has no body and no length */
    assert_int_equal(r.body_len, 0);
    assert_false(crest__loopback_closed(f->lb));
}

static void spec_check_errors(void **state)
{
    fixture *f = *state;
    resp r;
    roundtrip(f, "GET /items/abc HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body, "\"code\":\"invalid_parameter\""));
    assert_non_null(strstr(r.body, "\"errors\":{\"id\":\"must be an integer\"}"));
    expect_status(f, "GET /items/0 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid_parameter");
    expect_status(f, "GET /search HTTP/1.1\r\nHost: x\r\n\r\n", 400, "missing_parameter");
    expect_status(f, "GET /search?q=x&n=101 HTTP/1.1\r\nHost: x\r\n\r\n", 400, "invalid_parameter");
    roundtrip(f, "GET /search?q=a+b%21 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"q\":\"a b!\",\"n\":5}"); /* the default */
    roundtrip(f, "GET /items/9223372036854775807 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_string_equal(r.body, "{\"id\":9223372036854775807}");
}

static void json_body_checks(void **state)
{
    fixture *f = *state;
    expect_status(f, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}", 415,
                  "unsupported_media_type");
    expect_status(f, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{]", 400,
                  "invalid_json");
    /* json_depth is 4 here. */
    expect_status(f, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\n\r\n[[[[1]]]]",
                  200, NULL);
    expect_status(f,
                  "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n[[[[[1]]]]]",
                  400, "invalid_json");
    expect_status(f, "PUT /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 400, "missing_body");
    resp r;
    roundtrip(f,
              "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/merge-patch+json; charset=utf-8\r\n"
              "Content-Length: 7\r\n\r\n{\"a\":1}",
              &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"a\":1}");
}

static void pipelining_keeps_order(void **state)
{
    fixture *f = *state;
    static const char reqs[] = "GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\n"
                               "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n"
                               "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5\r\n\r\n[2,3]"
                               "HEAD /items/4 HTTP/1.1\r\nHost: x\r\n\r\n"
                               "GET /items/5 HTTP/1.1\r\nHost: x\r\n\r\n";
    static const int want_status[] = {200, 404, 200, 200, 200};
    static const char *const want_body[] = {"{\"id\":1}", NULL, "[2,3]", "", "{\"id\":5}"};
    /* All at once, then split at every offset, then byte by byte. */
    for (size_t split = 0; split <= sizeof reqs - 1; split += (split < 3 ? 1 : 7)) {
        for (int bytewise = 0; bytewise < (split == 0 ? 2 : 1); bytewise++) {
            crest__loopback_clear_output(f->lb);
            if (bytewise) {
                for (size_t i = 0; i < sizeof reqs - 1; i++)
                    assert_int_equal(crest__loopback_feed(f->lb, reqs + i, 1), 0);
            } else {
                assert_int_equal(crest__loopback_feed(f->lb, reqs, split), 0);
                assert_int_equal(crest__loopback_feed(f->lb, reqs + split, sizeof reqs - 1 - split), 0);
            }
            size_t n;
            const char *o = crest__loopback_output(f->lb, &n);
            const char *p = o;
            for (int i = 0; i < 5; i++) {
                resp r;
                read_resp(&p, o + n, i == 3, &r);
                if (r.status != want_status[i]) {
                    print_error("split %zu, response %d: status %d, want %d\n", split, i, r.status,
                                want_status[i]);
                    fail();
                }
                if (want_body[i])
                    assert_string_equal(r.body, want_body[i]);
            }
            assert_ptr_equal(p, o + n); /* nothing more */
            assert_false(crest__loopback_closed(f->lb));
        }
    }
}

static void head_has_no_body(void **state)
{
    fixture *f = *state;
    static const char two[] = "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(crest__loopback_feed(f->lb, two, sizeof two - 1), 0);
    size_t n;
    const char *o = crest__loopback_output(f->lb, &n);
    const char *p = o;
    resp h, g;
    read_resp(&p, o + n, true, &h);
    /* The very next bytes are the second response: the HEAD sent no body. */
    assert_true(strncmp(p, "HTTP/1.1 200 OK\r\n", 17) == 0);
    read_resp(&p, o + n, false, &g);
    assert_ptr_equal(p, o + n);
    assert_int_equal(h.status, 200);
    /* The same headers as GET would send, Content-Length included. */
    assert_string_equal(hdr(&h, "Content-Length"), "17");
    assert_string_equal(hdr(&h, "Content-Type"), "application/json");
    assert_string_equal(g.body, "{\"hello\":\"world\"}");
    /* An error answer to HEAD has no body either. */
    crest__loopback_clear_output(f->lb);
    static const char err_two[] = "HEAD /nope HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(crest__loopback_feed(f->lb, err_two, sizeof err_two - 1), 0);
    o = crest__loopback_output(f->lb, &n);
    p = o;
    read_resp(&p, o + n, true, &h);
    assert_int_equal(h.status, 404);
    assert_true(strncmp(p, "HTTP/1.1 200 OK\r\n", 17) == 0);
}

static void expect_continue(void **state)
{
    fixture *f = *state;
    static const char head[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n"
                               "Expect: 100-continue\r\n\r\n";
    assert_int_equal(crest__loopback_feed(f->lb, head, sizeof head - 1), 0);
    size_t n;
    const char *o = crest__loopback_output(f->lb, &n);
    assert_bytes_eq(o, n, "HTTP/1.1 100 Continue\r\n\r\n");
    crest__loopback_clear_output(f->lb);
    resp r;
    roundtrip(f, "{}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{}");
    /* No 100 before a 413. */
    expect_status(f,
                  "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n"
                  "Expect: 100-continue\r\n\r\n",
                  413, "payload_too_large");
}

static void expect_other_is_417(void **state)
{
    fixture *f = *state;
    expect_status(f, "GET /hello HTTP/1.1\r\nHost: x\r\nExpect: teapot\r\n\r\n", 417, "expectation_failed");
}

static void connection_close_and_http10(void **state)
{
    fixture *f = *state;
    resp r;
    roundtrip(f, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(hdr(&r, "Connection"), "keep-alive");
    assert_false(crest__loopback_closed(f->lb));
    roundtrip(f, "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(hdr(&r, "Connection"), "close");
    expect_closed(f);
}

static void http10_closes_by_default(void **state)
{
    fixture *f = *state;
    resp r;
    /* Pipelined behind it: never answered, the connection ends first. */
    roundtrip(f, "GET /hello HTTP/1.0\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(hdr(&r, "Connection"), "close");
    expect_closed(f);
}

static void request_id_header(void **state)
{
    fixture *f = *state;
    resp r;
    roundtrip(f, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Request-Id: my-id_1.2\r\n\r\n", &r);
    assert_string_equal(hdr(&r, "X-Request-Id"), "my-id_1.2");
    /* An id with characters that could split a header is replaced. */
    roundtrip(f, "GET /hello HTTP/1.1\r\nHost: x\r\nX-Request-Id: a b\r\n\r\n", &r);
    assert_string_not_equal(hdr(&r, "X-Request-Id"), "a b");
    assert_int_equal(strlen(hdr(&r, "X-Request-Id")), 16);
}

static void builtin_healthz(void **state)
{
    fixture *f = *state;
    resp r;
    roundtrip(f, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "{\"status\":\"ok\"}");
}

static void host_header_rules(void **state)
{
    fixture *f = *state;
    /* RFC 9112 3.2: exactly one Host in HTTP/1.1; none is fine in 1.0. */
    expect_status(f, "GET /hello HTTP/1.1\r\n\r\n", 400, "bad_request");
    expect_closed(f);
    teardown(state);
    assert_int_equal(setup(state), 0);
    f = *state;
    expect_status(f, "GET /hello HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400, "bad_request");
    teardown(state);
    assert_int_equal(setup(state), 0);
    f = *state;
    expect_status(f, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200, NULL);
}

static void header_name_must_be_token(void **state)
{
    fixture *f = *state;
    expect_status(f, "GET /hello HTTP/1.1\r\nHost: x\r\nX(y): 1\r\n\r\n", 400, "bad_request");
    expect_closed(f);
}

static void options_asterisk(void **state)
{
    fixture *f = *state;
    resp r;
    roundtrip(f, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 204);
    assert_non_null(hdr(&r, "Allow"));
    assert_false(crest__loopback_closed(f->lb));
    /* Asterisk-form is only for OPTIONS. */
    expect_status(f, "GET * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request");
}

/* Issue 10, item 21: HTTP/1.0 and HTTP/1.1 only. */
static void http_version_is_checked(void **state)
{
    fixture *f = *state;
    expect_status(f, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 200, NULL);
    expect_status(f, "GET /hello HTTP/1.2\r\nHost: x\r\n\r\n", 505, "http_version_not_supported");
    expect_closed(f);
}

static void http2_version_is_505(void **state)
{
    fixture *f = *state;
    expect_status(f, "GET /hello HTTP/2.0\r\n\r\n", 505, "http_version_not_supported");
    expect_closed(f);
}

/* Issue 10, item 22: bodies are not decoded, so a coded one is refused. */
static void content_encoding_is_415(void **state)
{
    fixture *f = *state;
    resp r;
    roundtrip(f, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "Content-Encoding: gzip\r\nContent-Length: 2\r\n\r\n{}", &r);
    assert_int_equal(r.status, 415);
    assert_non_null(strstr(r.body, "\"code\":\"unsupported_content_encoding\""));
    assert_string_equal(hdr(&r, "Accept-Encoding"), "identity");
    assert_false(crest__loopback_closed(f->lb));
    expect_status(f, "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Content-Encoding: identity\r\nContent-Length: 2\r\n\r\n{}", 200, NULL);
}

/* Shared bodies (crest__res_send_shared) go out after their head, in order
 * with the other pipelined answers; HEAD gets the head only. */
static void shared_bodies_in_a_pipeline(void **state)
{
    fixture *f = *state;
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (char)('a' + i % 26);
    static const char reqs[] = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n"
                               "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                               "HEAD /big HTTP/1.1\r\nHost: x\r\n\r\n"
                               "GET /big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert_int_equal(crest__loopback_feed(f->lb, reqs, sizeof reqs - 1), 0);
    size_t n;
    const char *o = crest__loopback_output(f->lb, &n), *p = o, *end = o + n;
    for (int k = 0; k < 4; k++) {
        const char *eoh = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        assert_non_null(eoh);
        if (k == 1) {
            resp r;
            read_resp(&p, end, false, &r);
            assert_string_equal(r.body, "{\"hello\":\"world\"}");
            continue;
        }
        static const char cl[] = "Content-Length: 40000\r\n", ct[] = "Content-Type: text/plain\r\n";
        assert_non_null(memmem(p, (size_t)(eoh + 2 - p), cl, sizeof cl - 1));
        assert_non_null(memmem(p, (size_t)(eoh + 2 - p), ct, sizeof ct - 1));
        p = eoh + 4;
        if (k == 2)
            continue; /* HEAD: no body */
        assert_true((size_t)(end - p) >= sizeof big);
        assert_memory_equal(p, big, sizeof big);
        p += sizeof big;
    }
    assert_ptr_equal(p, end);
    expect_closed(f);
}

/* Issue 10, item 16: a connection waiting for its next request holds no
 * buffer and no request state; one in the middle of a request does. */
static void idle_connection_holds_no_buffers(void **state)
{
    fixture *f = *state;
    assert_int_equal(crest__loopback_held(f->lb), 0);
    expect_status(f, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n", 200, NULL);
    assert_int_equal(crest__loopback_held(f->lb), 0);
    static const char part[] = "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n";
    assert_int_equal(crest__loopback_feed(f->lb, part, sizeof part - 1), 0);
    assert_true(crest__loopback_held(f->lb) > 0);
    expect_status(f, "Content-Length: 7\r\n\r\n[1,2,3]", 200, NULL);
    assert_int_equal(crest__loopback_held(f->lb), 0);
    /* pipelined: every answer given, nothing kept */
    static const char two[] = "GET /big HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    assert_int_equal(crest__loopback_feed(f->lb, two, sizeof two - 1), 0);
    assert_int_equal(crest__loopback_held(f->lb), 0);
}

static void default_limits(void **state)
{
    (void)state;
    crest_app *app = crest_app_new();
    assert_non_null(app);
    const crest_limits *L = crest_app_limits(app);
    assert_int_equal(L->request_line, 8 * 1024);
    assert_int_equal(L->header_line, 8 * 1024);
    assert_int_equal(L->headers_total, 32 * 1024);
    assert_int_equal(L->headers_count, 100);
    assert_int_equal(L->body, 1024 * 1024);
    assert_int_equal(L->json_depth, 64);
    assert_int_equal(L->response, 64 * 1024 * 1024);
    assert_int_equal(L->body_timeout_ms, 30000);
    assert_int_equal(L->body_total_timeout_ms, 60000);
    assert_int_equal(L->output_buffer, 1024 * 1024);
    crest_app_free(app);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(plain_get),
        T(reconnect_gives_a_fresh_connection),
        T(date_is_imf_fixdate),
        T(header_line_too_large),
        T(header_name_too_large),
        T(header_line_at_limit_is_fine),
        T(too_many_headers),
        T(headers_too_large_in_total),
        T(uri_too_long),
        T(long_query_is_uri_too_long),
        T(uri_at_limit_is_fine),
        T(body_too_large_answered_before_body),
        T(body_at_limit_is_fine),
        T(chunked_body),
        T(chunked_body_too_large),
        T(bad_requests),
        T(bad_target_keeps_connection),
        T(unsupported_method),
        T(not_found_and_method_not_allowed),
        T(spec_check_errors),
        T(json_body_checks),
        T(pipelining_keeps_order),
        T(head_has_no_body),
        T(expect_continue),
        T(expect_other_is_417),
        T(connection_close_and_http10),
        T(http10_closes_by_default),
        T(request_id_header),
        T(builtin_healthz),
        T(host_header_rules),
        T(header_name_must_be_token),
        T(options_asterisk),
        T(http_version_is_checked),
        T(http2_version_is_505),
        T(content_encoding_is_415),
        T(shared_bodies_in_a_pipeline),
        T(idle_connection_holds_no_buffers),
        cmocka_unit_test(default_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
