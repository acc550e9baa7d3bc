/* module_aggregate.c — the aggregate routes of a REST module: group (counts
 * by value), stats (min, max, avg) and eval (Flask-Restless functions),
 * each answered from its statements' completions (at once, or later on the
 * worker's loop when a statement is slow). */
#include <stdio.h>
#include <stdlib.h>

#include "../json/json_internal.h"

#include "module_internal.h"

/* ---- group ---- */

/* A group request while its statements run (the request's arena). */
typedef struct group_op {
    crest_rest_ctx ctx;
    crest__module *mod;
    crest__group_plan gp;
    bool beyond;
    int64_t page, size, total;
} group_op;

static void group_page(void *p, crest__rows *rows)
{
    group_op *op = p;
    crest_json *w = crest_res_json(op->ctx.res);
    crest_json_object_begin(w);
    crest_json_key(w, op->mod->groups_env);
    crest_json_array_begin(w);
    for (size_t i = 0; rows && i < rows->nrows; i++) {
        crest_json_object_begin(w);
        crest_json_key(w, "value");
        crest__field_write(w, op->gp.field, crest__rows_cell(rows, i, 0));
        crest_json_key(w, "count");
        crest_json_int(w, crest__rows_cell(rows, i, 1)->v.i);
        crest_json_object_end(w);
    }
    crest_json_array_end(w);
    crest__rest_meta(&op->ctx, op->mod, w, op->total, true, -1, (double)op->page * (double)op->size < (double)op->total,
                     NULL);
    crest_json_object_end(w);
    crest__rest_finish_tagged(op->ctx.res, 0);
}

static void group_counted(void *p, crest__rows *rows)
{
    group_op *op = p;
    crest_req *req = op->ctx.req;
    op->total = rows->nrows ? crest__rows_cell(rows, 0, 0)->v.i : 0;
    if (op->beyond) {
        group_page(op, NULL);
        return;
    }
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__compile_group(&q, &op->gp);
    if (crest__rest_query_then(req, op->ctx.res, &q, CREST__QF_READ | CREST__QF_LAST, (size_t)op->size, group_page,
                               op) < 0)
        crest__res_finish(op->ctx.res, -1);
    crest__sql_dispose(&q);
}

int crest__rest_op_group(crest_req *req, crest_res *res, void *ud)
{
    crest__module *mod;
    crest_rest_ctx ctx;
    crest__qnode *scope, *where;
    if (crest__rest_prologue(req, res, ud, &ctx, &mod, &scope, NULL))
        return -1;
    const char *fname = crest_req_str(req, "field");
    const crest__mfield *f = crest__rest_client_field(req, mod, fname);
    crest__sort *path = NULL; /* a dotted name (belongs_to relations): owner.name */
    if (!f && fname && strchr(fname, '.') && !crest__model_field(mod->m, fname)) {
        char msg[256];
        crest__rest_reach rr;
        crest__reach reach = crest__rest_reach_init(&rr, req, res, mod);
        if (!(path = crest__arena_calloc(req->arena, 1, sizeof *path)))
            return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
        int rc = crest__sort_path(mod->m, &mod->group, &reach, "group", fname, path, msg, sizeof msg);
        if (rc == -2)
            return -1;
        if (rc)
            return crest__rest_bad_param(res, "field", msg);
        f = path->field;
    } else if (!f) {
        return crest__rest_bad_param(res, "field",
                                     crest__arena_printf(req->arena, "group: unknown field '%s'", fname ? fname : ""));
    } else if (!mod->group.ok[f->idx]) {
        return crest__rest_bad_param(res, "field",
                                     crest__arena_printf(req->arena, "group: grouping by '%s' is not allowed", fname));
    }
    if (crest__rest_where_param(req, res, mod, &where))
        return -1;
    where = crest__qnode_and(req->arena, where, scope);
    int64_t page, size;
    crest__rest_page_params(req, res, mod, &page, &size);
    const char *sort = crest_req_str(req, "sort_by");
    crest__group_order order = CREST__GROUP_VALUE_ASC;
    if (sort && *sort) {
        if (!strcmp(sort, "count"))
            order = CREST__GROUP_COUNT_ASC;
        else if (!strcmp(sort, "-count"))
            order = CREST__GROUP_COUNT_DESC;
        else if (!strcmp(sort, "value"))
            order = CREST__GROUP_VALUE_ASC;
        else if (!strcmp(sort, "-value"))
            order = CREST__GROUP_VALUE_DESC;
        else
            return crest__rest_bad_param(res, "sort_by",
                             crest__arena_printf(req->arena, "sort_by: groups sort by count, -count, value or -value, "
                                                             "not '%s'",
                                                 sort));
    }
    group_op *op = crest__arena_calloc(req->arena, 1, sizeof *op);
    if (!op)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    op->ctx = ctx;
    op->mod = mod;
    op->page = page;
    op->size = size;
    op->beyond = (double)(page - 1) * (double)size > 9.0e18;
    op->gp = (crest__group_plan){.m = mod->m, .field = f, .path = path, .where = where, .order = order, .limit = size,
                                 .offset = op->beyond ? 0 : (page - 1) * size};
    /* The number of groups, then the page. */
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__compile_group_count(&q, &op->gp);
    int rc = crest__rest_query_then(req, res, &q, CREST__QF_READ, 1, group_counted, op);
    crest__sql_dispose(&q);
    return rc;
}

/* ---- stats and eval ---- */

typedef struct agg {
    const char *fn;               /* "min", "max", "avg", "sum", "count" */
    const crest__mfield *f;       /* NULL: count(*) */
    const char *key;
} agg;

/* A stats or eval request while its statement runs (the request's arena). */
typedef struct aggs_op {
    crest_rest_ctx ctx;
    agg *ag;
    unsigned n;
    bool nested_stats;
} aggs_op;

static void aggs_done(void *p, crest__rows *r)
{
    aggs_op *op = p;
    const agg *ag = op->ag;
    crest_res *res = op->ctx.res;
    if (!r->nrows) { /* an aggregate always gives one row */
        crest__res_fail(res, CREST__E_INTERNAL_ERROR, NULL);
        crest__res_finish(res, -1);
        return;
    }
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    for (unsigned i = 0; i < op->n; i++) {
        if (op->nested_stats && i % 3 == 0) {
            crest_json_key(w, ag[i].f->f.name);
            crest_json_object_begin(w);
        }
        crest_json_key(w, ag[i].key);
        const crest__cell *c = crest__rows_cell(r, 0, i);
        if (!strcmp(ag[i].fn, "avg")) {
            if (c->k == CREST__V_NULL)
                crest_json_null(w);
            else
                crest_json_double(w, c->k == CREST__V_FLOAT ? c->v.f : (double)c->v.i);
        } else if (!strcmp(ag[i].fn, "count")) {
            crest_json_int(w, c->v.i);
        } else if (!strcmp(ag[i].fn, "sum")) {
            crest__cell_write(w, c);
        } else {
            crest__field_write(w, ag[i].f, c);
        }
        if (op->nested_stats && i % 3 == 2)
            crest_json_object_end(w);
    }
    crest_json_object_end(w);
    crest__rest_finish_tagged(res, 0);
}

/* SELECT fn(field)... FROM t WHERE where; writes each as key: value.
 * CREST_DEFERRED, or -1 answered. */
static int run_aggs(const crest_rest_ctx *ctx, crest__module *mod, const crest__qnode *where, const agg *ag,
                    unsigned n, bool nested_stats)
{
    crest_req *req = ctx->req;
    crest_res *res = ctx->res;
    crest__agg *aggs = crest__arena_calloc(req->arena, n ? n : 1, sizeof *aggs);
    aggs_op *op = crest__arena_calloc(req->arena, 1, sizeof *op);
    agg *copy = crest__arena_calloc(req->arena, n ? n : 1, sizeof *copy);
    if (!aggs || !op || !copy)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    memcpy(copy, ag, n * sizeof *copy);
    *op = (aggs_op){*ctx, copy, n, nested_stats};
    for (unsigned i = 0; i < n; i++) {
        crest__aggfn_parse(ag[i].fn, &aggs[i].fn); /* the names were checked */
        aggs[i].f = ag[i].f;
    }
    crest__agg_plan ap = {.m = mod->m, .where = where, .aggs = aggs, .naggs = n};
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__compile_aggregate(&q, &ap);
    int rc = crest__rest_query_then(req, res, &q, CREST__QF_READ | CREST__QF_LAST, 1, aggs_done, op);
    crest__sql_dispose(&q);
    return rc;
}

int crest__rest_op_stats(crest_req *req, crest_res *res, void *ud)
{
    crest__module *mod;
    crest_rest_ctx ctx;
    crest__qnode *scope, *where;
    if (crest__rest_prologue(req, res, ud, &ctx, &mod, &scope, NULL))
        return -1;
    const char *fields = crest_req_str(req, "fields");
    agg ag[3 * 32];
    unsigned n = 0;
    for (const char *p = fields; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *name = crest__arena_strndup(req->arena, p, len);
        if (!name)
            return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
        const crest__mfield *f = crest__rest_client_field(req, mod, name);
        if (!f)
            return crest__rest_bad_param(res, "fields",
                                         crest__arena_printf(req->arena, "fields: unknown field '%s'", name));
        if (!mod->stats.ok[f->idx])
            return crest__rest_bad_param(
                res, "fields", crest__arena_printf(req->arena, "fields: stats of '%s' are not allowed", name));
        for (unsigned i = 0; i < n; i += 3)
            if (ag[i].f == f)
                return crest__rest_bad_param(res, "fields",
                                             crest__arena_printf(req->arena, "fields: '%s' is given twice", name));
        if (n >= CREST_ARRAY_LEN(ag))
            return crest__rest_bad_param(res, "fields", "fields: more than 32 fields");
        static const char *const fns[] = {"min", "max", "avg"};
        for (int k = 0; k < 3; k++) {
            ag[n].fn = fns[k];
            ag[n].f = f;
            ag[n].key = fns[k];
            n++;
        }
        if (!e)
            break;
        p = e + 1;
    }
    if (!n)
        return crest__rest_bad_param(res, "fields", "fields: name at least one field (fields=a,b)");
    if (crest__rest_where_param(req, res, mod, &where))
        return -1;
    where = crest__qnode_and(req->arena, where, scope);
    return run_aggs(&ctx, mod, where, ag, n, true);
}

int crest__rest_op_eval(crest_req *req, crest_res *res, void *ud)
{
    crest__module *mod;
    crest_rest_ctx ctx;
    crest__qnode *scope, *where;
    if (crest__rest_prologue(req, res, ud, &ctx, &mod, &scope, NULL))
        return -1;
    const char *text = crest_req_str(req, "q");
    json_t *qj = NULL;
    if (text && *text) {
        char msg[200];
        qj = crest__json_parse(text, strlen(text), 8, msg, sizeof msg);
        if (!qj)
            return crest__rest_bad_param(res, "q", crest__arena_printf(req->arena, "q: not valid JSON (%s)", msg));
        crest__arena_defer(req->arena, (void (*)(void *))json_decref, qj);
        if (!json_is_object(qj))
            return crest__rest_bad_param(res, "q", "q: expected a JSON object {\"functions\": [...]}");
    }
    json_t *fns = qj ? json_object_get(qj, "functions") : NULL;
    if (qj) {
        const char *k;
        json_t *v;
        json_object_foreach(qj, k, v) if (strcmp(k, "functions"))
            return crest__rest_bad_param(res, "q", crest__arena_printf(req->arena, "q: unknown key '%s'", k));
    }
    if (fns && !json_is_array(fns))
        return crest__rest_bad_param(res, "q", "q: functions must be a list");
    size_t n = fns ? json_array_size(fns) : 0;
    if (n > 32)
        return crest__rest_bad_param(res, "q", "q: more than 32 functions");
    agg ag[32];
    for (size_t i = 0; i < n; i++) {
        json_t *fn = json_array_get(fns, i);
        const char *name = json_string_value(json_object_get(fn, "name"));
        json_t *fv = json_object_get(fn, "field");
        if (!json_is_object(fn) || !name)
            return crest__rest_bad_param(res, "q",
                                         crest__arena_printf(req->arena, "q: functions[%zu] needs a name", i));
        const char *k;
        json_t *v;
        json_object_foreach(fn, k, v) if (strcmp(k, "name") && strcmp(k, "field")) return crest__rest_bad_param(
            res, "q", crest__arena_printf(req->arena, "q: functions[%zu]: unknown key '%s'", i, k));
        if (strcmp(name, "count") && strcmp(name, "sum") && strcmp(name, "avg") && strcmp(name, "min") &&
            strcmp(name, "max"))
            return crest__rest_bad_param(
                res, "q",
                crest__arena_printf(req->arena, "q: unknown function '%s' (count, sum, avg, min, max)", name));
        const crest__mfield *f = NULL;
        if (fv) {
            const char *fname = json_string_value(fv);
            f = crest__rest_client_field(req, mod, fname);
            if (!f)
                return crest__rest_bad_param(res, "q", crest__arena_printf(req->arena, "q: unknown field '%s'",
                                                               fname ? fname : "(not a string)"));
            /* count of a field the client sees counts its non-null values (of
             * id: the rows, Flask-Restless's example); the others need stats. */
            if (strcmp(name, "count") && !mod->stats.ok[f->idx])
                return crest__rest_bad_param(
                    res, "q", crest__arena_printf(req->arena, "q: %s of '%s' is not allowed", name, fname));
        } else if (strcmp(name, "count")) {
            return crest__rest_bad_param(res, "q", crest__arena_printf(req->arena, "q: %s needs a field", name));
        }
        ag[i].fn = crest__arena_strdup(req->arena, name);
        ag[i].f = f;
        ag[i].key = f ? crest__arena_printf(req->arena, "%s__%s", name, f->f.name) : "count";
        for (size_t j = 0; j < i; j++)
            if (!strcmp(ag[j].key, ag[i].key))
                return crest__rest_bad_param(res, "q",
                                             crest__arena_printf(req->arena, "q: %s is asked twice", ag[i].key));
    }
    if (crest__rest_where_param(req, res, mod, &where))
        return -1;
    where = crest__qnode_and(req->arena, where, scope);
    if (!n) {
        crest_json *w = crest_res_json(res);
        crest_json_object_begin(w);
        crest_json_object_end(w);
        return crest__rest_etag_body(res);
    }
    return run_aggs(&ctx, mod, where, ag, (unsigned)n, false);
}
