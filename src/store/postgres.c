/* postgres.c — the PostgreSQL store (store.h's table of functions) over
 * libpq: opening (the app's conninfo, crest's session settings added),
 * statements prepared once per connection (keyed by text and parameter
 * types; a statement a schema change invalidated is prepared again and run
 * once more), results read as typed cells, failures classified by SQLSTATE,
 * transactions and introspection from the catalogs. This file is the
 * synchronous side: start-up and checks, and the sessions of pool threads
 * (write routes), each on a blocking connection from the store's idle list,
 * with the request's deadline as `statement_timeout` and cancellation
 * through libpq's cancel request. Sessions on a worker's event loop are
 * postgres_loop.c's (with postgres_lconn.c and postgres_segment.c). */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "postgres_internal.h"

/* ---- running a statement on a blocking connection ---- */

static void fail_kind(crest__dberr *err, crest__dberr_kind k, const char *detail)
{
    memset(err, 0, sizeof *err);
    err->kind = k;
    err->detail = err->message = detail;
}

/* Whether a failure means the prepared statement must be made again: it is
 * gone (26000), or a schema change altered its result (0A000, "cached plan
 * must not change result type"). */
static bool stale_statement(const PGresult *res)
{
    const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
    return st && (!strcmp(st, "26000") || !strcmp(st, "0A000"));
}

/* Runs q on c; the result (or the failure) in *res, to PQclear. The text
 * is copied to end with a NUL; the statement is prepared on c the first
 * time (unless NOCACHE). Each run is counted in *count when count is not
 * NULL (a request's: crest__sess_config.statements). -1 only when out of
 * memory. */
static int exec_on(crest__conn *c, const crest__query *q, crest__arena *a, uint64_t *count, PGresult **res)
{
    pg_params p;
    const char *sql = crest__arena_strndup(a, q->sql, q->len);
    *res = NULL;
    if (!sql || crest__pg_params_of(a, q, &p))
        return -1;
    if (q->flags & CREST__QF_NOCACHE) {
        if (count)
            (*count)++;
        *res = PQexecParams(c->pg, sql, (int)p.n, p.types, p.values, p.lengths, NULL, 0);
        return 0;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        char name[16];
        if (count)
            (*count)++;
        unsigned id = crest__pg_stmt_find(c, q->sql, q->len, p.types, p.n);
        if (!id) {
            id = ++c->next_id;
            snprintf(name, sizeof name, "c%u", id);
            PGresult *pr = PQprepare(c->pg, name, sql, (int)p.n, p.types);
            if (PQresultStatus(pr) != PGRES_COMMAND_OK) {
                *res = pr;
                return 0;
            }
            PQclear(pr);
            crest__pg_stmt_add(c, q->sql, q->len, p.types, p.n, id); /* (no memory: prepared again next time) */
        }
        snprintf(name, sizeof name, "c%u", id);
        *res = PQexecPrepared(c->pg, name, (int)p.n, p.values, p.lengths, NULL, 0);
        if (attempt || PQresultStatus(*res) != PGRES_FATAL_ERROR || !stale_statement(*res) ||
            PQtransactionStatus(c->pg) == PQTRANS_INERROR)
            return 0;
        /* Forget every statement of c: the server dropped or altered them. */
        PQclear(*res);
        *res = NULL;
        PQclear(PQexec(c->pg, "DEALLOCATE ALL"));
        crest__pg_stmts_clear(c);
    }
    return 0;
}

/* Runs q on c into *out (arena a), at most max_bytes of rows (0: any);
 * counted in *count as exec_on says. 0, or -1 with err set. */
static int run(crest__conn *c, const crest__query *q, crest__arena *a, size_t max_bytes, uint64_t *count,
               crest__rows **out, crest__dberr *err)
{
    PGresult *res;
    if (exec_on(c, q, a, count, &res)) {
        fail_kind(err, CREST__DBERR_NOMEM, NULL);
        return -1;
    }
    int rc = -1;
    ExecStatusType st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
        size_t max_rows = q->flags & CREST__QF_FIRST ? 1 : q->max_rows;
        rc = crest__pg_rows(res, a, max_rows, q->flags & CREST__QF_NONAMES, max_bytes, out, err);
    } else {
        crest__pg_error(c->pg, res, q->flags, a, err);
    }
    PQclear(res);
    return rc;
}

/* A statement of crest's own (transactions, settings) on c. */
static int simple(crest__conn *c, const char *sql, crest__dberr *err, crest__arena *a)
{
    PGresult *res = PQexec(c->pg, sql);
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    if (rc && err)
        crest__pg_error(c->pg, res, 0, a, err);
    PQclear(res);
    return rc;
}

/* ---- the store ---- */

static int pg_open(const crest__store_config *cfg, crest__store **out, crest_error *err)
{
    const char *why = NULL;
    if (crest__pq_load(&why))
        return crest__error_set(err, CREST_EIO, NULL, 0, "database: %s", why);
    pg_store *s = calloc(1, sizeof *s);
    char *conninfo = cfg->path ? strdup(cfg->path) : NULL;
    char *msg = NULL;
    if (!s || !conninfo) {
        free(s);
        free(conninfo);
        return crest__error_set(err, CREST_ENOMEM, NULL, 0, "out of memory");
    }
    if (crest__pg_params(conninfo, cfg->password, &s->keys, &s->vals, &msg) ||
        crest__pg_host_to_resolve(s->keys, s->vals, &s->resolve_host, &msg)) {
        crest__error_set(err, CREST_ECONFIG, NULL, 0, "database: %s", msg ? msg : "out of memory");
        free(msg);
        free(conninfo);
        crest__pg_params_free(s->keys, s->vals);
        free(s);
        return CREST_ECONFIG;
    }
    while (s->keys[s->nparams])
        s->nparams++;
    s->base.vt = &crest__store_postgres;
    s->base.cfg = *cfg;
    s->base.cfg.path = conninfo;
    s->base.cfg.password = NULL; /* (in the parameters now; the caller's copy is not kept) */
    pthread_mutex_init(&s->idle_lock, NULL);
    pthread_mutex_init(&s->pools_lock, NULL);
    *out = &s->base;
    return 0;
}

static void pg_close(crest__store *st)
{
    pg_store *s = (pg_store *)st;
    if (!s)
        return;
    for (crest__conn *c = s->idle, *next; c; c = next) {
        next = c->next;
        crest__pg_conn_free(c);
    }
    pthread_mutex_destroy(&s->idle_lock);
    pthread_mutex_destroy(&s->pools_lock);
    crest__pg_params_free(s->keys, s->vals);
    free(s->resolve_host);
    free((char *)s->base.cfg.path);
    free(s);
}

static int pg_connect(crest__store *st, crest__conn **out, crest_error *err)
{
    char *msg = NULL;
    crest__conn *c = crest__pg_connect((pg_store *)st, &msg);
    if (!c) {
        crest__error_set(err, CREST_EIO, NULL, 0, "cannot connect to the database: %s", msg ? msg : "out of memory");
        free(msg);
        return CREST_EIO;
    }
    *out = c;
    return 0;
}

static void pg_disconnect(crest__conn *c) { crest__pg_conn_free(c); }

static int pg_exec(crest__conn *c, const crest__query *q, crest__arena *a, crest__rows **out, crest__dberr *err)
{
    crest__rows *r = NULL;
    int rc = run(c, q, a, 0, NULL, &r, err);
    if (out)
        *out = r;
    return rc;
}

static int pg_exec_script(crest__conn *c, const char *sql, char **msg)
{
    PGresult *res = PQexec(c->pg, sql);
    ExecStatusType st = PQresultStatus(res);
    int rc = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_EMPTY_QUERY ? 0 : -1;
    if (rc) {
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        *msg = strdup(m ? m : PQerrorMessage(c->pg));
    }
    PQclear(res);
    return rc;
}

static int pg_begin(crest__conn *c, bool write, crest__dberr *err, crest__arena *a)
{
    (void)write; /* row locks, not a database lock */
    return simple(c, "BEGIN", err, a);
}

static int pg_commit(crest__conn *c, crest__dberr *err, crest__arena *a) { return simple(c, "COMMIT", err, a); }

static void pg_rollback(crest__conn *c)
{
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        PQclear(PQexec(c->pg, "ROLLBACK"));
}

/* Whether a prepared statement's plan changes rows: EXPLAIN shows a
 * ModifyTable node (an INSERT, UPDATE, DELETE or MERGE, in a WITH too).
 * A statement EXPLAIN does not take (CALL, DO...) counts as writing. */
static bool plan_writes(crest__conn *c, unsigned nparams)
{
    crest__buf b;
    crest__buf_init(&b, 1 << 16);
    crest__buf_appends(&b, "EXPLAIN (FORMAT JSON) EXECUTE crest_describe");
    for (unsigned i = 0; i < nparams; i++)
        crest__buf_appends(&b, i ? ", NULL" : " (NULL");
    if (nparams)
        crest__buf_appends(&b, ")");
    crest__buf_append(&b, "", 1);
    PGresult *res = b.ptr ? PQexec(c->pg, b.ptr) : NULL;
    bool writes = PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1 ||
                  strstr(PQgetvalue(res, 0, 0), "\"ModifyTable\"") != NULL;
    PQclear(res);
    crest__buf_dispose(&b);
    return writes;
}

static int describe(crest__conn *c, const char *sql, crest__arena *a, crest__stmt_info *out, char **msg);

/* Inside a transaction (model sync, the startup checks), describing runs
 * under a savepoint: an error there (a statement that does not prepare or
 * explain, no statement to drop) would otherwise abort the caller's
 * transaction. The statement is dropped after, outside any error. */
static int pg_describe(crest__conn *c, const char *sql, crest__arena *a, crest__stmt_info *out, char **msg)
{
    bool sp = PQtransactionStatus(c->pg) == PQTRANS_INTRANS;
    if (sp)
        PQclear(PQexec(c->pg, "SAVEPOINT crest_describe"));
    int rc = describe(c, sql, a, out, msg);
    if (sp)
        PQclear(PQexec(c->pg, "ROLLBACK TO SAVEPOINT crest_describe"));
    PQclear(PQexec(c->pg, "DEALLOCATE crest_describe")); /* (fails when it did not prepare) */
    if (sp)
        PQclear(PQexec(c->pg, "ROLLBACK TO SAVEPOINT crest_describe; RELEASE SAVEPOINT crest_describe"));
    return rc;
}

/* A result column of a type the database made (oid past the built-in
 * ones) that is an array, or a domain over one: its element type (a
 * domain's base type) is recorded, so its values are read as JSON arrays
 * (postgres_array.c). Nothing for any other type, or when the catalog
 * cannot be read. */
static void learn_array(crest__conn *c, Oid oid, crest__arena *a)
{
    static const char sql[] =
        "SELECT CASE WHEN e.typtype = 'd' THEN e.typbasetype ELSE e.oid END FROM pg_type t LEFT JOIN pg_type b ON "
        "b.oid = t.typbasetype JOIN pg_type e ON e.oid = coalesce(nullif(t.typelem, 0), b.typelem) WHERE t.oid = "
        "$1::oid AND t.typcategory = 'A' AND t.typlen = -1";
    if (oid < 16384 /* FirstNormalObjectId */ || crest__pg_array_elem(oid))
        return;
    crest__val v = {.k = CREST__V_INT, .i = oid};
    crest__query q = {.sql = sql, .len = sizeof sql - 1, .binds = &v, .nbinds = 1, .flags = CREST__QF_NOCACHE};
    crest__rows *r = NULL;
    crest__dberr e;
    if (!run(c, &q, a, 0, NULL, &r, &e) && r->nrows && r->ncols && crest__rows_cell(r, 0, 0)->k == CREST__V_INT)
        crest__pg_array_learn(oid, (unsigned)crest__rows_cell(r, 0, 0)->v.i);
}

static int describe(crest__conn *c, const char *sql, crest__arena *a, crest__stmt_info *out, char **msg)
{
    memset(out, 0, sizeof *out);
    PGresult *res = PQprepare(c->pg, "crest_describe", sql, 0, NULL);
    const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
    if (m && strstr(m, "multiple commands")) {
        /* PostgreSQL says more than one statement follows, not where the
         * first ends: the tail is reported as 1 byte. */
        PQclear(res);
        out->tail = 1;
        return 0;
    }
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        *msg = strdup(m ? m : PQerrorMessage(c->pg));
        PQclear(res);
        return -1;
    }
    PQclear(res);
    res = PQdescribePrepared(c->pg, "crest_describe");
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        *msg = strdup(PQerrorMessage(c->pg));
        rc = -1;
        goto out;
    }
    out->nparams = (unsigned)PQnparams(res);
    out->ncols = (unsigned)PQnfields(res);
    out->param_names = crest__arena_calloc(a, out->nparams + 1, sizeof *out->param_names);
    out->col_names = crest__arena_calloc(a, out->ncols + 1, sizeof *out->col_names);
    if (!out->param_names || !out->col_names) {
        *msg = strdup("out of memory");
        rc = -1;
        goto out;
    }
    for (unsigned i = 0; i < out->nparams; i++)
        out->param_names[i] = crest__arena_printf(a, "$%u", i + 1);
    for (unsigned i = 0; i < out->ncols; i++) {
        out->col_names[i] = crest__arena_strdup(a, PQfname(res, (int)i));
        learn_array(c, PQftype(res, (int)i), a);
    }
    out->readonly = !plan_writes(c, out->nparams);
out:
    PQclear(res);
    return rc;
}

/* Runs a catalog query with the table's name as $1. */
static crest__rows *catalog(crest__conn *c, const char *sql, const char *table, crest__arena *a)
{
    crest__val v = {.k = CREST__V_TEXT, .s = table, .n = strlen(table)};
    crest__query q = {.sql = sql, .len = strlen(sql), .binds = &v, .nbinds = 1, .flags = CREST__QF_NOCACHE};
    crest__rows *r = NULL;
    crest__dberr e;
    return run(c, &q, a, 0, NULL, &r, &e) ? NULL : r;
}

static const char *text_or(const crest__cell *c, const char *dflt)
{
    return crest__vkind_is_text((crest__vkind)c->k) ? c->v.s : dflt;
}

/* A default as written: PostgreSQL shows a literal with its type
 * ("'none'::text"); the cast goes. */
static const char *literal_default(crest__arena *a, const char *d)
{
    const char *cast = d && d[0] == '\'' ? strstr(d, "'::") : NULL;
    if (!cast || strchr(cast + 3, '\''))
        return d;
    const char *out = crest__arena_strndup(a, d, (size_t)(cast - d) + 1);
    return out ? out : d;
}

static int pg_columns(crest__conn *c, const char *table, crest__arena *a, crest__column_info **out, unsigned *n)
{
    static const char sql[] =
        "SELECT a.attname, upper(format_type(a.atttypid, a.atttypmod)), a.attnotnull,"
        " EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary AND a.attnum = ANY(i.indkey)),"
        " pg_get_expr(d.adbin, d.adrelid)"
        " FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace s ON s.oid = c.relnamespace"
        " LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE c.relname = $1 AND s.nspname = current_schema() AND a.attnum > 0 AND NOT a.attisdropped"
        " ORDER BY a.attnum";
    *out = NULL;
    *n = 0;
    crest__rows *r = catalog(c, sql, table, a);
    crest__column_info *ci = r ? crest__arena_calloc(a, r->nrows + 1, sizeof *ci) : NULL;
    if (!ci)
        return -1;
    for (size_t i = 0; i < r->nrows; i++) {
        ci[i].name = text_or(crest__rows_cell(r, i, 0), "");
        ci[i].type = text_or(crest__rows_cell(r, i, 1), "");
        ci[i].notnull = crest__rows_cell(r, i, 2)->v.i != 0;
        ci[i].pk = crest__rows_cell(r, i, 3)->v.i != 0;
        ci[i].dflt = literal_default(a, text_or(crest__rows_cell(r, i, 4), NULL));
    }
    *out = ci;
    *n = (unsigned)r->nrows;
    return 0;
}

/* One-column foreign keys of table: the parent and its column. */
static const char fkeys_sql[] =
    "SELECT p.relname, a.attname, pa.attname FROM pg_constraint k"
    " JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace s ON s.oid = c.relnamespace"
    " JOIN pg_class p ON p.oid = k.confrelid"
    " JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]"
    " JOIN pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = k.confkey[1]"
    " WHERE k.contype = 'f' AND cardinality(k.conkey) = 1 AND c.relname = $1 AND s.nspname = current_schema()"
    " ORDER BY k.oid";

static int fkeys_of(crest__rows *r, crest__arena *a, crest__fkey_info **out, unsigned *n)
{
    *out = NULL;
    *n = 0;
    crest__fkey_info *fk = r ? crest__arena_calloc(a, r->nrows + 1, sizeof *fk) : NULL;
    if (!fk)
        return -1;
    for (size_t i = 0; i < r->nrows; i++) {
        fk[i].table = text_or(crest__rows_cell(r, i, 0), "");
        fk[i].column = text_or(crest__rows_cell(r, i, 1), "");
        fk[i].to = text_or(crest__rows_cell(r, i, 2), NULL);
    }
    *out = fk;
    *n = (unsigned)r->nrows;
    return 0;
}

static int pg_fkeys(crest__conn *c, const char *table, crest__arena *a, crest__fkey_info **out, unsigned *n)
{
    return fkeys_of(catalog(c, fkeys_sql, table, a), a, out, n);
}

/* The key of the advisory lock crest's start-up holds on a database
 * (the bytes of "crest-up"); advisory locks are per database. */
#define STARTUP_LOCK_KEY "7165901503644661104"
/* How long a start-up waits for another process's (its startup_sql and
 * models' migration) before it gives up and says so. */
#define STARTUP_LOCK_WAIT "120s"

/* The server must have what crest's schema uses: identity columns (10+). */
static int pg_setup(crest__conn *c, char **msg)
{
    if (PQserverVersion(c->pg) < 100000) {
        *msg = strdup("crest needs PostgreSQL 10 or later");
        return -1;
    }
    /* Processes started together on one database (scale-out) would race
     * to make the same tables: PostgreSQL's CREATE TABLE IF NOT EXISTS
     * fails in all but one ("duplicate key value violates unique
     * constraint pg_type_typname_nsp_index"). So start-up (startup_sql,
     * models) runs one process at a time: c holds a session advisory lock
     * until start-up disconnects it, and the next process then finds the
     * tables made. */
    PQclear(PQexec(c->pg, "SET lock_timeout = '" STARTUP_LOCK_WAIT "'"));
    PGresult *res = PQexec(c->pg, "SELECT pg_advisory_lock(" STARTUP_LOCK_KEY ")");
    int rc = PQresultStatus(res) == PGRES_TUPLES_OK ? 0 : -1;
    if (rc) {
        const char *st = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        const char *m = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        *msg = strdup(st && !strcmp(st, "55P03") ? "another crest process has been starting on this database for "
                                                   STARTUP_LOCK_WAIT " (its startup_sql or models' migration); "
                                                   "waited no longer"
                      : m                       ? m
                                                : PQerrorMessage(c->pg));
    }
    PQclear(res);
    PQclear(PQexec(c->pg, "RESET lock_timeout"));
    return rc;
}

/* ---- sessions off the loop (pool threads): blocking connections ---- */

static crest__conn *take_idle(pg_store *s)
{
    pthread_mutex_lock(&s->idle_lock);
    crest__conn *c = s->idle;
    if (c)
        s->idle = c->next;
    pthread_mutex_unlock(&s->idle_lock);
    return c;
}

/* Gives c back for the next session, unless it is broken or busy. */
static void give_back(pg_store *s, crest__conn *c)
{
    if (PQstatus(c->pg) != CONNECTION_OK || PQtransactionStatus(c->pg) != PQTRANS_IDLE) {
        crest__pg_conn_free(c);
        return;
    }
    pthread_mutex_lock(&s->idle_lock);
    c->next = s->idle;
    s->idle = c;
    pthread_mutex_unlock(&s->idle_lock);
}

static crest__sess *pg_sess_new(crest__store *st, const crest__sess_config *cfg)
{
    crest__sess *ss = crest__arena_calloc(cfg->arena, 1, sizeof *ss);
    if (!ss)
        return NULL;
    ss->s = (pg_store *)st;
    ss->cfg = *cfg;
    ss->w = crest__pg_loop_worker(cfg->worker);
    atomic_init(&ss->cancelled, false);
    return ss;
}

/* The session's connection, with the deadline's statement_timeout set for
 * what is left of it; NULL with err set. A connection taken from the idle
 * list that the server ended while it sat there (a restart,
 * pg_terminate_backend: libpq learns it at the first use) is thrown away
 * and the next one taken, or a new one made. */
static crest__conn *sess_conn(crest__sess *ss, crest__dberr *err)
{
    for (;;) {
        bool taken_now = false;
        if (!ss->conn) {
            char *msg = NULL;
            crest__conn *c = take_idle(ss->s);
            while (c && PQstatus(c->pg) != CONNECTION_OK) {
                crest__pg_conn_free(c);
                c = take_idle(ss->s);
            }
            taken_now = c != NULL;
            if (!c && !(c = crest__pg_connect(ss->s, &msg))) {
                fail_kind(err, CREST__DBERR_UNAVAILABLE, msg ? crest__arena_strdup(ss->cfg.arena, msg) : NULL);
                free(msg);
                return NULL;
            }
            ss->conn = c;
        }
        long long ms = 0;
        if (ss->cfg.deadline_us) {
            uint64_t now = crest__now_us();
            if (now >= ss->cfg.deadline_us) {
                ss->timed_out = true;
                fail_kind(err, CREST__DBERR_DEADLINE, NULL);
                return NULL;
            }
            ms = (long long)((ss->cfg.deadline_us - now + 999) / 1000);
        }
        char set[64];
        snprintf(set, sizeof set, "SET statement_timeout = %lld", ms);
        if (!simple(ss->conn, set, err, ss->cfg.arena)) {
            /* (set once the connection serves: pg_cancel, on another thread, may read it) */
            if (!ss->cancel)
                ss->cancel = PQgetCancel(ss->conn->pg);
            return ss->conn;
        }
        if (!taken_now || PQstatus(ss->conn->pg) != CONNECTION_BAD)
            return NULL;
        crest__pg_conn_free(ss->conn);
        ss->conn = NULL;
    }
}

static int pg_query(crest__sess *ss, const crest__query *q, crest__query_cb cb, void *ud)
{
    if (crest__pg_on_loop(ss))
        return crest__pg_loop_query(ss, q, cb, ud);
    crest__dberr err;
    crest__rows *r = NULL;
    crest__conn *c = NULL;
    if (atomic_load(&ss->cancelled))
        fail_kind(&err, CREST__DBERR_UNAVAILABLE, "the request was cancelled");
    else
        c = sess_conn(ss, &err);
    /* Outside a transaction of the request's, the statement is its own
     * transaction: one that lost to a concurrent one runs again. (In one,
     * the caller runs the whole again: crest__rest_write_route.) */
    for (unsigned again = 0; c; again++) {
        if (run(c, q, ss->cfg.arena, ss->s->base.cfg.max_result, ss->cfg.statements, &r, &err) == 0) {
            cb(ud, r, NULL);
            return 0;
        }
        if (err.kind != CREST__DBERR_CONFLICT || ss->in_unit || ss->in_txn || again == CREST__CONFLICT_RETRIES ||
            atomic_load(&ss->cancelled))
            break;
        usleep(crest__conflict_pause_ms(again + 1) * 1000); /* (a pool thread: it may wait) */
    }
    if (c && err.kind == CREST__DBERR_DEADLINE && ss->cfg.deadline_us && crest__now_us() >= ss->cfg.deadline_us)
        ss->timed_out = true;
    else if (c && err.kind == CREST__DBERR_DEADLINE)
        err.kind = CREST__DBERR_UNAVAILABLE; /* cancelled: the client left */
    cb(ud, NULL, &err);
    return 0;
}

/* A transaction of the request: its own, or inside the write unit (which
 * is one already) a savepoint, so that rolling it back keeps the unit. */
static int pg_txn(crest__sess *ss, int op, crest__dberr *err)
{
    if (crest__pg_on_loop(ss)) {
        /* Transactions and write units are the business of write routes,
         * which run off the loop (writes_block). */
        fail_kind(err, CREST__DBERR_OTHER, "transactions run off the loop");
        return -1;
    }
    static const char *const sql[2][3] = {
        {"BEGIN", "COMMIT", "ROLLBACK"},
        {"SAVEPOINT crest_txn", "RELEASE SAVEPOINT crest_txn", "ROLLBACK TO SAVEPOINT crest_txn"},
    };
    int nested = ss->in_unit;
    if (op == CREST__TXN_BEGIN) {
        crest__conn *c = sess_conn(ss, err);
        if (!c || simple(c, sql[nested][0], err, ss->cfg.arena))
            return -1;
        ss->in_txn = true;
        return 0;
    }
    if (!ss->conn || !ss->in_txn)
        return 0;
    ss->in_txn = false;
    bool commit = op == CREST__TXN_COMMIT;
    return simple(ss->conn, sql[nested][commit ? 1 : 2], commit ? err : NULL, ss->cfg.arena);
}

/* A write route's unit: one transaction, committed (or rolled back) by
 * write_end; a transaction the route left open inside it goes with it. */
static int pg_write_begin(crest__sess *ss, crest__dberr *err)
{
    if (crest__pg_on_loop(ss)) {
        fail_kind(err, CREST__DBERR_OTHER, "write units run off the loop");
        return -1;
    }
    crest__conn *c = sess_conn(ss, err);
    if (!c || simple(c, "BEGIN", err, ss->cfg.arena))
        return -1;
    ss->in_unit = true;
    ss->in_txn = false;
    return 0;
}

static int pg_write_end(crest__sess *ss, bool commit, crest__dberr *err)
{
    if (!ss->in_unit || !ss->conn)
        return 0;
    ss->in_unit = ss->in_txn = false;
    return simple(ss->conn, commit ? "COMMIT" : "ROLLBACK", commit ? err : NULL, ss->cfg.arena);
}

static void pg_sess_end(crest__sess *ss, bool *timed_out)
{
    if (!ss)
        return;
    if (crest__pg_on_loop(ss))
        crest__pg_loop_end(ss);
    if (timed_out)
        *timed_out = ss->timed_out;
    if (!ss->conn)
        return;
    if (PQtransactionStatus(ss->conn->pg) != PQTRANS_IDLE)
        PQclear(PQexec(ss->conn->pg, "ROLLBACK"));
    PQfreeCancel(ss->cancel);
    ss->cancel = NULL;
    give_back(ss->s, ss->conn);
    ss->conn = NULL;
}

/* The client left: the running statement is cancelled by the server (a
 * cancel request on a connection of its own: libpq's, thread-safe). */
static void pg_cancel(crest__sess *ss)
{
    atomic_store(&ss->cancelled, true);
    if (crest__pg_on_loop(ss)) {
        crest__pg_loop_cancel(ss);
        return;
    }
    char buf[256];
    if (ss->cancel)
        PQcancel(ss->cancel, buf, sizeof buf);
}

/* No native handle: the connections are the store's (a loop's run
 * pipelined and non-blocking). crest_req_sqlite is SQLite's alone. */
static void *pg_native(crest__sess *ss)
{
    (void)ss;
    return NULL;
}

static int pg_sess_fkeys(crest__sess *ss, const char *table, crest__fkey_info **out, unsigned *n)
{
    if (crest__pg_on_loop(ss))
        return -1; /* (asked by write routes, off the loop) */
    crest__dberr err;
    crest__conn *c = sess_conn(ss, &err);
    if (!c)
        return -1;
    crest__sess_count(&ss->cfg);
    return fkeys_of(catalog(c, fkeys_sql, table, ss->cfg.arena), ss->cfg.arena, out, n);
}

const crest__store_vt crest__store_postgres = {
    .name = "postgres",
    .writes_block = true,
    .open = pg_open,
    .close = pg_close,
    .connect = pg_connect,
    .disconnect = pg_disconnect,
    .exec = pg_exec,
    .exec_script = pg_exec_script,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .describe = pg_describe,
    .columns = pg_columns,
    .fkeys = pg_fkeys,
    .setup = pg_setup,
    .worker_init = crest__pg_worker_init,
    .worker_dispose = crest__pg_worker_dispose,
    .sess_new = pg_sess_new,
    .query = pg_query,
    .write_begin = pg_write_begin,
    .write_end = pg_write_end,
    .txn = pg_txn,
    .sess_end = pg_sess_end,
    .cancel = pg_cancel,
    .native = pg_native,
    .sess_fkeys = pg_sess_fkeys,
    .pool_stats = crest__pg_pool_stats,
    .listen = crest__pg_listen,
};
