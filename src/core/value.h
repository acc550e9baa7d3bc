/* value.h — a typed value, as the query stage plans it and the store binds
 * it: null, bool, int, float, text, date, datetime, json, uuid. The plan
 * keeps what the value means (a bool is a bool, a date a date); each store
 * decides how it stores it (SQLite: 0/1 and text; PostgreSQL: its own
 * types). Internal: not installed. */
#ifndef CREST_VALUE_H
#define CREST_VALUE_H

#include <stddef.h>
#include <stdint.h>

typedef enum crest__vkind {
    CREST__V_NULL,
    CREST__V_BOOL,     /* i: 0 or 1 */
    CREST__V_INT,      /* i */
    CREST__V_FLOAT,    /* f */
    CREST__V_TEXT,     /* s, n */
    CREST__V_DATE,     /* s, n: "YYYY-MM-DD" */
    CREST__V_DATETIME, /* s, n: the stored UTC form, "YYYY-MM-DDTHH:MM:SS.sssZ" */
    CREST__V_JSON,     /* s, n: JSON text */
    CREST__V_UUID      /* s, n: canonical lower-case 36 characters */
} crest__vkind;

/* A value to bind. Text is borrowed: from the request's arena, or a JSON
 * value alive until the statement has run. */
typedef struct crest__val {
    crest__vkind k;
    int64_t i;
    double f;
    const char *s;
    size_t n;
} crest__val;

/* A list bound as one parameter (PostgreSQL `= ANY($n)`): n values, all of
 * kind k (the field's), none NULL. The store binds it as an array of k's
 * type (bigint[], text[], boolean[], date[]...). */
typedef struct crest__bindlist {
    crest__vkind k;
    const crest__val *v;          /* arena */
    unsigned n;
} crest__bindlist;

/* Whether values of kind k are carried as text (s, n). */
static inline int crest__vkind_is_text(crest__vkind k)
{
    return k >= CREST__V_TEXT;
}

#endif
