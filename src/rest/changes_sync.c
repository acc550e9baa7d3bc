/* changes_sync.c — the change log's part of the schema sync at start-up:
 * the crest_changes table (made once some module has a change feed), and
 * on each model's table the triggers that log its writes — made again at
 * every start (their JSON names every field of the model as it is now)
 * when a module over the model has `changes`, dropped when none has. Runs
 * on the start-up connection, inside the sync's write transaction. */
#include <stdio.h>

#include "module_internal.h"

static bool model_has_feed(const crest_app *app, const crest__model *m)
{
    for (unsigned i = 0; i < app->nmodules; i++)
        if (app->modules[i]->m == m && app->modules[i]->def->changes)
            return true;
    return false;
}

bool crest__changes_any(const crest_app *app)
{
    for (unsigned i = 0; i < app->nmodules; i++)
        if (app->modules[i]->def->changes)
            return true;
    return false;
}

/* Runs the statement in q (none when its text is empty); q is disposed. */
static int run(crest_app *app, crest__conn *c, crest__arena *a, crest__sql *q, crest_error *err)
{
    int rc = 0;
    crest__dberr e;
    if (q->err)
        rc = CREST_ENOMEM;
    else if (q->text.len) {
        crest__query qq = {.sql = q->text.ptr, .len = q->text.len, .binds = q->binds, .nbinds = q->nbinds,
                           .flags = CREST__QF_NOCACHE};
        if (app->store->vt->exec(c, &qq, a, NULL, &e))
            rc = crest__error_set(err, CREST_ECONFIG, app->source_name, 0, "database: %s (while running: %.*s)",
                                  e.message ? e.message : e.detail ? e.detail : "unknown error",
                                  (int)(q->text.len < 200 ? q->text.len : 200), q->text.ptr);
    }
    crest__sql_dispose(q);
    return rc;
}

/* Whether the database has the change log (a model's triggers are dropped
 * only where it could have made them). */
static int log_exists(crest_app *app, crest__conn *c, crest__arena *a, bool *out)
{
    crest__column_info *cols;
    unsigned n = 0;
    if (app->store->vt->columns(c, "crest_changes", a, &cols, &n))
        return CREST_EIO;
    *out = n > 0;
    return 0;
}

int crest__changes_sync(crest_app *app, crest__conn *c, crest_error *err)
{
    const crest__dialect *d = crest__app_dialect(app);
    crest__arena a;
    crest__arena_init(&a, 4096, 0);
    crest__sql q;
    bool any = crest__changes_any(app), have = false;
    int rc = 0;
    if (any) {
        void (*const make[])(crest__sql *) = {crest__compile_changes_table, crest__compile_changes_index,
                                              crest__compile_changes_function};
        for (unsigned i = 0; i < CREST_ARRAY_LEN(make) && !rc; i++) {
            crest__sql_init(&q, &a, d);
            make[i](&q);
            rc = run(app, c, &a, &q, err);
        }
        have = true;
    } else {
        rc = log_exists(app, c, &a, &have);
    }
    for (unsigned i = 0; i < app->nmodels && !rc && have; i++) {
        const crest__model *m = app->models[i];
        bool on = model_has_feed(app, m);
        for (unsigned t = 0; t < crest__changes_trigger_count(d) && !rc; t++) {
            crest__sql_init(&q, &a, d);
            crest__compile_changes_drop(&q, m, t);
            if ((rc = run(app, c, &a, &q, err)) || !on)
                continue;
            crest__sql_init(&q, &a, d);
            crest__compile_changes_trigger(&q, m, t);
            rc = run(app, c, &a, &q, err);
        }
        if (rc) {
            char key[300];
            snprintf(key, sizeof key, "models.%s", m->name);
            rc = crest__app_locate(app, err, key, rc);
        }
    }
    crest__arena_dispose(&a);
    return rc;
}
