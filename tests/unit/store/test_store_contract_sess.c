/* test_store_contract_sess.c — the contract every store (src/store/store.h)
 * must keep for requests, through sessions: transactions, the deadline, the
 * result limit, a read completing before query returns or — when slow on
 * the loop — through the offload hook (simulated with a real thread), what
 * is never moved, the write unit and its durability, the native handle,
 * the database's version (what a change feed watches on SQLite).
 * Written only against `const crest__store_vt *`; runs once per store of
 * contract.c's table. Connections and statements: test_store_contract.c. */
#include <stdlib.h>

#include "store/contract.h"

/* ==== transactions in a request ==== */

static void a_session_transaction_commits_and_rolls_back(void **state)
{
    (void)state;
    setup_five();
    crest__store_worker *w = worker_of(T.s);
    crest__sess *ss = sess_on(T.s, txn_worker(w), 0, NULL);
    crest__dberr e = {0};
    assert_int_equal(T.vt->txn(ss, CREST__TXN_BEGIN, &e), 0);
    sess_ok(ss, "INSERT INTO t (id, name) VALUES (6, 'six')", NULL, 0, 0);
    assert_int_equal(T.vt->txn(ss, CREST__TXN_COMMIT, &e), 0);
    assert_i64_eq(count_of("t"), 6);
    assert_int_equal(T.vt->txn(ss, CREST__TXN_BEGIN, &e), 0);
    sess_ok(ss, "DELETE FROM t", NULL, 0, CREST__QF_DELETE);
    assert_int_equal(T.vt->txn(ss, CREST__TXN_ROLLBACK, &e), 0);
    assert_i64_eq(count_of("t"), 6);
    bool timed_out = false;
    T.vt->sess_end(ss, &timed_out);
    assert_false(timed_out);
    worker_done(w);
}

/* Regression (src/store/sqlite.c, sq_sess_end): a transaction a request
 * began (txn) and never ended stayed open on the worker's connection past
 * sess_end, so the worker's next requests ran inside it: their writes were
 * never committed, and their own BEGIN failed. sess_end rolls it back. */
static void sess_end_left_a_transaction_open(void **state)
{
    (void)state;
    setup_five();
    crest__store_worker *w = worker_of(T.s);
    crest__sess *ss = sess_on(T.s, txn_worker(w), 0, NULL);
    crest__dberr e = {0};
    assert_int_equal(T.vt->txn(ss, CREST__TXN_BEGIN, &e), 0);
    sess_ok(ss, "INSERT INTO t (id, name) VALUES (6, 'six')", NULL, 0, 0);
    T.vt->sess_end(ss, NULL);
    /* The next request on the same worker starts clean. */
    crest__sess *next = sess_on(T.s, txn_worker(w), 0, NULL);
    crest__rows *r = sess_ok(next, "SELECT count(*) FROM t", NULL, 0, CREST__QF_READ);
    assert_cell_int(r, 0, 0, 5);
    assert_int_equal(T.vt->txn(next, CREST__TXN_BEGIN, &e), 0);
    sess_ok(next, "INSERT INTO t (id, name) VALUES (7, 'seven')", NULL, 0, 0);
    assert_int_equal(T.vt->txn(next, CREST__TXN_COMMIT, &e), 0);
    T.vt->sess_end(next, NULL);
    assert_i64_eq(count_of("t"), 6);
    worker_done(w);
}

/* ==== the deadline, the result limit ==== */

static void a_deadline_interrupts_a_long_statement(void **state)
{
    (void)state;
    /* A deadline already past, and one 2 ms away; the worker's session and
     * one off the loop (a pool thread's). */
    for (int i = 0; i < 4; i++) {
        crest__store_worker *w = i % 2 ? worker_of(T.s) : NULL;
        uint64_t deadline = i < 2 ? crest__now_us() - 1 : crest__now_us() + 2000;
        crest__sess *ss = sess_on(T.s, w, deadline, NULL);
        uint64_t t0 = crest__now_us();
        done d;
        assert_int_equal(start(ss, endless_read, NULL, 0, CREST__QF_READ, &d), 1);
        assert_null(d.rows);
        assert_kind(&d.err, CREST__DBERR_DEADLINE);
        assert_true(crest__now_us() - t0 < 5000000); /* interrupted, not run to its end */
        bool timed_out = false;
        T.vt->sess_end(ss, &timed_out);
        assert_true(timed_out);
        if (w)
            worker_done(w);
    }
    /* Without a deadline a session does not time out. */
    crest__sess *ss = sess_on(T.s, NULL, 0, NULL);
    crest__rows *r = sess_ok(ss, slow_read, NULL, 0, CREST__QF_READ);
    assert_cell_int(r, 0, 0, SLOW_COUNT);
    bool timed_out = false;
    T.vt->sess_end(ss, &timed_out);
    assert_false(timed_out);
}

static void a_result_over_max_result_is_too_large(void **state)
{
    (void)state;
    crest__store *s = open_with(256, 0, true);
    crest__sess *ss = sess_on(s, NULL, 0, NULL);
    static const char big[] = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100)"
                              " SELECT x, 'twenty characters...' AS t FROM c";
    done d;
    assert_int_equal(start(ss, big, NULL, 0, CREST__QF_READ, &d), 1);
    assert_null(d.rows);
    assert_kind(&d.err, CREST__DBERR_TOO_LARGE);
    /* A small one fits; the same large one without the limit too. */
    crest__rows *r = sess_ok(ss, "SELECT 1, 'small'", NULL, 0, CREST__QF_READ);
    assert_i64_eq(r->nrows, 1);
    T.vt->sess_end(ss, NULL);
    ss = sess_on(T.s, NULL, 0, NULL);
    assert_i64_eq(sess_ok(ss, big, NULL, 0, CREST__QF_READ)->nrows, 100);
    T.vt->sess_end(ss, NULL);
    T.vt->close(s);
}

/* ==== completing in place or later ==== */

#define KSTEPS 10

static void a_fast_read_completes_before_query_returns(void **state)
{
    (void)state;
    if (!T.fx->moves_slow_reads)
        skip(); /* how a store that reads on the loop keeps it free: another store never blocks it */
    setup_five();
    crest__store *s = open_with(0, KSTEPS, true);
    crest__store_worker *w = worker_of(s);
    pool_sim ps = {.mode = POOL_RUN};
    crest__sess *ss = sess_on(s, w, crest__now_us() + 60000000, &ps);
    crest__rows *r = sess_ok(ss, P("SELECT name FROM t WHERE id = ?"), (crest__val[]){vint(3)}, 1, CREST__QF_READ);
    assert_cell_text(r, 0, 0, "three");
    assert_int_equal(ps.calls, 0);
    bool timed_out = false;
    T.vt->sess_end(ss, &timed_out);
    assert_false(timed_out);
    worker_done(w);
    T.vt->close(s);
}

static void a_slow_read_moves_to_the_offload_hook(void **state)
{
    (void)state;
    if (!T.fx->moves_slow_reads)
        skip(); /* how a store that reads on the loop keeps it free: another store never blocks it */
    setup_five();
    crest__store *s = open_with(0, KSTEPS, true);
    crest__store_worker *w = worker_of(s);
    pool_sim ps = {.mode = POOL_RUN};
    crest__arena own;
    crest__arena_init(&own, 4096, 0);
    uint64_t n = 0;
    crest__sess *ss = sess_counted(&own, s, w, 0, &ps, &n);
    done d;
    assert_int_equal(start(ss, slow_read, NULL, 0, CREST__QF_READ, &d), 0);
    assert_int_equal(ps.calls, 1);
    assert_int_equal(n, 1); /* (statements: its start on the loop, stopped at the budget) */
    /* Meanwhile the loop goes on with the worker's connection. */
    pool_sim ps2 = {.mode = POOL_RUN};
    crest__sess *other = sess_on(s, w, 0, &ps2);
    assert_cell_int(sess_ok(other, "SELECT count(*) FROM t", NULL, 0, CREST__QF_READ), 0, 0, 5);
    T.vt->sess_end(other, NULL);
    assert_int_equal(d.calls, 0);
    pool_finish(&ps);
    assert_int_equal(d.calls, 1);
    assert_non_null(d.rows);
    assert_i64_eq(d.rows->nrows, 1);
    assert_cell_int(d.rows, 0, 0, SLOW_COUNT);
    assert_int_equal(n, 2); /* its run on the pool thread, counted on the loop */
    /* The session's next read goes off the loop at once: one run. */
    assert_int_equal(start(ss, slow_read, NULL, 0, CREST__QF_READ, &d), 0);
    assert_int_equal(n, 2);
    pool_finish(&ps);
    assert_cell_int(d.rows, 0, 0, SLOW_COUNT);
    assert_int_equal(n, 3);
    bool timed_out = false;
    T.vt->sess_end(ss, &timed_out);
    assert_false(timed_out);
    crest__arena_dispose(&own);
    worker_done(w);
    T.vt->close(s);
}

static void an_offload_that_cannot_run_finishes_in_place(void **state)
{
    (void)state;
    if (!T.fx->moves_slow_reads)
        skip(); /* how a store that reads on the loop keeps it free: another store never blocks it */
    crest__store *s = open_with(0, KSTEPS, true);
    crest__store_worker *w = worker_of(s);
    pool_sim ps = {.mode = POOL_REFUSE};
    crest__sess *ss = sess_on(s, w, 0, &ps);
    crest__rows *r = sess_ok(ss, slow_read, NULL, 0, CREST__QF_READ);
    assert_int_equal(ps.calls, 1);
    assert_cell_int(r, 0, 0, SLOW_COUNT);
    T.vt->sess_end(ss, NULL);
    worker_done(w);
    T.vt->close(s);
}

static void a_cancelled_offload_reports_unavailable(void **state)
{
    (void)state;
    if (!T.fx->moves_slow_reads)
        skip(); /* how a store that reads on the loop keeps it free: another store never blocks it */
    crest__store *s = open_with(0, KSTEPS, true);
    crest__store_worker *w = worker_of(s);
    pool_sim ps = {.mode = POOL_CANCEL};
    uint64_t n = 0;
    crest__sess *ss = sess_counted(&T.a, s, w, 0, &ps, &n);
    done d;
    assert_int_equal(start(ss, slow_read, NULL, 0, CREST__QF_READ, &d), 0);
    assert_int_equal(ps.calls, 1);
    pool_finish(&ps);
    assert_int_equal(d.calls, 1);
    assert_null(d.rows);
    assert_kind(&d.err, CREST__DBERR_UNAVAILABLE);
    assert_int_equal(n, 1); /* (statements: its start on the loop; the run off it never happened) */
    T.vt->sess_end(ss, NULL);
    worker_done(w);
    T.vt->close(s);
}

static void a_write_is_never_moved(void **state)
{
    (void)state;
    if (!T.fx->moves_slow_reads)
        skip(); /* how a store that reads on the loop keeps it free: another store never blocks it */
    setup_five();
    crest__store *s = open_with(0, KSTEPS, true);
    crest__store_worker *w = worker_of(s);
    pool_sim ps = {.mode = POOL_RUN};
    crest__sess *ss = sess_on(s, w, 0, &ps);
    crest__rows *r = sess_ok(ss,
                             "INSERT INTO t (n) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c"
                             " WHERE x < 200000) SELECT x FROM c",
                             NULL, 0, 0);
    assert_int_equal(ps.calls, 0);
    assert_i64_eq(r->changes, 200000);
    T.vt->sess_end(ss, NULL);
    worker_done(w);
    T.vt->close(s);
    assert_i64_eq(count_of("t"), 200005);
}

static void inplace_and_transactions_are_never_moved(void **state)
{
    (void)state;
    if (!T.fx->moves_slow_reads)
        skip(); /* how a store that reads on the loop keeps it free: another store never blocks it */
    crest__store *s = open_with(0, KSTEPS, true);
    crest__store_worker *w = worker_of(s);
    pool_sim ps = {.mode = POOL_RUN};
    crest__sess *ss = sess_on(s, w, 0, &ps);
    crest__rows *r = sess_ok(ss, slow_read, NULL, 0, CREST__QF_READ | CREST__QF_INPLACE);
    assert_cell_int(r, 0, 0, SLOW_COUNT);
    assert_int_equal(ps.calls, 0);
    /* Inside a transaction the read must see what the transaction did. */
    crest__dberr e = {0};
    assert_int_equal(T.vt->txn(ss, CREST__TXN_BEGIN, &e), 0);
    r = sess_ok(ss, slow_read, NULL, 0, CREST__QF_READ);
    assert_cell_int(r, 0, 0, SLOW_COUNT);
    assert_int_equal(ps.calls, 0);
    assert_int_equal(T.vt->txn(ss, CREST__TXN_COMMIT, &e), 0);
    T.vt->sess_end(ss, NULL);
    worker_done(w);
    T.vt->close(s);
}

/* ==== counting statements (/metrics' crest_db_statements_total) ==== */

static void each_run_of_a_statement_counts_and_the_stores_own_do_not(void **state)
{
    (void)state;
    setup_five();
    crest__store_worker *w = worker_of(T.s);
    /* Reads where a request reads them (on the loop, for a store on one):
     * one that fails counts too; the store's transaction around them not. */
    uint64_t n = 0;
    crest__sess *ss = sess_counted(&T.a, T.s, w, crest__now_us() + 60000000, NULL, &n);
    sess_ok(ss, "SELECT count(*) FROM t", NULL, 0, CREST__QF_READ);
    assert_int_equal(n, 1);
    done d;
    start(ss, "SELECT no_such_column FROM t", NULL, 0, CREST__QF_READ, &d);
    assert_int_equal(d.calls, 1);
    assert_null(d.rows);
    assert_int_equal(n, 2);
    sess_ok(ss, "SELECT 1", NULL, 0, CREST__QF_READ | CREST__QF_LAST);
    T.vt->sess_end(ss, NULL);
    assert_int_equal(n, 3);
    /* The write unit and a transaction in it: the statements inside only. */
    uint64_t m = 0;
    crest__dberr e = {0};
    ss = sess_counted(&T.a, T.s, txn_worker(w), crest__now_us() + 60000000, NULL, &m);
    assert_int_equal(T.vt->write_begin(ss, &e), 0);
    sess_ok(ss, "INSERT INTO t (id, name) VALUES (6, 'six')", NULL, 0, 0);
    assert_int_equal(T.vt->txn(ss, CREST__TXN_BEGIN, &e), 0);
    sess_ok(ss, "INSERT INTO t (id, name) VALUES (7, 'seven')", NULL, 0, 0);
    assert_int_equal(T.vt->txn(ss, CREST__TXN_COMMIT, &e), 0);
    assert_int_equal(T.vt->write_end(ss, true, &e), 0);
    T.vt->sess_end(ss, NULL);
    assert_int_equal(m, 2);
    assert_int_equal(n, 3);
    assert_i64_eq(count_of("t"), 7);
    worker_done(w);
}

/* ==== the write unit, the native handle ==== */

/* The write unit, with durability full (the group commit) and normal. */
static void write_begin_and_end_commit_durably(void **state)
{
    (void)state;
    setup_five();
    char *msg = NULL;
    if (T.vt->setup(T.c, &msg)) { /* SQLite: WAL, so the group commit syncs a real file */
        print_error("setup: %s\n", msg ? msg : "");
        free(msg);
        fail();
    }
    for (int normal = 0; normal <= 1; normal++) {
        crest__store *s = open_with(0, KSTEPS, normal);
        crest__store_worker *w = worker_of(s);
        crest__sess *ss = sess_on(s, txn_worker(w), 0, NULL);
        crest__dberr e = {0};
        assert_int_equal(T.vt->write_begin(ss, &e), 0);
        crest__val v[] = {vint(10 + normal), vtext("written")};
        assert_i64_eq(sess_ok(ss, P("INSERT INTO t (id, name) VALUES (?, ?)"), v, 2, 0)->changes, 1);
        assert_int_equal(T.vt->write_end(ss, true, &e), 0);
        assert_i64_eq(count_of("t"), 6 + normal);
        /* A transaction left open in the unit is rolled back with it. */
        assert_int_equal(T.vt->write_begin(ss, &e), 0);
        assert_int_equal(T.vt->txn(ss, CREST__TXN_BEGIN, &e), 0);
        sess_ok(ss, "DELETE FROM t", NULL, 0, CREST__QF_DELETE);
        assert_int_equal(T.vt->write_end(ss, false, &e), 0);
        assert_i64_eq(count_of("t"), 6 + normal);
        T.vt->sess_end(ss, NULL);
        /* sess_end released the writer: another request takes it. */
        ss = sess_on(s, txn_worker(w), 0, NULL);
        assert_int_equal(T.vt->write_begin(ss, &e), 0);
        T.vt->sess_end(ss, NULL);
        ss = sess_on(s, txn_worker(w), 0, NULL);
        assert_int_equal(T.vt->write_begin(ss, &e), 0);
        assert_int_equal(T.vt->write_end(ss, true, &e), 0);
        T.vt->sess_end(ss, NULL);
        worker_done(w);
        T.vt->close(s);
    }
}

static void native_gives_a_handle(void **state)
{
    (void)state;
    crest__store_worker *w = worker_of(T.s);
    crest__sess *ss = sess_on(T.s, w, 0, NULL);
    void *h = T.vt->native(ss);
    if (T.fx->native)
        assert_non_null(h);
    assert_ptr_equal(T.vt->native(ss), h); /* the same for the whole request */
    sess_ok(ss, "SELECT 1", NULL, 0, CREST__QF_READ);
    bool timed_out = false;
    T.vt->sess_end(ss, &timed_out);
    assert_false(timed_out);
    T.vt->sess_end(NULL, NULL); /* none: nothing */
    worker_done(w);
}

/* What a change feed's hub watches for other programs' writes: the version
 * moves once another connection commits, or the worker's own writes, and
 * only then. A store without it tells commits by listening. */
static void data_version_moves_when_a_connection_writes(void **state)
{
    (void)state;
    if (!T.vt->data_version) {
        assert_non_null(T.vt->listen);
        return;
    }
    setup_five();
    crest__store_worker *w = worker_of(T.s);
    int64_t v1 = T.vt->data_version(w);
    assert_true(v1 >= 0);
    assert_i64_eq(T.vt->data_version(w), v1); /* nothing committed meanwhile */
    crest__val v[] = {vint(6), vtext("six")};
    ok(P("INSERT INTO t (id, name) VALUES (?, ?)"), v, 2, 0); /* the test's connection: another one */
    int64_t v2 = T.vt->data_version(w);
    assert_true(v2 >= 0 && v2 != v1);
    assert_i64_eq(T.vt->data_version(w), v2);
    /* Regression: the worker connection's own writes (a C handler's
     * crest_query on the loop) did not move it (PRAGMA data_version counts
     * other connections only). */
    crest__sess *ss = sess_on(T.s, w, 0, NULL);
    crest__val v7[] = {vint(7), vtext("seven")};
    sess_ok(ss, P("INSERT INTO t (id, name) VALUES (?, ?)"), v7, 2, 0);
    T.vt->sess_end(ss, NULL);
    int64_t v3 = T.vt->data_version(w);
    assert_true(v3 >= 0 && v3 != v2);
    worker_done(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CT(a_session_transaction_commits_and_rolls_back),
        CT(sess_end_left_a_transaction_open),
        CT(a_deadline_interrupts_a_long_statement),
        CT(a_result_over_max_result_is_too_large),
        CT(a_fast_read_completes_before_query_returns),
        CT(a_slow_read_moves_to_the_offload_hook),
        CT(an_offload_that_cannot_run_finishes_in_place),
        CT(a_cancelled_offload_reports_unavailable),
        CT(a_write_is_never_moved),
        CT(inplace_and_transactions_are_never_moved),
        CT(each_run_of_a_statement_counts_and_the_stores_own_do_not),
        CT(write_begin_and_end_commit_durably),
        CT(native_gives_a_handle),
        CT(data_version_moves_when_a_connection_writes),
    };
    return contract_run("store contract (sessions)", tests, COUNT_OF(tests));
}
