/* test_compile.c — the compiler of src/query (compile.c, dialect.c): the
 * one place identifiers (and DDL's constants) are quoted, every operator of
 * a condition in both dialects, $in as one array bind on PostgreSQL (1000
 * values too), the numbering of PostgreSQL's placeholders across where,
 * limit and offset, the text kept NUL-terminated, and errors that stick.
 * The model and plans are built by hand: the compiler is tested alone. */
#include <stdlib.h>

#include "unit.h"

#include "query/query.h"

typedef struct fixture {
    crest__arena a;
    crest__mfield f[6];
    crest__model m;
} fixture;

static const char *const names[] = {"id", "n", "s", "b", "d", "we\"ird"};
static const crest_field_type types[] = {CREST_F_INT, CREST_F_INT, CREST_F_STRING, CREST_F_BOOL, CREST_F_DATE,
                                         CREST_F_FLOAT};

static int setup(void **state)
{
    fixture *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    crest__arena_init(&x->a, 4096, 0);
    for (unsigned i = 0; i < 6; i++) {
        x->f[i].f.name = names[i];
        x->f[i].f.type = types[i];
        x->f[i].idx = i;
        x->f[i].qname = crest__quote_ident(names[i]);
    }
    x->m.name = "T";
    x->m.table = "t";
    x->m.qtable = crest__quote_ident("t");
    x->m.fields = x->f;
    x->m.nfields = 6;
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fixture *x = *state;
    for (unsigned i = 0; i < 6; i++)
        free(x->f[i].qname);
    free(x->m.qtable);
    crest__arena_dispose(&x->a);
    free(x);
    return 0;
}

static crest__val ival(int64_t i) { return (crest__val){.k = CREST__V_INT, .i = i}; }
static crest__val tval(const char *s) { return (crest__val){.k = CREST__V_TEXT, .s = s, .n = strlen(s)}; }

/* A comparison node on field f with n values. */
static crest__qnode *cmp(fixture *x, unsigned f, crest__op op, const crest__val *v, unsigned n)
{
    crest__qnode *q = crest__arena_calloc(&x->a, 1, sizeof *q);
    q->kind = CREST__Q_CMP;
    q->op = op;
    q->field = &x->f[f];
    q->vals = crest__arena_calloc(&x->a, n ? n : 1, sizeof *q->vals);
    for (unsigned i = 0; i < n; i++)
        q->vals[i] = v[i];
    q->nvals = n;
    return q;
}

/* The condition's text in dialect d (from the arena). */
static const char *where_text(fixture *x, const crest__dialect *d, const crest__qnode *n, unsigned *nbinds)
{
    crest__sql q;
    crest__sql_init(&q, &x->a, d);
    crest__sql_where(&q, n);
    assert_int_equal(q.err, 0);
    if (nbinds)
        *nbinds = q.nbinds;
    const char *s = crest__arena_strndup(&x->a, q.text.ptr, q.text.len);
    crest__sql_dispose(&q);
    return s;
}

static void quote_ident_doubles_quotes(void **state)
{
    fixture *x = *state;
    char *q = crest__quote_ident("a\"b");
    assert_string_equal(q, "\"a\"\"b\"");
    free(q);
    q = crest__quote_ident("");
    assert_string_equal(q, "\"\"");
    free(q);
    q = crest__quote_ident("\"\"");
    assert_string_equal(q, "\"\"\"\"\"\"");
    free(q);
    /* The builder quotes the same way, in both dialects. */
    for (int k = 0; k < 2; k++) {
        crest__sql s;
        crest__sql_init(&s, &x->a, k ? crest__dialect_postgres() : crest__dialect_sqlite());
        crest__sql_ident(&s, "we\"ird");
        assert_bytes_eq(s.text.ptr, s.text.len, "\"we\"\"ird\"");
        crest__sql_dispose(&s);
    }
    /* DDL constants (defaults, CHECK values) double single quotes. */
    crest__sql s;
    crest__sql_init(&s, &x->a, crest__dialect_postgres());
    crest__sql_literal(&s, "it's ''");
    assert_bytes_eq(s.text.ptr, s.text.len, "'it''s '''''");
    crest__sql_dispose(&s);
    /* A field named with a quote is compared by its quoted name. */
    crest__val v = {.k = CREST__V_FLOAT, .f = 1.5};
    assert_string_equal(where_text(x, crest__dialect_postgres(), cmp(x, 5, CREST__OP_GT, &v, 1), NULL),
                        "\"we\"\"ird\" > $1");
}

typedef struct opcase {
    unsigned field;
    crest__op op;
    crest__val v[3];
    unsigned n;
    const char *sqlite, *pg;
    unsigned sqlite_binds, pg_binds;
} opcase;

static void every_op_in_both_dialects(void **state)
{
    fixture *x = *state;
    const crest__val nul = {.k = CREST__V_NULL};
    const opcase cases[] = {
        {1, CREST__OP_EQ, {ival(1)}, 1, "\"n\" = ?", "\"n\" = $1", 1, 1},
        {1, CREST__OP_NE, {ival(1)}, 1, "\"n\" IS NOT ?", "\"n\" IS DISTINCT FROM $1", 1, 1},
        {1, CREST__OP_LT, {ival(1)}, 1, "\"n\" < ?", "\"n\" < $1", 1, 1},
        {1, CREST__OP_GT, {ival(1)}, 1, "\"n\" > ?", "\"n\" > $1", 1, 1},
        {1, CREST__OP_LE, {ival(1)}, 1, "\"n\" <= ?", "\"n\" <= $1", 1, 1},
        {1, CREST__OP_GE, {ival(1)}, 1, "\"n\" >= ?", "\"n\" >= $1", 1, 1},
        {1, CREST__OP_IN, {ival(1), ival(2)}, 2, "(\"n\" IN (?, ?))", "(\"n\" = ANY($1))", 2, 1},
        {1, CREST__OP_IN, {ival(1), nul}, 2, "(\"n\" IN (?) OR \"n\" IS NULL)", "(\"n\" = ANY($1) OR \"n\" IS NULL)", 1, 1},
        {1, CREST__OP_IN, {nul}, 1, "(\"n\" IS NULL)", "(\"n\" IS NULL)", 0, 0},
        {1, CREST__OP_IN, {{0}}, 0, "0", "FALSE", 0, 0},
        {1, CREST__OP_NIN, {ival(1), ival(2)}, 2, "(\"n\" IS NULL OR \"n\" NOT IN (?, ?))",
         "(\"n\" IS NULL OR \"n\" <> ALL($1))", 2, 1},
        {1, CREST__OP_NIN, {ival(1), nul}, 2, "(\"n\" IS NOT NULL AND \"n\" NOT IN (?))",
         "(\"n\" IS NOT NULL AND \"n\" <> ALL($1))", 1, 1},
        {1, CREST__OP_NIN, {{0}}, 0, "1", "TRUE", 0, 0},
        {1, CREST__OP_NULL, {{0}}, 0, "\"n\" IS NULL", "\"n\" IS NULL", 0, 0},
        {1, CREST__OP_NOTNULL, {{0}}, 0, "\"n\" IS NOT NULL", "\"n\" IS NOT NULL", 0, 0},
        {2, CREST__OP_LIKE, {tval("a%")}, 1, "\"s\" GLOB ?", "\"s\" LIKE $1 ESCAPE '\\'", 1, 1},
        {2, CREST__OP_ILIKE, {tval("a%")}, 1, "\"s\" LIKE ? ESCAPE '\\'", "\"s\" ILIKE $1 ESCAPE '\\'", 1, 1},
        {2, CREST__OP_CONTAINS, {tval("a")}, 1, "instr(\"s\", ?) > 0", "strpos(\"s\", $1) > 0", 1, 1},
        {2, CREST__OP_ICONTAINS, {tval("a")}, 1, "\"s\" LIKE ? ESCAPE '\\'", "\"s\" ILIKE $1 ESCAPE '\\'", 1, 1},
    };
    for (size_t i = 0; i < COUNT_OF(cases); i++) {
        const opcase *c = &cases[i];
        crest__qnode *n = cmp(x, c->field, c->op, c->v, c->n);
        unsigned nb;
        print_message("case %zu\n", i);
        assert_string_equal(where_text(x, crest__dialect_sqlite(), n, &nb), c->sqlite);
        assert_i64_eq(nb, c->sqlite_binds);
        assert_string_equal(where_text(x, crest__dialect_postgres(), n, &nb), c->pg);
        assert_i64_eq(nb, c->pg_binds);
    }
}

static void like_patterns_per_dialect(void **state)
{
    fixture *x = *state;
    crest__val v = tval("a\\%_*");
    for (int k = 0; k < 2; k++) {
        const crest__dialect *d = k ? crest__dialect_postgres() : crest__dialect_sqlite();
        crest__sql q;
        crest__sql_init(&q, &x->a, d);
        crest__sql_where(&q, cmp(x, 2, CREST__OP_LIKE, &v, 1));
        crest__sql_add(&q, " AND ");
        crest__sql_where(&q, cmp(x, 2, CREST__OP_ICONTAINS, &v, 1));
        assert_i64_eq(q.nbinds, 2);
        /* $like: % and _ are wildcards, a backslash is itself (GLOB has no
         * escape; PostgreSQL's escape is doubled). */
        assert_bytes_eq(q.binds[0].s, q.binds[0].n, k ? "a\\\\%_*" : "a\\*?[*]");
        /* $icontains: everything literal, between % and %. */
        assert_bytes_eq(q.binds[1].s, q.binds[1].n, "%a\\\\\\%\\_*%");
        crest__sql_dispose(&q);
    }
}

static void logic_nodes(void **state)
{
    fixture *x = *state;
    crest__val one = ival(1);
    crest__qnode *a = cmp(x, 1, CREST__OP_EQ, &one, 1), *b = cmp(x, 1, CREST__OP_GT, &one, 1);
    crest__qnode *and = crest__qnode_and(&x->a, a, b);
    crest__qnode *or = crest__arena_calloc(&x->a, 1, sizeof *or);
    *or = *and;
    or->kind = CREST__Q_OR;
    crest__qnode *not = crest__arena_calloc(&x->a, 1, sizeof *not);
    not->kind = CREST__Q_NOT;
    not->kids = &or;
    not->nkids = 1;
    assert_string_equal(where_text(x, crest__dialect_sqlite(), not, NULL), "NOT coalesce((\"n\" = ? OR \"n\" > ?), 0)");
    assert_string_equal(where_text(x, crest__dialect_postgres(), not, NULL),
                        "NOT coalesce((\"n\" = $1 OR \"n\" > $2), FALSE)");
    assert_string_equal(where_text(x, crest__dialect_sqlite(), NULL, NULL), "1");
    assert_string_equal(where_text(x, crest__dialect_postgres(), NULL, NULL), "TRUE");
}

static void in_1000_values_is_one_bind_on_postgres(void **state)
{
    fixture *x = *state;
    crest__qnode *n = cmp(x, 1, CREST__OP_IN, NULL, 0);
    n->vals = crest__arena_calloc(&x->a, 1000, sizeof *n->vals);
    for (unsigned i = 0; i < 1000; i++)
        n->vals[i] = ival(i);
    n->nvals = 1000;
    crest__sql q;
    crest__sql_init(&q, &x->a, crest__dialect_postgres());
    crest__sql_where(&q, n);
    assert_int_equal(q.err, 0);
    assert_bytes_eq(q.text.ptr, q.text.len, "(\"n\" = ANY($1))");
    assert_i64_eq(q.nbinds, 1);
    assert_non_null(q.lists);
    assert_non_null(q.lists[0]);
    assert_i64_eq(q.lists[0]->k, CREST__V_INT);
    assert_i64_eq(q.lists[0]->n, 1000);
    assert_i64_eq(q.lists[0]->v[999].i, 999);
    assert_i64_eq(q.binds[0].k, CREST__V_NULL);
    crest__sql_dispose(&q);
    /* SQLite: one ? per value, and no list. */
    crest__sql_init(&q, &x->a, crest__dialect_sqlite());
    crest__sql_where(&q, n);
    assert_i64_eq(q.nbinds, 1000);
    assert_null(q.lists);
    crest__sql_dispose(&q);
}

static void postgres_placeholders_count_across_where_limit_offset(void **state)
{
    fixture *x = *state;
    crest__val in[] = {tval("a"), tval("b"), tval("c")}, one = ival(5), yes = {.k = CREST__V_BOOL, .i = 1};
    crest__qnode *w = crest__qnode_and(&x->a, cmp(x, 1, CREST__OP_GT, &one, 1), cmp(x, 2, CREST__OP_IN, in, 3));
    w = crest__qnode_and(&x->a, w, cmp(x, 3, CREST__OP_EQ, &yes, 1));
    crest__plan order = {.nsort = 1, .sort = {{&x->f[0], true}}};
    crest__list_plan p = {.proj = {.m = &x->m}, .where = w, .order = &order, .limit = 10, .offset = 30};
    crest__sql q;
    crest__sql_init(&q, &x->a, crest__dialect_postgres());
    crest__compile_list(&q, &p);
    assert_bytes_eq(q.text.ptr, q.text.len,
                    "SELECT \"id\", \"n\", \"s\", \"b\", \"d\", \"we\"\"ird\" FROM \"t\" WHERE ((\"n\" > $1 AND "
                    "(\"s\" = ANY($2))) AND \"b\" = $3) ORDER BY \"id\" DESC LIMIT $4 OFFSET $5");
    assert_i64_eq(q.nbinds, 5);
    assert_i64_eq(q.binds[2].k, CREST__V_BOOL);
    assert_i64_eq(q.binds[3].i, 10);
    assert_i64_eq(q.binds[4].i, 30);
    assert_int_equal(q.text.ptr[q.text.len], 0); /* NUL-terminated */
    crest__sql_dispose(&q);
    crest__sql_init(&q, &x->a, crest__dialect_sqlite());
    crest__compile_list(&q, &p);
    assert_bytes_eq(q.text.ptr, q.text.len,
                    "SELECT \"id\", \"n\", \"s\", \"b\", \"d\", \"we\"\"ird\" FROM \"t\" WHERE ((\"n\" > ? AND "
                    "(\"s\" IN (?, ?, ?))) AND \"b\" = ?) ORDER BY \"id\" DESC LIMIT ? OFFSET ?");
    assert_i64_eq(q.nbinds, 7);
    crest__sql_dispose(&q);
}

static void writes_and_transactions(void **state)
{
    fixture *x = *state;
    crest__val vals[6] = {{0}, ival(1), tval("x")};
    unsigned char set[6] = {0, 1, 1};
    crest__insert_plan ip = {.m = &x->m, .vals = vals, .set = set};
    crest__update_plan up = {.m = &x->m, .vals = vals, .set = set, .id = 7};
    crest__delete_plan dp = {.m = &x->m, .id = 7};
    struct {
        const crest__dialect *d;
        const char *ins, *upd, *del;
    } want[] = {
        {crest__dialect_sqlite(),
         "INSERT INTO \"t\" (\"n\", \"s\", \"crest_version\") VALUES (?, ?, (random() & 4503599627370495))",
         "UPDATE \"t\" SET \"n\" = ?, \"s\" = ?, \"crest_version\" = \"crest_version\" + 1 WHERE \"id\" = ?",
         "DELETE FROM \"t\" WHERE \"id\" = ?"},
        {crest__dialect_postgres(),
         "INSERT INTO \"t\" (\"n\", \"s\", \"crest_version\") VALUES ($1, $2, (floor(random() * "
         "4503599627370496)::bigint)) RETURNING \"id\"",
         "UPDATE \"t\" SET \"n\" = $1, \"s\" = $2, \"crest_version\" = \"crest_version\" + 1 WHERE \"id\" = $3",
         "DELETE FROM \"t\" WHERE \"id\" = $1"},
    };
    for (size_t i = 0; i < COUNT_OF(want); i++) {
        crest__sql q;
        crest__sql_init(&q, &x->a, want[i].d);
        crest__compile_insert(&q, &ip);
        assert_bytes_eq(q.text.ptr, q.text.len, want[i].ins);
        crest__sql_dispose(&q);
        crest__sql_init(&q, &x->a, want[i].d);
        crest__compile_update(&q, &up);
        assert_bytes_eq(q.text.ptr, q.text.len, want[i].upd);
        assert_i64_eq(q.binds[2].i, 7);
        crest__sql_dispose(&q);
        crest__sql_init(&q, &x->a, want[i].d);
        crest__compile_delete(&q, &dp);
        assert_bytes_eq(q.text.ptr, q.text.len, want[i].del);
        crest__sql_dispose(&q);
    }
    /* If-Match: the version check in the write's own statement; an
     * update with nothing to set only counts the row at that version. */
    int64_t vs[2] = {41, 42};
    unsigned char none[6] = {0};
    crest__update_plan cu = {.m = &x->m, .vals = vals, .set = none, .id = 7, .expect = {vs, 2}};
    crest__delete_plan cd = {.m = &x->m, .id = 7, .expect = {vs, 1}};
    crest__sql q;
    crest__sql_init(&q, &x->a, crest__dialect_postgres());
    crest__compile_update(&q, &cu);
    assert_bytes_eq(q.text.ptr, q.text.len,
                    "UPDATE \"t\" SET \"crest_version\" = \"crest_version\" WHERE \"id\" = $1 AND "
                    "\"crest_version\" IN ($2, $3)");
    assert_i64_eq(q.nbinds, 3);
    assert_i64_eq(q.binds[2].i, 42);
    crest__sql_dispose(&q);
    crest__sql_init(&q, &x->a, crest__dialect_sqlite());
    crest__compile_delete(&q, &cd);
    assert_bytes_eq(q.text.ptr, q.text.len, "DELETE FROM \"t\" WHERE \"id\" = ? AND \"crest_version\" = ?");
    assert_i64_eq(q.binds[1].i, 41);
    crest__sql_dispose(&q);
    /* A read with the version: last, after the computed columns. */
    crest__read_plan rp = {.proj = {.m = &x->m, .version = true}, .id = 3};
    crest__sql_init(&q, &x->a, crest__dialect_sqlite());
    crest__compile_read(&q, &rp);
    assert_non_null(strstr(q.text.ptr, "\"we\"\"ird\", \"crest_version\" FROM \"t\" WHERE \"id\" = ?"));
    crest__sql_dispose(&q);
    assert_string_equal(crest__txn_sql(crest__dialect_sqlite(), CREST__TX_BEGIN_WRITE), "BEGIN IMMEDIATE");
    assert_string_equal(crest__txn_sql(crest__dialect_postgres(), CREST__TX_BEGIN_WRITE), "BEGIN");
    assert_string_equal(crest__txn_sql(crest__dialect_postgres(), CREST__TX_ROLLBACK), "ROLLBACK");
    assert_ptr_equal(crest__dialect_named("postgres"), crest__dialect_postgres());
    assert_ptr_equal(crest__dialect_named("sqlite"), crest__dialect_sqlite());
    assert_null(crest__dialect_named("mysql"));
}

static void ref_names_a_bind_again(void **state)
{
    fixture *x = *state;
    for (int k = 0; k < 2; k++) {
        crest__sql q;
        crest__sql_init(&q, &x->a, k ? crest__dialect_postgres() : crest__dialect_sqlite());
        crest__compile_primary_key(&q, "t");
        assert_i64_eq(q.nbinds, 1);
        assert_bytes_eq(q.binds[0].s, q.binds[0].n, "t");
        assert_non_null(strstr(q.text.ptr, k ? "$1" : "pragma_table_info(?1) WHERE pk > 0"));
        assert_null(strstr(q.text.ptr, "{1}"));
        crest__sql_dispose(&q);
    }
}

static void out_of_memory_sticks(void **state)
{
    (void)state;
    crest__arena small;
    crest__arena_init(&small, 64, 64); /* the binds cannot be allocated */
    crest__sql q;
    crest__sql_init(&q, &small, crest__dialect_postgres());
    crest__sql_add(&q, "SELECT ");
    crest__sql_bind(&q, ival(1));
    assert_int_equal(q.err, CREST_ENOMEM);
    crest__sql_add(&q, " more");
    assert_int_equal(q.err, CREST_ENOMEM);
    crest__sql_dispose(&q);
    crest__arena_dispose(&small);
}

/* count=estimated reads the top plan node's "Plan Rows" of PostgreSQL's
 * EXPLAIN (FORMAT JSON) answer; anything else is no estimate. */
static void estimate_of_explain_json(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        int rc;
        int64_t rows;
    } cases[] = {
        {"[{\"Plan\": {\"Node Type\": \"Seq Scan\", \"Plan Rows\": 1234, \"Plan Width\": 4}}]", 0, 1234},
        {"[\n  {\n    \"Plan\": {\n      \"Plan Rows\": 0\n    }\n  }\n]", 0, 0},
        {"[{\"Plan\": {\"Plan Rows\": 49.6}}]", 0, 50},
        {"[{\"Plan\": {\"Plan Rows\": 8000000000000000000}}]", 0, 8000000000000000000},
        {"[{\"Plan\": {\"Plan Rows\": 1e19}}]", -1, 0},
        {"[{\"Plan\": {\"Plan Rows\": -1}}]", -1, 0},
        {"[{\"Plan\": {\"Plan Rows\": \"12\"}}]", -1, 0},
        {"[{\"Plan\": {}}]", -1, 0},
        {"[]", -1, 0},
        {"{\"Plan\": {\"Plan Rows\": 3}}", -1, 0},
        {"not json", -1, 0},
    };
    for (size_t i = 0; i < COUNT_OF(cases); i++) {
        int64_t rows = -7;
        int rc = crest__estimate_of(cases[i].json, strlen(cases[i].json), &rows);
        if (rc != cases[i].rc || (rc == 0 && rows != cases[i].rows)) {
            print_error("%s: rc %d rows %lld\n", cases[i].json, rc, (long long)rows);
            fail();
        }
    }
    int64_t rows;
    assert_int_equal(crest__estimate_of(NULL, 0, &rows), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(quote_ident_doubles_quotes, setup, teardown),
        cmocka_unit_test_setup_teardown(every_op_in_both_dialects, setup, teardown),
        cmocka_unit_test_setup_teardown(like_patterns_per_dialect, setup, teardown),
        cmocka_unit_test_setup_teardown(logic_nodes, setup, teardown),
        cmocka_unit_test_setup_teardown(in_1000_values_is_one_bind_on_postgres, setup, teardown),
        cmocka_unit_test_setup_teardown(postgres_placeholders_count_across_where_limit_offset, setup, teardown),
        cmocka_unit_test_setup_teardown(writes_and_transactions, setup, teardown),
        cmocka_unit_test_setup_teardown(ref_names_a_bind_again, setup, teardown),
        cmocka_unit_test(out_of_memory_sticks),
        cmocka_unit_test(estimate_of_explain_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
