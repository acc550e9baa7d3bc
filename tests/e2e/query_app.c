/* query_app.c — a C app on the public API whose handlers talk to the
 * database only through crest_query / crest_rows, for test_c_query.py:
 *
 *   GET  /swap?a=TEXT&b=INT   SELECT $2 AS first, $1 AS second, answered from
 *                             the callback as crest_rows_write writes the row
 *   GET  /kinds?t=TEXT        inserts one row with a value of every kind into
 *                             `kinds`, reads it back by its id and answers
 *                             {"changes", "last_id", "columns", "types", "null",
 *                              "text_len", "row"}
 *   POST /codes?code=C[&replace=true]
 *                             inserts into `codes` (code unique): a taken code
 *                             keeps crest's 409, or with replace the callback
 *                             answers 422 code_taken naming crest's code
 *   POST /undo?code=C         BEGIN, inserts C into `codes`, ROLLBACK, then
 *                             answers {"count": <rows with code C>} (0)
 *   GET  /missing             SELECT $1, $2 with one value given → 500
 *   GET  /count?n=N           WITH RECURSIVE counting to N (timeout_ms 60000)
 *   GET  /count-short?n=N     the same with timeout_ms 300
 *   GET  /fast[?n=N]          the same, counting to 1 by default
 *   GET  /twice?n=N           counts to N; the callback calls crest_res_finish
 *                             twice (with N large, after the handler returned)
 *   GET  /twice-here          finishes in the handler, twice, then returns
 *                             CREST_DEFERRED
 *
 * The database is query_app.db in the working folder, or CREST_DATABASE (a
 * postgresql:// URI: the tables in PostgreSQL's types).
 *
 * Usage: query_app [--listen HOST:PORT] [--workers N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crest/crest.h"

static const char *const type_names[] = {"null", "bool", "int", "float", "text", "date", "datetime", "json", "uuid"};

/* ---- /swap ---- */

static void swap_done(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    (void)req;
    (void)ud;
    if (rows && crest_rows_next(rows))
        crest_rows_write(rows, crest_res_json(res));
    else if (rows)
        crest_res_error(res, 500, "internal_error", "no row");
    crest_res_finish(res);
}

static int swap(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    crest_value *p = crest_req_alloc(req, 2 * sizeof *p);
    if (!p)
        return crest_res_error(res, 503, "out_of_memory", "no memory");
    p[0] = crest_text(crest_req_str(req, "a"));
    p[1] = crest_int(crest_req_int(req, "b"));
    return crest_query(req, res, "SELECT $2 AS first, $1 AS second", p, 2, swap_done, NULL);
}

/* ---- /kinds ---- */

typedef struct kinds_job {
    crest_value v[9];
    crest_value id;
    int64_t changes, last_id;
} kinds_job;

static void kinds_read(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    kinds_job *job = ud;
    (void)req;
    if (!rows || !crest_rows_next(rows)) {
        if (rows)
            crest_res_error(res, 500, "internal_error", "the row is not there");
        crest_res_finish(res);
        return;
    }
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "changes");
    crest_json_int(w, job->changes);
    crest_json_key(w, "last_id");
    crest_json_int(w, job->last_id);
    crest_json_key(w, "count");
    crest_json_int(w, (int64_t)crest_rows_count(rows));
    crest_json_key(w, "columns");
    crest_json_array_begin(w);
    for (unsigned c = 0; c < crest_rows_columns(rows); c++)
        crest_json_str(w, crest_rows_name(rows, c));
    crest_json_array_end(w);
    crest_json_key(w, "types");
    crest_json_array_begin(w);
    for (unsigned c = 0; c < crest_rows_columns(rows); c++) {
        crest_vtype t = crest_rows_type(rows, c);
        crest_json_str(w, (unsigned)t < sizeof type_names / sizeof type_names[0] ? type_names[t] : "?");
    }
    crest_json_array_end(w);
    crest_json_key(w, "null");
    crest_json_array_begin(w);
    for (unsigned c = 0; c < crest_rows_columns(rows); c++)
        crest_json_bool(w, crest_rows_is_null(rows, c));
    crest_json_array_end(w);
    /* The getters by kind, and what they read for a column out of range. */
    crest_json_key(w, "i");
    crest_json_int(w, crest_rows_int(rows, 3));
    crest_json_key(w, "f");
    crest_json_double(w, crest_rows_float(rows, 4));
    size_t len = 0;
    const char *t = crest_rows_text(rows, 5, &len);
    crest_json_key(w, "t");
    crest_json_str(w, t ? t : "");
    crest_json_key(w, "text_len");
    crest_json_int(w, (int64_t)len);
    crest_json_key(w, "out_of_range");
    crest_json_bool(w, crest_rows_int(rows, 99) == 0 && crest_rows_text(rows, 99, NULL) == NULL &&
                           crest_rows_is_null(rows, 99));
    crest_json_key(w, "row");
    crest_rows_write(rows, w);
    crest_json_key(w, "more");
    crest_json_bool(w, crest_rows_next(rows));
    crest_json_object_end(w);
    crest_res_finish(res);
}

static void kinds_inserted(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    kinds_job *job = ud;
    if (!rows) {
        crest_res_finish(res);
        return;
    }
    job->changes = crest_rows_changes(rows);
    job->last_id = crest_rows_last_id(rows);
    /* The row is read back by the id RETURNING gave (on every store). */
    job->id = crest_int(crest_rows_next(rows) ? crest_rows_int(rows, 0) : 0);
    if (crest_query(req, res, "SELECT id, n, b, i, f, t, d, dt, j, u FROM kinds WHERE id = $1", &job->id, 1,
                    kinds_read, job) < 0)
        crest_res_finish(res);
}

static int kinds(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    kinds_job *job = crest_req_alloc(req, sizeof *job);
    if (!job)
        return crest_res_error(res, 503, "out_of_memory", "no memory");
    static const char json[] = "{\"a\":[1,2]}";
    job->v[0] = crest_null();
    job->v[1] = crest_bool(true);
    job->v[2] = crest_int(INT64_C(-4611686018427387904));
    job->v[3] = crest_float(-2.5e-3);
    job->v[4] = crest_text(crest_req_str(req, "t"));
    job->v[5] = (crest_value){.type = CREST_V_DATE, .s = "2024-02-29", .len = 10};
    job->v[6] = (crest_value){.type = CREST_V_DATETIME, .s = "2024-02-29T12:34:56Z", .len = 20};
    job->v[7] = (crest_value){.type = CREST_V_JSON, .s = json, .len = sizeof json - 1};
    job->v[8] = (crest_value){.type = CREST_V_UUID, .s = "0190f2a4-8c3e-7d4b-9a51-2f6c1e0b7a93", .len = 36};
    return crest_query(req, res, "INSERT INTO kinds (n, b, i, f, t, d, dt, j, u) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
                       "RETURNING id",
                       job->v, 9, kinds_inserted, job);
}

/* ---- /codes ---- */

static void code_inserted(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    if (!rows && crest_req_bool(req, "replace")) {
        const char *was = crest_res_error_code(res);
        crest_res_error(res, 422, "code_taken", "crest answered %s", was ? was : "nothing");
    } else if (rows) {
        crest_json *w = crest_res_json(res);
        crest_json_object_begin(w);
        crest_json_key(w, "id");
        crest_json_int(w, crest_rows_last_id(rows));
        crest_json_object_end(w);
    }
    crest_res_finish(res);
}

static int codes(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    crest_value *p = crest_req_alloc(req, sizeof *p);
    if (!p)
        return crest_res_error(res, 503, "out_of_memory", "no memory");
    *p = crest_text(crest_req_str(req, "code"));
    return crest_query(req, res, "INSERT INTO codes (code) VALUES ($1) RETURNING id", p, 1, code_inserted, NULL);
}

/* ---- /undo ---- */

/* BEGIN → INSERT → ROLLBACK → the count of that code: each step starts the
 * next from its callback; a failed step keeps crest's answer. */
typedef struct undo_job {
    crest_value code;
    int step;
} undo_job;

static void undo_step(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    static const char *const steps[] = {"INSERT INTO codes (code) VALUES ($1)", "ROLLBACK",
                                        "SELECT count(*) FROM codes WHERE code = $1"};
    undo_job *job = ud;
    if (rows && job->step == 3) {
        crest_json *w = crest_res_json(res);
        crest_json_object_begin(w);
        crest_json_key(w, "count");
        crest_json_int(w, crest_rows_next(rows) ? crest_rows_int(rows, 0) : -1);
        crest_json_object_end(w);
    }
    if (!rows || job->step == 3) {
        crest_res_finish(res);
        return;
    }
    const char *sql = steps[job->step++];
    if (crest_query(req, res, sql, &job->code, strchr(sql, '$') ? 1 : 0, undo_step, job) < 0)
        crest_res_finish(res);
}

static int undo(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    undo_job *job = crest_req_alloc(req, sizeof *job);
    if (!job)
        return crest_res_error(res, 503, "out_of_memory", "no memory");
    job->code = crest_text(crest_req_str(req, "code"));
    job->step = 0;
    return crest_query(req, res, "BEGIN", NULL, 0, undo_step, job);
}

/* ---- /missing ---- */

static void missing_done(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    (void)req;
    (void)ud;
    if (rows) /* must not happen: $2 has no value */
        crest_json_str(crest_res_json(res), "ran");
    crest_res_finish(res);
}

static int missing(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    static const crest_value one[] = {{.type = CREST_V_INT, .i = 1}};
    return crest_query(req, res, "SELECT $1, $2", one, 1, missing_done, NULL);
}

/* ---- /count, /count-short, /fast, /twice ---- */

static const char count_sql[] =
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < $1) SELECT count(*) AS n FROM c";

static void count_done(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    (void)req;
    if (rows && crest_rows_next(rows)) {
        crest_json *w = crest_res_json(res);
        crest_json_object_begin(w);
        crest_json_key(w, "count");
        crest_json_int(w, crest_rows_int(rows, 0));
        crest_json_object_end(w);
    }
    crest_res_finish(res);
    if (ud) /* /twice: a second call does nothing */
        crest_res_finish(res);
}

static int count_to(crest_req *req, crest_res *res, void *ud)
{
    crest_value *p = crest_req_alloc(req, sizeof *p);
    if (!p)
        return crest_res_error(res, 503, "out_of_memory", "no memory");
    *p = crest_int(crest_req_int(req, "n"));
    return crest_query(req, res, count_sql, p, 1, count_done, ud);
}

static int twice_flag = 1;

static int twice_here(crest_req *req, crest_res *res, void *ud)
{
    (void)req;
    (void)ud;
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "finished");
    crest_json_int(w, 2);
    crest_json_object_end(w);
    crest_res_finish(res);
    crest_res_finish(res);
    return CREST_DEFERRED;
}

static const crest_param swap_params[] = {
    {"a", CREST_IN_QUERY, CREST_T_STRING, .required = true},
    {"b", CREST_IN_QUERY, CREST_T_INT, .required = true},
    {0}};
static const crest_param kinds_params[] = {{"t", CREST_IN_QUERY, CREST_T_STRING, .required = true}, {0}};
static const crest_param code_params[] = {
    {"code", CREST_IN_QUERY, CREST_T_STRING, .required = true},
    {"replace", CREST_IN_QUERY, CREST_T_BOOL, .def = "false"},
    {0}};
static const crest_param n_params[] = {
    {"n", CREST_IN_QUERY, CREST_T_INT, .required = true, .has_min = true, .min = 1}, {0}};
static const crest_param fast_params[] = {{"n", CREST_IN_QUERY, CREST_T_INT, .def = "1"}, {0}};

static const crest_endpoint endpoints[] = {
    {.method = CREST_GET, .path = "/swap", .params = swap_params, .summary = "$2 before $1", .handler = swap},
    {.method = CREST_GET, .path = "/kinds", .params = kinds_params, .summary = "Every kind", .handler = kinds},
    {.method = CREST_POST, .path = "/codes", .params = code_params, .summary = "A unique code", .status = 201,
     .handler = codes},
    {.method = CREST_GET, .path = "/missing", .summary = "A parameter not given", .handler = missing},
    {.method = CREST_GET, .path = "/count", .params = n_params, .summary = "Count to n", .handler = count_to,
     .timeout_ms = 60000},
    {.method = CREST_GET, .path = "/count-short", .params = n_params, .summary = "Count to n in 300 ms",
     .handler = count_to, .timeout_ms = 300},
    {.method = CREST_GET, .path = "/twice-here", .summary = "Finish twice in the handler", .handler = twice_here},
    {.method = CREST_GET, .path = "/fast", .params = fast_params, .summary = "Count to 1", .handler = count_to},
    {.method = CREST_POST, .path = "/undo", .params = code_params, .summary = "An insert rolled back",
     .handler = undo},
};

static const crest_endpoint twice_ep = {.method = CREST_GET, .path = "/twice", .params = n_params,
                                        .summary = "Finish twice", .handler = count_to, .timeout_ms = 20000};

int main(int argc, char **argv)
{
    crest_app *app = crest_app_new();
    if (!app)
        return 1;
    crest_error err = {0};
    const char *db = getenv("CREST_DATABASE") ? getenv("CREST_DATABASE") : "query_app.db";
    if (crest_app_set_database(app, db)) {
        fprintf(stderr, "query_app: bad database '%s'\n", db);
        return 2;
    }
    if (!strncmp(db, "postgresql://", 13) || !strncmp(db, "postgres://", 11)) {
        crest_app_add_startup_sql(app, "CREATE TABLE IF NOT EXISTS kinds (id bigint GENERATED BY DEFAULT AS IDENTITY "
                                       "PRIMARY KEY, n text, b boolean, i bigint, f double precision, t text, d date, "
                                       "dt timestamptz, j jsonb, u uuid)");
        crest_app_add_startup_sql(app, "CREATE TABLE IF NOT EXISTS codes (id bigint GENERATED BY DEFAULT AS IDENTITY "
                                       "PRIMARY KEY, code text UNIQUE)");
    } else {
        crest_app_add_startup_sql(app, "CREATE TABLE IF NOT EXISTS kinds (id INTEGER PRIMARY KEY, n, b, i, f, t, d, "
                                       "dt, j, u)");
        crest_app_add_startup_sql(app, "CREATE TABLE IF NOT EXISTS codes (id INTEGER PRIMARY KEY, code TEXT UNIQUE)");
    }
    if (crest_app_add_endpoints(app, endpoints, sizeof endpoints / sizeof endpoints[0], NULL, &err)) {
        crest_error_print(&err, "query_app");
        return 1;
    }
    if (crest_app_add_endpoint(app, &twice_ep, &twice_flag, &err)) {
        crest_error_print(&err, "query_app");
        return 1;
    }
    int rc = crest_app_main(app, argc, argv);
    crest_app_free(app);
    return rc;
}
