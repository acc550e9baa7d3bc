/* sqlep.c — SQL-backed endpoints: each request turns its typed parameters
 * into bound values, runs the statement through the store (src/store: its
 * cache, its deadline; a slow read continues off the loop and the answer
 * comes later) and writes the rows through the JSON writer, each column as
 * the database typed it or as `columns:` declares it. Values are always
 * bound, never spliced into SQL text; :user.<claim> binds the signed-in
 * user's id or a claim of its token; header parameters bind under their SQL
 * name and may be sent back. Body parameters are fields, checked by the
 * one field validator (src/query/field.c) as REST bodies are. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../json/json_internal.h"
#include "../query/query.h"
#include "sqlep.h"

static void free_binds(crest__sqlep *s)
{
    for (int i = 0; s->binds && i < s->nbinds; i++)
        free(s->binds[i].user_claim);
    free(s->binds);
    s->binds = NULL;
    s->nbinds = 0;
    free(s->col_kind);
    s->col_kind = NULL;
    s->ncol_kind = 0;
    free(s->expose);
    s->expose = NULL;
}

static bool ident_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool ident_char(char c) { return ident_start(c) || (c >= '0' && c <= '9'); }

char *crest__sqlep_user_params(const char *sql)
{
    size_t n = strlen(sql);
    char *out = malloc(n * 2 + 1); /* each ".", at most, becomes "::" */
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        char c = sql[i];
        const char *close = c == '\'' ? "'" : c == '"' ? "\"" : c == '`' ? "`" : c == '[' ? "]" : NULL;
        if (!close && c == '-' && sql[i + 1] == '-')
            close = "\n";
        if (!close && c == '/' && sql[i + 1] == '*')
            close = "*/";
        if (close) { /* copied as they are, up to their end (a doubled quote is two quoted runs) */
            const char *end = strstr(sql + i + (c == '-' || c == '/' ? 2 : 1), close); /* past the opener */
            size_t stop = end ? (size_t)(end - sql) + strlen(close) : n;
            memcpy(out + o, sql + i, stop - i);
            o += stop - i;
            i = stop;
            continue;
        }
        if ((c == ':' || c == '$' || c == '@') && !strncmp(sql + i + 1, "user.", 5) && ident_start(sql[i + 6]) &&
            (i == 0 || !ident_char(sql[i - 1]))) {
            memcpy(out + o, ":user::", 7);
            o += 7;
            i += 6;
            while (i < n && ident_char(sql[i]))
                out[o++] = sql[i++];
            continue;
        }
        out[o++] = c;
        i++;
    }
    out[o] = 0;
    return out;
}

static const struct {
    const char *name;
    int kind;
    const char *type, *format;
} col_types[] = {
    {"auto", 0, NULL, NULL},        {"bool", CREST_F_BOOL, "boolean", NULL},
    {"boolean", CREST_F_BOOL, "boolean", NULL}, {"json", CREST_F_JSON, NULL, NULL},
    {"int", CREST_F_INT, "integer", NULL},      {"integer", CREST_F_INT, "integer", NULL}, /* any size: sums */
    {"float", CREST_F_FLOAT, "number", NULL},   {"number", CREST_F_FLOAT, "number", NULL},
    {"string", CREST_F_STRING, "string", NULL}, {"text", CREST_F_STRING, "string", NULL},
    {"date", CREST_F_DATE, "string", "date"},   {"datetime", CREST_F_DATETIME, "string", "date-time"},
    {"uuid", CREST_F_UUID, "string", "uuid"},
};

int crest__sqlep_col_kind(const char *name)
{
    for (size_t i = 0; i < CREST_ARRAY_LEN(col_types); i++)
        if (!strcmp(name, col_types[i].name))
            return col_types[i].kind;
    return -1;
}

void crest__sqlep_col_schema(int kind, const char **type, const char **format)
{
    *type = *format = NULL;
    for (size_t i = 0; i < CREST_ARRAY_LEN(col_types); i++)
        if (col_types[i].kind == kind) {
            *type = col_types[i].type;
            *format = col_types[i].format;
            return;
        }
}

void crest__sqlep_free(crest__sqlep *s)
{
    if (!s)
        return;
    for (unsigned i = 0; i < s->nparams; i++) {
        crest_param *p = &s->params[i];
        free((char *)p->name);
        free((char *)p->def);
        free((char *)p->description);
        if (p->values) {
            for (const char *const *v = p->values; *v; v++)
                free((char *)*v);
            free((void *)p->values);
        }
    }
    free(s->params);
    for (unsigned i = 0; i < s->nbody; i++) {
        sqlep_body_param *b = &s->body[i];
        free(b->name);
        free(b->description);
        json_decref(b->f.defv);
        if (b->values) {
            for (char **v = b->values; *v; v++)
                free(*v);
            free(b->values);
        }
    }
    free(s->body);
    for (unsigned i = 0; i < s->nheaders; i++)
        free(s->headers[i].sql_name);
    free(s->headers);
    for (unsigned i = 0; i < s->nstrings; i++)
        free(s->strings[i]);
    for (unsigned i = 0; i < s->ncols; i++)
        free(s->cols[i].name);
    free(s->cols);
    free(s->sql);
    free(s->sql_source);
    free_binds(s);
    free(s);
}

/* The name the SQL gives spec parameter k (:<name>): a header parameter's
 * own name, not its header's. Borrowed from s. */
static const char *param_name(const crest__sqlep *s, unsigned k)
{
    for (unsigned i = 0; i < s->nheaders; i++)
        if (s->headers[i].param == k)
            return s->headers[i].sql_name;
    return s->params[k].name;
}

/* A store with $1..$n placeholders (PostgreSQL): crest numbers the :names
 * itself (src/query/params.c), from the SQL as written, into s->sql; *names
 * (in a) are SQLite's names of them (":id", ":user::claim"), in order. */
static int number_params(crest_app *app, crest__sqlep *s, crest__arena *a, const char ***names, unsigned *n,
                         crest_error *err)
{
    crest__numbered_sql ns;
    const char *why = NULL;
    if (crest__sql_number_params(a, s->sql_source, strlen(s->sql_source), &ns, &why))
        return crest__error_set(err, CREST_ECONFIG, app->source_name, s->sql_line, "%s %s: the SQL is wrong: %s",
                                crest_method_name(s->spec.method), s->spec.path, why ? why : "out of memory");
    char *numbered = strdup(ns.sql);
    const char **pnames = crest__arena_calloc(a, ns.nnames + 1, sizeof *pnames);
    if (!numbered || !pnames) {
        free(numbered);
        return CREST_ENOMEM;
    }
    free(s->sql);
    s->sql = numbered;
    for (unsigned i = 0; i < ns.nnames; i++)
        if (!(pnames[i] = !strncmp(ns.names[i], "user.", 5) ? crest__arena_printf(a, ":user::%s", ns.names[i] + 5)
                                                            : crest__arena_printf(a, ":%s", ns.names[i])))
            return CREST_ENOMEM;
    *names = pnames;
    *n = ns.nnames;
    return 0;
}

/* s->binds: what each of the statement's n parameters (names[i], as SQLite
 * names them) binds: a spec parameter, a body parameter or a claim of the
 * user; a name that is none of them stops the start. */
static int bind_params(crest_app *app, crest__sqlep *s, const char *const *names, int n, crest_error *err)
{
    free_binds(s);
    s->binds = calloc(n ? (size_t)n : 1, sizeof *s->binds);
    if (!s->binds)
        return CREST_ENOMEM;
    s->nbinds = n;
    for (int i = 0; i < n; i++) {
        const char *name = names[i];
        if (!name || (name[0] != ':' && name[0] != '$' && name[0] != '@'))
            return crest__error_set(err, CREST_ECONFIG, app->source_name, s->sql_line,
                                    "%s %s: use named parameters (:name) in the SQL, not '?'",
                                    crest_method_name(s->spec.method), s->spec.path);
        name++;
        s->binds[i].spec_param = s->binds[i].body_param = -1;
        if (!strncmp(name, "user::", 6)) { /* :user.<claim>, rewritten when the app file was read */
            if (!app->auth)
                return crest__error_set(err, CREST_ECONFIG, app->source_name, s->sql_line,
                                        "%s %s: the SQL uses :user.%s, but the app has no auth: section (no user)",
                                        crest_method_name(s->spec.method), s->spec.path, name + 6);
            if (!(s->binds[i].user_claim = strdup(name + 6)))
                return CREST_ENOMEM;
            continue;
        }
        for (unsigned k = 0; k < s->nparams; k++)
            if (!strcmp(param_name(s, k), name))
                s->binds[i].spec_param = (int)k;
        for (unsigned k = 0; k < s->nbody; k++)
            if (!strcmp(s->body[k].name, name))
                s->binds[i].body_param = (int)k;
        if (s->binds[i].spec_param < 0 && s->binds[i].body_param < 0)
            return crest__error_set(err, CREST_ECONFIG, app->source_name, s->sql_line,
                                    "%s %s: the SQL uses :%s, which is not a declared parameter",
                                    crest_method_name(s->spec.method), s->spec.path, name);
    }
    return 0;
}

int crest__sqlep_check_text(crest_app *app, crest__endpoint *ep, crest_error *err)
{
    crest__sqlep *s = ep->sql;
    crest__arena a;
    crest__arena_init(&a, 4096, 0);
    const char **names = NULL;
    unsigned n = 0;
    int rc = number_params(app, s, &a, &names, &n, err);
    if (!rc)
        rc = bind_params(app, s, names, (int)n, err);
    crest__arena_dispose(&a);
    return rc;
}

int crest__sqlep_check(crest_app *app, crest__endpoint *ep, crest__conn *conn, crest_error *err)
{
    crest__sqlep *s = ep->sql;
    crest__arena a;
    crest__arena_init(&a, 4096, 0);
    crest__stmt_info st;
    char *msg = NULL;
    int rc = 0;
    const char **pnames = NULL;
    unsigned npnames = 0;
    const crest__dialect *dialect = crest__dialect_named(app->store->vt->name);
    if (dialect && dialect->numbered && (rc = number_params(app, s, &a, &pnames, &npnames, err))) {
        crest__arena_dispose(&a);
        return rc;
    }
    if (app->store->vt->describe(conn, s->sql, &a, &st, &msg)) {
        if (msg && !strcmp(msg, "no statement"))
            rc = crest__error_set(err, CREST_ECONFIG, app->source_name, s->sql_line, "%s %s: the SQL is empty",
                                  crest_method_name(s->spec.method), s->spec.path);
        else
            rc = crest__error_set(err, CREST_ECONFIG, app->source_name, s->sql_line, "%s %s: the SQL is wrong: %s",
                                  crest_method_name(s->spec.method), s->spec.path, msg ? msg : "out of memory");
        free(msg);
        crest__arena_dispose(&a);
        return rc;
    }
    s->readonly = st.readonly;
    if (st.tail) {
        rc = crest__error_set(err, CREST_ECONFIG, app->source_name, s->sql_line,
                              "%s %s: the SQL holds more than one statement", crest_method_name(s->spec.method),
                              s->spec.path);
        goto out;
    }
    /* PostgreSQL's parameters are the :names crest numbered ($n beyond
     * them: none of crest's, refused as '?' is). */
    const char **bound = pnames ? crest__arena_calloc(&a, st.nparams + 1, sizeof *bound) : st.param_names;
    if (!bound) {
        rc = CREST_ENOMEM;
        goto out;
    }
    for (unsigned i = 0; pnames && i < st.nparams; i++)
        bound[i] = i < npnames ? pnames[i] : NULL;
    if ((rc = bind_params(app, s, bound, (int)st.nparams, err)))
        goto out;
    /* A declared column the statement does not return would be a promise of
     * the OpenAPI document that no answer keeps. */
    int nc = (int)st.ncols;
    for (unsigned k = 0; k < s->ncols && (s->returns == RET_ONE || s->returns == RET_MANY); k++) {
        bool found = false;
        for (int i = 0; i < nc && !found; i++)
            found = !strcmp(st.col_names[i], s->cols[k].name);
        if (!found) {
            char names[300] = "";
            size_t o = 0;
            for (int i = 0; i < nc && o < sizeof names - 70; i++)
                o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", i ? ", " : "", st.col_names[i]);
            rc = crest__error_set(err, CREST_ECONFIG, app->source_name, s->cols[k].line,
                                  "%s %s: columns.%s: the SQL returns no column %s (it returns: %s)",
                                  crest_method_name(s->spec.method), s->spec.path, s->cols[k].name, s->cols[k].name,
                                  nc ? names : "nothing");
            goto out;
        }
    }
    /* Headers copied back (reply_header) are readable cross-origin too. */
    crest__buf xb;
    crest__buf_init(&xb, 0);
    for (unsigned i = 0; i < s->nheaders; i++)
        if (s->headers[i].reply) {
            rc |= crest__buf_appends(&xb, xb.len ? ", " : CREST__CORS_EXPOSE ", ");
            rc |= crest__buf_appends(&xb, s->params[s->headers[i].param].name);
        }
    if (xb.len && !rc && !(s->expose = strndup(xb.ptr, xb.len)))
        rc = CREST_ENOMEM;
    crest__buf_dispose(&xb);
    if (rc) {
        rc = CREST_ENOMEM;
        goto out;
    }
    /* Each returned column's declared type, by position, so that rows are
     * written without looking names up. */
    if (s->ncols && nc && (s->returns == RET_ONE || s->returns == RET_MANY)) {
        if (!(s->col_kind = calloc((size_t)nc, sizeof *s->col_kind))) {
            rc = CREST_ENOMEM;
            goto out;
        }
        s->ncol_kind = nc;
        for (int i = 0; i < nc; i++)
            for (unsigned k = 0; k < s->ncols; k++)
                if (!strcmp(st.col_names[i], s->cols[k].name))
                    s->col_kind[i] = s->cols[k].kind;
    }
    if ((s->returns == RET_ONE || s->returns == RET_MANY || s->returns == RET_VALUE) && nc == 0) {
        rc = crest__error_set(err, CREST_ECONFIG, app->source_name, s->line,
                              "%s %s: 'returns: %s' needs a statement that returns rows (add RETURNING, or use "
                              "'returns: none')",
                              crest_method_name(s->spec.method), s->spec.path,
                              s->returns == RET_ONE ? "one" : s->returns == RET_MANY ? "many" : "value");
        goto out;
    }
out:
    crest__arena_dispose(&a);
    return rc;
}

/* v as JSON text in the arena (a value to bind); false when out of memory. */
static bool json_text(crest__arena *a, const json_t *v, crest__val *out)
{
    char *txt = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    const char *copy = txt ? crest__arena_strdup(a, txt) : NULL;
    free(txt);
    if (!copy)
        return false;
    *out = (crest__val){.k = CREST__V_JSON, .s = copy, .n = strlen(copy)};
    return true;
}

/* :user.<claim>: the user's id for "id", else the claim as its JSON type
 * (a list or an object as JSON text), NULL when anonymous or absent. */
static void bind_user(crest_req *req, crest__val *out, const char *claim)
{
    const crest_user *u = req->user;
    json_t *v = u && u->claims ? json_object_get(u->claims, claim) : NULL;
    *out = (crest__val){.k = CREST__V_NULL};
    if (u && !strcmp(claim, "id"))
        *out = (crest__val){.k = CREST__V_TEXT, .s = u->id, .n = strlen(u->id)};
    else if (json_is_string(v))
        *out = (crest__val){.k = CREST__V_TEXT, .s = json_string_value(v), .n = json_string_length(v)};
    else if (json_is_integer(v))
        *out = (crest__val){.k = CREST__V_INT, .i = json_integer_value(v)};
    else if (json_is_real(v))
        *out = (crest__val){.k = CREST__V_FLOAT, .f = json_real_value(v)};
    else if (json_is_boolean(v))
        *out = (crest__val){.k = CREST__V_BOOL, .i = json_is_true(v)};
    else if ((json_is_array(v) || json_is_object(v)) && !json_text(req->arena, v, out))
        *out = (crest__val){.k = CREST__V_NULL};
}

/* Writes row i; returns -1 (with *bad the column's name) when a value
 * cannot be its declared type. */
static int write_row(crest_json *w, const crest__rows *r, size_t row, const crest__sqlep *s, const char **bad)
{
    crest_json_object_begin(w);
    for (unsigned i = 0; i < r->ncols; i++) {
        crest_json_key(w, r->names[i]);
        /* (the statement is the one checked at start: same columns) */
        int kind = (int)r->ncols == s->ncol_kind ? s->col_kind[i] : 0;
        if (crest__cell_write_as(w, crest__rows_cell(r, row, i), kind, true)) {
            *bad = r->names[i];
            return -1;
        }
    }
    crest_json_object_end(w);
    return 0;
}

/* The answer when a value is not its column's declared type: a 500 whose
 * cause (the endpoint and the column) goes to the log, never to the client. */
static int bad_column(crest_req *req, crest_res *res, const char *col)
{
    fprintf(stderr, "{\"event\":\"column_type\",\"request_id\":\"%s\",\"column\":\"%s\"}\n", req->id, col);
    return crest__res_fail(res, CREST__E_INTERNAL_ERROR, NULL);
}

/* A request of the endpoint while its statement runs (arena). */
typedef struct sqlep_call {
    crest_req *req;
    crest_res *res;
    const crest__sqlep *s;
} sqlep_call;

/* The statement is done: the answer from its rows (or its failure). */
static void answer(void *ud, crest__rows *r, const crest__dberr *e)
{
    sqlep_call *call = ud;
    crest_req *req = call->req;
    crest_res *res = call->res;
    const crest__sqlep *s = call->s;
    const char *badcol = NULL;
    crest_json *w;
    if (!r) {
        crest__dberr_answer(req, res, e);
        goto out;
    }
    if (!s->readonly && req->app->changes) /* it may have written to a followed table: its feeds read now */
        crest__changes_notify(req->app);
    switch (s->returns) {
    case RET_ONE:
    case RET_VALUE:
        if (!r->nrows) {
            crest__res_fail(res, CREST__E_NOT_FOUND, "no row matches");
            goto out;
        }
        w = crest_res_json(res);
        if (s->returns == RET_ONE ? write_row(w, r, 0, s, &badcol)
                                  : crest__cell_write_as(w, crest__rows_cell(r, 0, 0), s->ncols ? s->cols[0].kind : 0, true))
            bad_column(req, res, badcol ? badcol : r->names[0]);
        break;
    case RET_MANY:
        w = crest_res_json(res);
        crest_json_object_begin(w);
        crest_json_key(w, "data");
        crest_json_array_begin(w);
        for (size_t i = 0; i < r->nrows && !crest_json_error(w); i++)
            if (write_row(w, r, i, s, &badcol)) {
                bad_column(req, res, badcol);
                goto out;
            }
        crest_json_array_end(w);
        crest_json_object_end(w);
        break;
    case RET_NONE:
        /* With RETURNING, no row back means nothing matched: 404, so a second
         * DELETE of the same row is a 404 like in the REST contract. */
        if (!r->nrows && r->ncols > 0) {
            crest__res_fail(res, CREST__E_NOT_FOUND, "no row matches");
            goto out;
        }
        if (!s->spec.status)
            res->status = 204;
        break;
    }
out:
    crest_res_finish(res);
}

int crest__sqlep_handler(crest_req *req, crest_res *res, void *ud)
{
    crest__sqlep *s = ud;
    unsigned nbad = 0;
    json_t *body = req->json;
    crest__val *vals = crest__arena_calloc(req->arena, s->nbinds ? (size_t)s->nbinds : 1, sizeof *vals);
    crest__val *bvals = crest__arena_calloc(req->arena, s->nbody ? s->nbody : 1, sizeof *bvals);
    sqlep_call *call = crest__arena_alloc(req->arena, sizeof *call);
    if (!vals || !bvals || !call)
        return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    if (s->nbody) {
        if (body && !json_is_object(body))
            return crest__res_fail(res, CREST__E_VALIDATION_FAILED, "the body must be a JSON object");
        /* Unknown keys are an error, not silently dropped; every bad field
         * is named in one answer. */
        const char *k;
        json_t *v;
        json_object_foreach(body, k, v) {
            bool known = false;
            for (unsigned i = 0; i < s->nbody && !known; i++)
                known = !strcmp(s->body[i].name, k);
            if (!known) {
                if (!nbad)
                    crest__res_fail(res, CREST__E_VALIDATION_FAILED, NULL);
                crest_res_error_field(res, k, "is not a known field");
                nbad++;
            }
        }
        /* Each parameter as a model's field on create: its default when
         * absent, "is required" when it has none. */
        for (unsigned i = 0; i < s->nbody; i++) {
            const sqlep_body_param *bp = &s->body[i];
            bool set;
            const char *msg = crest__field_input(req->arena, &bp->f, body ? json_object_get(body, bp->name) : NULL,
                                                 true, &bvals[i], &set);
            if (msg) {
                if (!nbad)
                    crest__res_fail(res, CREST__E_VALIDATION_FAILED, NULL);
                crest_res_error_field(res, bp->name, msg);
                nbad++;
            }
        }
    }
    for (int i = 0; i < s->nbinds; i++) {
        const sqlep_bind *b = &s->binds[i];
        if (b->user_claim) {
            bind_user(req, &vals[i], b->user_claim);
        } else if (b->spec_param >= 0) {
            const crest__value *v = &req->values[b->spec_param];
            const crest_param *p = &s->params[b->spec_param];
            if (!v->present)
                vals[i] = (crest__val){.k = CREST__V_NULL};
            else if (p->type == CREST_T_INT)
                vals[i] = (crest__val){.k = CREST__V_INT, .i = v->i};
            else if (p->type == CREST_T_FLOAT)
                vals[i] = (crest__val){.k = CREST__V_FLOAT, .f = v->f};
            else if (p->type == CREST_T_BOOL)
                vals[i] = (crest__val){.k = CREST__V_BOOL, .i = v->b};
            else
                vals[i] = (crest__val){.k = CREST__V_TEXT, .s = v->str, .n = strlen(v->str)};
        } else {
            vals[i] = bvals[b->body_param]; /* text in the body or the arena, both outlive the statement */
        }
    }
    for (unsigned i = 0; i < s->nheaders && !nbad; i++) {
        const crest__value *v = &req->values[s->headers[i].param];
        if (s->headers[i].reply && v->present &&
            crest_res_header(res, s->params[s->headers[i].param].name, v->str) == CREST_ENOMEM)
            return crest__res_fail(res, CREST__E_OUT_OF_MEMORY, NULL);
    }
    if (nbad) {
        res->err_detail = nbad == 1 ? "1 field is invalid" : crest__arena_printf(req->arena, "%u fields are invalid", nbad);
        return -1;
    }
    /* The statement runs under the endpoint's deadline (the request's session). */
    *call = (sqlep_call){req, res, s};
    crest__query q = {
        .sql = s->sql,
        .len = strlen(s->sql),
        .binds = vals,
        .nbinds = (unsigned)s->nbinds,
        .flags = (s->readonly ? CREST__QF_READ | CREST__QF_LAST : 0) |
                 (s->spec.method == CREST_DELETE ? CREST__QF_DELETE : 0) |
                 (s->returns == RET_ONE || s->returns == RET_VALUE ? CREST__QF_FIRST : 0),
    };
    return crest__req_query(req, res, &q, answer, call);
}
