/* golden.h — what the golden runners share: reading a case's files,
 * printing compiled SQL and its binds per dialect, and comparing (or with
 * --update rewriting) a case's expected.<dialect> file. */
#ifndef CREST_GOLDEN_H
#define CREST_GOLDEN_H

#include <sqlite3.h>

#include "rest/rest_internal.h"
#include "store/sqlite_internal.h"

/* The file's contents, NUL-terminated (malloc'd: the caller frees), or NULL. */
char *golden_slurp(const char *path);
/* Appends "sql: <text>\nbinds: [...]\n" for q. SQLite's binds print as the
 * values it stores (a bool as 0 or 1); PostgreSQL's with their type where
 * text alone would not say it (date "...", bigint[] [1, 2]). */
void golden_print_sql(crest__buf *out, const crest__sql *q);
/* Prepares q on db, binds it and (step) runs it to the end; on an error
 * appends "SQLITE ERROR: ..." to out and returns -1. */
int golden_run_sqlite(sqlite3 *db, const crest__sql *q, bool step, crest__buf *out);
/* Syncs m's table on db (crest__model_sync) through the SQLite store's
 * calls, on a connection wrapping db, which stays the caller's. */
int golden_model_sync(crest__model *m, sqlite3 *db, crest_error *err);
/* Compares got with DIR/CASE/expected.<dialect> (or writes it when
 * update); prints a FAIL report and returns -1 when they differ or rc < 0. */
int golden_check(const char *dir, const char *name, const char *dialect, const char *got, int rc, bool update);

#endif
