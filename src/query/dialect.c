/* dialect.c — what differs between SQLite and PostgreSQL SQL, as two
 * constant tables (crest__dialect): placeholders, true and false, the like
 * family, $in lists, RETURNING, random order, transactions, column types
 * and defaults, and the schema introspection reads. The compiler
 * (compile.c, schema.c) reads them; nothing else writes dialect SQL. */
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "query.h"

/* %, _ and \ of a literal escaped for LIKE ... ESCAPE '\', between two %:
 * a substring match. */
static char *like_literal(crest__arena *a, const char *s, size_t n, size_t *outn)
{
    char *o = crest__arena_alloc(a, 2 * n + 3);
    if (!o)
        return NULL;
    size_t k = 0;
    o[k++] = '%';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' || s[i] == '_' || s[i] == '\\')
            o[k++] = '\\';
        o[k++] = s[i];
    }
    o[k++] = '%';
    o[k] = 0;
    *outn = k;
    return o;
}

/* A LIKE pattern (% and _ wildcards) as a GLOB pattern: * and ?, with GLOB's
 * own specials made literal ([*], [?], [[]). */
static char *like_to_glob(crest__arena *a, const char *s, size_t n, size_t *outn)
{
    char *o = crest__arena_alloc(a, 3 * n + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '%')
            o[k++] = '*';
        else if (ch == '_')
            o[k++] = '?';
        else if (ch == '*' || ch == '?' || ch == '[') {
            o[k++] = '[';
            o[k++] = ch;
            o[k++] = ']';
        } else
            o[k++] = ch;
    }
    o[k] = 0;
    *outn = k;
    return o;
}

/* A $like pattern (% and _ wildcards, nothing escapes) for LIKE ... ESCAPE
 * '\': its backslashes doubled, so they stay literal as in SQLite's GLOB. */
static char *like_plain(crest__arena *a, const char *s, size_t n, size_t *outn)
{
    char *o = crest__arena_alloc(a, 2 * n + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\')
            o[k++] = '\\';
        o[k++] = s[i];
    }
    o[k] = 0;
    *outn = k;
    return o;
}

static void bind_pattern(crest__sql *q, char *(*make)(crest__arena *, const char *, size_t, size_t *),
                         const crest__val *v)
{
    size_t len;
    char *p = make(q->arena, v->s, v->n, &len);
    if (!p) {
        q->err = CREST_ENOMEM;
        return;
    }
    crest__sql_bind(q, (crest__val){.k = CREST__V_TEXT, .s = p, .n = len});
}

/* SQLite: $like is GLOB (case-sensitive) with the pattern translated;
 * $ilike is LIKE (ASCII case folding, as SQLite's LIKE does); $contains is
 * instr(); $icontains an escaped LIKE. */
static void sqlite_like(crest__sql *q, const char *col, crest__op op, const crest__val *v)
{
    switch (op) {
    case CREST__OP_LIKE:
        crest__sql_add(q, col);
        crest__sql_add(q, " GLOB ");
        bind_pattern(q, like_to_glob, v);
        return;
    case CREST__OP_CONTAINS:
        crest__sql_add(q, "instr(");
        crest__sql_add(q, col);
        crest__sql_add(q, ", ");
        crest__sql_bind(q, *v);
        crest__sql_add(q, ") > 0");
        return;
    case CREST__OP_ICONTAINS:
        crest__sql_add(q, col);
        crest__sql_add(q, " LIKE ");
        bind_pattern(q, like_literal, v);
        crest__sql_add(q, " ESCAPE '\\'");
        return;
    default: /* ILIKE */
        crest__sql_add(q, col);
        crest__sql_add(q, " LIKE ");
        crest__sql_bind(q, *v);
        crest__sql_add(q, " ESCAPE '\\'");
        return;
    }
}

/* PostgreSQL: LIKE and ILIKE with the same patterns as on SQLite ($like:
 * backslash is literal; $ilike: backslash escapes), strpos() for
 * $contains. ILIKE folds case beyond ASCII. */
static void pg_like(crest__sql *q, const char *col, crest__op op, const crest__val *v)
{
    switch (op) {
    case CREST__OP_CONTAINS:
        crest__sql_add(q, "strpos(");
        crest__sql_add(q, col);
        crest__sql_add(q, ", ");
        crest__sql_bind(q, *v);
        crest__sql_add(q, ") > 0");
        return;
    case CREST__OP_LIKE:
        crest__sql_add(q, col);
        crest__sql_add(q, " LIKE ");
        bind_pattern(q, like_plain, v);
        break;
    case CREST__OP_ICONTAINS:
        crest__sql_add(q, col);
        crest__sql_add(q, " ILIKE ");
        bind_pattern(q, like_literal, v);
        break;
    default: /* ILIKE */
        crest__sql_add(q, col);
        crest__sql_add(q, " ILIKE ");
        crest__sql_bind(q, *v);
        break;
    }
    crest__sql_add(q, " ESCAPE '\\'");
}

/* SQLite: the three storage classes crest uses (values are checked by crest). */
static void sqlite_column_type(crest__sql *q, const crest__mfield *f)
{
    switch (f->f.type) {
    case CREST_F_REF: /* (a ref field is an int: see crest__mfield.ref) */
    case CREST_F_INT:
    case CREST_F_BOOL:
        crest__sql_add(q, "INTEGER");
        return;
    case CREST_F_FLOAT:
        crest__sql_add(q, "REAL");
        return;
    default:
        crest__sql_add(q, "TEXT");
        return;
    }
}

static void num(crest__sql *q, double x)
{
    char b[40];
    snprintf(b, sizeof b, "%.17g", x);
    crest__sql_add(q, b);
}

/* PostgreSQL: the field's own type, with the model's bounds as CHECKs (the
 * same rules crest applies to bodies; a pattern stays crest's: PCRE2 is not
 * PostgreSQL's regular expression language). */
static void pg_column_type(crest__sql *q, const crest__mfield *f)
{
    const crest_field *d = &f->f;
    char b[48];
    switch (d->type) {
    case CREST_F_STRING:
        if (d->max_length) {
            snprintf(b, sizeof b, "varchar(%lld)", (long long)d->max_length);
            crest__sql_add(q, b);
        } else {
            crest__sql_add(q, "text");
        }
        break;
    case CREST_F_TEXT:
        crest__sql_add(q, "text");
        break;
    case CREST_F_REF: /* (a ref field is an int: see crest__mfield.ref) */
    case CREST_F_INT:
        crest__sql_add(q, "bigint");
        break;
    case CREST_F_FLOAT:
        crest__sql_add(q, "double precision");
        break;
    case CREST_F_BOOL:
        crest__sql_add(q, "boolean");
        return;
    case CREST_F_DATE:
        crest__sql_add(q, "date");
        return;
    case CREST_F_DATETIME:
        crest__sql_add(q, "timestamptz");
        return;
    case CREST_F_JSON:
        crest__sql_add(q, "jsonb");
        return;
    case CREST_F_UUID:
        crest__sql_add(q, "uuid");
        return;
    }
    if (d->min_length || (d->max_length && d->type == CREST_F_TEXT)) {
        crest__sql_add(q, " CHECK (char_length(");
        crest__sql_add(q, f->qname);
        crest__sql_add(q, ")");
        if (d->min_length) {
            snprintf(b, sizeof b, " >= %lld", (long long)d->min_length);
            crest__sql_add(q, b);
        }
        if (d->min_length && d->max_length && d->type == CREST_F_TEXT) {
            crest__sql_add(q, " AND char_length(");
            crest__sql_add(q, f->qname);
            crest__sql_add(q, ")");
        }
        if (d->max_length && d->type == CREST_F_TEXT) {
            snprintf(b, sizeof b, " <= %lld", (long long)d->max_length);
            crest__sql_add(q, b);
        }
        crest__sql_add(q, ")");
    }
    if (d->values) {
        crest__sql_add(q, " CHECK (");
        crest__sql_add(q, f->qname);
        crest__sql_add(q, " IN (");
        for (const char *const *e = d->values; *e; e++) {
            crest__sql_add(q, e == d->values ? "" : ", ");
            crest__sql_literal(q, *e);
        }
        crest__sql_add(q, "))");
    }
    if (d->has_min || d->has_max) {
        crest__sql_add(q, " CHECK (");
        if (d->has_min) {
            crest__sql_add(q, f->qname);
            crest__sql_add(q, " >= ");
            num(q, d->min);
        }
        if (d->has_min && d->has_max)
            crest__sql_add(q, " AND ");
        if (d->has_max) {
            crest__sql_add(q, f->qname);
            crest__sql_add(q, " <= ");
            num(q, d->max);
        }
        crest__sql_add(q, ")");
    }
}

/* ---- columns of tables crest did not make ---- */

/* SQLite's affinity of a declared type (section 3.1 of its datatype
 * page): 'i'nteger, 't'ext, 'b'lob, 'r'eal, 'n'umeric. */
static char affinity(const char *decl)
{
    char up[64];
    size_t n = 0;
    for (; decl && decl[n] && n < sizeof up - 1; n++)
        up[n] = (char)(decl[n] >= 'a' && decl[n] <= 'z' ? decl[n] - 32 : decl[n]);
    up[n] = 0;
    if (strstr(up, "INT"))
        return 'i';
    if (strstr(up, "CHAR") || strstr(up, "CLOB") || strstr(up, "TEXT"))
        return 't';
    if (!n || strstr(up, "BLOB"))
        return 'b';
    if (strstr(up, "REAL") || strstr(up, "FLOA") || strstr(up, "DOUB"))
        return 'r';
    return 'n';
}

static bool sqlite_id_ok(const char *decl) { return decl && !strcasecmp(decl, "INTEGER"); }

/* A column holds a field's values when their affinities agree (a numeric
 * or blob column holds anything; a real one integers too). */
static bool sqlite_holds(const crest__mfield *f, const char *decl)
{
    crest__arena a;
    crest__arena_init(&a, 256, 0);
    crest__sql q;
    crest__sql_init(&q, &a, crest__dialect_sqlite());
    sqlite_column_type(&q, f);
    char want = q.err || crest__buf_append(&q.text, "", 1) ? 'n' : affinity(q.text.ptr), got = affinity(decl);
    crest__sql_dispose(&q);
    crest__arena_dispose(&a);
    return want == got || got == 'n' || got == 'b' || (want == 'r' && got == 'i');
}

static bool starts(const char *s, const char *p) { return s && !strncasecmp(s, p, strlen(p)); }

static bool pg_id_ok(const char *decl) { return starts(decl, "bigint") || starts(decl, "integer"); }

/* PostgreSQL types hold what they hold: a field's values go in a column of
 * its family (format_type's names). */
static bool pg_holds(const crest__mfield *f, const char *decl)
{
    switch (f->f.type) {
    case CREST_F_STRING:
    case CREST_F_TEXT:
        return starts(decl, "character") || starts(decl, "text") || starts(decl, "citext");
    case CREST_F_REF: /* (a ref field is an int: see crest__mfield.ref) */
    case CREST_F_INT:
        return starts(decl, "smallint") || starts(decl, "integer") || starts(decl, "bigint") || starts(decl, "numeric");
    case CREST_F_FLOAT:
        return starts(decl, "real") || starts(decl, "double precision") || starts(decl, "numeric");
    case CREST_F_BOOL:
        return starts(decl, "boolean");
    case CREST_F_DATE:
        return starts(decl, "date");
    case CREST_F_DATETIME:
        return starts(decl, "timestamp");
    case CREST_F_JSON:
        return starts(decl, "json");
    case CREST_F_UUID:
        return starts(decl, "uuid");
    }
    return false;
}

static const crest__dialect sqlite_dialect = {
    .name = "sqlite",
    .numbered = false,
    .array_in = false,
    .returning_id = false,
    .true_sql = "1",
    .false_sql = "0",
    .ne_null_safe = " IS NOT ",
    .random = "random()",
    .begin = "BEGIN",
    .begin_write = "BEGIN IMMEDIATE",
    .commit = "COMMIT",
    .rollback = "ROLLBACK",
    .like = sqlite_like,
    .column_type = sqlite_column_type,
    .id_column = "INTEGER PRIMARY KEY",
    .id_column_ok = sqlite_id_ok,
    .column_holds = sqlite_holds,
    .now_date = "(strftime('%Y-%m-%d','now'))",
    .now_datetime = "(strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
    .record_head = "INSERT OR REPLACE",
    .record_tail = "",
    .sql_columns = "SELECT name, type, pk FROM pragma_table_info({1})",
    .sql_foreign_keys = "SELECT \"table\", \"from\", \"to\" FROM pragma_foreign_key_list({1}) AS k WHERE (SELECT "
                        "count(*) FROM pragma_foreign_key_list({1}) AS o WHERE o.id = k.id) = 1 ORDER BY id",
    .sql_primary_key = "SELECT name, (SELECT count(*) FROM pragma_table_info({1}) WHERE pk > 0) FROM "
                       "pragma_table_info({1}) WHERE pk = 1",
    .inline_references = true,
    .embed_cap_by_limit = true,
    .version_new = "(random() & 4503599627370495)",
    .version_create = "BIGINT NOT NULL DEFAULT ((random() & 4503599627370495))",
    .version_add = "BIGINT NOT NULL DEFAULT 0",
};

static const crest__dialect pg_dialect = {
    .name = "postgres",
    .numbered = true,
    .array_in = true,
    .returning_id = true,
    .true_sql = "TRUE",
    .false_sql = "FALSE",
    .ne_null_safe = " IS DISTINCT FROM ",
    .random = "random()",
    .begin = "BEGIN",
    .begin_write = "BEGIN", /* row locks, not a database lock */
    .commit = "COMMIT",
    .rollback = "ROLLBACK",
    .like = pg_like,
    .column_type = pg_column_type,
    .id_column = "bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    .id_column_ok = pg_id_ok,
    .column_holds = pg_holds,
    .now_date = "((now() AT TIME ZONE 'UTC')::date)",
    .now_datetime = "now()",
    .record_head = "INSERT",
    .record_tail = " ON CONFLICT (tbl, field) DO UPDATE SET type = excluded.type",
    .sql_columns = "SELECT a.attname, format_type(a.atttypid, a.atttypmod), coalesce((SELECT k.n FROM pg_index i, "
                   "unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) WHERE i.indrelid = c.oid AND i.indisprimary "
                   "AND k.attnum = a.attnum), 0) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN "
                   "pg_namespace s ON s.oid = c.relnamespace WHERE c.relname = {1} AND s.nspname = current_schema() "
                   "AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
    .sql_foreign_keys = "SELECT p.relname, a.attname, pa.attname FROM pg_constraint k JOIN pg_class c ON c.oid = "
                        "k.conrelid JOIN pg_namespace s ON s.oid = c.relnamespace JOIN pg_class p ON p.oid = "
                        "k.confrelid JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1] JOIN "
                        "pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = k.confkey[1] WHERE k.contype = "
                        "'f' AND cardinality(k.conkey) = 1 AND c.relname = {1} AND s.nspname = current_schema() "
                        "ORDER BY k.oid",
    .sql_primary_key = "SELECT a.attname, i.indnkeyatts FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN "
                       "pg_namespace s ON s.oid = c.relnamespace JOIN pg_attribute a ON a.attrelid = c.oid AND "
                       "a.attnum = i.indkey[0] WHERE i.indisprimary AND c.relname = {1} AND s.nspname = "
                       "current_schema()",
    /* CREATE INDEX IF NOT EXISTS skips (a NOTICE) when any relation holds
     * the name: model sync asks first, and stops on one that is no index. */
    .sql_name_taken = "SELECT CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'table' WHEN 'v' THEN 'view' WHEN "
                      "'m' THEN 'materialized view' WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' ELSE "
                      "'type' END FROM pg_class c JOIN pg_namespace s ON s.oid = c.relnamespace WHERE c.relname = {1} "
                      "AND s.nspname = current_schema() AND c.relkind NOT IN ('i', 'I')",
    .explain_json = "EXPLAIN (FORMAT JSON) ",
    .version_new = "(floor(random() * 4503599627370496)::bigint)",
    .version_create = "bigint NOT NULL DEFAULT (floor(random() * 4503599627370496)::bigint)",
    .version_add = "bigint NOT NULL DEFAULT (floor(random() * 4503599627370496)::bigint)",
    .nulls_large = true,
};

const crest__dialect *crest__dialect_sqlite(void) { return &sqlite_dialect; }

const crest__dialect *crest__dialect_postgres(void) { return &pg_dialect; }

const crest__dialect *crest__dialect_named(const char *name)
{
    if (name && !strcmp(name, "sqlite"))
        return &sqlite_dialect;
    if (name && !strcmp(name, "postgres"))
        return &pg_dialect;
    return NULL;
}
