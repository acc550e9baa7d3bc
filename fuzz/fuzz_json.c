/* fuzz_json.c — bytes into the JSON reader (src/json/reader.c: depth scan,
 * then jansson). A document that parses is written back with the streaming
 * writer and must parse again to an equal value, and writing that value
 * again must give the same bytes. The raw bytes are also written as one
 * JSON string, which must always come out as valid JSON (escapes, invalid
 * UTF-8 replaced). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DEPTH 64 /* the default limits.json_depth */

static void die(const char *what, const char *s, size_t n)
{
    fprintf(stderr, "fuzz_json: %s: [%.*s]\n", what, (int)(n < 2000 ? n : 2000), s);
    abort();
}

static void round_trip(const char *in, size_t size)
{
    char err[256];
    json_t *v = crest__json_parse(in, size, DEPTH, err, sizeof err);
    if (!v)
        return;
    crest_json w;
    crest_json_init(&w, 0);
    crest__json_write_value(&w, v);
    if (crest_json_error(&w) || w.depth != 0)
        die("the writer failed on a parsed document", in, size);
    size_t len;
    const char *out = crest_json_data(&w, &len);
    json_t *back = crest__json_parse(out, len, DEPTH, err, sizeof err);
    if (!back) {
        fprintf(stderr, "fuzz_json: re-parse failed: %s\n", err);
        die("writer output", out, len);
    }
    if (!json_equal(v, back))
        die("the round trip changed the value; writer output", out, len);
    /* Writing the re-parsed value gives the same text. */
    crest_json w2;
    crest_json_init(&w2, 0);
    crest__json_write_value(&w2, back);
    size_t len2;
    const char *out2 = crest_json_data(&w2, &len2);
    if (len2 != len || memcmp(out, out2, len) != 0)
        die("second write differs from the first", out2, len2);
    crest_json_dispose(&w2);
    crest_json_dispose(&w);
    json_decref(back);
    json_decref(v);
}

static void as_string(const char *in, size_t size)
{
    crest_json w;
    crest_json_init(&w, 0);
    crest_json_object_begin(&w);
    crest_json_key(&w, "s"); /* (jansson refuses NUL in keys even with JSON_ALLOW_NUL) */
    crest_json_strn(&w, in, size);
    crest_json_object_end(&w);
    if (crest_json_error(&w))
        die("the writer failed on a string", in, size);
    size_t len;
    const char *out = crest_json_data(&w, &len);
    json_error_t e;
    /* jansson refuses invalid UTF-8; NUL arrives escaped as \u0000. */
    json_t *v = json_loadb(out, len, JSON_ALLOW_NUL, &e);
    if (!v) {
        fprintf(stderr, "fuzz_json: string output invalid: %s\n", e.text);
        die("writer output", out, len);
    }
    /* Valid UTF-8 input comes back byte for byte; otherwise only grows
     * (each bad byte becomes the 3-byte U+FFFD). */
    json_t *val = json_object_iter_value(json_object_iter(v));
    if (!json_is_string(val))
        die("not a string", out, len);
    size_t vl = json_string_length(val);
    json_t *valid = json_stringn(in, size); /* NULL when in is not valid UTF-8 */
    if (valid) {
        if (vl != size || memcmp(json_string_value(val), in, size) != 0)
            die("valid UTF-8 did not come back unchanged", out, len);
        json_decref(valid);
    } else if (vl < size) {
        die("the string shrank", out, len);
    }
    json_decref(v);
    crest_json_dispose(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    round_trip(in, size);
    as_string(in, size);
    return 0;
}
