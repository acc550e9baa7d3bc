/* module_read.c — the read routes of a REST module: index and sample (a page
 * of rows with meta; index pages also by cursor, module_cursor.c) and read
 * (one row). Each runs its statements through
 * the store and answers from their completions, which come at once or, for
 * a slow read, later on the worker's loop (the handler returns
 * CREST_DEFERRED). Each answer carries an ETag and answers a matching
 * If-None-Match with 304 (etag.c). */
#include <stdio.h>
#include <stdlib.h>

#include "module_internal.h"

/* What a list counts: count=exact (the default, and a sample's), none,
 * or estimated. */
typedef enum list_count { COUNT_EXACT, COUNT_NONE, COUNT_ESTIMATED } list_count;

/* A list request while its statements run (the request's arena). */
typedef struct list_op {
    crest_rest_ctx ctx;
    crest__module *mod;
    crest__plan plan;
    crest__list_plan lp;          /* lp.order points at plan */
    list_count count;
    bool sample, beyond;
    bool lookahead;               /* the page reads one row past it: whether more follow */
    crest__cursor_scope cursor;   /* index: what its cursors are bound to, */
    bool scoped;                  /* once worked out (a cursor read, or the next page's made) */
    bool estimate;                /* total is the planner's estimate */
    int64_t offset, size, total;  /* the window (offset: rows skipped) */
    crest__embeds *embeds;        /* ?include=, or NULL */
} list_op;

/* The page's rows and their embeds are here (NULL: past the last row): the answer. */
static void list_write(void *p, crest__rows *r)
{
    list_op *op = p;
    crest__module *mod = op->mod;
    crest_json *w = crest_res_json(op->ctx.res);
    crest_json_object_begin(w);
    crest_json_key(w, mod->list_env);
    crest_json_array_begin(w);
    int64_t n = 0;
    for (size_t i = 0; r && i < r->nrows; i++) {
        if (n == op->size) { /* the extra row of count=none */
            n++;
            break;
        }
        if (crest__rest_write_item(&op->ctx, mod, r, i, w, op->embeds)) {
            crest__res_finish(op->ctx.res, -1);
            return;
        }
        n++;
    }
    crest_json_array_end(w);
    /* count=none and estimated read one row past the page: whether there
     * is more is then known, not worked out from a total. */
    bool more = !op->lookahead
                    ? (op->sample ? op->total > n : (double)op->offset + (double)op->size < (double)op->total)
                    : n > op->size;
    /* The cursor of the next page: after the page's last row. */
    const char *next = NULL;
    if (!op->sample && more && n) {
        if (!op->scoped && crest__rest_cursor_scope(op->ctx.req, op->ctx.res, mod, op->lp.order, &op->cursor)) {
            crest__res_finish(op->ctx.res, -1);
            return;
        }
        next = crest__rest_cursor_make(op->ctx.req, &op->cursor, &op->lp, r, (size_t)(n > op->size ? op->size : n) - 1);
        if (!next || crest__rest_link_next(op->ctx.req, op->ctx.res, next)) {
            crest__res_finish(op->ctx.res, next ? -1 : crest__res_fail(op->ctx.res, CREST__E_OUT_OF_MEMORY, NULL));
            return;
        }
    }
    if (op->estimate && n && !op->lp.after) {
        /* An estimate below the rows seen up to here is known to be low. */
        int64_t seen = op->lp.offset + (n > op->size ? op->size : n) + (more ? 1 : 0);
        if (op->total < seen)
            op->total = seen;
    }
    crest__rest_meta(&op->ctx, mod, w, op->total, op->count != COUNT_NONE,
                     op->count == COUNT_ESTIMATED ? op->estimate : -1, more, op->sample ? NULL : &next);
    crest_json_object_end(w);
    if (op->sample) /* random rows: no validator */
        crest__res_finish(op->ctx.res, 0);
    else
        crest__rest_finish_tagged(op->ctx.res, 0);
}

/* The page's rows are here (NULL: past the last row): their embeds, then the answer. */
static void list_page(void *p, crest__rows *r)
{
    list_op *op = p;
    if (op->embeds && r && r->nrows)
        crest__rest_embeds_fetch(op->embeds, &op->ctx, r, list_write, op);
    else
        list_write(op, r);
}

/* Reads the page: CREST_DEFERRED, or -1 answered. */
static int list_read(list_op *op)
{
    if (op->beyond) {
        list_page(op, NULL);
        return CREST_DEFERRED;
    }
    crest_req *req = op->ctx.req;
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__compile_list(&q, &op->lp);
    int rc = crest__rest_query_then(req, op->ctx.res, &q, CREST__QF_READ | (op->embeds ? 0 : CREST__QF_LAST),
                                    (size_t)op->lp.limit, list_page, op);
    crest__sql_dispose(&q);
    return rc;
}

static void list_counted(void *p, crest__rows *r)
{
    list_op *op = p;
    op->total = r->nrows ? crest__rows_cell(r, 0, 0)->v.i : 0;
    if (list_read(op) < 0)
        crest__res_finish(op->ctx.res, -1);
}

/* count=estimated: the planner's estimate is here; the total is the larger
 * of it and the count up to the threshold (PostgREST's rule). */
static void list_estimated(void *p, crest__rows *r)
{
    list_op *op = p;
    const crest__cell *c = r->nrows && r->ncols ? crest__rows_cell(r, 0, 0) : NULL;
    int64_t est;
    if (!c || !crest__vkind_is_text((crest__vkind)c->k) || crest__estimate_of(c->v.s, c->n, &est)) {
        crest__res_finish(op->ctx.res, crest__res_fail(op->ctx.res, CREST__E_INTERNAL_ERROR, NULL));
        return;
    }
    if (est > op->total)
        op->total = est;
    op->estimate = true;
    if (list_read(op) < 0)
        crest__res_finish(op->ctx.res, -1);
}

/* count=estimated: the rows counted up to the threshold (the module's
 * page_size max) are here; exact at or below it, else the estimate next. */
static void list_counted_upto(void *p, crest__rows *r)
{
    list_op *op = p;
    op->total = r->nrows ? crest__rows_cell(r, 0, 0)->v.i : 0;
    int rc;
    if (op->total <= op->mod->ps_max) {
        rc = list_read(op);
    } else {
        crest_req *req = op->ctx.req;
        crest__sql q;
        crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
        crest__compile_estimate(&q, &op->lp);
        rc = crest__rest_query_then(req, op->ctx.res, &q, CREST__QF_READ, 1, list_estimated, op);
        crest__sql_dispose(&q);
    }
    if (rc < 0)
        crest__res_finish(op->ctx.res, -1);
}

/* ---- index and sample ---- */

/* After the prologue (crest__rest_prologue): the page of rows. */
int crest__rest_list(const crest_rest_ctx *ctx, crest__module *mod, crest__qnode *scope, bool sample)
{
    crest_req *req = ctx->req;
    crest_res *res = ctx->res;
    list_op *op = crest__arena_calloc(req->arena, 1, sizeof *op);
    if (!op)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    op->ctx = *ctx;
    op->mod = mod;
    op->sample = sample;
    crest__qnode *where;
    if (crest__rest_where_param(req, res, mod, &where) || crest__rest_embeds_parse(&op->ctx, mod, &op->embeds))
        return -1;
    where = crest__qnode_and(req->arena, where, scope);
    int64_t offset, size;
    if (crest__rest_window(req, res, mod, sample, &offset, &size))
        return -1;
    crest__plan *plan = &op->plan;
    *plan = mod->defsort;
    const char *sort = sample ? NULL : crest_req_str(req, "sort_by");
    char msg[200];
    crest__rest_reach rr;
    crest__reach reach = crest__rest_reach_init(&rr, req, res, mod);
    int src = sort && *sort ? crest__sort_parse_rel(mod->m, &mod->sorts, &reach, sort, plan, msg, sizeof msg) : 0;
    if (src == -2)
        return -1;
    if (src)
        return crest__rest_bad_param(res, "sort_by", msg);
    for (unsigned i = 0; i < plan->nsort; i++)
        if (!crest__rest_can_read(req, plan->sort[i].field))
            return crest__rest_bad_param(res, "sort_by", crest__arena_printf(req->arena, "sort_by: unknown field '%s'",
                                                                             plan->sort[i].field->f.name));
    crest__rest_total_order(plan, mod->m);
    const char *count = sample ? NULL : crest_req_str(req, "count");
    op->count = !count || !strcmp(count, "exact") ? COUNT_EXACT
                : !strcmp(count, "none")          ? COUNT_NONE
                                                  : COUNT_ESTIMATED; /* the parameter's enum checked the rest */
    /* A cursor page starts after the cursor's row, not at an offset. The
     * count stays the module's (of the whole list: count=none skips it). */
    const char *cursor = sample ? NULL : crest_req_str(req, "cursor");
    crest__val *after = NULL;
    if (cursor && (crest_req_has(req, "page") || crest_req_has(req, "offset")))
        return crest__res_fail(res, CREST__E_INVALID_CURSOR, "cursor cannot be used with %s: the cursor is the "
                               "position (page_size or limit sets the page's size)",
                               crest_req_has(req, "page") ? "page" : "offset");
    /* (the scope costs three digests: worked out when a cursor is read or made) */
    if (cursor && (crest__rest_cursor_scope(req, res, mod, plan, &op->cursor) ||
                   crest__rest_cursor_read(req, res, &op->cursor, plan, cursor, &after)))
        return -1;
    op->scoped = cursor != NULL;
    if (after)
        offset = 0;
    /* Past the last row, or an offset beyond what SQLite counts: nothing. */
    op->beyond = (double)offset > 9.0e18;
    op->offset = offset;
    op->size = size;
    op->lookahead = op->count != COUNT_EXACT || after;
    op->lp = (crest__list_plan){.proj = crest__rest_proj(mod), .where = where, .order = plan, .random = sample,
                                .limit = op->lookahead ? size + 1 : size, .offset = op->beyond ? 0 : offset,
                                .after = after, .key_columns = !sample};
    if (op->count == COUNT_NONE)
        return list_read(op);
    /* The count first, then the page (one after the other on the session).
     * count=estimated where the database estimates: the rows up to the
     * threshold first; where it does not (SQLite), the exact count. */
    const crest__dialect *d = crest__app_dialect(req->app);
    bool upto = op->count == COUNT_ESTIMATED && d->explain_json;
    crest__sql q;
    crest__sql_init(&q, req->arena, d);
    if (upto)
        crest__compile_count_upto(&q, &op->lp, mod->ps_max);
    else
        crest__compile_count(&q, &op->lp);
    int rc = crest__rest_query_then(req, res, &q, CREST__QF_READ, 1, upto ? list_counted_upto : list_counted, op);
    crest__sql_dispose(&q);
    return rc;
}

int crest__rest_op_index(crest_req *req, crest_res *res, void *ud)
{
    crest__module *mod;
    crest_rest_ctx ctx;
    crest__qnode *scope;
    if (crest__rest_prologue(req, res, ud, &ctx, &mod, &scope, NULL))
        return -1;
    return crest__rest_list(&ctx, mod, scope, false);
}

int crest__rest_op_sample(crest_req *req, crest_res *res, void *ud)
{
    crest__module *mod;
    crest_rest_ctx ctx;
    crest__qnode *scope;
    if (crest__rest_prologue(req, res, ud, &ctx, &mod, &scope, NULL))
        return -1;
    return crest__rest_list(&ctx, mod, scope, true);
}

/* ---- read ---- */

/* A one-row answer while its statement runs (the request's arena). */
typedef struct one_op {
    crest_rest_ctx ctx;
    crest__module *mod;
    crest_rest_hook after;
    crest__embeds *embeds;        /* ?include=, or NULL */
} one_op;

/* The row and its embeds are here: the answer. */
static void one_write(void *p, crest__rows *r)
{
    one_op *op = p;
    crest_rest_ctx *ctx = &op->ctx;
    crest__module *mod = op->mod;
    crest_json *w = crest_res_json(ctx->res);
    if (mod->single_env) {
        crest_json_object_begin(w);
        crest_json_key(w, mod->single_env);
    }
    int rc = crest__rest_write_item(ctx, mod, r, 0, w, op->embeds);
    if (mod->single_env)
        crest_json_object_end(w);
    if (!rc && !ctx->res->is_error && (op->embeds || mod->ncomp)) {
        /* More than the row decides the answer: its tag hashes the body. */
        size_t n;
        const char *body = crest_json_data(w, &n);
        char tag[64];
        crest__rest_etag_row(ctx, mod, r, 0, NULL, body, n, tag, sizeof tag);
        rc = crest__rest_etag_answer(ctx->res, tag) < 0 ? -1 : 0;
    }
    crest__res_finish(ctx->res, rc);
}

static void one_read(void *p, crest__rows *r)
{
    one_op *op = p;
    crest_rest_ctx *ctx = &op->ctx;
    crest_res *res = ctx->res;
    crest__module *mod = op->mod;
    if (!r->nrows) {
        crest__res_finish(res, crest__rest_not_found(res, mod));
        return;
    }
    if (op->after) {
        json_t *o = crest__rest_row_object(ctx, mod, r, 0);
        int hr = o ? op->after(ctx, o) : 0;
        json_decref(o);
        if (hr || res->is_error) {
            crest__res_finish(res, -1);
            return;
        }
    }
    if (!op->embeds && !mod->ncomp) {
        /* The row decides the answer: its version and the fields written
         * make the tag, and a 304 costs no serializer run. */
        char tag[64];
        crest__rest_etag_row(ctx, mod, r, 0, crest__rest_route_mask(ctx->req, mod), NULL, 0, tag, sizeof tag);
        int t = crest__rest_etag_answer(res, tag);
        if (t) {
            crest__res_finish(res, t < 0 ? -1 : 0);
            return;
        }
    }
    if (op->embeds)
        crest__rest_embeds_fetch(op->embeds, ctx, r, one_write, op);
    else
        one_write(op, r);
}

/* Serves row `id` (in scope); 404 when absent. */
int crest__rest_serve_one(crest_rest_ctx *ctx, crest__module *mod, int64_t id, const crest__qnode *scope,
                          crest_rest_hook after, crest__embeds *e)
{
    crest_req *req = ctx->req;
    one_op *op = crest__arena_alloc(req->arena, sizeof *op);
    if (!op)
        return crest__res_fail(ctx->res, CREST__E_OUT_OF_MEMORY, NULL);
    *op = (one_op){*ctx, mod, after, e};
    unsigned last = op->embeds ? 0 : CREST__QF_LAST;
    if (!scope && mod->read_sql && mod->read_dialect == crest__app_dialect(req->app)) {
        /* The read by id without a scope: its text was made at start. */
        crest__val *id_val = crest__arena_alloc(req->arena, sizeof *id_val);
        if (!id_val)
            return crest__res_fail(ctx->res, CREST__E_OUT_OF_MEMORY, NULL);
        *id_val = (crest__val){.k = CREST__V_INT, .i = id};
        crest__query qq = {.sql = mod->read_sql, .len = strlen(mod->read_sql), .binds = id_val, .nbinds = 1,
                           .flags = CREST__QF_READ | CREST__QF_FIRST | last, .max_rows = 1};
        return crest__rest_run_then(req, ctx->res, &qq, one_read, op);
    }
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__rest_select_by_id(&q, mod, id, scope);
    int rc = crest__rest_query_then(req, ctx->res, &q, CREST__QF_READ | CREST__QF_FIRST | last, 1, one_read, op);
    crest__sql_dispose(&q);
    return rc;
}

int crest__rest_op_read(crest_req *req, crest_res *res, void *ud)
{
    crest__module *mod;
    crest_rest_ctx ctx;
    crest__qnode *scope;
    int64_t id;
    crest__embeds *e;
    if (crest__rest_prologue(req, res, ud, &ctx, &mod, &scope, &id) || crest__rest_embeds_parse(&ctx, mod, &e))
        return -1;
    return crest__rest_serve_one(&ctx, mod, id, scope, NULL, e);
}
