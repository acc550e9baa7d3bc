"""Routing: literals and params, 404/405/OPTIONS, percent-decoding, query strings, API prefixes."""
import pytest

from conftest import assert_problem, http_request

ROUTER_APP = """\
database: sqlite:router.db
endpoints:
  - path: /tasks/{id}
    params: {id: int}
    sql: SELECT 'param' AS route, :id AS id
    returns: one
  - path: /tasks/stats
    sql: SELECT 'literal' AS route
    returns: one
  - method: DELETE
    path: /tasks/{id}
    params: {id: int}
    sql: SELECT 1 AS gone
    returns: one
  - path: /echo/{name}
    sql: SELECT :name AS name
    returns: one
  - path: /users/{user}/posts/{post}
    params: {post: int}
    sql: SELECT :user AS user, :post AS post
    returns: one
  - path: /q
    params:
      s: {type: string}
      t: {type: string}
      n: {type: int}
    sql: SELECT :s AS s, :t AS t, :n AS n
    returns: one
"""


@pytest.fixture
def srv(crest):
    return crest(ROUTER_APP)


def test_literal_beats_param(srv):
    assert srv.get("/tasks/stats").json() == {"route": "literal"}
    assert srv.get("/tasks/7").json() == {"route": "param", "id": 7}


def test_params_in_several_segments(srv):
    assert srv.get("/users/ann/posts/12").json() == {"user": "ann", "post": 12}


def test_unknown_path_is_404_problem(srv):
    for path in ("/nope", "/tasks/1/extra", "/", "/echo", "/echo/"):
        r = srv.get(path)
        assert_problem(r, 404, "not_found")


def test_wrong_method_is_405_with_allow(srv):
    r = srv.request("POST", "/tasks/stats")
    assert_problem(r, 405)
    allow = [m.strip() for m in r.headers["allow"].split(",")]
    assert "GET" in allow and "POST" not in allow
    r = srv.request("PUT", "/tasks/3")
    assert_problem(r, 405)
    allow = {m.strip() for m in r.headers["allow"].split(",")}
    assert {"GET", "DELETE"} <= allow
    assert "PUT" not in allow
    r = srv.request("POST", "/healthz")
    assert_problem(r, 405)
    assert "GET" in r.headers["allow"]


def test_options_is_204_with_allow(srv):
    r = srv.request("OPTIONS", "/tasks/3")
    assert r.status_code == 204
    assert r.content == b""
    allow = {m.strip() for m in r.headers["allow"].split(",")}
    assert {"GET", "DELETE", "OPTIONS"} <= allow
    assert "POST" not in allow
    r = srv.request("OPTIONS", "/nope")
    assert_problem(r, 404)


def test_options_asterisk_describes_the_server(srv):
    # Regression: OPTIONS * (asterisk-form, RFC 9110 9.3.7) used to answer 400.
    with srv.raw() as c:
        c.send(http_request("OPTIONS", "*"))
        r = c.read_response()
        assert r.status == 204, r
        allow = {m.strip() for m in r.headers["allow"].split(",")}
        assert {"GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"} <= allow
        c.send(http_request("GET", "*"))
        assert c.read_response().status == 400


def test_percent_decoded_path_segments(srv):
    with srv.raw() as c:
        for raw, want in (("/echo/a%20b", "a b"), ("/echo/a%2Fb", "a/b"), ("/echo/%C3%A9t%C3%A9", "été"),
                          ("/echo/a+b", "a+b"), ("/echo/100%25", "100%")):
            c.send(http_request("GET", raw))
            r = c.read_response()
            assert r.status == 200, (raw, r)
            assert r.json() == {"name": want}, raw


def test_encoded_slash_stays_in_one_segment(srv):
    # /users/a%2Fb/posts/1 has 4 segments, not 5
    r = srv.request("GET", "/users/a%2Fb/posts/1")
    assert r.status_code == 200
    assert r.json() == {"user": "a/b", "post": 1}


def test_bad_percent_encoding_is_400(srv):
    with srv.raw() as c:
        for raw in ("/echo/a%zz", "/echo/a%2", "/echo/%", "/echo/a%00b"):
            c.send(http_request("GET", raw))
            r = c.read_response()
            assert_problem(r, 400)


def test_query_string_decoding(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/q?s=a+b%21%3D&t=caf%C3%A9&n=42"))
        r = c.read_response()
    assert r.json() == {"s": "a b!=", "t": "café", "n": 42}


def test_query_string_repeated_parameters_are_refused_not_first_wins(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/q?s=first&s=second&n=1&n=2"))
        r = c.read_response()
    p = assert_problem(r, 400, "invalid_parameter")
    assert p["errors"] == {"s": "is given more than once", "n": "is given more than once"}
    assert p["detail"] == "2 parameters are invalid"


def test_query_string_empty_and_valueless(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/q?&s=&t&&"))
        r = c.read_response()
    assert r.status == 200
    assert r.json() == {"s": "", "t": "", "n": None}


def test_query_string_bad_percent_encoding_is_400(srv):
    with srv.raw() as c:
        c.send(http_request("GET", "/q?s=%G1"))
        assert_problem(c.read_response(), 400)


def test_api_prefix(crest):
    s = crest("api_prefix: /api/v1\n" + ROUTER_APP)
    assert s.get("/api/v1/tasks/stats").json() == {"route": "literal"}
    assert s.get("/api/v1/echo/x").json() == {"name": "x"}
    assert_problem(s.get("/tasks/stats"), 404)
    assert s.get("/healthz").json() == {"status": "ok"}
    assert s.get("/api/v1/healthz").status_code == 404


def test_api_prefix_and_version(crest):
    s = crest("api_prefix: api\napi_version: 2\n" + ROUTER_APP)
    assert s.get("/api/v2/echo/hi").json() == {"name": "hi"}
    assert s.get("/api/v2/tasks/5").json() == {"route": "param", "id": 5}
    assert_problem(s.get("/api/echo/hi"), 404)
    assert_problem(s.get("/echo/hi"), 404)
    assert s.get("/healthz").json() == {"status": "ok"}


def test_api_prefix_with_trailing_slash(crest):
    s = crest("api_prefix: /v3/\n" + ROUTER_APP)
    assert s.get("/v3/echo/z").json() == {"name": "z"}


def test_trailing_slash_is_a_different_path(srv):
    assert_problem(srv.get("/tasks/stats/"), 404)
