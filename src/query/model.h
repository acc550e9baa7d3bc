/* model.h — a model as the query stage reads it: its fields with their
 * quoted names, and the three model functions the where parser calls. The
 * models are built and checked in src/rest/model.c (which defines these
 * functions) until they get a stage of their own. Internal: not installed. */
#ifndef CREST_QUERY_MODEL_H
#define CREST_QUERY_MODEL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include "../core/core.h"
#include "../core/value.h"
#include "crest/rest.h"

#define CREST_MODEL_MAX_FIELDS 200

typedef struct crest__mfield {
    crest_field f;            /* the definition; strings borrowed from it */
    unsigned idx;             /* position in model->fields; 0 is id */
    char *qname;              /* quoted identifier (crest__quote_ident: the same in every dialect), owned */
    pcre2_code *re;           /* compiled pattern, owned */
    json_t *defv;             /* the parsed default, owned; NULL: none */
    bool def_now;             /* default: now */
} crest__mfield;

typedef struct crest__model {
    const crest_model_def *def;
    char *name, *table;       /* owned */
    char *qtable;             /* quoted, owned */
    crest__mfield *fields;    /* fields[0] is the implicit id */
    unsigned nfields;
} crest__model;

/* The field called `name`, or NULL. Borrowed from m. */
const crest__mfield *crest__model_field(const crest__model *m, const char *name);
/* Whether clients may see the field at all (rest: rw or read). */
static inline bool crest__field_readable(const crest__mfield *f)
{
    return f->f.rest == CREST_REST_RW || f->f.rest == CREST_REST_READ;
}
/* A where operand of a field's type ($lt: 5), as a value of the field's
 * meaning (a bool field's is CREST__V_BOOL, a date's CREST__V_DATE...); JSON
 * null gives CREST__V_NULL. Returns NULL, or a message ("must be an
 * integer"). Text points into v or into the arena a. */
const char *crest__field_operand(crest__arena *a, const crest__mfield *f, const json_t *v, crest__val *out);

#endif
