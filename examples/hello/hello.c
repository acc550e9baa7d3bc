/* hello.c — a crest server written in C with the public API only.
 *
 *   GET  /hello                  → {"message":"hello"}
 *   GET  /tables/{table}/count   → {"table":"t","count":N}
 *   POST /tables/{table}/rows    → appends a JSON array of row objects, 201 {"inserted":N,"count":N}
 *
 * The table endpoints are atoti's Session.endpoint example: custom routes over
 * the app's own SQLite file (default hello.db, or --db PATH / CREST_DATABASE).
 * `{table}` is checked against the database's own tables and quoted; column
 * names come from the table's own columns; every value is bound.
 *
 * A new database gets a table `items (id, name, qty)`.
 *
 * Usage: hello [--db PATH] [--listen HOST:PORT] [--workers N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

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

/* Writes "name" with embedded quotes doubled into out (SQLite identifier quoting). */
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

/* 1 when `table` is one of the database's own tables. */
static int table_exists(sqlite3 *db, const char *table)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = ?1 "
                               "AND name NOT LIKE 'sqlite_%'", -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    int found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

static int count_rows(sqlite3 *db, const char *table, long long *out)
{
    char q[600], sql[700];
    if (quote_ident(table, q, sizeof q))
        return -1;
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s", q);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    int rc = sqlite3_step(st) == SQLITE_ROW ? 0 : -1;
    *out = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc;
}

static int count_table(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    sqlite3 *db = crest_req_sqlite(req);
    const char *table = crest_req_str(req, "table");
    if (!table_exists(db, table))
        return crest_res_error(res, 404, "not_found", "no table named '%s'", table);
    long long n;
    if (count_rows(db, table, &n))
        return crest_res_error(res, 500, "internal_error", "cannot count the rows");
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "table");
    crest_json_str(w, table);
    crest_json_key(w, "count");
    crest_json_int(w, n);
    crest_json_object_end(w);
    return 0;
}

static int bind_json(sqlite3_stmt *st, int i, json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_INTEGER: return sqlite3_bind_int64(st, i, json_integer_value(v));
    case JSON_REAL: return sqlite3_bind_double(st, i, json_real_value(v));
    case JSON_TRUE: return sqlite3_bind_int(st, i, 1);
    case JSON_FALSE: return sqlite3_bind_int(st, i, 0);
    case JSON_NULL: return sqlite3_bind_null(st, i);
    case JSON_STRING: return sqlite3_bind_text(st, i, json_string_value(v), (int)json_string_length(v), SQLITE_TRANSIENT);
    default: {
        char *t = json_dumps(v, JSON_COMPACT);
        return t ? sqlite3_bind_text(st, i, t, -1, free) : SQLITE_NOMEM;
    }
    }
}

/* 1 when `col` is a column of `table` (names come from the table itself). */
static int has_column(sqlite3 *db, const char *table, const char *col)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, col, -1, SQLITE_STATIC);
    int found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    return found;
}

static int append_rows(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    sqlite3 *db = crest_req_sqlite(req);
    const char *table = crest_req_str(req, "table");
    if (!table_exists(db, table))
        return crest_res_error(res, 404, "not_found", "no table named '%s'", table);
    json_t *rows = crest_req_json(req);
    if (!json_is_array(rows))
        return crest_res_error(res, 422, "validation_failed", "the body must be a JSON array of row objects");
    if (json_array_size(rows) > 10000)
        return crest_res_error(res, 413, "payload_too_large", "at most 10000 rows per request");
    char qt[600];
    if (quote_ident(table, qt, sizeof qt))
        return crest_res_error(res, 400, "bad_request", "the table name is too long");
    /* All rows or none. */
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return crest_res_error(res, 503, "database_busy", "the database is busy");
    size_t i;
    json_t *row;
    int rc = 0;
    json_array_foreach(rows, i, row) {
        if (!json_is_object(row) || json_object_size(row) == 0 || json_object_size(row) > 200) {
            rc = crest_res_error(res, 422, "validation_failed", "row %zu must be an object with 1 to 200 fields", i);
            break;
        }
        char sql[16384], cols[8000], vals[4000];
        size_t co = 0, vo = 0;
        int n = 0;
        const char *k;
        json_t *v;
        json_object_foreach(row, k, v) {
            char qc[600];
            if (!has_column(db, table, k) || quote_ident(k, qc, sizeof qc)) {
                rc = crest_res_error(res, 422, "validation_failed", "row %zu: '%s' is not a column of %s", i, k, table);
                break;
            }
            if (co + strlen(qc) + 2 >= sizeof cols || vo + 8 >= sizeof vals) {
                rc = crest_res_error(res, 422, "validation_failed", "row %zu has too many fields", i);
                break;
            }
            co += (size_t)snprintf(cols + co, sizeof cols - co, "%s%s", n ? "," : "", qc);
            vo += (size_t)snprintf(vals + vo, sizeof vals - vo, "%s?%d", n ? "," : "", n + 1);
            n++;
        }
        if (rc)
            break;
        snprintf(sql, sizeof sql, "INSERT INTO %s (%s) VALUES (%s)", qt, cols, vals);
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
            rc = crest_res_error(res, 500, "internal_error", "cannot insert");
            break;
        }
        n = 0;
        json_object_foreach(row, k, v) bind_json(st, ++n, v);
        int s = sqlite3_step(st);
        int xs = sqlite3_extended_errcode(db); /* before finalize resets it */
        sqlite3_finalize(st);
        if (s != SQLITE_DONE) {
            /* A taken key is a conflict with what is stored (409); a missing
             * or bad value is the body's fault (422), as in the REST modules. */
            if (xs == SQLITE_CONSTRAINT_UNIQUE || xs == SQLITE_CONSTRAINT_PRIMARYKEY)
                rc = crest_res_error(res, 409, "conflict", "row %zu repeats a key already in %s", i, table);
            else if ((s & 0xff) == SQLITE_CONSTRAINT)
                rc = crest_res_error(res, 422, "validation_failed", "row %zu breaks a rule of %s", i, table);
            else
                rc = crest_res_error(res, 500, "internal_error", "cannot insert");
            break;
        }
    }
    if (rc) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return rc;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        return crest_res_error(res, 503, "database_busy", "the database is busy");
    }
    long long total = 0;
    count_rows(db, table, &total);
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "table");
    crest_json_str(w, table);
    crest_json_key(w, "inserted");
    crest_json_int(w, (int64_t)json_array_size(rows));
    crest_json_key(w, "count");
    crest_json_int(w, total);
    crest_json_object_end(w);
    return 0;
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
     .summary = "Count the rows of a table", .tag = "tables", .handler = count_table,
     .blocking = true /* count(*) scans the table: run it on the thread pool */, .permission = "public"},
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
    /* Give a new database one table to play with (run when serving starts). */
    crest_app_add_startup_sql(app, "CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, "
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
    for (size_t i = 0; i < sizeof endpoints / sizeof endpoints[0]; i++)
        if (crest_app_add_endpoint(app, &endpoints[i], NULL, &err)) {
            crest_error_print(&err, "hello");
            return 1;
        }
    int rc = crest_app_main(app, argc, argv);
    crest_app_free(app);
    return rc;
}
