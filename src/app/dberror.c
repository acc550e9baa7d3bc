/* dberror.c — how a failed SQLite call becomes an HTTP answer, for REST
 * modules and SQL endpoints alike: timeouts, busy, constraint violations,
 * out of memory; anything else is logged and answered 500. */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "app_internal.h"

int crest__sql_failure(crest_req *req, crest_res *res, void *dbp, int rc)
{
    sqlite3 *db = dbp;
    int ext = sqlite3_extended_errcode(db);
    switch (rc & 0xff) {
    case SQLITE_INTERRUPT:
        return crest_res_error(res, 504, "statement_timeout", "the query took longer than allowed");
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        res->retry_after = "1";
        return crest_res_error(res, 503, "database_busy", "the database is busy; try again");
    case SQLITE_CONSTRAINT:
        if (ext == SQLITE_CONSTRAINT_UNIQUE || ext == SQLITE_CONSTRAINT_PRIMARYKEY) {
            /* "UNIQUE constraint failed: tasks.title, tasks.owner": name the columns. */
            crest_res_error(res, 409, "conflict", "a row with the same unique value exists");
            const char *m = sqlite3_errmsg(db), *p = strstr(m, "failed: ");
            for (p = p ? p + 8 : NULL; p && *p;) {
                const char *end = strchr(p, ',');
                size_t n = end ? (size_t)(end - p) : strlen(p);
                const char *dot = memchr(p, '.', n);
                if (dot) {
                    char *col = crest__arena_strndup(req->arena, dot + 1, n - (size_t)(dot + 1 - p));
                    if (col)
                        crest_res_error_field(res, col, "is already taken");
                }
                p = end ? end + 1 : NULL;
                while (p && *p == ' ')
                    p++;
            }
            return -1;
        }
        if (ext == SQLITE_CONSTRAINT_FOREIGNKEY)
            return crest_res_error(res, 409, "conflict", "the row refers to a missing row or is still referred to");
        return crest_res_error(res, 422, "constraint_violated", "the values break a rule of the table");
    case SQLITE_NOMEM:
        return crest_res_error(res, 503, "out_of_memory", "the server is short of memory");
    default:
        /* The cause goes to the log with the request id, never to the client. */
        fprintf(stderr, "{\"event\":\"sql_error\",\"request_id\":\"%s\",\"code\":%d}\n", req->id, ext);
        return crest_res_error(res, 500, "internal_error", "the server could not answer");
    }
}
