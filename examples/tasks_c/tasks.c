/* tasks.c — the Tasks API of examples/tasks/app.yaml written in C with the
 * public API only, plus what an app file cannot say: C callbacks.
 *
 *   /tasks                       the `tasks` module: index, create, read, update,
 *                                delete, sample, group, stats, eval
 *   POST /tasks/{id}/archive     hides a finished task (soft delete) → {"archived": id}
 *
 * It shows a model with a read-only field filled by a hook (owner) and a
 * hidden one (is_deleted); serializer computed fields in C (hours) and SQL
 * (minutes); a before_create hook that takes the owner from X-User and
 * rejects some titles; a row scope, fixed ({"is_deleted": false}) and per
 * request (with X-User, only that user's rows); a before_delete business
 * rule; a pipeline adding a response header; a custom list meta; and a
 * custom endpoint working on the same SQLite file with a bound statement.
 *
 * The database is tasks_c.db, or --db PATH, or CREST_DATABASE. A new table
 * gets two seed rows.
 *
 * Usage: tasks_c [--db PATH] [--listen HOST:PORT] [--workers N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "crest/crest.h"
#include "crest/rest.h"

/* ---- the model ---------------------------------------------------------- */

static const crest_field task_fields[] = {
    {"title", CREST_F_STRING, .required = true, .min_length = 1, .max_length = 200},
    {"is_completed", CREST_F_BOOL, .def = "false"},
    {"spent_time", CREST_F_INT, .def = "0", .has_min = true, .min = 0,
     .description = "seconds spent on the task"},
    {"created_at", CREST_F_DATETIME, .def = "now", .rest = CREST_REST_READ},
    /* Served, never accepted from a client: before_create fills it. */
    {"owner", CREST_F_STRING, .max_length = 200, .index = true, .rest = CREST_REST_READ,
     .description = "who created the task (the X-User header)"},
    /* Neither served nor accepted: the scope hides archived rows. */
    {"is_deleted", CREST_F_BOOL, .def = "false", .rest = CREST_REST_NONE},
    {0}};

static const char *const task_indexes[] = {"is_completed,spent_time", NULL};

static const crest_model_def task_model = {
    .name = "Task",
    .table = "tasks",
    .fields = task_fields,
    .indexes = task_indexes,
    .seed = "[{\"title\": \"Write the README\", \"is_completed\": true, \"spent_time\": 5400,"
            "  \"owner\": \"anonymous\"},"
            " {\"title\": \"Ship crest\", \"spent_time\": 1800, \"owner\": \"anonymous\"}]",
};

/* ---- the module's callbacks --------------------------------------------- */

/* The requesting user: the X-User header, or NULL when absent or empty. */
static const char *user_of(crest_req *req)
{
    const char *u = crest_req_header(req, "X-User");
    return u && *u ? u : NULL;
}

/* Pipeline stage: runs before every operation of the module. */
static int tag_response(crest_req *req, crest_res *res, void *ud)
{
    (void)req;
    (void)ud;
    if (crest_res_header(res, "X-Tasks-Api", "c"))
        return crest_res_error(res, 503, "out_of_memory", "the server is short of memory");
    return 0;
}

static const crest_handler task_pipeline[] = {tag_response, NULL};

/* Computed field `hours`, written by C from the row's spent_time. */
static int hours(const crest_rest_ctx *ctx, const crest_row *row, crest_json *w)
{
    (void)ctx;
    crest_json_double(w, crest_row_float(row, "spent_time") / 3600.0);
    return 0;
}

static const crest_computed task_computed[] = {
    {"hours", .fn = hours},
    {"minutes", .sql = "spent_time / 60"},
    {0}};

/* A title rule shared by create and update. obj holds the client's keys, not
 * yet validated: title may be missing or not a string (validation names
 * that afterwards). */
static int check_title(const crest_rest_ctx *ctx, const json_t *obj)
{
    const char *title = json_string_value(json_object_get(obj, "title"));
    if (title && !strncmp(title, "forbidden", 9)) {
        int rc = crest_res_error(ctx->res, 422, "validation_failed", "1 field is invalid");
        crest_res_error_field(ctx->res, "title", "must not start with 'forbidden'");
        return rc;
    }
    return 0;
}

/* before_create: the owner comes from the request, never from the body. */
static int before_create(const crest_rest_ctx *ctx, json_t *obj)
{
    if (check_title(ctx, obj))
        return -1;
    const char *user = user_of(ctx->req);
    /* json_string fails on invalid UTF-8 too; the scope below has already
     * refused such a header, so NULL here means out of memory. */
    if (json_object_set_new(obj, "owner", json_string(user ? user : "anonymous")))
        return crest_res_error(ctx->res, 503, "out_of_memory", "the server is short of memory");
    return 0;
}

static int before_update(const crest_rest_ctx *ctx, json_t *obj)
{
    return check_title(ctx, obj);
}

/* scope_fn: with X-User, a client sees (reads, changes, deletes, counts)
 * only its own rows; other rows answer 404. Without it, every row. */
static json_t *owner_scope(const crest_rest_ctx *ctx)
{
    const char *user = user_of(ctx->req);
    if (!user)
        return NULL;
    json_t *where = json_pack("{s:s}", "owner", user);
    if (!where)
        crest_res_error(ctx->res, 400, "invalid_header", "the X-User header must be UTF-8 text");
    return where;
}

/* is_completed of task `id`: 1, 0, or -1 when the query failed (the
 * request is answered). */
static int task_completed(crest_req *req, crest_res *res, int64_t id)
{
    sqlite3 *db = crest_req_sqlite(req);
    sqlite3_stmt *st = NULL;
    if (!db || sqlite3_prepare_v2(db, "SELECT is_completed FROM tasks WHERE id = ?1", -1, &st, NULL) != SQLITE_OK)
        return crest_res_error(res, 503, "database_unavailable", "the database is not available");
    sqlite3_bind_int64(st, 1, id);
    int rc = sqlite3_step(st);
    int done = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) != 0 : -1;
    sqlite3_finalize(st);
    if (done < 0)
        return crest_res_error(res, rc == SQLITE_DONE ? 404 : 503, rc == SQLITE_DONE ? "not_found" : "database_busy",
                               rc == SQLITE_DONE ? "no Task with this id" : "the database is busy");
    return done;
}

/* before_delete: the module has checked that the row is in scope. Only a
 * finished task may be deleted. */
static int before_delete(const crest_rest_ctx *ctx, int64_t id)
{
    int done = task_completed(ctx->req, ctx->res, id);
    if (done < 0)
        return -1;
    if (!done)
        return crest_res_error(ctx->res, 400, "business_rule", "only finished tasks can be deleted");
    return 0;
}

/* meta_fn: the list meta, written whole. total is -1 with count=none. */
static int task_meta(const crest_rest_ctx *ctx, int64_t total, bool has_more, crest_json *w)
{
    (void)ctx;
    crest_json_key(w, "object");
    crest_json_str(w, "list");
    if (total >= 0) {
        crest_json_key(w, "total_objects");
        crest_json_int(w, total);
    }
    crest_json_key(w, "has_more");
    crest_json_bool(w, has_more);
    crest_json_key(w, "source");
    crest_json_str(w, "c");
    return 0;
}

static const char *const task_sorts[] = {"id", "created_at", "spent_time", "title", NULL};
static const char *const task_query[] = {"is_completed", "spent_time", "title", "created_at", "owner", NULL};
static const char *const task_groups[] = {"is_completed", "owner", NULL};
static const char *const task_stats[] = {"spent_time", NULL};

static const crest_module_def task_module = {
    .name = "tasks",
    .model = "Task",
    .url_prefix = "/tasks",
    .enabled_methods = CREST_R_ALL,
    .allowed_sorts = task_sorts,
    .query_allowed_fields = task_query,
    .grouping_allowed_fields = task_groups,
    .stats_allowed_fields = task_stats,
    .default_sort = "-id",
    .page_size_default = 20,
    .page_size_max = 50,
    .computed = task_computed,
    .before_create = before_create,
    .before_update = before_update,
    .before_delete = before_delete,
    .scope = "{\"is_deleted\": false}",
    .scope_fn = owner_scope,
    .pipeline = task_pipeline,
    .meta_fn = task_meta,
};

/* ---- POST /tasks/{id}/archive ------------------------------------------ */

/* Archives a finished task: it stays in the table with is_deleted = 1, and
 * the module's scope hides it from then on. The same rules as the module:
 * with X-User only that user's tasks. */
static int archive(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    if (tag_response(req, res, NULL))
        return -1;
    int64_t id = crest_req_int(req, "id");
    const char *user = user_of(req);
    sqlite3 *db = crest_req_sqlite(req);
    if (!db)
        return crest_res_error(res, 503, "database_unavailable", "the database is not available");
    /* One statement decides and writes, so two archives of one task cannot
     * both win; when it changes nothing, a read says why. */
    static const char *const sql[] = {
        "UPDATE tasks SET is_deleted = 1 WHERE id = ?1 AND is_deleted = 0 AND is_completed = 1 "
        "AND (?2 IS NULL OR owner = ?2)",
        "SELECT is_completed FROM tasks WHERE id = ?1 AND is_deleted = 0 AND (?2 IS NULL OR owner = ?2)"};
    int found = 0, completed = 0;
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql[i], -1, &st, NULL) != SQLITE_OK)
            return crest_res_error(res, 503, "database_busy", "the database is busy");
        sqlite3_bind_int64(st, 1, id);
        if (user)
            sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, 2);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            found = 1;
            completed = sqlite3_column_int(st, 0) != 0;
        }
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE && rc != SQLITE_ROW)
            return crest_res_error(res, 503, "database_busy", "the database is busy");
        if (i == 0 && sqlite3_changes(db) > 0)
            break; /* archived */
        if (i == 1) {
            if (!found)
                return crest_res_error(res, 404, "not_found", "no Task with this id");
            if (!completed)
                return crest_res_error(res, 400, "business_rule", "only finished tasks can be archived");
            return crest_res_error(res, 409, "conflict", "the task changed meanwhile; try again");
        }
    }
    crest_json *w = crest_res_json(res);
    crest_json_object_begin(w);
    crest_json_key(w, "archived");
    crest_json_int(w, id);
    crest_json_object_end(w);
    return 0;
}

static const crest_param archive_params[] = {
    {"id", CREST_IN_PATH, CREST_T_INT, .required = true, .description = "the task's id"},
    {0}};

static const crest_endpoint archive_ep = {
    .method = CREST_POST,
    .path = "/tasks/{id}/archive",
    .params = archive_params,
    .summary = "Archive a finished task",
    .description = "Hides the task from the tasks module (a soft delete). 400 when the task is not finished.",
    .tag = "tasks",
    .blocking = true, /* a write: its commit syncs, so it runs on the thread pool */
    .handler = archive,
};

int main(int argc, char **argv)
{
    crest_app *app = crest_app_new();
    if (!app)
        return 1;
    const char *db = getenv("CREST_DATABASE") ? getenv("CREST_DATABASE") : "tasks_c.db";
    /* --db is ours; the rest of argv goes to crest_app_main. */
    int out = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--db") && i + 1 < argc)
            db = argv[++i];
        else
            argv[out++] = argv[i];
    }
    argc = out;
    int rc = 1;
    crest_error err = {0};
    if (crest_app_set_database(app, db)) {
        fprintf(stderr, "tasks_c: bad database '%s'\n", db);
        rc = 2;
        goto out;
    }
    if (crest_app_add_model(app, &task_model, &err) || crest_app_add_module(app, &task_module, &err) ||
        crest_app_add_endpoint(app, &archive_ep, NULL, &err)) {
        crest_error_print(&err, "tasks_c");
        goto out;
    }
    rc = crest_app_main(app, argc, argv);
out:
    crest_app_free(app);
    return rc;
}
