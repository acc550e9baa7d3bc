"""Limits from DESIGN.md, lowered through the app file's `limits:` key."""
import json
import threading
import time

import pytest

from conftest import assert_problem, chunked, http_request

LIMITED_APP = """\
database: sqlite:limits.db
limits:
  request_line: 1KiB
  header_line: 512B
  headers_total: 2KiB
  headers_count: 10
  body: 1KiB
  json_depth: 5
startup_sql: CREATE TABLE IF NOT EXISTS docs (id INTEGER PRIMARY KEY, doc TEXT)
endpoints:
  - method: POST
    path: /docs
    status: 201
    params:
      doc: {type: json, required: true}
    sql: INSERT INTO docs (doc) VALUES (:doc) RETURNING id, doc
    columns: {doc: json}
    returns: one
  - path: /echo
    params: {q: string}
    sql: SELECT :q AS q
    returns: one
"""


@pytest.fixture
def srv(crest):
    return crest(LIMITED_APP)


def test_request_line_within_limit_is_fine(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/echo?q=" + "a" * 900))
        r = c.read_response()
    assert r.status == 200 and r.json()["q"] == "a" * 900


def test_request_line_too_long_is_414(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/echo?q=" + "a" * 2000))
        r = c.read_response()
        assert_problem(r, 414)
        assert c.closed_by_peer(10)


def test_default_request_line_limit_is_8k(crest):
    s = crest("endpoints: []\n")
    with s.raw() as c:
        c.send(http_request("GET", "/healthz?q=" + "a" * 7000))
        assert c.read_response().status == 200
    with s.raw() as c:
        c.send(http_request("GET", "/healthz?q=" + "a" * 9000))
        assert_problem(c.read_response(), 414)


def test_one_header_too_long_is_431(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/healthz", [("X-Big", "b" * 400)]))
        assert c.read_response().status == 200
        c.send(http_request("GET", "/healthz", [("X-Big", "b" * 600)]))
        r = c.read_response()
        assert_problem(r, 431)
        assert c.closed_by_peer(10)


def test_headers_total_too_large_is_431(srv):
    # each header is under the one-header limit, all together are over 2 KiB
    hs = [(f"X-H{i}", "v" * 400) for i in range(6)]
    with srv.raw() as c:
        c.send(http_request("GET", "/healthz", hs))
        r = c.read_response()
        assert_problem(r, 431)
        assert c.closed_by_peer(10)


def test_headers_count_limit(srv):
    # Host plus 9 more = 10 headers: allowed
    ok = [(f"X-N{i}", "1") for i in range(9)]
    with srv.raw() as c:
        c.send(http_request("GET", "/healthz", ok))
        assert c.read_response().status == 200
        c.send(http_request("GET", "/healthz", ok + [("X-One-More", "1")]))
        r = c.read_response()
        assert_problem(r, 431)
        assert c.closed_by_peer(10)


def test_content_length_over_body_limit_is_413_before_the_body(srv):
    with srv.raw() as c:
        c.send(b"POST /docs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: 5000\r\n\r\n")
        # no body byte sent: the answer must come anyway
        r = c.read_response(timeout=10)
        assert_problem(r, 413)
        assert r.header("connection", "").lower() == "close"


def test_body_at_the_limit_is_accepted(srv):
    doc = {"s": "x" * 900}
    body = json.dumps({"doc": doc}).encode()
    assert len(body) <= 1024
    with srv.raw() as c:
        c.send(http_request("POST", "/docs", [("Content-Type", "application/json")], body))
        r = c.read_response()
    assert r.status == 201, r
    assert r.json()["doc"] == doc


def test_chunked_body_growing_past_the_limit_is_413(srv):
    with srv.raw() as c:
        c.send(http_request("POST", "/docs", [("Content-Type", "application/json"),
                                              ("Transfer-Encoding", "chunked")]))
        c.send(b'200\r\n{"doc": "' + b"y" * (0x200 - 9) + b"\r\n")
        c.send(b"200\r\n" + b"y" * 0x200 + b"\r\n")
        c.send(b"200\r\n" + b"y" * 0x200 + b"\r\n")
        # the body is past 1 KiB and not finished: the server answers now
        r = c.read_response(timeout=10)
        assert_problem(r, 413)


def test_json_depth_limit_is_400(srv):
    def nest(n):
        return "[" * n + "1" + "]" * n

    with srv.raw() as c:
        c.send(http_request("POST", "/docs", [("Content-Type", "application/json")],
                            '{"doc": %s}' % nest(3)))
        r = c.read_response()
        assert r.status == 201, r
        c.send(http_request("POST", "/docs", [("Content-Type", "application/json")],
                            '{"doc": %s}' % nest(20)))
        r = c.read_response()
    p = assert_problem(r, 400)
    assert p["code"] == "invalid_json"


def test_json_depth_default_64(crest):
    s = crest(LIMITED_APP.replace("  json_depth: 5\n", "").replace("body: 1KiB", "body: 64KiB"))
    deep = '{"doc": %s}' % ("[" * 62 + "1" + "]" * 62)
    assert s.request("POST", "/docs", content=deep, headers={"content-type": "application/json"}).status_code == 201
    deeper = '{"doc": %s}' % ("[" * 200 + "1" + "]" * 200)
    r = s.request("POST", "/docs", content=deeper, headers={"content-type": "application/json"})
    assert_problem(r, 400, "invalid_json")


def test_slowloris_is_cut_off_at_the_header_deadline(crest):
    s = crest("limits: {header_timeout: 3s}\n")
    c = s.raw(timeout=20)
    stop = threading.Event()
    start = time.monotonic()
    c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")

    def trickle():
        i = 0
        while not stop.wait(1.0):
            try:
                c.sock.sendall(b"X-Slow-%d: 1\r\n" % i)
            except OSError:
                return
            i += 1

    t = threading.Thread(target=trickle, daemon=True)
    t.start()
    try:
        r = c.read_response(timeout=15)
        elapsed = time.monotonic() - start
        assert_problem(r, 408)
        assert r.header("connection", "").lower() == "close"
        assert c.closed_by_peer(10)
        assert 2.5 <= elapsed <= 3 + 2.5, elapsed
    finally:
        stop.set()
        t.join(5)
        c.close()


def test_slow_body_is_cut_off_at_the_body_timeout(crest):
    s = crest(LIMITED_APP.replace("  json_depth: 5\n", "  json_depth: 5\n  body_timeout: 1s\n"))
    with s.raw() as c:
        start = time.monotonic()
        c.send(b"POST /docs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{")
        r = c.read_response(timeout=15)
        assert_problem(r, 408)
        assert time.monotonic() - start < 1 + 3


def test_idle_keep_alive_connection_is_closed(crest):
    s = crest("limits: {keepalive_timeout: 1s}\n")
    with s.raw() as c:
        c.send(http_request("GET", "/healthz"))
        assert c.read_response().status == 200
        start = time.monotonic()
        assert c.still_open(0.4)
        assert c.closed_by_peer(10)
        elapsed = time.monotonic() - start
        assert 0.5 <= elapsed <= 1 + 3, elapsed
        assert c.buf == b""


def test_connection_that_never_sends_is_closed(crest):
    s = crest("limits: {header_timeout: 1s}\n")
    with s.raw() as c:
        assert c.closed_by_peer(10)


@pytest.mark.parametrize("workers", [1, 2])
def test_max_connections_503_with_retry_after(crest, workers):
    s = crest("limits: {max_connections: 2}\n", workers=workers)
    a, b = s.raw(), s.raw()
    try:
        for c in (a, b):
            c.send(http_request("GET", "/healthz"))
            assert c.read_response().status == 200
        with s.raw() as third:
            r = third.read_response(timeout=10)
            assert_problem(r, 503)
            assert r.header("retry-after")
            assert int(r.header("retry-after")) >= 0
            assert r.header("connection", "").lower() == "close"
            assert third.closed_by_peer(10)
        # the first two are still served
        for c in (a, b):
            c.send(http_request("GET", "/healthz"))
            assert c.read_response().status == 200
    finally:
        a.close()
        b.close()
    # once they are gone, new connections are served again
    deadline = time.monotonic() + 10
    while True:
        with s.raw() as c:
            c.send(http_request("GET", "/healthz"))
            r = c.read_response()
        if r.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status == 200


def test_content_length_and_transfer_encoding_together_is_400_and_close(srv):
    with srv.raw() as c:
        c.send(b"POST /docs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 12\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + chunked('{"doc": 1}'))
        r = c.read_response()
        assert_problem(r, 400)
        assert r.header("connection", "").lower() == "close"
        assert c.closed_by_peer(10)


def test_limit_errors_are_problem_json_with_detail(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/healthz", [("X-Big", "b" * 600)]))
        p = assert_problem(c.read_response(), 431)
    assert p["title"]
    assert isinstance(p.get("detail"), str) and p["detail"]


def test_bad_limit_value_refuses_to_start(tmp_path):
    from conftest import CREST_BIN, run_cli
    f = tmp_path / "app.yaml"
    f.write_text("limits:\n  body: 12 parsecs\n")
    p = run_cli([CREST_BIN, "check", str(f)])
    assert p.returncode == 1
    assert f"{f}:2:" in p.err and "body" in p.err


def _trickle_until_closed(c, pieces, interval):
    """Sends one piece every interval seconds from a thread; returns (thread, stop event)."""
    stop = threading.Event()

    def run():
        for p in pieces:
            if stop.wait(interval):
                return
            try:
                c.sock.sendall(p)
            except OSError:
                return

    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t, stop


def test_slowloris_trickling_the_request_line(crest):
    s = crest("limits: {header_timeout: 2s}\n")
    c = s.raw(timeout=20)
    start = time.monotonic()
    c.send(b"G")
    t, stop = _trickle_until_closed(c, [bytes([b]) for b in b"ET /healthz?aaaaaaaaaaaaaaaaaaaaaaaa"], 0.25)
    try:
        r = c.read_response(timeout=15)
        assert_problem(r, 408)
        assert c.closed_by_peer(10)
        assert time.monotonic() - start <= 2 + 2.5
    finally:
        stop.set()
        t.join(5)
        c.close()


def test_slowloris_on_a_kept_alive_connection(crest):
    s = crest("limits: {header_timeout: 2s, keepalive_timeout: 30s}\n")
    c = s.raw(timeout=20)
    try:
        c.send(http_request("GET", "/healthz"))
        assert c.read_response().status == 200
        start = time.monotonic()
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        t, stop = _trickle_until_closed(c, [b"X-S%d: 1\r\n" % i for i in range(20)], 0.5)
        r = c.read_response(timeout=15)
        assert_problem(r, 408)
        assert c.closed_by_peer(10)
        assert time.monotonic() - start <= 2 + 2.5
        stop.set()
        t.join(5)
    finally:
        c.close()


def test_empty_lines_do_not_keep_an_idle_connection_alive(crest):
    s = crest("limits: {header_timeout: 1s, keepalive_timeout: 1s}\n")
    c = s.raw(timeout=20)
    start = time.monotonic()
    t, stop = _trickle_until_closed(c, [b"\r\n"] * 40, 0.2)
    try:
        assert c.closed_by_peer(10)
        assert time.monotonic() - start <= 1 + 2.5
    finally:
        stop.set()
        t.join(5)
        c.close()


def test_slow_body_making_progress_is_not_cut(crest):
    s = crest(LIMITED_APP.replace("  json_depth: 5\n", "  json_depth: 5\n  body_timeout: 1s\n"))
    body = b'{"doc": {"k": "slow but steady"}}'
    with s.raw() as c:
        c.send(b"POST /docs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
               % len(body))
        for i in range(0, len(body), 8):  # about 2.5 s in all, never idle for 1 s
            time.sleep(0.5)
            c.send(body[i:i + 8])
        r = c.read_response()
    assert r.status == 201, r
    assert r.json()["doc"] == {"k": "slow but steady"}


# ---------------------------------------------------------------- storage

FULL_APP = """\
database: sqlite:full.db
models:
  Note:
    table: notes
    fields:
      body: {type: text, required: true}
modules:
  notes:
    model: Note
    page_size: {default: 20, max: 1000}
endpoints:
  - method: POST
    path: /sql/notes
    status: 201
    params: {body: string}
    sql: INSERT INTO notes (body) VALUES (:body) RETURNING id
    returns: one
"""


def _file_size_limit(nbytes):
    import resource

    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, nbytes))
    return apply


def test_a_full_disk_answers_507_keeps_reads_and_loses_no_acknowledged_row(servers, tmp_path):
    """ulimit -f under a service manager: writes past the limit are 507 storage_full with
    Retry-After; SIGXFSZ does not kill crest; reads go on; acknowledged rows survive a restart."""
    from conftest import CREST_BIN, Server, _require
    _require(CREST_BIN, "CREST_BIN")
    (tmp_path / "app.yaml").write_text(FULL_APP)
    argv = [CREST_BIN, "serve", str(tmp_path / "app.yaml"), "--listen", "127.0.0.1:0", "--workers", "1"]
    s = servers.add(Server(argv, cwd=str(tmp_path), preexec_fn=_file_size_limit(2 * 1024 * 1024)))
    s.wait_listening()
    acked, full = 0, None
    for _ in range(200):  # 2 MiB / 40 KB a request: about 50 requests
        r = s.request("POST", "/notes", json=[{"body": "x" * 2000} for _ in range(20)])
        if r.status_code != 201:
            full = r
            break
        acked += len(r.json()["data"])
    assert full is not None, "the database never filled"
    p = assert_problem(full, 507, "storage_full")
    assert "xfsz" not in p["detail"].lower() and "sqlite" not in p["detail"].lower()
    assert full.headers["retry-after"].isdigit()
    assert acked > 0
    # Still alive; every kind of write answers the same; reads are served.
    assert s.proc.poll() is None
    assert_problem(s.request("POST", "/notes", json={"body": "y" * 100000}), 507, "storage_full")
    assert_problem(s.request("POST", "/sql/notes", json={"body": "z" * 100000}), 507, "storage_full")
    r = s.get("/notes", params={"page_size": 1})
    assert r.status_code == 200, r.text
    assert r.json()["meta"]["total_objects"] == acked
    assert s.get("/notes/1").status_code == 200
    assert any(e.get("event") == "storage_error" for e in s.events())
    assert s.stop() == 0
    # No acknowledged row was lost.
    s2 = servers.add(Server(argv, cwd=str(tmp_path)))
    s2.wait_listening()
    r = s2.get("/notes", params={"page_size": 1000})
    assert r.json()["meta"]["total_objects"] == acked
    assert all(n["body"] == "x" * 2000 for n in r.json()["data"])
    assert s2.request("POST", "/notes", json={"body": "after"}).status_code == 201
