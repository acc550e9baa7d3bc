/* hello.c — a crest server written in C with the public API only.
 *
 *   GET  /hello                  → {"message":"hello"}
 *   GET  /tables/{table}/count   → {"table":"t","count":N}
 *   POST /tables/{table}/rows    → appends a JSON array of row objects, 201 {"inserted":N,"count":N}
 *
 * The table endpoints are atoti's Session.endpoint example: custom routes over
 * the app's own database (default hello.db, or --db PATH / CREST_DATABASE; a
 * postgresql:// URI for PostgreSQL).
 * `{table}` is checked against the database's own tables and quoted; column
 * names come from the table's own columns; every value is bound.
 *
 * They talk to the database through crest_query: one statement at a time,
 * $1..$n parameters, the result handed to a callback. A handler starts the
 * first statement and returns CREST_DEFERRED; each callback starts the next
 * one or answers and calls crest_res_finish. A slow statement (count(*) over
 * a big table) then continues off the worker's event loop, and the worker
 * serves other requests meanwhile.
 *
 * A new database gets a table `items (id, name, qty)`.
 *
 * Usage: hello [--db PATH|URI] [--listen HOST:PORT] [--workers N] */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crest/crest.h"

static int hello(crest_req *req, crest_res *res, void *ud)
{
    (void)req;
    (void)ud;
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "message");
    crest_json_str(w, "hello");
    crest_json_object_end(w);
    return 0;
}

/* Writes "name" with embedded quotes doubled into out (SQL identifier quoting). */
static int quote_ident(const char *name, char *out, size_t cap)
{
    size_t o = 0;
    if (cap < 3)
        return -1;
    out[o++] = '"';
    for (const char *c = name; *c; c++) {
        if (o + 3 >= cap)
            return -1;
        if (*c == '"')
            out[o++] = '"';
        out[o++] = *c;
    }
    out[o++] = '"';
    out[o] = 0;
    return 0;
}

/* Is `$1` one of the database's own tables (exact name, not an internal one)?
 * The one statement here in each store's own words: where a database lists
 * its tables is its own business (SQLite's sqlite_schema; PostgreSQL's
 * catalog, the tables of the schema the session works in). main picks. */
static const char sqlite_table_exists_sql[] = "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = $1 "
                                              "AND name NOT LIKE 'sqlite_%'";
static const char pg_table_exists_sql[] = "SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = current_schema() "
                                          "AND tablename = $1";
static const char *table_exists_sql = sqlite_table_exists_sql;

/* ---- GET /tables/{table}/count ---------------------------------------- */

typedef struct count_job {
    const char *table;
    crest_value name;   /* $1 of table_exists_sql: borrowed until its callback runs */
    char sql[700];
} count_job;

static void count_done(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    count_job *job = ud;
    (void)req;
    if (rows && crest_rows_next(rows)) {
        crest_json *w = crest_res_json(res);
        crest_json_object_begin(w);
        crest_json_key(w, "table");
        crest_json_str(w, job->table);
        crest_json_key(w, "count");
        crest_json_int(w, crest_rows_int(rows, 0));
        crest_json_object_end(w);
    } else if (rows) {
        crest_res_error(res, 500, "internal_error", "cannot count the rows");
    } /* else res holds crest's answer (504 past the deadline, ...) */
    crest_res_finish(res);
}

static void count_found(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    count_job *job = ud;
    if (!rows) {
        crest_res_finish(res);
        return;
    }
    if (!crest_rows_next(rows)) {
        crest_res_error(res, 404, "not_found", "no table named '%s'", job->table);
        crest_res_finish(res);
        return;
    }
    char q[600];
    if (quote_ident(job->table, q, sizeof q)) {
        crest_res_error(res, 500, "internal_error", "cannot count the rows");
        crest_res_finish(res);
        return;
    }
    snprintf(job->sql, sizeof job->sql, "SELECT count(*) FROM %s", q);
    /* count(*) scans the table: when it takes long it goes on on the thread
     * pool, and count_done runs later on this worker's loop. */
    if (crest_query(req, res, job->sql, NULL, 0, count_done, job) < 0)
        crest_res_finish(res); /* not started: res holds the answer */
}

static int count_table(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    count_job *job = crest_req_alloc(req, sizeof *job);
    if (!job)
        return crest_res_error(res, 503, "out_of_memory", "the server is short of memory");
    job->table = crest_req_str(req, "table");
    job->name = crest_text(job->table);
    return crest_query(req, res, table_exists_sql, &job->name, 1, count_found, job);
}

/* ---- POST /tables/{table}/rows ------------------------------------------
 *
 * All rows or none, as a chain of statements in one transaction:
 *   table_exists_sql → SELECT * FROM t LIMIT 0 (the table's columns) →
 *   BEGIN → INSERT row 0 → INSERT row 1 → ... → COMMIT → SELECT count(*).
 * A failure on the way rolls back, then answers. The state lives in the
 * request's memory (crest_req_alloc), as the steps may run after the
 * handler has returned. */

#define MAX_FIELDS 200

typedef struct append_job {
    const char *table;
    char qt[600];              /* the table's name, quoted */
    json_t *rows;              /* the body (the request's) */
    size_t i;                  /* the row being inserted */
    crest_rows *columns;       /* the table's columns: names only, no rows */
    crest_value vals[MAX_FIELDS]; /* row i's values: borrowed by its INSERT until its callback */
    char sql[16384];           /* the statement in flight */
    bool looping, inserted;    /* append_insert_next's loop: is it running, did row i go in */
    /* A failure found mid-transaction, answered once ROLLBACK is done; a
     * NULL code keeps the answer crest made for a failed statement. */
    int fail_status;
    const char *fail_code;
    char fail_detail[800];
} append_job;

static void append_insert_next(crest_req *req, crest_res *res, append_job *job);

/* A value of the body as a statement parameter: text borrowed from the
 * body, an object or an array as its JSON text in the request's memory.
 * -1 when out of memory. */
static int value_of_json(crest_req *req, json_t *v, crest_value *out)
{
    switch (json_typeof(v)) {
    case JSON_INTEGER: *out = crest_int(json_integer_value(v)); return 0;
    case JSON_REAL: *out = crest_float(json_real_value(v)); return 0;
    case JSON_TRUE: *out = crest_bool(true); return 0;
    case JSON_FALSE: *out = crest_bool(false); return 0;
    case JSON_NULL: *out = crest_null(); return 0;
    case JSON_STRING:
        *out = (crest_value){.type = CREST_V_TEXT, .s = json_string_value(v), .len = json_string_length(v)};
        return 0;
    default: {
        char *t = json_dumps(v, JSON_COMPACT);
        size_t len = t ? strlen(t) : 0;
        char *copy = t ? crest_req_alloc(req, len + 1) : NULL;
        if (copy)
            memcpy(copy, t, len + 1);
        free(t);
        *out = (crest_value){.type = CREST_V_JSON, .s = copy, .len = len};
        return copy ? 0 : -1;
    }
    }
}

/* 1 when `col` is a column of the table (names come from the table itself). */
static int has_column(const append_job *job, const char *col)
{
    for (unsigned c = 0; c < crest_rows_columns(job->columns); c++)
        if (!strcmp(crest_rows_name(job->columns, c), col))
            return 1;
    return 0;
}

static void append_rolled_back(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    append_job *job = ud;
    (void)req;
    if (rows && job->fail_code)
        crest_res_error(res, job->fail_status, job->fail_code, "%s", job->fail_detail);
    crest_res_finish(res);
}

/* Ends the transaction without its rows, then answers: with the failure
 * noted in job, or (code NULL) with crest's answer for the failed statement. */
static void append_fail(crest_req *req, crest_res *res, append_job *job, int status, const char *code,
                        const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static void append_fail(crest_req *req, crest_res *res, append_job *job, int status, const char *code,
                        const char *fmt, ...)
{
    job->fail_status = status;
    job->fail_code = code;
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(job->fail_detail, sizeof job->fail_detail, fmt, ap);
        va_end(ap);
    }
    if (crest_query(req, res, "ROLLBACK", NULL, 0, append_rolled_back, job) < 0)
        crest_res_finish(res);
}

static void append_counted(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    append_job *job = ud;
    (void)req;
    if (!rows) { /* the rows are in, but the count failed: crest's answer says why */
        crest_res_finish(res);
        return;
    }
    int64_t total = crest_rows_next(rows) ? crest_rows_int(rows, 0) : 0;
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "table");
    crest_json_str(w, job->table);
    crest_json_key(w, "inserted");
    crest_json_int(w, (int64_t)json_array_size(job->rows));
    crest_json_key(w, "count");
    crest_json_int(w, total);
    crest_json_object_end(w);
    crest_res_finish(res);
}

static void append_committed(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    append_job *job = ud;
    if (!rows) {
        append_fail(req, res, job, 503, "database_busy", "the database is busy");
        return;
    }
    snprintf(job->sql, sizeof job->sql, "SELECT count(*) FROM %s", job->qt);
    if (crest_query(req, res, job->sql, NULL, 0, append_counted, job) < 0)
        crest_res_finish(res);
}

static void append_inserted(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    append_job *job = ud;
    if (!rows) {
        /* A taken key is a conflict with what is stored (409); a missing
         * or bad value is the body's fault (422), as in the REST modules.
         * Anything else (busy, past the deadline) keeps crest's answer. */
        const char *code = crest_res_error_code(res);
        if (code && !strcmp(code, "conflict"))
            append_fail(req, res, job, 409, "conflict", "row %zu repeats a key already in %s", job->i,
                        job->table);
        else if (code && (!strcmp(code, "constraint_violated") || !strcmp(code, "missing_reference")))
            append_fail(req, res, job, 422, "validation_failed", "row %zu breaks a rule of %s", job->i,
                        job->table);
        else
            append_fail(req, res, job, 0, NULL, NULL);
        return;
    }
    job->i++;
    if (job->looping)
        job->inserted = true; /* append_insert_next's loop goes on with the next row */
    else
        append_insert_next(req, res, job);
}

/* Starts the INSERT of row job->i. 0 when started (append_inserted runs),
 * -1 when the row is refused (the transaction is then being rolled back). */
static int append_insert(crest_req *req, crest_res *res, append_job *job)
{
    size_t i = job->i;
    json_t *row = json_array_get(job->rows, i);
    if (!json_is_object(row) || json_object_size(row) == 0 || json_object_size(row) > MAX_FIELDS) {
        append_fail(req, res, job, 422, "validation_failed", "row %zu must be an object with 1 to %d fields", i,
                    MAX_FIELDS);
        return -1;
    }
    char cols[8000], vals[4000];
    size_t co = 0, vo = 0;
    unsigned n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(row, k, v) {
        char qc[600];
        if (!has_column(job, k) || quote_ident(k, qc, sizeof qc)) {
            append_fail(req, res, job, 422, "validation_failed", "row %zu: '%s' is not a column of %s", i, k,
                        job->table);
            return -1;
        }
        if (co + strlen(qc) + 2 >= sizeof cols || vo + 8 >= sizeof vals) {
            append_fail(req, res, job, 422, "validation_failed", "row %zu has too many fields", i);
            return -1;
        }
        if (value_of_json(req, v, &job->vals[n])) {
            append_fail(req, res, job, 503, "out_of_memory", "the server is short of memory");
            return -1;
        }
        co += (size_t)snprintf(cols + co, sizeof cols - co, "%s%s", n ? "," : "", qc);
        vo += (size_t)snprintf(vals + vo, sizeof vals - vo, "%s$%u", n ? "," : "", n + 1);
        n++;
    }
    snprintf(job->sql, sizeof job->sql, "INSERT INTO %s (%s) VALUES (%s)", job->qt, cols, vals);
    if (crest_query(req, res, job->sql, job->vals, n, append_inserted, job) < 0) {
        append_fail(req, res, job, 0, NULL, NULL);
        return -1;
    }
    return 0;
}

/* Inserts the rows from job->i on, then commits. Inside a transaction a
 * statement runs in place, so append_inserted usually runs before
 * crest_query returns: a loop, not callbacks calling callbacks, keeps
 * 10000 rows from taking 10000 stack frames. Should a store answer later,
 * append_inserted calls this again from its callback. It always runs inside
 * a crest_query callback, so job outlives a crest_res_finish on the way:
 * the request's memory goes only once that callback has returned. */
static void append_insert_next(crest_req *req, crest_res *res, append_job *job)
{
    job->looping = true;
    while (job->i < json_array_size(job->rows)) {
        job->inserted = false;
        if (append_insert(req, res, job) || !job->inserted) {
            job->looping = false; /* failed, or answering later */
            return;
        }
    }
    job->looping = false;
    if (crest_query(req, res, "COMMIT", NULL, 0, append_committed, job) < 0)
        append_fail(req, res, job, 0, NULL, NULL);
}

static void append_begun(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    append_job *job = ud;
    if (!rows) {
        crest_res_error(res, 503, "database_busy", "the database is busy");
        crest_res_finish(res);
        return;
    }
    append_insert_next(req, res, job);
}

static void append_columns(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    append_job *job = ud;
    if (!rows) {
        crest_res_finish(res);
        return;
    }
    job->columns = rows;
    if (crest_query(req, res, "BEGIN", NULL, 0, append_begun, job) < 0)
        crest_res_finish(res);
}

static void append_found(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    append_job *job = ud;
    if (!rows) {
        crest_res_finish(res);
        return;
    }
    if (!crest_rows_next(rows))
        crest_res_error(res, 404, "not_found", "no table named '%s'", job->table);
    else if (!json_is_array(job->rows))
        crest_res_error(res, 422, "validation_failed", "the body must be a JSON array of row objects");
    else if (json_array_size(job->rows) > 10000)
        crest_res_error(res, 413, "payload_too_large", "at most 10000 rows per request");
    else if (quote_ident(job->table, job->qt, sizeof job->qt))
        crest_res_error(res, 400, "bad_request", "the table name is too long");
    else {
        /* The table's columns, portably: a query for no rows still names them. */
        snprintf(job->sql, sizeof job->sql, "SELECT * FROM %s LIMIT 0", job->qt);
        if (crest_query(req, res, job->sql, NULL, 0, append_columns, job) < 0)
            crest_res_finish(res);
        return;
    }
    crest_res_finish(res);
}

static int append_rows(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    append_job *job = crest_req_alloc(req, sizeof *job);
    if (!job)
        return crest_res_error(res, 503, "out_of_memory", "the server is short of memory");
    memset(job, 0, sizeof *job);
    job->table = crest_req_str(req, "table");
    job->rows = crest_req_json(req);
    job->vals[0] = crest_text(job->table);
    return crest_query(req, res, table_exists_sql, job->vals, 1, append_found, job);
}

static const crest_param table_param[] = {
    {"table", CREST_IN_PATH, CREST_T_STRING, .required = true, .has_min = true, .min = 1, .has_max = true,
     .max = 128, .description = "a table of the database"},
    {0}};

/* GET /whoami: the authenticated user, as the token named it. */
static int whoami(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    const crest_user *u = crest_req_user(req); /* never NULL here: the endpoint needs a user */
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "id");
    crest_json_str(w, u->id);
    crest_json_key(w, "permissions");
    crest_json_array_begin(w);
    for (const char *const *p = u->permissions; *p; p++)
        crest_json_str(w, *p);
    crest_json_array_end(w);
    crest_json_object_end(w);
    return 0;
}

static const crest_endpoint whoami_ep = {
    .method = CREST_GET, .path = "/whoami", .summary = "The authenticated user", .tag = "hello",
    .handler = whoami, .permission = "authenticated"};

static const crest_endpoint endpoints[] = {
    {.method = CREST_GET, .path = "/hello", .summary = "Say hello", .tag = "hello", .handler = hello,
     .permission = "public"},
    {.method = CREST_GET, .path = "/tables/{table}/count", .params = table_param,
     .summary = "Count the rows of a table", .tag = "tables", .handler = count_table, .permission = "public"},
    {.method = CREST_POST, .path = "/tables/{table}/rows", .params = table_param, .json_body = true,
     .body_required = true, .summary = "Append rows to a table", .tag = "tables", .status = 201,
     .handler = append_rows, .permission = "public"},
};

int main(int argc, char **argv)
{
    crest_app *app = crest_app_new();
    if (!app)
        return 1;
    const char *db = getenv("CREST_DATABASE") ? getenv("CREST_DATABASE") : "hello.db";
    /* --db is ours; the rest of argv goes to crest_app_main. */
    int out = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc)
            db = argv[++i];
        else
            argv[out++] = argv[i];
    }
    argc = out;
    /* Give a new database one table to play with (run when serving starts),
     * its ids made by the database. */
    bool pg = !strncmp(db, "postgresql://", 13) || !strncmp(db, "postgres://", 11);
    if (pg)
        table_exists_sql = pg_table_exists_sql;
    crest_app_add_startup_sql(app, pg ? "CREATE TABLE IF NOT EXISTS items (id bigint GENERATED BY DEFAULT AS "
                                        "IDENTITY PRIMARY KEY, name text NOT NULL, qty integer NOT NULL DEFAULT 0)"
                                      : "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, "
                                        "name TEXT NOT NULL, qty INTEGER NOT NULL DEFAULT 0)");
    crest_error err = {0};
    if (crest_app_set_database(app, db)) {
        fprintf(stderr, "hello: bad database '%s'\n", db);
        return 2;
    }
    /* With CREST_JWT_SECRET set, bearer tokens (HS256) are checked and
     * GET /whoami tells who the token names. */
    const char *secret = getenv("CREST_JWT_SECRET");
    if (secret && *secret) {
        crest_jwt_config jwt = {.algorithms = "HS256", .secret = (const unsigned char *)secret,
                                .secret_len = strlen(secret), .leeway_s = 30};
        if (crest_app_set_jwt(app, &jwt, &err) || crest_app_add_endpoint(app, &whoami_ep, NULL, &err)) {
            crest_error_print(&err, "hello");
            return 1;
        }
    }
    if (crest_app_add_endpoints(app, endpoints, sizeof endpoints / sizeof endpoints[0], NULL, &err)) {
        crest_error_print(&err, "hello");
        return 1;
    }
    int rc = crest_app_main(app, argc, argv);
    crest_app_free(app);
    return rc;
}
