/* query.h — the query stage: query parameters become a plan (where.c), and
 * a plan becomes SQL text with bound values for one dialect, SQLite or
 * PostgreSQL (compile.c, dialect.c); an SQL endpoint's :name parameters
 * become PostgreSQL's $n (params.c). It takes data and gives data: no
 * database, no request. Identifiers come only from the model and are quoted
 * in one place (crest__quote_ident); every value is bound. Internal. */
#ifndef CREST_QUERY_H
#define CREST_QUERY_H

#include "../core/core.h"
#include "../core/value.h"
#include "model.h"

/* Query limits (each has a test). */
#define CREST_WHERE_MAX_DEPTH 16       /* nesting of $and/$or/$not */
#define CREST_WHERE_MAX_NODES 100      /* conditions in one where */
#define CREST_WHERE_MAX_IN 1000        /* values in one $in / $nin */
#define CREST_WHERE_MAX_BYTES 16384    /* the where text */
#define CREST_SORT_MAX 8               /* fields in sort_by */
#define CREST_REL_MAX_DEPTH 3          /* relations crossed by one dotted name (owner.company.name: 2) */

/* The row version crest keeps on every model's table (conditional
 * requests, src/rest/etag.c): a BIGINT that each write crest makes sets in
 * its own statement. Never a model field (crest_ names are refused). */
#define CREST__VERSION_COL "crest_version"
#define CREST__VERSION_QCOL "\"crest_version\""

/* ---- the condition tree and the sort (where.c) ---- */

typedef enum {
    CREST__Q_TRUE, CREST__Q_FALSE, CREST__Q_AND, CREST__Q_OR, CREST__Q_NOT, CREST__Q_CMP,
    CREST__Q_REL                  /* a condition on the rows of a relation (where.c's dotted names) */
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
    crest__val *vals;             /* CMP: one value, or the $in list (of the field's kind, or NULL) */
    unsigned nvals;
    crest__qnode **kids;          /* AND / OR / NOT; REL: the condition on the target's rows
                                     (kids[0]; nkids 0: a visible related row exists) */
    unsigned nkids;
    /* REL: the relation crossed from the row's model, and the target's
     * scope for the user (NULL: none), which the related rows must meet.
     * belongs_to: the condition holds for the one related row; a row with
     * no (visible) related row is judged as if its fields were null.
     * has_many / through: some visible related row meets it. */
    const crest__rel *rel;
    const crest__qnode *scope;
};

/* A dotted name: the relations it crosses from a model, then a field of
 * the last relation's target ("owner.company.name"), or no field (the name
 * ends at a relation: "computers"). Everything borrowed from the models. */
typedef struct crest__path {
    const crest__rel *rels[CREST_REL_MAX_DEPTH];
    unsigned nrels;
    const crest__mfield *field;   /* NULL: the path names a relation */
} crest__path;

/* Resolves a dotted name of model m into *out: 0; -1 when a part names
 * no relation / field (or a field is not the last part); -2 when it crosses
 * more than CREST_REL_MAX_DEPTH relations. A name without a dot resolves
 * when it names a relation (nrels 1, no field); a plain field is -1. */
int crest__path_resolve(const crest__model *m, const char *name, crest__path *out);
/* Whether the path crosses a has_many or through relation (its name stands
 * for many values). */
bool crest__path_multi(const crest__path *p);

/* What the stage above (REST: who the user is) says about a dotted name a
 * client gives: whether the user may name it, and the scopes the related
 * rows must meet. check(ud, path, scopes) returns 0 with scopes[i] the scope
 * of path->rels[i]'s target (NULL: none; from the request's arena), -1 when
 * the user may not name it (refused as unknown), -2 when it failed and
 * answered (a scope function's error: the message is not used). */
typedef struct crest__reach {
    int (*check)(void *ud, const crest__path *p, const crest__qnode **scopes);
    void *ud;
} crest__reach;

typedef struct crest__sort {
    const crest__mfield *field;   /* the field, of the last relation's target when nrels */
    bool desc;
    /* A dotted name (belongs_to relations only): the relations, and their
     * targets' scopes; nrels 0: a field of the model. */
    const crest__rel *rels[CREST_REL_MAX_DEPTH];
    const crest__qnode *scopes[CREST_REL_MAX_DEPTH];
    unsigned nrels;
} crest__sort;

/* The parsed query parameters of a list: condition, sort, page. */
typedef struct crest__plan {
    crest__qnode *where;          /* NULL: every row */
    crest__sort sort[CREST_SORT_MAX + 1];
    unsigned nsort;
    int64_t page, page_size;
    bool count_exact;
} crest__plan;

/* Which fields a part of the query may name: one flag per model field,
 * and the dotted names (relations' fields). */
typedef struct crest__allow {
    unsigned char *ok;            /* nfields entries, owned */
    const char *const *paths;     /* dotted names allowed, NULL-terminated (borrowed); NULL: see any_path */
    bool any_path;                /* every dotted name the user may read (the list was not given) */
} crest__allow;

/* Whether the allow-list a (NULL: anything) lets a client name the dotted
 * name `name`. */
bool crest__allow_path(const crest__allow *a, const char *name);

/* Parses a where object into a condition tree, allocated from the arena a
 * (values point into `where` or a: keep `where` alive as long as the plan).
 * `allow` NULL: any field. On error returns -1 with a message naming the
 * offending part. */
int crest__where_parse(crest__arena *a, const crest__model *m, const crest__allow *allow, const json_t *where,
                       crest__qnode **out, char *msg, size_t msgcap);
/* The same where dotted names ("owner.name", "computers.name",
 * {"computers": {"$exists": false}}) are judged by reach (NULL: refused
 * as unknown fields) and allow's paths. Returns -1 with a message, or -2
 * when reach answered. A has_many / through name means "some related row":
 * $ne, $nin, $not and $exists false on it mean "no related row" of the
 * positive form; two operators may be met by different related rows. */
int crest__where_parse_rel(crest__arena *a, const crest__model *m, const crest__allow *allow,
                           const crest__reach *reach, const json_t *where, crest__qnode **out, char *msg,
                           size_t msgcap);
/* Parses "a,-b" into plan->sort (fields borrowed from m); -1 with a message
 * naming the bad field. */
int crest__sort_parse(const crest__model *m, const crest__allow *allow, const char *text, crest__plan *plan,
                      char *msg, size_t msgcap);
/* The same with dotted names of belongs_to relations ("owner.name"),
 * judged by reach (NULL: unknown) and allow's paths; -2 when reach answered. */
int crest__sort_parse_rel(const crest__model *m, const crest__allow *allow, const crest__reach *reach,
                          const char *text, crest__plan *plan, char *msg, size_t msgcap);
/* One dotted name of belongs_to relations into *s (a sort entry, or a
 * group's value): 0, or -1 / -2 (reach answered) with a message starting
 * with `what` ("sort_by", "group"). */
int crest__sort_path(const crest__model *m, const crest__allow *allow, const crest__reach *reach, const char *what,
                     const char *name, crest__sort *s, char *msg, size_t msgcap);
/* Appends the plan as text, "(and (eq is_completed 0) (gt spent_time 5))",
 * to b: for golden tests and debugging (a bool prints as 0 or 1). */
void crest__plan_print(crest__buf *b, const crest__qnode *n);
/* AND of two conditions (either may be NULL), from the arena a; NULL when
 * both are NULL or out of memory. */
crest__qnode *crest__qnode_and(crest__arena *a, crest__qnode *x, crest__qnode *y);

/* ---- dialects (dialect.c) ---- */

typedef struct crest__sql crest__sql;

/* What differs between SQL databases, as data and a few functions. The two
 * dialects are static constants: borrowed forever, never freed. */
typedef struct crest__dialect {
    const char *name;              /* "sqlite", "postgres" */
    bool numbered;                 /* placeholders $1, $2... (PostgreSQL) instead of ? */
    bool array_in;                 /* $in / $nin: one array bind, = ANY($n) / <> ALL($n) */
    bool returning_id;             /* an insert answers its id (RETURNING "id"); SQLite's store
                                      reads the store's last insert id instead */
    const char *true_sql, *false_sql;   /* conditions that always / never hold */
    const char *ne_null_safe;      /* a != b where NULL is a value: " IS NOT ", " IS DISTINCT FROM " */
    const char *random;            /* the ORDER BY of a random sample */
    const char *begin, *begin_write, *commit, *rollback;
    /* Appends a condition on column col (quoted) for the like family (op
     * one of LIKE, ILIKE, CONTAINS, ICONTAINS) with the text operand v. */
    void (*like)(crest__sql *q, const char *col, crest__op op, const crest__val *v);
    /* The column type of a field in CREATE TABLE / ADD COLUMN (constraints
     * that come with the type included), appended to q. */
    void (*column_type)(crest__sql *q, const crest__mfield *f);
    /* The id column's definition: "INTEGER PRIMARY KEY", an identity. */
    const char *id_column;
    /* Tables crest finds (not made by it): whether a column declared decl
     * (as sql_columns reports it) is an id crest can use, and whether it
     * holds the values of field f. */
    bool (*id_column_ok)(const char *decl);
    bool (*column_holds)(const crest__mfield *f, const char *decl);
    /* DEFAULT of a `now` field (date or datetime), in the stored form. */
    const char *now_date, *now_datetime;
    /* _crest_fields: how a column's type is recorded (replacing the old
     * record): "<head> INTO _crest_fields (...) VALUES (...)<tail>". */
    const char *record_head, *record_tail;
    /* Schema introspection (model sync, foreign-key messages); {1} stands
     * for the table's name, bound once: see crest__compile_table_columns,
     * crest__compile_foreign_keys, crest__compile_primary_key; sql_name_taken
     * ({1}: a name), crest__compile_name_taken, NULL when not needed. */
    const char *sql_columns, *sql_foreign_keys, *sql_primary_key, *sql_name_taken;
    /* The prefix that makes a statement answer its plan as JSON, whose top
     * node says how many rows the planner expects (count=estimated); NULL:
     * the database gives no estimate (SQLite's count=estimated is exact). */
    const char *explain_json;
    /* A ref field's foreign key is declared with its column (REFERENCES in
     * CREATE TABLE / ADD COLUMN, which may name a table made later: SQLite);
     * otherwise it is added once every table exists
     * (crest__compile_add_foreign_key: PostgreSQL). */
    bool inline_references;
    /* A has_many embed takes each parent's first rows with a correlated
     * LIMIT (the parents' keys as a VALUES list joined to a subquery on the
     * foreign key's index) instead of ROW_NUMBER() over every related row:
     * SQLite's window functions sort the rows through temporary tables,
     * several times slower there (bench/relations.sh). */
    bool embed_cap_by_limit;
    /* A new row's first version (CREST__VERSION_COL): a random 52-bit
     * number, evaluated per row (an insert, a migrated table's rows). */
    const char *version_new;
    /* The version column of CREATE TABLE, and of ALTER TABLE ADD COLUMN
     * (where SQLite takes only a constant default: its rows are then given
     * version_new by an UPDATE). */
    const char *version_create, *version_add;
    /* NULL sorts above every value (PostgreSQL: last ascending, first
     * descending); false: below (SQLite). The keyset of a cursor page
     * (crest__sql_keyset) follows it. */
    bool nulls_large;
} crest__dialect;

/* The dialects (static: borrowed, never NULL). */
const crest__dialect *crest__dialect_sqlite(void);
const crest__dialect *crest__dialect_postgres(void);
/* The dialect called "sqlite" or "postgres", or NULL. */
const crest__dialect *crest__dialect_named(const char *name);

/* ---- SQL text and its binds (compile.c) ---- */

/* SQL being built: text (malloc'd buffer: crest__sql_dispose frees it) and
 * the values bound to its placeholders, in order (from the arena). A list
 * bind (dialects with array_in only) has binds[i].k == CREST__V_NULL and
 * lists[i] set; lists is NULL as long as no bind is a list. Errors stick:
 * err is CREST_ENOMEM after any failed append, and the text is then not to
 * be run. */
struct crest__sql {
    crest__buf text;
    crest__val *binds;            /* arena */
    const crest__bindlist **lists; /* arena; NULL, or capbinds entries */
    unsigned nbinds, capbinds;
    crest__arena *arena;
    const crest__dialect *d;      /* borrowed */
    int err;
};

/* Starts empty SQL of dialect d; binds and patterns come from the arena a
 * (both borrowed: they must outlive q). */
void crest__sql_init(crest__sql *q, crest__arena *a, const crest__dialect *d);
/* Frees the text (binds stay in the arena). */
void crest__sql_dispose(crest__sql *q);
/* Appends SQL text (s borrowed for the call). Only the query stage writes
 * SQL keywords; other stages add text that came from it. */
void crest__sql_add(crest__sql *q, const char *s);
/* Appends name quoted as an identifier ("a""b"). */
void crest__sql_ident(crest__sql *q, const char *name);
/* Appends s as an SQL string constant, quotes doubled ('it''s'): for DDL
 * only (a default, a CHECK's values), which takes no parameters. */
void crest__sql_literal(crest__sql *q, const char *s);
/* Binds v (text borrowed: it must outlive the statement's run) and appends
 * its placeholder: ? or $n. */
void crest__sql_bind(crest__sql *q, crest__val v);
/* Binds the n values v (borrowed, none NULL, kind k) as one list and
 * appends its placeholder; only for dialects with array_in. */
void crest__sql_bind_list(crest__sql *q, crest__vkind k, const crest__val *v, unsigned n);
/* Binds v without writing a placeholder: the text names it with
 * crest__sql_ref (a value used twice is bound once). */
void crest__sql_push(crest__sql *q, crest__val v);
/* Appends the placeholder of bind i (1-based, already bound): ?i or $i. */
void crest__sql_ref(crest__sql *q, unsigned i);
/* Appends the condition (NULL: the dialect's true). */
void crest__sql_where(crest__sql *q, const crest__qnode *n);
/* Appends " ORDER BY ..." for the plan's sort (nothing when empty). */
void crest__sql_order(crest__sql *q, const crest__plan *p);
/* Appends the keyset condition of a cursor page: the rows that come after
 * a row whose sort key values are after[0..p->nsort) in p's order (a total
 * order: p ends with the id, never NULL), e.g. for sort_by=a,-b:
 *   a > va OR (a = va AND (b < vb OR (b = vb AND id < vid)))
 * plus, for the first key, a bound an index can seek (a >= va AND ...).
 * A NULL value, or a NULL in the column, sorts where the dialect puts NULL
 * (nulls_large). after's text is borrowed until the statement has run. */
void crest__sql_keyset(crest__sql *q, const crest__plan *p, const crest__val *after);
/* The kind of value a field's column holds (a cursor's key read back):
 * bool, int, float, text, date, datetime, json, uuid. */
crest__vkind crest__field_vkind(const crest__mfield *f);
/* Appends the value of sort entry s for a row of the model s->rels[0]->owner
 * (from its table, unaliased): a field's column, or for a dotted name the
 * scalar subquery reading it through the belongs_to relations within their
 * scopes (NULL when no visible related row). */
void crest__sql_sort_value(crest__sql *q, const crest__sort *s);
/* "\"name\"" with quotes doubled (the same in both dialects), malloc'd:
 * the caller frees it. NULL when out of memory. */
char *crest__quote_ident(const char *name);

/* ---- the plans of the REST operations, and their compilers ----
 * Each crest__compile_* appends one statement to q (start from an empty
 * crest__sql) in q's dialect; the plan and everything it points to is
 * borrowed for the call, except values, which must outlive the run. */

/* The columns a row read returns: the model's fields in order, then the
 * module's computed columns (SQL of the app's definition, not of clients;
 * a computed field without sql is a NULL column its callback fills). */
typedef struct crest__proj {
    const crest__model *m;
    const crest_computed *const *comp;
    unsigned ncomp;
    bool comp_only;               /* only the computed columns (checking them) */
    bool version;                 /* the row version (CREST__VERSION_COL) last, after the computed ones */
} crest__proj;

/* The columns alone, as a SELECT of the projection writes them. */
void crest__compile_columns(crest__sql *q, const crest__proj *p);
/* SELECT <columns> FROM <table> (a module's computed-column check). */
void crest__compile_select(crest__sql *q, const crest__proj *p);

/* One row: by id, within a scope (GET /{id}); exists_only: SELECT 1. */
typedef struct crest__read_plan {
    crest__proj proj;
    int64_t id;
    const crest__qnode *scope;    /* NULL: none */
    bool exists_only;             /* SELECT 1 */
    bool version_only;            /* SELECT "crest_version" (a conditional write's precondition) */
} crest__read_plan;
void crest__compile_read(crest__sql *q, const crest__read_plan *p);

/* A page of rows (index), or a random sample of them (sample). */
typedef struct crest__list_plan {
    crest__proj proj;
    const crest__qnode *where;    /* NULL: every row */
    const crest__plan *order;     /* its sort (the caller adds the id tie-break); NULL: none */
    bool random;                  /* sample: the dialect's random order instead */
    int64_t limit, offset;
    /* A cursor page: the sort key values of the previous page's last row
     * (order->nsort values), whose following rows the page starts with
     * (crest__sql_keyset, ANDed to where); NULL: none. */
    const crest__val *after;
    /* The sort keys as extra columns after proj's (every key but a bare id:
     * a datetime as its exact text, CAST AS text), to make the next
     * page's cursor from the last row (crest__list_key_col). */
    bool key_columns;
} crest__list_plan;
/* The column of row reads of p holding sort key i (with key_columns set). */
unsigned crest__list_key_col(const crest__list_plan *p, unsigned i);
void crest__compile_list(crest__sql *q, const crest__list_plan *p);
/* SELECT count(*) of the list's rows (count=exact). */
void crest__compile_count(crest__sql *q, const crest__list_plan *p);
/* count=estimated: the list's rows counted up to cap + 1 (SELECT count(*)
 * FROM (SELECT 1 ... LIMIT cap + 1)): exact when at most cap. */
void crest__compile_count_upto(crest__sql *q, const crest__list_plan *p, int64_t cap);
/* count=estimated past cap: the planner's estimate of the list's rows
 * (EXPLAIN (FORMAT JSON) SELECT 1 ... WHERE ...), one row of one JSON
 * cell that crest__estimate_of reads. Only for a dialect with
 * explain_json. */
void crest__compile_estimate(crest__sql *q, const crest__list_plan *p);
/* The top plan node's "Plan Rows" in that cell's JSON text (n bytes),
 * rounded, into *out; 0, or -1 when the text holds none. */
int crest__estimate_of(const char *json, size_t n, int64_t *out);

/* The related rows of a page of parent rows (?include=), one statement
 * per relation whatever the page's size: the target's columns (p->proj)
 * of the rows whose key is one of keys, within the target's scope; for
 * has_many and through at most per_parent rows per parent, in order,
 * numbered in a last column (ROW_NUMBER). Rows come ordered by the parent
 * key; through adds the parent's key as a column before that number.
 *   belongs_to: SELECT cols FROM target WHERE id IN keys AND scope
 *   has_many:   ... WHERE fk IN keys AND scope, PARTITION BY fk
 *   through:    the target's rows joined to the join model's, whose
 *               column to the parent is IN keys, PARTITION BY it */
typedef struct crest__embed_plan {
    crest__proj proj;             /* the target's columns */
    const crest__rel *rel;        /* linked */
    const crest__val *keys;       /* distinct non-null ints */
    unsigned nkeys;
    const crest__qnode *scope;    /* on the target; NULL: none */
    const crest__plan *order;     /* the target's sort, ending with id */
    int64_t per_parent;           /* has_many, through */
} crest__embed_plan;
void crest__compile_embed(crest__sql *q, const crest__embed_plan *p);

/* Counts by value of one field (group). */
typedef enum {
    CREST__GROUP_VALUE_ASC, CREST__GROUP_VALUE_DESC, CREST__GROUP_COUNT_ASC, CREST__GROUP_COUNT_DESC
} crest__group_order;
typedef struct crest__group_plan {
    const crest__model *m;
    const crest__mfield *field;
    const crest__sort *path;      /* a dotted name's value (its field is field); NULL: field of m */
    const crest__qnode *where;
    crest__group_order order;     /* ties of count: by value, ascending */
    int64_t limit, offset;
} crest__group_plan;
/* SELECT <field>, count(*) ... GROUP BY ... ORDER BY ... LIMIT ... OFFSET. */
void crest__compile_group(crest__sql *q, const crest__group_plan *p);
/* The number of groups. */
void crest__compile_group_count(crest__sql *q, const crest__group_plan *p);

/* Aggregates over the rows (stats: min, max, avg; eval: any). */
typedef enum { CREST__AGG_COUNT, CREST__AGG_SUM, CREST__AGG_AVG, CREST__AGG_MIN, CREST__AGG_MAX } crest__aggfn;
typedef struct crest__agg {
    crest__aggfn fn;
    const crest__mfield *f;       /* NULL: count(*) */
} crest__agg;
typedef struct crest__agg_plan {
    const crest__model *m;
    const crest__qnode *where;
    const crest__agg *aggs;
    unsigned naggs;               /* 0: SELECT 1 */
} crest__agg_plan;
/* "count", "sum", "avg", "min", "max" → *out; -1 for another name. */
int crest__aggfn_parse(const char *name, crest__aggfn *out);
void crest__compile_aggregate(crest__sql *q, const crest__agg_plan *p);

/* One row written (create, seed): the fields with set[i] (id never). */
typedef struct crest__insert_plan {
    const crest__model *m;
    const crest__val *vals;       /* per field */
    const unsigned char *set;     /* per field; NULL: every field but id */
} crest__insert_plan;
/* INSERT ... with a first row version (the dialect's version_new) [RETURNING
 * "id" where the dialect answers ids so]. */
void crest__compile_insert(crest__sql *q, const crest__insert_plan *p);

/* The row versions a write must find (If-Match): the row is changed only
 * while its version is one of v (n >= 1); n == 0: any version. And those
 * it must not find (If-None-Match): none of nv (nn >= 1); none_star: the
 * row must not exist at all (then nothing is written). */
typedef struct crest__version_check {
    const int64_t *v;
    unsigned n;
    const int64_t *nv;
    unsigned nn;
    bool none_star;
} crest__version_check;

/* One row changed (update): SET of the given fields and the next row
 * version (crest_version + 1), by id within a scope [and at one of the
 * versions of `expect`]. With no field set (a check alone), SET keeps
 * the version as it is: the statement only counts the row. */
typedef struct crest__update_plan {
    const crest__model *m;
    const crest__val *vals;
    const unsigned char *set;     /* per field */
    int64_t id;
    const crest__qnode *scope;
    crest__version_check expect;
} crest__update_plan;
void crest__compile_update(crest__sql *q, const crest__update_plan *p);

/* One row removed (delete), by id within a scope [and version]. */
typedef struct crest__delete_plan {
    const crest__model *m;
    int64_t id;
    const crest__qnode *scope;
    crest__version_check expect;
} crest__delete_plan;
void crest__compile_delete(crest__sql *q, const crest__delete_plan *p);

/* Transactions: the statement's text (static: borrowed forever). */
typedef enum { CREST__TX_BEGIN, CREST__TX_BEGIN_WRITE, CREST__TX_COMMIT, CREST__TX_ROLLBACK } crest__txn;
const char *crest__txn_sql(const crest__dialect *d, crest__txn t);

/* ---- schema (the model's table, what crest records of it) ---- */

/* CREATE TABLE <m> (id, every field with its type and default, the row
 * version). */
void crest__compile_create_table(crest__sql *q, const crest__model *m);
/* A table made before crest kept row versions: ALTER TABLE ADD COLUMN
 * crest_version, then every row given a first version (fill_version). */
void crest__compile_add_version(crest__sql *q, const crest__model *m);
void crest__compile_fill_version(crest__sql *q, const crest__model *m);
/* ALTER TABLE ADD COLUMN of f (a `now` default is not given: see fill). */
void crest__compile_add_column(crest__sql *q, const crest__model *m, const crest__mfield *f);
/* UPDATE <m> SET f = v on every row (a new `now` column's existing rows). */
void crest__compile_fill_column(crest__sql *q, const crest__model *m, const crest__mfield *f, crest__val v);
/* The index or unique key of field f (its unique or index option). */
void crest__compile_field_index(crest__sql *q, const crest__model *m, const crest__mfield *f);
/* ALTER TABLE ADD CONSTRAINT "<table>_<col>_fkey" FOREIGN KEY of the ref
 * field f (f->ref linked), with its ON DELETE. */
void crest__compile_add_foreign_key(crest__sql *q, const crest__model *m, const crest__mfield *f);
/* A composite index, "a,-b" (fields of m; an unknown name gives a column
 * "?" that the database refuses). */
void crest__compile_index(crest__sql *q, const crest__model *m, const char *spec);
/* The names those two statements give their index ("tasks_title_key",
 * "tasks_a_b_idx"), in the arena a; NULL when out of memory. */
const char *crest__field_index_name(crest__arena *a, const crest__model *m, const crest__mfield *f);
const char *crest__index_name(crest__arena *a, const crest__model *m, const char *spec);
/* The _crest_fields table (the crest type of each column crest made). */
void crest__compile_fields_table(crest__sql *q);
/* Records (or replaces) f's type in _crest_fields. */
void crest__compile_fields_record(crest__sql *q, const crest__model *m, const crest__mfield *f);

/* idempotency.c: crest_idempotency, the records of Idempotency-Key (see
 * there); text values borrowed until the statement runs. */
void crest__compile_idem_table(crest__sql *q);
void crest__compile_idem_index(crest__sql *q);
void crest__compile_idem_lookup(crest__sql *q, const char *scope, const char *key, int64_t now_us);
void crest__compile_idem_claim(crest__sql *q, const char *scope, const char *key, const char *fingerprint,
                               int64_t token, int64_t now_us);
void crest__compile_idem_complete(crest__sql *q, const char *scope, const char *key, int64_t token,
                                  int64_t expires_us, int status, const char *headers, const char *body, size_t len);
void crest__compile_idem_release(crest__sql *q, const char *scope, const char *key, int64_t token);
void crest__compile_idem_purge(crest__sql *q, int64_t now_us, unsigned max);
/* SELECT type FROM _crest_fields for column `column` of m's table. */
void crest__compile_fields_lookup(crest__sql *q, const crest__model *m, const char *column);
/* crest's own settings: the crest_meta table (key, value), shared by every
 * crest process on the database (the cursors' secret). */
void crest__compile_meta_table(crest__sql *q);
/* INSERT the value unless the key has one (ON CONFLICT DO NOTHING). */
void crest__compile_meta_put(crest__sql *q, const char *key, const char *value);
/* SELECT value of key (no row: none). */
void crest__compile_meta_get(crest__sql *q, const char *key);
/* The crest type name of a field type ("string", "int"...; static). */
const char *crest__field_type_name(crest_field_type t);

/* ---- the change log, crest_changes (changes.c) ----
 * One table for every model whose module has a change feed: id (never
 * given twice), tbl (the model's table), row_id, op (created, updated,
 * deleted), at (when), data (the row's columns as a JSON object: after the
 * write, before it for a delete). Triggers write it, in the transaction of
 * the change. */

/* CREATE TABLE IF NOT EXISTS crest_changes; its index on (tbl, id). */
void crest__compile_changes_table(crest__sql *q);
void crest__compile_changes_index(crest__sql *q);
/* PostgreSQL: the trigger function (CREATE OR REPLACE) every table's
 * trigger runs: the log row, then pg_notify('crest_changes', ''). Empty SQL
 * for SQLite, whose triggers hold their statement. */
void crest__compile_changes_function(crest__sql *q);
/* The triggers of one table: how many (SQLite 3: one per kind of write;
 * PostgreSQL 1), and the i-th one's DROP TRIGGER IF EXISTS and CREATE
 * TRIGGER (its JSON names every field of m, so it is made again whenever
 * the model may have changed). */
unsigned crest__changes_trigger_count(const crest__dialect *d);
void crest__compile_changes_drop(crest__sql *q, const crest__model *m, unsigned i);
void crest__compile_changes_trigger(crest__sql *q, const crest__model *m, unsigned i);

/* A feed's next changes: at most limit changes of proj.m's table after
 * the change `after`, in order, each as a row of the model (proj's
 * columns, computed from the logged columns), then three columns: the
 * change's id, its op, and 1 when the row meets where (scope and the
 * subscriber's where; NULL: always) else 0. Rows that do not meet it come
 * too, so that the reader moves past them. */
typedef struct crest__changes_plan {
    crest__proj proj;
    const crest__qnode *where;
    int64_t after, limit;
} crest__changes_plan;
void crest__compile_changes_read(crest__sql *q, const crest__changes_plan *p);
/* One row: the log's last id and first id (both NULL when it is empty). */
void crest__compile_changes_ends(crest__sql *q);
/* Deletes (a bounded step: among the batch + 1 oldest changes) the changes
 * older than retention_s seconds, except the newest of those, which stays
 * as the log's first: a Last-Event-ID before the first change names
 * changes that are gone. */
void crest__compile_changes_purge(crest__sql *q, unsigned retention_s, unsigned batch);

/* ---- schema introspection (to move behind the store's) ----
 * Each returns rows of the columns named, the same in both dialects. */

/* The columns of table: name, declared type, position in the primary key
 * (0: not in it), in table order. */
void crest__compile_table_columns(crest__sql *q, const char *table);
/* The one-column foreign keys of table: parent table, column, parent
 * column (NULL: the parent's primary key). */
void crest__compile_foreign_keys(crest__sql *q, const char *table);
/* The first column of table's primary key and the key's number of
 * columns (no row: no primary key). */
void crest__compile_primary_key(crest__sql *q, const char *table);
/* What else than an index holds the name `name` where an index of crest's
 * would go (one row: "table", "view", "sequence"...; none: the name is free
 * or an index's). Empty SQL for a dialect whose CREATE INDEX IF NOT EXISTS
 * fails by itself then (SQLite's; PostgreSQL's skips the statement). */
void crest__compile_name_taken(crest__sql *q, const char *name);
/* SELECT 1 when table has a row whose column equals v. */
void crest__compile_parent_exists(crest__sql *q, const char *table, const char *column, crest__val v);

/* ---- an SQL endpoint's :name parameters as PostgreSQL's $n (params.c) ---- */

#define CREST_SQL_MAX_PARAMS 255       /* distinct :names in one statement */

/* An SQL text with its :name parameters numbered for PostgreSQL. */
typedef struct crest__numbered_sql {
    char *sql;            /* the text with $1..$n in place of each :name, NUL-terminated (arena) */
    size_t len;           /* its length, without the NUL */
    const char **names;   /* names[i] is the parameter $i+1, without the ':' ("user.id" for :user.id) (arena) */
    unsigned nnames;
} crest__numbered_sql;

/* Numbers the :name parameters of sql[0..len) (PostgreSQL text; not read
 * past len, need not be NUL-terminated): each :name outside string
 * constants, quoted identifiers, comments and dollar quotes becomes $n, the
 * same name the same n, in order of first appearance; `::` casts and
 * everything else are copied byte for byte. A name is an ASCII letter or _
 * then letters, digits, _, with at most one dot (:user.id). A :name glued
 * to an identifier or number (`arr[lo:hi]`: the parameter hi) gets a space
 * before its $n, so that PostgreSQL reads $n as a parameter. Text, names
 * and array come from the arena a; nothing else is kept. Returns 0;
 * CREST_EINVAL with *msg saying what is wrong (an unterminated quote,
 * comment or dollar quote, more than CREST_SQL_MAX_PARAMS names, a
 * positional $1 next to :names, a name with two dots or non-ASCII);
 * CREST_ENOMEM with *msg "out of memory". On error *out is zeroed. *msg is
 * static or from a; msg may be NULL. A text with positional $n and no
 * :name is returned unchanged with no names. */
int crest__sql_number_params(crest__arena *a, const char *sql, size_t len, crest__numbered_sql *out,
                             const char **msg);

/* What a statement of a C handler does to its session's transaction, by
 * its first words (after blanks and comments, any case). */
typedef enum {
    CREST__TXN_STMT_NONE,       /* none of the below: a statement */
    CREST__TXN_STMT_BEGIN,      /* BEGIN, START TRANSACTION */
    CREST__TXN_STMT_END,        /* COMMIT, END, ROLLBACK, ABORT (not ... PREPARED) */
    CREST__TXN_STMT_SAVEPOINT,  /* SAVEPOINT, RELEASE, ROLLBACK TO */
} crest__txn_stmt;
crest__txn_stmt crest__sql_txn_control(const char *sql, size_t len);

#endif
