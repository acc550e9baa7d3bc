/* appfile.c — the app file loader: a YAML (or JSON) document becomes calls on
 * the app (settings, limits, SQL endpoints, models and modules). This file
 * holds the readers every part shares (each error says "file:line: where:
 * what is wrong") and the top level; appfile_settings.c, appfile_sql.c and
 * appfile_rest.c read their sections. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "../json/json_internal.h"
#include "appfile.h"
#include "../rest/rest_internal.h"

int crest__af_bad(crest__loader *L, const ynode *n, const char *fmt, ...)
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

int crest__af_want_scalar(crest__loader *L, const ynode *n, const char *where)
{
    if (n->kind != Y_SCALAR)
        return crest__af_bad(L, n, "%s: expected a value, found %s", where, kind_name(n));
    return 0;
}

int crest__af_want_map(crest__loader *L, const ynode *n, const char *where)
{
    if (n->kind != Y_MAP)
        return crest__af_bad(L, n, "%s: expected a map, found %s", where, kind_name(n));
    return 0;
}

int crest__af_get_string(crest__loader *L, const ynode *n, const char *where, const char **out)
{
    if (crest__af_want_scalar(L, n, where))
        return CREST_ECONFIG;
    *out = n->str;
    return 0;
}

int crest__af_get_int(crest__loader *L, const ynode *n, const char *where, int64_t lo, int64_t hi, int64_t *out)
{
    if (crest__af_want_scalar(L, n, where))
        return CREST_ECONFIG;
    if (crest__parse_int(n->str, n->len, out))
        return crest__af_bad(L, n, "%s: expected an integer, found '%s'", where, n->str);
    if (*out < lo || *out > hi)
        return crest__af_bad(L, n, "%s: must be between %lld and %lld", where, (long long)lo, (long long)hi);
    return 0;
}

int crest__af_get_bool(crest__loader *L, const ynode *n, const char *where, bool *out)
{
    if (crest__af_want_scalar(L, n, where))
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
    return crest__af_bad(L, n, "%s: expected true or false, found '%s'", where, n->str);
}

int crest__af_get_number(crest__loader *L, const ynode *n, const char *where, double *out)
{
    if (crest__af_want_scalar(L, n, where))
        return CREST_ECONFIG;
    if (crest__parse_double(n->str, n->len, out))
        return crest__af_bad(L, n, "%s: expected a number, found '%s'", where, n->str);
    return 0;
}

/* "8KiB", "1 MiB", "1048576" → bytes. */
int crest__af_get_size(crest__loader *L, const ynode *n, const char *where, size_t *out)
{
    if (crest__af_want_scalar(L, n, where))
        return CREST_ECONFIG;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(n->str, &end, 10);
    if (end == n->str || errno || n->str[0] == '-')
        return crest__af_bad(L, n, "%s: expected a size such as 8KiB or 1MiB, found '%s'", where, n->str);
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
        return crest__af_bad(L, n, "%s: unknown size unit '%s' (use B, KiB, MiB or GiB)", where, end);
    if (v > (1ULL << 40) / mul)
        return crest__af_bad(L, n, "%s: too large", where);
    *out = (size_t)(v * mul);
    return 0;
}

/* "10s", "500ms", "2m", "30000" (ms) → milliseconds. */
int crest__af_duration_ms(const char *text, double *ms, const char **unit)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || errno || v < 0 || !isfinite(v))
        return -1;
    while (*end == ' ')
        end++;
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"min", 60000}, {"h", 3600000}, {"d", 86400000}};
    for (size_t i = 0; i < CREST_ARRAY_LEN(units); i++)
        if (!strcmp(end, units[i].unit)) {
            *ms = v * units[i].ms;
            return 0;
        }
    *unit = end;
    return -2;
}

int crest__af_get_duration(crest__loader *L, const ynode *n, const char *where, unsigned *out)
{
    if (crest__af_want_scalar(L, n, where))
        return CREST_ECONFIG;
    double ms;
    const char *unit;
    int rc = crest__af_duration_ms(n->str, &ms, &unit);
    if (rc == -1)
        return crest__af_bad(L, n, "%s: expected a duration such as 10s or 500ms, found '%s'", where, n->str);
    if (rc)
        return crest__af_bad(L, n, "%s: unknown time unit '%s' (use ms, s, m, h or d)", where, unit);
    if (ms > 86400000.0)
        return crest__af_bad(L, n, "%s: longer than a day", where);
    *out = (unsigned)ms;
    return 0;
}

/* Fails on any key of map not in allowed (NULL-terminated). */
int crest__af_check_keys(crest__loader *L, const ynode *map, const char *where, const char *const *allowed)
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
            return crest__af_bad(L, k, "%s: unknown key '%s' (known: %s)", where, k->str, list);
        }
    }
    return 0;
}

/* App-lifetime memory for definitions made from the app file. */
static void conf_free(void *p)
{
    crest__arena_dispose(p);
    free(p);
}

crest__arena *crest__af_conf_arena(crest__loader *L)
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

char *crest__af_conf_strdup(crest__loader *L, const char *s)
{
    crest__arena *a = crest__af_conf_arena(L);
    return a ? crest__arena_strdup(a, s) : NULL;
}

/* j (a reference this call takes) as compact JSON text in the conf arena. */
int crest__af_conf_json(crest__loader *L, json_t *j, const char **out)
{
    char *t = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    *out = t ? crest__af_conf_strdup(L, t) : NULL;
    free(t);
    return *out ? 0 : CREST_ENOMEM;
}

/* Names joined with commas, in the conf arena. */
int crest__af_conf_join(crest__loader *L, const char *const *names, const char **out)
{
    crest__buf b;
    crest__buf_init(&b, 4096);
    for (size_t i = 0; names[i]; i++)
        crest__buf_appendf(&b, "%s%s", i ? "," : "", names[i]);
    crest__buf_append(&b, "", 1);
    *out = b.ptr ? crest__af_conf_strdup(L, b.ptr) : NULL;
    crest__buf_dispose(&b);
    return *out ? 0 : CREST_ENOMEM;
}

/* A YAML node as JSON (new reference): plain scalars may be null, bools or
 * numbers; quoted ones are strings. */
json_t *crest__af_ynode_json(const ynode *n)
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
            json_t *v = crest__af_ynode_json(n->kids[2 * i + 1]);
            if (!v || json_object_set_new(o, n->kids[2 * i]->str, v)) {
                json_decref(o);
                return NULL;
            }
        } else if (json_array_append_new(o, crest__af_ynode_json(n->kids[i]))) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

/* A list of names (or one name) → NULL-terminated array in the conf arena. */
int crest__af_get_names(crest__loader *L, const ynode *n, const char *where, const char *const **out)
{
    crest__arena *a = crest__af_conf_arena(L);
    if (!a)
        return CREST_ENOMEM;
    size_t cnt = n->kind == Y_SEQ ? n->n : 1;
    if (n->kind == Y_MAP)
        return crest__af_bad(L, n, "%s: expected a list of names", where);
    const char **v = crest__arena_calloc(a, cnt + 1, sizeof *v);
    if (!v)
        return CREST_ENOMEM;
    for (size_t i = 0; i < cnt; i++) {
        const ynode *x = n->kind == Y_SEQ ? n->kids[i] : n;
        if (crest__af_want_scalar(L, x, where))
            return CREST_ECONFIG;
        if (!(v[i] = crest__arena_strdup(a, x->str)))
            return CREST_ENOMEM;
    }
    *out = v;
    return 0;
}

/* A permission: public | authenticated | a list of permissions (→ "a,b"). */
int crest__af_get_permission(crest__loader *L, const ynode *n, const char *where, const char **out)
{
    if (n->kind == Y_SCALAR && (!strcmp(n->str, "public") || !strcmp(n->str, "authenticated"))) {
        *out = crest__af_conf_strdup(L, n->str);
        return *out ? 0 : CREST_ENOMEM;
    }
    if (n->kind != Y_SEQ || n->n == 0)
        return crest__af_bad(L, n, "%s: expected public, authenticated or a list of permissions", where);
    const char *const *names;
    int rc = crest__af_get_names(L, n, where, &names);
    if (rc)
        return rc;
    for (size_t i = 0; names[i]; i++)
        if (!*names[i] || strchr(names[i], ',') || !strcmp(names[i], "public") || !strcmp(names[i], "authenticated"))
            return crest__af_bad(L, n->kids[i], "%s: bad permission name '%s'", where, names[i]);
    return crest__af_conf_join(L, names, out);
}

/* The scalar equal to s under n (depth first), or NULL. */
static const ynode *find_scalar(const ynode *n, const char *s, size_t len)
{
    if (n->kind == Y_SCALAR)
        return n->len == len && !memcmp(n->str, s, len) ? n : NULL;
    for (size_t i = 0; i < (n->kind == Y_MAP ? 2 * n->n : n->n); i++) {
        const ynode *f = find_scalar(n->kids[i], s, len);
        if (f)
            return f;
    }
    return NULL;
}

const ynode *crest__af_locate(const ynode *base, const char *msg, const ynode *fallback)
{
    /* Past "module NAME: " or "model NAME: ": the part of the definition. */
    const char *p = strstr(msg, ": ");
    if (!p || base->kind != Y_MAP)
        return fallback;
    p += 2;
    size_t n = strcspn(p, ": '");
    char sect[64];
    snprintf(sect, sizeof sect, "%.*s", (int)(n < sizeof sect ? n : sizeof sect - 1), p);
    const ynode *at = NULL, *y;
    if ((!strcmp(sect, "field") || !strcmp(sect, "computed")) && p[n]) { /* "field f: ...", "computed field f ..." */
        const char *name = p + n + 1;
        if (!strcmp(sect, "computed") && !strncmp(name, "field ", 6))
            name += 6;
        size_t nl = strcspn(name, ": ");
        at = !strcmp(sect, "field") ? crest__ytree_get(base, "fields")
             : (y = crest__ytree_get(base, "serializer")) && y->kind == Y_MAP ? crest__ytree_get(y, "computed")
                                                                              : NULL;
        for (size_t i = 0; at && at->kind == Y_MAP && i < at->n; i++)
            if (at->kids[2 * i]->len == nl && !memcmp(at->kids[2 * i]->str, name, nl))
                return at->kids[2 * i];
        return at ? at : fallback;
    }
    if (!strcmp(sect, "index"))
        at = crest__ytree_get(base, "indexes");
    else if (!strcmp(sect, "parse_attributes"))
        at = (y = crest__ytree_get(base, "parser")) && y->kind == Y_MAP ? crest__ytree_get(y, "attributes") : NULL;
    else if (!(at = crest__ytree_get(base, sect)) && (y = crest__ytree_get(base, "serializer")) && y->kind == Y_MAP)
        at = crest__ytree_get(y, sect);
    if (!at)
        return fallback;
    /* A quoted name in the message: the entry that holds it. */
    const char *q = strchr(p, '\''), *qe = q ? strchr(q + 1, '\'') : NULL;
    const ynode *entry = q && qe ? find_scalar(at, q + 1, (size_t)(qe - q - 1)) : NULL;
    return entry ? entry : at;
}

static int load_root(crest__loader *L, const ynode *root)
{
    static const char *const keys[] = {"database", "listen", "workers", "api_prefix", "api_version", "limits",
                                       "endpoints", "startup_sql", "access_log", "models", "modules", "durability",
                                       "info", "servers", "openapi", "docs", "auth", "cors", "rate_limit", "tls", "metrics",
                                       "groups", "pool", "password_file", "compression", "pid_file", NULL};
    if (root->kind != Y_MAP)
        return crest__af_bad(L, root, "the app file must be a map at the top (database:, listen:, endpoints: ...)");
    if (crest__af_check_keys(L, root, "app file", keys))
        return CREST_ECONFIG;
    const ynode *x;
    int rc;
    if ((rc = crest__af_load_settings(L, root)))
        return rc;
    if ((x = crest__ytree_get(root, "models")) && !crest__ytree_is_null(x)) {
        if (crest__app_note_line(L->app, "models", x->line))
            return CREST_ENOMEM;
        if (crest__af_want_map(L, x, "models"))
            return CREST_ECONFIG;
        for (size_t i = 0; i < x->n; i++)
            if ((rc = crest__af_load_model(L, x->kids[2 * i], x->kids[2 * i + 1])))
                return rc;
        if (crest__app_link_models(L->app, L->err))
            return CREST_ECONFIG;
    }
    if ((x = crest__ytree_get(root, "modules")) && !crest__ytree_is_null(x)) {
        if (crest__af_want_map(L, x, "modules"))
            return CREST_ECONFIG;
        for (size_t i = 0; i < x->n; i++)
            if ((rc = crest__af_load_module(L, x->kids[2 * i], x->kids[2 * i + 1])))
                return rc;
    }
    if ((x = crest__ytree_get(root, "endpoints")) && !crest__ytree_is_null(x)) {
        if (x->kind != Y_SEQ)
            return crest__af_bad(L, x, "endpoints: expected a list");
        for (size_t i = 0; i < x->n; i++) {
            char where[64];
            snprintf(where, sizeof where, "endpoints[%zu]", i);
            if ((rc = crest__af_load_endpoint(L, x->kids[i], where, NULL)))
                return rc;
        }
    }
    if ((x = crest__ytree_get(root, "groups")) && !crest__ytree_is_null(x)) {
        if (crest__af_want_map(L, x, "groups"))
            return CREST_ECONFIG;
        for (size_t i = 0; i < x->n; i++)
            if ((rc = crest__af_load_group(L, x->kids[2 * i], x->kids[2 * i + 1])))
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
    crest__loader L = {app, name, err};
    bool was_loading = app->loading;
    app->loading = true; /* the endpoints it adds are the file's (crest_app_add_endpoint) */
    int rc = load_root(&L, root);
    app->loading = was_loading;
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
    if (!rc) {
        free(app->app_file); /* what SIGHUP re-reads while serving */
        if (!(app->app_file = strdup(path)))
            rc = crest__error_set(err, CREST_ENOMEM, NULL, 0, "out of memory");
    }
    return rc;
}
