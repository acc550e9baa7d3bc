/* dberror.c — how a failed database call becomes an HTTP answer, for REST
 * modules and SQL endpoints alike, in two steps: the store's error is
 * classified into a store-neutral kind (crest__dberr_sqlite: the SQLite
 * part), then one table maps kinds to status, code and detail
 * (crest__dberr_answer: the same for every store). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "app_internal.h"

/* ---- SQLite → kinds ---- */

/* "crest:<status>:<detail>", the form a trigger's RAISE(ABORT, ...) uses to
 * answer with its own status (docs: README, "Errors raised by SQL"). Only
 * 4xx/5xx statuses crest has a reason phrase for are honoured, except 401
 * and 405, whose answers need headers SQL cannot give. */
static bool parse_raised(const char *msg, int *status, const char **detail)
{
    if (!msg || strncmp(msg, "crest:", 6))
        return false;
    const char *p = msg + 6;
    if (!(p[0] >= '4' && p[0] <= '5') || !(p[1] >= '0' && p[1] <= '9') || !(p[2] >= '0' && p[2] <= '9') ||
        p[3] != ':')
        return false;
    int st = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
    if (st == 401 || st == 405 || !strcmp(crest__status_text(st), "Unknown"))
        return false;
    p += 4;
    while (*p == ' ')
        p++;
    if (!*p)
        return false;
    *status = st;
    *detail = p;
    return true;
}

/* "UNIQUE constraint failed: tasks.title, tasks.owner" → "title\0owner\0\0"
 * (arena), the columns of the key. */
static const char *unique_columns(crest__arena *a, const char *msg)
{
    const char *p = msg ? strstr(msg, "failed: ") : NULL;
    if (!p)
        return NULL;
    p += 8;
    size_t n = strlen(p);
    char *out = crest__arena_alloc(a, n + 2), *o = out;
    if (!out)
        return NULL;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *dot = memchr(p, '.', len);
        if (dot) {
            size_t cl = len - (size_t)(dot + 1 - p);
            memcpy(o, dot + 1, cl);
            o += cl;
            *o++ = 0;
        }
        if (!end)
            break;
        p = end + 1;
        while (*p == ' ')
            p++;
    }
    *o = 0;
    return out;
}

void crest__dberr_sqlite(void *dbp, int rc, crest__arena *a, crest__dberr *out)
{
    sqlite3 *db = dbp;
    int ext = db ? sqlite3_extended_errcode(db) : rc;
    if ((ext & 0xff) != (rc & 0xff))
        ext = rc; /* the connection's last error is another call's */
    memset(out, 0, sizeof *out);
    out->native = ext;
    switch (rc & 0xff) {
    case SQLITE_INTERRUPT:
        out->kind = CREST__DBERR_DEADLINE;
        break;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        out->kind = CREST__DBERR_BUSY;
        break;
    case SQLITE_CONSTRAINT:
        switch (ext) {
        case SQLITE_CONSTRAINT_UNIQUE:
        case SQLITE_CONSTRAINT_PRIMARYKEY:
            out->kind = CREST__DBERR_UNIQUE;
            out->columns = unique_columns(a, db ? sqlite3_errmsg(db) : NULL);
            break;
        case SQLITE_CONSTRAINT_FOREIGNKEY:
            out->kind = CREST__DBERR_FOREIGN_KEY;
            break;
        case SQLITE_CONSTRAINT_NOTNULL:
            out->kind = CREST__DBERR_NOT_NULL;
            break;
        case SQLITE_CONSTRAINT_CHECK:
            out->kind = CREST__DBERR_CHECK;
            break;
        case SQLITE_CONSTRAINT_TRIGGER: {
            const char *detail;
            if (db && parse_raised(sqlite3_errmsg(db), &out->status, &detail) &&
                (out->detail = crest__arena_strdup(a, detail)))
                out->kind = CREST__DBERR_RAISED;
            else
                out->kind = CREST__DBERR_CONSTRAINT;
            break;
        }
        default:
            out->kind = CREST__DBERR_CONSTRAINT;
        }
        break;
    case SQLITE_NOMEM:
        out->kind = CREST__DBERR_NOMEM;
        break;
    /* The disk is full, a file-size limit was reached (SIGXFSZ is ignored,
     * so write() fails with EFBIG, which SQLite reports as a write error),
     * or the device fails to write: storage, not a bug of the request. A
     * failing read is the database being unavailable (503), which every
     * route documents; 507 is documented for the writes. */
    case SQLITE_FULL:
        out->kind = CREST__DBERR_STORAGE;
        break;
    case SQLITE_IOERR:
        out->kind = ext == SQLITE_IOERR_WRITE || ext == SQLITE_IOERR_FSYNC || ext == SQLITE_IOERR_DIR_FSYNC ||
                            ext == SQLITE_IOERR_TRUNCATE || ext == SQLITE_IOERR_SHMSIZE || ext == SQLITE_IOERR
                        ? CREST__DBERR_STORAGE
                        : CREST__DBERR_UNAVAILABLE;
        break;
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
        out->kind = CREST__DBERR_UNAVAILABLE;
        break;
    default:
        out->kind = CREST__DBERR_OTHER;
    }
}

/* ---- kinds → HTTP: one table for every store ---- */

static const struct {
    int status;
    const char *code, *detail;
    const char *retry_after; /* seconds, or NULL */
} answers[CREST__DBERR_COUNT] = {
    [CREST__DBERR_UNIQUE] = {409, "conflict", "a row with the same unique value exists", NULL},
    /* a write with values: the body names a row that does not exist */
    [CREST__DBERR_FOREIGN_KEY] = {422, "missing_reference", "a value refers to a row that does not exist", NULL},
    [CREST__DBERR_NOT_NULL] = {422, "constraint_violated", "the values break a rule of the table", NULL},
    [CREST__DBERR_CHECK] = {422, "constraint_violated", "the values break a rule of the table", NULL},
    [CREST__DBERR_CONSTRAINT] = {422, "constraint_violated", "the values break a rule of the table", NULL},
    [CREST__DBERR_DEADLINE] = {504, "statement_timeout", "the query took longer than allowed", NULL},
    [CREST__DBERR_BUSY] = {503, "database_busy", "the database is busy; try again", "1"},
    [CREST__DBERR_UNAVAILABLE] = {503, "database_unavailable", "the database is not available", "1"},
    [CREST__DBERR_STORAGE] = {507, "storage_full",
                              "the database cannot grow (storage full or failing); try again later", "30"},
    [CREST__DBERR_NOMEM] = {503, "out_of_memory", "the server is short of memory", NULL},
    [CREST__DBERR_RAISED] = {0, "raised", NULL, NULL},
    [CREST__DBERR_OTHER] = {500, "internal_error", "the server could not answer", NULL},
};

int crest__dberr_answer(crest_req *req, crest_res *res, const crest__dberr *e)
{
    if (e->kind == CREST__DBERR_RAISED)
        return crest_res_error(res, e->status, answers[e->kind].code, "%s", e->detail);
    if (e->kind == CREST__DBERR_FOREIGN_KEY && req->method == CREST_DELETE) /* the other side of the key */
        return crest_res_error(res, 409, "still_referenced", "other rows refer to this row");
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

int crest__sql_failure(crest_req *req, crest_res *res, void *db, int rc)
{
    crest__dberr e;
    crest__dberr_sqlite(db, rc, req->arena, &e);
    return crest__dberr_answer(req, res, &e);
}
