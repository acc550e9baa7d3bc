/* dberror.c — how a failed database call becomes an HTTP answer, for REST
 * modules and SQL endpoints alike: the store classifies its error into a
 * store-neutral kind (src/store/store.h; SQLite's in
 * src/store/sqlite_error.c), and one table here maps kinds to status, code
 * and detail, the same for every store. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "req.h"

/* ---- kinds → HTTP: one table for every store ---- */

static const struct {
    int status;
    const char *code, *detail;
    const char *retry_after; /* seconds, or NULL */
} answers[CREST__DBERR_COUNT] = {
    [CREST__DBERR_UNIQUE] = {409, "conflict", "a row with the same unique value exists", NULL},
    /* a write with values: the body names a row that does not exist */
    [CREST__DBERR_FOREIGN_KEY] = {422, "missing_reference", "a value refers to a row that does not exist", NULL},
    /* a delete: other rows still refer to this one */
    [CREST__DBERR_REFERENCED] = {409, "still_referenced", "other rows refer to this row", NULL},
    [CREST__DBERR_NOT_NULL] = {422, "constraint_violated", "the values break a rule of the table", NULL},
    [CREST__DBERR_CHECK] = {422, "constraint_violated", "the values break a rule of the table", NULL},
    [CREST__DBERR_CONSTRAINT] = {422, "constraint_violated", "the values break a rule of the table", NULL},
    [CREST__DBERR_DEADLINE] = {504, "statement_timeout", "the query took longer than allowed", NULL},
    [CREST__DBERR_BUSY] = {503, "database_busy", "the database is busy; try again", "1"},
    [CREST__DBERR_UNAVAILABLE] = {503, "database_unavailable", "the database is not available", "1"},
    [CREST__DBERR_STORAGE] = {507, "storage_full",
                              "the database cannot grow (storage full or failing); try again later", "30"},
    [CREST__DBERR_NOMEM] = {503, "out_of_memory", "the server is short of memory", NULL},
    [CREST__DBERR_TOO_LARGE] = {500, "response_too_large", "the response is larger than the server allows", NULL},
    [CREST__DBERR_RAISED] = {0, "raised", NULL, NULL},
    [CREST__DBERR_OTHER] = {500, "internal_error", "the server could not answer", NULL},
};

int crest__dberr_answer(crest_req *req, crest_res *res, const crest__dberr *e)
{
    if (e->kind == CREST__DBERR_RAISED)
        return crest_res_error(res, e->status, answers[e->kind].code, "%s", e->detail);
    if (e->kind == CREST__DBERR_OTHER || e->kind == CREST__DBERR_STORAGE)
        /* The cause goes to the log with the request id, never to the client. */
        fprintf(stderr, "{\"event\":\"%s\",\"request_id\":\"%s\",\"code\":%d}\n",
                e->kind == CREST__DBERR_STORAGE ? "storage_error" : "sql_error", req->id, e->native);
    res->retry_after = answers[e->kind].retry_after;
    crest_res_error(res, answers[e->kind].status, answers[e->kind].code, "%s", answers[e->kind].detail);
    if (e->kind == CREST__DBERR_UNIQUE) /* name the key's columns */
        for (const char *c = e->columns; c && *c; c += strlen(c) + 1)
            crest_res_error_field(res, c, "is already taken");
    return -1;
}
