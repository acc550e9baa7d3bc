/* rows.c — results as every store returns them (store.h): cells written as
 * JSON the way the database typed them or as a declared type (a model
 * field's, an SQL endpoint's `columns:`) — the one cell writer REST
 * modules, SQL endpoints and C handlers share — and the public crest_rows
 * API. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../json/json_internal.h"
#include "crest/crest.h"
#include "crest/rest.h"
#include "store.h"

int crest__rows_init(crest__rows *r, crest__arena *a, unsigned ncols)
{
    memset(r, 0, sizeof *r);
    r->ncols = ncols;
    if (ncols) {
        r->names = crest__arena_calloc(a, ncols, sizeof *r->names);
        if (!r->names)
            return -1;
    }
    return 0;
}

/* A float as SQLite writes it as text ("%!.15g": "100.0", "1.0e+20"). */
static int float_text(char *buf, size_t cap, double d)
{
    int n = snprintf(buf, cap, "%.15g", d);
    if (n <= 0 || (size_t)n >= cap - 3 || !isfinite(d) || strchr(buf, '.'))
        return n;
    char *e = strchr(buf, 'e');
    size_t at = e ? (size_t)(e - buf) : (size_t)n;
    memmove(buf + at + 2, buf + at, (size_t)n - at + 1);
    buf[at] = '.';
    buf[at + 1] = '0';
    return n + 2;
}

void crest__cell_write(crest_json *w, const crest__cell *c)
{
    switch ((crest__vkind)c->k) {
    case CREST__V_NULL:
        crest_json_null(w);
        break;
    case CREST__V_BOOL:
        crest_json_bool(w, c->v.i != 0);
        break;
    case CREST__V_INT:
        crest_json_int(w, c->v.i);
        break;
    case CREST__V_FLOAT:
        crest_json_double(w, c->v.f);
        break;
    case CREST__V_JSON:
        crest_json_raw(w, c->v.s, c->n);
        break;
    default:
        crest_json_strn(w, c->v.s ? c->v.s : "", c->n);
    }
}

void crest__cell_write_text(crest_json *w, const crest__cell *c)
{
    char buf[64];
    switch ((crest__vkind)c->k) {
    case CREST__V_NULL:
        crest_json_null(w);
        break;
    case CREST__V_BOOL:
    case CREST__V_INT: {
        int n = snprintf(buf, sizeof buf, "%lld", (long long)c->v.i);
        crest_json_strn(w, buf, (size_t)n);
        break;
    }
    case CREST__V_FLOAT: {
        int n = float_text(buf, sizeof buf, c->v.f);
        crest_json_strn(w, buf, n > 0 ? (size_t)n : 0);
        break;
    }
    default:
        crest_json_strn(w, c->v.s ? c->v.s : "", c->n);
    }
}

/* Text a database gives for a boolean ("true", "f", "1"...); -1 if none. */
static int bool_text(const char *s, size_t n)
{
    static const char *const yes[] = {"true", "t", "1"}, *const no[] = {"false", "f", "0"};
    for (size_t i = 0; i < 3; i++) {
        if (strlen(yes[i]) == n && !strncasecmp(s, yes[i], n))
            return 1;
        if (strlen(no[i]) == n && !strncasecmp(s, no[i], n))
            return 0;
    }
    return -1;
}

int crest__cell_write_as(crest_json *w, const crest__cell *c, int type, bool strict)
{
    crest__vkind k = (crest__vkind)c->k;
    /* The common cases first: the cell is of the type's own kind. */
    switch ((crest_field_type)type) {
    case CREST_F_STRING:
    case CREST_F_TEXT:
    case CREST_F_DATE:
    case CREST_F_DATETIME:
    case CREST_F_UUID:
        if (k >= CREST__V_TEXT && k != CREST__V_JSON && c->v.s) {
            crest_json_strn(w, c->v.s, c->n);
            return 0;
        }
        break;
    case CREST_F_REF: /* (a ref field is an int: see crest__mfield.ref) */
    case CREST_F_INT:
        if (k == CREST__V_INT) {
            crest_json_int(w, c->v.i);
            return 0;
        }
        break;
    case CREST_F_BOOL:
        if (k == CREST__V_INT || k == CREST__V_BOOL) {
            crest_json_bool(w, c->v.i != 0);
            return 0;
        }
        break;
    default:
        break;
    }
    bool text = crest__vkind_is_text(k) && c->v.s, num = k == CREST__V_INT || k == CREST__V_BOOL || k == CREST__V_FLOAT;
    double d = k == CREST__V_FLOAT ? c->v.f : (double)c->v.i;
    if (k == CREST__V_NULL || !type) {
        crest__cell_write(w, c);
        return 0;
    }
    switch ((crest_field_type)type) {
    case CREST_F_REF: /* (a ref field is an int: see crest__mfield.ref) */
    case CREST_F_INT: {
        int64_t v;
        if (k == CREST__V_INT || k == CREST__V_BOOL) {
            crest_json_int(w, c->v.i);
            return 0;
        }
        if (k == CREST__V_FLOAT && d == floor(d) && fabs(d) < 9.0e15) {
            crest_json_int(w, (int64_t)d);
            return 0;
        }
        if (k == CREST__V_FLOAT && d == floor(d) && isfinite(d)) {
            /* An integer past 2^53 that SQLite holds as a float, such as a
             * sum past 64 bits (crest's sum turns to a float there): its
             * digits, exactly the float's value. An int is an integer of any
             * size, as PostgreSQL's sum(bigint) (numeric) is. */
            char digits[400];
            int n = snprintf(digits, sizeof digits, "%.0f", d);
            crest_json_raw(w, digits, (size_t)n);
            return 0;
        }
        if (text && !crest__parse_int(c->v.s, c->n, &v)) {
            crest_json_int(w, v);
            return 0;
        }
        break;
    }
    case CREST_F_FLOAT:
        if (num || (text && !crest__parse_double(c->v.s, c->n, &d))) {
            crest_json_double(w, d);
            return 0;
        }
        break;
    case CREST_F_BOOL: {
        int b = num ? d != 0 : text ? bool_text(c->v.s, c->n) : -1;
        if (b >= 0) {
            crest_json_bool(w, b);
            return 0;
        }
        break;
    }
    case CREST_F_JSON: {
        /* Stored JSON text as the value it holds; text that is not JSON
         * (written by another program) as a string. */
        json_t *v = text ? json_loadb(c->v.s, c->n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL) : NULL;
        if (v) {
            crest__json_write_value(w, v);
            json_decref(v);
        } else {
            crest__cell_write(w, c);
        }
        return 0;
    }
    case CREST_F_STRING:
    case CREST_F_TEXT:
    case CREST_F_DATE:
    case CREST_F_DATETIME:
    case CREST_F_UUID: /* the database's text of the value, a number included */
        crest__cell_write_text(w, c);
        return 0;
    }
    if (strict)
        return -1;
    crest__cell_write(w, c); /* as stored */
    return 0;
}

/* ---- the public API (crest.h) ---- */

_Static_assert(sizeof(crest_value) == sizeof(crest__val) && offsetof(crest_value, s) == offsetof(crest__val, s) &&
                   offsetof(crest_value, len) == offsetof(crest__val, n) &&
                   offsetof(crest_value, f) == offsetof(crest__val, f) &&
                   (int)CREST_V_UUID == (int)CREST__V_UUID && (int)CREST_V_TEXT == (int)CREST__V_TEXT,
               "crest_value is crest__val");

static const crest__cell *cur(const crest_rows *r, unsigned col)
{
    static const crest__cell null_cell = {.k = CREST__V_NULL};
    if (!r || r->at == 0 || r->at > r->nrows || col >= r->ncols)
        return &null_cell;
    return crest__rows_cell(r, r->at - 1, col);
}

size_t crest_rows_count(const crest_rows *r) { return r ? r->nrows : 0; }
unsigned crest_rows_columns(const crest_rows *r) { return r ? r->ncols : 0; }

const char *crest_rows_name(const crest_rows *r, unsigned col)
{
    return r && col < r->ncols ? r->names[col] : NULL;
}

bool crest_rows_next(crest_rows *r)
{
    if (!r || r->at > r->nrows)
        return false;
    r->at++;
    return r->at <= r->nrows;
}

crest_vtype crest_rows_type(const crest_rows *r, unsigned col) { return (crest_vtype)cur(r, col)->k; }
bool crest_rows_is_null(const crest_rows *r, unsigned col) { return cur(r, col)->k == CREST__V_NULL; }

int64_t crest_rows_int(const crest_rows *r, unsigned col)
{
    const crest__cell *c = cur(r, col);
    return c->k == CREST__V_INT || c->k == CREST__V_BOOL ? c->v.i : c->k == CREST__V_FLOAT ? (int64_t)c->v.f : 0;
}

double crest_rows_float(const crest_rows *r, unsigned col)
{
    const crest__cell *c = cur(r, col);
    return c->k == CREST__V_FLOAT ? c->v.f : c->k == CREST__V_INT || c->k == CREST__V_BOOL ? (double)c->v.i : 0;
}

const char *crest_rows_text(const crest_rows *r, unsigned col, size_t *len)
{
    const crest__cell *c = cur(r, col);
    bool text = crest__vkind_is_text((crest__vkind)c->k);
    if (len)
        *len = text ? c->n : 0;
    return text ? c->v.s : NULL;
}

void crest_rows_write(const crest_rows *r, crest_json *w)
{
    crest_json_object_begin(w);
    for (unsigned i = 0; r && i < r->ncols; i++) {
        crest_json_key(w, r->names[i]);
        crest__cell_write(w, cur(r, i));
    }
    crest_json_object_end(w);
}

int64_t crest_rows_changes(const crest_rows *r) { return r ? r->changes : 0; }
int64_t crest_rows_last_id(const crest_rows *r) { return r ? r->last_id : 0; }
