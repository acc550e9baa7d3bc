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
 * custom endpoint working on the same database with bound statements.
 *
 * Every statement of its own goes through crest_query ($1..$n parameters,
 * the result handed to a callback), so the same code serves any database
 * crest stores in.
 *
 * The database is tasks_c.db, or --db PATH, or CREST_DATABASE. A new table
 * gets two seed rows.
 *
 * Usage: tasks_c [--db PATH] [--listen HOST:PORT] [--workers N] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* What task_completed's statement found, filled by its callback. */
typedef struct completed_query {
    bool ran;  /* the callback has run */
    int done;  /* 1, 0, or -1 (res answered) */
} completed_query;

static void completed_found(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    completed_query *q = ud;
    (void)req;
    q->ran = true;
    if (!rows)
        q->done = -1; /* res holds crest's answer (busy, past the deadline, ...) */
    else if (!crest_rows_next(rows))
        q->done = crest_res_error(res, 404, "not_found", "no Task with this id");
    else
        q->done = crest_rows_int(rows, 0) != 0;
}

/* is_completed of task `id`: 1, 0, or -1 when the query failed (the
 * request is answered). For a REST hook only: a hook runs on the thread
 * pool, inside the write's transaction, where crest_query runs its
 * statement in place and its callback has run before it returns. So the
 * answer can wait in a struct on the stack; a callback that had not run
 * would be a broken promise, answered as an internal error rather than
 * read as a result. */
static int task_completed(crest_req *req, crest_res *res, int64_t id)
{
    completed_query q = {0};
    crest_value params[] = {crest_int(id)};
    if (crest_query(req, res, "SELECT is_completed FROM tasks WHERE id = $1", params, 1, completed_found, &q) < 0)
        return -1; /* not started: res is answered */
    if (!q.ran)
        return crest_res_error(res, 500, "internal_error", "the task's state was not read in place");
    return q.done;
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

/* Archives a finished task: it stays in the table with is_deleted true,
 * and the module's scope hides it from then on. The same rules as the
 * module: with X-User only that user's tasks. One statement decides and
 * writes, so two archives of one task cannot both win; when it changes
 * nothing, a read says why. Booleans are bound, so the statements read
 * the same to every database; the user ($2) is cast to text where it is
 * first used, as PostgreSQL types a parameter from its uses and would
 * find two (owner is a varchar there). */
static const char archive_sql[] = "UPDATE tasks SET is_deleted = $3 WHERE id = $1 AND is_deleted = $4 "
                                  "AND is_completed = $3 AND (CAST($2 AS TEXT) IS NULL OR owner = $2)";
static const char archive_why_sql[] = "SELECT is_completed FROM tasks WHERE id = $1 AND is_deleted = $3 "
                                      "AND (CAST($2 AS TEXT) IS NULL OR owner = $2)";

typedef struct archive_job {
    int64_t id;
    crest_value params[4]; /* archive_sql's: id, user (or null), true, false */
    crest_value why[3];    /* archive_why_sql's: id, user (or null), false */
} archive_job;

static void archive_why(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    (void)req;
    (void)ud;
    if (!rows)
        ; /* res holds crest's answer */
    else if (!crest_rows_next(rows))
        crest_res_error(res, 404, "not_found", "no Task with this id");
    else if (!crest_rows_int(rows, 0))
        crest_res_error(res, 400, "business_rule", "only finished tasks can be archived");
    else
        crest_res_error(res, 409, "conflict", "the task changed meanwhile; try again");
    crest_res_finish(res);
}

static void archive_updated(crest_req *req, crest_res *res, crest_rows *rows, void *ud)
{
    archive_job *job = ud;
    if (rows && crest_rows_changes(rows) > 0) {
        crest_json *w = crest_res_json(res);
        crest_json_object_begin(w);
        crest_json_key(w, "archived");
        crest_json_int(w, job->id);
        crest_json_object_end(w);
    } else if (rows) {
        if (crest_query(req, res, archive_why_sql, job->why, 3, archive_why, job) < 0)
            crest_res_finish(res);
        return;
    }
    crest_res_finish(res);
}

static int archive(crest_req *req, crest_res *res, void *ud)
{
    (void)ud;
    if (tag_response(req, res, NULL))
        return -1;
    archive_job *job = crest_req_alloc(req, sizeof *job);
    if (!job)
        return crest_res_error(res, 503, "out_of_memory", "the server is short of memory");
    job->id = crest_req_int(req, "id");
    job->params[0] = crest_int(job->id);
    job->params[1] = crest_text(user_of(req)); /* NULL: a null value */
    job->params[2] = crest_bool(true);
    job->params[3] = crest_bool(false);
    job->why[0] = job->params[0];
    job->why[1] = job->params[1];
    job->why[2] = job->params[3];
    /* A .blocking handler: both statements run, and the answer is
     * finished, before crest_query returns. */
    return crest_query(req, res, archive_sql, job->params, 4, archive_updated, job);
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
