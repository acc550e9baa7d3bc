/* contract.c — the shared part of the store contract suite (contract.h):
 * the stores under test, and the helpers every contract test uses. A new
 * store is one more entry in `stores` (docs/internals/store.md, "The
 * contract suite"). */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "store/contract.h"

/* ---- the stores under test ---- */

static char tmpdir[256];

static bool sqlite_available(void) { return true; }

static const char *sqlite_path(const char *db)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s.db", tmpdir, db);
    return path;
}

static void sqlite_config(const char *db, crest__store_config *cfg)
{
    cfg->path = sqlite_path(db);
    cfg->create = true;
}

static void sqlite_drop(const char *db)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    for (unsigned i = 0; i < COUNT_OF(suffixes); i++) {
        char p[600];
        snprintf(p, sizeof p, "%s%s", sqlite_path(db), suffixes[i]);
        unlink(p);
    }
}

static void sqlite_missing(crest__store_config *cfg)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/missing.db", tmpdir); /* a folder that exists: only create stops it */
    cfg->path = path;
    cfg->create = false;
}

/* PostgreSQL: the server the test set-up started (CREST_TEST_PG_FILE names
 * a file holding its conninfo, or CREST_TEST_PG is one); each test's
 * database is made on it and dropped after. */
static const char *pg_conninfo(void)
{
    static char buf[512];
    if (buf[0])
        return buf;
    const char *env = getenv("CREST_TEST_PG"), *file = getenv("CREST_TEST_PG_FILE");
    if (env && *env) {
        snprintf(buf, sizeof buf, "%s", env);
    } else if (file && *file) {
        FILE *f = fopen(file, "r");
        if (f) {
            if (fgets(buf, sizeof buf, f))
                buf[strcspn(buf, "\r\n")] = 0;
            fclose(f);
        }
    }
    return buf[0] ? buf : NULL;
}

/* Runs sql on the server's maintenance database; false when it failed. */
static bool pg_admin(const char *sql)
{
    char ci[700];
    snprintf(ci, sizeof ci, "%s dbname=postgres options='-c client_min_messages=warning'", pg_conninfo());
    PGconn *c = PQconnectdb(ci);
    bool ok = PQstatus(c) == CONNECTION_OK;
    if (ok) {
        PGresult *r = PQexec(c, sql);
        ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!ok)
            fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
        PQclear(r);
    }
    PQfinish(c);
    return ok;
}

static bool pg_available(void) { return pg_conninfo() && pg_admin("SELECT 1"); }

static void pg_config(const char *db, crest__store_config *cfg)
{
    static char ci[700];
    char sql[256];
    /* made once per test: config runs for every store a test opens */
    char ci_admin[700];
    snprintf(ci_admin, sizeof ci_admin, "%s dbname=postgres", pg_conninfo());
    PGconn *c = PQconnectdb(ci_admin);
    PGresult *r = PQexecParams(c, "SELECT 1 FROM pg_database WHERE datname = $1", 1, NULL, (const char *[]){db},
                               NULL, NULL, 0);
    bool exists = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
    PQclear(r);
    PQfinish(c);
    if (!exists) {
        snprintf(sql, sizeof sql, "CREATE DATABASE \"%s\"", db);
        assert_true(pg_admin(sql));
    }
    snprintf(ci, sizeof ci, "%s dbname=%s", pg_conninfo(), db);
    cfg->path = ci;
    cfg->create = true;
}

static void pg_drop(const char *db)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", db);
    pg_admin(sql);
}

static void pg_missing(crest__store_config *cfg)
{
    static char ci[700];
    snprintf(ci, sizeof ci, "%s dbname=crest_no_such_database", pg_conninfo());
    cfg->path = ci;
    cfg->create = false;
}

static const contract_store stores[] = {
    {
        .name = "sqlite",
        .vt = &crest__store_sqlite,
        .available = sqlite_available,
        .config = sqlite_config,
        .drop = sqlite_drop,
        .missing = sqlite_missing,
        .placeholder = '?',
        .id_pk = "INTEGER PRIMARY KEY",
        /* SQLite: a bool is stored as 0/1 and reads back as INT; dates,
         * datetimes, JSON and UUIDs are text and read back as TEXT. */
        .cell_of = {CREST__V_NULL, CREST__V_INT, CREST__V_INT, CREST__V_FLOAT, CREST__V_TEXT, CREST__V_TEXT,
                    CREST__V_TEXT, CREST__V_TEXT, CREST__V_TEXT},
        .text_verbatim = true,
        .last_id = true,
        .native = true,
        .last_id_sql = "SELECT last_insert_rowid()",
        .raise_setup = "CREATE TRIGGER keep_seven BEFORE DELETE ON r WHEN old.n = 7 BEGIN"
                       " SELECT RAISE(ABORT, 'crest:409:Seven is kept'); END;"
                       "CREATE TRIGGER keep_eight BEFORE DELETE ON r WHEN old.n = 8 BEGIN"
                       " SELECT RAISE(ABORT, 'eight is kept'); END;",
    },
    {
        .name = "postgres",
        .vt = &crest__store_postgres,
        .available = pg_available,
        .config = pg_config,
        .drop = pg_drop,
        .missing = pg_missing,
        .placeholder = '$',
        .id_pk = "bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        /* Every kind has a type of its own, and reads back as itself. */
        .cell_of = {CREST__V_NULL, CREST__V_BOOL, CREST__V_INT, CREST__V_FLOAT, CREST__V_TEXT, CREST__V_DATE,
                    CREST__V_DATETIME, CREST__V_JSON, CREST__V_UUID},
        .text_verbatim = true,
        .last_id = false,
        .native = true,
        .last_id_sql = NULL,
        .raise_setup = "CREATE FUNCTION keep() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
                       " IF old.n = 7 THEN RAISE EXCEPTION 'crest:409:Seven is kept'; END IF;"
                       " IF old.n = 8 THEN RAISE EXCEPTION 'eight is kept'; END IF; RETURN old; END $$;"
                       "CREATE TRIGGER keep BEFORE DELETE ON r FOR EACH ROW EXECUTE FUNCTION keep();",
    },
};

/* ---- the test's world ---- */

contract_world T;

const char slow_read[] =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) SELECT count(*) FROM c";
const char endless_read[] =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) SELECT count(*) FROM c";

static const char *const kind_names[] = {"UNIQUE",   "FOREIGN_KEY", "REFERENCED",  "NOT_NULL", "CHECK",
                                         "CONSTRAINT", "DEADLINE",  "BUSY",        "UNAVAILABLE", "STORAGE",
                                         "NOMEM",    "TOO_LARGE",   "RAISED",      "OTHER"};
_Static_assert(COUNT_OF(kind_names) == CREST__DBERR_COUNT, "a name for every kind");

const char *kname(int k) { return k >= 0 && k < CREST__DBERR_COUNT ? kind_names[k] : "(not a kind)"; }

/* tmpl with each '?' made the store's placeholder ($1, $2, ... in order
 * for '$'); into the test's arena. The suite's SQL has no '?' in literals. */
const char *P(const char *tmpl)
{
    if (T.fx->placeholder == '?')
        return tmpl;
    size_t n = strlen(tmpl);
    char *out = crest__arena_alloc(&T.a, n * 4 + 1), *o = out;
    assert_non_null(out);
    unsigned k = 0;
    for (const char *p = tmpl; *p; p++)
        if (*p == '?')
            o += sprintf(o, "$%u", ++k);
        else
            *o++ = *p;
    *o = 0;
    return out;
}

crest__query Q(const char *sql, const crest__val *binds, unsigned n, unsigned flags)
{
    return (crest__query){.sql = sql, .len = strlen(sql), .binds = binds, .nbinds = n, .flags = flags};
}

/* Runs q on the test's connection: it must succeed. */
crest__rows *run_ok(const crest__query *q)
{
    crest__rows *r = NULL;
    crest__dberr e = {0};
    if (T.vt->exec(T.c, q, &T.a, &r, &e)) {
        print_error("%.*s: failed, %s: %s\n", (int)q->len, q->sql, kname((int)e.kind), e.detail ? e.detail : "");
        fail();
    }
    assert_non_null(r);
    return r;
}

crest__rows *ok(const char *sql, const crest__val *binds, unsigned n, unsigned flags)
{
    crest__query q = Q(sql, binds, n, flags);
    return run_ok(&q);
}

/* Runs sql on the test's connection: it must fail; its failure. */
crest__dberr fails(const char *sql, const crest__val *binds, unsigned n, unsigned flags)
{
    crest__query q = Q(sql, binds, n, flags);
    crest__rows *r = NULL;
    crest__dberr e;
    memset(&e, 0x5a, sizeof e); /* everything the store leaves unset shows */
    int rc = T.vt->exec(T.c, &q, &T.a, &r, &e);
    if (rc == 0) {
        print_error("%s: succeeded, want a failure\n", sql);
        fail();
    }
    assert_null(r);
    return e;
}

void script(const char *sql)
{
    char *msg = NULL;
    if (T.vt->exec_script(T.c, sql, &msg)) {
        print_error("%s: %s\n", sql, msg ? msg : "failed");
        free(msg);
        fail();
    }
}

/* SELECT count(*) FROM table on connection c. */
int64_t count_on(crest__conn *c, const char *table)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", table);
    crest__query q = Q(sql, NULL, 0, CREST__QF_READ);
    crest__rows *r = NULL;
    crest__dberr e = {0};
    assert_int_equal(T.vt->exec(c, &q, &T.a, &r, &e), 0);
    assert_i64_eq(r->nrows, 1);
    assert_cell_kind(crest__rows_cell(r, 0, 0), CREST__V_INT);
    return crest__rows_cell(r, 0, 0)->v.i;
}

int64_t count_of(const char *table) { return count_on(T.c, table); }

/* A second store on the test's database, configured otherwise. */
crest__store *open_with(size_t max_result, unsigned slow_read_ksteps, bool durability_normal)
{
    crest__store_config cfg = {0};
    T.fx->config(T.db, &cfg);
    cfg.max_result = max_result;
    cfg.slow_read_ksteps = slow_read_ksteps;
    cfg.durability_normal = durability_normal;
    crest__store *s = NULL;
    crest_error err = {0};
    if (T.vt->open(&cfg, &s, &err)) {
        print_error("open: %s\n", err.msg);
        fail();
    }
    return s;
}

crest__store_worker *worker_of(crest__store *s)
{
    crest__store_worker *w = NULL;
    crest_error err = {0};
    if (T.vt->worker_init(s, NULL, &w, &err)) {
        print_error("worker_init: %s\n", err.msg);
        fail();
    }
    return w;
}

void setup_five(void)
{
    ok("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER, x DOUBLE PRECISION, b BOOLEAN)", NULL, 0, 0);
    ok("INSERT INTO t (id, name, n) VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3), (4, 'four', 4),"
       " (5, 'five', 5)",
       NULL, 0, 0);
}

int t_setup(void **state)
{
    T.db = *state;
    T.fx->drop(T.db);
    crest__arena_init(&T.a, 4096, 0);
    crest__store_config cfg = {0};
    T.fx->config(T.db, &cfg);
    cfg.durability_normal = true;
    crest_error err = {0};
    if (T.vt->open(&cfg, &T.s, &err) || T.vt->connect(T.s, &T.c, &err)) {
        fprintf(stderr, "%s: %s\n", T.fx->name, err.msg);
        return -1;
    }
    return 0;
}

int t_teardown(void **state)
{
    (void)state;
    if (T.c)
        T.vt->disconnect(T.c);
    if (T.s)
        T.vt->close(T.s);
    T.c = NULL;
    T.s = NULL;
    crest__arena_dispose(&T.a);
    T.fx->drop(T.db);
    return 0;
}

/* ---- sessions ---- */

void on_done(void *ud, crest__rows *rows, const crest__dberr *err)
{
    done *d = ud;
    d->calls++;
    d->rows = rows;
    if (err)
        d->err = *err;
    assert_true((rows == NULL) == (err != NULL));
}

static void *pool_thread(void *p)
{
    pool_sim *ps = p;
    ps->work(ps->ud);
    return NULL;
}

int pool_offload(void *engine_ud, void (*work)(void *), void (*after)(void *, bool), void *ud)
{
    pool_sim *ps = engine_ud;
    ps->calls++;
    if (ps->mode == POOL_REFUSE || ps->pending)
        return -1;
    ps->work = work;
    ps->after = after;
    ps->ud = ud;
    ps->pending = true;
    ps->started = ps->mode == POOL_RUN && pthread_create(&ps->th, NULL, pool_thread, ps) == 0;
    if (ps->mode == POOL_RUN && !ps->started) {
        ps->pending = false;
        return -1;
    }
    return 0;
}

void pool_finish(pool_sim *ps)
{
    assert_true(ps->pending);
    if (ps->started)
        pthread_join(ps->th, NULL);
    ps->pending = ps->started = false;
    ps->after(ps->ud, ps->mode == POOL_CANCEL);
}

crest__sess *sess_in(crest__arena *a, crest__store *s, crest__store_worker *w, uint64_t deadline_us, pool_sim *ps)
{
    crest__sess_config sc = {
        .arena = a,
        .deadline_us = deadline_us,
        .worker = w,
        .blocking = w == NULL,
        .offload = ps ? pool_offload : NULL,
        .engine_ud = ps,
    };
    crest__sess *ss = T.vt->sess_new(s, &sc);
    assert_non_null(ss);
    return ss;
}

crest__sess *sess_on(crest__store *s, crest__store_worker *w, uint64_t deadline_us, pool_sim *ps)
{
    return sess_in(&T.a, s, w, deadline_us, ps);
}

int start(crest__sess *ss, const char *sql, const crest__val *v, unsigned n, unsigned flags, done *d)
{
    crest__query q = Q(sql, v, n, flags);
    memset(d, 0, sizeof *d);
    assert_int_equal(T.vt->query(ss, &q, on_done, d), 0);
    return d->calls;
}

crest__rows *sess_ok(crest__sess *ss, const char *sql, const crest__val *v, unsigned n, unsigned flags)
{
    done d;
    assert_int_equal(start(ss, sql, v, n, flags, &d), 1);
    if (!d.rows) {
        print_error("%s: failed, %s: %s\n", sql, kname((int)d.err.kind), d.err.detail ? d.err.detail : "");
        fail();
    }
    return d.rows;
}

/* ---- running each store's group ---- */

int contract_run(const char *suite, const struct CMUnitTest *tests, size_t n)
{
    snprintf(tmpdir, sizeof tmpdir, "%s/crest-contract-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    int failed = 0;
    for (unsigned i = 0; i < COUNT_OF(stores); i++) {
        T.fx = &stores[i];
        T.vt = stores[i].vt;
        if (!stores[i].available()) {
            printf("[  SKIPPED ] store %s: not available\n", stores[i].name);
            continue;
        }
        char name[128];
        snprintf(name, sizeof name, "%s: %s", suite, stores[i].name);
        failed += _cmocka_run_group_tests(name, tests, n, NULL, NULL);
    }
    if (rmdir(tmpdir))
        perror(tmpdir);
    return failed;
}

