"""The spec check: typed path/query/header params and JSON bodies, before any handler runs."""
import pytest

from conftest import assert_problem

SPEC_APP = """\
database: sqlite:spec.db
startup_sql: |
  CREATE TABLE IF NOT EXISTS widgets (id INTEGER PRIMARY KEY, name TEXT NOT NULL, qty INTEGER,
                                      price REAL, color TEXT, fragile INTEGER, meta TEXT)
endpoints:
  - path: /typed
    params:
      n: {type: int, required: true}
      f: {type: float}
      b: {type: bool}
      e: {type: enum, values: [red, green]}
      lim: {type: int, min: 1, max: 10, default: 5}
      ratio: {type: float, min: 0, max: 1}
      s: {type: string, min_length: 2, max_length: 4}
      word: {type: string, default: hi}
    sql: SELECT :n AS n, :f AS f, :b AS b, :e AS e, :lim AS lim, :ratio AS ratio, :s AS s, :word AS word
    returns: one
  - path: /items/{id}
    params: {id: int}
    sql: SELECT :id AS id
    returns: one
  - path: /hdr
    params:
      x_tenant: {type: int, in: header, required: true}
    sql: SELECT :x_tenant AS tenant
    returns: one
  - method: POST
    path: /widgets
    status: 201
    params:
      name: {type: string, required: true, max_length: 10}
      qty: {type: int, min: 0, default: 1}
      price: {type: float}
      color: {type: enum, values: [red, blue]}
      fragile: {type: bool, default: false}
      meta: {type: json}
    sql: >
      INSERT INTO widgets (name, qty, price, color, fragile, meta)
      VALUES (:name, :qty, :price, :color, :fragile, :meta)
      RETURNING id, name, qty, price, color, fragile, meta
    columns: {fragile: bool, meta: json}
    returns: one
"""


@pytest.fixture(scope="module")
def srv_mod(request, tmp_path_factory):
    # One server for the whole module: these tests only read or add rows.
    from conftest import CREST_BIN, Server
    d = tmp_path_factory.mktemp("spec")
    (d / "app.yaml").write_text(SPEC_APP)
    s = Server([CREST_BIN, "serve", str(d / "app.yaml"), "--listen", "127.0.0.1:0", "--workers", "1"], cwd=str(d))
    try:
        s.wait_listening()
    except Exception:
        s.stop()
        raise
    yield s
    s.stop()
    problems = s.check_clean()
    if problems:
        pytest.fail("\n".join(problems) + "\n" + s.stderr_text()[-3000:], pytrace=False)


@pytest.fixture
def srv(srv_mod):
    return srv_mod


def errors_of(r, status=400):
    p = assert_problem(r, status)
    assert isinstance(p.get("errors"), dict), p
    return p


def test_all_types_accepted(srv):
    r = srv.get("/typed", params={"n": "3", "f": "2.5", "b": "true", "e": "green", "lim": "10", "ratio": "0.5",
                                  "s": "abcd"})
    assert r.status_code == 200, r.text
    assert r.json() == {"n": 3, "f": 2.5, "b": 1, "e": "green", "lim": 10, "ratio": 0.5, "s": "abcd",
                        "word": "hi"}


def test_defaults_applied_and_absent_is_null(srv):
    r = srv.get("/typed", params={"n": "-7"})
    assert r.status_code == 200
    assert r.json() == {"n": -7, "f": None, "b": None, "e": None, "lim": 5, "ratio": None, "s": None,
                        "word": "hi"}


def test_bool_spellings(srv):
    for v in ("true", "false", "1", "0"):
        r = srv.get("/typed", params={"n": "1", "b": v})
        assert r.status_code == 200, (v, r.text)
        assert r.json()["b"] == (1 if v in ("true", "1") else 0)


def test_missing_required_param(srv):
    r = srv.get("/typed")
    p = errors_of(r)
    assert p["code"] == "missing_parameter"
    assert "n" in p["errors"]
    assert "'n'" in p["detail"]


@pytest.mark.parametrize("name,value", [
    ("n", "abc"), ("n", "1.5"), ("n", "99999999999999999999999"), ("n", ""), ("f", "x"), ("f", "1e"),
    ("b", "maybe"), ("e", "blue"), ("e", "RED")])
def test_mistyped_param_is_400_naming_it(srv, name, value):
    params = {"n": "1", name: value}
    p = errors_of(srv.get("/typed", params=params))
    assert p["code"] == "invalid_parameter"
    assert list(p["errors"]) == [name], p
    assert name in p["detail"]


@pytest.mark.parametrize("name,value", [
    ("lim", "0"), ("lim", "11"), ("lim", "-3"), ("ratio", "1.5"), ("ratio", "-0.1"), ("s", "a"), ("s", "abcde")])
def test_bounds_are_checked(srv, name, value):
    p = errors_of(srv.get("/typed", params={"n": "1", name: value}))
    assert name in p["errors"]


def test_bounds_inclusive(srv):
    for params in ({"lim": "1"}, {"lim": "10"}, {"ratio": "0"}, {"ratio": "1"}, {"s": "ab"}, {"s": "abcd"},
                   {"s": "éé"}):
        r = srv.get("/typed", params={"n": "1", **params})
        assert r.status_code == 200, (params, r.text)


def test_several_bad_params_all_named(srv):
    p = errors_of(srv.get("/typed", params={"f": "x", "e": "nope"}))
    assert set(p["errors"]) == {"n", "f", "e"}


def test_path_param_typed(srv):
    assert srv.get("/items/42").json() == {"id": 42}
    p = errors_of(srv.get("/items/abc"))
    assert "id" in p["errors"]


def test_header_param(srv):
    assert srv.get("/hdr", headers={"X_Tenant": "12"}).json() == {"tenant": 12}
    p = errors_of(srv.get("/hdr"))
    assert "x_tenant" in p["errors"]
    p = errors_of(srv.get("/hdr", headers={"x_tenant": "twelve"}))
    assert "x_tenant" in p["errors"]


def post(srv, body, ctype="application/json"):
    return srv.request("POST", "/widgets", content=body, headers={"content-type": ctype} if ctype else {})


def test_body_ok(srv):
    r = post(srv, '{"name":"bolt","qty":3,"price":1.5,"color":"red","fragile":true,"meta":{"a":[1,2]}}')
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["name"] == "bolt" and j["qty"] == 3 and j["price"] == 1.5 and j["color"] == "red"
    assert j["fragile"] is True and j["meta"] == {"a": [1, 2]}


def test_body_defaults(srv):
    r = post(srv, '{"name":"nut"}')
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["qty"] == 1 and j["fragile"] is False and j["price"] is None and j["meta"] is None


def test_body_json_content_type_variants(srv):
    for ct in ("application/json; charset=utf-8", "APPLICATION/JSON", "application/merge-patch+json"):
        assert post(srv, '{"name":"ct"}', ct).status_code == 201, ct


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "application/jsonx", None])
def test_non_json_content_type_is_415(srv, ctype):
    r = post(srv, '{"name":"x"}', ctype)
    assert_problem(r, 415)


@pytest.mark.parametrize("body", ['{"name":', "{name: 1}", "[1,2", '{"name":"x"} trailing', "\xff", "nul"])
def test_malformed_json_is_400(srv, body):
    r = post(srv, body.encode("latin-1"))
    assert_problem(r, 400, "invalid_json")


def test_unknown_body_key_is_422_naming_it(srv):
    p = errors_of(post(srv, '{"name":"x","colour":"red","extra":1}'), 422)
    assert set(p["errors"]) == {"colour", "extra"}
    assert p["code"] == "validation_failed"


def test_missing_required_body_field_is_422(srv):
    p = errors_of(post(srv, '{"qty":2}'), 422)
    assert "name" in p["errors"]


def test_empty_body_with_required_fields_is_422(srv):
    p = errors_of(post(srv, ""), 422)
    assert "name" in p["errors"]


def test_duplicate_keys_are_rejected(srv):
    assert_problem(post(srv, '{"name":"a","name":"b"}'), 400, "invalid_json")


def test_wrong_body_types_are_422_per_field(srv):
    p = errors_of(post(srv, '{"name":5,"qty":"x","price":"cheap","color":"green","fragile":"yes"}'), 422)
    assert set(p["errors"]) == {"name", "qty", "price", "color", "fragile"}
    for msg in p["errors"].values():
        assert isinstance(msg, str) and msg


def test_body_bounds_are_422(srv):
    p = errors_of(post(srv, '{"name":"this name is far too long","qty":-1}'), 422)
    assert set(p["errors"]) == {"name", "qty"}


def test_body_must_be_an_object(srv):
    for body in ("[1,2]", '"str"', "3", "null"):
        assert_problem(post(srv, body), 422)


def test_null_for_required_body_field(srv):
    p = errors_of(post(srv, '{"name":null}'), 422)
    assert "name" in p["errors"]


def test_hello_table_param_is_bounded(hello):
    s = hello()
    r = s.get("/tables/" + "t" * 129 + "/count")
    p = errors_of(r)
    assert "table" in p["errors"]
