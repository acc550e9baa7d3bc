"""CORS: nothing allowed by default; an allow-list of origins; preflights
answered for the route's methods only; headers on errors too."""
import pytest

from conftest import STORE, assert_problem

APP = """\
database: sqlite:c.db
cors:
  origins: [https://app.example.com, http://localhost:5173]
  headers: [Authorization, Content-Type, X-Trace]
  max_age: 300
endpoints:
  - path: /one
    sql: SELECT 1 AS one
    returns: one
  - method: POST
    path: /echo
    params: {v: {type: int, required: true}}
    sql: SELECT :v AS v
    returns: one
"""


@pytest.fixture
def srv(crest):
    return crest(APP)


def preflight(s, origin, method="GET", path="/one"):
    return s.request("OPTIONS", path, headers={"Origin": origin, "Access-Control-Request-Method": method,
                                              "Access-Control-Request-Headers": "content-type"})


def test_nothing_is_allowed_by_default(crest):
    s = crest("database: sqlite:x.db\nendpoints:\n  - path: /one\n    sql: SELECT 1 AS one\n    returns: one\n")
    r = s.get("/one", headers={"Origin": "https://app.example.com"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers
    r = preflight(s, "https://app.example.com")
    assert r.status_code == 204 and "access-control-allow-origin" not in r.headers


def test_allowed_origin_gets_the_headers(srv):
    r = srv.get("/one", headers={"Origin": "https://app.example.com"})
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"
    assert "Origin" in r.headers["vary"]
    assert "X-Request-Id" in r.headers["access-control-expose-headers"]


def test_reply_headers_are_exposed_to_other_origins(crest):
    """Regression: a header an SQL endpoint copies back (reply_header) was not
    in Access-Control-Expose-Headers, so a script on an allowed origin could
    not read it."""
    s = crest(APP + """\
  - path: /tenant
    params:
      tenant: {in: header, header: X-Tenant-Id, reply_header: true}
      trace: {in: header, header: X-Trace}
    sql: SELECT :tenant AS tenant
    returns: one
""")
    r = s.get("/tenant", headers={"Origin": "https://app.example.com", "X-Tenant-Id": "acme", "X-Trace": "t"})
    assert r.json() == {"tenant": "acme"} and r.headers["x-tenant-id"] == "acme"
    assert r.headers["access-control-expose-headers"] == \
        "ETag, Idempotent-Replayed, Link, Location, Retry-After, WWW-Authenticate, X-Request-Id, X-Tenant-Id"
    r = s.get("/one", headers={"Origin": "https://app.example.com"})
    assert r.headers["access-control-expose-headers"] == \
        "ETag, Idempotent-Replayed, Link, Location, Retry-After, WWW-Authenticate, X-Request-Id"


def test_other_origins_get_nothing(srv):
    for o in ("https://evil.example.com", "https://app.example.com.evil.com", "null"):
        r = srv.get("/one", headers={"Origin": o})
        assert "access-control-allow-origin" not in r.headers, o
        assert "access-control-allow-origin" not in preflight(srv, o).headers


def test_preflight_allowed(srv):
    r = preflight(srv, "http://localhost:5173", "POST", "/echo")
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == "http://localhost:5173"
    assert "POST" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-allow-headers"] == "Authorization,Content-Type,X-Trace"
    assert r.headers["access-control-max-age"] == "300"


def test_default_preflight_allows_the_headers_rest_modules_read(crest):
    """Regression: the default allowed headers lacked Idempotency-Key (and
    Last-Event-ID), so a script on an allowed origin could not send an
    idempotent create; Link (the next page by cursor) and Idempotent-Replayed
    were not exposed."""
    s = crest("database: sqlite:x.db\ncors: {origins: [https://app.example.com]}\n"
              "endpoints:\n  - path: /one\n    sql: SELECT 1 AS one\n    returns: one\n")
    r = preflight(s, "https://app.example.com")
    assert r.headers["access-control-allow-headers"] == \
        "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match, Last-Event-ID"
    r = s.get("/one", headers={"Origin": "https://app.example.com"})
    assert r.headers["access-control-expose-headers"] == \
        "ETag, Idempotent-Replayed, Link, Location, Retry-After, WWW-Authenticate, X-Request-Id"


def test_preflight_for_a_method_the_route_lacks_is_denied(srv):
    r = preflight(srv, "https://app.example.com", "DELETE", "/one")
    assert r.status_code == 204 and "access-control-allow-origin" not in r.headers


def test_errors_carry_cors_headers_so_browsers_can_read_them(srv):
    r = srv.request("POST", "/echo", json={"v": "x"}, headers={"Origin": "https://app.example.com"})
    assert_problem(r, 422)
    assert r.headers["access-control-allow-origin"] == "https://app.example.com"


def test_wildcard_origin(crest):
    s = crest("database: sqlite:x.db\ncors: {origins: ['*']}\n"
              "endpoints:\n  - path: /one\n    sql: SELECT 1 AS one\n    returns: one\n")
    assert s.get("/one", headers={"Origin": "https://any.example"}).headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("cors,word", [("{origins: ['*'], credentials: true}", "credentials"),
                                       ("{origins: [app.example.com]}", "origin"),
                                       ("{origins: []}", "origins")])
def test_bad_cors_settings_are_refused(tmp_path, store_dbs, cors, word):
    from conftest import CREST_BIN, run_cli
    p = tmp_path / "app.yaml"
    p.write_text(on_this_store(store_dbs, f"database: sqlite:x.db\ncors: {cors}\n"))
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 1 and word in r.err and f"{p}:2:" in r.err


def on_this_store(store_dbs, text):
    """An app file's text for `crest check`: on PostgreSQL its sqlite:NAME a database of the cluster."""
    return store_dbs.app_text(text) if STORE == "postgres" else text
