/* reader.c — reads request bodies with jansson inside crest's limits: the
 * size was capped by the HTTP layer; nesting depth is checked here with a
 * cheap scan before jansson builds anything, so a deep body costs nothing. */
#include <stdio.h>
#include <string.h>

#include "json_internal.h"

int crest__json_depth_ok(const char *s, size_t len, unsigned max_depth)
{
    unsigned depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
            continue;
        }
        if (c == '"')
            in_str = true;
        else if (c == '[' || c == '{') {
            if (++depth > max_depth)
                return 0;
        } else if ((c == ']' || c == '}') && depth > 0)
            depth--;
    }
    return 1;
}

json_t *crest__json_parse(const char *s, size_t len, unsigned max_depth, char *errbuf, size_t errcap)
{
    if (!crest__json_depth_ok(s, len, max_depth)) {
        snprintf(errbuf, errcap, "JSON nesting is deeper than %u levels", max_depth);
        return NULL;
    }
    json_error_t e;
    json_t *v = json_loadb(s, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &e);
    if (!v) {
        /* jansson names its own flag for \u0000; the client is told what is wrong. */
        const char *why = strstr(e.text, "JSON_ALLOW_NUL") ? "\\u0000 (a NUL character) is not allowed in strings"
                                                           : e.text;
        snprintf(errbuf, errcap, "invalid JSON at line %d, column %d: %s", e.line, e.column, why);
        return NULL;
    }
    return v;
}

void crest__json_write_value(crest_json *w, const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        json_t *x;
        crest_json_object_begin(w);
        json_object_foreach((json_t *)v, k, x) {
            crest_json_key(w, k);
            crest__json_write_value(w, x);
        }
        crest_json_object_end(w);
        break;
    }
    case JSON_ARRAY: {
        size_t i;
        json_t *x;
        crest_json_array_begin(w);
        json_array_foreach(v, i, x) crest__json_write_value(w, x);
        crest_json_array_end(w);
        break;
    }
    case JSON_STRING: crest_json_strn(w, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: crest_json_int(w, (int64_t)json_integer_value(v)); break;
    case JSON_REAL: crest_json_double(w, json_real_value(v)); break;
    case JSON_TRUE: crest_json_bool(w, true); break;
    case JSON_FALSE: crest_json_bool(w, false); break;
    case JSON_NULL: crest_json_null(w); break;
    }
}
