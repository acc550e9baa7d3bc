/* where.c — the first stage of the query path: a Mongo-like `where` object
 * and a `sort_by` list become a plan (crest__plan), checked against the
 * model and the module's allow-lists. Everything rejected is named in the
 * message. No SQL here: the plan is plain data, compiled to SQL by
 * compile.c. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "query.h"

typedef struct {
    crest__arena *a;
    const crest__model *m;
    const crest__allow *allow;
    char *msg;
    size_t msgcap;
    unsigned nodes;
    const crest__reach *reach;    /* NULL: no dotted names */
    bool answered;                /* reach answered the request */
} wctx;

static int fail(wctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(wctx *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->msg, c->msgcap, fmt, ap);
    va_end(ap);
    return -1;
}

static crest__qnode *node(wctx *c, crest__qkind k)
{
    if (++c->nodes > CREST_WHERE_MAX_NODES) {
        fail(c, "where: more than %d conditions", CREST_WHERE_MAX_NODES);
        return NULL;
    }
    crest__qnode *n = crest__arena_calloc(c->a, 1, sizeof *n);
    if (!n)
        fail(c, "where: out of memory");
    else
        n->kind = k;
    return n;
}

crest__qnode *crest__qnode_and(crest__arena *a, crest__qnode *x, crest__qnode *y)
{
    if (!x)
        return y;
    if (!y)
        return x;
    crest__qnode *n = crest__arena_calloc(a, 1, sizeof *n);
    crest__qnode **k = crest__arena_alloc(a, 2 * sizeof *k);
    if (!n || !k)
        return NULL;
    n->kind = CREST__Q_AND;
    k[0] = x;
    k[1] = y;
    n->kids = k;
    n->nkids = 2;
    return n;
}

static const struct {
    const char *name;
    crest__op op;
} ops[] = {
    {"$eq", CREST__OP_EQ},       {"$ne", CREST__OP_NE},         {"$lt", CREST__OP_LT},
    {"$gt", CREST__OP_GT},       {"$le", CREST__OP_LE},         {"$ge", CREST__OP_GE},
    {"$lte", CREST__OP_LE},      {"$gte", CREST__OP_GE},        {"$in", CREST__OP_IN},
    {"$nin", CREST__OP_NIN},     {"$exists", CREST__OP_NOTNULL}, {"$like", CREST__OP_LIKE},
    {"$ilike", CREST__OP_ILIKE}, {"$contains", CREST__OP_CONTAINS}, {"$icontains", CREST__OP_ICONTAINS},
};

static int parse_obj(wctx *c, const json_t *obj, unsigned depth, crest__qnode **out);

static bool textual(const crest__mfield *f)
{
    return f->f.type == CREST_F_STRING || f->f.type == CREST_F_TEXT;
}

/* One operator on one field. */
static int parse_op(wctx *c, const crest__mfield *f, const char *fname, const char *opname, const json_t *arg,
                    unsigned depth, crest__qnode **out)
{
    if (!strcmp(opname, "$not")) {
        if (!json_is_object(arg))
            return fail(c, "where: %s.$not: expected an object of operators", fname);
        if (depth + 1 > CREST_WHERE_MAX_DEPTH)
            return fail(c, "where: nested deeper than %d", CREST_WHERE_MAX_DEPTH);
        crest__qnode *n = node(c, CREST__Q_NOT), *inner = NULL;
        if (!n)
            return -1;
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)arg, k, v) {
            crest__qnode *one;
            if (k[0] != '$')
                return fail(c, "where: %s.$not: '%s' is not an operator", fname, k);
            if (parse_op(c, f, fname, k, v, depth + 1, &one))
                return -1;
            inner = crest__qnode_and(c->a, inner, one);
        }
        if (!inner)
            return fail(c, "where: %s.$not: expected at least one operator", fname);
        n->kids = crest__arena_alloc(c->a, sizeof *n->kids);
        if (!n->kids)
            return fail(c, "where: out of memory");
        n->kids[0] = inner;
        n->nkids = 1;
        *out = n;
        return 0;
    }
    int op = -1;
    for (size_t i = 0; i < CREST_ARRAY_LEN(ops); i++)
        if (!strcmp(ops[i].name, opname))
            op = (int)ops[i].op;
    if (op < 0)
        return fail(c, "where: unknown operator '%s' (on %s)", opname, fname);
    crest__qnode *n = node(c, CREST__Q_CMP);
    if (!n)
        return -1;
    n->field = f;
    n->op = (crest__op)op;
    if (f->f.type == CREST_F_JSON && !(op == CREST__OP_NOTNULL || ((op == CREST__OP_EQ || op == CREST__OP_NE) &&
                                                                    json_is_null(arg))))
        return fail(c, "where: %s is a json field: only null checks and $exists apply", fname);
    if (!strcmp(opname, "$exists")) {
        if (!json_is_boolean(arg))
            return fail(c, "where: %s.$exists: expected true or false", fname);
        n->op = json_is_true(arg) ? CREST__OP_NOTNULL : CREST__OP_NULL;
        *out = n;
        return 0;
    }
    if (op == CREST__OP_IN || op == CREST__OP_NIN) {
        if (!json_is_array(arg))
            return fail(c, "where: %s.%s: expected a list", fname, opname);
        size_t len = json_array_size(arg);
        if (len > CREST_WHERE_MAX_IN)
            return fail(c, "where: %s.%s: more than %d values", fname, opname, CREST_WHERE_MAX_IN);
        n->vals = crest__arena_calloc(c->a, len ? len : 1, sizeof *n->vals);
        if (!n->vals)
            return fail(c, "where: out of memory");
        for (size_t i = 0; i < len; i++) {
            const json_t *v = json_array_get(arg, i);
            if (json_is_array(v) || json_is_object(v))
                return fail(c, "where: %s.%s: values must be scalars", fname, opname);
            const char *msg = crest__field_operand(c->a, f, v, &n->vals[i]);
            if (msg)
                return fail(c, "where: %s.%s: item %zu %s", fname, opname, i, msg);
        }
        n->nvals = (unsigned)len;
        *out = n;
        return 0;
    }
    if (json_is_array(arg) || json_is_object(arg))
        return fail(c, "where: %s.%s: expected a single value", fname, opname);
    if (op == CREST__OP_LIKE || op == CREST__OP_ILIKE || op == CREST__OP_CONTAINS || op == CREST__OP_ICONTAINS) {
        if (!textual(f))
            return fail(c, "where: %s.%s: applies to string and text fields only", fname, opname);
        if (!json_is_string(arg))
            return fail(c, "where: %s.%s: expected a string", fname, opname);
    }
    if (json_is_null(arg)) {
        if (op == CREST__OP_EQ)
            n->op = CREST__OP_NULL;
        else if (op == CREST__OP_NE)
            n->op = CREST__OP_NOTNULL;
        else
            return fail(c, "where: %s.%s: null can only be compared with $eq and $ne", fname, opname);
        *out = n;
        return 0;
    }
    if ((op == CREST__OP_LT || op == CREST__OP_GT || op == CREST__OP_LE || op == CREST__OP_GE) &&
        f->f.type == CREST_F_BOOL)
        return fail(c, "where: %s.%s: a bool field can only be compared with $eq, $ne, $in and $nin", fname, opname);
    n->vals = crest__arena_calloc(c->a, 1, sizeof *n->vals);
    if (!n->vals)
        return fail(c, "where: out of memory");
    const char *msg = crest__field_operand(c->a, f, arg, &n->vals[0]);
    if (msg)
        return fail(c, "where: %s.%s: the value %s", fname, opname, msg);
    n->nvals = 1;
    *out = n;
    return 0;
}

/* The condition `inner` on the rows at the end of path p, as a chain of
 * REL nodes from the model's row (inner NULL: a visible row exists). */
static crest__qnode *rel_chain(wctx *c, const crest__path *p, const crest__qnode *const *scopes, crest__qnode *inner)
{
    for (unsigned i = p->nrels; i-- > 0;) {
        crest__qnode *n = node(c, CREST__Q_REL);
        if (!n)
            return NULL;
        n->rel = p->rels[i];
        n->scope = scopes[i];
        if (inner) {
            if (!(n->kids = crest__arena_alloc(c->a, sizeof *n->kids))) {
                fail(c, "where: out of memory");
                return NULL;
            }
            n->kids[0] = inner;
            n->nkids = 1;
        }
        inner = n;
    }
    return inner;
}

static crest__qnode *negate(wctx *c, crest__qnode *x)
{
    crest__qnode *n = x ? node(c, CREST__Q_NOT) : NULL;
    if (n && !(n->kids = crest__arena_alloc(c->a, sizeof *n->kids))) {
        fail(c, "where: out of memory");
        return NULL;
    }
    if (n) {
        n->kids[0] = x;
        n->nkids = 1;
    }
    return n;
}

/* One operator's condition `one` (parsed from opname on the path's field)
 * across the path. On a name of many values (has_many / through), $ne,
 * $nin, $not and $exists false mean "no related row" meets the positive
 * form ($eq, $in, the $not's operators, $exists true). */
static crest__qnode *across(wctx *c, const crest__path *p, const crest__qnode *const *scopes, const char *opname,
                            crest__qnode *one)
{
    if (!crest__path_multi(p))
        return rel_chain(c, p, scopes, one);
    bool neg = true;
    if (!strcmp(opname, "$not"))
        one = one->kids[0];
    else if (one->kind == CREST__Q_CMP && one->op == CREST__OP_NE && !strcmp(opname, "$ne"))
        one->op = CREST__OP_EQ;
    else if (one->kind == CREST__Q_CMP && one->op == CREST__OP_NOTNULL && !strcmp(opname, "$ne"))
        one->op = CREST__OP_NULL; /* $ne: null */
    else if (one->kind == CREST__Q_CMP && one->op == CREST__OP_NIN)
        one->op = CREST__OP_IN;
    else if (one->kind == CREST__Q_CMP && one->op == CREST__OP_NULL && !strcmp(opname, "$exists"))
        one->op = CREST__OP_NOTNULL;
    else
        neg = false;
    crest__qnode *r = rel_chain(c, p, scopes, one);
    return neg ? negate(c, r) : r;
}

/* One operator on field f, across path p's relations (NULL: none). */
static int one_op(wctx *c, const crest__mfield *f, const char *name, const char *opname, const json_t *arg,
                  unsigned depth, const crest__path *p, const crest__qnode *const *scopes, crest__qnode **out)
{
    if (parse_op(c, f, name, opname, arg, depth, out))
        return -1;
    return p && !(*out = across(c, p, scopes, opname, *out)) ? -1 : 0;
}

/* One name's condition: a bare value ($eq) or an object of operators, on
 * field f of the model, or across path p's relations (NULL: none). */
static int parse_ops(wctx *c, const crest__mfield *f, const char *name, const json_t *v, unsigned depth,
                     const crest__path *p, const crest__qnode *const *scopes, crest__qnode **out)
{
    if (json_is_array(v))
        return fail(c, "where: %s: a list is not a value (use $in)", name);
    if (!json_is_object(v))
        return one_op(c, f, name, "$eq", v, depth, p, scopes, out);
    if (json_object_size(v) == 0)
        return fail(c, "where: %s: expected a value or operators", name);
    crest__qnode *all = NULL;
    const char *k;
    const json_t *x;
    json_object_foreach((json_t *)v, k, x) {
        if (k[0] != '$')
            return fail(c, "where: %s: '%s' is not an operator (objects are not values)", name, k);
        crest__qnode *one;
        if (one_op(c, f, name, k, x, depth, p, scopes, &one))
            return -1;
        if (!(all = crest__qnode_and(c->a, all, one)))
            return fail(c, "where: out of memory");
    }
    *out = all;
    return 0;
}

/* A dotted name's condition ("owner.name", "computers.name", or a
 * relation with $exists). */
static int parse_path(wctx *c, const char *name, const json_t *v, unsigned depth, crest__qnode **out)
{
    crest__path p;
    int r = crest__path_resolve(c->m, name, &p);
    if (r == -2)
        return fail(c, "where: %s: crosses more than %d relations", name, CREST_REL_MAX_DEPTH);
    if (r || !c->reach || (p.field && !crest__field_readable(p.field)))
        return fail(c, "where: unknown field '%s'", name);
    if (c->allow && !crest__allow_path(c->allow, name))
        return fail(c, "where: field '%s' is not allowed in queries", name);
    if (depth + p.nrels > CREST_WHERE_MAX_DEPTH)
        return fail(c, "where: nested deeper than %d", CREST_WHERE_MAX_DEPTH);
    const crest__qnode **scopes = crest__arena_calloc(c->a, CREST_REL_MAX_DEPTH, sizeof *scopes);
    if (!scopes)
        return fail(c, "where: out of memory");
    r = c->reach->check(c->reach->ud, &p, scopes);
    if (r == -2)
        c->answered = true;
    if (r)
        return fail(c, "where: unknown field '%s'", name);
    if (!p.field) { /* a relation: {"$exists": true | false} */
        const json_t *e = json_object_get(v, "$exists");
        if (!json_is_object(v) || json_object_size(v) != 1 || !json_is_boolean(e))
            return fail(c, "where: %s: a relation takes only {\"$exists\": true or false}", name);
        crest__qnode *x = rel_chain(c, &p, scopes, NULL);
        *out = json_is_true(e) ? x : negate(c, x);
        return *out ? 0 : -1;
    }
    return parse_ops(c, p.field, name, v, depth + p.nrels, &p, scopes, out);
}

/* A field's condition: a bare value ($eq) or an object of operators. */
static int parse_field(wctx *c, const char *name, const json_t *v, unsigned depth, crest__qnode **out)
{
    const crest__mfield *f = crest__model_field(c->m, name);
    if (!f && (strchr(name, '.') || crest__model_rel(c->m, name)))
        return parse_path(c, name, v, depth, out);
    /* A client's where sees readable fields only; the server's own (a
     * module's scope, allow == NULL) may use any field. */
    if (!f || (c->allow && !crest__field_readable(f)))
        return fail(c, "where: unknown field '%s'", name);
    if (c->allow && !c->allow->ok[f->idx])
        return fail(c, "where: field '%s' is not allowed in queries", name);
    return parse_ops(c, f, name, v, depth, NULL, NULL, out);
}

static int parse_list(wctx *c, const char *opname, const json_t *v, unsigned depth, crest__qnode **out)
{
    if (!json_is_array(v))
        return fail(c, "where: %s: expected a list of conditions", opname);
    size_t n = json_array_size(v);
    crest__qnode *g = node(c, !strcmp(opname, "$or") ? CREST__Q_OR : CREST__Q_AND);
    if (!g)
        return -1;
    if (n == 0) { /* an empty $and holds for every row, an empty $or for none */
        g->kind = g->kind == CREST__Q_OR ? CREST__Q_FALSE : CREST__Q_TRUE;
        *out = g;
        return 0;
    }
    if (n > CREST_WHERE_MAX_NODES)
        return fail(c, "where: more than %d conditions", CREST_WHERE_MAX_NODES);
    g->kids = crest__arena_calloc(c->a, n, sizeof *g->kids);
    if (!g->kids)
        return fail(c, "where: out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *item = json_array_get(v, i);
        if (!json_is_object(item))
            return fail(c, "where: %s: item %zu is not an object", opname, i);
        if (parse_obj(c, item, depth + 1, &g->kids[i]))
            return -1;
    }
    g->nkids = (unsigned)n;
    *out = g;
    return 0;
}

static int parse_obj(wctx *c, const json_t *obj, unsigned depth, crest__qnode **out)
{
    if (depth > CREST_WHERE_MAX_DEPTH)
        return fail(c, "where: nested deeper than %d", CREST_WHERE_MAX_DEPTH);
    crest__qnode *all = NULL;
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)obj, k, v) {
        crest__qnode *one = NULL;
        int rc;
        if (!strcmp(k, "$and") || !strcmp(k, "$or")) {
            rc = parse_list(c, k, v, depth, &one);
        } else if (!strcmp(k, "$not")) {
            if (!json_is_object(v))
                return fail(c, "where: $not: expected an object");
            crest__qnode *inner;
            one = node(c, CREST__Q_NOT);
            if (!one || parse_obj(c, v, depth + 1, &inner))
                return -1;
            one->kids = crest__arena_alloc(c->a, sizeof *one->kids);
            if (!one->kids)
                return fail(c, "where: out of memory");
            one->kids[0] = inner ? inner : node(c, CREST__Q_TRUE);
            if (!one->kids[0])
                return -1;
            one->nkids = 1;
            rc = 0;
        } else if (k[0] == '$') {
            return fail(c, "where: unknown operator '%s'", k);
        } else {
            rc = parse_field(c, k, v, depth, &one);
        }
        if (rc)
            return -1;
        if (!(all = crest__qnode_and(c->a, all, one)))
            return fail(c, "where: out of memory");
    }
    *out = all; /* NULL: {} matches every row */
    return 0;
}

int crest__where_parse(crest__arena *a, const crest__model *m, const crest__allow *allow, const json_t *where,
                       crest__qnode **out, char *msg, size_t msgcap)
{
    return crest__where_parse_rel(a, m, allow, NULL, where, out, msg, msgcap);
}

int crest__where_parse_rel(crest__arena *a, const crest__model *m, const crest__allow *allow,
                           const crest__reach *reach, const json_t *where, crest__qnode **out, char *msg,
                           size_t msgcap)
{
    wctx c = {a, m, allow, msg, msgcap, 0, reach, false};
    *out = NULL;
    if (!json_is_object(where))
        return fail(&c, "where: expected a JSON object");
    int rc = parse_obj(&c, where, 1, out);
    return rc && c.answered ? -2 : rc;
}

int crest__path_resolve(const crest__model *m, const char *name, crest__path *out)
{
    memset(out, 0, sizeof *out);
    const char *p = name;
    for (;;) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        char part[128];
        if (!m || n == 0 || n >= sizeof part)
            return -1;
        memcpy(part, p, n);
        part[n] = 0;
        const crest__rel *r = crest__model_rel(m, part);
        if (r && r->target) {
            if (out->nrels == CREST_REL_MAX_DEPTH)
                return -2;
            out->rels[out->nrels++] = r;
            m = r->target;
        } else if (!dot && out->nrels) {
            return (out->field = crest__model_field(m, part)) ? 0 : -1;
        } else {
            return -1;
        }
        if (!dot)
            return 0;
        p = dot + 1;
    }
}

bool crest__path_multi(const crest__path *p)
{
    for (unsigned i = 0; i < p->nrels; i++)
        if (p->rels[i]->kind != CREST__REL_BELONGS_TO)
            return true;
    return false;
}

bool crest__allow_path(const crest__allow *a, const char *name)
{
    if (!a || a->any_path)
        return true;
    for (const char *const *p = a->paths; p && *p; p++)
        if (!strcmp(*p, name))
            return true;
    return false;
}

int crest__sort_parse(const crest__model *m, const crest__allow *allow, const char *text, crest__plan *plan,
                      char *msg, size_t msgcap)
{
    return crest__sort_parse_rel(m, allow, NULL, text, plan, msg, msgcap);
}

int crest__sort_path(const crest__model *m, const crest__allow *allow, const crest__reach *reach, const char *what,
                     const char *name, crest__sort *s, char *msg, size_t msgcap)
{
    bool group = !strcmp(what, "group");
    crest__path p;
    int r = crest__path_resolve(m, name, &p);
    if (r == -2) {
        snprintf(msg, msgcap, "%s: %s: crosses more than %d relations", what, name, CREST_REL_MAX_DEPTH);
        return -1;
    }
    if (r || !reach || !p.field || !crest__field_readable(p.field)) {
        snprintf(msg, msgcap, "%s: unknown field '%s'", what, name);
        return -1;
    }
    if (crest__path_multi(&p)) {
        snprintf(msg, msgcap, "%s: %s: only belongs_to relations %s", what, name, group ? "group" : "sort");
        return -1;
    }
    if (!crest__allow_path(allow, name)) {
        snprintf(msg, msgcap, "%s: %s by '%s' is not allowed", what, group ? "grouping" : "sorting", name);
        return -1;
    }
    const crest__qnode *scopes[CREST_REL_MAX_DEPTH] = {0};
    r = reach->check(reach->ud, &p, scopes);
    if (r) {
        snprintf(msg, msgcap, "%s: unknown field '%s'", what, name);
        return r == -2 ? -2 : -1;
    }
    s->field = p.field;
    s->nrels = p.nrels;
    for (unsigned i = 0; i < p.nrels; i++) {
        s->rels[i] = p.rels[i];
        s->scopes[i] = scopes[i];
    }
    return 0;
}

static bool same_sort(const crest__sort *x, const crest__sort *y)
{
    if (x->field != y->field || x->nrels != y->nrels)
        return false;
    for (unsigned i = 0; i < x->nrels; i++)
        if (x->rels[i] != y->rels[i])
            return false;
    return true;
}

int crest__sort_parse_rel(const crest__model *m, const crest__allow *allow, const crest__reach *reach,
                          const char *text, crest__plan *plan, char *msg, size_t msgcap)
{
    plan->nsort = 0;
    const char *p = text;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        while (n && *p == ' ')
            p++, n--;
        while (n && p[n - 1] == ' ')
            n--;
        bool desc = false;
        if (n && (*p == '-' || *p == '+')) {
            desc = *p == '-';
            p++, n--;
        }
        if (n == 0) {
            snprintf(msg, msgcap, "sort_by: empty field name");
            return -1;
        }
        char name[80];
        if (n >= sizeof name) {
            snprintf(msg, msgcap, "sort_by: unknown field '%.60s...'", p);
            return -1;
        }
        memcpy(name, p, n);
        name[n] = 0;
        crest__sort one = {.desc = desc};
        const crest__mfield *f = crest__model_field(m, name);
        if (!f && strchr(name, '.')) {
            int rc = crest__sort_path(m, allow, reach, "sort_by", name, &one, msg, msgcap);
            if (rc)
                return rc;
        } else if (!f || !crest__field_readable(f)) {
            snprintf(msg, msgcap, "sort_by: unknown field '%s'", name);
            return -1;
        } else if (allow && !allow->ok[f->idx]) {
            snprintf(msg, msgcap, "sort_by: sorting by '%s' is not allowed", name);
            return -1;
        } else {
            one.field = f;
        }
        for (unsigned i = 0; i < plan->nsort; i++)
            if (same_sort(&plan->sort[i], &one)) {
                snprintf(msg, msgcap, "sort_by: '%s' is given twice", name);
                return -1;
            }
        if (plan->nsort >= CREST_SORT_MAX) {
            snprintf(msg, msgcap, "sort_by: more than %d fields", CREST_SORT_MAX);
            return -1;
        }
        plan->sort[plan->nsort++] = one;
        if (!e)
            break;
        p = e + 1;
        if (!*p) {
            snprintf(msg, msgcap, "sort_by: empty field name");
            return -1;
        }
    }
    return 0;
}

static const char *const op_names[] = {
    [CREST__OP_EQ] = "eq",           [CREST__OP_NE] = "ne",       [CREST__OP_LT] = "lt",
    [CREST__OP_GT] = "gt",           [CREST__OP_LE] = "le",       [CREST__OP_GE] = "ge",
    [CREST__OP_IN] = "in",           [CREST__OP_NIN] = "nin",     [CREST__OP_NULL] = "null",
    [CREST__OP_NOTNULL] = "notnull", [CREST__OP_LIKE] = "like",   [CREST__OP_ILIKE] = "ilike",
    [CREST__OP_CONTAINS] = "contains", [CREST__OP_ICONTAINS] = "icontains",
};

static void print_val(crest__buf *b, const crest__val *v)
{
    switch (v->k) {
    case CREST__V_NULL:
        crest__buf_appends(b, "null");
        break;
    case CREST__V_BOOL:
    case CREST__V_INT:
        crest__buf_appendf(b, "%lld", (long long)v->i);
        break;
    case CREST__V_FLOAT:
        crest__buf_appendf(b, "%.17g", v->f);
        break;
    case CREST__V_TEXT:
    case CREST__V_DATE:
    case CREST__V_DATETIME:
    case CREST__V_JSON:
    case CREST__V_UUID: {
        char *e = malloc(6 * v->n + 1);
        if (e) {
            size_t n = crest_json_escape(e, v->s, v->n);
            crest__buf_append(b, "\"", 1);
            crest__buf_append(b, e, n);
            crest__buf_append(b, "\"", 1);
            free(e);
        }
        break;
    }
    }
}

void crest__plan_print(crest__buf *b, const crest__qnode *n)
{
    if (!n) {
        crest__buf_appends(b, "all");
        return;
    }
    switch (n->kind) {
    case CREST__Q_TRUE:
        crest__buf_appends(b, "true");
        return;
    case CREST__Q_FALSE:
        crest__buf_appends(b, "false");
        return;
    case CREST__Q_CMP:
        crest__buf_appendf(b, "(%s %s", op_names[n->op], n->field->f.name);
        if (n->op == CREST__OP_IN || n->op == CREST__OP_NIN) {
            crest__buf_appends(b, " [");
            for (unsigned i = 0; i < n->nvals; i++) {
                if (i)
                    crest__buf_appends(b, ", ");
                print_val(b, &n->vals[i]);
            }
            crest__buf_appends(b, "]");
        } else if (n->nvals) {
            crest__buf_appends(b, " ");
            print_val(b, &n->vals[0]);
        }
        crest__buf_appends(b, ")");
        return;
    case CREST__Q_REL:
        crest__buf_appendf(b, "(%s %s", n->rel->kind == CREST__REL_BELONGS_TO ? "one" : "any", n->rel->name);
        if (n->nkids) {
            crest__buf_appends(b, " ");
            crest__plan_print(b, n->kids[0]);
        }
        if (n->scope) {
            crest__buf_appends(b, " (scope ");
            crest__plan_print(b, n->scope);
            crest__buf_appends(b, ")");
        }
        crest__buf_appends(b, ")");
        return;
    case CREST__Q_NOT:
    case CREST__Q_AND:
    case CREST__Q_OR:
        crest__buf_appends(b, n->kind == CREST__Q_NOT ? "(not" : n->kind == CREST__Q_AND ? "(and" : "(or");
        for (unsigned i = 0; i < n->nkids; i++) {
            crest__buf_appends(b, " ");
            crest__plan_print(b, n->kids[i]);
        }
        crest__buf_appends(b, ")");
        return;
    }
}
