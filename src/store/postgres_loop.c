/* postgres_loop.c — the PostgreSQL store on a worker's event loop. Each
 * worker owns a pool of connections (pool_size) driven without blocking:
 * libpq in non-blocking pipeline mode, one uv_poll per socket, PQflush
 * until the output is out, PQconsumeInput / PQisBusy / PQgetResult when
 * the socket is readable (as h2o's TechEmpower client and Kore do).
 *
 * A request's session takes a connection at its first statement and holds
 * it until sess_end. Each statement goes as one round trip, one pipeline
 * segment ending in a sync: `BEGIN [READ ONLY]` when the request has no
 * transaction yet, `SET LOCAL statement_timeout` for what is left of its
 * deadline, the statement (prepared on that connection the first time,
 * under a name kept by text and parameter types), and for a statement that
 * writes, `COMMIT`: a write's completion runs only once it is committed. A
 * read-only transaction stays open for the request's next reads (a list's
 * count and page see one snapshot) and is ended by the request's last read
 * (CREST__QF_LAST: its COMMIT in the same segment, one round trip), or else
 * when the session is. A C
 * handler's own transaction (its BEGIN through crest_query, flagged by
 * src/req/session.c) is left to it: its statements go unwrapped, each under
 * a savepoint of crest's (a failure undoes that statement only, as on
 * SQLite), and one never ended is rolled back with the session.
 *
 * Waiting: a session that finds no idle connection waits in the worker's
 * queue (queue_max long) for acquire_timeout_ms, then fails as UNAVAILABLE
 * (503 with Retry-After); a full queue, or a pool whose connections are
 * all down, fails at once. A broken connection fails what it carried, is
 * never handed out again, and is reconnected with a backoff (capped at
 * 32 s). crest's own timer backs the server's statement_timeout: past the
 * deadline it sends a cancel request (from the thread pool: libpq's cancel
 * blocks), and drops the connection if even that is not answered. A
 * statement a schema change invalidated (26000, 0A000) is prepared again
 * and sent once more when it opened its transaction. A statement whose
 * segment was its whole transaction and lost to a concurrent one (40001,
 * 40P01) is sent again after a pause (on the server: pg_sleep before the
 * statement), up to CREST__CONFLICT_RETRIES times. Each worker
 * counts its pool for /metrics (postgres_pool.c), each session the
 * statements it sends (send_stmt; crest's own commands are not counted).
 *
 * This file is the sessions' side: taking a connection, the worker's queue,
 * the worker itself. postgres_lconn.c keeps each connection up,
 * postgres_segment.c sends the segments and reads their results
 * (postgres_loop.h). A worker with change feed subscribers also keeps one
 * more connection outside the pool, listening (postgres_listen.c). */
#include <stdlib.h>
#include <string.h>

#include "postgres_loop.h"

/* ---- counting for /metrics ---- */

static pg_counter *gauge_of(crest__store_worker *w, int state)
{
    switch (state) {
    case L_DOWN:
        return &w->counts.down;
    case L_CONNECTING:
        return &w->counts.connecting;
    case L_IDLE:
        return &w->counts.idle;
    default: /* owned, or finishing its last owner's work */
        return &w->counts.in_use;
    }
}

void crest__pg_set_state(pg_lconn *lc, int state)
{
    if (!lc->listener) {
        crest__pg_count(gauge_of(lc->w, lc->state), -1);
        crest__pg_count(gauge_of(lc->w, state), 1);
    }
    lc->state = state;
}

/* ---- failures ---- */

static const crest__dberr *unavailable(crest__sess *ss, const char *why)
{
    crest__dberr *e = crest__arena_calloc(ss->cfg.arena, 1, sizeof *e);
    static crest__dberr oom = {.kind = CREST__DBERR_NOMEM};
    if (!e)
        return &oom;
    e->kind = CREST__DBERR_UNAVAILABLE;
    e->detail = e->message = why;
    return e;
}

/* Runs a statement's completion: its rows, or its failure. */
void crest__pg_complete(pg_call *call, crest__rows *rows, const crest__dberr *err)
{
    call->ss->inflight--;
    call->cb(call->ud, rows, rows ? NULL : err);
}

void crest__pg_fail_call(pg_call *call, crest__dberr_kind kind, const char *why)
{
    crest__sess *ss = call->ss;
    const crest__dberr *e = unavailable(ss, why);
    if (e->kind == CREST__DBERR_UNAVAILABLE && kind != CREST__DBERR_UNAVAILABLE)
        ((crest__dberr *)e)->kind = kind;
    if (kind == CREST__DBERR_DEADLINE)
        ss->timed_out = true;
    crest__pg_complete(call, NULL, e);
}

/* ---- the worker's queue ---- */

static void queue_remove(crest__store_worker *w, crest__sess *ss)
{
    if (ss->wprev)
        ss->wprev->wnext = ss->wnext;
    else
        w->qhead = ss->wnext;
    if (ss->wnext)
        ss->wnext->wprev = ss->wprev;
    else
        w->qtail = ss->wprev;
    ss->wnext = ss->wprev = NULL;
    w->qlen--;
    crest__pg_count(&w->counts.queued, -1);
}

/* Fails every statement a session waits to send. The list is taken off
 * first and ss not read again: a completion may end the request, and its
 * arena holds ss (a session waits for one statement at a time). */
static void fail_waiting(crest__sess *ss, crest__dberr_kind kind, const char *why)
{
    pg_call *c = ss->waiting;
    ss->waiting = NULL;
    while (c) {
        pg_call *next = c->next;
        crest__pg_fail_call(c, kind, why);
        c = next;
    }
}

bool crest__pg_pool_down(const crest__store_worker *w)
{
    for (unsigned i = 0; i < w->nconns; i++)
        if (w->conns[i].state != L_DOWN)
            return false;
    return true;
}

/* Every waiting session fails (the pool is down). */
void crest__pg_fail_queue(crest__store_worker *w, const char *why)
{
    while (w->qhead) {
        crest__sess *ss = w->qhead;
        queue_remove(w, ss);
        fail_waiting(ss, CREST__DBERR_UNAVAILABLE, why);
    }
    uv_timer_stop(&w->qtimer);
}

/* When a waiting session gives up: its acquire timeout, or its deadline
 * when that comes first. */
static uint64_t wait_end(const crest__store_worker *w, const crest__sess *ss)
{
    uint64_t end = ss->wait_since + (uint64_t)w->acquire_ms * 1000;
    return ss->cfg.deadline_us && ss->cfg.deadline_us < end ? ss->cfg.deadline_us : end;
}

static void qtimer_cb(uv_timer_t *t)
{
    crest__store_worker *w = t->data;
    uint64_t now = crest__now_us(), next = 0;
    /* Every session whose wait is over fails (as unavailable: past its
     * deadline, as that); the others wait on. */
    for (crest__sess *ss = w->qhead, *nx; ss; ss = nx) {
        nx = ss->wnext;
        uint64_t end = wait_end(w, ss);
        if (now >= end) {
            queue_remove(w, ss);
            crest__pg_count(&w->counts.acquire_timeouts, 1);
            bool deadline = ss->cfg.deadline_us && now >= ss->cfg.deadline_us;
            fail_waiting(ss, deadline ? CREST__DBERR_DEADLINE : CREST__DBERR_UNAVAILABLE,
                         "no database connection came free in time");
        } else if (!next || end < next) {
            next = end;
        }
    }
    if (next)
        uv_timer_start(&w->qtimer, qtimer_cb, (next - now) / 1000 + 1, 0);
}

/* lc's ops are all answered and nobody holds it: it serves the queue. */
void crest__pg_release(pg_lconn *lc)
{
    crest__pg_set_state(lc, L_IDLE);
    uv_timer_stop(&lc->timer);
    lc->cancel_sent = 0;
    crest__pg_serve_queue(lc->w);
}

/* Gives lc to ss and sends what ss waits to send. */
static void own(pg_lconn *lc, crest__sess *ss)
{
    crest__pg_set_state(lc, L_OWNED);
    lc->owner = ss;
    ss->lc = lc;
    ss->txn = PG_TXN_NONE;
    crest__pg_send_calls(lc);
}

static pg_lconn *idle_conn(crest__store_worker *w)
{
    for (unsigned i = 0; i < w->nconns; i++)
        if (w->conns[i].state == L_IDLE)
            return &w->conns[i];
    return NULL;
}

void crest__pg_serve_queue(crest__store_worker *w)
{
    pg_lconn *lc;
    while (w->qhead && (lc = idle_conn(w))) {
        crest__sess *ss = w->qhead;
        queue_remove(w, ss);
        crest__pg_count_wait(&w->counts, crest__now_us() - ss->wait_since);
        own(lc, ss);
    }
    if (!w->qhead)
        uv_timer_stop(&w->qtimer);
}

/* ---- sessions ---- */

crest__store_worker *crest__pg_loop_worker(crest__store_worker *w) { return w && w->loop ? w : NULL; }

int crest__pg_loop_query(crest__sess *ss, const crest__query *q, crest__query_cb cb, void *ud)
{
    crest__store_worker *w = ss->w;
    pg_call *call = crest__arena_calloc(ss->cfg.arena, 1, sizeof *call);
    if (!call)
        return -1;
    *call = (pg_call){.ss = ss, .cb = cb, .ud = ud, .len = q->len, .flags = q->flags, .max_rows = q->max_rows};
    ss->inflight++;
    if (atomic_load(&ss->cancelled)) {
        crest__pg_fail_call(call, CREST__DBERR_UNAVAILABLE, "the request was cancelled");
        return 0;
    }
    if (ss->cfg.deadline_us && crest__now_us() >= ss->cfg.deadline_us) {
        crest__pg_fail_call(call, CREST__DBERR_DEADLINE, NULL);
        return 0;
    }
    if (!(call->sql = crest__arena_strndup(ss->cfg.arena, q->sql, q->len)) ||
        crest__pg_params_of(ss->cfg.arena, q, &call->p)) {
        ss->inflight--;
        return -1;
    }
    /* After the statements it already waits to send. */
    pg_call **tail = &ss->waiting;
    while (*tail)
        tail = &(*tail)->next;
    *tail = call;
    if (ss->lc) {
        crest__pg_send_calls(ss->lc);
        return 0;
    }
    if (ss->waiting != call) /* already queued */
        return 0;
    pg_lconn *lc = idle_conn(w);
    if (lc) {
        crest__pg_count_wait(&w->counts, 0);
        own(lc, ss);
        return 0;
    }
    if (crest__pg_pool_down(w)) {
        fail_waiting(ss, CREST__DBERR_UNAVAILABLE, "the database cannot be reached");
        return 0;
    }
    if (w->qlen >= w->queue_max) {
        crest__pg_count(&w->counts.queue_full, 1);
        fail_waiting(ss, CREST__DBERR_UNAVAILABLE, "too many requests wait for a database connection");
        return 0;
    }
    ss->wait_since = crest__now_us();
    ss->wprev = w->qtail;
    ss->wnext = NULL;
    if (w->qtail)
        w->qtail->wnext = ss;
    else
        w->qhead = ss;
    w->qtail = ss;
    w->qlen++;
    crest__pg_count(&w->counts.queued, 1);
    /* (the timer fires at the soonest end of a wait) */
    uint64_t end = wait_end(w, ss), now = crest__now_us();
    uint64_t due = uv_is_active((uv_handle_t *)&w->qtimer) ? uv_timer_get_due_in(&w->qtimer) : UINT64_MAX;
    if ((end - now) / 1000 + 1 < due)
        uv_timer_start(&w->qtimer, qtimer_cb, end > now ? (end - now) / 1000 + 1 : 0, 0);
    return 0;
}

void crest__pg_loop_end(crest__sess *ss)
{
    crest__store_worker *w = ss->w;
    if (ss->wprev || ss->wnext || w->qhead == ss)
        queue_remove(w, ss);
    ss->waiting = NULL; /* (none: a session ends once its statements completed) */
    pg_lconn *lc = ss->lc;
    if (!lc)
        return;
    ss->lc = NULL;
    lc->owner = NULL;
    crest__pg_set_state(lc, L_RELEASING);
    if (ss->txn != PG_TXN_NONE) {
        /* A read-only transaction: what it read is served already; the
         * handler's own, never ended: undone. */
        if (crest__pg_send_cmd(lc, ss->txn == PG_TXN_USER ? "ROLLBACK" : "COMMIT") || crest__pg_send_sync(lc, NULL)) {
            crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, "the database connection broke");
            return;
        }
        ss->txn = PG_TXN_NONE;
        crest__pg_flush_out(lc);
        return;
    }
    if (!lc->n)
        crest__pg_release(lc);
}

void crest__pg_loop_cancel(crest__sess *ss)
{
    if (ss->waiting && !ss->lc) {
        crest__store_worker *w = ss->w;
        if (ss->wprev || ss->wnext || w->qhead == ss)
            queue_remove(w, ss);
        fail_waiting(ss, CREST__DBERR_UNAVAILABLE, "the request was cancelled");
        return; /* its completion may have ended the request, and ss with it */
    }
    pg_lconn *lc = ss->lc;
    if (lc && lc->n) {
        /* Cancelled now, again a second later if it still runs, then dropped. */
        lc->cancel_sent = 1;
        crest__pg_send_cancel(lc, &ss->cfg);
        uv_timer_start(&lc->timer, crest__pg_timer_cb, CANCEL_AGAIN_MS, 0);
    }
}

/* ---- workers ---- */

int crest__pg_worker_init(crest__store *st, void *loop, crest__store_worker **out, crest_error *err)
{
    pg_store *s = (pg_store *)st;
    crest__store_worker *w = calloc(1, sizeof *w);
    if (!w)
        return crest__error_set(err, CREST_ENOMEM, NULL, 0, "out of memory");
    w->s = s;
    w->loop = loop;
    /* The worker starts only when the database answers: its first
     * connection is made here, blocking, before the loop runs. */
    char *msg = NULL;
    crest__conn *first = crest__pg_connect(s, &msg);
    if (!first) {
        crest__error_set(err, CREST_EIO, NULL, 0, "cannot connect to the database: %s", msg ? msg : "out of memory");
        free(msg);
        free(w);
        return CREST_EIO;
    }
    if (!loop) { /* sessions block: the connection joins the store's idle list */
        pthread_mutex_lock(&s->idle_lock);
        first->next = s->idle;
        s->idle = first;
        pthread_mutex_unlock(&s->idle_lock);
        *out = w;
        return 0;
    }
    const crest__store_config *cfg = &s->base.cfg;
    w->nconns = cfg->pool_size ? cfg->pool_size : 4;
    w->acquire_ms = cfg->acquire_timeout_ms ? cfg->acquire_timeout_ms : 5000;
    w->queue_max = cfg->queue_max ? cfg->queue_max : 512;
    w->conns = calloc(w->nconns, sizeof *w->conns);
    if (!w->conns) {
        crest__pg_conn_free(first);
        free(w);
        return crest__error_set(err, CREST_ENOMEM, NULL, 0, "out of memory");
    }
    uv_timer_init(loop, &w->qtimer);
    w->qtimer.data = w;
    crest__pg_count(&w->counts.down, w->nconns); /* (every connection starts down) */
    crest__pg_pool_join(s, &w->counts);
    for (unsigned i = 0; i < w->nconns; i++) {
        pg_lconn *lc = &w->conns[i];
        lc->w = w;
        uv_timer_init(loop, &lc->timer);
        lc->timer.data = lc;
    }
    /* The first connection serves at once; the others connect meanwhile. */
    pg_lconn *lc0 = &w->conns[0];
    lc0->c.pg = first->pg;
    first->pg = NULL;
    crest__pg_conn_free(first);
    if (PQsetnonblocking(lc0->c.pg, 1))
        crest__pg_drop(lc0, CREST__DBERR_UNAVAILABLE, "the database connection could not be set up");
    else
        crest__pg_connected(lc0);
    for (unsigned i = 1; i < w->nconns; i++)
        crest__pg_start_connect(&w->conns[i]);
    *out = w;
    return 0;
}

static void lconn_dispose(pg_lconn *lc)
{
    crest__pg_resolve_abandon(lc->resolving); /* (its memory goes when the loop runs it out) */
    PQclear(lc->seg_res);
    PQclear(lc->seg_fail);
    PQfinish(lc->c.pg);
    crest__pg_stmts_clear(&lc->c);
    free(lc->c.stmts);
    free(lc->ops);
}

/* After the loop has stopped and closed its handles (the engine closes
 * every one of them on the way out). */
void crest__pg_worker_dispose(crest__store_worker *w)
{
    if (!w)
        return;
    if (w->conns)
        crest__pg_pool_leave(w->s, &w->counts);
    for (unsigned i = 0; i < w->nconns; i++)
        lconn_dispose(&w->conns[i]);
    if (w->listener) {
        lconn_dispose(w->listener);
        free(w->listener);
    }
    while (w->polls) {
        pg_poll *p = w->polls;
        w->polls = p->next;
        free(p);
    }
    free(w->conns);
    free(w);
}
