/* writer.c — the streaming JSON writer (crest/json.h). It is on the hot path
 * of every response, so it appends straight into one buffer, keeps commas
 * and nesting in a small bit stack, and never allocates per value. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crest/json.h"

void crest_json_init(crest_json *w, size_t limit)
{
    w->buf = NULL;
    w->len = w->cap = 0;
    w->limit = limit;
    w->err = 0;
    w->depth = 0;
    w->first[0] = 1;
    w->after_key = 0;
}

void crest_json_dispose(crest_json *w)
{
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

void crest_json_reset(crest_json *w)
{
    w->len = 0;
    w->err = 0;
    w->depth = 0;
    w->first[0] = 1;
    w->after_key = 0;
}

const char *crest_json_data(const crest_json *w, size_t *len)
{
    if (len)
        *len = w->len;
    return w->buf ? w->buf : "";
}

int crest_json_error(const crest_json *w)
{
    return w->err;
}

/* Sets ETOOBIG when `extra` more bytes would pass the limit. */
static int over(crest_json *w, size_t extra)
{
    if (w->limit && (extra > w->limit || w->len > w->limit - extra)) {
        w->err = CREST_JSON_ETOOBIG;
        return 1;
    }
    return 0;
}

/* Room for `extra` more bytes (capacity only: the limit is checked on what
 * is actually written). */
static int grow(crest_json *w, size_t extra)
{
    if (w->err)
        return -1;
    if (extra > SIZE_MAX / 2 - w->len) {
        w->err = CREST_JSON_ETOOBIG;
        return -1;
    }
    size_t need = w->len + extra;
    if (need <= w->cap)
        return 0;
    size_t cap = w->cap ? w->cap * 2 : 512;
    while (cap < need)
        cap *= 2;
    char *p = realloc(w->buf, cap);
    if (!p) {
        w->err = CREST_JSON_ENOMEM;
        return -1;
    }
    w->buf = p;
    w->cap = cap;
    return 0;
}

static inline int put(crest_json *w, const char *s, size_t n)
{
    if (w->err || over(w, n))
        return -1;
    if (w->cap - w->len < n && grow(w, n))
        return -1;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    return 0;
}

/* Writes the separator a new value needs; checks the state. */
static int value_start(crest_json *w)
{
    if (w->err)
        return -1;
    if (w->after_key) {
        w->after_key = 0;
        return 0;
    }
    if (w->depth > 0 && (w->first[w->depth] & 2)) { /* inside an object: a key is due */
        w->err = CREST_JSON_ESTATE;
        return -1;
    }
    if (w->first[w->depth] & 1) {
        w->first[w->depth] &= (uint8_t)~1;
        return 0;
    }
    return put(w, ",", 1);
}

static void open(crest_json *w, char c, uint8_t is_object)
{
    if (value_start(w))
        return;
    if (w->depth + 1 >= CREST_JSON_MAX_DEPTH) {
        w->err = CREST_JSON_EDEPTH;
        return;
    }
    if (put(w, &c, 1))
        return;
    w->depth++;
    w->first[w->depth] = (uint8_t)(1 | (is_object << 1));
}

static void close_(crest_json *w, char c, uint8_t is_object)
{
    if (w->err)
        return;
    if (w->depth == 0 || ((w->first[w->depth] >> 1) & 1) != is_object || w->after_key) {
        w->err = CREST_JSON_ESTATE;
        return;
    }
    w->depth--;
    put(w, &c, 1);
}

void crest_json_object_begin(crest_json *w) { open(w, '{', 1); }
void crest_json_object_end(crest_json *w) { close_(w, '}', 1); }
void crest_json_array_begin(crest_json *w) { open(w, '[', 0); }
void crest_json_array_end(crest_json *w) { close_(w, ']', 0); }

static const char hex[] = "0123456789abcdef";

/* Length of a valid UTF-8 sequence starting at s (at most n bytes), 0 if invalid. */
static size_t utf8_valid(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        return n >= 2 && (s[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if (n < 3 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80)
            return 0;
        if (c == 0xE0 && s[1] < 0xA0)
            return 0; /* overlong */
        if (c == 0xED && s[1] > 0x9F)
            return 0; /* surrogates */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if (n < 4 || (s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80)
            return 0;
        if (c == 0xF0 && s[1] < 0x90)
            return 0;
        if (c == 0xF4 && s[1] > 0x8F)
            return 0;
        return 4;
    }
    return 0;
}

size_t crest_json_escape(char *dst, const char *src, size_t len)
{
    const unsigned char *s = (const unsigned char *)src;
    char *d = dst;
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *d++ = (char)c;
            i++;
            continue;
        }
        if (c < 0x80) {
            *d++ = '\\';
            switch (c) {
            case '"': *d++ = '"'; break;
            case '\\': *d++ = '\\'; break;
            case '\n': *d++ = 'n'; break;
            case '\r': *d++ = 'r'; break;
            case '\t': *d++ = 't'; break;
            case '\b': *d++ = 'b'; break;
            case '\f': *d++ = 'f'; break;
            default:
                *d++ = 'u';
                *d++ = '0';
                *d++ = '0';
                *d++ = hex[c >> 4];
                *d++ = hex[c & 15];
            }
            i++;
            continue;
        }
        size_t n = utf8_valid(s + i, len - i);
        if (n == 0) { /* invalid byte: U+FFFD, then resynchronise at the next byte */
            memcpy(d, "\xEF\xBF\xBD", 3);
            d += 3;
            i++;
            continue;
        }
        memcpy(d, s + i, n);
        d += n;
        i += n;
    }
    return (size_t)(d - dst);
}

static void write_string(crest_json *w, const char *s, size_t len)
{
    /* Fast path: plain ASCII copies straight through. */
    size_t plain = 0;
    while (plain < len) {
        unsigned char c = (unsigned char)s[plain];
        if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\')
            break;
        plain++;
    }
    if (len > SIZE_MAX / 8 || over(w, len + 2))
        return; /* the output is at least len + 2 bytes */
    if (plain == len) {
        if (w->cap - w->len < len + 2 && grow(w, len + 2))
            return;
        char *d = w->buf + w->len;
        *d++ = '"';
        memcpy(d, s, len);
        d[len] = '"';
        w->len += len + 2;
        return;
    }
    /* Escaping may grow the text up to 6 times: make room for that, then
     * check the limit against what was really written. */
    if (w->cap - w->len < len * 6 + 2 && grow(w, len * 6 + 2))
        return;
    char *d = w->buf + w->len;
    *d++ = '"';
    d += crest_json_escape(d, s, len);
    *d++ = '"';
    size_t n = (size_t)(d - w->buf);
    if (w->limit && n > w->limit) {
        w->err = CREST_JSON_ETOOBIG;
        return;
    }
    w->len = n;
}

void crest_json_keyn(crest_json *w, const char *key, size_t len)
{
    if (w->err)
        return;
    if (w->depth == 0 || !(w->first[w->depth] & 2) || w->after_key) {
        w->err = CREST_JSON_ESTATE;
        return;
    }
    if (w->first[w->depth] & 1)
        w->first[w->depth] &= (uint8_t)~1;
    else if (put(w, ",", 1))
        return;
    write_string(w, key, len);
    put(w, ":", 1);
    w->after_key = 1;
}

void crest_json_key(crest_json *w, const char *key)
{
    crest_json_keyn(w, key, strlen(key));
}

void crest_json_strn(crest_json *w, const char *s, size_t len)
{
    if (value_start(w))
        return;
    write_string(w, s, len);
}

void crest_json_str(crest_json *w, const char *s)
{
    if (!s) {
        crest_json_null(w);
        return;
    }
    crest_json_strn(w, s, strlen(s));
}

void crest_json_int(crest_json *w, int64_t v)
{
    if (value_start(w))
        return;
    char tmp[24], *e = tmp + sizeof tmp, *p = e;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    put(w, p, (size_t)(e - p));
}

void crest_json_double(crest_json *w, double v)
{
    if (!isfinite(v)) {
        crest_json_null(w);
        return;
    }
    if (value_start(w))
        return;
    char tmp[40];
    int n = 0;
    /* The shortest of %.15g/%.16g/%.17g that reads back to the same double. */
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (strtod(tmp, NULL) == v)
            break;
    }
    /* Keep it a JSON number that reads back as a float: "1" → "1.0". */
    bool has_dot = false;
    for (int i = 0; i < n; i++)
        if (tmp[i] == '.' || tmp[i] == 'e' || tmp[i] == 'n' || tmp[i] == 'i')
            has_dot = true;
    if (!has_dot && n + 2 < (int)sizeof tmp) {
        tmp[n++] = '.';
        tmp[n++] = '0';
    }
    put(w, tmp, (size_t)n);
}

void crest_json_bool(crest_json *w, bool v)
{
    if (value_start(w))
        return;
    if (v)
        put(w, "true", 4);
    else
        put(w, "false", 5);
}

void crest_json_null(crest_json *w)
{
    if (value_start(w))
        return;
    put(w, "null", 4);
}

void crest_json_raw(crest_json *w, const char *json, size_t len)
{
    if (value_start(w))
        return;
    put(w, json, len);
}
