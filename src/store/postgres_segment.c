/* postgres_segment.c — a session's statements on its connection: each one
 * sent as one pipeline segment (BEGIN, the statement timeout, the statement
 * prepared once per connection, COMMIT for a write, the sync), and the
 * server's answers read operation by operation into the statement's
 * completion (a stale prepared statement sent again, a conflict run again).
 * See postgres_loop.c for the whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres_loop.h"

/* ---- sending ---- */

/* Sends what libpq holds; watches for writability while some is left. */
void crest__pg_flush_out(pg_lconn *lc)
{
    int r = PQflush(lc->c.pg);
    if (r < 0 || crest__pg_poll_want(lc, UV_READABLE | (r > 0 ? UV_WRITABLE : 0)))
        crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, "the database connection broke");
}

int crest__pg_send_cmd(pg_lconn *lc, const char *sql)
{
    return PQsendQueryParams(lc->c.pg, sql, 0, NULL, NULL, NULL, NULL, 0) ? crest__pg_push_op(lc, OP_CMD, NULL, 0) : -1;
}

int crest__pg_send_sync(pg_lconn *lc, pg_call *call)
{
    return PQpipelineSync(lc->c.pg) ? crest__pg_push_op(lc, OP_SYNC, call, 0) : -1;
}

/* Arms crest's own watch over a statement's deadline. */
static void watch_deadline(pg_lconn *lc, uint64_t deadline_us)
{
    uint64_t now = crest__now_us();
    uint64_t ms = deadline_us > now ? (deadline_us - now) / 1000 : 0;
    if (!uv_is_active((uv_handle_t *)&lc->timer))
        uv_timer_start(&lc->timer, crest__pg_timer_cb, ms + DEADLINE_GRACE_MS, 0);
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
                   ? crest__pg_push_op(lc, OP_QUERY, call, 0)
                   : -1;
    unsigned id = crest__pg_stmt_find(&lc->c, call->sql, call->len, p->types, p->n);
    if (!id) {
        id = ++lc->c.next_id;
        snprintf(buf, sizeof buf, "c%u", id);
        rc |= PQsendPrepare(lc->c.pg, buf, call->sql, (int)p->n, p->types) ? crest__pg_push_op(lc, OP_PREPARE, call, id) : -1;
    }
    snprintf(buf, sizeof buf, "c%u", id);
    rc |= PQsendQueryPrepared(lc->c.pg, buf, (int)p->n, p->values, p->lengths, NULL, 0)
              ? crest__pg_push_op(lc, OP_QUERY, call, 0)
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
    return crest__pg_send_cmd(lc, buf);
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
        rc |= crest__pg_send_cmd(lc, "COMMIT");
        ss->txn = PG_TXN_NONE;
    }
    bool wrap = ss->txn == PG_TXN_USER && !(f & TXN_CONTROL);
    if (wrap)
        rc |= send_timeout(lc, ss) | crest__pg_send_cmd(lc, "SAVEPOINT crest_stmt");
    rc |= send_stmt(lc, call);
    if (wrap)
        rc |= crest__pg_send_cmd(lc, "RELEASE SAVEPOINT crest_stmt");
    if (f & CREST__QF_TXN_BEGIN)
        ss->txn = PG_TXN_USER;
    else if (f & CREST__QF_TXN_END)
        ss->txn = PG_TXN_NONE;
    return rc | crest__pg_send_sync(lc, call);
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
        rc |= crest__pg_send_cmd(lc, "COMMIT");
        ss->txn = PG_TXN_NONE;
    }
    call->whole = ss->txn == PG_TXN_NONE;
    if (ss->txn == PG_TXN_NONE) {
        rc |= crest__pg_send_cmd(lc, ro ? "BEGIN READ ONLY" : "BEGIN");
        ss->txn = ro ? PG_TXN_RO : PG_TXN_RW;
    }
    rc |= send_timeout(lc, ss);
    if (call->conflicts) { /* run again: the pause on the server, in the new transaction, before any lock */
        char buf[64];
        unsigned ms = crest__conflict_pause_ms(call->conflicts);
        snprintf(buf, sizeof buf, "SELECT pg_sleep(%u.%03u)", ms / 1000, ms % 1000);
        rc |= crest__pg_send_cmd(lc, buf);
    }
    rc |= send_stmt(lc, call);
    /* A write's completion runs once it is committed; a request's last
     * read ends its read-only transaction in the same round trip. */
    if (!ro || (call->flags & CREST__QF_LAST)) {
        rc |= crest__pg_send_cmd(lc, "COMMIT");
        ss->txn = PG_TXN_NONE;
    }
    rc |= crest__pg_send_sync(lc, call);
    return rc ? -1 : 0;
}

/* Sends the statements the owner waits to send. */
void crest__pg_send_calls(pg_lconn *lc)
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
        crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, PQerrorMessage(lc->c.pg));
    else
        crest__pg_flush_out(lc);
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
        if (stmt_only ? crest__pg_send_cmd(lc, "ROLLBACK TO SAVEPOINT crest_stmt") ||
                            crest__pg_send_cmd(lc, "RELEASE SAVEPOINT crest_stmt") || crest__pg_send_sync(lc, NULL)
                      : crest__pg_send_cmd(lc, "ROLLBACK") || crest__pg_send_sync(lc, NULL)) {
            PQclear(res);
            PQclear(fail);
            crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, "the database connection broke");
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
        if (crest__pg_send_cmd(lc, "DEALLOCATE ALL") || crest__pg_send_sync(lc, NULL) || send_call(lc, call))
            crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, "the database connection broke");
        else
            crest__pg_flush_out(lc);
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
            crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, "the database connection broke");
        else
            crest__pg_flush_out(lc);
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
        crest__pg_complete(call, rows, &err);
    } else {
        if (lc->listener) /* its LISTEN's segment */
            crest__pg_listen_answered(lc, fail);
        PQclear(res);
        PQclear(fail);
    }
    if (lc->state == L_DOWN)
        return;
    if (!lc->n) {
        uv_timer_stop(&lc->timer);
        lc->cancel_sent = 0;
        if (!lc->owner && !lc->listener) /* (the listener is no pool connection: nothing to give back) */
            crest__pg_release(lc);
    }
}

/* Reads what the server answered, operation by operation. */
void crest__pg_read_results(pg_lconn *lc)
{
    if (!PQconsumeInput(lc->c.pg)) {
        crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, "the database connection broke");
        return;
    }
    while (lc->state != L_DOWN && lc->n && !PQisBusy(lc->c.pg)) {
        pg_op *op = &lc->ops[lc->head];
        PGresult *r = PQgetResult(lc->c.pg);
        if (op->kind == OP_SYNC) {
            pg_call *call = op->call;
            if (!r || PQresultStatus(r) != PGRES_PIPELINE_SYNC) {
                PQclear(r);
                crest__pg_drop(lc, CREST__DBERR_UNAVAILABLE, "the database answered out of order");
                return;
            }
            PQclear(r);
            crest__pg_pop_op(lc);
            end_segment(lc, call);
            continue;
        }
        if (!r) { /* this operation's results are all in */
            crest__pg_pop_op(lc);
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
    if (lc->listener && lc->state != L_DOWN)
        crest__pg_listen_heard(lc);
}
