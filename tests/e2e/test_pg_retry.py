"""crest on PostgreSQL when a transaction loses to a concurrent one
(serialization failure 40001, deadlock 40P01): the whole transaction runs
again, up to 3 times, then the answer is 503 with Retry-After. On the
worker's loop the transaction is an SQL endpoint's statement (one pipeline
segment, BEGIN to COMMIT); off it, a REST write's unit (its statements and
hooks, from write_begin to write_end). A real deadlock comes from two SQL
endpoints updating two rows in opposite orders; a serialization failure
from a trigger that raises 40001 for the first attempts it sees, counted by
a sequence (nextval is not rolled back with the transaction): in the
statement, or at COMMIT (a deferred constraint trigger, where SERIALIZABLE
transactions fail)."""
import threading
import time

import httpx
import pytest

from conftest import assert_problem, statements

SETUP = """
CREATE TABLE acct (id int PRIMARY KEY, n int NOT NULL);
INSERT INTO acct VALUES (1, 0), (2, 0);
CREATE TABLE notes (id serial PRIMARY KEY, title text NOT NULL);
CREATE SEQUENCE attempts;
CREATE TABLE fail_plan (n int NOT NULL);
INSERT INTO fail_plan VALUES (0);
CREATE FUNCTION lose_first_attempts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF nextval('attempts') <= (SELECT n FROM fail_plan) THEN
    RAISE EXCEPTION 'lost to a concurrent transaction' USING ERRCODE = '40001';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER lose_first_attempts BEFORE INSERT ON notes
  FOR EACH ROW EXECUTE FUNCTION lose_first_attempts();
-- the same, at COMMIT (a deferred constraint trigger: as SERIALIZABLE fails there)
CREATE TABLE late_notes (id serial PRIMARY KEY, title text NOT NULL);
CREATE CONSTRAINT TRIGGER lose_first_attempts AFTER INSERT ON late_notes DEFERRABLE INITIALLY DEFERRED
  FOR EACH ROW EXECUTE FUNCTION lose_first_attempts();
"""


def app_text(uri):
    return f"""\
database: {uri}
pool: {{size: 2, acquire_timeout: 5s}}
models:
  Task:
    table: tasks
    fields:
      title: {{type: string, required: true}}
  LateTask:
    table: late_tasks
    fields:
      title: {{type: string, required: true}}
modules:
  tasks:
    model: Task
  late_tasks:
    model: LateTask
endpoints:
  - method: POST
    path: /late-notes
    params:
      title: {{type: string, required: true}}
    sql: INSERT INTO late_notes (title) VALUES (:title) RETURNING id
    returns: one
  - method: POST
    path: /notes
    params:
      title: {{type: string, required: true}}
    sql: INSERT INTO notes (title) VALUES (:title) RETURNING id
    returns: one
  - method: POST
    path: /transfer
    params: {{first: int, second: int, s: float}}
    sql: >
      WITH a AS (UPDATE acct SET n = n + 1 WHERE id = :first
                 RETURNING nextval('attempts') AS attempt, (SELECT 1 FROM pg_sleep(:s)) AS slept)
      UPDATE acct SET n = n + 1 WHERE id = :second AND (SELECT count(*) FROM a) = 1 RETURNING id
    returns: one
    timeout: 30s
"""


@pytest.fixture
def srv(crest, pg_db):
    pg_db.psql(SETUP)
    s = crest(app_text(pg_db.uri))
    # (the trigger on the model's table, which crest made at start)
    pg_db.psql("CREATE TRIGGER lose_first_attempts BEFORE INSERT ON tasks "
               "FOR EACH ROW EXECUTE FUNCTION lose_first_attempts();"
               "CREATE CONSTRAINT TRIGGER lose_first_attempts AFTER INSERT ON late_tasks "
               "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION lose_first_attempts()")
    s.db = pg_db
    return s


def plan_failures(db, n):
    """The next n attempts to insert a note or a task fail with 40001."""
    db.psql(f"SELECT setval('attempts', 1, false); UPDATE fail_plan SET n = {n}")


def attempts(db):
    return int(db.psql("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM attempts").strip())


def count(db, table, title):
    return int(db.psql(f"SELECT count(*) FROM {table} WHERE title = '{title}'").strip())


ROUTES = {  # what inserts: an SQL endpoint (on the loop), a REST create (a write unit); failing in the
    # statement, or at COMMIT
    "sql_endpoint": ("/notes", "notes", 200),
    "rest_create": ("/tasks", "tasks", 201),
    "sql_endpoint_at_commit": ("/late-notes", "late_notes", 200),
    "rest_create_at_commit": ("/late_tasks", "late_tasks", 201),
}


@pytest.mark.parametrize("route", sorted(ROUTES))
@pytest.mark.parametrize("fails", [1, 3])
def test_postgres_serialization_failure_is_retried_then_succeeds(srv, route, fails):
    path, table, status = ROUTES[route]
    plan_failures(srv.db, fails)
    r = srv.request("POST", path, json={"title": f"after {fails}"})
    assert r.status_code == status, r.text
    assert attempts(srv.db) == fails + 1, "each failed attempt ran again, once"
    assert count(srv.db, table, f"after {fails}") == 1, "the rolled-back attempts left nothing"


# The statements each route runs when its first two attempts lose (/metrics' crest_db_statements_total
# counts each run): an SQL endpoint's one statement three times; a REST create's unit (the insert, then the
# read of the row) again from its start: the insert alone when it lost in the statement, both when at COMMIT.
RUNS_AFTER_TWO = {"sql_endpoint": 3, "sql_endpoint_at_commit": 3, "rest_create": 2 + 2, "rest_create_at_commit": 3 * 2}


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_postgres_each_run_of_a_retried_statement_counts(srv, route):
    path, table, status = ROUTES[route]
    plan_failures(srv.db, 2)
    before = statements(srv)
    r = srv.request("POST", path, json={"title": "counted"})
    assert r.status_code == status, r.text
    assert attempts(srv.db) == 3
    assert statements(srv) - before == RUNS_AFTER_TWO[route]


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_postgres_serialization_failure_four_times_is_503_with_retry_after(srv, route):
    path, table, _ = ROUTES[route]
    plan_failures(srv.db, 100)
    r = srv.request("POST", path, json={"title": "never"})
    assert_problem(r, 503)
    assert r.json()["code"] == "database_busy"
    assert r.headers["retry-after"] == "1"
    assert attempts(srv.db) == 4, "the first attempt and 3 more"
    assert count(srv.db, table, "never") == 0
    # The session and its connection serve on.
    plan_failures(srv.db, 0)
    assert srv.request("POST", path, json={"title": "next"}).status_code == ROUTES[route][2]


def test_postgres_deadlock_between_two_sql_endpoints_is_retried_and_both_succeed(srv):
    answers = {}
    go = threading.Barrier(2)

    def transfer(name, first, second):
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            go.wait()
            t0 = time.monotonic()
            r = c.post("/transfer", json={"first": first, "second": second, "s": 1.5})
            answers[name] = (r, time.monotonic() - t0)

    ts = [threading.Thread(target=transfer, args=("x", 1, 2)), threading.Thread(target=transfer, args=("y", 2, 1))]
    for t in ts:
        t.start()
    for t in ts:
        t.join(40)
    assert [answers[n][0].status_code for n in "xy"] == [200, 200], {n: answers[n][0].text for n in answers}
    # Each locked its first row, slept, and wanted the other's: the server
    # ended one of them (40P01), which ran again. (A transfer run again at
    # once may take its first row back before the other gets it, and
    # deadlock again: one run in five or so here; each ran 4 times at most.)
    times = {n: round(answers[n][1], 2) for n in "xy"}
    n = attempts(srv.db)
    assert 3 <= n <= 8, f"two transfers, at least one run again, each at most 4 times: {n}, {times}"
    rows = srv.db.psql("SELECT id, n FROM acct ORDER BY id").split()
    assert rows == ["1|2", "2|2"], f"each transfer added one to each row, once: {rows}"
    slow = max(answers[n][1] for n in "xy")
    assert slow >= 3.0, f"the retried transfer slept twice: {slow:.2f} s"
    print(f"\n[deadlock] both 200 after {n} attempts; answers in {answers['x'][1]:.2f} s and {answers['y'][1]:.2f} s")
