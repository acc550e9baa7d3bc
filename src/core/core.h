/* core.h — internal building blocks shared by every stage: the request arena,
 * a bounded growable buffer, string slices, clocks and the error table.
 * Internal: not installed, not part of the public API. */
#ifndef CREST_CORE_H
#define CREST_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "crest/crest.h"

#define CREST_UNUSED(x) ((void)(x))
#define CREST_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- arena: one per request; everything it hands out dies at reset ---- */

typedef struct crest__arena_chunk crest__arena_chunk;
typedef struct crest__arena_cleanup crest__arena_cleanup;

typedef struct crest__arena {
    crest__arena_chunk *head;      /* newest chunk first; the last one is kept on reset */
    crest__arena_cleanup *cleanups;
    size_t total;                  /* bytes of chunks held */
    size_t limit;                  /* allocation past this fails (0: none) */
    size_t chunk_size;
} crest__arena;

void crest__arena_init(crest__arena *a, size_t chunk_size, size_t limit);
/* Runs the cleanups (newest first) and frees every chunk. */
void crest__arena_dispose(crest__arena *a);
/* Runs the cleanups, frees all chunks but one, keeps that one for reuse.
 * Returns the bytes given back to malloc. */
size_t crest__arena_reset(crest__arena *a);
/* 16-byte aligned memory, or NULL when out of memory or over the limit. */
void *crest__arena_alloc(crest__arena *a, size_t n);
void *crest__arena_calloc(crest__arena *a, size_t count, size_t size);
/* A NUL-terminated copy of s[0..len), or NULL. */
char *crest__arena_strndup(crest__arena *a, const char *s, size_t len);
char *crest__arena_strdup(crest__arena *a, const char *s);
char *crest__arena_printf(crest__arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Runs fn(p) at the next reset or dispose. Returns -1 (and does not run fn
 * later) when out of memory. */
int crest__arena_defer(crest__arena *a, void (*fn)(void *), void *p);

/* ---- bounded growable byte buffer (malloc'd) ---- */

typedef struct crest__buf {
    char *ptr;
    size_t len, cap, limit; /* limit 0: none */
} crest__buf;

void crest__buf_init(crest__buf *b, size_t limit);
void crest__buf_dispose(crest__buf *b);
/* 0, CREST_ENOMEM, or CREST_EINVAL when the limit would be passed. */
int crest__buf_reserve(crest__buf *b, size_t extra);
int crest__buf_append(crest__buf *b, const void *p, size_t n);
int crest__buf_appendf(crest__buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int crest__buf_appends(crest__buf *b, const char *s) { return crest__buf_append(b, s, strlen(s)); }
/* Drops the first n bytes. */
void crest__buf_consume(crest__buf *b, size_t n);

/* ---- slices ---- */

typedef struct crest__str {
    const char *ptr;
    size_t len;
} crest__str;

static inline bool crest__str_eq(crest__str s, const char *c)
{
    size_t n = strlen(c);
    return s.len == n && memcmp(s.ptr, c, n) == 0;
}
bool crest__strcaseeq(const char *a, size_t alen, const char *b, size_t blen);

/* ---- numbers from text (whole string must match) ---- */
int crest__parse_int(const char *s, size_t len, int64_t *out);
/* The value of the n decimal digits at s (n small: a date's fields), or -1
 * when one is not a digit. */
static inline int crest__digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}
int crest__parse_double(const char *s, size_t len, double *out);
int crest__parse_bool(const char *s, size_t len, bool *out);

/* The indefinite article for word (a type's name in a message: "an
 * INTEGER", "a bigint", "an int", "a uuid"): "an" before a vowel sound,
 * "a" otherwise (and for NULL or ""). A static string. */
const char *crest__article(const char *word);

/* A UUID in RFC 9562's text form (8-4-4-4-12 hex digits, either case) →
 * its canonical lower-case form in out (37 bytes with the NUL). 0, or -1
 * when s[0..len) is anything else. */
int crest__uuid_norm(const char *s, size_t len, char out[37]);
/* What a field or parameter that fails crest__uuid_norm is told. */
#define CREST__UUID_INVALID "must be a UUID (8-4-4-4-12 hex digits)"

/* ---- base64url (RFC 4648 §5, no padding, as JWTs use it) ---- */
/* Decodes in[0..len) into out, which has room for len * 3 / 4 bytes; sets
 * *outlen. -1 on a character outside the alphabet (padding included), a
 * length that no encoding has (len % 4 == 1), or non-zero unused bits. */
int crest__base64url_decode(const char *in, size_t len, unsigned char *out, size_t *outlen);

/* ---- clocks ---- */
uint64_t crest__now_us(void);  /* monotonic */
/* The bounds of crest's duration histograms (/metrics: request durations,
 * the database pool's acquire waits), in µs, ascending; and the bucket a
 * duration falls in: the first bound it does not pass, or
 * CREST__DURATION_NBOUNDS above every bound. */
#define CREST__DURATION_NBOUNDS 15
extern const uint64_t crest__duration_bounds_us[CREST__DURATION_NBOUNDS];
unsigned crest__duration_bucket(uint64_t us);
/* RFC 3339 UTC with microseconds of the wall clock into buf (>= 32 bytes). */
void crest__format_time(char *buf, size_t cap);

/* ---- errors: stable codes, one table ---- */

/* The table of codes, their statuses and default details: errors.h. */
#include "errors.h"

/* The reason phrase for an HTTP status ("Not Found"), "Unknown" otherwise. */
const char *crest__status_text(int status);

/* Fills err (may be NULL) and returns code. */
int crest__error_set(crest_error *err, int code, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#endif
