/* postgres_array.c — PostgreSQL arrays in results, as JSON arrays. The
 * server writes an array as text (array_out): "{1,2,NULL}", nested braces
 * for more dimensions ("{{1,2},{3,4}}"), elements double-quoted when they
 * hold a delimiter, a brace, a quote, a backslash or white space, or read
 * NULL ("\"NULL\"" is the text, bare NULL the null), and a "[0:1]=" prefix
 * when a lower bound is not 1. Each element is typed as a column of the
 * element's type would be (postgres_value.c), found from the array's type
 * OID in a fixed table of the built-in array types, or among the array
 * types of the database's own types that start-up learnt. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <strings.h>

#include "../json/json_internal.h"
#include "postgres_internal.h"

/* The built-in array types (pg_type.dat: typarray of each; checked against
 * PostgreSQL 15's pg_type, the system catalogs' row types left out) and
 * their elements' types. Arrays of types crest does not type (inet,
 * interval, bytea...) have text elements. */
static const struct {
    unsigned array, elem;
} arrays[] = {
    {1000, PG_BOOL},        {1005, PG_INT2},     {1007, PG_INT4},    {1016, PG_INT8},       {1028, PG_OID},
    {1021, PG_FLOAT4},      {1022, PG_FLOAT8},   {1231, PG_NUMERIC}, {1009, PG_TEXT},       {1015, PG_VARCHAR},
    {1014, PG_BPCHAR},      {1003, PG_NAME},     {1002, PG_CHAR},    {199, PG_JSON},        {3807, PG_JSONB},
    {1182, PG_DATE},        {1115, PG_TIMESTAMP}, {1185, PG_TIMESTAMPTZ}, {2951, PG_UUID},
    /* text elements: */
    {1001, 17 /* bytea */}, {1183, 1083 /* time */}, {1270, 1266 /* timetz */}, {1187, 1186 /* interval */},
    {1041, 869 /* inet */}, {651, 650 /* cidr */},   {1040, 829 /* macaddr */},  {775, 774 /* macaddr8 */},
    {791, 790 /* money */}, {1561, 1560 /* bit */},  {1563, 1562 /* varbit */},  {143, 142 /* xml */},
    {1017, 600 /* point */}, {1018, 601 /* lseg */}, {1019, 602 /* path */},     {1020, 603 /* box */},
    {1027, 604 /* polygon */}, {719, 718 /* circle */}, {629, 628 /* line */},  {3643, 3614 /* tsvector */},
    {3645, 3615 /* tsquery */}, {4073, 4072 /* jsonpath */}, {3221, 3220 /* pg_lsn */},
    {1008, 24 /* regproc */}, {2210, 2205 /* regclass */}, {2211, 2206 /* regtype */},
    {1010, 27 /* tid */},   {1011, 28 /* xid */},   {1012, 29 /* cid */},       {1006, 22 /* int2vector */},
    {1013, 30 /* oidvector */}, {1034, 1033 /* aclitem */}, {1263, 2275 /* cstring */},
    {3905, 3904 /* int4range */}, {3907, 3906 /* numrange */}, {3909, 3908 /* tsrange */},
    {3911, 3910 /* tstzrange */}, {3913, 3912 /* daterange */}, {3927, 3926 /* int8range */},
    {2287, 2249 /* record */}, {271, 5069 /* xid8 */}, {2201, 1790 /* refcursor */},
    {2207, 2202 /* regprocedure */}, {2208, 2203 /* regoper */}, {2209, 2204 /* regoperator */},
    {2949, 2970 /* txid_snapshot */}, {5039, 5038 /* pg_snapshot */}, {3644, 3642 /* gtsvector */},
    {3735, 3734 /* regconfig */}, {3770, 3769 /* regdictionary */}, {4090, 4089 /* regnamespace */},
    {4097, 4096 /* regrole */}, {4192, 4191 /* regcollation */}, {6150, 4451 /* int4multirange */},
    {6151, 4532 /* nummultirange */}, {6152, 4533 /* tsmultirange */}, {6153, 4534 /* tstzmultirange */},
    {6155, 4535 /* datemultirange */}, {6157, 4536 /* int8multirange */},
};

/* Array types made in the database (an enum's, a domain's), learnt when a
 * statement returning one is described at start-up (crest__pg_array_learn):
 * written under the lock, read without it (entries are complete before
 * `learnt` counts them). */
#define MAX_LEARNT 256
static struct {
    unsigned array, elem;
} learnt[MAX_LEARNT];
static atomic_uint nlearnt;
static pthread_mutex_t learn_lock = PTHREAD_MUTEX_INITIALIZER;

unsigned crest__pg_array_elem(unsigned oid)
{
    for (size_t i = 0; i < CREST_ARRAY_LEN(arrays); i++)
        if (arrays[i].array == oid)
            return arrays[i].elem;
    unsigned n = atomic_load_explicit(&nlearnt, memory_order_acquire);
    for (unsigned i = 0; i < n; i++)
        if (learnt[i].array == oid)
            return learnt[i].elem;
    return 0;
}

void crest__pg_array_learn(unsigned oid, unsigned elem)
{
    if (!oid || !elem)
        return;
    pthread_mutex_lock(&learn_lock);
    unsigned n = atomic_load_explicit(&nlearnt, memory_order_relaxed);
    if (!crest__pg_array_elem(oid) && n < MAX_LEARNT) {
        learnt[n].array = oid;
        learnt[n].elem = elem;
        atomic_store_explicit(&nlearnt, n + 1, memory_order_release);
    }
    pthread_mutex_unlock(&learn_lock);
}

/* The deepest nesting array_out writes (MAXDIM). */
#define MAX_DIMS 6

typedef struct parser {
    const char *s, *end;
    unsigned elem;
    char delim;                   /* ',' (';' for box) */
    crest_json *w;
    crest__buf tmp;               /* an element's text, unquoted, NUL-ended */
} parser;

static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

static void skip_space(parser *p)
{
    while (p->s < p->end && is_space(*p->s))
        p->s++;
}

/* One element at p->s, written as JSON; 0, or -1 (not array text, or out of memory). */
static int element(parser *p)
{
    p->tmp.len = 0;
    bool quoted = *p->s == '"';
    if (quoted) {
        p->s++;
        for (;;) {
            if (p->s >= p->end)
                return -1;
            char c = *p->s++;
            if (c == '"')
                break;
            if (c == '\\') {
                if (p->s >= p->end)
                    return -1;
                c = *p->s++;
            }
            if (crest__buf_append(&p->tmp, &c, 1))
                return -1;
        }
    } else {
        const char *b = p->s;
        while (p->s < p->end && *p->s != p->delim && *p->s != '}' && *p->s != '{' && *p->s != '"') {
            if (*p->s == '\\') /* array_in's escape outside quotes (array_out quotes instead) */
                return -1;
            p->s++;
        }
        const char *e = p->s;
        while (e > b && is_space(e[-1]))
            e--;
        if (e == b)
            return -1;
        if (e - b == 4 && !strncasecmp(b, "NULL", 4)) {
            crest_json_null(p->w);
            return 0;
        }
        if (crest__buf_append(&p->tmp, b, (size_t)(e - b)))
            return -1;
    }
    if (crest__buf_append(&p->tmp, "", 1))
        return -1;
    crest__cell c;
    char buf[32];
    crest__pg_cell_view(&c, p->elem, p->tmp.ptr, p->tmp.len - 1, buf);
    crest__cell_write(p->w, &c);
    return 0;
}

/* A {...} at p->s (depth: its nesting, from 1); 0 or -1. */
static int array(parser *p, int depth)
{
    if (depth > MAX_DIMS || p->s >= p->end || *p->s != '{')
        return -1;
    p->s++;
    crest_json_array_begin(p->w);
    skip_space(p);
    if (p->s < p->end && *p->s == '}') {
        p->s++;
        crest_json_array_end(p->w);
        return 0;
    }
    for (;;) {
        skip_space(p);
        if (p->s >= p->end)
            return -1;
        if (*p->s == '{' ? array(p, depth + 1) : element(p))
            return -1;
        skip_space(p);
        if (p->s >= p->end)
            return -1;
        char c = *p->s++;
        if (c == '}')
            break;
        if (c != p->delim)
            return -1;
    }
    crest_json_array_end(p->w);
    return 0;
}

/* Past "[lb:ub][lb:ub]=" when s starts with one (the bounds are not kept:
 * a JSON array starts at 0); 0, or -1 for a malformed one. */
static int skip_bounds(parser *p)
{
    if (p->s >= p->end || *p->s != '[')
        return 0;
    while (p->s < p->end && *p->s == '[') {
        const char *close = memchr(p->s, ']', (size_t)(p->end - p->s));
        if (!close)
            return -1;
        for (const char *c = p->s + 1; c < close; c++)
            if (!((*c >= '0' && *c <= '9') || *c == '-' || *c == ':' || *c == '+'))
                return -1;
        p->s = close + 1;
    }
    if (p->s >= p->end || *p->s != '=')
        return -1;
    p->s++;
    return 0;
}

int crest__pg_array_json(crest__arena *a, unsigned elem, const char *s, size_t n, const char **out, size_t *outn)
{
    crest_json w;
    /* Each byte of the text gives a few of JSON at most (an escape, a
     * timestamp's Z and milliseconds): this cap only stops a runaway. */
    crest_json_init(&w, 8 * n + 64);
    parser p = {.s = s, .end = s + n, .elem = elem, .delim = elem == 603 /* box */ ? ';' : ',', .w = &w};
    crest__buf_init(&p.tmp, 0);
    int rc = 1;
    skip_space(&p);
    if (!skip_bounds(&p) && !array(&p, 1)) {
        skip_space(&p);
        rc = p.s == p.end ? 0 : 1;
    }
    if (!rc && crest_json_error(&w))
        rc = crest_json_error(&w) == CREST_JSON_ENOMEM ? -1 : 1;
    if (!rc) {
        size_t len;
        const char *data = crest_json_data(&w, &len);
        char *copy = crest__arena_strndup(a, data, len);
        if (copy) {
            *out = copy;
            *outn = len;
        } else {
            rc = -1;
        }
    }
    crest__buf_dispose(&p.tmp);
    crest_json_dispose(&w);
    return rc;
}
