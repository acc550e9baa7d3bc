/* model.c — models: field definitions checked once. Request values are
 * checked by the query stage (src/query/field.c), rows written back by the
 * fields' types by the store's cell writer (crest__cell_write_as); the table
 * is kept in step with the model by model_sync.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "../json/json_internal.h"
#include "rest_internal.h"

/* ---- models ---- */

const crest__mfield *crest__model_field(const crest__model *m, const char *name)
{
    for (unsigned i = 0; i < m->nfields; i++)
        if (!strcmp(m->fields[i].f.name, name))
            return &m->fields[i];
    return NULL;
}

const crest__rel *crest__model_rel(const crest__model *m, const char *name)
{
    for (unsigned i = 0; i < m->nrels; i++)
        if (!strcmp(m->rels[i].name, name))
            return &m->rels[i];
    return NULL;
}

crest__model *crest__app_model(crest_app *app, const char *name)
{
    for (unsigned i = 0; i < app->nmodels; i++)
        if (!strcmp(app->models[i]->name, name))
            return app->models[i];
    return NULL;
}

void crest__model_free(crest__model *m)
{
    if (!m)
        return;
    for (unsigned i = 0; i < m->nfields; i++) {
        free(m->fields[i].qname);
        free(m->fields[i].refname);
        if (m->fields[i].re)
            pcre2_code_free(m->fields[i].re);
        json_decref(m->fields[i].defv);
    }
    free(m->fields);
    for (unsigned i = 0; i < m->nrels; i++)
        free(m->rels[i].join_rows);
    free(m->rels);
    free(m->name);
    free(m->table);
    free(m->qtable);
    free(m);
}

static bool ident_ok(const char *s)
{
    if (!s || !*s || strlen(s) > 63)
        return false;
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_'))
        return false;
    for (const char *c = s; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '_'))
            return false;
    return true;
}

/* A CREST_F_REF field: an integer column "<name>_id" with its relation
 * (rel, whose model is found by crest__app_link_models). */
static int ref_setup(crest__mfield *mf, const crest_field *f, const char *model, crest__rel *rel, crest_error *err)
{
    if (!f->ref_model || !*f->ref_model)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s: a ref needs the model it refers to",
                                model, f->name);
    if (f->on_delete < CREST_ON_DELETE_RESTRICT || f->on_delete > CREST_ON_DELETE_SET_NULL)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s: bad on_delete", model, f->name);
    if (f->on_delete == CREST_ON_DELETE_SET_NULL && f->required)
        return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                "model %s: field %s: on_delete set_null needs a field that is not required", model,
                                f->name);
    if (f->has_min || f->has_max || f->min_length || f->max_length || f->pattern || f->values || f->def ||
        f->has_many || f->via || f->through || f->embed_max)
        return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                "model %s: field %s: a ref takes model, on_delete, required, rest, description and "
                                "permissions only", model, f->name);
    size_t n = strlen(f->name);
    if (n + 3 > 63)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s: the name is too long for %s_id", model,
                                f->name, f->name);
    if (!(mf->refname = malloc(n + 4)))
        return CREST_ENOMEM;
    memcpy(mf->refname, f->name, n);
    memcpy(mf->refname + n, "_id", 4);
    mf->f.name = mf->refname;
    mf->f.type = CREST_F_INT;
    mf->f.index = true;
    mf->ref = rel;
    *rel = (crest__rel){.name = f->name, .kind = CREST__REL_BELONGS_TO, .def = f, .fk = mf};
    mf->qname = crest__quote_ident(mf->f.name);
    return mf->qname ? 0 : CREST_ENOMEM;
}

/* A field's (or relation's) name: an identifier, not the implicit id. */
static int name_check(const crest_field *f, const char *model, crest_error *err)
{
    if (!ident_ok(f->name))
        return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                "model %s: field name '%s' must be letters, digits and '_' (at most 63)", model,
                                f->name ? f->name : "(null)");
    if (!strcmp(f->name, "id"))
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: 'id' is implicit (an integer primary key)",
                                model);
    if (!strncasecmp(f->name, "crest_", 6)) /* crest's own columns (crest_version) */
        return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                "model %s: field name '%s' is reserved: names starting with 'crest_' are crest's own",
                                model, f->name);
    return 0;
}

/* The other side of a relation (has_many, maybe through a join model): no
 * column; its models are found by crest__app_link_models. */
static int has_many_setup(crest__rel *rel, const crest_field *f, const char *model, crest_error *err)
{
    int rc = name_check(f, model, err);
    if (rc)
        return rc;
    if (f->type || f->ref_model || f->required || f->def || f->unique || f->index || f->has_min || f->has_max ||
        f->min_length || f->max_length || f->pattern || f->values || f->write_permission || f->on_delete)
        return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                "model %s: field %s: has_many takes via, through, embed_max, description and "
                                "read_permission only", model, f->name);
    if (f->via && f->through)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s: via or through, not both", model,
                                f->name);
    if (f->embed_max < 0 || f->embed_max > 10000)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s: embed_max must be 1 to 10000", model,
                                f->name);
    *rel = (crest__rel){.name = f->name,
                        .kind = f->through ? CREST__REL_THROUGH : CREST__REL_HAS_MANY,
                        .def = f,
                        .embed_max = f->embed_max ? (unsigned)f->embed_max : CREST_EMBED_MAX_DEFAULT};
    return 0;
}

static int field_setup(crest__mfield *mf, const crest_field *f, const char *model, crest__rel *rel, crest_error *err)
{
    mf->f = *f;
    int rc = name_check(f, model, err);
    if (rc)
        return rc;
    if (f->type == CREST_F_REF)
        return ref_setup(mf, f, model, rel, err);
    if (f->ref_model || f->via || f->through)
        return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                "model %s: field %s: model, via and through are for relations (type ref, has_many)",
                                model, f->name);
    if (f->on_delete || f->embed_max)
        return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                "model %s: field %s: on_delete is for a ref, embed_max for a has_many", model, f->name);
    if (f->type < CREST_F_STRING || f->type > CREST_F_UUID)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s has no valid type", model, f->name);
    bool is_text = f->type == CREST_F_STRING || f->type == CREST_F_TEXT;
    bool is_num = f->type == CREST_F_INT || f->type == CREST_F_FLOAT;
    if ((f->has_min || f->has_max) && !is_num)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s: min/max apply to int and float fields",
                                model, f->name);
    if (f->has_min && f->has_max && f->min > f->max)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s: min is above max", model, f->name);
    if ((f->min_length || f->max_length || f->pattern || f->values) && !is_text)
        return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                "model %s: field %s: min_length, max_length, pattern and values apply to string and "
                                "text fields",
                                model, f->name);
    if (f->min_length < 0 || f->max_length < 0 || (f->max_length && f->min_length > f->max_length))
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s: bad length bounds", model, f->name);
    if (f->rest < CREST_REST_RW || f->rest > CREST_REST_NONE)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s: bad rest access", model, f->name);
    if (f->pattern) {
        int ec;
        PCRE2_SIZE off;
        mf->re = pcre2_compile((PCRE2_SPTR)f->pattern, PCRE2_ZERO_TERMINATED, PCRE2_ANCHORED | PCRE2_ENDANCHORED | PCRE2_UTF,
                               &ec, &off, NULL);
        if (!mf->re) {
            PCRE2_UCHAR buf[160];
            pcre2_get_error_message(ec, buf, sizeof buf);
            return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s: bad pattern at %zu: %s", model,
                                    f->name, (size_t)off, (const char *)buf);
        }
    }
    if (f->def) {
        if (!strcmp(f->def, "now")) {
            if (f->type != CREST_F_DATE && f->type != CREST_F_DATETIME)
                return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                        "model %s: field %s: default 'now' is for date and datetime fields", model,
                                        f->name);
            mf->def_now = true;
        } else {
            mf->defv = json_loads(f->def, JSON_DECODE_ANY, NULL);
            if (!mf->defv)
                return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                        "model %s: field %s: default must be JSON text (\"todo\", 0, false)", model,
                                        f->name);
            crest__arena a;
            crest__arena_init(&a, 512, 0);
            crest__val v;
            bool req = mf->f.required;
            mf->f.required = false;
            const char *msg = crest__field_value(&a, mf, mf->defv, &v);
            mf->f.required = req;
            char m2[200];
            if (msg)
                snprintf(m2, sizeof m2, "%s", msg);
            crest__arena_dispose(&a);
            if (msg)
                return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s: the default %s", model,
                                        f->name, m2);
        }
    }
    mf->qname = crest__quote_ident(f->name);
    return mf->qname ? 0 : CREST_ENOMEM;
}

/* The names a row's JSON shares: a relation's (an embed's key) may not be
 * a field's (a ref's "owner" and another's column "owner_id"), nor a
 * has_many's "<name>_has_more" a field's or a relation's. */
static int rel_names_check(const crest__model *m, crest_error *err)
{
    for (unsigned i = 0; i < m->nrels; i++) {
        const crest__rel *r = &m->rels[i];
        const crest__mfield *f = crest__model_field(m, r->name);
        if (f)
            return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s is defined twice (%s makes it)",
                                    m->name, r->name, f->ref ? f->ref->name : r->name);
        if (r->kind == CREST__REL_BELONGS_TO)
            continue;
        char more[80];
        snprintf(more, sizeof more, "%s_has_more", r->name);
        const crest__mfield *mf = crest__model_field(m, more);
        if (mf || crest__model_rel(m, more))
            return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s is defined twice (%s makes it)",
                                    m->name, more, r->name);
    }
    return 0;
}

int crest_app_add_model(crest_app *app, const crest_model_def *def, crest_error *err)
{
    crest__app_made_in_c(app);
    if (!def || !def->name || !def->fields)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "a model needs a name and fields");
    if (!ident_ok(def->name))
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "model name '%s': use letters, digits and '_'", def->name);
    if (crest__app_model(app, def->name))
        return crest__error_set(err, CREST_EEXIST, NULL, 0, "model %s is defined twice", def->name);
    unsigned n = 0;
    while (def->fields[n].name)
        n++;
    if (n + 1 > CREST_MODEL_MAX_FIELDS)
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: more than %d fields", def->name,
                                CREST_MODEL_MAX_FIELDS - 1);
    crest__model *m = calloc(1, sizeof *m);
    if (!m)
        return CREST_ENOMEM;
    m->def = def;
    m->name = strdup(def->name);
    if (def->table) {
        m->table = strdup(def->table);
    } else if (m->name) {
        m->table = strdup(m->name);
        for (char *c = m->table; c && *c; c++)
            if (*c >= 'A' && *c <= 'Z')
                *c = (char)(*c - 'A' + 'a');
    }
    m->fields = calloc(n + 1, sizeof *m->fields);
    int rc = CREST_ENOMEM;
    if (!m->name || !m->table || !m->fields)
        goto fail;
    if (!strncasecmp(m->table, "crest_", 6)) { /* crest_idempotency, ...: crest's own tables */
        rc = crest__error_set(err, CREST_EINVAL, NULL, 0,
                              "model %s: table name '%s': names starting with crest_ are crest's own tables",
                              def->name, m->table);
        goto fail;
    }
    if (!ident_ok(m->table) || !strncmp(m->table, "sqlite_", 7) || !strncmp(m->table, "_crest", 6)) {
        rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: table name '%s': use letters, digits and '_'",
                              def->name, m->table);
        goto fail;
    }
    if (!(m->qtable = crest__quote_ident(m->table)))
        goto fail;
    static const crest_field id_field = {.name = "id", .type = CREST_F_INT, .rest = CREST_REST_READ};
    m->fields[0].f = id_field;
    if (!(m->fields[0].qname = crest__quote_ident("id")))
        goto fail;
    m->nfields = 1;
    unsigned nrels = 0;
    for (unsigned i = 0; i < n; i++)
        nrels += def->fields[i].type == CREST_F_REF || def->fields[i].has_many;
    if (nrels && !(m->rels = calloc(nrels, sizeof *m->rels)))
        goto fail;
    for (unsigned i = 0; i < n; i++) {
        const crest_field *f = &def->fields[i];
        for (unsigned j = 0; j < i; j++)
            if (!strcmp(f->name, def->fields[j].name)) {
                rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s is defined twice", def->name,
                                      f->name);
                goto fail;
            }
        if (f->has_many) {
            if ((rc = has_many_setup(&m->rels[m->nrels++], f, def->name, err)))
                goto fail;
            continue;
        }
        crest__mfield *mf = &m->fields[m->nfields];
        mf->idx = m->nfields++;
        if ((rc = field_setup(mf, f, def->name, f->type == CREST_F_REF ? &m->rels[m->nrels++] : NULL, err)))
            goto fail;
        for (unsigned j = 0; j + 1 < m->nfields; j++)
            if (!strcmp(m->fields[j].f.name, mf->f.name)) {
                rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s is defined twice (%s makes it)",
                                      def->name, mf->f.name, f->name);
                goto fail;
            }
    }
    for (unsigned i = 0; i < m->nrels; i++)
        m->rels[i].owner = m;
    if ((rc = rel_names_check(m, err)))
        goto fail;
    for (const char *const *ix = def->indexes; ix && *ix; ix++) {
        char *copy = strdup(*ix), *save = NULL;
        unsigned ncols = 0;
        bool ok = copy != NULL;
        for (char *c = copy ? strtok_r(copy, ",", &save) : NULL; c && ok; c = strtok_r(NULL, ",", &save)) {
            while (*c == ' ')
                c++;
            ok = crest__model_field(m, c + (*c == '-')) != NULL;
            ncols++;
        }
        free(copy);
        if (!ok || !ncols) {
            rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: index '%s': name fields of the model, as in "
                                  "\"is_completed,-spent_time\"", def->name, *ix);
            goto fail;
        }
    }
    for (unsigned i = 0; i < app->nmodels; i++)
        if (!strcmp(app->models[i]->table, m->table)) {
            rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "models %s and %s use the same table %s",
                                  app->models[i]->name, m->name, m->table);
            goto fail;
        }
    crest__model **mm = realloc(app->models, (app->nmodels + 1) * sizeof *mm);
    if (!mm)
        goto fail;
    app->models = mm;
    app->models[app->nmodels++] = m;
    return 0;
fail:
    crest__model_free(m);
    return rc;
}

/* ---- relations: the models they name ---- */

/* The CREST_F_REF field of m that refers to the model `to`, named `name`
 * (NULL: m's only such field); *count: how many m has when name is NULL. */
static const crest__mfield *ref_to(const crest__model *m, const char *to, const char *name, unsigned *count)
{
    const crest__mfield *found = NULL;
    *count = 0;
    for (unsigned i = 1; i < m->nfields; i++) {
        const crest__rel *r = m->fields[i].ref;
        if (!r || strcmp(r->def->ref_model, to) || (name && strcmp(r->name, name)))
            continue;
        found = &m->fields[i];
        ++*count;
    }
    return found;
}

/* Finds the models of one relation of m; err names the field. */
static int link_rel(crest_app *app, crest__model *m, crest__rel *r, crest_error *err)
{
    const crest_field *f = r->def;
    const char *want = r->kind == CREST__REL_BELONGS_TO ? f->ref_model : f->has_many;
    if (!(r->target = crest__app_model(app, want)))
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s: there is no model '%s'", m->name,
                                r->name, want);
    unsigned count;
    switch (r->kind) {
    case CREST__REL_BELONGS_TO:
        return 0;
    case CREST__REL_HAS_MANY:
        r->fk = ref_to(r->target, m->name, f->via, &count);
        if (!r->fk && f->via)
            return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                    "model %s: field %s: model %s has no ref field '%s' to %s", m->name, r->name,
                                    r->target->name, f->via, m->name);
        if (!r->fk || count > 1)
            return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                    "model %s: field %s: model %s has %s ref field to %s: name it with via", m->name,
                                    r->name, r->target->name, count ? "more than one" : "no", m->name);
        return 0;
    case CREST__REL_THROUGH:
        if (!(r->join = crest__app_model(app, f->through)))
            return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s: there is no model '%s'",
                                    m->name, r->name, f->through);
        r->fk = ref_to(r->join, m->name, NULL, &count);
        unsigned count2;
        r->join_fk = ref_to(r->join, r->target->name, NULL, &count2);
        if (!r->fk || count != 1 || !r->join_fk || count2 != 1 || r->fk == r->join_fk)
            return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                    "model %s: field %s: the join model %s needs one ref field to %s and one to %s",
                                    m->name, r->name, r->join->name, m->name, r->target->name);
        if (!r->join_rows && !(r->join_rows = calloc(1, sizeof *r->join_rows)))
            return CREST_ENOMEM;
        *r->join_rows = (crest__rel){.name = r->join->name, .kind = CREST__REL_HAS_MANY, .def = r->def,
                                     .owner = r->target, .target = r->join, .fk = r->join_fk};
        return 0;
    }
    return 0;
}

int crest__app_link_models(crest_app *app, crest_error *err)
{
    for (unsigned i = 0; i < app->nmodels; i++) {
        crest__model *m = app->models[i];
        if (m->linked)
            continue;
        for (unsigned j = 0; j < m->nrels; j++) {
            int rc = link_rel(app, m, &m->rels[j], err);
            if (rc) {
                char key[300];
                snprintf(key, sizeof key, "models.%s.fields.%s", m->name, m->rels[j].name);
                crest__app_locate(app, err, key, rc);
                if (!err || !err->line) {
                    snprintf(key, sizeof key, "models.%s", m->name);
                    crest__app_locate(app, err, key, rc);
                }
                return rc;
            }
        }
        m->linked = true;
    }
    return 0;
}
