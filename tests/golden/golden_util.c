/* golden_util.c — the helpers of golden.h, shared by golden_query.c (where
 * and sort) and golden_plans.c (one plan per REST operation); PostgreSQL's
 * are golden_pg.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"

int golden_flags(int argc, char **argv, bool *update, bool *pg)
{
    *update = *pg = false;
    for (int i = 2; i < argc; i++) {
        if (!strcmp(argv[i], "--update"))
            *update = true;
        else if (!strcmp(argv[i], "--pg"))
            *pg = true;
        else
            return -1;
    }
    return argc < 2 ? -1 : 0;
}

char *golden_slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = 0;
    fclose(f);
    return s;
}

static void print_text(crest__buf *b, const crest__val *v)
{
    char *e = malloc(6 * v->n + 1);
    size_t n = crest_json_escape(e, v->s, v->n);
    crest__buf_appendf(b, "\"%.*s\"", (int)n, e);
    free(e);
}

/* As SQLite stores it. */
static void print_sqlite(crest__buf *b, const crest__val *v)
{
    switch (v->k) {
    case CREST__V_NULL: crest__buf_appends(b, "null"); break;
    case CREST__V_BOOL:
    case CREST__V_INT: crest__buf_appendf(b, "%lld", (long long)v->i); break;
    case CREST__V_FLOAT: crest__buf_appendf(b, "%.17g", v->f); break;
    default: print_text(b, v); break;
    }
}

static const char *const pg_types[] = {[CREST__V_NULL] = "unknown",  [CREST__V_BOOL] = "boolean",
                                       [CREST__V_INT] = "bigint",    [CREST__V_FLOAT] = "double precision",
                                       [CREST__V_TEXT] = "text",     [CREST__V_DATE] = "date",
                                       [CREST__V_DATETIME] = "timestamptz", [CREST__V_JSON] = "jsonb",
                                       [CREST__V_UUID] = "uuid"};

/* As a PostgreSQL store binds it: with its type. */
static void print_pg(crest__buf *b, const crest__val *v)
{
    switch (v->k) {
    case CREST__V_NULL: crest__buf_appends(b, "null"); break;
    case CREST__V_BOOL: crest__buf_appends(b, v->i ? "true" : "false"); break;
    case CREST__V_INT: crest__buf_appendf(b, "%lld", (long long)v->i); break;
    case CREST__V_FLOAT: crest__buf_appendf(b, "%.17g", v->f); break;
    case CREST__V_TEXT: print_text(b, v); break;
    default:
        crest__buf_appendf(b, "%s ", pg_types[v->k]);
        print_text(b, v);
        break;
    }
}

void golden_print_sql(crest__buf *out, const crest__sql *q)
{
    bool pg = q->d == crest__dialect_postgres();
    crest__buf_appendf(out, "sql: %.*s\nbinds: [", (int)q->text.len, q->text.ptr ? q->text.ptr : "");
    for (unsigned i = 0; i < q->nbinds; i++) {
        if (i)
            crest__buf_appends(out, ", ");
        const crest__bindlist *l = q->lists ? q->lists[i] : NULL;
        if (l) {
            crest__buf_appendf(out, "%s[] [", pg_types[l->k]);
            for (unsigned j = 0; j < l->n; j++) {
                crest__val one = l->v[j];
                one.k = one.k == CREST__V_BOOL || one.k == CREST__V_INT || one.k == CREST__V_FLOAT ||
                                one.k == CREST__V_NULL
                            ? one.k
                            : CREST__V_TEXT; /* the type is the array's */
                crest__buf_appends(out, j ? ", " : "");
                print_pg(out, &one);
            }
            crest__buf_appends(out, "]");
        } else if (pg) {
            print_pg(out, &q->binds[i]);
        } else {
            print_sqlite(out, &q->binds[i]);
        }
    }
    crest__buf_appends(out, "]\n");
    if (q->err)
        crest__buf_appendf(out, "ERROR: %d\n", q->err);
}

int golden_sync_on(crest__model *m, crest__store *s, crest__conn *c, crest_error *err)
{
    return crest__model_sync(m, s, c, "golden", err, NULL);
}

int golden_model_sync(crest__model *m, sqlite3 *db, crest_error *err)
{
    crest__store s = {.vt = &crest__store_sqlite};
    crest__conn c = {.db = db};
    int rc = golden_sync_on(m, &s, &c, err);
    crest__sq_cache_free(&c);
    return rc;
}

int golden_run_sqlite(sqlite3 *db, const crest__sql *q, bool step, crest__buf *out)
{
    sqlite3_stmt *st;
    if (q->err || sqlite3_prepare_v2(db, q->text.ptr, (int)q->text.len, &st, NULL) != SQLITE_OK) {
        crest__buf_appendf(out, "SQLITE ERROR: %s\n", sqlite3_errmsg(db));
        return -1;
    }
    int rc = 0;
    if (sqlite3_bind_parameter_count(st) != (int)q->nbinds) {
        crest__buf_appendf(out, "SQLITE ERROR: %d parameters, %u binds\n", sqlite3_bind_parameter_count(st),
                           q->nbinds);
        rc = -1;
    }
    for (unsigned i = 0; i < q->nbinds; i++)
        crest__sq_bind(st, (int)i + 1, &q->binds[i]);
    int s = SQLITE_DONE;
    while (step && (s = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (s != SQLITE_DONE) {
        crest__buf_appendf(out, "SQLITE ERROR: %s\n", sqlite3_errmsg(db));
        rc = -1;
    }
    sqlite3_finalize(st);
    return rc;
}

int golden_sqlite_plan(sqlite3 *db, const crest__sql *q, crest__buf *plan)
{
    char *sql = sqlite3_mprintf("EXPLAIN QUERY PLAN %.*s", (int)q->text.len, q->text.ptr ? q->text.ptr : "");
    sqlite3_stmt *st = NULL;
    if (!sql || sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        crest__buf_appendf(plan, "SQLITE ERROR: %s\n", sqlite3_errmsg(db));
        sqlite3_free(sql);
        return -1;
    }
    sqlite3_free(sql);
    for (unsigned i = 0; i < q->nbinds; i++)
        crest__sq_bind(st, (int)i + 1, &q->binds[i]);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) /* (id, parent, notused, detail) */
        crest__buf_appendf(plan, "%s\n", (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    if (s != SQLITE_DONE) {
        crest__buf_appendf(plan, "SQLITE ERROR: %s\n", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

int golden_check(const char *dir, const char *name, const char *dialect, const char *got, int rc, bool update)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s/expected.%s", dir, name, dialect);
    char *want = golden_slurp(path);
    if (update) {
        FILE *f = fopen(path, "w");
        if (f) {
            fputs(got, f);
            fclose(f);
        }
    }
    int bad = rc < 0 || (!update && (!want || strcmp(want, got)));
    if (bad)
        printf("FAIL %s (%s)\n--- expected\n%s--- got\n%s", name, dialect, want ? want : "(no expected file)\n", got);
    free(want);
    return bad ? -1 : 0;
}

int golden_add_models(crest_app *app, const crest_model_def *defs, size_t n)
{
    crest_error err = {0};
    for (size_t i = 0; i < n; i++)
        if (crest_app_add_model(app, &defs[i], &err)) {
            fprintf(stderr, "model: %s\n", err.msg);
            return -1;
        }
    if (crest__app_link_models(app, &err)) {
        fprintf(stderr, "link: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static crest__qnode *person_scope;

static int reach_check(void *ud, const crest__path *p, const crest__qnode **scopes)
{
    (void)ud;
    for (unsigned i = 0; i < p->nrels; i++)
        scopes[i] = !strcmp(p->rels[i]->target->name, "Person") ? person_scope : NULL;
    return p->field && !strcmp(p->field->f.name, "hidden") ? -1 : 0;
}

const crest__reach golden_reach = {reach_check, NULL};

int golden_reach_init(crest__arena *a, crest_app *app)
{
    char msg[200];
    json_t *sj = json_pack("{s{si}}", "age", "$ge", 18);
    int rc = crest__where_parse(a, crest__app_model(app, "Person"), NULL, sj, &person_scope, msg, sizeof msg);
    json_decref(sj);
    if (rc)
        fprintf(stderr, "scope: %s\n", msg);
    return rc ? -1 : 0;
}
