/* serve.c — from an app to a running server: open and check the database
 * once, give each worker its own connection and statement cache, parse the
 * command line of a C program, and hand over to the HTTP engine. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app_internal.h"
#include "../sqlep/sqlep.h"
#include "../rest/rest_internal.h"

/* A read on the loop that runs longer than this many thousand steps of
 * the database's work (SQLite: VM instructions; 200k is about a ms of CPU)
 * continues on the thread pool, so it never holds the worker's other
 * connections for long. Counted in work, not time, so that a busy machine
 * does not move ordinary reads. */
#define CREST__SLOW_READ_KSTEPS 200

/* What the store is asked to be for this app. */
static crest__store_config store_config(const crest_app *app, const char *path, const char *password)
{
    return (crest__store_config){
        .path = path,
        .create = true,
        .durability_normal = app->durability_normal,
        .max_result = app->limits.response,
        .slow_read_ksteps = CREST__SLOW_READ_KSTEPS,
        .pool_size = app->pool_size,
        .acquire_timeout_ms = app->pool_acquire_ms,
        .queue_max = app->pool_queue,
        .password = password,
    };
}

/* The password of password_file: its first line (malloc'd), or NULL with
 * err set. */
static char *read_password(const crest_app *app, crest_error *err)
{
    FILE *f = fopen(app->db_password_file, "r");
    char buf[1024];
    if (!f || !fgets(buf, sizeof buf, f)) {
        crest__error_set(err, CREST_EIO, app->db_password_file, 0, "password_file: cannot read it");
        if (f)
            fclose(f);
        return NULL;
    }
    fclose(f);
    buf[strcspn(buf, "\r\n")] = 0;
    char *p = strdup(buf);
    if (!p)
        crest__error_set(err, CREST_ENOMEM, NULL, 0, "out of memory");
    return p;
}

/* Where start-up messages about the database point: SQLite's file, or
 * (PostgreSQL, whose conninfo may name secrets) nothing. */
static const char *db_where(const crest_app *app) { return app->db_postgres ? NULL : app->db_path; }

static const char *dbmsg(const crest__dberr *e)
{
    return e->detail ? e->detail : "unknown error";
}

/* What prepare_on does: start (startup SQL, then the models' tables, then
 * the SQL endpoints checked), a dry run (crest check: the same, changing
 * nothing), or a reload (no startup SQL; the tables and the SQL endpoints'
 * checks in one transaction, so that an SQL endpoint that does not compile
 * leaves the tables as they were). */
enum prep_mode { PREP_START, PREP_DRY_RUN, PREP_RELOAD };

/* Start-up work on one connection of the store s: startup SQL, models,
 * checks of the SQL endpoints. */
static int prepare_on(crest_app *app, crest__store *s, enum prep_mode mode, crest_error *err)
{
    bool dry_run = mode == PREP_DRY_RUN, reload = mode == PREP_RELOAD;
    const crest__store_vt *vt = s->vt;
    crest__conn *c = NULL;
    int rc = vt->connect(s, &c, err);
    if (rc)
        return rc;
    char *emsg = NULL;
    crest__arena a;
    crest__arena_init(&a, 4096, 0);
    crest__dberr e = {0};
    if (dry_run) {
        if (vt->begin(c, false, &e, &a)) {
            rc = crest__error_set(err, CREST_EIO, db_where(app), 0, "cannot read the database: %s", dbmsg(&e));
            goto out;
        }
        if (app->startup_sql && vt->exec_script(c, app->startup_sql, &emsg)) {
            rc = crest__error_set(err, CREST_ECONFIG, app->source_name, crest__app_line(app, "startup_sql"),
                                  "startup_sql failed: %s", emsg);
            goto out;
        }
        if ((rc = crest__rest_prepare(app, c, err)))
            goto out;
        for (unsigned i = 0; i < app->neps; i++)
            if (app->eps[i]->sql && (rc = crest__sqlep_check(app, app->eps[i], c, err)))
                goto out;
        goto out;
    }
    if (vt->setup(c, &emsg)) {
        rc = crest__error_set(err, CREST_EIO, db_where(app), 0, "cannot set the database up: %s", emsg);
        goto out;
    }
    if (app->startup_sql && !reload) {
        if (vt->begin(c, false, &e, &a) || vt->exec_script(c, app->startup_sql, &emsg)) {
            vt->rollback(c);
            rc = crest__error_set(err, CREST_ECONFIG, app->source_name, crest__app_line(app, "startup_sql"),
                                  "startup_sql failed: %s", emsg ? emsg : dbmsg(&e));
            goto out;
        }
        if (vt->commit(c, &e, &a)) {
            rc = crest__error_set(err, CREST_EIO, db_where(app), 0, "startup_sql: %s", dbmsg(&e));
            goto out;
        }
    }
    if (app->nmodels || reload) {
        /* Tables made or extended in one transaction: all or nothing. */
        if (vt->begin(c, true, &e, &a)) {
            rc = crest__error_set(err, CREST_EIO, db_where(app), 0, "cannot write the database: %s", dbmsg(&e));
            goto out;
        }
        rc = app->nmodels ? crest__rest_prepare(app, c, err) : 0;
        for (unsigned i = 0; i < app->neps && reload && !rc; i++)
            if (app->eps[i]->sql)
                rc = crest__sqlep_check(app, app->eps[i], c, err);
        if (rc) {
            vt->rollback(c);
            goto out;
        }
        if (vt->commit(c, &e, &a)) {
            rc = crest__error_set(err, CREST_EIO, db_where(app), 0, "cannot write the database: %s", dbmsg(&e));
            goto out;
        }
    }
    for (unsigned i = 0; i < app->neps && !reload; i++) {
        if (app->eps[i]->sql && (rc = crest__sqlep_check(app, app->eps[i], c, err)))
            goto out;
    }
out:
    if (dry_run)
        vt->rollback(c);
    free(emsg);
    vt->disconnect(c);
    crest__arena_dispose(&a);
    return rc;
}

/* An app without a database: 0, or the error of what needs one. */
static int without_db(crest_app *app, crest_error *err)
{
    for (unsigned i = 0; i < app->neps; i++)
        if (app->eps[i]->sql)
            return crest__error_set(err, CREST_ECONFIG, app->source_name, app->eps[i]->sql->line,
                                    "SQL endpoints need a database (the 'database' key or CREST_DATABASE)");
    if (app->nmodels) {
        crest__error_set(err, CREST_ECONFIG, NULL, 0, "models need a database (the 'database' key or CREST_DATABASE)");
        return crest__app_locate(app, err, "models", CREST_ECONFIG);
    }
    return 0;
}

int crest__app_prepare(crest_app *app, bool dry_run, crest_error *err)
{
    if (!app->db_path)
        return without_db(app, err);
    /* A dry run (crest check) writes nothing: a SQLite database that does
     * not exist yet is checked in memory, an existing one inside a
     * rolled-back transaction. PostgreSQL is not connected to at all: the
     * check is the app file's, and what its SQL shows without a database. */
    if (dry_run && app->db_postgres) {
        int rc = 0;
        for (unsigned i = 0; i < app->neps && !rc; i++)
            if (app->eps[i]->sql)
                rc = crest__sqlep_check_text(app, app->eps[i], err);
        return rc;
    }
    const char *path = app->db_path;
    if (dry_run && access(path, F_OK) != 0)
        path = ":memory:";
    char *password = NULL;
    if (app->db_postgres && app->db_password_file && !(password = read_password(app, err)))
        return err->code ? err->code : CREST_EIO;
    crest__store_config cfg = store_config(app, path, password);
    crest__store *s = NULL;
    const crest__store_vt *vt = app->db_postgres ? &crest__store_postgres : &crest__store_sqlite;
    int rc = vt->open(&cfg, &s, err);
    if (password) {
        memset(password, 0, strlen(password));
        free(password);
    }
    if (rc)
        return rc;
    if (app->store)
        app->store->vt->close(app->store);
    app->store = s; /* serving: the workers' connections come from it */
    rc = prepare_on(app, s, dry_run ? PREP_DRY_RUN : PREP_START, err);
    /* --wait-for-db: a database that does not answer yet is waited for
     * (a second between tries), so that crest and its database can start
     * together. */
    for (unsigned tries = 0; rc == CREST_EIO && app->wait_for_db && app->db_postgres && !dry_run; tries++) {
        if (tries % 10 == 0)
            fputs("{\"event\":\"waiting_for_database\"}\n", stderr);
        sleep(1);
        *err = (crest_error){0};
        rc = prepare_on(app, s, dry_run ? PREP_DRY_RUN : PREP_START, err);
    }
    if (rc || dry_run) {
        s->vt->close(s);
        app->store = NULL;
    }
    return rc;
}

int crest__app_prepare_reload(crest_app *app, crest_error *err)
{
    /* The workers serve meanwhile, on their own connections of the store. */
    return app->store ? prepare_on(app, app->store, PREP_RELOAD, err) : without_db(app, err);
}

int crest__app_worker_init(crest_app *app, crest__worker *w, crest_error *err)
{
    memset(&w->aw, 0, sizeof w->aw);
    int mrc = crest__metrics_worker_init(app, w);
    if (mrc)
        return crest__error_set(err, mrc, NULL, 0, "out of memory");
    if (!app->store)
        return 0;
    int rc = app->store->vt->worker_init(app->store, w->loop, &w->aw.store, err);
    if (!rc && (rc = crest__changes_worker_init(app, w)))
        return crest__error_set(err, rc, NULL, 0, "out of memory");
    return rc;
}

void crest__app_worker_dispose(crest__worker *w)
{
    crest__changes_worker_dispose(w);
    crest__metrics_worker_dispose(w);
    crest__gz_worker_free(w);
    crest__token_cache_free(w->aw.tokens);
    w->aw.tokens = NULL;
    if (w->aw.store)
        w->app->store->vt->worker_dispose(w->aw.store);
    w->aw.store = NULL;
}

void crest__app_worker_switch(crest__worker *w, crest_app *next)
{
    /* Tokens were verified with the old app's auth settings. The store's
     * connections are shared by every app a reload makes. */
    crest__token_cache_free(w->aw.tokens);
    w->aw.tokens = NULL;
    w->app = next;
}

int crest_app_serve(crest_app *app, crest_error *err)
{
    /* A file-size limit (ulimit -f under a service manager) must not kill
     * the server: ignored, SIGXFSZ becomes write() failing with EFBIG, which
     * SQLite reports and the request answers as storage full (507). */
    signal(SIGXFSZ, SIG_IGN);
    int rc = crest__app_add_builtins(app, err);
    if (rc)
        return rc;
    if ((rc = crest__app_prepare(app, false, err)))
        return rc;
    return crest__engine_uv.serve(app, err);
}

int crest_app_check(crest_app *app, crest_error *err)
{
    return crest__app_prepare(app, true, err);
}

static void usage(FILE *f, const char *prog)
{
    fprintf(f,
            "usage: %s [--listen HOST:PORT] [--workers N]\n"
            "  --listen HOST:PORT  address to serve on (env CREST_LISTEN; default 127.0.0.1:8080)\n"
            "  --workers N         event-loop threads (default: number of cores)\n"
            "  --tls-cert FILE     serve HTTPS with this PEM certificate chain (with --tls-key)\n"
            "  --tls-key FILE      the certificate's private key (PEM)\n"
            "  --wait-for-db       wait for a PostgreSQL database that does not answer yet\n"
            "  --pid-file PATH     write the server's pid there while serving (SIGHUP reloads the app file)\n"
            "  --openapi [3.1|3.0] print the OpenAPI document and exit\n"
            "  --help, --version\n",
            prog);
}

int crest_app_main(crest_app *app, int argc, char **argv)
{
    const char *prog = argc > 0 ? argv[0] : "crest";
    const char *tls_cert = NULL, *tls_key = NULL;
    const char *env = getenv("CREST_LISTEN");
    if (env && *env && crest_app_set_listen(app, env)) {
        fprintf(stderr, "%s: CREST_LISTEN: bad address '%s'\n", prog, env);
        return 2;
    }
    const char *log = getenv("CREST_ACCESS_LOG");
    if (log && *log) {
        bool on;
        if (crest__parse_bool(log, strlen(log), &on)) {
            fprintf(stderr, "%s: CREST_ACCESS_LOG: expected on or off, found '%s'\n", prog, log);
            return 2;
        }
        crest_app_set_access_log(app, on);
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout, prog);
            return 0;
        }
        if (!strcmp(a, "--version")) {
            printf("crest %s\n", CREST_VERSION);
            return 0;
        }
        if (!strcmp(a, "--openapi")) {
            /* Print the OpenAPI document (3.1, or 3.0 with "--openapi 3.0") and exit. */
            bool v30 = app->openapi_30;
            if (i + 1 < argc && argv[i + 1][0] != '-') {
                const char *v = argv[++i];
                if (strcmp(v, "3.0") && strcmp(v, "3.1")) {
                    fprintf(stderr, "%s: --openapi: unknown version '%s'; crest writes OpenAPI 3.1 (the default) or "
                                    "3.0\n", prog, v);
                    return 2;
                }
                v30 = !strcmp(v, "3.0");
            }
            size_t len;
            char *doc = crest_app_openapi(app, v30, &len);
            if (!doc) {
                fprintf(stderr, "%s: out of memory\n", prog);
                return 1;
            }
            fwrite(doc, 1, len, stdout);
            fputc('\n', stdout);
            free(doc);
            return 0;
        }
        if ((!strcmp(a, "--listen") || !strcmp(a, "--workers") || !strcmp(a, "--tls-cert") ||
             !strcmp(a, "--tls-key") || !strcmp(a, "--pid-file")) &&
            i + 1 >= argc) {
            fprintf(stderr, "%s: %s needs a value\n", prog, a);
            return 2;
        }
        if (!strcmp(a, "--wait-for-db")) {
            app->wait_for_db = true;
        } else if (!strcmp(a, "--listen")) {
            if (crest_app_set_listen(app, argv[++i])) {
                fprintf(stderr, "%s: --listen: bad address '%s'\n", prog, argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--pid-file")) {
            if (crest_app_set_pid_file(app, argv[++i])) {
                fprintf(stderr, "%s: out of memory\n", prog);
                return 1;
            }
        } else if (!strcmp(a, "--tls-cert")) {
            tls_cert = argv[++i];
        } else if (!strcmp(a, "--tls-key")) {
            tls_key = argv[++i];
        } else if (!strcmp(a, "--workers")) {
            int64_t n;
            const char *v = argv[++i];
            if (crest__parse_int(v, strlen(v), &n) || crest_app_set_workers(app, (int)n) || n < 1) {
                fprintf(stderr, "%s: --workers: expected a number from 1 to 256, got '%s'\n", prog, v);
                return 2;
            }
        } else {
            fprintf(stderr, "%s: unknown argument '%s'\n", prog, a);
            usage(stderr, prog);
            return 2;
        }
    }
    crest_error err = {0};
    if (!tls_cert != !tls_key) {
        fprintf(stderr, "%s: HTTPS needs both --tls-cert and --tls-key\n", prog);
        return 2;
    }
    if (tls_cert && crest_app_set_tls(app, tls_cert, tls_key, &err)) {
        crest_error_print(&err, prog);
        return 1;
    }
    int rc = crest_app_serve(app, &err);
    if (rc) {
        /* A database the environment named is said to be the environment's. */
        const char *dbenv = getenv("CREST_DATABASE");
        if (dbenv && *dbenv && app->db_postgres && !strncmp(err.msg, "cannot connect to the database", 30)) {
            char msg[sizeof err.msg + 32];
            snprintf(msg, sizeof msg, "CREST_DATABASE: %s", err.msg);
            snprintf(err.msg, sizeof err.msg, "%.*s", (int)sizeof err.msg - 1, msg);
        }
        crest_error_print(&err, prog);
        return 1;
    }
    return 0;
}
