/* openapi.h — helpers shared by the OpenAPI generator (openapi.c) and the
 * REST modules' part of it (rest/module.c): one place for how a type, a
 * nullable value, a reference and a problem response are written, in 3.1
 * and in 3.0.3. Internal: not installed. */
#ifndef CREST_OPENAPI_H
#define CREST_OPENAPI_H

#include <stdbool.h>

#include "crest/json.h"

#include "../req/req.h"

typedef struct crest__oa {
    crest_json *w;
    bool v30;                 /* write OpenAPI 3.0.3 instead of 3.1 */
    bool custom_errors;       /* problems may come as the module's own JSON (error_fn) */
    struct crest_app *app;
} crest__oa;

/* Members "type": t (and null when nullable), inside an open schema object. */
void crest__oa_type(crest__oa *o, const char *type, bool nullable);
/* A whole schema value {"$ref": "#/components/schemas/<name>"}. */
void crest__oa_ref(crest__oa *o, const char *name);
/* Members of a "responses" object: one problem+json response per status (0-terminated). */
void crest__oa_problems(crest__oa *o, const int *statuses);
/* Members "401" and "403" when the app has auth and the endpoint is not public. */
struct crest__endpoint;
void crest__oa_auth_responses(crest__oa *o, const struct crest__endpoint *ep);
/* Members "4XX" and "5XX": any problem (custom_body: any JSON body, for a
 * module whose error_fn writes its own). */
void crest__oa_ranges(crest__oa *o, bool custom_body);
/* Member "content": {"application/json": {"schema": <ref, or any (NULL)>}}. */
void crest__oa_json_content(crest__oa *o, const char *ref);
/* "200": description, a string body of each of the ntypes media types. */
void crest__oa_text_ok(crest__oa *o, const char *description, const char *const *types, size_t ntypes);
/* The same member around a schema the caller writes between the two calls. */
void crest__oa_json_schema_begin(crest__oa *o);
void crest__oa_json_schema_end(crest__oa *o);
/* Member "requestBody": {"required": required, "content": ... "schema":
 * and its end: the caller writes the JSON body's schema between the two. */
void crest__oa_body_begin(crest__oa *o, bool required);
void crest__oa_body_end(crest__oa *o);
/* A response object: a description and a JSON body of schema `ref` (NULL:
 * any JSON value). */
void crest__oa_json_response(crest__oa *o, const char *description, const char *ref);

/* A bound: an integer when it is one (1, not 1.0). */
void crest__oa_number(crest__oa *o, double v);

/* ---- docs_dir.c ---- */
/* The folder holding the docs page's files (swagger-ui-dist), or NULL when no
 * copy is found: env CREST_SWAGGER_UI if set (then only it), else
 * ../share/crest/swagger-ui next to the running program or to libcrest.so,
 * else the build folder, else the configured install folder. A static string,
 * valid for the life of the process; thread-safe. */
const char *crest__docs_ui_dir(void);
/* The detail of the 503 docs_unavailable problem: how to get the files. */
const char *crest__docs_ui_missing(void);

/* Writes the whole document of the app. */
struct crest_app;
int crest__openapi_write(struct crest_app *app, crest_json *w, bool v30);

/* ---- module.c ---- */
struct crest__endpoint;
struct crest__mfield;
/* The schema of a field (a model's, or an SQL endpoint's body parameter):
 * type, format, bounds, length, pattern, allowed values; its default when
 * with_default. f is borrowed for the call. */
void crest__oa_field(crest__oa *o, const struct crest__mfield *f, bool nullable, bool with_default);
/* Component schemas of every model and module (members of "schemas"). */
void crest__rest_openapi_schemas(struct crest_app *app, crest__oa *o);
/* For a REST route: writes "requestBody" (when it has one) and "responses"
 * members of the operation, and its operationId; false for other endpoints. */
bool crest__rest_openapi_operation(const struct crest__endpoint *ep, crest__oa *o);
/* Writes the schema of a REST route's parameter when the module knows better
 * than the spec (the id is an integer; a group field one of a list). */
bool crest__rest_param_schema(const struct crest__endpoint *ep, const char *param, crest__oa *o);
/* Whether a REST route's query parameter is a comma-separated list whose
 * schema is an array (style form, explode false): include. */
bool crest__rest_param_list(const struct crest__endpoint *ep, const char *param);
/* The description of a module's tag ("REST module over model Task"), or NULL. */
const char *crest__rest_tag_description(struct crest_app *app, const char *tag);
/* The description of a REST route's query parameter (where, sort_by...) with
 * its allowed fields, or NULL. Arena-free: a static or endpoint-owned string. */
const char *crest__rest_param_description(const struct crest__endpoint *ep, const char *param);

/* openapi.c: /openapi.json, /docs and its files. */
int crest__openapi_add_builtins(crest_app *app, crest_error *err);
/* Frees the docs page's files read by /docs/{file} (NULL is fine). */
void crest__docs_cache_free(struct crest__docs_cache *dc);

#endif
