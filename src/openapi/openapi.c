/* openapi.c — the OpenAPI document, made from what the app declares (never
 * written by hand): every endpoint spec (C handlers, SQL endpoints, builtins)
 * and every REST route (whose bodies and schemas rest/module.c writes). 3.1
 * by default, 3.0.3 on request. Also serves it: GET /openapi.json, and the
 * Swagger UI page GET /docs with its files (from swagger-ui-dist, copied
 * into the build folder by scripts/npm.sh and installed under
 * share/crest/swagger-ui; never committed; docs_dir.c finds them). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../auth/auth.h"
#include "../sqlep/sqlep.h"
#include "../json/json_internal.h"
#include "openapi.h"

/* ---- settings ---- */

static int set_str(char **slot, const char *v)
{
    if (!v)
        return 0;
    char *c = strdup(v);
    if (!c)
        return CREST_ENOMEM;
    free(*slot);
    *slot = c;
    return 0;
}

int crest_app_set_info(crest_app *app, const char *title, const char *version, const char *description)
{
    crest__app_made_in_c(app);
    if (set_str(&app->info_title, title) || set_str(&app->info_version, version) ||
        set_str(&app->info_description, description))
        return CREST_ENOMEM;
    return 0;
}

int crest_app_add_server(crest_app *app, const char *url, const char *description)
{
    crest__app_made_in_c(app);
    if (!url || !*url)
        return CREST_EINVAL;
    char **s = realloc(app->servers, (app->nservers + 1) * sizeof *s);
    if (!s)
        return CREST_ENOMEM;
    app->servers = s;
    char **d = realloc(app->server_descs, (app->nservers + 1) * sizeof *d);
    if (!d)
        return CREST_ENOMEM;
    app->server_descs = d;
    s[app->nservers] = strdup(url);
    d[app->nservers] = description ? strdup(description) : NULL;
    if (!s[app->nservers])
        return CREST_ENOMEM;
    app->nservers++;
    return 0;
}

void crest_app_set_openapi_30(crest_app *app, bool on)
{
    crest__app_made_in_c(app);
    app->openapi_30 = on;
}
bool crest_app_openapi_30(const crest_app *app) { return app->openapi_30; }
void crest_app_set_docs(crest_app *app, bool on)
{
    crest__app_made_in_c(app);
    app->docs_off = !on;
}

/* ---- shared writers ---- */

void crest__oa_type(crest__oa *o, const char *type, bool nullable)
{
    crest_json *w = o->w;
    crest_json_key(w, "type");
    if (nullable && !o->v30) {
        crest_json_array_begin(w);
        crest_json_str(w, type);
        crest_json_str(w, "null");
        crest_json_array_end(w);
        return;
    }
    crest_json_str(w, type);
    if (nullable) {
        crest_json_key(w, "nullable");
        crest_json_bool(w, true);
    }
}

void crest__oa_number(crest__oa *o, double v)
{
    if (v == (double)(int64_t)v && v > -1e15 && v < 1e15)
        crest_json_int(o->w, (int64_t)v);
    else
        crest_json_double(o->w, v);
}

void crest__oa_ref(crest__oa *o, const char *name)
{
    char ref[256];
    snprintf(ref, sizeof ref, "#/components/schemas/%s", name);
    crest_json_object_begin(o->w);
    crest_json_key(o->w, "$ref");
    crest_json_str(o->w, ref);
    crest_json_object_end(o->w);
}

void crest__oa_json_schema_begin(crest__oa *o)
{
    crest_json *w = o->w;
    crest_json_key(w, "content");
    crest_json_object_begin(w);
    crest_json_key(w, "application/json");
    crest_json_object_begin(w);
    crest_json_key(w, "schema");
}

void crest__oa_json_schema_end(crest__oa *o)
{
    crest_json_object_end(o->w);
    crest_json_object_end(o->w);
}

void crest__oa_body_begin(crest__oa *o, bool required)
{
    crest_json_key(o->w, "requestBody");
    crest_json_object_begin(o->w);
    crest_json_key(o->w, "required");
    crest_json_bool(o->w, required);
    crest__oa_json_schema_begin(o);
}

void crest__oa_body_end(crest__oa *o)
{
    crest__oa_json_schema_end(o);
    crest_json_object_end(o->w);
}

void crest__oa_json_content(crest__oa *o, const char *ref)
{
    crest__oa_json_schema_begin(o);
    if (ref) {
        crest__oa_ref(o, ref);
    } else {
        crest_json_object_begin(o->w);
        crest_json_object_end(o->w);
    }
    crest__oa_json_schema_end(o);
}

void crest__oa_json_response(crest__oa *o, const char *description, const char *ref)
{
    crest_json *w = o->w;
    crest_json_object_begin(w);
    crest_json_key(w, "description");
    crest_json_str(w, description);
    crest__oa_json_content(o, ref);
    crest_json_object_end(w);
}

static const char *problem_description(int status)
{
    switch (status) {
    case 400: return "a parameter or the body is malformed";
    case 404: return "no such row";
    case 409: return "a unique value is taken";
    case 410: return "the changes after Last-Event-ID are no longer kept (changes_expired): read the rows again";
    case 413: return "the body is too large";
    case 415: return "the body is not JSON";
    case 422: return "the body breaks the model's rules (one message per field)";
    case 412: return "the row has changed since the ETag given in If-Match (nothing was written)";
    case 428: return "an If-Match header with the row's ETag is required";
    case 500: return "the server failed (logged with the request id)";
    case 503: return "the database is busy or unavailable";
    case 504: return "the query took longer than allowed";
    default: return crest__status_text(status);
    }
}

static void problem(crest__oa *o, const char *status_key, const char *description)
{
    crest_json *w = o->w;
    crest_json_key(w, status_key);
    crest_json_object_begin(w);
    crest_json_key(w, "description");
    crest_json_str(w, description);
    crest_json_key(w, "content");
    crest_json_object_begin(w);
    crest_json_key(w, "application/problem+json");
    crest_json_object_begin(w);
    crest_json_key(w, "schema");
    crest__oa_ref(o, "Problem");
    crest_json_object_end(w);
    if (o->custom_errors) { /* the module's error_fn writes its own body */
        crest_json_key(w, "application/json");
        crest_json_object_begin(w);
        crest_json_key(w, "schema");
        crest_json_object_begin(w);
        crest_json_object_end(w);
        crest_json_object_end(w);
    }
    crest_json_object_end(w);
    crest_json_object_end(w);
}

/* The 503 of the docs page and its files, naming its code. */
static void docs_unavailable(crest__oa *o)
{
    char desc[96];
    snprintf(desc, sizeof desc, "the docs page's files are not installed (%s)",
             crest__problem(CREST__E_DOCS_UNAVAILABLE)->code);
    problem(o, "503", desc);
}

void crest__oa_problems(crest__oa *o, const int *statuses)
{
    for (const int *s = statuses; *s; s++) {
        char key[8];
        snprintf(key, sizeof key, "%d", *s);
        problem(o, key, problem_description(*s));
    }
}

void crest__oa_ranges(crest__oa *o, bool custom_body)
{
    bool was = o->custom_errors;
    o->custom_errors = was || custom_body;
    problem(o, "4XX", "a problem with the request (problem+json)");
    problem(o, "5XX", "the server failed (problem+json, logged with the request id)");
    o->custom_errors = was;
}

/* Member "security": [{"bearer": []}], or [] (no credentials needed). */
static void security(crest_json *w, bool bearer)
{
    crest_json_key(w, "security");
    crest_json_array_begin(w);
    if (bearer) {
        crest_json_object_begin(w);
        crest_json_key(w, "bearer");
        crest_json_array_begin(w);
        crest_json_array_end(w);
        crest_json_object_end(w);
    }
    crest_json_array_end(w);
}

static bool needs_auth(const crest__oa *o, const crest__endpoint *ep)
{
    return o->app && o->app->auth && !crest__ep_skips_auth(ep) &&
           !(ep->spec->permission && !strcmp(ep->spec->permission, "public"));
}

void crest__oa_auth_responses(crest__oa *o, const crest__endpoint *ep)
{
    if (o->app && o->app->auth && !crest__ep_skips_auth(ep)) /* public routes too: a token given is checked */
        problem(o, "401", "no valid bearer token (WWW-Authenticate: Bearer error=\"invalid_token\")");
    if (needs_auth(o, ep))
        problem(o, "403", "the token's user lacks the permission");
    if (o->app && !ep->builtin && (ep->rate.burst > 0 || o->app->rate.burst > 0))
        problem(o, "429", "too many requests from this client (Retry-After says when to come back)");
}

/* ---- operations of plain endpoints ---- */

static const char *param_type(crest_type t)
{
    switch (t) {
    case CREST_T_INT: return "integer";
    case CREST_T_FLOAT: return "number";
    case CREST_T_BOOL: return "boolean";
    default: return "string";
    }
}

/* A default or example given as text, as a JSON value of the parameter's type. */
static void typed_text(crest_json *w, crest_type t, const char *s)
{
    int64_t i;
    double d;
    bool b;
    if (t == CREST_T_INT && !crest__parse_int(s, strlen(s), &i))
        crest_json_int(w, i);
    else if (t == CREST_T_FLOAT && !crest__parse_double(s, strlen(s), &d))
        crest_json_double(w, d);
    else if (t == CREST_T_BOOL && !crest__parse_bool(s, strlen(s), &b))
        crest_json_bool(w, b);
    else
        crest_json_str(w, s);
}

static void param_schema(crest__oa *o, const crest_param *p)
{
    crest_json *w = o->w;
    crest_json_object_begin(w);
    crest__oa_type(o, param_type(p->type), false);
    if (p->type == CREST_T_INT || p->type == CREST_T_UUID) {
        crest_json_key(w, "format");
        crest_json_str(w, p->type == CREST_T_INT ? "int64" : "uuid");
    }
    if (p->type == CREST_T_ENUM && p->values) {
        crest_json_key(w, "enum");
        crest_json_array_begin(w);
        for (const char *const *v = p->values; *v; v++)
            crest_json_str(w, *v);
        crest_json_array_end(w);
    }
    bool text = p->type == CREST_T_STRING;
    if (p->has_min) {
        crest_json_key(w, text ? "minLength" : "minimum");
        crest__oa_number(o, p->min);
    }
    if (p->has_max) {
        crest_json_key(w, text ? "maxLength" : "maximum");
        crest__oa_number(o, p->max);
    }
    if (p->def) {
        crest_json_key(w, "default");
        typed_text(w, p->type, p->def);
    }
    crest_json_object_end(w);
}

static void parameters(crest__oa *o, const crest__endpoint *ep)
{
    crest_json *w = o->w;
    const crest_param *ps = ep->spec->params;
    if (!ps || !ps->name)
        return;
    crest_json_key(w, "parameters");
    crest_json_array_begin(w);
    for (const crest_param *p = ps; p->name; p++) {
        size_t n = strlen(p->name);
        if (n > 3 && !strcmp(p->name + n - 3, "[*]"))
            continue; /* fields[<relation>]: described with its family (fields) */
        crest_json_object_begin(w);
        crest_json_key(w, "name");
        crest_json_str(w, p->name);
        crest_json_key(w, "in");
        crest_json_str(w, p->in == CREST_IN_PATH ? "path" : p->in == CREST_IN_HEADER ? "header" : "query");
        crest_json_key(w, "required");
        crest_json_bool(w, p->in == CREST_IN_PATH || p->required);
        const char *desc = crest__rest_param_description(ep, p->name);
        if (!desc)
            desc = p->description;
        if (desc) {
            crest_json_key(w, "description");
            crest_json_str(w, desc);
        }
        crest_json_key(w, "schema");
        if (!crest__rest_param_schema(ep, p->name, o))
            param_schema(o, p);
        if (crest__rest_param_list(ep, p->name)) {
            crest_json_key(w, "style");
            crest_json_str(w, "form");
            crest_json_key(w, "explode");
            crest_json_bool(w, false);
        }
        if (p->example) {
            crest_json_key(w, "example");
            typed_text(w, p->type, p->example);
        }
        crest_json_object_end(w);
    }
    crest_json_array_end(w);
}

/* The body of an SQL endpoint: its body parameters as an object. */
static void sql_body(crest__oa *o, const crest__sqlep *s)
{
    crest_json *w = o->w;
    bool any_required = false;
    for (unsigned i = 0; i < s->nbody; i++)
        any_required |= s->body[i].f.f.required && !s->body[i].f.defv;
    crest__oa_body_begin(o, any_required);
    crest_json_object_begin(w);
    crest__oa_type(o, "object", false);
    crest_json_key(w, "properties");
    crest_json_object_begin(w);
    for (unsigned i = 0; i < s->nbody; i++) {
        const sqlep_body_param *b = &s->body[i];
        crest_json_key(w, b->name);
        crest__oa_field(o, &b->f, !b->f.f.required, true);
    }
    crest_json_object_end(w);
    if (any_required) {
        crest_json_key(w, "required");
        crest_json_array_begin(w);
        for (unsigned i = 0; i < s->nbody; i++)
            if (s->body[i].f.f.required && !s->body[i].f.defv)
                crest_json_str(w, s->body[i].name);
        crest_json_array_end(w);
    }
    crest_json_key(w, "additionalProperties");
    crest_json_bool(w, false);
    crest_json_object_end(w);
    crest__oa_body_end(o);
}

/* The schema of one declared column (`columns:`): its type, nullable (SQL
 * may give NULL anywhere); json and auto columns may hold any value. */
static void col_schema(crest__oa *o, int kind)
{
    const char *type, *format;
    crest__sqlep_col_schema(kind, &type, &format);
    crest_json_object_begin(o->w);
    if (type)
        crest__oa_type(o, type, true);
    if (format) {
        crest_json_key(o->w, "format");
        crest_json_str(o->w, format);
    }
    crest_json_object_end(o->w);
}

/* A row: an object with the declared columns as (required) properties. */
static void row_schema(crest__oa *o, const crest__sqlep *s)
{
    crest_json *w = o->w;
    crest_json_object_begin(w);
    crest__oa_type(o, "object", false);
    if (s->ncols) {
        crest_json_key(w, "properties");
        crest_json_object_begin(w);
        for (unsigned i = 0; i < s->ncols; i++) {
            crest_json_key(w, s->cols[i].name);
            col_schema(o, s->cols[i].kind);
        }
        crest_json_object_end(w);
        crest_json_key(w, "required");
        crest_json_array_begin(w);
        for (unsigned i = 0; i < s->ncols; i++)
            crest_json_str(w, s->cols[i].name);
        crest_json_array_end(w);
    }
    crest_json_object_end(w);
}

static void sql_responses(crest__oa *o, const crest__endpoint *ep)
{
    crest_json *w = o->w;
    const crest__sqlep *s = ep->sql;
    int status = ep->spec->status ? ep->spec->status : (s->returns == RET_NONE ? 204 : 200);
    char key[8];
    snprintf(key, sizeof key, "%d", status);
    crest_json_key(w, key);
    crest_json_object_begin(w);
    crest_json_key(w, "description");
    crest_json_str(w, ep->spec->response_description ? ep->spec->response_description
                      : s->returns == RET_ONE   ? "one row"
                      : s->returns == RET_MANY  ? "the rows, as {\"data\": [...]}"
                      : s->returns == RET_VALUE ? "one value"
                                                : "done");
    bool replies = false;
    for (unsigned i = 0; i < s->nheaders; i++)
        replies |= s->headers[i].reply;
    if (replies) { /* reply_header: the request's header, sent back */
        crest_json_key(w, "headers");
        crest_json_object_begin(w);
        for (unsigned i = 0; i < s->nheaders; i++) {
            if (!s->headers[i].reply)
                continue;
            const crest_param *p = &s->params[s->headers[i].param];
            crest_json_key(w, p->name);
            crest_json_object_begin(w);
            crest_json_key(w, "description");
            crest_json_str(w, "the request's header of the same name, when it was sent");
            crest_json_key(w, "schema");
            param_schema(o, p);
            crest_json_object_end(w);
        }
        crest_json_object_end(w);
    }
    if (s->returns != RET_NONE && status != 204) {
        crest__oa_json_schema_begin(o);
        /* Rows as {"data": [...]}, one row, or one value, typed by
         * `columns:` when declared; in {"<envelope>": ...} when set. */
        const char *wrap[2] = {ep->spec->envelope, s->returns == RET_MANY ? "data" : NULL};
        for (int k = 0; k < 2; k++)
            if (wrap[k]) {
                crest_json_object_begin(w);
                crest__oa_type(o, "object", false);
                crest_json_key(w, "required");
                crest_json_array_begin(w);
                crest_json_str(w, wrap[k]);
                crest_json_array_end(w);
                crest_json_key(w, "properties");
                crest_json_object_begin(w);
                crest_json_key(w, wrap[k]);
            }
        if (s->returns == RET_MANY) {
            crest_json_object_begin(w);
            crest__oa_type(o, "array", false);
            crest_json_key(w, "items");
            row_schema(o, s);
            crest_json_object_end(w);
        } else if (s->returns == RET_ONE) {
            row_schema(o, s);
        } else {
            col_schema(o, s->ncols ? s->cols[0].kind : 0);
        }
        for (int k = 1; k >= 0; k--)
            if (wrap[k]) {
                crest_json_object_end(w);
                crest_json_object_end(w);
            }
        crest__oa_json_schema_end(o);
    }
    crest_json_object_end(w);
    /* What an SQL endpoint can answer besides success. */
    int st[12], n = 0;
    if (ep->nparams || s->nbody)
        st[n++] = 400;
    if (s->returns != RET_MANY)
        st[n++] = 404; /* one and value: no row; none: RETURNING without a row */
    bool writes = ep->spec->method != CREST_GET;
    if (writes)
        st[n++] = 409;
    if (s->nbody) {
        st[n++] = 413;
        st[n++] = 415;
    }
    if (s->nbody || writes)
        st[n++] = 422;
    st[n++] = 500;
    st[n++] = 503;
    st[n++] = 504;
    if (writes)
        st[n++] = 507; /* the database cannot grow */
    st[n] = 0;
    crest__oa_problems(o, st);
    if (writes) /* a trigger may refuse with a status of its own (crest:<status>:...) */
        crest__oa_ranges(o, false);
}

/* A C handler: its success answer, and any problem it may return. */
static void c_responses(crest__oa *o, const crest__endpoint *ep)
{
    crest_json *w = o->w;
    int status = ep->spec->status ? ep->spec->status : 200;
    char key[8];
    snprintf(key, sizeof key, "%d", status);
    crest_json_key(w, key);
    crest_json_object_begin(w);
    crest_json_key(w, "description");
    crest_json_str(w, ep->spec->response_description ? ep->spec->response_description : "OK");
    if (status != 204)
        crest__oa_json_content(o, NULL);
    crest_json_object_end(w);
    /* A handler may answer any problem; the spec check answers 400/413/415;
     * the engine answers malformed requests on any route. */
    crest__oa_ranges(o, false);
}

/* ---- builtins: /openapi.json, /docs ---- */

typedef struct docfile {
    const char *name, *type;
} docfile;

static const docfile docfiles[] = {
    {"swagger-ui.css", "text/css; charset=utf-8"},
    {"swagger-ui-bundle.js", "text/javascript; charset=utf-8"},
    {"swagger-ui-standalone-preset.js", "text/javascript; charset=utf-8"},
    {"favicon-32x32.png", "image/png"},
    {"favicon-16x16.png", "image/png"},
    {"init.js", "text/javascript; charset=utf-8"},
};

static int h_openapi(crest_req *req, crest_res *res, void *ud)
{
    CREST_UNUSED(ud);
    /* Made at start, freed with the app: sent from there, not copied. */
    return crest__res_send_shared(res, "application/json", req->app->openapi_doc, req->app->openapi_len,
                                  &req->app->openapi_gz);
}

static void html_escape(crest__buf *b, const char *s)
{
    for (; *s; s++) {
        if (*s == '<')
            crest__buf_appends(b, "&lt;");
        else if (*s == '>')
            crest__buf_appends(b, "&gt;");
        else if (*s == '&')
            crest__buf_appends(b, "&amp;");
        else if (*s == '"')
            crest__buf_appends(b, "&quot;");
        else
            crest__buf_append(b, s, 1);
    }
}

static int h_docs(crest_req *req, crest_res *res, void *ud)
{
    CREST_UNUSED(ud);
    if (!crest__docs_ui_dir()) /* a page that could not load its scripts helps no one */
        return crest__res_fail(res, CREST__E_DOCS_UNAVAILABLE, "%s", crest__docs_ui_missing());
    crest__buf b;
    crest__buf_init(&b, 0);
    crest__buf_appends(&b, "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>");
    html_escape(&b, req->app->info_title ? req->app->info_title : "crest API");
    crest__buf_appends(&b, " — API docs</title>\n"
                           "<link rel=\"icon\" type=\"image/png\" href=\"/docs/favicon-32x32.png\">\n"
                           "<link rel=\"stylesheet\" href=\"/docs/swagger-ui.css\">\n</head>\n<body>\n"
                           "<div id=\"swagger-ui\"></div>\n"
                           "<script src=\"/docs/swagger-ui-bundle.js\"></script>\n"
                           "<script src=\"/docs/swagger-ui-standalone-preset.js\"></script>\n"
                           "<script src=\"/docs/init.js\"></script>\n</body>\n</html>\n");
    int rc = b.ptr ? crest_res_send(res, "text/html; charset=utf-8", b.ptr, b.len)
                   : crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    crest__buf_dispose(&b);
    return rc;
}

static const char init_js[] =
    "window.ui = SwaggerUIBundle({\n"
    "  url: \"/openapi.json\",\n"
    "  dom_id: \"#swagger-ui\",\n"
    "  deepLinking: true,\n"
    "  persistAuthorization: true,\n"
    "  presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],\n"
    "  plugins: [SwaggerUIBundle.plugins.DownloadUrl],\n"
    "  layout: \"StandaloneLayout\"\n"
    "});\n";

/* The docs page's files, read once and served from that one copy: every
 * response borrows it (crest__res_send_shared), so a thousand clients of
 * the 1.7 MB bundle hold no copy of it each. Filled on first use (a file
 * not there yet is looked for again next time), freed with the app. */
struct crest__docs_cache {
    pthread_mutex_t lock;
    char *data[CREST_ARRAY_LEN(docfiles)];
    size_t len[CREST_ARRAY_LEN(docfiles)];
    crest__gzslot gz[CREST_ARRAY_LEN(docfiles)]; /* their gzip copies (compress.c), made at first use */
};

void crest__docs_cache_free(struct crest__docs_cache *dc)
{
    if (!dc)
        return;
    for (size_t i = 0; i < CREST_ARRAY_LEN(docfiles); i++) {
        free(dc->data[i]);
        crest__gzslot_free(&dc->gz[i]);
    }
    pthread_mutex_destroy(&dc->lock);
    free(dc);
}

enum { DOC_MISSING = 1, DOC_UNREADABLE = 2 };

/* The bytes of docfiles[i], read from the docs folder on first use (the
 * folder is looked for only then): 0, DOC_MISSING (no folder, not there,
 * or too large), DOC_UNREADABLE, or CREST_ENOMEM. */
static int docfile_bytes(struct crest__docs_cache *dc, size_t i, const char **data, size_t *len)
{
    pthread_mutex_lock(&dc->lock);
    int rc = 0;
    const char *dir;
    if (!dc->data[i] && !(dir = crest__docs_ui_dir())) {
        rc = DOC_MISSING;
    } else if (!dc->data[i]) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, docfiles[i].name);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        struct stat st;
        char *buf = NULL;
        size_t got = 0;
        if (fd < 0 || fstat(fd, &st) != 0 || st.st_size > 16 * 1024 * 1024) {
            rc = DOC_MISSING;
        } else if (!(buf = malloc((size_t)st.st_size + 1))) {
            rc = CREST_ENOMEM;
        } else {
            while (got < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
                if (n < 0 && errno == EINTR)
                    continue;
                if (n <= 0)
                    break;
                got += (size_t)n;
            }
            if (got != (size_t)st.st_size) {
                free(buf);
                rc = DOC_UNREADABLE;
            } else {
                dc->data[i] = buf;
                dc->len[i] = got;
            }
        }
        if (fd >= 0)
            close(fd);
    }
    *data = dc->data[i];
    *len = dc->len[i];
    pthread_mutex_unlock(&dc->lock);
    return rc;
}

static int h_docfile(crest_req *req, crest_res *res, void *ud)
{
    CREST_UNUSED(ud);
    const char *name = crest_req_str(req, "file");
    const docfile *f = NULL;
    for (size_t i = 0; i < CREST_ARRAY_LEN(docfiles); i++)
        if (name && !strcmp(name, docfiles[i].name))
            f = &docfiles[i];
    if (!f) /* only the files listed: no path from the client reaches the disk */
        return crest__res_fail(res, CREST__E_NOT_FOUND, "no such file of the docs page");
    if (!strcmp(f->name, "init.js"))
        return crest__res_send_shared(res, f->type, init_js, sizeof init_js - 1, NULL);
    const char *data;
    size_t got;
    int rc = docfile_bytes(req->app->docs_cache, (size_t)(f - docfiles), &data, &got);
    if (rc == DOC_MISSING)
        return crest__res_fail(res, CREST__E_DOCS_UNAVAILABLE, "%s", crest__docs_ui_missing());
    if (rc == CREST_ENOMEM)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    if (rc)
        return crest__res_fail(res, CREST__E_INTERNAL_ERROR, "the server could not read a docs file");
    crest_res_header(res, "Cache-Control", "public, max-age=3600");
    return crest__res_send_shared(res, f->type, data, got, &req->app->docs_cache->gz[f - docfiles]);
}

static const crest_param docfile_params[] = {
    {.name = "file", .in = CREST_IN_PATH, .type = CREST_T_STRING, .required = true,
     .description = "one of the page's files (swagger-ui.css, swagger-ui-bundle.js, ...)"},
    {0}};

static const crest_endpoint openapi_ep = {
    .method = CREST_GET, .path = "/openapi.json", .summary = "This API's OpenAPI document", .tag = "docs",
    .handler = h_openapi, .operation_id = "openapi", .response_description = "the OpenAPI document"};
static const crest_endpoint docs_ep = {
    .method = CREST_GET, .path = "/docs", .summary = "Interactive documentation (Swagger UI)", .tag = "docs",
    .handler = h_docs, .operation_id = "docs", .response_description = "an HTML page"};
static const crest_endpoint docfile_ep = {
    .method = CREST_GET, .path = "/docs/{file}", .params = docfile_params,
    .summary = "A file of the documentation page", .tag = "docs", .handler = h_docfile,
    .operation_id = "docs_file", .response_description = "the file"};

int crest__openapi_add_builtins(crest_app *app, crest_error *err)
{
    if (!app->docs_off && !app->docs_cache) {
        if (!(app->docs_cache = calloc(1, sizeof *app->docs_cache)))
            return crest__error_set(err, CREST_ENOMEM, NULL, 0, "out of memory");
        pthread_mutex_init(&app->docs_cache->lock, NULL);
    }
    int rc = crest__app_add_builtin(app, &openapi_ep, NULL, err);
    if (!rc && !app->docs_off)
        rc = crest__app_add_builtin(app, &docs_ep, NULL, err);
    if (!rc && !app->docs_off)
        rc = crest__app_add_builtin(app, &docfile_ep, NULL, err);
    return rc;
}

/* A 200 whose body is text of the given media types (a string schema each). */
void crest__oa_text_ok(crest__oa *o, const char *description, const char *const *types, size_t ntypes)
{
    crest_json *w = o->w;
    crest_json_key(w, "200");
    crest_json_object_begin(w);
    crest_json_key(w, "description");
    crest_json_str(w, description);
    crest_json_key(w, "content");
    crest_json_object_begin(w);
    for (size_t i = 0; i < ntypes; i++) {
        crest_json_key(w, types[i]);
        crest_json_object_begin(w);
        crest_json_key(w, "schema");
        crest_json_object_begin(w);
        crest__oa_type(o, "string", false);
        crest_json_object_end(w);
        crest_json_object_end(w);
    }
    crest_json_object_end(w);
    crest_json_object_end(w);
}

static void builtin_responses(crest__oa *o, const crest__endpoint *ep)
{
    crest_json *w = o->w;
    if (o->app && ep->spec == &o->app->metrics_spec) {
        static const char *const types[] = {"text/plain"};
        crest__oa_text_ok(o, ep->spec->response_description, types, 1);
        crest__oa_ranges(o, false);
        return;
    }
    if (ep->spec == &openapi_ep) {
        crest_json_key(w, "200");
        crest__oa_json_response(o, "the OpenAPI document", NULL);
        crest__oa_ranges(o, false); /* the engine's own answers to malformed requests */
        return;
    }
    if (ep->spec == &docs_ep) {
        static const char *const types[] = {"text/html"};
        crest__oa_text_ok(o, "an HTML page", types, 1);
        docs_unavailable(o);
        crest__oa_ranges(o, false);
        return;
    }
    if (ep->spec == &docfile_ep) {
        static const char *const types[] = {"text/css", "text/javascript", "image/png"};
        static const int st[] = {500, 0};
        crest__oa_text_ok(o, "a stylesheet, a script or an image", types, CREST_ARRAY_LEN(types));
        problem(o, "404", "no such file of the docs page");
        crest__oa_problems(o, st);
        docs_unavailable(o);
        return;
    }
    c_responses(o, ep);
}

/* ---- the document ---- */

static void operation_id(crest_json *w, const crest__endpoint *ep, char *buf, size_t cap)
{
    if (ep->spec->operation_id) {
        crest_json_key(w, "operationId");
        crest_json_str(w, ep->spec->operation_id);
        return;
    }
    /* get /tasks/{id}/hours → get_tasks_id_hours */
    const char *m = crest_method_name(ep->spec->method);
    size_t o = 0;
    for (; m[o] && o < cap - 1; o++)
        buf[o] = (char)(m[o] >= 'A' && m[o] <= 'Z' ? m[o] + 32 : m[o]);
    bool sep = true;
    for (const char *p = ep->full_path; *p && o < cap - 2; p++) {
        char c = *p;
        bool word = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (word) {
            if (sep)
                buf[o++] = '_';
            buf[o++] = c;
            sep = false;
        } else {
            sep = true;
        }
    }
    buf[o] = 0;
    crest_json_key(w, "operationId");
    crest_json_str(w, buf);
}

static bool is_builtin_docs(const crest__endpoint *ep)
{
    return ep->spec == &openapi_ep || ep->spec == &docs_ep || ep->spec == &docfile_ep;
}

static void write_operation(crest__oa *o, const crest__endpoint *ep)
{
    crest_json *w = o->w;
    const crest_endpoint *s = ep->spec;
    crest_json_object_begin(w);
    if (s->tag) {
        crest_json_key(w, "tags");
        crest_json_array_begin(w);
        crest_json_str(w, s->tag);
        crest_json_array_end(w);
    }
    /* Every operation has a summary (linters require one): the declared
     * one, else the method and the path ("GET /stats/spent"). */
    crest_json_key(w, "summary");
    if (s->summary) {
        crest_json_str(w, s->summary);
    } else {
        char sum[512];
        snprintf(sum, sizeof sum, "%s %s", crest_method_name(s->method), ep->full_path);
        crest_json_str(w, sum);
    }
    if (s->description) {
        crest_json_key(w, "description");
        crest_json_str(w, s->description);
    }
    if (s->deprecated) {
        crest_json_key(w, "deprecated");
        crest_json_bool(w, true);
    }
    if (o->app->auth) {
        /* Who may call it: public operations need nothing. */
        security(w, needs_auth(o, ep));
        if (s->permission && strcmp(s->permission, "public") && strcmp(s->permission, "authenticated")) {
            crest_json_key(w, "x-permissions");
            crest_json_str(w, s->permission);
        }
    }
    parameters(o, ep);
    if (!crest__rest_openapi_operation(ep, o)) {
        char id[256];
        operation_id(w, ep, id, sizeof id);
        if (ep->sql && ep->sql->nbody)
            sql_body(o, ep->sql);
        else if (!ep->sql && s->json_body) {
            crest_json_key(w, "requestBody");
            crest_json_object_begin(w);
            crest_json_key(w, "required");
            crest_json_bool(w, s->body_required);
            crest__oa_json_content(o, NULL);
            crest_json_object_end(w);
        }
        crest_json_key(w, "responses");
        crest_json_object_begin(w);
        if (ep->sql)
            sql_responses(o, ep);
        else if (ep->builtin || is_builtin_docs(ep))
            builtin_responses(o, ep);
        else
            c_responses(o, ep);
        crest__oa_auth_responses(o, ep);
        crest_json_object_end(w);
    }
    crest_json_object_end(w);
}

static void problem_schema(crest__oa *o)
{
    crest_json *w = o->w;
    crest_json_key(w, "Problem");
    crest_json_object_begin(w);
    crest_json_key(w, "description");
    crest_json_str(w, "RFC 9457 problem details, with crest's stable code and per-field errors");
    crest__oa_type(o, "object", false);
    crest_json_key(w, "properties");
    crest_json_object_begin(w);
    static const char *const names[] = {"status", "title", "detail", "code"};
    for (size_t i = 0; i < CREST_ARRAY_LEN(names); i++) {
        crest_json_key(w, names[i]);
        crest_json_object_begin(w);
        crest__oa_type(o, i == 0 ? "integer" : "string", false);
        crest_json_object_end(w);
    }
    crest_json_key(w, "errors");
    crest_json_object_begin(w);
    crest__oa_type(o, "object", false);
    crest_json_key(w, "additionalProperties");
    crest_json_object_begin(w);
    crest__oa_type(o, "string", false);
    crest_json_object_end(w);
    crest_json_object_end(w);
    crest_json_object_end(w);
    crest_json_key(w, "required");
    crest_json_array_begin(w);
    crest_json_str(w, "status");
    crest_json_str(w, "title");
    crest_json_str(w, "code");
    crest_json_array_end(w);
    crest_json_object_end(w);
}

int crest__openapi_write(crest_app *app, crest_json *w, bool v30)
{
    crest__oa o = {.w = w, .v30 = v30, .app = app};
    crest_json_object_begin(w);
    crest_json_key(w, "openapi");
    crest_json_str(w, v30 ? "3.0.3" : "3.1.0");
    crest_json_key(w, "info");
    crest_json_object_begin(w);
    crest_json_key(w, "title");
    crest_json_str(w, app->info_title ? app->info_title : "crest API");
    crest_json_key(w, "version");
    crest_json_str(w, app->info_version ? app->info_version : "1.0.0");
    if (app->info_description) {
        crest_json_key(w, "description");
        crest_json_str(w, app->info_description);
    }
    crest_json_object_end(w);
    crest_json_key(w, "servers");
    crest_json_array_begin(w);
    for (unsigned i = 0; i < app->nservers; i++) {
        crest_json_object_begin(w);
        crest_json_key(w, "url");
        crest_json_str(w, app->servers[i]);
        if (app->server_descs[i]) {
            crest_json_key(w, "description");
            crest_json_str(w, app->server_descs[i]);
        }
        crest_json_object_end(w);
    }
    if (!app->nservers) {
        crest_json_object_begin(w);
        crest_json_key(w, "url");
        crest_json_str(w, "/");
        crest_json_object_end(w);
    }
    crest_json_array_end(w);
    /* Without auth no operation needs credentials; with it, each operation
     * says (public ones: security: []). */
    security(w, app->auth != NULL);
    /* Tags, in the order of first use. */
    crest_json_key(w, "tags");
    crest_json_array_begin(w);
    for (unsigned i = 0; i < app->neps; i++) {
        const char *t = app->eps[i]->spec->tag;
        bool seen = !t;
        for (unsigned j = 0; j < i && !seen; j++)
            seen = app->eps[j]->spec->tag && !strcmp(app->eps[j]->spec->tag, t);
        if (seen)
            continue;
        crest_json_object_begin(w);
        crest_json_key(w, "name");
        crest_json_str(w, t);
        const char *d = crest__app_tag_description(app, t);
        if (!d)
            d = crest__rest_tag_description(app, t);
        if (!d && !strcmp(t, "ops"))
            d = "The server's own routes: liveness";
        if (!d && !strcmp(t, "docs"))
            d = "This API's OpenAPI document and its interactive page";
        if (d) {
            crest_json_key(w, "description");
            crest_json_str(w, d);
        }
        crest_json_object_end(w);
    }
    crest_json_array_end(w);
    /* Paths: every method of a path in one item. */
    crest_json_key(w, "paths");
    crest_json_object_begin(w);
    for (unsigned i = 0; i < app->neps; i++) {
        const char *path = app->eps[i]->full_path;
        bool done = false;
        for (unsigned j = 0; j < i && !done; j++)
            done = !strcmp(app->eps[j]->full_path, path);
        if (done)
            continue;
        crest_json_key(w, path);
        crest_json_object_begin(w);
        for (unsigned j = i; j < app->neps; j++) {
            const crest__endpoint *ep = app->eps[j];
            if (strcmp(ep->full_path, path))
                continue;
            char m[16];
            const char *mn = crest_method_name(ep->spec->method);
            size_t k = 0;
            for (; mn[k] && k < sizeof m - 1; k++)
                m[k] = (char)(mn[k] >= 'A' && mn[k] <= 'Z' ? mn[k] + 32 : mn[k]);
            m[k] = 0;
            crest_json_key(w, m);
            write_operation(&o, ep);
        }
        crest_json_object_end(w);
    }
    crest_json_object_end(w);
    crest_json_key(w, "components");
    crest_json_object_begin(w);
    crest_json_key(w, "schemas");
    crest_json_object_begin(w);
    problem_schema(&o);
    crest__rest_openapi_schemas(app, &o);
    crest_json_object_end(w);
    if (app->auth) {
        crest_json_key(w, "securitySchemes");
        crest_json_object_begin(w);
        crest_json_key(w, "bearer");
        crest_json_object_begin(w);
        crest_json_key(w, "type");
        crest_json_str(w, "http");
        crest_json_key(w, "scheme");
        crest_json_str(w, "bearer");
        crest_json_key(w, "bearerFormat");
        crest_json_str(w, "JWT");
        crest_json_object_end(w);
        crest_json_object_end(w);
    }
    crest_json_object_end(w);
    crest_json_object_end(w);
    return crest_json_error(w);
}
