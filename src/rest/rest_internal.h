/* rest_internal.h — models and REST modules, over the query stage.
 *
 * The query path is a pipeline of plain stages (STYLE.md):
 *   query parameters → plan (src/query: a condition tree, a sort, a page;
 *   one plan per REST operation) → SQL of a dialect (crest__sql: text +
 *   bound values) → rows → serializer → JSON writer.
 * Identifiers only ever come from the model and are quoted in one place
 * (crest__quote_ident); every value is bound. Internal: not installed. */
#ifndef CREST_REST_INTERNAL_H
#define CREST_REST_INTERNAL_H

#include "../auth/auth.h"
#include "../openapi/openapi.h"
#include "../req/req.h"
#include "../query/query.h"
#include "crest/rest.h"

#define CREST_BULK_MAX 1000            /* rows in one bulk create */

/* The SQL dialect of the app's store, named by it (static, borrowed);
 * SQLite's before a store is open. */
const crest__dialect *crest__app_dialect(const crest_app *app);

/* ---- model values ---- */

/* Writes a cell of a row as the field's JSON type (a value stored by
 * another program that is not of it: as stored). */
static inline void crest__field_write(crest_json *w, const crest__mfield *f, const crest__cell *c)
{
    crest__cell_write_as(w, c, (int)f->f.type, false);
}

crest__model *crest__app_model(crest_app *app, const char *name);
void crest__model_free(crest__model *m);
/* Finds the models every relation names (a model's refs, has_many, the
 * join models of through), for the models not linked yet: after the app
 * file's models, before a module is added, and at start. CREST_EINVAL with
 * err naming the field (and its line in the app file) when one is missing
 * or ambiguous. */
int crest__app_link_models(crest_app *app, crest_error *err);
/* model_sync.c: creates m's table (and its seed rows) or adds new columns,
 * and its indexes; refuses changes that lose data. Runs on the connection c
 * of the store s, both borrowed for the call, inside the caller's write
 * transaction (which it neither opens nor ends). source names the app file
 * in err. On an error about the seed, *seed_at (when not NULL) is its row,
 * or -1 for the seed as a whole. 0, or a negative CREST_E* with err set. */
int crest__model_sync(crest__model *m, crest__store *s, crest__conn *c, const char *source, crest_error *err,
                      int *seed_at);
/* After every model's table is synced: each ref field's foreign key is
 * there (added now where the dialect adds them afterwards: PostgreSQL), and
 * points to its model's table. Same connection and transaction rules. */
int crest__model_sync_refs(crest__model *m, crest__store *s, crest__conn *c, const char *source, crest_error *err);

/* ---- modules ---- */

typedef struct crest__module crest__module;
void crest__module_free(crest__module *mod);
/* Prepares computed SQL against the synced schema; err names the module. */
int crest__module_check(crest__module *mod, crest__conn *c, crest_error *err);

/* changes_sync.c: whether a module of the app has a change feed; the
 * change log and each model's triggers made (or dropped) at start, on c
 * inside the sync's transaction. 0, or an error with err set. */
bool crest__changes_any(const crest_app *app);
int crest__changes_sync(crest_app *app, crest__conn *c, crest_error *err);

/* Called by the app when it prepares the database (after startup_sql). */
int crest__rest_prepare(crest_app *app, crest__conn *c, crest_error *err);

#endif
