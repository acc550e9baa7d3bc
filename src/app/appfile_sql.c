/* appfile_sql.c — the app file's SQL endpoints (`endpoints:`): method, path,
 * typed parameters (body parameters become fields, crest__mfield, whose
 * defaults are checked here once), the SQL and how its rows are returned. */
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
    else if (!strcmp(t, "uuid"))
        *out = CREST_T_UUID;
    else if (allow_json && !strcmp(t, "json"))
        *out = 0;
    else
        return crest__af_bad(L, n, "%s: unknown type '%s' (string, int, float, bool, enum, uuid%s)", where, t,
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

/* A body parameter as a field (type string: min/max are its length), so the
 * one field validator checks it; its default is checked here, once. */
static int body_param(crest__loader *L, sqlep_body_param *b, const char *name, crest_type type, bool required,
                      const ynode *v, const char *where)
{
    crest_field *f = &b->f.f;
    if (!(b->name = strdup(name)))
        return CREST_ENOMEM;
    f->name = b->name;
    f->type = type == CREST_T_INT     ? CREST_F_INT
              : type == CREST_T_FLOAT ? CREST_F_FLOAT
              : type == CREST_T_BOOL  ? CREST_F_BOOL
              : type == CREST_T_UUID  ? CREST_F_UUID
              : type == 0             ? CREST_F_JSON
                                      : CREST_F_STRING; /* string, enum */
    f->required = required;
    if (v->kind != Y_MAP)
        return 0;
    const ynode *x, *def = crest__ytree_get(v, "default"), *values = crest__ytree_get(v, "values");
    int64_t n;
    int rc;
    if (type == CREST_T_STRING) {
        if ((x = crest__ytree_get(v, "min_length"))) {
            if ((rc = crest__af_get_int(L, x, where, 0, 1 << 30, &n)))
                return rc;
            f->min_length = n;
        }
        if ((x = crest__ytree_get(v, "max_length"))) {
            if ((rc = crest__af_get_int(L, x, where, 1, 1 << 30, &n)))
                return rc;
            f->max_length = n;
        }
        if (f->max_length && f->min_length > f->max_length)
            return crest__af_bad(L, x, "%s: min_length is greater than max_length", where);
    } else {
        if ((x = crest__ytree_get(v, "min")) && (rc = crest__af_get_number(L, x, where, &f->min)))
            return rc;
        f->has_min = x != NULL;
        if ((x = crest__ytree_get(v, "max")) && (rc = crest__af_get_number(L, x, where, &f->max)))
            return rc;
        f->has_max = x != NULL;
        if (f->has_min && f->has_max && f->min > f->max)
            return crest__af_bad(L, x, "%s: min is greater than max", where);
    }
    if ((x = crest__ytree_get(v, "description"))) {
        if (crest__af_want_scalar(L, x, where))
            return CREST_ECONFIG;
        if (!(b->description = strdup(x->str)))
            return CREST_ENOMEM;
        f->description = b->description;
    }
    if (values) {
        if (!(b->values = calloc(values->n + 1, sizeof(char *))))
            return CREST_ENOMEM;
        for (size_t i = 0; i < values->n; i++) {
            if (crest__af_want_scalar(L, values->kids[i], where))
                return CREST_ECONFIG;
            if (!(b->values[i] = strdup(values->kids[i]->str)))
                return CREST_ENOMEM;
        }
        f->values = (const char *const *)b->values;
    }
    if (!def)
        return 0;
    if (def->kind != Y_SCALAR)
        return crest__af_bad(L, def, "%s.default: expected a value", where);
    if (type == CREST_T_INT) {
        int64_t iv;
        if (crest__parse_int(def->str, def->len, &iv))
            return crest__af_bad(L, def, "%s.default: expected an integer", where);
        b->f.defv = json_integer(iv);
    } else if (type == CREST_T_FLOAT) {
        double dv;
        if (crest__parse_double(def->str, def->len, &dv))
            return crest__af_bad(L, def, "%s.default: expected a number", where);
        b->f.defv = json_real(dv);
    } else if (type == CREST_T_BOOL) {
        bool bv;
        if (crest__af_get_bool(L, def, where, &bv))
            return CREST_ECONFIG;
        b->f.defv = json_boolean(bv);
    } else {
        b->f.defv = json_string(def->str);
    }
    if (!b->f.defv)
        return CREST_ENOMEM;
    crest__arena a;
    crest__arena_init(&a, 256, 0);
    crest__val out;
    const char *msg = crest__field_value(&a, &b->f, b->f.defv, &out);
    rc = msg ? crest__af_bad(L, def, "%s.default: %s", where, msg) : 0;
    crest__arena_dispose(&a);
    return rc;
}

/* One entry of an endpoint's params: short form "id: int" or a map. */
static int load_param(crest__loader *L, crest__sqlep *s, const ynode *key, const ynode *v, bool has_body, const char *where0)
{
    static const char *const keys[] = {"type", "in", "required", "default", "min", "max", "min_length",
                                       "max_length", "values", "description", "header", "reply_header", NULL};
    char where[300];
    snprintf(where, sizeof where, "%s.params.%s", where0, key->str);
    const char *name = key->str;
    for (const char *c = name; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return crest__af_bad(L, key, "%s: parameter names use letters, digits and '_'%s", where,
                                 strchr(name, '-') ? " (a header: give it a name for the SQL and say which header, "
                                                     "as in trace: {in: header, header: X-Trace})"
                                                   : "");
    crest_type type = CREST_T_STRING;
    const char *in = NULL;
    bool required = false, required_set = false;
    const ynode *def = NULL, *values = NULL, *desc = NULL;
    bool has_min = false, has_max = false;
    double mn = 0, mx = 0;
    const ynode *hdr = NULL; /* `header: X-Tenant-Id`: the header's real name */
    bool reply = false;
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
        if ((hdr = crest__ytree_get(v, "header"))) {
            if ((rc = crest__af_want_scalar(L, hdr, where)))
                return rc;
            if (in && strcmp(in, "header"))
                return crest__af_bad(L, hdr, "%s.header: only header parameters (in: header) name a header", where);
            in = "header";
            bool ok = hdr->len > 0 && hdr->len <= 128;
            for (const char *c = hdr->str; ok && *c; c++)
                ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ||
                     *c == '_';
            if (!ok)
                return crest__af_bad(L, hdr, "%s.header: a header name uses letters, digits, '-' and '_' (found '%s')",
                                     where, hdr->str);
        }
        if ((x = crest__ytree_get(v, "reply_header"))) {
            if ((rc = crest__af_get_bool(L, x, where, &reply)))
                return rc;
            if (reply && (!in || strcmp(in, "header")))
                return crest__af_bad(L, x, "%s.reply_header: only header parameters (in: header) are copied into "
                                           "the response", where);
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
        sqlep_body_param *b = &s->body[s->nbody++];
        memset(b, 0, sizeof *b);
        return body_param(L, b, name, type, required, v, where);
    }
    if (type == 0)
        return crest__af_bad(L, v, "%s: only body parameters can be json", where);
    crest_param *p = &s->params[s->nparams];
    memset(p, 0, sizeof *p);
    s->nparams++;
    if (!(p->name = strdup(hdr ? hdr->str : name)))
        return CREST_ENOMEM;
    if (hdr || reply) { /* the SQL still names it :<name> */
        sqlep_header *h = &s->headers[s->nheaders++];
        h->param = s->nparams - 1;
        h->reply = reply;
        if (!(h->sql_name = strdup(name)))
            return CREST_ENOMEM;
    }
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

int crest__af_load_endpoint(crest__loader *L, const ynode *e, const char *where, const crest__af_group *g)
{
    static const char *const keys[] = {"method", "path", "params", "sql", "returns", "status", "summary",
                                       "description", "tag", "timeout", "envelope", "columns", "permission",
                                       "rate_limit", NULL};
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
        if (!method) {
            char names[64] = "";
            size_t o = 0;
            for (size_t i = 0; i < CREST_ARRAY_LEN(all); i++)
                o += (size_t)snprintf(names + o, sizeof names - o, "%s%s",
                                      i == 0 ? "" : i + 1 == CREST_ARRAY_LEN(all) ? " or " : ", ",
                                      crest_method_name(all[i]));
            return crest__af_bad(L, m, "%s.method: must be %s, found '%s'", where, names, m->str);
        }
    }
    crest__sqlep *s = calloc(1, sizeof *s);
    if (!s)
        return CREST_ENOMEM;
    int rc = 0;
    s->line = e->line;
    s->sql_line = sql->line;
    s->spec.method = method;
    if (g && g->prefix) { /* the group's prefix; "/" is the prefix itself */
        char full[1024];
        snprintf(full, sizeof full, "%s%s", g->prefix, strcmp(path->str, "/") ? path->str : "");
        s->spec.path = own(s, full);
    } else {
        s->spec.path = own(s, path->str);
    }
    s->sql = crest__sqlep_user_params(sql->str);
    s->sql_source = strdup(sql->str);
    if (!s->spec.path || !s->sql || !s->sql_source) {
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
        char w2[200];
        snprintf(w2, sizeof w2, "%s.permission", where);
        if ((rc = crest__af_get_permission(L, x, w2, &s->spec.permission)))
            goto fail;
    }
    /* What the endpoint does not say, its group does. */
    if (g && g->rate_limit && !crest__ytree_get(e, "rate_limit") && !(s->spec.rate_limit = own(s, g->rate_limit))) {
        rc = CREST_ENOMEM;
        goto fail;
    }
    if (g && !crest__ytree_get(e, "permission"))
        s->spec.permission = g->permission;
    if (g && g->tag && !crest__ytree_get(e, "tag") && !(s->spec.tag = own(s, g->tag))) {
        rc = CREST_ENOMEM;
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
        /* SQLite has no bool, json, date or uuid column type: say how to
         * write a column, and what the OpenAPI document promises. */
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
            int kind = crest__sqlep_col_kind(v->str);
            if (kind < 0) {
                rc = crest__af_bad(L, v,
                                   "%s.columns.%s: must be int, float, string, bool, json, date, datetime, uuid or "
                                   "auto (found '%s')",
                                   where, k->str, v->str);
                goto fail;
            }
            for (unsigned j = 0; j < s->ncols; j++)
                if (!strcmp(s->cols[j].name, k->str)) {
                    rc = crest__af_bad(L, k, "%s.columns.%s: declared twice", where, k->str);
                    goto fail;
                }
            if (!(s->cols[s->ncols].name = strdup(k->str))) {
                rc = CREST_ENOMEM;
                goto fail;
            }
            s->cols[s->ncols].line = k->line;
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
    s->headers = calloc(np + 1, sizeof *s->headers);
    if (!s->params || !s->body || !s->headers) {
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

/* A group of SQL endpoints (Hyperion's routers, FastAPI's APIRouter): a
 * prefix, a tag (with its description) and defaults for the permission and
 * the rate limit, given to each endpoint that does not say otherwise. */
int crest__af_load_group(crest__loader *L, const ynode *key, const ynode *v)
{
    static const char *const keys[] = {"prefix", "tag", "description", "permission", "rate_limit", "endpoints", NULL};
    char where[160];
    snprintf(where, sizeof where, "groups.%s", key->str);
    if (crest__af_want_map(L, v, where) || crest__af_check_keys(L, v, where, keys))
        return CREST_ECONFIG;
    crest__af_group g = {.tag = key->str};
    const ynode *x;
    char w2[200];
    int rc;
#define SUB(k) (snprintf(w2, sizeof w2, "%s.%s", where, k), w2)
    if ((x = crest__ytree_get(v, "prefix"))) {
        char pmsg[400];
        if ((rc = crest__af_get_string(L, x, SUB("prefix"), &g.prefix)))
            return rc;
        if (g.prefix[0] != '/')
            return crest__af_bad(L, x, "%s: must start with '/'", w2);
        if (crest__path_check(g.prefix, pmsg, sizeof pmsg))
            return crest__af_bad(L, x, "%s: %s", w2, pmsg);
        size_t n = strlen(g.prefix);
        if (n > 1 && g.prefix[n - 1] == '/')
            return crest__af_bad(L, x, "%s: must not end with '/' (the endpoints' paths start with one)", w2);
        if (n == 1)
            g.prefix = NULL; /* "/": no prefix */
    }
    if ((x = crest__ytree_get(v, "tag")) && (rc = crest__af_get_string(L, x, SUB("tag"), &g.tag)))
        return rc;
    if ((x = crest__ytree_get(v, "description"))) {
        const char *d;
        if ((rc = crest__af_get_string(L, x, SUB("description"), &d)))
            return rc;
        if (crest__app_set_tag_description(L->app, g.tag, d))
            return CREST_ENOMEM;
    }
    if ((x = crest__ytree_get(v, "permission")) && (rc = crest__af_get_permission(L, x, SUB("permission"), &g.permission)))
        return rc;
    if ((x = crest__ytree_get(v, "rate_limit"))) {
        crest__rate tmp;
        if ((rc = crest__af_get_string(L, x, SUB("rate_limit"), &g.rate_limit)))
            return rc;
        if (crest__rate_parse(g.rate_limit, &tmp))
            return crest__af_bad(L, x, "%s: expected requests/period, as in 100/1m or 10/s, found '%s'", w2,
                                 g.rate_limit);
    }
    x = crest__ytree_get(v, "endpoints");
    if (!x || x->kind != Y_SEQ || x->n == 0)
        return crest__af_bad(L, x ? x : v, "%s: a group needs endpoints, a non-empty list", SUB("endpoints"));
#undef SUB
    for (size_t i = 0; i < x->n; i++) {
        snprintf(w2, sizeof w2, "%s.endpoints[%zu]", where, i);
        if ((rc = crest__af_load_endpoint(L, x->kids[i], w2, &g)))
            return rc;
    }
    return 0;
}
