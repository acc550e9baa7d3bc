/* sqlgen.c — the second stage of the query path: a plan becomes SQLite SQL
 * text with every value bound. Identifiers come only from the model (quoted
 * once, in model.c). Null semantics are explicit: $ne and $nin keep rows
 * whose field is NULL, $not is two-valued (NOT coalesce(x, 0)).
 * Case-sensitive $like is SQLite's GLOB with the pattern translated;
 * $ilike is LIKE (ASCII case folding, as SQLite's LIKE does). */
#include "rest_internal.h"

void crest__sql_init(crest__sql *q, crest__arena *a)
{
    memset(q, 0, sizeof *q);
    crest__buf_init(&q->text, 0);
    q->arena = a;
}

void crest__sql_dispose(crest__sql *q) { crest__buf_dispose(&q->text); }

void crest__sql_add(crest__sql *q, const char *s)
{
    if (crest__buf_appends(&q->text, s))
        q->err = CREST_ENOMEM;
}

void crest__sql_bind(crest__sql *q, crest__val v)
{
    if (q->nbinds == q->capbinds) {
        unsigned cap = q->capbinds ? q->capbinds * 2 : 16;
        crest__val *nb = crest__arena_alloc(q->arena, cap * sizeof *nb);
        if (!nb) {
            q->err = CREST_ENOMEM;
            return;
        }
        if (q->nbinds)
            memcpy(nb, q->binds, q->nbinds * sizeof *nb);
        q->binds = nb;
        q->capbinds = cap;
    }
    q->binds[q->nbinds++] = v;
    crest__sql_add(q, "?");
}

static void bind_text(crest__sql *q, const char *s, size_t n)
{
    crest__val v = {.k = CREST__V_TEXT, .s = s, .n = n};
    crest__sql_bind(q, v);
}

/* %, _ and \ of a literal, escaped for LIKE ... ESCAPE '\'. */
static char *like_literal(crest__arena *a, const char *s, size_t n, size_t *outn)
{
    char *o = crest__arena_alloc(a, 2 * n + 3);
    if (!o)
        return NULL;
    size_t k = 0;
    o[k++] = '%';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' || s[i] == '_' || s[i] == '\\')
            o[k++] = '\\';
        o[k++] = s[i];
    }
    o[k++] = '%';
    o[k] = 0;
    *outn = k;
    return o;
}

/* A LIKE pattern (% and _ wildcards) as a GLOB pattern: * and ?, with GLOB's
 * own specials made literal ([*], [?], [[]). */
static char *like_to_glob(crest__arena *a, const char *s, size_t n, size_t *outn)
{
    char *o = crest__arena_alloc(a, 3 * n + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%')
            o[k++] = '*';
        else if (ch == '_')
            o[k++] = '?';
        else if (ch == '*' || ch == '?' || ch == '[') {
            o[k++] = '[';
            o[k++] = ch;
            o[k++] = ']';
        } else
            o[k++] = ch;
    }
    o[k] = 0;
    *outn = k;
    return o;
}

static void in_list(crest__sql *q, const crest__qnode *n, bool *has_null, unsigned *nonnull)
{
    *has_null = false;
    *nonnull = 0;
    for (unsigned i = 0; i < n->nvals; i++) {
        if (n->vals[i].k == CREST__V_NULL)
            *has_null = true;
        else
            (*nonnull)++;
    }
    CREST_UNUSED(q);
}

static void values(crest__sql *q, const crest__qnode *n)
{
    crest__sql_add(q, "(");
    bool first = true;
    for (unsigned i = 0; i < n->nvals; i++) {
        if (n->vals[i].k == CREST__V_NULL)
            continue;
        if (!first)
            crest__sql_add(q, ", ");
        first = false;
        crest__sql_bind(q, n->vals[i]);
    }
    crest__sql_add(q, ")");
}

static void cmp(crest__sql *q, const crest__qnode *n)
{
    const char *col = n->field->qname;
    static const char *const rel[] = {[CREST__OP_LT] = " < ", [CREST__OP_GT] = " > ", [CREST__OP_LE] = " <= ",
                                      [CREST__OP_GE] = " >= "};
    switch (n->op) {
    case CREST__OP_EQ:
        crest__sql_add(q, col);
        crest__sql_add(q, " = ");
        crest__sql_bind(q, n->vals[0]);
        break;
    case CREST__OP_NE: /* null-safe: a NULL field is "not equal" */
        crest__sql_add(q, col);
        crest__sql_add(q, " IS NOT ");
        crest__sql_bind(q, n->vals[0]);
        break;
    case CREST__OP_LT:
    case CREST__OP_GT:
    case CREST__OP_LE:
    case CREST__OP_GE:
        crest__sql_add(q, col);
        crest__sql_add(q, rel[n->op]);
        crest__sql_bind(q, n->vals[0]);
        break;
    case CREST__OP_IN: {
        bool has_null;
        unsigned nn;
        in_list(q, n, &has_null, &nn);
        if (!nn && !has_null) {
            crest__sql_add(q, "0");
            break;
        }
        crest__sql_add(q, "(");
        if (nn) {
            crest__sql_add(q, col);
            crest__sql_add(q, " IN ");
            values(q, n);
        }
        if (has_null) {
            crest__sql_add(q, nn ? " OR " : "");
            crest__sql_add(q, col);
            crest__sql_add(q, " IS NULL");
        }
        crest__sql_add(q, ")");
        break;
    }
    case CREST__OP_NIN: {
        bool has_null;
        unsigned nn;
        in_list(q, n, &has_null, &nn);
        if (!nn && !has_null) {
            crest__sql_add(q, "1");
            break;
        }
        crest__sql_add(q, "(");
        if (has_null) { /* NULL is excluded: the rest must be outside the list */
            crest__sql_add(q, col);
            crest__sql_add(q, " IS NOT NULL");
            if (nn) {
                crest__sql_add(q, " AND ");
                crest__sql_add(q, col);
                crest__sql_add(q, " NOT IN ");
                values(q, n);
            }
        } else {
            crest__sql_add(q, col);
            crest__sql_add(q, " IS NULL OR ");
            crest__sql_add(q, col);
            crest__sql_add(q, " NOT IN ");
            values(q, n);
        }
        crest__sql_add(q, ")");
        break;
    }
    case CREST__OP_NULL:
        crest__sql_add(q, col);
        crest__sql_add(q, " IS NULL");
        break;
    case CREST__OP_NOTNULL:
        crest__sql_add(q, col);
        crest__sql_add(q, " IS NOT NULL");
        break;
    case CREST__OP_LIKE: {
        size_t len;
        char *g = like_to_glob(q->arena, n->vals[0].s, n->vals[0].n, &len);
        if (!g) {
            q->err = CREST_ENOMEM;
            return;
        }
        crest__sql_add(q, col);
        crest__sql_add(q, " GLOB ");
        bind_text(q, g, len);
        break;
    }
    case CREST__OP_ILIKE:
        crest__sql_add(q, col);
        crest__sql_add(q, " LIKE ");
        crest__sql_bind(q, n->vals[0]);
        crest__sql_add(q, " ESCAPE '\\'");
        break;
    case CREST__OP_CONTAINS:
        crest__sql_add(q, "instr(");
        crest__sql_add(q, col);
        crest__sql_add(q, ", ");
        crest__sql_bind(q, n->vals[0]);
        crest__sql_add(q, ") > 0");
        break;
    case CREST__OP_ICONTAINS: {
        size_t len;
        char *p = like_literal(q->arena, n->vals[0].s, n->vals[0].n, &len);
        if (!p) {
            q->err = CREST_ENOMEM;
            return;
        }
        crest__sql_add(q, col);
        crest__sql_add(q, " LIKE ");
        bind_text(q, p, len);
        crest__sql_add(q, " ESCAPE '\\'");
        break;
    }
    }
}

void crest__sql_where(crest__sql *q, const crest__qnode *n)
{
    if (!n) {
        crest__sql_add(q, "1");
        return;
    }
    switch (n->kind) {
    case CREST__Q_TRUE:
        crest__sql_add(q, "1");
        return;
    case CREST__Q_FALSE:
        crest__sql_add(q, "0");
        return;
    case CREST__Q_CMP:
        cmp(q, n);
        return;
    case CREST__Q_NOT:
        crest__sql_add(q, "NOT coalesce(");
        crest__sql_where(q, n->kids[0]);
        crest__sql_add(q, ", 0)");
        return;
    case CREST__Q_AND:
    case CREST__Q_OR:
        crest__sql_add(q, "(");
        for (unsigned i = 0; i < n->nkids; i++) {
            if (i)
                crest__sql_add(q, n->kind == CREST__Q_AND ? " AND " : " OR ");
            crest__sql_where(q, n->kids[i]);
        }
        crest__sql_add(q, ")");
        return;
    }
}

void crest__sql_order(crest__sql *q, const crest__plan *p)
{
    for (unsigned i = 0; i < p->nsort; i++) {
        crest__sql_add(q, i ? ", " : " ORDER BY ");
        crest__sql_add(q, p->sort[i].field->qname);
        if (p->sort[i].desc)
            crest__sql_add(q, " DESC");
    }
}
