"""Conditional requests (RFC 9110 section 13; src/rest/etag.c), both stores.

Every single-row answer carries a strong ETag made of the row's id and the
version crest keeps in the column crest_version (set by each write's own
statement), plus what makes the representation differ (the fields written:
field access, fields=); an answer with include= hashes its body, and so do
lists, groups, stats, eval and bulk creates (a sample, random, has none).
If-None-Match on reads and lists answers 304 (no body, the same ETag);
If-Match on PUT/PATCH/DELETE is checked in the write's own statement: a
stale tag is 412 and nothing changes, a missing row 404; two processes
racing on one row with the same If-Match give exactly one 200 and one 412.
require_if_match answers 428 to unconditional updates and deletes. Tables
made before crest kept versions get the column at start."""
import os
import sqlite3
import threading

import httpx
import pytest

from conftest import CREST_BIN, JWT_ENV, STORE, assert_problem, bearer, db_rows, on_store, run_cli
from rest_apps import FIELD_ACCESS_APP

JSON = {"Content-Type": "application/json"}

APP = """\
database: sqlite:cond.db
models:
  Person:
    table: person
    fields:
      name: {type: string, required: true}
      age: {type: int}
      computers: {has_many: Computer, via: owner}
  Computer:
    table: computer
    fields:
      name: {type: string, required: true}
      owner: {type: ref, model: Person, on_delete: cascade}
modules:
  people:
    model: Person
    enabled_methods: [index, create, read, update, delete, sample, group, stats, eval]
    grouping_allowed_fields: [age]
    stats_allowed_fields: [age]
  computers: {model: Computer}
"""


def post(s, path, obj):
    r = s.request("POST", path, json=obj)
    assert r.status_code == 201, r.text
    return r


def etag(r):
    t = r.headers.get("etag")
    assert t and t.startswith('"') and t.endswith('"'), f"a strong ETag: {t!r}"
    return t


def assert_304(r, tag):
    assert r.status_code == 304, r.text
    assert r.content == b""
    assert r.headers.get("etag") == tag
    assert "content-length" not in r.headers


@pytest.fixture
def app(crest):
    s = crest(APP)
    post(s, "/people", {"name": "ann", "age": 30})
    post(s, "/people", {"name": "bob", "age": 40})
    return s


# ---- ETags ----

def test_row_etag_is_stable_and_changes_with_each_write(app):
    first = etag(app.get("/people/1"))
    assert etag(app.get("/people/1")) == first
    assert first.startswith('"1.')
    # the create answered with the tag the read gives
    r = post(app, "/people", {"name": "cy"})
    assert etag(r) == etag(app.get(f"/people/{r.json()['id']}"))
    seen = {first}
    for method, body in (("PATCH", {"age": 31}), ("PUT", {"name": "ann2"}), ("PATCH", {"age": 31})):
        r = app.request(method, "/people/1", json=body)
        assert r.status_code == 200, r.text
        t = etag(r)
        assert t not in seen, f"{method} {body}: the ETag did not change"
        assert etag(app.get("/people/1")) == t
        seen.add(t)
    # another row's write leaves this one's tag alone
    now = etag(app.get("/people/1"))
    assert app.request("PATCH", "/people/2", json={"age": 41}).status_code == 200
    assert etag(app.get("/people/1")) == now


def test_etag_changes_with_embedded_rows_and_fields(app):
    plain = etag(app.get("/people/1"))
    inc = etag(app.get("/people/1", params={"include": "computers"}))
    few = etag(app.get("/people/1", params={"fields": "name"}))
    assert len({plain, inc, few}) == 3
    # A nested create changes the embedded rows, not the person's row.
    r = app.request("POST", "/people/1/computers", json={"name": "laptop"})
    assert r.status_code == 201, r.text
    assert etag(r).startswith(f'"{r.json()["id"]}.')
    inc2 = etag(app.get("/people/1", params={"include": "computers"}))
    assert inc2 != inc
    assert etag(app.get("/people/1")) == plain
    assert_304(app.get("/people/1", params={"include": "computers"}, headers={"If-None-Match": inc2}), inc2)
    # a change of the embedded row alone changes the include= tag again
    assert app.request("PATCH", f"/computers/{r.json()['id']}", json={"name": "desktop"}).status_code == 200
    assert etag(app.get("/people/1", params={"include": "computers"})) != inc2


def test_etag_differs_between_users_with_different_field_access(crest):
    s = crest(FIELD_ACCESS_APP, env=JWT_ENV)
    hr, other = bearer("u", permissions=["hr.admin"]), bearer("u", permissions=[])
    pid = s.request("POST", "/people", json={"name": "ann", "salary": 100}, headers=hr).json()["id"]
    a = s.get(f"/people/{pid}", headers=hr)
    b = s.get(f"/people/{pid}", headers=other)
    assert "salary" in a.json() and "salary" not in b.json()
    assert etag(a) != etag(b)
    # each user's tag is the same on a second read, and answers their own 304 only
    assert etag(s.get(f"/people/{pid}", headers=other)) == etag(b)
    assert_304(s.get(f"/people/{pid}", headers={**other, "If-None-Match": etag(b)}), etag(b))
    assert s.get(f"/people/{pid}", headers={**other, "If-None-Match": etag(a)}).status_code == 200


def test_recreated_row_gets_a_new_etag(app):
    r = post(app, "/people", {"name": "dan"})
    rid, old = r.json()["id"], etag(r)
    assert app.request("DELETE", f"/people/{rid}").status_code == 204
    r = post(app, "/people", {"name": "dan"})
    # SQLite gives the deleted row's id again (no AUTOINCREMENT); PostgreSQL's identity does not.
    assert (r.json()["id"] == rid) == on_store(True, False)
    assert etag(r) != old
    assert app.get(f"/people/{rid}", headers={"If-None-Match": old}).status_code == on_store(200, 404)
    # nor does a write conditioned on the old row's tag reach the new one
    if STORE == "sqlite":
        assert_problem(app.request("PATCH", f"/people/{rid}", json={"age": 1}, headers={"If-Match": old}), 412,
                       "precondition_failed")


def test_versions_are_crests_own_column(app):
    rows = db_rows(app, "cond.db", "SELECT id, crest_version FROM person ORDER BY id")
    assert len(rows) == 2 and all(isinstance(v, int) and v >= 0 for _, v in rows)
    assert rows[0][1] != rows[1][1]
    before = rows[0][1]
    assert app.request("PATCH", "/people/1", json={"age": 5}).status_code == 200
    assert db_rows(app, "cond.db", "SELECT crest_version FROM person WHERE id = 1") == [(before + 1,)]
    # never served, never accepted
    assert "crest_version" not in app.get("/people/1").json()
    p = assert_problem(app.request("PATCH", "/people/1", json={"crest_version": 1}), 422, "validation_failed")
    assert p["errors"] == {"crest_version": "is not a known field"}
    assert_problem(app.get("/people", params={"sort_by": "crest_version"}), 400, "invalid_parameter")


# ---- If-None-Match ----

def test_304_on_reads_every_form(app):
    t = etag(app.get("/people/1"))
    opaque = t[1:-1]
    for inm in (t, f"W/{t}", f'"x", {t}', f'"x",W/{t} , "y"', "*"):
        assert_304(app.get("/people/1", headers={"If-None-Match": inm}), t)
    # a compressed answer's tag: its 304 says that tag, as its 200 did (test_gzip.py)
    for inm in (f'"{opaque}-gzip"', f'W/"{opaque}-gzip"'):
        assert_304(app.get("/people/1", headers={"If-None-Match": inm, "Accept-Encoding": "gzip"}),
                   f'"{opaque}-gzip"')
    # two header lines make one list
    with app.client() as c:
        r = c.get("/people/1", headers=[("If-None-Match", '"x"'), ("If-None-Match", t)])
    assert_304(r, t)
    for inm in ('"x"', f'"{opaque}x"', f'"{opaque}-gzip-gzip"', f'"{opaque[:-1]}"'):
        r = app.get("/people/1", headers={"If-None-Match": inm})
        assert r.status_code == 200 and r.json()["name"] == "ann" and etag(r) == t
    # HEAD: the same 304
    r = app.request("HEAD", "/people/1", headers={"If-None-Match": t})
    assert_304(r, t)
    r = app.request("HEAD", "/people/1", headers={"If-None-Match": '"x"'})
    assert r.status_code == 200 and etag(r) == t
    # a missing row: * does not match, the answer is 404
    assert_problem(app.get("/people/99", headers={"If-None-Match": "*"}), 404, "not_found")
    # malformed
    p = assert_problem(app.get("/people/1", headers={"If-None-Match": "ann"}), 400, "invalid_parameter")
    assert p["detail"] == 'If-None-Match: expected a quoted entity-tag ("..." or W/"...")'


def test_304_on_lists_until_they_change(app):
    r = app.get("/people")
    t = etag(r)
    assert t.startswith('"l')
    assert etag(app.get("/people")) == t
    assert_304(app.get("/people", headers={"If-None-Match": t}), t)
    assert_304(app.request("HEAD", "/people", headers={"If-None-Match": f"W/{t}"}), t)
    # another page, another tag
    assert etag(app.get("/people", params={"page_size": 1})) != t
    post(app, "/people", {"name": "eve"})
    r = app.get("/people", headers={"If-None-Match": t})
    assert r.status_code == 200 and len(r.json()["data"]) == 3
    t2 = etag(r)
    assert t2 != t
    assert_304(app.get("/people", headers={"If-None-Match": t2}), t2)
    # nested lists, group, stats and eval too
    for path, params in (("/people/1/computers", {}), ("/people/group/age", {}), ("/people/stats", {"fields": "age"}),
                         ("/people/eval", {"q": '{"functions":[{"name":"sum","field":"age"}]}'}),
                         ("/people/eval", {})):
        r = app.get(path, params=params)
        assert r.status_code == 200, r.text
        assert_304(app.get(path, params=params, headers={"If-None-Match": etag(r)}), etag(r))
    # a sample is random: no ETag, no 304
    r = app.get("/people/sample", headers={"If-None-Match": "*"})
    assert r.status_code == 200 and "etag" not in r.headers
    # a bulk create's list answer is tagged by its body
    r = app.request("POST", "/people", json=[{"name": "f"}, {"name": "g"}])
    assert r.status_code == 201 and etag(r).startswith('"l')


def test_304_keeps_the_headers_of_the_200_and_browsers_may_use_etags(crest):
    s = crest(APP + "cors: {origins: [https://app.example.com]}\n")
    post(s, "/people", {"name": "ann"})
    origin = {"Origin": "https://app.example.com"}
    r = s.get("/people/1", headers=origin)
    t = etag(r)
    assert "ETag" in r.headers["access-control-expose-headers"].split(", ")
    r304 = s.get("/people/1", headers={**origin, "If-None-Match": t})
    assert_304(r304, t)
    for h in ("vary", "access-control-allow-origin", "access-control-expose-headers"):
        assert r304.headers.get(h) == r.headers[h], h
    # a preflight of a conditional write allows the header by default
    r = s.request("OPTIONS", "/people/1", headers={**origin, "Access-Control-Request-Method": "PATCH",
                                                  "Access-Control-Request-Headers": "if-match, content-type"})
    assert r.status_code == 204
    assert r.headers["access-control-allow-headers"] == \
        "Authorization, Content-Type, Idempotency-Key, If-Match, If-None-Match, Last-Event-ID"


# ---- If-Match ----

def test_if_match_update(app):
    t = etag(app.get("/people/1"))
    r = app.request("PATCH", "/people/1", json={"age": 32}, headers={"If-Match": t})
    assert r.status_code == 200, r.text
    t2 = etag(r)
    assert t2 != t and r.json()["age"] == 32
    # stale: 412, nothing written
    p = assert_problem(app.request("PUT", "/people/1", json={"age": 99}, headers={"If-Match": t}), 412,
                       "precondition_failed")
    assert p["detail"] == "Person 1 has changed since the ETag given in If-Match: GET it again"
    r = app.get("/people/1")
    assert r.json()["age"] == 32 and etag(r) == t2
    # a weak tag never matches (strong comparison); another row's tag neither
    assert_problem(app.request("PATCH", "/people/1", json={"age": 1}, headers={"If-Match": f"W/{t2}"}), 412)
    t_bob = etag(app.get("/people/2"))
    assert_problem(app.request("PATCH", "/people/1", json={"age": 1}, headers={"If-Match": t_bob}), 412)
    assert app.get("/people/1").json()["age"] == 32
    # a list holding the current tag; g-gzip's suffix; * (any version)
    r = app.request("PATCH", "/people/1", json={"age": 33}, headers={"If-Match": f'"nope", {t}, {t2}'})
    assert r.status_code == 200, r.text
    t3 = etag(r)
    r = app.request("PATCH", "/people/1", json={"age": 34}, headers={"If-Match": f'"{t3[1:-1]}-gzip"'})
    assert r.status_code == 200, r.text
    r = app.request("PATCH", "/people/1", json={"age": 35}, headers={"If-Match": "*"})
    assert r.status_code == 200, r.text
    # the tag of a fields= or include= answer names the row version too
    for params in ({"fields": "name"}, {"include": "computers"}):
        t = etag(app.get("/people/1", params=params))
        r = app.request("PATCH", "/people/1", json={"age": 36}, headers={"If-Match": t})
        assert r.status_code == 200, r.text
        assert_problem(app.request("PATCH", "/people/1", json={"age": 37}, headers={"If-Match": t}), 412)
    # an empty update checks the version and keeps it
    t = etag(app.get("/people/1"))
    r = app.request("PATCH", "/people/1", json={}, headers={"If-Match": t})
    assert r.status_code == 200 and etag(r) == t
    assert_problem(app.request("PATCH", "/people/1", json={}, headers={"If-Match": t_bob}), 412)


def test_preconditions_are_judged_before_the_body(app):
    """Regression: a stale If-Match with an invalid body answered 422, as the
    body was read (and a module's before_update hook ran) before the write's
    statement found the version changed. Preconditions come before the
    request's content (RFC 9110 13.2.1); the write checks them again."""
    t = etag(app.get("/people/1"))
    assert app.request("PATCH", "/people/1", json={"age": 31}).status_code == 200
    for method in ("PATCH", "PUT"):
        assert_problem(app.request(method, "/people/1", json={"age": "old"}, headers={"If-Match": t}), 412,
                       "precondition_failed")
    t = etag(app.get("/people/1"))
    assert_problem(app.request("PATCH", "/people/1", json={"age": "old"}, headers={"If-Match": t}), 422)
    assert app.get("/people/1").json()["age"] == 31


def test_if_none_match_on_writes(app):
    """Regression: If-None-Match was ignored on PUT, PATCH and DELETE, so
    `If-None-Match: *` overwrote the row; a false one is 412 there (RFC 9110
    13.1.2: weak comparison; evaluated after If-Match)."""
    t = etag(app.get("/people/1"))
    for method in ("PATCH", "PUT", "DELETE"):
        kw = {"json": {"age": 50}} if method != "DELETE" else {}
        p = assert_problem(app.request(method, "/people/1", headers={"If-None-Match": "*"}, **kw), 412,
                           "precondition_failed")
        assert p["detail"] == "Person 1 exists (If-None-Match: * asks that it does not)"
        for inm in (t, f"W/{t}", f'"x", {t}', f'"{t[1:-1]}-gzip"'):
            p = assert_problem(app.request(method, "/people/1", headers={"If-None-Match": inm}, **kw), 412)
            assert p["detail"] == "Person 1 is at the version If-None-Match names"
    assert etag(app.get("/people/1")) == t  # nothing written
    # a tag of another row or version: the write goes ahead
    t_bob = etag(app.get("/people/2"))
    r = app.request("PATCH", "/people/1", json={"age": 51}, headers={"If-None-Match": t_bob})
    assert r.status_code == 200, r.text
    r = app.request("PATCH", "/people/1", json={"age": 52}, headers={"If-None-Match": t})  # t is stale now
    assert r.status_code == 200, r.text
    t = etag(r)
    # both: If-Match first (then If-None-Match)
    p = assert_problem(app.request("PATCH", "/people/1", json={"age": 53},
                                   headers={"If-Match": t_bob, "If-None-Match": t}), 412)
    assert p["detail"] == "Person 1 has changed since the ETag given in If-Match: GET it again"
    p = assert_problem(app.request("PATCH", "/people/1", json={"age": 53},
                                   headers={"If-Match": t, "If-None-Match": t}), 412)
    assert p["detail"] == "Person 1 is at the version If-None-Match names"
    r = app.request("PATCH", "/people/1", json={"age": 53}, headers={"If-Match": t, "If-None-Match": '"x"'})
    assert r.status_code == 200, r.text
    # a missing row is 404; a malformed header 400
    assert_problem(app.request("DELETE", "/people/99", headers={"If-None-Match": "*"}), 404, "not_found")
    assert_problem(app.request("DELETE", "/people/1", headers={"If-None-Match": "abc"}), 400, "invalid_parameter")
    assert app.request("DELETE", "/people/1", headers={"If-None-Match": t}).status_code == 204


def test_if_match_delete_and_missing_rows(app):
    t = etag(app.get("/people/1"))
    assert app.request("PATCH", "/people/1", json={"age": 1}).status_code == 200
    assert_problem(app.request("DELETE", "/people/1", headers={"If-Match": t}), 412, "precondition_failed")
    assert app.get("/people/1").status_code == 200
    t = etag(app.get("/people/1"))
    assert app.request("DELETE", "/people/1", headers={"If-Match": t}).status_code == 204
    # a missing row is 404, not 412, whatever the tag
    for method in ("DELETE", "PATCH", "PUT"):
        for im in (t, "*", '"x"'):
            kw = {"json": {"age": 1}} if method != "DELETE" else {}
            assert_problem(app.request(method, "/people/1", headers={"If-Match": im}, **kw), 404, "not_found")
    # malformed: 400, nothing written
    t2 = etag(app.get("/people/2"))
    for bad in ("", "abc", t2[1:], f"{t2} {t2}", f"*, {t2}", "w/" + t2):
        p = assert_problem(app.request("DELETE", "/people/2", headers={"If-Match": bad}), 400, "invalid_parameter")
        assert p["detail"].startswith("If-Match: ")
        assert_problem(app.request("PATCH", "/people/2", json={"age": 2}, headers={"If-Match": bad}), 400)
    too_many = ", ".join(['"x"'] * 33)
    p = assert_problem(app.request("DELETE", "/people/2", headers={"If-Match": too_many}), 400)
    assert p["detail"] == "If-Match: too many entity-tags (at most 32)"
    assert etag(app.get("/people/2")) == t2


def test_require_if_match(crest):
    s = crest(APP.replace("    stats_allowed_fields: [age]\n",
                          "    stats_allowed_fields: [age]\n    require_if_match: true\n"))
    r = post(s, "/people", {"name": "ann"})  # creates and reads need none
    t = etag(r)
    assert s.get("/people/1").status_code == 200
    for method in ("PUT", "PATCH", "DELETE"):
        kw = {"json": {"age": 1}} if method != "DELETE" else {}
        p = assert_problem(s.request(method, "/people/1", **kw), 428, "precondition_required")
        assert p["detail"] == f"this {'delete' if method == 'DELETE' else 'update'} needs an If-Match header with " \
                              "the row's ETag (GET it first)"
        # before the row is looked up, and before the body is checked
        assert_problem(s.request(method, "/people/99", **kw), 428)
    assert_problem(s.request("PATCH", "/people/1", json={"nope": 1}), 428)
    # with If-Match: 404 first, then 412 (before the body: RFC 9110 13.2.1), then 422
    assert_problem(s.request("PATCH", "/people/99", json={"nope": 1}, headers={"If-Match": t}), 404)
    assert_problem(s.request("PATCH", "/people/1", json={"nope": 1}, headers={"If-Match": '"x"'}), 412)
    assert_problem(s.request("PATCH", "/people/1", json={"age": 1}, headers={"If-Match": '"x"'}), 412)
    assert_problem(s.request("PATCH", "/people/1", json={"nope": 1}, headers={"If-Match": t}), 422)
    r = s.request("PATCH", "/people/1", json={"age": 1}, headers={"If-Match": t})
    assert r.status_code == 200, r.text
    assert s.request("DELETE", "/people/1", headers={"If-Match": "*"}).status_code == 204
    # the document says so
    doc = s.get("/openapi.json").json()
    ops = doc["paths"]["/people/{id}"]
    for m in ("put", "patch", "delete"):
        assert {"412", "428"} <= set(ops[m]["responses"]), m
        assert "If-Match" in [p["name"] for p in ops[m]["parameters"]]
    assert "304" in ops["get"]["responses"] and "ETag" in ops["get"]["responses"]["200"]["headers"]
    assert "If-None-Match" in [p["name"] for p in ops["get"]["parameters"]]


def test_openapi_without_require_if_match(app):
    ops = app.get("/openapi.json").json()["paths"]["/people/{id}"]
    assert "412" in ops["patch"]["responses"] and "428" not in ops["patch"]["responses"]


# ---- two processes ----

ROUNDS = 25


def test_two_processes_race_on_one_row(crest, tmp_path):
    # One database for both: on SQLite one file (an absolute path), on
    # PostgreSQL the cluster's database the name stands for.
    app = APP.replace("sqlite:cond.db", f"sqlite:{tmp_path / 'race.db'}")
    a = crest(app)
    b = crest(app)
    pid = post(a, "/people", {"name": "ann", "age": 0}).json()["id"]
    # a write by one process changes the tag the other answers
    t = etag(b.get(f"/people/{pid}"))
    assert a.request("PATCH", f"/people/{pid}", json={"age": 1}).status_code == 200
    assert etag(b.get(f"/people/{pid}")) != t
    ca, cb = httpx.Client(base_url=a.url, timeout=15), httpx.Client(base_url=b.url, timeout=15)
    try:
        for i in range(ROUNDS):
            tag = etag(a.get(f"/people/{pid}"))
            results = [None, None]
            go = threading.Barrier(2)

            def patch(k, client):
                go.wait()
                results[k] = client.patch(f"/people/{pid}", json={"age": 100 + k}, headers={"If-Match": tag})

            th = [threading.Thread(target=patch, args=(k, c)) for k, c in enumerate((ca, cb))]
            for x in th:
                x.start()
            for x in th:
                x.join(30)
            codes = sorted(r.status_code for r in results)
            assert codes == [200, 412], f"round {i}: {[(r.status_code, r.text) for r in results]}"
            won = next(r for r in results if r.status_code == 200)
            # the winner's answer is the row as stored now, seen by both processes
            assert etag(a.get(f"/people/{pid}")) == etag(won) == etag(b.get(f"/people/{pid}"))
            lost = next(r for r in results if r.status_code == 412)
            assert lost.json()["code"] == "precondition_failed"
    finally:
        ca.close()
        cb.close()


# ---- migration, model check ----

OLD_TABLE = "CREATE TABLE person (id {id}, name TEXT NOT NULL, age {int})"


def test_table_without_versions_gets_them(crest, store_dbs, tmp_path):
    db = tmp_path / "old.db"
    app = APP.replace("sqlite:cond.db", f"sqlite:{db}")
    if STORE == "postgres":
        store_dbs.uri(str(db))
        store_dbs.psql(str(db), OLD_TABLE.format(id="bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
                                                 int="bigint") + "; INSERT INTO person (name, age) VALUES "
                                                 "('ann', 1), ('bob', 2);")
    else:
        con = sqlite3.connect(db)
        con.execute(OLD_TABLE.format(id="INTEGER PRIMARY KEY", int="INTEGER"))
        con.execute("INSERT INTO person (name, age) VALUES ('ann', 1), ('bob', 2)")
        con.commit()
        con.close()
    s = crest(app)
    versions = [v for (v,) in db_rows(s, str(db), "SELECT crest_version FROM person ORDER BY id")]
    assert len(versions) == 2 and len(set(versions)) == 2, versions
    r = s.get("/people/1")
    assert r.json() == {"id": 1, "name": "ann", "age": 1}
    t = etag(r)
    r = s.request("PATCH", "/people/1", json={"age": 5}, headers={"If-Match": t})
    assert r.status_code == 200 and etag(r) != t
    assert_problem(s.request("PATCH", "/people/1", json={"age": 6}, headers={"If-Match": t}), 412)
    s.stop()
    # a second start finds the column and leaves the versions alone
    s2 = crest(app)
    assert etag(s2.get("/people/1")) == etag(r)


def test_crest_field_names_are_refused(tmp_path):
    p = tmp_path / "app.yaml"
    p.write_text(APP.replace("      age: {type: int}\n", "      crest_version: {type: int}\n"))
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode != 0
    assert f"{p}:6: model Person: field name 'crest_version' is reserved: names starting with 'crest_' are " \
           "crest's own" in r.err, r.err
