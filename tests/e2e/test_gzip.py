"""gzip of answers (issue 14; src/app/compress.c, the `compression:` setting).

The wire is read raw (conftest's RawConn: httpx would decompress on its own):
a body of at least min_bytes (1024 by default) of a JSON or text answer goes
gzipped when the request's Accept-Encoding allows it, with Content-Length the
gzip size; every answer that could have been gzipped says
Vary: Accept-Encoding (one Vary line, merged with CORS's Origin); 204, HEAD's
missing body, an answer below min_bytes and a request that does not allow
gzip get the identity body. Shared bodies (the OpenAPI document, the docs
page's files) inflate to exactly what they are."""
import gzip
import json

import pytest

from conftest import CREST_BIN, http_request, on_store, run_cli
from rest_apps import module_server, seed_bulk

# n copies of a letter, in each store's SQL
def _repeat(ch):
    return on_store(sqlite=f"replace(hex(zeroblob(:n)), '00', '{ch}')", postgres=f"repeat('{ch}', CAST(:n AS int))")


APP = """\
database: sqlite:gz.db
access_log: false
cors:
  origins: [https://app.example.com]
models:
  Task:
    table: tasks
    fields:
      title:      {type: string, required: true, max_length: 2000}
      spent_time: {type: int, min: 0, default: 0}
modules:
  tasks:
    model: Task
    url_prefix: /tasks
    page_size: {default: 20, max: 50}
endpoints:
  - path: /tagged
    params:
      ETag: {in: header, reply_header: true}
      n: {type: int, in: query, default: 100}
    sql: SELECT REPEAT_X AS text
    returns: one
""".replace("REPEAT_X", _repeat("x"))

ROWS = [{"title": f"task number {i} of the gzip suite", "spent_time": i} for i in range(50)]
LIST = "/tasks?page_size=50&sort_by=id"
GZ = [("Accept-Encoding", "gzip")]


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, APP, name="gzip",
                             setup=lambda s: seed_bulk(s, "/tasks", ROWS))


def ask(s, path, headers=(), method="GET", body=b""):
    """One request on a fresh connection; the raw answer (body as sent)."""
    with s.raw() as c:
        c.send(http_request(method, path, list(headers), body))
        return c.read_response(head=method == "HEAD")


def vary(r):
    """The answer's Vary values (one line expected)."""
    lines = r.headers_named("vary")
    assert len(lines) <= 1, lines
    return [v.strip().lower() for v in lines[0].split(",")] if lines else []


def assert_gzipped(r):
    assert r.status == 200 or r.status >= 400, r
    assert r.header("content-encoding") == "gzip", r
    assert int(r.header("content-length")) == len(r.body)
    assert "accept-encoding" in vary(r)
    return gzip.decompress(r.body)


def assert_identity(r, with_vary=True):
    assert r.header("content-encoding") is None, r
    assert int(r.header("content-length")) == len(r.body)
    assert ("accept-encoding" in vary(r)) == with_vary, r
    return r.body


def test_list_round_trip(srv):
    plain = assert_identity(ask(srv, LIST))
    assert len(plain) > 2000 and len(json.loads(plain)["data"]) == 50
    r = ask(srv, LIST, GZ)
    assert assert_gzipped(r) == plain
    assert len(r.body) < len(plain) // 3
    assert r.header("content-type") == "application/json"


@pytest.mark.parametrize("accept", ["gzip", "GZIP", "x-gzip", "gzip;q=0.5", " br ; q=1 ,gzip ; q=0.1 ",
                                    "*", "deflate, *;q=0.2", "identity;q=0, gzip"])
def test_accept_encoding_allowing_gzip(srv, accept):
    plain = ask(srv, LIST).body
    assert assert_gzipped(ask(srv, LIST, [("Accept-Encoding", accept)])) == plain


@pytest.mark.parametrize("accept", ["gzip;q=0", "GZIP; Q=0.000", "identity", "", "br, deflate", "*;q=0",
                                    "gzip;q=0, *", "gzip;q=2", "gzipx"])
def test_accept_encoding_refusing_gzip(srv, accept):
    assert json.loads(assert_identity(ask(srv, LIST, [("Accept-Encoding", accept)])))["data"]


def test_no_accept_encoding_header(srv):
    assert json.loads(assert_identity(ask(srv, LIST)))["data"]


def test_two_accept_encoding_lines_are_one_list(srv):
    r = ask(srv, LIST, [("Accept-Encoding", "br"), ("Accept-Encoding", "gzip")])
    assert json.loads(assert_gzipped(r))["data"]


def test_small_answers_not_compressed_but_vary(srv):
    r = ask(srv, "/tasks/1", GZ)
    assert r.status == 200 and len(r.body) < 1024
    assert json.loads(assert_identity(r))["id"] == 1


def test_head_headers_are_the_gets(srv):
    get = ask(srv, LIST, GZ)
    head = ask(srv, LIST, GZ, method="HEAD")
    assert head.status == 200 and head.body == b""
    for h in ("content-type", "content-encoding", "content-length", "vary"):
        assert head.header(h) == get.header(h), h
    assert head.header("content-encoding") == "gzip"
    # and without gzip: the identity length
    plain = ask(srv, LIST)
    head = ask(srv, LIST, method="HEAD")
    assert head.header("content-encoding") is None
    assert head.header("content-length") == plain.header("content-length")


def test_if_none_match_never_gets_a_compressed_304(srv):
    """A 304 has no body to compress (RFC 9110 15.4.5). Conditional GETs are
    e-etag's: until the server answers 304 this is skipped."""
    big = json.loads(ask(srv, "/tagged?n=4000").body)
    assert big["text"] == "x" * 4000
    r = ask(srv, "/tasks/1", GZ + [("If-None-Match", "*")])
    if r.status != 304:
        pytest.skip(f"the server does not answer If-None-Match with 304 yet (got {r.status})")
    assert r.header("content-encoding") is None and r.body == b""


def test_304_of_a_gzipped_answer_says_its_etag(srv):
    """Regression: a 304 to If-None-Match with a gzipped answer's tag said
    the identity answer's ETag (no -gzip), which a cache cannot match to the
    answer it stored (RFC 9110 15.4.5, RFC 9111 4.3.4). The 304 says the tag
    the client matched: the gzipped answer's, or the identity one's."""
    r = ask(srv, LIST, GZ)
    t = r.header("etag")
    assert t.startswith('"l') and t.endswith('-gzip"'), t
    json.loads(assert_gzipped(r))
    r = ask(srv, LIST, GZ + [("If-None-Match", t)])
    assert r.status == 304 and r.header("etag") == t and r.body == b""
    ident = t[:-len('-gzip"')] + '"'
    assert ask(srv, LIST).header("etag") == ident
    r = ask(srv, LIST, GZ + [("If-None-Match", ident)])
    assert r.status == 304 and r.header("etag") == ident
    # the gzipped tag from a client that no longer takes gzip: the identity answer's
    r = ask(srv, LIST, [("If-None-Match", t)])
    assert r.status == 304 and r.header("etag") == ident


def test_cors_vary_is_merged(srv):
    r = ask(srv, LIST, GZ + [("Origin", "https://app.example.com")])
    assert r.header("access-control-allow-origin") == "https://app.example.com"
    assert vary(r) == ["origin", "accept-encoding"]
    assert json.loads(assert_gzipped(r))["data"]
    r = ask(srv, "/tasks/1", [("Origin", "https://app.example.com")])
    assert vary(r) == ["origin", "accept-encoding"]


def test_etag_of_a_gzipped_answer_gets_gzip_inside_the_quotes(srv):
    big = "/tagged?n=3000"
    r = ask(srv, big, GZ + [("ETag", '"v1"')])
    assert r.header("etag") == '"v1-gzip"'
    assert json.loads(assert_gzipped(r))["text"] == "x" * 3000
    r = ask(srv, big, GZ + [("ETag", 'W/"v1"')])
    assert r.header("etag") == 'W/"v1-gzip"'
    r = ask(srv, big, [("ETag", '"v1"')])  # identity: the ETag as it is
    assert r.header("etag") == '"v1"' and r.header("content-encoding") is None
    r = ask(srv, "/tagged?n=5", GZ + [("ETag", '"v1"')])  # small: identity too
    assert r.header("etag") == '"v1"' and r.header("content-encoding") is None


def test_problem_answers_big_enough_are_compressed(srv):
    body = json.dumps({f"f{i:03}": 1 for i in range(80)})  # 80 unknown fields: 80 field errors
    hdrs = [("Content-Type", "application/json")]
    plain = ask(srv, "/tasks", hdrs, method="POST", body=body)
    assert plain.status == 422 and len(plain.body) >= 1024, plain
    r = ask(srv, "/tasks", hdrs + GZ, method="POST", body=body)
    assert r.status == 422 and r.header("content-type") == "application/problem+json"
    assert assert_gzipped(r) == plain.body
    assert len(json.loads(plain.body)["errors"]) == 81
    small = ask(srv, "/tasks?sort_by=nope", GZ)
    assert small.status == 400 and assert_identity(small)


def test_delete_204_has_no_encoding(srv):
    r = ask(srv, "/tasks", [("Content-Type", "application/json")], method="POST",
            body=json.dumps({"title": "t" * 1500}))
    assert r.status == 201, r
    created = json.loads(r.body if r.header("content-encoding") is None else gzip.decompress(r.body))
    r = ask(srv, f"/tasks/{created['id']}", GZ, method="DELETE")
    assert r.status == 204 and r.header("content-encoding") is None and r.body == b""
    assert r.header("content-length") is None and not vary(r)


def test_openapi_document_compressed_and_identical(srv):
    plain = assert_identity(ask(srv, "/openapi.json"))
    for _ in range(2):  # the kept copy: the same bytes every time
        assert assert_gzipped(ask(srv, "/openapi.json", GZ)) == plain
    json.loads(plain)


def test_pipelined_and_keep_alive_with_compressed_answers(srv):
    plain = ask(srv, LIST).body
    small = ask(srv, "/tasks/2").body
    with srv.raw() as c:
        # two requests in one write, then a third on the same connection
        c.send(http_request("GET", LIST, GZ) + http_request("GET", "/tasks/2", GZ))
        assert assert_gzipped(c.read_response()) == plain
        assert assert_identity(c.read_response()) == small
        c.send(http_request("GET", LIST, GZ) + http_request("HEAD", LIST, GZ) + http_request("GET", LIST))
        first = c.read_response()
        assert assert_gzipped(first) == plain
        head = c.read_response(head=True)
        assert head.header("content-length") == first.header("content-length")
        assert assert_identity(c.read_response()) == plain
        assert c.still_open()


def test_large_bodies_round_trip(srv):
    """A body of megabytes: deflated in one go into the worker's buffer
    (given back after the answer), twice on one connection."""
    with srv.raw(timeout=60) as c:
        for _ in range(2):
            c.send(http_request("GET", "/tagged?n=3000000", GZ))
            r = c.read_response(timeout=60)
            assert r.status == 200 and len(r.body) < 100_000
            assert json.loads(assert_gzipped(r)) == {"text": "x" * 3_000_000}


def test_httpx_sees_the_same_json(srv):
    """httpx asks for gzip and inflates: the answers are the same JSON (and
    the OpenAPI check of every response holds)."""
    with srv.client() as c:
        r = c.get(LIST)
        assert r.headers["content-encoding"] == "gzip"
        assert r.json() == json.loads(ask(srv, LIST).body)


# ---------------------------------------------------------------- settings

SMALL_APP = """\
database: sqlite:gz2.db
access_log: false
compression: {min_bytes: 300, level: 9}
endpoints:
  - path: /text
    params:
      n: {type: int, in: query}
    sql: SELECT REPEAT_Y AS t
    returns: one
""".replace("REPEAT_Y", _repeat("y"))


def test_min_bytes_boundary(crest):
    s = crest(SMALL_APP)
    # {"t":"yyy..."}: 8 bytes around n
    assert len(ask(s, "/text?n=292").body) == 300
    r = ask(s, "/text?n=291", GZ)
    assert len(assert_identity(r)) == 299
    r = ask(s, "/text?n=292", GZ)
    assert json.loads(assert_gzipped(r)) == {"t": "y" * 292}


def test_compression_off(crest):
    s = crest(SMALL_APP.replace("compression: {min_bytes: 300, level: 9}", "compression: off"))
    r = ask(s, "/text?n=5000", GZ)
    assert json.loads(assert_identity(r, with_vary=False)) == {"t": "y" * 5000}
    assert json.loads(assert_identity(ask(s, "/openapi.json", GZ), with_vary=False))


def test_default_is_on_at_1024(crest):
    s = crest(SMALL_APP.replace("compression: {min_bytes: 300, level: 9}\n", ""))
    assert len(assert_identity(ask(s, "/text?n=1015", GZ))) == 1023
    assert json.loads(assert_gzipped(ask(s, "/text?n=1016", GZ))) == {"t": "y" * 1016}


def test_docs_files_compressed_once_and_identical(crest, tmp_path):
    ui = tmp_path / "swagger-ui"
    ui.mkdir()
    js = ("window.x = " + json.dumps(list(range(20000))) + ";\n").encode()
    css = ("body { margin: 0 }\n" * 500).encode()
    png = bytes(range(256)) * 40
    (ui / "swagger-ui-bundle.js").write_bytes(js)
    (ui / "swagger-ui.css").write_bytes(css)
    (ui / "favicon-32x32.png").write_bytes(png)
    s = crest(SMALL_APP, env={"CREST_SWAGGER_UI": str(ui)})
    for name, data in (("swagger-ui-bundle.js", js), ("swagger-ui.css", css)):
        first = ask(s, f"/docs/{name}", GZ)
        assert assert_gzipped(first) == data
        assert ask(s, f"/docs/{name}", GZ).body == first.body
        assert assert_identity(ask(s, f"/docs/{name}")) == data
    r = ask(s, "/docs/favicon-32x32.png", GZ)  # not text: as it is, no Vary
    assert assert_identity(r, with_vary=False) == png
    page = ask(s, "/docs", GZ)
    assert page.header("content-type").startswith("text/html") and "accept-encoding" in vary(page)


@pytest.mark.parametrize("text,line,msg", [
    ("compression: maybe\n", 2, "compression: expected off, on or {min_bytes: 1024, level: 1}"),
    ("compression: [1]\n", 2, "compression: expected off, on or"),
    ("compression: {level: 0}\n", 2, "compression.level"),
    ("compression:\n  level: 10\n", 3, "compression.level"),
    ("compression:\n  min_bytes: 1 parsec\n", 3, "compression.min_bytes"),
    ("compression:\n  min_bytes: -5\n", 3, "compression.min_bytes"),
    ("compression: {speed: 3}\n", 2, "speed"),
])
def test_app_file_errors(tmp_path, text, line, msg):
    p = tmp_path / "app.yaml"
    p.write_text("database: sqlite:x.db\n" + text)
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode != 0
    assert f"{p}:{line}" in r.err and msg in r.err, r.err


def test_app_file_good_values(tmp_path):
    for text in ("compression: on\n", "compression: off\n", "compression: {min_bytes: 2KiB}\n",
                 "compression: {level: 6}\n", "compression: {min_bytes: 0, level: 1}\n"):
        p = tmp_path / "app.yaml"
        p.write_text("database: sqlite:x.db\n" + text)
        r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
        assert r.returncode == 0, (text, r.err)


def test_metrics_count_gzip_answers_and_bytes_saved(crest):
    s = crest(SMALL_APP)
    sizes = []
    for _ in range(2):
        r = ask(s, "/text?n=5000", GZ)
        assert assert_gzipped(r)
        sizes.append(len(r.body))
    ident = len(assert_identity(ask(s, "/text?n=5000")))  # not counted
    m = ask(s, "/metrics").body.decode()
    values = {l.split(" ")[0]: int(l.split(" ")[1]) for l in m.splitlines() if l.startswith("crest_http_gzip_")}
    assert values == {"crest_http_gzip_responses_total": 2,
                      "crest_http_gzip_saved_bytes_total": sum(ident - n for n in sizes)}, values
    assert "# TYPE crest_http_gzip_responses_total counter" in m
