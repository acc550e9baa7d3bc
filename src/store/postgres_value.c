/* postgres_value.c — crest's values as PostgreSQL parameters, and
 * PostgreSQL's results as crest's typed cells. Parameters go as text with a
 * type where the value's kind is one (bool, bigint, double precision) and
 * as `unknown` otherwise, so the server types text, dates, datetimes, JSON
 * and UUIDs from where they are used (a jsonb column, a date comparison).
 * Results come as text (the session runs in UTC with ISO dates, so a
 * timestamptz reads "2026-01-31 12:00:00.123+00") and each column is typed
 * by its type OID: a timestamp becomes crest's stored form,
 * "2026-01-31T12:00:00.123Z", as SQLite's store serves it; an array a JSON
 * array of cells of its element type (postgres_array.c). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "postgres_internal.h"

/* The text of v (not NULL) in the arena a, and its type (0 for text kinds:
 * the server types them where they are used); NULL when out of memory. */
static const char *param_text(crest__arena *a, const crest__val *v, Oid *type)
{
    char num[40];
    switch (v->k) {
    case CREST__V_BOOL:
        *type = PG_BOOL;
        return v->i ? "t" : "f";
    case CREST__V_INT:
        *type = PG_INT8;
        snprintf(num, sizeof num, "%lld", (long long)v->i);
        return crest__arena_strdup(a, num);
    case CREST__V_FLOAT:
        *type = PG_FLOAT8;
        if (isnan(v->f))
            return "NaN";
        if (isinf(v->f))
            return v->f > 0 ? "Infinity" : "-Infinity";
        snprintf(num, sizeof num, "%.17g", v->f);
        return crest__arena_strdup(a, num);
    default:
        *type = 0;
        return crest__arena_strndup(a, v->s ? v->s : "", v->n);
    }
}

/* The list l as an array's text, {"a","b\"c"}: each element quoted, its
 * '"' and '\' escaped; its type the array of the elements' (0 for text
 * kinds). NULL when out of memory. */
static const char *array_text(crest__arena *a, const crest__bindlist *l, Oid *type)
{
    const char **el = crest__arena_calloc(a, l->n ? l->n : 1, sizeof *el);
    if (!el)
        return NULL;
    Oid et = 0;
    size_t len = 3; /* {} and the NUL */
    for (unsigned i = 0; i < l->n; i++) {
        if (!(el[i] = param_text(a, &l->v[i], &et)))
            return NULL;
        len += 3; /* the quotes, a comma */
        for (const char *c = el[i]; *c; c++)
            len += *c == '"' || *c == '\\' ? 2 : 1;
    }
    char *out = crest__arena_alloc(a, len), *o = out;
    if (!out)
        return NULL;
    *o++ = '{';
    for (unsigned i = 0; i < l->n; i++) {
        if (i)
            *o++ = ',';
        *o++ = '"';
        for (const char *c = el[i]; *c; c++) {
            if (*c == '"' || *c == '\\')
                *o++ = '\\';
            *o++ = *c;
        }
        *o++ = '"';
    }
    *o++ = '}';
    *o = '\0';
    *type = et == PG_BOOL ? PG_BOOL_ARRAY : et == PG_INT8 ? PG_INT8_ARRAY : et == PG_FLOAT8 ? PG_FLOAT8_ARRAY : 0;
    return out;
}

int crest__pg_params_of(crest__arena *a, const crest__query *q, pg_params *out)
{
    unsigned n = q->nbinds;
    memset(out, 0, sizeof *out);
    out->n = n;
    if (!n)
        return 0;
    out->types = crest__arena_calloc(a, n, sizeof *out->types);
    out->values = crest__arena_calloc(a, n, sizeof *out->values);
    out->lengths = crest__arena_calloc(a, n, sizeof *out->lengths);
    if (!out->types || !out->values || !out->lengths)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        const crest__bindlist *l = q->lists ? q->lists[i] : NULL;
        if (!l && q->binds[i].k == CREST__V_NULL)
            continue;
        const char *s = l ? array_text(a, l, &out->types[i]) : param_text(a, &q->binds[i], &out->types[i]);
        if (!s)
            return -1;
        out->values[i] = s;
        out->lengths[i] = (int)strlen(s);
    }
    return 0;
}

/* "2026-01-31 12:00:00.123456+00" (or without a fraction, or a timestamp
 * without a zone, taken as UTC) → "2026-01-31T12:00:00.123Z" in out (>= 25
 * bytes). -1 for anything else (infinity, BC, a year past 9999): then it is
 * served as the server wrote it. */
static int stored_datetime(const char *s, size_t n, char *out)
{
    if (n < 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':')
        return -1;
    static const int at[] = {0, 5, 8, 11, 14, 17}, len[] = {4, 2, 2, 2, 2, 2};
    for (size_t i = 0; i < 6; i++)
        if (crest__digits(s + at[i], len[i]) < 0)
            return -1;
    size_t i = 19;
    char ms[4] = "000";
    if (i < n && s[i] == '.') {
        for (int k = 0; ++i < n && s[i] >= '0' && s[i] <= '9'; k++)
            if (k < 3)
                ms[k] = s[i];
    }
    /* The session's zone is UTC: the offset, when there is one, is +00. */
    if (!(i == n || (n - i == 3 && !memcmp(s + i, "+00", 3))))
        return -1;
    memcpy(out, s, 10);
    out[10] = 'T';
    memcpy(out + 11, s + 11, 8);
    out[19] = '.';
    memcpy(out + 20, ms, 3);
    out[23] = 'Z';
    out[24] = 0;
    return 0;
}

/* numeric: an integer that fits is an INT, anything else a FLOAT (as
 * SQLite holds a sum or an average). */
static void numeric_cell(crest__cell *c, const char *s)
{
    if (!strpbrk(s, ".eEN")) { /* (N: NaN) */
        char *end;
        errno = 0;
        long long i = strtoll(s, &end, 10);
        if (!errno && end != s && !*end) {
            c->k = CREST__V_INT;
            c->v.i = i;
            return;
        }
    }
    c->k = CREST__V_FLOAT;
    c->v.f = strtod(s, NULL);
}

void crest__pg_cell_view(crest__cell *c, unsigned oid, const char *s, size_t n, char buf[32])
{
    switch (oid) {
    case PG_BOOL:
        c->k = CREST__V_BOOL;
        c->v.i = s[0] == 't';
        return;
    case PG_INT2:
    case PG_INT4:
    case PG_INT8:
    case PG_OID:
        c->k = CREST__V_INT;
        c->v.i = strtoll(s, NULL, 10);
        return;
    case PG_FLOAT4:
    case PG_FLOAT8:
        c->k = CREST__V_FLOAT;
        c->v.f = strtod(s, NULL);
        return;
    case PG_NUMERIC:
        numeric_cell(c, s);
        return;
    case PG_TIMESTAMPTZ:
    case PG_TIMESTAMP:
        if (!stored_datetime(s, n, buf)) {
            s = buf;
            n = 24;
            c->k = CREST__V_DATETIME;
        } else {
            c->k = CREST__V_TEXT;
        }
        break;
    case PG_DATE:
        c->k = n == 10 ? CREST__V_DATE : CREST__V_TEXT;
        break;
    case PG_JSON:
    case PG_JSONB:
        c->k = CREST__V_JSON;
        break;
    case PG_UUID:
        c->k = CREST__V_UUID;
        break;
    default:
        c->k = CREST__V_TEXT;
    }
    c->v.s = s;
    c->n = (uint32_t)n;
}

/* A cell of column type oid from the server's text s (n bytes), its text
 * copied into the arena a; an array as a JSON array of typed elements.
 * 0, -1 out of memory, -2 too long for a cell. */
static int text_cell(crest__cell *c, Oid oid, const char *s, size_t n, crest__arena *a)
{
    if (n > UINT32_MAX)
        return -2;
    unsigned elem = crest__pg_array_elem(oid);
    if (elem) {
        const char *json;
        size_t len;
        int rc = crest__pg_array_json(a, elem, s, n, &json, &len);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            if (len > UINT32_MAX)
                return -2;
            c->k = CREST__V_JSON;
            c->v.s = json;
            c->n = (uint32_t)len;
            return 0;
        }
        /* Text that is no array's (it cannot be): served as the server wrote it. */
        oid = PG_TEXT;
    }
    char buf[32];
    crest__pg_cell_view(c, oid, s, n, buf);
    if (!crest__vkind_is_text((crest__vkind)c->k))
        return 0;
    char *t = crest__arena_strndup(a, c->v.s, c->n);
    if (!t)
        return -1;
    c->v.s = t;
    return 0;
}

/* What a write's command tag says it changed ("INSERT 0 3", "UPDATE 2");
 * 0 for a read. */
static int64_t changes_of(PGresult *res)
{
    const char *tag = PQcmdStatus(res);
    if (!tag || !(!strncmp(tag, "INSERT", 6) || !strncmp(tag, "UPDATE", 6) || !strncmp(tag, "DELETE", 6) ||
                  !strncmp(tag, "MERGE", 5)))
        return 0;
    return strtoll(PQcmdTuples(res), NULL, 10);
}

/* The id of the last row an INSERT gave back: the integer `id` column of
 * its RETURNING (the last row kept), else 0. PostgreSQL has no rowid to
 * tell, as SQLite's last_insert_rowid does; crest's tables (and the tables
 * its users write for it) name their key id. */
static int64_t last_id_of(PGresult *res, const crest__rows *r)
{
    const char *cmd = PQcmdStatus(res);
    if (!cmd || strncmp(cmd, "INSERT ", 7) || !r->nrows)
        return 0;
    for (unsigned col = 0; col < r->ncols; col++) {
        const crest__cell *c = &r->cells[(r->nrows - 1) * r->ncols + col];
        if (!strcmp(PQfname(res, (int)col), "id"))
            return c->k == CREST__V_INT ? c->v.i : 0;
    }
    return 0;
}

int crest__pg_rows(PGresult *res, crest__arena *a, size_t max_rows, bool nonames, size_t max_bytes,
                   crest__rows **out, crest__dberr *err)
{
    memset(err, 0, sizeof *err);
    unsigned ncols = (unsigned)PQnfields(res);
    size_t nrows = (size_t)PQntuples(res);
    if (max_rows && nrows > max_rows)
        nrows = max_rows;
    crest__rows *r = crest__arena_alloc(a, sizeof *r);
    if (!r || crest__rows_init(r, a, ncols))
        goto nomem;
    for (unsigned i = 0; !nonames && i < ncols; i++)
        if (!(r->names[i] = crest__arena_strdup(a, PQfname(res, (int)i))))
            goto nomem;
    if (nrows && ncols) {
        r->cells = crest__arena_calloc(a, nrows * ncols, sizeof *r->cells);
        if (!r->cells)
            goto nomem;
    }
    r->cap = nrows;
    for (size_t row = 0; row < nrows; row++) {
        for (unsigned col = 0; col < ncols; col++) {
            crest__cell *c = &r->cells[row * ncols + col];
            if (PQgetisnull(res, (int)row, (int)col)) {
                c->k = CREST__V_NULL;
                r->bytes += 4;
                continue;
            }
            size_t n = (size_t)PQgetlength(res, (int)row, (int)col);
            int rc = text_cell(c, PQftype(res, (int)col), PQgetvalue(res, (int)row, (int)col), n, a);
            if (rc == -1)
                goto nomem;
            r->bytes += crest__vkind_is_text((crest__vkind)c->k) ? (size_t)c->n + 2 : 1;
            if (rc == -2 || (max_bytes && r->bytes > max_bytes)) {
                err->kind = CREST__DBERR_TOO_LARGE;
                return -1;
            }
        }
        r->nrows++;
    }
    r->changes = changes_of(res);
    r->last_id = last_id_of(res, r);
    *out = r;
    return 0;
nomem:
    err->kind = CREST__DBERR_NOMEM;
    return -1;
}
