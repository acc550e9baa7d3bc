/* module_internal.h — what the files of a REST module share: the module and
 * route structures, and the steps every route runs (module_steps.c). The
 * routes live by what they do: module_read.c (index, sample, read),
 * module_write.c (create, update, delete), module_aggregate.c (group, stats,
 * eval); module.c builds a module; src/openapi/module.c describes it.
 * Internal. */
#ifndef CREST_MODULE_INTERNAL_H
#define CREST_MODULE_INTERNAL_H

#include "rest_internal.h"

typedef enum {
    RT_INDEX,
    RT_READ,
    RT_CREATE,
    RT_UPDATE,
    RT_PATCH,
    RT_DELETE,
    RT_SAMPLE,
    RT_GROUP,
    RT_STATS,
    RT_EVAL,
    RT_COUNT
} rt_kind;

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
    const char *list_env, *single_env, *meta_env, *groups_env;
    route routes[RT_COUNT];
    /* The text of a read by id without a scope, made once at start in the
     * store's dialect (its one value is the id): the busiest route does not
     * build it for every request. NULL until then, or when its shape is not
     * that. Owned. */
    char *read_sql;
    const struct crest__dialect *read_dialect;
};

struct crest_row {
    const crest__rows *rows;
    size_t i;                     /* the row's index in rows */
    const crest__module *mod;
    crest__arena *arena;          /* the request's (crest_row_str of a number) */
};

/* ---- module_steps.c: the steps every route shares ---- */

/* A 400 invalid_parameter naming `param`; returns -1. */
int crest__rest_bad_param(crest_res *res, const char *param, const char *msg);
/* Runs q (CREST__QF_* flags) in the request's session, in place, and
 * returns its rows (the request's arena). On failure answers through the
 * error table (res NULL: leaves the answer alone), copies the failure into
 * *failed (when not NULL) and returns NULL. */
crest__rows *crest__rest_query(crest_req *req, crest_res *res, crest__sql *q, unsigned flags, crest__dberr *failed);
/* A read route's next step, with the rows of its statement (the request's
 * arena); it ends the answer with crest__res_finish. */
typedef void (*crest__rest_next)(void *op, crest__rows *rows);
/* Runs q (CREST__QF_* flags; at most max_rows rows, 0: all) in the
 * request's session; next(op, rows) runs when it is done — at once, or
 * later on the worker's loop. A failure is answered through the error table
 * and finishes the answer (next never runs). Returns CREST_DEFERRED (the
 * route returns it), or -1 answered when it could not start. q is the
 * caller's to dispose once this returns. */
/* The same for a statement already made (its text and values borrowed
 * until it returns, the values' text until the completion). */
int crest__rest_run_then(crest_req *req, crest_res *res, crest__query *q, crest__rest_next next, void *op);
int crest__rest_query_then(crest_req *req, crest_res *res, crest__sql *q, unsigned flags, size_t max_rows,
                           crest__rest_next next, void *op);
/* The same, reading at most max_rows rows (0: all). */
crest__rows *crest__rest_query_n(crest_req *req, crest_res *res, crest__sql *q, unsigned flags, crest__dberr *failed,
                                 size_t max_rows);
/* Field-level access: may this request's user see / write field f? */
bool crest__rest_can_read(const crest_req *req, const crest__mfield *f);
bool crest__rest_can_write(const crest_req *req, const crest__mfield *f);
/* The field a client names in a query parameter, or NULL when it has no
 * such field it may see. */
const crest__mfield *crest__rest_client_field(const crest_req *req, const crest__module *mod, const char *name);
/* The columns a row read returns: every field, then the computed ones
 * (borrowed from mod). */
crest__proj crest__rest_proj(const crest__module *mod);
/* Writes row i of r (a SELECT of mod->select) through the serializer. */
int crest__rest_write_row(const crest_rest_ctx *ctx, const crest__module *mod, const crest__rows *r, size_t i,
                          crest_json *w);
/* Row i as a JSON object, for after_* hooks (new reference, or NULL). */
json_t *crest__rest_row_object(const crest_rest_ctx *ctx, const crest__module *mod, const crest__rows *r, size_t i);
/* The `where` parameter as a plan (NULL when absent); -1 when answered. */
int crest__rest_where_param(crest_req *req, crest_res *res, const crest__module *mod, crest__qnode **out);
/* The module a model's rows are reached through from a relation: the
 * first module declared over it (borrowed from the app), or NULL. */
const crest__module *crest__rest_model_module(const crest_app *app, const crest__model *m);
/* The related rows of rel as the request's user may reach them: *mod, the
 * target model's module (crest__rest_model_module), when the user has its
 * permission for `access` (CREST_R_INDEX for has_many / through rows,
 * CREST_R_READ for a belongs_to row; an app without auth: anyone), and
 * *scope, that module's scope for this request (fixed scope, scope_fn, row
 * ownership; NULL: none; from the request's arena), which every related row
 * used must meet. Fields of the target: crest__rest_client_field(req, *mod,
 * name). 0; -1 when the user may not reach them (answer as for an unknown
 * name; nothing is answered); -2 when the scope failed and res is answered.
 * Both outputs borrowed (the app's, the request's). */
int crest__rest_rel_target(crest_req *req, crest_res *res, const crest__rel *rel, unsigned access,
                           const crest__module **mod, const crest__qnode **scope);
/* The judge of a client's dotted names (where, sort_by, group) in a
 * request to mod: the state behind it lives in *rr (the caller's, for the
 * parse; it remembers each target's scope). */
typedef struct crest__rest_reach {
    crest_req *req;
    crest_res *res;
    const crest__module *mod;
    struct crest__rest_seen {
        const crest__model *m;
        unsigned access;
        int rc;
        const crest__module *mod;
        const crest__qnode *scope;
    } seen[8];
    unsigned n;
} crest__rest_reach;
crest__reach crest__rest_reach_init(crest__rest_reach *rr, crest_req *req, crest_res *res, const crest__module *mod);
/* The value "$user.id" / "$user.<claim>" stands for (new reference). */
json_t *crest__rest_user_value(const crest_user *u, const char *ref);
/* A copy of v with every "$user..." string replaced (new reference). */
json_t *crest__rest_with_user(json_t *v, const crest_user *u);
/* Pipeline, scope, after_parse_params: what every route runs first. */
int crest__rest_begin(crest_rest_ctx *ctx, crest__module *mod, crest__qnode **scope);
void crest__rest_ctx_init(crest_rest_ctx *ctx, crest_req *req, crest_res *res, crest__module *mod);
/* The prologue of every route (ud: the route): *mod, the context, then
 * the pipeline, the scope and after_parse_params (crest__rest_begin); with
 * id, the row's id from the path (404 when it is not an integer). 0, or -1
 * answered. */
int crest__rest_prologue(crest_req *req, crest_res *res, void *ud, crest_rest_ctx *ctx, crest__module **mod,
                         crest__qnode **scope, int64_t *id);
int crest__rest_page_params(crest_req *req, crest_res *res, const crest__module *mod, int64_t *page, int64_t *size);
/* id from the path; false when it is not an integer (the route answers 404). */
bool crest__rest_path_id(crest_req *req, const crest__module *mod, int64_t *id);
int crest__rest_not_found(crest_res *res, const crest__module *mod);
/* Compiles the read of row `id` of mod (its columns) within scope into q. */
void crest__rest_select_by_id(crest__sql *q, const crest__module *mod, int64_t id, const crest__qnode *scope);
/* 0 when row `id` is in scope; otherwise answered (404, or the database's error), -1. */
int crest__rest_row_visible(crest_req *req, crest_res *res, const crest__module *mod, int64_t id,
                            const crest__qnode *scope);
/* Writes a list's meta (the module's meta_fn, or object, total_objects
 * when has_total, total_estimated when estimated >= 0 — count=estimated:
 * 1 when total is the planner's estimate, 0 when exact — and has_more). */
void crest__rest_meta(const crest_rest_ctx *ctx, const crest__module *mod, crest_json *w, int64_t total,
                      bool has_total, int estimated, bool has_more);

/* ---- the routes' handlers (ud: the route) ---- */

/* module_read.c */
int crest__rest_op_index(crest_req *req, crest_res *res, void *ud);
int crest__rest_op_sample(crest_req *req, crest_res *res, void *ud);
int crest__rest_op_read(crest_req *req, crest_res *res, void *ud);
/* Serves row `id` (in scope); 404 when absent. Returns CREST_DEFERRED (the
 * answer is finished with crest__res_finish, maybe already), or -1 answered. */
int crest__rest_serve_one(crest_rest_ctx *ctx, crest__module *mod, int64_t id, const crest__qnode *scope,
                          crest_rest_hook after);
/* module_write.c */
int crest__rest_op_create(crest_req *req, crest_res *res, void *ud);
int crest__rest_op_update(crest_req *req, crest_res *res, void *ud);
int crest__rest_op_delete(crest_req *req, crest_res *res, void *ud);
/* The spec handler of write routes: runs route->inner on the app's writer connection. */
int crest__rest_write_route(crest_req *req, crest_res *res, void *ud);
/* module_aggregate.c */
int crest__rest_op_group(crest_req *req, crest_res *res, void *ud);
int crest__rest_op_stats(crest_req *req, crest_res *res, void *ud);
int crest__rest_op_eval(crest_req *req, crest_res *res, void *ud);

/* module.c */
const char *crest__rest_method_name(unsigned bit);

#endif
