/* uv_engine.c — the HTTP/1.1 engine: libuv for sockets, timers and the thread
 * pool, http_parser for the protocol. One event loop per worker thread, each
 * with its own SO_REUSEPORT listener; workers share the connection counter
 * (for max_connections), the app, and libuv's thread pool, where blocking
 * handlers run.
 *
 * This file holds a connection's life: accept, read, parse, timers, close,
 * and each request through the app, blocking handlers and their deadline.
 * request.c has the request state and the head's checks; output.c the
 * answers and the write side (see engine.h).
 *
 * A connection processes one request at a time: the parser is paused at the
 * end of each message, the request is answered (appended to the output
 * queue) and parsing resumes, so pipelined responses leave in order. A
 * blocking handler pauses the connection until the thread pool is done, or
 * until its deadline: then the client gets a 504, the connection closes and
 * the thread's late answer is dropped with its request state (a REST write
 * already running is waited for: its statements have the same deadline and
 * roll back, so its own answer says whether it wrote). Every limit
 * in DESIGN.md is enforced here or in the callbacks, before the bytes it
 * guards are kept. With HTTPS (tls.c) the socket carries ciphertext: reads
 * are decrypted before the parser sees them and the output is encrypted
 * just before it is written, so everything between (parsing, limits,
 * timers, pipelining, backpressure) is the same. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"

/* ---- timers ---- */

static void timer_cb(uv_timer_t *t);

void crest__conn_set_deadline(conn *c, unsigned ms)
{
    uint64_t now = uv_now(&c->w->loop);
    c->deadline = now + ms;
    /* Lazy timer: re-arm only when the new deadline comes earlier. */
    if (c->timer_due == 0 || c->deadline < c->timer_due) {
        c->timer_due = c->deadline;
        uv_timer_start(&c->timer, timer_cb, ms, 0);
    }
}

void crest__conn_reset_deadline(conn *c, unsigned ms)
{
    c->timer_due = 0; /* the new deadline may be later than the timer: re-arm */
    uv_timer_stop(&c->timer);
    crest__conn_set_deadline(c, ms);
}

static void check_cb(uv_check_t *h)
{
    worker *w = h->data;
    if (w->log.len)
        crest__worker_flush_log(w);
}

/* ---- connection lifecycle ---- */

static void conn_free_cb(uv_handle_t *h)
{
    conn *c = h->data;
    if (--c->pending_handles > 0)
        return;
    crest__request_end(c);
    crest__buf_dispose(&c->in);
    crest__conn_dispose_output(c);
    crest__tls_free(c->tls);
    free(c);
}

void crest__conn_free_handles(conn *c, int n)
{
    c->pending_handles = n;
    if (n == 2)
        uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
    uv_close((uv_handle_t *)&c->timer, conn_free_cb);
}


void crest__conn_close(conn *c)
{
    if (c->capture) {
        c->lb_closed = true;
        return;
    }
    if (uv_is_closing((uv_handle_t *)&c->tcp))
        return;
    if (c->state == ST_STREAM && c->stream_writing) {
        c->stream_broken = true; /* the write fails: its owner drops the stream (then this runs again) */
        return;
    }
    if (c->state == ST_STREAM)
        crest__conn_stream_end(c, CREST__STREAM_GONE); /* its owner lets go before the request is freed */
    /* A blocking handler still running keeps its request state: it is
     * freed when the thread is done. */
    if (c->state == ST_HANDLING)
        crest__request_abandon(c);
    else
        crest__request_end(c);
    worker *w = c->w;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->nconns--;
    atomic_fetch_sub(&w->srv->nconns, 1);
    uv_timer_stop(&c->timer);
    crest__conn_free_handles(c, 2);
    crest__worker_drain_check(w);
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

void crest__conn_start_reading(conn *c)
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

void crest__conn_stop_reading(conn *c)
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

/* ---- requests through the app ---- */

static void work_cb(uv_work_t *wk)
{
    reqstate *rs = wk->data;
    int queued = RUN_QUEUED;
    if (atomic_compare_exchange_strong(&rs->run, &queued, RUN_STARTED))
        crest__app_run_blocking(&rs->req, &rs->res);
    /* else abandoned before it started: the client has its 504 already */
}

static void after_work_cb(uv_work_t *wk, int status)
{
    reqstate *rs = wk->data;
    conn *c = rs->c;
    if (!c) {
        /* Abandoned (past its deadline, or the connection closed): the late
         * answer goes nowhere; the state is freed now that the thread no
         * longer uses it. */
        crest__reqstate_release(rs->w, rs);
        return;
    }
    if (status == UV_ECANCELED)
        crest__res_fail(&rs->res, CREST__E_SHUTTING_DOWN, NULL);
    c->state = ST_IDLE;
    crest__conn_answer(c);
    crest__conn_process(c);
}

/* A blocking handler is past its budget: the client gets a 504 now and the
 * connection closes after it. The handler's thread cannot be stopped, so
 * the request state it uses is left to it (and freed when it is done); the
 * answer is made in a fresh one, from what the request had before the
 * handler started (fields the handler never writes). */
static void handler_timeout(conn *c)
{
    reqstate *old = c->rs;
    if (old->req.deferred) {
        if (old->req.store_pending)
            return; /* a statement runs: it stops at the same deadline, and its answer comes then */
    } else {
        int queued = RUN_QUEUED;
        if (!atomic_compare_exchange_strong(&old->run, &queued, RUN_ABANDONED) && old->req.ep &&
            old->req.ep->bounded_writes)
            return; /* running, and its statements stop at the deadline and roll back: its own answer (a 504
                       when it was interrupted) tells the client whether the write happened */
    }
    crest__request_abandon(c);
    if (crest__request_begin(c)) {
        crest__conn_close(c);
        return;
    }
    if (c->rs->req.app != old->req.app) { /* a reload came meanwhile: the 504 is the old app's */
        crest__worker_drop_app(c->w, c->rs->req.app);
        c->rs->req.app = old->req.app;
        crest__worker_hold_app(c->w, c->rs->req.app);
    }
    crest__req_take_over(&c->rs->req, &old->req);
    crest__app_timeout(&c->rs->req, &c->rs->res);
    c->close_after = true;
    crest__conn_answer(c);
    crest__conn_flush(c);
}

/* ---- deferred answers and work moved off the loop (the app's hooks) ---- */

typedef struct offload_req {
    uv_work_t w;
    void (*work)(void *);
    void (*after)(void *, bool);
    void *ud;
} offload_req;

static void offload_work_cb(uv_work_t *w)
{
    offload_req *o = w->data;
    o->work(o->ud);
}

static void offload_after_cb(uv_work_t *w, int status)
{
    offload_req *o = w->data;
    o->after(o->ud, status == UV_ECANCELED);
    free(o);
}

static int engine_offload(crest__worker *cw, void (*work)(void *), void (*after)(void *, bool), void *ud)
{
    worker *w = cw->engine;
    offload_req *o = malloc(sizeof *o);
    if (!o)
        return CREST_ENOMEM;
    *o = (offload_req){.work = work, .after = after, .ud = ud};
    o->w.data = o;
    if (uv_queue_work(&w->loop, &o->w, offload_work_cb, offload_after_cb)) {
        free(o);
        return CREST_EIO;
    }
    return 0;
}

/* A deferred answer is ready (crest_res_finish, on this worker's loop). */
static void engine_resume(crest__worker *cw, crest_req *req)
{
    reqstate *rs = (reqstate *)(void *)((char *)req - offsetof(reqstate, req));
    conn *c = rs->c;
    if (!c) { /* abandoned (a 504 went out, or the client left): nobody to tell */
        if (rs->cancelling) /* inside crest__request_abandon's cancel: it frees the state after */
            rs->finished_in_cancel = true;
        else
            crest__reqstate_release((worker *)cw->engine, rs);
        return;
    }
    c->state = ST_IDLE;
    crest__conn_answer(c);
    if (!c->capture)
        crest__conn_process(c);
}

void crest__worker_set_hooks(worker *w, bool offload)
{
    w->cw.offload = offload ? engine_offload : NULL;
    w->cw.resume = engine_resume;
}

static void handle(conn *c)
{
    reqstate *rs = c->rs;
    crest_req *req = &rs->req;
    req->body = rs->body.ptr;
    req->body_len = rs->body.len;
    int h = crest__app_handle(req, &rs->res);
    if (h == 2) { /* deferred: crest_res_finish resumes the connection */
        c->state = ST_HANDLING;
        /* Plain HTTP goes on reading meanwhile, so that a client that
         * leaves is seen (its statements are cancelled); bytes that come
         * in the meantime are kept and reading stops (on_read). */
        if (c->tls || c->in.len)
            crest__conn_stop_reading(c);
        crest__conn_set_deadline(c, crest__req_budget_ms(req));
        return;
    }
    if (h == 1) {
        if (c->capture) { /* loopback: no thread pool, run it here */
            crest__app_run_blocking(req, &rs->res);
            crest__conn_answer(c);
            return;
        }
        c->state = ST_HANDLING;
        crest__conn_stop_reading(c);
        atomic_store(&rs->run, RUN_QUEUED);
        if (uv_queue_work(&c->w->loop, &rs->work, work_cb, after_work_cb)) {
            crest__res_fail(&rs->res, CREST__E_OVERLOADED, NULL);
            c->state = ST_IDLE;
            crest__conn_answer(c);
            return;
        }
        /* The handler's budget, from now (time waiting for a pool thread
         * counts): past it, handler_timeout. */
        crest__conn_set_deadline(c, crest__req_budget_ms(req));
        return;
    }
    crest__conn_answer(c);
}

/* Parses data; returns how many bytes were consumed (less than len when the
 * connection paused for a blocking handler, holds as much output as it may,
 * or is closing). */
static size_t feed(conn *c, const char *data, size_t len)
{
    size_t off = 0;
    while (off < len) {
        if (c->state == ST_HANDLING || c->state == ST_CLOSING || c->state == ST_LINGER || c->state == ST_STREAM)
            break;
        size_t n = http_parser_execute(&c->parser, &crest__parser_settings, data + off, len - off);
        off += n;
        enum http_errno e = HTTP_PARSER_ERRNO(&c->parser);
        if (e == HPE_PAUSED) {
            http_parser_pause(&c->parser, 0);
            reqstate *rs = c->rs;
            if (rs->has_err) {
                crest__conn_engine_error(c, rs->err, rs->err_detail);
                return len;
            }
            handle(c);
            if (crest__conn_output_full(c))
                break; /* backpressure: a client pipelining faster than it reads waits */
            continue;
        }
        if (e != HPE_OK) {
            crest__conn_engine_error(c, e == HPE_HEADER_OVERFLOW ? CREST__E_HEADERS_TOO_LARGE : CREST__E_BAD_REQUEST,
                                     http_errno_description(e));
            return len;
        }
        if (n == 0)
            break;
    }
    return off;
}

bool crest__conn_ending(const conn *c)
{
    return c->state == ST_CLOSING || c->state == ST_LINGER ||
           (!c->capture && uv_is_closing((const uv_handle_t *)&c->tcp));
}

/* Nothing can be parsed now: ending, or a blocking handler runs. */
static bool conn_waiting(const conn *c)
{
    return c->state == ST_HANDLING || c->state == ST_STREAM || crest__conn_ending(c);
}

/* Parses the bytes kept in c->in; keeps what was not consumed. */
static void feed_pending(conn *c)
{
    crest__buf pending = c->in;
    crest__buf_init(&c->in, 0);
    size_t used = feed(c, pending.ptr, pending.len);
    if (used < pending.len && !crest__conn_ending(c)) {
        crest__buf_consume(&pending, used);
        crest__buf_dispose(&c->in);
        c->in = pending;
    } else {
        crest__buf_dispose(&pending);
    }
}

/* Moves the connection on until it waits for something: writes what is
 * queued, parses kept input (pipelined requests held back while the output
 * was full), and reads again once nothing is kept. Called after every event
 * that can unblock a connection: a read, a finished write, the end of a
 * blocking handler. */
void crest__conn_process(conn *c)
{
    for (;;) {
        bool stuck = false; /* the parser took nothing: wait for more input */
        if (c->in.len && !conn_waiting(c) && !crest__conn_output_full(c)) {
            size_t before = c->in.len;
            feed_pending(c);
            stuck = c->in.len == before;
        }
        crest__conn_flush(c);
        if (conn_waiting(c) || c->close_after)
            return;
        if (!c->in.len) {
            /* Waiting for the client: keep no buffer that holds nothing. */
            crest__conn_release_output(c);
            crest__conn_start_reading(c);
            return;
        }
        /* Input is kept: wait for the write in flight, or for the client. */
        crest__conn_stop_reading(c);
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
            crest__conn_engine_error(c, CREST__E_PAYLOAD_TOO_LARGE, "the request is larger than the server accepts");
            return false;
        }
        return true;
    }
    size_t used = feed(c, data, len);
    if (used < len && !crest__conn_ending(c) && crest__buf_append(&c->in, data + used, len - used)) {
        crest__conn_engine_error(c, CREST__E_OUT_OF_MEMORY, NULL);
        return false;
    }
    return true;
}

/* The peer is gone (end of input, a reset, close_notify): close, dropping
 * the answer of a handler still running. */
static void peer_gone(conn *c)
{
    crest__conn_close(c);
}

/* HTTPS input: ciphertext in, the handshake moved on, then every record
 * decrypted and parsed. The worker's read buffer is free again once the
 * ciphertext is copied into the session, so it holds the plaintext. */
static void tls_on_read(conn *c, const char *data, size_t len)
{
    worker *w = c->w;
    if (crest__tls_input(c->tls, data, len)) {
        crest__conn_close(c);
        return;
    }
    if (!c->tls_ready) {
        switch (crest__tls_handshake(c->tls)) {
        case CREST__TLS_AGAIN:
            crest__conn_flush(c); /* our part of the handshake */
            return;
        case CREST__TLS_PLAIN_HTTP:
            /* Say so in plain HTTP, as nginx does, then close. */
            crest__tls_free(c->tls);
            c->tls = NULL;
            crest__conn_engine_error(c, CREST__E_HTTPS_REQUIRED, NULL);
            return;
        case CREST__TLS_FAIL:
            c->state = ST_CLOSING; /* send the alert, if any, then close */
            c->close_after = true;
            crest__conn_flush(c);
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
            peer_gone(c);
            return;
        }
        if (!take_input(c, w->readbuf, (size_t)n))
            return;
        if (crest__conn_ending(c))
            break;
    }
    crest__conn_process(c);
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
        peer_gone(c);
        return;
    }
    if (c->state == ST_LINGER) {
        c->linger_bytes += (size_t)nread;
        if (c->linger_bytes > LINGER_MAX_BYTES)
            crest__conn_close(c);
        return;
    }
    if (c->state == ST_CLOSING)
        return;
    if (c->state == ST_STREAM) { /* nothing more is parsed: dropped, within a bound */
        if (!crest__stream_input(c, (size_t)nread))
            crest__conn_close(c);
        return;
    }
    if (c->state == ST_BODY)
        crest__request_body_progress(c);
    if (c->tls) {
        tls_on_read(c, buf->base, (size_t)nread);
        return;
    }
    if (take_input(c, buf->base, (size_t)nread))
        crest__conn_process(c);
    if (c->state == ST_HANDLING && c->in.len) /* a deferred answer's pipelined bytes: one read kept at most */
        crest__conn_stop_reading(c);
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
        crest__conn_stop_reading(c);
        crest__conn_engine_error(c, CREST__E_REQUEST_TIMEOUT, NULL);
        break;
    case ST_BODY:
        crest__conn_stop_reading(c);
        crest__conn_engine_error(c, CREST__E_REQUEST_TIMEOUT, "the request body took too long to arrive");
        break;
    case ST_HANDLING:
        handler_timeout(c);
        break;
    case ST_STREAM:
        crest__stream_tick(c);
        break;
    default:
        /* idle past keep-alive, a closing client that does not read its
         * answer, or the end of a lingering close */
        crest__conn_close(c);
    }
}

conn *crest__conn_new(worker *w)
{
    conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->w = w;
    crest__buf_init(&c->in, 0);
    crest__outq_init(&c->out);
    crest__outq_init(&c->inflight);
    crest__outq_init(&c->wire);
    http_parser_init(&c->parser, HTTP_REQUEST);
    c->parser.data = c;
    c->tcp.data = c;
    c->timer.data = c;
    c->state = ST_IDLE;
    return c;
}

static void on_connection(uv_stream_t *server_h, int status)
{
    worker *w = server_h->data;
    if (status < 0)
        return;
    conn *c = crest__conn_new(w);
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
        crest__conn_free_handles(c, 2);
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
    if (w->cw.app->tls && !(c->tls = crest__tls_new(w->cw.app->tls))) {
        crest__conn_free_handles(c, 2);
        return;
    }
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->nconns++;
    unsigned total = atomic_fetch_add(&w->srv->nconns, 1) + 1;
    if ((total > w->cw.app->limits.max_connections || w->draining) && c->tls) {
        crest__conn_close(c); /* no handshake to spend on an answer */
        return;
    }
    if (total > w->cw.app->limits.max_connections || w->draining) {
        if (crest__request_begin(c)) {
            crest__conn_close(c);
            return;
        }
        c->rs->req.method_text = "-";
        c->rs->res.retry_after = "1";
        crest__res_fail_static(&c->rs->res, CREST__E_TOO_MANY_CONNECTIONS, NULL);
        c->close_after = true;
        crest__conn_answer(c);
        crest__conn_flush(c);
        return;
    }
    crest__conn_set_deadline(c, w->cw.app->limits.header_timeout_ms);
    crest__conn_start_reading(c);
}

/* ---- workers ---- */

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    CREST_UNUSED(arg);
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* A request its client left may still wait for its statement: the store
 * cancelled it, and the answer comes back within the store's own bounds
 * (PostgreSQL: a second cancel after 1 s, the connection dropped 4 s
 * later). Then its state is freed on this loop. */
#define DRAIN_GRACE_MS 6000

void crest__worker_drain_check(worker *w)
{
    if (!w->draining || w->nconns > 0 || w->rs_live > 0)
        return;
    uv_timer_stop(&w->drain_timer);
    uv_stop(&w->loop);
}

static void drain_timeout_cb(uv_timer_t *t)
{
    worker *w = t->data;
    if (w->drain_forced) { /* (a state still in use after the grace is left behind) */
        uv_stop(&w->loop);
        return;
    }
    /* In-flight requests had their chance: close what is left. A blocking
     * handler still running keeps its request state until it returns (the
     * loop runs until then, see worker_main). */
    conn *c = w->conns;
    while (c) {
        conn *next = c->next;
        crest__conn_close(c);
        c = next;
    }
    w->drain_forced = true;
    uv_timer_start(&w->drain_timer, drain_timeout_cb, DRAIN_GRACE_MS, 0);
    crest__worker_drain_check(w);
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
        if (c->state == ST_IDLE && !c->writing && crest__conn_unsent(c) == 0 && c->in.len == 0)
            crest__conn_close(c);
        else if (c->state == ST_STREAM)
            crest__conn_stream_end(c, CREST__STREAM_DRAINED); /* the body ends, then the connection */
        else if (c->state == ST_LINGER)
            crest__conn_close(c);
        else
            c->close_after = true; /* the response in flight says Connection: close */
        c = next;
    }
    uv_timer_start(&w->drain_timer, drain_timeout_cb, w->cw.app->limits.drain_timeout_ms, 0);
    crest__worker_drain_check(w);
}

void crest__worker_init_timers(worker *w)
{
    uv_timer_init(&w->loop, &w->drain_timer);
    w->drain_timer.data = w;
    uv_timer_init(&w->loop, &w->trim_timer);
    w->trim_timer.data = w;
    uv_unref((uv_handle_t *)&w->trim_timer);
}

/* ---- hot reload: switching the workers to a new app ---- */

/* The worker no longer uses app (a reload replaced it, and its last
 * request is done): the last worker to let go has the main thread free it. */
static void release_app(server *srv, crest_app *app)
{
    if (atomic_fetch_sub_explicit(&app->engine_users, 1, memory_order_acq_rel) == 1)
        uv_async_send(&srv->retire_async);
}

void crest__worker_hold_app(worker *w, crest_app *app)
{
    if (app == w->cw.app) {
        w->cur_holds++;
        return;
    }
    for (unsigned i = 0; i < w->nretiring; i++)
        if (w->retiring[i].app == app) {
            w->retiring[i].holds++;
            return;
        }
}

void crest__worker_drop_app(worker *w, crest_app *app)
{
    if (!app)
        return;
    if (app == w->cw.app) {
        w->cur_holds--;
        return;
    }
    for (unsigned i = 0; i < w->nretiring; i++)
        if (w->retiring[i].app == app) {
            if (--w->retiring[i].holds == 0) {
                w->retiring[i] = w->retiring[--w->nretiring];
                release_app(w->srv, app);
            }
            return;
        }
}

/* On the worker's loop: new requests (and keep-alive connections at their
 * next request) get the app the main thread made; requests in flight
 * finish on the one they began with, which is let go after the last. */
static void reload_async_cb(uv_async_t *a)
{
    worker *w = a->data;
    crest_app *next = atomic_exchange_explicit(&w->next_app, NULL, memory_order_acq_rel);
    if (!next)
        return;
    crest_app *old = w->cw.app;
    server *srv = w->srv;
    if (w->cur_holds && w->nretiring == w->capretiring) {
        unsigned cap = w->capretiring ? 2 * w->capretiring : 4;
        struct held_app *r = realloc(w->retiring, cap * sizeof *r);
        if (!r) { /* no memory to track the old app's requests: switch later (the next reload) */
            crest_app *none = NULL;
            if (!atomic_compare_exchange_strong(&w->next_app, &none, next))
                release_app(srv, next); /* a newer one came meanwhile */
            goto answered;
        }
        w->retiring = r;
        w->capretiring = cap;
    }
    crest__app_worker_switch(&w->cw, next);
    if (w->cur_holds)
        w->retiring[w->nretiring++] = (struct held_app){old, w->cur_holds};
    else
        release_app(srv, old);
    w->cur_holds = 0;
answered: /* (the main thread waits for every worker's answer, switched or not) */
    pthread_mutex_lock(&srv->switch_lock);
    if (--srv->switch_pending <= 0)
        pthread_cond_signal(&srv->switched);
    pthread_mutex_unlock(&srv->switch_lock);
}

/* Waits (at most 5 s: a worker's loop is never blocked that long) until
 * every worker has switched, so that the log line means it: every request
 * from then on gets the new app. */
static void wait_switched(server *srv)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += 5;
    pthread_mutex_lock(&srv->switch_lock);
    while (srv->switch_pending > 0)
        if (pthread_cond_timedwait(&srv->switched, &srv->switch_lock, &until))
            break;
    pthread_mutex_unlock(&srv->switch_lock);
}

/* On the main thread: frees the replaced apps no worker uses any more (the
 * first app stays: its caller frees it); at the end (all), every one. */
static void free_retired(server *srv, bool all)
{
    unsigned k = 0;
    for (unsigned i = 0; i < srv->nretired; i++) {
        crest_app *a = srv->retired[i];
        if (all || atomic_load_explicit(&a->engine_users, memory_order_acquire) == 0) {
            if (a != srv->base)
                crest_app_free(a);
        } else {
            srv->retired[k++] = a;
        }
    }
    srv->nretired = k;
}

static void retire_async_cb(uv_async_t *a) { free_retired(a->data, false); }

/* Every worker to next (the main thread's view first); returns once they
 * all switched. */
static void switch_workers(server *srv, crest_app *next)
{
    atomic_store(&next->engine_users, srv->nworkers);
    srv->retired[srv->nretired++] = srv->app;
    srv->app = next;
    pthread_mutex_lock(&srv->switch_lock);
    srv->switch_pending = srv->nworkers;
    pthread_mutex_unlock(&srv->switch_lock);
    for (int i = 0; i < srv->nworkers; i++) {
        worker *w = &srv->workers[i];
        crest_app *skipped = atomic_exchange_explicit(&w->next_app, next, memory_order_acq_rel);
        if (skipped) /* an earlier reload this worker never switched to: it never will */
            release_app(srv, skipped);
        uv_async_send(&w->reload_async);
    }
    wait_switched(srv);
}

/* SIGHUP: the app file read again and checked here, off the workers'
 * loops; when good, every worker switches to it (reload_async_cb). One log
 * line either way. */
static void on_sighup(uv_signal_t *s, int signum)
{
    server *srv = s->data;
    CREST_UNUSED(signum);
    if (srv->stopping)
        return;
    crest_app **r = realloc(srv->retired, (srv->nretired + 1) * sizeof *r);
    crest_app *next = NULL;
    char *line = NULL;
    int rc = r ? crest__app_reload(srv->base, srv->app, &next, &line) : CREST_ENOMEM;
    if (r)
        srv->retired = r;
    if (!rc)
        switch_workers(srv, next);
    if (line)
        fprintf(stderr, "%s\n", line);
    else
        fprintf(stderr, "{\"event\":\"%s\"}\n", rc ? "reload_failed" : "reloaded");
    free(line);
    free_retired(srv, false);
}

static void worker_main(void *arg)
{
    worker *w = arg;
    uv_run(&w->loop, UV_RUN_DEFAULT);
    crest__worker_flush_log(w);
    /* Every handle closes; the loop then runs until the blocking handlers
     * still on the thread pool return (their answers are dropped). */
    uv_walk(&w->loop, close_walk_cb, NULL);
    uv_run(&w->loop, UV_RUN_DEFAULT);
    crest__reqstate_pool_free(w);
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
    w->cw.loop = &w->loop;
    crest__worker_set_hooks(w, true);
    w->fd = -1;
    crest__buf_init(&w->log, 0);
    int rc = uv_loop_init(&w->loop);
    if (rc)
        return crest__error_set(err, CREST_EIO, NULL, 0, "uv_loop_init: %s", uv_strerror(rc));
    w->stop_async.data = w;
    uv_async_init(&w->loop, &w->stop_async, stop_async_cb);
    w->reload_async.data = w;
    uv_async_init(&w->loop, &w->reload_async, reload_async_cb);
    uv_unref((uv_handle_t *)&w->reload_async);
    uv_check_init(&w->loop, &w->flush_check);
    w->flush_check.data = w;
    uv_check_start(&w->flush_check, check_cb);
    uv_unref((uv_handle_t *)&w->flush_check);
    crest__worker_init_timers(w);
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
    uv_close((uv_handle_t *)&srv->sighup, NULL);
}

static int uv_serve(crest_app *app, crest_error *err)
{
    crest__parser_settings_init();
    signal(SIGPIPE, SIG_IGN);
    /* Blocking handlers and REST writes run on libuv's pool; writes waiting
     * for a shared fsync hold a thread each, so more threads mean larger
     * commit groups. libuv reads this once, at its first queued work. */
    setenv("UV_THREADPOOL_SIZE", "16", 0);

    server *srv = calloc(1, sizeof *srv);
    if (!srv)
        return CREST_ENOMEM;
    srv->app = srv->base = app;
    pthread_mutex_init(&srv->switch_lock, NULL);
    pthread_cond_init(&srv->switched, NULL);
    int n = app->workers > 0 ? app->workers : (int)uv_available_parallelism();
    if (n < 1)
        n = 1;
    srv->nworkers = n;
    srv->workers = calloc((size_t)n, sizeof(worker));
    if (!srv->workers) {
        pthread_cond_destroy(&srv->switched);
        pthread_mutex_destroy(&srv->switch_lock);
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
    if (!rc)
        rc = crest__pid_file_write(app, err);
    if (!rc) {
        atomic_store(&app->engine_users, n);
        uv_loop_init(&srv->main_loop);
        srv->sigterm.data = srv->sigint.data = srv->sighup.data = srv->retire_async.data = srv;
        uv_signal_init(&srv->main_loop, &srv->sigterm);
        uv_signal_init(&srv->main_loop, &srv->sigint);
        uv_signal_init(&srv->main_loop, &srv->sighup);
        uv_signal_start(&srv->sigterm, on_signal, SIGTERM);
        uv_signal_start(&srv->sigint, on_signal, SIGINT);
        uv_signal_start(&srv->sighup, on_sighup, SIGHUP);
        uv_async_init(&srv->main_loop, &srv->retire_async, retire_async_cb);
        uv_unref((uv_handle_t *)&srv->retire_async); /* the loop ends with the signals' handles */
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
        crest__pid_file_remove(app);
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
        free(w->retiring);
    }
    /* Every app a reload made is freed now that no worker runs (the first
     * is the caller's). */
    free_retired(srv, true);
    if (srv->app != app)
        crest_app_free(srv->app);
    free(srv->retired);
    pthread_cond_destroy(&srv->switched);
    pthread_mutex_destroy(&srv->switch_lock);
    free(srv->workers);
    free(srv);
    return rc;
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
