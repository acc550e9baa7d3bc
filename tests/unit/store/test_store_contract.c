/* test_store_contract.c — the contract every store (src/store/store.h) must
 * keep, on synchronous connections: open and connect, statements and their
 * binds, results and their cells, changes, the statement cache, numbered
 * placeholders, transactions, failure kinds, describe and introspection.
 * Written only against `const crest__store_vt *` and the types of store.h;
 * it runs once per store of contract.c's table (SQLite now, PostgreSQL
 * next). Sessions: test_store_contract_sess.c. */
#include <stdlib.h>

#include "store/contract.h"

/* ==== open, connect ==== */

static void open_connect_disconnect_close(void **state)
{
    (void)state;
    crest__conn *c2 = NULL;
    crest_error err = {0};
    assert_int_equal(T.vt->connect(T.s, &c2, &err), 0);
    assert_non_null(c2);
    assert_ptr_not_equal(c2, T.c);
    /* Both see the same database. */
    ok("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)", NULL, 0, 0);
    crest__val v[] = {vint(1), vtext("a")};
    ok(P("INSERT INTO t (id, name) VALUES (?, ?)"), v, 2, 0);
    assert_i64_eq(count_on(c2, "t"), 1);
    T.vt->disconnect(c2);
    /* A store is the config it was opened with. */
    assert_ptr_equal(T.s->vt, T.vt);
    assert_string_equal(T.vt->name, T.fx->name);
}

static void a_missing_database_fails_cleanly(void **state)
{
    (void)state;
    crest__store_config cfg = {0};
    T.fx->missing(&cfg);
    crest__store *s = NULL;
    crest_error err = {0};
    int rc = T.vt->open(&cfg, &s, &err);
    if (rc == 0) {
        /* Opening may be lazy: then connecting and a worker fail. */
        crest__conn *c = NULL;
        assert_true(T.vt->connect(s, &c, &err) < 0);
        assert_null(c);
        assert_true(err.msg[0] != 0);
        crest__store_worker *w = NULL;
        memset(&err, 0, sizeof err);
        assert_true(T.vt->worker_init(s, NULL, &w, &err) < 0);
        assert_null(w);
        assert_true(err.msg[0] != 0);
        T.vt->close(s);
    } else {
        assert_true(rc < 0);
        assert_true(err.msg[0] != 0);
    }
    /* Nothing was made (create is false): a second try still fails. */
    crest__store *s2 = NULL;
    crest__conn *c2 = NULL;
    if (T.vt->open(&cfg, &s2, &err) == 0) {
        assert_true(T.vt->connect(s2, &c2, &err) < 0);
        T.vt->close(s2);
    }
}

/* ==== exec: binds, cells, changes ==== */

static void exec_binds_every_value_kind(void **state)
{
    (void)state;
    ok("CREATE TABLE kinds (id INTEGER PRIMARY KEY, z TEXT, b BOOLEAN, i BIGINT, f DOUBLE PRECISION, t TEXT,"
       " d DATE, dt TIMESTAMPTZ, j JSON, u UUID)",
       NULL, 0, 0);
    static const char *const texts[] = {"h\xc3\xa9llo, world", "2024-02-29", "2024-02-29T12:34:56.789Z",
                                        "{\"a\":[1,2]}", "123e4567-e89b-42d3-a456-426614174000"};
    crest__val v[10] = {
        vint(1),
        vnull(),
        {.k = CREST__V_BOOL, .i = 1},
        vint(INT64_C(9007199254740993)), /* 2^53 + 1: not a double */
        {.k = CREST__V_FLOAT, .f = -2.5},
        vtext(texts[0]),
        {.k = CREST__V_DATE, .s = texts[1], .n = strlen(texts[1])},
        {.k = CREST__V_DATETIME, .s = texts[2], .n = strlen(texts[2])},
        {.k = CREST__V_JSON, .s = texts[3], .n = strlen(texts[3])},
        {.k = CREST__V_UUID, .s = texts[4], .n = strlen(texts[4])},
    };
    const char *ins = P("INSERT INTO kinds (id, z, b, i, f, t, d, dt, j, u) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    crest__rows *w = ok(ins, v, 10, 0);
    assert_i64_eq(w->changes, 1);
    assert_int_equal(w->ncols, 0);
    assert_i64_eq(w->nrows, 0);
    /* A second row: false, and NULL in every column. */
    crest__val v2[10] = {vint(2), vnull(), {.k = CREST__V_BOOL, .i = 0}};
    for (unsigned i = 3; i < 10; i++)
        v2[i] = vnull();
    ok(ins, v2, 10, 0);

    crest__rows *r = ok("SELECT z, b, i, f, t, d, dt, j, u FROM kinds ORDER BY id", NULL, 0, CREST__QF_READ);
    assert_i64_eq(r->nrows, 2);
    assert_int_equal(r->ncols, 9);
    static const char *const names[] = {"z", "b", "i", "f", "t", "d", "dt", "j", "u"};
    for (unsigned c = 0; c < 9; c++) {
        const crest__cell *cell = crest__rows_cell(r, 0, c);
        crest__vkind bound = v[c + 1].k;
        assert_string_equal(r->names[c], names[c]);
        assert_cell_kind(cell, T.fx->cell_of[bound]);
        switch (cell->k) {
        case CREST__V_BOOL:
        case CREST__V_INT:
            assert_i64_eq(cell->v.i, v[c + 1].i);
            break;
        case CREST__V_FLOAT:
            assert_true(cell->v.f == -2.5);
            break;
        case CREST__V_NULL:
            break;
        default:
            assert_int_equal(cell->v.s[cell->n], 0); /* NUL-terminated */
            if (T.fx->text_verbatim)
                assert_bytes_eq(cell->v.s, cell->n, texts[c - 4]);
        }
        /* Row 2: false, then NULLs. */
        const crest__cell *c2 = crest__rows_cell(r, 1, c);
        if (c == 1) {
            assert_cell_kind(c2, T.fx->cell_of[CREST__V_BOOL]);
            assert_i64_eq(c2->v.i, 0);
        } else {
            assert_cell_kind(c2, CREST__V_NULL);
        }
    }
    /* The rows are the caller's: they outlive the statement, its cache,
     * the connection and the store (ASan would see a dangling cell). */
    T.vt->disconnect(T.c);
    T.c = NULL;
    T.vt->close(T.s);
    T.s = NULL;
    assert_cell_text(r, 0, 4, texts[0]);
    assert_string_equal(r->names[8], "u");
}

/* SELECT id, name FROM t into an arena of at most limit bytes: NOMEM, and
 * nothing of the failure left unset. */
static void nomem_in_an_arena_of(size_t limit)
{
    crest__arena small;
    crest__arena_init(&small, 256, limit);
    crest__query q = Q("SELECT id, name FROM t", NULL, 0, CREST__QF_READ);
    crest__rows *r = NULL;
    crest__dberr e;
    memset(&e, 0x5a, sizeof e);
    assert_int_not_equal(T.vt->exec(T.c, &q, &small, &r, &e), 0);
    assert_null(r);
    assert_kind(&e, CREST__DBERR_NOMEM);
    assert_null(e.columns);
    assert_null(e.constraint);
    assert_true(e.detail == NULL || strlen(e.detail) < 4096);
    crest__arena_dispose(&small);
}

static void results_go_into_the_callers_arena(void **state)
{
    (void)state;
    ok("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)", NULL, 0, 0);
    char big[2048];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = 0;
    crest__val v[] = {vint(1), vtext(big)};
    ok(P("INSERT INTO t (id, name) VALUES (?, ?)"), v, 2, 0);
    /* An arena that cannot hold the result: NOMEM, the failure fully set. */
    nomem_in_an_arena_of(1024);
    /* The statement is usable after that. */
    crest__rows *r = ok("SELECT id, name FROM t", NULL, 0, CREST__QF_READ);
    assert_cell_text(r, 0, 1, big);
}

/* Regression (src/store/sqlite.c, run): when the result itself could not
 * be allocated, the failure was NOMEM with its other fields left as the
 * caller's memory had them (columns, constraint, detail: wild pointers). */
static void nomem_left_the_failure_partly_unset(void **state)
{
    (void)state;
    ok("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)", NULL, 0, 0);
    ok("INSERT INTO t (id, name) VALUES (1, 'one')", NULL, 0, 0);
    nomem_in_an_arena_of(1);
    assert_cell_text(ok("SELECT id, name FROM t", NULL, 0, CREST__QF_READ), 0, 1, "one");
}

static void exec_reports_changes_and_last_id(void **state)
{
    (void)state;
    char ddl[160];
    snprintf(ddl, sizeof ddl, "CREATE TABLE w (id %s, n INTEGER)", T.fx->id_pk);
    ok(ddl, NULL, 0, 0);
    crest__val v[] = {vint(10), vint(20), vint(30)};
    crest__rows *r = ok(P("INSERT INTO w (n) VALUES (?), (?), (?)"), v, 3, 0);
    assert_i64_eq(r->changes, 3);
    crest__rows *m = ok("SELECT max(id) FROM w", NULL, 0, CREST__QF_READ);
    if (T.fx->last_id)
        assert_i64_eq(r->last_id, crest__rows_cell(m, 0, 0)->v.i);
    r = ok(P("UPDATE w SET n = n + 1 WHERE n > ?"), v, 1, 0);
    assert_i64_eq(r->changes, 2);
    r = ok(P("DELETE FROM w WHERE n = ?"), (crest__val[]){vint(21)}, 1, CREST__QF_DELETE);
    assert_i64_eq(r->changes, 1);
    r = ok(P("UPDATE w SET n = 0 WHERE n = ?"), (crest__val[]){vint(-1)}, 1, 0);
    assert_i64_eq(r->changes, 0);
    assert_i64_eq(count_of("w"), 2);
}

/* Regression (src/store/sqlite.c, run): `changes` and `last_id` were the
 * connection's, so a read or a DDL statement after a write reported that
 * write's counts — another request's, on a worker's shared connection —
 * and an UPDATE reported the id of an earlier INSERT. crest_rows_changes
 * and crest_rows_last_id promise the statement's own. */
static void changes_and_last_id_were_stale_after_a_write(void **state)
{
    (void)state;
    char ddl[160];
    snprintf(ddl, sizeof ddl, "CREATE TABLE w (id %s, n INTEGER)", T.fx->id_pk);
    ok(ddl, NULL, 0, 0);
    crest__val v[] = {vint(1), vint(2)};
    crest__rows *r = ok(P("INSERT INTO w (n) VALUES (?), (?)"), v, 2, 0);
    assert_i64_eq(r->changes, 2);
    if (T.fx->last_id)
        assert_true(r->last_id > 0);
    int64_t id = r->last_id;
    r = ok("SELECT n FROM w ORDER BY n", NULL, 0, CREST__QF_READ);
    assert_i64_eq(r->nrows, 2);
    assert_i64_eq(r->changes, 0);
    assert_i64_eq(r->last_id, 0);
    if (T.fx->last_id_sql) /* SQL still reads the connection's own */
        assert_cell_int(ok(T.fx->last_id_sql, NULL, 0, CREST__QF_READ), 0, 0, id);
    r = ok("UPDATE w SET n = n * 10", NULL, 0, 0);
    assert_i64_eq(r->changes, 2);
    assert_i64_eq(r->last_id, 0); /* it inserted nothing */
    r = ok("CREATE TABLE other (id INTEGER PRIMARY KEY)", NULL, 0, 0);
    assert_i64_eq(r->changes, 0);
    assert_i64_eq(r->last_id, 0);
    /* An INSERT that inserts nothing. */
    r = ok("INSERT INTO w (n) SELECT n FROM w WHERE n < 0", NULL, 0, 0);
    assert_i64_eq(r->changes, 0);
    assert_i64_eq(r->last_id, 0);
    if (T.fx->last_id_sql)
        assert_cell_int(ok(T.fx->last_id_sql, NULL, 0, CREST__QF_READ), 0, 0, id);
}

static void a_result_names_its_columns_even_when_empty(void **state)
{
    (void)state;
    ok("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n INTEGER)", NULL, 0, 0);
    crest__rows *r = ok("SELECT id AS \"the id\", name, n + 1 AS m FROM t", NULL, 0, CREST__QF_READ);
    assert_i64_eq(r->nrows, 0);
    assert_int_equal(r->ncols, 3);
    assert_string_equal(r->names[0], "the id");
    assert_string_equal(r->names[1], "name");
    assert_string_equal(r->names[2], "m");
}

/* ==== max_rows, FIRST, NOCACHE, the statement cache ==== */

static void max_rows_keeps_that_many(void **state)
{
    (void)state;
    setup_five();
    crest__query q = Q("SELECT id, name FROM t ORDER BY id", NULL, 0, CREST__QF_READ);
    q.max_rows = 2;
    crest__rows *r = run_ok(&q);
    assert_i64_eq(r->nrows, 2);
    assert_cell_int(r, 0, 0, 1);
    assert_cell_text(r, 1, 1, "two");
    q.max_rows = 10;
    assert_i64_eq(run_ok(&q)->nrows, 5);
    q.max_rows = 0;
    assert_i64_eq(run_ok(&q)->nrows, 5);
}

static void first_keeps_one_row_but_runs_to_the_end(void **state)
{
    (void)state;
    setup_five();
    crest__rows *r = ok("INSERT INTO t (id, name) VALUES (6, 'six'), (7, 'seven'), (8, 'eight') RETURNING id, name",
                        NULL, 0, CREST__QF_FIRST);
    assert_i64_eq(r->nrows, 1);
    assert_cell_int(r, 0, 0, 6);
    assert_cell_text(r, 0, 1, "six");
    assert_i64_eq(r->changes, 3);
    assert_i64_eq(count_of("t"), 8);
    /* max_rows too: the rest still run. */
    crest__query q = Q("UPDATE t SET n = 0 WHERE id > 5 RETURNING id", NULL, 0, 0);
    q.max_rows = 1;
    r = run_ok(&q);
    assert_i64_eq(r->nrows, 1);
    assert_i64_eq(r->changes, 3);
    r = ok("SELECT count(*) FROM t WHERE n = 0", NULL, 0, CREST__QF_READ);
    assert_cell_int(r, 0, 0, 3);
}

static void nocache_runs_once(void **state)
{
    (void)state;
    setup_five();
    const char *sql = P("SELECT name FROM t WHERE id = ?");
    for (int64_t id = 1; id <= 3; id++) {
        crest__val v = vint(id);
        crest__rows *r = ok(sql, &v, 1, CREST__QF_READ | CREST__QF_NOCACHE);
        assert_i64_eq(r->nrows, 1);
        assert_cell_text(r, 0, 0, id == 1 ? "one" : id == 2 ? "two" : "three");
    }
    crest__dberr e = fails("SELEC name FROM t", NULL, 0, CREST__QF_NOCACHE);
    assert_kind(&e, CREST__DBERR_OTHER);
    assert_non_null(e.detail);
}

static void the_same_text_twice_binds_afresh(void **state)
{
    (void)state;
    setup_five();
    const char *sql = P("SELECT id, name FROM t WHERE id >= ? ORDER BY id");
    crest__val v = vint(4);
    crest__rows *a = ok(sql, &v, 1, CREST__QF_READ);
    v = vint(2);
    crest__rows *b = ok(sql, &v, 1, CREST__QF_READ);
    assert_i64_eq(a->nrows, 2);
    assert_i64_eq(b->nrows, 4);
    assert_cell_text(a, 0, 1, "four"); /* the first result is untouched by the second */
    assert_cell_text(b, 0, 1, "two");
    /* A statement that failed is usable again, its values not kept. */
    const char *ins = P("INSERT INTO t (id, name) VALUES (?, ?)");
    crest__val dup[] = {vint(1), vtext("again")};
    crest__dberr e = fails(ins, dup, 2, 0);
    assert_kind(&e, CREST__DBERR_UNIQUE);
    crest__val fresh[] = {vint(9), vtext("nine")};
    assert_i64_eq(ok(ins, fresh, 2, 0)->changes, 1);
    crest__rows *r = ok(P("SELECT name FROM t WHERE id = ?"), (crest__val[]){vint(9)}, 1, CREST__QF_READ);
    assert_cell_text(r, 0, 0, "nine");
}

/* Regression (src/store/sqlite.c, run): the result's columns were read
 * before the first step, from the cached statement as prepared for the
 * old table; the step then prepared it again for the new one, so `SELECT *`
 * gave the old number of columns under the old names. A dropped table
 * fails cleanly. */
static void columns_were_read_before_a_cached_statement_was_reprepared(void **state)
{
    (void)state;
    ok("CREATE TABLE rc (id INTEGER PRIMARY KEY, name TEXT)", NULL, 0, 0);
    ok("INSERT INTO rc (id, name) VALUES (1, 'a')", NULL, 0, 0);
    static const char sel[] = "SELECT * FROM rc ORDER BY id";
    crest__rows *r = ok(sel, NULL, 0, CREST__QF_READ);
    assert_int_equal(r->ncols, 2);
    ok("DROP TABLE rc", NULL, 0, 0);
    crest__dberr e = fails(sel, NULL, 0, CREST__QF_READ);
    assert_kind(&e, CREST__DBERR_OTHER);
    ok("CREATE TABLE rc (id INTEGER PRIMARY KEY, label TEXT, n INTEGER)", NULL, 0, 0);
    ok("INSERT INTO rc (id, label, n) VALUES (2, 'b', 3)", NULL, 0, 0);
    r = ok(sel, NULL, 0, CREST__QF_READ);
    assert_int_equal(r->ncols, 3);
    assert_string_equal(r->names[1], "label");
    assert_string_equal(r->names[2], "n");
    assert_i64_eq(r->nrows, 1);
    assert_cell_text(r, 0, 1, "b");
    assert_cell_int(r, 0, 2, 3);
    /* Fewer columns than before. */
    ok("DROP TABLE rc", NULL, 0, 0);
    ok("CREATE TABLE rc (id INTEGER PRIMARY KEY)", NULL, 0, 0);
    r = ok(sel, NULL, 0, CREST__QF_READ);
    assert_int_equal(r->ncols, 1);
    assert_string_equal(r->names[0], "id");
    assert_i64_eq(r->nrows, 0);
}

/* ==== numbered placeholders ==== */

static void numbered_binds_by_number(void **state)
{
    (void)state;
    setup_five();
    crest__val v[] = {vtext("ten"), vint(10)};
    ok("INSERT INTO t (id, name, n) VALUES ($2, $1, $2)", v, 2, CREST__QF_NUMBERED);
    crest__rows *r = ok("SELECT id, name, n FROM t WHERE name = $1", v, 1, CREST__QF_READ | CREST__QF_NUMBERED);
    assert_i64_eq(r->nrows, 1);
    assert_cell_int(r, 0, 0, 10);
    assert_cell_text(r, 0, 1, "ten");
    assert_cell_int(r, 0, 2, 10);
}

static void numbered_params_not_covered_fail(void **state)
{
    (void)state;
    setup_five();
    crest__val v[] = {vint(1)};
    crest__dberr e = fails("SELECT name FROM t WHERE id = $1 OR id = $2", v, 1, CREST__QF_READ | CREST__QF_NUMBERED);
    assert_kind(&e, CREST__DBERR_OTHER);
    e = fails("SELECT name FROM t WHERE id = $2", v, 1, CREST__QF_READ | CREST__QF_NUMBERED);
    assert_kind(&e, CREST__DBERR_OTHER);
    /* Covered: fine (the same statement text as above). */
    crest__val v2[] = {vint(1), vint(2)};
    assert_i64_eq(ok("SELECT name FROM t WHERE id = $1 OR id = $2", v2, 2, CREST__QF_READ | CREST__QF_NUMBERED)->nrows,
                  2);
}

/* ==== lists ==== */

/* Regression (src/store/postgres_value.c): the list a where's $in / $nin
 * binds as one parameter (`= ANY($1)`) never reached PostgreSQL: crest__query
 * carried no lists, so it was bound as NULL and every $in matched nothing.
 * Each kind, and text an array's literal must quote, on a connection and in
 * a session on a worker's loop. */
static void a_list_binds_as_one_array_parameter(void **state)
{
    (void)state;
    if (!T.fx->list_binds)
        skip(); /* how a dialect that binds $in as an array gets its list to the store */
    setup_five();
    crest__val ins[] = {vint(6), vtext("say \"hi\", \\o/ {x}"), vint(6)};
    ok(P("INSERT INTO t (id, name, n, x, b) VALUES (?, ?, ?, 0.5, TRUE)"), ins, 3, 0);
    crest__val ids[] = {vint(2), vint(4), vint(99)}, names[] = {vtext("one"), ins[1]};
    crest__val xs[] = {{.k = CREST__V_FLOAT, .f = 0.5}}, bs[] = {{.k = CREST__V_BOOL, .i = 1}};
    const crest__bindlist l_ids = {CREST__V_INT, ids, 3}, l_names = {CREST__V_TEXT, names, 2},
                          l_xs = {CREST__V_FLOAT, xs, 1}, l_bs = {CREST__V_BOOL, bs, 1};
    const struct {
        const char *sql;
        const crest__bindlist *l;
        int64_t first, second; /* the two ids it finds */
    } cases[] = {
        {"SELECT id FROM t WHERE id = ANY(?) ORDER BY id", &l_ids, 2, 4},
        {"SELECT id FROM t WHERE name = ANY(?) ORDER BY id", &l_names, 1, 6},
        {"SELECT id FROM t WHERE x = ANY(?) OR id = 1 ORDER BY id", &l_xs, 1, 6},
        {"SELECT id FROM t WHERE b = ANY(?) OR id = 3 ORDER BY id", &l_bs, 3, 6},
    };
    crest__store_worker *w = worker_of(T.s);
    crest__sess *ss = sess_on(T.s, w, 0, NULL);
    for (size_t i = 0; i < COUNT_OF(cases); i++) {
        const crest__bindlist *lists[] = {cases[i].l};
        crest__val nul = vnull();
        crest__query q = Q(P(cases[i].sql), &nul, 1, CREST__QF_READ);
        q.lists = lists;
        crest__rows *r = run_ok(&q);
        assert_i64_eq(r->nrows, 2);
        assert_cell_int(r, 0, 0, cases[i].first);
        assert_cell_int(r, 1, 0, cases[i].second);
        done d;
        assert_int_equal(start_q(ss, &q, &d), 1);
        assert_non_null(d.rows);
        assert_i64_eq(d.rows->nrows, 2);
        assert_cell_int(d.rows, 1, 0, cases[i].second);
    }
    T.vt->sess_end(ss, NULL);
    worker_done(w);
}

/* ==== transactions ==== */

static void begin_commit_persists_rollback_discards(void **state)
{
    (void)state;
    setup_five();
    crest__conn *c2 = NULL;
    crest_error err = {0};
    assert_int_equal(T.vt->connect(T.s, &c2, &err), 0);
    crest__dberr e = {0};
    assert_int_equal(T.vt->begin(T.c, true, &e, &T.a), 0);
    ok("INSERT INTO t (id, name) VALUES (6, 'six')", NULL, 0, 0);
    assert_i64_eq(count_of("t"), 6);
    assert_int_equal(T.vt->commit(T.c, &e, &T.a), 0);
    assert_i64_eq(count_on(c2, "t"), 6);

    assert_int_equal(T.vt->begin(T.c, true, &e, &T.a), 0);
    ok("DELETE FROM t", NULL, 0, CREST__QF_DELETE);
    assert_i64_eq(count_of("t"), 0);
    T.vt->rollback(T.c);
    assert_i64_eq(count_of("t"), 6);
    assert_i64_eq(count_on(c2, "t"), 6);
    T.vt->rollback(T.c); /* none open: nothing happens */
    /* A read transaction. */
    assert_int_equal(T.vt->begin(c2, false, &e, &T.a), 0);
    assert_i64_eq(count_on(c2, "t"), 6);
    assert_int_equal(T.vt->commit(c2, &e, &T.a), 0);
    T.vt->disconnect(c2);
}

/* ==== failure kinds ==== */

static void setup_keys(void)
{
    ok("CREATE TABLE p (id INTEGER PRIMARY KEY, code TEXT UNIQUE)", NULL, 0, 0);
    ok("CREATE TABLE c (id INTEGER PRIMARY KEY, a TEXT, b TEXT, pid INTEGER REFERENCES p (id),"
       " n INTEGER NOT NULL DEFAULT 0 CHECK (n >= 0), UNIQUE (a, b))",
       NULL, 0, 0);
    ok("INSERT INTO p (id, code) VALUES (1, 'p1'), (2, 'p2')", NULL, 0, 0);
    ok("INSERT INTO c (id, a, b, pid) VALUES (1, 'x', 'y', 1)", NULL, 0, 0);
}

static void a_unique_key_names_its_columns(void **state)
{
    (void)state;
    setup_keys();
    crest__val v[] = {vint(2), vtext("x"), vtext("y")};
    crest__dberr e = fails(P("INSERT INTO c (id, a, b) VALUES (?, ?, ?)"), v, 3, 0);
    assert_kind(&e, CREST__DBERR_UNIQUE);
    assert_non_null(e.columns);
    assert_string_equal(e.columns, "a");
    assert_string_equal(e.columns + 2, "b");
    assert_string_equal(e.columns + 4, "");
    e = fails("INSERT INTO c (id, a, b) VALUES (1, 'new', 'new')", NULL, 0, 0);
    assert_kind(&e, CREST__DBERR_UNIQUE);
    assert_non_null(e.columns);
    assert_string_equal(e.columns, "id");
    assert_string_equal(e.columns + 3, "");
}

static void a_missing_parent_is_a_foreign_key_failure(void **state)
{
    (void)state;
    setup_keys();
    crest__val v[] = {vint(2), vint(99)};
    crest__dberr e = fails(P("INSERT INTO c (id, pid) VALUES (?, ?)"), v, 2, 0);
    assert_kind(&e, CREST__DBERR_FOREIGN_KEY);
    assert_i64_eq(count_of("c"), 1);
}

static void deleting_a_referenced_row_is_referenced(void **state)
{
    (void)state;
    setup_keys();
    crest__val v = vint(1);
    crest__dberr e = fails(P("DELETE FROM p WHERE id = ?"), &v, 1, CREST__QF_DELETE);
    assert_kind(&e, CREST__DBERR_REFERENCED);
    /* Unflagged, the same failure is the key's. */
    e = fails(P("DELETE FROM p WHERE id = ?"), &v, 1, 0);
    assert_kind(&e, CREST__DBERR_FOREIGN_KEY);
    /* A row nobody refers to goes. */
    v = vint(2);
    assert_i64_eq(ok(P("DELETE FROM p WHERE id = ?"), &v, 1, CREST__QF_DELETE)->changes, 1);
}

static void not_null_and_check_failures(void **state)
{
    (void)state;
    setup_keys();
    crest__val v[] = {vint(2), vnull()};
    crest__dberr e = fails(P("INSERT INTO c (id, n) VALUES (?, ?)"), v, 2, 0);
    assert_kind(&e, CREST__DBERR_NOT_NULL);
    v[1] = vint(-1);
    e = fails(P("INSERT INTO c (id, n) VALUES (?, ?)"), v, 2, 0);
    assert_kind(&e, CREST__DBERR_CHECK);
    e = fails("UPDATE c SET n = -5", NULL, 0, 0);
    assert_kind(&e, CREST__DBERR_CHECK);
    assert_i64_eq(count_of("c"), 1);
}

static void a_raise_of_a_crest_status_is_raised(void **state)
{
    (void)state;
    ok("CREATE TABLE r (id INTEGER PRIMARY KEY, n INTEGER)", NULL, 0, 0);
    ok("INSERT INTO r (id, n) VALUES (1, 7), (2, 8), (3, 9)", NULL, 0, 0);
    script(T.fx->raise_setup);
    crest__dberr e = fails("DELETE FROM r WHERE n = 7", NULL, 0, CREST__QF_DELETE);
    assert_kind(&e, CREST__DBERR_RAISED);
    assert_int_equal(e.status, 409);
    assert_non_null(e.detail);
    assert_string_equal(e.detail, "Seven is kept");
    /* A plain raise is a rule of the table, not an answer. */
    e = fails("DELETE FROM r WHERE n = 8", NULL, 0, CREST__QF_DELETE);
    assert_kind(&e, CREST__DBERR_CONSTRAINT);
    assert_i64_eq(ok("DELETE FROM r WHERE n = 9", NULL, 0, CREST__QF_DELETE)->changes, 1);
    assert_i64_eq(count_of("r"), 2);
}

/* ==== describe, columns, fkeys ==== */

static void describe_tells_params_columns_and_readonly(void **state)
{
    (void)state;
    setup_five();
    crest__stmt_info in;
    char *msg = NULL;
    assert_int_equal(T.vt->describe(T.c, P("SELECT id, name AS label FROM t WHERE id = ? AND n > ?"), &T.a, &in, &msg),
                     0);
    assert_null(msg);
    assert_int_equal(in.nparams, 2);
    if (T.fx->placeholder == '?') {
        assert_null(in.param_names[0]); /* unnamed */
        assert_null(in.param_names[1]);
    }
    assert_int_equal(in.ncols, 2);
    assert_string_equal(in.col_names[0], "id");
    assert_string_equal(in.col_names[1], "label");
    assert_true(in.readonly);
    assert_i64_eq(in.tail, 0);

    assert_int_equal(T.vt->describe(T.c, "INSERT INTO t (id, name) VALUES ($1, $2)", &T.a, &in, &msg), 0);
    assert_int_equal(in.nparams, 2);
    assert_int_equal(in.ncols, 0);
    assert_false(in.readonly);
    /* Nothing ran. */
    assert_i64_eq(count_of("t"), 5);
}

static void describe_reports_a_tail_and_syntax_errors(void **state)
{
    (void)state;
    crest__stmt_info in;
    char *msg = NULL;
    assert_int_equal(T.vt->describe(T.c, "SELECT 1; SELECT 2", &T.a, &in, &msg), 0);
    assert_true(in.tail > 0);
    assert_int_equal(T.vt->describe(T.c, "SELECT 1;", &T.a, &in, &msg), 0);
    assert_i64_eq(in.tail, 0);
    assert_int_not_equal(T.vt->describe(T.c, "SELEC 1", &T.a, &in, &msg), 0);
    assert_non_null(msg);
    assert_true(msg[0] != 0);
    free(msg);
    msg = NULL;
    assert_int_not_equal(T.vt->describe(T.c, "SELECT * FROM no_such_table", &T.a, &in, &msg), 0);
    assert_non_null(msg);
    free(msg);
}

static void columns_and_fkeys_introspect_a_table(void **state)
{
    (void)state;
    ok("CREATE TABLE par (id INTEGER PRIMARY KEY, code TEXT UNIQUE)", NULL, 0, 0);
    ok("CREATE TABLE kid (id INTEGER PRIMARY KEY, pid INTEGER NOT NULL REFERENCES par,"
       " pcode TEXT REFERENCES par (code), note TEXT DEFAULT 'none')",
       NULL, 0, 0);
    crest__column_info *ci = NULL;
    unsigned n = 0;
    assert_int_equal(T.vt->columns(T.c, "kid", &T.a, &ci, &n), 0);
    assert_int_equal(n, 4);
    static const char *const names[] = {"id", "pid", "pcode", "note"};
    static const char *const types[] = {"INTEGER", "INTEGER", "TEXT", "TEXT"};
    for (unsigned i = 0; i < 4; i++) {
        assert_string_equal(ci[i].name, names[i]);
        assert_string_equal(ci[i].type, types[i]);
        assert_int_equal(ci[i].pk, i == 0);
    }
    assert_true(ci[1].notnull);
    assert_false(ci[2].notnull);
    assert_null(ci[1].dflt);
    assert_non_null(ci[3].dflt);
    assert_string_equal(ci[3].dflt, "'none'");
    assert_int_equal(T.vt->columns(T.c, "no_such_table", &T.a, &ci, &n), 0);
    assert_int_equal(n, 0);

    crest__fkey_info *fk = NULL;
    assert_int_equal(T.vt->fkeys(T.c, "kid", &T.a, &fk, &n), 0);
    assert_int_equal(n, 2);
    for (unsigned i = 0; i < 2; i++) {
        bool by_id = !strcmp(fk[i].column, "pid");
        assert_string_equal(fk[i].column, by_id ? "pid" : "pcode");
        assert_string_equal(fk[i].table, "par");
        assert_non_null(fk[i].to);
        assert_string_equal(fk[i].to, by_id ? "id" : "code"); /* the parent's key, resolved */
    }
    assert_int_equal(T.vt->fkeys(T.c, "par", &T.a, &fk, &n), 0);
    assert_int_equal(n, 0);
    /* The same inside a request. */
    crest__sess *ss = sess_on(T.s, NULL, 0, NULL);
    assert_int_equal(T.vt->sess_fkeys(ss, "kid", &fk, &n), 0);
    assert_int_equal(n, 2);
    T.vt->sess_end(ss, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CT(open_connect_disconnect_close),
        CT(a_missing_database_fails_cleanly),
        CT(exec_binds_every_value_kind),
        CT(results_go_into_the_callers_arena),
        CT(nomem_left_the_failure_partly_unset),
        CT(exec_reports_changes_and_last_id),
        CT(changes_and_last_id_were_stale_after_a_write),
        CT(a_result_names_its_columns_even_when_empty),
        CT(max_rows_keeps_that_many),
        CT(first_keeps_one_row_but_runs_to_the_end),
        CT(nocache_runs_once),
        CT(the_same_text_twice_binds_afresh),
        CT(columns_were_read_before_a_cached_statement_was_reprepared),
        CT(numbered_binds_by_number),
        CT(numbered_params_not_covered_fail),
        CT(a_list_binds_as_one_array_parameter),
        CT(begin_commit_persists_rollback_discards),
        CT(a_unique_key_names_its_columns),
        CT(a_missing_parent_is_a_foreign_key_failure),
        CT(deleting_a_referenced_row_is_referenced),
        CT(not_null_and_check_failures),
        CT(a_raise_of_a_crest_status_is_raised),
        CT(describe_tells_params_columns_and_readonly),
        CT(describe_reports_a_tail_and_syntax_errors),
        CT(columns_and_fkeys_introspect_a_table),
    };
    return contract_run("store contract", tests, COUNT_OF(tests));
}
