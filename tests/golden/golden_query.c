/* golden_query.c — golden tests of the query path's first two stages. Each
 * case folder holds `input` (lines "where=<json>" and/or "sort_by=<text>")
 * and one expectation per dialect, `expected.sqlite` and
 * `expected.postgres`: either "error: <message>" (the same for both) or the
 * plan, the sort, the SQL condition and the bound values. Every SQLite SQL
 * produced is also run against an in-memory table, so a plan never prints
 * SQL that SQLite rejects; with --pg every PostgreSQL SQL also runs, with
 * its binds, against the same table in a fresh database of the tests'
 * cluster (CREST_TEST_PG_FILE), else it is compared as text only.
 * A line "model=Computer" queries another model than Task: the models of
 * relations (Company, Person, Computer, Tag, TaskTag), whose dotted names
 * are judged by a reach of the test's own (Person's rows have the scope
 * {"age": {"$ge": 18}}; a field called "hidden" is one the user may not
 * read).
 * Usage: golden_query DIR [--update] [--pg] */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "golden.h"
#include "json/json_internal.h"

static const char *const states[] = {"todo", "doing", "done", NULL};
static const crest_field fields[] = {
    {.name = "title", .type = CREST_F_STRING, .required = true, .max_length = 200},
    {.name = "body", .type = CREST_F_TEXT},
    {.name = "is_completed", .type = CREST_F_BOOL, .def = "false"},
    {.name = "spent_time", .type = CREST_F_INT, .has_min = true, .min = 0},
    {.name = "rating", .type = CREST_F_FLOAT},
    {.name = "due", .type = CREST_F_DATE},
    {.name = "created_at", .type = CREST_F_DATETIME, .def = "now", .rest = CREST_REST_READ},
    {.name = "meta", .type = CREST_F_JSON},
    {.name = "state", .type = CREST_F_STRING, .values = states},
    {.name = "secret", .type = CREST_F_STRING, .rest = CREST_REST_NONE},
    {.name = "tags", .has_many = "Tag", .through = "TaskTag"},
    {0}};
static const crest_model_def model_def = {.name = "Task", .table = "tasks", .fields = fields};

/* The relations' models. */
static const crest_field company_fields[] = {
    {.name = "name", .type = CREST_F_STRING}, {.name = "hidden", .type = CREST_F_STRING}, {0}};
static const crest_field person_fields[] = {
    {.name = "name", .type = CREST_F_STRING},
    {.name = "age", .type = CREST_F_INT},
    {.name = "company", .type = CREST_F_REF, .ref_model = "Company", .on_delete = CREST_ON_DELETE_SET_NULL},
    {.name = "manager", .type = CREST_F_REF, .ref_model = "Person", .on_delete = CREST_ON_DELETE_SET_NULL},
    {.name = "computers", .has_many = "Computer", .via = "owner"},
    {0}};
static const crest_field computer_fields[] = {
    {.name = "name", .type = CREST_F_STRING},
    {.name = "price", .type = CREST_F_INT},
    {.name = "owner", .type = CREST_F_REF, .ref_model = "Person", .on_delete = CREST_ON_DELETE_SET_NULL},
    {0}};
static const crest_field tag_fields[] = {{.name = "name", .type = CREST_F_STRING}, {0}};
static const crest_field task_tag_fields[] = {
    {.name = "task", .type = CREST_F_REF, .ref_model = "Task", .required = true},
    {.name = "tag", .type = CREST_F_REF, .ref_model = "Tag", .required = true},
    {0}};
static const crest_model_def rel_defs[] = {
    {.name = "Company", .table = "company", .fields = company_fields},
    {.name = "Person", .table = "person", .fields = person_fields},
    {.name = "Computer", .table = "computer", .fields = computer_fields},
    {.name = "Tag", .table = "tag", .fields = tag_fields},
    {.name = "TaskTag", .table = "task_tag", .fields = task_tag_fields},
};

/* The test's reach: Person's scope; "hidden" fields unknown to the user. */

/* Runs one case in dialect d into out; returns -1 when the SQL does not run
 * (on db for SQLite, on pg for PostgreSQL: either NULL when not run). */
static int run_case(crest_app *app, const crest__allow *allow, const crest__dialect *d, sqlite3 *db,
                    golden_pg *pg, const char *input, crest__buf *out)
{
    const crest__model *m = crest__app_model(app, "Task");
    crest__arena a;
    crest__arena_init(&a, 4096, 0);
    char msg[300];
    const char *where = NULL, *sort = NULL;
    char *copy = strdup(input);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        if (!strncmp(line, "where=", 6))
            where = line + 6;
        else if (!strncmp(line, "sort_by=", 8))
            sort = line + 8;
        else if (!strncmp(line, "model=", 6))
            m = crest__app_model(app, line + 6);
    }
    int rc = 0;
    crest__qnode *q = NULL;
    crest__plan plan;
    memset(&plan, 0, sizeof plan);
    if (where) {
        json_t *j = crest__json_parse(where, strlen(where), 64, msg, sizeof msg);
        if (!j) {
            crest__buf_appendf(out, "error: where: not valid JSON (%s)\n", msg);
            goto done;
        }
        int bad = crest__where_parse_rel(&a, m, allow, &golden_reach, j, &q, msg, sizeof msg);
        if (bad) {
            json_decref(j);
            crest__buf_appendf(out, "error: %s\n", msg);
            goto done;
        }
        crest__arena_defer(&a, (void (*)(void *))json_decref, j);
    }
    if (sort && crest__sort_parse_rel(m, allow, &golden_reach, sort, &plan, msg, sizeof msg)) {
        crest__buf_appendf(out, "error: %s\n", msg);
        goto done;
    }
    crest__buf_appends(out, "plan: ");
    crest__plan_print(out, q);
    crest__buf_appends(out, "\nsort:");
    for (unsigned i = 0; i < plan.nsort; i++) {
        crest__buf_appendf(out, "%s %s", i ? "," : "", plan.sort[i].desc ? "-" : "");
        for (unsigned k = 0; k < plan.sort[i].nrels; k++)
            crest__buf_appendf(out, "%s.", plan.sort[i].rels[k]->name);
        crest__buf_appends(out, plan.sort[i].field->f.name);
    }
    crest__sql s;
    crest__sql_init(&s, &a, d);
    crest__sql_add(&s, "SELECT \"id\" FROM ");
    crest__sql_add(&s, m->qtable);
    crest__sql_add(&s, " WHERE ");
    crest__sql_where(&s, q);
    crest__sql_order(&s, &plan);
    crest__buf_appends(out, "\n");
    golden_print_sql(out, &s);
    if (db)
        rc = golden_run_sqlite(db, &s, true, out);
    else if (pg)
        rc = golden_run_pg(pg, &s, out);
    crest__sql_dispose(&s);
done:
    free(copy);
    crest__arena_dispose(&a);
    return rc;
}

static int by_name(const struct dirent **x, const struct dirent **y) { return strcmp((*x)->d_name, (*y)->d_name); }

int main(int argc, char **argv)
{
    bool update = false, on_pg = false;
    if (golden_flags(argc, argv, &update, &on_pg)) {
        fprintf(stderr, "usage: golden_query DIR [--update] [--pg]\n");
        return 2;
    }
    crest_app *app = crest_app_new();
    crest_error err = {0};
    if (crest_app_add_model(app, &model_def, &err)) {
        fprintf(stderr, "model: %s\n", err.msg);
        return 1;
    }
    if (golden_add_models(app, rel_defs, CREST_ARRAY_LEN(rel_defs)))
        return 1;
    crest__model *m = crest__app_model(app, "Task");
    /* One allow-list for every model, as long as the longest: Task's flags,
     * and every field of the others. */
    crest__allow allow = {calloc(CREST_MODEL_MAX_FIELDS, 1), NULL, true};
    for (unsigned i = 0; i < CREST_MODEL_MAX_FIELDS; i++)
        allow.ok[i] = i >= m->nfields || (m->fields[i].f.rest != CREST_REST_NONE && m->fields[i].f.type != CREST_F_JSON);
    allow.ok[crest__model_field(m, "body")->idx] = 0; /* one readable field outside the allow-list */
    crest__arena scope_arena;
    crest__arena_init(&scope_arena, 1024, 0);
    if (golden_reach_init(&scope_arena, app))
        return 1;
    sqlite3 *db;
    sqlite3_open(":memory:", &db);
    if (golden_model_sync(m, db, &err)) {
        fprintf(stderr, "sync: %s\n", err.msg);
        return 1;
    }
    for (size_t i = 0; i < CREST_ARRAY_LEN(rel_defs); i++)
        if (golden_model_sync(crest__app_model(app, rel_defs[i].name), db, &err)) {
            fprintf(stderr, "sync: %s\n", err.msg);
            return 1;
        }
    sqlite3_exec(db, "INSERT INTO tasks (title, is_completed, spent_time) VALUES ('a', 0, 5), ('B', 1, NULL)", NULL, NULL,
                 NULL);
    golden_pg *pg = NULL;
    if (on_pg) {
        crest__buf why;
        crest__buf_init(&why, 0);
        bool synced = (pg = golden_pg_open()) && !golden_model_sync_pg(m, pg, &err);
        for (size_t k = 0; synced && k < CREST_ARRAY_LEN(rel_defs); k++)
            synced = !golden_model_sync_pg(crest__app_model(app, rel_defs[k].name), pg, &err);
        if (!synced ||
            golden_pg_script(pg, "INSERT INTO tasks (title, is_completed, spent_time) VALUES ('a', false, 5), "
                                 "('B', true, NULL)", &why)) {
            fprintf(stderr, "PostgreSQL: %s%.*s\n", err.msg, (int)why.len, why.ptr ? why.ptr : "");
            golden_pg_close(pg);
            return 1;
        }
        crest__buf_dispose(&why);
    }
    struct dirent **ents;
    int n = scandir(argv[1], &ents, NULL, by_name);
    if (n < 0) {
        perror(argv[1]);
        return 1;
    }
    int passed = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        const char *name = ents[i]->d_name;
        if (name[0] == '.')
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/input", argv[1], name);
        char *input = golden_slurp(path);
        if (!input)
            continue;
        int bad = 0;
        crest__buf out[2];
        for (int k = 0; k < 2; k++) {
            const crest__dialect *d = k ? crest__dialect_postgres() : crest__dialect_sqlite();
            crest__buf_init(&out[k], 0);
            int rc = run_case(app, &allow, d, k ? NULL : db, k ? pg : NULL, input, &out[k]);
            crest__buf_append(&out[k], "", 1);
            bad |= golden_check(argv[1], name, d->name, out[k].ptr, rc, update);
        }
        /* A refused input is refused the same way whatever the dialect. */
        if ((!strncmp(out[0].ptr, "error:", 6) || !strncmp(out[1].ptr, "error:", 6)) && strcmp(out[0].ptr, out[1].ptr)) {
            printf("FAIL %s: the dialects' errors differ\n", name);
            bad = 1;
        }
        crest__buf_dispose(&out[0]);
        crest__buf_dispose(&out[1]);
        if (bad)
            failed++;
        else
            passed++;
        free(input);
    }
    for (int i = 0; i < n; i++)
        free(ents[i]);
    free(ents);
    free(allow.ok);
    crest__arena_dispose(&scope_arena);
    sqlite3_close(db);
    golden_pg_close(pg);
    crest_app_free(app);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
