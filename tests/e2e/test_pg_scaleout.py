"""Scale-out: three `crest serve --workers 1` processes behind nginx
(upstream with least_conn and keep-alive) on one PostgreSQL database, started
by the scale-out example's own harness (examples/scaleout/scaleout.py, its
nginx.conf.in) on a database of the tests' cluster.

A mixed load from several clients keeps every acknowledged write; 50
concurrent creates of one unique value give one 201 and 49 409s; `kill -9`
of one process under write load costs at most the requests it had in flight
(502s, never acknowledged) and no acknowledged write. The README's
PostgreSQL section shows what this harness answers and the nginx config it
runs. Every load loop is
bounded in count and in time, and every request has a client timeout."""
import collections
import os
import random
import re
import subprocess
import sys
import threading
import time

import httpx
import pytest

import readme
from conftest import CREST_BIN, _require, assert_problem, sanitizer_report
from pg import fresh_database

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "scaleout"))
import scaleout  # noqa: E402  (examples/scaleout/scaleout.py)

CLIENT_TIMEOUT_S = 15.0   # past this a request hangs (a failure)
LOAD_DEADLINE_S = 60.0    # no load loop runs longer
FAIL_TIMEOUT_S = 5.0      # nginx.conf.in's fail_timeout: a dead process is skipped this long, then tried again
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def scaled(pg_cluster):
    """The example's nginx + 3 crest processes on a fresh database of the
    cluster; stopped (and checked: exit statuses, sanitizer reports) at the
    end, also when the test fails. A test that kills a process records its
    index in scaled.killed."""
    _require(CREST_BIN, "CREST_BIN")
    with fresh_database(pg_cluster) as db:
        so = scaleout.ScaleOut(CREST_BIN, cluster=pg_cluster, dbname=db.name)
        so.killed = set()
        so.start()
        try:
            yield so
        finally:
            status = so.stop()
        problems = []
        for name, code in status.items():
            killed = name.startswith("crest ") and int(name.split()[1]) in so.killed
            if code != (-9 if killed else 0):
                problems.append(f"{name} exited with {code}")
        for index, text in so.crest_logs.items():
            mark = sanitizer_report(text)
            if mark:
                problems.append(f"crest {index}'s stderr holds a sanitizer report ({mark}):\n{text[-4000:]}")
        if problems:
            pytest.fail("\n".join(problems), pytrace=False)


def requests_by_process(so):
    """{index: {(method, route, code): count}} from each live process's /metrics (asked directly)."""
    out = {}
    pat = re.compile(r'^crest_http_requests_total\{method="([^"]*)",route="([^"]*)",code="([^"]*)"\} (\d+)$', re.M)
    for c in so.crests:
        if c.index in so.killed:
            continue
        r = httpx.get(c.url + "/metrics", timeout=CLIENT_TIMEOUT_S)
        assert r.status_code == 200, r.text
        out[c.index] = {(m, route, code): int(n) for m, route, code, n in pat.findall(r.text)}
    return out


def task_routes(counts, method=None, code=None):
    """The requests of counts ({(method, route, code): n}) to the tasks module's routes."""
    return sum(n for (m, route, c), n in counts.items()
               if route.startswith("/tasks") and (method is None or m == method) and (code is None or c == code))


def table(so):
    """{id: (code, spent_time)} of every row of tasks."""
    rows = {}
    for line in so.psql("SELECT id, code, spent_time FROM tasks").splitlines():
        i, code, spent = line.split("|")
        rows[int(i)] = (code, int(spent))
    return rows


# ---------------------------------------------------------------- mixed load

MIXED_CLIENTS = 6
MIXED_OPS = 150           # per client


def mixed_client(url, n, ops, own, wrong, deadline):
    """Client n: ops requests of every kind on rows it made (creates, reads,
    lists, updates, deletes), each checked for its one right status. own:
    {id: (code, spent_time)} of its rows alive now; wrong: what was not as
    expected."""
    rng = random.Random(n)
    prefix = f"MX{chr(ord('A') + n)}-"  # this client's codes
    made = 0
    with httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT_S) as cl:
        for _ in range(ops):
            if time.monotonic() > deadline:
                wrong.append(f"client {n}: out of time")
                return
            op = rng.choices(["create", "read", "list", "update", "delete"], [35, 20, 20, 15, 10])[0]
            if op != "create" and not own:
                op = "create"
            try:
                if op == "create":
                    made += 1
                    code = f"{prefix}{made}"
                    r = cl.post("/tasks", json={"code": code, "title": f"client {n} task {made}"})
                    if r.status_code == 201 and r.json()["code"] == code:
                        own[r.json()["id"]] = (code, 0)
                        continue
                elif op == "read":
                    i = rng.choice(list(own))
                    r = cl.get(f"/tasks/{i}")
                    if r.status_code == 200 and (r.json()["code"], r.json()["spent_time"]) == own[i]:
                        continue
                elif op == "list":
                    r = cl.get("/tasks", params={"where": f'{{"code":{{"$like":"{prefix}%"}}}}',
                                                 "page_size": 100, "sort_by": "-id"})
                    if r.status_code == 200:
                        got = {t["id"]: (t["code"], t["spent_time"]) for t in r.json()["data"]}
                        want = dict(sorted(own.items(), reverse=True)[:100])
                        if got == want:
                            continue
                elif op == "update":
                    i = rng.choice(list(own))
                    spent = rng.randrange(1, 100000)
                    r = cl.patch(f"/tasks/{i}", json={"spent_time": spent})
                    if r.status_code == 200 and r.json()["spent_time"] == spent:
                        own[i] = (own[i][0], spent)
                        continue
                else:
                    i = rng.choice(list(own))
                    r = cl.delete(f"/tasks/{i}")
                    if r.status_code == 204:
                        del own[i]
                        continue
                wrong.append(f"client {n} {op}: {r.status_code} {r.text[:300]}")
            except httpx.HTTPError as e:
                wrong.append(f"client {n} {op}: {type(e).__name__}: {e}")


def test_a_mixed_load_from_several_clients_keeps_every_acknowledged_write(scaled):
    deadline = time.monotonic() + LOAD_DEADLINE_S
    owns = [{} for _ in range(MIXED_CLIENTS)]
    wrong = []
    threads = [threading.Thread(target=mixed_client, args=(scaled.url, n, MIXED_OPS, owns[n], wrong, deadline))
               for n in range(MIXED_CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(LOAD_DEADLINE_S + CLIENT_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), "a client hangs"
    assert wrong == [], "\n".join(wrong[:20])
    # The table holds exactly the rows acknowledged and not deleted, as last written.
    want = {i: row for own in owns for i, row in own.items()}
    assert table(scaled) == want
    # Each process answered a share of the tasks requests (least_conn spreads them).
    counts = requests_by_process(scaled)
    per = {i: task_routes(c) for i, c in counts.items()}
    total = sum(per.values())
    print(f"tasks requests per process: {per} (of {total}; {MIXED_CLIENTS} clients x {MIXED_OPS})")
    assert total == MIXED_CLIENTS * MIXED_OPS
    assert all(n >= total // 10 for n in per.values()), per


# ---------------------------------------------------------------- one unique value

RACERS = 50


def test_fifty_concurrent_creates_of_one_unique_value_give_one_201_and_49_409(scaled):
    barrier = threading.Barrier(RACERS, timeout=CLIENT_TIMEOUT_S)
    answers = [None] * RACERS

    def racer(n):
        with httpx.Client(base_url=scaled.url, timeout=CLIENT_TIMEOUT_S) as cl:
            cl.get("/healthz")  # connected before the start line
            barrier.wait()
            try:
                answers[n] = cl.post("/tasks", json={"code": "ONE-1", "title": f"racer {n}"})
            except httpx.HTTPError as e:
                answers[n] = e

    threads = [threading.Thread(target=racer, args=(n,)) for n in range(RACERS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(2 * CLIENT_TIMEOUT_S)
    assert not any(t.is_alive() for t in threads), "a racer hangs"
    errors = [a for a in answers if not isinstance(a, httpx.Response)]
    assert errors == []
    statuses = collections.Counter(a.status_code for a in answers)
    assert statuses == {201: 1, 409: 49}, statuses
    for a in answers:
        if a.status_code == 409:
            p = assert_problem(a, 409, "conflict")
            assert p["errors"] == {"code": "is already taken"}, p
    won = next(a for a in answers if a.status_code == 201).json()
    assert scaled.psql("SELECT id, title FROM tasks WHERE code = 'ONE-1'").splitlines() == [f"{won['id']}|{won['title']}"]
    # The race ran across processes: more than one of them answered 409.
    counts = requests_by_process(scaled)
    per = {i: task_routes(c, "POST") for i, c in counts.items()}
    print(f"POST /tasks per process: {per}")
    assert sum(per.values()) == RACERS
    assert sum(1 for i in per if task_routes(counts[i], "POST", "409") > 0) >= 2, counts


# ---------------------------------------------------------------- kill -9

WRITERS = 6
WRITES_BEFORE_KILL = 150  # acknowledged creates before the kill
AFTER_KILL_S = FAIL_TIMEOUT_S + 2.0  # past fail_timeout: nginx tries the dead process again meanwhile
PAUSE_S = 0.01            # between one writer's requests
VICTIM = 2


class Write:
    __slots__ = ("code", "t0", "t1", "status", "id", "error")


def writer(url, n, stop, log, deadline):
    """Creates rows until stop is set (or the deadline), one request at a time; each goes to log."""
    with httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT_S) as cl:
        k = 0
        while not stop.is_set() and time.monotonic() < deadline:
            k += 1
            w = Write()
            w.code, w.id, w.error, w.status = f"KW{chr(ord('A') + n)}-{k}", None, None, None
            w.t0 = time.monotonic()
            try:
                r = cl.post("/tasks", json={"code": w.code, "title": f"writer {n} row {k}"})
                w.status = r.status_code
                if r.status_code == 201:
                    w.id = r.json()["id"]
            except httpx.HTTPError as e:
                w.error = f"{type(e).__name__}: {e}"
            w.t1 = time.monotonic()
            log.append(w)
            time.sleep(PAUSE_S)


def test_kill_9_of_one_process_under_write_load_loses_no_acknowledged_write(scaled):
    deadline = time.monotonic() + LOAD_DEADLINE_S
    stop = threading.Event()
    logs = [[] for _ in range(WRITERS)]
    threads = [threading.Thread(target=writer, args=(scaled.url, n, stop, logs[n], deadline))
               for n in range(WRITERS)]
    for t in threads:
        t.start()
    try:
        while sum(w.status == 201 for log in logs for w in list(log)) < WRITES_BEFORE_KILL:
            assert time.monotonic() < deadline, "the writers did not get going"
            time.sleep(0.05)
        before = requests_by_process(scaled)
        assert task_routes(before[VICTIM], "POST", "201") > 0, before  # the victim was taking writes
        scaled.killed.add(VICTIM)
        scaled.kill_crest(VICTIM)  # kill -9; returns once the process is gone
        killed_at = time.monotonic()
        time.sleep(AFTER_KILL_S)
    finally:
        stop.set()
        for t in threads:
            t.join(CLIENT_TIMEOUT_S + 5)
    assert not any(t.is_alive() for t in threads), "a writer hangs"
    writes = [w for log in logs for w in log]
    after = [w for w in writes if w.t0 > killed_at]
    failed = [w for w in writes if w.status != 201]
    print(f"writes: {len(writes)}, {sum(w.status == 201 for w in writes)} answered 201; after the kill "
          f"{len(after)}; failed: {[(w.code, w.status, w.error, round(w.t0 - killed_at, 3)) for w in failed]}")
    # What may fail: the requests the killed process had in flight, which
    # nginx answers 502 (it does not send a POST again: the process may have
    # written it). Each writer has one request in flight at a time, so at
    # most WRITERS, all sent before the process was gone; none after.
    assert all(w.status == 502 and w.error is None for w in failed), [(w.code, w.status, w.error) for w in failed]
    assert len(failed) <= WRITERS
    assert all(w.t0 < killed_at for w in failed)
    # The others went on answering: every writer wrote after the kill, on the two processes left.
    assert all(any(w.t0 > killed_at and w.status == 201 for w in log) for log in logs)
    now = requests_by_process(scaled)
    for i in now:
        assert task_routes(now[i], "POST", "201") > task_routes(before[i], "POST", "201"), (i, before, now)
    # nginx tried the dead process (a refused connection) and passed those requests on:
    # the access log names its port first, then the one that answered.
    dead = f"127.0.0.1:{scaled.crests[VICTIM - 1].port}"
    retried = [line for line in scaled.nginx_access_log() if f"upstream={dead}, " in line]
    assert retried, "nginx never tried the killed process again"
    assert all(" 201 " in line for line in retried), retried
    # Every acknowledged write is in the table; a row without an answer is one of the failed requests.
    rows = table(scaled)
    acked = {w.id: w.code for w in writes if w.status == 201}
    assert {i: rows.get(i, (None,))[0] for i in acked} == acked
    unanswered = {code for i, (code, _) in rows.items() if i not in acked}
    assert unanswered <= {w.code for w in failed}, unanswered


# ---------------------------------------------------------------- start-up


def test_processes_started_together_on_a_new_database_all_serve_no_duplicate_key_pg_type(crest, pg_cluster):
    """Regression: crest processes started at once on a new database raced
    to make the same tables, and all but one stopped with "duplicate key
    value violates unique constraint pg_type_typname_nsp_index" (4 rounds
    of 5 with 3 processes). Start-up now runs one process at a time."""
    with open(scaleout.APP_FILE) as f:
        app = f.read()
    for _ in range(3):
        with fresh_database(pg_cluster) as db:
            procs = [crest(app, env={"CREST_DATABASE": db.uri}, wait=False) for _ in range(3)]
            for s in procs:
                s.wait_listening()
                assert s.get("/readyz").status_code == 200
            for s in procs:
                assert s.stop() == 0, s.stderr_text()


# ---------------------------------------------------------------- the README

README_SECTION = "## PostgreSQL and scaling out"


def test_the_readme_postgresql_section_prints_what_it_shows(scaled):
    cmds = readme.curl_commands(readme.section(README_SECTION))
    assert len(cmds) >= 6, "the PostgreSQL section lost its curl lines"
    readme.check_commands(cmds, scaled.url[len("http://"):])


def test_the_readme_shows_the_nginx_config_the_test_runs():
    blocks = re.findall(r"```nginx\n(.*?)```", readme.section(README_SECTION), re.S)
    assert len(blocks) == 1
    with open(scaleout.NGINX_TEMPLATE) as f:
        assert blocks[0] in f.read(), "the README's nginx config is not a part of examples/scaleout/nginx.conf.in"
    for directive in ("least_conn;", "keepalive 32;", "proxy_http_version 1.1;", 'proxy_set_header Connection "";',
                      "proxy_next_upstream error timeout;"):
        assert directive in blocks[0]


def test_the_readme_password_refusal_is_what_crest_check_says(tmp_path):
    """The README's `crest check` of an app file with a password in its
    database: the example's app with one written in its URI."""
    block = next(b for b in re.findall(r"```console\n(.*?)```", readme.section(README_SECTION), re.S)
                 if "$ build/crest check app.yaml" in b)
    expected = block.split("\n", 1)[1]
    with open(scaleout.APP_FILE) as f:
        app = f.read()
    app, n = re.subn(r"^database: postgresql://crest@", "database: postgresql://crest:secret@", app, flags=re.M)
    assert n == 1
    (tmp_path / "app.yaml").write_text(app)
    p = subprocess.run([_require(CREST_BIN, "CREST_BIN"), "check", "app.yaml"], cwd=tmp_path, capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 1
    assert p.stdout + p.stderr == expected
