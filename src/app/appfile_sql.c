/* appfile_sql.c — the app file's SQL endpoints (`endpoints:`): method, path,
 * typed parameters, the SQL and how its rows are returned. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "../json/json_internal.h"
#include "appfile.h"
#include "../rest/rest_internal.h"

int crest__app_add_sql_endpoint(crest_app *app, const crest_endpoint *ep, crest__sqlep *sql, crest_error *err);

static int parse_type(crest__loader *L, const ynode *n, const char *where, bool allow_json, crest_type *out)
{
    if (crest__af_want_scalar(L, n, where))
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
        return crest__af_bad(L, n, "%s: unknown type '%s' (string, int, float, bool, enum%s)", where, t,
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
static int load_param(crest__loader *L, crest__sqlep *s, const ynode *key, const ynode *v, bool has_body, const char *where0)
{
    static const char *const keys[] = {"type", "in", "required", "default", "min", "max", "min_length",
                                       "max_length", "values", "description", NULL};
    char where[300];
    snprintf(where, sizeof where, "%s.params.%s", where0, key->str);
    const char *name = key->str;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return crest__af_bad(L, key, "%s: parameter names use letters, digits and '_'", where);
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
        if (crest__af_want_map(L, v, where) || crest__af_check_keys(L, v, where, keys))
            return CREST_ECONFIG;
        const ynode *t = crest__ytree_get(v, "type");
        if (t && (rc = parse_type(L, t, where, true, &type)))
            return rc;
        const ynode *x;
        if ((x = crest__ytree_get(v, "in")) && (rc = crest__af_get_string(L, x, where, &in)))
            return rc;
        if (in && strcmp(in, "path") && strcmp(in, "query") && strcmp(in, "header") && strcmp(in, "body"))
            return crest__af_bad(L, x, "%s.in: must be path, query, header or body", where);
        if ((x = crest__ytree_get(v, "required"))) {
            if ((rc = crest__af_get_bool(L, x, where, &required)))
                return rc;
            required_set = true;
        }
        def = crest__ytree_get(v, "default");
        values = crest__ytree_get(v, "values");
        desc = crest__ytree_get(v, "description");
        const char *minkey = type == CREST_T_STRING ? "min_length" : "min";
        const char *maxkey = type == CREST_T_STRING ? "max_length" : "max";
        if ((x = crest__ytree_get(v, minkey))) {
            if ((rc = crest__af_get_number(L, x, where, &mn)))
                return rc;
            has_min = true;
        }
        if ((x = crest__ytree_get(v, maxkey))) {
            if ((rc = crest__af_get_number(L, x, where, &mx)))
                return rc;
            has_max = true;
        }
        if ((x = crest__ytree_get(v, type == CREST_T_STRING ? "min" : "min_length")) ||
            (x = crest__ytree_get(v, type == CREST_T_STRING ? "max" : "max_length")))
            return crest__af_bad(L, x, "%s: %s", where,
                       type == CREST_T_STRING ? "strings take min_length/max_length" : "only strings take min_length/max_length");
    }
    if (type == CREST_T_ENUM) {
        if (!values || values->kind != Y_SEQ || values->n == 0)
            return crest__af_bad(L, values ? values : v, "%s: an enum needs 'values', a non-empty list", where);
    } else if (values) {
        return crest__af_bad(L, values, "%s: 'values' is only for type enum", where);
    }
    if (!in)
        in = in_path(s->spec.path, name) ? "path" : has_body ? "body" : "query";
    if (!strcmp(in, "path")) {
        if (!in_path(s->spec.path, name))
            return crest__af_bad(L, key, "%s: '{%s}' is not in the path", where, name);
        required = true;
    } else if (in_path(s->spec.path, name)) {
        return crest__af_bad(L, key, "%s: '{%s}' is in the path, so it cannot be in %s", where, name, in);
    }
    if (!required_set && strcmp(in, "path"))
        required = false;
    if (!strcmp(in, "body")) {
        if (!has_body)
            return crest__af_bad(L, key, "%s: %s requests have no body", where, crest_method_name(s->spec.method));
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
                return crest__af_bad(L, def, "%s.default: expected a value", where);
            if (type == CREST_T_INT) {
                int64_t iv;
                if (crest__parse_int(def->str, def->len, &iv))
                    return crest__af_bad(L, def, "%s.default: expected an integer", where);
                b->def = json_integer(iv);
            } else if (type == CREST_T_FLOAT) {
                double dv;
                if (crest__parse_double(def->str, def->len, &dv))
                    return crest__af_bad(L, def, "%s.default: expected a number", where);
                b->def = json_real(dv);
            } else if (type == CREST_T_BOOL) {
                bool bv;
                if (crest__af_get_bool(L, def, where, &bv))
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
                if (crest__af_want_scalar(L, values->kids[i], where))
                    return CREST_ECONFIG;
                if (!(b->values[i] = strdup(values->kids[i]->str)))
                    return CREST_ENOMEM;
            }
        }
        return 0;
    }
    if (type == 0)
        return crest__af_bad(L, v, "%s: only body parameters can be json", where);
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
            return crest__af_bad(L, def, "%s.default: expected a value", where);
        if (!(p->def = strdup(def->str)))
            return CREST_ENOMEM;
    }
    if (desc) {
        if (crest__af_want_scalar(L, desc, where))
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
            if (crest__af_want_scalar(L, values->kids[i], where))
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

int crest__af_load_endpoint(crest__loader *L, const ynode *e, size_t idx)
{
    static const char *const keys[] = {"method", "path", "params", "sql", "returns", "status", "summary",
                                       "description", "tag", "timeout", "envelope", "columns", "permission",
                                       "rate_limit", NULL};
    char where[64];
    snprintf(where, sizeof where, "endpoints[%zu]", idx);
    if (crest__af_want_map(L, e, where) || crest__af_check_keys(L, e, where, keys))
        return CREST_ECONFIG;
    const ynode *m = crest__ytree_get(e, "method"), *path = crest__ytree_get(e, "path"),
                *sql = crest__ytree_get(e, "sql"), *ret = crest__ytree_get(e, "returns");
    if (!path)
        return crest__af_bad(L, e, "%s: 'path' is required", where);
    if (!sql)
        return crest__af_bad(L, e, "%s: 'sql' is required", where);
    if (crest__af_want_scalar(L, path, where) || crest__af_want_scalar(L, sql, where))
        return CREST_ECONFIG;
    if (path->str[0] != '/')
        return crest__af_bad(L, path, "%s.path: must start with '/'", where);
    char pmsg[400];
    if (crest__path_check(path->str, pmsg, sizeof pmsg))
        return crest__af_bad(L, path, "%s.%s", where, pmsg);
    crest_method method = CREST_GET;
    if (m) {
        if (crest__af_want_scalar(L, m, where))
            return CREST_ECONFIG;
        static const crest_method all[] = {CREST_GET, CREST_POST, CREST_PUT, CREST_PATCH, CREST_DELETE};
        method = 0;
        for (size_t i = 0; i < CREST_ARRAY_LEN(all); i++)
            if (!strcasecmp(m->str, crest_method_name(all[i])))
                method = all[i];
        if (!method)
            return crest__af_bad(L, m, "%s.method: must be GET, POST, PUT, PATCH or DELETE, found '%s'", where, m->str);
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
        if ((rc = crest__af_want_scalar(L, ret, where)))
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
            rc = crest__af_bad(L, ret, "%s.returns: must be one, many, value or none (found '%s')", where, ret->str);
            goto fail;
        }
    }
    const ynode *x;
    if ((x = crest__ytree_get(e, "status"))) {
        int64_t st;
        if ((rc = crest__af_get_int(L, x, "status", 200, 299, &st)))
            goto fail;
        s->spec.status = (int)st;
    }
    if ((x = crest__ytree_get(e, "timeout"))) {
        unsigned ms;
        if ((rc = crest__af_get_duration(L, x, "timeout", &ms)))
            goto fail;
        s->spec.timeout_ms = (int)ms;
    }
    if ((x = crest__ytree_get(e, "rate_limit"))) {
        if ((rc = crest__af_want_scalar(L, x, where)))
            goto fail;
        crest__rate tmp;
        if (crest__rate_parse(x->str, &tmp)) {
            rc = crest__af_bad(L, x, "%s.rate_limit: expected requests/period, as in 100/1m or 10/s, found '%s'", where, x->str);
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
        if ((rc = crest__af_get_permission(L, x, w2, &s->spec.permission)))
            goto fail;
    }
    const char *strkeys[] = {"summary", "description", "tag", "envelope"};
    for (size_t i = 0; i < CREST_ARRAY_LEN(strkeys); i++) {
        if (!(x = crest__ytree_get(e, strkeys[i])))
            continue;
        if ((rc = crest__af_want_scalar(L, x, where)))
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
                    rc = crest__af_bad(L, x, "%s.envelope: use letters, digits and '_'", where);
                    goto fail;
                }
            s->spec.envelope = v;
        }
    }
    if ((x = crest__ytree_get(e, "columns")) && !crest__ytree_is_null(x)) {
        /* SQLite has no bool or json column type: say how to write a column. */
        if ((rc = crest__af_want_map(L, x, where)))
            goto fail;
        s->cols = calloc(x->n ? x->n : 1, sizeof *s->cols);
        if (!s->cols) {
            rc = CREST_ENOMEM;
            goto fail;
        }
        for (size_t i = 0; i < x->n; i++) {
            const ynode *k = x->kids[2 * i], *v = x->kids[2 * i + 1];
            if ((rc = crest__af_want_scalar(L, v, where)))
                goto fail;
            int kind = !strcmp(v->str, "bool") || !strcmp(v->str, "boolean") ? COL_BOOL
                       : !strcmp(v->str, "json")                            ? COL_JSON
                       : !strcmp(v->str, "auto")                            ? COL_AS_IS
                                                                            : -1;
            if (kind < 0) {
                rc = crest__af_bad(L, v, "%s.columns.%s: must be bool, json or auto (found '%s')", where, k->str, v->str);
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
        if ((rc = crest__af_want_map(L, params, where)))
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
        rc = crest__af_bad(L, path, "%s: %s", where, e2.msg); /* the route: taken, or a bad pattern */
        goto fail;
    }
    return 0;
fail:
    crest__sqlep_free(s);
    return rc ? rc : CREST_ECONFIG;
}

/* ---- models and modules: the app file builds the C API's definitions ---- */
