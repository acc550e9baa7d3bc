/* postgres_lconn.c — a connection of a worker's pool on its loop, kept up:
 * its socket watcher (one uv_poll, made anew when libpq changes sockets),
 * the ring of operations it waits answers for, connecting without blocking
 * (the host's name looked up first, postgres_resolve.c), losing it (what it
 * carried fails; it is made again at once when it had served a while, else
 * after a backoff that doubles up to 32 s), cancels sent from the thread
 * pool, and its one timer. See postgres_loop.c for the whole. */
#include <stdio.h>
#include <stdlib.h>

#include "postgres_loop.h"

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
int crest__pg_poll_want(pg_lconn *lc, int events)
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

int crest__pg_push_op(pg_lconn *lc, op_kind kind, pg_call *call, unsigned stmt_id)
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

pg_op crest__pg_pop_op(pg_lconn *lc)
{
    pg_op op = lc->ops[lc->head];
    lc->head = (lc->head + 1) % lc->cap;
    lc->n--;
    return op;
}

/* ---- losing a connection ---- */

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
void crest__pg_drop(pg_lconn *lc, crest__dberr_kind kind, const char *why)
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
    if ((lc->state == L_CONNECTING || lc->state == L_DOWN) && !lc->listener)
        crest__pg_count(&w->counts.connect_failures, 1);
    crest__pg_set_state(lc, L_DOWN);
    lc->owner = NULL;
    lc->cancel_sent = 0;
    /* Collected first (a statement in flight waits in no list: its next
     * is free): completions may start statements of their own. */
    pg_call *failed = NULL, **tail = &failed;
    while (lc->n) {
        pg_op op = crest__pg_pop_op(lc);
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
        crest__pg_start_connect(lc); /* (on failure, a drop of its own starts the backoff) */
    } else {
        lc->backoff_ms = lc->backoff_ms ? lc->backoff_ms * 2 : BACKOFF_MIN_MS;
        if (lc->backoff_ms > BACKOFF_MAX_MS)
            lc->backoff_ms = BACKOFF_MAX_MS;
        uv_timer_start(&lc->timer, crest__pg_timer_cb, lc->backoff_ms, 0);
        log_lost(why, lc->backoff_ms);
    }
    while (failed) {
        pg_call *c = failed;
        failed = c->next;
        crest__pg_fail_call(c, kind, why);
    }
    if (lc->listener)
        crest__pg_listen_lost(lc);
    else if (crest__pg_pool_down(w))
        crest__pg_fail_queue(w, "the database cannot be reached");
}

static void continue_connect(pg_lconn *lc);

static void on_poll(uv_poll_t *h, int status, int events)
{
    pg_poll *p = h->data;
    pg_lconn *lc = p->lc;
    if (!lc)
        return;
    if (status < 0) {
        crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, "the database connection broke");
        return;
    }
    if (lc->state == L_CONNECTING) {
        continue_connect(lc);
        return;
    }
    if (events & UV_WRITABLE) {
        crest__pg_flush_out(lc);
        if (lc->state == L_DOWN)
            return;
    }
    if (events & UV_READABLE)
        crest__pg_read_results(lc);
}

/* ---- connecting ---- */

void crest__pg_connected(pg_lconn *lc)
{
    uv_timer_stop(&lc->timer);
    if (!PQenterPipelineMode(lc->c.pg) || crest__pg_poll_want(lc, UV_READABLE)) {
        crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, "the database connection could not be set up");
        return;
    }
    lc->up_since = uv_now(lc->w->loop);
    if (lc->listener) {
        crest__pg_listen_connected(lc);
        return;
    }
    if (lc->was_connected)
        crest__pg_count(&lc->w->counts.reconnects, 1);
    lc->was_connected = true;
    crest__pg_release(lc);
}

static void continue_connect(pg_lconn *lc)
{
    switch (PQconnectPoll(lc->c.pg)) {
    case PGRES_POLLING_OK:
        crest__pg_connected(lc);
        return;
    case PGRES_POLLING_READING:
        if (crest__pg_poll_want(lc, UV_READABLE))
            break;
        return;
    case PGRES_POLLING_WRITING:
        if (crest__pg_poll_want(lc, UV_WRITABLE))
            break;
        return;
    default:
        break;
    }
    crest__pg_set_state(lc, L_CONNECTING); /* (drop says why) */
    crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, "the database refused the connection");
}

/* Starts the connect itself: to the addresses a lookup found (hosts and
 * addrs, for host and hostaddr), or as the parameters say (NULL). */
static void connect_to(pg_lconn *lc, const char *hosts, const char *addrs)
{
    pg_store *s = lc->w->s;
    const char **keys = (const char **)s->keys, **vals = (const char **)s->vals;
    if (hosts && crest__pg_params_at(s, hosts, addrs, &keys, &vals)) {
        crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, "out of memory");
        return;
    }
    lc->c.pg = PQconnectStartParams(keys, vals, 0);
    if (hosts) {
        free(keys);
        free(vals);
    }
    if (!lc->c.pg || PQstatus(lc->c.pg) == CONNECTION_BAD || PQsetnonblocking(lc->c.pg, 1)) {
        crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, "the database cannot be reached");
        return;
    }
    crest__pg_quiet(lc->c.pg);
    /* As if PQconnectPoll had said PGRES_POLLING_WRITING. */
    if (crest__pg_poll_want(lc, UV_WRITABLE))
        crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, "the database cannot be reached");
}

static void resolved(void *ud, const char *hosts, const char *addrs, const char *why)
{
    pg_lconn *lc = ud;
    lc->resolving = NULL;
    if (uv_is_closing((uv_handle_t *)&lc->timer))
        return; /* the worker is ending */
    if (!hosts)
        crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, why);
    else
        connect_to(lc, hosts, addrs);
}

/* A connect (its lookup first, when the host is a name) within
 * CONNECT_TIMEOUT_MS. */
void crest__pg_start_connect(pg_lconn *lc)
{
    pg_store *s = lc->w->s;
    crest__pg_set_state(lc, L_CONNECTING);
    uv_timer_start(&lc->timer, crest__pg_timer_cb, CONNECT_TIMEOUT_MS, 0);
    if (!s->resolve_host)
        connect_to(lc, NULL, NULL);
    else if (!(lc->resolving = crest__pg_resolve(lc->w->loop, s->resolve_host, resolved, lc)))
        crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, "the database's host name cannot be looked up");
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

void crest__pg_send_cancel(pg_lconn *lc, const crest__sess_config *cfg)
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
void crest__pg_timer_cb(uv_timer_t *t)
{
    pg_lconn *lc = t->data;
    switch (lc->state) {
    case L_DOWN:
        if (!lc->poll) /* (closing: a moment later) */
            crest__pg_start_connect(lc);
        else
            uv_timer_start(&lc->timer, crest__pg_timer_cb, 10, 0);
        return;
    case L_CONNECTING:
        crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, "connecting to the database took too long");
        return;
    default:
        if (!lc->n)
            return;
        if (lc->cancel_sent < 2) {
            lc->cancel_sent++;
            crest__pg_send_cancel(lc, lc->owner ? &lc->owner->cfg : NULL);
            uv_timer_start(&lc->timer, crest__pg_timer_cb, lc->cancel_sent == 1 ? CANCEL_AGAIN_MS : CANCEL_WAIT_MS, 0);
        } else {
            /* Past the owner's deadline it was the deadline; else the client left. */
            const crest__sess *o = lc->owner;
            bool late = o && o->cfg.deadline_us && crest__now_us() >= o->cfg.deadline_us;
            crest__pg_drop(lc, late || !o ? CREST__DBERR_DEADLINE : CREST__DBERR_UNAVAILABLE,
                 "the database did not answer a cancel request");
        }
    }
}
