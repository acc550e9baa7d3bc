/* model.h — a model as the query stage reads it: its fields with their
 * quoted names, and how a field checks a value (field.c: the one validator
 * of REST bodies, SQL endpoint bodies and where operands). The models are
 * built in src/rest/model.c (which defines crest__model_field) until they
 * get a stage of their own. Internal: not installed. */
#ifndef CREST_QUERY_MODEL_H
#define CREST_QUERY_MODEL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include "../core/core.h"
#include "../core/value.h"
#include "crest/rest.h"

#define CREST_MODEL_MAX_FIELDS 200
#define CREST_EMBED_MAX_DEFAULT 100    /* has_many rows embedded per parent row */

typedef struct crest__model crest__model;
typedef struct crest__rel crest__rel;

typedef struct crest__mfield {
    crest_field f;            /* the definition; strings borrowed from it */
    unsigned idx;             /* position in model->fields; 0 is id */
    char *qname;              /* quoted identifier (crest__quote_ident: the same in every dialect), owned */
    pcre2_code *re;           /* compiled pattern, owned */
    json_t *defv;             /* the parsed default, owned; NULL: none */
    bool def_now;             /* default: now */
    char *refname;            /* a CREST_F_REF field's "<relation>_id", owned (f.name points to it) */
    const crest__rel *ref;    /* a CREST_F_REF field's relation (f.type is then CREST_F_INT
                                 and f.name "<relation>_id"); NULL: a plain field */
} crest__mfield;

/* A relation of a model to another (crest_field.ref_model / has_many).
 * Declared with the model; the models it names are found once every model
 * is added (crest__app_link_models), and stay borrowed from the app. */
typedef enum { CREST__REL_BELONGS_TO = 1, CREST__REL_HAS_MANY, CREST__REL_THROUGH } crest__relkind;
struct crest__rel {
    const char *name;         /* "owner", "computers" (borrowed from def) */
    crest__relkind kind;
    const crest_field *def;   /* the declaration (borrowed) */
    crest__model *owner;      /* the model declaring it */
    crest__model *target;     /* the related model; NULL until linked */
    /* The foreign key column that makes the relation: belongs_to, this
     * model's (owner_id); has_many, the target's pointing here; through,
     * the join model's pointing here. */
    const crest__mfield *fk;
    crest__model *join;       /* through: the join model */
    const crest__mfield *join_fk; /* through: the join model's column pointing to target */
    crest__rel *join_rows;        /* through: the target's rows of the join model (a has_many of
                                     target, via join_fk), for "linked to this parent"; owned */
    unsigned embed_max;       /* has_many, through: rows embedded per parent */
};

struct crest__model {
    const crest_model_def *def;
    char *name, *table;       /* owned */
    char *qtable;             /* quoted, owned */
    crest__mfield *fields;    /* fields[0] is the implicit id */
    unsigned nfields;
    crest__rel *rels;         /* owned; belongs_to first, in field order */
    unsigned nrels;
    bool linked;              /* rels' models found */
};

/* The relation called `name`, or NULL. Borrowed from m. */
const crest__rel *crest__model_rel(const crest__model *m, const char *name);

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
/* Checks a JSON value against a field (type, bounds, length, allowed
 * values, pattern) and converts it for binding; NULL or JSON null gives
 * CREST__V_NULL, refused when the field is required. Returns NULL when
 * fine, else a message ("must be >= 0"). Text points into v or into a. */
const char *crest__field_value(crest__arena *a, const crest__mfield *f, const json_t *v, crest__val *out);
/* The value a write gives f from its body: v when the body names it (NULL:
 * it does not); when it does not and create is set, f's default (declared,
 * or `now`), else CREST__V_NULL, or "is required". *set tells whether out
 * holds a value to write (false: absent on an update, left as it is).
 * Returns NULL or the message for the field. */
const char *crest__field_input(crest__arena *a, const crest__mfield *f, const json_t *v, bool create, crest__val *out,
                               bool *set);
/* The current time as stored: "YYYY-MM-DDTHH:MM:SS.sssZ". buf >= 32 bytes. */
void crest__now_stored(char *buf, size_t cap);
/* RFC 3339 → the stored UTC form; -1 when not a valid date-time. */
int crest__datetime_norm(const char *s, size_t len, char *out, size_t cap);
/* "YYYY-MM-DD" check. */
bool crest__date_valid(const char *s, size_t len);

#endif
