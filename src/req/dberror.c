/* dberror.c — how a failed database call becomes an HTTP answer, for REST
 * modules and SQL endpoints alike: the store classifies its error into a
 * store-neutral kind (src/store/store.h; SQLite's in
 * src/store/sqlite_error.c), and one table here maps kinds to codes of the
 * table of every code (src/core/errors.c), the same for every store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "req.h"

/* ---- kinds → HTTP: one table for every store ---- */

/* The code of each kind, and so its status and detail, comes from the one
 * table of codes (src/core/errors.c). */
static const struct {
    crest__ecode e;
    const char *retry_after; /* seconds, or NULL */
} answers[CREST__DBERR_COUNT] = {
    [CREST__DBERR_UNIQUE] = {CREST__E_CONFLICT, NULL},
    /* a write with values: the body names a row that does not exist */
    [CREST__DBERR_FOREIGN_KEY] = {CREST__E_MISSING_REFERENCE, NULL},
    /* a delete: other rows still refer to this one */
    [CREST__DBERR_REFERENCED] = {CREST__E_STILL_REFERENCED, NULL},
    [CREST__DBERR_NOT_NULL] = {CREST__E_CONSTRAINT_VIOLATED, NULL},
    [CREST__DBERR_CHECK] = {CREST__E_CONSTRAINT_VIOLATED, NULL},
    [CREST__DBERR_CONSTRAINT] = {CREST__E_CONSTRAINT_VIOLATED, NULL},
    [CREST__DBERR_DEADLINE] = {CREST__E_STATEMENT_TIMEOUT, NULL},
    [CREST__DBERR_BUSY] = {CREST__E_DATABASE_BUSY, "1"},
    [CREST__DBERR_UNAVAILABLE] = {CREST__E_DATABASE_UNAVAILABLE, "1"},
    [CREST__DBERR_STORAGE] = {CREST__E_STORAGE_FULL, "30"},
    [CREST__DBERR_NOMEM] = {CREST__E_OUT_OF_MEMORY, NULL},
    [CREST__DBERR_TOO_LARGE] = {CREST__E_RESPONSE_TOO_LARGE, NULL},
    [CREST__DBERR_RAISED] = {CREST__E_RAISED, NULL}, /* the trigger's status and detail */
    [CREST__DBERR_OTHER] = {CREST__E_INTERNAL_ERROR, NULL},
    /* what is left once the transaction ran again CREST__CONFLICT_RETRIES
     * times (the store on the loop, crest__rest_write_route for a write
     * unit) and lost each time */
    [CREST__DBERR_CONFLICT] = {CREST__E_DATABASE_BUSY, "1"},
};

int crest__dberr_answer(crest_req *req, crest_res *res, const crest__dberr *e)
{
    if (e->kind == CREST__DBERR_CONFLICT)
        req->db_conflict = true; /* (the write unit may run again) */
    if (e->kind == CREST__DBERR_RAISED)
        return crest__res_fail_status(res, CREST__E_RAISED, e->status, "%s", e->detail);
    if (e->kind == CREST__DBERR_OTHER || e->kind == CREST__DBERR_STORAGE)
        /* The cause goes to the log with the request id, never to the client. */
        fprintf(stderr, "{\"event\":\"%s\",\"request_id\":\"%s\",\"code\":%d%s%s%s}\n",
                e->kind == CREST__DBERR_STORAGE ? "storage_error" : "sql_error", req->id, e->native,
                e->state[0] ? ",\"sqlstate\":\"" : "", e->state, e->state[0] ? "\"" : "");
    res->retry_after = answers[e->kind].retry_after;
    crest__res_fail(res, answers[e->kind].e, NULL);
    if (e->kind == CREST__DBERR_UNIQUE) /* name the key's columns */
        for (const char *c = e->columns; c && *c; c += strlen(c) + 1)
            crest_res_error_field(res, c, "is already taken");
    return -1;
}
