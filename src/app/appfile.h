/* appfile.h — what the parts of the app file loader share (appfile.c,
 * appfile_settings.c, appfile_sql.c, appfile_rest.c): the loader's state and
 * the readers of typed values. Every reader fails with "file:line: where:
 * what is wrong" in L->err (the line of the node given) and returns
 * CREST_ECONFIG, or CREST_ENOMEM. Internal: not installed. */
#ifndef CREST_APPFILE_H
#define CREST_APPFILE_H

#include "../sqlep/sqlep.h"
#include "ytree.h"

typedef struct crest__loader {
    crest_app *app;
    const char *name; /* the file, for messages */
    crest_error *err;
} crest__loader;

/* Fills L->err with the line of n (0 when n is NULL); returns CREST_ECONFIG. */
int crest__af_bad(crest__loader *L, const ynode *n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int crest__af_want_scalar(crest__loader *L, const ynode *n, const char *where);
int crest__af_want_map(crest__loader *L, const ynode *n, const char *where);
/* *out is borrowed from the tree (valid while the file is being loaded). */
int crest__af_get_string(crest__loader *L, const ynode *n, const char *where, const char **out);
int crest__af_get_int(crest__loader *L, const ynode *n, const char *where, int64_t lo, int64_t hi, int64_t *out);
int crest__af_get_bool(crest__loader *L, const ynode *n, const char *where, bool *out);
int crest__af_get_number(crest__loader *L, const ynode *n, const char *where, double *out);
/* "8KiB", "1 MiB", "1048576" → bytes. */
int crest__af_get_size(crest__loader *L, const ynode *n, const char *where, size_t *out);
/* "10s", "500ms", "2m", "30000" (ms) → milliseconds, at most a day. */
int crest__af_get_duration(crest__loader *L, const ynode *n, const char *where, unsigned *out);
/* The duration text (ms, s, m or min, h, d; a bare number is ms) into
 * *ms, any length: the parser of crest__af_get_duration and of the longer
 * periods (a change feed's retention, idempotency keys' expiry). 0; -1 not
 * a number; -2 an unknown unit (*unit: where it starts). */
int crest__af_duration_ms(const char *text, double *ms, const char **unit);
/* Fails on any key of map not in allowed (NULL-terminated). */
int crest__af_check_keys(crest__loader *L, const ynode *map, const char *where, const char *const *allowed);

/* App-lifetime memory (freed with the app) for definitions the C API
 * borrows: the conf arena, NULL when out of memory. */
crest__arena *crest__af_conf_arena(crest__loader *L);
char *crest__af_conf_strdup(crest__loader *L, const char *s);
/* j (a reference this call takes) as compact JSON text in the conf arena. */
int crest__af_conf_json(crest__loader *L, json_t *j, const char **out);
/* Names joined with commas, in the conf arena. */
int crest__af_conf_join(crest__loader *L, const char *const *names, const char **out);
/* A YAML node as JSON (a new reference, NULL when out of memory): plain
 * scalars may be null, bools or numbers; quoted ones are strings. */
json_t *crest__af_ynode_json(const ynode *n);
/* A list of names (or one name) → NULL-terminated array in the conf arena. */
int crest__af_get_names(crest__loader *L, const ynode *n, const char *where, const char *const **out);
/* public | authenticated | a list of permissions (→ "a,b"), in the conf arena. */
int crest__af_get_permission(crest__loader *L, const ynode *n, const char *where, const char **out);

/* The node of a model's or a module's map (base) that an error of the C API
 * is about, from its message: "module m: query_allowed_fields: 'x' is not a
 * field" → the entry x of query_allowed_fields; "model M: field f: ..." → the
 * field f. fallback when the message names nothing found. */
const ynode *crest__af_locate(const ynode *base, const char *msg, const ynode *fallback);

/* The sections, in the order load_root calls them. */
int crest__af_load_settings(crest__loader *L, const ynode *root); /* appfile_settings.c */
int crest__af_load_model(crest__loader *L, const ynode *key, const ynode *v);  /* appfile_rest.c */
int crest__af_load_module(crest__loader *L, const ynode *key, const ynode *v); /* appfile_rest.c */
/* What a group of SQL endpoints (`groups:`) gives each of its endpoints,
 * unless the endpoint says otherwise; strings borrowed. */
typedef struct crest__af_group {
    const char *prefix;     /* put before each path; NULL: none */
    const char *tag;
    const char *permission; /* in the conf arena */
    const char *rate_limit;
} crest__af_group;
/* One SQL endpoint; where names it in messages ("endpoints[2]"), g is its
 * group or NULL. */
int crest__af_load_endpoint(crest__loader *L, const ynode *e, const char *where, const crest__af_group *g);
int crest__af_load_group(crest__loader *L, const ynode *key, const ynode *v); /* appfile_sql.c */

#endif
