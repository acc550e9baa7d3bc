/* sqlite.c — the SQLite store (store.h): connections, statements, sessions.
 *
 * Each worker has its own connection; each pool thread gets one of its own
 * (kept in thread-local storage, closed with the store); REST writes take
 * the single writer connection (sqlite_writer.c). A request's session runs
 * its statements on the connection of where it runs, under its deadline
 * (a progress handler). On the loop a read gets a small budget first: most
 * finish within it, in place; one that does not is stopped, and run again
 * from the start on a pool thread, its completion coming back to the loop —
 * so one expensive `where` never holds the other connections of its
 * worker. Results are read whole into the session's arena. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqlite_internal.h"

static atomic_uint_fast64_t store_gen;

/* ---- reading a statement into rows ---- */

/* Room for one more row (the first time for `expect` rows, when known);
 * NULL when short of memory. */
static crest__cell *add_row(crest__rows *r, crest__arena *a, size_t expect)
{
    if (r->nrows == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : expect && expect <= 1000 ? expect : 8;
        crest__cell *n = crest__arena_calloc(a, cap * (r->ncols ? r->ncols : 1), sizeof *n);
        if (!n)
            return NULL;
        if (r->nrows)
            memcpy(n, r->cells, r->nrows * r->ncols * sizeof *n);
        r->cells = n;
        r->cap = cap;
    }
    return &r->cells[r->nrows++ * r->ncols];
}

/* Copies the current row of st into r. -1: short of memory; -2: too large. */
static int read_row(crest__rows *r, sqlite3_stmt *st, crest__arena *a, size_t max_bytes, size_t expect)
{
    crest__cell *row = add_row(r, a, expect);
    if (!row)
        return -1;
    for (unsigned c = 0; c < r->ncols; c++) {
        crest__cell *cell = &row[c];
        switch (sqlite3_column_type(st, (int)c)) {
        case SQLITE_NULL:
            cell->k = CREST__V_NULL;
            r->bytes += 4;
            break;
        case SQLITE_INTEGER:
            cell->k = CREST__V_INT;
            cell->v.i = sqlite3_column_int64(st, (int)c);
            r->bytes += 1;
            break;
        case SQLITE_FLOAT:
            cell->k = CREST__V_FLOAT;
            cell->v.f = sqlite3_column_double(st, (int)c);
            r->bytes += 1;
            break;
        default: {
            const unsigned char *t = sqlite3_column_text(st, (int)c);
            size_t n = (size_t)sqlite3_column_bytes(st, (int)c);
            if (!t && sqlite3_errcode(sqlite3_db_handle(st)) == SQLITE_NOMEM)
                return -1;
            if (n > UINT32_MAX)
                return -2;
            char *s = crest__arena_alloc(a, n + 1);
            if (!s)
                return -1;
            if (n)
                memcpy(s, t, n);
            s[n] = 0;
            cell->k = CREST__V_TEXT;
            cell->v.s = s;
            cell->n = (uint32_t)n;
            r->bytes += n + 2;
        }
        }
    }
    /* A lower bound of the JSON the rows become: a result the response
     * could not hold is refused before it takes more memory. */
    return max_bytes && r->bytes > max_bytes ? -2 : 0;
}

/* Binds $1..$n by name (crest_query's placeholders); -1 when the
 * statement has parameters those do not cover. */
static int bind_numbered(sqlite3_stmt *st, const crest__query *q)
{
    int used = 0;
    for (unsigned i = 0; i < q->nbinds; i++) {
        char name[16];
        snprintf(name, sizeof name, "$%u", i + 1);
        int idx = sqlite3_bind_parameter_index(st, name);
        if (idx > 0) {
            crest__sq_bind(st, idx, &q->binds[i]);
            used++;
        }
    }
    return used == sqlite3_bind_parameter_count(st) ? 0 : -1;
}

/* Runs q on c into *out (arena a). 0, or -1 with err set. A session on the
 * loop (budget set) keeps its budget only for a statement that reads. */
static int run(crest__conn *c, const crest__query *q, crest__arena *a, size_t max_bytes, crest__rows **out,
               crest__dberr *err, crest__sess *ss)
{
    bool nocache = q->flags & CREST__QF_NOCACHE;
    int rc;
    sqlite3_stmt *st = crest__sq_cache_get(c, q->sql, q->len, nocache, &rc);
    if (!st) {
        crest__dberr_sqlite(c->db, rc, a, err);
        return -1;
    }
    if (ss && ss->budget && !sqlite3_stmt_readonly(st))
        ss->budget = 0; /* a write is not run twice */
    if (q->flags & CREST__QF_NUMBERED) {
        if (bind_numbered(st, q)) {
            crest__sq_cache_done(c, st, nocache);
            memset(err, 0, sizeof *err);
            err->kind = CREST__DBERR_OTHER;
            err->detail = "the statement's parameters are not $1..$n of the values given";
            return -1;
        }
    } else {
        for (unsigned i = 0; i < q->nbinds; i++)
            crest__sq_bind(st, (int)i + 1, &q->binds[i]);
    }
    /* changes and last_id are the statement's own: the connection's
     * counters still hold an earlier statement's (another request's, on a
     * worker's connection) after one that writes nothing. A read leaves
     * last_insert_rowid as it is (SQL may read it); a write that inserted
     * nothing puts it back. */
    bool writes = !sqlite3_stmt_readonly(st);
    sqlite3_int64 total0 = 0, last0 = 0;
    if (writes) {
        total0 = sqlite3_total_changes64(c->db);
        last0 = sqlite3_last_insert_rowid(c->db);
        sqlite3_set_last_insert_rowid(c->db, 0);
    }
    /* The columns are read after the first step: a cached statement whose
     * table changed is prepared again by that step, maybe with other
     * columns. */
    rc = sqlite3_step(st);
    crest__rows *r = NULL;
    int bad = 0;
    if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
        unsigned ncols = (unsigned)sqlite3_column_count(st);
        r = crest__arena_alloc(a, sizeof *r);
        bad = !r || crest__rows_init(r, a, ncols) ? -1 : 0;
        for (unsigned i = 0; !bad && !(q->flags & CREST__QF_NONAMES) && i < ncols; i++) {
            const char *name = sqlite3_column_name(st, (int)i);
            if (!(r->names[i] = crest__arena_strdup(a, name ? name : "")))
                bad = -1;
        }
    }
    while (!bad && rc == SQLITE_ROW) {
        /* Past max_rows (or the first row) a write still runs to its end (a
         * write with RETURNING); a statement that only reads stops there. */
        bool full = (q->max_rows && r->nrows >= q->max_rows) || ((q->flags & CREST__QF_FIRST) && r->nrows);
        if (full && !writes)
            break;
        if (!full)
            bad = read_row(r, st, a, max_bytes, q->flags & CREST__QF_FIRST ? 1 : q->max_rows);
        if (!bad)
            rc = sqlite3_step(st);
    }
    sqlite3_int64 last = writes ? sqlite3_last_insert_rowid(c->db) : 0;
    if (writes && !last)
        sqlite3_set_last_insert_rowid(c->db, last0);
    if (bad || (rc != SQLITE_DONE && rc != SQLITE_ROW)) {
        if (bad == -2) {
            memset(err, 0, sizeof *err);
            err->kind = CREST__DBERR_TOO_LARGE;
        } else if (bad == -1) {
            memset(err, 0, sizeof *err);
            err->kind = CREST__DBERR_NOMEM;
        } else {
            crest__dberr_sqlite(c->db, rc, a, err);
            if (err->kind == CREST__DBERR_FOREIGN_KEY && (q->flags & CREST__QF_DELETE))
                err->kind = CREST__DBERR_REFERENCED; /* the other side of the key */
        }
        crest__sq_cache_done(c, st, nocache);
        return -1;
    }
    r->changes = writes && sqlite3_total_changes64(c->db) != total0 ? sqlite3_changes64(c->db) : 0;
    r->last_id = last;
    crest__sq_cache_done(c, st, nocache);
    *out = r;
    return 0;
}

/* ---- the store ---- */

static int sq_open(const crest__store_config *cfg, crest__store **out, crest_error *err)
{
    sq_store *s = calloc(1, sizeof *s);
    char *path = cfg->path ? strdup(cfg->path) : NULL;
    if (!s || !path) {
        free(s);
        free(path);
        return crest__error_set(err, CREST_ENOMEM, NULL, 0, "out of memory");
    }
    s->base.vt = &crest__store_sqlite;
    s->base.cfg = *cfg;
    s->base.cfg.path = path;
    s->gen = atomic_fetch_add(&store_gen, 1) + 1;
    pthread_mutex_init(&s->pool_lock, NULL);
    crest__sq_writer_init(s);
    *out = &s->base;
    return 0;
}

static void conn_close(crest__conn *c)
{
    if (!c)
        return;
    crest__sq_cache_free(c);
    sqlite3_close_v2(c->db);
    free(c);
}

static void sq_close(crest__store *st)
{
    sq_store *s = (sq_store *)st;
    if (!s)
        return;
    for (unsigned i = 0; i < s->npool; i++)
        conn_close(s->pool[i]);
    free(s->pool);
    pthread_mutex_destroy(&s->pool_lock);
    crest__sq_writer_dispose(s);
    free((char *)s->base.cfg.path);
    free(s);
}

static int sq_connect(crest__store *st, crest__conn **out, crest_error *err)
{
    crest__conn *c = calloc(1, sizeof *c);
    if (!c)
        return crest__error_set(err, CREST_ENOMEM, NULL, 0, "out of memory");
    int rc = crest__sq_open_db(st->cfg.path, st->cfg.create, &c->db);
    if (rc != SQLITE_OK) {
        crest__error_set(err, CREST_EIO, st->cfg.path, 0, "cannot open the database: %s",
                         c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        conn_close(c);
        return CREST_EIO;
    }
    *out = c;
    return 0;
}

static int sq_exec(crest__conn *c, const crest__query *q, crest__arena *a, crest__rows **out, crest__dberr *err)
{
    crest__rows *r = NULL;
    int rc = run(c, q, a, 0, &r, err, NULL);
    if (out)
        *out = r;
    return rc;
}

static int sq_exec_script(crest__conn *c, const char *sql, char **msg)
{
    char *e = NULL;
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, &e);
    if (rc != SQLITE_OK) {
        *msg = strdup(e ? e : sqlite3_errmsg(c->db));
        sqlite3_free(e);
        return -1;
    }
    return 0;
}

static int txn_text(crest__conn *c, const char *sql, crest__dberr *err, crest__arena *a)
{
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        return 0;
    if (err)
        crest__dberr_sqlite(c->db, rc, a, err);
    return -1;
}

static int sq_begin(crest__conn *c, bool write, crest__dberr *err, crest__arena *a)
{
    return txn_text(c, write ? "BEGIN IMMEDIATE" : "BEGIN", err, a);
}

static int sq_commit(crest__conn *c, crest__dberr *err, crest__arena *a)
{
    return txn_text(c, "COMMIT", err, a);
}

static void sq_rollback(crest__conn *c)
{
    if (!sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
}

static int sq_describe(crest__conn *c, const char *sql, crest__arena *a, crest__stmt_info *out, char **msg)
{
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    memset(out, 0, sizeof *out);
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, &tail) != SQLITE_OK) {
        *msg = strdup(sqlite3_errmsg(c->db));
        return -1;
    }
    if (!st) {
        *msg = strdup("no statement");
        return -1;
    }
    int rc = 0;
    out->nparams = (unsigned)sqlite3_bind_parameter_count(st);
    out->ncols = (unsigned)sqlite3_column_count(st);
    out->param_names = crest__arena_calloc(a, out->nparams + 1, sizeof *out->param_names);
    out->col_names = crest__arena_calloc(a, out->ncols + 1, sizeof *out->col_names);
    if (!out->param_names || !out->col_names) {
        *msg = strdup("out of memory");
        rc = -1;
        goto out;
    }
    for (unsigned i = 0; i < out->nparams; i++) {
        const char *n = sqlite3_bind_parameter_name(st, (int)i + 1);
        out->param_names[i] = n ? crest__arena_strdup(a, n) : NULL;
    }
    for (unsigned i = 0; i < out->ncols; i++)
        out->col_names[i] = crest__arena_strdup(a, sqlite3_column_name(st, (int)i));
    out->readonly = sqlite3_stmt_readonly(st);
    while (tail && (*tail == ' ' || *tail == '\t' || *tail == '\n' || *tail == '\r' || *tail == ';'))
        tail++;
    out->tail = tail ? strlen(tail) : 0;
out:
    sqlite3_finalize(st);
    return rc;
}

static int sq_columns(crest__conn *c, const char *table, crest__arena *a, crest__column_info **out, unsigned *n)
{
    static const char sql[] = "SELECT name, upper(type), \"notnull\", pk, dflt_value FROM pragma_table_info(?1)";
    crest__val v = {.k = CREST__V_TEXT, .s = table, .n = strlen(table)};
    crest__query q = {.sql = sql, .len = sizeof sql - 1, .binds = &v, .nbinds = 1, .flags = CREST__QF_NOCACHE};
    crest__rows *r;
    crest__dberr e;
    *out = NULL;
    *n = 0;
    if (run(c, &q, a, 0, &r, &e, NULL))
        return -1;
    crest__column_info *ci = crest__arena_calloc(a, r->nrows + 1, sizeof *ci);
    if (!ci)
        return -1;
    for (size_t i = 0; i < r->nrows; i++) {
        ci[i].name = crest__rows_cell(r, i, 0)->v.s;
        ci[i].type = crest__rows_cell(r, i, 1)->k == CREST__V_TEXT ? crest__rows_cell(r, i, 1)->v.s : "";
        ci[i].notnull = crest__rows_cell(r, i, 2)->v.i != 0;
        ci[i].pk = crest__rows_cell(r, i, 3)->v.i != 0;
        ci[i].dflt = crest__rows_cell(r, i, 4)->k == CREST__V_TEXT ? crest__rows_cell(r, i, 4)->v.s : NULL;
    }
    *out = ci;
    *n = (unsigned)r->nrows;
    return 0;
}

/* One-column foreign keys of table; for a key without a `to` column, the
 * parent's one-column primary key ("rowid" when it has none). */
static int sq_fkeys(crest__conn *c, const char *table, crest__arena *a, crest__fkey_info **out, unsigned *n)
{
    static const char sql[] =
        "SELECT k.\"table\", k.\"from\", coalesce(k.\"to\", (SELECT CASE WHEN count(*) = 1 THEN max(name) END"
        " FROM pragma_table_info(k.\"table\") WHERE pk > 0), 'rowid')"
        " FROM pragma_foreign_key_list(?1) AS k"
        " WHERE (SELECT count(*) FROM pragma_foreign_key_list(?1) AS o WHERE o.id = k.id) = 1 ORDER BY k.id";
    crest__val v = {.k = CREST__V_TEXT, .s = table, .n = strlen(table)};
    crest__query q = {.sql = sql, .len = sizeof sql - 1, .binds = &v, .nbinds = 1};
    crest__rows *r;
    crest__dberr e;
    *out = NULL;
    *n = 0;
    if (run(c, &q, a, 0, &r, &e, NULL))
        return -1;
    crest__fkey_info *fk = crest__arena_calloc(a, r->nrows + 1, sizeof *fk);
    if (!fk)
        return -1;
    unsigned k = 0;
    for (size_t i = 0; i < r->nrows; i++) {
        if (crest__rows_cell(r, i, 0)->k != CREST__V_TEXT || crest__rows_cell(r, i, 1)->k != CREST__V_TEXT)
            continue;
        fk[k].table = crest__rows_cell(r, i, 0)->v.s;
        fk[k].column = crest__rows_cell(r, i, 1)->v.s;
        fk[k].to = crest__rows_cell(r, i, 2)->k == CREST__V_TEXT ? crest__rows_cell(r, i, 2)->v.s : "rowid";
        k++;
    }
    *out = fk;
    *n = k;
    return 0;
}

/* WAL: readers never block the writer; NORMAL sync is durable across
 * process crashes, and across power loss up to the last checkpoint. */
static int sq_setup(crest__conn *c, char **msg)
{
    const char *file = sqlite3_db_filename(c->db, "main");
    if (!file || !*file)
        return 0; /* in memory */
    return sq_exec_script(c, "PRAGMA journal_mode=WAL", msg);
}

/* ---- workers and pool threads ---- */

static int sq_worker_init(crest__store *st, void *loop, crest__store_worker **out, crest_error *err)
{
    (void)loop; /* statements run in place, or on the thread pool */
    sq_store *s = (sq_store *)st;
    crest__store_worker *w = calloc(1, sizeof *w);
    if (!w)
        return crest__error_set(err, CREST_ENOMEM, NULL, 0, "out of memory");
    w->s = s;
    int rc = crest__sq_open_db(st->cfg.path, false, &w->conn.db);
    if (rc != SQLITE_OK) {
        crest__error_set(err, CREST_EIO, st->cfg.path, 0, "cannot open the database: %s",
                         w->conn.db ? sqlite3_errmsg(w->conn.db) : sqlite3_errstr(rc));
        sqlite3_close_v2(w->conn.db);
        free(w);
        return CREST_EIO;
    }
    crest__sq_tune(w->conn.db, st->cfg.durability_normal, 1024);
    *out = w;
    return 0;
}

static void sq_worker_dispose(crest__store_worker *w)
{
    if (!w)
        return;
    sqlite3_finalize(w->data_version);
    crest__sq_cache_free(&w->conn);
    sqlite3_close_v2(w->conn.db);
    free(w);
}

static int64_t sq_data_version(crest__store_worker *w)
{
    if (!w->data_version &&
        sqlite3_prepare_v3(w->conn.db, "PRAGMA data_version", -1, SQLITE_PREPARE_PERSISTENT, &w->data_version, NULL))
        return -1;
    int64_t v = sqlite3_step(w->data_version) == SQLITE_ROW ? sqlite3_column_int64(w->data_version, 0) : -1;
    sqlite3_reset(w->data_version);
    /* (both only grow: their sum moves when either does) */
    return v < 0 ? -1 : v + (int64_t)sqlite3_total_changes64(w->conn.db);
}

/* Pool threads run handlers while the loop goes on using the worker's
 * connection, so each pool thread gets a connection of its own, kept in
 * thread-local storage and registered with the store, which closes them
 * all when it is closed. `gen` tells stores at a reused address apart. */
static __thread crest__conn *tl_conn;
static __thread uint64_t tl_gen;

static crest__conn *pool_conn(sq_store *s)
{
    if (tl_conn && tl_gen == s->gen)
        return tl_conn;
    crest__conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (crest__sq_open_db(s->base.cfg.path, false, &c->db) != SQLITE_OK) {
        sqlite3_close_v2(c->db);
        free(c);
        return NULL;
    }
    crest__sq_tune(c->db, s->base.cfg.durability_normal, 0);
    pthread_mutex_lock(&s->pool_lock);
    crest__conn **n = realloc(s->pool, (s->npool + 1) * sizeof *n);
    if (n) {
        s->pool = n;
        n[s->npool++] = c;
    }
    pthread_mutex_unlock(&s->pool_lock);
    if (!n) {
        conn_close(c);
        return NULL;
    }
    tl_conn = c;
    tl_gen = s->gen;
    return c;
}

/* ---- sessions ---- */

static crest__sess *sq_sess_new(crest__store *st, const crest__sess_config *cfg)
{
    crest__sess *ss = crest__arena_calloc(cfg->arena, 1, sizeof *ss);
    if (!ss)
        return NULL;
    ss->s = (sq_store *)st;
    ss->cfg = *cfg;
    return ss;
}

/* Every statement of the session runs under its deadline; on the loop a
 * read also under its budget. */
static int progress(void *p)
{
    crest__sess *ss = p;
    if (atomic_load_explicit(&ss->cancelled, memory_order_relaxed))
        return 1;
    uint64_t now = crest__now_us();
    if (ss->cfg.deadline_us && now > ss->cfg.deadline_us)
        return 1;
    if (ss->budget && --ss->budget == 0) {
        ss->over_budget = true;
        return 1;
    }
    return 0;
}

/* crest_req_sqlite's connection keeps the deadline for as long as the
 * request runs: the handler's own statements are bounded too. */
static void hook(crest__sess *ss, sqlite3 *db)
{
    if (ss->hooked == db)
        return;
    if (ss->hooked)
        sqlite3_progress_handler(ss->hooked, 0, NULL, NULL);
    sqlite3_progress_handler(db, 1000, progress, ss);
    ss->hooked = db;
}

static void unhook(crest__sess *ss)
{
    if (!ss->hooked)
        return;
    /* A handler that hit the deadline reports whatever it makes of the
     * interrupted statement; the client learns the real cause. */
    if (ss->cfg.deadline_us && crest__now_us() > ss->cfg.deadline_us &&
        sqlite3_errcode(ss->hooked) == SQLITE_INTERRUPT)
        ss->timed_out = true;
    sqlite3_progress_handler(ss->hooked, 0, NULL, NULL);
    ss->hooked = NULL;
}

/* Runs q for the session on c, under its deadline (and budget). Not
 * counted here: it may run on a pool thread while the session's own
 * thread counts (crest__sess_count's callers say where). */
static int run_sess(crest__sess *ss, crest__conn *c, const crest__query *q, crest__rows **out, crest__dberr *err)
{
    sqlite3_progress_handler(c->db, 1000, progress, ss);
    int rc = run(c, q, ss->cfg.arena, ss->s->base.cfg.max_result, out, err, ss);
    if (ss->hooked != c->db) /* other sessions use this connection next */
        sqlite3_progress_handler(c->db, 0, NULL, NULL);
    if (rc && err->kind == CREST__DBERR_DEADLINE && !ss->over_budget)
        ss->timed_out = true;
    return rc;
}

/* The connection of where the session runs (the writer once taken). */
static crest__conn *sess_conn(crest__sess *ss)
{
    if (ss->conn)
        return ss->conn;
    if (ss->cfg.blocking || !ss->cfg.worker) {
        ss->conn = pool_conn(ss->s);
        ss->where = SQ_POOL;
    } else {
        ss->conn = &ss->cfg.worker->conn;
        ss->where = SQ_WORKER;
    }
    return ss->conn;
}

static void unavailable(crest__dberr *err)
{
    memset(err, 0, sizeof *err);
    err->kind = CREST__DBERR_UNAVAILABLE;
}

/* A read moved off the loop: the whole statement again, on a pool thread. */
typedef struct offload_job {
    crest__sess *ss;
    crest__query q;
    crest__query_cb cb;
    void *ud;
    crest__rows *rows;
    crest__dberr err;
    int rc;
    bool ran;                     /* it ran on the pool thread (counted on the loop, by offload_after) */
} offload_job;

static void offload_work(void *p)
{
    offload_job *j = p;
    crest__sess *ss = j->ss;
    crest__conn *c = pool_conn(ss->s);
    if (!c) {
        unavailable(&j->err);
        j->rc = -1;
        return;
    }
    j->ran = true;
    j->rc = run_sess(ss, c, &j->q, &j->rows, &j->err);
}

static void offload_after(void *p, bool cancelled)
{
    offload_job *j = p;
    if (cancelled) {
        unavailable(&j->err);
        j->rc = -1;
    } else if (j->ran) {
        crest__sess_count(&j->ss->cfg);
    }
    j->cb(j->ud, j->rc ? NULL : j->rows, j->rc ? &j->err : NULL);
}

/* Runs q on a pool thread, cb then on the loop; 0, or -1 when it cannot
 * (nothing ran). The caller's text and value array are borrowed only until
 * sq_query returns: the job keeps copies (the values' own text lives as
 * long as the request). */
static int move_off(crest__sess *ss, const crest__query *q, crest__query_cb cb, void *ud)
{
    offload_job *j = crest__arena_calloc(ss->cfg.arena, 1, sizeof *j);
    char *sql = j ? crest__arena_strndup(ss->cfg.arena, q->sql, q->len) : NULL;
    crest__val *binds = sql && q->nbinds ? crest__arena_calloc(ss->cfg.arena, q->nbinds, sizeof *binds) : NULL;
    if (!j || !sql || (q->nbinds && !binds))
        return -1;
    if (q->nbinds)
        memcpy(binds, q->binds, q->nbinds * sizeof *binds);
    j->ss = ss;
    j->q = *q;
    j->q.sql = sql;
    j->q.binds = binds;
    j->cb = cb;
    j->ud = ud;
    return ss->cfg.offload(ss->cfg.engine_ud, offload_work, offload_after, j) == 0 ? 0 : -1;
}

static int sq_query(crest__sess *ss, const crest__query *q, crest__query_cb cb, void *ud)
{
    crest__dberr err;
    crest__rows *rows = NULL;
    crest__conn *c = sess_conn(ss);
    if (!c) {
        unavailable(&err);
        cb(ud, NULL, &err);
        return 0;
    }
    /* Never inside a transaction (another connection would not see it),
     * whether begun through txn() or by the caller's own BEGIN. */
    bool may_move = ss->where == SQ_WORKER && !(q->flags & CREST__QF_INPLACE) && ss->cfg.offload &&
                    ss->s->base.cfg.slow_read_ksteps && !ss->in_txn && sqlite3_get_autocommit(c->db);
    /* A request whose read was slow reads the same data next (a page after
     * its count): its next reads go off the loop at once. */
    if (may_move && ss->moved && (q->flags & CREST__QF_READ) && move_off(ss, q, cb, ud) == 0)
        return 0;
    ss->over_budget = false;
    ss->budget = may_move ? ss->s->base.cfg.slow_read_ksteps : 0;
    crest__sess_count(&ss->cfg);
    int rc = run_sess(ss, c, q, &rows, &err);
    ss->budget = 0;
    if (rc && ss->over_budget && err.kind == CREST__DBERR_DEADLINE) {
        ss->over_budget = false;
        ss->moved = true;
        if (move_off(ss, q, cb, ud) == 0)
            return 0;
        /* No thread pool to move to: finish it here, past the budget. */
        crest__sess_count(&ss->cfg);
        rc = run_sess(ss, c, q, &rows, &err);
    }
    cb(ud, rc ? NULL : rows, rc ? &err : NULL);
    return 0;
}

static int sq_write_begin(crest__sess *ss, crest__dberr *err)
{
    crest__conn *c = crest__sq_writer_begin(ss->s);
    if (!c) {
        unavailable(err);
        return -1;
    }
    ss->conn = c;
    ss->where = SQ_WRITER;
    return 0;
}

static int sq_write_end(crest__sess *ss, bool commit, crest__dberr *err)
{
    if (ss->where != SQ_WRITER)
        return 0;
    if (ss->hooked == ss->conn->db)
        unhook(ss); /* the next writer must not inherit this request's deadline */
    sq_rollback(ss->conn); /* never leave a transaction open */
    ss->in_txn = false;
    ss->conn = NULL;
    ss->where = SQ_NONE;
    crest__sq_writer_end(ss->s);
    if (commit && crest__sq_writer_durable(ss->s)) {
        memset(err, 0, sizeof *err);
        err->kind = CREST__DBERR_STORAGE;
        return -1;
    }
    return 0;
}

static int sq_txn(crest__sess *ss, int op, crest__dberr *err)
{
    crest__conn *c = sess_conn(ss);
    if (!c) {
        unavailable(err);
        return -1;
    }
    int rc = 0;
    switch (op) {
    case CREST__TXN_BEGIN:
        rc = sq_begin(c, ss->where == SQ_WRITER, err, ss->cfg.arena);
        ss->in_txn = rc == 0;
        break;
    case CREST__TXN_COMMIT:
        rc = sq_commit(c, err, ss->cfg.arena);
        if (rc)
            sq_rollback(c);
        ss->in_txn = false;
        break;
    default:
        sq_rollback(c);
        ss->in_txn = false;
    }
    return rc;
}

static void sq_sess_end(crest__sess *ss, bool *timed_out)
{
    if (!ss)
        return;
    if (ss->in_txn && ss->conn) { /* a transaction the request never ended */
        sq_rollback(ss->conn);
        ss->in_txn = false;
    }
    if (ss->where == SQ_WRITER) {
        crest__dberr e;
        sq_write_end(ss, false, &e);
    }
    unhook(ss);
    if (timed_out && ss->timed_out)
        *timed_out = true;
}

/* From any thread: the session's statement (on the loop or a pool thread)
 * stops at its next progress call, and so does every later one; only this
 * session's statements see the flag. */
static void sq_cancel(crest__sess *ss)
{
    atomic_store(&ss->cancelled, true);
}

static void *sq_native(crest__sess *ss)
{
    crest__conn *c = sess_conn(ss);
    if (c)
        hook(ss, c->db);
    return c ? c->db : NULL;
}

static int sq_sess_fkeys(crest__sess *ss, const char *table, crest__fkey_info **out, unsigned *n)
{
    crest__conn *c = sess_conn(ss);
    if (!c)
        return -1;
    /* Probing happens after a failure: past the deadline it is skipped. */
    crest__sess_count(&ss->cfg);
    return sq_fkeys(c, table, ss->cfg.arena, out, n);
}

const crest__store_vt crest__store_sqlite = {
    .name = "sqlite",
    .writes_block = true,
    .unit_autocommits = true,
    .open = sq_open,
    .close = sq_close,
    .connect = sq_connect,
    .disconnect = conn_close,
    .exec = sq_exec,
    .exec_script = sq_exec_script,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .describe = sq_describe,
    .columns = sq_columns,
    .fkeys = sq_fkeys,
    .setup = sq_setup,
    .worker_init = sq_worker_init,
    .worker_dispose = sq_worker_dispose,
    .sess_new = sq_sess_new,
    .query = sq_query,
    .write_begin = sq_write_begin,
    .write_end = sq_write_end,
    .txn = sq_txn,
    .sess_end = sq_sess_end,
    .cancel = sq_cancel,
    .native = sq_native,
    .sess_fkeys = sq_sess_fkeys,
    .data_version = sq_data_version,
};
