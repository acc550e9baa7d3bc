"""The hello example: a C program on the public API."""
import sqlite3

import pytest

from conftest import assert_problem, http_request


@pytest.fixture
def db(tmp_path):
    p = tmp_path / "people.db"
    con = sqlite3.connect(p)
    con.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT NOT NULL, age INTEGER)")
    con.execute("CREATE TABLE uniq (code TEXT PRIMARY KEY)")
    con.execute("INSERT INTO people (name, age) VALUES ('ann', 30)")
    con.commit()
    con.close()
    return p


def count(s, table):
    r = s.get(f"/tables/{table}/count")
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["table"] == table
    return j["count"]


def test_hello_exact(hello, db):
    s = hello(db)
    r = s.get("/hello")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/json")
    assert r.content == b'{"message":"hello"}'
    assert r.headers["content-length"] == str(len(b'{"message":"hello"}'))


def test_healthz_in_a_c_program(hello, db):
    assert hello(db).get("/healthz").json() == {"status": "ok"}


def test_count_existing_table(hello, db):
    s = hello(db)
    assert s.get("/tables/people/count").json() == {"table": "people", "count": 1}


def test_new_database_gets_items_table(hello, tmp_path):
    s = hello(tmp_path / "fresh.db")
    assert count(s, "items") == 0


def test_unknown_table_is_404(hello, db):
    s = hello(db)
    p = assert_problem(s.get("/tables/nosuch/count"), 404)
    assert p["code"] == "not_found"
    assert_problem(s.request("POST", "/tables/nosuch/rows", json=[{"a": 1}]), 404)


def test_internal_tables_are_not_exposed(hello, db):
    s = hello(db)
    assert_problem(s.get("/tables/sqlite_schema/count"), 404)
    assert_problem(s.get("/tables/sqlite_master/count"), 404)


def test_append_rows(hello, db):
    s = hello(db)
    rows = [{"name": "bob", "age": 41}, {"name": "cy"}, {"name": "di", "age": None}]
    r = s.request("POST", "/tables/people/rows", json=rows)
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["inserted"] == 3
    assert j["count"] == 4
    assert count(s, "people") == 4
    con = sqlite3.connect(db)
    assert [n for (n,) in con.execute("SELECT name FROM people ORDER BY id")] == ["ann", "bob", "cy", "di"]
    con.close()


def test_append_rows_unknown_column_inserts_nothing(hello, db):
    s = hello(db)
    rows = [{"name": "ok1"}, {"name": "ok2", "age": 2}, {"name": "bad", "shoe_size": 44}]
    r = s.request("POST", "/tables/people/rows", json=rows)
    p = assert_problem(r, 422)
    assert "shoe_size" in p.get("detail", "") or "shoe_size" in str(p.get("errors"))
    assert count(s, "people") == 1


def test_append_rows_constraint_violation_inserts_nothing(hello, db):
    s = hello(db)
    r = s.request("POST", "/tables/uniq/rows", json=[{"code": "a"}, {"code": "b"}, {"code": "a"}])
    assert_problem(r, 409, "conflict")
    assert count(s, "uniq") == 0
    r = s.request("POST", "/tables/people/rows", json=[{"name": "x"}, {"age": 3}])  # name NOT NULL
    assert_problem(r, 422, "validation_failed")  # a missing value is the body's fault, not a conflict
    assert count(s, "people") == 1


@pytest.mark.parametrize("body", ['{"name":"x"}', "[1, 2]", "[{}]", '"x"'])
def test_append_rows_needs_an_array_of_objects(hello, db, body):
    s = hello(db)
    r = s.request("POST", "/tables/people/rows", content=body, headers={"content-type": "application/json"})
    assert_problem(r, 422)
    assert count(s, "people") == 1


def test_append_rows_needs_a_json_body(hello, db):
    s = hello(db)
    assert_problem(s.request("POST", "/tables/people/rows", content=b"", headers={"content-type": "application/json"}),
                   400)
    assert_problem(s.request("POST", "/tables/people/rows", content=b"name=x",
                             headers={"content-type": "application/x-www-form-urlencoded"}), 415)
    assert_problem(s.request("POST", "/tables/people/rows", content=b"[{",
                             headers={"content-type": "application/json"}), 400, "invalid_json")


@pytest.mark.parametrize("name", ['a"b', "a'b", 'people"', "people; DROP TABLE people", '"people"',
                                  "peo`ple", "people--"])
def test_table_name_with_quotes_is_404(hello, db, name):
    from urllib.parse import quote
    s = hello(db)
    enc = quote(name, safe="")
    with s.raw() as c:
        c.send(http_request("GET", f"/tables/{enc}/count"))
        r = c.read_response()
        assert_problem(r, 404)
        c.send(http_request("POST", f"/tables/{enc}/rows", [("Content-Type", "application/json")],
                            b'[{"name":"x"}]'))
        assert_problem(c.read_response(), 404)
    assert count(s, "people") == 1


def test_table_with_odd_name_is_quoted_properly(hello, tmp_path):
    p = tmp_path / "odd.db"
    con = sqlite3.connect(p)
    con.execute('CREATE TABLE "we""ird t" (id INTEGER PRIMARY KEY, "va""l" TEXT)')
    con.commit()
    con.close()
    s = hello(p)
    from urllib.parse import quote
    enc = quote('we"ird t', safe="")
    r = s.request("POST", f"/tables/{enc}/rows", json=[{'va"l': "x"}, {'va"l': "y"}])
    assert r.status_code == 201, r.text
    assert s.get(f"/tables/{enc}/count").json()["count"] == 2


def test_crest_database_env_for_hello(hello, db, tmp_path):
    from conftest import CREST_HELLO, Server
    s = Server([CREST_HELLO, "--listen", "127.0.0.1:0", "--workers", "1"], cwd=str(tmp_path),
               env={"CREST_DATABASE": str(db)})
    try:
        s.wait_listening()
        assert count(s, "people") == 1
    finally:
        assert s.stop() == 0
    assert not s.check_clean(), s.stderr_text()
