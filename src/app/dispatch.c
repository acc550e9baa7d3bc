/* dispatch.c — one request through the app: route, spec check, handler,
 * render. The spec check is the one place where path, query and header
 * parameters are typed and bounded and the JSON body is read, so handlers
 * only ever see validated input. */
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "../json/json_internal.h"
#include "app_internal.h"
#include "../sqlep/sqlep.h"

void crest__req_reset(crest_req *req, crest_res *res)
{
    crest__arena *a = req->arena;
    crest__worker *w = req->worker;
    crest_app *app = req->app;
    crest_json *json = res->json;
    crest__buf *hdrs = res->headers;
    if (req->statements) /* counted once the request is over: an abandoned one's too */
        crest__metrics_statements(w, req->statements);
    memset(req, 0, sizeof *req);
    memset(res, 0, sizeof *res);
    req->arena = a;
    req->worker = w;
    req->app = app;
    res->arena = a;
    res->req = req;
    res->json = json;
    res->headers = hdrs;
    crest_json_reset(json);
    hdrs->len = 0;
}

static void decref_json(void *p) { json_decref(p); }

int crest__query_parse(crest_req *req, const char *q, size_t len)
{
    unsigned n = 1;
    for (size_t i = 0; i < len; i++)
        if (q[i] == '&')
            n++;
    req->query = crest__arena_alloc(req->arena, n * sizeof *req->query);
    if (!req->query)
        return CREST_ENOMEM;
    const char *p = q, *end = q + len;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if (e > p) {
            const char *eq = memchr(p, '=', (size_t)(e - p));
            const char *ke = eq ? eq : e;
            char *k = crest__arena_alloc(req->arena, (size_t)(ke - p) + 1);
            char *v = crest__arena_alloc(req->arena, eq ? (size_t)(e - eq) : 1);
            if (!k || !v)
                return CREST_ENOMEM;
            long kl = crest__percent_decode(k, p, (size_t)(ke - p), true);
            long vl = eq ? crest__percent_decode(v, eq + 1, (size_t)(e - eq - 1), true) : 0;
            if (kl < 0 || vl < 0 || memchr(k, 0, (size_t)kl) || memchr(v, 0, (size_t)vl))
                return CREST_EINVAL;
            k[kl] = 0;
            v[vl] = 0;
            req->query[req->nquery].key = k;
            req->query[req->nquery].value = v;
            req->nquery++;
        }
        p = e + 1;
    }
    return 0;
}

static const char *where_name(crest_param_in in)
{
    return in == CREST_IN_PATH ? "path" : in == CREST_IN_QUERY ? "query" : "header";
}

/* Types and bounds one raw value. Returns NULL when fine, else the message. */
static const char *type_value(crest_req *req, const crest_param *p, const char *raw, crest__value *v)
{
    size_t len = strlen(raw);
    v->present = true;
    v->str = raw;
    switch (p->type) {
    case CREST_T_INT:
        if (crest__parse_int(raw, len, &v->i))
            return "must be an integer";
        v->f = (double)v->i;
        if (p->has_min && (double)v->i < p->min)
            return crest__arena_printf(req->arena, "must be >= %.15g", p->min);
        if (p->has_max && (double)v->i > p->max)
            return crest__arena_printf(req->arena, "must be <= %.15g", p->max);
        return NULL;
    case CREST_T_FLOAT:
        if (crest__parse_double(raw, len, &v->f))
            return "must be a number";
        if (p->has_min && v->f < p->min)
            return crest__arena_printf(req->arena, "must be >= %.15g", p->min);
        if (p->has_max && v->f > p->max)
            return crest__arena_printf(req->arena, "must be <= %.15g", p->max);
        return NULL;
    case CREST_T_BOOL:
        if (crest__parse_bool(raw, len, &v->b))
            return "must be true or false";
        return NULL;
    case CREST_T_ENUM:
        for (const char *const *e = p->values; *e; e++)
            if (strcmp(*e, raw) == 0)
                return NULL;
        {
            crest__buf b;
            crest__buf_init(&b, 2048);
            crest__buf_appends(&b, "must be one of: ");
            for (const char *const *e = p->values; *e; e++)
                crest__buf_appendf(&b, "%s%s", e == p->values ? "" : ", ", *e);
            const char *m = crest__arena_strndup(req->arena, b.ptr ? b.ptr : "", b.len);
            crest__buf_dispose(&b);
            return m ? m : "is not an allowed value";
        }
    case CREST_T_UUID: {
        char *canon = crest__arena_alloc(req->arena, 37);
        if (!canon)
            return "cannot be checked (out of memory)";
        if (crest__uuid_norm(raw, len, canon))
            return CREST__UUID_INVALID;
        v->str = canon;
        return NULL;
    }
    case CREST_T_STRING: {
        /* Bounds on strings count characters (UTF-8 code points), not bytes. */
        size_t chars = 0;
        for (size_t i = 0; i < len; i++)
            if (((unsigned char)raw[i] & 0xC0) != 0x80)
                chars++;
        if (p->has_min && (double)chars < p->min)
            return crest__arena_printf(req->arena, "must be at least %.0f characters", p->min);
        if (p->has_max && (double)chars > p->max)
            return crest__arena_printf(req->arena, "must be at most %.0f characters", p->max);
        return NULL;
    }
    }
    return "has an unknown type";
}

/* Whether the spec declares a query parameter of this name; a declared
 * "fields[*]" stands for every "fields[<key>]" (read by the handler from
 * the query itself). */
static bool declared_query(const crest_endpoint *spec, const char *name)
{
    size_t n = strlen(name);
    for (const crest_param *p = spec->params; p && p->name; p++) {
        if (p->in != CREST_IN_QUERY)
            continue;
        if (strcmp(p->name, name) == 0)
            return true;
        size_t k = strlen(p->name);
        if (k > 3 && !strcmp(p->name + k - 3, "[*]") && n > k - 1 && !strncmp(p->name, name, k - 2) &&
            name[n - 1] == ']')
            return true;
    }
    return false;
}

/* Adds a field error naming `name` to the answer being built. */
static void note_bad(crest_req *req, crest_res *res, const char *name, const char *msg)
{
    crest__field_error *f = crest__arena_alloc(req->arena, sizeof *f);
    if (!f)
        return;
    f->field = name;
    f->msg = msg;
    f->next = NULL;
    crest__field_error **pp = &res->err_fields;
    while (*pp)
        pp = &(*pp)->next;
    *pp = f;
    res->nerr_fields++;
}

static int check_params(crest_req *req, crest_res *res)
{
    const crest__endpoint *ep = req->ep;
    bool strict = ep->spec->strict_query;
    if (!ep->nparams && !(strict && req->nquery))
        return 0;
    req->values = crest__arena_calloc(req->arena, ep->nparams ? ep->nparams : 1, sizeof *req->values);
    if (!req->values)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    const crest_param *bad = NULL;
    const char *bad_name = NULL, *bad_msg = NULL;
    crest_param_in bad_in = CREST_IN_QUERY;
    unsigned nbad = 0, i = 0;
    for (const crest_param *p = ep->spec->params; p && p->name; p++, i++) {
        const char *raw = NULL;
        if (p->in == CREST_IN_PATH) {
            const crest__route *rt = req->match.route;
            for (unsigned k = 0; k < rt->nparams; k++)
                if (strcmp(rt->param_names[k], p->name) == 0) {
                    raw = crest__arena_strndup(req->arena, req->match.values[k].ptr, req->match.values[k].len);
                    if (!raw)
                        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
                }
        } else if (p->in == CREST_IN_QUERY) {
            raw = crest_req_query(req, p->name);
        } else {
            raw = crest_req_header(req, p->name);
        }
        const char *msg = NULL;
        if (p->in == CREST_IN_QUERY && raw && crest_req_query_at(req, p->name, 1)) {
            /* one value per parameter: ?page=1&page=2 is refused, not answered with one of them */
            msg = "is given more than once";
        } else if (!raw) {
            if (p->def)
                msg = type_value(req, p, p->def, &req->values[i]);
            else if (p->required)
                msg = "is required";
        } else {
            msg = type_value(req, p, raw, &req->values[i]);
        }
        if (msg) {
            req->values[i].present = false;
            if (nbad++ == 0) { /* the problem itself is filled once we know how many there are */
                bad = p;
                bad_name = p->name;
                bad_in = p->in;
                bad_msg = msg;
            }
            note_bad(req, res, p->name, msg);
        }
    }
    /* Query parameters the spec does not declare, each named once. */
    for (unsigned k = 0; strict && k < req->nquery; k++) {
        const char *name = req->query[k].key;
        if (declared_query(ep->spec, name))
            continue;
        bool seen = false;
        for (unsigned j = 0; j < k && !seen; j++)
            seen = strcmp(req->query[j].key, name) == 0;
        if (seen)
            continue;
        if (nbad++ == 0) {
            bad_name = name;
            bad_in = CREST_IN_QUERY;
            bad_msg = "is unknown";
        }
        note_bad(req, res, name, "is unknown");
    }
    if (!nbad)
        return 0;
    crest__field_error *fields = res->err_fields;
    unsigned nfields = res->nerr_fields;
    crest__ecode code = bad && strcmp(bad_msg, "is required") == 0 && nbad == 1 ? CREST__E_MISSING_PARAMETER
                                                                                : CREST__E_INVALID_PARAMETER;
    if (nbad == 1)
        crest__res_fail(res, code, "%s parameter '%s' %s", where_name(bad_in), bad_name, bad_msg);
    else
        crest__res_fail(res, code, "%u parameters are invalid", nbad);
    res->err_fields = fields;
    res->nerr_fields = nfields;
    return -1;
}

static bool is_json_type(const char *ct)
{
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; \t");
    if (crest__strcaseeq(ct, n, "application/json", 16))
        return true;
    /* application/<anything>+json, e.g. application/merge-patch+json */
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 && crest__strcaseeq(ct + n - 5, 5, "+json", 5);
}

/* Whether every Content-Encoding of the request is identity (or none is
 * given): crest does not decode request bodies. */
static bool identity_encoded(const crest_req *req)
{
    for (unsigned i = 0; i < req->nheaders; i++) {
        const crest__header *h = &req->headers[i];
        if (!crest__strcaseeq(h->name, h->name_len, "content-encoding", 16))
            continue;
        const char *p = h->value, *end = h->value + h->value_len;
        while (p < end) { /* a list: "gzip, identity" */
            const char *comma = memchr(p, ',', (size_t)(end - p));
            const char *e = comma ? comma : end;
            while (p < e && (*p == ' ' || *p == '\t'))
                p++;
            const char *t = e;
            while (t > p && (t[-1] == ' ' || t[-1] == '\t'))
                t--;
            if (t > p && !crest__strcaseeq(p, (size_t)(t - p), "identity", 8))
                return false;
            p = comma ? comma + 1 : end;
        }
    }
    return true;
}

static int check_body(crest_req *req, crest_res *res)
{
    const crest_endpoint *spec = req->ep->spec;
    if (req->body_len && !identity_encoded(req)) {
        /* RFC 9110 15.5.16: say which codings are accepted. */
        crest_res_header(res, "Accept-Encoding", "identity");
        return crest__res_fail(res, CREST__E_UNSUPPORTED_CONTENT_ENCODING,
                               "request bodies are not decoded: send the body without Content-Encoding");
    }
    if (!spec->json_body)
        return 0;
    if (req->body_len == 0) {
        if (spec->body_required)
            return crest__res_fail(res, CREST__E_MISSING_BODY, NULL);
        return 0;
    }
    if (!is_json_type(crest_req_header(req, "content-type")))
        return crest__res_fail(res, CREST__E_UNSUPPORTED_MEDIA_TYPE, NULL);
    char msg[256];
    json_t *v = crest__json_parse(req->body, req->body_len, req->app->limits.json_depth, msg, sizeof msg);
    if (!v)
        return crest__res_fail(res, CREST__E_INVALID_JSON, "%s", msg);
    if (crest__arena_defer(req->arena, decref_json, v)) {
        json_decref(v);
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    }
    req->json = v;
    return 0;
}

static bool valid_request_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char c = s[n];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
              c == '.'))
            return false;
    }
    return n > 0 && n < sizeof(((crest_req *)0)->id);
}

static const char *allow_list(crest_req *req, unsigned mask)
{
    char buf[128];
    size_t o = 0;
    buf[0] = 0;
    for (unsigned m = 1; m < CREST_METHOD_COUNT; m++)
        if (mask & (1u << m))
            o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s", o ? ", " : "", crest_method_name((crest_method)m));
    return crest__arena_strdup(req->arena, buf);
}

/* CORS headers for an allowed Origin; nothing for the others (the browser
 * then refuses). A preflight gets them only for a method the route has. */
static void cors(crest_req *req, crest_res *res, bool preflight)
{
    crest_app *app = req->app;
    const char *origin = app->ncors ? crest_req_header(req, "origin") : NULL;
    if (!origin)
        return;
    bool any = false, ok = false;
    for (unsigned i = 0; i < app->ncors && !ok; i++) {
        any |= !strcmp(app->cors_origins[i], "*");
        ok = !strcmp(app->cors_origins[i], origin);
    }
    if (!ok && !(any && !app->cors_credentials))
        return;
    if (preflight) {
        const char *m = crest_req_header(req, "access-control-request-method");
        bool allowed = false;
        for (unsigned k = 1; m && k < CREST_METHOD_COUNT && !allowed; k++)
            allowed = (req->match.allow & (1u << k)) && !strcmp(m, crest_method_name((crest_method)k));
        if (!allowed)
            return;
    }
    crest_res_header(res, "Access-Control-Allow-Origin", ok ? origin : "*");
    crest_res_header(res, "Vary", "Origin");
    if (app->cors_credentials)
        crest_res_header(res, "Access-Control-Allow-Credentials", "true");
    if (preflight) {
        crest_res_header(res, "Access-Control-Allow-Methods", res->allow ? res->allow : "");
        crest_res_header(res, "Access-Control-Allow-Headers",
                         app->cors_headers ? app->cors_headers : CREST__CORS_ALLOW_HEADERS);
        crest_res_header(res, "Access-Control-Max-Age", app->cors_max_age);
    } else {
        const char *expose = req->ep && req->ep->sql ? req->ep->sql->expose : NULL;
        crest_res_header(res, "Access-Control-Expose-Headers", expose ? expose : CREST__CORS_EXPOSE);
    }
}

int crest__app_handle(crest_req *req, crest_res *res)
{
    crest_app *app = req->app;
    const char *rid = crest_req_header(req, "x-request-id");
    if (rid && valid_request_id(rid))
        snprintf(req->id, sizeof req->id, "%s", rid);

    const char *q = memchr(req->url, '?', req->url_len);
    size_t plen = q ? (size_t)(q - req->url) : req->url_len;
    const char *hash = memchr(req->url, '#', req->url_len);
    if (hash && (size_t)(hash - req->url) < plen)
        plen = (size_t)(hash - req->url);
    if (req->method == CREST_OPTIONS && req->url_len == 1 && req->url[0] == '*') {
        /* RFC 9110 9.3.7: OPTIONS * asks about the server as a whole. */
        req->path = "*";
        res->allow = allow_list(req, ~0u);
        res->status = 204;
        return 0;
    }
    if (plen == 0 || req->url[0] != '/') {
        /* Absolute-form targets ("http://host/x") are for proxies; asterisk-form only for OPTIONS. */
        req->path = crest__arena_strndup(req->arena, req->url, plen);
        crest__res_fail(res, CREST__E_BAD_REQUEST, "the request target must be a path starting with '/'");
        return 0;
    }
    char *pathbuf = crest__arena_strndup(req->arena, req->url, plen);
    if (!pathbuf) {
        crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
        return 0;
    }
    req->path = crest__arena_strndup(req->arena, req->url, plen); /* raw, for the log */
    if (q) {
        size_t qlen = req->url_len - (size_t)(q + 1 - req->url);
        const char *h = memchr(q + 1, '#', qlen);
        if (h)
            qlen = (size_t)(h - q - 1);
        int rc = crest__query_parse(req, q + 1, qlen);
        if (rc == CREST_EINVAL) {
            crest__res_fail(res, CREST__E_BAD_REQUEST, "the query string has a bad percent-encoding");
            return 0;
        }
        if (rc) {
            crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
            return 0;
        }
    }
    crest__str segs[CREST_ROUTER_MAX_SEGMENTS];
    int nsegs = crest__path_split(pathbuf, segs, CREST_ROUTER_MAX_SEGMENTS);
    if (nsegs == -1) {
        crest__res_fail(res, CREST__E_BAD_REQUEST, "the path has a bad percent-encoding");
        return 0;
    }
    if (nsegs < 0) {
        crest__res_fail(res, CREST__E_NOT_FOUND, NULL);
        return 0;
    }
    int st = crest__router_match(app->router, req->method, segs, (unsigned)nsegs, &req->match);
    if (st == 404) {
        crest__res_fail(res, CREST__E_NOT_FOUND, "no route for %s %s", req->method_text ? req->method_text : "?",
                        req->path);
        return 0;
    }
    if (st == 405) {
        res->allow = allow_list(req, req->match.allow | (1u << CREST_OPTIONS));
        if (req->method == CREST_OPTIONS) {
            res->status = 204;
            cors(req, res, true);
            return 0;
        }
        cors(req, res, false);
        crest__res_fail(res, CREST__E_METHOD_NOT_ALLOWED, "%s is not allowed here; allowed: %s",
                        req->method_text ? req->method_text : "this method", res->allow ? res->allow : "");
        return 0;
    }
    req->ep = req->match.route->target;
    cors(req, res, false);
    if (crest__auth_check(req, res) || crest__rate_check(req, res) || check_params(req, res) ||
        check_body(req, res)) {
        if (req->ep->on_error)
            req->ep->on_error(req, res, req->ep->ud);
        return 0;
    }
    if (req->ep->spec->blocking) {
        req->blocking = true;
        return 1;
    }
    crest__app_run_blocking(req, res);
    return req->deferred ? 2 : 0;
}

/* The handler is done (returned, or finished a deferred answer): the
 * checks every answer gets. */
static void after_handler(crest_req *req, crest_res *res, int rc)
{
    const crest__endpoint *ep = req->ep;
    crest__req_end_sess(req);
    if (req->timed_out && (!res->is_error || res->err_status >= 500))
        crest__res_fail(res, CREST__E_STATEMENT_TIMEOUT, "the request took longer than its endpoint allows");
    else if (rc && !res->is_error)
        crest__res_fail(res, CREST__E_INTERNAL_ERROR, "the handler failed");
    if (!res->is_error && res->json_used) {
        int je = crest_json_error(res->json);
        if (je == CREST_JSON_ENOMEM)
            crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
        else if (je == CREST_JSON_ETOOBIG)
            crest__res_fail(res, CREST__E_RESPONSE_TOO_LARGE, NULL);
        else if (je || res->json->depth != 0)
            crest__res_fail(res, CREST__E_INTERNAL_ERROR, "the handler wrote malformed JSON");
    }
    if (res->is_error && ep->on_error)
        ep->on_error(req, res, ep->ud);
}

void crest__app_run_blocking(crest_req *req, crest_res *res)
{
    const crest__endpoint *ep = req->ep;
    int rc = ep->spec->handler(req, res, ep->ud);
    if (rc == CREST_DEFERRED) {
        if (!res->finished && !req->blocking) {
            req->deferred = true; /* crest_res_finish answers */
            return;
        }
        if (!res->finished) /* a pool thread cannot wait for the loop */
            rc = crest__res_fail(res, CREST__E_INTERNAL_ERROR, "the handler deferred its answer on the thread pool");
        else
            rc = res->finish_rc;
    }
    after_handler(req, res, rc);
}

void crest__req_deliver(crest_req *req, crest_res *res)
{
    req->deferred = false;
    after_handler(req, res, res->finish_rc);
    if (req->worker && req->worker->resume)
        req->worker->resume(req->worker, req); /* req and res may be gone from here on */
}

void crest__res_finish(crest_res *res, int rc)
{
    crest_req *req = res->req;
    if (res->finished)
        return;
    res->finished = true;
    res->finish_rc = rc;
    /* Finished before the handler returned: it answers. Inside a crest_query
     * callback: the answer goes out when the callback returns, so until
     * then the request, its memory and res stay (a second call sees
     * `finished`). */
    if (!req->deferred || req->in_query_cb)
        return;
    crest__req_deliver(req, res);
}

void crest_res_finish(crest_res *res)
{
    crest__res_finish(res, 0);
}

unsigned crest__req_budget_ms(const crest_req *req)
{
    return req->ep && req->ep->spec->timeout_ms > 0 ? (unsigned)req->ep->spec->timeout_ms
                                                    : req->app->limits.statement_timeout_ms;
}

void crest__req_take_over(crest_req *dst, const crest_req *src)
{
    /* Set by the engine and dispatch before the handler was queued; a
     * handler only reads them (path_decoded, json, db_* and the deadline
     * are the ones it may write: not copied). */
    memcpy(dst->id, src->id, sizeof dst->id);
    dst->method = src->method;
    dst->method_text = src->method_text;
    dst->http_major = src->http_major;
    dst->http_minor = src->http_minor;
    dst->url = src->url;
    dst->url_len = src->url_len;
    dst->path = src->path;
    dst->headers = src->headers;
    dst->nheaders = src->nheaders;
    dst->query = src->query;
    dst->nquery = src->nquery;
    dst->body = src->body;
    dst->body_len = src->body_len;
    dst->ep = src->ep;
    dst->match = src->match;
    dst->values = src->values;
    dst->user = src->user;
    dst->peer = src->peer;
    dst->start_us = src->start_us;
}

void crest__app_timeout(crest_req *req, crest_res *res)
{
    crest__res_fail(res, CREST__E_HANDLER_TIMEOUT, "the handler took longer than its endpoint allows (%u ms)",
                    crest__req_budget_ms(req));
    if (req->ep && req->ep->on_error)
        req->ep->on_error(req, res, req->ep->ud);
}

int crest__res_send_shared(crest_res *res, const char *content_type, const void *data, size_t len,
                           crest__gzslot *gz)
{
    crest_json_reset(res->json);
    res->json_used = false;
    res->shared = len ? data : "";
    res->shared_len = len;
    res->content_type = content_type;
    res->shared_gz = gz;
    return 0;
}

int crest__res_final_status(const crest_req *req, const crest_res *res)
{
    if (res->is_error)
        return res->err_status;
    if (res->status)
        return res->status;
    if (req->ep && req->ep->spec->status)
        return req->ep->spec->status;
    return 200;
}

static void write_problem(crest_json *w, const crest_res *res)
{
    crest_json_reset(w);
    crest_json_object_begin(w);
    crest_json_key(w, "status");
    crest_json_int(w, res->err_status);
    crest_json_key(w, "title");
    crest_json_str(w, crest__status_text(res->err_status));
    if (res->err_detail) {
        crest_json_key(w, "detail");
        crest_json_str(w, res->err_detail);
    }
    crest_json_key(w, "code");
    crest_json_str(w, res->err_code);
    if (res->err_fields) {
        crest_json_key(w, "errors");
        crest_json_object_begin(w);
        for (const crest__field_error *f = res->err_fields; f; f = f->next) {
            crest_json_key(w, f->field);
            crest_json_str(w, f->msg);
        }
        crest_json_object_end(w);
    }
    crest_json_object_end(w);
}

static inline int put(crest__buf *b, const char *s, size_t n)
{
    return crest__buf_append(b, s, n);
}
#define PUTS(b, lit) put((b), (lit), sizeof(lit) - 1)

static int put_uint(crest__buf *b, uint64_t v)
{
    char tmp[24], *e = tmp + sizeof tmp, *p = e;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return put(b, p, (size_t)(e - p));
}

/* The response head is built with plain appends: this runs once per
 * request and printf's parsing showed in profiles. */
int crest__app_render(crest_req *req, crest_res *res, crest__buf *out, const char *date, bool keep_alive,
                      size_t *body_bytes, crest__str *shared)
{
    int status = crest__res_final_status(req, res);
    const char *ctype = NULL;
    const char *env = NULL;
    const char *body = "";
    size_t blen = 0;
    bool borrowed = false;
    crest__gzslot *gzslot = NULL; /* a shared body's kept gzip copy */
    if (res->is_error) {
        write_problem(res->json, res);
        ctype = "application/problem+json";
        body = crest_json_data(res->json, &blen);
    } else if (res->json_used) {
        ctype = res->content_type ? res->content_type : "application/json";
        env = req->ep && !res->content_type ? req->ep->spec->envelope : NULL;
        body = crest_json_data(res->json, &blen);
    } else if (res->shared) { /* crest__res_send_shared (clears json_used): not copied */
        ctype = res->content_type;
        body = res->shared;
        blen = res->shared_len;
        borrowed = shared != NULL;
        gzslot = res->shared_gz;
    }
    /* An event stream: its head only; the body follows as it comes. */
    bool streaming = res->stream && !res->is_error && status == 200;
    if (streaming) {
        ctype = res->stream->content_type;
        env = NULL;
        blen = 0;
    }
    size_t envlen = env ? strlen(env) : 0;
    bool no_body = status == 204 || status == 304 || status < 200;
    size_t total = no_body ? 0 : (env ? blen + envlen + 5 : blen);
    bool send_body = !no_body && req->method != CREST_HEAD;
    /* gzip (compress.c): a HEAD answer is compressed too, so its headers
     * are the GET's. Below min_bytes nothing but the type is looked at. */
    bool gz_able = !no_body && crest__gz_candidate(req, res, ctype);
    /* A 304 says the Vary its 200 would have said (RFC 9110 15.4.5); the
     * answers crest makes 304 (etag.c) are JSON. */
    if (status == 304)
        gz_able = crest__gz_candidate(req, res, ctype ? ctype : "application/json");
    crest__str gz = {0};
    if (gz_able && !no_body && total >= req->app->compress_min && crest__accept_gzip(req)) {
        int grc;
        if (gzslot) {
            grc = crest__gz_shared(req->worker, gzslot, body, blen, &gz);
        } else {
            crest__str parts[5] = {{"{\"", 2}, {env, envlen}, {"\":", 2}, {body, blen}, {"}", 1}};
            grc = env ? crest__gz_body(req->worker, parts, 5, &gz) : crest__gz_body(req->worker, parts + 3, 1, &gz);
        }
        if (grc) { /* no memory, or no smaller: the identity body */
            gz = (crest__str){0};
        } else {
            crest__metrics_gzip(req->worker, total, gz.len);
            total = gz.len;
        }
    }
    const char *reason = crest__status_text(status);
    if (shared)
        *shared = (crest__str){0};
    int rc = crest__buf_reserve(out, 256 + (send_body && !borrowed ? total : 0));
    rc |= PUTS(out, "HTTP/1.1 ");
    rc |= put_uint(out, (uint64_t)status);
    rc |= PUTS(out, " ");
    rc |= put(out, reason, strlen(reason));
    rc |= PUTS(out, "\r\nServer: crest\r\nDate: ");
    rc |= put(out, date, strlen(date));
    rc |= PUTS(out, "\r\nX-Request-Id: ");
    rc |= put(out, req->id, strlen(req->id));
    rc |= PUTS(out, "\r\n");
    if (!no_body) {
        if (ctype) {
            rc |= PUTS(out, "Content-Type: ");
            rc |= put(out, ctype, strlen(ctype));
            rc |= PUTS(out, "\r\n");
        }
        if (gz.ptr)
            rc |= PUTS(out, "Content-Encoding: gzip\r\n");
        if (!streaming) {
            rc |= PUTS(out, "Content-Length: ");
            rc |= put_uint(out, total);
            rc |= PUTS(out, "\r\n");
        } else {
            /* HTTP/1.0 reads to the close; proxies are told not to buffer or cache it. */
            if (req->http_major == 1 && req->http_minor >= 1)
                rc |= PUTS(out, "Transfer-Encoding: chunked\r\n");
            rc |= PUTS(out, "Cache-Control: no-cache\r\nX-Accel-Buffering: no\r\n");
        }
    }
    if (!keep_alive)
        rc |= PUTS(out, "Connection: close\r\n");
    else if (req->http_major == 1 && req->http_minor == 0)
        rc |= PUTS(out, "Connection: keep-alive\r\n");
    if (res->allow)
        rc |= crest__buf_appendf(out, "Allow: %s\r\n", res->allow);
    if (res->retry_after)
        rc |= crest__buf_appendf(out, "Retry-After: %s\r\n", res->retry_after);
    /* (a 304's ETag is the one its 200 had: "-gzip" when the tag the
     * client matched was a compressed answer's, and it still takes gzip) */
    if (gz_able)
        rc |= crest__gz_headers(out, res->headers,
                                status == 304 ? res->etag_gzip && crest__accept_gzip(req) : gz.ptr != NULL);
    else if (res->headers->len)
        rc |= put(out, res->headers->ptr, res->headers->len);
    rc |= PUTS(out, "\r\n");
    if (send_body && gz.ptr && borrowed && gzslot) {
        shared->ptr = gz.ptr; /* the kept gzip copy: as long-lived as the body */
        shared->len = gz.len;
    } else if (send_body && gz.ptr) {
        rc |= put(out, gz.ptr, gz.len);
    } else if (send_body && borrowed) {
        shared->ptr = body; /* sent from where it is, after the head */
        shared->len = blen;
    } else if (send_body) {
        if (env) {
            rc |= PUTS(out, "{\"");
            rc |= put(out, env, envlen); /* envelope names are checked identifiers */
            rc |= PUTS(out, "\":");
        }
        rc |= put(out, body, blen);
        if (env)
            rc |= PUTS(out, "}");
    }
    if (gz.ptr)
        crest__gz_done(req->worker);
    if (body_bytes)
        *body_bytes = total;
    return rc ? CREST_ENOMEM : 0;
}
