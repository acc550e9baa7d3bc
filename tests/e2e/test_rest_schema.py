"""Models and the database: tables created on start, added fields migrated, lossy changes refused;
`crest check` on model apps and on examples/tasks/app.yaml."""
import json
import os
import re
import sqlite3
import time
from datetime import datetime, timezone

import pytest

from conftest import CREST_BIN, STORE, db_rows, on_store, run_cli
from rest_apps import CONTRACT_APP, EXAMPLE_APP, data_of, example_app, parse_utc


V1 = """\
database: sqlite:ignored.db
models:
  Task:
    table: tasks
    fields:
      title:        {type: string, required: true}
      is_completed: {type: bool, default: false}
      spent_time:   {type: int, default: 0}
modules:
  tasks:
    model: Task
    url_prefix: /tasks
"""


def with_fields(extra="", drop=(), retype=None):
    """V1 with fields added (YAML lines), dropped, or retyped ({field: new type})."""
    lines = []
    for line in V1.splitlines():
        m = re.match(r"^      (\w+):", line)
        if m and m.group(1) in drop:
            continue
        if m and retype and m.group(1) in retype:
            line = f"      {m.group(1)}: {{type: {retype[m.group(1)]}}}"
        lines.append(line)
        if line.startswith("    fields:") and extra:
            lines += ["      " + l for l in extra.strip("\n").splitlines()]
    return "\n".join(lines) + "\n"


def db_env(path):
    return {"CREST_DATABASE": f"sqlite:{path}"}


def columns(db, table="tasks"):
    """{name: (NAME, TYPE, not null, default, primary key)} of table's columns, on either store."""
    sql = on_store(
        sqlite=f"SELECT name, upper(type), \"notnull\", dflt_value, pk > 0 FROM pragma_table_info('{table}')",
        postgres=f"SELECT c.column_name, upper(c.data_type), c.is_nullable = 'NO', c.column_default, "
                 f"EXISTS (SELECT 1 FROM information_schema.table_constraints t "
                 f"JOIN information_schema.key_column_usage k USING (constraint_schema, constraint_name) "
                 f"WHERE t.table_name = c.table_name AND t.constraint_type = 'PRIMARY KEY' "
                 f"AND k.column_name = c.column_name) "
                 f"FROM information_schema.columns c WHERE c.table_name = '{table}' "
                 f"AND c.table_schema = current_schema()")
    return {r[0]: r for r in rows(db, sql)}


def rows(db, sql):
    """The rows of sql on the database db (an SQLite file's path) names: db_rows."""
    return db_rows(None, str(db), sql)


def write(tmp_path, text, name="app.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def serve_fails(store_dbs, tmp_path, text, env):
    """`crest serve` of text with env must stop before listening (on PostgreSQL, STORE: on the database of
    the test's servers)."""
    if STORE == "postgres":
        text, env = store_dbs.app_text(text), store_dbs.env(env)
    p = write(tmp_path, text, "v2.yaml")
    start = time.monotonic()
    r = run_cli([CREST_BIN, "serve", str(p), "--listen", "127.0.0.1:0", "--workers", "1"], cwd=str(tmp_path),
                env=env, timeout=30)
    assert r.returncode != 0, r.err
    assert '"listening"' not in r.err
    assert time.monotonic() - start < 30
    return r


# ---------------------------------------------------------------- tables


def test_table_is_created_on_start(crest, tmp_path):
    db = tmp_path / "t.db"
    s = crest(V1, env=db_env(db))
    assert s.get("/tasks").json()["data"] == []
    cols = columns(db)
    assert {"id", "title", "is_completed", "spent_time"} <= set(cols)
    assert cols["id"][4] == 1  # the primary key
    assert "INT" in cols["id"][1]


def test_default_table_name_is_the_lower_cased_model_name(crest, tmp_path):
    db = tmp_path / "n.db"
    s = crest("""\
        database: sqlite:n.db
        models:
          Note:
            fields:
              body: {type: text}
        modules:
          notes:
            model: Note
        """, env=db_env(db))
    r = s.request("POST", "/notes", json={"body": "hi"})
    assert r.status_code == 201, r.text
    assert rows(db, "SELECT body FROM note") == [("hi",)]


def test_data_survives_a_restart(crest, tmp_path):
    db = tmp_path / "r.db"
    s = crest(V1, env=db_env(db))
    j = s.request("POST", "/tasks", json={"title": "kept", "spent_time": 4}).json()
    assert s.stop() == 0
    s2 = crest(V1, env=db_env(db))
    assert s2.get(f"/tasks/{j['id']}").json() == j


def test_index_option_creates_an_index(crest, tmp_path):
    db = tmp_path / "i.db"
    crest(with_fields("owner: {type: string, index: true}\ncode: {type: string, unique: true}"), env=db_env(db))
    indexed = {}
    for column, unique in rows(db, on_store(
            sqlite="SELECT ii.name, il.\"unique\" FROM pragma_index_list('tasks') il, pragma_index_info(il.name) ii",
            postgres="SELECT a.attname, i.indisunique FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
                     "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY (i.indkey) "
                     "WHERE t.relname = 'tasks'")):
        indexed.setdefault(column, set()).add(unique)
    assert "owner" in indexed, indexed
    assert 1 in indexed.get("code", set()), indexed


def test_created_at_default_now(crest, tmp_path):
    db = tmp_path / "c.db"
    s = crest(with_fields("created_at: {type: datetime, default: now, rest: read}"), env=db_env(db))
    before = datetime.now(timezone.utc).replace(microsecond=0)  # served times may be whole seconds
    r = s.request("POST", "/tasks", json={"title": "x"})
    after = datetime.now(timezone.utc)
    assert r.status_code == 201, r.text
    j = r.json()
    created = parse_utc(j["created_at"])
    assert before <= created <= after, (before, created, after)
    assert s.get(f"/tasks/{j['id']}").json()["created_at"] == j["created_at"]  # stored, not made up per read


# ---------------------------------------------------------------- migrations


def test_added_field_gets_a_column_and_old_rows_the_default(crest, tmp_path):
    db = tmp_path / "m.db"
    s = crest(V1, env=db_env(db))
    old = s.request("POST", "/tasks", json={"title": "old", "spent_time": 2}).json()
    assert s.stop() == 0
    v2 = with_fields("priority: {type: int, default: 3}\nnote: {type: string}\nflag: {type: bool, default: true}")
    s2 = crest(v2, env=db_env(db))
    assert {"priority", "note", "flag"} <= set(columns(db))
    got = s2.get(f"/tasks/{old['id']}").json()
    assert got == dict(old, priority=3, note=None, flag=True)
    r = s2.request("POST", "/tasks", json={"title": "new", "priority": 9, "note": "n"})
    assert r.status_code == 201, r.text
    assert r.json()["priority"] == 9 and r.json()["flag"] is True
    assert [o["title"] for o in data_of(s2.get("/tasks", params={"where": '{"priority": 3}'}))] == ["old"]


def test_unchanged_app_starts_again_without_touching_the_table(crest, tmp_path):
    db = tmp_path / "u.db"
    s = crest(V1, env=db_env(db))
    s.request("POST", "/tasks", json={"title": "x"})
    assert s.stop() == 0
    before = columns(db)
    s2 = crest(V1, env=db_env(db))
    assert columns(db) == before
    assert len(s2.get("/tasks").json()["data"]) == 1


@pytest.mark.parametrize("field,new_type", [("spent_time", "string"), ("title", "float"), ("spent_time", "json"),
                                            ("is_completed", "string")])
def test_type_change_stops_the_start(crest, store_dbs, tmp_path, field, new_type):
    db = tmp_path / "tc.db"
    s = crest(V1, env=db_env(db))
    s.request("POST", "/tasks", json={"title": "precious", "spent_time": 42, "is_completed": True})
    assert s.stop() == 0
    before = columns(db)
    r = serve_fails(store_dbs, tmp_path, with_fields(retype={field: new_type}), db_env(db))
    assert field in r.err, r.err
    assert columns(db) == before
    assert rows(db, "SELECT title, spent_time FROM tasks") == [("precious", 42)]


@pytest.mark.parametrize("field", ["spent_time", "is_completed"])
def test_dropped_field_stops_the_start(crest, store_dbs, tmp_path, field):
    db = tmp_path / "df.db"
    s = crest(V1, env=db_env(db))
    s.request("POST", "/tasks", json={"title": "precious", "spent_time": 42})
    assert s.stop() == 0
    before = columns(db)
    r = serve_fails(store_dbs, tmp_path, with_fields(drop=(field,)), db_env(db))
    assert field in r.err, r.err
    assert columns(db) == before
    assert rows(db, "SELECT title, spent_time FROM tasks") == [("precious", 42)]


def test_refused_start_leaves_the_app_usable_with_the_old_file(crest, store_dbs, tmp_path):
    db = tmp_path / "back.db"
    s = crest(V1, env=db_env(db))
    s.request("POST", "/tasks", json={"title": "x"})
    assert s.stop() == 0
    serve_fails(store_dbs, tmp_path, with_fields(drop=("spent_time",)), db_env(db))
    s2 = crest(V1, env=db_env(db))
    assert [o["title"] for o in s2.get("/tasks").json()["data"]] == ["x"]


# ---------------------------------------------------------------- crest check


def test_check_accepts_a_model_app_and_writes_nothing(tmp_path):
    p = write(tmp_path, CONTRACT_APP)
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 0, r.err
    assert "ok" in r.out
    assert not (tmp_path / "app.db").exists()


BAD_MODEL_FILES = [
    ("unknown model in a module", V1.replace("model: Task", "model: Tsk"), ["Tsk"]),
    ("unknown field type", V1.replace("{type: int, default: 0}", "{type: integr, default: 0}"), ["integr"]),
    ("unknown field option", V1.replace("{type: string, required: true}", "{type: string, requird: true}"),
     ["requird"]),
    ("unknown module key", V1 + "    colour: blue\n", ["colour"]),
    ("allow-list names an unknown field", V1 + "    allowed_sorts: [id, nope]\n", ["nope"]),
    ("unknown method", V1 + "    enabled_methods: [index, fetch]\n", ["fetch"]),
    ("bad pattern", V1.replace("{type: string, required: true}", '{type: string, pattern: "[a-"}'), ["pattern"]),
    ("bad rest visibility", V1.replace("{type: int, default: 0}", "{type: int, rest: hidden}"), ["hidden"]),
]


@pytest.mark.parametrize("name,text,words", BAD_MODEL_FILES, ids=[b[0] for b in BAD_MODEL_FILES])
def test_check_rejects_bad_models_and_modules(tmp_path, name, text, words):
    p = write(tmp_path, text)
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 1, (r.returncode, r.out, r.err)
    assert f"{p}:" in r.err, r.err
    for w in words:
        assert w in r.err, (w, r.err)


def test_check_accepts_the_tasks_example(tmp_path):
    r = run_cli([CREST_BIN, "check", EXAMPLE_APP], cwd=str(tmp_path))
    assert r.returncode == 0, r.err
    assert "ok" in r.out
    text = open(EXAMPLE_APP).read()
    assert re.search(r"^models:", text, re.M) and re.search(r"^modules:", text, re.M)




def test_the_tasks_example_serves_every_route(crest):
    s = crest(example_app())
    r = s.get("/tasks")
    data = data_of(r)
    assert data, "the example is seeded on first start"
    n = r.json()["meta"]["total_objects"]
    assert n >= len(data)
    first = data[0]
    assert {"id", "title", "is_completed", "spent_time", "created_at"} <= set(first)
    parse_utc(first["created_at"])
    assert s.get(f"/tasks/{first['id']}").json() == first
    r = s.request("POST", "/tasks", json={"title": "from the tests", "spent_time": 60})
    assert r.status_code == 201, r.text
    j = r.json()
    assert r.headers["location"].endswith(f"/tasks/{j['id']}")
    assert s.request("PATCH", f"/tasks/{j['id']}", json={"is_completed": True}).json()["is_completed"] is True
    assert s.request("PUT", f"/tasks/{j['id']}", json={"spent_time": 61}).json()["spent_time"] == 61
    assert s.get("/tasks/sample").status_code == 200
    assert s.get("/tasks/group/is_completed").status_code == 200
    assert s.get("/tasks/stats", params={"fields": "spent_time"}).json()["spent_time"]["max"] >= 61
    q = json.dumps({"functions": [{"name": "count"}]})
    assert s.get("/tasks/eval", params={"q": q}).json() == {"count": n + 1}
    assert s.request("DELETE", f"/tasks/{j['id']}").status_code == 204


# ---------------------------------------------------------------- start-up failures, word for word

# What model sync says when an existing table does not fit the model, or when
# the database refuses one of its statements (then in the database's own words).
SYNC_FAILURES = [
    ("a column declared for other values",
     "startup_sql: CREATE TABLE tasks (id INTEGER PRIMARY KEY, title blob_ish int)\n"
     "models:\n  Task:\n    table: tasks\n    fields:\n      title: string\n",
     "model Task: column tasks.title is declared blob_ish int, which does not hold a string field"),
    ("an id that is not the integer primary key",
     "startup_sql: CREATE TABLE tasks (id TEXT PRIMARY KEY, title TEXT)\n"
     "models:\n  Task:\n    table: tasks\n    fields:\n      title: string\n",
     "model Task: table tasks exists, but its id is not an INTEGER PRIMARY KEY"),
    ("a table without an id",
     "startup_sql: CREATE TABLE tasks (title TEXT)\n"
     "models:\n  Task:\n    table: tasks\n    fields:\n      title: string\n",
     "model Task: table tasks exists without an id column"),
    ("a column that is not a field",
     "startup_sql: CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT, notes TEXT)\n"
     "models:\n  Task:\n    table: tasks\n    fields:\n      title: string\n",
     "model Task: table tasks has a column 'notes' that is not a field of the model"),
    ("a seed that breaks a unique field",
     "models:\n  Task:\n    table: tasks\n    fields:\n      title: {type: string, unique: true}\n"
     "    seed:\n      - {title: a}\n      - {title: a}\n",
     'database: UNIQUE constraint failed: tasks.title (while running: CREATE UNIQUE INDEX IF NOT EXISTS '
     '"tasks_title_key" ON "tasks" ("title"))'),
    ("an index whose name is taken",
     "startup_sql: CREATE TABLE tasks_title_idx (x)\n"
     "models:\n  Task:\n    table: tasks\n    fields:\n      title: {type: string, index: true}\n",
     'database: there is already a table named tasks_title_idx (while running: CREATE INDEX IF NOT EXISTS '
     '"tasks_title_idx" ON "tasks" ("title"))'),
]


@pytest.mark.parametrize("name,body,message", SYNC_FAILURES, ids=[f[0] for f in SYNC_FAILURES])
def test_sync_failure_says_what_is_wrong(tmp_path, name, body, message):
    p = write(tmp_path, "database: sqlite:x.db\n" + body)
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 1, (r.returncode, r.out, r.err)
    assert f"{p}:" in r.err, r.err
    assert message in r.err, r.err


def test_type_change_names_both_types(crest, store_dbs, tmp_path):
    db = tmp_path / "tn.db"
    s = crest(V1, env=db_env(db))
    assert s.stop() == 0
    r = serve_fails(store_dbs, tmp_path, with_fields(retype={"spent_time": "string"}), db_env(db))
    assert "model Task: field spent_time changed type from int to string; existing data could be lost" in r.err, r.err


@pytest.mark.parametrize("startup,message", [
    ("CREATE TABLE tasks (id TEXT PRIMARY KEY, title TEXT)",
     on_store(sqlite="its id is not an INTEGER PRIMARY KEY",
              postgres="its id is not a bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")),
    ("CREATE TABLE tasks (id INTEGER PRIMARY KEY, title TEXT, spent_time TEXT)",
     "which does not hold an int field"),
], ids=["id", "field"])
def test_sync_message_said_not_an_bigint(store_dbs, tmp_path, startup, message):
    """Regression: model sync wrote "not an %s" whatever the type ("its id is not an bigint GENERATED..." on
    PostgreSQL) and "does not hold a %s field" ("a int field"); the article follows the type's name."""
    r = serve_fails(store_dbs, tmp_path, f"startup_sql: {startup}\n" + V1, db_env(tmp_path / "art.db"))
    assert message in r.err, r.err


@pytest.mark.parametrize("fields,index", [
    ("      title: {type: string, index: true}\n", "tasks_title_idx"),
    ("      title: {type: string, unique: true}\n", "tasks_title_key"),
    ("      title: string\n      spent_time: int\n    indexes: [[title, -spent_time]]\n",
     "tasks_title_spent_time_idx"),
], ids=["index", "unique", "composite"])
def test_index_whose_name_a_table_holds_was_silently_skipped(store_dbs, tmp_path, fields, index):
    """Regression: on PostgreSQL, CREATE INDEX IF NOT EXISTS passes over a name a table already holds (a
    NOTICE), so the start went on without the index (or the unique key). It stops, as on SQLite, where the
    database refuses the statement."""
    app = (f"database: sqlite:ignored.db\nstartup_sql: CREATE TABLE {index} (x integer)\n"
           "models:\n  Task:\n    table: tasks\n    fields:\n" + fields)
    r = serve_fails(store_dbs, tmp_path, app, db_env(tmp_path / "ix.db"))
    assert on_store(sqlite=f"database: there is already a table named {index}",
                    postgres=f"model Task: cannot make the index {index}: there is already a table named {index}"
                    ) in r.err, r.err


def test_a_trigger_refusing_a_new_columns_fill_stops_the_start_in_its_own_words(crest, store_dbs, tmp_path):
    db = tmp_path / "tr.db"
    s = crest(V1, env=db_env(db))
    s.request("POST", "/tasks", json={"title": "precious"})
    assert s.stop() == 0
    if STORE == "postgres":
        store_dbs.psql(db, "CREATE FUNCTION no_update() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                           "RAISE EXCEPTION 'crest:409: no updates here'; END $$;\n"
                           "CREATE TRIGGER no_update BEFORE UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION no_update()")
    else:
        con = sqlite3.connect(db)
        con.execute("CREATE TRIGGER no_update BEFORE UPDATE ON tasks "
                    "BEGIN SELECT RAISE(ABORT, 'crest:409: no updates here'); END")
        con.commit()
        con.close()
    before = columns(db)
    r = serve_fails(store_dbs, tmp_path, with_fields("made: {type: datetime, default: now}"), db_env(db))
    update = 'UPDATE "tasks" SET "made" = ' + on_store(sqlite="?", postgres="$1")
    assert f"database: crest:409: no updates here (while running: {update})" in r.err, r.err
    assert columns(db) == before
    assert rows(db, "SELECT title FROM tasks") == [("precious",)]
