/* schema.c — the statements that keep a model's table in step with the
 * model (create table, add column, indexes, crest's record of column types)
 * and the schema introspection reads model sync and foreign-key messages
 * need, for either dialect. Defaults are the only constants written into
 * SQL text (DDL takes no parameters); they come from the app's model. */
#include <stdio.h>
#include <stdlib.h>

#include "query.h"

static const char *const type_names[] = {"?", "string", "text", "int", "float", "bool", "date", "datetime", "json", "uuid"};

const char *crest__field_type_name(crest_field_type t)
{
    return (unsigned)t < CREST_ARRAY_LEN(type_names) ? type_names[t] : "?";
}

/* A constant default as an SQL literal: a bool as the dialect's true or
 * false, numbers as numbers, anything else as quoted text ('it''s'). */
static void default_literal(crest__sql *q, const crest__mfield *f)
{
    const json_t *v = f->defv;
    char b[40];
    if (f->f.type == CREST_F_BOOL) {
        crest__sql_add(q, json_is_true(v) ? q->d->true_sql : q->d->false_sql);
        return;
    }
    if (json_is_integer(v)) {
        snprintf(b, sizeof b, "%lld", (long long)json_integer_value(v));
        crest__sql_add(q, b);
        return;
    }
    if (json_is_real(v)) {
        snprintf(b, sizeof b, "%.17g", json_real_value(v));
        crest__sql_add(q, b);
        return;
    }
    char *text = f->f.type == CREST_F_JSON || !json_is_string(v) ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY)
                                                                 : strdup(json_string_value(v));
    if (!text) {
        q->err = CREST_ENOMEM;
        return;
    }
    crest__sql_literal(q, text);
    free(text);
}

/* REFERENCES <target> ("id") ON DELETE ... of the ref field f. */
static void references(crest__sql *q, const crest__mfield *f)
{
    static const char *const actions[] = {"RESTRICT", "CASCADE", "SET NULL"};
    crest__sql_add(q, " REFERENCES ");
    crest__sql_add(q, f->ref->target->qtable);
    crest__sql_add(q, " (");
    crest__sql_add(q, f->ref->target->fields[0].qname);
    crest__sql_add(q, ") ON DELETE ");
    crest__sql_add(q, actions[f->ref->def->on_delete]);
}

/* <name> <type> [REFERENCES ...] [DEFAULT ...]; a `now` default only when
 * creating. */
static void column_def(crest__sql *q, const crest__mfield *f, bool create)
{
    crest__sql_add(q, f->qname);
    crest__sql_add(q, " ");
    q->d->column_type(q, f);
    if (f->ref && q->d->inline_references)
        references(q, f);
    if (f->defv) {
        crest__sql_add(q, " DEFAULT ");
        default_literal(q, f);
    } else if (f->def_now && create) {
        crest__sql_add(q, " DEFAULT ");
        crest__sql_add(q, f->f.type == CREST_F_DATE ? q->d->now_date : q->d->now_datetime);
    }
}

void crest__compile_create_table(crest__sql *q, const crest__model *m)
{
    crest__sql_add(q, "CREATE TABLE ");
    crest__sql_add(q, m->qtable);
    crest__sql_add(q, " (");
    crest__sql_add(q, m->fields[0].qname);
    crest__sql_add(q, " ");
    crest__sql_add(q, q->d->id_column);
    for (unsigned i = 1; i < m->nfields; i++) {
        crest__sql_add(q, ", ");
        column_def(q, &m->fields[i], true);
    }
    crest__sql_add(q, ", " CREST__VERSION_QCOL " ");
    crest__sql_add(q, q->d->version_create);
    crest__sql_add(q, ")");
}

void crest__compile_add_version(crest__sql *q, const crest__model *m)
{
    crest__sql_add(q, "ALTER TABLE ");
    crest__sql_add(q, m->qtable);
    crest__sql_add(q, " ADD COLUMN " CREST__VERSION_QCOL " ");
    crest__sql_add(q, q->d->version_add);
}

void crest__compile_fill_version(crest__sql *q, const crest__model *m)
{
    crest__sql_add(q, "UPDATE ");
    crest__sql_add(q, m->qtable);
    crest__sql_add(q, " SET " CREST__VERSION_QCOL " = ");
    crest__sql_add(q, q->d->version_new);
}

void crest__compile_add_column(crest__sql *q, const crest__model *m, const crest__mfield *f)
{
    crest__sql_add(q, "ALTER TABLE ");
    crest__sql_add(q, m->qtable);
    crest__sql_add(q, " ADD COLUMN ");
    column_def(q, f, false);
}

void crest__compile_fill_column(crest__sql *q, const crest__model *m, const crest__mfield *f, crest__val v)
{
    crest__sql_add(q, "UPDATE ");
    crest__sql_add(q, m->qtable);
    crest__sql_add(q, " SET ");
    crest__sql_add(q, f->qname);
    crest__sql_add(q, " = ");
    crest__sql_bind(q, v);
}

void crest__compile_add_foreign_key(crest__sql *q, const crest__model *m, const crest__mfield *f)
{
    crest__sql_add(q, "ALTER TABLE ");
    crest__sql_add(q, m->qtable);
    crest__sql_add(q, " ADD CONSTRAINT ");
    const char *name = crest__arena_printf(q->arena, "%s_%s_fkey", m->table, f->f.name);
    if (!name) {
        q->err = CREST_ENOMEM;
        return;
    }
    crest__sql_ident(q, name);
    crest__sql_add(q, " FOREIGN KEY (");
    crest__sql_add(q, f->qname);
    crest__sql_add(q, ")");
    references(q, f);
}

const char *crest__field_index_name(crest__arena *a, const crest__model *m, const crest__mfield *f)
{
    return crest__arena_printf(a, "%s_%s_%s", m->table, f->f.name, f->f.unique ? "key" : "idx");
}

/* CREATE [UNIQUE] INDEX IF NOT EXISTS "<name>" ON <m> (<cols>) (name NULL: out of memory). */
static void create_index(crest__sql *q, const crest__model *m, bool unique, const char *name, const char *cols)
{
    if (!name) {
        q->err = CREST_ENOMEM;
        return;
    }
    crest__sql_add(q, unique ? "CREATE UNIQUE INDEX IF NOT EXISTS " : "CREATE INDEX IF NOT EXISTS ");
    crest__sql_ident(q, name);
    crest__sql_add(q, " ON ");
    crest__sql_add(q, m->qtable);
    crest__sql_add(q, " (");
    crest__sql_add(q, cols);
    crest__sql_add(q, ")");
}

void crest__compile_field_index(crest__sql *q, const crest__model *m, const crest__mfield *f)
{
    create_index(q, m, f->f.unique, crest__field_index_name(q->arena, m, f), f->qname);
}

/* A composite index's name (tasks_a_b_idx) into the arena a and, when cols
 * is not NULL, its column list ("a", "b" DESC) into *cols (malloc'd).
 * NULL when out of memory. */
static const char *index_parts(crest__arena *a, const crest__model *m, const char *spec, char **cols_out)
{
    crest__buf cols, name;
    crest__buf_init(&cols, 0);
    crest__buf_init(&name, 0);
    int rc = crest__buf_appends(&name, m->table);
    char *copy = strdup(spec), *save = NULL;
    if (!copy)
        rc = CREST_ENOMEM;
    for (char *c = copy ? strtok_r(copy, ",", &save) : NULL; c && !rc; c = strtok_r(NULL, ",", &save)) {
        while (*c == ' ')
            c++;
        bool desc = *c == '-';
        const crest__mfield *f = crest__model_field(m, c + desc);
        rc = crest__buf_appendf(&cols, "%s%s%s", cols.len ? ", " : "", f ? f->qname : "?", desc ? " DESC" : "");
        if (!rc)
            rc = crest__buf_appendf(&name, "_%s", c + desc);
    }
    free(copy);
    if (!rc)
        rc = crest__buf_appends(&name, "_idx");
    if (!rc)
        rc = crest__buf_append(&cols, "", 1);
    const char *out = rc ? NULL : crest__arena_strndup(a, name.ptr, name.len);
    if (out && cols_out) {
        *cols_out = cols.ptr; /* handed on */
        cols.ptr = NULL;
    }
    crest__buf_dispose(&cols);
    crest__buf_dispose(&name);
    return out;
}

const char *crest__index_name(crest__arena *a, const crest__model *m, const char *spec)
{
    return index_parts(a, m, spec, NULL);
}

/* "a,-b" → CREATE INDEX IF NOT EXISTS "tasks_a_b_idx" ON "tasks" ("a", "b" DESC). */
void crest__compile_index(crest__sql *q, const crest__model *m, const char *spec)
{
    char *cols = NULL;
    const char *name = index_parts(q->arena, m, spec, &cols);
    create_index(q, m, false, name, cols);
    free(cols);
}

/* ---- crest's record of the columns it made ---- */

void crest__compile_fields_table(crest__sql *q)
{
    crest__sql_add(q, "CREATE TABLE IF NOT EXISTS _crest_fields (tbl TEXT NOT NULL, field TEXT NOT NULL, "
                      "type TEXT NOT NULL, PRIMARY KEY (tbl, field))");
}

static crest__val text_val(const char *s)
{
    return (crest__val){.k = CREST__V_TEXT, .s = s, .n = strlen(s)};
}

void crest__compile_meta_table(crest__sql *q)
{
    crest__sql_add(q, "CREATE TABLE IF NOT EXISTS crest_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)");
}

void crest__compile_meta_put(crest__sql *q, const char *key, const char *value)
{
    crest__sql_add(q, "INSERT INTO crest_meta (key, value) VALUES (");
    crest__sql_bind(q, text_val(key));
    crest__sql_add(q, ", ");
    crest__sql_bind(q, text_val(value));
    crest__sql_add(q, ") ON CONFLICT (key) DO NOTHING");
}

void crest__compile_meta_get(crest__sql *q, const char *key)
{
    crest__sql_add(q, "SELECT value FROM crest_meta WHERE key = ");
    crest__sql_bind(q, text_val(key));
}

void crest__compile_fields_record(crest__sql *q, const crest__model *m, const crest__mfield *f)
{
    crest__sql_add(q, q->d->record_head);
    crest__sql_add(q, " INTO _crest_fields (tbl, field, type) VALUES (");
    crest__sql_bind(q, text_val(m->table));
    crest__sql_add(q, ", ");
    crest__sql_bind(q, text_val(f->f.name));
    crest__sql_add(q, ", ");
    crest__sql_bind(q, text_val(crest__field_type_name(f->f.type)));
    crest__sql_add(q, ")");
    crest__sql_add(q, q->d->record_tail);
}

void crest__compile_fields_lookup(crest__sql *q, const crest__model *m, const char *column)
{
    crest__sql_add(q, "SELECT type FROM _crest_fields WHERE tbl = ");
    crest__sql_bind(q, text_val(m->table));
    crest__sql_add(q, " AND field = ");
    crest__sql_bind(q, text_val(column));
}

/* ---- introspection ---- */

/* A dialect's introspection text, with the table's name bound once as
 * parameter 1, which the text names {1} (wherever it needs it). */
static void with_table(crest__sql *q, const char *text, const char *table)
{
    for (const char *s = text, *e; *s; s = e + 3) {
        if (!(e = strstr(s, "{1}"))) {
            crest__sql_add(q, s);
            break;
        }
        char *part = strndup(s, (size_t)(e - s));
        if (!part) {
            q->err = CREST_ENOMEM;
            return;
        }
        crest__sql_add(q, part);
        free(part);
        crest__sql_ref(q, 1);
    }
    crest__sql_push(q, text_val(table));
}

void crest__compile_table_columns(crest__sql *q, const char *table)
{
    with_table(q, q->d->sql_columns, table);
}

void crest__compile_foreign_keys(crest__sql *q, const char *table)
{
    with_table(q, q->d->sql_foreign_keys, table);
}

void crest__compile_primary_key(crest__sql *q, const char *table)
{
    with_table(q, q->d->sql_primary_key, table);
}

void crest__compile_name_taken(crest__sql *q, const char *name)
{
    if (q->d->sql_name_taken)
        with_table(q, q->d->sql_name_taken, name);
}

void crest__compile_parent_exists(crest__sql *q, const char *table, const char *column, crest__val v)
{
    crest__sql_add(q, "SELECT 1 FROM ");
    crest__sql_ident(q, table);
    crest__sql_add(q, " WHERE ");
    crest__sql_ident(q, column);
    crest__sql_add(q, " = ");
    crest__sql_bind(q, v);
}
