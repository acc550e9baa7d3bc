/* postgres_error.c — PostgreSQL's failures as the store-neutral kinds of
 * store.h, by SQLSTATE (Appendix A of the PostgreSQL manual): 23505 a
 * unique key (its columns read from the detail, "Key (a, b)=(...) already
 * exists."), 23503 a missing parent or a referenced row, 23502 not null
 * (its column), 23514 a check (its constraint), other 23xxx and 22xxx
 * (data the column refuses, in a write) the table's rules, 57014 the deadline, 40001
 * and 40P01 a conflict (the transaction runs again), 55P03 busy, 08xxx / 57P0x / 53xxx unavailable (53100 storage),
 * P0001 a RAISE in crest's `crest:<status>:<detail>` form. The HTTP answer
 * of each kind is made above the store (src/req/dberror.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres_internal.h"

/* "Key (a, b)=(1, 2) already exists." → "a\0b\0\0" (arena): the columns of
 * the key. Quoted names ("Key ("My Col")=...") lose their quotes. */
static const char *key_columns(crest__arena *a, const char *detail)
{
    const char *p = detail ? strstr(detail, "Key (") : NULL;
    const char *end = p ? strstr(p, ")=(") : NULL;
    if (!end)
        return NULL;
    p += 5;
    char *out = crest__arena_alloc(a, (size_t)(end - p) + 2), *o = out;
    if (!out)
        return NULL;
    while (p < end) {
        while (p < end && *p == ' ')
            p++;
        if (p < end && *p == '"') {
            for (p++; p < end && !(*p == '"' && p[1] != '"'); p++) {
                if (*p == '"')
                    p++;
                *o++ = *p;
            }
            p++;
        } else {
            while (p < end && *p != ',')
                *o++ = *p++;
        }
        while (p < end && *p != ',')
            p++;
        p++;
        *o++ = 0;
    }
    *o = 0;
    return out;
}

static const char *copy(crest__arena *a, const char *s) { return s ? crest__arena_strdup(a, s) : NULL; }

/* A column name, as the "\0\0"-ended list the kinds carry. */
static const char *one_column(crest__arena *a, const char *col)
{
    if (!col)
        return NULL;
    size_t n = strlen(col);
    char *out = crest__arena_alloc(a, n + 2);
    if (out) {
        memcpy(out, col, n + 1);
        out[n + 1] = 0;
    }
    return out;
}

void crest__pg_error(PGconn *c, const PGresult *res, unsigned qflags, crest__arena *a, crest__dberr *out)
{
    bool delete_ = qflags & CREST__QF_DELETE;
    memset(out, 0, sizeof *out);
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *whole = res ? PQresultErrorMessage(res) : c ? PQerrorMessage(c) : NULL;
    out->message = copy(a, primary ? primary : whole);
    out->detail = out->message;
    if (!state) {
        /* No SQLSTATE: libpq's own failure (the connection broke, out of
         * memory in the client): the database cannot be reached. */
        out->kind = c && PQstatus(c) == CONNECTION_BAD ? CREST__DBERR_UNAVAILABLE : CREST__DBERR_OTHER;
        if (res && PQresultStatus(res) == PGRES_FATAL_ERROR && c && PQstatus(c) != CONNECTION_OK)
            out->kind = CREST__DBERR_UNAVAILABLE;
        return;
    }
    snprintf(out->state, sizeof out->state, "%s", state);
    if (!strcmp(state, "23505")) {
        out->kind = CREST__DBERR_UNIQUE;
        out->columns = key_columns(a, detail);
        out->constraint = copy(a, PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME));
    } else if (!strcmp(state, "23503")) {
        /* (the statement's flag tells a delete of a row others refer to
         * from a row naming a missing parent, as on every store) */
        out->kind = delete_ ? CREST__DBERR_REFERENCED : CREST__DBERR_FOREIGN_KEY;
        out->columns = key_columns(a, detail);
        /* "Key (owner_id)=(9) is not present in table "person"."; a
         * delete: "Key (id)=(1) is still referenced from table "computer"." */
        static const char *const marks[] = {"is not present in table \"", "is still referenced from table \""};
        for (int i = 0; i < 2 && !out->table; i++) {
            const char *t = detail ? strstr(detail, marks[i]) : NULL;
            size_t n = strlen(marks[i]);
            const char *te = t ? strchr(t + n, '"') : NULL;
            if (te)
                out->table = crest__arena_strndup(a, t + n, (size_t)(te - t - n));
        }
        out->constraint = copy(a, PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME));
    } else if (!strcmp(state, "23502")) {
        out->kind = CREST__DBERR_NOT_NULL;
        out->columns = one_column(a, PQresultErrorField(res, PG_DIAG_COLUMN_NAME));
    } else if (!strcmp(state, "23514")) {
        out->kind = CREST__DBERR_CHECK;
        out->constraint = copy(a, PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME));
    } else if (!strncmp(state, "23", 2) || (!strncmp(state, "22", 2) && !(qflags & CREST__QF_READ))) {
        /* (22xxx in a read is no data a column refused: the SQL failed as
         * it ran, a malformed JSON cast, as SQLite's errors in a read are) */
        out->kind = CREST__DBERR_CONSTRAINT;
        out->constraint = copy(a, PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME));
    } else if (!strcmp(state, "57014")) {
        out->kind = CREST__DBERR_DEADLINE;
    } else if (!strcmp(state, "40001") || !strcmp(state, "40P01")) {
        out->kind = CREST__DBERR_CONFLICT;
    } else if (!strcmp(state, "55P03")) {
        out->kind = CREST__DBERR_BUSY;
    } else if (!strcmp(state, "53100")) {
        out->kind = CREST__DBERR_STORAGE;
    } else if (!strcmp(state, "53200")) {
        out->kind = CREST__DBERR_NOMEM;
    } else if (!strcmp(state, "08P01")) {
        out->kind = CREST__DBERR_OTHER; /* a protocol violation: crest's bug (parameters it did not give) */
    } else if (!strncmp(state, "08", 2) || !strncmp(state, "57P", 3) || !strncmp(state, "53", 2)) {
        out->kind = CREST__DBERR_UNAVAILABLE;
    } else if (!strcmp(state, "P0001")) {
        const char *d;
        if (primary && crest__dberr_raised(primary, &out->status, &d)) {
            out->kind = CREST__DBERR_RAISED;
            out->detail = copy(a, d);
        } else {
            out->kind = CREST__DBERR_CONSTRAINT; /* a plain RAISE: a rule of the table */
        }
    } else {
        out->kind = CREST__DBERR_OTHER;
    }
}
