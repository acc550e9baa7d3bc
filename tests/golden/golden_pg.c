/* golden_pg.c — the PostgreSQL side of the golden runners (golden.h): a
 * fresh database of the tests' cluster (tests/pg, its conninfo line in the
 * file CREST_TEST_PG_FILE names), reached through crest's own PostgreSQL
 * store, where the model's schema is made as crest makes it and every
 * expected.postgres statement runs with its binds, as SQLite's run against
 * an in-memory database (golden_util.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "golden.h"

struct golden_pg {
    crest__store *admin, *store; /* the cluster's own database (to create and drop ours), ours */
    crest__conn *ac, *c;
    char name[64];
};

/* Opens a PostgreSQL store on conninfo and one connection of it. */
static int open_on(const char *conninfo, crest__store **s, crest__conn **c)
{
    crest_error err = {0};
    crest__store_config cfg = {.path = conninfo};
    *s = NULL;
    *c = NULL;
    if (crest__store_postgres.open(&cfg, s, &err) || crest__store_postgres.connect(*s, c, &err)) {
        fprintf(stderr, "golden: PostgreSQL: %s\n", err.msg);
        return -1;
    }
    return 0;
}

/* Runs a script on c; prints why it failed. */
static int script(crest__conn *c, const char *sql)
{
    char *msg = NULL;
    if (crest__store_postgres.exec_script(c, sql, &msg) == 0)
        return 0;
    fprintf(stderr, "golden: PostgreSQL: %s (while running: %s)\n", msg ? msg : "?", sql);
    free(msg);
    return -1;
}

golden_pg *golden_pg_open(void)
{
    const char *file = getenv("CREST_TEST_PG_FILE");
    char line[512];
    FILE *f = file ? fopen(file, "r") : NULL;
    if (!f || !fgets(line, sizeof line, f)) {
        fprintf(stderr, "golden: --pg needs CREST_TEST_PG_FILE, the conninfo file of a cluster (tests/pg/cluster.py)"
                        " (got %s)\n", file ? file : "nothing");
        if (f)
            fclose(f);
        return NULL;
    }
    fclose(f);
    line[strcspn(line, "\r\n")] = 0;
    golden_pg *pg = calloc(1, sizeof *pg);
    if (!pg)
        return NULL;
    snprintf(pg->name, sizeof pg->name, "golden_%ld", (long)getpid());
    char drop[128], create[128], conninfo[640];
    /* (one statement a call: a database is made outside any transaction) */
    snprintf(drop, sizeof drop, "DROP DATABASE IF EXISTS %s", pg->name);
    snprintf(create, sizeof create, "CREATE DATABASE %s", pg->name);
    /* (a dbname given twice: the last one counts) */
    snprintf(conninfo, sizeof conninfo, "%s dbname=%s", line, pg->name);
    if (open_on(line, &pg->admin, &pg->ac) || script(pg->ac, drop) || script(pg->ac, create) ||
        open_on(conninfo, &pg->store, &pg->c)) {
        golden_pg_close(pg);
        return NULL;
    }
    return pg;
}

void golden_pg_close(golden_pg *pg)
{
    if (!pg)
        return;
    if (pg->c)
        crest__store_postgres.disconnect(pg->c);
    crest__store_postgres.close(pg->store);
    if (pg->ac && pg->name[0]) {
        char sql[128];
        snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", pg->name);
        script(pg->ac, sql);
    }
    if (pg->ac)
        crest__store_postgres.disconnect(pg->ac);
    crest__store_postgres.close(pg->admin);
    free(pg);
}

int golden_model_sync_pg(crest__model *m, golden_pg *pg, crest_error *err)
{
    return golden_sync_on(m, pg->store, pg->c, err);
}

int golden_pg_script(golden_pg *pg, const char *sql, crest__buf *out)
{
    char *msg = NULL;
    if (crest__store_postgres.exec_script(pg->c, sql, &msg) == 0)
        return 0;
    crest__buf_appendf(out, "POSTGRES ERROR: %s (while running: %s)\n", msg ? msg : "?", sql);
    free(msg);
    return -1;
}

/* Runs q (its text after prefix) with its binds; with plan, appends the
 * first column of every row it answers to plan. */
static int run_q(golden_pg *pg, const char *prefix, const crest__sql *q, crest__buf *out, crest__buf *plan)
{
    if (q->err) {
        crest__buf_appendf(out, "POSTGRES ERROR: the statement was not compiled (%d)\n", q->err);
        return -1;
    }
    crest__arena a;
    crest__arena_init(&a, 4096, 0);
    const char *sql = crest__arena_printf(&a, "%s%.*s", prefix, (int)q->text.len, q->text.ptr ? q->text.ptr : "");
    crest__query qq = {.sql = sql, .len = sql ? strlen(sql) : 0, .binds = q->binds, .lists = q->lists,
                       .nbinds = q->nbinds, .flags = CREST__QF_NOCACHE};
    crest__dberr e = {0};
    crest__rows *rows = NULL;
    int rc = sql ? crest__store_postgres.exec(pg->c, &qq, &a, plan ? &rows : NULL, &e) : -1;
    if (rc)
        crest__buf_appendf(out, "POSTGRES ERROR: %s\n", e.message ? e.message : e.detail ? e.detail : "(no message)");
    for (size_t i = 0; !rc && rows && i < rows->nrows; i++) {
        const crest__cell *c = crest__rows_cell(rows, i, 0);
        crest__buf_appendf(plan, "%.*s\n", (int)c->n, c->v.s);
    }
    crest__arena_dispose(&a);
    return rc ? -1 : 0;
}

int golden_run_pg(golden_pg *pg, const crest__sql *q, crest__buf *out) { return run_q(pg, "", q, out, NULL); }

int golden_pg_plan(golden_pg *pg, const crest__sql *q, crest__buf *plan) { return run_q(pg, "EXPLAIN ", q, plan, plan); }
