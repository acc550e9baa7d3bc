/* golden_plans.c — golden tests of the compiler, one plan per REST
 * operation (read, list with its count, sample, group, stats, eval, insert,
 * update, delete, transactions), the schema statements of a model with
 * every field type, and the schema introspection reads. Each case folder
 * holds `input` (lines key=value: op=..., then what the op takes) and
 * `expected.sqlite` / `expected.postgres`: the statements and their binds.
 * SQLite's statements also run against an in-memory database made by the
 * model (so they must be valid SQLite); with --pg PostgreSQL's also run,
 * with their binds, in a fresh database of the tests' cluster
 * (CREST_TEST_PG_FILE) made by the model the same way, each case in a
 * transaction rolled back after it; else they are compared as text only.
 * A line model=Computer plans over the relations' models (Person, and
 * Computer with its owner, Person's tags through PersonTag), whose dotted
 * names go through a reach of the runner's own (Person's rows are scoped
 * to {"age": {"$ge": 18}}). op=embed reads a relation's rows (rel=, on
 * the model) for a page's keys (keys=1,2,3), in the target's scope= and
 * sort_by=, per_parent= rows each. A line uses_index=NAME also checks
 * the last statement's plan uses that index (index_check). op=list with
 * after=[v, ..., id] is a cursor page: the keyset after a row whose sort
 * key values (the id tie-break last) are those, with the key columns.
 * Usage: golden_plans DIR [--update] [--pg] */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "golden.h"

static const char *const states[] = {"todo", "doing", "won't", NULL};
static const crest_field fields[] = {
    {.name = "title", .type = CREST_F_STRING, .required = true, .min_length = 1, .max_length = 200, .unique = true},
    {.name = "body", .type = CREST_F_TEXT, .max_length = 5000},
    {.name = "is_completed", .type = CREST_F_BOOL, .def = "false", .index = true},
    {.name = "spent_time", .type = CREST_F_INT, .has_min = true, .min = 0},
    {.name = "rating", .type = CREST_F_FLOAT, .has_min = true, .min = 0, .has_max = true, .max = 5},
    {.name = "due", .type = CREST_F_DATE},
    {.name = "created_at", .type = CREST_F_DATETIME, .def = "now", .rest = CREST_REST_READ},
    {.name = "meta", .type = CREST_F_JSON, .def = "{\"tags\": [\"it's\"]}"},
    {.name = "state", .type = CREST_F_STRING, .values = states, .def = "\"todo\""},
    {.name = "ref", .type = CREST_F_UUID},
    {.name = "secret", .type = CREST_F_STRING, .rest = CREST_REST_NONE},
    {0}};
static const char *const indexes[] = {"is_completed,-spent_time", NULL};
static const crest_model_def model_def = {.name = "Task", .table = "tasks", .fields = fields, .indexes = indexes};

static const crest_field person_fields[] = {
    {.name = "name", .type = CREST_F_STRING}, {.name = "age", .type = CREST_F_INT},
    {.name = "computers", .has_many = "Computer", .via = "owner"},
    {.name = "tags", .has_many = "Tag", .through = "PersonTag"}, {0}};
static const crest_field computer_fields[] = {
    {.name = "name", .type = CREST_F_STRING},
    {.name = "owner", .type = CREST_F_REF, .ref_model = "Person", .on_delete = CREST_ON_DELETE_SET_NULL},
    {0}};
static const crest_field tag_fields[] = {{.name = "name", .type = CREST_F_STRING}, {0}};
static const crest_field person_tag_fields[] = {
    {.name = "person", .type = CREST_F_REF, .ref_model = "Person", .required = true},
    {.name = "tag", .type = CREST_F_REF, .ref_model = "Tag", .required = true},
    {0}};
static const crest_model_def rel_defs[] = {{.name = "Person", .table = "person", .fields = person_fields},
                                           {.name = "Computer", .table = "computer", .fields = computer_fields},
                                           {.name = "Tag", .table = "tag", .fields = tag_fields},
                                           {.name = "PersonTag", .table = "person_tag", .fields = person_tag_fields}};

static crest_app *app;

static int label_fn(const crest_rest_ctx *ctx, const crest_row *row, crest_json *w) { return 0; }
static const crest_computed computed[] = {
    {.name = "spent_hours", .sql = "spent_time / 3600.0"}, {.name = "label", .fn = label_fn}, {0}};
static const crest_computed *const comp[] = {&computed[0], &computed[1]};

typedef struct kv {
    const char *op, *id, *where, *scope, *sort_by, *page, *page_size, *count, *field, *order, *fields, *functions,
        *body, *table, *column, *value, *spec, *page_size_max, *model, *rel, *keys, *per_parent, *uses_index, *after;
} kv;

static const char *get(char *line, const char *key)
{
    size_t n = strlen(key);
    return !strncmp(line, key, n) && line[n] == '=' ? line + n + 1 : NULL;
}

static void parse_input(char *copy, kv *k)
{
    memset(k, 0, sizeof *k);
    for (char *line = strtok(copy, "\n"); line; line = strtok(NULL, "\n")) {
        const char **slots[] = {&k->op,    &k->id,    &k->where,  &k->scope,     &k->sort_by, &k->page,
                                &k->page_size, &k->count, &k->field, &k->order,  &k->fields,  &k->functions,
                                &k->body,  &k->table, &k->column, &k->value,     &k->spec, &k->page_size_max,
                                &k->model, &k->rel,   &k->keys,   &k->per_parent, &k->uses_index, &k->after};
        const char *names[] = {"op",    "id",    "where",  "scope",  "sort_by",   "page",
                               "page_size", "count", "field", "order", "fields", "functions",
                               "body",  "table", "column", "value", "spec", "page_size_max", "model",
                               "rel",   "keys",  "per_parent", "uses_index", "after"};
        for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
            const char *v = get(line, names[i]);
            if (v)
                *slots[i] = v;
        }
    }
}

/* A where object (JSON text; NULL: none) as a plan, from the arena. */
static int where_of(crest__arena *a, const crest__model *m, const char *text, crest__qnode **out, crest__buf *o)
{
    *out = NULL;
    if (!text)
        return 0;
    json_t *j = json_loads(text, 0, NULL);
    char msg[300];
    if (!j || crest__where_parse_rel(a, m, NULL, &golden_reach, j, out, msg, sizeof msg)) {
        crest__buf_appendf(o, "error: %s\n", j ? msg : "not JSON");
        json_decref(j);
        return -1;
    }
    crest__arena_defer(a, (void (*)(void *))json_decref, j);
    return 0;
}

/* A body (JSON object) as per-field values and set flags, from the arena. */
static int body_of(crest__arena *a, const crest__model *m, const char *text, crest__val **vals, unsigned char **set,
                   crest__buf *o)
{
    *vals = crest__arena_calloc(a, m->nfields, sizeof **vals);
    *set = crest__arena_calloc(a, m->nfields, 1);
    json_t *j = json_loads(text ? text : "{}", 0, NULL);
    if (!j || !*vals || !*set) {
        json_decref(j);
        crest__buf_appends(o, "error: body\n");
        return -1;
    }
    crest__arena_defer(a, (void (*)(void *))json_decref, j);
    for (unsigned i = 1; i < m->nfields; i++) {
        json_t *v = json_object_get(j, m->fields[i].f.name);
        if (!v)
            continue;
        const char *msg = crest__field_value(a, &m->fields[i], v, &(*vals)[i]);
        if (msg) {
            crest__buf_appendf(o, "error: %s %s\n", m->fields[i].f.name, msg);
            return -1;
        }
        (*set)[i] = 1;
    }
    return 0;
}

static const crest__mfield *field(const crest__model *m, const char *name)
{
    const crest__mfield *f = name ? crest__model_field(m, name) : NULL;
    if (!f) {
        fprintf(stderr, "no field '%s'\n", name ? name : "(none)");
        exit(2);
    }
    return f;
}

static int64_t num(const char *s, int64_t def) { return s ? strtoll(s, NULL, 10) : def; }

/* The sort sort_by (NULL: none) of m with the id tie-break module_read.c
 * adds, from the arena; NULL with the error in o. */
static crest__plan *sort_of(crest__arena *a, const crest__model *m, const char *sort_by, crest__buf *o)
{
    crest__plan *plan = crest__arena_calloc(a, 1, sizeof *plan);
    char msg[200];
    if (!plan || (sort_by && crest__sort_parse_rel(m, NULL, &golden_reach, sort_by, plan, msg, sizeof msg))) {
        crest__buf_appendf(o, "error: %s\n", plan ? msg : "out of memory");
        return NULL;
    }
    plan->sort[plan->nsort].field = &m->fields[0];
    plan->sort[plan->nsort].desc = plan->nsort ? plan->sort[plan->nsort - 1].desc : false;
    plan->nsort++;
    return plan;
}

/* after=[...]: the cursor page's key values (of each sort key's field)
 * into p, as module_read.c plans a page after a cursor. */
static int after_of(crest__arena *a, const crest__plan *plan, const char *text, crest__list_plan *p, crest__buf *o)
{
    json_t *j = json_loads(text, 0, NULL);
    crest__val *v = crest__arena_calloc(a, plan->nsort, sizeof *v);
    if (!j || !v || !json_is_array(j) || json_array_size(j) != plan->nsort) {
        json_decref(j);
        crest__buf_appends(o, "error: after must be an array of one value per sort key\n");
        return -1;
    }
    crest__arena_defer(a, (void (*)(void *))json_decref, j);
    for (unsigned i = 0; i < plan->nsort; i++) {
        const char *msg = crest__field_operand(a, plan->sort[i].field, json_array_get(j, i), &v[i]);
        if (msg) {
            crest__buf_appendf(o, "error: after[%u] %s\n", i, msg);
            return -1;
        }
    }
    p->after = v;
    p->key_columns = true;
    return 0;
}

/* Compiles the case's statements into stmts (4, empty, of one dialect); *n
 * is how many it used. */
static int compile_case(crest__arena *a, const crest__model *m, const kv *k, const crest__dialect *d,
                        crest__sql *stmts, unsigned *n, crest__buf *o)
{
    const char *op = k->op ? k->op : "";
    /* embed: rel= names m's relation; where, scope and sort_by are its target's */
    const crest__rel *r = !strcmp(op, "embed") && k->rel ? crest__model_rel(m, k->rel) : NULL;
    if (!strcmp(op, "embed") && !r) {
        crest__buf_appendf(o, "error: no relation '%s'\n", k->rel ? k->rel : "(none)");
        return -1;
    }
    crest__qnode *where, *scope;
    if (where_of(a, r ? r->target : m, k->where, &where, o) || where_of(a, r ? r->target : m, k->scope, &scope, o))
        return -1;
    where = crest__qnode_and(a, where, scope);
    crest__proj proj = {.m = m, .comp = comp, .ncomp = strcmp(m->name, "Task") ? 0 : 2}; /* Task's */
    *n = 1;
    crest__sql *q = &stmts[0];
    int64_t size = num(k->page_size, 20), page = num(k->page, 1);
    if (!strcmp(op, "read") || !strcmp(op, "exists")) {
        crest__read_plan p = {.proj = proj, .id = num(k->id, 1), .scope = scope, .exists_only = !strcmp(op, "exists")};
        crest__compile_read(q, &p);
    } else if (!strcmp(op, "list") || !strcmp(op, "sample")) {
        bool sample = !strcmp(op, "sample");
        crest__plan *plan = sort_of(a, m, k->sort_by, o);
        if (!plan)
            return -1;
        bool exact = sample || !k->count || !strcmp(k->count, "exact");
        bool estimated = !exact && !strcmp(k->count, "estimated");
        crest__list_plan p = {.proj = proj, .where = where, .order = plan, .random = sample,
                              .limit = exact ? size : size + 1, .offset = sample ? 0 : (page - 1) * size};
        if (k->after && after_of(a, plan, k->after, &p, o))
            return -1;
        if (estimated && d->explain_json) {
            /* As module_read.c runs them: the count up to page_size's max,
             * then (past it) the planner's estimate, then the page. */
            crest__compile_count_upto(q, &p, num(k->page_size_max, 100));
            crest__compile_estimate(&stmts[(*n)++], &p);
            q = &stmts[(*n)++];
        } else if (exact || estimated) {
            crest__compile_count(q, &p);
            q = &stmts[(*n)++];
        }
        crest__compile_list(q, &p);
    } else if (!strcmp(op, "embed")) {
        /* As module_embed.c reads a page's related rows: the target's
         * columns, its scope (scope=, on the target) and sort ending with
         * id, per_parent = embed_max + 1. */
        crest__plan *plan = sort_of(a, r->target, k->sort_by, o);
        crest__val *keys = crest__arena_calloc(a, 64, sizeof *keys);
        if (!plan || !keys)
            return -1;
        unsigned nkeys = 0;
        for (const char *c = k->keys ? k->keys : ""; *c && nkeys < 64; c += *c == ',')
            keys[nkeys++] = (crest__val){.k = CREST__V_INT, .i = strtoll(c, (char **)&c, 10)};
        crest__embed_plan p = {.proj = {.m = r->target}, .rel = r, .keys = keys, .nkeys = nkeys,
                               .scope = scope, .order = plan, .per_parent = num(k->per_parent, 101)};
        crest__compile_embed(q, &p);
    } else if (!strcmp(op, "group")) {
        const char *ord = k->order ? k->order : "value";
        crest__group_order go = !strcmp(ord, "-value")  ? CREST__GROUP_VALUE_DESC
                                : !strcmp(ord, "count")  ? CREST__GROUP_COUNT_ASC
                                : !strcmp(ord, "-count") ? CREST__GROUP_COUNT_DESC
                                                         : CREST__GROUP_VALUE_ASC;
        crest__sort *path = NULL;
        if (k->field && strchr(k->field, '.')) {
            char msg[200];
            path = crest__arena_calloc(a, 1, sizeof *path);
            if (!path || crest__sort_path(m, NULL, &golden_reach, "group", k->field, path, msg, sizeof msg)) {
                crest__buf_appendf(o, "error: %s\n", path ? msg : "out of memory");
                return -1;
            }
        }
        crest__group_plan p = {.m = m, .field = path ? path->field : field(m, k->field), .path = path,
                               .where = where, .order = go, .limit = size, .offset = (page - 1) * size};
        crest__compile_group_count(q, &p);
        *n = 2;
        crest__compile_group(&stmts[1], &p);
    } else if (!strcmp(op, "stats") || !strcmp(op, "eval")) {
        crest__agg *aggs = crest__arena_calloc(a, 32, sizeof *aggs);
        unsigned na = 0;
        char *list = crest__arena_strdup(a, !strcmp(op, "stats") ? k->fields : k->functions);
        for (char *save = NULL, *t = list ? strtok_r(list, ",", &save) : NULL; t && na < 30;
             t = strtok_r(NULL, ",", &save)) {
            if (!strcmp(op, "stats")) {
                static const crest__aggfn fns[] = {CREST__AGG_MIN, CREST__AGG_MAX, CREST__AGG_AVG};
                for (int i = 0; i < 3; i++)
                    aggs[na++] = (crest__agg){fns[i], field(m, t)};
                continue;
            }
            char *colon = strchr(t, ':');
            if (colon)
                *colon = 0;
            if (crest__aggfn_parse(t, &aggs[na].fn)) {
                crest__buf_appendf(o, "error: function %s\n", t);
                return -1;
            }
            aggs[na++].f = colon ? field(m, colon + 1) : NULL;
        }
        crest__agg_plan p = {.m = m, .where = where, .aggs = aggs, .naggs = na};
        crest__compile_aggregate(q, &p);
    } else if (!strcmp(op, "insert") || !strcmp(op, "update")) {
        crest__val *vals;
        unsigned char *set;
        if (body_of(a, m, k->body, &vals, &set, o))
            return -1;
        if (!strcmp(op, "insert")) {
            crest__insert_plan p = {.m = m, .vals = vals, .set = set};
            crest__compile_insert(q, &p);
        } else {
            crest__update_plan p = {.m = m, .vals = vals, .set = set, .id = num(k->id, 1), .scope = scope};
            crest__compile_update(q, &p);
        }
    } else if (!strcmp(op, "delete")) {
        crest__delete_plan p = {.m = m, .id = num(k->id, 1), .scope = scope};
        crest__compile_delete(q, &p);
    } else if (!strcmp(op, "txn")) {
        static const crest__txn t[] = {CREST__TX_BEGIN, CREST__TX_COMMIT, CREST__TX_BEGIN_WRITE, CREST__TX_ROLLBACK};
        for (unsigned i = 0; i < 4; i++)
            crest__sql_add(&stmts[i], crest__txn_sql(d, t[i]));
        *n = 4;
    } else if (!strcmp(op, "select")) {
        crest__compile_select(q, &proj);
    } else if (!strcmp(op, "select_computed")) {
        crest__proj one = {.m = m, .comp = comp, .ncomp = 1, .comp_only = true};
        crest__compile_select(q, &one);
    } else if (!strcmp(op, "create_table")) {
        crest__compile_create_table(q, m);
    } else if (!strcmp(op, "add_column")) {
        crest__compile_add_column(q, m, field(m, k->field));
    } else if (!strcmp(op, "fill_column")) {
        const crest__mfield *f = field(m, k->field);
        crest__val v;
        json_t *j = json_loads(k->value, JSON_DECODE_ANY, NULL);
        const char *msg = j ? crest__field_value(a, f, j, &v) : "not JSON";
        if (msg) {
            json_decref(j);
            crest__buf_appendf(o, "error: %s\n", msg);
            return -1;
        }
        crest__arena_defer(a, (void (*)(void *))json_decref, j);
        crest__compile_fill_column(q, m, f, v);
    } else if (!strcmp(op, "field_index")) {
        crest__compile_field_index(q, m, field(m, k->field));
    } else if (!strcmp(op, "index")) {
        crest__compile_index(q, m, k->spec ? k->spec : "");
    } else if (!strcmp(op, "fields_table")) {
        crest__compile_fields_table(q);
    } else if (!strcmp(op, "fields_record")) {
        crest__compile_fields_record(q, m, field(m, k->field));
    } else if (!strcmp(op, "fields_lookup")) {
        crest__compile_fields_lookup(q, m, k->column ? k->column : "");
    } else if (!strcmp(op, "table_columns")) {
        crest__compile_table_columns(q, k->table ? k->table : "");
    } else if (!strcmp(op, "foreign_keys")) {
        crest__compile_foreign_keys(q, k->table ? k->table : "");
    } else if (!strcmp(op, "primary_key")) {
        crest__compile_primary_key(q, k->table ? k->table : "");
    } else if (!strcmp(op, "parent_exists")) {
        crest__compile_parent_exists(q, k->table ? k->table : "", k->column ? k->column : "",
                                     (crest__val){.k = CREST__V_INT, .i = num(k->value, 1)});
    } else {
        crest__buf_appendf(o, "error: unknown op '%s'\n", op);
        return -1;
    }
    return 0;
}

/* A database for the case's SQLite statements: the model's table (made by
 * the model itself), none (create_table, fields_table), or a table with
 * only its id (add_column). NULL when it cannot be made. */
static sqlite3 *db_for(crest__model *m, const char *op)
{
    sqlite3 *db;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK)
        return NULL;
    crest_error err = {0};
    if (!strcmp(op, "create_table") || !strcmp(op, "fields_table"))
        return db;
    if (!strcmp(op, "add_column"))
        return sqlite3_exec(db, "CREATE TABLE \"tasks\" (\"id\" INTEGER PRIMARY KEY)", NULL, NULL, NULL) == SQLITE_OK
                   ? db
                   : NULL;
    if (golden_model_sync(m, db, &err)) {
        fprintf(stderr, "sync: %s\n", err.msg);
        sqlite3_close(db);
        return NULL;
    }
    for (size_t i = 0; i < CREST_ARRAY_LEN(rel_defs) && strcmp(m->name, "Task"); i++) {
        crest__model *r = crest__app_model(app, rel_defs[i].name);
        if (r != m && golden_model_sync(r, db, &err)) {
            fprintf(stderr, "sync: %s\n", err.msg);
            sqlite3_close(db);
            return NULL;
        }
    }
    return db;
}

/* The PostgreSQL counterpart of db_for: what a case's transaction starts
 * with, so its statements meet what SQLite's meet. No tables (create_table,
 * fields_table: an empty schema first in the search path), a table with
 * only its id (add_column), else the model's. NULL: the case manages
 * transactions itself (txn), and runs outside one. */
static const char *pg_setup_for(const char *op)
{
    if (!strcmp(op, "txn"))
        return NULL;
    if (!strcmp(op, "create_table") || !strcmp(op, "fields_table"))
        return "BEGIN; CREATE SCHEMA golden_case; SET LOCAL search_path = golden_case";
    if (!strcmp(op, "add_column"))
        return "BEGIN; CREATE SCHEMA golden_case; SET LOCAL search_path = golden_case; "
               "CREATE TABLE \"tasks\" (\"id\" bigint PRIMARY KEY)";
    return "BEGIN";
}

/* uses_index=NAME: the plan must use the index NAME (SQLite: "USING
 * INDEX NAME" or "USING COVERING INDEX NAME"; PostgreSQL, with sequential
 * scans off as on a table large enough: an index, index-only or bitmap
 * index scan of NAME). Checked, not printed: PostgreSQL's plan is only seen with --pg.
 * -1 with the plan in out when it does not. */
static int index_check(const char *name, int plan_rc, crest__buf *plan, crest__buf *out)
{
    crest__buf_append(plan, "", 1);
    char want[5][128];
    snprintf(want[0], sizeof want[0], "USING INDEX %s ", name);
    snprintf(want[1], sizeof want[1], "USING COVERING INDEX %s ", name);
    snprintf(want[2], sizeof want[2], "Index Scan on %s ", name);     /* (PostgreSQL's bitmap scan) */
    snprintf(want[3], sizeof want[3], "Scan using %s on ", name);     /* (its index and index-only scans) */
    /* The primary key (PostgreSQL's "<table>_pkey") is SQLite's rowid, a
     * search on it the seek of the id's range. */
    size_t nl = strlen(name);
    snprintf(want[4], sizeof want[4], "%s", nl > 5 && !strcmp(name + nl - 5, "_pkey") ? "USING INTEGER PRIMARY KEY (rowid>" : "\x01");
    bool used = false;
    for (int i = 0; i < 5 && plan_rc == 0; i++)
        used |= strstr(plan->ptr, want[i]) != NULL;
    if (!used)
        crest__buf_appendf(out, "INDEX %s NOT USED, plan:\n%s", name, plan->ptr);
    crest__buf_dispose(plan);
    return used ? 0 : -1;
}

/* Runs n statements on pg in the case's setup (pg_setup_for), then (with
 * uses_index) the last one's plan with sequential scans off, then rolls
 * back; -1 when one fails. */
static int run_pg(golden_pg *pg, const char *op, const char *uses_index, crest__sql *stmts, unsigned n,
                  crest__buf *out)
{
    const char *setup = pg_setup_for(op);
    int rc = setup ? golden_pg_script(pg, setup, out) : 0;
    for (unsigned i = 0; i < n && rc == 0; i++)
        rc = golden_run_pg(pg, &stmts[i], out);
    if (uses_index && rc == 0 && (rc = golden_pg_script(pg, "SET LOCAL enable_seqscan = off", out)) == 0) {
        crest__buf plan;
        crest__buf_init(&plan, 0);
        rc = index_check(uses_index, golden_pg_plan(pg, &stmts[n - 1], &plan), &plan, out);
    }
    if (setup)
        golden_pg_script(pg, "ROLLBACK", out);
    return rc;
}

/* Runs one case in dialect d into out; -1 when its SQL does not run
 * (SQLite's always run; PostgreSQL's on pg when not NULL). */
static int run_case(crest__model *m, const char *input, const crest__dialect *d, golden_pg *pg, crest__buf *out)
{
    crest__arena a;
    crest__arena_init(&a, 4096, 0);
    char *copy = strdup(input);
    kv k;
    parse_input(copy, &k);
    if (k.model && !(m = crest__app_model(app, k.model))) {
        fprintf(stderr, "no model '%s'\n", k.model);
        exit(2);
    }
    crest__sql stmts[4];
    for (unsigned i = 0; i < 4; i++)
        crest__sql_init(&stmts[i], &a, d);
    unsigned n = 0;
    int rc = 0;
    if (compile_case(&a, m, &k, d, stmts, &n, out) == 0) {
        sqlite3 *db = d == crest__dialect_sqlite() ? db_for(m, k.op) : NULL;
        if (d == crest__dialect_sqlite() && !db)
            rc = -1;
        for (unsigned i = 0; i < n; i++) {
            golden_print_sql(out, &stmts[i]);
            if (db && golden_run_sqlite(db, &stmts[i], true, out))
                rc = -1;
        }
        if (db && k.uses_index) {
            crest__buf plan;
            crest__buf_init(&plan, 0);
            if (index_check(k.uses_index, golden_sqlite_plan(db, &stmts[n - 1], &plan), &plan, out))
                rc = -1;
        }
        sqlite3_close(db);
        if (pg && d == crest__dialect_postgres() && run_pg(pg, k.op ? k.op : "", k.uses_index, stmts, n, out))
            rc = -1;
    }
    for (unsigned i = 0; i < 4; i++)
        crest__sql_dispose(&stmts[i]);
    free(copy);
    crest__arena_dispose(&a);
    return rc;
}

static int by_name(const struct dirent **x, const struct dirent **y) { return strcmp((*x)->d_name, (*y)->d_name); }

int main(int argc, char **argv)
{
    bool update = false, on_pg = false;
    if (golden_flags(argc, argv, &update, &on_pg)) {
        fprintf(stderr, "usage: golden_plans DIR [--update] [--pg]\n");
        return 2;
    }
    app = crest_app_new();
    crest_error err = {0};
    if (crest_app_add_model(app, &model_def, &err)) {
        fprintf(stderr, "model: %s\n", err.msg);
        return 1;
    }
    if (golden_add_models(app, rel_defs, CREST_ARRAY_LEN(rel_defs)))
        return 1;
    crest__model *m = crest__app_model(app, "Task");
    crest__arena scope_arena;
    crest__arena_init(&scope_arena, 1024, 0);
    if (golden_reach_init(&scope_arena, app))
        return 1;
    golden_pg *pg = NULL;
    bool synced = !on_pg || ((pg = golden_pg_open()) && !golden_model_sync_pg(m, pg, &err));
    for (size_t i = 0; on_pg && synced && i < CREST_ARRAY_LEN(rel_defs); i++)
        synced = !golden_model_sync_pg(crest__app_model(app, rel_defs[i].name), pg, &err);
    if (!synced) {
        fprintf(stderr, "PostgreSQL: %s\n", err.msg);
        golden_pg_close(pg);
        return 1;
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
        char path[1024];
        snprintf(path, sizeof path, "%s/%s/input", argv[1], name);
        char *input = name[0] == '.' ? NULL : golden_slurp(path);
        if (!input)
            continue;
        int bad = 0;
        for (int k = 0; k < 2; k++) {
            const crest__dialect *d = k ? crest__dialect_postgres() : crest__dialect_sqlite();
            crest__buf out;
            crest__buf_init(&out, 0);
            int rc = run_case(m, input, d, pg, &out);
            crest__buf_append(&out, "", 1);
            bad |= golden_check(argv[1], name, d->name, out.ptr, rc, update);
            crest__buf_dispose(&out);
        }
        if (bad)
            failed++;
        else
            passed++;
        free(input);
    }
    for (int i = 0; i < n; i++)
        free(ents[i]);
    free(ents);
    golden_pg_close(pg);
    crest__arena_dispose(&scope_arena);
    crest_app_free(app);
    printf("%d passed, %d failed\n", passed, failed);
    return failed || passed == 0 ? 1 : 0;
}
