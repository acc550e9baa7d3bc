/* reload.c — hot reload (SIGHUP, `crest reload`): the app file of the app
 * being served is read again into a new app and checked as at start —
 * settings, models with their migration, modules, routes, auth, CORS, rate
 * limits, the SQL endpoints compiled against the tables, the OpenAPI
 * document — on the main thread while the workers go on serving; the
 * engine then switches the workers over (uv_engine.c). Nothing switches
 * unless all of it succeeded.
 *
 * What a running server cannot change stays as it started, and the log
 * line says when the file asks for another value ("kept"): the listen
 * address, the workers, the database (its store, pools, writer and
 * connections are the first app's, shared by every reloaded app, so a
 * reload opens no connection that could leak and drops no query in
 * flight), the pool, durability, limits (request buffers are sized by
 * them), whether metrics are counted, and whether the server speaks
 * HTTPS. startup_sql runs once, at start. A file that names a TLS
 * certificate has it read again: new connections use it. Rate limits'
 * buckets go on (a changed limit applies to them).
 *
 * Also here: the pid file (`pid_file:` or --pid-file) that `crest reload`
 * reads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app_internal.h"
#include "../http/tls.h"

static bool differs(const char *a, const char *b) { return (a || b) && (!a || !b || strcmp(a, b)); }

/* Replaces *dst with a copy of src (NULL stays NULL); 0 or CREST_ENOMEM. */
static int copy_str(char **dst, const char *src)
{
    char *p = src ? strdup(src) : NULL;
    if (src && !p)
        return CREST_ENOMEM;
    free(*dst);
    *dst = p;
    return 0;
}

/* Gives next the settings that need a restart, as base serves them; the
 * ones next's file set otherwise are appended to kept. */
static int keep_settings(const crest_app *base, crest_app *next, json_t *kept)
{
    const bool env_db = getenv("CREST_DATABASE") && *getenv("CREST_DATABASE"); /* it overrides the file */
    struct {
        const char *key;
        bool changed;
    } k[] = {
        {"listen", differs(base->listen_host, next->listen_host) || base->listen_port != next->listen_port},
        {"workers", base->workers != next->workers},
        {"database", !env_db && (differs(base->db_path, next->db_path) || base->db_postgres != next->db_postgres)},
        {"password_file", differs(base->db_password_file, next->db_password_file)},
        {"pool", base->pool_size != next->pool_size || base->pool_acquire_ms != next->pool_acquire_ms ||
                     base->pool_queue != next->pool_queue},
        {"durability", base->durability_normal != next->durability_normal},
        {"limits", memcmp(&base->limits, &next->limits, sizeof base->limits) != 0},
        {"metrics", base->metrics_on != next->metrics_on},
        {"tls", !base->tls && next->tls},
    };
    for (size_t i = 0; i < CREST_ARRAY_LEN(k); i++)
        if (k[i].changed && crest__app_line(next, k[i].key) > 0 && json_array_append_new(kept, json_string(k[i].key)))
            return CREST_ENOMEM;
    if (differs(base->startup_sql, next->startup_sql) &&
        json_array_append_new(kept, json_string("startup_sql")))
        return CREST_ENOMEM;
    if (copy_str(&next->listen_host, base->listen_host) || copy_str(&next->db_path, base->db_path) ||
        copy_str(&next->db_password_file, base->db_password_file))
        return CREST_ENOMEM;
    next->listen_port = base->listen_port;
    next->workers = base->workers;
    next->db_postgres = base->db_postgres;
    next->pool_size = base->pool_size;
    next->pool_acquire_ms = base->pool_acquire_ms;
    next->pool_queue = base->pool_queue;
    next->durability_normal = base->durability_normal;
    next->limits = base->limits;
    next->metrics_on = base->metrics_on;
    const char *log = getenv("CREST_ACCESS_LOG"); /* it overrides the file, as at start (crest_app_main) */
    bool on;
    if (log && *log && !crest__parse_bool(log, strlen(log), &on))
        next->access_log = on;
    if (base->limits_table) { /* the buckets go on: a client over its limit stays over it */
        crest__ratelimits_free(next->limits_table);
        next->limits_table = base->limits_table;
        next->limits_borrowed = true;
    }
    if (!next->tls || !base->tls) { /* no certificate named, or plain HTTP: base's (HTTPS or not) */
        crest__tls_ctx_free(next->tls);
        next->tls = base->tls;
        next->tls_borrowed = true;
    }
    return 0;
}

/* "METHOD /path" of each API route of a that b does not have, into arr. */
static int routes_missing(const crest_app *a, const crest_app *b, json_t *arr)
{
    for (unsigned i = 0; i < a->neps; i++) {
        const crest__endpoint *e = a->eps[i];
        if (e->builtin)
            continue;
        bool found = false;
        for (unsigned j = 0; j < b->neps && !found; j++)
            found = b->eps[j]->spec->method == e->spec->method && !strcmp(b->eps[j]->full_path, e->full_path);
        if (found)
            continue;
        char r[512];
        snprintf(r, sizeof r, "%s %s", crest_method_name(e->spec->method), e->full_path);
        if (json_array_append_new(arr, json_string(r)))
            return CREST_ENOMEM;
    }
    return 0;
}

static unsigned api_routes(const crest_app *a)
{
    unsigned n = 0;
    for (unsigned i = 0; i < a->neps; i++)
        n += !a->eps[i]->builtin;
    return n;
}

/* A log line (a JSON object, one line, malloc'd) with the time, the event
 * and the fields of obj (stolen). */
static char *log_line(const char *event, json_t *obj)
{
    char ts[40];
    crest__format_time(ts, sizeof ts);
    json_t *o = json_pack("{s:s,s:s}", "time", ts, "event", event);
    char *s = NULL;
    if (o && obj && !json_object_update(o, obj))
        s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    json_decref(obj);
    return s;
}

/* err as `crest check` prints it, after its "crest: ". */
static void error_text(const crest_error *err, char *buf, size_t size)
{
    if (err->file[0] && err->line > 0)
        snprintf(buf, size, "%s:%d: %s", err->file, err->line, err->msg);
    else if (err->file[0])
        snprintf(buf, size, "%s: %s", err->file, err->msg);
    else
        snprintf(buf, size, "%s", err->msg);
}

/* Loads and checks next from base's file; 0, or an error code with err set. */
static int build(crest_app *base, crest_app *next, json_t *kept, crest_error *err)
{
    int rc = crest_app_load_file(next, base->app_file, err);
    if (rc)
        return rc;
    if (keep_settings(base, next, kept))
        return crest__error_set(err, CREST_ENOMEM, NULL, 0, "out of memory");
    next->reloaded = true; /* from here on, what it borrows is never freed with it */
    next->store = base->store;
    next->srv = base->srv;
    if ((rc = crest__app_add_builtins(next, err)) || (rc = crest__app_prepare_reload(next, err)))
        return rc;
    crest__changes_adopt(base, next);
    if ((rc = crest__metrics_share(base, next)))
        return crest__error_set(err, rc, base->app_file, 0,
                                rc == CREST_ENOMEM ? "out of memory"
                                                   : "metrics: more than 65,536 routes since the start; restart "
                                                     "the server to reload");
    return 0;
}

int crest__app_reload(crest_app *base, crest_app *cur, crest_app **out, char **line)
{
    *out = NULL;
    *line = NULL;
    const char *why = !base->app_file   ? "the app was not read from an app file: there is nothing to re-read"
                      : base->c_made ? "the app has endpoints, models, modules or settings made in C, which a "
                                       "reload of its app file could not give back"
                                          : NULL;
    if (why) {
        *line = log_line("reload_ignored", json_pack("{s:s,s:s}", "signal", "SIGHUP", "reason", why));
        return CREST__RELOAD_IGNORED;
    }
    crest_error err = {0};
    json_t *kept = json_array();
    crest_app *next = crest_app_new();
    int rc = !kept || !next ? crest__error_set(&err, CREST_ENOMEM, NULL, 0, "out of memory")
                            : build(base, next, kept, &err);
    if (rc) {
        char text[sizeof err.msg + sizeof err.file + 32];
        error_text(&err, text, sizeof text);
        *line = log_line("reload_failed", json_pack("{s:s,s:s}", "file", base->app_file, "error", text));
        json_decref(kept);
        crest_app_free(next);
        return rc;
    }
    json_t *added = json_array(), *removed = json_array();
    char msg[1200];
    unsigned n = api_routes(next);
    snprintf(msg, sizeof msg, "reloaded %s: %u route%s", base->app_file, n, n == 1 ? "" : "s");
    if (added && removed && !routes_missing(next, cur, added) && !routes_missing(cur, next, removed))
        *line = log_line("reloaded", json_pack("{s:s,s:s,s:I,s:o,s:o,s:o}", "message", msg, "file", base->app_file,
                                               "routes", (json_int_t)n, "added", added, "removed", removed, "kept",
                                               kept));
    else {
        json_decref(added);
        json_decref(removed);
        json_decref(kept);
    }
    *out = next;
    return 0;
}

/* ---- the pid file ---- */

int crest__pid_file_write(const crest_app *app, crest_error *err)
{
    if (!app->pid_file)
        return 0;
    /* Written whole under a temporary name, then renamed: a reader never
     * sees half a number. */
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.%ld.tmp", app->pid_file, (long)getpid()) >= sizeof tmp)
        return crest__error_set(err, CREST_EIO, app->pid_file, 0, "pid file: the name is too long");
    FILE *f = fopen(tmp, "w");
    if (!f)
        return crest__error_set(err, CREST_EIO, app->pid_file, 0, "cannot write the pid file: %s", strerror(errno));
    bool ok = fprintf(f, "%ld\n", (long)getpid()) > 0;
    ok = !fclose(f) && ok;
    if (!ok || rename(tmp, app->pid_file)) {
        int e = errno;
        unlink(tmp);
        return crest__error_set(err, CREST_EIO, app->pid_file, 0, "cannot write the pid file: %s", strerror(e));
    }
    return 0;
}

void crest__pid_file_remove(const crest_app *app)
{
    if (app->pid_file)
        unlink(app->pid_file);
}
