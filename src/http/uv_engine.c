/* uv_engine.c — the HTTP/1.1 engine: libuv for sockets, timers and the thread
 * pool, http_parser for the protocol. One event loop per worker thread, each
 * with its own SO_REUSEPORT listener; nothing on the request path is shared
 * between workers except the connection counter.
 *
 * A connection processes one request at a time: the parser is paused at the
 * end of each message, the request is answered (appended to the output
 * buffer) and parsing resumes, so pipelined responses leave in order. A
 * blocking handler pauses the connection until the thread pool is done.
 * Every limit in DESIGN.md is enforced here or in the callbacks below, before
 * the bytes it guards are kept. With HTTPS (tls.c) the socket carries
 * ciphertext: reads are decrypted before the parser sees them and the output
 * is encrypted into c->wire just before it is written, so everything between
 * (parsing, limits, timers, pipelining, backpressure) is the same. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <http_parser.h>
#include <uv.h>

#include "../app/app_internal.h"
#include "loopback.h"
#include "tls.h"

#define READ_BUF_SIZE 65536
#define LINGER_MS 2000
#define LINGER_MAX_BYTES (4u * 1024 * 1024)

typedef struct server server;
typedef struct worker worker;
typedef struct conn conn;

enum conn_state {
    ST_IDLE,      /* between requests (no byte of the next one yet) */
    ST_HEAD,      /* reading a request head */
    ST_BODY,      /* reading a body */
    ST_HANDLING,  /* a blocking handler runs */
    ST_CLOSING,   /* sending the last response, then close */
    ST_LINGER     /* response sent, write side shut, reading and dropping */
};

struct conn {
    uv_tcp_t tcp; /* first: the handle's address is the conn's */
    uv_timer_t timer;
    worker *w;
    conn *prev, *next;
    http_parser parser;
    enum conn_state state;
    int pending_handles; /* handles still to close before freeing */
    uint64_t deadline;   /* loop ms at which the current state times out */
    uint64_t timer_due;  /* when the timer is set to fire (0: not armed) */
    int err_status;      /* a limit hit inside a parser callback */
    const char *err_code, *err_detail;
    int hdr_state;       /* 0: in the url, 1: in a header name, 2: in a value */
    bool reading;
    bool writing;
    bool close_after;    /* close once the output is sent */
    bool dead;           /* closed by the peer while a handler ran */
    bool expect_continue;
    size_t linger_bytes;
    char peer[48];       /* the client's IP address, for rate limits and logs */
    /* request head: url and header bytes, each piece NUL-terminated */
    crest__buf head;
    size_t url_len;
    unsigned nheaders;
    size_t hdr_name_off[128], hdr_value_off[128]; /* offsets into head */
    size_t cur_len;      /* length of the header line being read */
    crest__buf body;
    crest__buf in;       /* unparsed bytes kept while paused */
    crest__buf out;      /* output not yet handed to the socket */
    crest__buf inflight; /* output the socket is writing */
    uv_write_t wreq;
    uv_shutdown_t sreq;
    uv_work_t work;
    crest__arena arena;
    crest_json json;
    crest__buf res_headers;
    crest_req req;
    crest_res res;
    crest__tls *tls;     /* HTTPS: the session; NULL for plain HTTP */
    bool tls_ready;      /* handshake done: records carry HTTP */
    crest__buf wire;     /* HTTPS: ciphertext not yet handed to the socket */
    crest__buf *capture; /* loopback: output goes here instead of a socket */
    bool lb_closed;      /* loopback: the connection would be closed now */
};

struct worker {
    crest__worker cw; /* the app's view */
    server *srv;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_async_t stop_async;
    uv_check_t flush_check;
    uv_timer_t drain_timer;
    conn *conns;
    unsigned nconns;
    bool draining;
    bool listening;
    int fd;
    time_t date_sec;
    char date[64];
    uint64_t req_counter;
    crest__buf log;
    char readbuf[READ_BUF_SIZE];
    bool readbuf_busy;
};

struct server {
    crest_app *app;
    worker *workers;
    int nworkers;
    atomic_uint nconns;
    uint32_t id_prefix;
    uv_loop_t main_loop;
    uv_signal_t sigterm, sigint;
    uv_signal_t sigpipe_dummy;
    bool stopping;
};

static http_parser_settings parser_settings;

/* ---- time ---- */

static const char *date_now(worker *w)
{
    time_t t = time(NULL);
    if (t != w->date_sec) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(w->date, sizeof w->date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        w->date_sec = t;
    }
    return w->date;
}

static void timer_cb(uv_timer_t *t);

static void set_deadline(conn *c, unsigned ms)
{
    uint64_t now = uv_now(&c->w->loop);
    c->deadline = now + ms;
    /* Lazy timer: re-arm only when the new deadline comes earlier. */
    if (c->timer_due == 0 || c->deadline < c->timer_due) {
        c->timer_due = c->deadline;
        uv_timer_start(&c->timer, timer_cb, ms, 0);
    }
}

/* ---- logging ---- */

static void flush_log(worker *w)
{
    size_t off = 0;
    while (off < w->log.len) {
        ssize_t n = write(2, w->log.ptr + off, w->log.len - off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            break; /* stderr gone: drop the log rather than block */
        }
        off += (size_t)n;
    }
    w->log.len = 0;
}

static void check_cb(uv_check_t *h)
{
    worker *w = h->data;
    if (w->log.len)
        flush_log(w);
}

static void access_log(worker *w, crest_req *req, int status, size_t bytes, uint64_t dur)
{
    if (!w->srv->app->access_log)
        return;
    char ts[40];
    crest__format_time(ts, sizeof ts);
    crest_json j;
    crest_json_init(&j, 0);
    /* Reuse the log buffer as the writer's storage to avoid a malloc per line. */
    j.buf = w->log.ptr;
    j.len = w->log.len;
    j.cap = w->log.cap;
    crest_json_object_begin(&j);
    crest_json_key(&j, "time");
    crest_json_str(&j, ts);
    crest_json_key(&j, "request_id");
    crest_json_str(&j, req->id);
    crest_json_key(&j, "method");
    crest_json_str(&j, req->method_text ? req->method_text : "-");
    crest_json_key(&j, "path");
    if (req->path)
        crest_json_str(&j, req->path);
    else
        crest_json_str(&j, "-");
    crest_json_key(&j, "status");
    crest_json_int(&j, status);
    crest_json_key(&j, "bytes");
    crest_json_int(&j, (int64_t)bytes);
    crest_json_key(&j, "duration_us");
    crest_json_int(&j, (int64_t)dur);
    crest_json_object_end(&j);
    w->log.ptr = j.buf;
    w->log.cap = j.cap;
    w->log.len = j.len;
    crest__buf_append(&w->log, "\n", 1);
    if (w->log.len > 64 * 1024)
        flush_log(w);
}

/* ---- connection lifecycle ---- */

static void conn_free_cb(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->pending_handles > 0)
        return;
    crest__arena_dispose(&c->arena);
    crest_json_dispose(&c->json);
    crest__buf_dispose(&c->res_headers);
    crest__buf_dispose(&c->head);
    crest__buf_dispose(&c->body);
    crest__buf_dispose(&c->in);
    crest__buf_dispose(&c->out);
    crest__buf_dispose(&c->inflight);
    crest__buf_dispose(&c->wire);
    crest__tls_free(c->tls);
    free(c);
}

static void maybe_finish_drain(worker *w);

static void conn_close(conn *c)
{
    if (c->capture) {
        c->lb_closed = true;
        return;
    }
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    worker *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    atomic_fetch_sub(&w->srv->nconns, 1);
    c->pending_handles = 2;
    uv_timer_stop(&c->timer);
    uv_close((uv_handle_t *)&c->timer, conn_free_cb);
    uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
    maybe_finish_drain(w);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    CREST_UNUSED(suggested);
    conn *c = h->data;
    worker *w = c->w;
    if (!w->readbuf_busy) {
        w->readbuf_busy = true;
        buf->base = w->readbuf;
        buf->len = sizeof w->readbuf;
    } else { /* re-entrancy is not expected from libuv, but stay safe */
        buf->base = NULL;
        buf->len = 0;
    }
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void flush(conn *c);
static void process(conn *c);

static void start_reading(conn *c)
{
    if (c->capture) {
        c->reading = true;
        return;
    }
    if (!c->reading && !uv_is_closing((uv_handle_t *)&c->tcp)) {
        if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
            c->reading = true;
    }
}

static void stop_reading(conn *c)
{
    if (c->capture) {
        c->reading = false;
        return;
    }
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = false;
    }
}

static void on_shutdown(uv_shutdown_t *r, int status)
{
    CREST_UNUSED(status);
    conn *c = r->data;
    if (status < 0)
        conn_close(c);
}

/* After the last response: shut the write side and read (dropping) for a
 * moment, so a client still sending its body sees the response instead of
 * a reset (nginx's lingering close). */
static void linger(conn *c)
{
    c->state = ST_LINGER;
    if (c->capture) {
        c->lb_closed = true;
        return;
    }
    c->linger_bytes = 0;
    c->sreq.data = c;
    if (uv_shutdown(&c->sreq, (uv_stream_t *)&c->tcp, on_shutdown)) {
        conn_close(c);
        return;
    }
    c->timer_due = 0;
    uv_timer_stop(&c->timer);
    set_deadline(c, LINGER_MS);
    start_reading(c);
}

static void on_write(uv_write_t *r, int status)
{
    conn *c = r->data;
    c->writing = false;
    c->inflight.len = 0;
    if (status < 0) {
        conn_close(c);
        return;
    }
    /* Output drained (or more queued meanwhile): write it, then go on with
     * input kept for backpressure. */
    process(c);
}

static void flush(conn *c)
{
    if (c->capture) {
        crest__buf_append(c->capture, c->out.ptr, c->out.len);
        c->out.len = 0;
        if (c->close_after && c->state != ST_HANDLING)
            linger(c);
        return;
    }
    if (c->writing || uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    crest__buf *wire = &c->out;
    if (c->tls) {
        /* Plaintext is encrypted once the handshake is done; what comes out
         * (handshake messages, records, alerts) is what the socket sends. */
        if (c->tls_ready && c->out.len) {
            if (crest__tls_write(c->tls, c->out.ptr, c->out.len)) {
                conn_close(c);
                return;
            }
            c->out.len = 0;
        }
        if (c->close_after && c->state != ST_HANDLING && c->state != ST_LINGER && c->out.len == 0)
            crest__tls_close_notify(c->tls);
        if (crest__tls_output(c->tls, &c->wire)) {
            conn_close(c);
            return;
        }
        wire = &c->wire;
    }
    if (wire->len == 0) {
        if (c->close_after && c->state != ST_HANDLING && c->state != ST_LINGER)
            linger(c);
        return;
    }
    uv_buf_t b = uv_buf_init(wire->ptr, (unsigned)wire->len);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (n > 0)
        crest__buf_consume(wire, (size_t)n);
    else if (n < 0 && n != UV_EAGAIN) {
        conn_close(c);
        return;
    }
    if (wire->len == 0) {
        if (c->close_after && c->state != ST_HANDLING)
            linger(c);
        return;
    }
    /* The rest goes through uv_write, from a buffer the socket owns meanwhile. */
    crest__buf tmp = c->inflight;
    c->inflight = *wire;
    *wire = tmp;
    wire->len = 0;
    c->writing = true;
    c->wreq.data = c;
    b = uv_buf_init(c->inflight.ptr, (unsigned)c->inflight.len);
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_write)) {
        c->writing = false;
        conn_close(c);
    }
}

/* ---- requests ---- */

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

static void begin_request(conn *c)
{
    crest__arena_reset(&c->arena);
    crest__req_reset(&c->req, &c->res);
    c->head.len = 0;
    c->body.len = 0;
    c->url_len = 0;
    c->nheaders = 0;
    c->cur_len = 0;
    c->hdr_state = 0;
    c->err_status = 0;
    c->expect_continue = false;
    c->req.peer = c->peer;
    c->req.start_us = crest__now_us();
    worker *w = c->w;
    /* "%08x%02x%06llx" of (server prefix, worker, counter), without printf. */
    char *p = c->req.id;
    p = put_hex(p, w->srv->id_prefix, 8);
    p = put_hex(p, (unsigned)w->cw.id & 0xff, 2);
    p = put_hex(p, ++w->req_counter & 0xffffffffffULL, 6);
    *p = 0;
}

static int limit_hit(http_parser *p, int status, const char *code, const char *detail)
{
    conn *c = p->data;
    c->err_status = status;
    c->err_code = code;
    c->err_detail = detail;
    http_parser_pause(p, 1);
    return 0;
}

static int on_message_begin(http_parser *p)
{
    conn *c = p->data;
    begin_request(c);
    c->state = ST_HEAD;
    set_deadline(c, c->w->srv->app->limits.header_timeout_ms);
    return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    const crest_limits *L = &c->w->srv->app->limits;
    if (c->url_len + len > L->request_line)
        return limit_hit(p, 414, "uri_too_long", "the request target is too long");
    if (crest__buf_append(&c->head, at, len))
        return limit_hit(p, 503, "out_of_memory", "the server is short of memory");
    c->url_len += len;
    return 0;
}

static int end_piece(conn *c)
{
    return crest__buf_append(&c->head, "", 1);
}

/* The head buffer holds the url, then each header name and value, each
 * NUL-terminated; hdr_state says which piece the parser is in. */
static int on_header_field(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    const crest_limits *L = &c->w->srv->app->limits;
    if (c->hdr_state != 1) {
        if (end_piece(c))
            return limit_hit(p, 503, "out_of_memory", "the server is short of memory");
        if (c->nheaders >= L->headers_count || c->nheaders >= CREST_ARRAY_LEN(c->hdr_name_off))
            return limit_hit(p, 431, "headers_too_large", "too many header fields");
        c->hdr_name_off[c->nheaders] = c->head.len;
        c->hdr_value_off[c->nheaders] = 0;
        c->nheaders++;
        c->hdr_state = 1;
        c->cur_len = 0;
    }
    c->cur_len += len;
    if (c->cur_len > L->header_line)
        return limit_hit(p, 431, "headers_too_large", "a header field is too large");
    if (c->head.len - c->url_len + len > L->headers_total)
        return limit_hit(p, 431, "headers_too_large", "the header fields are too large in total");
    if (crest__buf_append(&c->head, at, len))
        return limit_hit(p, 503, "out_of_memory", "the server is short of memory");
    return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    const crest_limits *L = &c->w->srv->app->limits;
    if (c->hdr_state != 2) {
        if (end_piece(c))
            return limit_hit(p, 503, "out_of_memory", "the server is short of memory");
        c->hdr_value_off[c->nheaders - 1] = c->head.len;
        c->hdr_state = 2;
    }
    c->cur_len += len;
    if (c->cur_len > L->header_line)
        return limit_hit(p, 431, "headers_too_large", "a header field is too large");
    if (c->head.len - c->url_len + len > L->headers_total)
        return limit_hit(p, 431, "headers_too_large", "the header fields are too large in total");
    if (crest__buf_append(&c->head, at, len))
        return limit_hit(p, 503, "out_of_memory", "the server is short of memory");
    return 0;
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
    crest__buf_append(&c->out, cont, sizeof cont - 1);
    flush(c);
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

static int on_headers_complete(http_parser *p)
{
    conn *c = p->data;
    crest_app *app = c->w->srv->app;
    if (end_piece(c)) /* terminates the url, or the last header piece */
        return limit_hit(p, 503, "out_of_memory", "the server is short of memory");
    crest_req *req = &c->req;
    req->url = c->head.ptr;
    req->url_len = c->url_len;
    req->method = method_of(p->method);
    req->method_text = http_method_str(p->method);
    req->http_major = p->http_major;
    req->http_minor = p->http_minor;
    req->headers = crest__arena_alloc(&c->arena, (c->nheaders ? c->nheaders : 1) * sizeof *req->headers);
    if (!req->headers)
        return limit_hit(p, 503, "out_of_memory", "the server is short of memory");
    bool has_cl = false, has_te = false;
    unsigned nhost = 0;
    const char *expect = NULL;
    for (unsigned i = 0; i < c->nheaders; i++) {
        crest__header *h = &req->headers[i];
        h->name = c->head.ptr + c->hdr_name_off[i];
        h->name_len = strlen(h->name);
        if (c->hdr_value_off[i]) {
            h->value = c->head.ptr + c->hdr_value_off[i];
            h->value_len = strlen(h->value);
        } else {
            h->value = "";
            h->value_len = 0;
        }
        if (!is_token(h->name, h->name_len))
            return limit_hit(p, 400, "bad_request", "a header field name is not a valid token");
        if (crest__strcaseeq(h->name, h->name_len, "host", 4))
            nhost++;
        else if (crest__strcaseeq(h->name, h->name_len, "content-length", 14))
            has_cl = true;
        else if (crest__strcaseeq(h->name, h->name_len, "transfer-encoding", 17))
            has_te = true;
        else if (crest__strcaseeq(h->name, h->name_len, "expect", 6))
            expect = h->value;
    }
    req->nheaders = c->nheaders;
    /* RFC 9112 3.2: a 1.1 request carries exactly one Host. */
    if (nhost > 1 || (nhost == 0 && p->http_major == 1 && p->http_minor >= 1))
        return limit_hit(p, 400, "bad_request",
                         nhost ? "more than one Host header field" : "an HTTP/1.1 request needs a Host header field");
    if (has_cl && has_te)
        return limit_hit(p, 400, "bad_request", "Content-Length and Transfer-Encoding together are not allowed");
    if (req->method == 0)
        return limit_hit(p, 501, "not_implemented", "this method is not supported");
    bool has_body = (p->flags & F_CHUNKED) || (p->content_length > 0 && p->content_length != ULLONG_MAX);
    if (p->content_length != ULLONG_MAX && p->content_length > app->limits.body)
        return limit_hit(p, 413, "payload_too_large", "the body is larger than the server accepts");
    if (expect) {
        if (!crest__strcaseeq(expect, strlen(expect), "100-continue", 12))
            return limit_hit(p, 417, "expectation_failed", "only Expect: 100-continue is supported");
        if (has_body && p->http_minor >= 1)
            c->expect_continue = true;
    }
    if (has_body) {
        c->state = ST_BODY;
        c->timer_due = 0; /* the body deadline may be later than the head's: re-arm */
        uv_timer_stop(&c->timer);
        set_deadline(c, app->limits.body_timeout_ms);
        if (c->expect_continue)
            queue_continue(c);
    }
    return 0;
}

static int on_body(http_parser *p, const char *at, size_t len)
{
    conn *c = p->data;
    if (c->body.len + len > c->w->srv->app->limits.body)
        return limit_hit(p, 413, "payload_too_large", "the body is larger than the server accepts");
    if (crest__buf_append(&c->body, at, len))
        return limit_hit(p, 503, "out_of_memory", "the server is short of memory");
    return 0;
}

static int on_message_complete(http_parser *p)
{
    http_parser_pause(p, 1);
    return 0;
}

static void after_response(conn *c)
{
    crest_req *req = &c->req;
    crest_res *res = &c->res;
    worker *w = c->w;
    bool keep = !c->close_after && http_should_keep_alive(&c->parser) && !w->draining && !res->close;
    size_t bytes = 0;
    int status = crest__res_final_status(req, res);
    if (crest__app_render(req, res, &c->out, date_now(w), keep, &bytes)) {
        /* Could not even render: drop the connection. */
        c->close_after = true;
    }
    uint64_t dur = crest__now_us() - req->start_us;
    crest__metrics_observe(&w->cw, req, status, dur);
    access_log(w, req, status, bytes, dur);
    if (!keep)
        c->close_after = true;
    /* Large buffers do not stay with an idle connection. */
    if (c->json.cap > 256 * 1024) {
        crest_json_dispose(&c->json);
        crest_json_init(&c->json, w->srv->app->limits.response);
    }
    if (c->body.cap > 256 * 1024)
        crest__buf_dispose(&c->body);
    c->state = c->close_after ? ST_CLOSING : ST_IDLE;
    /* Idle keep-alive time, or how long a closing client gets to read its
     * answer. The timer stays armed where it is: a later deadline is picked
     * up when it fires (set_deadline is lazy), so a busy keep-alive
     * connection touches the timer heap only every few seconds, not per
     * request. */
    set_deadline(c, c->close_after ? w->srv->app->limits.header_timeout_ms
                                   : w->srv->app->limits.keepalive_timeout_ms);
}

/* Answers an error found by the engine itself and closes after it. */
static void engine_error(conn *c, int status, const char *code, const char *detail)
{
    if (c->state == ST_IDLE)
        begin_request(c);
    if (!c->req.path) {
        /* Keep what we know of the target for the log. */
        size_t n = c->url_len < c->head.len ? c->url_len : c->head.len;
        const char *q = c->head.ptr ? memchr(c->head.ptr, '?', n) : NULL;
        if (q)
            n = (size_t)(q - c->head.ptr);
        c->req.path = c->head.ptr ? crest__arena_strndup(&c->arena, c->head.ptr, n) : NULL;
    }
    if (!c->req.method_text && c->state != ST_IDLE)
        c->req.method_text = http_method_str(c->parser.method);
    crest__res_problem(&c->res, status, code, detail);
    c->close_after = true;
    after_response(c);
    flush(c);
}

static void work_cb(uv_work_t *wk)
{
    conn *c = wk->data;
    crest__app_run_blocking(&c->req, &c->res);
}

static void after_work_cb(uv_work_t *wk, int status)
{
    conn *c = wk->data;
    if (status == UV_ECANCELED)
        crest_res_error(&c->res, 503, "shutting_down", "the server is shutting down");
    if (c->dead) {
        c->state = ST_CLOSING;
        conn_close(c);
        return;
    }
    c->state = ST_IDLE;
    after_response(c);
    process(c);
}

static void handle(conn *c)
{
    crest_req *req = &c->req;
    req->body = c->body.ptr;
    req->body_len = c->body.len;
    if (crest__app_handle(req, &c->res) == 1) {
        if (c->capture) { /* loopback: no thread pool, run it here */
            crest__app_run_blocking(req, &c->res);
            after_response(c);
            return;
        }
        c->state = ST_HANDLING;
        stop_reading(c);
        c->work.data = c;
        if (uv_queue_work(&c->w->loop, &c->work, work_cb, after_work_cb)) {
            crest_res_error(&c->res, 503, "overloaded", "the server could not schedule the request");
            c->state = ST_IDLE;
            after_response(c);
        }
        return;
    }
    after_response(c);
}

/* Parses data; returns how many bytes were consumed (less than len when the
 * connection paused for a blocking handler or is closing). */
static size_t feed(conn *c, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        if (c->state == ST_HANDLING || c->state == ST_CLOSING || c->state == ST_LINGER)
            break;
        size_t n = http_parser_execute(&c->parser, &parser_settings, data + off, len - off);
        off += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            if (c->err_status) {
                engine_error(c, c->err_status, c->err_code, c->err_detail);
                return len;
            }
            handle(c);
            if (c->out.len > c->w->srv->app->limits.output_buffer) {
                /* Backpressure: a client pipelining faster than it reads waits. */
                break;
            }
            continue;
        }
        if (e != HPE_OK) {
            int st = 400;
            const char *detail = http_errno_description(e);
            if (e == HPE_HEADER_OVERFLOW)
                st = 431;
            else if (e == HPE_INVALID_METHOD)
                st = 400;
            engine_error(c, st, st == 431 ? "headers_too_large" : "bad_request", detail);
            return len;
        }
        if (n == 0)
            break;
    }
    return off;
}

/* No more requests will be parsed on this connection. */
static bool conn_ending(const conn *c)
{
    return c->state == ST_CLOSING || c->state == ST_LINGER ||
           (!c->capture && uv_is_closing((const uv_handle_t *)&c->tcp));
}

/* Nothing can be parsed now: ending, or a blocking handler runs. */
static bool conn_waiting(const conn *c)
{
    return c->state == ST_HANDLING || conn_ending(c);
}

/* Parses the bytes kept in c->in; keeps what was not consumed. */
static void feed_pending(conn *c)
{
    crest__buf pending = c->in;
    crest__buf_init(&c->in, 0);
    size_t used = feed(c, pending.ptr, pending.len);
    if (used < pending.len && !conn_ending(c)) {
        crest__buf_consume(&pending, used);
        crest__buf_dispose(&c->in);
        c->in = pending;
    } else {
        crest__buf_dispose(&pending);
    }
}

/* Moves the connection on until it waits for something: writes what is
 * queued, parses kept input (pipelined requests held back while output was
 * over the limit), and reads again once nothing is kept. Called after every
 * event that can unblock a connection: a read, a finished write, the end
 * of a blocking handler. */
static void process(conn *c)
{
    const size_t limit = c->w->srv->app->limits.output_buffer;
    for (;;) {
        bool stuck = false; /* the parser took nothing: wait for more input */
        if (c->in.len && !conn_waiting(c) && c->out.len <= limit) {
            size_t before = c->in.len;
            feed_pending(c);
            stuck = c->in.len == before;
        }
        flush(c);
        if (conn_waiting(c) || c->close_after)
            return;
        if (!c->in.len) {
            start_reading(c);
            return;
        }
        /* Input is kept: wait for the write in flight, or for the client. */
        stop_reading(c);
        if (c->writing || stuck)
            return;
    }
}

/* Hands request bytes to the parser and keeps what it cannot take now.
 * false when the connection answered an error instead. */
static bool take_input(conn *c, const char *data, size_t len)
{
    if (c->in.len) {
        if (crest__buf_append(&c->in, data, len)) {
            engine_error(c, 413, "payload_too_large", "the request is larger than the server accepts");
            return false;
        }
        return true;
    }
    size_t used = feed(c, data, len);
    if (used < len && !conn_ending(c) && crest__buf_append(&c->in, data + used, len - used)) {
        engine_error(c, 503, "out_of_memory", "the server is short of memory");
        return false;
    }
    return true;
}

/* HTTPS input: ciphertext in, the handshake moved on, then every record
 * decrypted and parsed. The worker's read buffer is free again once the
 * ciphertext is copied into the session, so it holds the plaintext. */
static void tls_on_read(conn *c, const char *data, size_t len)
{
    worker *w = c->w;
    if (crest__tls_input(c->tls, data, len)) {
        conn_close(c);
        return;
    }
    if (!c->tls_ready) {
        switch (crest__tls_handshake(c->tls)) {
        case CREST__TLS_AGAIN:
            flush(c); /* our part of the handshake */
            return;
        case CREST__TLS_PLAIN_HTTP:
            /* Say so in plain HTTP, as nginx does, then close. */
            crest__tls_free(c->tls);
            c->tls = NULL;
            engine_error(c, 400, "https_required", "this port speaks HTTPS: plain HTTP was sent to it");
            return;
        case CREST__TLS_FAIL:
            c->state = ST_CLOSING; /* send the alert, if any, then close */
            c->close_after = true;
            flush(c);
            return;
        default:
            c->tls_ready = true;
        }
    }
    for (;;) {
        ssize_t n = crest__tls_read(c->tls, w->readbuf, sizeof w->readbuf);
        if (n == 0)
            break;
        if (n < 0) { /* close_notify or a broken stream: as at end of input */
            if (c->state == ST_HANDLING) {
                c->dead = true;
                stop_reading(c);
            } else {
                conn_close(c);
            }
            return;
        }
        if (!take_input(c, w->readbuf, (size_t)n))
            return;
        if (conn_ending(c))
            break;
    }
    process(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    conn *c = s->data;
    worker *w = c->w;
    if (buf->base == w->readbuf)
        w->readbuf_busy = false;
    if (nread == 0)
        return;
    if (nread < 0) {
        if (c->state == ST_HANDLING) {
            c->dead = true;
            stop_reading(c);
            return;
        }
        if (nread == UV_EOF && (c->state == ST_HEAD || c->state == ST_BODY) && c->state != ST_LINGER) {
            /* EOF in the middle of a request: nothing useful to answer. */
        }
        conn_close(c);
        return;
    }
    if (c->state == ST_LINGER) {
        c->linger_bytes += (size_t)nread;
        if (c->linger_bytes > LINGER_MAX_BYTES)
            conn_close(c);
        return;
    }
    if (c->state == ST_CLOSING)
        return;
    if (c->state == ST_BODY)
        set_deadline(c, w->srv->app->limits.body_timeout_ms); /* idle deadline, pushed by progress */
    if (c->tls) {
        tls_on_read(c, buf->base, (size_t)nread);
        return;
    }
    if (take_input(c, buf->base, (size_t)nread))
        process(c);
}

static void timer_cb(uv_timer_t *t)
{
    conn *c = t->data;
    uint64_t now = uv_now(&c->w->loop);
    c->timer_due = 0;
    if (now < c->deadline) {
        c->timer_due = c->deadline;
        uv_timer_start(&c->timer, timer_cb, c->deadline - now, 0);
        return;
    }
    switch (c->state) {
    case ST_HEAD:
    case ST_BODY:
        stop_reading(c);
        engine_error(c, 408, "request_timeout", "the request took too long to arrive");
        break;
    case ST_HANDLING:
        break; /* the handler's own budget applies */
    case ST_CLOSING:
        if (!c->writing)
            conn_close(c);
        else { /* a client that does not read its response: give up */
            conn_close(c);
        }
        break;
    default:
        conn_close(c);
    }
}

static conn *conn_new(worker *w)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->w = w;
    const crest_limits *L = &w->srv->app->limits;
    crest__arena_init(&c->arena, 4096, 0);
    crest_json_init(&c->json, L->response);
    crest__buf_init(&c->res_headers, 64 * 1024);
    crest__buf_init(&c->head, L->request_line + L->headers_total + 2 * 128 + 16);
    crest__buf_init(&c->body, L->body);
    crest__buf_init(&c->in, 0);
    crest__buf_init(&c->out, 0);
    crest__buf_init(&c->inflight, 0);
    crest__buf_init(&c->wire, 0);
    c->req.arena = &c->arena;
    c->req.worker = &w->cw;
    c->req.app = w->srv->app;
    c->res.arena = &c->arena;
    c->res.json = &c->json;
    c->res.headers = &c->res_headers;
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->tcp.data = c;
    c->timer.data = c;
    return c;
}

static void on_connection(uv_stream_t *server_h, int status)
{
    worker *w = server_h->data;
    if (status < 0)
        return;
    conn *c = conn_new(w);
    if (!c) {
        /* Accept and drop, or the listener would spin on the pending connection. */
        uv_tcp_t tmp;
        if (uv_tcp_init(&w->loop, &tmp) == 0) {
            uv_accept(server_h, (uv_stream_t *)&tmp);
            uv_close((uv_handle_t *)&tmp, NULL);
        }
        return;
    }
    uv_tcp_init(&w->loop, &c->tcp);
    uv_timer_init(&w->loop, &c->timer);
    if (uv_accept(server_h, (uv_stream_t *)&c->tcp)) {
        c->pending_handles = 2;
        uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
        uv_close((uv_handle_t *)&c->timer, conn_free_cb);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    struct sockaddr_storage sa;
    int salen = sizeof sa;
    snprintf(c->peer, sizeof c->peer, "-");
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&sa, &salen) == 0) {
        if (sa.ss_family == AF_INET)
            uv_ip4_name((struct sockaddr_in *)&sa, c->peer, sizeof c->peer);
        else if (sa.ss_family == AF_INET6)
            uv_ip6_name((struct sockaddr_in6 *)&sa, c->peer, sizeof c->peer);
    }
    if (w->srv->app->tls && !(c->tls = crest__tls_new(w->srv->app->tls))) {
        c->pending_handles = 2;
        uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
        uv_close((uv_handle_t *)&c->timer, conn_free_cb);
        return;
    }
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    unsigned total = atomic_fetch_add(&w->srv->nconns, 1) + 1;
    c->state = ST_IDLE;
    if ((total > w->srv->app->limits.max_connections || w->draining) && c->tls) {
        conn_close(c); /* no handshake to spend on an answer */
        return;
    }
    if (total > w->srv->app->limits.max_connections || w->draining) {
        begin_request(c);
        c->req.method_text = "-";
        c->res.retry_after = "1";
        crest__res_problem(&c->res, 503, "too_many_connections", "the server is at its connection limit");
        c->close_after = true;
        after_response(c);
        flush(c);
        return;
    }
    set_deadline(c, w->srv->app->limits.header_timeout_ms);
    start_reading(c);
}

/* ---- workers ---- */

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    CREST_UNUSED(arg);
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void maybe_finish_drain(worker *w)
{
    if (!w->draining || w->nconns > 0)
        return;
    uv_timer_stop(&w->drain_timer);
    uv_stop(&w->loop);
}

static void drain_timeout_cb(uv_timer_t *t)
{
    worker *w = t->data;
    /* In-flight requests had their chance: close what is left. */
    conn *c = w->conns;
    while (c) {
        conn *next = c->next;
        if (c->state != ST_HANDLING)
            conn_close(c);
        c = next;
    }
    if (w->nconns == 0)
        uv_stop(&w->loop);
}

static void stop_async_cb(uv_async_t *a)
{
    worker *w = a->data;
    if (w->draining)
        return;
    w->draining = true;
    if (w->listening) {
        uv_close((uv_handle_t *)&w->listener, NULL);
        w->listening = false;
    }
    conn *c = w->conns;
    while (c) {
        conn *next = c->next;
        if (c->state == ST_IDLE && !c->writing && c->out.len == 0 && c->in.len == 0)
            conn_close(c);
        else if (c->state == ST_LINGER)
            conn_close(c);
        else
            c->close_after = true; /* the response in flight says Connection: close */
        c = next;
    }
    uv_timer_start(&w->drain_timer, drain_timeout_cb, w->srv->app->limits.drain_timeout_ms, 0);
    maybe_finish_drain(w);
}

static void worker_main(void *arg)
{
    worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    flush_log(w);
    uv_walk(&w->loop, close_walk_cb, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
}

/* A TCP socket (SO_REUSEADDR, and SO_REUSEPORT when asked) bound to
 * host:port into *fd_out: 0, or an error code with err set. */
static int bound_socket(const char *host, int port, bool reuseport, int *fd_out, crest_error *err)
{
    struct sockaddr_storage ss;
    int fam;
    if (!strcmp(host, "localhost"))
        host = "127.0.0.1";
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0)
        fam = AF_INET;
    else if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0)
        fam = AF_INET6;
    else
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "listen: '%s' is not an IP address", host);
    int fd = socket(fam, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return crest__error_set(err, CREST_EIO, NULL, 0, "socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one)) {
        close(fd);
        return crest__error_set(err, CREST_EIO, NULL, 0, "SO_REUSEPORT: %s", strerror(errno));
    }
    socklen_t sl = fam == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (bind(fd, (struct sockaddr *)&ss, sl)) {
        int e = errno;
        close(fd);
        return crest__error_set(err, CREST_EIO, NULL, 0, "cannot listen on %s:%d: %s%s", host, port, strerror(e),
                                e == EADDRINUSE ? " (another program listens there)" : "");
    }
    *fd_out = fd;
    return 0;
}

/* Claims host:port before the workers' SO_REUSEPORT listeners share it:
 * a bind without SO_REUSEPORT fails while any other program listens there,
 * even one that set SO_REUSEPORT itself (say, a second crest), which the
 * workers' binds alone would silently join. Port 0 becomes the free port
 * the kernel picks, in *port. */
static int claim_port(const char *host, int *port, crest_error *err)
{
    int fd, rc = bound_socket(host, *port, false, &fd, err);
    if (rc)
        return rc;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0)
        *port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                              : ((struct sockaddr_in6 *)&ss)->sin6_port);
    close(fd);
    return 0;
}

static int open_listener(const char *host, int port, int *fd_out, crest_error *err)
{
    int fd, rc = bound_socket(host, port, true, &fd, err);
    if (rc)
        return rc;
    if (listen(fd, 1024)) {
        int e = errno;
        close(fd);
        return crest__error_set(err, CREST_EIO, NULL, 0, "listen: %s", strerror(e));
    }
    *fd_out = fd;
    return 0;
}

static int worker_init(server *srv, worker *w, int id, int port, crest_error *err)
{
    w->srv = srv;
    w->cw.id = id;
    w->cw.app = srv->app;
    w->cw.engine = w;
    w->fd = -1;
    crest__buf_init(&w->log, 0);
    int rc = uv_loop_init(&w->loop);
    if (rc)
        return crest__error_set(err, CREST_EIO, NULL, 0, "uv_loop_init: %s", uv_strerror(rc));
    w->stop_async.data = w;
    uv_async_init(&w->loop, &w->stop_async, stop_async_cb);
    uv_check_init(&w->loop, &w->flush_check);
    w->flush_check.data = w;
    uv_check_start(&w->flush_check, check_cb);
    uv_unref((uv_handle_t *)&w->flush_check);
    uv_timer_init(&w->loop, &w->drain_timer);
    w->drain_timer.data = w;
    rc = open_listener(srv->app->listen_host, port, &w->fd, err);
    if (rc)
        return rc;
    uv_tcp_init(&w->loop, &w->listener);
    w->listener.data = w;
    if ((rc = uv_tcp_open(&w->listener, w->fd)) || (rc = uv_listen((uv_stream_t *)&w->listener, 1024, on_connection)))
        return crest__error_set(err, CREST_EIO, NULL, 0, "listen: %s", uv_strerror(rc));
    w->listening = true;
    return crest__app_worker_init(srv->app, &w->cw, err);
}

static void on_signal(uv_signal_t *s, int signum)
{
    server *srv = s->data;
    CREST_UNUSED(signum);
    if (srv->stopping)
        return;
    srv->stopping = true;
    char ts[40];
    crest__format_time(ts, sizeof ts);
    fprintf(stderr, "{\"time\":\"%s\",\"event\":\"draining\",\"signal\":%d}\n", ts, signum);
    for (int i = 0; i < srv->nworkers; i++)
        uv_async_send(&srv->workers[i].stop_async);
    uv_close((uv_handle_t *)&srv->sigterm, NULL);
    uv_close((uv_handle_t *)&srv->sigint, NULL);
}

static void init_parser_settings(void)
{
    http_parser_settings *ps = &parser_settings;
    memset(ps, 0, sizeof *ps);
    ps->on_message_begin = on_message_begin;
    ps->on_url = on_url;
    ps->on_header_field = on_header_field;
    ps->on_header_value = on_header_value;
    ps->on_headers_complete = on_headers_complete;
    ps->on_body = on_body;
    ps->on_message_complete = on_message_complete;
}

static int uv_serve(crest_app *app, crest_error *err)
{
    init_parser_settings();
    signal(SIGPIPE, SIG_IGN);
    /* Blocking handlers and REST writes run on libuv's pool; writes waiting
     * for a shared fsync hold a thread each, so more threads mean larger
     * commit groups. libuv reads this once, at its first queued work. */
    setenv("UV_THREADPOOL_SIZE", "16", 0);

    server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return CREST_ENOMEM;
    srv->app = app;
    int n = app->workers > 0 ? app->workers : (int)uv_available_parallelism();
    if (n < 1)
        n = 1;
    srv->nworkers = n;
    srv->workers = calloc((size_t)n, sizeof(worker));
    if (!srv->workers) {
        free(srv);
        return CREST_ENOMEM;
    }
    uint64_t seed = crest__now_us() ^ ((uint64_t)getpid() << 16);
    srv->id_prefix = (uint32_t)(seed * 2654435761u);
    int started = 0;
    int port = app->listen_port; /* 0: an ephemeral port, the same for every worker */
    int rc = claim_port(app->listen_host, &port, err);
    for (int i = 0; i < n && !rc; i++)
        rc = worker_init(srv, &srv->workers[i], i, port, err);
    if (!rc) {
        uv_loop_init(&srv->main_loop);
        srv->sigterm.data = srv->sigint.data = srv;
        uv_signal_init(&srv->main_loop, &srv->sigterm);
        uv_signal_init(&srv->main_loop, &srv->sigint);
        uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
        uv_signal_start(&srv->sigint, on_signal, SIGINT);
        app->srv = (struct crest__server *)srv;
        fprintf(stderr, "{\"event\":\"listening\",\"address\":\"%s:%d\",\"workers\":%d,\"version\":\"%s\"}\n",
                app->listen_host, port, n, CREST_VERSION);
        for (int i = 0; i < n; i++) {
            if (uv_thread_create(&srv->workers[i].thread, worker_main, &srv->workers[i]))
                break;
            started++;
        }
        if (started == n)
            uv_run(&srv->main_loop, UV_RUN_DEFAULT);
        else
            on_signal(&srv->sigterm, SIGTERM);
        for (int i = 0; i < started; i++)
            uv_thread_join(&srv->workers[i].thread);
        uv_walk(&srv->main_loop, close_walk_cb, NULL);
        uv_run(&srv->main_loop, UV_RUN_DEFAULT);
        uv_loop_close(&srv->main_loop);
        app->srv = NULL;
        fprintf(stderr, "{\"event\":\"stopped\"}\n");
    }
    for (int i = 0; i < n; i++) {
        worker *w = &srv->workers[i];
        if (!w->srv)
            continue;
        if (!started) {
            uv_walk(&w->loop, close_walk_cb, NULL);
            uv_run(&w->loop, UV_RUN_DEFAULT);
        }
        uv_loop_close(&w->loop);
        crest__app_worker_dispose(&w->cw);
        crest__buf_dispose(&w->log);
    }
    free(srv->workers);
    free(srv);
    return rc;
}

/* ---- loopback: one connection without a socket (tests, fuzzing) ---- */

struct crest__loopback {
    server srv;
    worker w;
    conn *c;
    crest__buf capture;
};

crest__loopback *crest__loopback_new(crest_app *app, crest_error *err)
{
    init_parser_settings();
    if (crest__app_add_builtins(app, err) || crest__app_prepare(app, false, err))
        return NULL;
    crest__loopback *lb = calloc(1, sizeof *lb);
    if (!lb)
        return NULL;
    lb->srv.app = app;
    lb->srv.nworkers = 1;
    lb->srv.id_prefix = 0x10000000u;
    worker *w = &lb->w;
    w->srv = &lb->srv;
    w->cw.app = app;
    w->cw.engine = w;
    crest__buf_init(&w->log, 0);
    crest__buf_init(&lb->capture, 0);
    if (uv_loop_init(&w->loop)) {
        free(lb);
        return NULL;
    }
    if (crest__app_worker_init(app, &w->cw, err) || !(lb->c = conn_new(w))) {
        crest__app_worker_dispose(&w->cw);
        uv_loop_close(&w->loop);
        free(lb);
        return NULL;
    }
    uv_timer_init(&w->loop, &lb->c->timer);
    lb->c->capture = &lb->capture;
    lb->c->state = ST_IDLE;
    return lb;
}

int crest__loopback_feed(crest__loopback *lb, const char *data, size_t len)
{
    conn *c = lb->c;
    if (c->lb_closed)
        return -1;
    if (crest__buf_append(&c->in, data, len))
        return CREST_ENOMEM;
    process(c);
    lb->w.log.len = 0; /* the access log of a loopback goes nowhere */
    return 0;
}

const char *crest__loopback_output(crest__loopback *lb, size_t *len)
{
    *len = lb->capture.len;
    return lb->capture.ptr ? lb->capture.ptr : "";
}

void crest__loopback_clear_output(crest__loopback *lb) { lb->capture.len = 0; }
bool crest__loopback_closed(const crest__loopback *lb) { return lb->c->lb_closed; }

void crest__loopback_free(crest__loopback *lb)
{
    if (!lb)
        return;
    conn *c = lb->c;
    c->pending_handles = 1;
    uv_close((uv_handle_t *)&c->timer, conn_free_cb);
    uv_run(&lb->w.loop, UV_RUN_DEFAULT);
    uv_loop_close(&lb->w.loop);
    crest__app_worker_dispose(&lb->w.cw);
    crest__buf_dispose(&lb->w.log);
    crest__buf_dispose(&lb->capture);
    free(lb);
}

static unsigned uv_open_connections(const crest_app *app)
{
    const server *srv = (const server *)app->srv;
    return srv ? atomic_load_explicit(&srv->nconns, memory_order_relaxed) : 0;
}

const crest__engine crest__engine_uv = {
    .name = "libuv+http_parser",
    .serve = uv_serve,
    .open_connections = uv_open_connections,
};
