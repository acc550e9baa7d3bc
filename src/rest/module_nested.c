/* module_nested.c — nested routes: a has_many relation's rows under their
 * parent, GET and POST /people/{id}/computers (a through relation's: GET
 * /tasks/{id}/tags). They are the related
 * module's index and create (its permissions, scope, hooks and every list
 * parameter) with the foreign key pinned to the parent's id; the parent
 * must be a row the user may read through its own module, else 404. A
 * route is added once both modules exist, whichever comes second. */
#include <stdio.h>
#include <stdlib.h>

#include "module_internal.h"

/* The parent's id from the path, the parent module's scope for this
 * request and the statement asking whether the parent is a row the user
 * may read through that module: 0, or -1 answered (404 for a parent that
 * is not an integer or whose module the user may not read). */
static int parent_check(crest_req *req, crest_res *res, const route *r, int64_t *pid, crest__sql *q)
{
    crest__module *p = r->parent;
    if (!crest__rest_path_id(req, p, pid) || !crest__rest_may(req, p, CREST_R_READ))
        return crest__rest_not_found(res, p);
    crest_rest_ctx pc;
    crest__rest_ctx_init(&pc, req, res, p);
    crest__qnode *scope;
    if (crest__rest_scope(&pc, p, &scope))
        return -1;
    crest__sql_init(q, req->arena, crest__app_dialect(req->app));
    crest__read_plan rp = {.proj = crest__rest_proj(p), .id = *pid, .scope = scope, .exists_only = true};
    crest__compile_read(q, &rp);
    return 0;
}

/* A nested list while the parent is looked for (the request's arena). */
typedef struct nested_op {
    crest_rest_ctx ctx;
    const route *r;
    crest__qnode *where;          /* the related module's scope and fk = the parent's id */
} nested_op;

static void nested_parent(void *p, crest__rows *rows)
{
    nested_op *op = p;
    crest_res *res = op->ctx.res;
    if (!rows->nrows)
        crest__res_finish(res, crest__rest_not_found(res, op->r->parent));
    else if (crest__rest_list(&op->ctx, op->r->mod, op->where, false) < 0)
        crest__res_finish(res, -1);
}

int crest__rest_op_nested_index(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    crest__module *mod;
    nested_op *op = crest__arena_calloc(req->arena, 1, sizeof *op);
    crest__qnode *scope, *pin = crest__arena_calloc(req->arena, 1, sizeof *pin);
    crest__val *v = crest__arena_alloc(req->arena, sizeof *v);
    if (!op || !pin || !v)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    int64_t pid;
    crest__sql q;
    if (crest__rest_prologue(req, res, ud, &op->ctx, &mod, &scope, NULL) || parent_check(req, res, r, &pid, &q))
        return -1;
    /* the related rows: fk = the parent's id; through a join model, the
     * rows some join row links to the parent */
    *v = (crest__val){.k = CREST__V_INT, .i = pid};
    *pin = (crest__qnode){.kind = CREST__Q_CMP, .op = CREST__OP_EQ, .field = r->rel->fk, .vals = v, .nvals = 1};
    if (r->rel->kind == CREST__REL_THROUGH) {
        crest__qnode *link = crest__arena_calloc(req->arena, 1, sizeof *link);
        crest__qnode **kid = crest__arena_alloc(req->arena, sizeof *kid);
        if (!link || !kid)
            return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
        kid[0] = pin;
        *link = (crest__qnode){.kind = CREST__Q_REL, .kids = kid, .nkids = 1, .rel = r->rel->join_rows};
        pin = link;
    }
    op->r = r;
    op->where = crest__qnode_and(req->arena, pin, scope);
    int rc = crest__rest_query_then(req, res, &q, CREST__QF_READ, 1, nested_parent, op);
    crest__sql_dispose(&q);
    return rc;
}

int crest__rest_op_nested_create(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    crest__module *mod;
    crest_rest_ctx ctx;
    crest__qnode *scope;
    crest__embeds *e;
    int64_t pid;
    crest__sql q;
    if (crest__rest_prologue(req, res, ud, &ctx, &mod, &scope, NULL) || crest__rest_embeds_parse(&ctx, mod, &e) ||
        parent_check(req, res, r, &pid, &q))
        return -1;
    /* (a write route: its statements run in place, in its transaction) */
    crest__rows *rows = crest__rest_query(req, res, &q, CREST__QF_READ, NULL);
    crest__sql_dispose(&q);
    if (!rows)
        return -1;
    if (!rows->nrows)
        return crest__rest_not_found(res, r->parent);
    return crest__rest_create(&ctx, mod, e, r->rel->fk, pid);
}

/* Adds one nested route of parent's relation rel to mod's rows: kind
 * RT_INDEX (GET) or RT_CREATE (POST), with the params of mod's own route
 * of that kind and the parent's id. */
static int add_nested(crest_app *app, crest__module *parent, const crest__rel *rel, crest__module *mod, rt_kind kind,
                      crest_error *err)
{
    const route *own = &mod->routes[kind];
    route *r = &parent->nested[parent->nnested];
    *r = (route){.mod = mod, .parent = parent, .rel = rel, .kind = kind};
    size_t need = strlen(parent->prefix) + strlen(parent->id_path) + strlen(rel->name) + 2;
    if (!(r->path = malloc(need)))
        return CREST_ENOMEM;
    snprintf(r->path, need, "%s%s/%s", parent->prefix, parent->id_path, rel->name);
    unsigned np = 0;
    for (const crest_param *p = own->spec.params; p && p->name && np + 2 < CREST_ARRAY_LEN(r->params); p++)
        r->params[np++] = *p;
    r->params[np++] = (crest_param){parent->id_param, CREST_IN_PATH, CREST_T_STRING, .required = true,
                                    .description = "the parent row's id (an integer)"};
    r->spec = own->spec;
    r->spec.path = r->path;
    r->spec.params = r->params;
    r->spec.summary = kind == RT_INDEX ? "List a relation's rows" : "Create a row of the relation";
    if (kind == RT_INDEX) {
        r->spec.handler = crest__rest_op_nested_index;
    } else {
        r->inner = crest__rest_op_nested_create;
        r->spec.handler = crest__rest_write_route;
    }
    crest_error e2 = {0};
    int rc = crest_app_add_endpoint(app, &r->spec, r, &e2);
    if (rc) {
        crest__error_set(err, rc, NULL, 0, "module %s: %s %s: %s", parent->name, kind == RT_INDEX ? "GET" : "POST",
                         r->path, e2.msg);
        free(r->path);
        r->path = NULL;
        return rc;
    }
    app->eps[app->neps - 1]->bounded_writes = r->spec.blocking;
    parent->nnested++;
    return 0;
}

/* The nested routes of parent's has_many relations whose rows mod serves. */
static int nest_pair(crest_app *app, crest__module *parent, crest__module *mod, crest_error *err)
{
    const crest__model *m = parent->m;
    for (unsigned i = 0; i < m->nrels; i++) {
        const crest__rel *rel = &m->rels[i];
        if ((rel->kind != CREST__REL_HAS_MANY && rel->kind != CREST__REL_THROUGH) ||
            crest__rest_module_of(app, rel->target) != mod)
            continue;
        if (!parent->nested && !(parent->nested = calloc(2 * m->nrels, sizeof *parent->nested)))
            return CREST_ENOMEM;
        static const rt_kind kinds[] = {RT_INDEX, RT_CREATE};
        for (unsigned k = 0; k < 2; k++) {
            /* (a through relation's rows are linked by its join model's
             * rows: no POST, which would make two rows) */
            if (!mod->routes[kinds[k]].path || !(parent->methods & CREST_R_READ) ||
                (rel->kind == CREST__REL_THROUGH && kinds[k] == RT_CREATE))
                continue;
            int rc = add_nested(app, parent, rel, mod, kinds[k], err);
            if (rc)
                return rc;
        }
    }
    return 0;
}

int crest__rest_nest(crest_app *app, crest__module *mod, crest_error *err)
{
    for (unsigned i = 0; i < app->nmodules; i++) {
        crest__module *other = app->modules[i];
        int rc = nest_pair(app, mod, other, err);
        if (!rc && other != mod)
            rc = nest_pair(app, other, mod, err);
        if (rc)
            return rc;
    }
    return 0;
}
