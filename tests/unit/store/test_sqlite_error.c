/* test_sqlite_error.c — src/store/sqlite_error.c's classification of SQLite
 * errors into store-neutral kinds, on connections opened by
 * src/store/sqlite_db.c (foreign keys
 * on, crest's sum): a full database (PRAGMA max_page_count), unique keys and
 * their columns, foreign keys both ways, trigger messages with and without
 * the crest:<status>: form, the database's own message kept whole; and the
 * exact sum. */
#include <stdlib.h>

#include <sqlite3.h>

#include "unit.h"

#include "store/sqlite_internal.h"

static sqlite3 *db;
static crest__arena arena;

static int setup(void **state)
{
    (void)state;
    crest__arena_init(&arena, 4096, 0);
    if (crest__sq_open_db(":memory:", true, &db) != SQLITE_OK)
        return -1;
    return sqlite3_exec(db,
                        "CREATE TABLE p (id INTEGER PRIMARY KEY);"
                        "CREATE TABLE c (id INTEGER PRIMARY KEY, a TEXT, b TEXT, pid INTEGER REFERENCES p(id),"
                        " n INTEGER NOT NULL DEFAULT 0 CHECK (n >= 0), UNIQUE (a, b));"
                        "CREATE TRIGGER t1 BEFORE DELETE ON c WHEN old.n = 7 BEGIN"
                        " SELECT RAISE(ABORT, 'crest:409:Seven is kept'); END;"
                        "CREATE TRIGGER t2 BEFORE DELETE ON c WHEN old.n = 8 BEGIN"
                        " SELECT RAISE(ABORT, 'crest:200:not an error status'); END;"
                        "INSERT INTO p VALUES (1);",
                        NULL, NULL, NULL) == SQLITE_OK
               ? 0
               : -1;
}

static int teardown(void **state)
{
    (void)state;
    sqlite3_close_v2(db);
    crest__arena_dispose(&arena);
    return 0;
}

/* Runs sql and classifies its failure (it must fail). */
static crest__dberr fail_of(const char *sql)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    assert_int_not_equal(rc, SQLITE_OK);
    crest__dberr e;
    crest__dberr_sqlite(db, rc, &arena, &e);
    return e;
}

static void constraints_are_classified(void **state)
{
    (void)state;
    assert_int_equal(sqlite3_exec(db, "INSERT INTO c (a, b, pid, n) VALUES ('x', 'y', 1, 7), ('x', 'z', 1, 8)",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    crest__dberr e = fail_of("INSERT INTO c (a, b) VALUES ('x', 'y')");
    assert_int_equal(e.kind, CREST__DBERR_UNIQUE);
    assert_string_equal(e.columns, "a");
    assert_string_equal(e.columns + 2, "b");
    assert_string_equal(e.columns + 4, "");
    assert_int_equal(fail_of("INSERT INTO c (pid) VALUES (2)").kind, CREST__DBERR_FOREIGN_KEY); /* foreign keys on */
    assert_int_equal(fail_of("DELETE FROM p").kind, CREST__DBERR_FOREIGN_KEY);
    assert_int_equal(fail_of("INSERT INTO c (n) VALUES (-1)").kind, CREST__DBERR_CHECK);
    assert_int_equal(fail_of("INSERT INTO c (n) VALUES (NULL)").kind, CREST__DBERR_NOT_NULL);
}

static void not_null_names_its_column_and_check_its_constraint(void **state)
{
    (void)state;
    crest__dberr e = fail_of("INSERT INTO c (n) VALUES (NULL)");
    assert_int_equal(e.kind, CREST__DBERR_NOT_NULL);
    assert_non_null(e.columns);
    assert_string_equal(e.columns, "n");
    assert_string_equal(e.columns + 2, "");
    e = fail_of("INSERT INTO c (n) VALUES (-1)");
    assert_int_equal(e.kind, CREST__DBERR_CHECK);
    assert_non_null(e.constraint);
    assert_string_equal(e.constraint, "n >= 0");
}

static void a_trigger_can_raise_a_status(void **state)
{
    (void)state;
    crest__dberr e = fail_of("DELETE FROM c WHERE n = 7");
    assert_int_equal(e.kind, CREST__DBERR_RAISED);
    assert_int_equal(e.status, 409);
    assert_string_equal(e.detail, "Seven is kept");
    assert_int_equal(fail_of("DELETE FROM c WHERE n = 8").kind, CREST__DBERR_CONSTRAINT);
}

/* Start-up messages and logs quote the database word for word, a raised
 * answer too (model sync: "database: crest:409:... (while running: ...)"). */
static void the_databases_own_message_is_kept(void **state)
{
    (void)state;
    crest__dberr e = fail_of("DELETE FROM c WHERE n = 7");
    assert_int_equal(e.kind, CREST__DBERR_RAISED);
    assert_string_equal(e.message, "crest:409:Seven is kept");
    e = fail_of("INSERT INTO c (n) VALUES (-1)");
    assert_string_equal(e.message, "CHECK constraint failed: n >= 0");
    assert_string_equal(e.detail, e.message);
    e = fail_of("SELEC 1");
    assert_int_equal(e.kind, CREST__DBERR_OTHER);
    assert_string_equal(e.message, "near \"SELEC\": syntax error");
}

static void a_full_database_is_a_storage_error(void **state)
{
    (void)state;
    assert_int_equal(sqlite3_exec(db, "CREATE TABLE big (t TEXT); PRAGMA max_page_count = 20", NULL, NULL, NULL),
                     SQLITE_OK);
    int rc = SQLITE_OK;
    for (int i = 0; i < 1000 && rc == SQLITE_OK; i++)
        rc = sqlite3_exec(db, "INSERT INTO big VALUES (printf('%.2000c', 'x'))", NULL, NULL, NULL);
    assert_int_equal(rc & 0xff, SQLITE_FULL);
    crest__dberr e;
    crest__dberr_sqlite(db, rc, &arena, &e);
    assert_int_equal(e.kind, CREST__DBERR_STORAGE);
}

static void sum_is_exact_past_64_bits(void **state)
{
    (void)state;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "WITH v(x) AS (VALUES (9223372036854775807), (9223372036854775807),"
                                        " (-9223372036854775807), (-9223372036854775807), (3))"
                                        " SELECT sum(x), typeof(sum(x)), avg(x) FROM v",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_i64_eq(sqlite3_column_int64(st, 0), 3);
    assert_string_equal((const char *)sqlite3_column_text(st, 1), "integer");
    assert_true(sqlite3_column_double(st, 2) == 0.6);
    sqlite3_finalize(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(constraints_are_classified),
        cmocka_unit_test(not_null_names_its_column_and_check_its_constraint),
        cmocka_unit_test(a_trigger_can_raise_a_status),
        cmocka_unit_test(the_databases_own_message_is_kept),
        cmocka_unit_test(a_full_database_is_a_storage_error),
        cmocka_unit_test(sum_is_exact_past_64_bits),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
