/* rest_internal.h — models, REST modules and the query path between them.
 *
 * The query path is a pipeline of plain stages (STYLE.md):
 *   query parameters → plan (crest__plan: a condition tree, a sort, a page)
 *   → SQLite's SQL (crest__sql: text + bound values; SQLite is the only
 *     dialect so far, the compiler has no dialect switch yet) → rows
 *   → serializer → JSON writer.
 * Identifiers only ever come from the model and are quoted in one place
 * (crest__quote_ident); every value is bound. Internal: not installed. */
#ifndef CREST_REST_INTERNAL_H
#define CREST_REST_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include "../app/app_internal.h"
#include "../core/value.h"
#include "crest/rest.h"

/* Query limits (each has a test). */
#define CREST_WHERE_MAX_DEPTH 16       /* nesting of $and/$or/$not */
#define CREST_WHERE_MAX_NODES 100      /* conditions in one where */
#define CREST_WHERE_MAX_IN 1000        /* values in one $in / $nin */
#define CREST_WHERE_MAX_BYTES 16384    /* the where text */
#define CREST_SORT_MAX 8               /* fields in sort_by */
#define CREST_MODEL_MAX_FIELDS 200
#define CREST_BULK_MAX 1000            /* rows in one bulk create */

/* ---- values ---- */

/* ---- models ---- */

typedef struct crest__mfield {
    crest_field f;            /* the definition; strings borrowed from it */
    unsigned idx;             /* position in model->fields; 0 is id */
    char *qname;              /* quoted identifier, owned */
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

/* ---- the plan ---- */

typedef enum {
    CREST__Q_TRUE, CREST__Q_FALSE, CREST__Q_AND, CREST__Q_OR, CREST__Q_NOT, CREST__Q_CMP
} crest__qkind;

typedef enum {
    CREST__OP_EQ, CREST__OP_NE, CREST__OP_LT, CREST__OP_GT, CREST__OP_LE, CREST__OP_GE,
    CREST__OP_IN, CREST__OP_NIN, CREST__OP_NULL, CREST__OP_NOTNULL,
    CREST__OP_LIKE, CREST__OP_ILIKE, CREST__OP_CONTAINS, CREST__OP_ICONTAINS
} crest__op;

typedef struct crest__qnode crest__qnode;
struct crest__qnode {
    crest__qkind kind;
    crest__op op;                 /* CMP */
    const crest__mfield *field;   /* CMP */
    crest__val *vals;             /* CMP: one value, or the $in list */
    unsigned nvals;
    crest__qnode **kids;          /* AND / OR / NOT */
    unsigned nkids;
};

typedef struct crest__sort {
    const crest__mfield *field;
    bool desc;
} crest__sort;

typedef struct crest__plan {
    crest__qnode *where;          /* NULL: every row */
    crest__sort sort[CREST_SORT_MAX + 1];
    unsigned nsort;
    int64_t page, page_size;
    bool count_exact;
} crest__plan;

/* Which fields a part of the query may name: one flag per model field. */
typedef struct crest__allow {
    unsigned char *ok;            /* nfields entries, owned */
} crest__allow;

/* Parses a where object into a condition tree (arena). `allow` NULL: any
 * field. On error returns -1 with a message naming the offending part. */
int crest__where_parse(crest__arena *a, const crest__model *m, const crest__allow *allow, const json_t *where,
                       crest__qnode **out, char *msg, size_t msgcap);
/* Parses "a,-b" into plan->sort; -1 with a message naming the bad field. */
int crest__sort_parse(const crest__model *m, const crest__allow *allow, const char *text, crest__plan *plan,
                      char *msg, size_t msgcap);
/* The plan as text, "(and (eq is_completed false) (gt spent_time 5))": for
 * golden tests and debugging. */
void crest__plan_print(crest__buf *b, const crest__qnode *n);
/* AND of two conditions (either may be NULL). */
crest__qnode *crest__qnode_and(crest__arena *a, crest__qnode *x, crest__qnode *y);

/* ---- SQL ---- */

typedef struct crest__sql {
    crest__buf text;
    crest__val *binds;            /* arena */
    unsigned nbinds, capbinds;
    crest__arena *arena;
    int err;
} crest__sql;

void crest__sql_init(crest__sql *q, crest__arena *a);
void crest__sql_dispose(crest__sql *q);
void crest__sql_add(crest__sql *q, const char *s);
void crest__sql_bind(crest__sql *q, crest__val v);
/* Appends the condition (or "1" for NULL). */
void crest__sql_where(crest__sql *q, const crest__qnode *n);
/* Appends " ORDER BY ..." for the plan's sort (nothing when empty). */
void crest__sql_order(crest__sql *q, const crest__plan *p);
/* "\"name\"" with quotes doubled, malloc'd. */
char *crest__quote_ident(const char *name);

/* ---- model values ---- */

/* Checks a JSON value against a field and converts it for binding. Returns
 * NULL when fine, else a message ("must be >= 0"). Text points into v or
 * into the arena. */
const char *crest__field_value(crest__arena *a, const crest__mfield *f, const json_t *v, crest__val *out);
/* A where operand of a field's type ($lt: 5); NULL or a message. */
const char *crest__field_operand(crest__arena *a, const crest__mfield *f, const json_t *v, crest__val *out);
/* Writes a cell of a row as the field's JSON type. */
void crest__field_write(crest_json *w, const crest__mfield *f, const crest__cell *c);
/* The current time as stored: "YYYY-MM-DDTHH:MM:SS.sssZ". buf >= 32 bytes. */
void crest__now_stored(char *buf, size_t cap);
/* RFC 3339 → the stored UTC form; -1 when not a valid date-time. */
int crest__datetime_norm(const char *s, size_t len, char *out, size_t cap);
/* "YYYY-MM-DD" check. */
bool crest__date_valid(const char *s, size_t len);

const crest__mfield *crest__model_field(const crest__model *m, const char *name);
/* Whether clients may see the field at all (rest: rw or read). */
static inline bool crest__field_readable(const crest__mfield *f)
{
    return f->f.rest == CREST_REST_RW || f->f.rest == CREST_REST_READ;
}
crest__model *crest__app_model(crest_app *app, const char *name);
void crest__model_free(crest__model *m);
/* Creates the table or adds new columns; refuses changes that lose data.
 * On an error about the seed, *seed_at (when not NULL) is its row, or -1
 * for the seed as a whole. */
int crest__model_sync(crest__model *m, void *db, const char *source, crest_error *err, int *seed_at);

/* ---- modules ---- */

typedef struct crest__module crest__module;
void crest__module_free(crest__module *mod);
/* Prepares computed SQL against the synced schema; err names the module. */
int crest__module_check(crest__module *mod, crest__conn *c, crest_error *err);

/* Called by the app when it prepares the database (after startup_sql). */
int crest__rest_prepare(crest_app *app, crest__conn *c, crest_error *err);

#endif
