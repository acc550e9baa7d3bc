/* request.c — a request on a connection: its state and its head.
 *
 * The state (head bytes, body, arena, JSON writer, crest_req/crest_res)
 * comes from a small per-worker pool when a request's first byte arrives
 * and goes back as soon as it is answered, so a connection waiting for its
 * next request holds none of it (nginx frees a waiting connection's buffers
 * the same way).
 *
 * The parser callbacks check every limit before the bytes they guard are
 * kept: the request target (414), each header line, their sum and their
 * count (431), the HTTP version (505), Content-Length against the body
 * limit (413 before any body byte is read), the running size of a chunked
 * body (413). The body has an idle deadline and a total one (408). */
#include <stdlib.h>

#include "engine.h"

#define RS_POOL_MAX 32            /* free request states a worker keeps */
#define RS_KEEP_BYTES (64 * 1024) /* larger buffers are freed, not pooled */

http_parser_settings crest__parser_settings;

/* ---- the request state and its pool ---- */

static reqstate *rs_new(worker *w)
{
    reqstate *rs = calloc(1, sizeof *rs);
    if (!rs)
        return NULL;
    const crest_limits *L = &w->cw.app->limits; /* the same in every app a reload makes */
    rs->w = w;
    crest__arena_init(&rs->arena, 4096, 0);
    crest_json_init(&rs->json, L->response);
    crest__buf_init(&rs->res_headers, 64 * 1024);
    crest__buf_init(&rs->head, L->request_line + L->headers_total + 2 * MAX_HEADERS + 16);
    crest__buf_init(&rs->body, L->body);
    rs->req.arena = &rs->arena;
    rs->req.worker = &w->cw;
    rs->res.arena = &rs->arena;
    rs->res.json = &rs->json;
    rs->res.req = &rs->req;
    rs->res.headers = &rs->res_headers;
    rs->work.data = rs;
    return rs;
}

static void rs_dispose(reqstate *rs)
{
    crest__arena_dispose(&rs->arena);
    crest_json_dispose(&rs->json);
    crest__buf_dispose(&rs->res_headers);
    crest__buf_dispose(&rs->head);
    crest__buf_dispose(&rs->body);
    free(rs);
}

static void shrink(worker *w, crest__buf *b, size_t keep)
{
    b->len = 0;
    if (b->cap > keep) {
        crest__worker_released(w, b->cap);
        crest__buf_dispose(b);
    }
}

void crest__reqstate_release(worker *w, reqstate *rs)
{
    /* The request's cleanups run now (parsed bodies and the like), not when
     * the state is next used. */
    size_t freed = crest__arena_reset(&rs->arena);
    if (freed) /* counted for the worker's trim, as the buffers below */
        crest__worker_released(w, freed);
    crest__req_reset(&rs->req, &rs->res);
    rs->c = NULL;
    crest__worker_drop_app(w, rs->req.app); /* a reloaded-away app may be freed once every request let it go */
    rs->req.app = NULL;
    w->rs_live--;
    crest__worker_drain_check(w); /* the last request a draining worker waited for */
    if (w->rs_nfree >= RS_POOL_MAX) {
        crest__worker_released(w, sizeof *rs + rs->json.cap + rs->head.cap + rs->body.cap + rs->res_headers.cap);
        rs_dispose(rs);
        return;
    }
    if (rs->json.cap > RS_KEEP_BYTES) {
        crest__worker_released(w, rs->json.cap);
        crest_json_dispose(&rs->json);
        crest_json_init(&rs->json, w->cw.app->limits.response);
    }
    shrink(w, &rs->body, RS_KEEP_BYTES);
    shrink(w, &rs->head, 16 * 1024);
    shrink(w, &rs->res_headers, 16 * 1024);
    rs->next_free = w->rs_free;
    w->rs_free = rs;
    w->rs_nfree++;
}

void crest__reqstate_pool_free(worker *w)
{
    while (w->rs_free) {
        reqstate *rs = w->rs_free;
        w->rs_free = rs->next_free;
        rs_dispose(rs);
    }
    w->rs_nfree = 0;
}

/* v in lower-case hex, at least `width` digits; returns the end. */
static char *put_hex(char *p, uint64_t v, int width)
{
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v || n < width);
    while (n)
        *p++ = tmp[--n];
    return p;
}

int crest__request_begin(conn *c)
{
    worker *w = c->w;
    reqstate *rs = c->rs;
    if (rs) { /* a state kept from an unfinished request: start over */
        size_t freed = crest__arena_reset(&rs->arena);
        if (freed)
            crest__worker_released(w, freed);
        crest__req_reset(&rs->req, &rs->res);
        crest__worker_drop_app(w, rs->req.app);
    } else if (w->rs_free) {
        rs = w->rs_free;
        w->rs_free = rs->next_free;
        w->rs_nfree--;
        w->rs_live++;
    } else if (!(rs = rs_new(w))) {
        return CREST_ENOMEM;
    } else {
        w->rs_live++;
    }
    c->rs = rs;
    rs->c = c;
    /* The request runs on the app the worker serves now, to its end, even
     * if a reload switches the worker meanwhile (uv_engine.c). */
    rs->req.app = w->cw.app;
    crest__worker_hold_app(w, rs->req.app);
    rs->head.len = 0;
    rs->body.len = 0;
    rs->url_len = 0;
    rs->nheaders = 0;
    rs->cur_len = 0;
    rs->hdr_state = 0;
    rs->has_err = false;
    rs->expect_continue = false;
    rs->req.peer = c->peer;
    rs->req.start_us = crest__now_us();
    /* "%08x%02x%06llx" of (server prefix, worker, counter), without printf. */
    char *p = rs->req.id;
    p = put_hex(p, w->srv->id_prefix, 8);
    p = put_hex(p, (unsigned)w->cw.id & 0xff, 2);
    p = put_hex(p, ++w->req_counter & 0xffffffffffULL, 6);
    *p = 0;
    return 0;
}

void crest__request_end(conn *c)
{
    if (!c->rs)
        return;
    reqstate *rs = c->rs;
    c->rs = NULL;
    crest__reqstate_release(c->w, rs);
}

void crest__request_abandon(conn *c)
{
    reqstate *rs = c->rs;
    if (!rs)
        return;
    /* Detached first: whatever answer comes from now on goes nowhere (not
     * into the connection being closed, which would close it twice). */
    rs->c = NULL;
    c->rs = NULL;
    /* Not started yet (every pool thread busy): it never will. Started: the
     * thread finishes, and after_work_cb frees the state. */
    if (!rs->req.deferred) { /* a deferred answer queued no work: crest_res_finish frees it */
        uv_cancel((uv_req_t *)&rs->work);
    } else if (rs->req.store_pending) { /* nobody reads its answer: its statements stop */
        /* Their completions may run in the call (a statement still waiting
         * for a database connection fails at once) and finish the answer:
         * the state, the session in its arena included, is freed after. */
        rs->cancelling = true;
        crest__req_cancel(&rs->req);
        rs->cancelling = false;
        if (rs->finished_in_cancel) {
            rs->finished_in_cancel = false;
            crest__reqstate_release(c->w, rs);
        }
    }
}

/* ---- parser callbacks: the head ---- */

/* detail: static, or NULL for the table's default. */
static int limit_hit(http_parser *p, crest__ecode e, const char *detail)
{
    conn *c = p->data;
    c->rs->has_err = true;
    c->rs->err = e;
    c->rs->err_detail = detail;
    http_parser_pause(p, 1);
    return 0;
}

#define OUT_OF_MEMORY(p) limit_hit((p), CREST__E_OUT_OF_MEMORY, NULL)

static int on_message_begin(http_parser *p)
{
    conn *c = p->data;
    if (crest__request_begin(c))
        return -1; /* the connection is closed: there is no memory to answer */
    c->state = ST_HEAD;
    crest__conn_set_deadline(c, conn_limits(c)->header_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    reqstate *rs = c->rs;
    if (rs->url_len + len > conn_limits(c)->request_line)
        return limit_hit(p, CREST__E_URI_TOO_LONG, NULL);
    if (crest__buf_append(&rs->head, at, len))
        return OUT_OF_MEMORY(p);
    rs->url_len += len;
    return 0;
}

static int end_piece(reqstate *rs)
{
    return crest__buf_append(&rs->head, "", 1);
}

/* Adds header bytes to the current piece, within the line and total limits. */
static int header_bytes(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    reqstate *rs = c->rs;
    const crest_limits *L = conn_limits(c);
    rs->cur_len += len;
    if (rs->cur_len > L->header_line)
        return limit_hit(p, CREST__E_HEADERS_TOO_LARGE, "a header field is too large");
    if (rs->head.len - rs->url_len + len > L->headers_total)
        return limit_hit(p, CREST__E_HEADERS_TOO_LARGE, "the header fields are too large in total");
    if (crest__buf_append(&rs->head, at, len))
        return OUT_OF_MEMORY(p);
    return 0;
}

/* The head buffer holds the url, then each header name and value, each
 * NUL-terminated; hdr_state says which piece the parser is in. */
static int on_header_field(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    reqstate *rs = c->rs;
    if (rs->hdr_state != 1) {
        if (end_piece(rs))
            return OUT_OF_MEMORY(p);
        if (rs->nheaders >= conn_limits(c)->headers_count || rs->nheaders >= MAX_HEADERS)
            return limit_hit(p, CREST__E_HEADERS_TOO_LARGE, "too many header fields");
        rs->hdr_name_off[rs->nheaders] = rs->head.len;
        rs->hdr_value_off[rs->nheaders] = 0;
        rs->nheaders++;
        rs->hdr_state = 1;
        rs->cur_len = 0;
    }
    return header_bytes(p, at, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    reqstate *rs = c->rs;
    if (rs->hdr_state != 2) {
        if (end_piece(rs))
            return OUT_OF_MEMORY(p);
        rs->hdr_value_off[rs->nheaders - 1] = rs->head.len;
        rs->hdr_state = 2;
    }
    return header_bytes(p, at, len);
}

static crest_method method_of(unsigned m)
{
    switch (m) {
    case HTTP_GET: return CREST_GET;
    case HTTP_HEAD: return CREST_HEAD;
    case HTTP_POST: return CREST_POST;
    case HTTP_PUT: return CREST_PUT;
    case HTTP_PATCH: return CREST_PATCH;
    case HTTP_DELETE: return CREST_DELETE;
    case HTTP_OPTIONS: return CREST_OPTIONS;
    default: return 0;
    }
}

static void queue_continue(conn *c)
{
    static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
    crest__buf_append(&c->out.b, cont, sizeof cont - 1);
    crest__conn_flush(c);
}

/* RFC 9110 5.6.2: tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" /
 * "-" / "." / "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA */
static bool is_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              (ch && strchr("!#$%&'*+-.^_`|~", ch))))
            return false;
    }
    return true;
}

/* How long the body may still take from now: its idle time, within the
 * total time left (slow bodies: trickling bytes does not extend that). */
static unsigned body_wait_ms(const conn *c)
{
    const crest_limits *L = conn_limits(c);
    uint64_t now = uv_now(&c->w->loop);
    uint64_t left = c->body_due > now ? c->body_due - now : 0;
    return left < L->body_timeout_ms ? (unsigned)left : L->body_timeout_ms;
}

void crest__request_body_progress(conn *c)
{
    crest__conn_set_deadline(c, body_wait_ms(c));
}

static int on_headers_complete(http_parser *p)
{
    conn *c = p->data;
    reqstate *rs = c->rs;
    crest_app *app = rs->req.app;
    if (end_piece(rs)) /* terminates the url, or the last header piece */
        return OUT_OF_MEMORY(p);
    crest_req *req = &rs->req;
    req->url = rs->head.ptr;
    req->url_len = rs->url_len;
    req->method = method_of(p->method);
    req->method_text = http_method_str(p->method);
    req->http_major = p->http_major;
    req->http_minor = p->http_minor;
    /* HTTP/1.0 and HTTP/1.1 only: another version has other framing
     * (HTTP/2's preface), or one this server cannot promise to speak. */
    if (p->http_major != 1 || p->http_minor > 1)
        return limit_hit(p, CREST__E_HTTP_VERSION_NOT_SUPPORTED, NULL);
    req->headers = crest__arena_alloc(&rs->arena, (rs->nheaders ? rs->nheaders : 1) * sizeof *req->headers);
    if (!req->headers)
        return OUT_OF_MEMORY(p);
    bool has_cl = false, has_te = false;
    unsigned nhost = 0, nauth = 0, nkey = 0;
    const char *expect = NULL;
    for (unsigned i = 0; i < rs->nheaders; i++) {
        crest__header *h = &req->headers[i];
        h->name = rs->head.ptr + rs->hdr_name_off[i];
        h->name_len = strlen(h->name);
        if (rs->hdr_value_off[i]) {
            h->value = rs->head.ptr + rs->hdr_value_off[i];
            h->value_len = strlen(h->value);
        } else {
            h->value = "";
            h->value_len = 0;
        }
        if (!is_token(h->name, h->name_len))
            return limit_hit(p, CREST__E_BAD_REQUEST, "a header field name is not a valid token");
        if (crest__strcaseeq(h->name, h->name_len, "host", 4))
            nhost++;
        else if (crest__strcaseeq(h->name, h->name_len, "content-length", 14))
            has_cl = true;
        else if (crest__strcaseeq(h->name, h->name_len, "transfer-encoding", 17))
            has_te = true;
        else if (crest__strcaseeq(h->name, h->name_len, "expect", 6))
            expect = h->value;
        else if (crest__strcaseeq(h->name, h->name_len, "authorization", 13))
            nauth++;
        else if (crest__strcaseeq(h->name, h->name_len, "x-api-key", 9))
            nkey++;
    }
    req->nheaders = rs->nheaders;
    /* RFC 9112 3.2: a 1.1 request carries exactly one Host. */
    if (nhost > 1 || (nhost == 0 && p->http_minor >= 1))
        return limit_hit(p, CREST__E_BAD_REQUEST,
                         nhost ? "more than one Host header field" : "an HTTP/1.1 request needs a Host header field");
    /* A credential given twice is ambiguous (which one names the user?). */
    if (nauth > 1)
        return limit_hit(p, CREST__E_BAD_REQUEST, "more than one Authorization header field");
    if (nkey > 1)
        return limit_hit(p, CREST__E_BAD_REQUEST, "more than one X-API-Key header field");
    if (has_cl && has_te)
        return limit_hit(p, CREST__E_BAD_REQUEST, "Content-Length and Transfer-Encoding together are not allowed");
    if (req->method == 0)
        return limit_hit(p, CREST__E_NOT_IMPLEMENTED, NULL);
    bool has_body = (p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX);
    if (p->content_length != ULLONG_MAX && p->content_length > app->limits.body)
        return limit_hit(p, CREST__E_PAYLOAD_TOO_LARGE, NULL);
    if (expect) {
        if (!crest__strcaseeq(expect, strlen(expect), "100-continue", 12))
            return limit_hit(p, CREST__E_EXPECTATION_FAILED, NULL);
        if (has_body && p->http_minor >= 1)
            rs->expect_continue = true;
    }
    if (has_body) {
        /* The body's own deadlines: idle time, pushed by progress, within a
         * total time from now that nothing extends. */
        c->state = ST_BODY;
        c->body_due = uv_now(&c->w->loop) + app->limits.body_total_timeout_ms;
        crest__conn_reset_deadline(c, body_wait_ms(c));
        if (rs->expect_continue)
            queue_continue(c);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    reqstate *rs = c->rs;
    if (rs->body.len + len > conn_limits(c)->body)
        return limit_hit(p, CREST__E_PAYLOAD_TOO_LARGE, NULL);
    if (crest__buf_append(&rs->body, at, len))
        return OUT_OF_MEMORY(p);
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_parser_pause(p, 1);
    return 0;
}

void crest__parser_settings_init(void)
{
    http_parser_settings *ps = &crest__parser_settings;
    memset(ps, 0, sizeof *ps);
    ps->on_message_begin = on_message_begin;
    ps->on_url = on_url;
    ps->on_header_field = on_header_field;
    ps->on_header_value = on_header_value;
    ps->on_headers_complete = on_headers_complete;
    ps->on_body = on_body;
    ps->on_message_complete = on_message_complete;
}
