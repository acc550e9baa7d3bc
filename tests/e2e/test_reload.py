"""Hot reload (issue 14, item 6): SIGHUP (and `crest reload` by pid file)
re-reads the app file. A good file is served at once — routes, modules,
models with their migration, auth settings — while requests in flight
finish on the old app; a bad one is logged with file:line as `crest check`
prints it, and the old app goes on. Both stores."""
import os
import re
import signal
import socket
import subprocess
import threading
import time
import zlib

import httpx

import pytest

from conftest import CREST_BIN, STORE, bearer, http_request, on_store, run_cli

RELOAD_TIMEOUT = 30


def reload_events(s):
    return [e for e in s.events() if e.get("event", "").startswith("reload")]


def reload(s, send=None):
    """Sends SIGHUP (or runs send()) and returns the reload's log line."""
    n = len(reload_events(s))
    if send is None:
        s.signal(signal.SIGHUP)
    else:
        send()
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while time.monotonic() < deadline:
        ev = reload_events(s)
        if len(ev) > n:
            assert len(ev) == n + 1, ev[n:]
            s._oacheck = None  # answers are checked against the OpenAPI document served now
            return ev[n]
        time.sleep(0.02)
    raise AssertionError("no reload line; stderr:\n" + s.stderr_text())


def rewrite(s, text):
    """The server's app file, rewritten (with the store's database on PostgreSQL)."""
    from conftest import store_dbs_of
    if STORE == "postgres":
        text = store_dbs_of[0].app_text(text)
    tmp = s.app_path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, s.app_path)


def check_error(s):
    """What `crest check` prints for the server's app file, after "crest: "."""
    p = run_cli([CREST_BIN, "check", str(s.app_path)], cwd=s.dir)
    assert p.returncode == 1, p.out + p.err
    line = p.err.strip()
    assert line.startswith("crest: "), line
    return line[len("crest: "):]


def assert_reloaded(ev):
    assert ev["event"] == "reloaded", ev
    return ev


def assert_failed_at(s, ev, line_no=None):
    """A failed reload's line: the app file, a line, the cause."""
    assert ev["event"] == "reload_failed", ev
    m = re.match(re.escape(str(s.app_path)) + r":(\d+): ", ev["error"])
    assert m, ev
    if line_no is not None:
        assert int(m.group(1)) == line_no, ev


# ---------------------------------------------------------------- under load

LOAD_APP = """\
database: sqlite:reload.db
models:
  Task:
    fields:
      title: {{type: string, required: true}}
modules:
  m{i}:
    model: Task
    url_prefix: /t{i}
endpoints:
  - path: /ping
    sql: SELECT 1 AS pong
    returns: one
  - path: /v{i}
    sql: SELECT {i} AS v
    returns: one
"""

# Bad edits of LOAD_APP, each with where `crest check` (and the reload) puts the error.
BAD_EDITS = [
    ("yaml", lambda t: t + "endpoints: [\n"),
    ("unknown key", lambda t: t.replace("modules:", "bogus: 1\nmodules:", 1)),
    ("bad model", lambda t: t.replace("type: string", "type: strin", 1)),
    ("failing migration", lambda t: t.replace("type: string, required: true", "type: int", 1)),
    ("sql does not compile", lambda t: t.replace("SELECT 1 AS pong", "SELECT pong FROM no_such_table", 1)),
]


def test_reload_under_load_20_times_no_failed_request(crest):
    s = crest(LOAD_APP.format(i=0), workers=2)
    assert s.get("/ping").json() == {"pong": 1}
    stop = threading.Event()
    failures, counts = [], [0] * 4

    def load(k):
        # keep-alive: each connection picks up the new app at its next request
        with httpx.Client(base_url=s.url, timeout=30) as c:
            while not stop.is_set():
                try:
                    r = c.get("/ping")
                    if r.status_code != 200 or r.json() != {"pong": 1}:
                        failures.append((r.status_code, r.text))
                except Exception as e:  # a reset, a refused connection: a failure
                    failures.append(repr(e))
                counts[k] += 1

    threads = [threading.Thread(target=load, args=(k,)) for k in range(len(counts))]
    for t in threads:
        t.start()
    try:
        version = 0
        for n in range(20):
            if n % 2 == 0:  # a good edit: /v{i} and /t{i} replace the last version's
                version += 1
                rewrite(s, LOAD_APP.format(i=version))
                ev = assert_reloaded(reload(s))
                assert {f"GET /v{version}", f"GET /t{version}", f"POST /t{version}"} <= set(ev["added"]), ev
                assert {f"GET /v{version - 1}", f"GET /t{version - 1}"} <= set(ev["removed"]), ev
                assert ev["message"] == f"reloaded {s.app_path}: {ev['routes']} routes"
                with httpx.Client(base_url=s.url, timeout=30) as c:
                    for _ in range(4):  # every worker: new connections land on either
                        assert c.get(f"/v{version}").json() == {"v": version}
                        assert c.get(f"/t{version}").status_code == 200
                        assert c.get(f"/v{version - 1}").status_code == 404
                        assert c.get(f"/t{version - 1}").status_code == 404
            else:  # a bad edit: logged as crest check says it, the last good version goes on
                what, edit = BAD_EDITS[(n // 2) % len(BAD_EDITS)]
                rewrite(s, edit(LOAD_APP.format(i=version + 1)))
                ev = reload(s)
                assert_failed_at(s, ev)
                if what in ("yaml", "unknown key", "bad model"):
                    assert ev["error"] == check_error(s), what
                with httpx.Client(base_url=s.url, timeout=30) as c:
                    assert c.get(f"/v{version}").json() == {"v": version}, what
                    assert c.get(f"/v{version + 1}").status_code == 404, what
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert failures == []
    assert sum(counts) >= 200, counts  # the load was real
    ev = reload_events(s)
    assert [e["event"] for e in ev] == ["reloaded", "reload_failed"] * 10


# ---------------------------------------------------------------- in flight

SLOW_SQL = on_store(
    sqlite="WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < :n) SELECT count(*) AS n, {v} AS v FROM c",
    postgres="SELECT CAST(:n AS bigint) AS n, {v} AS v FROM pg_sleep(2)")
SLOW_N = on_store(sqlite=6_000_000, postgres=3)  # about a second of work (SQLite: 15M take 2 s here)

SLOW_APP = """\
database: sqlite:slow.db
limits:
  statement_timeout: 60s
endpoints:
  - path: /slow
    params:
      n: {{type: int, required: true}}
    sql: {sql}
    returns: one
"""


def test_request_in_flight_finishes_on_the_old_app(crest):
    s = crest(SLOW_APP.format(sql=SLOW_SQL.format(v=1)))
    c = s.raw(timeout=60)
    try:
        c.send(http_request("GET", f"/slow?n={SLOW_N}", [("X-Request-Id", "slow-one")]))
        time.sleep(0.3)
        rewrite(s, SLOW_APP.format(sql=SLOW_SQL.format(v=2)))
        assert_reloaded(reload(s))
        assert s.get("/slow?n=1").json()["v"] == 2  # new requests: the new app
        r = c.read_response(timeout=60)
        assert r.status == 200, r
        assert r.json() == {"n": SLOW_N, "v": 1}  # the old app's answer
    finally:
        c.close()
    s.wait_access("slow-one")  # its log line may come a moment after the answer
    ev = s.events()
    reloaded_at = next(i for i, e in enumerate(ev) if e.get("event") == "reloaded")
    done_at = next(i for i, e in enumerate(ev) if e.get("request_id") == "slow-one")
    assert reloaded_at < done_at, "the slow request finished before the reload: the test did not test it"


def test_keep_alive_connection_gets_the_new_app_at_its_next_request(crest):
    s = crest(LOAD_APP.format(i=1))
    with s.raw() as c:
        c.send(http_request("GET", "/v1"))
        assert c.read_response().json() == {"v": 1}
        rewrite(s, LOAD_APP.format(i=2))
        assert_reloaded(reload(s))
        c.send(http_request("GET", "/v2"))
        assert c.read_response().json() == {"v": 2}
        c.send(http_request("GET", "/v1"))
        assert c.read_response().status == 404


# ---------------------------------------------------------------- what changes

MODEL_APP = """\
database: sqlite:models.db
models:
  Task:
    fields:
      title: {type: string, required: true}
modules:
  tasks:
    model: Task
"""

# A new field of Task, a new model and its module.
MODEL_APP_2 = MODEL_APP.replace("      title: {type: string, required: true}\n", """\
      title: {type: string, required: true}
      done:  {type: bool, default: false}
  Note:
    fields:
      body: {type: string, required: true}
""") + "  notes:\n    model: Note\n"


def test_model_change_migrates_on_reload(crest):
    s = crest(MODEL_APP)
    assert s.request("POST", "/tasks", json={"title": "a"}).status_code == 201
    assert s.get("/notes").status_code == 404
    rewrite(s, MODEL_APP_2)
    assert_reloaded(reload(s))
    row = s.get("/tasks/1").json()
    assert row["title"] == "a" and row["done"] is False  # the new column, its default for the old row
    assert s.request("POST", "/tasks", json={"title": "b", "done": True}).json()["done"] is True
    assert s.request("POST", "/notes", json={"body": "n"}).status_code == 201  # the new table
    assert [n["body"] for n in s.get("/notes").json()["data"]] == ["n"]
    # a migration crest refuses (a type change): nothing changes
    rewrite(s, MODEL_APP_2.replace("done:  {type: bool, default: false}", "done:  {type: int, default: 0}"))
    ev = reload(s)
    assert_failed_at(s, ev)
    assert "changed type from bool to int" in ev["error"], ev
    assert s.get("/tasks/2").json()["done"] is True


def test_a_cursor_made_before_a_reload_goes_on_after_it(crest):
    s = crest(MODEL_APP)
    for t in "abc":
        assert s.request("POST", "/tasks", json={"title": t}).status_code == 201
    first = s.get("/tasks?page_size=2").json()
    rewrite(s, MODEL_APP_2)
    assert_reloaded(reload(s))
    rest = s.get("/tasks?page_size=2&cursor=" + first["meta"]["next_cursor"])
    assert rest.status_code == 200, rest.text
    assert [t["title"] for t in first["data"] + rest.json()["data"]] == ["a", "b", "c"]


def test_a_reload_turns_on_idempotency_and_the_change_feed(crest):
    """Options whose tables or triggers crest makes at start (crest_idempotency,
    the change log's triggers) work when a reload turns them on."""
    from sse import Feed
    s = crest(MODEL_APP)
    assert s.get("/tasks/changes").status_code in (404, 405)
    rewrite(s, MODEL_APP + "    idempotency: true\n    changes: true\n")
    assert_reloaded(reload(s))
    with Feed(s.port, "/tasks/changes") as f:
        assert f.status == 200
        key = {"Idempotency-Key": "k1"}
        a = s.request("POST", "/tasks", json={"title": "once"}, headers=key)
        b = s.request("POST", "/tasks", json={"title": "once"}, headers=key)
        assert a.status_code == b.status_code == 201 and a.json() == b.json()
        assert b.headers["Idempotent-Replayed"] == "true"
        ev = f.wait(1)
        assert [(e["event"], e["data"]["title"]) for e in ev] == [("created", "once")]
        assert f.quiet(0.3) == []
    assert [t["title"] for t in s.get("/tasks").json()["data"]] == ["once"]


AUTH_APP = """\
database: sqlite:auth.db
auth:
  jwt:
    algorithms: [HS256]
    secret_env: CREST_JWT_SECRET
endpoints:
  - path: /x
    permission: {perm}
    sql: SELECT 1 AS one
    returns: one
"""


def test_auth_settings_change_on_reload(crest):
    from conftest import JWT_SECRET
    s = crest(AUTH_APP.format(perm="authenticated"), env={"CREST_JWT_SECRET": JWT_SECRET})
    assert s.get("/x").status_code == 401
    tok = bearer('alice')
    assert s.get("/x", headers=tok).status_code == 200
    rewrite(s, AUTH_APP.format(perm="public"))
    assert_reloaded(reload(s))
    assert s.get("/x").json() == {"one": 1}
    rewrite(s, AUTH_APP.format(perm="authenticated"))
    assert_reloaded(reload(s))
    assert s.get("/x").status_code == 401
    assert s.get("/x", headers=tok).status_code == 200


def test_settings_that_need_a_restart_are_kept_and_said(crest):
    s = crest(LOAD_APP.format(i=1) + "workers: 1\nlisten: 127.0.0.1:0\n", workers=None, listen=None)
    rewrite(s, LOAD_APP.format(i=2) + "workers: 2\nlisten: 127.0.0.1:9\n")
    ev = assert_reloaded(reload(s))
    assert ev["kept"] == ["listen", "workers"], ev
    assert s.get("/v2").json() == {"v": 2}  # still where it listened
    rewrite(s, LOAD_APP.format(i=3) + "workers: 1\nlisten: 127.0.0.1:0\n")
    assert assert_reloaded(reload(s))["kept"] == []


# ---------------------------------------------------------------- crest reload

def test_crest_reload_by_pid_file(crest, tmp_path):
    pid_file = tmp_path / "crest.pid"
    s = crest(LOAD_APP.format(i=1), args=["--pid-file", str(pid_file)])
    assert pid_file.read_text() == f"{s.proc.pid}\n"
    rewrite(s, LOAD_APP.format(i=2))
    p = []
    ev = assert_reloaded(reload(s, lambda: p.append(run_cli([CREST_BIN, "reload", "--pid-file", str(pid_file)]))))
    assert p[0].returncode == 0, p[0].err
    assert f"sent SIGHUP to {s.proc.pid}" in p[0].out
    assert "GET /v2" in ev["added"]
    assert s.stop() == 0
    assert not pid_file.exists()  # removed at exit


def test_crest_reload_by_the_app_files_pid_file(crest):
    s = crest(LOAD_APP.format(i=1) + "pid_file: crest.pid\n")
    assert (s.dir / "crest.pid").read_text() == f"{s.proc.pid}\n"
    rewrite(s, LOAD_APP.format(i=2) + "pid_file: crest.pid\n")
    p = []
    assert_reloaded(reload(s, lambda: p.append(run_cli([CREST_BIN, "reload", str(s.app_path)], cwd=s.dir))))
    assert p[0].returncode == 0, p[0].err
    assert s.get("/v2").json() == {"v": 2}
    # the pid file's name is in the app file: one that does not load is said so, and nothing is sent
    rewrite(s, LOAD_APP.format(i=3) + "pid_file: crest.pid\nbogus: 1\n")
    p = run_cli([CREST_BIN, "reload", str(s.app_path)], cwd=s.dir)
    assert p.returncode == 1
    assert p.err == "crest: " + check_error(s) + "\n"
    time.sleep(0.2)
    assert len(reload_events(s)) == 1


def test_a_pid_file_that_cannot_be_written_stops_the_start(tmp_path):
    app = tmp_path / "app.yaml"
    app.write_text("endpoints: []\n")
    bad = tmp_path / "no-such-dir" / "crest.pid"
    p = run_cli([CREST_BIN, "serve", str(app), "--listen", "127.0.0.1:0", "--pid-file", str(bad)])
    assert p.returncode == 1
    assert p.err.endswith(f"crest serve: {bad}: cannot write the pid file: No such file or directory\n"), p.err


def test_crest_reload_without_a_server(tmp_path):
    missing = tmp_path / "none.pid"
    p = run_cli([CREST_BIN, "reload", "--pid-file", str(missing)])
    assert p.returncode == 1
    assert p.err == (f"crest reload: cannot read the pid file {missing}: No such file or directory "
                     "(is the server running?)\n")
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / "stale.pid"
    stale.write_text(f"{dead.pid}\n")
    p = run_cli([CREST_BIN, "reload", "--pid-file", str(stale)])
    assert p.returncode == 1
    assert p.err == (f"crest reload: no process {dead.pid} (from {stale}): the server is not running "
                     "(a stale pid file?)\n")
    junk = tmp_path / "junk.pid"
    junk.write_text("crest\n")
    p = run_cli([CREST_BIN, "reload", "--pid-file", str(junk)])
    assert p.returncode == 1
    assert p.err == f"crest reload: the pid file {junk} does not hold a process id\n"
    # Regression: a number past pid_t's range was cut to -1 (kill(-1): every
    # process the user may signal); 1 is init. Both are refused.
    for text in ("4294967295", "1"):
        junk.write_text(text + "\n")
        p = run_cli([CREST_BIN, "reload", "--pid-file", str(junk)])
        assert p.returncode == 1, text
        assert p.err == f"crest reload: the pid file {junk} does not hold a process id\n"
    app = tmp_path / "app.yaml"
    app.write_text("endpoints: []\n")
    p = run_cli([CREST_BIN, "reload", str(app)])
    assert p.returncode == 2
    assert p.err == f"crest reload: {app} names no pid_file; give --pid-file PATH\n"


# ---------------------------------------------------------------- metrics, connections, C apps

def ping_count(s):
    text = s.get("/metrics").text
    m = re.search(r'^crest_http_requests_total\{method="GET",route="/ping",code="200"\} (\d+)$', text, re.M)
    return int(m.group(1)) if m else 0


def test_metrics_survive_a_reload(crest):
    s = crest(LOAD_APP.format(i=1), workers=2)
    for _ in range(5):
        assert s.get("/ping").status_code == 200
    assert ping_count(s) == 5
    rewrite(s, LOAD_APP.format(i=2))
    assert_reloaded(reload(s))
    assert ping_count(s) == 5  # not reset
    for _ in range(3):
        assert s.get("/ping").status_code == 200
    assert ping_count(s) == 8


@pytest.mark.skipif(STORE != "postgres", reason="PostgreSQL's connections")
def test_postgres_no_connection_leak_over_20_reloads(crest):
    from conftest import store_dbs_of
    s = crest(LOAD_APP.format(i=1), workers=2)

    def backends():
        out = store_dbs_of[0].psql("reload.db", "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return int(out.strip())

    for _ in range(10):
        assert s.get("/ping").status_code == 200
    before = backends()
    for n in range(20):
        rewrite(s, LOAD_APP.format(i=2 + n))
        assert_reloaded(reload(s))
        assert s.get(f"/v{2 + n}").status_code == 200
    deadline = time.monotonic() + 10
    while backends() > before and time.monotonic() < deadline:  # a closed backend leaves in a moment
        time.sleep(0.1)
    assert backends() <= before


def test_sighup_with_an_app_made_in_c_is_logged_and_ignored(hello):
    s = hello()
    s.signal(signal.SIGHUP)
    ev = s.wait_for_line(lambda e: e.get("event") == "reload_ignored")
    assert ev["reason"] == "the app was not read from an app file: there is nothing to re-read"
    assert s.get("/hello").json() == {"message": "hello"}
    assert s.proc.poll() is None


def test_reload_does_not_free_a_body_still_being_sent(crest):
    """A large shared body (a docs page file, borrowed from the app's memory)
    still being written to a slow reader when reloads replace its app: the
    connection holds the old app until the last byte left (regression: the
    app was freed with the body in the output queue)."""
    s = crest(LOAD_APP.format(i=1))
    rewrite(s, LOAD_APP.format(i=2))  # an app a reload made: freed once replaced (the first is the caller's)
    assert_reloaded(reload(s))
    whole = s.get("/docs/swagger-ui-bundle.js")
    assert whole.status_code == 200 and len(whole.content) > 1_000_000
    so = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    so.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
    so.settimeout(30)
    so.connect(("127.0.0.1", s.port))
    try:
        # pipelined: the kernel takes the first answers whole, the next wait in the output queue
        so.sendall(http_request("GET", "/docs/swagger-ui-bundle.js") * 4)
        time.sleep(0.5)
        for i in (3, 4):  # the app answering is replaced, then so is the next
            rewrite(s, LOAD_APP.format(i=i))
            assert_reloaded(reload(s))
        assert s.get("/v4").json() == {"v": 4}
        data = bytearray()
        while len(data) < 4 * len(whole.content) or bytes(data).count(whole.content) < 4:
            chunk = so.recv(1 << 20)
            assert chunk, "closed early"
            data += chunk
        data = bytes(data)
    finally:
        so.close()
    for part in data.split(whole.content)[:4]:
        assert part.startswith(b"HTTP/1.1 200") and part.endswith(b"\r\n\r\n"), part[:200]


TLS_APP = """\
database: sqlite:tls.db
tls:
  cert: {cert}
  key: {key}
endpoints:
  - path: /v
    sql: SELECT {v} AS v
    returns: one
"""


def test_reload_reads_the_tls_certificate_again(crest, tmp_path):
    import ssl
    from test_tls import make_cert
    cert1, key1 = make_cert(tmp_path, "one")
    cert2, key2 = make_cert(tmp_path, "two")
    s = crest(TLS_APP.format(cert=cert1, key=key1, v=1))
    s.tls = ssl.create_default_context(cafile=str(cert1))
    with s.raw() as old:  # a connection made before: its session goes on
        old.send(http_request("GET", "/v"))
        assert old.read_response().json() == {"v": 1}
        rewrite(s, TLS_APP.format(cert=cert2, key=key2, v=2))
        assert assert_reloaded(reload(s))["kept"] == []
        old.send(http_request("GET", "/v"))
        assert old.read_response().json() == {"v": 2}
    with pytest.raises(ssl.SSLCertVerificationError):
        s.raw()  # new connections: the new certificate, which cert1 does not verify
    s.tls = ssl.create_default_context(cafile=str(cert2))
    assert s.get("/v").json() == {"v": 2}


RATE_APP = """\
database: sqlite:rate.db
endpoints:
  - path: /r
    rate_limit: {limit}
    sql: SELECT {v} AS v
    returns: one
"""


def test_rate_limit_buckets_survive_a_reload(crest):
    s = crest(RATE_APP.format(limit="3/1h", v=1))
    for _ in range(3):
        assert s.get("/r").status_code == 200
    assert s.get("/r").status_code == 429
    rewrite(s, RATE_APP.format(limit="3/1h", v=2))
    assert_reloaded(reload(s))
    assert s.get("/r").status_code == 429  # not refilled by the reload
    rewrite(s, RATE_APP.format(limit="1000/1s", v=3))
    assert_reloaded(reload(s))
    assert s.get("/r").json() == {"v": 3}  # a new limit applies to the bucket


def test_sighup_with_an_app_file_and_endpoints_made_in_c_is_ignored(slow_app, tmp_path):
    """A C program that loads an app file and adds its own endpoints: a reload
    of the file could not give those back, so SIGHUP is logged and ignored."""
    app = tmp_path / "extra.yaml"
    app.write_text("endpoints:\n  - path: /extra\n    sql: SELECT 1 AS one\n    returns: one\ndatabase: sqlite:extra.db\n")
    s = slow_app(env={"SLOW_APP_FILE": str(app)})
    s.signal(signal.SIGHUP)
    ev = s.wait_for_line(lambda e: e.get("event") == "reload_ignored")
    assert ev["reason"] == ("the app has endpoints, models, modules or settings made in C, which a reload of its "
                            "app file could not give back")
    assert s.get("/quick").json() == {"ok": True}
    assert s.get("/extra").json() == {"one": 1}


def test_sighup_with_a_setting_made_in_c_is_ignored(slow_app, tmp_path):
    """Regression: only endpoints and models made in C stopped a reload, so
    a setting a C program made after loading its file (a rate limit here;
    auth, CORS, compression alike) was silently dropped by SIGHUP."""
    app = tmp_path / "extra.yaml"
    app.write_text("endpoints:\n  - path: /extra\n    sql: SELECT 1 AS one\n    returns: one\ndatabase: sqlite:extra.db\n")
    s = slow_app(env={"SLOW_APP_FILE": str(app), "SLOW_APP_RATE_LIMIT": "2/1h"})
    codes = [s.get("/extra").status_code for _ in range(3)]
    assert codes[0] == 200 and codes[-1] == 429, codes
    s.signal(signal.SIGHUP)
    ev = s.wait_for_line(lambda e: e.get("event") == "reload_ignored")
    assert ev["reason"] == ("the app has endpoints, models, modules or settings made in C, which a reload of its "
                            "app file could not give back")
    assert s.get("/extra").status_code == 429  # the C program's limit still holds


GZIP_APP = """\
database: sqlite:reload.db
compression: {{min_bytes: 64, level: {level}}}
endpoints:
  - method: GET
    path: /rows
    sql: >-
      WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 400)
      SELECT n, 'row number ' || n || ' of a long and repetitive list' AS t FROM c
    returns: many
"""


def gzip_length(s, level):
    """The gzip body's length, checked against zlib's at that level (the same library, so the
    same bytes) for the identity body."""
    r = s.get("/rows", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.headers["Content-Encoding"] == "gzip", r.headers
    z = zlib.compressobj(level, zlib.DEFLATED, 31, 8)
    want = len(z.compress(r.content) + z.flush())
    return int(r.headers["Content-Length"]) == want


def test_a_reload_changes_the_compression_level_of_every_worker(crest):
    """Regression: each worker kept the deflate state made with the first
    app's level, so a reload's new compression level was never used."""
    s = crest(GZIP_APP.format(level=1), workers=2)
    assert all(gzip_length(s, 1) for _ in range(8))  # both workers make their deflate state
    rewrite(s, GZIP_APP.format(level=9))
    assert_reloaded(reload(s))
    assert all(gzip_length(s, 9) for _ in range(8))
