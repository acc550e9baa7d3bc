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
 * statements it sends (send_stmt; crest's own commands are not counted). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "postgres_internal.h"

enum { L_DOWN, L_CONNECTING, L_IDLE, L_OWNED, L_RELEASING };
typedef enum { OP_CMD, OP_PREPARE, OP_QUERY, OP_SYNC } op_kind;

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 32000
#define STABLE_MS 1000          /* a connection lost after serving this long is made again at once */
#define CONNECT_TIMEOUT_MS 10000
#define DEADLINE_GRACE_MS 200   /* crest's timer fires this long after the server's statement_timeout */
#define CANCEL_AGAIN_MS 1000    /* a cancel not answered in this time is sent once more, */
#define CANCEL_WAIT_MS 4000     /* and the connection dropped when that is not answered in this time */

/* A statement of a session, from pg_loop_query to its completion (in the
 * session's arena: the session lives until its statements complete). */
struct pg_call {
    crest__sess *ss;
    crest__query_cb cb;
    void *ud;
    const char *sql;              /* NUL-terminated copy */
    size_t len;
    pg_params p;
    unsigned flags;
    size_t max_rows;
    bool retried;                 /* sent again after its prepared statement went stale */
    bool whole;                   /* its segment opens its transaction (BEGIN): it may run again */
    unsigned conflicts;           /* times it ran again after losing to a concurrent transaction */
    pg_call *next;                /* in its session's list of waiting statements */
};

typedef struct pg_op {
    op_kind kind;
    pg_call *call;                /* OP_QUERY, OP_SYNC: the statement of the segment (NULL: crest's own) */
    unsigned stmt_id;             /* OP_PREPARE: the name to record once prepared */
} pg_op;

/* A socket watcher. Allocated per connection attempt (libpq may change
 * sockets while it connects) and freed when closed, or by worker_dispose
 * when the engine closed it on the way out. */
typedef struct pg_poll {
    uv_poll_t h;
    struct pg_poll *prev, *next;  /* the worker's list */
    crest__store_worker *w;
    pg_lconn *lc;                 /* NULL once closing */
    int fd;
} pg_poll;

struct pg_lconn {
    crest__store_worker *w;
    crest__conn c;                /* the PGconn and its statements */
    int state;
    pg_poll *poll;
    int events;
    uv_timer_t timer;             /* connecting, backing off, or watching a deadline */
    unsigned backoff_ms;
    uint64_t up_since;            /* when it connected (the loop's clock, ms) */
    crest__sess *owner;
    pg_op *ops;                   /* sent, not yet answered: a ring */
    unsigned head, n, cap;
    PGresult *seg_res, *seg_fail; /* the segment being read: its statement's result, its first failure */
    int cancel_sent;              /* cancel requests sent for what runs now (a second one a second later:
                                     a request that lands between two messages cancels nothing) */
    bool was_connected;           /* it served before: its next connect is a reconnect (/metrics) */
    pg_resolve *resolving;        /* connecting: the host's name being looked up, or NULL */
};

struct crest__store_worker {
    pg_store *s;
    uv_loop_t *loop;              /* NULL: this worker's sessions block (postgres.c) */
    pg_lconn *conns;
    unsigned nconns;
    unsigned acquire_ms, queue_max;
    crest__sess *qhead, *qtail;   /* sessions waiting for a connection, oldest first */
    unsigned qlen;
    uv_timer_t qtimer;
    pg_poll *polls;
    pg_pool_counts counts;        /* for /metrics (postgres_pool.c) */
};

static void send_calls(pg_lconn *lc);
static void serve_queue(crest__store_worker *w);
static void start_connect(pg_lconn *lc);

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

static void set_state(pg_lconn *lc, int state)
{
    crest__pg_count(gauge_of(lc->w, lc->state), -1);
    crest__pg_count(gauge_of(lc->w, state), 1);
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
static void complete(pg_call *call, crest__rows *rows, const crest__dberr *err)
{
    call->ss->inflight--;
    call->cb(call->ud, rows, rows ? NULL : err);
}

static void fail_call(pg_call *call, crest__dberr_kind kind, const char *why)
{
    crest__sess *ss = call->ss;
    const crest__dberr *e = unavailable(ss, why);
    if (e->kind == CREST__DBERR_UNAVAILABLE && kind != CREST__DBERR_UNAVAILABLE)
        ((crest__dberr *)e)->kind = kind;
    if (kind == CREST__DBERR_DEADLINE)
        ss->timed_out = true;
    complete(call, NULL, e);
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
        fail_call(c, kind, why);
        c = next;
    }
}

static bool pool_down(const crest__store_worker *w)
{
    for (unsigned i = 0; i < w->nconns; i++)
        if (w->conns[i].state != L_DOWN)
            return false;
    return true;
}

/* Every waiting session fails (the pool is down). */
static void fail_queue(crest__store_worker *w, const char *why)
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

/* ---- socket watchers ---- */

static void poll_closed(uv_handle_t *h)
{
    pg_poll *p = (pg_poll *)h;
    if (p->prev)
        p->prev->next = p->next;
    else
        p->w->polls = p->next;
    if (p->next)
        p->next->prev = p->prev;
    free(p);
}

static void poll_close(pg_lconn *lc)
{
    pg_poll *p = lc->poll;
    if (!p)
        return;
    lc->poll = NULL;
    lc->events = 0;
    p->lc = NULL;
    if (!uv_is_closing((uv_handle_t *)&p->h))
        uv_close((uv_handle_t *)&p->h, poll_closed);
}

static void on_poll(uv_poll_t *h, int status, int events);

/* Watches lc's socket for events (made anew when libpq changed sockets). */
static int poll_want(pg_lconn *lc, int events)
{
    int fd = PQsocket(lc->c.pg);
    if (fd < 0)
        return -1;
    if (lc->poll && lc->poll->fd != fd)
        poll_close(lc);
    if (!lc->poll) {
        pg_poll *p = calloc(1, sizeof *p);
        if (!p || uv_poll_init_socket(lc->w->loop, &p->h, fd)) {
            free(p);
            return -1;
        }
        p->w = lc->w;
        p->lc = lc;
        p->fd = fd;
        p->h.data = p;
        p->next = lc->w->polls;
        if (p->next)
            p->next->prev = p;
        lc->w->polls = p;
        lc->poll = p;
        lc->events = 0;
    }
    if (events != lc->events) {
        if (uv_poll_start(&lc->poll->h, events, on_poll))
            return -1;
        lc->events = events;
    }
    return 0;
}

/* ---- the operations a connection waits for ---- */

static int push_op(pg_lconn *lc, op_kind kind, pg_call *call, unsigned stmt_id)
{
    if (lc->n == lc->cap) {
        unsigned cap = lc->cap ? lc->cap * 2 : 16;
        pg_op *ops = malloc(cap * sizeof *ops);
        if (!ops)
            return -1;
        for (unsigned i = 0; i < lc->n; i++)
            ops[i] = lc->ops[(lc->head + i) % lc->cap];
        free(lc->ops);
        lc->ops = ops;
        lc->cap = cap;
        lc->head = 0;
    }
    lc->ops[(lc->head + lc->n) % lc->cap] = (pg_op){kind, call, stmt_id};
    lc->n++;
    return 0;
}

static pg_op pop_op(pg_lconn *lc)
{
    pg_op op = lc->ops[lc->head];
    lc->head = (lc->head + 1) % lc->cap;
    lc->n--;
    return op;
}

/* ---- losing a connection ---- */

static void timer_cb(uv_timer_t *t);

/* The log's line for a lost connection: one JSON object, why escaped (libpq's
 * messages have quotes and newlines in them). */
static void log_lost(const char *why, unsigned retry_ms)
{
    crest_json j;
    crest_json_init(&j, 4096);
    crest_json_object_begin(&j);
    crest_json_key(&j, "event");
    crest_json_str(&j, "db_connection_lost");
    crest_json_key(&j, "reason");
    crest_json_str(&j, why ? why : "");
    crest_json_key(&j, "retry_ms");
    crest_json_int(&j, retry_ms);
    crest_json_object_end(&j);
    size_t n;
    const char *text = crest_json_data(&j, &n);
    if (!crest_json_error(&j))
        fprintf(stderr, "%.*s\n", (int)n, text);
    crest_json_dispose(&j);
}

/* lc is broken (or its statement outlived every deadline): what it carried
 * fails with kind, it is closed, and reconnected: at once when it had
 * served a while (a server that ended a session is not down; meanwhile
 * requests wait in the queue), else after a backoff that doubles (a
 * connect that failed, or a connection that keeps being lost). */
static void drop(pg_lconn *lc, crest__dberr_kind kind, const char *why)
{
    crest__store_worker *w = lc->w;
    crest__sess *owner = lc->owner;
    bool was_up = lc->state != L_DOWN && lc->state != L_CONNECTING;
    bool stable = was_up && uv_now(w->loop) - lc->up_since >= STABLE_MS;
    crest__pg_resolve_abandon(lc->resolving);
    lc->resolving = NULL;
    poll_close(lc);
    PQfinish(lc->c.pg);
    lc->c.pg = NULL;
    crest__pg_stmts_clear(&lc->c);
    PQclear(lc->seg_res);
    PQclear(lc->seg_fail);
    lc->seg_res = lc->seg_fail = NULL;
    if (lc->state == L_CONNECTING || lc->state == L_DOWN)
        crest__pg_count(&w->counts.connect_failures, 1);
    set_state(lc, L_DOWN);
    lc->owner = NULL;
    lc->cancel_sent = 0;
    /* Collected first (a statement in flight waits in no list: its next
     * is free): completions may start statements of their own. */
    pg_call *failed = NULL, **tail = &failed;
    while (lc->n) {
        pg_op op = pop_op(lc);
        if (op.kind == OP_SYNC && op.call) {
            op.call->next = NULL;
            *tail = op.call;
            tail = &op.call->next;
        }
    }
    if (owner) { /* what it waits to send fails too, last; owner is not read after a completion */
        owner->lc = NULL;
        owner->txn = PG_TXN_NONE;
        *tail = owner->waiting;
        owner->waiting = NULL;
    }
    if (stable) {
        lc->backoff_ms = 0;
        log_lost(why, 0);
        start_connect(lc); /* (on failure, a drop of its own starts the backoff) */
    } else {
        lc->backoff_ms = lc->backoff_ms ? lc->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (lc->backoff_ms > BACKOFF_MAX_MS)
            lc->backoff_ms = BACKOFF_MAX_MS;
        uv_timer_start(&lc->timer, timer_cb, lc->backoff_ms, 0);
        log_lost(why, lc->backoff_ms);
    }
    while (failed) {
        pg_call *c = failed;
        failed = c->next;
        fail_call(c, kind, why);
    }
    if (pool_down(w))
        fail_queue(w, "the database cannot be reached");
}

/* ---- sending ---- */

/* Sends what libpq holds; watches for writability while some is left. */
static void flush_out(pg_lconn *lc)
{
    int r = PQflush(lc->c.pg);
    if (r < 0 || poll_want(lc, UV_READABLE | (r > 0 ? UV_WRITABLE : 0)))
        drop(lc, CREST__DBERR_UNAVAILABLE, "the database connection broke");
}

static int send_cmd(pg_lconn *lc, const char *sql)
{
    return PQsendQueryParams(lc->c.pg, sql, 0, NULL, NULL, NULL, NULL, 0) ? push_op(lc, OP_CMD, NULL, 0) : -1;
}

static int send_sync(pg_lconn *lc, pg_call *call)
{
    return PQpipelineSync(lc->c.pg) ? push_op(lc, OP_SYNC, call, 0) : -1;
}

/* Arms crest's own watch over a statement's deadline. */
static void watch_deadline(pg_lconn *lc, uint64_t deadline_us)
{
    uint64_t now = crest__now_us();
    uint64_t ms = deadline_us > now ? (deadline_us - now) / 1000 : 0;
    if (!uv_is_active((uv_handle_t *)&lc->timer))
        uv_timer_start(&lc->timer, timer_cb, ms + DEADLINE_GRACE_MS, 0);
}

#define TXN_CONTROL (CREST__QF_TXN_BEGIN | CREST__QF_TXN_END | CREST__QF_TXN_SAVEPOINT)

/* The statement itself: prepared on lc the first time (by text and
 * parameter types), else as it is. Each send counts (/metrics): a
 * statement sent again after a stale statement or a conflict, again. */
static int send_stmt(pg_lconn *lc, pg_call *call)
{
    const pg_params *p = &call->p;
    char buf[32];
    int rc = 0;
    crest__sess_count(&call->ss->cfg);
    if (call->flags & CREST__QF_NOCACHE)
        return PQsendQueryParams(lc->c.pg, call->sql, (int)p->n, p->types, p->values, p->lengths, NULL, 0)
                   ? push_op(lc, OP_QUERY, call, 0)
                   : -1;
    unsigned id = crest__pg_stmt_find(&lc->c, call->sql, call->len, p->types, p->n);
    if (!id) {
        id = ++lc->c.next_id;
        snprintf(buf, sizeof buf, "c%u", id);
        rc |= PQsendPrepare(lc->c.pg, buf, call->sql, (int)p->n, p->types) ? push_op(lc, OP_PREPARE, call, id) : -1;
    }
    snprintf(buf, sizeof buf, "c%u", id);
    rc |= PQsendQueryPrepared(lc->c.pg, buf, (int)p->n, p->values, p->lengths, NULL, 0)
              ? push_op(lc, OP_QUERY, call, 0)
              : -1;
    return rc;
}

/* `SET LOCAL statement_timeout` for what is left of the session's deadline
 * (inside a transaction), and crest's own watch over it. */
static int send_timeout(pg_lconn *lc, crest__sess *ss)
{
    if (!ss->cfg.deadline_us)
        return 0;
    char buf[64];
    uint64_t now = crest__now_us();
    long long ms = ss->cfg.deadline_us > now ? (long long)((ss->cfg.deadline_us - now + 999) / 1000) : 1;
    snprintf(buf, sizeof buf, "SET LOCAL statement_timeout = %lld", ms);
    watch_deadline(lc, ss->cfg.deadline_us);
    return send_cmd(lc, buf);
}

/* A statement of, or in, the C handler's own transaction, as one segment.
 * Its BEGIN, COMMIT, ROLLBACK and savepoints go as they are (a read-only
 * transaction of crest's open before BEGIN is ended first); inside it each
 * statement runs under a savepoint of crest's, so that a failure undoes
 * that statement only and the transaction goes on, as on SQLite. */
static int send_user_call(pg_lconn *lc, pg_call *call)
{
    crest__sess *ss = call->ss;
    unsigned f = call->flags;
    int rc = 0;
    if ((f & CREST__QF_TXN_BEGIN) && ss->txn == PG_TXN_RO) {
        rc |= send_cmd(lc, "COMMIT");
        ss->txn = PG_TXN_NONE;
    }
    bool wrap = ss->txn == PG_TXN_USER && !(f & TXN_CONTROL);
    if (wrap)
        rc |= send_timeout(lc, ss) | send_cmd(lc, "SAVEPOINT crest_stmt");
    rc |= send_stmt(lc, call);
    if (wrap)
        rc |= send_cmd(lc, "RELEASE SAVEPOINT crest_stmt");
    if (f & CREST__QF_TXN_BEGIN)
        ss->txn = PG_TXN_USER;
    else if (f & CREST__QF_TXN_END)
        ss->txn = PG_TXN_NONE;
    return rc | send_sync(lc, call);
}

/* One statement as one pipeline segment (see the head of this file). */
static int send_call(pg_lconn *lc, pg_call *call)
{
    crest__sess *ss = call->ss;
    bool ro = call->flags & CREST__QF_READ;
    int rc = 0;
    if ((call->flags & TXN_CONTROL) || ss->txn == PG_TXN_USER)
        return send_user_call(lc, call);
    if (ss->txn == PG_TXN_RO && !ro) {
        rc |= send_cmd(lc, "COMMIT");
        ss->txn = PG_TXN_NONE;
    }
    call->whole = ss->txn == PG_TXN_NONE;
    if (ss->txn == PG_TXN_NONE) {
        rc |= send_cmd(lc, ro ? "BEGIN READ ONLY" : "BEGIN");
        ss->txn = ro ? PG_TXN_RO : PG_TXN_RW;
    }
    rc |= send_timeout(lc, ss);
    if (call->conflicts) { /* run again: the pause on the server, in the new transaction, before any lock */
        char buf[64];
        unsigned ms = crest__conflict_pause_ms(call->conflicts);
        snprintf(buf, sizeof buf, "SELECT pg_sleep(%u.%03u)", ms / 1000, ms % 1000);
        rc |= send_cmd(lc, buf);
    }
    rc |= send_stmt(lc, call);
    /* A write's completion runs once it is committed; a request's last
     * read ends its read-only transaction in the same round trip. */
    if (!ro || (call->flags & CREST__QF_LAST)) {
        rc |= send_cmd(lc, "COMMIT");
        ss->txn = PG_TXN_NONE;
    }
    rc |= send_sync(lc, call);
    return rc ? -1 : 0;
}

/* Sends the statements the owner waits to send. */
static void send_calls(pg_lconn *lc)
{
    crest__sess *ss = lc->owner;
    bool ok = true;
    while (ok && ss && ss->waiting) {
        pg_call *c = ss->waiting;
        ss->waiting = c->next;
        c->next = NULL;
        if (send_call(lc, c)) {
            /* The segment may be half sent: the connection is not to be trusted. */
            ss->waiting = c; /* failed with the rest below */
            ok = false;
        }
    }
    if (!ok)
        drop(lc, CREST__DBERR_UNAVAILABLE, PQerrorMessage(lc->c.pg));
    else
        flush_out(lc);
}

/* lc's ops are all answered and nobody holds it: it serves the queue. */
static void release(pg_lconn *lc)
{
    set_state(lc, L_IDLE);
    uv_timer_stop(&lc->timer);
    lc->cancel_sent = 0;
    serve_queue(lc->w);
}

/* Gives lc to ss and sends what ss waits to send. */
static void own(pg_lconn *lc, crest__sess *ss)
{
    set_state(lc, L_OWNED);
    lc->owner = ss;
    ss->lc = lc;
    ss->txn = PG_TXN_NONE;
    send_calls(lc);
}

static pg_lconn *idle_conn(crest__store_worker *w)
{
    for (unsigned i = 0; i < w->nconns; i++)
        if (w->conns[i].state == L_IDLE)
            return &w->conns[i];
    return NULL;
}

static void serve_queue(crest__store_worker *w)
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

/* ---- reading ---- */

static bool stale_statement(const PGresult *res)
{
    const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return st && (!strcmp(st, "26000") || !strcmp(st, "0A000"));
}

/* Whether the transaction lost to a concurrent one (a serialization
 * failure, a deadlock): it was rolled back, and may run again. */
static bool conflict(const PGresult *res)
{
    const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return st && (!strcmp(st, "40001") || !strcmp(st, "40P01"));
}

/* The segment of call ended (its sync came): its completion runs with the
 * statement's rows, or the segment's first failure. */
static void end_segment(pg_lconn *lc, pg_call *call)
{
    PGresult *res = lc->seg_res, *fail = lc->seg_fail;
    lc->seg_res = lc->seg_fail = NULL;
    crest__sess *ss = lc->owner;
    if (fail && ss) {
        /* A failure aborts the transaction it happened in (the request's,
         * or a write's own, whose COMMIT did not run): it is rolled back
         * before anything else is sent (outside one, ROLLBACK only warns).
         * In the handler's own transaction, only the statement is: back to
         * crest's savepoint around it (send_user_call). */
        bool stmt_only = ss->txn == PG_TXN_USER && call && !(call->flags & TXN_CONTROL);
        if (stmt_only ? send_cmd(lc, "ROLLBACK TO SAVEPOINT crest_stmt") ||
                            send_cmd(lc, "RELEASE SAVEPOINT crest_stmt") || send_sync(lc, NULL)
                      : send_cmd(lc, "ROLLBACK") || send_sync(lc, NULL)) {
            PQclear(res);
            PQclear(fail);
            drop(lc, CREST__DBERR_UNAVAILABLE, "the database connection broke");
            return;
        }
        if (!stmt_only)
            ss->txn = PG_TXN_NONE;
    }
    if (call && fail && stale_statement(fail) && !call->retried && ss == call->ss) {
        /* A schema change made the statement stale: every statement of the
         * connection is forgotten, and this one sent once more. */
        call->retried = true;
        PQclear(res);
        PQclear(fail);
        crest__pg_stmts_clear(&lc->c);
        if (send_cmd(lc, "DEALLOCATE ALL") || send_sync(lc, NULL) || send_call(lc, call))
            drop(lc, CREST__DBERR_UNAVAILABLE, "the database connection broke");
        else
            flush_out(lc);
        return;
    }
    if (call && fail && conflict(fail) && call->whole && call->conflicts < CREST__CONFLICT_RETRIES &&
        ss == call->ss && !atomic_load(&ss->cancelled)) {
        /* The segment was its whole transaction, rolled back: it runs
         * again, as a new one (a write is one segment: BEGIN to COMMIT). */
        call->conflicts++;
        PQclear(res);
        PQclear(fail);
        if (send_call(lc, call))
            drop(lc, CREST__DBERR_UNAVAILABLE, "the database connection broke");
        else
            flush_out(lc);
        return;
    }
    if (call) {
        crest__sess *cs = call->ss;
        crest__dberr err = {0};
        crest__rows *rows = NULL;
        if (fail) {
            crest__pg_error(lc->c.pg, fail, call->flags, cs->cfg.arena, &err);
            if (err.kind == CREST__DBERR_DEADLINE) {
                if (cs->cfg.deadline_us && crest__now_us() + 1000 >= cs->cfg.deadline_us)
                    cs->timed_out = true;
                else
                    err.kind = CREST__DBERR_UNAVAILABLE; /* cancelled: the client left */
            }
        } else if (res) {
            size_t max_rows = call->flags & CREST__QF_FIRST ? 1 : call->max_rows;
            crest__pg_rows(res, cs->cfg.arena, max_rows, call->flags & CREST__QF_NONAMES,
                           lc->w->s->base.cfg.max_result, &rows, &err);
        } else {
            err.kind = CREST__DBERR_OTHER;
            err.detail = err.message = "the statement gave no result";
        }
        PQclear(res);
        PQclear(fail);
        complete(call, rows, &err);
    } else {
        PQclear(res);
        PQclear(fail);
    }
    if (lc->state == L_DOWN)
        return;
    if (!lc->n) {
        uv_timer_stop(&lc->timer);
        lc->cancel_sent = 0;
        if (!lc->owner)
            release(lc);
    }
}

/* Reads what the server answered, operation by operation. */
static void read_results(pg_lconn *lc)
{
    if (!PQconsumeInput(lc->c.pg)) {
        drop(lc, CREST__DBERR_UNAVAILABLE, "the database connection broke");
        return;
    }
    while (lc->state != L_DOWN && lc->n && !PQisBusy(lc->c.pg)) {
        pg_op *op = &lc->ops[lc->head];
        PGresult *r = PQgetResult(lc->c.pg);
        if (op->kind == OP_SYNC) {
            pg_call *call = op->call;
            if (!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
                PQclear(r);
                drop(lc, CREST__DBERR_UNAVAILABLE, "the database answered out of order");
                return;
            }
            PQclear(r);
            pop_op(lc);
            end_segment(lc, call);
            continue;
        }
        if (!r) { /* this operation's results are all in */
            pop_op(lc);
            continue;
        }
        switch (PQresultStatus(r)) {
        case PGRES_TUPLES_OK:
        case PGRES_COMMAND_OK:
            if (op->kind == OP_QUERY) {
                PQclear(lc->seg_res);
                lc->seg_res = r;
                r = NULL;
            } else if (op->kind == OP_PREPARE) {
                pg_call *c = op->call;
                crest__pg_stmt_add(&lc->c, c->sql, c->len, c->p.types, c->p.n, op->stmt_id);
            }
            break;
        case PGRES_PIPELINE_ABORTED:
            break; /* after the segment's failure, kept below */
        default:
            if (!lc->seg_fail) {
                lc->seg_fail = r;
                r = NULL;
            }
        }
        PQclear(r);
    }
}

static void continue_connect(pg_lconn *lc);

static void on_poll(uv_poll_t *h, int status, int events)
{
    pg_poll *p = h->data;
    pg_lconn *lc = p->lc;
    if (!lc)
        return;
    if (status < 0) {
        drop(lc, CREST__DBERR_UNAVAILABLE, "the database connection broke");
        return;
    }
    if (lc->state == L_CONNECTING) {
        continue_connect(lc);
        return;
    }
    if (events & UV_WRITABLE) {
        flush_out(lc);
        if (lc->state == L_DOWN)
            return;
    }
    if (events & UV_READABLE)
        read_results(lc);
}

/* ---- connecting ---- */

static void connected(pg_lconn *lc)
{
    uv_timer_stop(&lc->timer);
    if (!PQenterPipelineMode(lc->c.pg) || poll_want(lc, UV_READABLE)) {
        drop(lc, CREST__DBERR_UNAVAILABLE, "the database connection could not be set up");
        return;
    }
    lc->up_since = uv_now(lc->w->loop);
    if (lc->was_connected)
        crest__pg_count(&lc->w->counts.reconnects, 1);
    lc->was_connected = true;
    release(lc);
}

static void continue_connect(pg_lconn *lc)
{
    switch (PQconnectPoll(lc->c.pg)) {
    case PGRES_POLLING_OK:
        connected(lc);
        return;
    case PGRES_POLLING_READING:
        if (poll_want(lc, UV_READABLE))
            break;
        return;
    case PGRES_POLLING_WRITING:
        if (poll_want(lc, UV_WRITABLE))
            break;
        return;
    default:
        break;
    }
    set_state(lc, L_CONNECTING); /* (drop says why) */
    drop(lc, CREST__DBERR_UNAVAILABLE, "the database refused the connection");
}

/* Starts the connect itself: to the addresses a lookup found (hosts and
 * addrs, for host and hostaddr), or as the parameters say (NULL). */
static void connect_to(pg_lconn *lc, const char *hosts, const char *addrs)
{
    pg_store *s = lc->w->s;
    const char **keys = (const char **)s->keys, **vals = (const char **)s->vals;
    if (hosts && crest__pg_params_at(s, hosts, addrs, &keys, &vals)) {
        drop(lc, CREST__DBERR_UNAVAILABLE, "out of memory");
        return;
    }
    lc->c.pg = PQconnectStartParams(keys, vals, 0);
    if (hosts) {
        free(keys);
        free(vals);
    }
    if (!lc->c.pg || PQstatus(lc->c.pg) == CONNECTION_BAD || PQsetnonblocking(lc->c.pg, 1)) {
        drop(lc, CREST__DBERR_UNAVAILABLE, "the database cannot be reached");
        return;
    }
    crest__pg_quiet(lc->c.pg);
    /* As if PQconnectPoll had said PGRES_POLLING_WRITING. */
    if (poll_want(lc, UV_WRITABLE))
        drop(lc, CREST__DBERR_UNAVAILABLE, "the database cannot be reached");
}

static void resolved(void *ud, const char *hosts, const char *addrs, const char *why)
{
    pg_lconn *lc = ud;
    lc->resolving = NULL;
    if (uv_is_closing((uv_handle_t *)&lc->timer))
        return; /* the worker is ending */
    if (!hosts)
        drop(lc, CREST__DBERR_UNAVAILABLE, why);
    else
        connect_to(lc, hosts, addrs);
}

/* A connect (its lookup first, when the host is a name) within
 * CONNECT_TIMEOUT_MS. */
static void start_connect(pg_lconn *lc)
{
    pg_store *s = lc->w->s;
    set_state(lc, L_CONNECTING);
    uv_timer_start(&lc->timer, timer_cb, CONNECT_TIMEOUT_MS, 0);
    if (!s->resolve_host)
        connect_to(lc, NULL, NULL);
    else if (!(lc->resolving = crest__pg_resolve(lc->w->loop, s->resolve_host, resolved, lc)))
        drop(lc, CREST__DBERR_UNAVAILABLE, "the database's host name cannot be looked up");
}

/* Cancels what runs on a connection, from the thread pool (PQcancel
 * blocks: it opens a connection of its own). */
typedef struct cancel_job {
    PGcancel *c;
} cancel_job;

static void cancel_work(void *p)
{
    cancel_job *j = p;
    char buf[256];
    PQcancel(j->c, buf, sizeof buf);
}

static void cancel_after(void *p, bool cancelled)
{
    (void)cancelled;
    cancel_job *j = p;
    PQfreeCancel(j->c);
    free(j);
}

static void send_cancel(pg_lconn *lc, const crest__sess_config *cfg)
{
    cancel_job *j = malloc(sizeof *j);
    if (!j || !(j->c = PQgetCancel(lc->c.pg))) {
        free(j);
        return;
    }
    if (!cfg || !cfg->offload || cfg->offload(cfg->engine_ud, cancel_work, cancel_after, j)) {
        cancel_work(j); /* no thread pool: in place */
        cancel_after(j, false);
    }
}

/* The connection's one timer: a connect that takes too long, the end of a
 * backoff, or a deadline the server did not keep. */
static void timer_cb(uv_timer_t *t)
{
    pg_lconn *lc = t->data;
    switch (lc->state) {
    case L_DOWN:
        if (!lc->poll) /* (closing: a moment later) */
            start_connect(lc);
        else
            uv_timer_start(&lc->timer, timer_cb, 10, 0);
        return;
    case L_CONNECTING:
        drop(lc, CREST__DBERR_UNAVAILABLE, "connecting to the database took too long");
        return;
    default:
        if (!lc->n)
            return;
        if (lc->cancel_sent < 2) {
            lc->cancel_sent++;
            send_cancel(lc, lc->owner ? &lc->owner->cfg : NULL);
            uv_timer_start(&lc->timer, timer_cb, lc->cancel_sent == 1 ? CANCEL_AGAIN_MS : CANCEL_WAIT_MS, 0);
        } else {
            /* Past the owner's deadline it was the deadline; else the client left. */
            const crest__sess *o = lc->owner;
            bool late = o && o->cfg.deadline_us && crest__now_us() >= o->cfg.deadline_us;
            drop(lc, late || !o ? CREST__DBERR_DEADLINE : CREST__DBERR_UNAVAILABLE,
                 "the database did not answer a cancel request");
        }
    }
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
        fail_call(call, CREST__DBERR_UNAVAILABLE, "the request was cancelled");
        return 0;
    }
    if (ss->cfg.deadline_us && crest__now_us() >= ss->cfg.deadline_us) {
        fail_call(call, CREST__DBERR_DEADLINE, NULL);
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
        send_calls(ss->lc);
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
    if (pool_down(w)) {
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
    set_state(lc, L_RELEASING);
    if (ss->txn != PG_TXN_NONE) {
        /* A read-only transaction: what it read is served already; the
         * handler's own, never ended: undone. */
        if (send_cmd(lc, ss->txn == PG_TXN_USER ? "ROLLBACK" : "COMMIT") || send_sync(lc, NULL)) {
            drop(lc, CREST__DBERR_UNAVAILABLE, "the database connection broke");
            return;
        }
        ss->txn = PG_TXN_NONE;
        flush_out(lc);
        return;
    }
    if (!lc->n)
        release(lc);
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
        send_cancel(lc, &ss->cfg);
        uv_timer_start(&lc->timer, timer_cb, CANCEL_AGAIN_MS, 0);
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
        drop(lc0, CREST__DBERR_UNAVAILABLE, "the database connection could not be set up");
    else
        connected(lc0);
    for (unsigned i = 1; i < w->nconns; i++)
        start_connect(&w->conns[i]);
    *out = w;
    return 0;
}

/* After the loop has stopped and closed its handles (the engine closes
 * every one of them on the way out). */
void crest__pg_worker_dispose(crest__store_worker *w)
{
    if (!w)
        return;
    if (w->conns)
        crest__pg_pool_leave(w->s, &w->counts);
    for (unsigned i = 0; i < w->nconns; i++) {
        pg_lconn *lc = &w->conns[i];
        crest__pg_resolve_abandon(lc->resolving); /* (its memory goes when the loop runs it out) */
        PQclear(lc->seg_res);
        PQclear(lc->seg_fail);
        PQfinish(lc->c.pg);
        crest__pg_stmts_clear(&lc->c);
        free(lc->c.stmts);
        free(lc->ops);
    }
    while (w->polls) {
        pg_poll *p = w->polls;
        w->polls = p->next;
        free(p);
    }
    free(w->conns);
    free(w);
}
