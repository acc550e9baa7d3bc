/* module_write.c — the write routes of a REST module: bodies checked (keys
 * here, values by the one field validator, src/query/field.c) and parsed
 * (callbacks, hooks), then create (one row or a list in one
 * transaction), update and delete, on the app's writer connection. An
 * update or delete with If-Match checks the row version in its own
 * statement (etag.c). */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../json/json_internal.h"

#include "module_internal.h"

/* ---- bodies ---- */

typedef struct attrs {
    crest__val *v;            /* per field */
    unsigned char *set;       /* per field: given (or defaulted), or refused by a parse callback (named
                                 once, not checked again; the request then fails, so it is never written) */
} attrs;

/* The arrays of a, from the request's arena; -1 (answered 503) when short of memory. */
static int attrs_init(crest_req *req, crest_res *res, const crest__module *mod, attrs *a)
{
    unsigned n = mod->m->nfields;
    a->v = crest__arena_calloc(req->arena, n, sizeof *a->v);
    a->set = crest__arena_calloc(req->arena, n, 1);
    if (a->v && a->set)
        return 0;
    return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
}

/* Checks the client's keys of one object: unknown or non-writable keys are
 * named. prefix: "" or "[3]." for bulk rows. Returns the number of errors. */
static unsigned check_keys(const crest_req *req, crest_res *res, const crest__module *mod, const json_t *obj,
                           const char *prefix, unsigned nbad, const crest__mfield *pin)
{
    const char *k;
    json_t *v;
    char name[300];
    json_object_foreach((json_t *)obj, k, v) {
        const crest__mfield *f = crest__model_field(mod->m, k);
        const char *msg = NULL;
        if (!f || f->f.rest == CREST_REST_NONE)
            msg = "is not a known field";
        else if (!mod->writable[f->idx] || !crest__rest_can_write(req, f))
            msg = "is read-only";
        else if (f == pin)
            msg = "is set by the path";
        if (msg) {
            if (!nbad)
                crest__res_fail(res, CREST__E_VALIDATION_FAILED, NULL);
            snprintf(name, sizeof name, "%s%s", prefix, k);
            crest_res_error_field(res, name, msg);
            nbad++;
        }
    }
    return nbad;
}

/* Turns the (hook-processed) object into values (out: made by attrs_init,
 * with the fields parse callbacks refused marked as set); missing required fields
 * and invalid values are named. create: defaults fill the gaps. */
static unsigned to_attrs(crest_req *req, crest_res *res, const crest__module *mod, const json_t *obj, bool create,
                         const char *prefix, attrs *out, unsigned nbad)
{
    const crest__model *m = mod->m;
    char name[300];
    for (unsigned i = 1; i < m->nfields; i++) {
        const crest__mfield *f = &m->fields[i];
        if (out->set[i])
            continue; /* refused by a parse callback, named there: one message per field */
        bool set;
        const char *msg = crest__field_input(req->arena, f, json_object_get(obj, f->f.name), create, &out->v[i], &set);
        out->set[i] = set;
        if (msg) {
            if (!nbad)
                crest__res_fail(res, CREST__E_VALIDATION_FAILED, NULL);
            snprintf(name, sizeof name, "%s%s", prefix, f->f.name);
            crest_res_error_field(res, name, msg);
            nbad++;
        }
    }
    return nbad;
}

static void fields_invalid(crest_req *req, crest_res *res, unsigned nbad)
{
    res->err_detail = nbad == 1 ? "1 field is invalid" : crest__arena_printf(req->arena, "%u fields are invalid", nbad);
}

/* Unwraps {"<single_envelope>": {...}} when the module parses envelopes. */
static json_t *unwrap(const crest__module *mod, json_t *body, const char *env)
{
    if (!mod->def->use_envelope_on_parse || !env)
        return body;
    return json_is_object(body) ? json_object_get(body, env) : NULL;
}

/* The parse stage of one object: a copy with parse callbacks applied, the
 * processor and the before hook run; fields a callback rejects are marked
 * in a (made by attrs_init). NULL when the request was answered. */
static json_t *parse_object(crest_rest_ctx *ctx, const crest__module *mod, json_t *in, crest_rest_hook before,
                            const char *prefix, attrs *a, unsigned *nbad, const crest__mfield *pin, int64_t pin_id)
{
    json_t *obj = json_deep_copy(in);
    if (!obj) {
        crest__res_fail(ctx->res, CREST__E_OUT_OF_MEMORY, NULL);
        return NULL;
    }
    /* Keys check_keys rejected are gone from here on (hooks may add any field). */
    const char *k;
    json_t *kv;
    void *tmp;
    json_object_foreach_safe(obj, tmp, k, kv) {
        const crest__mfield *f = crest__model_field(mod->m, k);
        if (!f || f->f.rest == CREST_REST_NONE || !mod->writable[f->idx])
            json_object_del(obj, k);
    }
    for (const crest_parse_field *pf = mod->def->parse_fields; pf && pf->name; pf++) {
        json_t *v = json_object_get(obj, pf->name);
        if (!v)
            continue;
        json_incref(v);
        json_t *nv = v;
        const char *msg = pf->fn(ctx, &nv);
        if (msg) {
            if (!*nbad)
                crest__res_fail(ctx->res, CREST__E_VALIDATION_FAILED, NULL);
            char name[300];
            snprintf(name, sizeof name, "%s%s", prefix, pf->name);
            crest_res_error_field(ctx->res, name, msg);
            (*nbad)++;
            const crest__mfield *f = crest__model_field(mod->m, pf->name);
            if (f)
                a->set[f->idx] = 1;
        } else if (nv != v) {
            json_object_set(obj, pf->name, nv);
            json_decref(nv);
        }
        json_decref(v);
    }
    if (*nbad)
        return obj;
    if ((mod->def->processor && mod->def->processor(ctx, obj)) || (before && before(ctx, obj)) || ctx->res->is_error) {
        json_decref(obj);
        return NULL;
    }
    if (pin) /* a nested route's parent (the body may not name it: check_keys) */
        json_object_set_new(obj, pin->f.name, json_integer(pin_id));
    if (mod->owner) { /* the owner is the user: on create set, on update never moved */
        if (ctx->req->method == CREST_POST)
            json_object_set_new(obj, mod->owner->f.name, crest__rest_user_value(ctx->req->user, "id"));
        else
            json_object_del(obj, mod->owner->f.name);
    }
    return obj;
}

static void insert_sql(crest__sql *q, const crest__module *mod, const attrs *a)
{
    crest__insert_plan p = {.m = mod->m, .vals = a->v, .set = a->set};
    crest__compile_insert(q, &p);
}

/* The id of the row an insert made: what it returned (RETURNING, in the
 * dialects that have it), or the store's last insert id (SQLite). */
static int64_t inserted_id(const crest__sql *q, const crest__rows *done)
{
    if (q->d->returning_id)
        return done->nrows && done->ncols ? crest__rows_cell(done, 0, 0)->v.i : 0;
    return done->last_id;
}

/* Whether `table` has a row whose `key` equals v: 1 yes, 0 no, -1 unknown. */
static int parent_exists(crest_req *req, const char *table, const char *key, const crest__val *v)
{
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__compile_parent_exists(&q, table, key, *v);
    /* (a failed probe leaves the answer as it is: no res) */
    crest__rows *r = crest__rest_query(req, NULL, &q, CREST__QF_READ | CREST__QF_NOCACHE, NULL);
    crest__sql_dispose(&q);
    return r ? r->nrows ? 1 : 0 : -1;
}

/* The message of a field whose value names no row: "no Person with id
 * 999" for a ref field, else "no <table> row with this id". */
static void missing_parent(crest_req *req, crest_res *res, const crest__mfield *f, const attrs *a,
                           const char *prefix, const char *table)
{
    const crest__val *v = &a->v[f->idx];
    const char *msg = f->ref && v->k == CREST__V_INT
                          ? crest__arena_printf(req->arena, "no %s with id %lld", f->ref->target->name, (long long)v->i)
                          : crest__arena_printf(req->arena, "no %s row with this id", table);
    crest_res_error_field(res, crest__arena_printf(req->arena, "%s%s", prefix, f->f.name), msg);
}

/* After a foreign key error of an insert or update of the values a: the
 * field of the key the database names (PostgreSQL says which key and which
 * table); SQLite does not say, so each one-column key of the table whose
 * field was given a value is probed for its parent row; each field without
 * one is named (missing_parent). prefix: "" or "[3]." for bulk rows. */
static void name_missing_parents(crest_req *req, crest_res *res, const crest__module *mod, const attrs *a,
                                 const char *prefix, const crest__dberr *e)
{
    if (e->columns && e->table) { /* the database named the key and its table (PostgreSQL) */
        for (const char *c = e->columns; *c; c += strlen(c) + 1) {
            const crest__mfield *f = crest__model_field(mod->m, c);
            if (f && a->set[f->idx] && a->v[f->idx].k != CREST__V_NULL)
                missing_parent(req, res, f, a, prefix, e->table);
        }
        return;
    }
    crest__sess *ss = crest__req_sess(req);
    crest__fkey_info *fk;
    unsigned n;
    if (!ss || req->app->store->vt->sess_fkeys(ss, mod->m->table, &fk, &n))
        return;
    for (unsigned i = 0; i < n; i++) {
        const crest__mfield *f = crest__model_field(mod->m, fk[i].column);
        if (!f || !a->set[f->idx] || a->v[f->idx].k == CREST__V_NULL)
            continue;
        if (parent_exists(req, fk[i].table, fk[i].to, &a->v[f->idx]) == 0)
            missing_parent(req, res, f, a, prefix, fk[i].table);
    }
}

/* After a delete of row `id` failed because other rows still refer to it:
 * the relation that holds it, in the detail ("Person 1 is still referenced
 * by Computer.owner"): the refs to the model that restrict deletes, those
 * of the table the database names (PostgreSQL), else each probed for a row
 * (SQLite, whose failed statement leaves the transaction usable). Keeps the
 * generic detail when none is found. */
static void name_referrers(crest_req *req, crest_res *res, const crest__module *mod, int64_t id, const crest__dberr *e)
{
    const crest_app *app = req->app;
    for (unsigned i = 0; i < app->nmodels; i++) {
        const crest__model *m2 = app->models[i];
        if (e->table && strcmp(e->table, m2->table))
            continue;
        for (unsigned j = 1; j < m2->nfields; j++) {
            const crest__mfield *f = &m2->fields[j];
            if (!f->ref || f->ref->target != mod->m || f->ref->def->on_delete != CREST_ON_DELETE_RESTRICT)
                continue;
            crest__val v = {.k = CREST__V_INT, .i = id};
            if (!e->table && parent_exists(req, m2->table, f->f.name, &v) != 1)
                continue;
            crest__res_fail(res, CREST__E_STILL_REFERENCED, "%s %lld is still referenced by %s.%s", mod->m->name,
                            (long long)id, m2->name, f->ref->name);
            return;
        }
    }
}

/* Runs q. On failure answers through the error table (src/req/dberror.c);
 * a foreign key error of the values a (NULL: none bound) names the fields. */
static int exec_sql(crest_req *req, crest_res *res, crest__sql *q, crest__rows **out, const crest__module *mod,
                    const attrs *a, const char *prefix, int64_t id)
{
    crest__dberr e;
    crest__rows *r = crest__rest_query(req, res, q, req->method == CREST_DELETE ? CREST__QF_DELETE : 0, &e);
    if (!r) {
        if (e.kind == CREST__DBERR_FOREIGN_KEY && a)
            name_missing_parents(req, res, mod, a, prefix, &e);
        else if (e.kind == CREST__DBERR_REFERENCED && id)
            name_referrers(req, res, mod, id, &e);
        return -1;
    }
    if (out)
        *out = r;
    return 0;
}

/* A transaction step of the request's session (CREST__TXN_*); -1 answered. */
static int txn(crest_req *req, crest_res *res, int op)
{
    if (req->in_route_txn)
        return 0; /* the route's transaction holds this one: it commits or rolls back the whole */
    crest__sess *ss = crest__req_sess(req);
    crest__dberr e;
    if (!ss)
        return crest__res_fail(res, CREST__E_DATABASE_UNAVAILABLE, NULL);
    if (req->app->store->vt->txn(ss, op, &e) == 0)
        return 0;
    return op == CREST__TXN_ROLLBACK ? 0 : crest__dberr_answer(req, res, &e);
}

static char *location(crest_req *req, const crest__module *mod, int64_t id)
{
    const char *pfx = req->app->api_prefix ? req->app->api_prefix : "";
    const char *open = strchr(mod->id_path, '{'), *close = open ? strchr(open, '}') : NULL;
    if (!open || !close)
        return crest__arena_printf(req->arena, "%s%s/%lld", pfx, mod->prefix, (long long)id);
    return crest__arena_printf(req->arena, "%s%s%.*s%lld%s", pfx, mod->prefix, (int)(open - mod->id_path),
                               mod->id_path, (long long)id, close + 1);
}

/* ---- create ---- */

static int create_one(crest_rest_ctx *ctx, crest__module *mod, json_t *body, crest__embeds *e,
                      const crest__mfield *pin, int64_t pin_id)
{
    crest_req *req = ctx->req;
    crest_res *res = ctx->res;
    attrs a;
    if (attrs_init(req, res, mod, &a))
        return -1;
    unsigned nbad = check_keys(req, res, mod, body, "", 0, pin);
    json_t *obj = parse_object(ctx, mod, body, mod->def->before_create, "", &a, &nbad, pin, pin_id);
    if (!obj)
        return -1;
    nbad = to_attrs(req, res, mod, obj, true, "", &a, nbad);
    if (nbad) {
        json_decref(obj);
        fields_invalid(req, res, nbad);
        return -1;
    }
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    insert_sql(&q, mod, &a);
    crest__rows *done = NULL;
    int rc = exec_sql(req, res, &q, &done, mod, &a, "", 0);
    int64_t id = rc ? 0 : inserted_id(&q, done);
    crest__sql_dispose(&q);
    json_decref(obj); /* the values were bound from it: keep it until the insert ran */
    if (rc)
        return -1;
    crest_res_header(res, "Location", location(req, mod, id));
    return crest__rest_serve_one(ctx, mod, id, NULL, mod->def->after_create, e);
}

/* A bulk create's rows, as stored, and their embeds: the answer, in the
 * body's order. */
typedef struct bulk_op {
    crest_rest_ctx ctx;
    crest__module *mod;
    const int64_t *ids;
    size_t n;
    crest__embeds *embeds;
} bulk_op;

/* Row `id` of r (ordered by id), or -1. */
static long row_of(const crest__rows *r, int64_t id)
{
    size_t lo = 0, hi = r->nrows;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int64_t v = crest__rows_cell(r, mid, 0)->v.i;
        if (v < id)
            lo = mid + 1;
        else if (v > id)
            hi = mid;
        else
            return (long)mid;
    }
    return -1;
}

static void bulk_write(void *p, crest__rows *r)
{
    bulk_op *op = p;
    crest_json *w = crest_res_json(op->ctx.res);
    crest_json_object_begin(w);
    crest_json_key(w, op->mod->list_env);
    crest_json_array_begin(w);
    int rc = 0;
    for (size_t i = 0; i < op->n && !rc; i++) {
        long k = row_of(r, op->ids[i]);
        if (k >= 0)
            rc = crest__rest_write_item(&op->ctx, op->mod, r, (size_t)k, w, op->embeds);
    }
    crest_json_array_end(w);
    crest_json_object_end(w);
    crest__rest_finish_tagged(op->ctx.res, rc);
}

static void bulk_read(void *p, crest__rows *r)
{
    bulk_op *op = p;
    if (op->mod->def->after_create)
        for (size_t i = 0; i < op->n; i++) {
            long k = row_of(r, op->ids[i]);
            json_t *o = k >= 0 ? crest__rest_row_object(&op->ctx, op->mod, r, (size_t)k) : NULL;
            int hr = o ? op->mod->def->after_create(&op->ctx, o) : 0;
            json_decref(o);
            if (hr || op->ctx.res->is_error) {
                crest__res_finish(op->ctx.res, -1);
                return;
            }
        }
    if (op->embeds)
        crest__rest_embeds_fetch(op->embeds, &op->ctx, r, bulk_write, op);
    else
        bulk_write(op, r);
}

/* Reads the n rows made (ids) in one statement: CREST_DEFERRED, or -1 answered. */
static int bulk_answer(crest_rest_ctx *ctx, crest__module *mod, const int64_t *ids, size_t n, crest__embeds *e)
{
    crest_req *req = ctx->req;
    bulk_op *op = crest__arena_alloc(req->arena, sizeof *op);
    crest__val *v = crest__arena_alloc(req->arena, n * sizeof *v);
    crest__qnode *in = crest__arena_calloc(req->arena, 1, sizeof *in);
    crest__plan *by_id = crest__arena_calloc(req->arena, 1, sizeof *by_id);
    if (!op || !v || !in || !by_id)
        return crest__res_fail(ctx->res, CREST__E_OUT_OF_MEMORY, NULL);
    *op = (bulk_op){*ctx, mod, ids, n, e};
    for (size_t i = 0; i < n; i++)
        v[i] = (crest__val){.k = CREST__V_INT, .i = ids[i]};
    *in = (crest__qnode){.kind = CREST__Q_CMP, .op = CREST__OP_IN, .field = &mod->m->fields[0], .vals = v,
                         .nvals = (unsigned)n};
    crest__rest_total_order(by_id, mod->m);
    crest__list_plan lp = {.proj = crest__rest_proj(mod), .where = in, .order = by_id, .limit = (int64_t)n};
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__compile_list(&q, &lp);
    int rc = crest__rest_query_then(req, ctx->res, &q, CREST__QF_READ | (e ? 0 : CREST__QF_LAST), 0, bulk_read, op);
    crest__sql_dispose(&q);
    return rc;
}

static int create_many(crest_rest_ctx *ctx, crest__module *mod, json_t *rows, crest__embeds *e,
                       const crest__mfield *pin, int64_t pin_id)
{
    crest_req *req = ctx->req;
    crest_res *res = ctx->res;
    size_t n = json_array_size(rows);
    if (n == 0)
        return crest__res_fail(res, CREST__E_VALIDATION_FAILED, "the list of rows to create is empty");
    if (n > CREST_BULK_MAX)
        return crest__res_fail(res, CREST__E_VALIDATION_FAILED, "at most %d rows can be created at once", CREST_BULK_MAX);
    unsigned nbad = 0;
    json_t **objs = crest__arena_calloc(req->arena, n, sizeof *objs);
    attrs *as = crest__arena_calloc(req->arena, n, sizeof *as);
    int64_t *ids = crest__arena_calloc(req->arena, n, sizeof *ids);
    if (!objs || !as || !ids)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *in = json_array_get(rows, i);
        char prefix[32];
        snprintf(prefix, sizeof prefix, "[%zu].", i);
        if (!json_is_object(in)) {
            if (!nbad)
                crest__res_fail(res, CREST__E_VALIDATION_FAILED, NULL);
            prefix[strlen(prefix) - 1] = 0;
            crest_res_error_field(res, prefix, "must be an object");
            nbad++;
            continue;
        }
        if (attrs_init(req, res, mod, &as[i])) {
            rc = -1;
            goto out;
        }
        nbad = check_keys(req, res, mod, in, prefix, nbad, pin);
        objs[i] = parse_object(ctx, mod, in, mod->def->before_create, prefix, &as[i], &nbad, pin, pin_id);
        if (!objs[i]) {
            rc = -1;
            goto out;
        }
        nbad = to_attrs(req, res, mod, objs[i], true, prefix, &as[i], nbad);
    }
    if (nbad) {
        fields_invalid(req, res, nbad);
        rc = -1;
        goto out;
    }
    /* All or nothing. */
    if ((rc = txn(req, res, CREST__TXN_BEGIN)))
        goto out;
    for (size_t i = 0; i < n; i++) {
        crest__sql q;
        crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
        insert_sql(&q, mod, &as[i]);
        char prefix[32];
        snprintf(prefix, sizeof prefix, "[%zu].", i);
        crest__rows *done = NULL;
        rc = exec_sql(req, res, &q, &done, mod, &as[i], prefix, 0);
        if (!rc)
            ids[i] = inserted_id(&q, done);
        crest__sql_dispose(&q);
        if (rc) {
            if (res->nerr_fields == 0 && !strcmp(res->err_code, crest__problem(CREST__E_CONFLICT)->code))
                crest_res_error_field(res, crest__arena_printf(req->arena, "[%zu]", i), "conflicts with a stored row");
            txn(req, res, CREST__TXN_ROLLBACK);
            goto out;
        }
    }
    if ((rc = txn(req, res, CREST__TXN_COMMIT)))
        goto out; /* rolled back */
    rc = bulk_answer(ctx, mod, ids, n, e);
out:
    for (size_t i = 0; i < n; i++)
        json_decref(objs[i]);
    return rc;
}

int crest__rest_create(crest_rest_ctx *ctx, crest__module *mod, crest__embeds *e, const crest__mfield *pin,
                       int64_t pin_id)
{
    json_t *body = ctx->req->json;
    if (json_is_array(body) || (mod->def->use_envelope_on_parse && json_is_object(body) &&
                                json_is_array(json_object_get(body, mod->list_env)))) {
        json_t *rows = json_is_array(body) ? body : json_object_get(body, mod->list_env);
        return create_many(ctx, mod, rows, e, pin, pin_id);
    }
    json_t *obj = unwrap(mod, body, mod->single_env);
    if (!json_is_object(obj))
        return crest__res_fail(ctx->res, CREST__E_VALIDATION_FAILED,
                               mod->def->use_envelope_on_parse && mod->single_env
                                   ? "the body must be {\"%s\": {...}}"
                                   : "the body must be a JSON object (or a list of objects)%s",
                               mod->def->use_envelope_on_parse && mod->single_env ? mod->single_env : "");
    return create_one(ctx, mod, obj, e, pin, pin_id);
}

int crest__rest_op_create(crest_req *req, crest_res *res, void *ud)
{
    crest__module *mod;
    crest_rest_ctx ctx;
    crest__qnode *scope;
    crest__embeds *e;
    if (crest__rest_prologue(req, res, ud, &ctx, &mod, &scope, NULL) || crest__rest_embeds_parse(&ctx, mod, &e))
        return -1;
    return crest__rest_create(&ctx, mod, e, NULL, 0);
}

/* ---- update ---- */

int crest__rest_op_update(crest_req *req, crest_res *res, void *ud)
{
    crest__module *mod;
    crest_rest_ctx ctx;
    crest__qnode *scope;
    int64_t id;
    crest__embeds *e;
    if (crest__rest_prologue(req, res, ud, &ctx, &mod, &scope, &id) || crest__rest_embeds_parse(&ctx, mod, &e))
        return -1;
    const crest__model *m = mod->m;
    /* If-Match (428, 400) first; 404 and 412 come before validation (etag.c says the order). */
    bool cond;
    crest__version_check expect;
    if (crest__rest_if_match(&ctx, mod, id, &cond, &expect) ||
        crest__rest_row_check(req, res, mod, id, scope, &expect))
        return -1;
    json_t *obj = unwrap(mod, req->json, mod->single_env);
    if (!json_is_object(obj))
        return crest__res_fail(res, CREST__E_VALIDATION_FAILED, "the body must be a JSON object");
    attrs a;
    if (attrs_init(req, res, mod, &a))
        return -1;
    unsigned nbad = check_keys(req, res, mod, obj, "", 0, NULL);
    json_t *parsed = parse_object(&ctx, mod, obj, mod->def->before_update, "", &a, &nbad, NULL, 0);
    if (!parsed)
        return -1;
    nbad = to_attrs(req, res, mod, parsed, false, "", &a, nbad);
    if (nbad) {
        json_decref(parsed);
        fields_invalid(req, res, nbad);
        return -1;
    }
    unsigned nset = 0;
    for (unsigned i = 1; i < m->nfields; i++)
        nset += a.set[i];
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    /* The version check is in the write's own statement too (with nothing
     * to set, no statement: the check above decided). */
    crest__update_plan up = {.m = m, .vals = a.v, .set = a.set, .id = id, .scope = scope, .expect = expect};
    bool run = nset > 0;
    if (run)
        crest__compile_update(&q, &up);
    int64_t changes = 1;
    crest__rows *done = NULL;
    int rc = run ? exec_sql(req, res, &q, &done, mod, &a, "", 0) : 0;
    if (done)
        changes = done->changes;
    crest__sql_dispose(&q);
    json_decref(parsed);
    if (rc)
        return -1;
    if (!changes && cond)
        return crest__rest_if_match_failed(req, res, mod, id, scope, &expect); /* 412, or 404: deleted meanwhile */
    if (!changes)
        return crest__rest_not_found(res, mod); /* deleted meanwhile */
    return crest__rest_serve_one(&ctx, mod, id, NULL, mod->def->after_update, e);
}

/* ---- delete ---- */

int crest__rest_op_delete(crest_req *req, crest_res *res, void *ud)
{
    crest__module *mod;
    crest_rest_ctx ctx;
    crest__qnode *scope;
    int64_t id;
    bool cond;
    crest__version_check expect;
    if (crest__rest_prologue(req, res, ud, &ctx, &mod, &scope, &id) ||
        crest__rest_if_match(&ctx, mod, id, &cond, &expect))
        return -1;
    /* Only rows the client can see, at a version the preconditions allow,
     * reach the hook. */
    if ((cond || mod->def->before_delete) && crest__rest_row_check(req, res, mod, id, scope, &expect))
        return -1;
    if (mod->def->before_delete && (mod->def->before_delete(&ctx, id) || res->is_error))
        return -1;
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__delete_plan dp = {.m = mod->m, .id = id, .scope = scope, .expect = expect};
    crest__compile_delete(&q, &dp);
    crest__rows *done = NULL;
    int rc = exec_sql(req, res, &q, &done, mod, NULL, "", id);
    int64_t changes = done ? done->changes : 0;
    crest__sql_dispose(&q);
    if (rc)
        return -1;
    if (!changes && cond)
        return crest__rest_if_match_failed(req, res, mod, id, scope, &expect);
    if (!changes)
        return crest__rest_not_found(res, mod);
    if (mod->def->after_delete && mod->def->after_delete(&ctx, id))
        return -1;
    crest_res_status(res, 204);
    return 0;
}

/* Runs route r's handler, whose answer is done when it returns. */
static int run_inner(crest_req *req, crest_res *res, route *r)
{
    int rc = r->inner(req, res, r);
    if (rc == CREST_DEFERRED) /* the row served after the write: on this thread, done in place */
        rc = res->finished ? res->finish_rc : crest__res_fail(res, CREST__E_INTERNAL_ERROR, NULL);
    return rc;
}

/* One run of route r's handler in the store's write unit; idem: the key
 * of the request (NULL: none), claimed here first when the unit commits
 * each statement at once (SQLite's writer; else the route claimed it
 * before), whose record is made in a transaction with the rows. On a store
 * whose unit autocommits each statement that transaction is what makes them
 * one; in a unit that is one already (PostgreSQL) it is a savepoint.
 * headers_len: where the handler's header lines begin. *ok: the unit
 * committed what was answered; *conflict: it lost to a concurrent
 * transaction and may run again. */
static int run_unit(crest_req *req, crest_res *res, route *r, crest__idem *idem, size_t headers_len, bool *ok,
                    bool *conflict)
{
    const crest__store_vt *vt = req->app->store->vt;
    crest__sess *ss = crest__req_sess(req);
    crest__dberr e;
    *ok = *conflict = false;
    if (vt->write_begin(ss, &e)) /* (the database down: 503 with Retry-After, as a read's) */
        return crest__dberr_answer(req, res, &e);
    req->db_conflict = false;
    int rc = 0;
    if (!idem) {
        rc = run_inner(req, res, r);
    } else if (!idem->claimed && crest__idem_claim(req, res, r, idem) == CREST__IDEM_ANSWERED) {
        rc = res->is_error ? -1 : 0; /* (a replay, or a problem: nothing to run) */
    } else if (!(rc = txn(req, res, CREST__TXN_BEGIN))) {
        req->in_route_txn = true;
        rc = run_inner(req, res, r);
        req->in_route_txn = false;
        if (!rc && !res->is_error)
            rc = crest__idem_complete(req, res, r, idem, headers_len);
        rc = txn(req, res, !rc && !res->is_error ? CREST__TXN_COMMIT : CREST__TXN_ROLLBACK) || rc ? -1 : 0;
        if ((rc || res->is_error) && vt->unit_autocommits)
            crest__idem_release(req, idem); /* (committed at once, as the claim was) */
    }
    *ok = !rc && !res->is_error;
    *conflict = !*ok && req->db_conflict;
    if (vt->write_end(ss, *ok, &e) && *ok) {
        /* The answer prepared is not the outcome: the commit failed. */
        *ok = false;
        *conflict = e.kind == CREST__DBERR_CONFLICT;
        if (!*conflict) {
            if (e.kind != CREST__DBERR_STORAGE) /* PostgreSQL's COMMIT: a deferred key, a lost connection */
                return crest__dberr_answer(req, res, &e);
            fprintf(stderr, "{\"event\":\"sync_error\",\"request_id\":\"%s\"}\n", req->id);
            return crest__res_fail(res, CREST__E_INTERNAL_ERROR, "the write could not be made durable");
        }
        rc = crest__dberr_answer(req, res, &e);
    }
    return rc;
}

/* Write routes run in the store's write unit: on SQLite, on the thread
 * pool, one at a time, on the one writer connection, the answer waiting
 * until the commit is durable (group commit, src/store/sqlite_writer.c).
 * A unit that lost to a concurrent transaction (CONFLICT: PostgreSQL's
 * serialization failure or deadlock, in a statement or at the commit) was
 * rolled back whole, and nothing of its answer has gone out (a write route
 * answers once it returns): after a pause of a few ms it runs again from
 * the start, answer and all, up to CREST__CONFLICT_RETRIES times; then the
 * conflict is the answer (503 with Retry-After). Hooks of the route run
 * again with it. A create with an Idempotency-Key (module_idem.c) whose
 * answer was kept gets it without a unit; else the key is claimed in a
 * statement committed at once — before the unit, or at its start on a store
 * whose unit autocommits (SQLite: its one writer, no fight for the lock) —
 * and given up when no run succeeded. */
int crest__rest_write_route(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    if (!crest__req_sess(req)) {
        res->retry_after = "1";
        return crest__res_fail(res, CREST__E_DATABASE_UNAVAILABLE, NULL);
    }
    crest__idem idem;
    int ist = crest__idem_check(req, res, r, &idem);
    if (ist == CREST__IDEM_GO && !req->app->store->vt->unit_autocommits)
        ist = crest__idem_claim(req, res, r, &idem);
    if (ist == CREST__IDEM_ANSWERED)
        return res->is_error ? -1 : 0;
    /* The answer as it was before the unit (CORS headers), to start again from. */
    const crest_res before = *res;
    size_t headers_len = res->headers ? res->headers->len : 0;
    for (unsigned again = 0;; again++) {
        bool ok, conflict;
        int rc = run_unit(req, res, r, ist == CREST__IDEM_OFF ? NULL : &idem, headers_len, &ok, &conflict);
        if (ok && !conflict && r->mod->app->changes) /* the change log grew: its subscribers read it now */
            crest__changes_notify(r->mod->app);
        if (!conflict || again == CREST__CONFLICT_RETRIES) {
            if (!ok && idem.claimed)
                crest__idem_release(req, &idem);
            return rc;
        }
        *res = before;
        if (res->headers)
            res->headers->len = headers_len;
        crest_json_reset(res->json);
        usleep(crest__conflict_pause_ms(again + 1) * 1000); /* (a pool thread: it may wait) */
    }
}
