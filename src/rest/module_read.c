/* module_read.c — the read routes of a REST module: index and sample (a page
 * of rows with meta) and read (one row), on the worker's connection. */
#include <stdio.h>
#include <stdlib.h>

#include "module_internal.h"

static int count_rows(crest_req *req, crest_res *res, const crest__list_plan *lp, int64_t *total)
{
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__compile_count(&q, lp);
    crest__rows *r = crest__rest_query(req, res, &q, CREST__QF_READ, NULL);
    crest__sql_dispose(&q);
    if (!r)
        return -1;
    *total = r->nrows ? crest__rows_cell(r, 0, 0)->v.i : 0;
    return 0;
}

/* ---- index and sample ---- */

static int list_rows(crest_rest_ctx *ctx, crest__module *mod, bool sample)
{
    crest_req *req = ctx->req;
    crest_res *res = ctx->res;
    crest__qnode *scope, *where;
    if (crest__rest_begin(ctx, mod, &scope) || crest__rest_where_param(req, res, mod, &where))
        return -1;
    where = crest__qnode_and(req->arena, where, scope);
    int64_t page, size;
    crest__rest_page_params(req, res, mod, &page, &size);
    if (sample)
        page = 1;
    crest__plan plan = mod->defsort;
    const char *sort = sample ? NULL : crest_req_str(req, "sort_by");
    char msg[200];
    if (sort && *sort && crest__sort_parse(mod->m, &mod->sorts, sort, &plan, msg, sizeof msg))
        return crest__rest_bad_param(res, "sort_by", msg);
    for (unsigned i = 0; i < plan.nsort; i++)
        if (!crest__rest_can_read(req, plan.sort[i].field))
            return crest__rest_bad_param(res, "sort_by", crest__arena_printf(req->arena, "sort_by: unknown field '%s'",
                                                                 plan.sort[i].field->f.name));
    bool has_id = false;
    for (unsigned i = 0; i < plan.nsort; i++)
        has_id |= plan.sort[i].field->idx == 0;
    if (!has_id) {
        /* A total order, so pages neither repeat nor skip rows. The id goes
         * the way of the last key, so an index on that key (which ends with
         * the rowid) serves the whole ORDER BY. */
        plan.sort[plan.nsort].field = &mod->m->fields[0];
        plan.sort[plan.nsort].desc = plan.nsort ? plan.sort[plan.nsort - 1].desc : false;
        plan.nsort++;
    }
    const char *count = crest_req_str(req, "count");
    bool exact = sample || !count || !strcmp(count, "exact");
    /* Past the last row, or an offset beyond what SQLite counts: nothing. */
    bool beyond = (double)(page - 1) * (double)size > 9.0e18;
    crest__list_plan lp = {.proj = crest__rest_proj(mod), .where = where, .order = &plan, .random = sample,
                           .limit = exact ? size : size + 1, .offset = beyond ? 0 : (page - 1) * size};
    int64_t total = 0;
    if (exact && count_rows(req, res, &lp, &total))
        return -1;
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__compile_list(&q, &lp);
    crest__rows *r = beyond ? NULL : crest__rest_query_n(req, res, &q, CREST__QF_READ, NULL, (size_t)lp.limit);
    crest__sql_dispose(&q);
    if (!r && !beyond)
        return -1;
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, mod->list_env);
    crest_json_array_begin(w);
    int64_t n = 0;
    for (size_t i = 0; r && i < r->nrows; i++) {
        if (n == size) { /* the extra row of count=none */
            n++;
            break;
        }
        if (crest__rest_write_row(ctx, mod, r, i, w))
            return -1;
        n++;
    }
    crest_json_array_end(w);
    bool more = exact ? (sample ? total > n : (double)page * (double)size < (double)total) : n > size;
    crest__rest_meta(ctx, mod, w, total, exact, more);
    crest_json_object_end(w);
    return 0;
}

int crest__rest_op_index(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    crest_rest_ctx ctx;
    crest__rest_ctx_init(&ctx, req, res, r->mod);
    return list_rows(&ctx, r->mod, false);
}

int crest__rest_op_sample(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    crest_rest_ctx ctx;
    crest__rest_ctx_init(&ctx, req, res, r->mod);
    return list_rows(&ctx, r->mod, true);
}

/* ---- read ---- */

/* Serves row `id` (in scope); 404 when absent. */
int crest__rest_serve_one(crest_rest_ctx *ctx, crest__module *mod, int64_t id, const crest__qnode *scope,
                     crest_rest_hook after)
{
    crest_req *req = ctx->req;
    crest_res *res = ctx->res;
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__rest_select_by_id(&q, mod, id, scope);
    crest__rows *r = crest__rest_query(req, res, &q, CREST__QF_READ | CREST__QF_FIRST, NULL);
    crest__sql_dispose(&q);
    if (!r)
        return -1;
    if (!r->nrows)
        return crest__rest_not_found(res, mod);
    if (after) {
        json_t *o = crest__rest_row_object(ctx, mod, r, 0);
        int hr = o ? after(ctx, o) : 0;
        json_decref(o);
        if (hr || res->is_error)
            return -1;
    }
    crest_json *w = crest_res_json(res);
    if (mod->single_env) {
        crest_json_object_begin(w);
        crest_json_key(w, mod->single_env);
    }
    int rc = crest__rest_write_row(ctx, mod, r, 0, w);
    if (mod->single_env)
        crest_json_object_end(w);
    return rc;
}

int crest__rest_op_read(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    crest_rest_ctx ctx;
    crest__rest_ctx_init(&ctx, req, res, r->mod);
    crest__qnode *scope;
    int64_t id;
    if (crest__rest_begin(&ctx, r->mod, &scope))
        return -1;
    if (!crest__rest_path_id(req, r->mod, &id))
        return crest__rest_not_found(res, r->mod);
    return crest__rest_serve_one(&ctx, r->mod, id, scope, NULL);
}
