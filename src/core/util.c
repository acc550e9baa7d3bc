/* util.c — small shared helpers: strict number parsing, clocks and the
 * bounds of duration histograms, the HTTP status table and error
 * reporting. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <time.h>

#include "core.h"

bool crest__strcaseeq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)b[i];
        if (x >= 'A' && x <= 'Z')
            x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = (unsigned char)(y + 32);
        if (x != y)
            return false;
    }
    return true;
}

int crest__parse_int(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 20)
        return -1;
    size_t i = 0;
    bool neg = false;
    if (s[0] == '-' || s[0] == '+') {
        neg = s[0] == '-';
        i = 1;
        if (len == 1)
            return -1;
    }
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (uint64_t)INT64_MAX + 1)
            return -1;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return -1;
        *out = (int64_t)v;
    }
    return 0;
}

int crest__parse_double(const char *s, size_t len, double *out)
{
    char tmp[64];
    if (len == 0 || len >= sizeof tmp)
        return -1;
    memcpy(tmp, s, len);
    tmp[len] = 0;
    /* strtod accepts "nan", "inf", hex and leading spaces: JSON-ish numbers only. */
    for (size_t i = 0; i < len; i++) {
        char c = tmp[i];
        if (!((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E'))
            return -1;
    }
    char *end;
    errno = 0;
    double v = strtod(tmp, &end);
    /* ERANGE on underflow still gives the nearest subnormal: accept it; a
     * value that vanishes to 0, or overflows to infinity, is refused. */
    if (end != tmp + len || !isfinite(v) || (errno == ERANGE && v == 0))
        return -1;
    *out = v;
    return 0;
}

int crest__parse_bool(const char *s, size_t len, bool *out)
{
    static const char *const yes[] = {"true", "1", "yes", "on"};
    static const char *const no[] = {"false", "0", "no", "off"};
    for (size_t i = 0; i < CREST_ARRAY_LEN(yes); i++) {
        if (crest__strcaseeq(s, len, yes[i], strlen(yes[i]))) {
            *out = true;
            return 0;
        }
        if (crest__strcaseeq(s, len, no[i], strlen(no[i]))) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

const char *crest__article(const char *word)
{
    /* A u read "you" (uuid, unique, usual) takes "a" ("an unsigned"
     * does not); every other vowel letter starts a vowel sound in the
     * names crest writes. */
    static const char *const you[] = {"uu", "uni", "use", "usu", "uti"};
    if (!word || !word[0] || !strchr("aeiouAEIOU", word[0]))
        return "a";
    for (size_t i = 0; i < CREST_ARRAY_LEN(you); i++)
        if (!strncasecmp(word, you[i], strlen(you[i])))
            return "a";
    return "an";
}

/* The value of a base64url character, or -1. */
static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '-' ? 62 : c == '_' ? 63 : -1;
}

int crest__base64url_decode(const char *in, size_t len, unsigned char *out, size_t *outlen)
{
    if (len % 4 == 1)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) /* the last character's unused bits must be zero: one text per value */
        return -1;
    *outlen = n;
    return 0;
}

uint64_t crest__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

const uint64_t crest__duration_bounds_us[CREST__DURATION_NBOUNDS] = {
    250, 500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

unsigned crest__duration_bucket(uint64_t us)
{
    unsigned i = 0;
    while (i < CREST__DURATION_NBOUNDS && us > crest__duration_bounds_us[i])
        i++;
    return i;
}

void crest__format_time(char *buf, size_t cap)
{
    /* The seconds part changes once a second: cache it per thread. */
    static __thread time_t cached_sec = -1;
    static __thread char cached[80];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != cached_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        snprintf(cached, sizeof cached, "%04d-%02d-%02dT%02d:%02d:%02d", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
        cached_sec = ts.tv_sec;
    }
    if (cap < 28) {
        if (cap)
            buf[0] = 0;
        return;
    }
    memcpy(buf, cached, 19);
    long us = ts.tv_nsec / 1000;
    buf[19] = '.';
    for (int i = 25; i >= 20; i--) {
        buf[i] = (char)('0' + us % 10);
        us /= 10;
    }
    buf[26] = 'Z';
    buf[27] = 0;
}

const char *crest__status_text(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 417: return "Expectation Failed";
    case 422: return "Unprocessable Content";
    case 428: return "Precondition Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 507: return "Insufficient Storage";
    default: return "Unknown";
    }
}

int crest__error_set(crest_error *err, int code, const char *file, int line, const char *fmt, ...)
{
    if (!err)
        return code;
    err->code = code;
    snprintf(err->file, sizeof err->file, "%s", file ? file : "");
    err->line = line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return code;
}

void crest_error_print(const crest_error *err, const char *prefix)
{
    if (!err)
        return;
    if (err->file[0] && err->line > 0)
        fprintf(stderr, "%s%s%s:%d: %s\n", prefix ? prefix : "", prefix ? ": " : "", err->file, err->line, err->msg);
    else if (err->file[0])
        fprintf(stderr, "%s%s%s: %s\n", prefix ? prefix : "", prefix ? ": " : "", err->file, err->msg);
    else
        fprintf(stderr, "%s%s%s\n", prefix ? prefix : "", prefix ? ": " : "", err->msg);
}

int crest__uuid_norm(const char *s, size_t len, char out[37])
{
    if (len != 36)
        return -1;
    for (size_t i = 0; i < 36; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return -1;
        } else if (c >= 'A' && c <= 'F') {
            c = (char)(c - 'A' + 'a');
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return -1;
        }
        out[i] = c;
    }
    out[36] = 0;
    return 0;
}
