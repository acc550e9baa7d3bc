/* compile.c — the second stage of the query path: a plan becomes SQL text
 * of one dialect, with every value bound. Identifiers come only from the
 * model, quoted here (crest__quote_ident). Null semantics are explicit:
 * $ne and $nin keep rows whose field is NULL, $not is two-valued
 * (NOT coalesce(x, false)). What differs between SQLite and PostgreSQL is
 * read from the dialect (dialect.c). */
#include <stdio.h>
#include <stdlib.h>

#include "query.h"

/* ---- the builder ---- */

void crest__sql_init(crest__sql *q, crest__arena *a, const crest__dialect *d)
{
    memset(q, 0, sizeof *q);
    crest__buf_init(&q->text, 0);
    q->arena = a;
    q->d = d;
}

void crest__sql_dispose(crest__sql *q) { crest__buf_dispose(&q->text); }

/* Appends n bytes, keeping the text NUL-terminated (not counted in len). */
static void add_n(crest__sql *q, const char *s, size_t n)
{
    if (q->err)
        return;
    if (crest__buf_reserve(&q->text, n + 1)) {
        q->err = CREST_ENOMEM;
        return;
    }
    memcpy(q->text.ptr + q->text.len, s, n);
    q->text.len += n;
    q->text.ptr[q->text.len] = 0;
}

void crest__sql_add(crest__sql *q, const char *s) { add_n(q, s, strlen(s)); }

static void addf(crest__sql *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void addf(crest__sql *q, const char *fmt, ...)
{
    char b[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof b, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof b)
        q->err = CREST_EINVAL;
    else
        add_n(q, b, (size_t)n);
}

/* The one place identifiers are quoted: "name", with " doubled. Both
 * dialects quote the same way (standard SQL). */
static size_t quote_into(char *out, const char *name)
{
    size_t k = 0;
    out[k++] = '"';
    for (const char *c = name; *c; c++) {
        if (*c == '"')
            out[k++] = '"';
        out[k++] = *c;
    }
    out[k++] = '"';
    out[k] = 0;
    return k;
}

char *crest__quote_ident(const char *name)
{
    size_t n = strlen(name);
    char *q = malloc(2 * n + 3);
    if (q)
        quote_into(q, name);
    return q;
}

void crest__sql_ident(crest__sql *q, const char *name)
{
    char *s = crest__quote_ident(name);
    if (!s) {
        q->err = CREST_ENOMEM;
        return;
    }
    crest__sql_add(q, s);
    free(s);
}

void crest__sql_literal(crest__sql *q, const char *s)
{
    add_n(q, "'", 1);
    for (const char *e; *s; s = e + 1) {
        if (!(e = strchr(s, '\''))) {
            crest__sql_add(q, s);
            break;
        }
        add_n(q, s, (size_t)(e - s));
        add_n(q, "''", 2);
    }
    add_n(q, "'", 1);
}

/* Makes room for one more bind; false when out of memory. */
static bool grow(crest__sql *q)
{
    if (q->nbinds < q->capbinds)
        return true;
    unsigned cap = q->capbinds ? q->capbinds * 2 : 16;
    crest__val *nb = crest__arena_alloc(q->arena, cap * sizeof *nb);
    const crest__bindlist **nl = q->lists ? crest__arena_calloc(q->arena, cap, sizeof *nl) : NULL;
    if (!nb || (q->lists && !nl)) {
        q->err = CREST_ENOMEM;
        return false;
    }
    if (q->nbinds) {
        memcpy(nb, q->binds, q->nbinds * sizeof *nb);
        if (nl)
            memcpy(nl, q->lists, q->nbinds * sizeof *nl);
    }
    q->binds = nb;
    q->lists = nl;
    q->capbinds = cap;
    return true;
}

void crest__sql_push(crest__sql *q, crest__val v)
{
    if (!grow(q))
        return;
    if (q->lists)
        q->lists[q->nbinds] = NULL;
    q->binds[q->nbinds++] = v;
}

void crest__sql_ref(crest__sql *q, unsigned i)
{
    addf(q, q->d->numbered ? "$%u" : "?%u", i);
}

static void placeholder(crest__sql *q)
{
    if (q->d->numbered)
        addf(q, "$%u", q->nbinds);
    else
        add_n(q, "?", 1);
}

void crest__sql_bind(crest__sql *q, crest__val v)
{
    crest__sql_push(q, v);
    if (!q->err)
        placeholder(q);
}

void crest__sql_bind_list(crest__sql *q, crest__vkind k, const crest__val *v, unsigned n)
{
    crest__bindlist *bl = crest__arena_alloc(q->arena, sizeof *bl);
    if (!bl || !grow(q)) {
        q->err = CREST_ENOMEM;
        return;
    }
    if (!q->lists && !(q->lists = crest__arena_calloc(q->arena, q->capbinds, sizeof *q->lists))) {
        q->err = CREST_ENOMEM;
        return;
    }
    bl->k = k;
    bl->v = v;
    bl->n = n;
    q->lists[q->nbinds] = bl;
    q->binds[q->nbinds++] = (crest__val){.k = CREST__V_NULL};
    placeholder(q);
}

/* ---- conditions ---- */

/* The non-NULL values of an $in / $nin, as one list bind or "(?, ?...)". */
static void values(crest__sql *q, const crest__qnode *n, unsigned nonnull)
{
    if (q->d->array_in) {
        crest__val *v = crest__arena_calloc(q->arena, nonnull, sizeof *v);
        if (!v) {
            q->err = CREST_ENOMEM;
            return;
        }
        unsigned k = 0;
        for (unsigned i = 0; i < n->nvals; i++)
            if (n->vals[i].k != CREST__V_NULL)
                v[k++] = n->vals[i];
        crest__sql_bind_list(q, v[0].k, v, k);
        return;
    }
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

static void in_list(crest__sql *q, const crest__qnode *n, const char *col)
{
    const crest__dialect *d = q->d;
    bool has_null = false;
    unsigned nn = 0;
    for (unsigned i = 0; i < n->nvals; i++) {
        if (n->vals[i].k == CREST__V_NULL)
            has_null = true;
        else
            nn++;
    }
    bool in = n->op == CREST__OP_IN;
    if (!nn && !has_null) {
        crest__sql_add(q, in ? d->false_sql : d->true_sql);
        return;
    }
    crest__sql_add(q, "(");
    if (in) {
        if (nn) {
            crest__sql_add(q, col);
            crest__sql_add(q, d->array_in ? " = ANY(" : " IN ");
            values(q, n, nn);
            if (d->array_in)
                crest__sql_add(q, ")");
        }
        if (has_null) {
            crest__sql_add(q, nn ? " OR " : "");
            crest__sql_add(q, col);
            crest__sql_add(q, " IS NULL");
        }
    } else {
        /* NULL in the list excludes NULL rows; otherwise they are kept. */
        crest__sql_add(q, col);
        crest__sql_add(q, has_null ? " IS NOT NULL" : " IS NULL");
        if (nn) {
            crest__sql_add(q, has_null ? " AND " : " OR ");
            crest__sql_add(q, col);
            crest__sql_add(q, d->array_in ? " <> ALL(" : " NOT IN ");
            values(q, n, nn);
            if (d->array_in)
                crest__sql_add(q, ")");
        }
    }
    crest__sql_add(q, ")");
}

static void cmp(crest__sql *q, const crest__qnode *n)
{
    const char *col = n->field->qname;
    static const char *const rel[] = {[CREST__OP_EQ] = " = ", [CREST__OP_LT] = " < ", [CREST__OP_GT] = " > ",
                                      [CREST__OP_LE] = " <= ", [CREST__OP_GE] = " >= "};
    switch (n->op) {
    case CREST__OP_EQ:
    case CREST__OP_LT:
    case CREST__OP_GT:
    case CREST__OP_LE:
    case CREST__OP_GE:
        crest__sql_add(q, col);
        crest__sql_add(q, rel[n->op]);
        crest__sql_bind(q, n->vals[0]);
        break;
    case CREST__OP_NE: /* null-safe: a NULL field is "not equal" */
        crest__sql_add(q, col);
        crest__sql_add(q, q->d->ne_null_safe);
        crest__sql_bind(q, n->vals[0]);
        break;
    case CREST__OP_IN:
    case CREST__OP_NIN:
        in_list(q, n, col);
        break;
    case CREST__OP_NULL:
        crest__sql_add(q, col);
        crest__sql_add(q, " IS NULL");
        break;
    case CREST__OP_NOTNULL:
        crest__sql_add(q, col);
        crest__sql_add(q, " IS NOT NULL");
        break;
    case CREST__OP_LIKE:
    case CREST__OP_ILIKE:
    case CREST__OP_CONTAINS:
    case CREST__OP_ICONTAINS:
        q->d->like(q, col, n->op, &n->vals[0]);
        break;
    }
}

/* Whether condition n holds on a row whose fields are all null (a
 * belongs_to relation's missing or invisible row): SQL's unknown counts as
 * false, as the compiled condition's NOT coalesce(..., false) does. */
static bool holds_on_null(const crest__qnode *n)
{
    switch (n->kind) {
    case CREST__Q_TRUE:
        return true;
    case CREST__Q_FALSE:
        return false;
    case CREST__Q_NOT:
        return !holds_on_null(n->kids[0]);
    case CREST__Q_AND:
    case CREST__Q_OR:
        for (unsigned i = 0; i < n->nkids; i++)
            if (holds_on_null(n->kids[i]) == (n->kind == CREST__Q_OR))
                return n->kind == CREST__Q_OR;
        return n->kind == CREST__Q_AND;
    case CREST__Q_REL: /* the null row's own relations: none */
        return n->rel->kind == CREST__REL_BELONGS_TO && n->nkids && holds_on_null(n->kids[0]);
    case CREST__Q_CMP:
        break;
    }
    bool has_null = false;
    for (unsigned i = 0; i < n->nvals; i++)
        has_null |= n->vals[i].k == CREST__V_NULL;
    switch (n->op) {
    case CREST__OP_NE: /* null-safe */
    case CREST__OP_NULL:
        return true;
    case CREST__OP_IN:
        return has_null;
    case CREST__OP_NIN:
        return !has_null;
    default:
        return false;
    }
}

/* "SELECT <col> FROM <table> WHERE <inner> AND <scope>" (either may be
 * missing; nonnull: also "<col> IS NOT NULL"). */
static void rel_select(crest__sql *q, const char *col, const crest__model *t, const crest__qnode *inner,
                       const crest__qnode *scope, bool nonnull)
{
    crest__sql_add(q, "SELECT ");
    crest__sql_add(q, col);
    crest__sql_add(q, " FROM ");
    crest__sql_add(q, t->qtable);
    const char *sep = " WHERE ";
    if (nonnull) {
        crest__sql_add(q, sep);
        crest__sql_add(q, col);
        crest__sql_add(q, " IS NOT NULL");
        sep = " AND ";
    }
    if (inner) {
        crest__sql_add(q, sep);
        crest__sql_where(q, inner);
        sep = " AND ";
    }
    if (scope) {
        crest__sql_add(q, sep);
        crest__sql_where(q, scope);
    }
}

/* A condition across a relation, as uncorrelated subqueries (no alias
 * is needed, and both databases plan them as semi-joins): belongs_to
 * "owner_id" IN (SELECT "id" FROM "person" WHERE ...), has_many "id" IN
 * (SELECT "owner_id" FROM "computer" WHERE ...), through "id" IN (SELECT
 * "task_id" FROM "task_tag" WHERE "tag_id" IN (SELECT "id" FROM "tag"
 * WHERE ...)). neg: NOT IN (has_many, through: the subquery has no NULL). */
static void rel_cond(crest__sql *q, const crest__qnode *n, bool neg)
{
    const crest__rel *r = n->rel;
    const crest__qnode *inner = n->nkids ? n->kids[0] : NULL;
    const char *id = r->target->fields[0].qname;
    const char *in = neg ? " NOT IN (" : " IN (";
    if (r->kind == CREST__REL_BELONGS_TO) {
        const char *fk = r->fk->qname;
        if (inner && holds_on_null(inner)) { /* no related row, or one the user may not see, counts */
            crest__sql_add(q, "(");
            crest__sql_add(q, fk);
            crest__sql_add(q, " IS NULL OR ");
            if (n->scope) {
                crest__sql_add(q, fk);
                crest__sql_add(q, " NOT IN (");
                rel_select(q, id, r->target, NULL, n->scope, false);
                crest__sql_add(q, ") OR ");
            }
        }
        crest__sql_add(q, fk);
        crest__sql_add(q, " IN (");
        rel_select(q, id, r->target, inner, n->scope, false);
        crest__sql_add(q, inner && holds_on_null(inner) ? "))" : ")");
        return;
    }
    crest__sql_add(q, r->owner->fields[0].qname);
    crest__sql_add(q, in);
    if (r->kind == CREST__REL_HAS_MANY) {
        rel_select(q, r->fk->qname, r->target, inner, n->scope, true);
    } else {
        crest__sql_add(q, "SELECT ");
        crest__sql_add(q, r->fk->qname);
        crest__sql_add(q, " FROM ");
        crest__sql_add(q, r->join->qtable);
        crest__sql_add(q, " WHERE ");
        crest__sql_add(q, r->fk->qname);
        crest__sql_add(q, " IS NOT NULL AND ");
        crest__sql_add(q, r->join_fk->qname);
        crest__sql_add(q, " IN (");
        rel_select(q, id, r->target, inner, n->scope, false);
        crest__sql_add(q, ")");
    }
    crest__sql_add(q, ")");
}

void crest__sql_where(crest__sql *q, const crest__qnode *n)
{
    if (!n) {
        crest__sql_add(q, q->d->true_sql);
        return;
    }
    switch (n->kind) {
    case CREST__Q_TRUE:
        crest__sql_add(q, q->d->true_sql);
        return;
    case CREST__Q_FALSE:
        crest__sql_add(q, q->d->false_sql);
        return;
    case CREST__Q_CMP:
        cmp(q, n);
        return;
    case CREST__Q_REL:
        rel_cond(q, n, false);
        return;
    case CREST__Q_NOT:
        if (n->kids[0]->kind == CREST__Q_REL && n->kids[0]->rel->kind != CREST__REL_BELONGS_TO) {
            rel_cond(q, n->kids[0], true); /* never unknown: a plain NOT IN */
            return;
        }
        crest__sql_add(q, "NOT coalesce(");
        crest__sql_where(q, n->kids[0]);
        crest__sql_add(q, ", ");
        crest__sql_add(q, q->d->false_sql);
        crest__sql_add(q, ")");
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

void crest__sql_sort_value(crest__sql *q, const crest__sort *s)
{
    /* (SELECT (SELECT "r2"."name" FROM "company" AS "r2" WHERE "r2"."id" =
     * "r1"."company_id" AND <scope>) FROM "person" AS "r1" WHERE "r1"."id" =
     * "computer"."owner_id" AND <scope>): the aliases keep a relation to
     * the same model apart; a scope's bare names are the innermost table's. */
    for (unsigned i = 0; i < s->nrels; i++)
        crest__sql_add(q, "(SELECT ");
    if (s->nrels)
        addf(q, "\"r%u\".", s->nrels);
    crest__sql_add(q, s->field->qname);
    for (unsigned i = s->nrels; i-- > 0;) {
        const crest__rel *r = s->rels[i];
        crest__sql_add(q, " FROM ");
        crest__sql_add(q, r->target->qtable);
        addf(q, " AS \"r%u\" WHERE \"r%u\".", i + 1, i + 1);
        crest__sql_add(q, r->target->fields[0].qname);
        crest__sql_add(q, " = ");
        if (i)
            addf(q, "\"r%u\"", i);
        else
            crest__sql_add(q, r->owner->qtable);
        crest__sql_add(q, ".");
        crest__sql_add(q, r->fk->qname);
        if (s->scopes[i]) {
            crest__sql_add(q, " AND ");
            crest__sql_where(q, s->scopes[i]);
        }
        crest__sql_add(q, ")");
    }
}

void crest__sql_order(crest__sql *q, const crest__plan *p)
{
    for (unsigned i = 0; p && i < p->nsort; i++) {
        crest__sql_add(q, i ? ", " : " ORDER BY ");
        crest__sql_sort_value(q, &p->sort[i]);
        if (p->sort[i].desc)
            crest__sql_add(q, " DESC");
    }
}

crest__vkind crest__field_vkind(const crest__mfield *f)
{
    switch (f->f.type) {
    case CREST_F_BOOL:
        return CREST__V_BOOL;
    case CREST_F_INT:
    case CREST_F_REF:
        return CREST__V_INT;
    case CREST_F_FLOAT:
        return CREST__V_FLOAT;
    case CREST_F_DATE:
        return CREST__V_DATE;
    case CREST_F_DATETIME:
        return CREST__V_DATETIME;
    case CREST_F_JSON:
        return CREST__V_JSON;
    case CREST_F_UUID:
        return CREST__V_UUID;
    default:
        return CREST__V_TEXT;
    }
}

/* ---- the keyset of a cursor page ---- */

/* Whether sort entry s is the model's own id (never NULL). */
static bool key_is_id(const crest__sort *s) { return !s->nrels && s->field->idx == 0; }

/* Whether NULLs of key s come after every value in its direction. */
static bool nulls_last(const crest__sql *q, const crest__sort *s) { return q->d->nulls_large != s->desc; }

/* The bind of value v, pushed at its first use (*bind 0: not yet), so that
 * SQLite's ?NNN and the binds after them stay numbered alike. */
static void key_ref(crest__sql *q, const crest__val *v, unsigned *bind)
{
    if (!*bind) {
        crest__sql_push(q, *v);
        *bind = q->nbinds;
    }
    crest__sql_ref(q, *bind);
}

/* Key s comes strictly after v in its direction. */
static void key_after(crest__sql *q, const crest__sort *s, const crest__val *v, unsigned *bind)
{
    bool nl = !key_is_id(s) && nulls_last(q, s);
    if (v->k == CREST__V_NULL) {
        /* After the NULLs: nothing when they come last, else every value. */
        if (nl || key_is_id(s)) {
            crest__sql_add(q, q->d->false_sql);
            return;
        }
        crest__sql_add(q, "(");
        crest__sql_sort_value(q, s);
        crest__sql_add(q, " IS NOT NULL)");
        return;
    }
    if (nl)
        crest__sql_add(q, "(");
    crest__sql_sort_value(q, s);
    crest__sql_add(q, s->desc ? " < " : " > ");
    key_ref(q, v, bind);
    if (nl) {
        crest__sql_add(q, " OR ");
        crest__sql_sort_value(q, s);
        crest__sql_add(q, " IS NULL)");
    }
}

/* Key s equals v (NULL equals NULL: the rows sort together). */
static void key_equal(crest__sql *q, const crest__sort *s, const crest__val *v, unsigned *bind)
{
    crest__sql_sort_value(q, s);
    if (v->k == CREST__V_NULL) {
        crest__sql_add(q, " IS NULL");
        return;
    }
    crest__sql_add(q, " = ");
    key_ref(q, v, bind);
}

/* Keys i.. of p come after after[i..]: after_i OR (equal_i AND <keys i+1..>). */
static void keyset_from(crest__sql *q, const crest__plan *p, const crest__val *after, unsigned *binds, unsigned i)
{
    const crest__sort *s = &p->sort[i];
    if (i + 1 == p->nsort) {
        key_after(q, s, &after[i], &binds[i]);
        return;
    }
    crest__sql_add(q, "(");
    key_after(q, s, &after[i], &binds[i]);
    crest__sql_add(q, " OR (");
    key_equal(q, s, &after[i], &binds[i]);
    crest__sql_add(q, " AND ");
    keyset_from(q, p, after, binds, i + 1);
    crest__sql_add(q, "))");
}

void crest__sql_keyset(crest__sql *q, const crest__plan *p, const crest__val *after)
{
    unsigned binds[CREST_SORT_MAX + 1] = {0};
    if (!p->nsort) {
        crest__sql_add(q, q->d->true_sql);
        return;
    }
    /* The first key's bound (a >= va) lets an index on it seek to the page
     * instead of reading every row before it, so a cursor page costs the
     * same at any depth. Not where NULLs come after the value: they belong
     * to the rows after it, and "a >= va OR a IS NULL" seeks no index. */
    const crest__sort *s = &p->sort[0];
    bool bound = p->nsort > 1 && after[0].k != CREST__V_NULL && (key_is_id(s) || !nulls_last(q, s));
    if (bound) {
        crest__sql_add(q, "(");
        crest__sql_sort_value(q, s);
        crest__sql_add(q, s->desc ? " <= " : " >= ");
        key_ref(q, &after[0], &binds[0]);
        crest__sql_add(q, " AND ");
    }
    keyset_from(q, p, after, binds, 0);
    if (bound)
        crest__sql_add(q, ")");
}

/* ---- reads ---- */

static void columns(crest__sql *q, const crest__proj *p)
{
    unsigned n = 0;
    for (unsigned i = 0; !p->comp_only && i < p->m->nfields; i++) {
        crest__sql_add(q, n++ ? ", " : "");
        crest__sql_add(q, p->m->fields[i].qname);
    }
    for (unsigned j = 0; j < p->ncomp; j++) {
        crest__sql_add(q, n++ ? ", " : "");
        if (p->comp[j]->sql) {
            crest__sql_add(q, "(");
            crest__sql_add(q, p->comp[j]->sql);
            crest__sql_add(q, ")");
        } else {
            crest__sql_add(q, "NULL");
        }
    }
    if (p->version) {
        crest__sql_add(q, n++ ? ", " : "");
        crest__sql_add(q, CREST__VERSION_QCOL);
    }
}

void crest__compile_columns(crest__sql *q, const crest__proj *p) { columns(q, p); }

static void from(crest__sql *q, const crest__model *m)
{
    crest__sql_add(q, " FROM ");
    crest__sql_add(q, m->qtable);
}

void crest__compile_select(crest__sql *q, const crest__proj *p)
{
    crest__sql_add(q, "SELECT ");
    columns(q, p);
    from(q, p->m);
}

/* ' WHERE "id" = ? [AND <scope>]' */
static void where_id(crest__sql *q, const crest__model *m, int64_t id, const crest__qnode *scope)
{
    crest__sql_add(q, " WHERE ");
    crest__sql_add(q, m->fields[0].qname);
    crest__sql_add(q, " = ");
    crest__sql_bind(q, (crest__val){.k = CREST__V_INT, .i = id});
    if (scope) {
        crest__sql_add(q, " AND ");
        crest__sql_where(q, scope);
    }
}

/* ' AND "crest_version" [NOT] IN (?, ...)' of n versions (none: nothing). */
static void version_in(crest__sql *q, const int64_t *v, unsigned n, bool in)
{
    if (!n)
        return;
    crest__sql_add(q, " AND " CREST__VERSION_QCOL);
    crest__sql_add(q, n == 1 ? (in ? " = " : " <> ") : (in ? " IN (" : " NOT IN ("));
    for (unsigned i = 0; i < n; i++) {
        if (i)
            crest__sql_add(q, ", ");
        crest__sql_bind(q, (crest__val){.k = CREST__V_INT, .i = v[i]});
    }
    if (n > 1)
        crest__sql_add(q, ")");
}

/* The versions a write must find and those it must not. */
static void where_version(crest__sql *q, const crest__version_check *c)
{
    version_in(q, c->v, c->n, true);
    version_in(q, c->nv, c->nn, false);
}

void crest__compile_read(crest__sql *q, const crest__read_plan *p)
{
    if (p->exists_only || p->version_only) {
        crest__sql_add(q, p->version_only ? "SELECT " CREST__VERSION_QCOL : "SELECT 1");
        from(q, p->proj.m);
    } else {
        crest__compile_select(q, &p->proj);
    }
    where_id(q, p->proj.m, p->id, p->scope);
}

static void limit_offset(crest__sql *q, int64_t limit, int64_t offset)
{
    crest__sql_add(q, " LIMIT ");
    crest__sql_bind(q, (crest__val){.k = CREST__V_INT, .i = limit});
    crest__sql_add(q, " OFFSET ");
    crest__sql_bind(q, (crest__val){.k = CREST__V_INT, .i = offset});
}

unsigned crest__list_key_col(const crest__list_plan *p, unsigned i)
{
    const crest__sort *s = &p->order->sort[i];
    if (key_is_id(s))
        return 0;
    unsigned col = p->proj.m->nfields + p->proj.ncomp;
    for (unsigned j = 0; j < i; j++)
        col += !key_is_id(&p->order->sort[j]);
    return col;
}

void crest__compile_list(crest__sql *q, const crest__list_plan *p)
{
    crest__sql_add(q, "SELECT ");
    columns(q, &p->proj);
    for (unsigned i = 0; p->key_columns && p->order && i < p->order->nsort; i++) {
        const crest__sort *s = &p->order->sort[i];
        if (key_is_id(s))
            continue;
        /* A datetime's exact text: PostgreSQL's cells keep milliseconds.
         * Named apart: ORDER BY "at" would be ambiguous with a second "at". */
        bool exact = s->field->f.type == CREST_F_DATETIME;
        crest__sql_add(q, exact ? ", CAST(" : ", ");
        crest__sql_sort_value(q, s);
        crest__sql_add(q, exact ? " AS text)" : "");
        addf(q, " AS \"crest_key%u\"", i);
    }
    from(q, p->proj.m);
    crest__sql_add(q, " WHERE ");
    if (p->after) {
        crest__sql_add(q, "(");
        crest__sql_where(q, p->where);
        crest__sql_add(q, ") AND ");
        crest__sql_keyset(q, p->order, p->after);
    } else {
        crest__sql_where(q, p->where);
    }
    if (p->random) {
        crest__sql_add(q, " ORDER BY ");
        crest__sql_add(q, q->d->random);
    } else {
        crest__sql_order(q, p->order);
    }
    limit_offset(q, p->limit, p->offset);
}

void crest__compile_count(crest__sql *q, const crest__list_plan *p)
{
    crest__sql_add(q, "SELECT count(*)");
    from(q, p->proj.m);
    crest__sql_add(q, " WHERE ");
    crest__sql_where(q, p->where);
}

void crest__compile_count_upto(crest__sql *q, const crest__list_plan *p, int64_t cap)
{
    /* PostgreSQL wants the subquery named. */
    crest__sql_add(q, "SELECT count(*) FROM (SELECT 1");
    from(q, p->proj.m);
    crest__sql_add(q, " WHERE ");
    crest__sql_where(q, p->where);
    crest__sql_add(q, " LIMIT ");
    crest__sql_bind(q, (crest__val){.k = CREST__V_INT, .i = cap + 1});
    crest__sql_add(q, ") AS c");
}

void crest__compile_estimate(crest__sql *q, const crest__list_plan *p)
{
    crest__sql_add(q, q->d->explain_json ? q->d->explain_json : "");
    crest__sql_add(q, "SELECT 1");
    from(q, p->proj.m);
    crest__sql_add(q, " WHERE ");
    crest__sql_where(q, p->where);
}

int crest__estimate_of(const char *json, size_t n, int64_t *out)
{
    /* [{"Plan": {"Node Type": ..., "Plan Rows": 1234, ...}}] */
    json_t *v = json ? json_loadb(json, n, 0, NULL) : NULL;
    json_t *rows = json_object_get(json_object_get(json_array_get(v, 0), "Plan"), "Plan Rows");
    double d = json_is_number(rows) ? json_number_value(rows) : -1;
    int rc = d >= 0 && d < 9.0e18 ? 0 : -1;
    if (!rc)
        *out = (int64_t)(d + 0.5);
    json_decref(v);
    return rc;
}

/* ---- aggregates ---- */

/* " FROM ... GROUP BY ..." after the grouped value (a dotted name's:
 * "v", from a derived table, so that no database sees the correlated
 * subquery in GROUP BY). */
static void group_by(crest__sql *q, const crest__group_plan *p)
{
    if (p->path) {
        crest__sql_add(q, " FROM (SELECT ");
        crest__sql_sort_value(q, p->path);
        crest__sql_add(q, " AS \"v\"");
    }
    from(q, p->m);
    crest__sql_add(q, " WHERE ");
    crest__sql_where(q, p->where);
    if (p->path)
        crest__sql_add(q, ") AS \"g\"");
    crest__sql_add(q, " GROUP BY ");
    crest__sql_add(q, p->path ? "\"v\"" : p->field->qname);
}

void crest__compile_group_count(crest__sql *q, const crest__group_plan *p)
{
    /* PostgreSQL wants the subquery named. */
    crest__sql_add(q, "SELECT count(*) FROM (SELECT 1");
    group_by(q, p);
    crest__sql_add(q, ") AS g");
}

void crest__compile_group(crest__sql *q, const crest__group_plan *p)
{
    static const char *const order[] = {[CREST__GROUP_VALUE_ASC] = "1 ASC", [CREST__GROUP_VALUE_DESC] = "1 DESC",
                                        [CREST__GROUP_COUNT_ASC] = "2 ASC, 1 ASC",
                                        [CREST__GROUP_COUNT_DESC] = "2 DESC, 1 ASC"};
    crest__sql_add(q, "SELECT ");
    crest__sql_add(q, p->path ? "\"v\"" : p->field->qname);
    crest__sql_add(q, ", count(*)");
    group_by(q, p);
    crest__sql_add(q, " ORDER BY ");
    crest__sql_add(q, order[p->order]);
    limit_offset(q, p->limit, p->offset);
}

static const char *const agg_names[] = {[CREST__AGG_COUNT] = "count", [CREST__AGG_SUM] = "sum",
                                        [CREST__AGG_AVG] = "avg", [CREST__AGG_MIN] = "min",
                                        [CREST__AGG_MAX] = "max"};

int crest__aggfn_parse(const char *name, crest__aggfn *out)
{
    for (unsigned i = 0; name && i < CREST_ARRAY_LEN(agg_names); i++)
        if (!strcmp(agg_names[i], name)) {
            *out = (crest__aggfn)i;
            return 0;
        }
    return -1;
}

void crest__compile_aggregate(crest__sql *q, const crest__agg_plan *p)
{
    crest__sql_add(q, "SELECT ");
    for (unsigned i = 0; i < p->naggs; i++) {
        if (i)
            crest__sql_add(q, ", ");
        crest__sql_add(q, agg_names[p->aggs[i].fn]);
        crest__sql_add(q, "(");
        crest__sql_add(q, p->aggs[i].f ? p->aggs[i].f->qname : "*");
        crest__sql_add(q, ")");
    }
    if (!p->naggs)
        crest__sql_add(q, "1");
    from(q, p->m);
    crest__sql_add(q, " WHERE ");
    crest__sql_where(q, p->where);
}

/* ---- writes ---- */

void crest__compile_insert(crest__sql *q, const crest__insert_plan *p)
{
    const crest__model *m = p->m;
    crest__sql_add(q, "INSERT INTO ");
    crest__sql_add(q, m->qtable);
    unsigned n = 0;
    for (unsigned i = 1; i < m->nfields; i++) {
        if (p->set && !p->set[i])
            continue;
        crest__sql_add(q, n++ ? ", " : " (");
        crest__sql_add(q, m->fields[i].qname);
    }
    crest__sql_add(q, n ? ", " CREST__VERSION_QCOL ") VALUES (" : " (" CREST__VERSION_QCOL ") VALUES (");
    for (unsigned i = 1; i < m->nfields; i++) {
        if (p->set && !p->set[i])
            continue;
        crest__sql_bind(q, p->vals[i]);
        crest__sql_add(q, ", ");
    }
    crest__sql_add(q, q->d->version_new);
    crest__sql_add(q, ")");
    if (q->d->returning_id) {
        crest__sql_add(q, " RETURNING ");
        crest__sql_add(q, m->fields[0].qname);
    }
}

void crest__compile_update(crest__sql *q, const crest__update_plan *p)
{
    const crest__model *m = p->m;
    crest__sql_add(q, "UPDATE ");
    crest__sql_add(q, m->qtable);
    crest__sql_add(q, " SET ");
    unsigned n = 0;
    for (unsigned i = 1; i < m->nfields; i++) {
        if (!p->set[i])
            continue;
        if (n++)
            crest__sql_add(q, ", ");
        crest__sql_add(q, m->fields[i].qname);
        crest__sql_add(q, " = ");
        crest__sql_bind(q, p->vals[i]);
    }
    crest__sql_add(q, n ? ", " CREST__VERSION_QCOL " = " CREST__VERSION_QCOL " + 1"
                        : CREST__VERSION_QCOL " = " CREST__VERSION_QCOL);
    where_id(q, m, p->id, p->scope);
    where_version(q, &p->expect);
}

void crest__compile_delete(crest__sql *q, const crest__delete_plan *p)
{
    crest__sql_add(q, "DELETE");
    from(q, p->m);
    where_id(q, p->m, p->id, p->scope);
    where_version(q, &p->expect);
}

const char *crest__txn_sql(const crest__dialect *d, crest__txn t)
{
    switch (t) {
    case CREST__TX_BEGIN:
        return d->begin;
    case CREST__TX_BEGIN_WRITE:
        return d->begin_write;
    case CREST__TX_COMMIT:
        return d->commit;
    case CREST__TX_ROLLBACK:
        break;
    }
    return d->rollback;
}

/* ---- embedded rows (?include=) ---- */

/* `col IN keys` (a list bind where the dialect takes one). */
static void keys_in(crest__sql *q, const char *col, const crest__embed_plan *p)
{
    crest__qnode n = {.kind = CREST__Q_CMP, .op = CREST__OP_IN, .vals = (crest__val *)p->keys, .nvals = p->nkeys};
    in_list(q, &n, col);
}

/* The target's sort, its columns under alias (or none), after lead (" ORDER
 * BY ", or ", " after other keys). */
static void sort_keys(crest__sql *q, const crest__plan *o, const char *alias, const char *lead)
{
    for (unsigned i = 0; o && i < o->nsort; i++) {
        crest__sql_add(q, i ? ", " : lead);
        if (alias) {
            crest__sql_add(q, alias);
            crest__sql_add(q, ".");
        }
        crest__sql_add(q, o->sort[i].field->qname);
        if (o->sort[i].desc)
            crest__sql_add(q, " DESC");
    }
}

/* has_many where the dialect caps by LIMIT (embed_cap_by_limit):
 * WITH "_crest_k"("_crest_v") AS (VALUES (?), ...) SELECT <columns> FROM
 * "_crest_k" JOIN <target> ON <target>.<id> IN (SELECT <id> FROM <target>
 * WHERE <fk> = "_crest_k"."_crest_v" [AND <scope>] ORDER BY <sort> LIMIT ?)
 * ORDER BY <fk>, <sort>: the same rows, in the same order, as the window. */
static void embed_has_many_limit(crest__sql *q, const crest__embed_plan *p)
{
    const crest__rel *r = p->rel;
    const crest__model *t = p->proj.m;
    crest__sql_add(q, "WITH \"_crest_k\"(\"_crest_v\") AS (VALUES ");
    for (unsigned i = 0; i < p->nkeys; i++) {
        crest__sql_add(q, i ? ", (" : "(");
        crest__sql_bind(q, p->keys[i]);
        crest__sql_add(q, ")");
    }
    crest__sql_add(q, ") SELECT ");
    columns(q, &p->proj);
    crest__sql_add(q, " FROM \"_crest_k\" JOIN ");
    crest__sql_add(q, t->qtable);
    crest__sql_add(q, " ON ");
    crest__sql_add(q, t->qtable);
    crest__sql_add(q, ".");
    crest__sql_add(q, t->fields[0].qname);
    crest__sql_add(q, " IN (SELECT ");
    crest__sql_add(q, t->fields[0].qname);
    from(q, t);
    crest__sql_add(q, " WHERE ");
    crest__sql_add(q, r->fk->qname);
    crest__sql_add(q, " = \"_crest_k\".\"_crest_v\"");
    if (p->scope) {
        crest__sql_add(q, " AND ");
        crest__sql_where(q, p->scope);
    }
    sort_keys(q, p->order, NULL, " ORDER BY ");
    crest__sql_add(q, " LIMIT ");
    crest__sql_bind(q, (crest__val){.k = CREST__V_INT, .i = p->per_parent});
    crest__sql_add(q, ") ORDER BY ");
    crest__sql_add(q, r->fk->qname);
    sort_keys(q, p->order, NULL, ", ");
}

void crest__compile_embed(crest__sql *q, const crest__embed_plan *p)
{
    const crest__rel *r = p->rel;
    const crest__model *t = p->proj.m;
    if (r->kind == CREST__REL_BELONGS_TO) {
        crest__compile_select(q, &p->proj);
        crest__sql_add(q, " WHERE ");
        keys_in(q, t->fields[0].qname, p);
        if (p->scope) {
            crest__sql_add(q, " AND ");
            crest__sql_where(q, p->scope);
        }
        crest__sql_add(q, " ORDER BY ");
        crest__sql_add(q, t->fields[0].qname);
        return;
    }
    if (r->kind == CREST__REL_HAS_MANY && q->d->embed_cap_by_limit) {
        embed_has_many_limit(q, p);
        return;
    }
    crest__sql_add(q, "SELECT * FROM (SELECT ");
    if (r->kind == CREST__REL_HAS_MANY) {
        columns(q, &p->proj);
        crest__sql_add(q, ", ROW_NUMBER() OVER (PARTITION BY ");
        crest__sql_add(q, r->fk->qname);
        sort_keys(q, p->order, NULL, " ORDER BY ");
        crest__sql_add(q, ") AS \"_crest_rn\"");
        from(q, t);
        crest__sql_add(q, " WHERE ");
        keys_in(q, r->fk->qname, p);
        if (p->scope) {
            crest__sql_add(q, " AND ");
            crest__sql_where(q, p->scope);
        }
    } else {
        /* The target's rows in scope, then the join model's rows naming a
         * parent: the scope's names stay the target's alone. */
        const char *jcol = crest__arena_printf(q->arena, "\"_crest_j\".%s", r->fk->qname);
        if (!jcol) {
            q->err = CREST_ENOMEM;
            return;
        }
        crest__sql_add(q, "\"_crest_t\".*, ");
        crest__sql_add(q, jcol);
        crest__sql_add(q, " AS \"_crest_parent\", ROW_NUMBER() OVER (PARTITION BY ");
        crest__sql_add(q, jcol);
        sort_keys(q, p->order, "\"_crest_t\"", " ORDER BY ");
        crest__sql_add(q, ") AS \"_crest_rn\" FROM (");
        crest__compile_select(q, &p->proj);
        crest__sql_add(q, " WHERE ");
        crest__sql_where(q, p->scope);
        crest__sql_add(q, ") AS \"_crest_t\" JOIN ");
        crest__sql_add(q, r->join->qtable);
        crest__sql_add(q, " AS \"_crest_j\" ON \"_crest_j\".");
        crest__sql_add(q, r->join_fk->qname);
        crest__sql_add(q, " = \"_crest_t\".");
        crest__sql_add(q, t->fields[0].qname);
        crest__sql_add(q, " WHERE ");
        keys_in(q, jcol, p);
    }
    crest__sql_add(q, ") AS \"_crest_e\" WHERE \"_crest_rn\" <= ");
    crest__sql_bind(q, (crest__val){.k = CREST__V_INT, .i = p->per_parent});
    crest__sql_add(q, " ORDER BY ");
    crest__sql_add(q, r->kind == CREST__REL_HAS_MANY ? r->fk->qname : "\"_crest_parent\"");
    crest__sql_add(q, ", \"_crest_rn\"");
}
