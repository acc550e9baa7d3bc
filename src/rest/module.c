/* module.c — REST modules: a model's routes (index, read, create, update,
 * delete, sample, group, stats, eval) checked and added as endpoints of the
 * app. Module options follow Emmett-REST (envelopes, allow-lists,
 * serializer, parser, hooks, row scope, pipeline). */
#include <stdio.h>
#include <stdlib.h>

#include "module_internal.h"

/* ---- helpers ---- */

static const char *const method_names[] = {"index", "read", "create", "update", "delete",
                                           "sample", "group", "stats", "eval"};

static void allow_free(crest__allow *a) { free(a->ok); }

/* Each path of allowed_includes names relations, to a depth of 3. */
static int includes_check(const crest__module *mod, crest_error *err)
{
    for (const char *const *p = mod->def->allowed_includes; p && *p; p++) {
        const crest__model *m = mod->m;
        unsigned depth = 0;
        for (const char *s = *p, *dot; m; s = dot + 1) {
            dot = strchr(s, '.');
            size_t n = dot ? (size_t)(dot - s) : strlen(s);
            const crest__rel *r = NULL;
            for (unsigned i = 0; i < m->nrels && !r; i++)
                if (strlen(m->rels[i].name) == n && !strncmp(m->rels[i].name, s, n))
                    r = &m->rels[i];
            if (!r || ++depth > CREST_INCLUDE_MAX_DEPTH)
                return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                        "module %s: allowed_includes: '%s' is not a path of relations of %s (at most "
                                        "%d deep)", mod->name, *p, mod->m->name, CREST_INCLUDE_MAX_DEPTH);
            m = dot ? r->target : NULL;
        }
    }
    return 0;
}

/* A dotted name of an allow-list (owner.name; computers for where's
 * $exists): it must name relations and a readable field of the last one's
 * model; sorts and groups take belongs_to relations only. */
static int allow_path(const crest__module *mod, const char *name, const char *what, bool numeric_only,
                      crest_error *err)
{
    crest__path p;
    int r = crest__path_resolve(mod->m, name, &p);
    bool query = !strcmp(what, "query_allowed_fields");
    if (r == -2)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: %s: '%s' crosses more than %d relations",
                                mod->name, what, name, CREST_REL_MAX_DEPTH);
    if (r || numeric_only || (!p.field && !query))
        return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                "module %s: %s: '%s' names no field of a relation of model %s", mod->name, what,
                                name, mod->m->name);
    if (p.field && (!crest__field_readable(p.field) || p.field->f.type == CREST_F_JSON))
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: %s: field '%s' is not readable",
                                mod->name, what, name);
    if (!query && crest__path_multi(&p))
        return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                "module %s: %s: '%s': only belongs_to relations sort and group", mod->name, what,
                                name);
    return 0;
}

/* Fills an allow-list from names (NULL: every served field and id, and
 * every dotted name the user may read). */
static int allow_init(crest__allow *a, const crest__module *mod, const char *const *names, const char *what,
                      bool numeric_only, crest_error *err)
{
    const crest__model *m = mod->m;
    a->ok = calloc(m->nfields, 1);
    if (!a->ok)
        return CREST_ENOMEM;
    a->paths = names;
    a->any_path = !names && !numeric_only;
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
        if (!f && (strchr(*n, '.') || crest__model_rel(m, *n))) {
            int rc = allow_path(mod, *n, what, numeric_only, err);
            if (rc)
                return rc;
            continue;
        }
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
    free(mod->read_sql);
    free(mod->comp);
    json_decref(mod->scope);
    crest__arena_dispose(&mod->scope_arena);
    free(mod->where_desc);
    free(mod->sort_desc);
    free(mod->stats_desc);
    free(mod->fields_desc);
    free(mod->tag_desc);
    free(mod->name);
    free(mod->base);
    free(mod->prefix);
    free(mod->id_path);
    free(mod->id_param);
    for (int i = 0; i < RT_COUNT; i++)
        free(mod->routes[i].path);
    for (unsigned i = 0; i < mod->nnested; i++)
        free(mod->nested[i].path);
    free(mod->nested);
    free(mod);
}

static const char *const count_values[] = {"exact", "estimated", "none", NULL};

#define K(kind) (1u << (kind))
#define LIST_ROUTES (K(RT_INDEX) | K(RT_SAMPLE))
#define ROW_ROUTES (LIST_ROUTES | K(RT_READ) | K(RT_CREATE) | K(RT_UPDATE) | K(RT_PATCH))

/* The query parameters of the routes, in the order the OpenAPI document
 * lists them; each with the routes (K(RT_*) bits) that take it. Declaring
 * a new parameter is one line here: the spec check types it and, on the
 * list routes (strict_query), refuses every parameter not declared. */
static const struct {
    crest_param p;
    unsigned kinds;
} route_params[] = {
    {{"page", CREST_IN_QUERY, CREST_T_INT, .has_min = true, .min = 1, .description = "page number, from 1"},
     K(RT_INDEX) | K(RT_GROUP)},
    {{"page_size", CREST_IN_QUERY, CREST_T_INT, .has_min = true, .min = 1,
      .description = "rows per page (above the maximum: the maximum)"},
     K(RT_INDEX) | K(RT_SAMPLE) | K(RT_GROUP)},
    {{"limit", CREST_IN_QUERY, CREST_T_INT, .has_min = true, .min = 1,
      .description = "at most this many rows (above the page size maximum: the maximum); instead of page and "
                     "page_size"},
     LIST_ROUTES},
    {{"offset", CREST_IN_QUERY, CREST_T_INT, .has_min = true, .min = 0,
      .description = "rows to skip, from 0 (alone: limit is the default page size); instead of page and page_size"},
     K(RT_INDEX)},
    {{"sort_by", CREST_IN_QUERY, CREST_T_STRING, .description = "fields, comma-separated; -name sorts descending"},
     K(RT_INDEX)},
    {{"sort_by", CREST_IN_QUERY, CREST_T_STRING, .description = "count, -count, value or -value"}, K(RT_GROUP)},
    {{"fields", CREST_IN_QUERY, CREST_T_STRING, .required = true, .description = "fields, comma-separated"},
     K(RT_STATS)},
    {{"q", CREST_IN_QUERY, CREST_T_STRING,
      .description = "{\"functions\": [{\"name\": \"sum\", \"field\": \"f\"}]}"},
     K(RT_EVAL)},
    {{"where", CREST_IN_QUERY, CREST_T_STRING, .description = "a JSON query"},
     LIST_ROUTES | K(RT_GROUP) | K(RT_STATS) | K(RT_EVAL) | K(RT_CHANGES)},
    {{"cursor", CREST_IN_QUERY, CREST_T_STRING,
      .description = "continue after the page that gave this meta.next_cursor (the same where and sort_by; "
                     "not with page or offset)"},
     K(RT_INDEX)},
    {{"last_event_id", CREST_IN_QUERY, CREST_T_STRING,
      .description = "resume after this event (as the Last-Event-ID header does, for clients that cannot send it)"},
     K(RT_CHANGES)},
    {{"Last-Event-ID", CREST_IN_HEADER, CREST_T_STRING,
      .description = "resume after this event: the id of the last event received (EventSource sends it when it "
                     "reconnects); without it the feed starts now"},
     K(RT_CHANGES)},
    {{"count", CREST_IN_QUERY, CREST_T_ENUM, .values = count_values,
      .description = "exact: total_objects in meta; estimated: exact up to the page_size maximum, past it the "
                     "database's estimate (PostgreSQL's planner; SQLite: exact); none: no count"},
     K(RT_INDEX)},
    {{"fields", CREST_IN_QUERY, CREST_T_STRING,
      .description = "only these fields in the answer, comma-separated (written in the serializer's order)"},
     ROW_ROUTES | K(RT_CHANGES)},
    /* Conditional requests (etag.c). */
    {{"If-None-Match", CREST_IN_HEADER, CREST_T_STRING,
      .description = "ETags of answers the client holds (\"*\", or a list; weak comparison): when one is the "
                     "current answer's, 304 without a body"},
     K(RT_INDEX) | K(RT_READ) | K(RT_GROUP) | K(RT_STATS) | K(RT_EVAL)},
    {{"If-Match", CREST_IN_HEADER, CREST_T_STRING,
      .description = "the row's ETag as the client last read it (\"*\": any version; a list: any of them; strong "
                     "comparison of the row version): when the row has changed since, 412 and nothing is written"},
     K(RT_UPDATE) | K(RT_PATCH) | K(RT_DELETE)},
    {{"If-None-Match", CREST_IN_HEADER, CREST_T_STRING,
      .description = "ETags of versions the row must not be at (weak comparison; \"*\": the row must not exist): "
                     "when the row is at one of them, 412 and nothing is written"},
     K(RT_UPDATE) | K(RT_PATCH) | K(RT_DELETE)},
};

/* Fills r->params: the path parameter, then the query parameters of its kind. */
static unsigned fill_params(route *r, const crest__module *mod)
{
    unsigned np = 0;
    if (r->kind == RT_GROUP)
        r->params[np++] = (crest_param){"field", CREST_IN_PATH, CREST_T_STRING, .required = true,
                                        .description = "the field to count rows by"};
    else if (r->kind != RT_INDEX && r->kind != RT_CREATE && r->kind != RT_SAMPLE && r->kind != RT_STATS &&
             r->kind != RT_EVAL && r->kind != RT_CHANGES)
        r->params[np++] = (crest_param){mod->id_param, CREST_IN_PATH, CREST_T_STRING, .required = true,
                                        .description = "the row's id (an integer)"};
    for (size_t i = 0; i < CREST_ARRAY_LEN(route_params); i++)
        if (route_params[i].kinds & K(r->kind))
            r->params[np++] = route_params[i].p;
    /* Answers that are rows embed related rows (module_embed.c). */
    if (mod->m->nrels && (K(r->kind) & ROW_ROUTES)) {
        r->params[np++] = (crest_param){"include", CREST_IN_QUERY, CREST_T_STRING,
                                        .description = "related rows to embed, comma-separated relation paths "
                                                       "(owner, computers.vendor)"};
        r->params[np++] = (crest_param){"fields[*]", CREST_IN_QUERY, CREST_T_STRING,
                                        .description = "fields[<included path>]=a,b: only these fields of the "
                                                       "embedded rows"};
    }
    /* Idempotent creates (module_idem.c checks the value). */
    if (r->kind == RT_CREATE && mod->def->idempotency)
        r->params[np++] = (crest_param){
            "Idempotency-Key", CREST_IN_HEADER, CREST_T_STRING, .required = mod->def->idempotency_required,
            .description = "makes retries of this create safe: 1 to 255 printable ASCII characters, unique per "
                           "request (a UUID); a retry with the same key and body gets the first answer again "
                           "(Idempotent-Replayed: true) without creating rows"};
    _Static_assert(CREST_ARRAY_LEN(route_params) + 5 <= CREST_ARRAY_LEN(((route *)0)->params),
                   "route.params holds every parameter, include, fields[*], a path parameter, Idempotency-Key and "
                   "the terminator");
    r->params[np] = (crest_param){0};
    return np;
}

/* The module's custom error body (error_fn) in place of the problem document. */
static void on_error(crest_req *req, crest_res *res, void *ud)
{
    route *r = ud;
    crest__module *mod = r->mod;
    crest_rest_ctx ctx;
    crest__rest_ctx_init(&ctx, req, res, mod);
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
        {RT_INDEX, CREST_R_INDEX, CREST_GET, "", crest__rest_op_index, "List"},
        {RT_CREATE, CREST_R_CREATE, CREST_POST, "", crest__rest_op_create, "Create"},
        {RT_SAMPLE, CREST_R_SAMPLE, CREST_GET, "/sample", crest__rest_op_sample, "Random sample"},
        {RT_GROUP, CREST_R_GROUP, CREST_GET, "/group/{field}", crest__rest_op_group, "Count by value"},
        {RT_STATS, CREST_R_STATS, CREST_GET, "/stats", crest__rest_op_stats, "Min, max and average"},
        {RT_EVAL, CREST_R_EVAL, CREST_GET, "/eval", crest__rest_op_eval, "Evaluate functions"},
        {RT_CHANGES, 0, CREST_GET, "/changes", crest__rest_op_changes, "Follow changes (Server-Sent Events)"},
        {RT_READ, CREST_R_READ, CREST_GET, NULL, crest__rest_op_read, "Read one"},
        {RT_UPDATE, CREST_R_UPDATE, CREST_PUT, NULL, crest__rest_op_update, "Update"},
        {RT_PATCH, CREST_R_UPDATE, CREST_PATCH, NULL, crest__rest_op_update, "Update"},
        {RT_DELETE, CREST_R_DELETE, CREST_DELETE, NULL, crest__rest_op_delete, "Delete"},
    };
    for (size_t t = 0; t < CREST_ARRAY_LEN(table); t++) {
        if (table[t].bit ? !(mod->methods & table[t].bit) : !mod->def->changes)
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
        unsigned np = fill_params(r, mod);
        r->spec.method = table[t].method;
        r->spec.path = r->path;
        r->spec.params = np ? r->params : NULL;
        r->spec.json_body = r->kind == RT_CREATE || r->kind == RT_UPDATE || r->kind == RT_PATCH;
        r->spec.body_required = r->spec.json_body;
        r->spec.summary = table[t].summary;
        r->spec.tag = mod->name;
        r->spec.status = r->kind == RT_CREATE ? 201 : r->kind == RT_DELETE ? 204 : 200;
        r->spec.handler = table[t].h;
        /* (lists: a page of rows, or of groups) */
        r->spec.strict_query = (K(r->kind) & (LIST_ROUTES | K(RT_GROUP) | K(RT_CHANGES))) != 0;
        for (unsigned b = 0; b < 9; b++)
            if (table[t].bit == 1u << b)
                r->spec.permission = mod->def->permissions[b];
        if (r->kind == RT_CHANGES) /* its own, or index's */
            r->spec.permission =
                mod->def->changes_permission ? mod->def->changes_permission : mod->def->permissions[0];
        r->spec.rate_limit = mod->def->rate_limit; /* the group: the tag, i.e. the module */
        /* Writes commit with an fsync (durability: full): they run on the
         * thread pool so the event loop keeps serving reads meanwhile. */
        r->spec.blocking = r->kind == RT_CREATE || r->kind == RT_UPDATE || r->kind == RT_PATCH || r->kind == RT_DELETE;
        if (r->spec.blocking) {
            r->inner = table[t].h;
            r->spec.handler = crest__rest_write_route;
        }
        crest_error e2 = {0};
        int rc = crest_app_add_endpoint(app, &r->spec, r, &e2);
        if (rc)
            return crest__error_set(err, rc, NULL, 0, "module %s: %s %s: %s", mod->name,
                                    crest_method_name(table[t].method), r->path, e2.msg);
        app->eps[app->neps - 1]->bounded_writes = r->spec.blocking;
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
    mod->where_desc =
        names_of(mod, &mod->query,
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

/* The OpenAPI description of fields= (sparse fieldsets): the served fields
 * and the computed ones, in the serializer's order. */
static int describe_fields(crest__module *mod)
{
    crest__buf b;
    crest__buf_init(&b, 0);
    crest__buf_appends(&b, "Only these fields in the answer, separated by commas (written in this order whatever "
                           "the order asked). Fields: ");
    unsigned n = 0;
    for (unsigned i = 0; i < mod->m->nfields; i++)
        if (mod->served[i])
            crest__buf_appendf(&b, "%s%s", n++ ? ", " : "", mod->m->fields[i].f.name);
    for (unsigned j = 0; j < mod->ncomp; j++)
        crest__buf_appendf(&b, "%s%s", n++ ? ", " : "", mod->comp[j]->name);
    crest__buf_appends(&b, n ? "." : "(none).");
    if (crest__buf_append(&b, "", 1)) {
        crest__buf_dispose(&b);
        return CREST_ENOMEM;
    }
    mod->fields_desc = b.ptr;
    return 0;
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
    crest__app_made_in_c(app);
    if (!def || !def->name || !def->model)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "a module needs a name and a model");
    crest__model *m = crest__app_model(app, def->model);
    if (!m)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: model '%s' is not defined", def->name,
                                def->model);
    int lrc = crest__app_link_models(app, err); /* (the models a module's relations name come first) */
    if (lrc)
        return lrc;
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
    if ((rc = includes_check(mod, err)) ||
        (rc = allow_init(&mod->sorts, mod, def->allowed_sorts, "allowed_sorts", false, err)) ||
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
    for (const crest_computed *c = def->computed; c && c->name; c++) {
        if (!c->sql == !c->fn || crest__model_field(m, c->name)) {
            rc = crest__error_set(err, CREST_EINVAL, NULL, 0,
                                  "module %s: computed field %s: give sql or fn (not both), and a name that is not a "
                                  "field",
                                  def->name, c->name);
            goto fail;
        }
        if ((unsigned)c->type > CREST_F_UUID) {
            rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: computed field %s: unknown type %d",
                                  def->name, c->name, (int)c->type);
            goto fail;
        }
        for (unsigned j = 0; j < mod->ncomp; j++)
            if (!strcmp(mod->comp[j]->name, c->name)) {
                rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "module %s: computed field %s is defined twice",
                                      def->name, c->name);
                goto fail;
            }
        mod->comp[mod->ncomp++] = c;
    }
    if ((rc = describe_fields(mod)))
        goto fail;
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
        json_t *probe = mod->scope ? crest__rest_with_user(mod->scope, NULL) : NULL;
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
    /* (a failure leaves the module in the app, which is unusable then, as after a failed route) */
    return crest__rest_nest(app, mod, err);
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

/* Whether the store can prepare sql; *msg (malloc'd) says why not. */
static bool prepares(crest_app *app, crest__conn *c, const char *sql, char **msg)
{
    crest__arena a;
    crest__arena_init(&a, 1024, 0);
    crest__stmt_info info;
    bool ok = app->store->vt->describe(c, sql, &a, &info, msg) == 0;
    crest__arena_dispose(&a);
    return ok;
}

int crest__module_check(crest__module *mod, crest__conn *c, crest_error *err)
{
    if (!mod->ncomp)
        return 0;
    crest_app *app = mod->app;
    char *msg = NULL;
    crest__arena a;
    crest__arena_init(&a, 1024, 0);
    crest__sql q;
    crest__sql_init(&q, &a, crest__app_dialect(app));
    crest__proj all = crest__rest_proj(mod);
    crest__compile_select(&q, &all);
    bool ok = !q.err && crest__buf_append(&q.text, "", 1) == 0 && prepares(app, c, q.text.ptr, &msg);
    crest__sql_dispose(&q);
    if (ok) {
        crest__arena_dispose(&a);
        return 0;
    }
    /* Name the field that does not work, and its line in the app file. */
    char key[300];
    snprintf(key, sizeof key, "modules.%s", mod->name);
    crest__error_set(err, CREST_ECONFIG, NULL, 0, "module %s: a computed field does not work: %s", mod->name,
                     msg ? msg : "out of memory");
    free(msg);
    for (const crest_computed *cf = mod->def->computed; cf && cf->name; cf++) {
        if (!cf->sql)
            continue;
        crest__proj one = {.m = mod->m, .comp = &cf, .ncomp = 1, .comp_only = true};
        crest__sql_init(&q, &a, crest__app_dialect(app));
        crest__compile_select(&q, &one);
        msg = NULL;
        ok = !q.err && crest__buf_append(&q.text, "", 1) == 0 && prepares(app, c, q.text.ptr, &msg);
        crest__sql_dispose(&q);
        if (!ok) {
            crest__error_set(err, CREST_ECONFIG, NULL, 0, "module %s: computed field %s does not work: %s",
                             mod->name, cf->name, msg ? msg : "out of memory");
            free(msg);
            snprintf(key, sizeof key, "modules.%s.serializer.computed.%s", mod->name, cf->name);
            break;
        }
        free(msg);
    }
    crest__arena_dispose(&a);
    return crest__app_locate(mod->app, err, key, CREST_ECONFIG);
}

int crest__rest_prepare(crest_app *app, crest__conn *c, crest_error *err)
{
    int lrc = crest__app_link_models(app, err);
    if (lrc)
        return lrc;
    for (unsigned i = 0; i < app->nmodels; i++) {
        int row = -2; /* set by a seed error: its row, or -1 for the seed as a whole */
        int rc = crest__model_sync(app->models[i], app->store, c, app->source_name, err, &row);
        if (rc && err) {
            /* The model's line in the app file, or its seed's, or its seed row's. */
            const char *name = app->models[i]->name;
            char key[300];
            if (row >= 0)
                snprintf(key, sizeof key, "models.%s.seed[%d]", name, row);
            else
                snprintf(key, sizeof key, row == -1 ? "models.%s.seed" : "models.%s", name);
            crest__app_locate(app, err, key, rc);
            if (!err->line)
                snprintf(key, sizeof key, "models.%s", name);
            return crest__app_locate(app, err, key, rc);
        }
        if (rc)
            return rc;
    }
    for (unsigned i = 0; i < app->nmodels; i++) {
        int rc = crest__model_sync_refs(app->models[i], app->store, c, app->source_name, err);
        if (rc) {
            char key[300];
            snprintf(key, sizeof key, "models.%s", app->models[i]->name);
            return crest__app_locate(app, err, key, rc);
        }
    }
    int irc = crest__idem_prepare(app, c, err);
    if (irc)
        return irc;
    int crc = crest__changes_sync(app, c, err);
    if (crc)
        return crc;
    for (unsigned i = 0; i < app->nmodules; i++) {
        int rc = crest__module_check(app->modules[i], c, err);
        if (rc)
            return rc;
        crest__module *mod = app->modules[i];
        crest__arena a;
        crest__arena_init(&a, 1024, 0);
        crest__sql q;
        crest__sql_init(&q, &a, crest__app_dialect(app));
        crest__rest_select_by_id(&q, mod, 0, NULL); /* (the same text as per request) */
        free(mod->read_sql);
        mod->read_sql = NULL;
        if (!q.err && q.nbinds == 1 && !q.lists && q.binds[0].k == CREST__V_INT)
            mod->read_sql = strdup(q.text.ptr); /* (no memory: built per request, as before) */
        mod->read_dialect = q.d;
        crest__sql_dispose(&q);
        crest__arena_dispose(&a);
    }
    return app->nmodules ? crest__rest_cursor_secret(app, c, err) : 0;
}

const char *crest__rest_method_name(unsigned bit)
{
    for (unsigned i = 0; i < CREST_ARRAY_LEN(method_names); i++)
        if (bit == 1u << i)
            return method_names[i];
    return NULL;
}
