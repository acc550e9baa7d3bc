"""How crest on PostgreSQL connects: a host name is looked up without
blocking a worker's loop (uv_getaddrinfo, then libpq connects to the
addresses found), so `localhost` serves and reconnects like an address; a
name that does not resolve is a clear error at start, and --wait-for-db
waits for it; several hosts with a name among them are refused; a blocking
connect (start-up, --wait-for-db, write routes) gives up after
connect_timeout: 10 s, or the conninfo's own; a write routes' connection
the server ended while it sat idle is replaced before use."""
import os
import socket
import subprocess
import time

import httpx
import pytest

from conftest import CREST_BIN, db_rows, run_cli  # noqa: F401

APP = """\
database: {uri}
workers: 1
pool: {{size: 2, acquire_timeout: 2s}}
models:
  Task:
    table: tasks
    fields:
      title: {{type: string, required: true}}
modules:
  tasks:
    model: Task
"""


def metric(srv, name):
    text = httpx.get(srv.url + "/metrics", timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def pool_idle(srv):
    text = httpx.get(srv.url + "/metrics", timeout=10).text
    return float(next(l for l in text.splitlines() if l.startswith('crest_db_pool_connections{state="idle"}'))
                 .split()[1])


def wait_for(pred, what, bound=10.0):
    end = time.monotonic() + bound
    while not pred():
        assert time.monotonic() < end, f"{what}: not within {bound} s"
        time.sleep(0.05)


def serve_cli(tmp_path, uri, *args, timeout=60):
    app = tmp_path / "app.yaml"
    app.write_text(APP.format(uri=uri))
    t0 = time.monotonic()
    p = run_cli([CREST_BIN, "serve", str(app), "--listen", "127.0.0.1:0", *args], cwd=str(tmp_path),
                timeout=timeout)
    return p, time.monotonic() - t0


def test_postgres_host_localhost_serves_and_reconnects_through_the_loops_lookup(crest, pg_db):
    srv = crest(APP.format(uri=f"postgresql://crest@localhost:{pg_db.cluster.port}/{pg_db.name}"))
    assert srv.request("POST", "/tasks", json={"title": "by name"}).status_code == 201
    assert srv.get("/tasks/1").status_code == 200
    # (the pool's second connection was made on the loop: looked up, then connected)
    wait_for(lambda: pool_idle(srv) == 2, "both connections idle")
    pg_db.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
               "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    wait_for(lambda: metric(srv, "crest_db_pool_reconnects_total") == 2 and pool_idle(srv) == 2,
             "both connections made again by name")
    assert metric(srv, "crest_db_pool_connect_failures_total") == 0
    assert srv.get("/tasks/1").json()["title"] == "by name"
    assert srv.request("POST", "/tasks", json={"title": "again"}).status_code == 201


def test_postgres_host_that_does_not_resolve_is_a_clear_error_at_start(tmp_path, pg_cluster):
    p, secs = serve_cli(tmp_path, f"postgresql://crest@nonexistent.invalid:{pg_cluster.port}/postgres")
    assert p.returncode != 0, p.err
    assert "cannot connect to the database" in p.err and "nonexistent.invalid" in p.err, p.err
    assert secs < 10, f"crest took {secs:.1f} s to give up"


def test_postgres_host_that_does_not_resolve_with_wait_for_db_waits_without_listening(tmp_path, pg_cluster):
    app = tmp_path / "app.yaml"
    app.write_text(APP.format(uri=f"postgresql://crest@nonexistent.invalid:{pg_cluster.port}/postgres"))
    with open(tmp_path / "stderr", "wb") as err:
        p = subprocess.Popen([CREST_BIN, "serve", str(app), "--listen", "127.0.0.1:0", "--wait-for-db"],
                             cwd=str(tmp_path), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
        try:
            time.sleep(3.0)
            assert p.poll() is None, "--wait-for-db: crest gave up"
        finally:
            p.kill()
            p.wait(10)
    log = (tmp_path / "stderr").read_text()
    assert '"event":"waiting_for_database"' in log, log
    assert '"event":"listening"' not in log, log


def test_postgres_several_hosts_with_a_name_among_them_are_refused_at_start(tmp_path, pg_cluster):
    port = pg_cluster.port
    p, _ = serve_cli(tmp_path, f"postgresql://crest@localhost:{port},127.0.0.1:{port}/postgres")
    assert p.returncode != 0
    assert "several hosts" in p.err, p.err


def test_postgres_write_after_the_server_ended_the_idle_connections_is_not_503(crest, pg_db):
    """fix: a write route took a blocking connection from the idle list that
    the server had ended (a restart, pg_terminate_backend) and answered 503;
    now such a connection is thrown away at its first use and another taken."""
    srv = crest(APP.format(uri=pg_db.uri))
    for n in range(3):
        assert srv.request("POST", "/tasks", json={"title": f"before {n}"}).status_code == 201
    ended = int(pg_db.psql("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                           "WHERE datname = current_database() AND pid <> pg_backend_pid()").strip())
    assert ended >= 1
    time.sleep(0.3)  # (the sessions are gone on the server)
    for n in range(3):
        r = srv.request("POST", "/tasks", json={"title": f"after {n}"})
        assert r.status_code == 201, r.text


@pytest.fixture
def silent_server():
    """A TCP port that takes connections and never answers (a database
    behind a black hole): its port."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    yield s.getsockname()[1]
    s.close()


@pytest.mark.parametrize("timeout_s, bound", [(None, (9.0, 25.0)), (2, (1.5, 8.0))])
def test_postgres_connect_to_a_database_that_never_answers_gives_up_after_connect_timeout(
        tmp_path, silent_server, timeout_s, bound):
    uri = f"postgresql://crest@127.0.0.1:{silent_server}/postgres"
    if timeout_s is not None:
        uri += f"?connect_timeout={timeout_s}"
    p, secs = serve_cli(tmp_path, uri)
    assert p.returncode != 0
    assert "cannot connect to the database" in p.err, p.err
    assert bound[0] <= secs <= bound[1], f"gave up after {secs:.1f} s (connect_timeout {timeout_s or 'default 10'})"
    print(f"\n[connect_timeout={timeout_s or 'default'}] gave up after {secs:.2f} s: {p.err.strip().splitlines()[-1]}")
