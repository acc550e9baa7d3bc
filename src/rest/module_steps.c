/* module_steps.c — the steps every route of a REST module shares: running a
 * statement, access to fields, rows through the serializer, the `where`
 * parameter, the row scope and the pipeline that opens every route. */
#include <stdio.h>
#include <stdlib.h>

#include "../json/json_internal.h"

#include "module_internal.h"

const crest__dialect *crest__app_dialect(const crest_app *app)
{
    /* The store speaks the dialect of its name, as model sync reads it. */
    const crest__dialect *d = app->store ? crest__dialect_named(app->store->vt->name) : NULL;
    return d ? d : crest__dialect_sqlite();
}

int crest__rest_bad_param(crest_res *res, const char *param, const char *msg)
{
    crest__res_fail(res, CREST__E_INVALID_PARAMETER, "%s", msg);
    crest_res_error_field(res, param, msg);
    return -1;
}


/* What a statement of a route gives back when it completes in place. */
typedef struct done_in_place {
    bool done;
    crest__rows *rows;
    crest__dberr err;
} done_in_place;

static void in_place(void *ud, crest__rows *rows, const crest__dberr *err)
{
    done_in_place *d = ud;
    d->done = true;
    d->rows = rows;
    if (err)
        d->err = *err;
}

crest__rows *crest__rest_query(crest_req *req, crest_res *res, crest__sql *q, unsigned flags, crest__dberr *failed)
{
    return crest__rest_query_n(req, res, q, flags, failed, 0);
}

crest__rows *crest__rest_query_n(crest_req *req, crest_res *res, crest__sql *q, unsigned flags, crest__dberr *failed,
                                 size_t max_rows)
{
    crest__sess *ss = q->err ? NULL : crest__req_sess(req);
    if (!ss) {
        if (res && q->err)
            crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
        else if (res)
            crest__res_fail(res, CREST__E_DATABASE_UNAVAILABLE, NULL);
        return NULL;
    }
    crest__query qq = {.sql = q->text.ptr, .len = q->text.len, .binds = q->binds, .lists = q->lists,
                       .nbinds = q->nbinds, .flags = flags | CREST__QF_INPLACE | CREST__QF_NONAMES,
                       .max_rows = max_rows};
    done_in_place d = {0};
    if (req->app->store->vt->query(ss, &qq, in_place, &d) || !d.done) {
        if (res)
            crest__res_fail(res, CREST__E_INTERNAL_ERROR, NULL);
        return NULL;
    }
    if (!d.rows) {
        if (failed)
            *failed = d.err;
        if (res)
            crest__dberr_answer(req, res, &d.err);
    }
    return d.rows;
}

/* A read route's statement in flight: where its rows go. */
typedef struct rest_call {
    crest_req *req;
    crest_res *res;
    crest__rest_next next;
    void *op;
} rest_call;

static void rest_call_done(void *ud, crest__rows *rows, const crest__dberr *err)
{
    rest_call *c = ud;
    if (!rows) {
        crest__dberr_answer(c->req, c->res, err);
        crest__res_finish(c->res, -1);
        return;
    }
    c->next(c->op, rows);
}

int crest__rest_query_then(crest_req *req, crest_res *res, crest__sql *q, unsigned flags, size_t max_rows,
                           crest__rest_next next, void *op)
{
    if (q->err)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    crest__query qq = {.sql = q->text.ptr, .len = q->text.len, .binds = q->binds, .lists = q->lists,
                       .nbinds = q->nbinds, .flags = flags, .max_rows = max_rows};
    return crest__rest_run_then(req, res, &qq, next, op);
}

int crest__rest_run_then(crest_req *req, crest_res *res, crest__query *q, crest__rest_next next, void *op)
{
    rest_call *c = crest__arena_alloc(req->arena, sizeof *c);
    if (!c)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    *c = (rest_call){req, res, next, op};
    q->flags |= CREST__QF_NONAMES;
    return crest__req_query(req, res, q, rest_call_done, c);
}

/* ---- rows ---- */

static const crest__cell *row_cell(const crest_row *row, const char *field)
{
    const crest__mfield *f = crest__model_field(row->mod->m, field);
    return f ? crest__rows_cell(row->rows, row->i, f->idx) : NULL;
}

bool crest_row_is_null(const crest_row *row, const char *field)
{
    const crest__cell *c = row_cell(row, field);
    return !c || c->k == CREST__V_NULL;
}

int64_t crest_row_int(const crest_row *row, const char *field)
{
    const crest__cell *c = row_cell(row, field);
    if (!c)
        return 0;
    return c->k == CREST__V_INT || c->k == CREST__V_BOOL ? c->v.i
           : c->k == CREST__V_FLOAT                      ? (int64_t)c->v.f
           : crest__vkind_is_text((crest__vkind)c->k)    ? strtoll(c->v.s, NULL, 10)
                                                         : 0;
}

double crest_row_float(const crest_row *row, const char *field)
{
    const crest__cell *c = row_cell(row, field);
    if (!c)
        return 0;
    return c->k == CREST__V_FLOAT                     ? c->v.f
           : c->k == CREST__V_INT || c->k == CREST__V_BOOL ? (double)c->v.i
           : crest__vkind_is_text((crest__vkind)c->k) ? strtod(c->v.s, NULL)
                                                      : 0;
}

const char *crest_row_str(const crest_row *row, const char *field)
{
    const crest__cell *c = row_cell(row, field);
    if (!c || c->k == CREST__V_NULL)
        return NULL;
    if (crest__vkind_is_text((crest__vkind)c->k))
        return c->v.s;
    /* A number read as text, as SQLite's column_text gives it. */
    crest_json w;
    crest_json_init(&w, 0);
    crest__cell_write_text(&w, c);
    const char *out = NULL;
    if (!crest_json_error(&w) && w.len >= 2)
        out = crest__arena_strndup(row->arena, w.buf + 1, w.len - 2);
    crest_json_dispose(&w);
    return out;
}

/* Field-level access: may this request's user see / write field f? */
bool crest__rest_can_read(const crest_req *req, const crest__mfield *f)
{
    return !f->f.read_permission || !req->app->auth || crest__user_has_one(req->user, f->f.read_permission);
}

bool crest__rest_can_write(const crest_req *req, const crest__mfield *f)
{
    return !f->f.write_permission || !req->app->auth || crest__user_has_one(req->user, f->f.write_permission);
}

/* The field a client names in a query parameter, or NULL when it has no
 * such field it may see (unknown, not readable, or hidden from this user). */
const crest__mfield *crest__rest_client_field(const crest_req *req, const crest__module *mod, const char *name)
{
    const crest__mfield *f = name ? crest__model_field(mod->m, name) : NULL;
    return f && crest__field_readable(f) && crest__rest_can_read(req, f) ? f : NULL;
}


/* A query naming a field the user cannot see is refused as if the field
 * did not exist (nothing leaks through filters). */
static const crest__mfield *hidden_in(const crest_req *req, const crest__qnode *q)
{
    if (!q)
        return NULL;
    if (q->kind == CREST__Q_CMP)
        return crest__rest_can_read(req, q->field) ? NULL : q->field;
    for (unsigned i = 0; i < q->nkids; i++) {
        const crest__mfield *f = hidden_in(req, q->kids[i]);
        if (f)
            return f;
    }
    return NULL;
}

/* A computed SQL field's cell as its declared type. json: the cell's JSON
 * text as the value it holds (a number as it is). Returns -1, with the
 * request answered 500 and the cause logged, when the cell is not of the
 * type (the document promised it). */
static int write_computed(const crest_rest_ctx *ctx, const crest__module *mod, const crest_computed *c,
                          const crest__cell *cell, crest_json *w)
{
    crest__vkind k = (crest__vkind)cell->k;
    int bad;
    if (!c->type || k == CREST__V_NULL) {
        crest__cell_write(w, cell);
        return 0;
    }
    if (c->type == CREST_F_JSON && crest__vkind_is_text(k)) {
        json_t *v = cell->v.s ? json_loadb(cell->v.s, cell->n, JSON_DECODE_ANY, NULL) : NULL;
        if (v)
            crest__json_write_value(w, v);
        json_decref(v);
        bad = !v;
    } else if (c->type == CREST_F_JSON) {
        crest__cell_write(w, cell); /* a number or a boolean is JSON as it is */
        bad = 0;
    } else {
        bad = crest__cell_write_as(w, cell, (int)c->type, true);
    }
    if (!bad)
        return 0;
    fprintf(stderr, "{\"event\":\"computed_type\",\"request_id\":\"%s\",\"module\":\"%s\",\"field\":\"%s\"}\n",
            ctx->req->id, mod->name, c->name);
    crest__res_fail(ctx->res, CREST__E_INTERNAL_ERROR, NULL);
    return -1;
}

int crest__rest_write_fields(const crest_rest_ctx *ctx, const crest__module *mod, const crest__rows *r, size_t i0,
                             const crest__field_mask *mask, crest_json *w)
{
    crest_json_object_begin(w);
    int rc = crest__rest_write_members(ctx, mod, r, i0, mask, w);
    crest_json_object_end(w);
    return rc;
}

int crest__rest_write_members(const crest_rest_ctx *ctx, const crest__module *mod, const crest__rows *r, size_t i0,
                              const crest__field_mask *mask, crest_json *w)
{
    const crest__model *m = mod->m;
    const unsigned char *on = mask ? mask->on : NULL;
    for (unsigned i = 0; i < m->nfields; i++) {
        if (!mod->served[i] || (on && !on[i]) || !crest__rest_can_read(ctx->req, &m->fields[i]))
            continue;
        crest_json_key(w, m->fields[i].f.name);
        crest__field_write(w, &m->fields[i], crest__rows_cell(r, i0, i));
    }
    crest_row row = {r, i0, mod, ctx->req->arena};
    for (unsigned j = 0; j < mod->ncomp; j++) {
        const crest_computed *c = mod->comp[j];
        if (on && !on[m->nfields + j])
            continue;
        crest_json_key(w, c->name);
        if (c->sql) {
            if (write_computed(ctx, mod, c, crest__rows_cell(r, i0, m->nfields + j), w))
                return -1;
        } else {
            size_t before = w->len;
            int rc = c->fn(ctx, &row, w);
            if (rc)
                return rc;
            if (w->len == before)
                crest_json_null(w); /* the callback wrote nothing */
        }
    }
    return 0;
}

/* Writes row i of r (a read of crest__rest_proj's columns) through the
 * serializer, with the route's fields= when it names mod's fields. */
int crest__rest_write_row(const crest_rest_ctx *ctx, const crest__module *mod, const crest__rows *r, size_t i0,
                          crest_json *w)
{
    return crest__rest_write_fields(ctx, mod, r, i0, crest__rest_route_mask(ctx->req, mod), w);
}

const crest__field_mask *crest__rest_route_mask(const crest_req *req, const crest__module *mod)
{
    const crest__field_mask *mask = req->fields;
    return mask && mask->mod == mod ? mask : NULL;
}

/* The row as a JSON object, for after_* hooks (new reference). */
json_t *crest__rest_row_object(const crest_rest_ctx *ctx, const crest__module *mod, const crest__rows *r, size_t i)
{
    crest_json w;
    crest_json_init(&w, 0);
    json_t *o = NULL;
    /* Every served field, whatever fields= the client asked for. */
    if (crest__rest_write_fields(ctx, mod, r, i, NULL, &w) == 0 && !crest_json_error(&w))
        o = json_loadb(w.buf, w.len, 0, NULL);
    crest_json_dispose(&w);
    return o;
}

/* ---- the scope and the plan ---- */

int crest__rest_where_param(crest_req *req, crest_res *res, const crest__module *mod, crest__qnode **out)
{
    *out = NULL;
    const char *text = crest_req_str(req, "where");
    if (!text || !*text)
        return 0;
    size_t len = strlen(text);
    if (len > CREST_WHERE_MAX_BYTES)
        return crest__rest_bad_param(res, "where", "where: longer than 16384 bytes");
    char msg[256];
    json_t *w = crest__json_parse(text, len, CREST_WHERE_MAX_DEPTH * 2 + 2, msg, sizeof msg);
    if (!w) {
        char m2[300];
        snprintf(m2, sizeof m2, "where: not valid JSON (%s)", msg);
        return crest__rest_bad_param(res, "where", m2);
    }
    crest__arena_defer(req->arena, (void (*)(void *))json_decref, w);
    crest__rest_reach rr;
    crest__reach reach = crest__rest_reach_init(&rr, req, res, mod);
    int rc = crest__where_parse_rel(req->arena, mod->m, &mod->query, &reach, w, out, msg, sizeof msg);
    if (rc == -2)
        return -1;
    if (rc)
        return crest__rest_bad_param(res, "where", msg);
    const crest__mfield *h = hidden_in(req, *out);
    if (h)
        return crest__rest_bad_param(res, "where",
                                     crest__arena_printf(req->arena, "where: unknown field '%s'", h->f.name));
    return 0;
}

/* ---- relations: the related model's module, its scope, its fields ---- */

int crest__rest_rel_target(crest_req *req, crest_res *res, const crest__rel *rel, unsigned access,
                           const crest__module **mod, const crest__qnode **scope)
{
    *mod = crest__rest_module_of(req->app, rel->target);
    *scope = NULL;
    if (!*mod || !crest__rest_may(req, *mod, access))
        return -1;
    crest_rest_ctx ctx;
    crest__rest_ctx_init(&ctx, req, res, (crest__module *)*mod);
    crest__qnode *sc;
    if (crest__rest_scope(&ctx, *mod, &sc))
        return -2;
    *scope = sc;
    return 0;
}

/* crest__reach's check: each relation's module (index for has_many and
 * through, read for belongs_to), the foreign key readable where it lives,
 * the field readable in the last module; the scopes of each. */
static int reach_check(void *ud, const crest__path *p, const crest__qnode **scopes)
{
    crest__rest_reach *rr = ud;
    const crest__module *src = rr->mod;
    for (unsigned i = 0; i < p->nrels; i++) {
        const crest__rel *rel = p->rels[i];
        bool one = rel->kind == CREST__REL_BELONGS_TO;
        if (one && !crest__rest_client_field(rr->req, src, rel->fk->f.name))
            return -1;
        const crest__module *t = NULL;
        unsigned k;
        for (k = 0; k < rr->n; k++)
            if (rr->seen[k].m == rel->target && rr->seen[k].access == (one ? CREST_R_READ : CREST_R_INDEX))
                break;
        if (k < rr->n) {
            if (rr->seen[k].rc)
                return rr->seen[k].rc;
            t = rr->seen[k].mod;
            scopes[i] = rr->seen[k].scope;
        } else {
            unsigned access = one ? CREST_R_READ : CREST_R_INDEX;
            int rc = crest__rest_rel_target(rr->req, rr->res, rel, access, &t, &scopes[i]);
            if (rr->n < CREST_ARRAY_LEN(rr->seen))
                rr->seen[rr->n++] = (struct crest__rest_seen){rel->target, access, rc, t, scopes[i]};
            if (rc)
                return rc;
        }
        if (rel->kind == CREST__REL_HAS_MANY && !crest__rest_client_field(rr->req, t, rel->fk->f.name))
            return -1;
        src = t;
    }
    return p->field && !crest__rest_client_field(rr->req, src, p->field->f.name) ? -1 : 0;
}

crest__reach crest__rest_reach_init(crest__rest_reach *rr, crest_req *req, crest_res *res, const crest__module *mod)
{
    *rr = (crest__rest_reach){.req = req, .res = res, .mod = mod};
    return (crest__reach){reach_check, rr};
}

/* The module's scope for this request (fixed and per-request), or NULL. */
/* The value "$user.id" / "$user.<claim>" stands for: a new reference (null
 * when anonymous or the claim is absent). */
json_t *crest__rest_user_value(const crest_user *u, const char *ref)
{
    if (!u)
        return json_null();
    if (!strcmp(ref, "id"))
        return json_string(u->id);
    json_t *v = json_object_get(u->claims, ref);
    return v ? json_deep_copy(v) : json_null();
}

/* A copy of v with every "$user..." string replaced (new reference). */
json_t *crest__rest_with_user(json_t *v, const crest_user *u)
{
    if (json_is_string(v) && !strncmp(json_string_value(v), "$user.", 6))
        return crest__rest_user_value(u, json_string_value(v) + 6);
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) json_object_set_new(o, k, crest__rest_with_user(x, u));
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) json_array_append_new(a, crest__rest_with_user(x, u));
        return a;
    }
    return json_incref(v);
}

int crest__rest_scope(const crest_rest_ctx *ctx, const crest__module *mod, crest__qnode **out)
{
    crest_req *req = ctx->req;
    crest_res *res = ctx->res;
    *out = NULL;
    char msg[256];
    if (mod->owner) { /* only the user's rows (anonymous: rows without an owner) */
        json_t *w = json_object();
        json_object_set_new(w, mod->owner->f.name, crest__rest_user_value(req->user, "id"));
        crest__arena_defer(req->arena, (void (*)(void *))json_decref, w);
        crest__qnode *q;
        if (crest__where_parse(req->arena, mod->m, NULL, w, &q, msg, sizeof msg))
            return crest__res_fail(res, CREST__E_INTERNAL_ERROR, NULL);
        *out = q;
    }
    if (mod->scope_plan) {
        *out = crest__qnode_and(req->arena, *out, mod->scope_plan);
    } else if (mod->scope) { /* names $user values: planned per request */
        crest__qnode *q;
        json_t *sc = crest__rest_with_user(mod->scope, req->user);
        crest__arena_defer(req->arena, (void (*)(void *))json_decref, sc);
        if (crest__where_parse(req->arena, mod->m, NULL, sc, &q, msg, sizeof msg)) {
            fprintf(stderr, "{\"event\":\"scope_error\",\"module\":\"%s\",\"request_id\":\"%s\"}\n", mod->name,
                    req->id);
            return crest__res_fail(res, CREST__E_INTERNAL_ERROR, NULL);
        }
        *out = crest__qnode_and(req->arena, *out, q);
    }
    if (mod->def->scope_fn) {
        json_t *w = mod->def->scope_fn(ctx);
        if (res->is_error) {
            json_decref(w);
            return -1;
        }
        if (w) {
            crest__arena_defer(req->arena, (void (*)(void *))json_decref, w);
            crest__qnode *q;
            if (crest__where_parse(req->arena, mod->m, NULL, w, &q, msg, sizeof msg)) {
                fprintf(stderr,
                        "{\"event\":\"scope_error\",\"module\":\"%s\",\"request_id\":\"%s\",\"detail\":\"%s\"}\n",
                        mod->name, req->id, msg);
                return crest__res_fail(res, CREST__E_INTERNAL_ERROR, NULL);
            }
            *out = crest__qnode_and(req->arena, *out, q);
        }
    }
    return 0;
}

/* Pipeline, scope, after_parse_params: what every route runs first. */
int crest__rest_begin(crest_rest_ctx *ctx, crest__module *mod, crest__qnode **scope)
{
    for (const crest_handler *h = mod->def->pipeline; h && *h; h++)
        if ((*h)(ctx->req, ctx->res, mod->def->ud) || ctx->res->is_error)
            return -1;
    if (crest__rest_scope(ctx, mod, scope))
        return -1;
    if (mod->def->after_parse_params && mod->def->after_parse_params(ctx))
        return -1;
    return ctx->res->is_error ? -1 : 0;
}

int crest__rest_prologue(crest_req *req, crest_res *res, void *ud, crest_rest_ctx *ctx, crest__module **mod,
                         crest__qnode **scope, int64_t *id)
{
    route *r = ud;
    *mod = r->mod;
    crest__rest_ctx_init(ctx, req, res, r->mod);
    if (crest__rest_begin(ctx, r->mod, scope))
        return -1;
    if (id && !crest__rest_path_id(req, r->mod, id))
        return crest__rest_not_found(res, r->mod);
    /* fields= of the routes that answer rows (the stats route's `fields`
     * means something else), checked before anything is written. */
    bool rows = r->kind == RT_INDEX || r->kind == RT_SAMPLE || r->kind == RT_READ || r->kind == RT_CREATE ||
                r->kind == RT_UPDATE || r->kind == RT_PATCH || r->kind == RT_CHANGES;
    req->fields = NULL;
    if (rows && crest_req_has(req, "fields")) {
        crest__field_mask *mask;
        if (crest__rest_field_mask(req, res, r->mod, "fields", crest_req_str(req, "fields"), &mask))
            return -1;
        req->fields = mask;
    }
    return 0;
}

int crest__rest_field_mask(crest_req *req, crest_res *res, const crest__module *mod, const char *param,
                           const char *list, crest__field_mask **out)
{
    const crest__model *m = mod->m;
    crest__field_mask *mask = crest__arena_alloc(req->arena, sizeof *mask);
    unsigned char *on = crest__arena_calloc(req->arena, m->nfields + mod->ncomp + 1, 1);
    if (!mask || !on)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    *mask = (crest__field_mask){mod, on};
    if (!list || !*list)
        return crest__rest_bad_param(res, param,
                                     crest__arena_printf(req->arena, "%s: name at least one field (%s=a,b)", param,
                                                         param));
    for (const char *p = list;;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *name = crest__arena_strndup(req->arena, p, len);
        if (!name)
            return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
        /* A field this user reads through mod, or a computed field; any
         * other name is unknown, whether or not the model has it. */
        const crest__mfield *f = crest__model_field(m, name);
        long at = f && mod->served[f->idx] && crest__rest_can_read(req, f) ? (long)f->idx : -1;
        for (unsigned j = 0; at < 0 && j < mod->ncomp; j++)
            if (!strcmp(mod->comp[j]->name, name))
                at = (long)(m->nfields + j);
        if (at < 0 && !len)
            return crest__rest_bad_param(res, param, crest__arena_printf(req->arena, "%s: an empty field name", param));
        if (at < 0)
            return crest__rest_bad_param(res, param,
                                         crest__arena_printf(req->arena, "%s: unknown field '%s'", param, name));
        on[at] = 1;
        if (!e)
            break;
        p = e + 1;
    }
    *out = mask;
    return 0;
}

void crest__rest_ctx_init(crest_rest_ctx *ctx, crest_req *req, crest_res *res, crest__module *mod)
{
    ctx->req = req;
    ctx->res = res;
    ctx->ud = mod->def->ud;
    ctx->module = mod->name;
}

void crest__rest_total_order(crest__plan *plan, const crest__model *m)
{
    bool has_id = false;
    for (unsigned i = 0; i < plan->nsort; i++)
        has_id |= plan->sort[i].field->idx == 0 && !plan->sort[i].nrels;
    if (!has_id) {
        /* A total order, so pages neither repeat nor skip rows. The id goes
         * the way of the last key, so an index on that key (which ends with
         * the rowid) serves the whole ORDER BY. */
        plan->sort[plan->nsort] = (crest__sort){.field = &m->fields[0]};
        plan->sort[plan->nsort].desc = plan->nsort ? plan->sort[plan->nsort - 1].desc : false;
        plan->nsort++;
    }
}

void crest__rest_full_sort(const crest__module *mod, crest__plan *out)
{
    *out = mod->defsort;
    crest__rest_total_order(out, mod->m);
}

int crest__rest_page_params(crest_req *req, crest_res *res, const crest__module *mod, int64_t *page, int64_t *size)
{
    *page = crest_req_has(req, "page") ? crest_req_int(req, "page") : 1;
    *size = crest_req_has(req, "page_size") ? crest_req_int(req, "page_size") : mod->ps_def;
    if (*size > mod->ps_max)
        *size = mod->ps_max;
    if (*size < mod->ps_min)
        *size = mod->ps_min;
    CREST_UNUSED(res);
    return 0;
}

int crest__rest_window(crest_req *req, crest_res *res, const crest__module *mod, bool sample, int64_t *offset,
                       int64_t *size)
{
    /* The first of each pair the request gives, to name them when both are. */
    const char *lo = crest_req_has(req, "limit") ? "limit" : crest_req_has(req, "offset") ? "offset" : NULL;
    const char *pp = crest_req_has(req, "page") ? "page" : crest_req_has(req, "page_size") ? "page_size" : NULL;
    if (lo && pp) {
        crest__res_fail(res, CREST__E_INVALID_PARAMETER, "%s and %s cannot be used together: %s", pp, lo,
                        sample ? "give one of them" : "page with page and page_size, or with limit and offset");
        crest_res_error_field(res, pp, crest__arena_printf(req->arena, "cannot be used with %s", lo));
        crest_res_error_field(res, lo, crest__arena_printf(req->arena, "cannot be used with %s", pp));
        return -1;
    }
    int64_t page;
    crest__rest_page_params(req, res, mod, &page, size);
    if (sample)
        page = 1;
    if (!lo) {
        /* Past what SQLite counts: the same as past the last row. */
        double off = (double)(page - 1) * (double)*size;
        *offset = off > 9.0e18 ? INT64_MAX : (page - 1) * *size;
        return 0;
    }
    if (crest_req_has(req, "limit")) {
        *size = crest_req_int(req, "limit");
        if (*size > mod->ps_max)
            *size = mod->ps_max;
        if (*size < mod->ps_min)
            *size = mod->ps_min;
    }
    *offset = crest_req_has(req, "offset") ? crest_req_int(req, "offset") : 0;
    return 0;
}

/* id from the path; false when it is not an integer (the route answers 404). */
bool crest__rest_path_id(crest_req *req, const crest__module *mod, int64_t *id)
{
    const char *s = crest_req_str(req, mod->id_param);
    return s && crest__parse_int(s, strlen(s), id) == 0;
}

int crest__rest_not_found(crest_res *res, const crest__module *mod)
{
    return crest__res_fail(res, CREST__E_NOT_FOUND, "no %s with this id", mod->m->name);
}

crest__proj crest__rest_proj(const crest__module *mod)
{
    return (crest__proj){.m = mod->m, .comp = mod->comp, .ncomp = mod->ncomp};
}

void crest__rest_select_by_id(crest__sql *q, const crest__module *mod, int64_t id, const crest__qnode *scope)
{
    crest__read_plan p = {.proj = crest__rest_proj(mod), .id = id, .scope = scope};
    p.proj.version = true; /* the row's ETag (etag.c) */
    crest__compile_read(q, &p);
}

int crest__rest_row_read(crest_req *req, crest_res *res, const crest__module *mod, int64_t id,
                         const crest__qnode *scope, bool version, crest__rows **out)
{
    crest__sql q;
    crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
    crest__read_plan p = {.proj = crest__rest_proj(mod), .id = id, .scope = scope, .exists_only = !version,
                          .version_only = version};
    crest__compile_read(&q, &p);
    crest__rows *r = crest__rest_query(req, res, &q, CREST__QF_READ, NULL);
    crest__sql_dispose(&q);
    if (!r)
        return -1;
    if (!r->nrows)
        return crest__rest_not_found(res, mod);
    if (out)
        *out = r;
    return 0;
}

/* 0 when row `id` is in scope; otherwise the request is answered (404, or
 * the database's error) and -1 returned. */
int crest__rest_row_visible(crest_req *req, crest_res *res, const crest__module *mod, int64_t id,
                            const crest__qnode *scope)
{
    return crest__rest_row_read(req, res, mod, id, scope, false, NULL);
}

void crest__rest_meta(const crest_rest_ctx *ctx, const crest__module *mod, crest_json *w, int64_t total, bool has_total,
                      int estimated, bool has_more, const char *const *next_cursor)
{
    if (mod->def->no_meta)
        return;
    crest_json_key(w, mod->meta_env);
    crest_json_object_begin(w);
    if (mod->def->meta_fn) {
        mod->def->meta_fn(ctx, has_total ? total : -1, has_more, w);
    } else {
        crest_json_key(w, "object");
        crest_json_str(w, "list");
        if (has_total) {
            crest_json_key(w, "total_objects");
            crest_json_int(w, total);
        }
        if (estimated >= 0) {
            crest_json_key(w, "total_estimated");
            crest_json_bool(w, estimated);
        }
        crest_json_key(w, "has_more");
        crest_json_bool(w, has_more);
    }
    if (next_cursor) {
        crest_json_key(w, "next_cursor");
        if (*next_cursor)
            crest_json_str(w, *next_cursor);
        else
            crest_json_null(w);
    }
    crest_json_object_end(w);
}
