"""The app file: YAML and JSON forms, `crest check`, and `crest serve` refusing bad files."""
import json
import time

import pytest

from conftest import CREST_BIN, run_cli

GOOD_YAML = """\
database: sqlite:good.db
startup_sql: CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, name TEXT)
endpoints:
  - path: /t/{id}
    params: {id: int}
    sql: SELECT id, name FROM t WHERE id = :id
    returns: one
  - method: post
    path: /t
    status: 201
    params:
      name: {type: string, required: true}
    sql: INSERT INTO t (name) VALUES (:name) RETURNING id, name
    returns: one
"""

GOOD_JSON_TABS = (
    '{\n'
    '\t"database": "sqlite:good.db",\n'
    '\t"startup_sql": ["CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, name TEXT)"],\n'
    '\t"limits": {"body": "64KiB", "header_timeout": "5s"},\n'
    '\t"endpoints": [\n'
    '\t\t{\n'
    '\t\t\t"path": "/t/{id}",\n'
    '\t\t\t"params": {"id": "int"},\n'
    '\t\t\t"sql": "SELECT id, name FROM t WHERE id = :id",\n'
    '\t\t\t"returns": "one"\n'
    '\t\t},\n'
    '\t\t{\n'
    '\t\t\t"method": "POST",\n'
    '\t\t\t"path": "/t",\n'
    '\t\t\t"status": 201,\n'
    '\t\t\t"params": {"name": {"type": "string", "required": true}},\n'
    '\t\t\t"sql": "INSERT INTO t (name) VALUES (:name) RETURNING id, name",\n'
    '\t\t\t"returns": "one"\n'
    '\t\t}\n'
    '\t]\n'
    '}\n')


def exercise(s):
    r = s.request("POST", "/t", json={"name": "n1"})
    assert r.status_code == 201, r.text
    i = r.json()["id"]
    assert s.get(f"/t/{i}").json() == {"id": i, "name": "n1"}


def test_yaml_app_serves(crest):
    exercise(crest(GOOD_YAML))


def test_json_app_with_tabs_serves(crest):
    assert "\t" in GOOD_JSON_TABS
    json.loads(GOOD_JSON_TABS)
    exercise(crest(GOOD_JSON_TABS, name="app.json"))


def test_compact_json_app_serves(crest):
    doc = {"database": "sqlite:c.db", "endpoints": [{"path": "/one", "sql": "SELECT 1 AS one", "returns": "one"}]}
    s = crest(json.dumps(doc), name="app.json")
    assert s.get("/one").json() == {"one": 1}


def test_empty_app_serves_healthz(crest):
    s = crest("{}\n")
    assert s.get("/healthz").json() == {"status": "ok"}


def write(tmp_path, text, name="app.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_check_good_file(tmp_path):
    for name, text in (("app.yaml", GOOD_YAML), ("app.json", GOOD_JSON_TABS)):
        p = write(tmp_path, text, name)
        r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
        assert r.returncode == 0, r.err
        assert "ok" in r.out
        assert str(p) in r.out


def test_check_writes_nothing(tmp_path):
    p = write(tmp_path, GOOD_YAML)
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 0, r.err
    assert not (tmp_path / "good.db").exists()


BAD_FILES = [
    # (name, text, line, words that must appear in the message)
    ("unknown top-level key", "database: sqlite:x.db\ncolour: blue\nendpoints: []\n", 2, ["colour"]),
    ("unknown endpoint key",
     "database: sqlite:x.db\nendpoints:\n  - path: /a\n    sql: SELECT 1 AS a\n    retruns: one\n", 5, ["retruns"]),
    ("bad returns",
     "database: sqlite:x.db\nendpoints:\n  - path: /a\n    sql: SELECT 1 AS a\n    returns: several\n", 5,
     ["returns", "several"]),
    ("sql syntax error",
     "database: sqlite:x.db\nendpoints:\n  - path: /a\n    returns: one\n    sql: SELEC 1\n", 5, ["SELEC"]),
    ("multi-line sql syntax error",
     "database: sqlite:x.db\nendpoints:\n  - path: /a\n    returns: one\n\n    sql: >\n      SELECT 1\n      FRM t\n",
     6, ["syntax error"]),
    ("undeclared param",
     "database: sqlite:x.db\nendpoints:\n  - path: /a\n    params: {b: int}\n    sql: SELECT :c AS c\n", 5,
     [":c"]),
    ("bad method",
     "database: sqlite:x.db\nendpoints:\n  - path: /a\n    method: FETCH\n    sql: SELECT 1 AS a\n", 4,
     ["method", "GET", "FETCH"]),
    ("unknown table", "database: sqlite:x.db\nendpoints:\n  - path: /a\n    sql: SELECT * FROM nope\n", 4,
     ["nope"]),
    ("bad param type",
     "database: sqlite:x.db\nendpoints:\n  - path: /a/{id}\n    params:\n      id: integr\n    sql: SELECT :id AS id\n",
     5, ["integr"]),
    ("unknown limit", "limits:\n  body: 1KiB\n  bodyy: 2KiB\n", 3, ["bodyy"]),
    ("bad duration", "limits:\n  header_timeout: soon\n", 2, ["header_timeout"]),
    ("path without slash", "database: sqlite:x.db\nendpoints:\n  - path: a\n    sql: SELECT 1 AS a\n", 3, ["path"]),
    ("yaml syntax error", "database: sqlite:x.db\nendpoints:\n  - path: /a\n   sql: [unclosed\n", 4, ["YAML"]),
    ("json with tabs, unknown key", '{\n\t"database": "sqlite:x.db",\n\t"colour": "blue"\n}\n', 3, ["colour"]),
    ("json with tabs, sql syntax error",
     '{\n\t"database": "sqlite:x.db",\n\t"endpoints": [\n\t\t{"path": "/a",\n\t\t "sql": "SELEC 1"}\n\t]\n}\n', 5,
     ["SELEC"]),
    ("returns one without rows",
     "database: sqlite:x.db\nstartup_sql: CREATE TABLE t (a)\nendpoints:\n  - path: /a\n    method: POST\n"
     "    sql: INSERT INTO t VALUES (1)\n    returns: one\n", 4, ["RETURNING"]),
    ("duplicate route",
     "database: sqlite:x.db\nendpoints:\n  - path: /a\n    sql: SELECT 1 AS a\n  - path: /a\n    sql: SELECT 2 AS a\n",
     5, ["/a", "twice"]),
    # Issue 10 item 7: these passed `crest check` and became routes nothing could reach.
    ("path with a query string is refused",
     "database: sqlite:x.db\nendpoints:\n  - sql: SELECT 1 AS a\n    path: /custom/search?query=test\n", 4,
     ["'?'", "in: query"]),
    ("path with a fragment is refused",
     "database: sqlite:x.db\nendpoints:\n  - sql: SELECT 1 AS a\n    path: /custom#top\n", 4, ["'#'"]),
    ("path with an angle-bracket segment is refused",
     "database: sqlite:x.db\nendpoints:\n  - sql: SELECT :id AS a\n    path: /project/<id>\n", 4,
     ["'<id>'", "write {id}"]),
    ("module base_path with a query string is refused",
     "database: sqlite:x.db\nmodels:\n  Task:\n    fields: {title: string}\nmodules:\n  tasks:\n    model: Task\n"
     "    base_path: /list?all=1\n", 8, ["base_path", "'?'"]),
    ("module id_path with an angle-bracket segment is refused",
     "database: sqlite:x.db\nmodels:\n  Task:\n    fields: {title: string}\nmodules:\n  tasks:\n    model: Task\n"
     "    id_path: /<id>\n", 8, ["id_path", "write {id}"]),
    # Issue 10 item 10: errors that named no line, or the module's line instead of the entry's.
    ("a computed field whose sql does not work names its line",
     "database: sqlite:x.db\nmodels:\n  Task:\n    fields: {spent_time: int}\nmodules:\n  api_task:\n"
     "    model: Task\n    serializer:\n      computed:\n        hours: spent_time / 3600.0\n"
     "        broken: no_such_column + 1\n", 11, ["computed field broken", "no such column"]),
    ("a bad query_allowed_fields entry names its own line",
     "database: sqlite:x.db\nmodels:\n  Task:\n    fields: {title: string}\nmodules:\n  api_task:\n"
     "    model: Task\n    query_allowed_fields:\n      - title\n      - nope\n", 10, ["'nope'"]),
    ("a bad serializer attribute names its own line",
     "database: sqlite:x.db\nmodels:\n  Task:\n    fields: {title: string}\nmodules:\n  api_task:\n"
     "    model: Task\n    serializer:\n      exclude:\n        - title\n        - nope\n", 11, ["'nope'"]),
    ("a bad field option names the field's line",
     "database: sqlite:x.db\nmodels:\n  Task:\n    fields:\n      title: string\n"
     "      size: {type: string, min: 3}\n", 6, ["field size", "min/max"]),
    ("a bad seed row names its line",
     "database: sqlite:x.db\nmodels:\n  Task:\n    fields:\n      title: {type: string, required: true}\n"
     "    seed:\n      - {title: a}\n      - {}\n", 8, ["seed[1]", "required"]),
    ("a failing startup_sql names its line",
     "database: sqlite:x.db\nendpoints: []\nstartup_sql:\n  - CREATE TABLE a (x)\n  - CREAT oops\n", 4,
     ["startup_sql", "CREAT"]),
    ("sql endpoints without a database name the endpoint's line",
     "endpoints:\n  - path: /a\n    sql: SELECT 1 AS a\n", 2, ["database"]),
    ("models without a database name the models' line",
     "endpoints: []\nmodels:\n  Task:\n    fields: {title: string}\n", 3, ["database"]),
    ("a bad permission name names its entry's line",
     "database: sqlite:x.db\nauth:\n  api_keys_file: /dev/null\nendpoints:\n  - path: /a\n    sql: SELECT 1 AS a\n"
     "    permission:\n      - reports\n      - public\n", 9, ["bad permission name 'public'"]),
    ("an unknown module method names its entry's line",
     "database: sqlite:x.db\nmodels:\n  Task:\n    fields: {title: string}\nmodules:\n  api_task:\n"
     "    model: Task\n    enabled_methods:\n      - index\n      - lists\n", 10, ["unknown method 'lists'"]),
    ("a jwt error names the key it is about",
     "database: sqlite:x.db\nauth:\n  jwt:\n    secret_env: HOME\n    algorithms: [HS256, RS999]\n", 5,
     ["auth.jwt.algorithms", "RS999"]),
]


@pytest.mark.parametrize("name,text,line,words", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_check_bad_file(tmp_path, name, text, line, words):
    p = write(tmp_path, text)
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 1, (r.returncode, r.out, r.err)
    assert "ok" not in r.out
    if line is not None:
        assert f"{p}:{line}:" in r.err, r.err
    else:
        assert f"{p}:" in r.err, r.err
    for w in words:
        assert w in r.err, (w, r.err)


def test_check_missing_file(tmp_path):
    p = tmp_path / "absent.yaml"
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 1
    assert str(p) in r.err


def test_check_sql_without_database(tmp_path):
    p = write(tmp_path, "endpoints:\n  - path: /a\n    sql: SELECT 1 AS a\n")
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 1
    assert "database" in r.err


def test_check_sees_the_startup_sql_tables(tmp_path):
    p = write(tmp_path, "database: sqlite:new.db\nstartup_sql: CREATE TABLE made (x)\n"
                        "endpoints:\n  - path: /m\n    sql: SELECT x FROM made\n")
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 0, r.err


SERVE_BAD = [b for b in BAD_FILES if b[0] in (
    "unknown top-level key", "sql syntax error", "undeclared param", "bad method", "yaml syntax error")]


@pytest.mark.parametrize("name,text,line,words", SERVE_BAD, ids=[b[0] for b in SERVE_BAD])
def test_serve_refuses_bad_file(tmp_path, name, text, line, words):
    p = write(tmp_path, text)
    start = time.monotonic()
    r = run_cli([CREST_BIN, "serve", str(p), "--listen", "127.0.0.1:0", "--workers", "1"], cwd=str(tmp_path),
                timeout=30)
    assert r.returncode != 0
    assert '"listening"' not in r.err
    assert f"{p}:" in r.err
    for w in words:
        assert w in r.err
    assert time.monotonic() - start < 30


def test_serve_refuses_missing_file(tmp_path):
    r = run_cli([CREST_BIN, "serve", str(tmp_path / "nope.yaml"), "--listen", "127.0.0.1:0"], cwd=str(tmp_path))
    assert r.returncode != 0
    assert '"listening"' not in r.err


def test_serve_refuses_failing_startup_sql(tmp_path):
    p = write(tmp_path, "database: sqlite:x.db\nstartup_sql: CREATE TABLE oops (\n")
    r = run_cli([CREST_BIN, "serve", str(p), "--listen", "127.0.0.1:0"], cwd=str(tmp_path))
    assert r.returncode != 0
    assert '"listening"' not in r.err
    assert "startup_sql" in r.err


def test_auth_without_pinned_algorithms_names_the_line(tmp_path):
    p = write(tmp_path, "database: sqlite:x.db\nauth:\n  jwt: {}\n")
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 1
    assert f"{p}:3:" in r.err and "algorithms" in r.err


def test_model_without_fields_names_the_line(tmp_path):
    p = write(tmp_path, "database: sqlite:x.db\nmodels:\n  Task: {}\n")
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 1
    assert f"{p}:3:" in r.err and "models.Task.fields" in r.err


def test_check_leaves_an_existing_database_alone(tmp_path):
    import sqlite3
    db = tmp_path / "live.db"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO t (name) VALUES ('keep')")
    con.commit()
    con.close()
    p = write(tmp_path, "database: sqlite:live.db\nstartup_sql:\n  - INSERT INTO t (name) VALUES ('added')\n"
                        "  - CREATE TABLE extra (x)\nendpoints:\n  - path: /t\n    sql: SELECT id, name FROM t\n")
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 0, r.err
    con = sqlite3.connect(db)
    assert con.execute("SELECT name FROM t").fetchall() == [("keep",)]
    assert con.execute("SELECT count(*) FROM sqlite_schema WHERE name = 'extra'").fetchone()[0] == 0
    con.close()
