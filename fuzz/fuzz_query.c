/* fuzz_query.c — bytes into the REST query path: the text before the first
 * newline is a `where` JSON, the rest a `sort_by` list. Whatever parses into
 * a plan must print SQL that SQLite prepares and runs (against a table made
 * by the model itself); a plan that yields invalid SQL aborts. Its
 * PostgreSQL text must number its placeholders $1..$n, one per bind, and
 * its list binds must hold non-NULL values of one kind. The model has
 * relations (owner, tags; Person's manager and tasks), so dotted names
 * ("owner.manager.name", "tags.name", {"tags": {"$exists": false}}) and
 * sorts across belongs_to relations run too, Person's rows within a scope. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "json/json_internal.h"
#include "rest/rest_internal.h"
#include "store/sqlite_internal.h"

/* The PostgreSQL text of the plan: placeholders $1..$n in order, each bind
 * named once, list binds well-formed. */
static void postgres_check(crest__arena *a, const crest__qnode *q, const crest__plan *plan)
{
    crest__sql sql;
    crest__sql_init(&sql, a, crest__dialect_postgres());
    crest__sql_where(&sql, q);
    crest__sql_order(&sql, plan);
    unsigned next = 1;
    for (size_t i = 0; !sql.err && i < sql.text.len; i++) {
        if (sql.text.ptr[i] != '$')
            continue;
        unsigned n = (unsigned)strtoul(sql.text.ptr + i + 1, NULL, 10);
        if (n != next++) {
            fprintf(stderr, "fuzz_query: placeholder $%u, expected $%u\n%s\n", n, next - 1, sql.text.ptr);
            abort();
        }
    }
    if (!sql.err && next - 1 != sql.nbinds)
        abort();
    for (unsigned i = 0; !sql.err && sql.lists && i < sql.nbinds; i++)
        for (unsigned k = 0; sql.lists[i] && k < sql.lists[i]->n; k++)
            if (sql.lists[i]->v[k].k != sql.lists[i]->k || sql.lists[i]->k == CREST__V_NULL)
                abort();
    crest__sql_dispose(&sql);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const states[] = {"todo", "done", NULL};
static const crest_field fields[] = {
    {.name = "title", .type = CREST_F_STRING},
    {.name = "body", .type = CREST_F_TEXT},
    {.name = "is_completed", .type = CREST_F_BOOL},
    {.name = "spent_time", .type = CREST_F_INT},
    {.name = "rating", .type = CREST_F_FLOAT},
    {.name = "due", .type = CREST_F_DATE},
    {.name = "created_at", .type = CREST_F_DATETIME, .rest = CREST_REST_READ},
    {.name = "meta", .type = CREST_F_JSON},
    {.name = "state", .type = CREST_F_STRING, .values = states},
    {.name = "secret", .type = CREST_F_STRING, .rest = CREST_REST_NONE},
    {.name = "owner", .type = CREST_F_REF, .ref_model = "Person", .on_delete = CREST_ON_DELETE_SET_NULL},
    {.name = "tags", .has_many = "Tag", .through = "TaskTag"},
    {0}};
static const crest_model_def model_def = {.name = "Task", .table = "tasks", .fields = fields};
static const crest_field person_fields[] = {
    {.name = "name", .type = CREST_F_STRING},
    {.name = "age", .type = CREST_F_INT},
    {.name = "manager", .type = CREST_F_REF, .ref_model = "Person", .on_delete = CREST_ON_DELETE_SET_NULL},
    {.name = "tasks", .has_many = "Task", .via = "owner"},
    {0}};
static const crest_field tag_fields[] = {{.name = "name", .type = CREST_F_STRING}, {0}};
static const crest_field task_tag_fields[] = {
    {.name = "task", .type = CREST_F_REF, .ref_model = "Task", .on_delete = CREST_ON_DELETE_CASCADE},
    {.name = "tag", .type = CREST_F_REF, .ref_model = "Tag", .on_delete = CREST_ON_DELETE_CASCADE},
    {0}};
static const crest_model_def rel_defs[] = {{.name = "Person", .table = "person", .fields = person_fields},
                                           {.name = "Tag", .table = "tag", .fields = tag_fields},
                                           {.name = "TaskTag", .table = "task_tag", .fields = task_tag_fields}};

static crest_app *app;
static crest__model *model;
static crest__allow allow;
static sqlite3 *db;
static crest__arena scope_arena;
static crest__qnode *person_scope;

/* Every dotted name may be named; Person's rows have a scope. */
static int reach_all(void *ud, const crest__path *p, const crest__qnode **scopes)
{
    (void)ud;
    for (unsigned i = 0; i < p->nrels; i++)
        scopes[i] = !strcmp(p->rels[i]->target->name, "Person") ? person_scope : NULL;
    return 0;
}
static const crest__reach reach = {reach_all, NULL};

static void setup(void)
{
    app = crest_app_new();
    crest_error err = {0};
    if (crest_app_add_model(app, &model_def, &err))
        abort();
    for (size_t i = 0; i < CREST_ARRAY_LEN(rel_defs); i++)
        if (crest_app_add_model(app, &rel_defs[i], &err))
            abort();
    if (crest__app_link_models(app, &err))
        abort();
    model = crest__app_model(app, "Task");
    allow.ok = calloc(model->nfields, 1);
    allow.any_path = true;
    crest__arena_init(&scope_arena, 1024, 0);
    json_t *sj = json_pack("{s{si}}", "age", "$ge", 18);
    char msg[200];
    if (!sj || crest__where_parse(&scope_arena, crest__app_model(app, "Person"), NULL, sj, &person_scope, msg, sizeof msg))
        abort();
    json_decref(sj);
    for (unsigned i = 0; i < model->nfields; i++)
        allow.ok[i] = model->fields[i].f.rest != CREST_REST_NONE && model->fields[i].f.type != CREST_F_JSON;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK)
        abort();
    /* The model's table, made by model sync through the SQLite store on this connection. */
    crest__store s = {.vt = &crest__store_sqlite};
    crest__conn c = {.db = db};
    int rc = crest__model_sync(model, &s, &c, "fuzz", &err, NULL);
    for (size_t i = 0; !rc && i < CREST_ARRAY_LEN(rel_defs); i++)
        rc = crest__model_sync(crest__app_model(app, rel_defs[i].name), &s, &c, "fuzz", &err, NULL);
    crest__sq_cache_free(&c);
    if (rc)
        abort();
    sqlite3_exec(db,
                 "INSERT INTO tasks (title, is_completed, spent_time, rating, due, created_at) VALUES "
                 "('a', 0, 5, 1.5, '2026-01-01', '2026-01-01T00:00:00.000Z'), ('B%_', 1, NULL, NULL, NULL, NULL);"
                 "INSERT INTO person (name, age, manager_id) VALUES ('boss', 50, NULL), ('kid', 10, 1);"
                 "UPDATE tasks SET owner_id = 2 WHERE title = 'a';"
                 "INSERT INTO tag (name) VALUES ('urgent');"
                 "INSERT INTO task_tag (task_id, tag_id) VALUES (1, 1)",
                 NULL, NULL, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!app)
        setup();
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t wlen = nl ? (size_t)(nl - s) : size;
    crest__arena a;
    crest__arena_init(&a, 4096, 0);
    char msg[256];
    crest__qnode *q = NULL;
    crest__plan plan;
    memset(&plan, 0, sizeof plan);
    json_t *j = crest__json_parse(s, wlen, CREST_WHERE_MAX_DEPTH * 2 + 2, msg, sizeof msg);
    if (j && crest__where_parse_rel(&a, model, &allow, &reach, j, &q, msg, sizeof msg))
        goto done;
    if (nl) {
        char *sort = crest__arena_strndup(&a, nl + 1, size - wlen - 1);
        if (!sort || memchr(nl + 1, 0, size - wlen - 1) ||
            crest__sort_parse_rel(model, &allow, &reach, sort, &plan, msg, sizeof msg))
            goto done;
    }
    crest__buf printed;
    crest__buf_init(&printed, 0);
    crest__plan_print(&printed, q);
    crest__buf_dispose(&printed);
    crest__sql sql;
    crest__sql_init(&sql, &a, crest__dialect_sqlite());
    crest__sql_add(&sql, "SELECT \"id\" FROM \"tasks\" WHERE ");
    crest__sql_where(&sql, q);
    crest__sql_order(&sql, &plan);
    if (!sql.err) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(db, sql.text.ptr, (int)sql.text.len, &st, NULL) != SQLITE_OK) {
            fprintf(stderr, "fuzz_query: SQL rejected: %s\n%.*s\n", sqlite3_errmsg(db), (int)sql.text.len,
                    sql.text.ptr);
            abort();
        }
        if ((unsigned)sqlite3_bind_parameter_count(st) != sql.nbinds)
            abort();
        for (unsigned i = 0; i < sql.nbinds; i++)
            crest__sq_bind(st, (int)i + 1, &sql.binds[i]);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            ;
        if (rc != SQLITE_DONE) {
            fprintf(stderr, "fuzz_query: SQL failed: %s\n", sqlite3_errmsg(db));
            abort();
        }
        sqlite3_finalize(st);
    }
    crest__sql_dispose(&sql);
    postgres_check(&a, q, &plan);
done:
    json_decref(j);
    crest__arena_dispose(&a);
    return 0;
}
