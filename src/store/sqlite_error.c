/* sqlite_error.c — SQLite's failures as the store-neutral kinds of
 * store.h: constraint kinds with the key's columns, the deadline, busy,
 * storage and availability, and a trigger's `crest:<status>:<detail>`
 * raise. The HTTP answer for each kind is made above the store
 * (src/req/dberror.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_internal.h"

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

/* What follows "failed: " in SQLite's message (arena), or NULL. */
static const char *after_failed(crest__arena *a, const char *msg)
{
    const char *p = msg ? strstr(msg, "failed: ") : NULL;
    return p && p[8] ? crest__arena_strdup(a, p + 8) : NULL;
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
        case SQLITE_CONSTRAINT_NOTNULL: /* "NOT NULL constraint failed: t.col" */
            out->kind = CREST__DBERR_NOT_NULL;
            out->columns = unique_columns(a, db ? sqlite3_errmsg(db) : NULL);
            break;
        case SQLITE_CONSTRAINT_CHECK: /* "CHECK constraint failed: <its name, or its expression>" */
            out->kind = CREST__DBERR_CHECK;
            out->constraint = after_failed(a, db ? sqlite3_errmsg(db) : NULL);
            break;
        case SQLITE_CONSTRAINT_TRIGGER: {
            const char *detail;
            if (db && crest__dberr_raised(sqlite3_errmsg(db), &out->status, &detail) &&
                (out->detail = crest__arena_strdup(a, detail)))
                out->kind = CREST__DBERR_RAISED;
            else if (db && !strcmp(sqlite3_errmsg(db), "FOREIGN KEY constraint failed"))
                /* ON DELETE RESTRICT acts as a trigger does (SQLITE_CONSTRAINT_TRIGGER) */
                out->kind = CREST__DBERR_FOREIGN_KEY;
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
    /* For logs and start-up messages, never for clients. */
    out->message = crest__arena_strdup(a, db && ext == sqlite3_extended_errcode(db) ? sqlite3_errmsg(db)
                                                                                    : sqlite3_errstr(rc));
    if (out->kind != CREST__DBERR_RAISED)
        out->detail = out->message;
}

