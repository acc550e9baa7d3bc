/* model_sync.c — keeps each model's table in step with the model at start-up:
 * creates it (with its seed rows), adds new columns, refuses changes that
 * would lose data, keeps its indexes and the _crest_fields record of each
 * column's crest type. The statements come from src/query/schema.c. */
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>

#include <sqlite3.h>

#include "rest_internal.h"

/* Binds v as parameter i of st (model sync still runs on the connection's
 * native handle; it moves onto the store's calls next). */
static void bind_val(sqlite3_stmt *st, int i, const crest__val *v)
{
    if (v->k == CREST__V_NULL)
        sqlite3_bind_null(st, i);
    else if (v->k == CREST__V_INT || v->k == CREST__V_BOOL)
        sqlite3_bind_int64(st, i, v->i);
    else if (v->k == CREST__V_FLOAT)
        sqlite3_bind_double(st, i, v->f);
    else
        sqlite3_bind_text(st, i, v->s ? v->s : "", (int)v->n, SQLITE_STATIC);
}

/* ---- schema ---- */

/* model.c runs its schema statements on SQLite itself (until the store
 * does): their text comes from the query stage in SQLite's dialect. */
static const crest__dialect *dialect(void) { return crest__dialect_sqlite(); }

/* The affinity SQLite gives a declared type (section 3.1 of its datatype doc). */
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

/* The affinity of the column type crest declares for f. */
static char field_affinity(const crest__mfield *f)
{
    crest__arena a;
    crest__arena_init(&a, 256, 0);
    crest__sql q;
    crest__sql_init(&q, &a, dialect());
    dialect()->column_type(&q, f);
    char c = q.err ? 'n' : affinity(q.text.ptr);
    crest__sql_dispose(&q);
    crest__arena_dispose(&a);
    return c;
}

/* Runs q (one statement, its values bound); q is disposed. */
static int run(sqlite3 *db, crest__sql *q, const char *source, crest_error *err)
{
    int rc = 0;
    sqlite3_stmt *st = NULL;
    if (q->err) {
        rc = CREST_ENOMEM;
    } else if (sqlite3_prepare_v2(db, q->text.ptr, (int)q->text.len, &st, NULL) != SQLITE_OK) {
        rc = crest__error_set(err, CREST_ECONFIG, source, 0, "database: %s (while running: %.200s)",
                              sqlite3_errmsg(db), q->text.ptr);
    } else {
        for (unsigned i = 0; i < q->nbinds; i++)
            bind_val(st, (int)i + 1, &q->binds[i]);
        int s;
        while ((s = sqlite3_step(st)) == SQLITE_ROW)
            ;
        if (s != SQLITE_DONE)
            rc = crest__error_set(err, CREST_ECONFIG, source, 0, "database: %s (while running: %.200s)",
                                  sqlite3_errmsg(db), q->text.ptr);
    }
    sqlite3_finalize(st);
    crest__sql_dispose(q);
    return rc;
}

static int record_field(sqlite3 *db, crest__arena *a, const crest__model *m, const crest__mfield *f,
                        const char *source, crest_error *err)
{
    crest__sql q;
    crest__sql_init(&q, a, dialect());
    crest__compile_fields_record(&q, m, f);
    return run(db, &q, source, err);
}

/* Inserts the model's seed rows (checked like a create, defaults applied). */
/* On an error, *at is the seed row it is about, or -1 for the seed as a whole. */
static int seed(const crest__model *m, sqlite3 *db, const char *source, crest_error *err, int *at)
{
    *at = -1;
    json_error_t je;
    json_t *rows = json_loads(m->def->seed, 0, &je);
    if (!json_is_array(rows)) {
        json_decref(rows);
        return crest__error_set(err, CREST_ECONFIG, source, 0, "model %s: seed: expected a list of rows", m->name);
    }
    crest__arena a;
    crest__arena_init(&a, 4096, 0);
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
            json_t *v = json_object_get(row, mf->f.name);
            const char *msg = NULL;
            if (!v && mf->def_now) {
                char now[40];
                crest__now_stored(now, sizeof now);
                if (mf->f.type == CREST_F_DATE)
                    now[10] = 0;
                vals[f] = (crest__val){.k = mf->f.type == CREST_F_DATE ? CREST__V_DATE : CREST__V_DATETIME,
                                       .s = crest__arena_strdup(&a, now), .n = strlen(now)};
                if (!vals[f].s)
                    rc = CREST_ENOMEM;
                continue;
            }
            if (!v && !mf->defv && mf->f.required)
                msg = "is required";
            else
                msg = crest__field_value(&a, mf, v ? v : mf->defv, &vals[f]);
            if (msg) {
                rc = crest__error_set(err, CREST_ECONFIG, source, 0, "model %s: seed[%zu].%s %s", m->name, i,
                                      mf->f.name, msg);
                *at = (int)i;
            }
        }
        if (rc)
            break;
        /* Text lives in `a` (or the seed JSON) until the step. */
        crest__sql q;
        crest__sql_init(&q, &a, dialect());
        crest__insert_plan ins = {.m = m, .vals = vals};
        crest__compile_insert(&q, &ins);
        sqlite3_stmt *st;
        if (q.err || sqlite3_prepare_v2(db, q.text.ptr, (int)q.text.len, &st, NULL) != SQLITE_OK) {
            crest__sql_dispose(&q);
            rc = crest__error_set(err, CREST_EIO, source, 0, "model %s: seed: %s", m->name, sqlite3_errmsg(db));
            break;
        }
        for (unsigned b = 0; b < q.nbinds; b++)
            bind_val(st, (int)b + 1, &q.binds[b]);
        if (sqlite3_step(st) != SQLITE_DONE) {
            rc = crest__error_set(err, CREST_ECONFIG, source, 0, "model %s: seed[%zu]: %s", m->name, i,
                                  sqlite3_errmsg(db));
            *at = (int)i;
        }
        sqlite3_finalize(st);
        crest__sql_dispose(&q);
    }
    free(vals);
    crest__arena_dispose(&a);
    json_decref(rows);
    return rc;
}

/* What crest recorded as the type of `col` when it made the column, copied
 * into buf; NULL when it did not record one. */
static const char *recorded_type(sqlite3 *db, crest__arena *a, const crest__model *m, const char *col, char *buf,
                                 size_t cap)
{
    crest__sql q;
    crest__sql_init(&q, a, dialect());
    crest__compile_fields_lookup(&q, m, col);
    sqlite3_stmt *rt = NULL;
    const char *was = NULL;
    if (!q.err && sqlite3_prepare_v2(db, q.text.ptr, (int)q.text.len, &rt, NULL) == SQLITE_OK) {
        for (unsigned b = 0; b < q.nbinds; b++)
            bind_val(rt, (int)b + 1, &q.binds[b]);
        if (sqlite3_step(rt) == SQLITE_ROW && sqlite3_column_text(rt, 0)) {
            snprintf(buf, cap, "%s", (const char *)sqlite3_column_text(rt, 0));
            was = buf;
        }
    }
    sqlite3_finalize(rt);
    crest__sql_dispose(&q);
    return was;
}

int crest__model_sync(crest__model *m, void *dbp, const char *source, crest_error *err, int *seed_at)
{
    int unused;
    if (!seed_at)
        seed_at = &unused;
    sqlite3 *db = dbp;
    crest__arena a;
    crest__arena_init(&a, 4096, 0);
    crest__sql q;
    crest__sql_init(&q, &a, dialect());
    crest__compile_fields_table(&q);
    int rc = run(db, &q, source, err);
    if (rc) {
        crest__arena_dispose(&a);
        return rc;
    }
    sqlite3_stmt *st = NULL;
    bool *have = calloc(m->nfields, sizeof *have);
    if (!have) {
        crest__arena_dispose(&a);
        return CREST_ENOMEM;
    }
    crest__sql_init(&q, &a, dialect());
    crest__compile_table_columns(&q, m->table);
    if (q.err || sqlite3_prepare_v2(db, q.text.ptr, (int)q.text.len, &st, NULL) != SQLITE_OK) {
        crest__sql_dispose(&q);
        rc = crest__error_set(err, CREST_EIO, source, 0, "database: %s", sqlite3_errmsg(db));
        goto out;
    }
    for (unsigned b = 0; b < q.nbinds; b++)
        bind_val(st, (int)b + 1, &q.binds[b]);
    crest__sql_dispose(&q);
    bool exists = false;
    while (sqlite3_step(st) == SQLITE_ROW) {
        exists = true;
        const char *col = (const char *)sqlite3_column_text(st, 0);
        const char *decl = (const char *)sqlite3_column_text(st, 1);
        int pk = sqlite3_column_int(st, 2);
        const crest__mfield *f = crest__model_field(m, col);
        if (!f) {
            rc = crest__error_set(err, CREST_ECONFIG, source, 0,
                                  "model %s: table %s has a column '%s' that is not a field of the model; removing a "
                                  "field would lose its data: add the field back, or drop the column by hand",
                                  m->name, m->table, col);
            goto out;
        }
        if (f->idx == 0) {
            if (pk != 1 || affinity(decl) != 'i' || strcasecmp(decl, "INTEGER")) {
                rc = crest__error_set(err, CREST_ECONFIG, source, 0,
                                      "model %s: table %s exists, but its id is not an INTEGER PRIMARY KEY", m->name,
                                      m->table);
                goto out;
            }
            have[0] = true;
            continue;
        }
        have[f->idx] = true;
        char was_buf[32]; /* a copy: the column text dies with the statement */
        const char *was = recorded_type(db, &a, m, col, was_buf, sizeof was_buf);
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
            char want = field_affinity(f), got = affinity(decl);
            bool ok = want == got || got == 'n' || got == 'b' || (want == 'r' && got == 'i');
            if (!ok) {
                rc = crest__error_set(err, CREST_ECONFIG, source, 0,
                                      "model %s: column %s.%s is declared %s, which does not hold a %s field", m->name,
                                      m->table, col, decl && *decl ? decl : "without a type", now);
                goto out;
            }
        }
        if (!was && (rc = record_field(db, &a, m, f, source, err)))
            goto out;
        if (was && strcmp(was, now) && (rc = record_field(db, &a, m, f, source, err)))
            goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (!exists) {
        crest__sql_init(&q, &a, dialect());
        crest__compile_create_table(&q, m);
        if ((rc = run(db, &q, source, err)))
            goto out;
        for (unsigned i = 1; i < m->nfields; i++)
            if ((rc = record_field(db, &a, m, &m->fields[i], source, err)))
                goto out;
        if (m->def->seed && (rc = seed(m, db, source, err, seed_at)))
            goto out;
    } else {
        if (!have[0]) {
            rc = crest__error_set(err, CREST_ECONFIG, source, 0, "model %s: table %s exists without an id column",
                                  m->name, m->table);
            goto out;
        }
        for (unsigned i = 1; i < m->nfields; i++) {
            if (have[i])
                continue;
            const crest__mfield *f = &m->fields[i];
            crest__sql_init(&q, &a, dialect());
            crest__compile_add_column(&q, m, f);
            if ((rc = run(db, &q, source, err)) || (rc = record_field(db, &a, m, f, source, err)))
                goto out;
            if (f->def_now) { /* existing rows get the time of the change */
                char now[40];
                crest__now_stored(now, sizeof now);
                if (f->f.type == CREST_F_DATE)
                    now[10] = 0;
                crest__val v = {.k = f->f.type == CREST_F_DATE ? CREST__V_DATE : CREST__V_DATETIME, .s = now,
                                .n = strlen(now)};
                crest__sql_init(&q, &a, dialect());
                crest__compile_fill_column(&q, m, f, v);
                if ((rc = run(db, &q, source, err)))
                    goto out;
            }
        }
    }
    for (unsigned i = 1; i < m->nfields; i++) {
        const crest__mfield *f = &m->fields[i];
        if (!f->f.unique && !f->f.index)
            continue;
        crest__sql_init(&q, &a, dialect());
        crest__compile_field_index(&q, m, f);
        if ((rc = run(db, &q, source, err)))
            goto out;
    }
    /* Composite indexes, "a,-b" each (crest__compile_index). */
    for (const char *const *ix = m->def->indexes; ix && *ix; ix++) {
        crest__sql_init(&q, &a, dialect());
        crest__compile_index(&q, m, *ix);
        if ((rc = run(db, &q, source, err)))
            goto out;
    }
out:
    sqlite3_finalize(st);
    free(have);
    crest__arena_dispose(&a);
    return rc;
}
