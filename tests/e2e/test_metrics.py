"""GET /metrics: Prometheus' text format, parsed strictly here; counts that
match the requests sent (across workers), a histogram whose buckets add up,
bounded labels (a client's path never becomes a label), the process
metrics, `metrics: off`, and auth on /metrics like on any route. The
statements run on the database for requests (crest_db_statements_total, both
stores): exactly what each kind of request runs, a list's the same whatever
its page size, a retry's each run. On PostgreSQL, the connection pools
(crest_db_pool_*): gauges that follow the requests, a queue and waits under
a saturated pool, reconnects after the server ended crest's sessions; SQLite
has no pool and shows none."""
import re
import subprocess
import threading
import time

import httpx
import pytest

from conftest import CREST_BIN, JWT_ENV, assert_problem, bearer, db_rows, on_store, run_cli, statements
from pg import pgcluster

APP = """\
database: sqlite:m.db
models:
  Task:
    fields:
      title: {type: string, required: true}
modules:
  tasks:
    model: Task
endpoints:
  - path: /one
    sql: SELECT 1 AS one
    returns: one
"""

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+]+|\+Inf|NaN)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse(text):
    """{(name, frozenset(labels)): value}, checking every line's syntax, that
    each family has one TYPE line before its samples, and the HELP lines."""
    assert text.endswith("\n")
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            assert len(line.split(" ", 3)) == 4, line
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram"), line
            assert name not in types, f"two TYPE lines for {name}"
            types[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, _, labels, value = m.groups()
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, f"{name} has no TYPE line before it"
        got = {}
        rest = labels or ""
        while rest:
            lm = LABEL.match(rest)
            assert lm, f"bad labels in {line!r}"
            got[lm.group(1)] = lm.group(2)
            rest = rest[lm.end():]
        key = (name, frozenset(got.items()))
        assert key not in samples, f"duplicate series {line!r}"
        samples[key] = float(value)
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(s, **kw):
    r = s.get("/metrics", **kw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(r.text)


def test_counts_match_the_requests_across_workers(crest):
    s = crest(APP, workers=2)
    for _ in range(10):
        assert s.get("/one").status_code == 200
    for _ in range(3):
        assert s.get("/tasks/999").status_code == 404
    assert s.request("POST", "/tasks", json={"title": "x"}).status_code == 201
    assert s.request("POST", "/tasks", json={}).status_code == 422
    for i in range(4):  # four different paths, one series
        assert s.get(f"/nothing/here/{i}").status_code == 404
    samples, types = scrape(s)
    assert types["crest_http_requests_total"] == "counter"
    req = "crest_http_requests_total"
    assert value(samples, req, method="GET", route="/one", code="200") == 10
    assert value(samples, req, method="GET", route="/tasks/{id}", code="404") == 3
    assert value(samples, req, method="POST", route="/tasks", code="201") == 1
    assert value(samples, req, method="POST", route="/tasks", code="422") == 1
    assert value(samples, req, method="", route="(unmatched)", code="404") == 4
    routes = {dict(k[1]).get("route") for k in samples if k[0] == req}
    assert not any(r.startswith("/nothing") for r in routes), "a client's path never becomes a label"
    # A second scrape counts the first.
    samples2, _ = scrape(s)
    assert value(samples2, req, method="GET", route="/metrics", code="200") == 1


def test_histogram_is_consistent(crest):
    s = crest(APP)
    for _ in range(7):
        s.get("/one")
    samples, types = scrape(s)
    h = "crest_http_request_duration_seconds"
    assert types[h] == "histogram"
    lab = {"method": "GET", "route": "/one"}
    buckets = sorted(((float("inf") if dict(k[1])["le"] == "+Inf" else float(dict(k[1])["le"])), v)
                     for k, v in samples.items() if k[0] == h + "_bucket" and dict(k[1]).items() >= lab.items())
    assert len(buckets) >= 10 and buckets[-1][0] == float("inf")
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "buckets are cumulative"
    assert buckets[-1][1] == 7 == value(samples, h + "_count", **lab)
    total = value(samples, h + "_sum", **lab)
    assert 0 < total < 7 * 5.0
    les = [dict(k[1])["le"] for k in samples if k[0] == h + "_bucket" and dict(k[1])["route"] == "/one"]
    assert "0.00025" in les and "10" in les and "+Inf" in les


def test_process_and_connection_metrics(crest):
    s = crest(APP)
    samples, types = scrape(s)
    assert types["process_resident_memory_bytes"] == "gauge"
    assert 1 << 20 < value(samples, "process_resident_memory_bytes") < 1 << 30
    assert value(samples, "process_virtual_memory_bytes") >= value(samples, "process_resident_memory_bytes")
    assert value(samples, "process_cpu_seconds_total") > 0
    assert 3 <= value(samples, "process_open_fds") <= value(samples, "process_max_fds")
    assert abs(value(samples, "process_start_time_seconds") - time.time()) < 120
    assert value(samples, "crest_http_connections") >= 1  # this scrape's own
    assert value(samples, "crest_build_info", version="0.1.0") == 1


def test_metrics_off(crest):
    s = crest("metrics: off\n" + APP)
    assert_problem(s.get("/metrics"), 404)
    assert "/metrics" not in s.get("/openapi.json").json()["paths"]


def test_a_route_of_the_app_named_metrics_wins(crest):
    s = crest(APP + "  - path: /metrics\n    sql: SELECT 42 AS answer\n    returns: one\n")
    assert s.get("/metrics").json() == {"answer": 42}


AUTH = """\
database: sqlite:m.db
auth:
  jwt:
    algorithms: [HS256]
    secret_env: CREST_JWT_SECRET
endpoints:
  - path: /one
    permission: public
    sql: SELECT 1 AS one
    returns: one
"""


def tok(*perms):
    return bearer("ops", permissions=list(perms))


def test_with_auth_metrics_are_denied_by_default(crest):
    s = crest(AUTH, env=JWT_ENV)
    assert_problem(s.get("/metrics"), 401)
    assert_problem(s.get("/metrics", headers=tok("anything")), 403)
    op = s.get("/openapi.json").json()["paths"]["/metrics"]["get"]
    assert op["security"] and "401" in op["responses"] and "403" in op["responses"]


def test_with_auth_metrics_take_a_permission(crest):
    s = crest(AUTH + "metrics: {permission: [ops.metrics]}\n", env=JWT_ENV)
    assert_problem(s.get("/metrics"), 401)
    assert_problem(s.get("/metrics", headers=tok("tasks.read")), 403)
    samples, _ = scrape(s, headers=tok("ops.metrics"))
    assert value(samples, "crest_http_requests_total", method="GET", route="/metrics", code="401") == 1
    assert value(samples, "crest_http_requests_total", method="GET", route="/metrics", code="403") == 1
    s2 = crest(AUTH + "metrics: {permission: public}\n", env=JWT_ENV)
    scrape(s2)


@pytest.mark.parametrize("text, msg", [
    ("metrics: maybe\n", "metrics: expected off, on"),
    ("metrics: [a]\n", "metrics: expected off, on"),
    ("metrics: {permission: nobody}\n", "metrics.permission"),
    ("metrics: {who: x}\n", "metrics"),
])
def test_bad_metrics_settings_are_refused(tmp_path, text, msg):
    (tmp_path / "app.yaml").write_text(APP + text)
    r = run_cli([CREST_BIN, "check", str(tmp_path / "app.yaml")], cwd=str(tmp_path))
    assert r.returncode != 0
    assert msg in r.err


# ---------------------------------------------------------------- statements run on the database

STMT = "crest_db_statements_total"


def costs(s, method, path, status, **kw):
    """The statements one request ran (server s has one worker: exact)."""
    before = statements(s)
    r = s.request(method, path, **kw)
    assert r.status_code == status, r.text
    return statements(s) - before


def test_statements_start_at_zero_and_count_what_each_request_runs(crest):
    s = crest(APP)
    r = s.get("/metrics")
    assert f"# HELP {STMT} Statements run on the database for requests" in r.text
    samples, types = parse(r.text)
    assert types[STMT] == "counter"
    assert value(samples, STMT) == 0, "start-up's statements (the model's table) are no request's"
    assert statements(s) == 0, "a scrape runs none"
    task = s.request("POST", "/tasks", json={"title": "x"}).json()
    assert costs(s, "GET", f"/tasks/{task['id']}", 200) == 1
    assert costs(s, "GET", "/tasks/999", 404) == 1
    assert costs(s, "GET", "/one", 200) == 1, "an SQL endpoint: its statement"
    assert costs(s, "GET", "/healthz", 200) == 0
    assert costs(s, "GET", "/openapi.json", 200) == 0
    assert costs(s, "GET", "/metrics", 200) == 0
    assert costs(s, "POST", "/tasks", 422, json={}) == 0, "refused before the database"
    assert costs(s, "GET", "/tasks?where=nope", 400) == 0
    # A write route runs off the loop (on PostgreSQL a blocking connection of its own): counted the same.
    assert costs(s, "DELETE", f"/tasks/{task['id']}", 204) == 1
    assert costs(s, "DELETE", f"/tasks/{task['id']}", 404) == 1


def test_a_list_runs_the_same_statements_whatever_its_page_size(crest):
    s = crest(APP)
    r = s.request("POST", "/tasks", json=[{"title": f"t{i}"} for i in range(30)])
    assert r.status_code == 201, r.text
    for size in (1, 7, 30, 100):
        before = statements(s)
        r = s.get(f"/tasks?count=exact&page_size={size}")
        assert r.status_code == 200 and len(r.json()["data"]) == min(size, 30)
        assert r.json()["meta"]["total_objects"] == 30
        assert statements(s) - before == 2, f"page_size={size}: the page and the count"
        before = statements(s)
        r = s.get(f"/tasks?count=none&page_size={size}")
        assert r.status_code == 200 and len(r.json()["data"]) == min(size, 30)
        assert statements(s) - before == 1, f"page_size={size}, count=none: the page alone"
    assert costs(s, "GET", "/tasks?count=exact&page=3&page_size=7", 200) == 2
    assert costs(s, "GET", "/tasks?count=none&page=3&page_size=7", 200) == 1


def test_statements_of_every_worker_add_up(crest):
    s = crest(APP, workers=2)
    for _ in range(20):
        assert s.get("/one").status_code == 200
    assert statements(s) == 20


def test_a_c_handlers_crest_query_statements_count_its_own_transaction_control_too(query_app):
    s = query_app()
    assert costs(s, "GET", "/swap?a=x&b=1", 200) == 1
    # BEGIN, the insert, ROLLBACK (the handler's own, through crest_query), then the count
    assert costs(s, "POST", "/undo?code=u1", 200) == 4


STALE_APP = """\
database: sqlite:stale.db
pool: {size: 1}
startup_sql:
  - CREATE TABLE IF NOT EXISTS notes (id integer PRIMARY KEY, title text NOT NULL)
  - INSERT INTO notes (id, title) SELECT 1, 'one' WHERE NOT EXISTS (SELECT 1 FROM notes)
endpoints:
  - path: /note
    sql: SELECT * FROM notes WHERE id = 1
    returns: one
"""


def test_a_statement_a_schema_change_made_stale_counts_each_run(crest):
    # (SQLite prepares it again within the one run; PostgreSQL answers 0A000 on the one connection that
    # prepared it, and the store sends it again)
    s = crest(STALE_APP)
    assert costs(s, "GET", "/note", 200) == 1
    db_rows(s, "stale.db", "ALTER TABLE notes ADD COLUMN extra integer")
    assert costs(s, "GET", "/note", 200) == on_store(sqlite=1, postgres=2)
    assert costs(s, "GET", "/note", 200) == 1


# ---------------------------------------------------------------- the database's pools

POOL_APP = """\
database: sqlite:m.db
pool: {size: %d, acquire_timeout: %ds, queue: 2}
endpoints:
  - path: /one
    sql: SELECT 1 AS one
    returns: one
  - path: /locked
    sql: SELECT 1 AS ok FROM pg_advisory_xact_lock(42)
    returns: one
    timeout: 15s
"""

POOL = "crest_db_pool_"


def conns(samples, state):
    return value(samples, POOL + "connections", state=state)


def wait_metrics(s, pred, what, bound=10.0):
    """The first scrape for which pred(samples) holds, within bound seconds."""
    end = time.monotonic() + bound
    while True:
        samples, types = scrape(s)
        if pred(samples):
            return samples, types
        assert time.monotonic() < end, f"{what}: not within {bound} s; pool now " + str(
            {k[0] + str(dict(k[1])): v for k, v in samples.items() if k[0].startswith(POOL) and "bucket" not in k[0]})
        time.sleep(0.05)


def waits(samples):
    """The acquire wait histogram: [(le, cumulative count)], its count and sum."""
    h = POOL + "acquire_wait_seconds"
    buckets = sorted(((float("inf") if dict(k[1])["le"] == "+Inf" else float(dict(k[1])["le"])), v)
                     for k, v in samples.items() if k[0] == h + "_bucket")
    return buckets, value(samples, h + "_count"), value(samples, h + "_sum")


def at(buckets, le):
    return next(v for b, v in buckets if b == le)


def test_no_pool_lines_on_sqlite(crest):
    samples, types = scrape(crest(APP))
    assert not [n for n in types if n.startswith("crest_db_pool_")], types
    assert [n for n in types if n.startswith("crest_db_")] == ["crest_db_statements_total"], types


def test_pool_metrics_follow_the_requests_postgres(crest):
    s = crest(POOL_APP % (3, 1), workers=2)
    samples, types = wait_metrics(s, lambda m: conns(m, "idle") == 6, "every connection idle")
    for name, kind in [("connections", "gauge"), ("queue_length", "gauge"), ("acquire_wait_seconds", "histogram"),
                       ("reconnects_total", "counter"), ("connect_failures_total", "counter"),
                       ("queue_full_total", "counter"), ("acquire_timeouts_total", "counter")]:
        assert types[POOL + name] == kind, name
    assert [conns(samples, st) for st in ("in_use", "connecting", "down")] == [0, 0, 0]
    assert waits(samples)[1] == 0, "no request took a connection yet"
    for _ in range(5):
        assert s.get("/one").status_code == 200
    # (a read's transaction ends after its answer: its connection is idle a moment later)
    samples, _ = wait_metrics(s, lambda m: conns(m, "idle") == 6, "every connection idle again")
    buckets, count, total = waits(samples)
    assert count == 5, "one acquisition per request"
    assert at(buckets, 0.00025) == 5 and total < 0.01, "a connection was idle for each: no wait"
    for name in ("queue_length", "reconnects_total", "connect_failures_total", "queue_full_total",
                 "acquire_timeouts_total"):
        assert value(samples, POOL + name) == 0, name


class AdvisoryLock:
    """Advisory lock 42 of a database, held by a psql session of the test's
    until release(): a statement taking it waits, holding its connection."""

    def __init__(self, conninfo):
        self.p = subprocess.Popen([pgcluster._bin("psql"), "-X", "-q", "-A", "-t", "-d", conninfo],
                                  env=pgcluster._env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        self.p.stdin.write("SELECT pg_advisory_lock(42);\n\\echo held\n")
        self.p.stdin.flush()
        while self.p.stdout.readline().strip() != "held":
            assert self.p.poll() is None, "psql ended"

    def release(self):
        if self.p.poll() is None:
            self.p.stdin.write("SELECT pg_advisory_unlock(42);\n\\q\n")
            self.p.stdin.close()
            self.p.wait(15)


def test_pool_queue_and_acquire_wait_under_a_saturated_pool_postgres(crest, store_dbs):
    s = crest(POOL_APP % (1, 1))
    wait_metrics(s, lambda m: conns(m, "idle") == 1, "the connection idle")
    answers = {}

    def get(name, path):
        with httpx.Client(base_url=s.url, timeout=15) as c:
            answers[name] = c.get(path)

    lock = AdvisoryLock(store_dbs.dbs["m.db"][1].conninfo)
    try:
        a = threading.Thread(target=get, args=("a", "/locked"))
        a.start()
        wait_metrics(s, lambda m: conns(m, "in_use") == 1, "a holds the one connection")
        waiters = [threading.Thread(target=get, args=(n, "/one")) for n in ("b", "c")]
        for t in waiters:
            t.start()
        samples, _ = wait_metrics(s, lambda m: value(m, POOL + "queue_length") == 2, "b and c waiting")
        t_queued = time.monotonic()
        assert conns(samples, "in_use") == 1 and conns(samples, "idle") == 0
        # The queue (2) is full: the next request is refused at once.
        t0 = time.monotonic()
        r = s.get("/one")
        assert_problem(r, 503)
        assert r.json()["code"] == "database_unavailable" and r.headers["retry-after"] == "1"
        assert time.monotonic() - t0 < 0.5
        time.sleep(max(0.0, 0.4 - (time.monotonic() - t_queued)))
    finally:
        lock.release()
    for t in [a] + waiters:
        t.join(20)
    assert [answers[n].status_code for n in "abc"] == [200, 200, 200], {n: answers[n].text for n in answers}
    samples, _ = wait_metrics(s, lambda m: conns(m, "idle") == 1, "the connection idle again")
    assert value(samples, POOL + "queue_full_total") == 1
    assert value(samples, POOL + "queue_length") == 0
    buckets, count, total = waits(samples)
    assert count == 3, "a, b and c took the connection; the refused one did not"
    assert at(buckets, 0.00025) == 1, "a did not wait"
    assert at(buckets, 0.25) == 1, f"b and c waited for a, which waited for the lock (0.4 s at least): {buckets}"
    assert 0.8 <= total < 20
    # A wait past the acquire timeout (1 s): 503, counted.
    lock = AdvisoryLock(store_dbs.dbs["m.db"][1].conninfo)
    try:
        a = threading.Thread(target=get, args=("a2", "/locked"))
        a.start()
        wait_metrics(s, lambda m: conns(m, "in_use") == 1, "a2 holds the one connection")
        t0 = time.monotonic()
        r = s.get("/one")
        took = time.monotonic() - t0
    finally:
        lock.release()
    a.join(20)
    assert_problem(r, 503)
    assert r.json()["code"] == "database_unavailable" and r.headers["retry-after"] == "1"
    assert 0.9 < took < 3.0, f"gave up after {took:.2f} s (acquire_timeout: 1s)"
    assert answers["a2"].status_code == 200
    samples, _ = scrape(s)
    assert value(samples, POOL + "acquire_timeouts_total") == 1
    assert waits(samples)[1] == 4, "the timed-out wait took no connection"


def test_pool_reconnects_after_the_server_ends_its_sessions_postgres(crest):
    s = crest(POOL_APP % (2, 1), workers=2)
    wait_metrics(s, lambda m: conns(m, "idle") == 4, "every connection idle")
    ended = db_rows(s, "m.db", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")[0][0]
    assert ended >= 4, "the pools' four connections, at least"
    samples, _ = wait_metrics(s, lambda m: value(m, POOL + "reconnects_total") == 4 and conns(m, "idle") == 4,
                              "the four connections made again")
    assert value(samples, POOL + "connect_failures_total") == 0
    assert s.get("/one").status_code == 200
