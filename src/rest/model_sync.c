/* model_sync.c — keeps each model's table in step with the model at start-up:
 * creates it (with its seed rows), adds new columns, refuses changes that
 * would lose data, keeps its indexes and the _crest_fields record of each
 * column's crest type. Every table also has crest's row version column
 * (crest_version, see src/rest/etag.c): made with the table, or added to a
 * table from before it, each existing row given a random first version.
 * The statements come from src/query/schema.c and run on a synchronous
 * connection of the store (store.h), inside the caller's write
 * transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include "rest_internal.h"

/* One model's sync: where its statements run, the arena their text, binds
 * and results live in, and what its errors name. */
typedef struct sync_ctx {
    const crest__store_vt *vt;
    crest__conn *c;
    const crest__dialect *d;   /* the store's */
    crest__arena *a;
    const char *source;
    crest_error *err;
} sync_ctx;

/* The database's own message for e (start-up messages, never a client's). */
static const char *db_msg(const crest__dberr *e)
{
    if (e->message)
        return e->message;
    if (e->kind != CREST__DBERR_RAISED && e->detail)
        return e->detail;
    return e->kind == CREST__DBERR_NOMEM ? "out of memory" : "unknown error";
}

/* Runs q (one statement, its values bound) on the sync's connection; its
 * rows (out may be NULL) and any failure (e) in the sync's arena. 0 or -1. */
static int exec_sql(sync_ctx *x, const crest__sql *q, crest__rows **out, crest__dberr *e)
{
    if (q->err) {
        memset(e, 0, sizeof *e);
        e->kind = CREST__DBERR_NOMEM;
        return -1;
    }
    crest__query qq = {.sql = q->text.ptr, .len = q->text.len, .binds = q->binds, .nbinds = q->nbinds,
                       .flags = CREST__QF_NOCACHE};
    return x->vt->exec(x->c, &qq, x->a, out, e);
}

/* Runs q, a statement whose failure stops start-up; q is disposed. */
static int run(sync_ctx *x, crest__sql *q)
{
    int rc = 0;
    crest__dberr e;
    if (q->err)
        rc = CREST_ENOMEM;
    else if (exec_sql(x, q, NULL, &e))
        rc = crest__error_set(x->err, CREST_ECONFIG, x->source, 0, "database: %s (while running: %.*s)",
                              db_msg(&e), (int)(q->text.len < 200 ? q->text.len : 200), q->text.ptr);
    crest__sql_dispose(q);
    return rc;
}

/* Runs q, the statement making the index `name` of m (q is disposed). A
 * store whose CREATE INDEX IF NOT EXISTS passes over a name that a table
 * (or view, sequence...) already holds, as PostgreSQL's does, is asked
 * first, and the start stops there as on SQLite, which refuses such a
 * statement by itself. */
static int make_index(sync_ctx *x, const crest__model *m, const char *name, crest__sql *q)
{
    if (!name) {
        crest__sql_dispose(q);
        return CREST_ENOMEM;
    }
    if (!x->d->sql_name_taken)
        return run(x, q);
    crest__sql t;
    crest__sql_init(&t, x->a, x->d);
    crest__compile_name_taken(&t, name);
    crest__rows *r = NULL;
    crest__dberr e;
    int rc = 0;
    if (exec_sql(x, &t, &r, &e)) {
        rc = crest__error_set(x->err, CREST_ECONFIG, x->source, 0,
                              "database: %s (while checking the name of the index %s)", db_msg(&e), name);
    } else if (r->nrows && r->ncols && crest__vkind_is_text((crest__vkind)crest__rows_cell(r, 0, 0)->k)) {
        const char *kind = crest__rows_cell(r, 0, 0)->v.s;
        rc = crest__error_set(x->err, CREST_ECONFIG, x->source, 0,
                              "model %s: cannot make the index %s: there is already %s %s named %s", m->name, name,
                              crest__article(kind), kind, name);
    }
    crest__sql_dispose(&t);
    if (rc) {
        crest__sql_dispose(q);
        return rc;
    }
    return run(x, q);
}

static int record_field(sync_ctx *x, const crest__model *m, const crest__mfield *f)
{
    crest__sql q;
    crest__sql_init(&q, x->a, x->d);
    crest__compile_fields_record(&q, m, f);
    return run(x, &q);
}

/* Inserts the model's seed rows (checked like a create, defaults applied). */
/* On an error, *at is the seed row it is about, or -1 for the seed as a whole. */
static int seed(sync_ctx *x, const crest__model *m, int *at)
{
    const char *source = x->source;
    crest_error *err = x->err;
    *at = -1;
    json_error_t je;
    json_t *rows = json_loads(m->def->seed, 0, &je);
    if (!json_is_array(rows)) {
        json_decref(rows);
        return crest__error_set(err, CREST_ECONFIG, source, 0, "model %s: seed: expected a list of rows", m->name);
    }
    crest__arena *a = x->a;
    crest__val *vals = calloc(m->nfields, sizeof *vals);
    int rc = vals ? 0 : CREST_ENOMEM;
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
        if (rc)
            break;
        if (!json_is_object(row)) {
            rc = crest__error_set(err, CREST_ECONFIG, source, 0, "model %s: seed[%zu]: expected an object", m->name, i);
            *at = (int)i;
            break;
        }
        const char *k;
        json_t *kv;
        json_object_foreach(row, k, kv) {
            const crest__mfield *f = crest__model_field(m, k);
            if (!f || f->idx == 0) {
                rc = crest__error_set(err, CREST_ECONFIG, source, 0, "model %s: seed[%zu]: '%s' is not a field", m->name,
                                      i, k);
                *at = (int)i;
                break;
            }
        }
        if (rc)
            break;
        for (unsigned f = 1; f < m->nfields && !rc; f++) {
            const crest__mfield *mf = &m->fields[f];
            bool set;
            const char *msg = crest__field_input(a, mf, json_object_get(row, mf->f.name), true, &vals[f], &set);
            if (msg) {
                rc = crest__error_set(err, CREST_ECONFIG, source, 0, "model %s: seed[%zu].%s %s", m->name, i,
                                      mf->f.name, msg);
                *at = (int)i;
            }
        }
        if (rc)
            break;
        /* Text lives in the arena (or the seed JSON) until the statement has run. */
        crest__sql q;
        crest__sql_init(&q, a, x->d);
        crest__insert_plan ins = {.m = m, .vals = vals};
        crest__compile_insert(&q, &ins);
        crest__dberr e;
        if (q.err) {
            rc = crest__error_set(err, CREST_EIO, source, 0, "model %s: seed: out of memory", m->name);
        } else if (exec_sql(x, &q, NULL, &e)) {
            rc = crest__error_set(err, CREST_ECONFIG, source, 0, "model %s: seed[%zu]: %s", m->name, i,
                                  db_msg(&e));
            *at = (int)i;
        }
        crest__sql_dispose(&q);
    }
    free(vals);
    json_decref(rows);
    return rc;
}

/* What crest recorded as the type of `col` when it made the column, copied
 * into buf; NULL when it did not record one (or it cannot be read). */
static const char *recorded_type(sync_ctx *x, const crest__model *m, const char *col, char *buf, size_t cap)
{
    crest__sql q;
    crest__sql_init(&q, x->a, x->d);
    crest__compile_fields_lookup(&q, m, col);
    crest__rows *r = NULL;
    crest__dberr e;
    const char *was = NULL;
    if (!exec_sql(x, &q, &r, &e) && r->nrows && r->ncols) {
        const crest__cell *c = crest__rows_cell(r, 0, 0);
        was = buf;
        if (c->k == CREST__V_INT) /* a type crest did not write: as SQLite gives its text */
            snprintf(buf, cap, "%lld", (long long)c->v.i);
        else if (c->k == CREST__V_FLOAT)
            snprintf(buf, cap, "%.15g", c->v.f);
        else if (c->k != CREST__V_NULL)
            snprintf(buf, cap, "%s", c->v.s);
        else
            was = NULL;
    }
    crest__sql_dispose(&q);
    return was;
}

int crest__model_sync(crest__model *m, crest__store *s, crest__conn *c, const char *source, crest_error *err,
                      int *seed_at)
{
    int unused;
    if (!seed_at)
        seed_at = &unused;
    /* The store speaks the dialect of its name ("sqlite"). */
    const crest__dialect *d = crest__dialect_named(s->vt->name);
    if (!d)
        return crest__error_set(err, CREST_ECONFIG, source, 0, "database: the store %s has no SQL dialect",
                                s->vt->name);
    crest__arena a;
    crest__arena_init(&a, 4096, 0);
    sync_ctx x = {.vt = s->vt, .c = c, .d = d, .a = &a, .source = source, .err = err};
    crest__sql q;
    crest__sql_init(&q, &a, d);
    crest__compile_fields_table(&q);
    int rc = run(&x, &q);
    if (rc) {
        crest__arena_dispose(&a);
        return rc;
    }
    bool *have = calloc(m->nfields, sizeof *have);
    if (!have) {
        crest__arena_dispose(&a);
        return CREST_ENOMEM;
    }
    /* The table's columns: name, declared type, position in the primary key. */
    crest__sql_init(&q, &a, d);
    crest__compile_table_columns(&q, m->table);
    crest__rows *cols = NULL;
    crest__dberr e;
    if (exec_sql(&x, &q, &cols, &e)) {
        crest__sql_dispose(&q);
        rc = crest__error_set(err, CREST_EIO, source, 0, "database: %s", db_msg(&e));
        goto out;
    }
    crest__sql_dispose(&q);
    bool exists = cols->nrows > 0 && cols->ncols >= 3, have_version = false;
    for (size_t r = 0; exists && r < cols->nrows; r++) {
        const crest__cell *cc = crest__rows_cell(cols, r, 0), *cd = crest__rows_cell(cols, r, 1),
                          *cp = crest__rows_cell(cols, r, 2);
        const char *col = crest__vkind_is_text((crest__vkind)cc->k) ? cc->v.s : "";
        const char *decl = crest__vkind_is_text((crest__vkind)cd->k) ? cd->v.s : NULL;
        int64_t pk = cp->k == CREST__V_INT ? cp->v.i : 0;
        const crest__mfield *f = crest__model_field(m, col);
        if (!strcmp(col, CREST__VERSION_COL)) { /* crest's own, on every table */
            have_version = true;
            continue;
        }
        if (!f) {
            rc = crest__error_set(err, CREST_ECONFIG, source, 0,
                                  "model %s: table %s has a column '%s' that is not a field of the model; removing a "
                                  "field would lose its data: add the field back, or drop the column by hand",
                                  m->name, m->table, col);
            goto out;
        }
        if (f->idx == 0) {
            if (pk != 1 || !d->id_column_ok(decl)) {
                rc = crest__error_set(err, CREST_ECONFIG, source, 0,
                                      "model %s: table %s exists, but its id is not %s %s", m->name, m->table,
                                      crest__article(d->id_column), d->id_column);
                goto out;
            }
            have[0] = true;
            continue;
        }
        have[f->idx] = true;
        char was_buf[32];
        const char *was = recorded_type(&x, m, col, was_buf, sizeof was_buf);
        const char *now = crest__field_type_name(f->f.type);
        bool same_kind = (!strcmp(now, "string") || !strcmp(now, "text")) && was &&
                         (!strcmp(was, "string") || !strcmp(was, "text"));
        if (was && strcmp(was, now) && !same_kind) {
            rc = crest__error_set(err, CREST_ECONFIG, source, 0,
                                  "model %s: field %s changed type from %s to %s; existing data could be lost, so "
                                  "crest does not change the column: migrate it by hand",
                                  m->name, col, was, now);
            goto out;
        }
        if (!was) {
            /* A column crest did not make: its declared type must hold the field's values. */
            if (!d->column_holds(f, decl)) {
                rc = crest__error_set(err, CREST_ECONFIG, source, 0,
                                      "model %s: column %s.%s is declared %s, which does not hold %s %s field",
                                      m->name, m->table, col, decl && *decl ? decl : "without a type",
                                      crest__article(now), now);
                goto out;
            }
        }
        if ((!was || strcmp(was, now)) && (rc = record_field(&x, m, f)))
            goto out;
    }
    if (!exists) {
        crest__sql_init(&q, &a, d);
        crest__compile_create_table(&q, m);
        if ((rc = run(&x, &q)))
            goto out;
        for (unsigned i = 1; i < m->nfields; i++)
            if ((rc = record_field(&x, m, &m->fields[i])))
                goto out;
        if (m->def->seed && (rc = seed(&x, m, seed_at)))
            goto out;
    } else {
        if (!have[0]) {
            rc = crest__error_set(err, CREST_ECONFIG, source, 0, "model %s: table %s exists without an id column",
                                  m->name, m->table);
            goto out;
        }
        /* A table from before row versions: each row gets a first one. */
        if (!have_version) {
            crest__sql_init(&q, &a, d);
            crest__compile_add_version(&q, m);
            if ((rc = run(&x, &q)))
                goto out;
            crest__sql_init(&q, &a, d);
            crest__compile_fill_version(&q, m);
            if ((rc = run(&x, &q)))
                goto out;
        }
        for (unsigned i = 1; i < m->nfields; i++) {
            if (have[i])
                continue;
            const crest__mfield *f = &m->fields[i];
            crest__sql_init(&q, &a, d);
            crest__compile_add_column(&q, m, f);
            if ((rc = run(&x, &q)) || (rc = record_field(&x, m, f)))
                goto out;
            if (f->def_now) { /* existing rows get the time of the change */
                crest__val v;
                bool set;
                if (crest__field_input(&a, f, NULL, true, &v, &set)) {
                    rc = CREST_ENOMEM;
                    goto out;
                }
                crest__sql_init(&q, &a, d);
                crest__compile_fill_column(&q, m, f, v);
                if ((rc = run(&x, &q)))
                    goto out;
            }
        }
    }
    for (unsigned i = 1; i < m->nfields; i++) {
        const crest__mfield *f = &m->fields[i];
        if (!f->f.unique && !f->f.index)
            continue;
        crest__sql_init(&q, &a, d);
        crest__compile_field_index(&q, m, f);
        if ((rc = make_index(&x, m, crest__field_index_name(&a, m, f), &q)))
            goto out;
    }
    /* Composite indexes, "a,-b" each (crest__compile_index). */
    for (const char *const *ix = m->def->indexes; ix && *ix; ix++) {
        crest__sql_init(&q, &a, d);
        crest__compile_index(&q, m, *ix);
        if ((rc = make_index(&x, m, crest__index_name(&a, m, *ix), &q)))
            goto out;
    }
out:
    free(have);
    crest__arena_dispose(&a);
    return rc;
}

int crest__model_sync_refs(crest__model *m, crest__store *s, crest__conn *c, const char *source, crest_error *err)
{
    bool any = false;
    for (unsigned i = 1; i < m->nfields; i++)
        any |= m->fields[i].ref != NULL;
    if (!any)
        return 0;
    const crest__dialect *d = crest__dialect_named(s->vt->name);
    crest__arena a;
    crest__arena_init(&a, 4096, 0);
    sync_ctx x = {.vt = s->vt, .c = c, .d = d, .a = &a, .source = source, .err = err};
    crest__sql q;
    crest__sql_init(&q, &a, d);
    crest__compile_foreign_keys(&q, m->table);
    crest__rows *fks = NULL;
    crest__dberr e;
    int rc = 0;
    if (exec_sql(&x, &q, &fks, &e))
        rc = crest__error_set(err, CREST_EIO, source, 0, "database: %s", db_msg(&e));
    crest__sql_dispose(&q);
    for (unsigned i = 1; i < m->nfields && !rc; i++) {
        const crest__mfield *f = &m->fields[i];
        if (!f->ref)
            continue;
        const char *parent = NULL;
        for (size_t r = 0; r < fks->nrows && fks->ncols >= 2; r++) {
            const crest__cell *ct = crest__rows_cell(fks, r, 0), *cc = crest__rows_cell(fks, r, 1);
            if (crest__vkind_is_text((crest__vkind)cc->k) && !strcmp(cc->v.s, f->f.name))
                parent = crest__vkind_is_text((crest__vkind)ct->k) ? ct->v.s : "";
        }
        const char *target = f->ref->target->table;
        if (parent && strcmp(parent, target))
            rc = crest__error_set(err, CREST_ECONFIG, source, 0,
                                  "model %s: column %s.%s is a foreign key to %s, not to %s (model %s): change it "
                                  "by hand",
                                  m->name, m->table, f->f.name, parent, target, f->ref->target->name);
        else if (!parent && d->inline_references)
            rc = crest__error_set(err, CREST_ECONFIG, source, 0,
                                  "model %s: column %s.%s exists without a foreign key, and SQLite cannot add one to "
                                  "a column: rebuild the table by hand (or name a new field)",
                                  m->name, m->table, f->f.name);
        else if (!parent) {
            crest__sql_init(&q, &a, d);
            crest__compile_add_foreign_key(&q, m, f);
            rc = run(&x, &q);
        }
    }
    crest__arena_dispose(&a);
    return rc;
}
