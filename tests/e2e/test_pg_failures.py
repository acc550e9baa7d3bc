"""crest on PostgreSQL when the database fails: stopped under load, its
connections terminated by the server, a statement past its deadline, no
connection slot left, down at start. These tests stop and start PostgreSQL,
so they run on a cluster of their own (tests/pg/cluster.py), started here
and removed at the end of the module, never on CTest's shared one.

Every load loop here is bounded in count and in time; every request has a
client timeout, and a client timeout counts as a hang (a failure)."""
import os
import subprocess
import threading
import time

import httpx
import pytest

from conftest import CREST_BIN, http_request, run_cli
from pg import fresh_database, pgcluster, throwaway_cluster

ACQUIRE_S = 1.0          # the app's pool.acquire_timeout
ANSWER_BOUND_S = ACQUIRE_S + 1.5  # an answer during an outage: the acquire timeout and some slack
RECOVER_S = 40.0         # reconnect backoff caps at 32 s
CLIENT_TIMEOUT_S = 10.0  # past this a request hangs


def app_text(uri, statement_timeout="3s"):
    return f"""\
database: {uri}
workers: 1
pool: {{size: 4, acquire_timeout: 1s, queue: 512}}
limits: {{statement_timeout: {statement_timeout}}}
models:
  Task:
    table: tasks
    fields:
      title:      {{type: string, required: true, max_length: 200}}
      spent_time: {{type: int, min: 0, default: 0}}
modules:
  tasks:
    model: Task
    url_prefix: /tasks
    enabled_methods: [index, create, read, update, delete]
endpoints:
  - path: /sleep
    params: {{s: float}}
    sql: SELECT 1 AS ok FROM pg_sleep(:s)
    returns: one
    timeout: 300ms
"""


# ---------------------------------------------------------------- the cluster


class OwnCluster:
    """The module's cluster, stopped and started again on the same port and
    data folder (cluster.py's halt and resume), with extra server settings
    when asked."""

    def __init__(self, c):
        self.c = c
        self.port = c.port

    def stop(self, mode="fast"):
        self.c.halt(mode)

    def start(self, **settings):
        self.c.resume(**settings)

    def ensure_started(self):
        if not self.c.running():
            self.c.resume()

    def psql(self, sql, db="postgres"):
        return self.c.psql(sql, db=db)


@pytest.fixture(scope="module")
def own_cluster():
    with throwaway_cluster("crest-pgfail-") as c:
        yield OwnCluster(c)


@pytest.fixture
def cl(own_cluster):
    """The cluster, running at the start of each test and after it."""
    own_cluster.ensure_started()
    yield own_cluster
    own_cluster.ensure_started()


@pytest.fixture
def db(cl):
    with fresh_database(cl.c) as d:
        yield d


# ---------------------------------------------------------------- load


class Load:
    """`threads` clients reading and writing the Task module until stopped,
    each at most `max_count` requests and `max_s` seconds. results: tuples
    (started, seconds, method, status or "hang: ...", Retry-After, code)."""

    def __init__(self, url, threads=3, max_count=3000, max_s=90.0, pause=0.02):
        self.url = url
        self.results = []
        self.lock = threading.Lock()
        self.stop_ev = threading.Event()
        self.max_count, self.max_s, self.pause = max_count, max_s, pause
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *a):
        self.stop()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(CLIENT_TIMEOUT_S + 5)
            assert not t.is_alive(), "a load thread does not end"

    def _run(self, i):
        end = time.monotonic() + self.max_s
        with httpx.Client(base_url=self.url, timeout=CLIENT_TIMEOUT_S) as c:
            for n in range(self.max_count):
                if self.stop_ev.is_set() or time.monotonic() > end:
                    return
                kind = (n + i) % 3
                t0 = time.monotonic()
                try:
                    if kind == 0:
                        method, r = "POST", c.post("/tasks", json={"title": f"t{i}-{n}", "spent_time": n})
                    elif kind == 1:
                        method, r = "GET", c.get("/tasks/1")
                    else:
                        method, r = "GET", c.get("/tasks", params={"page_size": 5})
                    row = (t0, time.monotonic() - t0, method, r.status_code, r.headers.get("retry-after"),
                           problem_code(r))
                except httpx.HTTPError as e:
                    row = (t0, time.monotonic() - t0, "?", f"hang: {type(e).__name__}: {e}", None, None)
                with self.lock:
                    self.results.append(row)
                time.sleep(self.pause)

    def snapshot(self):
        with self.lock:
            return list(self.results)


def request(url, method, path, **kw):
    """One request: (status, seconds, Retry-After, code); a client timeout fails the test."""
    t0 = time.monotonic()
    with httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT_S) as c:
        try:
            r = c.request(method, path, **kw)
        except httpx.TimeoutException as e:
            pytest.fail(f"{method} {path} hangs: no answer in {CLIENT_TIMEOUT_S} s ({e})")
    return r.status_code, time.monotonic() - t0, r.headers.get("retry-after"), problem_code(r)


def problem_code(r):
    """The problem's code of a failed answer (None for a success)."""
    if r.status_code < 400:
        return None
    try:
        return r.json().get("code")
    except ValueError:
        return "(not json)"


def assert_unavailable(rows, what):
    """Each row a 503 database_unavailable with Retry-After, answered in time."""
    for row in rows:
        _, secs, method, status, retry, code = row
        assert status == 503, f"{what}: {method} answered {status} ({code}), not 503: {row}"
        assert code == "database_unavailable", f"{what}: {row}"
        assert retry is not None and retry.isdigit() and int(retry) >= 1, f"{what}: no Retry-After: {row}"
        assert secs <= ANSWER_BOUND_S, f"{what}: the 503 took {secs:.2f} s (> {ANSWER_BOUND_S} s): {row}"


def assert_only(rows, allowed, what):
    bad = [r for r in rows if r[3] not in allowed]
    assert not bad, f"{what}: {len(bad)} answers not in {sorted(allowed)}, e.g. {bad[:5]}"


def wait_serving(url, bound=RECOVER_S, srv=None):
    """Seconds until a read and a write both succeed again (bounded); fails past bound."""
    t0 = time.monotonic()
    seen = []
    while time.monotonic() - t0 < bound:
        a = request(url, "GET", "/tasks/1")
        b = request(url, "POST", "/tasks", json={"title": f"back {time.monotonic()}"})
        seen += [a[0], b[0]]
        if a[0] == 200 and b[0] == 201:
            return time.monotonic() - t0, seen
        assert a[0] in (200, 503) and b[0] in (201, 503), f"while recovering: GET {a}, POST {b}"
        time.sleep(0.2)
    log = "\n".join([l for l in srv.stderr_text().splitlines() if "request_id" not in l][-30:]) if srv else ""
    pytest.fail(f"crest does not serve again within {bound} s; answers seen: {seen[-10:]}\n{log}")


def crest_backends(cl, dbname):
    out = cl.psql(f"SELECT pid FROM pg_stat_activity WHERE datname = '{dbname}' "
                  f"AND application_name = 'crest' AND pid <> pg_backend_pid()")
    return {int(x) for x in out.split()}


def terminate(cl, dbname, wait=False):
    """Ends every session on dbname; wait: until they have ended (5 s at most each)."""
    timeout = ", 5000" if wait else ""
    out = cl.psql(f"SELECT count(pg_terminate_backend(pid{timeout})) FROM pg_stat_activity "
                  f"WHERE datname = '{dbname}' AND pid <> pg_backend_pid()")
    return int(out.strip())


def alive(srv):
    return srv.proc.poll() is None and os.path.exists(f"/proc/{srv.proc.pid}")


def seed(srv):
    st = request(srv.url, "POST", "/tasks", json={"title": "first"})
    assert st[0] == 201, st


# ---------------------------------------------------------------- tests


def test_postgres_stopped_under_load_answers_503_with_retry_after_then_serves_again_without_restart(crest, cl, db):
    srv = crest(app_text(db.uri))
    pid = srv.proc.pid
    seed(srv)
    with Load(srv.url) as load:
        time.sleep(1.5)
        t_down = time.monotonic()
        cl.stop("immediate")
        t_stopped = time.monotonic()
        time.sleep(5.0)
        assert alive(srv), f"crest died with the database:\n{srv.stderr_text()}"
        t_up = time.monotonic()
        cl.start()
        t_started = time.monotonic()
        recover_s, seen = wait_serving(srv.url, srv=srv)
        time.sleep(1.0)
        load.stop()
    rows = load.snapshot()
    before = [r for r in rows if r[0] + r[1] < t_down]
    outage = [r for r in rows if r[0] > t_stopped + 0.2 and r[0] + r[1] < t_up]
    after = [r for r in rows if r[0] > t_started + recover_s + 0.5]
    hangs = [r for r in rows if isinstance(r[3], str)]
    assert not hangs, f"requests hung: {hangs[:5]}"
    assert before and all(r[3] in (200, 201) for r in before), f"before the outage: {[r for r in before if r[3] not in (200, 201)][:5]}"
    # The outage happened: reads and writes were refused, each in time, each a 503.
    assert sum(r[2] == "GET" for r in outage) >= 3 and sum(r[2] == "POST" for r in outage) >= 2, outage
    assert_unavailable(outage, "during the outage")
    assert_only(rows, {200, 201, 503}, "over the whole run")
    for r in rows:  # a 503 at any time (in-flight at the stop, reconnecting) is the right one
        if r[3] == 503:
            assert_unavailable([r], "a 503")
    assert after and all(r[3] in (200, 201) for r in after), f"after recovery: {[r for r in after if r[3] not in (200, 201)][:5]}"
    assert alive(srv) and srv.proc.pid == pid
    first_503 = min(r[0] for r in rows if r[3] == 503) - t_down
    last_503 = max(r[0] + r[1] for r in rows if r[3] == 503) - t_started
    print(f"\n[stopped] {len(outage)} answers during the outage, all 503, slowest "
          f"{max(r[1] for r in outage):.2f} s; first 503 {first_503:.2f} s after the stop; "
          f"serving again {recover_s:.2f} s after the start (last 503 ended {last_503:.2f} s after it); "
          f"{len(after)} answers after, all 2xx")


def test_postgres_connections_terminated_by_the_server_are_replaced_and_idle_ones_fail_no_request(crest, cl, db):
    srv = crest(app_text(db.uri))
    seed(srv)
    for _ in range(3):  # the loop's pool and a blocking connection for writes, in use
        assert request(srv.url, "GET", "/tasks/1")[0] == 200
        assert request(srv.url, "POST", "/tasks", json={"title": "warm"})[0] == 201
    old = crest_backends(cl, db.name)
    assert old, "crest holds no connection"
    # Idle: every session of crest's is ended by the server, and gone
    # before the next request. crest finds each out before it is used (the
    # loop's at once, a write's idle connection when it is taken): no
    # request fails.
    assert terminate(cl, db.name, wait=True) >= len(old)
    answers = []
    for n in range(20):
        answers.append(("GET",) + request(srv.url, "GET", "/tasks/1"))
        answers.append(("POST",) + request(srv.url, "POST", "/tasks", json={"title": f"after {n}"}))
    bad = [a for a in answers if a[1] not in (200, 201)]
    assert not bad, f"after an idle termination: {bad} (at {[answers.index(a) for a in bad]})"
    new = crest_backends(cl, db.name)
    assert new and not (new & old), f"crest's connections were not replaced: old {old}, now {new}"
    # Under light load: three rounds of terminations.
    killed = 0
    with Load(srv.url, threads=2, max_s=30) as load:
        time.sleep(1.0)
        for _ in range(3):
            killed += terminate(cl, db.name)
            time.sleep(1.0)
        time.sleep(2.0)
        load.stop()
    rows = load.snapshot()
    assert killed >= 3
    assert not [r for r in rows if isinstance(r[3], str)], "requests hung"
    assert_only(rows, {200, 201, 503}, "under load with terminations")
    n503 = [r for r in rows if r[3] == 503]
    assert_unavailable(n503, "a 503 under terminations")
    assert len(n503) <= max(6, len(rows) // 10), f"{len(n503)} 503s of {len(rows)}"
    tail = [r for r in rows if r[0] > rows[-1][0] - 1.0]
    assert tail and all(r[3] in (200, 201) for r in tail), tail
    print(f"\n[terminated] idle: {len(answers)} answers, all served, old {sorted(old)} → new {sorted(new)}; "
          f"under load: {killed} sessions ended in 3 rounds, {len(n503)} 503s of {len(rows)} answers")


def test_postgres_statement_past_the_deadline_is_504_and_stops_on_the_server(crest, cl, db):
    srv = crest(app_text(db.uri))
    seed(srv)
    assert request(srv.url, "GET", "/sleep", params={"s": 0})[0] == 200
    for _ in range(2):  # the second on a connection that timed out before
        st, secs, _, code = request(srv.url, "GET", "/sleep", params={"s": 5})
        assert st == 504 and code == "statement_timeout", (st, code)
        assert 0.25 <= secs < 2.0, f"the 504 came after {secs:.2f} s (timeout: 300ms)"
        out = cl.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{db.name}' "
                      f"AND state = 'active' AND query ILIKE '%pg_sleep%' AND pid <> pg_backend_pid()")
        assert out.strip() == "0", f"pg_sleep still runs on the server: {out}"
        st2 = request(srv.url, "GET", "/sleep", params={"s": 0})
        assert st2[0] == 200, st2
        assert request(srv.url, "GET", "/tasks/1")[0] == 200
        assert request(srv.url, "POST", "/tasks", json={"title": "after 504"})[0] == 201
    print(f"\n[deadline] 504 after {secs:.2f} s; no pg_sleep left on the server; the next requests 200/201")


def test_postgres_clients_leaving_while_waiting_for_a_connection_leave_the_server_whole(crest, cl, db):
    """Regression (make bench on PostgreSQL, 64 clients over a pool of 8: "corrupted double-linked list",
    abort): a client that leaves while its request waits in the pool's queue. Its statement fails at once,
    the answer it finishes goes nowhere, and neither the request nor its session is touched afterwards
    (the ASan suite sees any use after free)."""
    srv = crest(app_text(db.uri).replace("size: 4", "size: 1"))
    seed(srv)
    for _ in range(5):
        holder = srv.raw(timeout=CLIENT_TIMEOUT_S)
        holder.send(http_request("GET", "/sleep?s=0.25"))  # the one connection, for 250 ms
        time.sleep(0.05)
        waiting = [srv.raw(timeout=CLIENT_TIMEOUT_S) for _ in range(80)]  # past the 32 request states a worker keeps
        for w in waiting:
            w.send(http_request("GET", "/tasks/1"))
        time.sleep(0.05)  # queued behind the holder
        for w in waiting:
            w.close()  # the clients leave
        time.sleep(0.05)
        holder.close()
        assert alive(srv), srv.stderr_text()[-2000:]
    time.sleep(0.3)
    assert alive(srv), srv.stderr_text()[-2000:]
    assert request(srv.url, "GET", "/tasks/1")[0] == 200
    assert request(srv.url, "POST", "/tasks", json={"title": "after"})[0] == 201
    log = [l for l in srv.stderr_text().splitlines() if "request_id" not in l]
    assert not [l for l in log if "corrupted" in l or "AddressSanitizer" in l or "free()" in l], log[-20:]


def test_postgres_max_connections_exhausted_is_503(crest, cl):
    cl.stop("fast")
    holders = []
    try:
        cl.start(max_connections=10)  # 7 for a role that is not a superuser (3 reserved)
        cl.psql("CREATE ROLE app LOGIN")
        with fresh_database(cl.c) as d:
            cl.psql(f'ALTER DATABASE "{d.name}" OWNER TO app')
            cl.psql("GRANT ALL ON SCHEMA public TO app", db=d.name)
            uri = f"postgresql://app@127.0.0.1:{cl.port}/{d.name}"
            srv = crest(app_text(uri))
            seed(srv)
            psql = pgcluster._bin("psql")
            env = pgcluster._env()

            def app_sessions():
                out = cl.psql("SELECT application_name FROM pg_stat_activity WHERE usename = 'app'")
                names = out.split("\n")
                return sum(n == "crest" for n in names), sum(n == "holder" for n in names)

            # Hold every slot app may have, crest's ended each time they come back.
            t0 = time.monotonic()
            while True:
                cl.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE usename = 'app' AND application_name = 'crest'")
                ncrest, nhold = app_sessions()
                if nhold >= 7:
                    break
                assert time.monotonic() - t0 < 30, f"cannot fill the slots: {ncrest} crest, {nhold} holders"
                holders = [h for h in holders if h.poll() is None]
                for _ in range(7 - nhold):
                    holders.append(subprocess.Popen(
                        [psql, "-X", "-q", "-d", f"host=127.0.0.1 port={cl.port} user=app dbname={d.name} "
                         "application_name=holder", "-c", "SELECT pg_sleep(120)"],
                        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
                time.sleep(0.5)
            assert app_sessions()[0] == 0
            answers = []
            t_full = time.monotonic()
            for n in range(12):
                st = request(srv.url, "GET", "/tasks/1")
                answers.append((0, st[1], "GET", st[0], st[2], st[3]))
                st = request(srv.url, "POST", "/tasks", json={"title": f"full {n}"})
                answers.append((0, st[1], "POST", st[0], st[2], st[3]))
            full_s = time.monotonic() - t_full
            assert_unavailable(answers, "with no slot left")
            assert app_sessions() == (0, 7)
            assert alive(srv)
            for h in holders:
                h.kill()
                h.wait(10)
            holders = []
            # (a backend in pg_sleep does not notice its client is gone: ended here)
            cl.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'holder'")
            recover_s, seen = wait_serving(srv.url, srv=srv)
            print(f"\n[slots] {len(answers)} answers in {full_s:.1f} s with no slot left, all 503 + Retry-After "
                  f"(slowest {max(a[1] for a in answers):.2f} s); serving {recover_s:.2f} s after the slots freed")
            srv.stop()
    finally:
        for h in holders:
            h.kill()
            h.wait(10)
        cl.stop("fast")
        cl.start()


def test_postgres_down_at_start_fails_clearly_and_wait_for_db_waits(crest, cl, db, tmp_path):
    app = tmp_path / "app.yaml"
    app.write_text(app_text(db.uri))
    cl.stop("fast")
    t0 = time.monotonic()
    p = run_cli([CREST_BIN, "serve", str(app), "--listen", "127.0.0.1:0"], cwd=str(tmp_path), timeout=30)
    secs = time.monotonic() - t0
    assert p.returncode != 0, p.err
    assert "cannot connect to the database" in p.err, p.err
    assert secs < 10, f"crest took {secs:.1f} s to give up"
    srv = crest(app_text(db.uri), args=["--wait-for-db"], wait=False)
    time.sleep(3.0)
    assert alive(srv), f"--wait-for-db: crest exited:\n{srv.stderr_text()}"
    assert not any(e.get("event") == "listening" for e in srv.events()), "listening without a database"
    t_up = time.monotonic()
    cl.start()
    srv.wait_listening(timeout=30)
    wait_s = time.monotonic() - t_up
    st = request(srv.url, "POST", "/tasks", json={"title": "waited"})
    assert st[0] == 201, st
    assert request(srv.url, "GET", "/tasks/1")[0] == 200
    print(f"\n[down at start] exit {p.returncode} in {secs:.2f} s: {p.err.strip().splitlines()[-1]}; "
          f"--wait-for-db listening {wait_s:.2f} s after the start")


def test_postgres_start_up_waits_while_another_process_starts_on_the_database(crest, cl, db):
    """Start-up (startup_sql, models) holds an advisory lock on the database
    (src/store/postgres.c, pg_setup): a process starting meanwhile waits for
    it (at most 120 s, then exits saying why) instead of racing it."""
    holder = subprocess.Popen(
        [pgcluster._bin("psql"), "-X", "-q", "-d", db.conninfo, "-c",
         "SELECT pg_advisory_lock(7165901503644661104)", "-c", "SELECT pg_sleep(3)"],
        env=pgcluster._env(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        t0 = time.monotonic()
        while cl.psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted").strip() != "1":
            assert time.monotonic() - t0 < 10, "the holder never took the lock"
            time.sleep(0.05)
        srv = crest(app_text(db.uri), wait=False)
        time.sleep(1.5)
        assert alive(srv), srv.stderr_text()
        assert not any(e.get("event") == "listening" for e in srv.events()), "started while the lock was held"
        assert holder.wait(20) == 0, holder.stderr.read()
        srv.wait_listening(timeout=30)
        assert request(srv.url, "POST", "/tasks", json={"title": "after the lock"})[0] == 201
    finally:
        holder.kill()
        holder.wait(10)


def test_postgres_readyz_is_503_while_the_database_is_down_and_healthz_stays_200(crest, cl, db):
    """Readiness asks the database through the worker's pool; liveness never asks it."""
    srv = crest(app_text(db.uri))
    seed(srv)  # (wait_serving reads a row back)
    r = httpx.get(srv.url + "/readyz", timeout=CLIENT_TIMEOUT_S)
    assert r.status_code == 200 and r.json() == {"status": "ready"}, r.text
    # (fast, not immediate: the cluster runs with synchronous_commit off, and a
    # crash right after start could lose the table crest just made)
    cl.stop("fast")
    t0 = time.monotonic()
    r = httpx.get(srv.url + "/readyz", timeout=CLIENT_TIMEOUT_S)
    took = time.monotonic() - t0
    assert_unavailable([(t0, took, "GET", r.status_code, r.headers.get("retry-after"),
                         r.json().get("code") if r.headers.get("content-type", "").startswith("application/problem")
                         else None)], "/readyz with the database down")
    assert httpx.get(srv.url + "/healthz", timeout=CLIENT_TIMEOUT_S).json() == {"status": "ok"}
    cl.start()
    try:
        wait_serving(srv.url, srv=srv)
    except AssertionError:
        print(srv.stderr_text())
        raise
    deadline = time.monotonic() + RECOVER_S
    while time.monotonic() < deadline:
        r = httpx.get(srv.url + "/readyz", timeout=CLIENT_TIMEOUT_S)
        if r.status_code == 200:
            break
        time.sleep(0.2)
    assert r.status_code == 200 and r.json() == {"status": "ready"}, r.text
