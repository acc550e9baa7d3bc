/* output.c — a connection's answers and its output side.
 *
 * An answer is rendered into the connection's output queue: owned bytes
 * (the head, a JSON body) with shared bodies spliced in by reference —
 * bytes that live as long as the app (the docs page's files, the OpenAPI
 * document) are never copied per connection. All output produced while
 * handling one read leaves with one write (uv_try_write of every piece,
 * then uv_write for what is left, from buffers the socket owns meanwhile).
 *
 * What a connection holds is bounded: no response is produced while its
 * unsent output (queued and in flight) is over limits.output_buffer, so a
 * client that pipelines without reading holds at most that plus one
 * response. With HTTPS, plaintext is encrypted in steps of TLS_STEP bytes as
 * the socket drains, so the ciphertext is bounded too. Buffers are freed
 * once sent rather than kept for the next request, and after a peak of
 * large frees the worker gives free memory back to the system. */
#include <errno.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "engine.h"

#define SHARE_MIN 16384           /* shared bodies smaller than this are copied */
#define TLS_STEP (128 * 1024)     /* plaintext encrypted at a time */
#define LARGE_BUF (64 * 1024)     /* freeing one counts toward a trim */
#define TRIM_AFTER (4u << 20)     /* bytes freed before memory is given back */
#define TRIM_DELAY_MS 1000
#define PIECE_MAX (1u << 30)      /* uv_buf_t lengths are unsigned int */

/* ---- memory given back after a peak ---- */

static void trim_cb(uv_timer_t *t)
{
    worker *w = t->data;
    atomic_store_explicit(&w->srv->released, 0, memory_order_relaxed);
    atomic_store(&w->srv->trim_armed, false);
#ifdef __GLIBC__
    /* glibc keeps freed memory in its arenas (and raises its mmap threshold
     * after large frees), so a peak of slow readers would stay resident. */
    malloc_trim(0);
#endif
}

void crest__worker_released(worker *w, size_t bytes)
{
    server *srv = w->srv;
    size_t total = atomic_fetch_add_explicit(&srv->released, bytes, memory_order_relaxed) + bytes;
    if (total < TRIM_AFTER || atomic_load_explicit(&srv->trim_armed, memory_order_relaxed) ||
        uv_is_closing((uv_handle_t *)&w->trim_timer) || atomic_exchange(&srv->trim_armed, true))
        return;
    if (uv_timer_start(&w->trim_timer, trim_cb, TRIM_DELAY_MS, 0) != 0)
        atomic_store(&srv->trim_armed, false);
}

/* ---- the output queue ---- */

void crest__outq_init(outq *q)
{
    memset(q, 0, sizeof *q);
    crest__buf_init(&q->b, 0);
}

static void outq_clear(outq *q)
{
    q->b.len = 0;
    q->nrefs = 0;
    q->refs_len = 0;
    q->done = 0;
}

void crest__outq_release(outq *q, worker *w)
{
    if (q->b.cap >= LARGE_BUF)
        crest__worker_released(w, q->b.cap);
    crest__buf_dispose(&q->b);
    outq_clear(q);
}

/* Pieces of q from q->done on, at most 2 * OUT_REFS + 1. */
static unsigned outq_pieces(const outq *q, uv_buf_t *iov)
{
    size_t skip = q->done, at = 0;
    unsigned n = 0;
    for (unsigned i = 0; i <= q->nrefs; i++) {
        size_t end = i < q->nrefs ? q->refs[i].at : q->b.len;
        const char *p[2] = {q->b.ptr + at, i < q->nrefs ? q->refs[i].ptr : NULL};
        size_t len[2] = {end - at, i < q->nrefs ? q->refs[i].len : 0};
        at = end;
        for (int k = 0; k < 2; k++) {
            if (skip >= len[k]) {
                skip -= len[k];
                continue;
            }
            size_t take = len[k] - skip;
            if (take > PIECE_MAX) { /* the rest goes with the next write */
                iov[n++] = uv_buf_init((char *)p[k] + skip, PIECE_MAX);
                return n;
            }
            iov[n++] = uv_buf_init((char *)p[k] + skip, (unsigned)take);
            skip = 0;
        }
    }
    return n;
}

static void outq_advance(outq *q, size_t n)
{
    q->done += n;
    if (q->done >= q->b.len + q->refs_len)
        outq_clear(q);
}

/* Appends bytes that outlive the connection: by reference when large. */
static int outq_share(outq *q, const char *p, size_t n)
{
    if (n < SHARE_MIN || q->nrefs == OUT_REFS)
        return crest__buf_append(&q->b, p, n);
    q->refs[q->nrefs++] = (outref){.at = q->b.len, .ptr = p, .len = n};
    q->refs_len += n;
    return 0;
}

size_t crest__conn_unsent(const conn *c)
{
    return crest__outq_left(&c->out) + crest__outq_left(&c->inflight) + crest__outq_left(&c->wire);
}

bool crest__conn_output_full(const conn *c)
{
    return c->out.nrefs == OUT_REFS || crest__conn_unsent(c) > conn_limits(c)->output_buffer;
}

/* A shared body borrows the memory of the answer's app: the connection
 * holds that app until nothing of it is left to send (a reload frees an app
 * once nothing holds it). A body of another app than the one held is copied. */
static int share_body(conn *c, crest_app *app, const char *p, size_t n)
{
    if (c->shared_app && c->shared_app != app)
        return crest__buf_append(&c->out.b, p, n);
    unsigned had = c->out.nrefs;
    int rc = outq_share(&c->out, p, n);
    if (!rc && c->out.nrefs > had && !c->shared_app) {
        c->shared_app = app;
        crest__worker_hold_app(c->w, app);
    }
    return rc;
}

/* Lets the app of shared bodies go once no queue borrows from it. */
static void drop_shared_app(conn *c)
{
    if (c->shared_app && !c->out.nrefs && !c->inflight.nrefs) {
        crest__worker_drop_app(c->w, c->shared_app);
        c->shared_app = NULL;
    }
}

void crest__conn_release_output(conn *c)
{
    if (c->writing)
        return;
    if (!crest__outq_left(&c->out))
        crest__outq_release(&c->out, c->w);
    if (!crest__outq_left(&c->wire))
        crest__outq_release(&c->wire, c->w);
    crest__outq_release(&c->inflight, c->w);
    drop_shared_app(c);
}

void crest__conn_dispose_output(conn *c)
{
    crest__outq_release(&c->out, c->w);
    crest__outq_release(&c->inflight, c->w);
    crest__outq_release(&c->wire, c->w);
    drop_shared_app(c);
}

/* ---- the access log ---- */

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

void crest__worker_flush_log(worker *w)
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

static void access_log(worker *w, crest_req *req, int status, size_t bytes, uint64_t dur)
{
    if (!w->cw.app->access_log)
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
        crest__worker_flush_log(w);
}

void crest__conn_account(conn *c, int status, size_t bytes)
{
    crest_req *req = &c->rs->req;
    uint64_t dur = crest__now_us() - req->start_us;
    crest__metrics_observe(&c->w->cw, req, status, dur);
    access_log(c->w, req, status, bytes, dur);
}

/* ---- answers ---- */

void crest__conn_answer(conn *c)
{
    reqstate *rs = c->rs;
    crest_req *req = &rs->req;
    crest_res *res = &rs->res;
    worker *w = c->w;
    if (res->stream && !res->is_error && req->method == CREST_GET && crest__res_final_status(req, res) == 200) {
        /* An event stream: its head now, the request kept for its body
         * (HEAD gets the head alone, below). */
        size_t before = c->out.b.len;
        crest__str none;
        if (w->draining || c->close_after) {
            res->stream = NULL;
            crest__res_fail_static(res, CREST__E_SHUTTING_DOWN, NULL);
        } else if (crest__app_render(req, res, &c->out.b, date_now(w), false, NULL, &none) == 0) {
            crest__stream_open(c);
            return;
        } else {
            c->out.b.len = before;
            res->stream = NULL;
            crest__res_fail_static(res, CREST__E_OUT_OF_MEMORY, NULL);
        }
    }
    bool keep = !c->close_after && http_should_keep_alive(&c->parser) && !w->draining && !res->close;
    size_t bytes = 0;
    int status = crest__res_final_status(req, res);
    crest__str shared = {0};
    if (crest__app_render(req, res, &c->out.b, date_now(w), keep, &bytes, &shared) ||
        (shared.len && share_body(c, req->app, shared.ptr, shared.len))) {
        /* Could not even render: drop the connection. */
        c->close_after = true;
    }
    uint64_t dur = crest__now_us() - req->start_us;
    crest__metrics_observe(&w->cw, req, status, dur);
    access_log(w, req, status, bytes, dur);
    if (!keep)
        c->close_after = true;
    crest__request_end(c); /* the state goes back to the pool: an idle connection holds none */
    c->state = c->close_after ? ST_CLOSING : ST_IDLE;
    /* Idle keep-alive time, or how long a closing client gets to read its
     * answer. The timer stays armed where it is: a later deadline is picked
     * up when it fires (set_deadline is lazy), so a busy keep-alive
     * connection touches the timer heap only every few seconds, not per
     * request. */
    crest__conn_set_deadline(c, c->close_after ? conn_limits(c)->header_timeout_ms
                                               : conn_limits(c)->keepalive_timeout_ms);
}

void crest__conn_engine_error(conn *c, crest__ecode e, const char *detail)
{
    if (!c->rs && crest__request_begin(c)) {
        crest__conn_close(c); /* no memory to answer with */
        return;
    }
    reqstate *rs = c->rs;
    if (!rs->req.path) {
        /* Keep what we know of the target for the log. */
        size_t n = rs->url_len < rs->head.len ? rs->url_len : rs->head.len;
        const char *q = rs->head.ptr ? memchr(rs->head.ptr, '?', n) : NULL;
        if (q)
            n = (size_t)(q - rs->head.ptr);
        rs->req.path = rs->head.ptr ? crest__arena_strndup(&rs->arena, rs->head.ptr, n) : NULL;
    }
    if (!rs->req.method_text && c->state != ST_IDLE)
        rs->req.method_text = http_method_str(c->parser.method);
    crest__res_fail_static(&rs->res, e, detail);
    c->close_after = true;
    crest__conn_answer(c);
    crest__conn_flush(c);
}

/* ---- writing ---- */

static void on_shutdown(uv_shutdown_t *r, int status)
{
    conn *c = r->data;
    if (status < 0)
        crest__conn_close(c);
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
        crest__conn_close(c);
        return;
    }
    crest__conn_reset_deadline(c, LINGER_MS);
    crest__conn_start_reading(c);
}

static void on_write(uv_write_t *r, int status)
{
    conn *c = r->data;
    c->writing = false;
    crest__outq_release(&c->inflight, c->w); /* sent: nothing of it is kept */
    if (status < 0) {
        crest__conn_close(c);
        return;
    }
    /* Output drained (or more queued meanwhile): write it, then go on with
     * input kept for backpressure. */
    crest__conn_process(c);
}

/* HTTPS: encrypts the next step of plaintext into c->wire (only when little
 * ciphertext waits, so neither grows past a step), with close_notify after
 * the last byte of a closing connection. -1 when the connection was closed. */
static int tls_step(conn *c)
{
    if (c->tls_ready && crest__outq_left(&c->out) && crest__outq_left(&c->wire) < TLS_STEP) {
        uv_buf_t iov[2 * OUT_REFS + 1];
        unsigned n = outq_pieces(&c->out, iov);
        size_t took = 0;
        for (unsigned i = 0; i < n && took < TLS_STEP; i++) {
            size_t k = iov[i].len < TLS_STEP - took ? iov[i].len : TLS_STEP - took;
            if (crest__tls_write(c->tls, iov[i].base, k)) {
                crest__conn_close(c);
                return -1;
            }
            took += k;
        }
        outq_advance(&c->out, took);
    }
    if (c->close_after && c->state != ST_HANDLING && c->state != ST_LINGER && !crest__outq_left(&c->out))
        crest__tls_close_notify(c->tls);
    if (crest__tls_output(c->tls, &c->wire.b)) {
        crest__conn_close(c);
        return -1;
    }
    return 0;
}

/* Loopback: everything goes to the capture buffer at once. */
static void capture(conn *c)
{
    uv_buf_t iov[2 * OUT_REFS + 1];
    while (crest__outq_left(&c->out)) {
        unsigned n = outq_pieces(&c->out, iov);
        size_t took = 0;
        for (unsigned i = 0; i < n; i++) {
            crest__buf_append(c->capture, iov[i].base, iov[i].len);
            took += iov[i].len;
        }
        outq_advance(&c->out, took);
    }
    if (c->close_after && c->state != ST_HANDLING)
        linger(c);
}

void crest__conn_flush(conn *c)
{
    if (c->capture) {
        capture(c);
        return;
    }
    if (c->writing || uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    for (;;) {
        outq *q = &c->out;
        if (c->tls) {
            /* Plaintext is encrypted once the handshake is done; what comes
             * out (handshake messages, records, alerts) is what the socket
             * sends. */
            if (tls_step(c))
                return;
            q = &c->wire;
        }
        if (!crest__outq_left(q)) {
            if (c->close_after && c->state != ST_HANDLING && c->state != ST_LINGER)
                linger(c);
            return;
        }
        uv_buf_t iov[2 * OUT_REFS + 1];
        unsigned n = outq_pieces(q, iov);
        int wr = uv_try_write((uv_stream_t *)&c->tcp, iov, n);
        if (wr > 0)
            outq_advance(q, (size_t)wr);
        else if (wr < 0 && wr != UV_EAGAIN) {
            crest__conn_close(c);
            return;
        }
        if (!crest__outq_left(q))
            continue; /* all taken: encrypt more, or done */
        /* The rest through uv_write, from buffers the socket owns meanwhile;
         * new output goes to a fresh queue. */
        outq tmp = c->inflight;
        c->inflight = *q;
        *q = tmp;
        n = outq_pieces(&c->inflight, iov);
        c->writing = true;
        c->wreq.data = c;
        if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, iov, n, on_write)) {
            c->writing = false;
            crest__conn_close(c);
        }
        return;
    }
}
