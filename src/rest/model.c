/* model.c — models: field definitions checked once, request values checked
 * and converted for binding (typed by the field's meaning), rows written
 * back as JSON. Dates and datetimes are normalised here, in one place. The
 * table is kept in step with the model by model_sync.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

#include "../json/json_internal.h"
#include "rest_internal.h"

/* ---- dates ---- */

static bool leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int mdays(int64_t y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : d[m - 1];
}

static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

bool crest__date_valid(const char *s, size_t len)
{
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return false;
    int y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
    return y >= 1 && m >= 1 && m <= 12 && d >= 1 && d <= mdays(y, m);
}

/* Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void format_stored(int64_t secs, int ms, char *out, size_t cap)
{
    int64_t days = secs / 86400, rem = secs % 86400;
    if (rem < 0) {
        rem += 86400;
        days--;
    }
    int64_t y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(out, cap, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ", (long long)y, m, d, (int)(rem / 3600),
             (int)(rem / 60 % 60), (int)(rem % 60), ms);
}

int crest__datetime_norm(const char *s, size_t len, char *out, size_t cap)
{
    /* YYYY-MM-DD[T ]HH:MM:SS[.frac](Z|+HH:MM|-HH:MM) */
    if (len < 20 || len > 40 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':')
        return -1;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > mdays(y, mo) || h < 0 || h > 23 || mi < 0 || mi > 59 || se < 0 ||
        se > 60)
        return -1;
    if (se == 60)
        se = 59; /* a leap second is kept within its minute */
    size_t i = 19;
    int ms = 0;
    if (i < len && s[i] == '.') {
        i++;
        size_t start = i;
        int scale = 100;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            ms += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == start || i - start > 9)
            return -1;
    }
    int off = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        off = (oh * 60 + om) * (s[i] == '+' ? 1 : -1);
        i += 6;
    } else {
        return -1;
    }
    if (i != len)
        return -1;
    int64_t secs = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se - off * 60;
    format_stored(secs, ms, out, cap);
    return 0;
}

void crest__now_stored(char *buf, size_t cap)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    format_stored((int64_t)ts.tv_sec, (int)(ts.tv_nsec / 1000000), buf, cap);
}

/* ---- values ---- */

static size_t utf8_chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xC0) != 0x80;
    return c;
}

static const char *num_msg(crest__arena *a, const char *what, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        return crest__arena_printf(a, "%s %lld", what, (long long)v);
    return crest__arena_printf(a, "%s %g", what, v);
}

static const char *to_val(crest__arena *a, const crest__mfield *f, const json_t *v, crest__val *out, char *tmp,
                          size_t tmpcap)
{
    memset(out, 0, sizeof *out);
    switch (f->f.type) {
    case CREST_F_STRING:
    case CREST_F_TEXT:
        if (!json_is_string(v))
            return "must be a string";
        out->k = CREST__V_TEXT;
        out->s = json_string_value(v);
        out->n = json_string_length(v);
        if (memchr(out->s, 0, out->n))
            return "must not contain NUL characters";
        return NULL;
    case CREST_F_INT:
        if (json_is_integer(v)) {
            out->k = CREST__V_INT;
            out->i = json_integer_value(v);
            return NULL;
        }
        if (json_is_real(v)) {
            double d = json_real_value(v);
            if (d == floor(d) && fabs(d) < 9.0e15) {
                out->k = CREST__V_INT;
                out->i = (int64_t)d;
                return NULL;
            }
        }
        return "must be an integer";
    case CREST_F_FLOAT:
        if (!json_is_number(v))
            return "must be a number";
        out->k = CREST__V_FLOAT;
        out->f = json_number_value(v);
        return NULL;
    case CREST_F_BOOL:
        if (!json_is_boolean(v))
            return "must be true or false";
        out->k = CREST__V_BOOL;
        out->i = json_is_true(v);
        return NULL;
    case CREST_F_DATE:
        if (!json_is_string(v) || !crest__date_valid(json_string_value(v), json_string_length(v)))
            return "must be a date (YYYY-MM-DD)";
        out->k = CREST__V_DATE;
        out->s = json_string_value(v);
        out->n = 10;
        return NULL;
    case CREST_F_DATETIME:
        if (!json_is_string(v) || crest__datetime_norm(json_string_value(v), json_string_length(v), tmp, tmpcap))
            return "must be an RFC 3339 date-time (2026-01-31T12:00:00Z)";
        out->k = CREST__V_DATETIME;
        out->s = crest__arena_strdup(a, tmp);
        out->n = strlen(tmp);
        return out->s ? NULL : "cannot be stored (out of memory)";
    case CREST_F_UUID:
        if (!json_is_string(v) || crest__uuid_norm(json_string_value(v), json_string_length(v), tmp))
            return CREST__UUID_INVALID;
        out->k = CREST__V_UUID;
        out->s = crest__arena_strdup(a, tmp);
        out->n = 36;
        return out->s ? NULL : "cannot be stored (out of memory)";
    case CREST_F_JSON: {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!t)
            return "cannot be stored (out of memory)";
        out->k = CREST__V_JSON;
        out->s = crest__arena_strdup(a, t);
        out->n = strlen(t);
        free(t);
        return out->s ? NULL : "cannot be stored (out of memory)";
    }
    }
    return "has an unknown type";
}

const char *crest__field_operand(crest__arena *a, const crest__mfield *f, const json_t *v, crest__val *out)
{
    char tmp[48];
    if (json_is_null(v)) {
        memset(out, 0, sizeof *out);
        return NULL;
    }
    return to_val(a, f, v, out, tmp, sizeof tmp);
}

const char *crest__field_value(crest__arena *a, const crest__mfield *f, const json_t *v, crest__val *out)
{
    char tmp[48];
    if (!v || json_is_null(v)) {
        memset(out, 0, sizeof *out);
        return f->f.required ? "must not be null" : NULL;
    }
    const char *msg = to_val(a, f, v, out, tmp, sizeof tmp);
    if (msg)
        return msg;
    const crest_field *d = &f->f;
    if (out->k == CREST__V_INT || out->k == CREST__V_FLOAT) {
        double x = out->k == CREST__V_INT ? (double)out->i : out->f;
        if (d->has_min && x < d->min)
            return num_msg(a, "must be >=", d->min);
        if (d->has_max && x > d->max)
            return num_msg(a, "must be <=", d->max);
        return NULL;
    }
    if (d->type == CREST_F_STRING || d->type == CREST_F_TEXT) {
        size_t chars = utf8_chars(out->s, out->n);
        if (d->min_length && (int64_t)chars < d->min_length)
            return crest__arena_printf(a, "must be at least %lld characters long", (long long)d->min_length);
        if (d->max_length && (int64_t)chars > d->max_length)
            return crest__arena_printf(a, "must be at most %lld characters long", (long long)d->max_length);
        if (d->values) {
            bool found = false;
            for (const char *const *e = d->values; *e && !found; e++)
                found = strlen(*e) == out->n && !memcmp(*e, out->s, out->n);
            if (!found) {
                crest__buf b;
                crest__buf_init(&b, 512);
                crest__buf_appends(&b, "must be one of: ");
                for (const char *const *e = d->values; *e; e++)
                    crest__buf_appendf(&b, "%s%s", e == d->values ? "" : ", ", *e);
                const char *m = crest__arena_strndup(a, b.ptr ? b.ptr : "", b.len);
                crest__buf_dispose(&b);
                return m ? m : "is not an allowed value";
            }
        }
        if (f->re) {
            pcre2_match_data *md = pcre2_match_data_create_from_pattern(f->re, NULL);
            if (!md)
                return "cannot be checked (out of memory)";
            int rc = pcre2_match(f->re, (PCRE2_SPTR)out->s, out->n, 0, 0, md, NULL);
            pcre2_match_data_free(md);
            if (rc < 0)
                return crest__arena_printf(a, "must match the pattern %s", d->pattern);
        }
    }
    return NULL;
}

void crest__field_write(crest_json *w, const crest__mfield *f, const crest__cell *c)
{
    int t = c->k;
    if (t == CREST__V_NULL) {
        crest_json_null(w);
        return;
    }
    bool num = t == CREST__V_INT || t == CREST__V_BOOL || t == CREST__V_FLOAT;
    switch (f->f.type) {
    case CREST_F_INT:
        if (t == CREST__V_INT) {
            crest_json_int(w, c->v.i);
            return;
        }
        break;
    case CREST_F_FLOAT:
        if (num) {
            crest_json_double(w, t == CREST__V_FLOAT ? c->v.f : (double)c->v.i);
            return;
        }
        break;
    case CREST_F_BOOL:
        if (num) {
            crest_json_bool(w, (t == CREST__V_FLOAT ? (int64_t)c->v.f : c->v.i) != 0);
            return;
        }
        break;
    case CREST_F_JSON: {
        if (!crest__vkind_is_text((crest__vkind)t))
            break;
        json_t *v = json_loadb(c->v.s, c->n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        if (v) {
            crest__json_write_value(w, v);
            json_decref(v);
            return;
        }
        crest_json_strn(w, c->v.s, c->n); /* not JSON (written by someone else): served as text */
        return;
    }
    default:
        break;
    }
    /* Text types, or a value of another storage class than the field's. */
    if (num && f->f.type != CREST_F_STRING && f->f.type != CREST_F_TEXT)
        crest__cell_write(w, c);
    else
        crest__cell_write_text(w, c);
}

/* ---- models ---- */

const crest__mfield *crest__model_field(const crest__model *m, const char *name)
{
    for (unsigned i = 0; i < m->nfields; i++)
        if (!strcmp(m->fields[i].f.name, name))
            return &m->fields[i];
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
        if (m->fields[i].re)
            pcre2_code_free(m->fields[i].re);
        json_decref(m->fields[i].defv);
    }
    free(m->fields);
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

static int field_setup(crest__mfield *mf, const crest_field *f, const char *model, crest_error *err)
{
    mf->f = *f;
    if (!ident_ok(f->name))
        return crest__error_set(err, CREST_EINVAL, NULL, 0,
                                "model %s: field name '%s' must be letters, digits and '_' (at most 63)", model,
                                f->name ? f->name : "(null)");
    if (!strcmp(f->name, "id"))
        return crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: 'id' is implicit (an integer primary key)",
                                model);
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

int crest_app_add_model(crest_app *app, const crest_model_def *def, crest_error *err)
{
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
    for (unsigned i = 0; i < n; i++) {
        for (unsigned j = 0; j < i; j++)
            if (!strcmp(def->fields[i].name, def->fields[j].name)) {
                rc = crest__error_set(err, CREST_EINVAL, NULL, 0, "model %s: field %s is defined twice", def->name,
                                      def->fields[i].name);
                goto fail;
            }
        m->fields[i + 1].idx = i + 1;
        m->nfields++;
        if ((rc = field_setup(&m->fields[i + 1], &def->fields[i], def->name, err)))
            goto fail;
    }
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
