"""HTTP/1.1 protocol behaviour, over raw sockets."""
import email.utils
import json
import re
import time

import pytest

from conftest import TASKS_APP, assert_problem, chunked, http_request
from rest_apps import module_server

IMF_FIXDATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} "
    r"\d{2}:\d{2}:\d{2} GMT$")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """One server for the module: its tests read the two seeded rows and create rows of their own titles only
    (the title is unique); each talks on connections of its own."""
    yield from module_server(tmp_path_factory, TASKS_APP, name="http")


def test_keep_alive_several_requests_on_one_socket(srv):
    with srv.raw() as c:
        ids = []
        for path, want in (("/tasks/1", "first"), ("/tasks/2", "second"), ("/tasks/1", "first")):
            c.send(http_request("GET", path))
            r = c.read_response()
            assert r.status == 200
            assert r.json()["title"] == want
            assert r.header("connection", "").lower() != "close"
            ids.append(r.header("x-request-id"))
        c.send(http_request("GET", "/healthz"))
        assert c.read_response().json() == {"status": "ok"}
        assert len(set(ids)) == 3
        assert c.still_open(0.2)


def test_pipelining_answers_in_order(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/tasks/1") + http_request("GET", "/tasks/2") + http_request("GET", "/healthz")
               + http_request("GET", "/tasks/999") + http_request("GET", "/tasks/2"))
        rs = [c.read_response() for _ in range(5)]
    assert [r.status for r in rs] == [200, 200, 200, 404, 200]
    assert rs[0].json()["title"] == "first"
    assert rs[1].json()["title"] == "second"
    assert rs[2].json() == {"status": "ok"}
    assert_problem(rs[3], 404, "not_found")
    assert rs[4].json()["id"] == 2
    ids = [r.header("x-request-id") for r in rs]
    assert all(ids) and len(set(ids)) == 5


def test_pipelining_with_bodies(srv):
    reqs = b"".join(
        http_request("POST", "/tasks", [("Content-Type", "application/json")], json.dumps({"title": f"p{i}"}))
        for i in range(4))
    with srv.raw() as c:
        c.send(reqs)
        rs = [c.read_response() for _ in range(4)]
    assert [r.status for r in rs] == [201] * 4
    assert [r.json()["title"] for r in rs] == ["p0", "p1", "p2", "p3"]


def test_chunked_request_body(srv):
    body = chunked('{"tit', 'le": "chunk', 'ed body", "spent_', 'time": 7}')
    with srv.raw() as c:
        c.send(http_request("POST", "/tasks", [("Content-Type", "application/json"),
                                               ("Transfer-Encoding", "chunked")]) + body)
        r = c.read_response()
        assert r.status == 201, r
        assert r.json()["title"] == "chunked body"
        assert r.json()["spent_time"] == 7
        # the connection stays usable after a chunked body
        c.send(http_request("GET", f"/tasks/{r.json()['id']}"))
        assert c.read_response().json()["title"] == "chunked body"


def test_chunked_body_sent_in_pieces(srv):
    with srv.raw() as c:
        c.send(http_request("POST", "/tasks", [("Content-Type", "application/json"),
                                               ("Transfer-Encoding", "chunked")]))
        for piece in (b"5\r\n{\"tit\r\n", b"b\r\nle\": \"slow\"\r\n", b"1\r\n}\r\n", b"0\r\n\r\n"):
            time.sleep(0.05)
            c.send(piece)
        r = c.read_response()
        assert r.status == 201, r
        assert r.json()["title"] == "slow"


def test_expect_100_continue(srv):
    body = json.dumps({"title": "after continue"}).encode()
    with srv.raw() as c:
        c.send(http_request("POST", "/tasks", [("Content-Type", "application/json"),
                                               ("Content-Length", str(len(body))),
                                               ("Expect", "100-continue")]))
        interim = c.read_response()
        assert interim.status == 100
        assert interim.status_line.startswith("HTTP/1.1 100")
        c.send(body)
        r = c.read_response()
        assert r.status == 201, r
        assert r.json()["title"] == "after continue"


def test_head_has_get_headers_and_no_body(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/tasks/1"))
        g = c.read_response()
        c.send(http_request("HEAD", "/tasks/1"))
        h = c.read_response(head=True)
        # If HEAD had sent a body, this next response would not parse.
        c.send(http_request("GET", "/healthz"))
        after = c.read_response()
    assert g.status == h.status == 200
    assert h.header("content-length") == g.header("content-length") == str(len(g.body))
    assert h.header("content-type") == g.header("content-type")
    assert h.header("x-request-id")
    assert after.status == 200 and after.json() == {"status": "ok"}


def test_head_of_missing_row_is_404_without_body(srv):
    with srv.raw() as c:
        c.send(http_request("HEAD", "/tasks/12345"))
        h = c.read_response(head=True)
        c.send(http_request("GET", "/healthz"))
        after = c.read_response()
    assert h.status == 404
    assert int(h.header("content-length")) > 0
    assert after.json() == {"status": "ok"}


def test_date_header_is_imf_fixdate_and_now(srv):
    with srv.raw() as c:
        for path in ("/healthz", "/nope"):
            c.send(http_request("GET", path))
            r = c.read_response()
            d = r.header("date")
            assert d and IMF_FIXDATE.match(d), d
            ts = email.utils.parsedate_to_datetime(d).timestamp()
            assert abs(ts - time.time()) < 5, (d, time.time())


def test_content_length_matches_body(srv):
    with srv.raw() as c:
        for req in (http_request("GET", "/tasks"), http_request("GET", "/tasks/1"), http_request("GET", "/missing"),
                    http_request("POST", "/tasks", [("Content-Type", "application/json")], b'{"title":"cl"}'),
                    http_request("POST", "/tasks", [("Content-Type", "application/json")], b'{"nope":1}')):
            c.send(req)
            r = c.read_response()
            assert r.header("content-length") == str(len(r.body))
            assert len(r.body) > 0
            json.loads(r.body)
    # and the stdlib agrees when it reads until close
    with srv.raw() as c:
        c.send(http_request("GET", "/tasks", [("Connection", "close")]))
        data = c.read_all()
    head, _, body = data.partition(b"\r\n\r\n")
    cl = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    assert cl and int(cl.group(1)) == len(body)


def test_connection_close_from_client(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/healthz", [("Connection", "close")]))
        r = c.read_response()
        assert r.status == 200
        assert r.header("connection", "").lower() == "close"
        assert c.closed_by_peer(10)
        assert c.buf == b""


def test_http10_without_keep_alive_closes(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/tasks/1", version="HTTP/1.0"))
        r = c.read_response()
        assert r.status == 200
        assert r.json()["title"] == "first"
        assert r.header("connection", "close").lower() == "close"
        assert c.closed_by_peer(10)


def test_http10_with_keep_alive_stays_open(srv):
    with srv.raw() as c:
        for path in ("/tasks/1", "/tasks/2"):
            c.send(http_request("GET", path, [("Connection", "keep-alive")], version="HTTP/1.0"))
            r = c.read_response()
            assert r.status == 200
            assert r.header("connection", "").lower() == "keep-alive"
        assert r.json()["title"] == "second"
        assert c.still_open(0.3)


def test_request_id_on_every_response(srv):
    seen = set()
    reqs = [("GET", "/healthz", [], b""), ("GET", "/nope", [], b""), ("DELETE", "/healthz", [], b""),
            ("GET", "/tasks/abc", [], b""), ("OPTIONS", "/tasks", [], b""),
            ("POST", "/tasks", [("Content-Type", "text/plain")], b"x"),
            ("POST", "/tasks", [("Content-Type", "application/json")], b"{bad")]
    with srv.raw() as c:
        for m, p, h, b in reqs:
            c.send(http_request(m, p, h, b))
            r = c.read_response()
            rid = r.header("x-request-id")
            assert rid and re.fullmatch(r"[A-Za-z0-9._-]+", rid), r
            seen.add(rid)
    assert len(seen) == len(reqs)
    # engine-level errors too (answered before routing)
    with srv.raw() as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n")
        r = c.read_response()
        assert r.status == 400 and r.header("x-request-id")


def test_incoming_request_id_is_echoed(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/healthz", [("X-Request-Id", "abc-123_x.Y")]))
        r = c.read_response()
        assert r.header("x-request-id") == "abc-123_x.Y"
        c.send(http_request("GET", "/nope", [("X-Request-Id", "err-42")]))
        r = c.read_response()
        assert r.status == 404 and r.header("x-request-id") == "err-42"
    srv.wait_access("abc-123_x.Y")
    line = srv.wait_access("err-42")
    assert line["status"] == 404


def test_invalid_incoming_request_id_is_replaced(srv):
    with srv.raw() as c:
        for bad in ("has space", "<script>", "a" * 200, "semi;colon"):
            c.send(http_request("GET", "/healthz", [("X-Request-Id", bad)]))
            r = c.read_response()
            rid = r.header("x-request-id")
            assert rid and rid != bad and re.fullmatch(r"[A-Za-z0-9._-]+", rid), (bad, rid)


def test_healthz(srv):
    r = srv.get("/healthz")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"status": "ok"}
    assert r.content == b'{"status":"ok"}'


def test_access_log_line_per_request(srv):
    with srv.raw() as c:
        sent = [("GET", "/tasks/1?x=1", "/tasks/1"), ("GET", "/nope", "/nope"), ("DELETE", "/healthz", "/healthz"),
                ("POST", "/tasks", "/tasks")]
        got = []
        for m, target, _ in sent:
            body = b'{"title":"logged"}' if m == "POST" else b""
            c.send(http_request(m, target, [("Content-Type", "application/json")] if body else [], body))
            got.append(c.read_response())
    for (m, _, path), r in zip(sent, got):
        rid = r.header("x-request-id")
        line = srv.wait_access(rid)
        for k in ("time", "request_id", "method", "path", "status", "bytes", "duration_us"):
            assert k in line, (k, line)
        assert line["method"] == m
        assert line["path"] == path
        assert line["status"] == r.status
        assert line["bytes"] == len(r.body)
        assert isinstance(line["duration_us"], int) and line["duration_us"] >= 0
        assert isinstance(line["time"], str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", line["time"])
    # exactly one line per request
    rids = [r.header("x-request-id") for r in got]
    log = srv.access_log()
    for rid in rids:
        assert sum(1 for e in log if e["request_id"] == rid) == 1


def test_access_log_can_be_turned_off(crest):
    s = crest("access_log: false\n")
    assert s.get("/healthz").status_code == 200
    assert s.get("/nope").status_code == 404
    time.sleep(0.3)
    assert s.access_log() == []


def test_unknown_method_is_answered_with_a_problem(srv):
    with srv.raw() as c:
        c.send(b"BREW /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
    assert 400 <= r.status < 600
    assert r.header("x-request-id")


def test_garbage_request_gets_400_and_close(srv):
    with srv.raw() as c:
        c.send(b"this is not http\r\n\r\n")
        r = c.read_response()
        assert_problem(r, 400)
        assert c.closed_by_peer(10)


def test_absolute_form_target_is_rejected(srv):
    with srv.raw() as c:
        c.send(b"GET http://example.com/healthz HTTP/1.1\r\nHost: example.com\r\n\r\n")
        r = c.read_response()
    assert_problem(r, 400)


def test_httpx_client_works(srv):
    with srv.client() as c:
        for _ in range(3):
            r = c.get("/tasks")
            assert r.status_code == 200
            assert [t["id"] for t in r.json()["data"]][:2] == [1, 2]


def test_connection_close_stops_the_pipeline(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/tasks/1", [("Connection", "close")]) + http_request("GET", "/tasks/2"))
        r = c.read_response()
        assert r.json()["title"] == "first"
        assert c.closed_by_peer(10)
        assert c.buf == b"", "a request after Connection: close was answered"


def test_large_pipeline_is_answered_in_full(srv):
    n = 1000
    with srv.raw(timeout=60) as c:
        c.send(b"".join(http_request("GET", f"/tasks/{1 + i % 2}", [("X-Request-Id", f"p{i}")]) for i in range(n)))
        for i in range(n):
            r = c.read_response()
            assert r.status == 200
            assert r.header("x-request-id") == f"p{i}"
            assert r.json()["id"] == 1 + i % 2


def test_pipelining_through_a_blocking_handler_keeps_order(hello, tmp_path):
    s = hello(tmp_path / "p.db")
    reqs = []
    for i in range(30):
        reqs.append(http_request("GET", "/tables/items/count" if i % 2 == 0 else "/hello",
                                 [("X-Request-Id", f"b{i}")]))
    with s.raw(timeout=30) as c:
        c.send(b"".join(reqs))
        for i in range(30):
            r = c.read_response()
            assert r.status == 200, r
            assert r.header("x-request-id") == f"b{i}"
            if i % 2 == 0:
                assert r.json() == {"table": "items", "count": 0}
            else:
                assert r.json() == {"message": "hello"}


def test_expect_100_continue_with_too_large_body_gets_413_not_100(crest):
    s = crest("limits: {body: 1KiB}\n" + TASKS_APP)
    with s.raw() as c:
        c.send(http_request("POST", "/tasks", [("Content-Type", "application/json"), ("Content-Length", "100000"),
                                               ("Expect", "100-continue")]))
        r = c.read_response(timeout=10)
        assert_problem(r, 413)


def test_expect_100_continue_on_http10_is_not_answered_with_100(srv):
    body = b'{"title":"ten"}'
    with srv.raw() as c:
        c.send(http_request("POST", "/tasks", [("Content-Type", "application/json"),
                                               ("Content-Length", str(len(body))), ("Expect", "100-continue")],
                            version="HTTP/1.0"))
        assert c.still_open(0.5) and c.buf == b""
        c.send(body)
        r = c.read_response()
        assert r.status == 201


def test_unsupported_expectation_is_417(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/healthz", [("Expect", "something-else")]))
        assert_problem(c.read_response(), 417)


def test_get_with_a_body_is_consumed(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/healthz", [("Content-Length", "5")], b"hello") + http_request("GET", "/tasks/2"))
        assert c.read_response().json() == {"status": "ok"}
        assert c.read_response().json()["title"] == "second"


def test_leading_empty_lines_are_tolerated(srv):
    with srv.raw() as c:
        c.send(b"\r\n\r\n" + http_request("GET", "/healthz"))
        assert c.read_response().status == 200


def test_upgrade_request_is_answered_as_plain_http(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/healthz", [("Connection", "Upgrade"), ("Upgrade", "websocket")]))
        r = c.read_response()
        assert r.status == 200 and r.json() == {"status": "ok"}


@pytest.mark.parametrize("headers", [
    [("Content-Length", "3"), ("Content-Length", "4")],
    [("Content-Length", "abc")],
    [("Content-Length", "-1")],
    [("Transfer-Encoding", "gzip")],
], ids=["two-lengths", "bad-length", "negative-length", "te-not-chunked"])
def test_ambiguous_body_length_is_400_and_close(srv, headers):
    with srv.raw() as c:
        c.send(http_request("POST", "/tasks", [("Content-Type", "application/json")] + headers) + b'{"title":"s"}')
        r = c.read_response()
        assert_problem(r, 400)
        assert c.closed_by_peer(10)


def test_longest_valid_request_id_is_echoed(srv):
    rid = "r" * 39
    with srv.raw() as c:
        c.send(http_request("GET", "/healthz", [("X-Request-Id", rid)]))
        assert c.read_response().header("x-request-id") == rid


def test_access_log_escapes_odd_paths(srv):
    with srv.raw() as c:
        c.send(http_request("GET", '/a"b\\c', [("X-Request-Id", "odd-path")]))
        assert c.read_response().status == 404
    line = srv.wait_access("odd-path")
    assert line["path"] == '/a"b\\c'


# ---- RFC 9112 conformance (MUST-level requirements on servers)


def test_http11_request_without_host_is_400(srv):
    # RFC 9112 3.2: a server MUST respond 400 to an HTTP/1.1 request without Host.
    with srv.raw() as c:
        c.send(b"GET /healthz HTTP/1.1\r\n\r\n")
        assert_problem(c.read_response(), 400)


def test_request_with_two_hosts_is_400(srv):
    # RFC 9112 3.2: ... and to any request message with more than one Host field.
    with srv.raw() as c:
        c.send(b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
        assert_problem(c.read_response(), 400)


def test_whitespace_before_header_colon_is_400(srv):
    # RFC 9112 5.1: a server MUST reject whitespace between a field name and the colon
    # with 400 (it is a request-smuggling vector: "Content-Length : 9").
    with srv.raw() as c:
        c.send(b"POST /tasks HTTP/1.1\r\nHost: a\r\nContent-Type: application/json\r\nContent-Length : 16\r\n\r\n"
               b'{"title":"smug"}')
        assert_problem(c.read_response(), 400)


BIG_ROWS_APP = """\
database: sqlite:big.db
{limits}
endpoints:
  - path: /rows
    sql: >
      WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x+1 FROM c WHERE x < {n})
      SELECT x AS id, 'row number ' || x AS label FROM c
    returns: many
"""


@pytest.mark.parametrize("limits,rows,count", [
    ("limits: {output_buffer: 64KiB, drain_timeout: 2s}", 1500, 6),  # ~55 KB per response
    ("limits: {drain_timeout: 2s}", 20000, 3),  # ~780 KB per response, default 1 MiB output buffer
], ids=["small-output-buffer", "default-limits"])
def test_pipelined_large_responses_are_all_sent(crest, limits, rows, count):
    s = crest(BIG_ROWS_APP.format(limits=limits, n=rows))
    with s.raw(timeout=6) as c:
        c.send(b"".join(http_request("GET", "/rows", [("X-Request-Id", f"big{i}")]) for i in range(count)))
        for i in range(count):
            r = c.read_response(timeout=6)
            assert r.status == 200
            assert r.header("x-request-id") == f"big{i}"
            assert len(r.json()["data"]) == rows


def test_pipelined_large_responses_read_slowly(crest):
    s = crest(BIG_ROWS_APP.format(limits="limits: {output_buffer: 64KiB, drain_timeout: 2s}", n=1500))
    with s.raw(timeout=6) as c:
        c.send(http_request("GET", "/rows") * 4)
        time.sleep(1.0)  # the server must pause, not drop, while the client does not read
        for _ in range(4):
            assert len(c.read_response(timeout=6).json()["data"]) == 1500


def test_chunk_extensions_and_trailers(srv):
    with srv.raw() as c:
        c.send(http_request("POST", "/tasks", [("Content-Type", "application/json"),
                                               ("Transfer-Encoding", "chunked")])
               + b'9;name=value\r\n{"title":\r\n7\r\n "ext"}\r\n0\r\nX-Trailer: yes\r\n\r\n')
        r = c.read_response()
        assert r.status == 201 and r.json()["title"] == "ext"
        c.send(http_request("GET", "/healthz"))
        assert c.read_response().status == 200


def test_bad_chunk_size_is_400_and_close(srv):
    with srv.raw() as c:
        c.send(http_request("POST", "/tasks", [("Content-Type", "application/json"),
                                               ("Transfer-Encoding", "chunked")]) + b"zz\r\n{}\r\n0\r\n\r\n")
        assert_problem(c.read_response(), 400)
        assert c.closed_by_peer(10)


# ---- issue 10, item 21: the HTTP version is checked


@pytest.mark.parametrize("version", ["HTTP/9.9", "HTTP/2.0", "HTTP/1.2", "HTTP/3.0", "HTTP/0.9"])
def test_unsupported_http_version_is_505(srv, version):
    with srv.raw() as c:
        c.send(http_request("GET", "/tasks/1", version=version))
        r = c.read_response()
        p = assert_problem(r, 505, "http_version_not_supported")
        assert "HTTP/1.1" in p["detail"]
        assert r.version == "HTTP/1.1"
        assert r.header("connection", "").lower() == "close"
        assert c.closed_by_peer(10)


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/1.1"])
def test_http_10_and_11_are_served(srv, version):
    with srv.raw() as c:
        c.send(http_request("GET", "/tasks/1", version=version))
        r = c.read_response()
        assert r.status == 200 and r.json()["id"] == 1


# ---- issue 10, item 22: a request body with a content coding crest does not decode


@pytest.mark.parametrize("encoding", [
    [("Content-Encoding", "gzip")],
    [("Content-Encoding", "br")],
    [("Content-Encoding", "identity, gzip")],
    [("Content-Encoding", "identity"), ("Content-Encoding", "deflate")],
], ids=["gzip", "br", "list", "two-headers"])
def test_content_encoding_on_a_body_is_415(srv, encoding):
    body = b'{"title": "labelled but not compressed"}'
    with srv.raw() as c:
        c.send(http_request("POST", "/tasks", [("Content-Type", "application/json")] + encoding, body))
        r = c.read_response()
        p = assert_problem(r, 415, "unsupported_content_encoding")
        assert "Content-Encoding" in p["detail"]
        assert r.header("accept-encoding") == "identity"
        # the connection goes on, and nothing was created
        c.send(http_request("GET", "/tasks"))
        titles = [t["title"] for t in c.read_response().json()["data"]]
        assert "labelled but not compressed" not in titles


@pytest.mark.parametrize("encoding", ["identity", "Identity", "identity,  identity", ""])
def test_identity_content_encoding_is_fine(srv, encoding):
    r = srv.request("POST", "/tasks", content=b'{"title": "plain %s"}' % encoding.encode(),
                    headers={"Content-Type": "application/json", "Content-Encoding": encoding})
    assert r.status_code == 201, r.text


def test_content_encoding_without_a_body_is_ignored(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/tasks/1", [("Content-Encoding", "gzip")]))
        assert c.read_response().status == 200


def test_content_encoding_on_a_body_of_a_c_handler_is_415(hello):
    s = hello()
    r = s.request("POST", "/tables/items/rows", content=b'[{"name": "x"}]',
                  headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert_problem(r, 415, "unsupported_content_encoding")
