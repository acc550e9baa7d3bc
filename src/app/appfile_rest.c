/* appfile_rest.c — the app file's models and REST modules (`models:`,
 * `modules:`): they build the C API's definitions, in the loader's arena. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "../json/json_internal.h"
#include "appfile.h"
#include "crest/rest.h"

static int field_type(crest__loader *L, const ynode *n, const char *where, crest_field_type *out)
{
    static const struct {
        const char *name;
        crest_field_type t;
    } types[] = {{"string", CREST_F_STRING}, {"str", CREST_F_STRING},     {"text", CREST_F_TEXT},
                 {"int", CREST_F_INT},       {"integer", CREST_F_INT},    {"float", CREST_F_FLOAT},
                 {"number", CREST_F_FLOAT},  {"bool", CREST_F_BOOL},      {"boolean", CREST_F_BOOL},
                 {"date", CREST_F_DATE},     {"datetime", CREST_F_DATETIME}, {"json", CREST_F_JSON},
                 {"uuid", CREST_F_UUID},     {"ref", CREST_F_REF}};
    if (crest__af_want_scalar(L, n, where))
        return CREST_ECONFIG;
    for (size_t i = 0; i < CREST_ARRAY_LEN(types); i++)
        if (!strcmp(n->str, types[i].name)) {
            *out = types[i].t;
            return 0;
        }
    return crest__af_bad(L, n, "%s: unknown type '%s' (string, text, int, float, bool, date, datetime, json, uuid, ref)", where, n->str);
}

/* A relation's own keys: a ref's model and on_delete; has_many's model,
 * via, through and embed_max. */
static int load_relation(crest__loader *L, crest_field *f, const ynode *v, const char *where)
{
    char w2[260];
#define SUB(k) (snprintf(w2, sizeof w2, "%s.%s", where, k), w2)
    const ynode *x;
    int rc;
    const char *s;
    if (f->type == CREST_F_REF) {
        if (!(x = crest__ytree_get(v, "model")))
            return crest__af_bad(L, v, "%s: a ref needs the model it refers to (model: Person)", where);
        if ((rc = crest__af_get_string(L, x, SUB("model"), &s)) || !(f->ref_model = crest__af_conf_strdup(L, s)))
            return rc ? rc : CREST_ENOMEM;
        if ((x = crest__ytree_get(v, "on_delete"))) {
            static const char *const acts[] = {"restrict", "cascade", "set_null"};
            if (crest__af_want_scalar(L, x, SUB("on_delete")))
                return CREST_ECONFIG;
            int found = -1;
            for (int i = 0; i < 3; i++)
                if (!strcmp(x->str, acts[i]))
                    found = i;
            if (found < 0)
                return crest__af_bad(L, x, "%s: expected restrict, cascade or set_null, found '%s'", SUB("on_delete"),
                                     x->str);
            f->on_delete = (crest_on_delete)found;
        }
    } else if (f->type) {
        for (const char *const *k = (const char *const[]){"model", "on_delete", NULL}; *k; k++)
            if ((x = crest__ytree_get(v, *k)))
                return crest__af_bad(L, x, "%s: '%s' is for fields of type ref", where, *k);
    }
    if (f->type) {
        for (const char *const *k = (const char *const[]){"via", "through", "embed_max", NULL}; *k; k++)
            if ((x = crest__ytree_get(v, *k)))
                return crest__af_bad(L, x, "%s: '%s' is for has_many", where, *k);
        return 0;
    }
    if ((rc = crest__af_get_string(L, crest__ytree_get(v, "has_many"), SUB("has_many"), &s)) ||
        !(f->has_many = crest__af_conf_strdup(L, s)))
        return rc ? rc : CREST_ENOMEM;
    if ((x = crest__ytree_get(v, "via")) &&
        ((rc = crest__af_get_string(L, x, SUB("via"), &s)) || !(f->via = crest__af_conf_strdup(L, s))))
        return rc ? rc : CREST_ENOMEM;
    if ((x = crest__ytree_get(v, "through")) &&
        ((rc = crest__af_get_string(L, x, SUB("through"), &s)) || !(f->through = crest__af_conf_strdup(L, s))))
        return rc ? rc : CREST_ENOMEM;
    int64_t n;
    if ((x = crest__ytree_get(v, "embed_max"))) {
        if ((rc = crest__af_get_int(L, x, SUB("embed_max"), 1, 10000, &n)))
            return rc;
        f->embed_max = (int)n;
    }
    return 0;
#undef SUB
}

static int load_field(crest__loader *L, crest_field *f, const ynode *key, const ynode *v, const char *model)
{
    static const char *const keys[] = {"type", "required", "default", "unique", "index", "min", "max", "min_length",
                                       "max_length", "pattern", "values", "rest", "description", "read_permission",
                                       "write_permission", "model", "on_delete", "has_many", "via", "through",
                                       "embed_max", NULL};
    char where[200];
    snprintf(where, sizeof where, "models.%s.fields.%s", model, key->str);
    int rc;
    if (!(f->name = crest__af_conf_strdup(L, key->str)))
        return CREST_ENOMEM;
    if (crest__app_note_line(L->app, where, key->line))
        return CREST_ENOMEM;
    if (v->kind == Y_SCALAR) {
        if ((rc = field_type(L, v, where, &f->type)))
            return rc;
        if (f->type == CREST_F_REF)
            return crest__af_bad(L, v, "%s: a ref needs the model it refers to ({type: ref, model: Person})", where);
        return 0;
    }
    if (crest__af_want_map(L, v, where) || crest__af_check_keys(L, v, where, keys))
        return CREST_ECONFIG;
    const ynode *x;
    if ((x = crest__ytree_get(v, "has_many"))) {
        if (crest__ytree_get(v, "type"))
            return crest__af_bad(L, x, "%s: has_many is a relation, without a type", where);
    } else if (!(x = crest__ytree_get(v, "type"))) {
        return crest__af_bad(L, v, "%s: needs a type (or has_many: Model)", where);
    } else if ((rc = field_type(L, x, where, &f->type))) {
        return rc;
    }
    if ((rc = load_relation(L, f, v, where)))
        return rc;
    char w2[260];
#define SUB(k) (snprintf(w2, sizeof w2, "%s.%s", where, k), w2)
    if ((x = crest__ytree_get(v, "required")) && (rc = crest__af_get_bool(L, x, SUB("required"), &f->required)))
        return rc;
    if ((x = crest__ytree_get(v, "unique")) && (rc = crest__af_get_bool(L, x, SUB("unique"), &f->unique)))
        return rc;
    if ((x = crest__ytree_get(v, "index")) && (rc = crest__af_get_bool(L, x, SUB("index"), &f->index)))
        return rc;
    if ((x = crest__ytree_get(v, "min"))) {
        if ((rc = crest__af_get_number(L, x, SUB("min"), &f->min)))
            return rc;
        f->has_min = true;
    }
    if ((x = crest__ytree_get(v, "max"))) {
        if ((rc = crest__af_get_number(L, x, SUB("max"), &f->max)))
            return rc;
        f->has_max = true;
    }
    int64_t n;
    if ((x = crest__ytree_get(v, "min_length"))) {
        if ((rc = crest__af_get_int(L, x, SUB("min_length"), 0, 1 << 30, &n)))
            return rc;
        f->min_length = n;
    }
    if ((x = crest__ytree_get(v, "max_length"))) {
        if ((rc = crest__af_get_int(L, x, SUB("max_length"), 1, 1 << 30, &n)))
            return rc;
        f->max_length = n;
    }
    if ((x = crest__ytree_get(v, "pattern"))) {
        const char *s;
        if ((rc = crest__af_get_string(L, x, SUB("pattern"), &s)))
            return rc;
        if (!(f->pattern = crest__af_conf_strdup(L, s)))
            return CREST_ENOMEM;
    }
    if ((x = crest__ytree_get(v, "description"))) {
        const char *s;
        if ((rc = crest__af_get_string(L, x, SUB("description"), &s)))
            return rc;
        if (!(f->description = crest__af_conf_strdup(L, s)))
            return CREST_ENOMEM;
    }
    if ((x = crest__ytree_get(v, "values"))) {
        if (x->kind != Y_SEQ || x->n == 0)
            return crest__af_bad(L, x, "%s: expected a list of allowed values", SUB("values"));
        if ((rc = crest__af_get_names(L, x, SUB("values"), &f->values)))
            return rc;
    }
    const char *const *pn;
    if ((x = crest__ytree_get(v, "read_permission")) &&
        ((rc = crest__af_get_names(L, x, SUB("read_permission"), &pn)) || (rc = crest__af_conf_join(L, pn, &f->read_permission))))
        return rc;
    if ((x = crest__ytree_get(v, "write_permission")) &&
        ((rc = crest__af_get_names(L, x, SUB("write_permission"), &pn)) || (rc = crest__af_conf_join(L, pn, &f->write_permission))))
        return rc;
    if ((x = crest__ytree_get(v, "rest"))) {
        static const char *const acc[] = {"rw", "read", "write", "none"};
        if (crest__af_want_scalar(L, x, SUB("rest")))
            return CREST_ECONFIG;
        int found = -1;
        for (int i = 0; i < 4; i++)
            if (!strcmp(x->str, acc[i]))
                found = i;
        if (found < 0)
            return crest__af_bad(L, x, "%s: expected rw, read, write or none, found '%s'", SUB("rest"), x->str);
        f->rest = (crest_rest_access)found;
    }
    if ((x = crest__ytree_get(v, "default"))) {
        json_t *d;
        if (x->kind == Y_SCALAR && !strcmp(x->str, "now") && (f->type == CREST_F_DATE || f->type == CREST_F_DATETIME)) {
            f->def = "now";
        } else {
            if (x->kind != Y_SCALAR && f->type != CREST_F_JSON)
                return crest__af_bad(L, x, "%s: expected a value", SUB("default"));
            d = crest__af_ynode_json(x);
            if (d && x->kind == Y_SCALAR && !json_is_string(d) && !json_is_null(d) &&
                (f->type == CREST_F_STRING || f->type == CREST_F_TEXT)) {
                json_decref(d);
                d = json_stringn(x->str, x->len);
            }
            if ((rc = crest__af_conf_json(L, d, &f->def)))
                return rc;
        }
    }
#undef SUB
    return 0;
}

int crest__af_load_model(crest__loader *L, const ynode *key, const ynode *v)
{
    static const char *const keys[] = {"table", "fields", "description", "seed", "indexes", NULL};
    char where[160];
    snprintf(where, sizeof where, "models.%s", key->str);
    if (crest__af_want_map(L, v, where) || crest__af_check_keys(L, v, where, keys))
        return CREST_ECONFIG;
    crest__arena *a = crest__af_conf_arena(L);
    if (!a)
        return CREST_ENOMEM;
    crest_model_def *def = crest__arena_calloc(a, 1, sizeof *def);
    if (!def || !(def->name = crest__af_conf_strdup(L, key->str)))
        return CREST_ENOMEM;
    const ynode *x;
    int rc;
    if ((x = crest__ytree_get(v, "table"))) {
        const char *s;
        if ((rc = crest__af_get_string(L, x, "models.table", &s)))
            return rc;
        if (!(def->table = crest__af_conf_strdup(L, s)))
            return CREST_ENOMEM;
    }
    const ynode *fields = crest__ytree_get(v, "fields");
    if (!fields || fields->kind != Y_MAP || fields->n == 0)
        return crest__af_bad(L, fields ? fields : v, "%s.fields: expected a map of fields (name: {type: ...})", where);
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
            return crest__af_bad(L, x, "%s.indexes: expected a list of indexes, each a list of fields", where);
        const char **ix = crest__arena_calloc(a, x->n + 1, sizeof *ix);
        if (!ix)
            return CREST_ENOMEM;
        for (size_t i = 0; i < x->n; i++) {
            const char *const *names;
            if ((rc = crest__af_get_names(L, x->kids[i], "indexes", &names)) || (rc = crest__af_conf_join(L, names, &ix[i])))
                return rc;
        }
        def->indexes = ix;
    }
    if ((x = crest__ytree_get(v, "seed"))) {
        if (x->kind != Y_SEQ)
            return crest__af_bad(L, x, "%s.seed: expected a list of rows", where);
        for (size_t i = 0; i < x->n; i++)
            if (crest__af_want_map(L, x->kids[i], "seed"))
                return CREST_ECONFIG;
        if ((rc = crest__af_conf_json(L, crest__af_ynode_json(x), &def->seed)))
            return rc;
        /* Seed rows are checked when the table is made: keep their lines. */
        char k2[200];
        snprintf(k2, sizeof k2, "%s.seed", where);
        if (crest__app_note_line(L->app, k2, x->line))
            return CREST_ENOMEM;
        for (size_t i = 0; i < x->n; i++) {
            snprintf(k2, sizeof k2, "%s.seed[%zu]", where, i);
            if (crest__app_note_line(L->app, k2, x->kids[i]->line))
                return CREST_ENOMEM;
        }
    }
    if (crest__app_note_line(L->app, where, key->line))
        return CREST_ENOMEM;
    crest_error e2 = {0};
    if ((rc = crest_app_add_model(L->app, def, &e2)))
        return crest__af_bad(L, crest__af_locate(v, e2.msg, key), "%s", e2.msg);
    return 0;
}

static int method_bits(crest__loader *L, const ynode *n, const char *where, unsigned *out)
{
    const char *const *names;
    int rc = crest__af_get_names(L, n, where, &names);
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
            return crest__af_bad(L, n->kind == Y_SEQ ? n->kids[i] : n,
                                 "%s: unknown method '%s' (index, read, create, update, delete, sample, group, stats, eval)",
                       where, names[i]);
    }
    return 0;
}

static int opt_string(crest__loader *L, const ynode *v, const char *key, const char *where, const char **out)
{
    const ynode *x = crest__ytree_get(v, key);
    if (!x)
        return 0;
    char w2[200];
    snprintf(w2, sizeof w2, "%s.%s", where, key);
    if (crest__af_want_scalar(L, x, w2))
        return CREST_ECONFIG;
    if (!(*out = crest__af_conf_strdup(L, x->str)))
        return CREST_ENOMEM;
    return 0;
}

/* "30s", "90m", "24h", "7d" → seconds, from 1 s to 365 d (a unit is needed). */
static int period_s(crest__loader *L, const ynode *n, const char *where, unsigned *out)
{
    if (crest__af_want_scalar(L, n, where))
        return CREST_ECONFIG;
    double ms;
    const char *unit;
    size_t len = strlen(n->str);
    bool bare = len && n->str[len - 1] >= '0' && n->str[len - 1] <= '9'; /* (ms would surprise here: a unit is asked for) */
    if (bare || crest__af_duration_ms(n->str, &ms, &unit) || ms < 1000 || ms > 365.0 * 86400000)
        return crest__af_bad(L, n, "%s: expected a duration from 1s to 365d such as 90s, 30m, 24h or 7d, found '%s'",
                             where, n->str);
    *out = (unsigned)(ms / 1000);
    return 0;
}

/* idempotency: true | false | {expire: 24h, required: false} */
static int idempotency(crest__loader *L, const ynode *x, const char *where, crest_module_def *def)
{
    if (x->kind == Y_SCALAR)
        return crest__af_get_bool(L, x, where, &def->idempotency);
    static const char *const ik[] = {"expire", "required", NULL};
    if (crest__af_want_map(L, x, where) || crest__af_check_keys(L, x, where, ik))
        return CREST_ECONFIG;
    def->idempotency = true;
    char w2[260];
    const ynode *y;
    int rc;
    if ((y = crest__ytree_get(x, "expire")) &&
        (rc = period_s(L, y, (snprintf(w2, sizeof w2, "%s.expire", where), w2), &def->idempotency_expire_s)))
        return rc;
    if ((y = crest__ytree_get(x, "required")) &&
        (rc = crest__af_get_bool(L, y, (snprintf(w2, sizeof w2, "%s.required", where), w2), &def->idempotency_required)))
        return rc;
    return 0;
}

/* changes: true | {retention: 24h, heartbeat: 15s, subscribers: 1000,
 * buffer: 256k, permission: ...} (a map turns the feed on). */
static int load_changes(crest__loader *L, const ynode *x, const char *where, crest_module_def *def)
{
    if (x->kind != Y_MAP)
        return crest__af_get_bool(L, x, where, &def->changes);
    static const char *const ck[] = {"retention", "heartbeat", "subscribers", "buffer", "permission", NULL};
    if (crest__af_check_keys(L, x, where, ck))
        return CREST_ECONFIG;
    def->changes = true;
    char w2[260];
#define SUB(k) (snprintf(w2, sizeof w2, "%s.%s", where, k), w2)
    const ynode *y;
    int rc;
    unsigned ms;
    if ((y = crest__ytree_get(x, "retention")) && (rc = period_s(L, y, SUB("retention"), &def->changes_retention_s)))
        return rc;
    if ((y = crest__ytree_get(x, "heartbeat"))) {
        if ((rc = crest__af_get_duration(L, y, SUB("heartbeat"), &ms)))
            return rc;
        if (ms < 10)
            return crest__af_bad(L, y, "%s: at least 10ms", w2);
        def->changes_heartbeat_ms = ms;
    }
    int64_t n;
    if ((y = crest__ytree_get(x, "subscribers"))) {
        if ((rc = crest__af_get_int(L, y, SUB("subscribers"), 1, 1000000, &n)))
            return rc;
        def->changes_subscribers = (unsigned)n;
    }
    if ((y = crest__ytree_get(x, "buffer"))) {
        if ((rc = crest__af_get_size(L, y, SUB("buffer"), &def->changes_buffer)))
            return rc;
        if (def->changes_buffer < 1024)
            return crest__af_bad(L, y, "%s: at least 1k", w2);
    }
    if ((y = crest__ytree_get(x, "permission")) &&
        (rc = crest__af_get_permission(L, y, SUB("permission"), &def->changes_permission)))
        return rc;
#undef SUB
    return 0;
}

int crest__af_load_module(crest__loader *L, const ynode *key, const ynode *v)
{
    static const char *const keys[] = {"model", "url_prefix", "base_path", "id_path", "enabled_methods",
                                       "disabled_methods", "allowed_sorts", "query_allowed_fields",
                                       "grouping_allowed_fields", "stats_allowed_fields", "default_sort", "page_size",
                                       "list_envelope", "single_envelope", "meta_envelope", "groups_envelope",
                                       "use_envelope_on_parse", "serialize_meta", "serializer", "parser", "scope",
                                       "description", "permissions", "owner", "rate_limit", "allowed_includes",
                                       "idempotency", "require_if_match", "changes", NULL};
    char where[160];
    snprintf(where, sizeof where, "modules.%s", key->str);
    if (crest__af_want_map(L, v, where) || crest__af_check_keys(L, v, where, keys))
        return CREST_ECONFIG;
    crest__arena *a = crest__af_conf_arena(L);
    if (!a)
        return CREST_ENOMEM;
    crest_module_def *def = crest__arena_calloc(a, 1, sizeof *def);
    if (!def || !(def->name = crest__af_conf_strdup(L, key->str)))
        return CREST_ENOMEM;
    int rc;
    const ynode *x;
    char w2[220];
#define SUB(k) (snprintf(w2, sizeof w2, "%s.%s", where, k), w2)
    if (!crest__ytree_get(v, "model"))
        return crest__af_bad(L, v, "%s: needs a model", where);
    if ((rc = opt_string(L, v, "model", where, &def->model)) || (rc = opt_string(L, v, "url_prefix", where, &def->url_prefix)) ||
        (rc = opt_string(L, v, "base_path", where, &def->base_path)) ||
        (rc = opt_string(L, v, "id_path", where, &def->id_path)) ||
        (rc = opt_string(L, v, "list_envelope", where, &def->list_envelope)) ||
        (rc = opt_string(L, v, "meta_envelope", where, &def->meta_envelope)) ||
        (rc = opt_string(L, v, "groups_envelope", where, &def->groups_envelope)) ||
        (rc = opt_string(L, v, "owner", where, &def->owner)) ||
        (rc = opt_string(L, v, "rate_limit", where, &def->rate_limit)))
        return rc;
    static const char *const paths[] = {"url_prefix", "base_path", "id_path"};
    for (size_t i = 0; i < CREST_ARRAY_LEN(paths); i++) {
        char pmsg[400];
        if ((x = crest__ytree_get(v, paths[i])) && crest__path_check(x->str, pmsg, sizeof pmsg))
            return crest__af_bad(L, x, "%s: %s", SUB(paths[i]), pmsg);
    }
    if ((x = crest__ytree_get(v, "single_envelope"))) {
        if (crest__af_want_scalar(L, x, SUB("single_envelope")))
            return CREST_ECONFIG;
        bool off = x->plain && (crest__ytree_is_null(x) || !strcmp(x->str, "false") || !strcmp(x->str, "False") ||
                                !strcmp(x->str, "FALSE") || !strcmp(x->str, "no") || !strcmp(x->str, "off"));
        if (!off && !(def->single_envelope = crest__af_conf_strdup(L, x->str)))
            return CREST_ENOMEM;
    }
    if ((x = crest__ytree_get(v, "enabled_methods")) && (rc = method_bits(L, x, SUB("enabled_methods"), &def->enabled_methods)))
        return rc;
    if ((x = crest__ytree_get(v, "enabled_methods")) && !def->enabled_methods)
        return crest__af_bad(L, x, "%s: enable at least one method", SUB("enabled_methods"));
    if ((x = crest__ytree_get(v, "disabled_methods")) &&
        (rc = method_bits(L, x, SUB("disabled_methods"), &def->disabled_methods)))
        return rc;
    if ((x = crest__ytree_get(v, "allowed_includes")) &&
        (rc = crest__af_get_names(L, x, SUB("allowed_includes"), &def->allowed_includes)))
        return rc;
    if ((x = crest__ytree_get(v, "allowed_sorts")) && (rc = crest__af_get_names(L, x, SUB("allowed_sorts"), &def->allowed_sorts)))
        return rc;
    if ((x = crest__ytree_get(v, "query_allowed_fields")) &&
        (rc = crest__af_get_names(L, x, SUB("query_allowed_fields"), &def->query_allowed_fields)))
        return rc;
    if ((x = crest__ytree_get(v, "grouping_allowed_fields")) &&
        (rc = crest__af_get_names(L, x, SUB("grouping_allowed_fields"), &def->grouping_allowed_fields)))
        return rc;
    if ((x = crest__ytree_get(v, "stats_allowed_fields")) &&
        (rc = crest__af_get_names(L, x, SUB("stats_allowed_fields"), &def->stats_allowed_fields)))
        return rc;
    if ((x = crest__ytree_get(v, "default_sort"))) {
        const char *const *names;
        if ((rc = crest__af_get_names(L, x, SUB("default_sort"), &names)) || (rc = crest__af_conf_join(L, names, &def->default_sort)))
            return rc;
    }
    if ((x = crest__ytree_get(v, "page_size"))) {
        int64_t n;
        if (x->kind == Y_SCALAR) {
            if ((rc = crest__af_get_int(L, x, SUB("page_size"), 1, 10000, &n)))
                return rc;
            def->page_size_default = (int)n;
        } else {
            static const char *const pk[] = {"default", "min", "max", NULL};
            if (crest__af_want_map(L, x, SUB("page_size")) || crest__af_check_keys(L, x, w2, pk))
                return CREST_ECONFIG;
            const ynode *y;
            if ((y = crest__ytree_get(x, "default"))) {
                if ((rc = crest__af_get_int(L, y, SUB("page_size.default"), 1, 10000, &n)))
                    return rc;
                def->page_size_default = (int)n;
            }
            if ((y = crest__ytree_get(x, "min"))) {
                if ((rc = crest__af_get_int(L, y, SUB("page_size.min"), 1, 10000, &n)))
                    return rc;
                def->page_size_min = (int)n;
            }
            if ((y = crest__ytree_get(x, "max"))) {
                if ((rc = crest__af_get_int(L, y, SUB("page_size.max"), 1, 10000, &n)))
                    return rc;
                def->page_size_max = (int)n;
            }
        }
    }
    if ((x = crest__ytree_get(v, "require_if_match")) &&
        (rc = crest__af_get_bool(L, x, SUB("require_if_match"), &def->require_if_match)))
        return rc;
    if ((x = crest__ytree_get(v, "use_envelope_on_parse")) &&
        (rc = crest__af_get_bool(L, x, SUB("use_envelope_on_parse"), &def->use_envelope_on_parse)))
        return rc;
    if ((x = crest__ytree_get(v, "serialize_meta"))) {
        bool on;
        if ((rc = crest__af_get_bool(L, x, SUB("serialize_meta"), &on)))
            return rc;
        def->no_meta = !on;
    }
    if ((x = crest__ytree_get(v, "serializer"))) {
        static const char *const sk[] = {"attributes", "include", "exclude", "computed", NULL};
        if (crest__af_want_map(L, x, SUB("serializer")) || crest__af_check_keys(L, x, w2, sk))
            return CREST_ECONFIG;
        const ynode *y;
        if ((y = crest__ytree_get(x, "attributes")) && (rc = crest__af_get_names(L, y, SUB("serializer.attributes"), &def->attributes)))
            return rc;
        if ((y = crest__ytree_get(x, "include")) && (rc = crest__af_get_names(L, y, SUB("serializer.include"), &def->include)))
            return rc;
        if ((y = crest__ytree_get(x, "exclude")) && (rc = crest__af_get_names(L, y, SUB("serializer.exclude"), &def->exclude)))
            return rc;
        if ((y = crest__ytree_get(x, "computed"))) {
            if (crest__af_want_map(L, y, SUB("serializer.computed")))
                return CREST_ECONFIG;
            crest_computed *c = crest__arena_calloc(a, y->n + 1, sizeof *c);
            if (!c)
                return CREST_ENOMEM;
            for (size_t i = 0; i < y->n; i++) {
                const ynode *k = y->kids[2 * i], *e = y->kids[2 * i + 1];
                char w3[300];
                snprintf(w3, sizeof w3, "%s.%s", w2, k->str);
                /* "<sql>", or {sql: "<sql>", type: <field type>} */
                if (e->kind == Y_MAP) {
                    static const char *const ck[] = {"sql", "type", NULL};
                    if (crest__af_check_keys(L, e, w3, ck))
                        return CREST_ECONFIG;
                    const ynode *t = crest__ytree_get(e, "type");
                    if (t && (rc = field_type(L, t, w3, &c[i].type)))
                        return rc;
                    if (!(e = crest__ytree_get(e, "sql")))
                        return crest__af_bad(L, y->kids[2 * i + 1], "%s: needs sql", w3);
                }
                if (crest__af_want_scalar(L, e, w3))
                    return CREST_ECONFIG;
                if (strchr(e->str, ';'))
                    return crest__af_bad(L, e, "%s: one SQL expression, without ';'", w3);
                if (!(c[i].name = crest__af_conf_strdup(L, k->str)) || !(c[i].sql = crest__af_conf_strdup(L, e->str)))
                    return CREST_ENOMEM;
                char k2[300]; /* checked against the table at start: keep the line */
                snprintf(k2, sizeof k2, "%s.serializer.computed.%s", where, k->str);
                if (crest__app_note_line(L->app, k2, e->line))
                    return CREST_ENOMEM;
            }
            def->computed = c;
        }
    }
    if ((x = crest__ytree_get(v, "parser"))) {
        static const char *const pk[] = {"attributes", NULL};
        if (crest__af_want_map(L, x, SUB("parser")) || crest__af_check_keys(L, x, w2, pk))
            return CREST_ECONFIG;
        const ynode *y;
        if ((y = crest__ytree_get(x, "attributes")) &&
            (rc = crest__af_get_names(L, y, SUB("parser.attributes"), &def->parse_attributes)))
            return rc;
    }
    if ((x = crest__ytree_get(v, "permissions"))) {
        static const char *const mk[] = {"index", "read", "create", "update", "delete", "sample", "group", "stats",
                                         "eval", NULL};
        if (crest__af_want_map(L, x, SUB("permissions")) || crest__af_check_keys(L, x, w2, mk))
            return CREST_ECONFIG;
        for (unsigned b = 0; b < 9; b++) {
            const ynode *y = crest__ytree_get(x, mk[b]);
            char w3[260];
            snprintf(w3, sizeof w3, "%s.permissions.%s", where, mk[b]);
            if (y && (rc = crest__af_get_permission(L, y, w3, &def->permissions[b])))
                return rc;
        }
    }
    if ((x = crest__ytree_get(v, "scope"))) {
        if (crest__af_want_map(L, x, SUB("scope")))
            return CREST_ECONFIG;
        if ((rc = crest__af_conf_json(L, crest__af_ynode_json(x), &def->scope)))
            return rc;
    }
    if ((x = crest__ytree_get(v, "idempotency")) && (rc = idempotency(L, x, SUB("idempotency"), def)))
        return rc;
    if ((x = crest__ytree_get(v, "changes")) && (rc = load_changes(L, x, SUB("changes"), def)))
        return rc;
#undef SUB
    crest_error e2 = {0};
    if ((rc = crest_app_add_module(L->app, def, &e2)))
        return crest__af_bad(L, crest__af_locate(v, e2.msg, key), "%s", e2.msg);
    if (crest__app_note_line(L->app, where, key->line))
        return CREST_ENOMEM;
    return 0;
}

