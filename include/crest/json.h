/* crest/json.h — the streaming JSON writer every response body goes through.
 *
 * The writer appends to a growable buffer with a hard size cap; commas and
 * nesting are tracked for the caller, strings are escaped (every control
 * character, and invalid UTF-8 replaced by U+FFFD), and doubles are printed
 * with the fewest digits that read back to the same value. */
#ifndef CREST_JSON_H
#define CREST_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Nesting the writer tracks; deeper output sets CREST_JSON_EDEPTH. */
#define CREST_JSON_MAX_DEPTH 128

/* A writer. Caller-allocated (crest_json_init/_dispose) or lent by a response
 * (crest_res_json). Fields are private; use the functions below. */
typedef struct crest_json {
    char *buf;       /* owned: malloc'd output, not NUL-terminated */
    size_t len, cap;
    size_t limit;    /* output larger than this sets CREST_JSON_ETOOBIG */
    int err;         /* first error, sticky; 0 when fine */
    int depth;
    uint8_t first[CREST_JSON_MAX_DEPTH]; /* 1 while the container has no element yet */
    uint8_t after_key;
} crest_json;

enum {
    CREST_JSON_ENOMEM = -1,
    CREST_JSON_ETOOBIG = -2,
    CREST_JSON_EDEPTH = -3,
    CREST_JSON_ESTATE = -4 /* end without begin, value where a key is due */
};

/* Prepares *w to write at most `limit` bytes (0: no cap). Allocates nothing yet. */
void crest_json_init(crest_json *w, size_t limit);
/* Frees the buffer. *w may be initialised again afterwards. */
void crest_json_dispose(crest_json *w);
/* Forgets the output, keeps the buffer. */
void crest_json_reset(crest_json *w);

/* The output so far: borrowed, valid until the next write or dispose. */
const char *crest_json_data(const crest_json *w, size_t *len);
/* 0, or the first error any call met (calls after an error do nothing). */
int crest_json_error(const crest_json *w);

void crest_json_object_begin(crest_json *w);
void crest_json_object_end(crest_json *w);
void crest_json_array_begin(crest_json *w);
void crest_json_array_end(crest_json *w);
/* An object key; the next call writes its value. */
void crest_json_key(crest_json *w, const char *key);
void crest_json_keyn(crest_json *w, const char *key, size_t len);
void crest_json_str(crest_json *w, const char *s);       /* NULL writes null */
void crest_json_strn(crest_json *w, const char *s, size_t len);
void crest_json_int(crest_json *w, int64_t v);
void crest_json_double(crest_json *w, double v);          /* NaN and infinities write null */
void crest_json_bool(crest_json *w, bool v);
void crest_json_null(crest_json *w);
/* Writes already-valid JSON text as one value; the caller vouches for it. */
void crest_json_raw(crest_json *w, const char *json, size_t len);

/* Writes `s` as a JSON string body (no quotes) into dst, which must hold
 * 6*len bytes at least; returns the bytes written. Exposed for tests and for
 * code that builds JSON outside a writer. */
size_t crest_json_escape(char *dst, const char *s, size_t len);

#ifdef __cplusplus
}
#endif
#endif
