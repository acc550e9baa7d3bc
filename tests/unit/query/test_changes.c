/* test_changes.c — the change log's SQL (src/query/changes.c) in both
 * dialects: a feed's read (the log's rows as the model's, under the model's
 * own name, with the visibility column whose binds come first), the
 * triggers (SQLite: one per kind of write, the row as json_object of every
 * field; PostgreSQL: one per table, on the shared function), their drop,
 * the bounded purge, and the function's advisory lock that keeps ids in
 * commit order. The model is built by hand. */
#include <stdlib.h>

#include "unit.h"

#include "query/query.h"

typedef struct fixture {
    crest__arena a;
    crest__mfield f[3];
    crest__model m;
    crest__qnode done;            /* done = true */
    crest__val v;
} fixture;

static const char *const names[] = {"id", "title", "done"};
static const crest_field_type types[] = {CREST_F_INT, CREST_F_STRING, CREST_F_BOOL};

static int setup(void **state)
{
    fixture *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    crest__arena_init(&x->a, 4096, 0);
    for (unsigned i = 0; i < 3; i++) {
        x->f[i].f.name = names[i];
        x->f[i].f.type = types[i];
        x->f[i].idx = i;
        x->f[i].qname = crest__quote_ident(names[i]);
    }
    x->m.name = "Task";
    x->m.table = "tasks";
    x->m.qtable = crest__quote_ident("tasks");
    x->m.fields = x->f;
    x->m.nfields = 3;
    x->v = (crest__val){.k = CREST__V_BOOL, .i = 1};
    x->done = (crest__qnode){.kind = CREST__Q_CMP, .op = CREST__OP_EQ, .field = &x->f[2], .vals = &x->v, .nvals = 1};
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fixture *x = *state;
    for (unsigned i = 0; i < 3; i++)
        free(x->f[i].qname);
    free(x->m.qtable);
    crest__arena_dispose(&x->a);
    free(x);
    return 0;
}

/* text, nb and binds: the statement `call` appends to q in dialect d. */
#define TEXT(x, d, call, nb)                                                                                           \
    do {                                                                                                               \
        crest__sql q_;                                                                                                 \
        crest__sql_init(&q_, &(x)->a, (d));                                                                            \
        crest__sql *q = &q_;                                                                                           \
        call;                                                                                                          \
        assert_int_equal(q_.err, 0);                                                                                   \
        text = crest__arena_strndup(&(x)->a, q_.text.ptr ? q_.text.ptr : "", q_.text.len);                             \
        nb = q_.nbinds;                                                                                                \
        binds = q_.binds;                                                                                              \
        crest__sql_dispose(&q_);                                                                                       \
    } while (0)

static void read_in_both_dialects(void **state)
{
    fixture *x = *state;
    const char *text;
    const crest__val *binds;
    unsigned nb;
    crest__changes_plan p = {.proj = {.m = &x->m}, .where = &x->done, .after = 5, .limit = 256};
    TEXT(x, crest__dialect_sqlite(), crest__compile_changes_read(q, &p), nb);
    assert_string_equal(
        text, "SELECT \"id\", \"title\", \"done\", \"crest_cid\", \"crest_op\", CASE WHEN \"done\" = ? THEN 1 ELSE 0 END "
              "FROM (SELECT json_extract(\"c\".\"data\", '$.id') AS \"id\", json_extract(\"c\".\"data\", '$.title') AS "
              "\"title\", json_extract(\"c\".\"data\", '$.done') AS \"done\", \"c\".\"id\" AS \"crest_cid\", "
              "\"c\".\"op\" AS \"crest_op\" FROM \"crest_changes\" AS \"c\" WHERE \"c\".\"tbl\" = ? AND \"c\".\"id\" > ? "
              "ORDER BY \"c\".\"id\" LIMIT ?) AS \"tasks\" ORDER BY \"crest_cid\"");
    /* the where's value, then the table, the last change read, the batch */
    assert_int_equal(nb, 4);
    assert_int_equal(binds[0].k, CREST__V_BOOL);
    assert_string_equal(binds[1].s, "tasks");
    assert_int_equal(binds[2].i, 5);
    assert_int_equal(binds[3].i, 256);
    TEXT(x, crest__dialect_postgres(), crest__compile_changes_read(q, &p), nb);
    assert_string_equal(
        text, "SELECT \"id\", \"title\", \"done\", \"crest_cid\", \"crest_op\", CASE WHEN \"done\" = $1 THEN 1 ELSE 0 END "
              "FROM (SELECT \"r\".*, \"c\".\"id\" AS \"crest_cid\", \"c\".\"op\" AS \"crest_op\" FROM \"crest_changes\" AS "
              "\"c\" CROSS JOIN LATERAL jsonb_populate_record(NULL::\"tasks\", \"c\".\"data\") AS \"r\" WHERE "
              "\"c\".\"tbl\" = $2 AND \"c\".\"id\" > $3 ORDER BY \"c\".\"id\" LIMIT $4) AS \"tasks\" ORDER BY \"crest_cid\"");
    assert_int_equal(nb, 4);
    /* without a where, every change is visible */
    p.where = NULL;
    TEXT(x, crest__dialect_sqlite(), crest__compile_changes_read(q, &p), nb);
    assert_non_null(strstr(text, "\"crest_op\", 1 FROM (SELECT"));
    assert_int_equal(nb, 3);
}

static void triggers_and_their_drop(void **state)
{
    fixture *x = *state;
    const char *text;
    const crest__val *binds;
    unsigned nb;
    (void)binds;
    assert_int_equal(crest__changes_trigger_count(crest__dialect_sqlite()), 3);
    assert_int_equal(crest__changes_trigger_count(crest__dialect_postgres()), 1);
    TEXT(x, crest__dialect_sqlite(), crest__compile_changes_trigger(q, &x->m, 0), nb);
    assert_string_equal(text, "CREATE TRIGGER \"crest_changes_tasks_insert\" AFTER INSERT ON \"tasks\" FOR EACH ROW BEGIN "
                              "INSERT INTO \"crest_changes\" (\"tbl\", \"row_id\", \"op\", \"data\") VALUES ('tasks', "
                              "NEW.\"id\", 'created', json_object('id', NEW.\"id\", 'title', NEW.\"title\", 'done', "
                              "NEW.\"done\")); END");
    assert_int_equal(nb, 0); /* DDL: no binds */
    TEXT(x, crest__dialect_sqlite(), crest__compile_changes_trigger(q, &x->m, 2), nb);
    assert_non_null(strstr(text, "AFTER DELETE ON \"tasks\""));
    assert_non_null(strstr(text, "OLD.\"id\", 'deleted', json_object('id', OLD.\"id\""));
    TEXT(x, crest__dialect_sqlite(), crest__compile_changes_drop(q, &x->m, 1), nb);
    assert_string_equal(text, "DROP TRIGGER IF EXISTS \"crest_changes_tasks_update\"");
    TEXT(x, crest__dialect_postgres(), crest__compile_changes_trigger(q, &x->m, 0), nb);
    assert_string_equal(text, "CREATE TRIGGER \"crest_changes_tasks\" AFTER INSERT OR UPDATE OR DELETE ON \"tasks\" FOR "
                              "EACH ROW EXECUTE FUNCTION \"crest_changes_log\"()");
    TEXT(x, crest__dialect_postgres(), crest__compile_changes_drop(q, &x->m, 0), nb);
    assert_string_equal(text, "DROP TRIGGER IF EXISTS \"crest_changes_tasks\" ON \"tasks\"");
    /* the function: ids in commit order (the lock before the log's row), the notification at commit */
    TEXT(x, crest__dialect_postgres(), crest__compile_changes_function(q), nb);
    const char *lock = strstr(text, "pg_advisory_xact_lock(");
    const char *insert = strstr(text, "INSERT INTO \"crest_changes\"");
    assert_non_null(lock);
    assert_non_null(insert);
    assert_true(lock < insert);
    /* (no payload: PostgreSQL sends a transaction's notifications as one) */
    assert_non_null(strstr(text, "pg_notify('crest_changes', '')"));
    TEXT(x, crest__dialect_sqlite(), crest__compile_changes_function(q), nb);
    assert_string_equal(text, "");
}

static void purge_is_bounded(void **state)
{
    fixture *x = *state;
    const char *text;
    const crest__val *binds;
    unsigned nb;
    TEXT(x, crest__dialect_sqlite(), crest__compile_changes_purge(q, 86400, 1000), nb);
    assert_string_equal(text, "DELETE FROM \"crest_changes\" WHERE \"id\" < (SELECT max(\"id\") FROM (SELECT \"id\", \"at\" "
                              "FROM \"crest_changes\" ORDER BY \"id\" LIMIT ?) AS \"o\" WHERE \"at\" < "
                              "strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-86400 seconds'))");
    assert_int_equal(nb, 1);
    assert_int_equal(binds[0].i, 1001); /* the batch looked at, and the one kept */
    TEXT(x, crest__dialect_postgres(), crest__compile_changes_purge(q, 60, 1000), nb);
    assert_non_null(strstr(text, "WHERE \"at\" < now() - make_interval(secs => $2))"));
    assert_int_equal(nb, 2);
    assert_int_equal(binds[1].i, 60);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(read_in_both_dialects, setup, teardown),
        cmocka_unit_test_setup_teardown(triggers_and_their_drop, setup, teardown),
        cmocka_unit_test_setup_teardown(purge_is_bounded, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
