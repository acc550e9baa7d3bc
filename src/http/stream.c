/* stream.c — answers that stay open: event streams (the change feed).
 *
 * After its head, a streaming connection keeps its request (the owner's
 * state lives in the request's arena) and writes what the owner gives it,
 * each write one chunk (HTTP/1.1) or raw bytes (HTTP/1.0, delimited by the
 * close). The request's deadline and the idle timeouts do not apply: the
 * connection's timer writes the owner's heartbeat after heartbeat_ms of
 * silence instead, which keeps proxies from closing it. Input is read and
 * dropped (a client leaving is seen at once). What a client leaves unread
 * is bounded: a write that would leave more than max_unsent bytes queued
 * (the socket's send buffer is set to that size too, so the kernel holds
 * little more) is refused, and the owner drops the subscriber; a write
 * with nothing queued goes out whatever its size (one batch of large
 * rows), so a client that reads always moves on. */
#include <stdio.h>

#include "engine.h"

#define STREAM_INPUT_MAX (64 * 1024) /* bytes a streaming client may send before it is closed */

static uint64_t now_ms(const conn *c) { return uv_now(&c->w->loop); }

/* Queues n bytes as one chunk (or as they are) and writes. */
static int put(conn *c, const char *p, size_t n)
{
    crest__buf *b = &c->out.b;
    int rc = 0;
    if (c->chunked)
        rc |= crest__buf_appendf(b, "%zx\r\n", n);
    rc |= crest__buf_append(b, p, n);
    if (c->chunked)
        rc |= crest__buf_append(b, "\r\n", 2);
    if (rc)
        return -1;
    c->stream->sent += n;
    /* The heartbeat is due heartbeat_ms after the last output. */
    c->deadline = now_ms(c) + c->stream->heartbeat_ms;
    crest__conn_flush(c);
    return 0;
}

void crest__stream_open(conn *c)
{
    crest__stream *s = c->rs->res.stream;
    crest_req *req = &c->rs->req;
    c->stream = s;
    s->conn = c;
    s->sent = 0;
    c->state = ST_STREAM;
    c->chunked = req->http_major == 1 && req->http_minor >= 1;
    c->linger_bytes = 0;
    if (!c->capture && !c->tls) {
        /* What the kernel holds for a client that does not read: about the
         * same bound as ours (Linux doubles the value). */
        int sz = s->max_unsent < 4096 ? 4096 : s->max_unsent > (1u << 30) ? (1 << 30) : (int)s->max_unsent;
        uv_send_buffer_size((uv_handle_t *)&c->tcp, &sz);
    }
    crest__conn_reset_deadline(c, s->heartbeat_ms);
    crest__conn_flush(c);
    crest__conn_start_reading(c);
    if (s->opened)
        s->opened(s);
}

int crest__stream_write(crest__stream *s, const char *p, size_t n)
{
    conn *c = s->conn;
    if (!c || c->state != ST_STREAM || c->stream_broken)
        return -1;
    size_t unsent = crest__conn_unsent(c);
    if (unsent && unsent + n > s->max_unsent)
        return -1;
    /* A write that fails closes the connection, which would free the
     * request under the owner's feet: the close waits for its drop. */
    c->stream_writing = true;
    int rc = n ? put(c, p, n) : 0;
    c->stream_writing = false;
    return rc || c->stream_broken ? -1 : 0;
}

void crest__conn_stream_end(conn *c, crest__stream_end why)
{
    crest__stream *s = c->stream;
    if (!s)
        return;
    c->stream = NULL;
    s->conn = NULL;
    bool held = s->closed && s->closed(s, why);
    crest__conn_account(c, 200, s->sent);
    if (held) { /* the owner's statement still runs: the request goes with it (crest__stream_release) */
        reqstate *rs = c->rs;
        c->rs = NULL;
        rs->c = NULL;
        s->held = rs;
    } else {
        crest__request_end(c);
    }
    if (why != CREST__STREAM_DRAINED)
        return;
    /* The end of the body, then the close. */
    if (c->chunked)
        crest__buf_append(&c->out.b, "0\r\n\r\n", 5);
    c->close_after = true;
    c->state = ST_CLOSING;
    crest__conn_reset_deadline(c, conn_limits(c)->header_timeout_ms);
    crest__conn_flush(c);
}

void crest__stream_drop(crest__stream *s)
{
    conn *c = s->conn;
    if (!c)
        return;
    if (c->stream_broken) { /* the socket failed during a write: the client is gone */
        c->stream_broken = false;
        crest__conn_close(c);
        return;
    }
    char ts[40];
    crest__format_time(ts, sizeof ts);
    fprintf(stderr, "{\"time\":\"%s\",\"event\":\"stream_dropped\",\"request_id\":\"%s\",\"unsent\":%zu,\"limit\":%zu}\n",
            ts, c->rs->req.id, crest__conn_unsent(c), s->max_unsent);
    crest__conn_stream_end(c, CREST__STREAM_DROPPED);
    c->state = ST_CLOSING;
    crest__conn_close(c);
}

void crest__stream_tick(conn *c)
{
    crest__stream *s = c->stream;
    if (!s)
        return;
    uint64_t now = now_ms(c);
    if (now >= c->deadline && s->heartbeat) {
        size_t n = strlen(s->heartbeat);
        if (crest__stream_write(s, s->heartbeat, n)) {
            crest__stream_drop(s);
            return;
        }
    }
    crest__conn_set_deadline(c, (unsigned)(c->deadline > now ? c->deadline - now : s->heartbeat_ms));
}

/* Input of a streaming client: read and dropped, within a bound. */
bool crest__stream_input(conn *c, size_t n)
{
    c->linger_bytes += n;
    return c->linger_bytes <= STREAM_INPUT_MAX;
}

void crest__stream_release(crest__stream *s)
{
    reqstate *rs = s->held;
    if (!rs)
        return;
    s->held = NULL;
    crest__reqstate_release(rs->w, rs); /* (s may live in its arena: not touched after) */
}
