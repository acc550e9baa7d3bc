/* appfile.c — the app file loader: a YAML (or JSON) document becomes calls on
 * the app (settings, limits, SQL endpoints). Unknown keys, wrong types and
 * impossible values stop the load with "file:line: where: what is wrong". */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "../json/json_internal.h"
#include "sqlep.h"
#include "../rest/rest_internal.h"
#include "ytree.h"

int crest__app_add_sql_endpoint(crest_app *app, const crest_endpoint *ep, crest__sqlep *sql, crest_error *err);
typedef struct loader loader;
static int get_permission(loader *L, const ynode *n, const char *where, const char **out);

struct loader {
    crest_app *app;
    const char *name;
    crest_error *err;
};

static int bad(loader *L, const ynode *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int bad(loader *L, const ynode *n, const char *fmt, ...)
{
    char msg[480];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return crest__error_set(L->err, CREST_ECONFIG, L->name, n ? n->line : 0, "%s", msg);
}

static const char *kind_name(const ynode *n)
{
    return n->kind == Y_MAP ? "a map" : n->kind == Y_SEQ ? "a list" : "a value";
}

static int want_scalar(loader *L, const ynode *n, const char *where)
{
    if (n->kind != Y_SCALAR)
        return bad(L, n, "%s: expected a value, found %s", where, kind_name(n));
    return 0;
}

static int want_map(loader *L, const ynode *n, const char *where)
{
    if (n->kind != Y_MAP)
        return bad(L, n, "%s: expected a map, found %s", where, kind_name(n));
    return 0;
}

static int get_string(loader *L, const ynode *n, const char *where, const char **out)
{
    if (want_scalar(L, n, where))
        return CREST_ECONFIG;
    *out = n->str;
    return 0;
}

static int get_int(loader *L, const ynode *n, const char *where, int64_t lo, int64_t hi, int64_t *out)
{
    if (want_scalar(L, n, where))
        return CREST_ECONFIG;
    if (crest__parse_int(n->str, n->len, out))
        return bad(L, n, "%s: expected an integer, found '%s'", where, n->str);
    if (*out < lo || *out > hi)
        return bad(L, n, "%s: must be between %lld and %lld", where, (long long)lo, (long long)hi);
    return 0;
}

static int get_bool(loader *L, const ynode *n, const char *where, bool *out)
{
    if (want_scalar(L, n, where))
        return CREST_ECONFIG;
    static const char *const t[] = {"true", "True", "TRUE", "yes", "on"};
    static const char *const f[] = {"false", "False", "FALSE", "no", "off"};
    for (size_t i = 0; i < CREST_ARRAY_LEN(t); i++) {
        if (!strcmp(n->str, t[i])) {
            *out = true;
            return 0;
        }
        if (!strcmp(n->str, f[i])) {
            *out = false;
            return 0;
        }
    }
    return bad(L, n, "%s: expected true or false, found '%s'", where, n->str);
}

static int get_number(loader *L, const ynode *n, const char *where, double *out)
{
    if (want_scalar(L, n, where))
        return CREST_ECONFIG;
    if (crest__parse_double(n->str, n->len, out))
        return bad(L, n, "%s: expected a number, found '%s'", where, n->str);
    return 0;
}

/* "8KiB", "1 MiB", "1048576" → bytes. */
static int get_size(loader *L, const ynode *n, const char *where, size_t *out)
{
    if (want_scalar(L, n, where))
        return CREST_ECONFIG;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(n->str, &end, 10);
    if (end == n->str || errno || n->str[0] == '-')
        return bad(L, n, "%s: expected a size such as 8KiB or 1MiB, found '%s'", where, n->str);
    while (*end == ' ')
        end++;
    unsigned long long mul = 1;
    if (!*end || !strcasecmp(end, "b"))
        mul = 1;
    else if (!strcasecmp(end, "kib") || !strcasecmp(end, "kb") || !strcasecmp(end, "k"))
        mul = 1024;
    else if (!strcasecmp(end, "mib") || !strcasecmp(end, "mb") || !strcasecmp(end, "m"))
        mul = 1024 * 1024;
    else if (!strcasecmp(end, "gib") || !strcasecmp(end, "gb") || !strcasecmp(end, "g"))
        mul = 1024ULL * 1024 * 1024;
    else
        return bad(L, n, "%s: unknown size unit '%s' (use B, KiB, MiB or GiB)", where, end);
    if (v > (1ULL << 40) / mul)
        return bad(L, n, "%s: too large", where);
    *out = (size_t)(v * mul);
    return 0;
}

/* "10s", "500ms", "2m", "30000" (ms) → milliseconds. */
static int get_duration(loader *L, const ynode *n, const char *where, unsigned *out)
{
    if (want_scalar(L, n, where))
        return CREST_ECONFIG;
    char *end;
    errno = 0;
    double v = strtod(n->str, &end);
    if (end == n->str || errno || v < 0 || !isfinite(v))
        return bad(L, n, "%s: expected a duration such as 10s or 500ms, found '%s'", where, n->str);
    while (*end == ' ')
        end++;
    double ms;
    if (!*end || !strcmp(end, "ms"))
        ms = v;
    else if (!strcmp(end, "s"))
        ms = v * 1000;
    else if (!strcmp(end, "m") || !strcmp(end, "min"))
        ms = v * 60000;
    else
        return bad(L, n, "%s: unknown time unit '%s' (use ms, s or m)", where, end);
    if (ms > 86400000.0)
        return bad(L, n, "%s: longer than a day", where);
    *out = (unsigned)ms;
    return 0;
}

/* Fails on any key of map not in allowed (NULL-terminated). */
static int check_keys(loader *L, const ynode *map, const char *where, const char *const *allowed)
{
    for (size_t i = 0; i < map->n; i++) {
        const ynode *k = map->kids[2 * i];
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(k->str, *a))
                ok = true;
        if (!ok) {
            char list[400] = "";
            size_t o = 0;
            for (const char *const *a = allowed; *a && o < sizeof list - 40; a++)
                o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", a == allowed ? "" : ", ", *a);
            return bad(L, k, "%s: unknown key '%s' (known: %s)", where, k->str, list);
        }
    }
    return 0;
}

static int load_limits(loader *L, const ynode *m)
{
    static const char *const keys[] = {"request_line", "header_line", "headers_total", "headers_count", "body",
                                       "json_depth", "header_timeout", "body_timeout", "body_total_timeout",
                                       "keepalive_timeout", "max_connections", "drain_timeout",
                                       "statement_timeout", "response", "output_buffer", NULL};
    if (want_map(L, m, "limits") || check_keys(L, m, "limits", keys))
        return CREST_ECONFIG;
    crest_limits *lim = &L->app->limits;
    for (size_t i = 0; i < m->n; i++) {
        const char *k = m->kids[2 * i]->str;
        const ynode *v = m->kids[2 * i + 1];
        char where[64];
        snprintf(where, sizeof where, "limits.%s", k);
        int rc = 0;
        int64_t x;
        size_t sz = 0;
        if (!strcmp(k, "request_line") || !strcmp(k, "header_line") || !strcmp(k, "headers_total") ||
            !strcmp(k, "body") || !strcmp(k, "response") || !strcmp(k, "output_buffer")) {
            if ((rc = get_size(L, v, where, &sz)))
                return rc;
            if (sz < 64)
                return bad(L, v, "%s: must be at least 64 bytes", where);
            if (!strcmp(k, "request_line"))
                lim->request_line = sz;
            else if (!strcmp(k, "header_line"))
                lim->header_line = sz;
            else if (!strcmp(k, "headers_total"))
                lim->headers_total = sz;
            else if (!strcmp(k, "body"))
                lim->body = sz;
            else if (!strcmp(k, "response"))
                lim->response = sz;
            else
                lim->output_buffer = sz;
        } else if (!strcmp(k, "headers_count")) {
            if ((rc = get_int(L, v, where, 1, 128, &x)))
                return rc;
            lim->headers_count = (unsigned)x;
        } else if (!strcmp(k, "json_depth")) {
            if ((rc = get_int(L, v, where, 1, 1000, &x)))
                return rc;
            lim->json_depth = (unsigned)x;
        } else if (!strcmp(k, "max_connections")) {
            if ((rc = get_int(L, v, where, 1, 1000000, &x)))
                return rc;
            lim->max_connections = (unsigned)x;
        } else {
            unsigned ms;
            if ((rc = get_duration(L, v, where, &ms)))
                return rc;
            if (ms == 0)
                return bad(L, v, "%s: must be more than 0", where);
            if (!strcmp(k, "header_timeout"))
                lim->header_timeout_ms = ms;
            else if (!strcmp(k, "body_timeout"))
                lim->body_timeout_ms = ms;
            else if (!strcmp(k, "body_total_timeout"))
                lim->body_total_timeout_ms = ms;
            else if (!strcmp(k, "keepalive_timeout"))
                lim->keepalive_timeout_ms = ms;
            else if (!strcmp(k, "drain_timeout"))
                lim->drain_timeout_ms = ms;
            else
                lim->statement_timeout_ms = ms;
        }
    }
    return 0;
}

static int parse_type(loader *L, const ynode *n, const char *where, bool allow_json, crest_type *out)
{
    if (want_scalar(L, n, where))
        return CREST_ECONFIG;
    const char *t = n->str;
    if (!strcmp(t, "string") || !strcmp(t, "str") || !strcmp(t, "text"))
        *out = CREST_T_STRING;
    else if (!strcmp(t, "int") || !strcmp(t, "integer"))
        *out = CREST_T_INT;
    else if (!strcmp(t, "float") || !strcmp(t, "number"))
        *out = CREST_T_FLOAT;
    else if (!strcmp(t, "bool") || !strcmp(t, "boolean"))
        *out = CREST_T_BOOL;
    else if (!strcmp(t, "enum"))
        *out = CREST_T_ENUM;
    else if (allow_json && !strcmp(t, "json"))
        *out = 0;
    else
        return bad(L, n, "%s: unknown type '%s' (string, int, float, bool, enum%s)", where, t,
                   allow_json ? ", json" : "");
    return 0;
}

static bool in_path(const char *path, const char *name)
{
    size_t n = strlen(name);
    for (const char *s = path; (s = strchr(s, '{')); s++)
        if (!strncmp(s + 1, name, n) && s[1 + n] == '}')
            return true;
    return false;
}

/* One entry of an endpoint's params: short form "id: int" or a map. */
static int load_param(loader *L, crest__sqlep *s, const ynode *key, const ynode *v, bool has_body, const char *where0)
{
    static const char *const keys[] = {"type", "in", "required", "default", "min", "max", "min_length",
                                       "max_length", "values", "description", NULL};
    char where[300];
    snprintf(where, sizeof where, "%s.params.%s", where0, key->str);
    const char *name = key->str;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return bad(L, key, "%s: parameter names use letters, digits and '_'", where);
    crest_type type = CREST_T_STRING;
    const char *in = NULL;
    bool required = false, required_set = false;
    const ynode *def = NULL, *values = NULL, *desc = NULL;
    bool has_min = false, has_max = false;
    double mn = 0, mx = 0;
    int rc;
    if (v->kind == Y_SCALAR) {
        if ((rc = parse_type(L, v, where, true, &type)))
            return rc;
    } else {
        if (want_map(L, v, where) || check_keys(L, v, where, keys))
            return CREST_ECONFIG;
        const ynode *t = crest__ytree_get(v, "type");
        if (t && (rc = parse_type(L, t, where, true, &type)))
            return rc;
        const ynode *x;
        if ((x = crest__ytree_get(v, "in")) && (rc = get_string(L, x, where, &in)))
            return rc;
        if (in && strcmp(in, "path") && strcmp(in, "query") && strcmp(in, "header") && strcmp(in, "body"))
            return bad(L, x, "%s.in: must be path, query, header or body", where);
        if ((x = crest__ytree_get(v, "required"))) {
            if ((rc = get_bool(L, x, where, &required)))
                return rc;
            required_set = true;
        }
        def = crest__ytree_get(v, "default");
        values = crest__ytree_get(v, "values");
        desc = crest__ytree_get(v, "description");
        const char *minkey = type == CREST_T_STRING ? "min_length" : "min";
        const char *maxkey = type == CREST_T_STRING ? "max_length" : "max";
        if ((x = crest__ytree_get(v, minkey))) {
            if ((rc = get_number(L, x, where, &mn)))
                return rc;
            has_min = true;
        }
        if ((x = crest__ytree_get(v, maxkey))) {
            if ((rc = get_number(L, x, where, &mx)))
                return rc;
            has_max = true;
        }
        if ((x = crest__ytree_get(v, type == CREST_T_STRING ? "min" : "min_length")) ||
            (x = crest__ytree_get(v, type == CREST_T_STRING ? "max" : "max_length")))
            return bad(L, x, "%s: %s", where,
                       type == CREST_T_STRING ? "strings take min_length/max_length" : "only strings take min_length/max_length");
    }
    if (type == CREST_T_ENUM) {
        if (!values || values->kind != Y_SEQ || values->n == 0)
            return bad(L, values ? values : v, "%s: an enum needs 'values', a non-empty list", where);
    } else if (values) {
        return bad(L, values, "%s: 'values' is only for type enum", where);
    }
    if (!in)
        in = in_path(s->spec.path, name) ? "path" : has_body ? "body" : "query";
    if (!strcmp(in, "path")) {
        if (!in_path(s->spec.path, name))
            return bad(L, key, "%s: '{%s}' is not in the path", where, name);
        required = true;
    } else if (in_path(s->spec.path, name)) {
        return bad(L, key, "%s: '{%s}' is in the path, so it cannot be in %s", where, name, in);
    }
    if (!required_set && strcmp(in, "path"))
        required = false;
    if (!strcmp(in, "body")) {
        if (!has_body)
            return bad(L, key, "%s: %s requests have no body", where, crest_method_name(s->spec.method));
        sqlep_body_param *b = &s->body[s->nbody];
        memset(b, 0, sizeof *b);
        s->nbody++;
        if (!(b->name = strdup(name)))
            return CREST_ENOMEM;
        b->type = type;
        b->required = required;
        b->has_min = has_min;
        b->has_max = has_max;
        b->min = mn;
        b->max = mx;
        if (def) {
            if (def->kind != Y_SCALAR)
                return bad(L, def, "%s.default: expected a value", where);
            if (type == CREST_T_INT) {
                int64_t iv;
                if (crest__parse_int(def->str, def->len, &iv))
                    return bad(L, def, "%s.default: expected an integer", where);
                b->def = json_integer(iv);
            } else if (type == CREST_T_FLOAT) {
                double dv;
                if (crest__parse_double(def->str, def->len, &dv))
                    return bad(L, def, "%s.default: expected a number", where);
                b->def = json_real(dv);
            } else if (type == CREST_T_BOOL) {
                bool bv;
                if (get_bool(L, def, where, &bv))
                    return CREST_ECONFIG;
                b->def = json_boolean(bv);
            } else {
                b->def = json_string(def->str);
            }
        }
        if (values) {
            b->values = calloc(values->n + 1, sizeof(char *));
            if (!b->values)
                return CREST_ENOMEM;
            for (size_t i = 0; i < values->n; i++) {
                if (want_scalar(L, values->kids[i], where))
                    return CREST_ECONFIG;
                if (!(b->values[i] = strdup(values->kids[i]->str)))
                    return CREST_ENOMEM;
            }
        }
        return 0;
    }
    if (type == 0)
        return bad(L, v, "%s: only body parameters can be json", where);
    crest_param *p = &s->params[s->nparams];
    memset(p, 0, sizeof *p);
    s->nparams++;
    if (!(p->name = strdup(name)))
        return CREST_ENOMEM;
    p->in = !strcmp(in, "path") ? CREST_IN_PATH : !strcmp(in, "query") ? CREST_IN_QUERY : CREST_IN_HEADER;
    p->type = type;
    p->required = required;
    p->has_min = has_min;
    p->has_max = has_max;
    p->min = mn;
    p->max = mx;
    if (def) {
        if (def->kind != Y_SCALAR)
            return bad(L, def, "%s.default: expected a value", where);
        if (!(p->def = strdup(def->str)))
            return CREST_ENOMEM;
    }
    if (desc) {
        if (want_scalar(L, desc, where))
            return CREST_ECONFIG;
        if (!(p->description = strdup(desc->str)))
            return CREST_ENOMEM;
    }
    if (values) {
        const char **vals = calloc(values->n + 1, sizeof(char *));
        if (!vals)
            return CREST_ENOMEM;
        p->values = vals;
        for (size_t i = 0; i < values->n; i++) {
            if (want_scalar(L, values->kids[i], where))
                return CREST_ECONFIG;
            if (!(vals[i] = strdup(values->kids[i]->str)))
                return CREST_ENOMEM;
        }
    }
    return 0;
}

static char *own(crest__sqlep *s, const char *str)
{
    if (!str || s->nstrings == CREST_ARRAY_LEN(s->strings))
        return NULL;
    char *p = strdup(str);
    if (p)
        s->strings[s->nstrings++] = p;
    return p;
}

static int load_endpoint(loader *L, const ynode *e, size_t idx)
{
    static const char *const keys[] = {"method", "path", "params", "sql", "returns", "status", "summary",
                                       "description", "tag", "timeout", "envelope", "columns", "permission",
                                       "rate_limit", NULL};
    char where[64];
    snprintf(where, sizeof where, "endpoints[%zu]", idx);
    if (want_map(L, e, where) || check_keys(L, e, where, keys))
        return CREST_ECONFIG;
    const ynode *m = crest__ytree_get(e, "method"), *path = crest__ytree_get(e, "path"),
                *sql = crest__ytree_get(e, "sql"), *ret = crest__ytree_get(e, "returns");
    if (!path)
        return bad(L, e, "%s: 'path' is required", where);
    if (!sql)
        return bad(L, e, "%s: 'sql' is required", where);
    if (want_scalar(L, path, where) || want_scalar(L, sql, where))
        return CREST_ECONFIG;
    if (path->str[0] != '/')
        return bad(L, path, "%s.path: must start with '/'", where);
    crest_method method = CREST_GET;
    if (m) {
        if (want_scalar(L, m, where))
            return CREST_ECONFIG;
        static const crest_method all[] = {CREST_GET, CREST_POST, CREST_PUT, CREST_PATCH, CREST_DELETE};
        method = 0;
        for (size_t i = 0; i < CREST_ARRAY_LEN(all); i++)
            if (!strcasecmp(m->str, crest_method_name(all[i])))
                method = all[i];
        if (!method)
            return bad(L, m, "%s.method: must be GET, POST, PUT, PATCH or DELETE, found '%s'", where, m->str);
    }
    crest__sqlep *s = calloc(1, sizeof *s);
    if (!s)
        return CREST_ENOMEM;
    int rc = 0;
    s->line = e->line;
    s->sql_line = sql->line;
    s->spec.method = method;
    s->spec.path = own(s, path->str);
    s->sql = crest__sqlep_user_params(sql->str);
    if (!s->spec.path || !s->sql) {
        rc = CREST_ENOMEM;
        goto fail;
    }
    s->returns = RET_MANY;
    if (ret) {
        if ((rc = want_scalar(L, ret, where)))
            goto fail;
        if (!strcmp(ret->str, "one"))
            s->returns = RET_ONE;
        else if (!strcmp(ret->str, "many"))
            s->returns = RET_MANY;
        else if (!strcmp(ret->str, "value"))
            s->returns = RET_VALUE;
        else if (!strcmp(ret->str, "none"))
            s->returns = RET_NONE;
        else {
            rc = bad(L, ret, "%s.returns: must be one, many, value or none (found '%s')", where, ret->str);
            goto fail;
        }
    }
    const ynode *x;
    if ((x = crest__ytree_get(e, "status"))) {
        int64_t st;
        if ((rc = get_int(L, x, "status", 200, 299, &st)))
            goto fail;
        s->spec.status = (int)st;
    }
    if ((x = crest__ytree_get(e, "timeout"))) {
        unsigned ms;
        if ((rc = get_duration(L, x, "timeout", &ms)))
            goto fail;
        s->spec.timeout_ms = (int)ms;
    }
    if ((x = crest__ytree_get(e, "rate_limit"))) {
        if ((rc = want_scalar(L, x, where)))
            goto fail;
        crest__rate tmp;
        if (crest__rate_parse(x->str, &tmp)) {
            rc = bad(L, x, "%s.rate_limit: expected requests/period, as in 100/1m or 10/s, found '%s'", where, x->str);
            goto fail;
        }
        if (!(s->spec.rate_limit = own(s, x->str))) {
            rc = CREST_ENOMEM;
            goto fail;
        }
    }
    if ((x = crest__ytree_get(e, "permission"))) {
        char w2[96];
        snprintf(w2, sizeof w2, "%s.permission", where);
        if ((rc = get_permission(L, x, w2, &s->spec.permission)))
            goto fail;
    }
    const char *strkeys[] = {"summary", "description", "tag", "envelope"};
    for (size_t i = 0; i < CREST_ARRAY_LEN(strkeys); i++) {
        if (!(x = crest__ytree_get(e, strkeys[i])))
            continue;
        if ((rc = want_scalar(L, x, where)))
            goto fail;
        char *v = own(s, x->str);
        if (!v) {
            rc = CREST_ENOMEM;
            goto fail;
        }
        if (i == 0)
            s->spec.summary = v;
        else if (i == 1)
            s->spec.description = v;
        else if (i == 2)
            s->spec.tag = v;
        else {
            for (const char *c = v; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_')) {
                    rc = bad(L, x, "%s.envelope: use letters, digits and '_'", where);
                    goto fail;
                }
            s->spec.envelope = v;
        }
    }
    if ((x = crest__ytree_get(e, "columns")) && !crest__ytree_is_null(x)) {
        /* SQLite has no bool or json column type: say how to write a column. */
        if ((rc = want_map(L, x, where)))
            goto fail;
        s->cols = calloc(x->n ? x->n : 1, sizeof *s->cols);
        if (!s->cols) {
            rc = CREST_ENOMEM;
            goto fail;
        }
        for (size_t i = 0; i < x->n; i++) {
            const ynode *k = x->kids[2 * i], *v = x->kids[2 * i + 1];
            if ((rc = want_scalar(L, v, where)))
                goto fail;
            int kind = !strcmp(v->str, "bool") || !strcmp(v->str, "boolean") ? COL_BOOL
                       : !strcmp(v->str, "json")                            ? COL_JSON
                       : !strcmp(v->str, "auto")                            ? COL_AS_IS
                                                                            : -1;
            if (kind < 0) {
                rc = bad(L, v, "%s.columns.%s: must be bool, json or auto (found '%s')", where, k->str, v->str);
                goto fail;
            }
            if (!(s->cols[s->ncols].name = strdup(k->str))) {
                rc = CREST_ENOMEM;
                goto fail;
            }
            s->cols[s->ncols++].kind = kind;
        }
    }
    bool has_body = method == CREST_POST || method == CREST_PUT || method == CREST_PATCH;
    const ynode *params = crest__ytree_get(e, "params");
    size_t np = 0;
    if (params && !crest__ytree_is_null(params)) {
        if ((rc = want_map(L, params, where)))
            goto fail;
        np = params->n;
    }
    s->params = calloc(np + 1, sizeof *s->params);
    s->body = calloc(np + 1, sizeof *s->body);
    if (!s->params || !s->body) {
        rc = CREST_ENOMEM;
        goto fail;
    }
    for (size_t i = 0; i < np; i++)
        if ((rc = load_param(L, s, params->kids[2 * i], params->kids[2 * i + 1], has_body, where)))
            goto fail;
    /* Every {param} in the path must be declared: default it to a string. */
    for (const char *c = s->spec.path; (c = strchr(c, '{')); c++) {
        const char *end = strchr(c, '}');
        if (!end)
            break;
        bool found = false;
        for (unsigned k = 0; k < s->nparams; k++)
            if (strlen(s->params[k].name) == (size_t)(end - c - 1) && !strncmp(s->params[k].name, c + 1, (size_t)(end - c - 1)))
                found = true;
        if (!found) {
            crest_param *p = realloc(s->params, (s->nparams + 2) * sizeof *p);
            if (!p) {
                rc = CREST_ENOMEM;
                goto fail;
            }
            s->params = p;
            memset(&p[s->nparams], 0, 2 * sizeof *p);
            p[s->nparams].name = strndup(c + 1, (size_t)(end - c - 1));
            p[s->nparams].in = CREST_IN_PATH;
            p[s->nparams].type = CREST_T_STRING;
            p[s->nparams].required = true;
            if (!p[s->nparams].name) {
                rc = CREST_ENOMEM;
                goto fail;
            }
            s->nparams++;
        }
    }
    s->spec.params = s->params;
    s->spec.json_body = s->nbody > 0;
    s->spec.handler = crest__sqlep_handler;
    crest_error e2 = {0};
    rc = crest__app_add_sql_endpoint(L->app, &s->spec, s, &e2);
    if (rc) {
        rc = bad(L, e, "%s: %s", where, e2.msg);
        goto fail;
    }
    return 0;
fail:
    crest__sqlep_free(s);
    return rc ? rc : CREST_ECONFIG;
}

/* ---- models and modules: the app file builds the C API's definitions ---- */

/* App-lifetime memory for definitions made from the app file. */
static void conf_free(void *p)
{
    crest__arena_dispose(p);
    free(p);
}

static crest__arena *conf_arena(loader *L)
{
    crest_app *app = L->app;
    if (!app->appfile) {
        crest__arena *a = calloc(1, sizeof *a);
        if (!a)
            return NULL;
        crest__arena_init(a, 4096, 0);
        app->appfile = a;
        app->appfile_free = conf_free;
    }
    return app->appfile;
}

static char *conf_strdup(loader *L, const char *s)
{
    crest__arena *a = conf_arena(L);
    return a ? crest__arena_strdup(a, s) : NULL;
}

/* j (a reference this call takes) as compact JSON text in the conf arena. */
static int conf_json(loader *L, json_t *j, const char **out)
{
    char *t = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    *out = t ? conf_strdup(L, t) : NULL;
    free(t);
    return *out ? 0 : CREST_ENOMEM;
}

/* Names joined with commas, in the conf arena. */
static int conf_join(loader *L, const char *const *names, const char **out)
{
    crest__buf b;
    crest__buf_init(&b, 4096);
    for (size_t i = 0; names[i]; i++)
        crest__buf_appendf(&b, "%s%s", i ? "," : "", names[i]);
    crest__buf_append(&b, "", 1);
    *out = b.ptr ? conf_strdup(L, b.ptr) : NULL;
    crest__buf_dispose(&b);
    return *out ? 0 : CREST_ENOMEM;
}

/* A YAML node as JSON (new reference): plain scalars may be null, bools or
 * numbers; quoted ones are strings. */
static json_t *ynode_json(const ynode *n)
{
    if (n->kind == Y_SCALAR) {
        if (n->plain) {
            if (crest__ytree_is_null(n))
                return json_null();
            if (!strcmp(n->str, "true") || !strcmp(n->str, "True") || !strcmp(n->str, "TRUE"))
                return json_true();
            if (!strcmp(n->str, "false") || !strcmp(n->str, "False") || !strcmp(n->str, "FALSE"))
                return json_false();
            int64_t i;
            double d;
            if (!crest__parse_int(n->str, n->len, &i))
                return json_integer(i);
            if (!crest__parse_double(n->str, n->len, &d))
                return json_real(d);
        }
        return json_stringn(n->str, n->len);
    }
    json_t *o = n->kind == Y_MAP ? json_object() : json_array();
    if (!o)
        return NULL;
    for (size_t i = 0; i < n->n; i++) {
        if (n->kind == Y_MAP) {
            json_t *v = ynode_json(n->kids[2 * i + 1]);
            if (!v || json_object_set_new(o, n->kids[2 * i]->str, v)) {
                json_decref(o);
                return NULL;
            }
        } else if (json_array_append_new(o, ynode_json(n->kids[i]))) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* A list of names (or one name) → NULL-terminated array in the conf arena. */
static int get_names(loader *L, const ynode *n, const char *where, const char *const **out)
{
    crest__arena *a = conf_arena(L);
    if (!a)
        return CREST_ENOMEM;
    size_t cnt = n->kind == Y_SEQ ? n->n : 1;
    if (n->kind == Y_MAP)
        return bad(L, n, "%s: expected a list of names", where);
    const char **v = crest__arena_calloc(a, cnt + 1, sizeof *v);
    if (!v)
        return CREST_ENOMEM;
    for (size_t i = 0; i < cnt; i++) {
        const ynode *x = n->kind == Y_SEQ ? n->kids[i] : n;
        if (want_scalar(L, x, where))
            return CREST_ECONFIG;
        if (!(v[i] = crest__arena_strdup(a, x->str)))
            return CREST_ENOMEM;
    }
    *out = v;
    return 0;
}

static int field_type(loader *L, const ynode *n, const char *where, crest_field_type *out)
{
    static const struct {
        const char *name;
        crest_field_type t;
    } types[] = {{"string", CREST_F_STRING}, {"str", CREST_F_STRING},     {"text", CREST_F_TEXT},
                 {"int", CREST_F_INT},       {"integer", CREST_F_INT},    {"float", CREST_F_FLOAT},
                 {"number", CREST_F_FLOAT},  {"bool", CREST_F_BOOL},      {"boolean", CREST_F_BOOL},
                 {"date", CREST_F_DATE},     {"datetime", CREST_F_DATETIME}, {"json", CREST_F_JSON}};
    if (want_scalar(L, n, where))
        return CREST_ECONFIG;
    for (size_t i = 0; i < CREST_ARRAY_LEN(types); i++)
        if (!strcmp(n->str, types[i].name)) {
            *out = types[i].t;
            return 0;
        }
    return bad(L, n, "%s: unknown type '%s' (string, text, int, float, bool, date, datetime, json)", where, n->str);
}

static int load_field(loader *L, crest_field *f, const ynode *key, const ynode *v, const char *model)
{
    static const char *const keys[] = {"type", "required", "default", "unique", "index", "min", "max", "min_length",
                                       "max_length", "pattern", "values", "rest", "description", "read_permission",
                                       "write_permission", NULL};
    char where[200];
    snprintf(where, sizeof where, "models.%s.fields.%s", model, key->str);
    int rc;
    if (!(f->name = conf_strdup(L, key->str)))
        return CREST_ENOMEM;
    if (v->kind == Y_SCALAR)
        return field_type(L, v, where, &f->type);
    if (want_map(L, v, where) || check_keys(L, v, where, keys))
        return CREST_ECONFIG;
    const ynode *x;
    if (!(x = crest__ytree_get(v, "type")))
        return bad(L, v, "%s: needs a type", where);
    if ((rc = field_type(L, x, where, &f->type)))
        return rc;
    char w2[260];
#define SUB(k) (snprintf(w2, sizeof w2, "%s.%s", where, k), w2)
    if ((x = crest__ytree_get(v, "required")) && (rc = get_bool(L, x, SUB("required"), &f->required)))
        return rc;
    if ((x = crest__ytree_get(v, "unique")) && (rc = get_bool(L, x, SUB("unique"), &f->unique)))
        return rc;
    if ((x = crest__ytree_get(v, "index")) && (rc = get_bool(L, x, SUB("index"), &f->index)))
        return rc;
    if ((x = crest__ytree_get(v, "min"))) {
        if ((rc = get_number(L, x, SUB("min"), &f->min)))
            return rc;
        f->has_min = true;
    }
    if ((x = crest__ytree_get(v, "max"))) {
        if ((rc = get_number(L, x, SUB("max"), &f->max)))
            return rc;
        f->has_max = true;
    }
    int64_t n;
    if ((x = crest__ytree_get(v, "min_length"))) {
        if ((rc = get_int(L, x, SUB("min_length"), 0, 1 << 30, &n)))
            return rc;
        f->min_length = n;
    }
    if ((x = crest__ytree_get(v, "max_length"))) {
        if ((rc = get_int(L, x, SUB("max_length"), 1, 1 << 30, &n)))
            return rc;
        f->max_length = n;
    }
    if ((x = crest__ytree_get(v, "pattern"))) {
        const char *s;
        if ((rc = get_string(L, x, SUB("pattern"), &s)))
            return rc;
        if (!(f->pattern = conf_strdup(L, s)))
            return CREST_ENOMEM;
    }
    if ((x = crest__ytree_get(v, "description"))) {
        const char *s;
        if ((rc = get_string(L, x, SUB("description"), &s)))
            return rc;
        if (!(f->description = conf_strdup(L, s)))
            return CREST_ENOMEM;
    }
    if ((x = crest__ytree_get(v, "values"))) {
        if (x->kind != Y_SEQ || x->n == 0)
            return bad(L, x, "%s: expected a list of allowed values", SUB("values"));
        if ((rc = get_names(L, x, SUB("values"), &f->values)))
            return rc;
    }
    const char *const *pn;
    if ((x = crest__ytree_get(v, "read_permission")) &&
        ((rc = get_names(L, x, SUB("read_permission"), &pn)) || (rc = conf_join(L, pn, &f->read_permission))))
        return rc;
    if ((x = crest__ytree_get(v, "write_permission")) &&
        ((rc = get_names(L, x, SUB("write_permission"), &pn)) || (rc = conf_join(L, pn, &f->write_permission))))
        return rc;
    if ((x = crest__ytree_get(v, "rest"))) {
        static const char *const acc[] = {"rw", "read", "write", "none"};
        if (want_scalar(L, x, SUB("rest")))
            return CREST_ECONFIG;
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(x->str, acc[i]))
                found = i;
        if (found < 0)
            return bad(L, x, "%s: expected rw, read, write or none, found '%s'", SUB("rest"), x->str);
        f->rest = (crest_rest_access)found;
    }
    if ((x = crest__ytree_get(v, "default"))) {
        json_t *d;
        if (x->kind == Y_SCALAR && !strcmp(x->str, "now") && (f->type == CREST_F_DATE || f->type == CREST_F_DATETIME)) {
            f->def = "now";
        } else {
            if (x->kind != Y_SCALAR && f->type != CREST_F_JSON)
                return bad(L, x, "%s: expected a value", SUB("default"));
            d = ynode_json(x);
            if (d && x->kind == Y_SCALAR && !json_is_string(d) && !json_is_null(d) &&
                (f->type == CREST_F_STRING || f->type == CREST_F_TEXT)) {
                json_decref(d);
                d = json_stringn(x->str, x->len);
            }
            if ((rc = conf_json(L, d, &f->def)))
                return rc;
        }
    }
#undef SUB
    return 0;
}

static int load_model(loader *L, const ynode *key, const ynode *v)
{
    static const char *const keys[] = {"table", "fields", "description", "seed", "indexes", NULL};
    char where[160];
    snprintf(where, sizeof where, "models.%s", key->str);
    if (want_map(L, v, where) || check_keys(L, v, where, keys))
        return CREST_ECONFIG;
    crest__arena *a = conf_arena(L);
    if (!a)
        return CREST_ENOMEM;
    crest_model_def *def = crest__arena_calloc(a, 1, sizeof *def);
    if (!def || !(def->name = conf_strdup(L, key->str)))
        return CREST_ENOMEM;
    const ynode *x;
    int rc;
    if ((x = crest__ytree_get(v, "table"))) {
        const char *s;
        if ((rc = get_string(L, x, "table", &s)))
            return rc;
        if (!(def->table = conf_strdup(L, s)))
            return CREST_ENOMEM;
    }
    const ynode *fields = crest__ytree_get(v, "fields");
    if (!fields || fields->kind != Y_MAP || fields->n == 0)
        return bad(L, fields ? fields : v, "%s.fields: expected a map of fields (name: {type: ...})", where);
    crest_field *fs = crest__arena_calloc(a, fields->n + 1, sizeof *fs);
    if (!fs)
        return CREST_ENOMEM;
    for (size_t i = 0; i < fields->n; i++)
        if ((rc = load_field(L, &fs[i], fields->kids[2 * i], fields->kids[2 * i + 1], key->str)))
            return rc;
    def->fields = fs;
    if ((x = crest__ytree_get(v, "indexes"))) {
        /* A list of indexes, each a list of fields ([is_completed, -spent_time]) or "a,-b". */
        if (x->kind != Y_SEQ)
            return bad(L, x, "%s.indexes: expected a list of indexes, each a list of fields", where);
        const char **ix = crest__arena_calloc(a, x->n + 1, sizeof *ix);
        if (!ix)
            return CREST_ENOMEM;
        for (size_t i = 0; i < x->n; i++) {
            const char *const *names;
            if ((rc = get_names(L, x->kids[i], "indexes", &names)) || (rc = conf_join(L, names, &ix[i])))
                return rc;
        }
        def->indexes = ix;
    }
    if ((x = crest__ytree_get(v, "seed"))) {
        if (x->kind != Y_SEQ)
            return bad(L, x, "%s.seed: expected a list of rows", where);
        for (size_t i = 0; i < x->n; i++)
            if (want_map(L, x->kids[i], "seed"))
                return CREST_ECONFIG;
        if ((rc = conf_json(L, ynode_json(x), &def->seed)))
            return rc;
    }
    crest_error e2 = {0};
    if ((rc = crest_app_add_model(L->app, def, &e2)))
        return bad(L, key, "%s", e2.msg);
    return 0;
}

static int method_bits(loader *L, const ynode *n, const char *where, unsigned *out)
{
    const char *const *names;
    int rc = get_names(L, n, where, &names);
    if (rc)
        return rc;
    static const char *const all[] = {"index", "read", "create", "update", "delete", "sample", "group", "stats", "eval"};
    *out = 0;
    for (size_t i = 0; names[i]; i++) {
        bool found = false;
        for (unsigned b = 0; b < CREST_ARRAY_LEN(all); b++)
            if (!strcmp(names[i], all[b])) {
                *out |= 1u << b;
                found = true;
            }
        if (!found)
            return bad(L, n, "%s: unknown method '%s' (index, read, create, update, delete, sample, group, stats, eval)",
                       where, names[i]);
    }
    return 0;
}

static int opt_string(loader *L, const ynode *v, const char *key, const char *where, const char **out)
{
    const ynode *x = crest__ytree_get(v, key);
    if (!x)
        return 0;
    char w2[200];
    snprintf(w2, sizeof w2, "%s.%s", where, key);
    if (want_scalar(L, x, w2))
        return CREST_ECONFIG;
    if (!(*out = conf_strdup(L, x->str)))
        return CREST_ENOMEM;
    return 0;
}

static int load_module(loader *L, const ynode *key, const ynode *v)
{
    static const char *const keys[] = {"model", "url_prefix", "base_path", "id_path", "enabled_methods",
                                       "disabled_methods", "allowed_sorts", "query_allowed_fields",
                                       "grouping_allowed_fields", "stats_allowed_fields", "default_sort", "page_size",
                                       "list_envelope", "single_envelope", "meta_envelope", "groups_envelope",
                                       "use_envelope_on_parse", "serialize_meta", "serializer", "parser", "scope",
                                       "description", "permissions", "owner", "rate_limit", NULL};
    char where[160];
    snprintf(where, sizeof where, "modules.%s", key->str);
    if (want_map(L, v, where) || check_keys(L, v, where, keys))
        return CREST_ECONFIG;
    crest__arena *a = conf_arena(L);
    if (!a)
        return CREST_ENOMEM;
    crest_module_def *def = crest__arena_calloc(a, 1, sizeof *def);
    if (!def || !(def->name = conf_strdup(L, key->str)))
        return CREST_ENOMEM;
    int rc;
    const ynode *x;
    char w2[220];
#define SUB(k) (snprintf(w2, sizeof w2, "%s.%s", where, k), w2)
    if (!crest__ytree_get(v, "model"))
        return bad(L, v, "%s: needs a model", where);
    if ((rc = opt_string(L, v, "model", where, &def->model)) || (rc = opt_string(L, v, "url_prefix", where, &def->url_prefix)) ||
        (rc = opt_string(L, v, "base_path", where, &def->base_path)) ||
        (rc = opt_string(L, v, "id_path", where, &def->id_path)) ||
        (rc = opt_string(L, v, "list_envelope", where, &def->list_envelope)) ||
        (rc = opt_string(L, v, "meta_envelope", where, &def->meta_envelope)) ||
        (rc = opt_string(L, v, "groups_envelope", where, &def->groups_envelope)) ||
        (rc = opt_string(L, v, "owner", where, &def->owner)) ||
        (rc = opt_string(L, v, "rate_limit", where, &def->rate_limit)))
        return rc;
    if ((x = crest__ytree_get(v, "single_envelope"))) {
        if (want_scalar(L, x, SUB("single_envelope")))
            return CREST_ECONFIG;
        bool off = x->plain && (crest__ytree_is_null(x) || !strcmp(x->str, "false") || !strcmp(x->str, "False") ||
                                !strcmp(x->str, "FALSE") || !strcmp(x->str, "no") || !strcmp(x->str, "off"));
        if (!off && !(def->single_envelope = conf_strdup(L, x->str)))
            return CREST_ENOMEM;
    }
    if ((x = crest__ytree_get(v, "enabled_methods")) && (rc = method_bits(L, x, SUB("enabled_methods"), &def->enabled_methods)))
        return rc;
    if ((x = crest__ytree_get(v, "enabled_methods")) && !def->enabled_methods)
        return bad(L, x, "%s: enable at least one method", SUB("enabled_methods"));
    if ((x = crest__ytree_get(v, "disabled_methods")) &&
        (rc = method_bits(L, x, SUB("disabled_methods"), &def->disabled_methods)))
        return rc;
    if ((x = crest__ytree_get(v, "allowed_sorts")) && (rc = get_names(L, x, SUB("allowed_sorts"), &def->allowed_sorts)))
        return rc;
    if ((x = crest__ytree_get(v, "query_allowed_fields")) &&
        (rc = get_names(L, x, SUB("query_allowed_fields"), &def->query_allowed_fields)))
        return rc;
    if ((x = crest__ytree_get(v, "grouping_allowed_fields")) &&
        (rc = get_names(L, x, SUB("grouping_allowed_fields"), &def->grouping_allowed_fields)))
        return rc;
    if ((x = crest__ytree_get(v, "stats_allowed_fields")) &&
        (rc = get_names(L, x, SUB("stats_allowed_fields"), &def->stats_allowed_fields)))
        return rc;
    if ((x = crest__ytree_get(v, "default_sort"))) {
        const char *const *names;
        if ((rc = get_names(L, x, SUB("default_sort"), &names)) || (rc = conf_join(L, names, &def->default_sort)))
            return rc;
    }
    if ((x = crest__ytree_get(v, "page_size"))) {
        int64_t n;
        if (x->kind == Y_SCALAR) {
            if ((rc = get_int(L, x, SUB("page_size"), 1, 10000, &n)))
                return rc;
            def->page_size_default = (int)n;
        } else {
            static const char *const pk[] = {"default", "min", "max", NULL};
            if (want_map(L, x, SUB("page_size")) || check_keys(L, x, w2, pk))
                return CREST_ECONFIG;
            const ynode *y;
            if ((y = crest__ytree_get(x, "default"))) {
                if ((rc = get_int(L, y, SUB("page_size.default"), 1, 10000, &n)))
                    return rc;
                def->page_size_default = (int)n;
            }
            if ((y = crest__ytree_get(x, "min"))) {
                if ((rc = get_int(L, y, SUB("page_size.min"), 1, 10000, &n)))
                    return rc;
                def->page_size_min = (int)n;
            }
            if ((y = crest__ytree_get(x, "max"))) {
                if ((rc = get_int(L, y, SUB("page_size.max"), 1, 10000, &n)))
                    return rc;
                def->page_size_max = (int)n;
            }
        }
    }
    if ((x = crest__ytree_get(v, "use_envelope_on_parse")) &&
        (rc = get_bool(L, x, SUB("use_envelope_on_parse"), &def->use_envelope_on_parse)))
        return rc;
    if ((x = crest__ytree_get(v, "serialize_meta"))) {
        bool on;
        if ((rc = get_bool(L, x, SUB("serialize_meta"), &on)))
            return rc;
        def->no_meta = !on;
    }
    if ((x = crest__ytree_get(v, "serializer"))) {
        static const char *const sk[] = {"attributes", "include", "exclude", "computed", NULL};
        if (want_map(L, x, SUB("serializer")) || check_keys(L, x, w2, sk))
            return CREST_ECONFIG;
        const ynode *y;
        if ((y = crest__ytree_get(x, "attributes")) && (rc = get_names(L, y, SUB("serializer.attributes"), &def->attributes)))
            return rc;
        if ((y = crest__ytree_get(x, "include")) && (rc = get_names(L, y, SUB("serializer.include"), &def->include)))
            return rc;
        if ((y = crest__ytree_get(x, "exclude")) && (rc = get_names(L, y, SUB("serializer.exclude"), &def->exclude)))
            return rc;
        if ((y = crest__ytree_get(x, "computed"))) {
            if (want_map(L, y, SUB("serializer.computed")))
                return CREST_ECONFIG;
            crest_computed *c = crest__arena_calloc(a, y->n + 1, sizeof *c);
            if (!c)
                return CREST_ENOMEM;
            for (size_t i = 0; i < y->n; i++) {
                const ynode *k = y->kids[2 * i], *e = y->kids[2 * i + 1];
                if (want_scalar(L, e, SUB("serializer.computed")))
                    return CREST_ECONFIG;
                if (strchr(e->str, ';'))
                    return bad(L, e, "%s.%s: one SQL expression, without ';'", w2, k->str);
                if (!(c[i].name = conf_strdup(L, k->str)) || !(c[i].sql = conf_strdup(L, e->str)))
                    return CREST_ENOMEM;
            }
            def->computed = c;
        }
    }
    if ((x = crest__ytree_get(v, "parser"))) {
        static const char *const pk[] = {"attributes", NULL};
        if (want_map(L, x, SUB("parser")) || check_keys(L, x, w2, pk))
            return CREST_ECONFIG;
        const ynode *y;
        if ((y = crest__ytree_get(x, "attributes")) &&
            (rc = get_names(L, y, SUB("parser.attributes"), &def->parse_attributes)))
            return rc;
    }
    if ((x = crest__ytree_get(v, "permissions"))) {
        static const char *const mk[] = {"index", "read", "create", "update", "delete", "sample", "group", "stats",
                                         "eval", NULL};
        if (want_map(L, x, SUB("permissions")) || check_keys(L, x, w2, mk))
            return CREST_ECONFIG;
        for (unsigned b = 0; b < 9; b++) {
            const ynode *y = crest__ytree_get(x, mk[b]);
            char w3[260];
            snprintf(w3, sizeof w3, "%s.permissions.%s", where, mk[b]);
            if (y && (rc = get_permission(L, y, w3, &def->permissions[b])))
                return rc;
        }
    }
    if ((x = crest__ytree_get(v, "scope"))) {
        if (want_map(L, x, SUB("scope")))
            return CREST_ECONFIG;
        if ((rc = conf_json(L, ynode_json(x), &def->scope)))
            return rc;
    }
#undef SUB
    crest_error e2 = {0};
    if ((rc = crest_app_add_module(L->app, def, &e2)))
        return bad(L, key, "%s", e2.msg);
    return 0;
}

/* A permission: public | authenticated | a list of permissions (→ "a,b"). */
static int get_permission(loader *L, const ynode *n, const char *where, const char **out)
{
    if (n->kind == Y_SCALAR && (!strcmp(n->str, "public") || !strcmp(n->str, "authenticated"))) {
        *out = conf_strdup(L, n->str);
        return *out ? 0 : CREST_ENOMEM;
    }
    if (n->kind != Y_SEQ || n->n == 0)
        return bad(L, n, "%s: expected public, authenticated or a list of permissions", where);
    const char *const *names;
    int rc = get_names(L, n, where, &names);
    if (rc)
        return rc;
    for (size_t i = 0; names[i]; i++)
        if (!*names[i] || strchr(names[i], ',') || !strcmp(names[i], "public") || !strcmp(names[i], "authenticated"))
            return bad(L, n, "%s: bad permission name '%s'", where, names[i]);
    return conf_join(L, names, out);
}

static int load_auth(loader *L, const ynode *x)
{
    static const char *const keys[] = {"jwt", "api_keys_file", NULL};
    static const char *const jk[] = {"algorithms", "secret_env", "secret_file", "public_key_file", "audience",
                                     "issuer", "leeway", "permissions_claim", "max_token", NULL};
    if (want_map(L, x, "auth") || check_keys(L, x, "auth", keys))
        return CREST_ECONFIG;
    const ynode *kf = crest__ytree_get(x, "api_keys_file");
    if (kf) {
        /* "<id> <sha256 hex of the key> [perm,perm] [revoked]" per line; # comments. */
        if (want_scalar(L, kf, "auth.api_keys_file"))
            return CREST_ECONFIG;
        FILE *f = fopen(kf->str, "r");
        if (!f)
            return bad(L, kf, "auth.api_keys_file: cannot open %s: %s", kf->str, strerror(errno));
        char line[2048];
        int ln = 0, krc = 0;
        while (!krc && fgets(line, sizeof line, f)) {
            ln++;
            char *save = NULL, *id = strtok_r(line, " \t\r\n", &save);
            if (!id || id[0] == '#')
                continue;
            char *hash = strtok_r(NULL, " \t\r\n", &save), *perms = strtok_r(NULL, " \t\r\n", &save);
            char *flag = strtok_r(NULL, " \t\r\n", &save);
            bool revoked = false;
            if (perms && !strcmp(perms, "revoked") && !flag) {
                revoked = true;
                perms = NULL;
            } else if (flag && !strcmp(flag, "revoked")) {
                revoked = true;
            } else if (flag) {
                krc = bad(L, kf, "auth.api_keys_file: %s line %d: unexpected '%s'", kf->str, ln, flag);
                break;
            }
            crest_error e2 = {0};
            if (crest_app_add_api_key(L->app, id, hash, perms, revoked, &e2))
                krc = bad(L, kf, "auth.api_keys_file: %s line %d: %s", kf->str, ln, e2.msg);
        }
        fclose(f);
        if (krc)
            return krc;
    }
    const ynode *j = crest__ytree_get(x, "jwt");
    if (!j) {
        if (!kf)
            return bad(L, x, "auth: configure jwt, api_keys_file or both");
        return 0;
    }
    if (want_map(L, j, "auth.jwt") || check_keys(L, j, "auth.jwt", jk))
        return CREST_ECONFIG;
    crest_jwt_config cfg = {0};
    const ynode *y;
    int rc;
    const char *const *algs = NULL;
    if (!(y = crest__ytree_get(j, "algorithms")))
        return bad(L, j, "auth.jwt: pin the algorithms, as in algorithms: [HS256]");
    if ((rc = get_names(L, y, "auth.jwt.algorithms", &algs)) || (rc = conf_join(L, algs, &cfg.algorithms)))
        return rc;
    const ynode *env = crest__ytree_get(j, "secret_env"), *file = crest__ytree_get(j, "secret_file");
    const ynode *pub = crest__ytree_get(j, "public_key_file");
    if (pub && (env || file))
        return bad(L, pub, "auth.jwt: public_key_file (RS256/ES256) or a secret (HS*), not both");
    if (pub)
        file = pub; /* read the same way; the algorithms say how it is used */
    if (!env == !file)
        return bad(L, j, "auth.jwt: give the secret's source, secret_env (a variable's name) or secret_file "
                         "(never the secret itself), or public_key_file for RS256/ES256");
    char *secret = NULL;
    size_t slen = 0;
    if (env) {
        if (want_scalar(L, env, "auth.jwt.secret_env"))
            return CREST_ECONFIG;
        const char *v = getenv(env->str);
        if (!v || !*v)
            return bad(L, env, "auth.jwt.secret_env: the variable %s is not set", env->str);
        secret = strdup(v);
        slen = secret ? strlen(secret) : 0;
    } else {
        if (want_scalar(L, file, "auth.jwt.secret_file"))
            return CREST_ECONFIG;
        FILE *f = fopen(file->str, "rb");
        if (!f)
            return bad(L, file, "auth.jwt.%s: cannot open %s: %s", pub ? "public_key_file" : "secret_file", file->str,
                       strerror(errno));
        char buf[4097];
        slen = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        while (!pub && slen && (buf[slen - 1] == '\n' || buf[slen - 1] == '\r'))
            slen--; /* a PEM keeps its last newline */
        secret = malloc(slen + 1);
        if (secret)
            memcpy(secret, buf, slen);
        memset(buf, 0, sizeof buf);
    }
    if (!secret)
        return CREST_ENOMEM;
    cfg.secret = (const unsigned char *)secret;
    cfg.secret_len = slen;
    if ((y = crest__ytree_get(j, "audience")) && (rc = get_string(L, y, "auth.jwt.audience", &cfg.audience)))
        goto out;
    if ((y = crest__ytree_get(j, "issuer")) && (rc = get_string(L, y, "auth.jwt.issuer", &cfg.issuer)))
        goto out;
    if ((y = crest__ytree_get(j, "permissions_claim")) &&
        (rc = get_string(L, y, "auth.jwt.permissions_claim", &cfg.permissions_claim)))
        goto out;
    int64_t n;
    if ((y = crest__ytree_get(j, "leeway"))) {
        if ((rc = get_int(L, y, "auth.jwt.leeway", 0, 300, &n)))
            goto out;
        cfg.leeway_s = (unsigned)n;
    }
    if ((y = crest__ytree_get(j, "max_token"))) {
        if ((rc = get_size(L, y, "auth.jwt.max_token", &cfg.max_token)))
            goto out;
    }
    crest_error e2 = {0};
    if (crest_app_set_jwt(L->app, &cfg, &e2))
        rc = bad(L, j, "%s", e2.msg);
out:
    memset(secret, 0, slen);
    free(secret);
    return rc;
}

static int load_root(loader *L, const ynode *root)
{
    static const char *const keys[] = {"database", "listen", "workers", "api_prefix", "api_version", "limits",
                                       "endpoints", "startup_sql", "access_log", "models", "modules", "durability",
                                       "info", "servers", "openapi", "docs", "auth", "cors", "rate_limit", "tls", "metrics", NULL};
    if (root->kind != Y_MAP)
        return bad(L, root, "the app file must be a map at the top (database:, listen:, endpoints: ...)");
    if (check_keys(L, root, "app file", keys))
        return CREST_ECONFIG;
    crest_app *app = L->app;
    const ynode *x;
    const char *s;
    int rc;
    if ((x = crest__ytree_get(root, "database"))) {
        if ((rc = get_string(L, x, "database", &s)))
            return rc;
        if (!strncmp(s, "postgres", 8))
            return bad(L, x, "database: PostgreSQL is not supported by this version of crest yet");
        if (crest_app_set_database(app, s))
            return bad(L, x, "database: expected sqlite:PATH, found '%s'", s);
    }
    if ((x = crest__ytree_get(root, "listen"))) {
        if ((rc = get_string(L, x, "listen", &s)))
            return rc;
        if (crest_app_set_listen(app, s))
            return bad(L, x, "listen: expected HOST:PORT, found '%s'", s);
    }
    if ((x = crest__ytree_get(root, "workers"))) {
        int64_t n;
        if ((rc = get_int(L, x, "workers", 0, 256, &n)))
            return rc;
        crest_app_set_workers(app, (int)n);
    }
    if ((x = crest__ytree_get(root, "metrics"))) { /* off | on | {permission: ...} */
        bool on = true;
        const char *perm = NULL;
        const ynode *y;
        if (x->kind == Y_MAP) {
            static const char *const mk[] = {"permission", NULL};
            if (check_keys(L, x, "metrics", mk))
                return CREST_ECONFIG;
            if ((y = crest__ytree_get(x, "permission")) && (rc = get_permission(L, y, "metrics.permission", &perm)))
                return rc;
        } else if (x->kind != Y_SCALAR || crest__parse_bool(x->str, strlen(x->str), &on)) {
            return bad(L, x, "metrics: expected off, on or {permission: ...}");
        }
        if (crest_app_set_metrics(app, on, perm))
            return CREST_ENOMEM;
    }
    if ((x = crest__ytree_get(root, "access_log"))) {
        bool on;
        if ((rc = get_bool(L, x, "access_log", &on)))
            return rc;
        app->access_log = on;
    }
    const ynode *pfx = crest__ytree_get(root, "api_prefix"), *ver = crest__ytree_get(root, "api_version");
    if (pfx || ver) {
        const char *p = "";
        char buf[256];
        if (pfx && (rc = get_string(L, pfx, "api_prefix", &p)))
            return rc;
        if (ver && (rc = want_scalar(L, ver, "api_version")))
            return rc;
        /* Inmanta's /<prefix>/v<version>: "api" + 1 → "/api/v1". */
        const char *v = ver ? ver->str : NULL;
        if (v && (v[0] == 'v' || v[0] == 'V'))
            v++;
        int64_t vn;
        if (v && crest__parse_int(v, strlen(v), &vn))
            return bad(L, ver, "api_version: expected a number such as 1, found '%s'", ver->str);
        snprintf(buf, sizeof buf, "%s%s%s%s", (p[0] && p[0] != '/') ? "/" : "", p, v ? "/v" : "", v ? v : "");
        for (const char *c = buf; *c; c++)
            if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_' ||
                  *c == '-' || *c == '/' || *c == '.'))
                return bad(L, pfx ? pfx : ver, "api_prefix: use letters, digits, '-', '_', '.' and '/'");
        if (crest_app_set_api_prefix(app, buf))
            return bad(L, pfx ? pfx : ver, "api_prefix: bad prefix '%s'", buf);
    }
    if ((x = crest__ytree_get(root, "limits")) && (rc = load_limits(L, x)))
        return rc;
    if ((x = crest__ytree_get(root, "startup_sql"))) {
        crest__buf b;
        crest__buf_init(&b, 0);
        if (x->kind == Y_SCALAR) {
            crest__buf_appends(&b, x->str);
        } else if (x->kind == Y_SEQ) {
            for (size_t i = 0; i < x->n; i++) {
                if (want_scalar(L, x->kids[i], "startup_sql")) {
                    crest__buf_dispose(&b);
                    return CREST_ECONFIG;
                }
                crest__buf_appendf(&b, "%s;\n", x->kids[i]->str);
            }
        } else {
            return bad(L, x, "startup_sql: expected SQL text or a list of statements");
        }
        if (crest__buf_append(&b, "", 1)) {
            crest__buf_dispose(&b);
            return CREST_ENOMEM;
        }
        free(app->startup_sql);
        app->startup_sql = b.ptr;
    }
    if ((x = crest__ytree_get(root, "info"))) {
        static const char *const ik[] = {"title", "version", "description", NULL};
        if (want_map(L, x, "info") || check_keys(L, x, "info", ik))
            return CREST_ECONFIG;
        const char *t = NULL, *iv = NULL, *d = NULL;
        const ynode *y;
        if ((y = crest__ytree_get(x, "title")) && (rc = get_string(L, y, "info.title", &t)))
            return rc;
        if ((y = crest__ytree_get(x, "version")) && (rc = get_string(L, y, "info.version", &iv)))
            return rc;
        if ((y = crest__ytree_get(x, "description")) && (rc = get_string(L, y, "info.description", &d)))
            return rc;
        if (crest_app_set_info(app, t, iv, d))
            return CREST_ENOMEM;
    }
    if ((x = crest__ytree_get(root, "servers"))) {
        if (x->kind != Y_SEQ)
            return bad(L, x, "servers: expected a list of URLs (or {url, description})");
        for (size_t i = 0; i < x->n; i++) {
            const ynode *e = x->kids[i];
            const char *url = NULL, *d = NULL;
            if (e->kind == Y_SCALAR) {
                url = e->str;
            } else {
                static const char *const sk[] = {"url", "description", NULL};
                if (want_map(L, e, "servers[]") || check_keys(L, e, "servers[]", sk))
                    return CREST_ECONFIG;
                const ynode *y;
                if (!(y = crest__ytree_get(e, "url")) || (rc = get_string(L, y, "servers[].url", &url)))
                    return y ? rc : bad(L, e, "servers[]: needs a url");
                if ((y = crest__ytree_get(e, "description")) && (rc = get_string(L, y, "servers[].description", &d)))
                    return rc;
            }
            if (!*url || crest_app_add_server(app, url, d))
                return bad(L, e, "servers[]: expected a URL");
        }
    }
    if ((x = crest__ytree_get(root, "openapi"))) {
        if (want_scalar(L, x, "openapi"))
            return CREST_ECONFIG;
        if (strcmp(x->str, "3.0") && strcmp(x->str, "3.1") && strcmp(x->str, "3.0.3") && strcmp(x->str, "3.1.0"))
            return bad(L, x, "openapi: expected \"3.1\" or \"3.0\", found '%s'", x->str);
        crest_app_set_openapi_30(app, !strncmp(x->str, "3.0", 3));
    }
    if ((x = crest__ytree_get(root, "docs"))) {
        bool on;
        if ((rc = get_bool(L, x, "docs", &on)))
            return rc;
        crest_app_set_docs(app, on);
    }
    if ((x = crest__ytree_get(root, "auth")) && (rc = load_auth(L, x)))
        return rc;
    if ((x = crest__ytree_get(root, "tls"))) {
        static const char *const tk[] = {"cert", "key", NULL};
        if (want_map(L, x, "tls") || check_keys(L, x, "tls", tk))
            return CREST_ECONFIG;
        const ynode *cert = crest__ytree_get(x, "cert"), *key = crest__ytree_get(x, "key");
        if (!cert || !key)
            return bad(L, x, "tls: give cert (a PEM certificate chain) and key (its private key)");
        if (want_scalar(L, cert, "tls.cert") || want_scalar(L, key, "tls.key"))
            return CREST_ECONFIG;
        crest_error terr = {0};
        if (crest_app_set_tls(app, cert->str, key->str, &terr))
            return bad(L, strstr(terr.msg, "tls.key") ? key : cert, "%s", terr.msg);
    }
    if ((x = crest__ytree_get(root, "rate_limit"))) {
        if (want_scalar(L, x, "rate_limit"))
            return CREST_ECONFIG;
        if (crest_app_set_rate_limit(app, x->str))
            return bad(L, x, "rate_limit: expected requests/period, as in 100/1m or 10/s, found '%s'", x->str);
    }
    if ((x = crest__ytree_get(root, "cors"))) {
        static const char *const ck[] = {"origins", "headers", "max_age", "credentials", NULL};
        if (want_map(L, x, "cors") || check_keys(L, x, "cors", ck))
            return CREST_ECONFIG;
        const ynode *y = crest__ytree_get(x, "origins");
        const char *const *origins;
        if (!y || y->kind != Y_SEQ || !y->n)
            return bad(L, y ? y : x, "cors.origins: a list of allowed origins (https://app.example.com)");
        if ((rc = get_names(L, y, "cors.origins", &origins)))
            return rc;
        for (size_t i = 0; origins[i]; i++)
            if ((strncmp(origins[i], "http://", 7) && strncmp(origins[i], "https://", 8) && strcmp(origins[i], "*")) ||
                crest_app_add_cors_origin(app, origins[i]))
                return bad(L, y, "cors.origins: '%s' is not an origin (scheme://host[:port], or *)", origins[i]);
        const char *headers = NULL;
        unsigned max_age = 600;
        bool cred = false;
        if ((y = crest__ytree_get(x, "headers"))) {
            const char *const *hs;
            if ((rc = get_names(L, y, "cors.headers", &hs)) || (rc = conf_join(L, hs, &headers)))
                return rc;
        }
        if ((y = crest__ytree_get(x, "max_age"))) {
            int64_t secs;
            if (y->kind == Y_SCALAR && !crest__parse_int(y->str, y->len, &secs) && secs >= 0 && secs <= 86400) {
                max_age = (unsigned)secs; /* a bare number is seconds here */
            } else {
                if ((rc = get_duration(L, y, "cors.max_age", &max_age)))
                    return rc;
                max_age /= 1000;
            }
        }
        if ((y = crest__ytree_get(x, "credentials")) && (rc = get_bool(L, y, "cors.credentials", &cred)))
            return rc;
        for (size_t i = 0; cred && origins[i]; i++)
            if (!strcmp(origins[i], "*"))
                return bad(L, y, "cors: credentials cannot go with the origin *");
        if (crest_app_set_cors(app, headers, max_age, cred))
            return CREST_ENOMEM;
    }
    if ((x = crest__ytree_get(root, "durability"))) {
        if (want_scalar(L, x, "durability"))
            return CREST_ECONFIG;
        if (strcmp(x->str, "full") && strcmp(x->str, "normal"))
            return bad(L, x, "durability: expected full or normal, found '%s'", x->str);
        app->durability_normal = !strcmp(x->str, "normal");
    }
    if ((x = crest__ytree_get(root, "models")) && !crest__ytree_is_null(x)) {
        if (want_map(L, x, "models"))
            return CREST_ECONFIG;
        for (size_t i = 0; i < x->n; i++)
            if ((rc = load_model(L, x->kids[2 * i], x->kids[2 * i + 1])))
                return rc;
    }
    if ((x = crest__ytree_get(root, "modules")) && !crest__ytree_is_null(x)) {
        if (want_map(L, x, "modules"))
            return CREST_ECONFIG;
        for (size_t i = 0; i < x->n; i++)
            if ((rc = load_module(L, x->kids[2 * i], x->kids[2 * i + 1])))
                return rc;
    }
    if ((x = crest__ytree_get(root, "endpoints")) && !crest__ytree_is_null(x)) {
        if (x->kind != Y_SEQ)
            return bad(L, x, "endpoints: expected a list");
        for (size_t i = 0; i < x->n; i++)
            if ((rc = load_endpoint(L, x->kids[i], i)))
                return rc;
    }
    return 0;
}

int crest_app_load_string(crest_app *app, const char *name, const char *text, size_t len, crest_error *err)
{
    if (!name)
        name = "(app file)";
    ynode *root = crest__ytree_parse(name, text, len, err);
    if (!root)
        return CREST_ECONFIG;
    free(app->source_name);
    app->source_name = strdup(name);
    loader L = {app, name, err};
    int rc = load_root(&L, root);
    crest__ytree_free(root);
    if (rc && err && err->code == 0)
        crest__error_set(err, rc, name, 0, "cannot load the app file");
    return rc ? CREST_ECONFIG : 0;
}

int crest_app_load_file(crest_app *app, const char *path, crest_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return crest__error_set(err, CREST_ECONFIG, path, 0, "cannot open: %s", strerror(errno));
    crest__buf b;
    crest__buf_init(&b, YTREE_MAX_BYTES + 1);
    char chunk[16384];
    size_t n;
    int rc = 0;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (crest__buf_append(&b, chunk, n)) {
            rc = crest__error_set(err, CREST_ECONFIG, path, 0, "the app file is larger than %u bytes",
                                  YTREE_MAX_BYTES);
            break;
        }
    }
    if (!rc && ferror(f))
        rc = crest__error_set(err, CREST_ECONFIG, path, 0, "cannot read: %s", strerror(errno));
    fclose(f);
    if (!rc)
        rc = crest_app_load_string(app, path, b.ptr ? b.ptr : "", b.len, err);
    crest__buf_dispose(&b);
    return rc;
}
