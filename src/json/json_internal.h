/* json_internal.h — the JSON reader and helpers shared by the stages. */
#ifndef CREST_JSON_INTERNAL_H
#define CREST_JSON_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>

#include "crest/json.h"

/* 1 when no array/object in s nests deeper than max_depth. */
int crest__json_depth_ok(const char *s, size_t len, unsigned max_depth);
/* Parses any JSON value; NULL with a message in errbuf on error. The caller
 * owns the result (json_decref). Duplicate keys are an error. */
json_t *crest__json_parse(const char *s, size_t len, unsigned max_depth, char *errbuf, size_t errcap);
/* Writes a jansson value through the writer. */
void crest__json_write_value(crest_json *w, const json_t *v);

#endif
