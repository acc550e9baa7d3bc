/* ytree.h — an app file (YAML, or JSON which is YAML) as a small tree of
 * maps, sequences and scalars that remembers each node's line, so every
 * error can say where it is. Built with libyaml's event API inside limits on
 * size, depth and node count; aliases are refused (no billion laughs). */
#ifndef CREST_YTREE_H
#define CREST_YTREE_H

#include <stdbool.h>
#include <stddef.h>

#include "crest/crest.h"

typedef enum { Y_SCALAR, Y_SEQ, Y_MAP } ykind;

typedef struct ynode ynode;
struct ynode {
    ykind kind;
    int line;          /* 1-based */
    char *str;         /* scalar text, NUL-terminated (owned) */
    size_t len;
    bool plain;        /* an unquoted scalar: may be a number, bool or null */
    ynode **kids;      /* seq: items; map: key, value, key, value... (owned) */
    size_t n;          /* seq: items; map: pairs */
};

#define YTREE_MAX_BYTES (4u * 1024 * 1024)
#define YTREE_MAX_DEPTH 64
#define YTREE_MAX_NODES 200000

/* Parses text; on error returns NULL and fills err (file = name). */
ynode *crest__ytree_parse(const char *name, const char *text, size_t len, crest_error *err);
void crest__ytree_free(ynode *n);
/* The value of key in a map, or NULL. */
ynode *crest__ytree_get(const ynode *map, const char *key);
/* A plain scalar that YAML reads as null ("~", "null", "" ). */
bool crest__ytree_is_null(const ynode *n);

#endif
