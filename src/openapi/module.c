/* module.c — the REST modules' part of the OpenAPI document: schemas of
 * models, operations, parameter schemas and descriptions, read from the
 * modules' structures (src/rest/module_internal.h), and the schema of a
 * field, which SQL endpoints' bodies share; openapi.c writes the rest of
 * the document. */
#include <stdio.h>
#include <stdlib.h>

#include "../json/json_internal.h"
#include "../rest/module_internal.h"
#include "openapi.h"

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

void crest__oa_field(crest__oa *o, const crest__mfield *f, bool nullable, bool with_default)
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
    case CREST_F_REF: /* (a ref field is an int: see crest__mfield.ref) */
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
    } else if (f->ref && f->ref->target) {
        char b[200];
        snprintf(b, sizeof b, "the id of a %s (the relation %s: ?include=%s embeds it)", f->ref->target->name,
                 f->ref->name, f->ref->name);
        crest_json_key(w, "description");
        crest_json_str(w, b);
    }
    crest_json_object_end(w);
}

/* A served field may be null unless it is id or required. */
static bool served_nullable(const crest__mfield *f) { return f->idx != 0 && !f->f.required; }

/* A schema value: the read schema of ref's module, or null (nullable). */
static void ref_or_null(crest__oa *o, const char *ref, bool nullable)
{
    crest_json *w = o->w;
    if (!nullable) {
        crest__oa_ref(o, ref);
        return;
    }
    crest_json_object_begin(w);
    crest_json_key(w, o->v30 ? "allOf" : "anyOf");
    crest_json_array_begin(w);
    crest__oa_ref(o, ref);
    if (!o->v30) {
        crest_json_object_begin(w);
        crest__oa_type(o, "null", false);
        crest_json_object_end(w);
    }
    crest_json_array_end(w);
    if (o->v30) { /* (3.0: nullable needs its type beside it) */
        crest__oa_type(o, "object", true);
    }
    crest_json_object_end(w);
}

/* The read shape's embedded rows (?include=): each relation whose model
 * has a module, as that module's read schema (never required: present when
 * included). */
static void embedded_properties(crest__oa *o, const crest__module *mod)
{
    crest_json *w = o->w;
    const crest__model *m = mod->m;
    for (unsigned i = 0; i < m->nrels; i++) {
        const crest__rel *r = &m->rels[i];
        const crest__module *t = crest__rest_module_of(mod->app, r->target);
        if (!t)
            continue;
        char base[160], desc[300];
        schema_base(mod->app, t, base, sizeof base);
        crest_json_key(w, r->name);
        if (r->kind == CREST__REL_BELONGS_TO) {
            ref_or_null(o, base, true);
            continue;
        }
        crest_json_object_begin(w);
        crest__oa_type(o, "array", false);
        crest_json_key(w, "items");
        crest__oa_ref(o, base);
        crest_json_key(w, "maxItems");
        crest_json_int(w, r->embed_max);
        crest_json_key(w, "description");
        snprintf(desc, sizeof desc, "with ?include=%s: the %s rows (at most %u per row)", r->name, r->target->name,
                 r->embed_max);
        crest_json_str(w, desc);
        crest_json_object_end(w);
        snprintf(desc, sizeof desc, "%s_has_more", r->name);
        crest_json_key(w, desc);
        crest_json_object_begin(w);
        crest__oa_type(o, "boolean", false);
        crest_json_key(w, "description");
        crest_json_str(w, "with ?include: whether there are more related rows than embedded");
        crest_json_object_end(w);
    }
}

/* skip: a field left out (a nested create's foreign key, set by the path), or NULL. */
static void obj_schema(crest__oa *o, const crest__module *mod, int shape /* 0 read, 1 create, 2 update */,
                       const crest__mfield *skip)
{
    crest_json *w = o->w;
    const crest__model *m = mod->m;
    crest_json_object_begin(w);
    crest__oa_type(o, "object", false);
    crest_json_key(w, "properties");
    crest_json_object_begin(w);
    for (unsigned i = 0; i < m->nfields; i++) {
        const crest__mfield *f = &m->fields[i];
        if ((shape == 0 ? !mod->served[i] : !mod->writable[i]) || f == skip)
            continue;
        crest_json_key(w, f->f.name);
        crest__oa_field(o, f, shape == 0 ? served_nullable(f) : !f->f.required, shape == 1);
    }
    if (shape == 0)
        embedded_properties(o, mod);
    if (shape == 0)
        for (unsigned j = 0; j < mod->ncomp; j++) {
            /* Typed like a field of its type (nullable: SQL may give null). */
            const crest_computed *c = mod->comp[j];
            crest__mfield as = {.f = {.name = c->name, .type = c->type,
                                      .description = c->sql ? "computed from the row in SQL" : "computed by the server"}};
            crest_json_key(w, c->name);
            if (c->type) {
                crest__oa_field(o, &as, true, false);
                continue;
            }
            crest_json_object_begin(w);
            crest_json_key(w, "description");
            crest_json_str(w, as.f.description);
            crest_json_object_end(w);
        }
    crest_json_object_end(w);
    bool any = false;
    for (unsigned i = 0; i < m->nfields && shape != 2; i++) {
        const crest__mfield *f = &m->fields[i];
        bool req = shape == 0 ? mod->served[i] && !served_nullable(f)
                              : mod->writable[i] && f->f.required && !f->defv && !f->def_now;
        if (!req || f == skip)
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

/* The component name of a nested create's body: "<Parent>_<relation>_Create". */
static void nested_create_name(const route *r, char *out, size_t cap)
{
    char base[160];
    schema_base(r->parent->app, r->parent, base, sizeof base);
    snprintf(out, cap, "%s_%s_Create", base, r->rel->name);
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
        crest_json_key(w, "total_estimated");
        crest_json_object_begin(w);
        crest__oa_type(o, "boolean", false);
        crest_json_key(w, "description");
        crest_json_str(w, "count=estimated only: true when total_objects is the database's estimate, false when "
                          "it is exact");
        crest_json_object_end(w);
        crest_json_key(w, "has_more");
        crest_json_object_begin(w);
        crest__oa_type(o, "boolean", false);
        crest_json_object_end(w);
        crest_json_key(w, "next_cursor");
        crest_json_object_begin(w);
        crest__oa_type(o, "string", true);
        crest_json_key(w, "description");
        crest_json_str(w, "index: the cursor of the next page (?cursor=), null on the last page");
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
        obj_schema(o, mod, 0, NULL);
        snprintf(name, sizeof name, "%sCreate", base);
        crest_json_key(w, name);
        obj_schema(o, mod, 1, NULL);
        snprintf(name, sizeof name, "%sUpdate", base);
        crest_json_key(w, name);
        obj_schema(o, mod, 2, NULL);
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
        /* A nested create's body: the related module's, without the
         * foreign key the path sets. */
        for (unsigned k = 0; k < mod->nnested; k++) {
            const route *r = &mod->nested[k];
            if (r->kind != RT_CREATE)
                continue;
            nested_create_name(r, name, sizeof name);
            crest_json_key(w, name);
            obj_schema(o, r->mod, 1, r->rel->fk);
        }
    }
}

static void body(crest__oa *o, const char *ref, const char *alt_array_ref, bool required)
{
    crest_json *w = o->w;
    crest__oa_body_begin(o, required);
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
    crest__oa_body_end(o);
}

/* Member `name` of a response's "headers": a string header. */
static void string_header(crest__oa *o, const char *name, const char *description)
{
    crest_json *w = o->w;
    crest_json_key(w, name);
    crest_json_object_begin(w);
    crest_json_key(w, "description");
    crest_json_str(w, description);
    crest_json_key(w, "schema");
    crest_json_object_begin(w);
    crest__oa_type(o, "string", false);
    crest_json_object_end(w);
    crest_json_object_end(w);
}

/* Member "ETag": the validator header of answers of rows and lists (src/rest/etag.c). */
static void etag_header(crest__oa *o)
{
    string_header(o, "ETag",
                  "the answer's entity-tag: of a row, \"<id>.<row version>.<variant>\" (strong; for If-Match and "
                  "If-None-Match); of a list, a hash of the body");
}

/* Member "304": If-None-Match named the current answer's ETag. */
static void not_modified(crest__oa *o)
{
    crest_json *w = o->w;
    crest_json_key(w, "304");
    crest_json_object_begin(w);
    crest_json_key(w, "description");
    crest_json_str(w, "not modified: If-None-Match names the current answer's ETag (no body)");
    crest_json_key(w, "headers");
    crest_json_object_begin(w);
    etag_header(o);
    crest_json_object_end(w);
    crest_json_object_end(w);
}

/* Member "<status>": a JSON answer of schema <base><suffix> (tagged: with
 * an ETag header), then the problems the operation may answer. */
static void answer(crest__oa *o, const char *status, const char *description, const char *base, const char *suffix,
                   const int *problems, bool tagged)
{
    char ref[200];
    snprintf(ref, sizeof ref, "%s%s", base, suffix);
    crest_json *w = o->w;
    crest_json_key(w, status);
    crest_json_object_begin(w);
    crest_json_key(w, "description");
    crest_json_str(w, description);
    if (tagged) {
        crest_json_key(w, "headers");
        crest_json_object_begin(w);
        etag_header(o);
        crest_json_object_end(w);
    }
    crest__oa_json_content(o, ref);
    crest_json_object_end(w);
    crest__oa_problems(o, problems);
}

/* Member "200" of an index: a page of rows with its ETag and, when a page
 * follows, its Link rel="next" header; then the problems of a query. */
static void index_answer(crest__oa *o, const char *base, const int *problems)
{
    crest_json *w = o->w;
    char ref[200];
    snprintf(ref, sizeof ref, "%sList", base);
    crest_json_key(w, "200");
    crest_json_object_begin(w);
    crest_json_key(w, "description");
    crest_json_str(w, "a page of rows");
    crest_json_key(w, "headers");
    crest_json_object_begin(w);
    etag_header(o);
    string_header(o, "Link", "when a page follows: <this request's URL with cursor=<next cursor>, without page "
                             "and offset>; rel=\"next\" (RFC 8288)");
    crest_json_object_end(w);
    crest__oa_json_content(o, ref);
    crest_json_object_end(w);
    crest__oa_problems(o, problems);
}

/* Member "200": an object described in words (stats, eval), with its
 * ETag, then the problems of a query. */
static void any_object_answer(crest__oa *o, const char *description, const char *what, const int *problems)
{
    crest_json *w = o->w;
    crest_json_key(w, "200");
    crest_json_object_begin(w);
    crest_json_key(w, "description");
    crest_json_str(w, description);
    crest_json_key(w, "headers");
    crest_json_object_begin(w);
    etag_header(o);
    crest_json_object_end(w);
    crest__oa_json_schema_begin(o);
    crest_json_object_begin(w);
    crest__oa_type(o, "object", false);
    crest_json_key(w, "description");
    crest_json_str(w, what);
    crest_json_object_end(w);
    crest__oa_json_schema_end(o);
    crest_json_object_end(w);
    crest__oa_problems(o, problems);
}

/* The change feed's answers: a stream of events (each event's data is a
 * row of the module, as GET /{id} serves it), 410 for a Last-Event-ID whose
 * changes are gone, 503 at the subscriber limit. */
static void changes_answer(crest__oa *o, const crest__module *mod, const char *base)
{
    static const int problems[] = {400, 410, 500, 503, 504, 0};
    char desc[600];
    snprintf(desc, sizeof desc,
             "Server-Sent Events, one per change of a row the caller may read: `id: <change id>`, `event: created | "
             "updated | deleted`, `data: <the row as GET %s%s serves it (%s); before the delete for deleted>`; a "
             "comment line (`: keep-alive`) after a silence",
             mod->prefix, mod->id_path, base);
    static const char *const types[] = {"text/event-stream"};
    crest__oa_text_ok(o, desc, types, 1);
    crest__oa_problems(o, problems);
}

bool crest__rest_openapi_operation(const crest__endpoint *ep, crest__oa *o)
{
    const crest_handler h = ep->spec->handler;
    if (h != crest__rest_op_index && h != crest__rest_op_read && h != crest__rest_write_route &&
        h != crest__rest_op_sample && h != crest__rest_op_group && h != crest__rest_op_stats &&
        h != crest__rest_op_eval && h != crest__rest_op_nested_index && h != crest__rest_op_changes)
        return false;
    const route *r = ep->ud;
    const crest__module *mod = r->mod;
    crest_json *w = o->w;
    char base[160], ref[200], ref2[200];
    schema_base(mod->app, mod, base, sizeof base);
    static const char *const op_names[] = {"index", "read", "create", "update", "patch", "delete",
                                           "sample", "group", "stats", "eval", "changes"};
    _Static_assert(CREST_ARRAY_LEN(op_names) == RT_COUNT, "an operationId per route kind");
    o->custom_errors = mod->def->error_fn != NULL;
    crest_json_key(w, "operationId");
    if (r->parent) /* a nested route: people.computers.index */
        snprintf(ref, sizeof ref, "%s.%s.%s", r->parent->name, r->rel->name, op_names[r->kind]);
    else
        snprintf(ref, sizeof ref, "%s.%s", mod->name, op_names[r->kind]);
    crest_json_str(w, ref);
    static const int q400[] = {400, 500, 503, 504, 0};
    static const int nested400[] = {400, 404, 500, 503, 504, 0};
    static const int read_q[] = {400, 404, 500, 503, 504, 0}; /* 400: fields= */
    static const int write_body[] = {400, 404, 409, 413, 415, 422, 500, 503, 504, 507, 0};
    static const int create_body[] = {400, 409, 413, 415, 422, 500, 503, 504, 507, 0};
    static const int del[] = {404, 409, 500, 503, 504, 507, 0};
    const char *env_create = mod->def->use_envelope_on_parse ? "CreateEnvelope" : "Create";
    const char *env_update = mod->def->use_envelope_on_parse ? "UpdateEnvelope" : "Update";
    const char *env_one = mod->single_env ? "Envelope" : "";
    switch (r->kind) {
    case RT_CREATE:
        if (r->parent && !mod->def->use_envelope_on_parse) { /* the body without the path's foreign key */
            nested_create_name(r, ref, sizeof ref);
            body(o, ref, ref, true);
            break;
        }
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
        index_answer(o, base, r->parent ? nested400 : q400);
        break;
    case RT_SAMPLE:
        answer(o, "200", "random rows", base, "List", q400, false);
        break;
    case RT_READ:
        answer(o, "200", "the row", base, env_one, read_q, true);
        break;
    case RT_CREATE:
        crest_json_key(w, "201");
        crest_json_object_begin(w);
        crest_json_key(w, "description");
        crest_json_str(w, "created: the row (with a Location header), or {data: [rows]} for a list");
        crest_json_key(w, "headers");
        crest_json_object_begin(w);
        string_header(o, "Location", "the new row's URL (single creates)");
        etag_header(o);
        if (d->idempotency) {
            crest_json_key(w, "Idempotent-Replayed");
            crest_json_object_begin(w);
            crest_json_key(w, "description");
            crest_json_str(w, "true: the answer kept for this Idempotency-Key, sent again (no row was created)");
            crest_json_key(w, "schema");
            crest_json_object_begin(w);
            crest__oa_type(o, "string", false);
            crest_json_key(w, "enum");
            crest_json_array_begin(w);
            crest_json_str(w, "true");
            crest_json_array_end(w);
            crest_json_object_end(w);
            crest_json_object_end(w);
        }
        crest_json_object_end(w);
        crest__oa_json_schema_begin(o);
        crest_json_object_begin(w);
        crest_json_key(w, "anyOf");
        crest_json_array_begin(w);
        snprintf(ref, sizeof ref, "%s%s", base, env_one);
        crest__oa_ref(o, ref);
        snprintf(ref, sizeof ref, "%sCreated", base);
        crest__oa_ref(o, ref);
        crest_json_array_end(w);
        crest_json_object_end(w);
        crest__oa_json_schema_end(o);
        crest_json_object_end(w);
        crest__oa_problems(o, r->parent ? write_body : create_body); /* (nested: 404 for the parent) */
        break;
    case RT_UPDATE:
    case RT_PATCH:
        answer(o, "200", "the updated row", base, env_one, write_body, true);
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
        answer(o, "200", "counts by value", base, "Groups", q400, true);
        break;
    case RT_STATS:
        any_object_answer(o, "min, max and avg of each field",
                          "{field: {min, max, avg}}; avg is a number, all null for an empty set", q400);
        break;
    case RT_EVAL:
        any_object_answer(o, "the functions' values", "{\"<name>__<field>\": value, \"count\": n}", q400);
        break;
    case RT_CHANGES:
        changes_answer(o, mod, base);
        break;
    default:
        break;
    }
    /* Conditional requests (src/rest/etag.c). */
    static const int stale[] = {412, 0}, required[] = {428, 0};
    if (r->kind == RT_INDEX || r->kind == RT_READ || r->kind == RT_GROUP || r->kind == RT_STATS ||
        r->kind == RT_EVAL)
        not_modified(o);
    if (r->kind == RT_UPDATE || r->kind == RT_PATCH || r->kind == RT_DELETE) {
        crest__oa_problems(o, stale);
        if (d->require_if_match)
            crest__oa_problems(o, required);
    }
    crest__oa_auth_responses(o, ep);
    /* A trigger may refuse a write with a status of its own (crest:<status>:...). */
    bool writes = r->kind == RT_CREATE || r->kind == RT_UPDATE || r->kind == RT_PATCH || r->kind == RT_DELETE;
    if (custom || writes)
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

/* include's enum: each path ?include= may name. */
static void include_path(void *ud, const char *path)
{
    crest_json_str(ud, path);
}

bool crest__rest_param_schema(const crest__endpoint *ep, const char *param, crest__oa *o)
{
    const crest_handler h = ep->spec->handler;
    if (h != crest__rest_op_read && h != crest__rest_write_route && h != crest__rest_op_group &&
        h != crest__rest_op_index && h != crest__rest_op_sample && h != crest__rest_op_nested_index)
        return false;
    const route *r = ep->ud;
    crest_json *w = o->w;
    if (!strcmp(param, "include")) {
        /* comma-separated (style form, explode false: crest__rest_param_list) */
        crest_json_object_begin(w);
        crest__oa_type(o, "array", false);
        crest_json_key(w, "items");
        crest_json_object_begin(w);
        crest__oa_type(o, "string", false);
        crest_json_key(w, "enum");
        crest_json_array_begin(w);
        crest__rest_include_paths(r->mod, include_path, w);
        crest_json_array_end(w);
        crest_json_object_end(w);
        crest_json_object_end(w);
        return true;
    }
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
    if ((r->parent && !strcmp(param, r->parent->id_param)) ||
        (r->kind != RT_CREATE && r->kind != RT_GROUP && !strcmp(param, r->mod->id_param))) {
        /* Any text reaches the route (not an integer: 404), but ids (a
         * nested route's parent's too) are integers. */
        crest_json_object_begin(w);
        crest__oa_type(o, "integer", false);
        crest_json_key(w, "format");
        crest_json_str(w, "int64");
        crest_json_object_end(w);
        return true;
    }
    return false;
}

bool crest__rest_param_list(const crest__endpoint *ep, const char *param)
{
    const crest_handler h = ep->spec->handler;
    return (h == crest__rest_op_read || h == crest__rest_write_route || h == crest__rest_op_index ||
            h == crest__rest_op_sample || h == crest__rest_op_nested_index) &&
           !strcmp(param, "include");
}

const char *crest__rest_param_description(const crest__endpoint *ep, const char *param)
{
    const crest_handler h = ep->spec->handler;
    if (h != crest__rest_op_index && h != crest__rest_op_sample && h != crest__rest_op_group &&
        h != crest__rest_op_stats && h != crest__rest_op_eval && h != crest__rest_op_read &&
        h != crest__rest_write_route && h != crest__rest_op_nested_index && h != crest__rest_op_changes)
        return NULL;
    const route *r = ep->ud;
    if (!strcmp(param, "fields") && r->kind != RT_STATS)
        return r->mod->fields_desc;
    if (!strcmp(param, "where"))
        return r->mod->where_desc;
    if (!strcmp(param, "sort_by") && r->kind == RT_INDEX)
        return r->mod->sort_desc;
    if (!strcmp(param, "fields") && r->kind == RT_STATS)
        return r->mod->stats_desc;
    return NULL;
}
