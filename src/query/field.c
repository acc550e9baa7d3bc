/* field.c — a field's values: JSON checked against a field definition
 * (type, bounds, length, allowed values, pattern) and turned into typed
 * values for binding. The one validator of request bodies: REST modules
 * (create, update, bulk) and SQL endpoints' body parameters both describe
 * their inputs as crest__mfield and check them here. Dates and datetimes
 * are normalised here, in one place. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

#include "model.h"

/* ---- dates ---- */

static bool leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int mdays(int64_t y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : d[m - 1];
}

bool crest__date_valid(const char *s, size_t len)
{
    if (len != 10 || s[4] != '-' || s[7] != '-')
        return false;
    int y = crest__digits(s, 4), m = crest__digits(s + 5, 2), d = crest__digits(s + 8, 2);
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
    int y = crest__digits(s, 4), mo = crest__digits(s + 5, 2), d = crest__digits(s + 8, 2);
    int h = crest__digits(s + 11, 2), mi = crest__digits(s + 14, 2), se = crest__digits(s + 17, 2);
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
        int oh = crest__digits(s + i + 1, 2), om = crest__digits(s + i + 4, 2);
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
    case CREST_F_REF: /* (a ref field is an int: see crest__mfield.ref) */
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

const char *crest__field_input(crest__arena *a, const crest__mfield *f, const json_t *v, bool create, crest__val *out,
                               bool *set)
{
    memset(out, 0, sizeof *out);
    *set = v || create;
    if (v)
        return crest__field_value(a, f, v, out);
    if (!create)
        return NULL;
    if (f->def_now) {
        char now[40];
        crest__now_stored(now, sizeof now);
        bool date = f->f.type == CREST_F_DATE;
        if (date)
            now[10] = 0;
        out->k = date ? CREST__V_DATE : CREST__V_DATETIME;
        out->s = crest__arena_strdup(a, now);
        out->n = out->s ? strlen(out->s) : 0;
        return out->s ? NULL : "cannot be stored (out of memory)";
    }
    if (f->defv)
        return crest__field_value(a, f, f->defv, out);
    return f->f.required ? "is required" : NULL;
}
