/* session.c — a request's use of the store: its session (made at first
 * use, with the request's deadline, the worker's connections and the
 * engine's way off the loop), statements run through it with their
 * completion counted (a deferred answer waits for them), crest_query for C
 * handlers, and crest_req_sqlite, SQLite's escape hatch. */
#include <stdlib.h>
#include <string.h>

#include "req.h"
#include "../query/query.h"

/* The store offloads through the worker's engine (src/http): work on the
 * thread pool, then after on the worker's loop. */
static int offload(void *engine_ud, void (*work)(void *), void (*after)(void *, bool), void *ud)
{
    crest__worker *w = engine_ud;
    return w->offload ? w->offload(w, work, after, ud) : -1;
}

crest__sess_config crest__worker_sess_config(crest__worker *w, crest__arena *a, unsigned timeout_ms)
{
    return (crest__sess_config){
        .arena = a,
        .deadline_us = crest__now_us() + (uint64_t)timeout_ms * 1000,
        .worker = w->aw.store,
        .offload = w->offload ? offload : NULL,
        .engine_ud = w,
    };
}

crest__sess *crest__req_sess(crest_req *req)
{
    crest_app *app = req->app;
    if (req->sess || !app->store)
        return req->sess;
    /* Every statement of this request runs under the endpoint's timeout,
     * counted from its first use of the store. */
    unsigned ms = crest__req_budget_ms(req);
    crest__sess_config cfg = req->worker ? crest__worker_sess_config(req->worker, req->arena, ms)
                                         : (crest__sess_config){.arena = req->arena};
    req->deadline_us = cfg.deadline_us = crest__now_us() + (uint64_t)ms * 1000;
    if (req->blocking)
        cfg.worker = NULL;
    cfg.blocking = req->blocking;
    cfg.statements = &req->statements;
    req->sess = app->store->vt->sess_new(app->store, &cfg);
    return req->sess;
}

void crest__req_cancel(crest_req *req)
{
    if (req->sess)
        req->app->store->vt->cancel(req->sess);
}

void crest__req_end_sess(crest_req *req)
{
    if (!req->sess)
        return;
    bool timed_out = false;
    req->app->store->vt->sess_end(req->sess, &timed_out);
    if (timed_out)
        req->timed_out = true;
    req->sess = NULL;
}

/* A statement of the request in flight: its completion, counted. */
typedef struct req_query {
    crest_req *req;
    crest__query_cb cb;
    void *ud;
} req_query;

static void req_query_done(void *p, crest__rows *rows, const crest__dberr *err)
{
    req_query *rq = p;
    rq->req->store_pending--;
    rq->cb(rq->ud, rows, err);
}

int crest__req_query(crest_req *req, crest_res *res, const crest__query *q, crest__query_cb cb, void *ud)
{
    crest__sess *ss = crest__req_sess(req);
    req_query *rq = ss ? crest__arena_alloc(req->arena, sizeof *rq) : NULL;
    if (!ss || !rq)
        return crest__res_fail(res, ss || !req->app->store ? CREST__E_OUT_OF_MEMORY : CREST__E_DATABASE_UNAVAILABLE,
                               NULL);
    *rq = (req_query){req, cb, ud};
    req->store_pending++;
    if (req->app->store->vt->query(ss, q, req_query_done, rq)) {
        req->store_pending--;
        return crest__res_fail(res, CREST__E_DATABASE_UNAVAILABLE, NULL);
    }
    return CREST_DEFERRED;
}

/* crest_query: a C handler's statement, and its callback's arguments. */
typedef struct user_query {
    crest_req *req;
    crest_res *res;
    crest_query_cb cb;
    void *ud;
} user_query;

static void user_query_done(void *p, crest__rows *rows, const crest__dberr *err)
{
    user_query *uq = p;
    crest_req *req = uq->req;
    crest_res *res = uq->res;
    if (!rows)
        crest__dberr_answer(req, res, err);
    req->in_query_cb++;
    uq->cb(req, res, rows, uq->ud);
    /* A deferred answer the callback finished goes out now that it has
     * returned (crest__res_finish waits for it). */
    if (--req->in_query_cb == 0 && res->finished && req->deferred)
        crest__req_deliver(req, res);
}

int crest_query(crest_req *req, crest_res *res, const char *sql, const crest_value *params, unsigned nparams,
                crest_query_cb cb, void *ud)
{
    user_query *uq = crest__arena_alloc(req->arena, sizeof *uq);
    if (!uq)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    *uq = (user_query){req, res, cb, ud};
    static const unsigned txn_flags[] = {
        [CREST__TXN_STMT_NONE] = 0,
        [CREST__TXN_STMT_BEGIN] = CREST__QF_TXN_BEGIN | CREST__QF_NOCACHE,
        [CREST__TXN_STMT_END] = CREST__QF_TXN_END | CREST__QF_NOCACHE,
        [CREST__TXN_STMT_SAVEPOINT] = CREST__QF_TXN_SAVEPOINT | CREST__QF_NOCACHE,
    };
    size_t len = strlen(sql);
    crest__query q = {
        .sql = sql,
        .len = len,
        .binds = (const crest__val *)params, /* the same layout (src/store/rows.c checks) */
        .nbinds = nparams,
        .flags = CREST__QF_NUMBERED | txn_flags[crest__sql_txn_control(sql, len)],
    };
    return crest__req_query(req, res, &q, user_query_done, uq);
}

void *crest_req_sqlite(crest_req *req)
{
    crest__sess *ss = crest__req_sess(req);
    return ss && req->app->store->vt == &crest__store_sqlite ? req->app->store->vt->native(ss) : NULL;
}
