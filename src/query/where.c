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
static int parse_op(wctx *c, const crest__mfield *f, const char *opname, const json_t *arg, unsigned depth,
                    crest__qnode **out)
{
    const char *fname = f->f.name;
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
            if (parse_op(c, f, k, v, depth + 1, &one))
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

/* A field's condition: a bare value ($eq) or an object of operators. */
static int parse_field(wctx *c, const char *name, const json_t *v, unsigned depth, crest__qnode **out)
{
    const crest__mfield *f = crest__model_field(c->m, name);
    /* A client's where sees readable fields only; the server's own (a
     * module's scope, allow == NULL) may use any field. */
    if (!f || (c->allow && !crest__field_readable(f)))
        return fail(c, "where: unknown field '%s'", name);
    if (c->allow && !c->allow->ok[f->idx])
        return fail(c, "where: field '%s' is not allowed in queries", name);
    if (json_is_array(v))
        return fail(c, "where: %s: a list is not a value (use $in)", name);
    if (!json_is_object(v))
        return parse_op(c, f, "$eq", v, depth, out);
    if (json_object_size(v) == 0)
        return fail(c, "where: %s: expected a value or operators", name);
    crest__qnode *all = NULL;
    const char *k;
    const json_t *x;
    json_object_foreach((json_t *)v, k, x) {
        if (k[0] != '$')
            return fail(c, "where: %s: '%s' is not an operator (objects are not values)", name, k);
        crest__qnode *one;
        if (parse_op(c, f, k, x, depth, &one))
            return -1;
        if (!(all = crest__qnode_and(c->a, all, one)))
            return fail(c, "where: out of memory");
    }
    *out = all;
    return 0;
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
    wctx c = {a, m, allow, msg, msgcap, 0};
    *out = NULL;
    if (!json_is_object(where))
        return fail(&c, "where: expected a JSON object");
    return parse_obj(&c, where, 1, out);
}

int crest__sort_parse(const crest__model *m, const crest__allow *allow, const char *text, crest__plan *plan,
                      char *msg, size_t msgcap)
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
        const crest__mfield *f = crest__model_field(m, name);
        if (!f || !crest__field_readable(f)) {
            snprintf(msg, msgcap, "sort_by: unknown field '%s'", name);
            return -1;
        }
        if (allow && !allow->ok[f->idx]) {
            snprintf(msg, msgcap, "sort_by: sorting by '%s' is not allowed", name);
            return -1;
        }
        for (unsigned i = 0; i < plan->nsort; i++)
            if (plan->sort[i].field == f) {
                snprintf(msg, msgcap, "sort_by: '%s' is given twice", name);
                return -1;
            }
        if (plan->nsort >= CREST_SORT_MAX) {
            snprintf(msg, msgcap, "sort_by: more than %d fields", CREST_SORT_MAX);
            return -1;
        }
        plan->sort[plan->nsort].field = f;
        plan->sort[plan->nsort].desc = desc;
        plan->nsort++;
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
