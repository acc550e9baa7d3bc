/* module.c — REST modules: a model's routes (index, read, create, update,
 * delete, sample, group, stats, eval) as endpoints of the app, each running
 * the query path: parameters → plan → SQL → rows → serializer → writer.
 * Module options follow Emmett-REST (envelopes, allow-lists, serializer,
 * parser, hooks, row scope, pipeline). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "../json/json_internal.h"
#include "rest_internal.h"

typedef enum { RT_INDEX, RT_READ, RT_CREATE, RT_UPDATE, RT_PATCH, RT_DELETE, RT_SAMPLE, RT_GROUP, RT_STATS, RT_EVAL, RT_COUNT } rt_kind;

typedef struct route {
    crest__module *mod;
    rt_kind kind;
    crest_handler inner;          /* write routes: the handler write_route runs */
    crest_endpoint spec;
    crest_param params[8];
    char *path;
} route;

struct crest__module {
    const crest_module_def *def;
    crest_app *app;
    const crest__mfield *owner;   /* row ownership, or NULL */
    bool scope_user;              /* the fixed scope names $user values */
    crest__qnode *scope_plan;     /* the fixed scope's plan when it does not (made once) */
    crest__arena scope_arena;     /* holds scope_plan */
    char *where_desc, *sort_desc, *stats_desc; /* OpenAPI parameter descriptions */
    char *tag_desc;
    crest__model *m;
    char *name;
    char *prefix;                 /* url_prefix, without the API prefix ("" for "/") */
    char *base;                   /* prefix + base_path: the collection */
    char *id_path;                /* "/{id}" */
    char *id_param;               /* "id" */
    unsigned methods;
    crest__allow sorts, query, group, stats;
    unsigned char *served;        /* per field: written in responses */
    unsigned char *writable;      /* per field: accepted in bodies */
    const crest_computed **comp;
    unsigned ncomp;
    int ps_def, ps_min, ps_max;
    crest__plan defsort;
    json_t *scope;                /* the fixed scope, parsed; owned */
    char *select;                 /* "SELECT <every column>, <computed> FROM <table>" */
    size_t select_len;
    const char *list_env, *single_env, *meta_env, *groups_env;
    route routes[RT_COUNT];
};

/* ---- helpers ---- */

static const char *const method_names[] = {"index", "read", "create", "update", "delete",
                                           "sample", "group", "stats", "eval"};

static int bad_param(crest_res *res, const char *param, const char *msg)
{
    crest_res_error(res, 400, "invalid_parameter", "%s", msg);
    crest_res_error_field(res, param, msg);
    return -1;
}

static void allow_free(crest__allow *a) { free(a->ok); }

/* Fills an allow-list from names (NULL: every served field and id). */
static int allow_init(crest__allow *a, const crest__module *mod, const char *const *names, const char *what,
                      bool numeric_only, crest_error *err)
{
    const crest__model *m = mod->m;
    a->ok = calloc(m->nfields, 1);
    if (!a->ok)
        return CREST_ENOMEM;
    if (!names) {
        for (unsigned i = 0; i < m->nfields; i++) {
            crest_field_type t = m->fields[i].f.type;
            bool readable = crest__field_readable(&m->fields[i]);
            bool num = t == CREST_F_INT || t == CREST_F_FLOAT;
            a->ok[i] = readable && t != CREST_F_JSON && (!numeric_only || (num && i > 0));
        }
        return 0;
    }
    for (const char *const *n = names; *n; n++) {
        const crest__mfield *f = crest__model_field(m, *n);
        if (!f)
            return crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: %s: '%s' is not a field of model %s",
                                    mod->name, what, *n, m->name);
        if (!crest__field_readable(f))
            return crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: %s: field '%s' is not readable",
                                    mod->name, what, *n);
        if (numeric_only && f->f.type != CREST_F_INT && f->f.type != CREST_F_FLOAT)
            return crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: %s: field '%s' is not a number",
                                    mod->name, what, *n);
        if (f->f.type == CREST_F_JSON)
            return crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: %s: json field '%s' cannot be used here",
                                    mod->name, what, *n);
        a->ok[f->idx] = 1;
    }
    return 0;
}

static bool in_list(const char *const *names, const char *s)
{
    for (; names && *names; names++)
        if (!strcmp(*names, s))
            return true;
    return false;
}

/* Prepares (cached) and binds q. On failure answers and returns NULL. */
static sqlite3_stmt *run(crest_req *req, crest_res *res, crest__sql *q)
{
    sqlite3 *db = crest_req_sqlite(req);
    if (!db) {
        crest_res_error(res, 503, "database_unavailable", "the database is not available");
        return NULL;
    }
    if (q->err) {
        crest_res_error(res, 503, "out_of_memory", "the server is short of memory");
        return NULL;
    }
    int rc;
    sqlite3_stmt *st = crest__stmt_get(req, db, q->text.ptr, q->text.len, &rc);
    if (!st) {
        crest__sql_failure(req, res, db, rc);
        return NULL;
    }
    for (unsigned i = 0; i < q->nbinds; i++)
        crest__bind_val(st, (int)i + 1, &q->binds[i]);
    return st;
}

static int step_failed(crest_req *req, crest_res *res, sqlite3_stmt *st, int rc)
{
    int r = crest__sql_failure(req, res, sqlite3_db_handle(st), rc);
    crest__stmt_done(st);
    return r;
}

/* ---- rows ---- */

struct crest_row {
    sqlite3_stmt *st;
    const crest__module *mod;
};

static int row_col(const crest_row *row, const char *field)
{
    const crest__mfield *f = crest__model_field(row->mod->m, field);
    return f ? (int)f->idx : -1;
}

bool crest_row_is_null(const crest_row *row, const char *field)
{
    int c = row_col(row, field);
    return c < 0 || sqlite3_column_type(row->st, c) == SQLITE_NULL;
}

int64_t crest_row_int(const crest_row *row, const char *field)
{
    int c = row_col(row, field);
    return c < 0 ? 0 : sqlite3_column_int64(row->st, c);
}

double crest_row_float(const crest_row *row, const char *field)
{
    int c = row_col(row, field);
    return c < 0 ? 0 : sqlite3_column_double(row->st, c);
}

const char *crest_row_str(const crest_row *row, const char *field)
{
    int c = row_col(row, field);
    return c < 0 ? NULL : (const char *)sqlite3_column_text(row->st, c);
}

static void write_sql_value(crest_json *w, sqlite3_stmt *st, int col)
{
    switch (sqlite3_column_type(st, col)) {
    case SQLITE_NULL:
        crest_json_null(w);
        break;
    case SQLITE_INTEGER:
        crest_json_int(w, sqlite3_column_int64(st, col));
        break;
    case SQLITE_FLOAT:
        crest_json_double(w, sqlite3_column_double(st, col));
        break;
    default:
        crest_json_strn(w, (const char *)sqlite3_column_text(st, col), (size_t)sqlite3_column_bytes(st, col));
    }
}

/* Field-level access: may this request's user see / write field f? */
static bool can_read(const crest_req *req, const crest__mfield *f)
{
    return !f->f.read_permission || !req->app->auth || crest__user_has_one(req->user, f->f.read_permission);
}

static bool can_write(const crest_req *req, const crest__mfield *f)
{
    return !f->f.write_permission || !req->app->auth || crest__user_has_one(req->user, f->f.write_permission);
}

/* The field a client names in a query parameter, or NULL when it has no
 * such field it may see (unknown, not readable, or hidden from this user). */
static const crest__mfield *client_field(const crest_req *req, const crest__module *mod, const char *name)
{
    const crest__mfield *f = name ? crest__model_field(mod->m, name) : NULL;
    return f && crest__field_readable(f) && can_read(req, f) ? f : NULL;
}

/* A query naming a field the user cannot see is refused as if the field
 * did not exist (nothing leaks through filters). */
static const crest__mfield *hidden_in(const crest_req *req, const crest__qnode *q)
{
    if (!q)
        return NULL;
    if (q->kind == CREST__Q_CMP)
        return can_read(req, q->field) ? NULL : q->field;
    for (unsigned i = 0; i < q->nkids; i++) {
        const crest__mfield *f = hidden_in(req, q->kids[i]);
        if (f)
            return f;
    }
    return NULL;
}

/* Writes the current row of st (a SELECT of mod->select) through the serializer. */
static int write_row(const crest_rest_ctx *ctx, const crest__module *mod, sqlite3_stmt *st, crest_json *w)
{
    const crest__model *m = mod->m;
    crest_json_object_begin(w);
    for (unsigned i = 0; i < m->nfields; i++) {
        if (!mod->served[i] || !can_read(ctx->req, &m->fields[i]))
            continue;
        crest_json_key(w, m->fields[i].f.name);
        crest__field_write(w, &m->fields[i], st, (int)i);
    }
    crest_row row = {st, mod};
    for (unsigned j = 0; j < mod->ncomp; j++) {
        const crest_computed *c = mod->comp[j];
        crest_json_key(w, c->name);
        if (c->sql) {
            write_sql_value(w, st, (int)(m->nfields + j));
        } else {
            size_t before = w->len;
            int rc = c->fn(ctx, &row, w);
            if (rc)
                return rc;
            if (w->len == before)
                crest_json_null(w); /* the callback wrote nothing */
        }
    }
    crest_json_object_end(w);
    return 0;
}

/* The row as a JSON object, for after_* hooks (new reference). */
static json_t *row_object(const crest_rest_ctx *ctx, const crest__module *mod, sqlite3_stmt *st)
{
    crest_json w;
    crest_json_init(&w, 0);
    json_t *o = NULL;
    if (write_row(ctx, mod, st, &w) == 0 && !crest_json_error(&w))
        o = json_loadb(w.buf, w.len, 0, NULL);
    crest_json_dispose(&w);
    return o;
}

/* ---- the scope and the plan ---- */

static int where_param(crest_req *req, crest_res *res, const crest__module *mod, crest__qnode **out)
{
    *out = NULL;
    const char *text = crest_req_str(req, "where");
    if (!text || !*text)
        return 0;
    size_t len = strlen(text);
    if (len > CREST_WHERE_MAX_BYTES)
        return bad_param(res, "where", "where: longer than 16384 bytes");
    char msg[256];
    json_t *w = crest__json_parse(text, len, CREST_WHERE_MAX_DEPTH * 2 + 2, msg, sizeof msg);
    if (!w) {
        char m2[300];
        snprintf(m2, sizeof m2, "where: not valid JSON (%s)", msg);
        return bad_param(res, "where", m2);
    }
    crest__arena_defer(req->arena, (void (*)(void *))json_decref, w);
    if (crest__where_parse(req->arena, mod->m, &mod->query, w, out, msg, sizeof msg))
        return bad_param(res, "where", msg);
    const crest__mfield *h = hidden_in(req, *out);
    if (h)
        return bad_param(res, "where", crest__arena_printf(req->arena, "where: unknown field '%s'", h->f.name));
    return 0;
}

/* The module's scope for this request (fixed and per-request), or NULL. */
/* The value "$user.id" / "$user.<claim>" stands for: a new reference (null
 * when anonymous or the claim is absent). */
static json_t *user_value(const crest_user *u, const char *ref)
{
    if (!u)
        return json_null();
    if (!strcmp(ref, "id"))
        return json_string(u->id);
    json_t *v = json_object_get(u->claims, ref);
    return v ? json_deep_copy(v) : json_null();
}

/* A copy of v with every "$user..." string replaced (new reference). */
static json_t *with_user(json_t *v, const crest_user *u)
{
    if (json_is_string(v) && !strncmp(json_string_value(v), "$user.", 6))
        return user_value(u, json_string_value(v) + 6);
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) json_object_set_new(o, k, with_user(x, u));
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) json_array_append_new(a, with_user(x, u));
        return a;
    }
    return json_incref(v);
}

static int scope_of(const crest_rest_ctx *ctx, const crest__module *mod, crest__qnode **out)
{
    crest_req *req = ctx->req;
    crest_res *res = ctx->res;
    *out = NULL;
    char msg[256];
    if (mod->owner) { /* only the user's rows (anonymous: rows without an owner) */
        json_t *w = json_object();
        json_object_set_new(w, mod->owner->f.name, user_value(req->user, "id"));
        crest__arena_defer(req->arena, (void (*)(void *))json_decref, w);
        crest__qnode *q;
        if (crest__where_parse(req->arena, mod->m, NULL, w, &q, msg, sizeof msg))
            return crest_res_error(res, 500, "internal_error", "the server could not answer");
        *out = q;
    }
    if (mod->scope_plan) {
        *out = crest__qnode_and(req->arena, *out, mod->scope_plan);
    } else if (mod->scope) { /* names $user values: planned per request */
        crest__qnode *q;
        json_t *sc = with_user(mod->scope, req->user);
        crest__arena_defer(req->arena, (void (*)(void *))json_decref, sc);
        if (crest__where_parse(req->arena, mod->m, NULL, sc, &q, msg, sizeof msg)) {
            fprintf(stderr, "{\"event\":\"scope_error\",\"module\":\"%s\",\"request_id\":\"%s\"}\n", mod->name,
                    req->id);
            return crest_res_error(res, 500, "internal_error", "the server could not answer");
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
                fprintf(stderr, "{\"event\":\"scope_error\",\"module\":\"%s\",\"request_id\":\"%s\",\"detail\":\"%s\"}\n",
                        mod->name, req->id, msg);
                return crest_res_error(res, 500, "internal_error", "the server could not answer");
            }
            *out = crest__qnode_and(req->arena, *out, q);
        }
    }
    return 0;
}

/* Pipeline, scope, after_parse_params: what every route runs first. */
static int begin(crest_rest_ctx *ctx, crest__module *mod, crest__qnode **scope)
{
    for (const crest_handler *h = mod->def->pipeline; h && *h; h++)
        if ((*h)(ctx->req, ctx->res, mod->def->ud) || ctx->res->is_error)
            return -1;
    if (scope_of(ctx, mod, scope))
        return -1;
    if (mod->def->after_parse_params && mod->def->after_parse_params(ctx))
        return -1;
    return ctx->res->is_error ? -1 : 0;
}

static void ctx_init(crest_rest_ctx *ctx, crest_req *req, crest_res *res, crest__module *mod)
{
    ctx->req = req;
    ctx->res = res;
    ctx->ud = mod->def->ud;
    ctx->module = mod->name;
}

static int page_params(crest_req *req, crest_res *res, const crest__module *mod, int64_t *page, int64_t *size)
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

/* id from the path; false when it is not an integer (the route answers 404). */
static bool path_id(crest_req *req, const crest__module *mod, int64_t *id)
{
    const char *s = crest_req_str(req, mod->id_param);
    return s && crest__parse_int(s, strlen(s), id) == 0;
}

static int not_found(crest_res *res, const crest__module *mod)
{
    return crest_res_error(res, 404, "not_found", "no %s with this id", mod->m->name);
}

/* Appends ' WHERE "id" = ? [AND <scope>]'. */
static void where_id(crest__sql *q, int64_t id, const crest__qnode *scope)
{
    crest__sql_add(q, " WHERE \"id\" = ");
    crest__val v = {.k = CREST__V_INT, .i = id};
    crest__sql_bind(q, v);
    if (scope) {
        crest__sql_add(q, " AND ");
        crest__sql_where(q, scope);
    }
}

static void select_by_id(crest__sql *q, const crest__module *mod, int64_t id, const crest__qnode *scope)
{
    crest__sql_add(q, mod->select);
    where_id(q, id, scope);
}

/* 0 when row `id` is in scope; otherwise the request is answered (404, or
 * the database's error) and -1 returned. */
static int row_visible(crest_req *req, crest_res *res, const crest__module *mod, int64_t id, const crest__qnode *scope)
{
    crest__sql q;
    crest__sql_init(&q, req->arena);
    crest__sql_add(&q, "SELECT 1 FROM ");
    crest__sql_add(&q, mod->m->qtable);
    where_id(&q, id, scope);
    sqlite3_stmt *st = run(req, res, &q);
    crest__sql_dispose(&q);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        crest__stmt_done(st);
        return not_found(res, mod);
    }
    if (rc != SQLITE_ROW)
        return step_failed(req, res, st, rc);
    crest__stmt_done(st);
    return 0;
}

static void meta(const crest_rest_ctx *ctx, const crest__module *mod, crest_json *w, int64_t total, bool has_total,
                 bool has_more)
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
        crest_json_key(w, "has_more");
        crest_json_bool(w, has_more);
    }
    crest_json_object_end(w);
}

static int count_rows(crest_req *req, crest_res *res, const crest__module *mod, const crest__qnode *where,
                      int64_t *total)
{
    crest__sql q;
    crest__sql_init(&q, req->arena);
    crest__sql_add(&q, "SELECT count(*) FROM ");
    crest__sql_add(&q, mod->m->qtable);
    crest__sql_add(&q, " WHERE ");
    crest__sql_where(&q, where);
    sqlite3_stmt *st = run(req, res, &q);
    crest__sql_dispose(&q);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        return step_failed(req, res, st, rc);
    *total = sqlite3_column_int64(st, 0);
    crest__stmt_done(st);
    return 0;
}

/* ---- index and sample ---- */

static int list_rows(crest_rest_ctx *ctx, crest__module *mod, bool sample)
{
    crest_req *req = ctx->req;
    crest_res *res = ctx->res;
    crest__qnode *scope, *where;
    if (begin(ctx, mod, &scope) || where_param(req, res, mod, &where))
        return -1;
    where = crest__qnode_and(req->arena, where, scope);
    int64_t page, size;
    page_params(req, res, mod, &page, &size);
    if (sample)
        page = 1;
    crest__plan plan = mod->defsort;
    const char *sort = sample ? NULL : crest_req_str(req, "sort_by");
    char msg[200];
    if (sort && *sort && crest__sort_parse(mod->m, &mod->sorts, sort, &plan, msg, sizeof msg))
        return bad_param(res, "sort_by", msg);
    for (unsigned i = 0; i < plan.nsort; i++)
        if (!can_read(req, plan.sort[i].field))
            return bad_param(res, "sort_by", crest__arena_printf(req->arena, "sort_by: unknown field '%s'",
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
    int64_t total = 0;
    if (exact && count_rows(req, res, mod, where, &total))
        return -1;
    /* Past the last row, or an offset beyond what SQLite counts: nothing. */
    bool beyond = (double)(page - 1) * (double)size > 9.0e18;
    crest__sql q;
    crest__sql_init(&q, req->arena);
    crest__sql_add(&q, mod->select);
    crest__sql_add(&q, " WHERE ");
    crest__sql_where(&q, where);
    if (sample)
        crest__sql_add(&q, " ORDER BY random()");
    else
        crest__sql_order(&q, &plan);
    crest__sql_add(&q, " LIMIT ");
    crest__val lim = {.k = CREST__V_INT, .i = exact ? size : size + 1};
    crest__sql_bind(&q, lim);
    crest__sql_add(&q, " OFFSET ");
    crest__val off = {.k = CREST__V_INT, .i = beyond ? 0 : (page - 1) * size};
    crest__sql_bind(&q, off);
    sqlite3_stmt *st = beyond ? NULL : run(req, res, &q);
    crest__sql_dispose(&q);
    if (!st && !beyond)
        return -1;
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, mod->list_env);
    crest_json_array_begin(w);
    int64_t n = 0;
    int rc = SQLITE_DONE;
    while (st && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (n == size) { /* the extra row of count=none */
            n++;
            break;
        }
        if (write_row(ctx, mod, st, w)) {
            crest__stmt_done(st);
            return -1;
        }
        n++;
    }
    if (st && rc != SQLITE_ROW && rc != SQLITE_DONE)
        return step_failed(req, res, st, rc);
    crest__stmt_done(st);
    crest_json_array_end(w);
    bool more = exact ? (sample ? total > n : (double)page * (double)size < (double)total) : n > size;
    meta(ctx, mod, w, total, exact, more);
    crest_json_object_end(w);
    return 0;
}

static int h_index(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    crest_rest_ctx ctx;
    ctx_init(&ctx, req, res, r->mod);
    return list_rows(&ctx, r->mod, false);
}

static int h_sample(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    crest_rest_ctx ctx;
    ctx_init(&ctx, req, res, r->mod);
    return list_rows(&ctx, r->mod, true);
}

/* ---- read ---- */

/* Serves row `id` (in scope); 404 when absent. */
static int serve_one(crest_rest_ctx *ctx, crest__module *mod, int64_t id, const crest__qnode *scope,
                     crest_rest_hook after)
{
    crest_req *req = ctx->req;
    crest_res *res = ctx->res;
    crest__sql q;
    crest__sql_init(&q, req->arena);
    select_by_id(&q, mod, id, scope);
    sqlite3_stmt *st = run(req, res, &q);
    crest__sql_dispose(&q);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        crest__stmt_done(st);
        return not_found(res, mod);
    }
    if (rc != SQLITE_ROW)
        return step_failed(req, res, st, rc);
    if (after) {
        json_t *o = row_object(ctx, mod, st);
        int hr = o ? after(ctx, o) : 0;
        json_decref(o);
        if (hr || res->is_error) {
            crest__stmt_done(st);
            return -1;
        }
    }
    crest_json *w = crest_res_json(res);
    if (mod->single_env) {
        crest_json_object_begin(w);
        crest_json_key(w, mod->single_env);
    }
    rc = write_row(ctx, mod, st, w);
    if (mod->single_env)
        crest_json_object_end(w);
    crest__stmt_done(st);
    return rc;
}

static int h_read(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    crest_rest_ctx ctx;
    ctx_init(&ctx, req, res, r->mod);
    crest__qnode *scope;
    int64_t id;
    if (begin(&ctx, r->mod, &scope))
        return -1;
    if (!path_id(req, r->mod, &id))
        return not_found(res, r->mod);
    return serve_one(&ctx, r->mod, id, scope, NULL);
}

/* ---- bodies ---- */

typedef struct attrs {
    crest__val *v;       /* per field */
    unsigned char *set;  /* per field: given (or defaulted) */
} attrs;

/* Checks the client's keys of one object: unknown or non-writable keys are
 * named. prefix: "" or "[3]." for bulk rows. Returns the number of errors. */
static unsigned check_keys(const crest_req *req, crest_res *res, const crest__module *mod, const json_t *obj,
                           const char *prefix, unsigned nbad)
{
    const char *k;
    json_t *v;
    char name[300];
    json_object_foreach((json_t *)obj, k, v) {
        const crest__mfield *f = crest__model_field(mod->m, k);
        const char *msg = NULL;
        if (!f || f->f.rest == CREST_REST_NONE)
            msg = "is not a known field";
        else if (!mod->writable[f->idx] || !can_write(req, f))
            msg = "is read-only";
        if (msg) {
            if (!nbad)
                crest_res_error(res, 422, "validation_failed", "x");
            snprintf(name, sizeof name, "%s%s", prefix, k);
            crest_res_error_field(res, name, msg);
            nbad++;
        }
    }
    return nbad;
}

/* Turns the (hook-processed) object into values; missing required fields
 * and invalid values are named. create: defaults fill the gaps. */
static unsigned to_attrs(crest_req *req, crest_res *res, const crest__module *mod, const json_t *obj, bool create,
                         const char *prefix, attrs *out, unsigned nbad)
{
    const crest__model *m = mod->m;
    out->v = crest__arena_calloc(req->arena, m->nfields, sizeof *out->v);
    out->set = crest__arena_calloc(req->arena, m->nfields, 1);
    if (!out->v || !out->set) {
        crest_res_error(res, 503, "out_of_memory", "the server is short of memory");
        return nbad + 1;
    }
    char name[300];
    for (unsigned i = 1; i < m->nfields; i++) {
        const crest__mfield *f = &m->fields[i];
        json_t *v = json_object_get(obj, f->f.name);
        const char *msg = NULL;
        if (!v && create) {
            if (f->def_now) {
                char now[40];
                crest__now_stored(now, sizeof now);
                if (f->f.type == CREST_F_DATE)
                    now[10] = 0;
                out->v[i].k = CREST__V_TEXT;
                out->v[i].s = crest__arena_strdup(req->arena, now);
                out->v[i].n = out->v[i].s ? strlen(out->v[i].s) : 0;
                out->set[i] = 1;
                continue;
            }
            if (f->defv) {
                msg = crest__field_value(req->arena, f, f->defv, &out->v[i]);
                out->set[i] = 1;
            } else if (f->f.required) {
                msg = "is required";
            } else {
                out->set[i] = 1; /* NULL */
                continue;
            }
        } else if (v) {
            msg = crest__field_value(req->arena, f, v, &out->v[i]);
            out->set[i] = 1;
        }
        if (msg) {
            if (!nbad)
                crest_res_error(res, 422, "validation_failed", "x");
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
 * processor and the before hook run. NULL when the request was answered. */
static json_t *parse_object(crest_rest_ctx *ctx, const crest__module *mod, json_t *in, crest_rest_hook before,
                            const char *prefix, unsigned *nbad)
{
    json_t *obj = json_deep_copy(in);
    if (!obj) {
        crest_res_error(ctx->res, 503, "out_of_memory", "the server is short of memory");
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
                crest_res_error(ctx->res, 422, "validation_failed", "x");
            char name[300];
            snprintf(name, sizeof name, "%s%s", prefix, pf->name);
            crest_res_error_field(ctx->res, name, msg);
            (*nbad)++;
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
    if (mod->owner) { /* the owner is the user: on create set, on update never moved */
        if (ctx->req->method == CREST_POST)
            json_object_set_new(obj, mod->owner->f.name, user_value(ctx->req->user, "id"));
        else
            json_object_del(obj, mod->owner->f.name);
    }
    return obj;
}

static void insert_sql(crest__sql *q, const crest__module *mod, const attrs *a)
{
    const crest__model *m = mod->m;
    crest__sql_add(q, "INSERT INTO ");
    crest__sql_add(q, m->qtable);
    crest__sql_add(q, " (");
    unsigned n = 0;
    for (unsigned i = 1; i < m->nfields; i++) {
        if (!a->set[i])
            continue;
        crest__sql_add(q, n++ ? ", " : "");
        crest__sql_add(q, m->fields[i].qname);
    }
    if (!n) {
        q->text.len -= 2; /* " (" */
        crest__sql_add(q, " DEFAULT VALUES");
        return;
    }
    crest__sql_add(q, ") VALUES (");
    n = 0;
    for (unsigned i = 1; i < m->nfields; i++) {
        if (!a->set[i])
            continue;
        if (n++)
            crest__sql_add(q, ", ");
        crest__sql_bind(q, a->v[i]);
    }
    crest__sql_add(q, ")");
}

static int exec_sql(crest_req *req, crest_res *res, crest__sql *q, int64_t *changes)
{
    sqlite3_stmt *st = run(req, res, q);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return step_failed(req, res, st, rc);
    if (changes)
        *changes = sqlite3_changes64(sqlite3_db_handle(st));
    crest__stmt_done(st);
    return 0;
}

static int exec_text(crest_req *req, crest_res *res, const char *sql)
{
    crest__sql q;
    crest__sql_init(&q, req->arena);
    crest__sql_add(&q, sql);
    int rc = exec_sql(req, res, &q, NULL);
    crest__sql_dispose(&q);
    return rc;
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

static int create_one(crest_rest_ctx *ctx, crest__module *mod, json_t *body)
{
    crest_req *req = ctx->req;
    crest_res *res = ctx->res;
    unsigned nbad = check_keys(req, res, mod, body, "", 0);
    json_t *obj = parse_object(ctx, mod, body, mod->def->before_create, "", &nbad);
    if (!obj)
        return -1;
    attrs a;
    nbad = to_attrs(req, res, mod, obj, true, "", &a, nbad);
    if (nbad) {
        json_decref(obj);
        fields_invalid(req, res, nbad);
        return -1;
    }
    crest__sql q;
    crest__sql_init(&q, req->arena);
    insert_sql(&q, mod, &a);
    int rc = exec_sql(req, res, &q, NULL);
    crest__sql_dispose(&q);
    json_decref(obj); /* the values were bound from it: keep it until the insert ran */
    if (rc)
        return -1;
    int64_t id = sqlite3_last_insert_rowid(crest_req_sqlite(req));
    crest_res_header(res, "Location", location(req, mod, id));
    return serve_one(ctx, mod, id, NULL, mod->def->after_create);
}

static int create_many(crest_rest_ctx *ctx, crest__module *mod, json_t *rows)
{
    crest_req *req = ctx->req;
    crest_res *res = ctx->res;
    size_t n = json_array_size(rows);
    if (n == 0)
        return crest_res_error(res, 422, "validation_failed", "the list of rows to create is empty");
    if (n > CREST_BULK_MAX)
        return crest_res_error(res, 422, "validation_failed", "at most %d rows can be created at once", CREST_BULK_MAX);
    unsigned nbad = 0;
    json_t **objs = crest__arena_calloc(req->arena, n, sizeof *objs);
    attrs *as = crest__arena_calloc(req->arena, n, sizeof *as);
    int64_t *ids = crest__arena_calloc(req->arena, n, sizeof *ids);
    if (!objs || !as || !ids)
        return crest_res_error(res, 503, "out_of_memory", "the server is short of memory");
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *in = json_array_get(rows, i);
        char prefix[32];
        snprintf(prefix, sizeof prefix, "[%zu].", i);
        if (!json_is_object(in)) {
            if (!nbad)
                crest_res_error(res, 422, "validation_failed", "x");
            prefix[strlen(prefix) - 1] = 0;
            crest_res_error_field(res, prefix, "must be an object");
            nbad++;
            continue;
        }
        nbad = check_keys(req, res, mod, in, prefix, nbad);
        objs[i] = parse_object(ctx, mod, in, mod->def->before_create, prefix, &nbad);
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
    if ((rc = exec_text(req, res, "BEGIN IMMEDIATE")))
        goto out;
    sqlite3 *db = crest_req_sqlite(req);
    for (size_t i = 0; i < n; i++) {
        crest__sql q;
        crest__sql_init(&q, req->arena);
        insert_sql(&q, mod, &as[i]);
        rc = exec_sql(req, res, &q, NULL);
        crest__sql_dispose(&q);
        if (rc) {
            if (res->nerr_fields == 0 && res->err_status == 409)
                crest_res_error_field(res, crest__arena_printf(req->arena, "[%zu]", i), "conflicts with a stored row");
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            goto out;
        }
        ids[i] = sqlite3_last_insert_rowid(db);
    }
    if ((rc = exec_text(req, res, "COMMIT"))) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        goto out;
    }
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, mod->list_env);
    crest_json_array_begin(w);
    for (size_t i = 0; i < n && !rc; i++) {
        crest__sql q;
        crest__sql_init(&q, req->arena);
        select_by_id(&q, mod, ids[i], NULL);
        sqlite3_stmt *st = run(req, res, &q);
        crest__sql_dispose(&q);
        if (!st) {
            rc = -1;
            break;
        }
        int s = sqlite3_step(st);
        if (s == SQLITE_ROW) {
            if (mod->def->after_create) {
                json_t *o = row_object(ctx, mod, st);
                if (o && mod->def->after_create(ctx, o))
                    rc = -1;
                json_decref(o);
            }
            if (!rc)
                rc = write_row(ctx, mod, st, w);
        }
        crest__stmt_done(st);
    }
    crest_json_array_end(w);
    crest_json_object_end(w);
out:
    for (size_t i = 0; i < n; i++)
        json_decref(objs[i]);
    return rc;
}

static int h_create(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    crest__module *mod = r->mod;
    crest_rest_ctx ctx;
    ctx_init(&ctx, req, res, mod);
    crest__qnode *scope;
    if (begin(&ctx, mod, &scope))
        return -1;
    json_t *body = req->json;
    if (json_is_array(body) || (mod->def->use_envelope_on_parse && json_is_object(body) &&
                                json_is_array(json_object_get(body, mod->list_env)))) {
        json_t *rows = json_is_array(body) ? body : json_object_get(body, mod->list_env);
        return create_many(&ctx, mod, rows);
    }
    json_t *obj = unwrap(mod, body, mod->single_env);
    if (!json_is_object(obj))
        return crest_res_error(res, 422, "validation_failed",
                               mod->def->use_envelope_on_parse && mod->single_env
                                   ? "the body must be {\"%s\": {...}}"
                                   : "the body must be a JSON object (or a list of objects)%s",
                               mod->def->use_envelope_on_parse && mod->single_env ? mod->single_env : "");
    return create_one(&ctx, mod, obj);
}

/* ---- update ---- */

static int h_update(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    crest__module *mod = r->mod;
    const crest__model *m = mod->m;
    crest_rest_ctx ctx;
    ctx_init(&ctx, req, res, mod);
    crest__qnode *scope;
    int64_t id;
    if (begin(&ctx, mod, &scope))
        return -1;
    if (!path_id(req, mod, &id))
        return not_found(res, mod);
    /* 404 comes before validation. */
    if (row_visible(req, res, mod, id, scope))
        return -1;
    json_t *obj = unwrap(mod, req->json, mod->single_env);
    if (!json_is_object(obj))
        return crest_res_error(res, 422, "validation_failed", "the body must be a JSON object");
    unsigned nbad = check_keys(req, res, mod, obj, "", 0);
    json_t *parsed = parse_object(&ctx, mod, obj, mod->def->before_update, "", &nbad);
    if (!parsed)
        return -1;
    attrs a;
    nbad = to_attrs(req, res, mod, parsed, false, "", &a, nbad);
    if (nbad) {
        json_decref(parsed);
        fields_invalid(req, res, nbad);
        return -1;
    }
    unsigned nset = 0;
    crest__sql q;
    crest__sql_init(&q, req->arena);
    crest__sql_add(&q, "UPDATE ");
    crest__sql_add(&q, m->qtable);
    crest__sql_add(&q, " SET ");
    for (unsigned i = 1; i < m->nfields; i++) {
        if (!a.set[i])
            continue;
        if (nset++)
            crest__sql_add(&q, ", ");
        crest__sql_add(&q, m->fields[i].qname);
        crest__sql_add(&q, " = ");
        crest__sql_bind(&q, a.v[i]);
    }
    where_id(&q, id, scope);
    int64_t changes = 1;
    int rc = nset ? exec_sql(req, res, &q, &changes) : 0;
    crest__sql_dispose(&q);
    json_decref(parsed);
    if (rc)
        return -1;
    if (!changes)
        return not_found(res, mod); /* deleted meanwhile */
    return serve_one(&ctx, mod, id, NULL, mod->def->after_update);
}

/* ---- delete ---- */

static int h_delete(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    crest__module *mod = r->mod;
    crest_rest_ctx ctx;
    ctx_init(&ctx, req, res, mod);
    crest__qnode *scope;
    int64_t id;
    if (begin(&ctx, mod, &scope))
        return -1;
    if (!path_id(req, mod, &id))
        return not_found(res, mod);
    /* Only rows the client can see reach the hook. */
    if (mod->def->before_delete &&
        (row_visible(req, res, mod, id, scope) || mod->def->before_delete(&ctx, id) || res->is_error))
        return -1;
    crest__sql q;
    crest__sql_init(&q, req->arena);
    crest__sql_add(&q, "DELETE FROM ");
    crest__sql_add(&q, mod->m->qtable);
    where_id(&q, id, scope);
    int64_t changes = 0;
    int rc = exec_sql(req, res, &q, &changes);
    crest__sql_dispose(&q);
    if (rc)
        return -1;
    if (!changes)
        return not_found(res, mod);
    if (mod->def->after_delete && mod->def->after_delete(&ctx, id))
        return -1;
    crest_res_status(res, 204);
    return 0;
}

/* ---- group ---- */

static int h_group(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    crest__module *mod = r->mod;
    crest_rest_ctx ctx;
    ctx_init(&ctx, req, res, mod);
    crest__qnode *scope, *where;
    if (begin(&ctx, mod, &scope))
        return -1;
    const char *fname = crest_req_str(req, "field");
    const crest__mfield *f = client_field(req, mod, fname);
    if (!f)
        return bad_param(res, "field", crest__arena_printf(req->arena, "group: unknown field '%s'", fname ? fname : ""));
    if (!mod->group.ok[f->idx])
        return bad_param(res, "field", crest__arena_printf(req->arena, "group: grouping by '%s' is not allowed", fname));
    if (where_param(req, res, mod, &where))
        return -1;
    where = crest__qnode_and(req->arena, where, scope);
    int64_t page, size;
    page_params(req, res, mod, &page, &size);
    const char *sort = crest_req_str(req, "sort_by");
    const char *order = "1 ASC";
    if (sort && *sort) {
        if (!strcmp(sort, "count"))
            order = "2 ASC, 1 ASC";
        else if (!strcmp(sort, "-count"))
            order = "2 DESC, 1 ASC";
        else if (!strcmp(sort, "value"))
            order = "1 ASC";
        else if (!strcmp(sort, "-value"))
            order = "1 DESC";
        else
            return bad_param(res, "sort_by",
                             crest__arena_printf(req->arena, "sort_by: groups sort by count, -count, value or -value, "
                                                             "not '%s'",
                                                 sort));
    }
    /* The number of groups. */
    crest__sql q;
    crest__sql_init(&q, req->arena);
    crest__sql_add(&q, "SELECT count(*) FROM (SELECT 1 FROM ");
    crest__sql_add(&q, mod->m->qtable);
    crest__sql_add(&q, " WHERE ");
    crest__sql_where(&q, where);
    crest__sql_add(&q, " GROUP BY ");
    crest__sql_add(&q, f->qname);
    crest__sql_add(&q, ")");
    sqlite3_stmt *st = run(req, res, &q);
    crest__sql_dispose(&q);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        return step_failed(req, res, st, rc);
    int64_t total = sqlite3_column_int64(st, 0);
    crest__stmt_done(st);
    bool beyond = (double)(page - 1) * (double)size > 9.0e18;
    crest__sql_init(&q, req->arena);
    crest__sql_add(&q, "SELECT ");
    crest__sql_add(&q, f->qname);
    crest__sql_add(&q, ", count(*) FROM ");
    crest__sql_add(&q, mod->m->qtable);
    crest__sql_add(&q, " WHERE ");
    crest__sql_where(&q, where);
    crest__sql_add(&q, " GROUP BY ");
    crest__sql_add(&q, f->qname);
    crest__sql_add(&q, " ORDER BY ");
    crest__sql_add(&q, order);
    crest__sql_add(&q, " LIMIT ");
    crest__val lim = {.k = CREST__V_INT, .i = size}, off = {.k = CREST__V_INT, .i = beyond ? 0 : (page - 1) * size};
    crest__sql_bind(&q, lim);
    crest__sql_add(&q, " OFFSET ");
    crest__sql_bind(&q, off);
    st = beyond ? NULL : run(req, res, &q);
    crest__sql_dispose(&q);
    if (!st && !beyond)
        return -1;
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, mod->groups_env);
    crest_json_array_begin(w);
    rc = SQLITE_DONE;
    while (st && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        crest_json_object_begin(w);
        crest_json_key(w, "value");
        crest__field_write(w, f, st, 0);
        crest_json_key(w, "count");
        crest_json_int(w, sqlite3_column_int64(st, 1));
        crest_json_object_end(w);
    }
    if (st && rc != SQLITE_DONE)
        return step_failed(req, res, st, rc);
    crest__stmt_done(st);
    crest_json_array_end(w);
    meta(&ctx, mod, w, total, true, (double)page * (double)size < (double)total);
    crest_json_object_end(w);
    return 0;
}

/* ---- stats and eval ---- */

typedef struct agg {
    const char *fn;               /* "min", "max", "avg", "sum", "count" */
    const crest__mfield *f;       /* NULL: count(*) */
    const char *key;
} agg;

/* SELECT fn(field)... FROM t WHERE where; writes each as key: value. */
static int run_aggs(crest_req *req, crest_res *res, crest__module *mod, const crest__qnode *where, const agg *ag,
                    unsigned n, bool nested_stats)
{
    crest__sql q;
    crest__sql_init(&q, req->arena);
    crest__sql_add(&q, "SELECT ");
    for (unsigned i = 0; i < n; i++) {
        if (i)
            crest__sql_add(&q, ", ");
        crest__sql_add(&q, ag[i].fn);
        crest__sql_add(&q, "(");
        crest__sql_add(&q, ag[i].f ? ag[i].f->qname : "*");
        crest__sql_add(&q, ")");
    }
    if (!n)
        crest__sql_add(&q, "1");
    crest__sql_add(&q, " FROM ");
    crest__sql_add(&q, mod->m->qtable);
    crest__sql_add(&q, " WHERE ");
    crest__sql_where(&q, where);
    sqlite3_stmt *st = run(req, res, &q);
    crest__sql_dispose(&q);
    if (!st)
        return -1;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        return step_failed(req, res, st, rc);
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    for (unsigned i = 0; i < n; i++) {
        if (nested_stats && i % 3 == 0) {
            crest_json_key(w, ag[i].f->f.name);
            crest_json_object_begin(w);
        }
        crest_json_key(w, ag[i].key);
        if (!strcmp(ag[i].fn, "avg")) {
            if (sqlite3_column_type(st, (int)i) == SQLITE_NULL)
                crest_json_null(w);
            else
                crest_json_double(w, sqlite3_column_double(st, (int)i));
        } else if (!strcmp(ag[i].fn, "count")) {
            crest_json_int(w, sqlite3_column_int64(st, (int)i));
        } else if (!strcmp(ag[i].fn, "sum")) {
            write_sql_value(w, st, (int)i);
        } else {
            crest__field_write(w, ag[i].f, st, (int)i);
        }
        if (nested_stats && i % 3 == 2)
            crest_json_object_end(w);
    }
    crest_json_object_end(w);
    crest__stmt_done(st);
    return 0;
}

static int h_stats(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    crest__module *mod = r->mod;
    crest_rest_ctx ctx;
    ctx_init(&ctx, req, res, mod);
    crest__qnode *scope, *where;
    if (begin(&ctx, mod, &scope))
        return -1;
    const char *fields = crest_req_str(req, "fields");
    agg ag[3 * 32];
    unsigned n = 0;
    for (const char *p = fields; p && *p;) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        char *name = crest__arena_strndup(req->arena, p, len);
        if (!name)
            return crest_res_error(res, 503, "out_of_memory", "the server is short of memory");
        const crest__mfield *f = client_field(req, mod, name);
        if (!f)
            return bad_param(res, "fields", crest__arena_printf(req->arena, "fields: unknown field '%s'", name));
        if (!mod->stats.ok[f->idx])
            return bad_param(res, "fields", crest__arena_printf(req->arena, "fields: stats of '%s' are not allowed", name));
        for (unsigned i = 0; i < n; i += 3)
            if (ag[i].f == f)
                return bad_param(res, "fields", crest__arena_printf(req->arena, "fields: '%s' is given twice", name));
        if (n >= CREST_ARRAY_LEN(ag))
            return bad_param(res, "fields", "fields: more than 32 fields");
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
        return bad_param(res, "fields", "fields: name at least one field (fields=a,b)");
    if (where_param(req, res, mod, &where))
        return -1;
    where = crest__qnode_and(req->arena, where, scope);
    return run_aggs(req, res, mod, where, ag, n, true);
}

static int h_eval(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    crest__module *mod = r->mod;
    crest_rest_ctx ctx;
    ctx_init(&ctx, req, res, mod);
    crest__qnode *scope, *where;
    if (begin(&ctx, mod, &scope))
        return -1;
    const char *text = crest_req_str(req, "q");
    json_t *qj = NULL;
    if (text && *text) {
        char msg[200];
        qj = crest__json_parse(text, strlen(text), 8, msg, sizeof msg);
        if (!qj)
            return bad_param(res, "q", crest__arena_printf(req->arena, "q: not valid JSON (%s)", msg));
        crest__arena_defer(req->arena, (void (*)(void *))json_decref, qj);
        if (!json_is_object(qj))
            return bad_param(res, "q", "q: expected a JSON object {\"functions\": [...]}");
    }
    json_t *fns = qj ? json_object_get(qj, "functions") : NULL;
    if (qj) {
        const char *k;
        json_t *v;
        json_object_foreach(qj, k, v) if (strcmp(k, "functions"))
            return bad_param(res, "q", crest__arena_printf(req->arena, "q: unknown key '%s'", k));
    }
    if (fns && !json_is_array(fns))
        return bad_param(res, "q", "q: functions must be a list");
    size_t n = fns ? json_array_size(fns) : 0;
    if (n > 32)
        return bad_param(res, "q", "q: more than 32 functions");
    agg ag[32];
    for (size_t i = 0; i < n; i++) {
        json_t *fn = json_array_get(fns, i);
        const char *name = json_string_value(json_object_get(fn, "name"));
        json_t *fv = json_object_get(fn, "field");
        if (!json_is_object(fn) || !name)
            return bad_param(res, "q", crest__arena_printf(req->arena, "q: functions[%zu] needs a name", i));
        const char *k;
        json_t *v;
        json_object_foreach(fn, k, v) if (strcmp(k, "name") && strcmp(k, "field"))
            return bad_param(res, "q", crest__arena_printf(req->arena, "q: functions[%zu]: unknown key '%s'", i, k));
        if (strcmp(name, "count") && strcmp(name, "sum") && strcmp(name, "avg") && strcmp(name, "min") &&
            strcmp(name, "max"))
            return bad_param(res, "q", crest__arena_printf(req->arena,
                                                           "q: unknown function '%s' (count, sum, avg, min, max)", name));
        const crest__mfield *f = NULL;
        if (fv) {
            const char *fname = json_string_value(fv);
            f = client_field(req, mod, fname);
            if (!f)
                return bad_param(res, "q", crest__arena_printf(req->arena, "q: unknown field '%s'",
                                                               fname ? fname : "(not a string)"));
            bool ok = !strcmp(name, "count") ? mod->query.ok[f->idx] || mod->stats.ok[f->idx] : mod->stats.ok[f->idx];
            if (!ok)
                return bad_param(res, "q", crest__arena_printf(req->arena, "q: %s of '%s' is not allowed", name, fname));
        } else if (strcmp(name, "count")) {
            return bad_param(res, "q", crest__arena_printf(req->arena, "q: %s needs a field", name));
        }
        ag[i].fn = crest__arena_strdup(req->arena, name);
        ag[i].f = f;
        ag[i].key = f ? crest__arena_printf(req->arena, "%s__%s", name, f->f.name) : "count";
        for (size_t j = 0; j < i; j++)
            if (!strcmp(ag[j].key, ag[i].key))
                return bad_param(res, "q", crest__arena_printf(req->arena, "q: %s is asked twice", ag[i].key));
    }
    if (where_param(req, res, mod, &where))
        return -1;
    where = crest__qnode_and(req->arena, where, scope);
    if (!n) {
        crest_json *w = crest_res_json(res);
        crest_json_object_begin(w);
        crest_json_object_end(w);
        return 0;
    }
    return run_aggs(req, res, mod, where, ag, (unsigned)n, false);
}

/* ---- building a module ---- */

void crest__module_free(crest__module *mod)
{
    if (!mod)
        return;
    allow_free(&mod->sorts);
    allow_free(&mod->query);
    allow_free(&mod->group);
    allow_free(&mod->stats);
    free(mod->served);
    free(mod->writable);
    free(mod->comp);
    json_decref(mod->scope);
    crest__arena_dispose(&mod->scope_arena);
    free(mod->select);
    free(mod->where_desc);
    free(mod->sort_desc);
    free(mod->stats_desc);
    free(mod->tag_desc);
    free(mod->name);
    free(mod->base);
    free(mod->prefix);
    free(mod->id_path);
    free(mod->id_param);
    for (int i = 0; i < RT_COUNT; i++)
        free(mod->routes[i].path);
    free(mod);
}

static const char *const count_values[] = {"exact", "none", NULL};

static void add_param(route *r, unsigned *n, crest_param p)
{
    r->params[(*n)++] = p;
}

/* Write routes run on the thread pool, one at a time, on the app's writer
 * connection; the answer waits until the commit is durable (group commit,
 * src/app/writer.c). */
static int write_route(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    crest_app *app = req->app;
    sqlite3 *db = crest__writer_begin(app);
    if (!db)
        return crest_res_error(res, 503, "database_unavailable", "the database is not available");
    req->db_override = db;
    int rc = r->inner(req, res, ud);
    crest__req_unhook_db(req); /* the next writer must not inherit this request's deadline */
    if (!sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL); /* never leave a transaction open */
    crest__writer_end(app);
    req->db_override = NULL;
    if (!rc && !res->is_error && crest__writer_durable(app)) {
        fprintf(stderr, "{\"event\":\"sync_error\",\"request_id\":\"%s\"}\n", req->id);
        return crest_res_error(res, 500, "internal_error", "the write could not be made durable");
    }
    return rc;
}

/* The module's custom error body (error_fn) in place of the problem document. */
static void on_error(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    crest__module *mod = r->mod;
    crest_rest_ctx ctx;
    ctx_init(&ctx, req, res, mod);
    int status = res->err_status;
    crest_json *w = res->json;
    crest_json_reset(w);
    if (mod->def->error_fn(&ctx, status, res->err_code, res->err_detail, w) || crest_json_error(w) || w->depth != 0 ||
        w->len == 0) {
        crest_json_reset(w);
        return; /* the default problem body stays */
    }
    res->is_error = false;
    res->json_used = true;
    res->status = status;
}

static int build_routes(crest_app *app, crest__module *mod, crest_error *err)
{
    static const struct {
        rt_kind kind;
        unsigned bit;
        crest_method method;
        const char *suffix; /* NULL: the id path */
        crest_handler h;
        const char *summary;
    } table[] = {
        {RT_INDEX, CREST_R_INDEX, CREST_GET, "", h_index, "List"},
        {RT_CREATE, CREST_R_CREATE, CREST_POST, "", h_create, "Create"},
        {RT_SAMPLE, CREST_R_SAMPLE, CREST_GET, "/sample", h_sample, "Random sample"},
        {RT_GROUP, CREST_R_GROUP, CREST_GET, "/group/{field}", h_group, "Count by value"},
        {RT_STATS, CREST_R_STATS, CREST_GET, "/stats", h_stats, "Min, max and average"},
        {RT_EVAL, CREST_R_EVAL, CREST_GET, "/eval", h_eval, "Evaluate functions"},
        {RT_READ, CREST_R_READ, CREST_GET, NULL, h_read, "Read one"},
        {RT_UPDATE, CREST_R_UPDATE, CREST_PUT, NULL, h_update, "Update"},
        {RT_PATCH, CREST_R_UPDATE, CREST_PATCH, NULL, h_update, "Update"},
        {RT_DELETE, CREST_R_DELETE, CREST_DELETE, NULL, h_delete, "Delete"},
    };
    for (size_t t = 0; t < CREST_ARRAY_LEN(table); t++) {
        if (!(mod->methods & table[t].bit))
            continue;
        route *r = &mod->routes[table[t].kind];
        r->mod = mod;
        r->kind = table[t].kind;
        /* Emmett-REST: the collection and its routes (sample, group,
         * stats, and eval) at url_prefix + base_path ("{base_path}/group/
         * <field>"); the id path is relative to url_prefix. */
        const char *head = table[t].suffix ? mod->base : mod->prefix;
        const char *tail = table[t].suffix ? table[t].suffix : mod->id_path;
        size_t need = strlen(head) + strlen(tail) + 2;
        r->path = malloc(need);
        if (!r->path)
            return CREST_ENOMEM;
        snprintf(r->path, need, "%s%s", head, tail);
        if (!r->path[0])
            snprintf(r->path, need, "/");
        unsigned np = 0;
        crest_param page = {"page", CREST_IN_QUERY, CREST_T_INT, .has_min = true, .min = 1,
                            .description = "page number, from 1"};
        crest_param page_size = {"page_size", CREST_IN_QUERY, CREST_T_INT, .has_min = true, .min = 1,
                                 .description = "rows per page (above the maximum: the maximum)"};
        crest_param where = {"where", CREST_IN_QUERY, CREST_T_STRING, .description = "a JSON query"};
        switch (r->kind) {
        case RT_INDEX:
            add_param(r, &np, page);
            add_param(r, &np, page_size);
            add_param(r, &np, (crest_param){"sort_by", CREST_IN_QUERY, CREST_T_STRING,
                                            .description = "fields, comma-separated; -name sorts descending"});
            add_param(r, &np, where);
            add_param(r, &np, (crest_param){"count", CREST_IN_QUERY, CREST_T_ENUM, .values = count_values,
                                            .description = "exact: total_objects in meta; none: no count"});
            break;
        case RT_SAMPLE:
            add_param(r, &np, page_size);
            add_param(r, &np, where);
            break;
        case RT_GROUP:
            add_param(r, &np, (crest_param){"field", CREST_IN_PATH, CREST_T_STRING, .required = true,
                                            .description = "the field to count rows by"});
            add_param(r, &np, page);
            add_param(r, &np, page_size);
            add_param(r, &np, (crest_param){"sort_by", CREST_IN_QUERY, CREST_T_STRING,
                                            .description = "count, -count, value or -value"});
            add_param(r, &np, where);
            break;
        case RT_STATS:
            add_param(r, &np, (crest_param){"fields", CREST_IN_QUERY, CREST_T_STRING, .required = true,
                                            .description = "fields, comma-separated"});
            add_param(r, &np, where);
            break;
        case RT_EVAL:
            add_param(r, &np, (crest_param){"q", CREST_IN_QUERY, CREST_T_STRING,
                                            .description = "{\"functions\": [{\"name\": \"sum\", \"field\": \"f\"}]}"});
            add_param(r, &np, where);
            break;
        case RT_CREATE:
            break;
        default: /* id routes */
            add_param(r, &np, (crest_param){mod->id_param, CREST_IN_PATH, CREST_T_STRING, .required = true,
                                            .description = "the row's id (an integer)"});
            break;
        }
        r->spec.method = table[t].method;
        r->spec.path = r->path;
        r->spec.params = np ? r->params : NULL;
        r->spec.json_body = r->kind == RT_CREATE || r->kind == RT_UPDATE || r->kind == RT_PATCH;
        r->spec.body_required = r->spec.json_body;
        r->spec.summary = table[t].summary;
        r->spec.tag = mod->name;
        r->spec.status = r->kind == RT_CREATE ? 201 : r->kind == RT_DELETE ? 204 : 200;
        r->spec.handler = table[t].h;
        for (unsigned b = 0; b < 9; b++)
            if (table[t].bit == 1u << b)
                r->spec.permission = mod->def->permissions[b];
        r->spec.rate_limit = mod->def->rate_limit; /* the group: the tag, i.e. the module */
        /* Writes commit with an fsync (durability: full): they run on the
         * thread pool so the event loop keeps serving reads meanwhile. */
        r->spec.blocking = r->kind == RT_CREATE || r->kind == RT_UPDATE || r->kind == RT_PATCH || r->kind == RT_DELETE;
        if (r->spec.blocking) {
            r->inner = table[t].h;
            r->spec.handler = write_route;
        }
        crest_error e2 = {0};
        int rc = crest_app_add_endpoint(app, &r->spec, r, &e2);
        if (rc)
            return crest__error_set(err, rc, NULL, 0, "module %s: %s %s: %s", mod->name,
                                    crest_method_name(table[t].method), r->path, e2.msg);
        if (mod->def->error_fn)
            app->eps[app->neps - 1]->on_error = on_error;
    }
    return 0;
}

static char *names_of(const crest__module *mod, const crest__allow *a, const char *head, const char *tail)
{
    crest__buf b;
    crest__buf_init(&b, 0);
    crest__buf_appends(&b, head);
    unsigned n = 0;
    for (unsigned i = 0; i < mod->m->nfields; i++)
        if (a->ok[i])
            crest__buf_appendf(&b, "%s%s", n++ ? ", " : "", mod->m->fields[i].f.name);
    if (!n)
        crest__buf_appends(&b, "(none)");
    crest__buf_appends(&b, tail);
    if (crest__buf_append(&b, "", 1)) {
        crest__buf_dispose(&b);
        return NULL;
    }
    return b.ptr;
}

/* The OpenAPI descriptions of where, sort_by and fields, from the allow-lists. */
static int describe(crest__module *mod)
{
    mod->where_desc = names_of(mod, &mod->query,
                               "A JSON object: {\"field\": value} or {\"field\": {\"$op\": value}}, combined with $and, "
                               "$or and $not. Operators: $eq $ne $in $nin $lt $gt $le $ge $exists $like $ilike $contains "
                               "$icontains. null means IS NULL. Fields: ",
                               ".");
    mod->sort_desc = names_of(mod, &mod->sorts, "Fields separated by commas, '-' for descending. Fields: ", ".");
    mod->stats_desc = names_of(mod, &mod->stats, "Fields separated by commas. Fields: ", ".");
    size_t n = strlen(mod->name) + strlen(mod->m->name) + 64;
    if ((mod->tag_desc = malloc(n)))
        snprintf(mod->tag_desc, n, "The %s REST module, over the %s model", mod->name, mod->m->name);
    return mod->where_desc && mod->sort_desc && mod->stats_desc && mod->tag_desc ? 0 : CREST_ENOMEM;
}

static int parse_sort_default(crest__module *mod, crest_error *err)
{
    const char *s = mod->def->default_sort ? mod->def->default_sort : "id";
    char msg[200];
    if (crest__sort_parse(mod->m, NULL, s, &mod->defsort, msg, sizeof msg))
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: default_sort: %s", mod->name, msg + 9);
    return 0;
}

static bool path_ok(const char *p)
{
    if (!p)
        return true;
    if (*p && *p != '/')
        return false;
    for (const char *c = p; *c; c++)
        if ((unsigned char)*c <= ' ' || *c == '?' || *c == '#')
            return false;
    return true;
}

int crest_app_add_module(crest_app *app, const crest_module_def *def, crest_error *err)
{
    if (!def || !def->name || !def->model)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "a module needs a name and a model");
    crest__model *m = crest__app_model(app, def->model);
    if (!m)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: model '%s' is not defined", def->name,
                                def->model);
    for (unsigned i = 0; i < app->nmodules; i++)
        if (!strcmp(app->modules[i]->name, def->name))
            return crest__error_set(err, CREST_EEXIST, NULL, 0, "module %s is defined twice", def->name);
    if (!path_ok(def->url_prefix) || !path_ok(def->base_path))
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: url_prefix and base_path start with '/'",
                                def->name);
    crest__module *mod = calloc(1, sizeof *mod);
    if (!mod)
        return CREST_ENOMEM;
    int rc = CREST_ENOMEM;
    mod->def = def;
    mod->app = app;
    crest__arena_init(&mod->scope_arena, 1024, 0);
    mod->m = m;
    mod->name = strdup(def->name);
    const char *base = def->base_path ? def->base_path : "";
    size_t plen = def->url_prefix ? strlen(def->url_prefix) : strlen(def->name) + 1;
    mod->prefix = malloc(plen + 1);
    mod->base = malloc(plen + strlen(base) + 1);
    if (!mod->name || !mod->base || !mod->prefix)
        goto fail;
    if (def->url_prefix)
        snprintf(mod->prefix, plen + 1, "%s", def->url_prefix);
    else
        snprintf(mod->prefix, plen + 1, "/%s", def->name);
    while (strlen(mod->prefix) > 0 && mod->prefix[strlen(mod->prefix) - 1] == '/')
        mod->prefix[strlen(mod->prefix) - 1] = 0;
    snprintf(mod->base, plen + strlen(base) + 1, "%s%s", mod->prefix, base);
    while (strlen(mod->base) > 0 && mod->base[strlen(mod->base) - 1] == '/')
        mod->base[strlen(mod->base) - 1] = 0;
    const char *idp = def->id_path ? def->id_path : "/{id}";
    const char *open = strchr(idp, '{'), *close = open ? strchr(open, '}') : NULL;
    if (!path_ok(idp) || !*idp || !open || !close || close == open + 1 || strchr(close + 1, '{')) {
        rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: id_path must hold one {name}, as in /{id}",
                              def->name);
        goto fail;
    }
    mod->id_path = strdup(idp);
    mod->id_param = strndup(open + 1, (size_t)(close - open - 1));
    if (!mod->id_path || !mod->id_param)
        goto fail;
    unsigned en = def->enabled_methods ? def->enabled_methods : CREST_R_DEFAULT;
    if ((en | def->disabled_methods) & ~(unsigned)CREST_R_ALL) {
        rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: unknown method bits", def->name);
        goto fail;
    }
    mod->methods = en & ~def->disabled_methods;
    mod->ps_def = def->page_size_default ? def->page_size_default : 20;
    mod->ps_min = def->page_size_min ? def->page_size_min : 1;
    mod->ps_max = def->page_size_max ? def->page_size_max : (mod->ps_def > 100 ? mod->ps_def : 100);
    if (mod->ps_min < 1 || mod->ps_min > mod->ps_max || mod->ps_def < mod->ps_min || mod->ps_def > mod->ps_max ||
        mod->ps_max > 10000) {
        rc = crest__error_set(err, CREST_EINVAL, NULL, 0,
                              "module %s: page_size: need 1 <= min <= default <= max <= 10000 (found %d, %d, %d)",
                              def->name, mod->ps_min, mod->ps_def, mod->ps_max);
        goto fail;
    }
    mod->list_env = def->list_envelope ? def->list_envelope : "data";
    mod->single_env = def->single_envelope && *def->single_envelope ? def->single_envelope : NULL;
    mod->meta_env = def->meta_envelope ? def->meta_envelope : "meta";
    mod->groups_env = def->groups_envelope ? def->groups_envelope : "data";
    if (def->use_envelope_on_parse && !mod->single_env) {
        rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: use_envelope_on_parse needs a single_envelope",
                              def->name);
        goto fail;
    }
    if ((rc = allow_init(&mod->sorts, mod, def->allowed_sorts, "allowed_sorts", false, err)) ||
        (rc = allow_init(&mod->query, mod, def->query_allowed_fields, "query_allowed_fields", false, err)) ||
        (rc = allow_init(&mod->group, mod, def->grouping_allowed_fields, "grouping_allowed_fields", false, err)) ||
        (rc = allow_init(&mod->stats, mod, def->stats_allowed_fields, "stats_allowed_fields", true, err)) ||
        (rc = parse_sort_default(mod, err)))
        goto fail;
    if ((rc = describe(mod)))
        goto fail;
    /* Serializer: which fields are written. */
    rc = CREST_ENOMEM;
    mod->served = calloc(m->nfields, 1);
    mod->writable = calloc(m->nfields, 1);
    if (!mod->served || !mod->writable)
        goto fail;
    const char *const *lists[] = {def->attributes, def->include, def->exclude, def->parse_attributes};
    const char *lnames[] = {"attributes", "include", "exclude", "parse_attributes"};
    for (int l = 0; l < 4; l++)
        for (const char *const *n = lists[l]; n && *n; n++)
            if (!crest__model_field(m, *n)) {
                rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: %s: '%s' is not a field of model %s",
                                      def->name, lnames[l], *n, m->name);
                goto fail;
            }
    for (unsigned i = 0; i < m->nfields; i++) {
        const crest_field *f = &m->fields[i].f;
        bool readable = crest__field_readable(&m->fields[i]);
        mod->served[i] = def->attributes ? in_list(def->attributes, f->name) : readable;
        if (in_list(def->include, f->name))
            mod->served[i] = 1;
        if (in_list(def->exclude, f->name))
            mod->served[i] = 0;
        bool can_write = i > 0 && (f->rest == CREST_REST_RW || f->rest == CREST_REST_WRITE);
        mod->writable[i] = can_write && (!def->parse_attributes || in_list(def->parse_attributes, f->name));
    }
    unsigned nc = 0;
    for (const crest_computed *c = def->computed; c && c->name; c++)
        nc++;
    mod->comp = calloc(nc ? nc : 1, sizeof *mod->comp);
    if (!mod->comp)
        goto fail;
    crest__buf sel;
    crest__buf_init(&sel, 0);
    crest__buf_appends(&sel, "SELECT ");
    for (unsigned i = 0; i < m->nfields; i++)
        crest__buf_appendf(&sel, "%s%s", i ? ", " : "", m->fields[i].qname);
    for (const crest_computed *c = def->computed; c && c->name; c++) {
        if (!c->sql == !c->fn || crest__model_field(m, c->name)) {
            crest__buf_dispose(&sel);
            rc = crest__error_set(err, CREST_EINVAL, NULL, 0,
                                  "module %s: computed field %s: give sql or fn (not both), and a name that is not a "
                                  "field",
                                  def->name, c->name);
            goto fail;
        }
        for (unsigned j = 0; j < mod->ncomp; j++)
            if (!strcmp(mod->comp[j]->name, c->name)) {
                crest__buf_dispose(&sel);
                rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: computed field %s is defined twice",
                                      def->name, c->name);
                goto fail;
            }
        mod->comp[mod->ncomp++] = c;
        if (c->sql)
            crest__buf_appendf(&sel, ", (%s)", c->sql);
        else
            crest__buf_appends(&sel, ", NULL");
    }
    crest__buf_appendf(&sel, " FROM %s", m->qtable);
    if (crest__buf_append(&sel, "", 1)) {
        crest__buf_dispose(&sel);
        goto fail;
    }
    mod->select = sel.ptr;
    mod->select_len = sel.len - 1;
    if (def->owner) {
        mod->owner = crest__model_field(m, def->owner);
        if (!mod->owner || (mod->owner->f.type != CREST_F_STRING && mod->owner->f.type != CREST_F_TEXT)) {
            rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: owner: '%s' must be a string field of %s",
                                  def->name, def->owner, m->name);
            goto fail;
        }
    }
    if (def->scope) {
        json_error_t je;
        mod->scope = json_loads(def->scope, 0, &je);
        mod->scope_user = strstr(def->scope, "\"$user.") != NULL;
        crest__qnode *q;
        char msg[256] = "";
        /* Checked once ($user values as null); without $user values the plan
         * is kept and shared by every request (values point into mod->scope). */
        json_t *probe = mod->scope ? with_user(mod->scope, NULL) : NULL;
        int bad = !mod->scope || !json_is_object(mod->scope) ||
                  crest__where_parse(&mod->scope_arena, m, NULL, mod->scope_user ? probe : mod->scope, &q, msg,
                                     sizeof msg);
        json_decref(probe);
        if (!bad && !mod->scope_user)
            mod->scope_plan = q;
        if (bad) {
            rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: scope: %s", def->name,
                                  mod->scope ? msg : je.text);
            goto fail;
        }
    }
    if ((rc = build_routes(app, mod, err)))
        goto fail_routes;
    crest__module **mm = realloc(app->modules, (app->nmodules + 1) * sizeof *mm);
    if (!mm) {
        rc = CREST_ENOMEM;
        goto fail_routes;
    }
    app->modules = mm;
    app->modules[app->nmodules++] = mod;
    return 0;
fail_routes: {
    /* Routes added before the failure point at this module: the app is
     * unusable after a failed add (like a failed app file load). */
    crest__module **mm2 = realloc(app->modules, (app->nmodules + 1) * sizeof *mm2);
    if (mm2) {
        app->modules = mm2;
        app->modules[app->nmodules++] = mod; /* freed with the app */
        return rc;
    }
}
fail:
    crest__module_free(mod);
    return rc;
}

int crest__module_check(crest__module *mod, void *db, crest_error *err)
{
    if (!mod->ncomp)
        return 0;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, mod->select, (int)mod->select_len, &st, NULL) == SQLITE_OK) {
        sqlite3_finalize(st);
        return 0;
    }
    /* Name the field that does not work, and its line in the app file. */
    char key[300];
    snprintf(key, sizeof key, "modules.%s", mod->name);
    crest__error_set(err, CREST_ECONFIG, NULL, 0, "module %s: a computed field does not work: %s", mod->name,
                     sqlite3_errmsg(db));
    for (const crest_computed *c = mod->def->computed; c && c->name; c++) {
        if (!c->sql)
            continue;
        char *sql = sqlite3_mprintf("SELECT (%s) FROM %s", c->sql, mod->m->qtable);
        int prc = sql ? sqlite3_prepare_v2(db, sql, -1, &st, NULL) : SQLITE_NOMEM;
        sqlite3_free(sql);
        sqlite3_finalize(st);
        st = NULL;
        if (prc != SQLITE_OK) {
            crest__error_set(err, CREST_ECONFIG, NULL, 0, "module %s: computed field %s does not work: %s",
                             mod->name, c->name, sqlite3_errmsg(db));
            snprintf(key, sizeof key, "modules.%s.serializer.computed.%s", mod->name, c->name);
            break;
        }
    }
    return crest__app_locate(mod->app, err, key, CREST_ECONFIG);
}

int crest__rest_prepare(crest_app *app, void *db, crest_error *err)
{
    for (unsigned i = 0; i < app->nmodels; i++) {
        int rc = crest__model_sync(app->models[i], db, app->source_name, err);
        if (rc && err) {
            /* The model's line in the app file, or its seed row's ("seed[2]" in the message). */
            const char *name = app->models[i]->name, *s = strstr(err->msg, ": seed");
            char key[300];
            unsigned row;
            if (s && sscanf(s, ": seed[%u]", &row) == 1)
                snprintf(key, sizeof key, "models.%s.seed[%u]", name, row);
            else
                snprintf(key, sizeof key, s ? "models.%s.seed" : "models.%s", name);
            crest__app_locate(app, err, key, rc);
            if (!err->line)
                snprintf(key, sizeof key, "models.%s", name);
            return crest__app_locate(app, err, key, rc);
        }
        if (rc)
            return rc;
    }
    for (unsigned i = 0; i < app->nmodules; i++) {
        int rc = crest__module_check(app->modules[i], db, err);
        if (rc)
            return rc;
    }
    return 0;
}

const char *crest__rest_method_name(unsigned bit);
const char *crest__rest_method_name(unsigned bit)
{
    for (unsigned i = 0; i < CREST_ARRAY_LEN(method_names); i++)
        if (bit == 1u << i)
            return method_names[i];
    return NULL;
}

/* ---- OpenAPI: the part only modules know (src/openapi/openapi.c does the rest) ---- */

#include "../openapi/openapi.h"

/* The schema names of a module: the model's name when one module serves the
 * model, else the model's name and the module's. */
static void schema_base(const crest_app *app, const crest__module *mod, char *out, size_t cap)
{
    unsigned users = 0;
    for (unsigned i = 0; i < app->nmodules; i++)
        users += app->modules[i]->m == mod->m;
    if (users > 1)
        snprintf(out, cap, "%s_%s", mod->m->name, mod->name);
    else
        snprintf(out, cap, "%s", mod->m->name);
}

static void field_schema(crest__oa *o, const crest__mfield *f, bool nullable, bool with_default)
{
    crest_json *w = o->w;
    crest_json_object_begin(w);
    const crest_field *d = &f->f;
    switch (d->type) {
    case CREST_F_STRING:
    case CREST_F_TEXT:
        crest__oa_type(o, "string", nullable);
        if (d->min_length) {
            crest_json_key(w, "minLength");
            crest_json_int(w, d->min_length);
        }
        if (d->max_length) {
            crest_json_key(w, "maxLength");
            crest_json_int(w, d->max_length);
        }
        if (d->pattern) {
            crest_json_key(w, "pattern");
            char *p = malloc(strlen(d->pattern) + 3);
            if (p) {
                sprintf(p, "^%s$", d->pattern);
                crest_json_str(w, p);
                free(p);
            }
        }
        if (d->values) {
            crest_json_key(w, "enum");
            crest_json_array_begin(w);
            for (const char *const *e = d->values; *e; e++)
                crest_json_str(w, *e);
            if (nullable)
                crest_json_null(w);
            crest_json_array_end(w);
        }
        break;
    case CREST_F_INT:
    case CREST_F_FLOAT:
        crest__oa_type(o, d->type == CREST_F_INT ? "integer" : "number", nullable);
        if (d->type == CREST_F_INT) {
            crest_json_key(w, "format");
            crest_json_str(w, "int64");
        }
        if (d->has_min) {
            crest_json_key(w, "minimum");
            crest__oa_number(o, d->min);
        }
        if (d->has_max) {
            crest_json_key(w, "maximum");
            crest__oa_number(o, d->max);
        }
        break;
    case CREST_F_BOOL:
        crest__oa_type(o, "boolean", nullable);
        break;
    case CREST_F_DATE:
    case CREST_F_DATETIME:
    case CREST_F_UUID:
        crest__oa_type(o, "string", nullable);
        crest_json_key(w, "format");
        crest_json_str(w, d->type == CREST_F_DATE ? "date" : d->type == CREST_F_DATETIME ? "date-time" : "uuid");
        break;
    case CREST_F_JSON:
        break; /* any JSON value */
    }
    if (with_default && f->defv) {
        crest_json_key(w, "default");
        crest__json_write_value(w, f->defv);
    }
    if (d->description || (f->def_now && with_default)) {
        crest_json_key(w, "description");
        crest_json_str(w, d->description ? d->description : "defaults to the time of the write");
    }
    crest_json_object_end(w);
}

/* A served field may be null unless it is id or required. */
static bool served_nullable(const crest__mfield *f) { return f->idx != 0 && !f->f.required; }

static void obj_schema(crest__oa *o, const crest__module *mod, int shape /* 0 read, 1 create, 2 update */)
{
    crest_json *w = o->w;
    const crest__model *m = mod->m;
    crest_json_object_begin(w);
    crest__oa_type(o, "object", false);
    crest_json_key(w, "properties");
    crest_json_object_begin(w);
    for (unsigned i = 0; i < m->nfields; i++) {
        const crest__mfield *f = &m->fields[i];
        if (shape == 0 ? !mod->served[i] : !mod->writable[i])
            continue;
        crest_json_key(w, f->f.name);
        field_schema(o, f, shape == 0 ? served_nullable(f) : !f->f.required, shape == 1);
    }
    if (shape == 0)
        for (unsigned j = 0; j < mod->ncomp; j++) {
            crest_json_key(w, mod->comp[j]->name);
            crest_json_object_begin(w);
            crest_json_key(w, "description");
            crest_json_str(w, mod->comp[j]->sql ? "computed from the row in SQL" : "computed by the server");
            crest_json_object_end(w);
        }
    crest_json_object_end(w);
    bool any = false;
    for (unsigned i = 0; i < m->nfields && shape != 2; i++) {
        const crest__mfield *f = &m->fields[i];
        bool req = shape == 0 ? mod->served[i] && !served_nullable(f)
                              : mod->writable[i] && f->f.required && !f->defv && !f->def_now;
        if (!req)
            continue;
        if (!any) {
            crest_json_key(w, "required");
            crest_json_array_begin(w);
            any = true;
        }
        crest_json_str(w, f->f.name);
    }
    if (any)
        crest_json_array_end(w);
    if (shape != 0) {
        crest_json_key(w, "additionalProperties");
        crest_json_bool(w, false);
    }
    crest_json_object_end(w);
}

/* {"<env>": <schema ref>} */
static void wrapped(crest__oa *o, const char *env, const char *ref, bool array)
{
    crest_json *w = o->w;
    crest_json_object_begin(w);
    crest__oa_type(o, "object", false);
    crest_json_key(w, "properties");
    crest_json_object_begin(w);
    crest_json_key(w, env);
    if (array) {
        crest_json_object_begin(w);
        crest__oa_type(o, "array", false);
        crest_json_key(w, "items");
        crest__oa_ref(o, ref);
        crest_json_object_end(w);
    } else {
        crest__oa_ref(o, ref);
    }
    crest_json_object_end(w);
    crest_json_key(w, "required");
    crest_json_array_begin(w);
    crest_json_str(w, env);
    crest_json_array_end(w);
    crest_json_object_end(w);
}

static void list_schema(crest__oa *o, const crest__module *mod, const char *env, const char *item_ref,
                        bool groups)
{
    crest_json *w = o->w;
    crest_json_object_begin(w);
    crest__oa_type(o, "object", false);
    crest_json_key(w, "properties");
    crest_json_object_begin(w);
    crest_json_key(w, env);
    crest_json_object_begin(w);
    crest__oa_type(o, "array", false);
    crest_json_key(w, "items");
    if (groups) {
        crest_json_object_begin(w);
        crest__oa_type(o, "object", false);
        crest_json_key(w, "properties");
        crest_json_object_begin(w);
        crest_json_key(w, "value");
        crest_json_object_begin(w);
        crest_json_key(w, "description");
        crest_json_str(w, "a value of the grouped field");
        crest_json_object_end(w);
        crest_json_key(w, "count");
        crest_json_object_begin(w);
        crest__oa_type(o, "integer", false);
        crest_json_object_end(w);
        crest_json_object_end(w);
        crest_json_key(w, "required");
        crest_json_array_begin(w);
        crest_json_str(w, "value");
        crest_json_str(w, "count");
        crest_json_array_end(w);
        crest_json_object_end(w);
    } else {
        crest__oa_ref(o, item_ref);
    }
    crest_json_object_end(w);
    if (!mod->def->no_meta) {
        crest_json_key(w, mod->meta_env);
        if (mod->def->meta_fn) {
            crest_json_object_begin(w);
            crest__oa_type(o, "object", false);
            crest_json_object_end(w);
        } else {
            crest__oa_ref(o, "ListMeta");
        }
    }
    crest_json_object_end(w);
    crest_json_key(w, "required");
    crest_json_array_begin(w);
    crest_json_str(w, env);
    if (!mod->def->no_meta)
        crest_json_str(w, mod->meta_env);
    crest_json_array_end(w);
    crest_json_object_end(w);
}

void crest__rest_openapi_schemas(crest_app *app, crest__oa *o)
{
    crest_json *w = o->w;
    bool meta_used = false; /* by the list schemas of a module with the default meta */
    for (unsigned i = 0; i < app->nmodules; i++)
        meta_used |= !app->modules[i]->def->no_meta && !app->modules[i]->def->meta_fn;
    if (meta_used) {
        crest_json_key(w, "ListMeta");
        crest_json_object_begin(w);
        crest__oa_type(o, "object", false);
        crest_json_key(w, "properties");
        crest_json_object_begin(w);
        crest_json_key(w, "object");
        crest_json_object_begin(w);
        crest__oa_type(o, "string", false);
        crest_json_key(w, "enum");
        crest_json_array_begin(w);
        crest_json_str(w, "list");
        crest_json_array_end(w);
        crest_json_object_end(w);
        crest_json_key(w, "total_objects");
        crest_json_object_begin(w);
        crest__oa_type(o, "integer", false);
        crest_json_key(w, "description");
        crest_json_str(w, "rows matching the query (absent with count=none)");
        crest_json_object_end(w);
        crest_json_key(w, "has_more");
        crest_json_object_begin(w);
        crest__oa_type(o, "boolean", false);
        crest_json_object_end(w);
        crest_json_object_end(w);
        crest_json_key(w, "required");
        crest_json_array_begin(w);
        crest_json_str(w, "object");
        crest_json_str(w, "has_more");
        crest_json_array_end(w);
        crest_json_object_end(w);
    }
    for (unsigned i = 0; i < app->nmodules; i++) {
        const crest__module *mod = app->modules[i];
        char base[160], name[200], ref[200];
        schema_base(app, mod, base, sizeof base);
        crest_json_key(w, base);
        obj_schema(o, mod, 0);
        snprintf(name, sizeof name, "%sCreate", base);
        crest_json_key(w, name);
        obj_schema(o, mod, 1);
        snprintf(name, sizeof name, "%sUpdate", base);
        crest_json_key(w, name);
        obj_schema(o, mod, 2);
        snprintf(name, sizeof name, "%sList", base);
        crest_json_key(w, name);
        list_schema(o, mod, mod->list_env, base, false);
        snprintf(name, sizeof name, "%sCreated", base);
        crest_json_key(w, name);
        wrapped(o, mod->list_env, base, true);
        if (mod->single_env) {
            snprintf(name, sizeof name, "%sEnvelope", base);
            crest_json_key(w, name);
            wrapped(o, mod->single_env, base, false);
            snprintf(name, sizeof name, "%sCreateEnvelope", base);
            crest_json_key(w, name);
            snprintf(ref, sizeof ref, "%sCreate", base);
            wrapped(o, mod->single_env, ref, false);
            snprintf(name, sizeof name, "%sUpdateEnvelope", base);
            crest_json_key(w, name);
            snprintf(ref, sizeof ref, "%sUpdate", base);
            wrapped(o, mod->single_env, ref, false);
        }
        if (mod->methods & CREST_R_GROUP) {
            snprintf(name, sizeof name, "%sGroups", base);
            crest_json_key(w, name);
            list_schema(o, mod, mod->groups_env, NULL, true);
        }
    }
}

static void body(crest__oa *o, const char *ref, const char *alt_array_ref, bool required)
{
    crest_json *w = o->w;
    crest_json_key(w, "requestBody");
    crest_json_object_begin(w);
    crest_json_key(w, "required");
    crest_json_bool(w, required);
    crest_json_key(w, "content");
    crest_json_object_begin(w);
    crest_json_key(w, "application/json");
    crest_json_object_begin(w);
    crest_json_key(w, "schema");
    if (alt_array_ref) {
        crest_json_object_begin(w);
        crest_json_key(w, "anyOf");
        crest_json_array_begin(w);
        crest__oa_ref(o, ref);
        crest_json_object_begin(w);
        crest__oa_type(o, "array", false);
        crest_json_key(w, "items");
        crest__oa_ref(o, alt_array_ref);
        crest_json_key(w, "minItems");
        crest_json_int(w, 1);
        crest_json_key(w, "maxItems");
        crest_json_int(w, CREST_BULK_MAX);
        crest_json_object_end(w);
        crest_json_array_end(w);
        crest_json_object_end(w);
    } else {
        crest__oa_ref(o, ref);
    }
    crest_json_object_end(w);
    crest_json_object_end(w);
    crest_json_object_end(w);
}

static void any_object_response(crest__oa *o, const char *description, const char *what)
{
    crest_json *w = o->w;
    crest_json_object_begin(w);
    crest_json_key(w, "description");
    crest_json_str(w, description);
    crest_json_key(w, "content");
    crest_json_object_begin(w);
    crest_json_key(w, "application/json");
    crest_json_object_begin(w);
    crest_json_key(w, "schema");
    crest_json_object_begin(w);
    crest__oa_type(o, "object", false);
    crest_json_key(w, "description");
    crest_json_str(w, what);
    crest_json_object_end(w);
    crest_json_object_end(w);
    crest_json_object_end(w);
    crest_json_object_end(w);
}

bool crest__rest_openapi_operation(const crest__endpoint *ep, crest__oa *o)
{
    const crest_handler h = ep->spec->handler;
    if (h != h_index && h != h_read && h != write_route && h != h_sample && h != h_group && h != h_stats &&
        h != h_eval)
        return false;
    const route *r = ep->ud;
    const crest__module *mod = r->mod;
    crest_json *w = o->w;
    char base[160], ref[200], ref2[200];
    schema_base(mod->app, mod, base, sizeof base);
    static const char *const op_names[] = {"index", "read", "create", "update", "patch", "delete",
                                           "sample", "group", "stats", "eval"};
    o->custom_errors = mod->def->error_fn != NULL;
    crest_json_key(w, "operationId");
    snprintf(ref, sizeof ref, "%s.%s", mod->name, op_names[r->kind]);
    crest_json_str(w, ref);
    static const int q400[] = {400, 500, 503, 504, 0};
    static const int id404[] = {404, 500, 503, 504, 0};
    static const int write_body[] = {400, 404, 409, 413, 415, 422, 500, 503, 504, 0};
    static const int create_body[] = {400, 409, 413, 415, 422, 500, 503, 504, 0};
    static const int del[] = {404, 500, 503, 504, 0};
    const char *env_create = mod->def->use_envelope_on_parse ? "CreateEnvelope" : "Create";
    const char *env_update = mod->def->use_envelope_on_parse ? "UpdateEnvelope" : "Update";
    const char *env_one = mod->single_env ? "Envelope" : "";
    switch (r->kind) {
    case RT_CREATE:
        snprintf(ref, sizeof ref, "%s%s", base, env_create);
        snprintf(ref2, sizeof ref2, "%sCreate", base);
        body(o, ref, mod->def->use_envelope_on_parse ? NULL : ref2, true);
        break;
    case RT_UPDATE:
    case RT_PATCH:
        snprintf(ref, sizeof ref, "%s%s", base, env_update);
        body(o, ref, NULL, true);
        break;
    default:
        break;
    }
    crest_json_key(w, "responses");
    crest_json_object_begin(w);
    const crest_module_def *d = mod->def;
    /* C callbacks may answer any problem of their own. */
    bool custom = d->pipeline || d->scope_fn || d->after_parse_params || d->processor || d->parse_fields ||
                  d->before_create || d->after_create || d->before_update || d->after_update || d->before_delete ||
                  d->after_delete || d->error_fn || d->meta_fn;
    switch (r->kind) {
    case RT_INDEX:
    case RT_SAMPLE:
        crest_json_key(w, "200");
        snprintf(ref, sizeof ref, "%sList", base);
        crest__oa_json_response(o, r->kind == RT_INDEX ? "a page of rows" : "random rows", ref);
        crest__oa_problems(o, q400);
        break;
    case RT_READ:
        crest_json_key(w, "200");
        snprintf(ref, sizeof ref, "%s%s", base, env_one);
        crest__oa_json_response(o, "the row", ref);
        crest__oa_problems(o, id404);
        break;
    case RT_CREATE:
        crest_json_key(w, "201");
        crest_json_object_begin(w);
        crest_json_key(w, "description");
        crest_json_str(w, "created: the row (with a Location header), or {data: [rows]} for a list");
        crest_json_key(w, "headers");
        crest_json_object_begin(w);
        crest_json_key(w, "Location");
        crest_json_object_begin(w);
        crest_json_key(w, "description");
        crest_json_str(w, "the new row's URL (single creates)");
        crest_json_key(w, "schema");
        crest_json_object_begin(w);
        crest__oa_type(o, "string", false);
        crest_json_object_end(w);
        crest_json_object_end(w);
        crest_json_object_end(w);
        crest_json_key(w, "content");
        crest_json_object_begin(w);
        crest_json_key(w, "application/json");
        crest_json_object_begin(w);
        crest_json_key(w, "schema");
        crest_json_object_begin(w);
        crest_json_key(w, "anyOf");
        crest_json_array_begin(w);
        snprintf(ref, sizeof ref, "%s%s", base, env_one);
        crest__oa_ref(o, ref);
        snprintf(ref, sizeof ref, "%sCreated", base);
        crest__oa_ref(o, ref);
        crest_json_array_end(w);
        crest_json_object_end(w);
        crest_json_object_end(w);
        crest_json_object_end(w);
        crest_json_object_end(w);
        crest__oa_problems(o, create_body);
        break;
    case RT_UPDATE:
    case RT_PATCH:
        crest_json_key(w, "200");
        snprintf(ref, sizeof ref, "%s%s", base, env_one);
        crest__oa_json_response(o, "the updated row", ref);
        crest__oa_problems(o, write_body);
        break;
    case RT_DELETE:
        crest_json_key(w, "204");
        crest_json_object_begin(w);
        crest_json_key(w, "description");
        crest_json_str(w, "deleted");
        crest_json_object_end(w);
        crest__oa_problems(o, del);
        break;
    case RT_GROUP:
        crest_json_key(w, "200");
        snprintf(ref, sizeof ref, "%sGroups", base);
        crest__oa_json_response(o, "counts by value", ref);
        crest__oa_problems(o, q400);
        break;
    case RT_STATS:
        crest_json_key(w, "200");
        any_object_response(o, "min, max and avg of each field",
                            "{field: {min, max, avg}}; avg is a number, all null for an empty set");
        crest__oa_problems(o, q400);
        break;
    case RT_EVAL:
        crest_json_key(w, "200");
        any_object_response(o, "the functions' values", "{\"<name>__<field>\": value, \"count\": n}");
        crest__oa_problems(o, q400);
        break;
    default:
        break;
    }
    crest__oa_auth_responses(o, ep);
    if (custom)
        crest__oa_ranges(o, d->error_fn != NULL);
    crest_json_object_end(w);
    o->custom_errors = false;
    return true;
}

const char *crest__rest_tag_description(crest_app *app, const char *tag)
{
    for (unsigned i = 0; i < app->nmodules; i++)
        if (!strcmp(app->modules[i]->name, tag))
            return app->modules[i]->tag_desc;
    return NULL;
}

bool crest__rest_param_schema(const crest__endpoint *ep, const char *param, crest__oa *o)
{
    const crest_handler h = ep->spec->handler;
    if (h != h_read && h != write_route && h != h_group)
        return false;
    const route *r = ep->ud;
    crest_json *w = o->w;
    if (r->kind == RT_GROUP && !strcmp(param, "field")) {
        crest_json_object_begin(w);
        crest__oa_type(o, "string", false);
        crest_json_key(w, "enum");
        crest_json_array_begin(w);
        for (unsigned i = 0; i < r->mod->m->nfields; i++)
            if (r->mod->group.ok[i])
                crest_json_str(w, r->mod->m->fields[i].f.name);
        crest_json_array_end(w);
        crest_json_object_end(w);
        return true;
    }
    if (r->kind != RT_CREATE && r->kind != RT_GROUP && !strcmp(param, r->mod->id_param)) {
        /* Any text reaches the route (not an integer: 404), but ids are integers. */
        crest_json_object_begin(w);
        crest__oa_type(o, "integer", false);
        crest_json_key(w, "format");
        crest_json_str(w, "int64");
        crest_json_object_end(w);
        return true;
    }
    return false;
}

const char *crest__rest_param_description(const crest__endpoint *ep, const char *param)
{
    const crest_handler h = ep->spec->handler;
    if (h != h_index && h != h_sample && h != h_group && h != h_stats && h != h_eval)
        return NULL;
    const route *r = ep->ud;
    if (!strcmp(param, "where"))
        return r->mod->where_desc;
    if (!strcmp(param, "sort_by") && r->kind == RT_INDEX)
        return r->mod->sort_desc;
    if (!strcmp(param, "fields") && r->kind == RT_STATS)
        return r->mod->stats_desc;
    return NULL;
}
