/* app.c — the app object and what handlers touch: the app's settings and
 * endpoint table (C specs, SQL endpoints, the builtins), the request's
 * accessors (path, headers, query, typed values, body, user, the worker's
 * SQLite connection) and the response's (status, headers, JSON, problems).
 * Request dispatch itself is in dispatch.c; nothing here knows about sockets. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>


#include "../json/json_internal.h"
#include "app_internal.h"
#include "../http/tls.h"
#include "../rest/rest_internal.h"

static atomic_uint_fast64_t app_gen; /* app->gen */

static const crest_limits default_limits = {
    .request_line = 8 * 1024,
    .header_line = 8 * 1024,
    .headers_total = 32 * 1024,
    .headers_count = 100,
    .body = 1024 * 1024,
    .json_depth = 64,
    .header_timeout_ms = 10000,
    .body_timeout_ms = 30000,
    .keepalive_timeout_ms = 30000,
    .max_connections = 10000,
    .drain_timeout_ms = 10000,
    .statement_timeout_ms = 5000,
    .response = 64 * 1024 * 1024,
    .output_buffer = 1024 * 1024,
    .body_total_timeout_ms = 60000,
};

crest_app *crest_app_new(void)
{
    crest_app *app = calloc(1, sizeof *app);
    if (!app)
        return NULL;
    app->router = crest__router_new();
    app->listen_host = strdup("127.0.0.1");
    app->api_prefix = strdup("");
    if (!app->router || !app->listen_host || !app->api_prefix) {
        crest_app_free(app);
        return NULL;
    }
    app->listen_port = 8080;
    app->gen = atomic_fetch_add(&app_gen, 1) + 1;
    app->limits = default_limits;
    app->access_log = true;
    app->metrics_on = true;
    app->compress_level = CREST__GZ_LEVEL;
    app->compress_min = CREST__GZ_MIN;
    return app;
}

void crest_app_free(crest_app *app)
{
    if (!app)
        return;
    for (unsigned i = 0; i < app->neps; i++) {
        crest__endpoint *e = app->eps[i];
        if (e->sql)
            crest__sqlep_free(e->sql);
        free(e->full_path);
        free(e);
    }
    free(app->eps);
    if (app->store && !app->reloaded) /* a reloaded app borrows the store of the app first served */
        app->store->vt->close(app->store);
    crest__router_free(app->router);
    free(app->listen_host);
    free(app->db_path);
    free(app->db_password_file);
    free(app->startup_sql);
    free(app->api_prefix);
    free(app->source_name);
    free(app->app_file);
    free(app->pid_file);
    free(app->info_title);
    free(app->info_version);
    free(app->info_description);
    for (unsigned i = 0; i < app->nservers; i++) {
        free(app->servers[i]);
        free(app->server_descs[i]);
    }
    free(app->servers);
    free(app->server_descs);
    free(app->openapi_doc);
    crest__gzslot_free(&app->openapi_gz);
    crest__docs_cache_free(app->docs_cache);
    free(app->metrics_perm);
    crest__metrics_free(app->metrics); /* shared with reloaded apps: freed by the last */
    free(app->metric_series);
    crest__changes_app_free(app);
    crest__auth_free(app->auth);
    if (!app->tls_borrowed)
        crest__tls_ctx_free(app->tls);
    if (!app->limits_borrowed)
        crest__ratelimits_free(app->limits_table);
    for (unsigned i = 0; i < app->ncors; i++)
        free(app->cors_origins[i]);
    free(app->cors_origins);
    free(app->cors_headers);
    for (unsigned i = 0; i < app->nmodules; i++)
        crest__module_free(app->modules[i]);
    free(app->modules);
    for (unsigned i = 0; i < app->nmodels; i++)
        crest__model_free(app->models[i]);
    free(app->models);
    for (unsigned i = 0; i < app->nlines; i++)
        free(app->lines[i].key);
    free(app->lines);
    for (unsigned i = 0; i < app->ntags; i++) {
        free(app->tags[i].name);
        free(app->tags[i].description);
    }
    free(app->tags);
    if (app->appfile && app->appfile_free)
        app->appfile_free(app->appfile);
    free(app);
}

int crest__app_note_line(crest_app *app, const char *key, int line)
{
    struct crest__line *l = app->lines;
    if (app->nlines == app->caplines) { /* doubled: an app file may note a line per seed row */
        unsigned cap = app->caplines ? 2 * app->caplines : 64;
        if (!(l = realloc(app->lines, cap * sizeof *l)))
            return CREST_ENOMEM;
        app->lines = l;
        app->caplines = cap;
    }
    if (!(l[app->nlines].key = strdup(key)))
        return CREST_ENOMEM;
    l[app->nlines++].line = line;
    return 0;
}

int crest__app_set_tag_description(crest_app *app, const char *tag, const char *description)
{
    struct crest__tag *t = realloc(app->tags, (app->ntags + 1) * sizeof *t);
    if (!t)
        return CREST_ENOMEM;
    app->tags = t;
    t[app->ntags].name = strdup(tag);
    t[app->ntags].description = strdup(description);
    if (!t[app->ntags].name || !t[app->ntags].description) {
        free(t[app->ntags].name);
        free(t[app->ntags].description);
        return CREST_ENOMEM;
    }
    app->ntags++;
    return 0;
}

const char *crest__app_tag_description(const crest_app *app, const char *tag)
{
    for (unsigned i = app->ntags; i-- > 0;) /* the last one given wins */
        if (!strcmp(app->tags[i].name, tag))
            return app->tags[i].description;
    return NULL;
}

int crest__app_line(const crest_app *app, const char *key)
{
    for (unsigned i = 0; i < app->nlines; i++)
        if (!strcmp(app->lines[i].key, key))
            return app->lines[i].line;
    return 0;
}

int crest__app_locate(const crest_app *app, crest_error *err, const char *key, int rc)
{
    int line = crest__app_line(app, key);
    if (err && err->line == 0 && line > 0 && app->source_name) {
        snprintf(err->file, sizeof err->file, "%s", app->source_name);
        err->line = line;
    }
    return rc;
}

crest_limits *crest_app_limits(crest_app *app) { return &app->limits; }
void crest_app_set_access_log(crest_app *app, bool on) { app->access_log = on; }

int crest_app_set_pid_file(crest_app *app, const char *path)
{
    char *p = path ? strdup(path) : NULL;
    if (path && !p)
        return CREST_ENOMEM;
    free(app->pid_file);
    app->pid_file = p;
    return 0;
}

const char *crest_app_pid_file(const crest_app *app) { return app->pid_file; }

int crest_app_set_metrics(crest_app *app, bool on, const char *permission)
{
    crest__app_made_in_c(app);
    char *p = permission ? strdup(permission) : NULL;
    if (permission && !p)
        return CREST_ENOMEM;
    free(app->metrics_perm);
    app->metrics_perm = p;
    app->metrics_on = on;
    return 0;
}

int crest_app_set_compression(crest_app *app, bool on, size_t min_bytes, int level)
{
    crest__app_made_in_c(app);
    if (level < 1 || level > 9)
        return CREST_EINVAL;
    app->compress_off = !on;
    app->compress_min = min_bytes;
    app->compress_level = level;
    return 0;
}

int crest_app_set_tls(crest_app *app, const char *cert_file, const char *key_file, crest_error *err)
{
    if (!cert_file || !key_file)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "TLS needs a certificate file and a key file");
    crest__tls_ctx *ctx = crest__tls_ctx_new(cert_file, key_file, err);
    if (!ctx)
        return err && err->code ? err->code : CREST_ECONFIG;
    crest__tls_ctx_free(app->tls);
    app->tls = ctx;
    return 0;
}

int crest_app_set_listen(crest_app *app, const char *host_port)
{
    if (!host_port)
        return CREST_EINVAL;
    const char *colon = strrchr(host_port, ':');
    const char *port_s = colon ? colon + 1 : host_port;
    int64_t port;
    if (crest__parse_int(port_s, strlen(port_s), &port) || port < 0 || port > 65535)
        return CREST_EINVAL;
    char *host;
    if (colon && colon != host_port) {
        const char *h = host_port;
        size_t hl = (size_t)(colon - host_port);
        if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') { /* [::1]:8080 */
            h++;
            hl -= 2;
        }
        host = strndup(h, hl);
    } else {
        host = strdup("127.0.0.1");
    }
    if (!host)
        return CREST_ENOMEM;
    free(app->listen_host);
    app->listen_host = host;
    app->listen_port = (int)port;
    return 0;
}

int crest_app_set_workers(crest_app *app, int n)
{
    if (n < 0 || n > 256)
        return CREST_EINVAL;
    app->workers = n;
    return 0;
}

int crest_app_set_database(crest_app *app, const char *url)
{
    if (!url)
        return CREST_EINVAL;
    bool pg = false;
    if (strncmp(url, "sqlite:", 7) == 0) {
        url += 7;
        if (strncmp(url, "//", 2) == 0) /* sqlite:///abs/path or sqlite://rel */
            url += 2;
    } else if (crest__pg_is_conninfo(url)) {
        pg = true;
    } else if (strncmp(url, "postgres", 8) == 0) {
        return CREST_EINVAL;
    }
    if (!*url)
        return CREST_EINVAL;
    char *p = strdup(url);
    if (!p)
        return CREST_ENOMEM;
    free(app->db_path);
    app->db_path = p;
    app->db_postgres = pg;
    return 0;
}

int crest_app_add_startup_sql(crest_app *app, const char *sql)
{
    crest__app_made_in_c(app);
    if (!sql)
        return CREST_EINVAL;
    size_t old = app->startup_sql ? strlen(app->startup_sql) : 0, n = strlen(sql);
    char *p = realloc(app->startup_sql, old + n + 3);
    if (!p)
        return CREST_ENOMEM;
    if (old)
        p[old++] = ';', p[old++] = '\n';
    memcpy(p + old, sql, n + 1);
    app->startup_sql = p;
    return 0;
}

int crest_app_set_api_prefix(crest_app *app, const char *prefix)
{
    crest__app_made_in_c(app);
    if (!prefix)
        return CREST_EINVAL;
    size_t n = strlen(prefix);
    while (n && prefix[n - 1] == '/')
        n--;
    if (n && prefix[0] != '/')
        return CREST_EINVAL;
    if (app->neps)
        return CREST_EINVAL; /* set it before adding endpoints */
    char *p = strndup(prefix, n);
    if (!p)
        return CREST_ENOMEM;
    free(app->api_prefix);
    app->api_prefix = p;
    return 0;
}

static int check_spec(const crest_endpoint *ep, crest_error *err)
{
    const char *path = ep->path ? ep->path : "(null)";
    char msg[400];
    if (crest__path_check(path, msg, sizeof msg))
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "%s", msg);
    if (!crest_method_name(ep->method))
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "%s: unknown method", path);
    if (!ep->handler)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "%s: no handler", path);
    if (ep->status && (ep->status < 100 || ep->status > 599))
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "%s: bad status %d", path, ep->status);
    unsigned n = 0;
    for (const crest_param *p = ep->params; p && p->name; p++, n++) {
        if (n >= 64)
            return crest__error_set(err, CREST_EINVAL, NULL, 0, "%s: more than 64 parameters", path);
        if (p->in < CREST_IN_PATH || p->in > CREST_IN_HEADER)
            return crest__error_set(err, CREST_EINVAL, NULL, 0, "%s: parameter '%s' has no location", path, p->name);
        if (p->type < CREST_T_STRING || p->type > CREST_T_UUID)
            return crest__error_set(err, CREST_EINVAL, NULL, 0, "%s: parameter '%s' has no type", path, p->name);
        if (p->type == CREST_T_ENUM && (!p->values || !p->values[0]))
            return crest__error_set(err, CREST_EINVAL, NULL, 0, "%s: enum parameter '%s' has no values", path,
                                    p->name);
        if (p->in == CREST_IN_PATH) {
            char pat[256];
            snprintf(pat, sizeof pat, "{%s}", p->name);
            if (!strstr(ep->path, pat))
                return crest__error_set(err, CREST_EINVAL, NULL, 0, "%s: path parameter '%s' is not in the path",
                                        path, p->name);
        }
    }
    /* Every {param} of the path must be declared, so it is typed and documented. */
    for (const char *s = ep->path; (s = strchr(s, '{')); s++) {
        const char *e = strchr(s, '}');
        if (!e)
            break;
        bool found = false;
        for (const crest_param *p = ep->params; p && p->name; p++)
            if (p->in == CREST_IN_PATH && strlen(p->name) == (size_t)(e - s - 1) &&
                memcmp(p->name, s + 1, (size_t)(e - s - 1)) == 0)
                found = true;
        if (!found)
            return crest__error_set(err, CREST_EINVAL, NULL, 0, "%s: path parameter '%.*s' is not declared", path,
                                    (int)(e - s - 1), s + 1);
    }
    return 0;
}

static int add_endpoint(crest_app *app, const crest_endpoint *ep, void *ud, crest__sqlep *sql, bool builtin,
                        crest_error *err)
{
    if (!ep || !ep->path)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "endpoint without a path");
    int rc = check_spec(ep, err);
    if (rc)
        return rc;
    crest__endpoint *e = calloc(1, sizeof *e);
    if (!e)
        return CREST_ENOMEM;
    if (ep->rate_limit) {
        if (crest__rate_parse(ep->rate_limit, &e->rate)) {
            free(e);
            return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                    "%s: rate_limit: expected requests/period, as in 100/1m or 10/s, found '%s'",
                                    ep->path, ep->rate_limit);
        }
        e->rate_group = ep->tag ? ep->tag : ep->path;
        if (crest__ratelimits_init(app)) {
            free(e);
            return CREST_ENOMEM;
        }
    }
    e->spec = ep;
    e->ud = ud;
    e->builtin = builtin;
    const char *prefix = builtin ? "" : app->api_prefix;
    size_t n = strlen(prefix) + strlen(ep->path) + 1;
    e->full_path = malloc(n);
    if (!e->full_path) {
        free(e);
        return CREST_ENOMEM;
    }
    snprintf(e->full_path, n, "%s%s", prefix, ep->path);
    for (const crest_param *p = ep->params; p && p->name; p++)
        e->nparams++;
    if (app->neps == app->caps) {
        unsigned nc = app->caps ? app->caps * 2 : 16;
        crest__endpoint **ne = realloc(app->eps, nc * sizeof *ne);
        if (!ne) {
            free(e->full_path);
            free(e);
            return CREST_ENOMEM;
        }
        app->eps = ne;
        app->caps = nc;
    }
    rc = crest__router_add(app->router, ep->method, e->full_path, e, err);
    if (rc) {
        free(e->full_path);
        free(e);
        return rc;
    }
    e->index = app->neps;
    e->sql = sql;
    app->eps[app->neps++] = e;
    return 0;
}

int crest_app_add_endpoint(crest_app *app, const crest_endpoint *ep, void *ud, crest_error *err)
{
    crest__app_made_in_c(app);
    return add_endpoint(app, ep, ud, NULL, false, err);
}

int crest_app_add_endpoints(crest_app *app, const crest_endpoint *eps, size_t n, void *ud, crest_error *err)
{
    crest__app_made_in_c(app);
    for (size_t i = 0; i < n; i++) {
        int rc = add_endpoint(app, &eps[i], ud, NULL, false, err);
        if (rc)
            return rc;
    }
    return 0;
}

/* Used by the app file loader: the endpoint takes ownership of sql on success. */
int crest__app_add_sql_endpoint(crest_app *app, const crest_endpoint *ep, crest__sqlep *sql, crest_error *err);
int crest__app_add_sql_endpoint(crest_app *app, const crest_endpoint *ep, crest__sqlep *sql, crest_error *err)
{
    return add_endpoint(app, ep, sql, sql, false, err);
}

static int healthz(crest_req *req, crest_res *res, void *ud)
{
    CREST_UNUSED(req);
    CREST_UNUSED(ud);
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "status");
    crest_json_str(w, "ok");
    crest_json_object_end(w);
    return 0;
}

static const crest_endpoint healthz_ep = {
    .method = CREST_GET, .path = "/healthz", .summary = "Liveness check", .tag = "ops", .handler = healthz,
};

static void readyz_answer(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    CREST_UNUSED(req);
    CREST_UNUSED(ud);
    if (rows) { /* (a failure is answered already: 503 + Retry-After, or 504) */
        crest_json *w = crest_res_json(res);
        crest_json_object_begin(w);
        crest_json_key(w, "status");
        crest_json_str(w, "ready");
        crest_json_object_end(w);
    }
    crest_res_finish(res);
}

/* Readiness, for load balancers: the database answers a statement through
 * this worker's own path (on PostgreSQL its pool: a pool that is down, or
 * so busy that the statement cannot start within the endpoint's timeout,
 * answers 503 with Retry-After). Liveness is /healthz, which never asks. */
static int readyz(crest_req *req, crest_res *res, void *ud)
{
    CREST_UNUSED(ud);
    if (!req->app->store)
        return healthz(req, res, NULL);
    return crest_query(req, res, "SELECT 1", NULL, 0, readyz_answer, NULL);
}

static const crest_endpoint readyz_ep = {
    .method = CREST_GET, .path = "/readyz", .summary = "Readiness check: the database answers", .tag = "ops",
    .handler = readyz, .timeout_ms = 2000,
};

int crest__app_add_builtin(crest_app *app, const crest_endpoint *ep, void *ud, crest_error *err)
{
    return add_endpoint(app, ep, ud, NULL, true, err);
}

/* Whether the app routes GET /<segment> itself (then its builtin stays out). */
static bool app_has_get(crest_app *app, const char *segment)
{
    crest__str seg = {segment, strlen(segment)};
    crest__match m;
    return crest__router_match(app->router, CREST_GET, &seg, 1, &m) == 200;
}

int crest__app_add_builtin_routes(crest_app *app, crest_error *err)
{
    if (app->builtins_added)
        return 0;
    int rc = 0;
    if (!app_has_get(app, "healthz"))
        rc = add_endpoint(app, &healthz_ep, NULL, NULL, true, err);
    if (!rc && !app_has_get(app, "readyz"))
        rc = add_endpoint(app, &readyz_ep, NULL, NULL, true, err);
    if (!rc && app->metrics_on && !app_has_get(app, "metrics")) {
        /* Behind auth like any route when the app has it: metrics name its routes. */
        app->metrics_spec = *crest__metrics_endpoint();
        app->metrics_spec.permission = app->metrics_perm;
        rc = add_endpoint(app, &app->metrics_spec, NULL, NULL, true, err);
        if (!rc)
            app->eps[app->neps - 1]->guarded = true;
    }
    if (!rc)
        rc = crest__openapi_add_builtins(app, err);
    app->builtins_added = rc == 0;
    return rc;
}

int crest__app_add_builtins(crest_app *app, crest_error *err)
{
    if (app->openapi_doc)
        return 0; /* done already (a second serve of the same app) */
    int rc = crest__app_add_builtin_routes(app, err);
    if (!rc) {
        app->openapi_doc = crest_app_openapi(app, app->openapi_30, &app->openapi_len);
        if (!app->openapi_doc)
            rc = CREST_ENOMEM;
    }
    return rc;
}

/* The document of the app with its builtin routes (src/openapi writes it). */
char *crest_app_openapi(crest_app *app, bool v30, size_t *len)
{
    if (crest__app_add_builtin_routes(app, NULL))
        return NULL;
    crest_json w;
    crest_json_init(&w, 0);
    if (crest__openapi_write(app, &w, v30) || w.depth != 0) {
        crest_json_dispose(&w);
        return NULL;
    }
    size_t n;
    const char *d = crest_json_data(&w, &n);
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, d, n);
        out[n] = 0;
        if (len)
            *len = n;
    }
    crest_json_dispose(&w);
    return out;
}

/* ---- request accessors ---- */

crest_method crest_req_method(const crest_req *req) { return req->method; }
const char *crest_req_path(const crest_req *req)
{
    if (!req->path)
        return "";
    if (!req->path_decoded) {
        /* Decoded once, on demand (a cache: the request does not change). */
        crest_req *r = (crest_req *)req;
        size_t n = strlen(req->path);
        char *d = crest__arena_alloc(r->arena, n + 1);
        long k = d ? crest__percent_decode(d, req->path, n, false) : -1;
        if (k < 0)
            return req->path; /* the router answered 400 for a bad escape already */
        d[k] = 0;
        r->path_decoded = d;
    }
    return req->path_decoded;
}
const char *crest_req_id(const crest_req *req) { return req->id; }
const crest_user *crest_req_user(const crest_req *req) { return req->user; }
json_t *crest_req_json(const crest_req *req) { return req->json; }
void *crest_req_alloc(crest_req *req, size_t n) { return crest__arena_alloc(req->arena, n); }

const char *crest_req_body(const crest_req *req, size_t *len)
{
    if (len)
        *len = req->body_len;
    return req->body_len ? req->body : NULL;
}

const char *crest_req_header(const crest_req *req, const char *name)
{
    size_t n = strlen(name);
    for (unsigned i = 0; i < req->nheaders; i++)
        if (crest__strcaseeq(req->headers[i].name, req->headers[i].name_len, name, n))
            return req->headers[i].value;
    return NULL;
}

const char *crest_req_query_at(const crest_req *req, const char *key, unsigned nth)
{
    for (unsigned i = 0; i < req->nquery; i++)
        if (strcmp(req->query[i].key, key) == 0 && nth-- == 0)
            return req->query[i].value;
    return NULL;
}

const char *crest_req_query(const crest_req *req, const char *key) { return crest_req_query_at(req, key, 0); }

static const crest__value *value_of(const crest_req *req, const char *name)
{
    if (!req->ep || !req->values)
        return NULL;
    unsigned i = 0;
    for (const crest_param *p = req->ep->spec->params; p && p->name; p++, i++)
        if (strcmp(p->name, name) == 0)
            return req->values[i].present ? &req->values[i] : NULL;
    return NULL;
}

bool crest_req_has(const crest_req *req, const char *name) { return value_of(req, name) != NULL; }
const char *crest_req_str(const crest_req *req, const char *name)
{
    const crest__value *v = value_of(req, name);
    return v ? v->str : NULL;
}
int64_t crest_req_int(const crest_req *req, const char *name)
{
    const crest__value *v = value_of(req, name);
    return v ? v->i : 0;
}
double crest_req_float(const crest_req *req, const char *name)
{
    const crest__value *v = value_of(req, name);
    return v ? v->f : 0;
}
bool crest_req_bool(const crest_req *req, const char *name)
{
    const crest__value *v = value_of(req, name);
    return v ? v->b : false;
}

/* ---- response ---- */

crest_json *crest_res_json(crest_res *res)
{
    res->json_used = true;
    return res->json;
}

void crest_res_status(crest_res *res, int status)
{
    if (status >= 100 && status <= 599)
        res->status = status;
}

int crest_res_header(crest_res *res, const char *name, const char *value)
{
    /* Header injection: no CR/LF in either part. */
    if (strpbrk(name, "\r\n:") || strpbrk(value, "\r\n") || !*name)
        return CREST_EINVAL;
    if (crest__buf_appendf(res->headers, "%s: %s\r\n", name, value))
        return CREST_ENOMEM;
    return 0;
}

/* Every problem answer ends here: the code and detail are static or in the
 * request's arena; a new problem drops the field errors of an earlier one. */
static int set_problem(crest_res *res, int status, const char *code, const char *detail)
{
    res->is_error = true;
    res->err_status = status;
    res->err_code = code;
    res->err_detail = detail;
    res->err_fields = NULL;
    res->nerr_fields = 0;
    return -1;
}

/* The detail printed into the request's arena (at most 1023 bytes); NULL
 * when the arena is out of memory: the title stands alone. */
static const char *format_detail(crest_res *res, const char *fmt, va_list ap)
{
    char tmp[1024];
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    return crest__arena_strdup(res->arena, tmp);
}

void crest__res_fail_static(crest_res *res, crest__ecode e, const char *detail)
{
    const crest__problem_def *d = crest__problem(e);
    set_problem(res, d->status, d->code, detail ? detail : d->detail);
}

int crest__res_fail(crest_res *res, crest__ecode e, const char *fmt, ...)
{
    const crest__problem_def *d = crest__problem(e);
    if (!fmt)
        return set_problem(res, d->status, d->code, d->detail);
    va_list ap;
    va_start(ap, fmt);
    const char *detail = format_detail(res, fmt, ap);
    va_end(ap);
    return set_problem(res, d->status, d->code, detail);
}

int crest__res_fail_status(crest_res *res, crest__ecode e, int status, const char *fmt, ...)
{
    const crest__problem_def *d = crest__problem(e);
    if (!d->any_status || status < 400 || status > 599)
        status = d->status;
    const char *detail = d->detail;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        detail = format_detail(res, fmt, ap);
        va_end(ap);
    }
    return set_problem(res, status, d->code, detail);
}

int crest_res_error(crest_res *res, int status, const char *code, const char *fmt, ...)
{
    if (status < 400 || status > 599)
        status = 500;
    /* The caller's code may live in a buffer it reuses: the answer keeps a
     * copy. Without memory for it, the answer is the 503 of the table. */
    const char *c = code ? crest__arena_strdup(res->arena, code) : crest__problem(CREST__E_ERROR)->code;
    if (!c)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    const char *detail;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        detail = format_detail(res, fmt, ap);
        va_end(ap);
    } else {
        detail = crest__arena_strdup(res->arena, "");
    }
    return set_problem(res, status, c, detail);
}

int crest_app_add_cors_origin(crest_app *app, const char *origin)
{
    crest__app_made_in_c(app);
    if (!origin || !*origin || strpbrk(origin, "\r\n ,"))
        return CREST_EINVAL;
    char **o = realloc(app->cors_origins, (app->ncors + 1) * sizeof *o);
    if (!o)
        return CREST_ENOMEM;
    app->cors_origins = o;
    if (!(o[app->ncors] = strdup(origin)))
        return CREST_ENOMEM;
    app->ncors++;
    if (!app->cors_max_age[0])
        snprintf(app->cors_max_age, sizeof app->cors_max_age, "600");
    return 0;
}

int crest_app_set_cors(crest_app *app, const char *headers, unsigned max_age_s, bool credentials)
{
    crest__app_made_in_c(app);
    if (headers && strpbrk(headers, "\r\n"))
        return CREST_EINVAL;
    char *h = headers ? strdup(headers) : NULL;
    if (headers && !h)
        return CREST_ENOMEM;
    free(app->cors_headers);
    app->cors_headers = h;
    snprintf(app->cors_max_age, sizeof app->cors_max_age, "%u", max_age_s);
    app->cors_credentials = credentials;
    return 0;
}

int crest_res_send(crest_res *res, const char *content_type, const void *data, size_t len)
{
    crest_json_reset(res->json);
    crest_json_raw(res->json, data, len); /* the writer's buffer holds the bytes; no JSON is checked */
    if (crest_json_error(res->json))
        return crest__res_fail(res, CREST__E_RESPONSE_TOO_LARGE, NULL);
    res->json_used = true;
    res->content_type = content_type;
    return 0;
}

const char *crest_res_error_code(const crest_res *res)
{
    return res->is_error ? res->err_code : NULL;
}

int crest_res_error_field(crest_res *res, const char *field, const char *msg)
{
    crest__field_error *f = crest__arena_alloc(res->arena, sizeof *f);
    if (!f)
        return CREST_ENOMEM;
    f->field = crest__arena_strdup(res->arena, field);
    f->msg = crest__arena_strdup(res->arena, msg);
    if (!f->field || !f->msg)
        return CREST_ENOMEM;
    /* Keep declaration order: append. */
    f->next = NULL;
    crest__field_error **pp = &res->err_fields;
    while (*pp)
        pp = &(*pp)->next;
    *pp = f;
    res->nerr_fields++;
    return 0;
}
