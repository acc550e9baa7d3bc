/* test_postgres_loop.c — the PostgreSQL store's sessions on a worker's
 * loop (src/store/postgres_loop.c, postgres_lconn.c, postgres_segment.c):
 * statements complete while the loop runs, a session holds one
 * connection until it ends, requests wait for a connection in a bounded queue for a bounded time, a write completes once
 * committed, a failure leaves the session usable, a broken connection is
 * replaced, crest's deadline and a client that left stop the statement on
 * the server, a statement a schema change made stale is prepared again,
 * a host name is looked up on the loop (and one that stops resolving is a
 * failed connect, 503, then reconnects), the pool's counts for /metrics.
 * Runs on the tests' PostgreSQL cluster (skipped without one), through the
 * contract suite's harness (contract.c); the host name tests reach into
 * the store (postgres_internal.h) to change what the name is. */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <jansson.h>

#include "store/contract.h"
#include "store/postgres_internal.h"

/* Starts sql on ss without waiting (the completion lands in d). */
static void send(crest__sess *ss, const char *sql, const crest__val *v, unsigned n, unsigned flags, done *d)
{
    crest__query q = Q(sql, v, n, flags);
    memset(d, 0, sizeof *d);
    assert_int_equal(T.vt->query(ss, &q, on_done, d), 0);
}

static int64_t backend_pid(crest__sess *ss)
{
    crest__rows *r = sess_ok(ss, "SELECT pg_backend_pid()::bigint", NULL, 0, CREST__QF_READ);
    return crest__rows_cell(r, 0, 0)->v.i;
}

static void reads_complete_while_the_loop_runs(void **state)
{
    (void)state;
    setup_five();
    crest__store_worker *w = worker_of(T.s);
    crest__sess *ss = sess_on(T.s, w, crest__now_us() + 10000000, NULL);
    done d;
    crest__val id = vint(3);
    send(ss, "SELECT name, b, x FROM t WHERE id = $1", &id, 1, CREST__QF_READ, &d);
    assert_int_equal(d.calls, 0); /* on its way: the loop has not run */
    assert_true(pump_until(w, &d.calls, 1, 10000));
    assert_non_null(d.rows);
    assert_cell_text(d.rows, 0, 0, "three");
    /* The same statement again: prepared once on the connection. */
    id = vint(4);
    crest__rows *r = sess_ok(ss, "SELECT name, b, x FROM t WHERE id = $1", &id, 1, CREST__QF_READ);
    assert_cell_text(r, 0, 0, "four");
    bool timed_out = true;
    T.vt->sess_end(ss, &timed_out);
    assert_false(timed_out);
    worker_done(w);
}

/* The state of backend pid, seen from another connection. */
static const char *backend_state(int64_t pid)
{
    crest__val v = vint(pid);
    crest__rows *r = ok("SELECT state FROM pg_stat_activity WHERE pid = $1", &v, 1, CREST__QF_READ);
    return r->nrows ? crest__rows_cell(r, 0, 0)->v.s : "(gone)";
}

/* A read keeps its read-only transaction open for the request's next
 * reads (one snapshot); the request's last read (CREST__QF_LAST) ends it
 * in its own round trip, so that the connection is free with the answer. */
static void the_last_read_ends_its_transaction_in_its_round_trip(void **state)
{
    (void)state;
    setup_five();
    crest__store_worker *w = worker_of(T.s);
    crest__sess *ss = sess_on(T.s, w, crest__now_us() + 10000000, NULL);
    int64_t pid = backend_pid(ss);
    assert_string_equal(backend_state(pid), "idle in transaction");
    crest__val id = vint(3);
    crest__rows *r = sess_ok(ss, "SELECT name FROM t WHERE id = $1", &id, 1, CREST__QF_READ | CREST__QF_LAST);
    assert_cell_text(r, 0, 0, "three");
    assert_string_equal(backend_state(pid), "idle");
    bool timed_out = true;
    T.vt->sess_end(ss, &timed_out);
    assert_false(timed_out);
    worker_done(w);
}

static void a_session_holds_its_connection_until_it_ends(void **state)
{
    (void)state;
    crest__store *s = open_pool(1, 5000, 8);
    crest__store_worker *w = worker_of(s);
    crest__sess *a = sess_on(s, w, 0, NULL);
    int64_t pid = backend_pid(a);
    /* b waits: the one connection is a's until a ends. */
    crest__arena ab;
    crest__arena_init(&ab, 4096, 0);
    crest__sess *b = sess_in(&ab, s, w, 0, NULL);
    done d;
    send(b, "SELECT pg_backend_pid()::bigint", NULL, 0, CREST__QF_READ, &d);
    if (pump_until(w, &d.calls, 1, 300))
        fail_msg("b completed while a held the connection: %s %s", d.rows ? "rows" : kname((int)d.err.kind),
                 d.rows ? "" : d.err.detail ? d.err.detail : "");
    assert_i64_eq(backend_pid(a), pid); /* a's next statement: the same connection */
    T.vt->sess_end(a, NULL);
    assert_true(pump_until(w, &d.calls, 1, 10000));
    assert_non_null(d.rows);
    assert_i64_eq(crest__rows_cell(d.rows, 0, 0)->v.i, pid);
    T.vt->sess_end(b, NULL);
    crest__arena_dispose(&ab);
    worker_done(w);
    T.vt->close(s);
}

static void waiting_is_bounded_in_time_and_in_length(void **state)
{
    (void)state;
    crest__store *s = open_pool(1, 200, 1);
    crest__store_worker *w = worker_of(s);
    crest__arena aa, ab, ac;
    crest__arena_init(&aa, 4096, 0);
    crest__arena_init(&ab, 4096, 0);
    crest__arena_init(&ac, 4096, 0);
    crest__sess *a = sess_in(&aa, s, w, 0, NULL), *b = sess_in(&ab, s, w, 0, NULL), *c = sess_in(&ac, s, w, 0, NULL);
    done da, db, dc;
    send(a, "SELECT pg_sleep(1)", NULL, 0, CREST__QF_READ, &da);
    send(b, "SELECT 1", NULL, 0, CREST__QF_READ, &db);
    /* The queue holds one: c fails at once. */
    send(c, "SELECT 1", NULL, 0, CREST__QF_READ, &dc);
    assert_int_equal(dc.calls, 1);
    assert_kind(&dc.err, CREST__DBERR_UNAVAILABLE);
    /* b gives up after its 200 ms, while a still sleeps. */
    uint64_t t0 = crest__now_us();
    assert_true(pump_until(w, &db.calls, 1, 5000));
    uint64_t waited = crest__now_us() - t0;
    assert_kind(&db.err, CREST__DBERR_UNAVAILABLE);
    assert_true(waited >= 150000 && waited < 900000);
    assert_int_equal(da.calls, 0);
    assert_true(pump_until(w, &da.calls, 1, 10000));
    assert_non_null(da.rows);
    T.vt->sess_end(a, NULL);
    T.vt->sess_end(b, NULL);
    T.vt->sess_end(c, NULL);
    crest__arena_dispose(&aa);
    crest__arena_dispose(&ab);
    crest__arena_dispose(&ac);
    worker_done(w);
    T.vt->close(s);
}

static void a_write_completes_once_committed(void **state)
{
    (void)state;
    setup_five();
    crest__store_worker *w = worker_of(T.s);
    crest__sess *ss = sess_on(T.s, w, 0, NULL);
    assert_i64_eq(sess_ok(ss, "SELECT count(*) FROM t", NULL, 0, CREST__QF_READ)->nrows, 1);
    crest__val v[] = {vint(6), vtext("six")};
    crest__rows *r = sess_ok(ss, "INSERT INTO t (id, name) VALUES ($1, $2) RETURNING id", v, 2, 0);
    assert_cell_int(r, 0, 0, 6);
    /* Another connection sees it before the session ends. */
    assert_i64_eq(count_of("t"), 6);
    /* A read after the write, in the same session, sees it too. */
    r = sess_ok(ss, "SELECT count(*) FROM t", NULL, 0, CREST__QF_READ);
    assert_cell_int(r, 0, 0, 6);
    T.vt->sess_end(ss, NULL);
    worker_done(w);
}

static void a_failure_leaves_the_session_usable(void **state)
{
    (void)state;
    setup_five();
    crest__store_worker *w = worker_of(T.s);
    crest__sess *ss = sess_on(T.s, w, 0, NULL);
    sess_ok(ss, "SELECT count(*) FROM t", NULL, 0, CREST__QF_READ); /* a read-only transaction is open */
    done d;
    assert_int_equal(start(ss, "SELECT * FROM no_such_table", NULL, 0, CREST__QF_READ, &d), 1);
    assert_null(d.rows);
    assert_kind(&d.err, CREST__DBERR_OTHER);
    crest__val v[] = {vint(1), vtext("again")};
    assert_int_equal(start(ss, "INSERT INTO t (id, name) VALUES ($1, $2)", v, 2, 0, &d), 1);
    assert_kind(&d.err, CREST__DBERR_UNIQUE);
    crest__rows *r = sess_ok(ss, "SELECT count(*) FROM t", NULL, 0, CREST__QF_READ);
    assert_cell_int(r, 0, 0, 5);
    T.vt->sess_end(ss, NULL);
    worker_done(w);
}

static void a_broken_connection_is_replaced(void **state)
{
    (void)state;
    crest__store *s = open_pool(2, 5000, 8);
    crest__store_worker *w = worker_of(s);
    crest__sess *ss = sess_on(s, w, 0, NULL);
    int64_t pid = backend_pid(ss);
    T.vt->sess_end(ss, NULL);
    /* The server ends every connection of the worker. */
    ok("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
       " AND pid <> pg_backend_pid()",
       NULL, 0, CREST__QF_READ);
    /* Requests fail as unavailable (never as anything else) until the pool
     * reconnects, then run on a new connection. */
    int64_t now_pid = 0;
    int unavailable = 0;
    for (int i = 0; i < 200 && !now_pid; i++) {
        ss = sess_on(s, w, 0, NULL);
        done d;
        assert_int_equal(start(ss, "SELECT pg_backend_pid()::bigint", NULL, 0, CREST__QF_READ, &d), 1);
        if (d.rows)
            now_pid = crest__rows_cell(d.rows, 0, 0)->v.i;
        else {
            assert_kind(&d.err, CREST__DBERR_UNAVAILABLE);
            unavailable++;
            int none = 0;
            pump_until(w, &none, 1, 50);
        }
        T.vt->sess_end(ss, NULL);
    }
    assert_true(now_pid != 0);
    assert_true(now_pid != pid);
    worker_done(w);
    T.vt->close(s);
}

static void the_deadline_stops_the_statement_on_the_server(void **state)
{
    (void)state;
    crest__store_worker *w = worker_of(T.s);
    crest__sess *ss = sess_on(T.s, w, crest__now_us() + 300000, NULL);
    uint64_t t0 = crest__now_us();
    done d;
    assert_int_equal(start(ss, endless_read, NULL, 0, CREST__QF_READ, &d), 1);
    assert_kind(&d.err, CREST__DBERR_DEADLINE);
    assert_true(crest__now_us() - t0 < 5000000);
    bool timed_out = false;
    T.vt->sess_end(ss, &timed_out);
    assert_true(timed_out);
    crest__rows *r = ok("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active'"
                        " AND query LIKE 'WITH RECURSIVE%'",
                        NULL, 0, CREST__QF_READ);
    assert_cell_int(r, 0, 0, 0);
    /* The connection serves the next request. */
    ss = sess_on(T.s, w, 0, NULL);
    assert_cell_int(sess_ok(ss, "SELECT 1::bigint", NULL, 0, CREST__QF_READ), 0, 0, 1);
    T.vt->sess_end(ss, NULL);
    worker_done(w);
}

static void a_cancel_stops_a_running_read(void **state)
{
    (void)state;
    crest__store_worker *w = worker_of(T.s);
    crest__sess *ss = sess_on(T.s, w, 0, NULL);
    done d;
    send(ss, endless_read, NULL, 0, CREST__QF_READ, &d);
    assert_false(pump_until(w, &d.calls, 1, 300)); /* running */
    uint64_t t0 = crest__now_us();
    T.vt->cancel(ss); /* the client left */
    assert_true(pump_until(w, &d.calls, 1, 10000));
    assert_true(crest__now_us() - t0 < 5000000);
    assert_null(d.rows);
    assert_kind(&d.err, CREST__DBERR_UNAVAILABLE);
    bool timed_out = true;
    T.vt->sess_end(ss, &timed_out);
    assert_false(timed_out);
    worker_done(w);
}

/* A C handler's own transaction on the loop: its BEGIN ... COMMIT holds
 * (crest does not commit each write of it), a statement that fails inside
 * it undoes that statement only (as on SQLite), its ROLLBACK undoes all, and
 * one never ended is rolled back when the session ends. */
static void a_handlers_own_transaction_holds_on_the_loop(void **state)
{
    (void)state;
    setup_five();
    crest__store *s = open_pool(1, 5000, 8); /* one connection: the next session waits for it */
    crest__store_worker *w = worker_of(s);
    crest__sess *ss = sess_on(s, w, crest__now_us() + 10000000, NULL);
    const unsigned B = CREST__QF_TXN_BEGIN | CREST__QF_NOCACHE, E = CREST__QF_TXN_END | CREST__QF_NOCACHE;
    done d;
    assert_int_equal(start(ss, "BEGIN", NULL, 0, B, &d), 1);
    assert_non_null(d.rows);
    sess_ok(ss, "INSERT INTO t (id, name) VALUES (10, 'ten')", NULL, 0, 0);
    /* Not committed: another connection does not see it. */
    assert_cell_int(ok("SELECT count(*) FROM t WHERE id = 10", NULL, 0, CREST__QF_READ), 0, 0, 0);
    assert_int_equal(start(ss, "INSERT INTO t (id, name) VALUES (1, 'taken')", NULL, 0, 0, &d), 1);
    assert_null(d.rows);
    assert_kind(&d.err, CREST__DBERR_UNIQUE);
    sess_ok(ss, "INSERT INTO t (id, name) VALUES (11, 'eleven')", NULL, 0, 0);
    assert_int_equal(start(ss, "COMMIT", NULL, 0, E, &d), 1);
    assert_non_null(d.rows);
    assert_cell_int(ok("SELECT count(*) FROM t WHERE id IN (10, 11)", NULL, 0, CREST__QF_READ), 0, 0, 2);
    /* ROLLBACK undoes what the transaction did. */
    assert_int_equal(start(ss, "begin", NULL, 0, B, &d), 1);
    sess_ok(ss, "DELETE FROM t WHERE id = 10", NULL, 0, 0);
    assert_int_equal(start(ss, "ROLLBACK", NULL, 0, E, &d), 1);
    assert_non_null(d.rows);
    assert_cell_int(ok("SELECT count(*) FROM t WHERE id = 10", NULL, 0, CREST__QF_READ), 0, 0, 1);
    /* Left open: undone when the session ends. */
    assert_int_equal(start(ss, "BEGIN", NULL, 0, B, &d), 1);
    sess_ok(ss, "DELETE FROM t WHERE id = 11", NULL, 0, 0);
    T.vt->sess_end(ss, NULL);
    ss = sess_on(s, w, 0, NULL); /* the same connection, once the rollback is through */
    assert_cell_int(sess_ok(ss, "SELECT count(*) FROM t WHERE id = 11", NULL, 0, CREST__QF_READ), 0, 0, 1);
    T.vt->sess_end(ss, NULL);
    worker_done(w);
    T.vt->close(s);
}

/* A request whose session a completion ends, as the engine's request end
 * does: the session ended, then its arena (which holds it) freed. */
typedef struct ending {
    crest__arena *arena;
    crest__sess *ss;
    done d;
} ending;

static void end_the_request(void *ud, crest__rows *rows, const crest__dberr *err)
{
    ending *e = ud;
    on_done(&e->d, rows, err);
    T.vt->sess_end(e->ss, NULL);
    crest__arena_dispose(e->arena);
    free(e->arena);
    e->arena = NULL;
}

/* Regression (found by make bench on PostgreSQL, 64 clients over a pool of
 * 8: "corrupted double-linked list", then abort): a client that leaves while
 * its request waits for a connection. The cancel fails the waiting statement
 * at once; its completion ends the request and frees the session, which the
 * cancel then read again (ASan: heap-use-after-free in fail_waiting). */
static void cancel_while_waiting_for_a_connection_ends_the_request_once(void **state)
{
    (void)state;
    crest__store *s = open_pool(1, 5000, 8);
    crest__store_worker *w = worker_of(s);
    crest__sess *a = sess_on(s, w, 0, NULL);
    backend_pid(a); /* a holds the one connection */
    ending e = {.arena = malloc(sizeof(crest__arena))};
    assert_non_null(e.arena);
    crest__arena_init(e.arena, 4096, 0);
    e.ss = sess_in(e.arena, s, w, 0, NULL);
    crest__query q = Q("SELECT 1::bigint", NULL, 0, CREST__QF_READ);
    assert_int_equal(T.vt->query(e.ss, &q, end_the_request, &e), 0);
    assert_false(pump_until(w, &e.d.calls, 1, 100)); /* waiting */
    T.vt->cancel(e.ss); /* the client left */
    assert_int_equal(e.d.calls, 1);
    assert_null(e.arena);
    assert_kind(&e.d.err, CREST__DBERR_UNAVAILABLE);
    /* The pool goes on: a's connection serves the next session. */
    assert_cell_int(sess_ok(a, "SELECT 2::bigint", NULL, 0, CREST__QF_READ), 0, 0, 2);
    T.vt->sess_end(a, NULL);
    crest__sess *b = sess_on(s, w, 0, NULL);
    assert_cell_int(sess_ok(b, "SELECT 3::bigint", NULL, 0, CREST__QF_READ), 0, 0, 3);
    T.vt->sess_end(b, NULL);
    assert_int_equal(e.d.calls, 1);
    worker_done(w);
    T.vt->close(s);
}

static void hung(int sig)
{
    (void)sig;
    static const char msg[] = "pump_until did not return: its loop waits with no timer left\n";
    ssize_t r = write(2, msg, sizeof msg - 1);
    (void)r;
    _exit(1);
}

/* The harness's bug that hung a_cancel_stops_a_running_read about one run
 * in five: pump_until's timer fired a moment before its own clock said the
 * time was up (the loop's clock counts whole milliseconds), and the loop,
 * run once more with no timer left, waited on idle sockets forever. It
 * happens when the loop last woke at an earlier point of a millisecond
 * than the wait began: here an answer from the database wakes it during
 * each short wait. Under a watchdog, each wait ends false. */
static void pump_until_returns_when_its_time_is_up_on_an_idle_loop(void **state)
{
    (void)state;
    crest__store_worker *w = worker_of(T.s);
    int never = 0;
    signal(SIGALRM, hung);
    alarm(30);
    crest__sess *ss = sess_on(T.s, w, 0, NULL);
    for (int i = 0; i < 300; i++) {
        done d;
        send(ss, "SELECT 1", NULL, 0, CREST__QF_READ, &d);
        assert_false(pump_until(w, &never, 1, 3));
        assert_true(pump_until(w, &d.calls, 1, 10000));
    }
    alarm(0);
    signal(SIGALRM, SIG_DFL);
    T.vt->sess_end(ss, NULL);
    worker_done(w);
}

static void a_statement_a_schema_change_made_stale_is_prepared_again(void **state)
{
    (void)state;
    setup_five();
    crest__store *s = open_pool(1, 5000, 8);
    crest__store_worker *w = worker_of(s);
    crest__sess *ss = sess_on(s, w, 0, NULL);
    crest__val id = vint(2);
    assert_int_equal(sess_ok(ss, "SELECT * FROM t WHERE id = $1", &id, 1, CREST__QF_READ)->ncols, 5);
    T.vt->sess_end(ss, NULL);
    ok("ALTER TABLE t ADD COLUMN extra INTEGER", NULL, 0, 0);
    ss = sess_on(s, w, 0, NULL);
    crest__rows *r = sess_ok(ss, "SELECT * FROM t WHERE id = $1", &id, 1, CREST__QF_READ);
    assert_int_equal(r->ncols, 6);
    assert_cell_text(r, 0, 1, "two");
    T.vt->sess_end(ss, NULL);
    worker_done(w);
    T.vt->close(s);
}

/* A table whose inserts fail with 40001 (a serialization failure) while
 * the sequence `attempts` has not passed fail_plan.n: nextval is not rolled
 * back with the transaction, so it counts every attempt. */
static void setup_losing_inserts(void)
{
    script("CREATE TABLE notes (id serial PRIMARY KEY, title text);"
           "CREATE SEQUENCE attempts;"
           "CREATE TABLE fail_plan (n int NOT NULL); INSERT INTO fail_plan VALUES (0);"
           "CREATE FUNCTION lose_first() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
           "  IF nextval('attempts') <= (SELECT n FROM fail_plan) THEN"
           "    RAISE EXCEPTION 'lost' USING ERRCODE = '40001'; END IF; RETURN NEW; END $$;"
           "CREATE TRIGGER lose_first BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION lose_first()");
}

/* The next n inserts fail; then the attempts of one insert on ss (kind:
 * how it ended, -1 for rows). */
static int64_t attempts_of_insert(crest__sess *ss, int n, int *kind)
{
    char plan[96];
    snprintf(plan, sizeof plan, "SELECT setval('attempts', 1, false); UPDATE fail_plan SET n = %d", n);
    script(plan);
    done d;
    assert_int_equal(start(ss, "INSERT INTO notes (title) VALUES ('x') RETURNING id", NULL, 0, 0, &d), 1);
    *kind = d.rows ? -1 : (int)d.err.kind;
    crest__rows *r = ok("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM attempts", NULL, 0,
                        CREST__QF_READ);
    return crest__rows_cell(r, 0, 0)->v.i;
}

static void a_transaction_that_lost_to_a_concurrent_one_runs_again_up_to_3_times(void **state)
{
    (void)state;
    setup_losing_inserts();
    crest__store_worker *w = worker_of(T.s);
    int kind;
    /* On the loop: a write is one segment, BEGIN to COMMIT, sent again. */
    crest__sess *ss = sess_on(T.s, w, 0, NULL);
    assert_i64_eq(attempts_of_insert(ss, 2, &kind), 3);
    assert_int_equal(kind, -1);
    assert_i64_eq(attempts_of_insert(ss, 100, &kind), 1 + CREST__CONFLICT_RETRIES);
    assert_int_equal(kind, CREST__DBERR_CONFLICT);
    T.vt->sess_end(ss, NULL);
    /* Off the loop, a statement outside a transaction of the request's. */
    ss = sess_on(T.s, NULL, 0, NULL);
    assert_i64_eq(attempts_of_insert(ss, 3, &kind), 4);
    assert_int_equal(kind, -1);
    assert_i64_eq(attempts_of_insert(ss, 100, &kind), 1 + CREST__CONFLICT_RETRIES);
    assert_int_equal(kind, CREST__DBERR_CONFLICT);
    /* In a write unit, not the store's to run again: the unit's caller's. */
    crest__dberr e;
    assert_int_equal(T.vt->write_begin(ss, &e), 0);
    assert_i64_eq(attempts_of_insert(ss, 1, &kind), 1);
    assert_int_equal(kind, CREST__DBERR_CONFLICT);
    T.vt->write_end(ss, false, &e);
    T.vt->sess_end(ss, NULL);
    crest__rows *r = ok("SELECT count(*) FROM notes", NULL, 0, CREST__QF_READ);
    assert_cell_int(r, 0, 0, 2);
    worker_done(w);
}

/* Runs w's loop until pred(s) holds, at most ms; whether it does. */
static bool pump_for(crest__store_worker *w, crest__store *s, bool (*pred)(const crest__pool_stats *), unsigned ms)
{
    crest__pool_stats ps;
    uint64_t until = crest__now_us() + (uint64_t)ms * 1000;
    for (;;) {
        T.vt->pool_stats(s, &ps);
        if (pred(&ps))
            return true;
        if (crest__now_us() >= until)
            return false;
        int none = 0;
        pump_until(w, &none, 1, 20);
    }
}

static bool two_idle(const crest__pool_stats *p) { return p->idle == 2 && !p->connecting && !p->down; }
static bool all_down_after_failures(const crest__pool_stats *p) { return p->down == 2 && p->connect_failures >= 2; }
static bool back_again(const crest__pool_stats *p) { return p->idle == 2 && p->reconnects == 2; }

static void terminate_the_pools_sessions(void)
{
    ok("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database()"
       " AND pid <> pg_backend_pid()",
       NULL, 0, CREST__QF_READ);
}

static void a_host_name_is_looked_up_on_the_loop_and_one_that_stops_resolving_is_a_failed_connect(void **state)
{
    (void)state;
    crest__store_config cfg = {0};
    T.fx->config(T.db, &cfg);
    char ci[1200];
    snprintf(ci, sizeof ci, "%s host=localhost", cfg.path); /* (the last host= wins) */
    cfg.path = ci;
    cfg.pool_size = 2;
    crest__store *s = open_cfg(&cfg);
    pg_store *ps = (pg_store *)s;
    assert_non_null(ps->resolve_host);
    assert_string_equal(ps->resolve_host, "localhost");
    crest__store_worker *w = worker_of(s);
    /* The second connection is made on the loop: looked up, then connected. */
    assert_true(pump_for(w, s, two_idle, 10000));
    crest__sess *ss = sess_on(s, w, 0, NULL);
    assert_cell_int(sess_ok(ss, "SELECT 1::bigint", NULL, 0, CREST__QF_READ), 0, 0, 1);
    T.vt->sess_end(ss, NULL);
    /* The name stops resolving, and the server ends the pool's sessions:
     * every reconnect fails, as a failed connect; requests fail at once as
     * UNAVAILABLE (503 with Retry-After). */
    free(ps->resolve_host);
    ps->resolve_host = strdup("nonexistent.invalid");
    terminate_the_pools_sessions();
    assert_true(pump_for(w, s, all_down_after_failures, 10000));
    ss = sess_on(s, w, 0, NULL);
    done d;
    assert_int_equal(start(ss, "SELECT 1::bigint", NULL, 0, CREST__QF_READ, &d), 1);
    assert_null(d.rows);
    assert_kind(&d.err, CREST__DBERR_UNAVAILABLE);
    T.vt->sess_end(ss, NULL);
    /* It resolves again: the pool comes back by itself. */
    free(ps->resolve_host);
    ps->resolve_host = strdup("localhost");
    assert_true(pump_for(w, s, back_again, 15000));
    ss = sess_on(s, w, 0, NULL);
    assert_cell_int(sess_ok(ss, "SELECT 2::bigint", NULL, 0, CREST__QF_READ), 0, 0, 2);
    T.vt->sess_end(ss, NULL);
    worker_done(w);
    T.vt->close(s);
}

static bool one_down(const crest__pool_stats *p) { return p->down == 1 && p->connect_failures >= 1; }

/* fix: the log's db_connection_lost line wrote its reason as it was, and a
 * reason with a quote or a newline in it (libpq's messages have both; a
 * host name that does not resolve is quoted) broke the line's JSON. */
static void db_connection_lost_reason_is_escaped_as_json(void **state)
{
    (void)state;
    crest__store_config cfg = {0};
    T.fx->config(T.db, &cfg);
    char ci[1200];
    snprintf(ci, sizeof ci, "%s host=localhost", cfg.path);
    cfg.path = ci;
    cfg.pool_size = 1;
    crest__store *s = open_cfg(&cfg);
    pg_store *ps = (pg_store *)s;
    crest__store_worker *w = worker_of(s);
    free(ps->resolve_host);
    ps->resolve_host = strdup("a \"quoted\"\nname.invalid");
    /* stderr (the log) into a file for a while */
    FILE *log = tmpfile();
    assert_non_null(log);
    fflush(stderr);
    int saved = dup(2);
    assert_true(saved >= 0 && dup2(fileno(log), 2) == 2);
    terminate_the_pools_sessions();
    bool down = pump_for(w, s, one_down, 10000);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_true(down);
    rewind(log);
    char line[4096];
    int lines = 0, unresolved = 0;
    while (fgets(line, sizeof line, log)) {
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (!o)
            fail_msg("not one JSON object: %s", line);
        assert_string_equal(json_string_value(json_object_get(o, "event")), "db_connection_lost");
        const char *why = json_string_value(json_object_get(o, "reason"));
        assert_non_null(why);
        unresolved += strstr(why, "\"a \"quoted\"\nname.invalid\" does not resolve") != NULL;
        json_decref(o);
        lines++;
    }
    fclose(log);
    assert_true(lines >= 2);
    assert_true(unresolved >= 1);
    free(ps->resolve_host);
    ps->resolve_host = strdup("localhost");
    worker_done(w);
    T.vt->close(s);
}

/* What crest__pg_host_to_resolve makes of a conninfo: the name, or NULL. */
static const char *to_resolve(const char *conninfo, int *rc)
{
    static char out[64];
    char **keys, **vals, *host = NULL, *msg = NULL;
    assert_int_equal(crest__pg_params(conninfo, NULL, &keys, &vals, &msg), 0);
    *rc = crest__pg_host_to_resolve(keys, vals, &host, &msg);
    if (*rc)
        assert_non_null(strstr(msg, "several hosts"));
    snprintf(out, sizeof out, "%s", host ? host : "");
    free(host);
    free(msg);
    crest__pg_params_free(keys, vals);
    return out;
}

static void only_a_host_name_is_looked_up_and_several_with_a_name_are_refused(void **state)
{
    (void)state;
    int rc;
    assert_string_equal(to_resolve("host=db.example port=5432", &rc), "db.example");
    assert_string_equal(to_resolve("postgresql://crest@localhost:5432/x", &rc), "localhost");
    assert_string_equal(to_resolve("host=127.0.0.1", &rc), "");
    assert_string_equal(to_resolve("host=::1", &rc), "");
    assert_string_equal(to_resolve("host=/var/run/postgresql", &rc), "");
    assert_string_equal(to_resolve("host=db.example hostaddr=10.0.0.1", &rc), "");
    assert_string_equal(to_resolve("host=10.0.0.1,10.0.0.2", &rc), "");
    assert_int_equal(rc, 0);
    assert_string_equal(to_resolve("host=db.example,10.0.0.2", &rc), "");
    assert_int_equal(rc, -1);
}

/* The value of key in the parameters crest connects with, or "". */
static const char *param_of(const char *conninfo, const char *key)
{
    static char out[64];
    char **keys, **vals, *msg = NULL;
    out[0] = 0;
    assert_int_equal(crest__pg_params(conninfo, NULL, &keys, &vals, &msg), 0);
    for (size_t i = 0; keys[i]; i++)
        if (!strcmp(keys[i], key))
            snprintf(out, sizeof out, "%s", vals[i]);
    crest__pg_params_free(keys, vals);
    return out;
}

static void a_blocking_connect_gives_up_after_10_s_unless_the_conninfo_says(void **state)
{
    (void)state;
    assert_string_equal(param_of("host=127.0.0.1 dbname=x", "connect_timeout"), "10");
    assert_string_equal(param_of("host=127.0.0.1 dbname=x connect_timeout=3", "connect_timeout"), "3");
    assert_string_equal(param_of("postgresql://crest@127.0.0.1/x?connect_timeout=0", "connect_timeout"), "0");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        CT(reads_complete_while_the_loop_runs),
        CT(the_last_read_ends_its_transaction_in_its_round_trip),
        CT(a_session_holds_its_connection_until_it_ends),
        CT(waiting_is_bounded_in_time_and_in_length),
        CT(a_write_completes_once_committed),
        CT(a_failure_leaves_the_session_usable),
        CT(a_broken_connection_is_replaced),
        CT(the_deadline_stops_the_statement_on_the_server),
        CT(a_cancel_stops_a_running_read),
        CT(a_handlers_own_transaction_holds_on_the_loop),
        CT(pump_until_returns_when_its_time_is_up_on_an_idle_loop),
        CT(cancel_while_waiting_for_a_connection_ends_the_request_once),
        CT(a_statement_a_schema_change_made_stale_is_prepared_again),
        CT(a_transaction_that_lost_to_a_concurrent_one_runs_again_up_to_3_times),
        CT(a_host_name_is_looked_up_on_the_loop_and_one_that_stops_resolving_is_a_failed_connect),
        CT(db_connection_lost_reason_is_escaped_as_json),
        CT(only_a_host_name_is_looked_up_and_several_with_a_name_are_refused),
        CT(a_blocking_connect_gives_up_after_10_s_unless_the_conninfo_says),
    };
    return contract_run_store("postgres_loop", "postgres", tests, COUNT_OF(tests));
}
