/* router.h — method + path → endpoint, over a tree of path segments:
 * literal children first, then one {param} child, with backtracking so a
 * literal that leads nowhere still lets a param match (radix routers such as
 * httprouter and h2o's pathconf do the same). */
#ifndef CREST_ROUTER_H
#define CREST_ROUTER_H

#include "../core/core.h"

#define CREST_ROUTER_MAX_PARAMS 16
#define CREST_ROUTER_MAX_SEGMENTS 64
#define CREST_METHOD_COUNT 8 /* crest_method values are 1..7 */

typedef struct crest__router crest__router;

/* What a route leads to. Owned by the router (names copied). */
typedef struct crest__route {
    crest_method method;
    void *target;          /* borrowed: the caller's endpoint record */
    unsigned nparams;
    char *param_names[CREST_ROUTER_MAX_PARAMS];
} crest__route;

typedef struct crest__match {
    const crest__route *route;
    unsigned nparams;
    crest__str values[CREST_ROUTER_MAX_PARAMS]; /* decoded, borrowed from the segments given */
    unsigned allow;        /* 405/OPTIONS: bit (1 << method) per method the path has */
} crest__match;

crest__router *crest__router_new(void);
void crest__router_free(crest__router *r);
/* Adds method + pattern. Patterns start with '/', segments are literal or
 * "{name}". CREST_EEXIST when taken, CREST_EINVAL for a bad pattern. */
int crest__router_add(crest__router *r, crest_method m, const char *pattern, void *target, crest_error *err);

/* Whether pattern can be a route: 0, or -1 with msg (cap bytes) saying what
 * would make it unreachable and how to write it instead: a '?' (the query
 * string is never part of the path), a '#' (never sent), a '%' escape (paths
 * are matched decoded), a space or control character, or an Inmanta/Flask
 * style "<id>" segment (crest writes "{id}"). */
int crest__path_check(const char *pattern, char *msg, size_t cap);

/* Splits a raw path (no query) into percent-decoded segments, in place in
 * `buf` (a writable copy of the path, NUL-terminated). Returns the number of
 * segments, or -1 for bad encoding (a bad %XX or a decoded NUL), -2 for too
 * many segments. A path "/" has one empty segment. */
int crest__path_split(char *buf, crest__str *segs, unsigned max);

/* 200: found (m->route set); 404: no such path; 405: path exists without
 * this method (m->allow set). HEAD falls back to GET. */
int crest__router_match(const crest__router *r, crest_method method, const crest__str *segs, unsigned nsegs,
                        crest__match *m);

/* Percent-decodes s[0..len) into dst (at least len bytes); '+' becomes a
 * space when plus_is_space. Returns the decoded length or -1 for a bad
 * escape. */
long crest__percent_decode(char *dst, const char *s, size_t len, bool plus_is_space);

#endif
