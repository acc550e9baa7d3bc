/* golden.h — what the golden runners share: reading a case's files,
 * printing compiled SQL and its binds per dialect, running it (SQLite: an
 * in-memory database; PostgreSQL with --pg: a fresh database of the tests'
 * cluster, golden_pg.c), and comparing (or with --update rewriting) a
 * case's expected.<dialect> file. */
#ifndef CREST_GOLDEN_H
#define CREST_GOLDEN_H

#include <sqlite3.h>

#include "rest/rest_internal.h"
#include "store/sqlite_internal.h"

/* The runner's flags after DIR (argv[1]): --update, --pg. 0, or -1 when
 * DIR is missing or a flag is unknown. */
int golden_flags(int argc, char **argv, bool *update, bool *pg);
/* The file's contents, NUL-terminated (malloc'd: the caller frees), or NULL. */
char *golden_slurp(const char *path);
/* Appends "sql: <text>\nbinds: [...]\n" for q. SQLite's binds print as the
 * values it stores (a bool as 0 or 1); PostgreSQL's with their type where
 * text alone would not say it (date "...", bigint[] [1, 2]). */
void golden_print_sql(crest__buf *out, const crest__sql *q);
/* Prepares q on db, binds it and (step) runs it to the end; on an error
 * appends "SQLITE ERROR: ..." to out and returns -1. */
int golden_run_sqlite(sqlite3 *db, const crest__sql *q, bool step, crest__buf *out);
/* SQLite's plan of q on db (EXPLAIN QUERY PLAN, its binds bound): one
 * line per step appended to plan; -1 (the error in plan) when it fails. */
int golden_sqlite_plan(sqlite3 *db, const crest__sql *q, crest__buf *plan);
/* Syncs m's table (crest__model_sync) on the connection c of store s, both
 * the caller's. */
int golden_sync_on(crest__model *m, crest__store *s, crest__conn *c, crest_error *err);
/* Syncs m's table on db through the SQLite store's calls, on a connection
 * wrapping db, which stays the caller's. */
int golden_model_sync(crest__model *m, sqlite3 *db, crest_error *err);

/* Adds the models defs[0..n) to app, then links every model's relations:
 * 0, or -1 with why on stderr. */
int golden_add_models(crest_app *app, const crest_model_def *defs, size_t n);
/* The runners' judge of dotted names (the REST stage's, in a test's
 * terms): every path may be named but one ending at a field called
 * "hidden" (-1, as one the user may not read); a related Person row must
 * meet {"age": {"$ge": 18}}, other models' rows nothing.
 * golden_reach_init makes that scope for app's Person (in the arena a,
 * which must outlive the reach's use); 0, or -1 with why on stderr. */
extern const crest__reach golden_reach;
int golden_reach_init(crest__arena *a, crest_app *app);

/* A database of its own on the tests' PostgreSQL cluster, through crest's
 * PostgreSQL store. */
typedef struct golden_pg golden_pg;
/* Creates the database on the cluster whose conninfo line is in the file
 * env CREST_TEST_PG_FILE names, and connects to it; NULL (why printed on
 * stderr) when it cannot. The caller frees it with golden_pg_close. */
golden_pg *golden_pg_open(void);
/* Disconnects and drops the database; NULL does nothing. */
void golden_pg_close(golden_pg *pg);
/* Syncs m's table on pg's database, as crest does at start-up. */
int golden_model_sync_pg(crest__model *m, golden_pg *pg, crest_error *err);
/* Runs a script (statements of the runner's own: a case's setup, its
 * transaction); on an error appends "POSTGRES ERROR: ..." to out and
 * returns -1. */
int golden_pg_script(golden_pg *pg, const char *sql, crest__buf *out);
/* Runs q on pg's database with its binds (lists as arrays), as the store
 * runs crest's statements; on an error appends "POSTGRES ERROR: ..." to
 * out and returns -1. */
int golden_run_pg(golden_pg *pg, const crest__sql *q, crest__buf *out);
/* PostgreSQL's plan of q on pg's database (EXPLAIN, with its binds), in
 * whatever transaction and settings the caller's scripts made: its lines
 * appended to plan; -1 (the error in plan) when it fails. */
int golden_pg_plan(golden_pg *pg, const crest__sql *q, crest__buf *plan);
/* Compares got with DIR/CASE/expected.<dialect> (or writes it when
 * update); prints a FAIL report and returns -1 when they differ or rc < 0. */
int golden_check(const char *dir, const char *name, const char *dialect, const char *got, int rc, bool update);

#endif
