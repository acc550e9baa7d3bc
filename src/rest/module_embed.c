/* module_embed.c — related rows embedded in a module's answers
 * (?include=owner,computers.vendor): the include list becomes a tree of
 * relations, each reached through its target's own module (permissions,
 * row ownership, scope and field access as there); once the answer's rows
 * are read, each relation's rows are read for all of them in one statement
 * (crest__compile_embed), so a page costs one statement per relation
 * whatever its size, never one per row; then the rows are written with
 * their embeds: a belongs_to as an object (or null), a has_many or through
 * as a list of at most its embed_max rows, with "<name>_has_more". */
#include <stdio.h>
#include <stdlib.h>

#include "module_internal.h"

/* The first module over model m, or NULL: the module related rows are
 * served through. Borrowed from the app. */
crest__module *crest__rest_module_of(const crest_app *app, const crest__model *m)
{
    for (unsigned i = 0; i < app->nmodules; i++)
        if (app->modules[i]->m == m)
            return app->modules[i];
    return NULL;
}

/* Whether the request's user may call mod's method `bit` (CREST_R_*): the
 * method is enabled and, when the app has auth, its permission holds. */
bool crest__rest_may(const crest_req *req, const crest__module *mod, unsigned bit)
{
    if (!(mod->methods & bit))
        return false;
    if (!req->app->auth)
        return true;
    unsigned k = 0;
    while (k < 9 && !(bit & (1u << k)))
        k++;
    const char *need = k < 9 ? mod->def->permissions[k] : NULL;
    if (!need)
        return false;
    if (!strcmp(need, "public"))
        return true;
    if (!strcmp(need, "authenticated"))
        return req->user != NULL;
    return crest__user_has_one(req->user, need);
}

/* The method a relation's rows are read with: one row (read) or a list (index). */
static unsigned rel_method(const crest__rel *r)
{
    return r->kind == CREST__REL_BELONGS_TO ? CREST_R_READ : CREST_R_INDEX;
}

/* Whether the root module's allowed_includes lets `path` (n bytes) in: it
 * or a longer path it begins. NULL list: every path. */
bool crest__rest_include_allowed(const crest__module *mod, const char *path, size_t n)
{
    const char *const *a = mod->def->allowed_includes;
    if (!a)
        return true;
    for (; *a; a++)
        if (!strncmp(*a, path, n) && ((*a)[n] == 0 || (*a)[n] == '.'))
            return true;
    return false;
}

/* The node for relation r under `parent` (adding it); NULL with a 400. */
static crest__embed *node_for(crest__embeds *e, crest_rest_ctx *ctx, int parent, const crest__rel *r,
                              const char *path)
{
    for (unsigned i = 0; i < e->n; i++)
        if (e->node[i].parent == parent && e->node[i].rel == r)
            return &e->node[i];
    crest_req *req = ctx->req;
    const crest__module *m2;
    const crest__qnode *scope;
    int rc = crest__rest_rel_target(req, ctx->res, r, rel_method(r), &m2, &scope);
    if (rc == -1)
        crest__rest_bad_param(ctx->res, "include",
                              crest__arena_printf(req->arena, "include: '%s' is not a relation you may read", path));
    if (rc)
        return NULL;
    if (e->n == CREST_INCLUDE_MAX) {
        crest__rest_bad_param(ctx->res, "include",
                              crest__arena_printf(req->arena, "include: more than %d relations", CREST_INCLUDE_MAX));
        return NULL;
    }
    crest__embed *n = &e->node[e->n++];
    *n = (crest__embed){.rel = r, .mod = (crest__module *)m2, .scope = scope, .parent = parent, .path = path};
    return n;
}

/* fields[<path>]=a,b: the fields of the embedded rows of an included path
 * (e NULL: nothing included). 0, or -1 answered (400 naming the parameter). */
static int embed_masks(crest_rest_ctx *ctx, crest__embeds *e)
{
    crest_req *req = ctx->req;
    for (unsigned k = 0; k < req->nquery; k++) {
        const char *key = req->query[k].key;
        size_t n = strlen(key);
        if (strncmp(key, "fields[", 7) || key[n - 1] != ']')
            continue;
        const char *path = crest__arena_strndup(req->arena, key + 7, n - 8);
        crest__embed *node = NULL;
        for (unsigned i = 0; e && path && i < e->n && !node; i++)
            if (!strcmp(e->node[i].path, path))
                node = &e->node[i];
        if (!node)
            return crest__rest_bad_param(
                ctx->res, key, crest__arena_printf(req->arena, "%s: '%s' is not an included relation", key, path));
        if (node->mask)
            return crest__rest_bad_param(ctx->res, key,
                                         crest__arena_printf(req->arena, "%s: is given more than once", key));
        crest__field_mask *mask;
        if (crest__rest_field_mask(req, ctx->res, node->mod, key, req->query[k].value, &mask))
            return -1;
        node->mask = mask;
    }
    return 0;
}

int crest__rest_embeds_parse(crest_rest_ctx *ctx, crest__module *mod, crest__embeds **out)
{
    crest_req *req = ctx->req;
    *out = NULL;
    const char *text = crest_req_str(req, "include");
    if (!text)
        return embed_masks(ctx, NULL);
    if (!*text)
        return crest__rest_bad_param(ctx->res, "include", "include: an empty relation name");
    crest__embeds *e = crest__arena_calloc(req->arena, 1, sizeof *e);
    if (!e)
        return crest__res_fail(ctx->res, CREST__E_OUT_OF_MEMORY, NULL);
    e->root = mod;
    for (const char *p = text, *end = text; *end; p = end + 1) {
        end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *path = crest__arena_strndup(req->arena, p, (size_t)(end - p));
        if (!path)
            return crest__res_fail(ctx->res, CREST__E_OUT_OF_MEMORY, NULL);
        if (!*path)
            return crest__rest_bad_param(ctx->res, "include", "include: an empty relation name");
        const crest__model *m = mod->m;
        int parent = -1;
        unsigned depth = 0;
        for (const char *s = path, *dot; *s; s = *dot ? dot + 1 : dot) {
            dot = strchr(s, '.');
            if (!dot)
                dot = s + strlen(s);
            if (++depth > CREST_INCLUDE_MAX_DEPTH)
                return crest__rest_bad_param(
                    ctx->res, "include",
                    crest__arena_printf(req->arena, "include: '%s' is deeper than %d relations", path,
                                        CREST_INCLUDE_MAX_DEPTH));
            const char *seg = crest__arena_strndup(req->arena, s, (size_t)(dot - s));
            const crest__rel *r = seg ? crest__model_rel(m, seg) : NULL;
            size_t plen = (size_t)(dot - path);
            if (!r || !crest__rest_include_allowed(mod, path, plen))
                return crest__rest_bad_param(
                    ctx->res, "include",
                    crest__arena_printf(req->arena, "include: '%.*s' is not a relation you may read", (int)plen, path));
            crest__embed *n = node_for(e, ctx, parent, r, crest__arena_strndup(req->arena, path, plen));
            if (!n)
                return -1;
            parent = (int)(n - e->node);
            m = r->target;
        }
    }
    if (embed_masks(ctx, e))
        return -1;
    *out = e;
    return 0;
}

/* The paths of walk(): each relation of m whose rows a module serves (its
 * read for belongs_to, index for the others), to the depth limit. */
static void walk_paths(const crest_app *app, const crest__module *root, const crest__model *m, char *buf, size_t len,
                       unsigned depth, void (*each)(void *ud, const char *path), void *ud)
{
    for (unsigned i = 0; i < m->nrels; i++) {
        const crest__rel *r = &m->rels[i];
        const crest__module *t = crest__rest_module_of(app, r->target);
        size_t n = strlen(r->name);
        if (!t || !(t->methods & rel_method(r)) || len + n + 2 > 256)
            continue;
        if (len)
            buf[len] = '.';
        memcpy(buf + len + (len ? 1 : 0), r->name, n + 1);
        size_t l2 = len + (len ? 1 : 0) + n;
        if (!crest__rest_include_allowed(root, buf, l2))
            continue;
        each(ud, buf);
        if (depth + 1 < CREST_INCLUDE_MAX_DEPTH)
            walk_paths(app, root, r->target, buf, l2, depth + 1, each, ud);
        buf[len] = 0;
    }
}

void crest__rest_include_paths(const crest__module *mod, void (*each)(void *ud, const char *path), void *ud)
{
    char buf[256] = "";
    walk_paths(mod->app, mod, mod->m, buf, 0, 0, each, ud);
}

/* ---- reading ---- */

/* The column of the parent rows that holds the key of node n's rows. */
static unsigned parent_keycol(const crest__embed *n)
{
    return n->rel->kind == CREST__REL_BELONGS_TO ? n->rel->fk->idx : 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The parent rows of node i: the answer's, or its parent node's. */
static const crest__rows *parents_of(const crest__embeds *e, const crest__embed *n)
{
    return n->parent < 0 ? e->root_rows : e->node[n->parent].rows;
}

static void fetch_next(crest__embeds *e);

/* Groups node n's rows (ordered by their key) by key. 0 or -1 (no memory). */
static int group_rows(crest_req *req, crest__embed *n)
{
    const crest__rows *r = n->rows;
    n->ngroups = 0;
    if (!r->nrows)
        return 0;
    n->gkey = crest__arena_alloc(req->arena, r->nrows * sizeof *n->gkey);
    n->gfirst = crest__arena_alloc(req->arena, r->nrows * sizeof *n->gfirst);
    n->gcount = crest__arena_alloc(req->arena, r->nrows * sizeof *n->gcount);
    if (!n->gkey || !n->gfirst || !n->gcount)
        return -1;
    for (size_t i = 0; i < r->nrows; i++) {
        const crest__cell *c = crest__rows_cell(r, i, n->keycol);
        if (c->k != CREST__V_INT)
            continue;
        if (n->ngroups && n->gkey[n->ngroups - 1] == c->v.i) {
            n->gcount[n->ngroups - 1]++;
            continue;
        }
        n->gkey[n->ngroups] = c->v.i;
        n->gfirst[n->ngroups] = i;
        n->gcount[n->ngroups++] = 1;
    }
    return 0;
}

static void fetched(void *p, crest__rows *rows)
{
    crest__embeds *e = p;
    crest__embed *n = &e->node[e->next];
    n->rows = rows;
    if (group_rows(e->ctx.req, n)) {
        crest__res_finish(e->ctx.res, crest__res_fail(e->ctx.res, CREST__E_OUT_OF_MEMORY, NULL));
        return;
    }
    e->next++;
    fetch_next(e);
}

/* Reads the next node's rows, or, all read, hands the answer on. */
static void fetch_next(crest__embeds *e)
{
    crest_req *req = e->ctx.req;
    crest_res *res = e->ctx.res;
    for (; e->next < e->n; e->next++) {
        crest__embed *n = &e->node[e->next];
        const crest__rows *pr = parents_of(e, n);
        unsigned col = parent_keycol(n);
        int64_t *keys = pr && pr->nrows ? crest__arena_alloc(req->arena, pr->nrows * sizeof *keys) : NULL;
        if (pr && pr->nrows && !keys) {
            crest__res_finish(res, crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL));
            return;
        }
        unsigned nk = 0;
        for (size_t i = 0; keys && i < pr->nrows; i++) {
            const crest__cell *c = crest__rows_cell(pr, i, col);
            if (c->k == CREST__V_INT)
                keys[nk++] = c->v.i;
        }
        if (nk > 1) /* (none: keys may be NULL, which qsort may not be given) */
            qsort(keys, nk, sizeof *keys, cmp_i64);
        unsigned nd = 0;
        for (unsigned i = 0; i < nk; i++)
            if (!nd || keys[nd - 1] != keys[i])
                keys[nd++] = keys[i];
        n->keycol = n->rel->kind == CREST__REL_BELONGS_TO  ? 0
                    : n->rel->kind == CREST__REL_HAS_MANY ? n->rel->fk->idx
                                                           : n->mod->m->nfields + n->mod->ncomp;
        if (!nd) {
            n->rows = NULL;
            n->ngroups = 0;
            continue;
        }
        crest__val *kv = crest__arena_alloc(req->arena, nd * sizeof *kv);
        if (!kv) {
            crest__res_finish(res, crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL));
            return;
        }
        for (unsigned i = 0; i < nd; i++)
            kv[i] = (crest__val){.k = CREST__V_INT, .i = keys[i]};
        /* Each relation reads at most CREST_EMBED_MAX_ROWS rows: with many
         * parents, fewer per parent (has_more tells). */
        n->cap = n->rel->embed_max;
        if (n->rel->kind != CREST__REL_BELONGS_TO && (int64_t)nd * (n->cap + 1) > CREST_EMBED_MAX_ROWS)
            n->cap = CREST_EMBED_MAX_ROWS / nd > 1 ? CREST_EMBED_MAX_ROWS / nd - 1 : 1;
        crest__plan *order = crest__arena_alloc(req->arena, sizeof *order);
        if (!order) {
            crest__res_finish(res, crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL));
            return;
        }
        crest__rest_full_sort(n->mod, order);
        crest__embed_plan ep = {.proj = crest__rest_proj(n->mod), .rel = n->rel, .keys = kv, .nkeys = nd,
                                .scope = n->scope, .order = order, .per_parent = n->cap + 1};
        crest__sql q;
        crest__sql_init(&q, req->arena, crest__app_dialect(req->app));
        crest__compile_embed(&q, &ep);
        unsigned flags = CREST__QF_READ | (e->next + 1 == e->n ? CREST__QF_LAST : 0);
        int rc = crest__rest_query_then(req, res, &q, flags, 0, fetched, e);
        crest__sql_dispose(&q);
        if (rc < 0)
            crest__res_finish(res, -1);
        return; /* fetched() goes on (maybe already has) */
    }
    e->done(e->op, e->root_rows);
}

void crest__rest_embeds_fetch(crest__embeds *e, const crest_rest_ctx *ctx, crest__rows *rows, crest__rest_next done,
                              void *op)
{
    e->ctx = *ctx;
    e->root_rows = rows;
    e->done = done;
    e->op = op;
    e->next = 0;
    fetch_next(e);
}

/* ---- writing ---- */

/* The group of node n's rows for key k, or -1. */
static long find_group(const crest__embed *n, int64_t k)
{
    size_t lo = 0, hi = n->ngroups;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (n->gkey[mid] < k)
            lo = mid + 1;
        else if (n->gkey[mid] > k)
            hi = mid;
        else
            return (long)mid;
    }
    return -1;
}

static int write_item(const crest__embeds *e, int level, const crest_rest_ctx *ctx, const crest__module *mod,
                      const crest__rows *r, size_t i, crest_json *w);

/* The embeds of row i of r (the rows of `level`: -1 the answer's own) as
 * members of its object. */
static int write_embeds(const crest__embeds *e, int level, const crest__rows *r, size_t i, crest_json *w)
{
    for (unsigned k = 0; k < e->n; k++) {
        const crest__embed *n = &e->node[k];
        if (n->parent != level)
            continue;
        crest_rest_ctx c2;
        crest__rest_ctx_init(&c2, e->ctx.req, e->ctx.res, n->mod);
        const crest__cell *kc = crest__rows_cell(r, i, parent_keycol(n));
        long g = kc->k == CREST__V_INT && n->rows ? find_group(n, kc->v.i) : -1;
        crest_json_key(w, n->rel->name);
        if (n->rel->kind == CREST__REL_BELONGS_TO) {
            int rc = g < 0 ? (crest_json_null(w), 0) : write_item(e, (int)k, &c2, n->mod, n->rows, n->gfirst[g], w);
            if (rc)
                return rc;
            continue;
        }
        size_t count = g < 0 ? 0 : n->gcount[g];
        crest_json_array_begin(w);
        for (size_t j = 0; j < count && (int64_t)j < n->cap; j++) {
            int rc = write_item(e, (int)k, &c2, n->mod, n->rows, n->gfirst[g] + j, w);
            if (rc)
                return rc;
        }
        crest_json_array_end(w);
        char key[80];
        snprintf(key, sizeof key, "%s_has_more", n->rel->name);
        crest_json_key(w, key);
        crest_json_bool(w, (int64_t)count > n->cap);
    }
    return 0;
}

static int write_item(const crest__embeds *e, int level, const crest_rest_ctx *ctx, const crest__module *mod,
                      const crest__rows *r, size_t i, crest_json *w)
{
    crest_json_object_begin(w);
    const crest__field_mask *mask = level < 0 ? crest__rest_route_mask(ctx->req, mod) : e->node[level].mask;
    int rc = crest__rest_write_members(ctx, mod, r, i, mask, w);
    if (!rc && e)
        rc = write_embeds(e, level, r, i, w);
    crest_json_object_end(w);
    return rc;
}

int crest__rest_write_item(const crest_rest_ctx *ctx, const crest__module *mod, const crest__rows *r, size_t i,
                           crest_json *w, const crest__embeds *e)
{
    return write_item(e, -1, ctx, mod, r, i, w);
}
