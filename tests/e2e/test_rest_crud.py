"""REST modules: index, read, create (one and bulk), update (PUT/PATCH), delete over the app file's Task model."""
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from conftest import assert_problem, db_rows, on_store
from rest_apps import (CONTRACT_APP, SESSIONS_RULE_SQL, allow_of, creates, data_of, field_errors, module_server,
                       parse_utc, post_raw, problem_in, total)

TASK_KEYS = {"id", "title", "is_completed", "spent_time", "created_at"}


@pytest.fixture
def srv(crest):
    return crest(CONTRACT_APP)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server for the tests that touch only their own rows (a refused write: rest_apps.creates)."""
    yield from module_server(tmp_path_factory, CONTRACT_APP, name="crud")


def create(s, obj):
    r = s.request("POST", "/tasks", json=obj)
    assert r.status_code == 201, r.text
    return r.json()


def test_create_answers_201_with_the_bare_object(shared):
    before = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=5)
    r = shared.request("POST", "/tasks", json={"title": "Write tests", "spent_time": 90})
    assert r.status_code == 201, r.text
    assert r.headers["content-type"].split(";")[0].strip() == "application/json"
    j = r.json()
    assert set(j) == TASK_KEYS
    assert isinstance(j["id"], int) and j["id"] >= 1
    assert j["title"] == "Write tests"
    assert j["spent_time"] == 90
    assert j["is_completed"] is False  # the default, served as a JSON boolean
    created = parse_utc(j["created_at"])
    assert before <= created <= datetime.now(timezone.utc) + timedelta(seconds=5)


def test_create_sets_location(shared):
    r = shared.request("POST", "/tasks", json={"title": "located"})
    assert r.status_code == 201
    j = r.json()
    assert r.headers["location"] == f"/tasks/{j['id']}"
    assert shared.get(r.headers["location"]).json() == j


def test_create_applies_defaults(shared):
    j = create(shared, {"title": "defaults"})
    assert j["is_completed"] is False and j["spent_time"] == 0


def test_read_returns_the_bare_object(shared):
    j = create(shared, {"title": "read me", "is_completed": True, "spent_time": 7})
    r = shared.get(f"/tasks/{j['id']}")
    assert r.status_code == 200
    assert r.headers["content-type"].split(";")[0].strip() == "application/json"
    assert r.json() == j
    assert r.json()["is_completed"] is True


def test_read_missing_is_404(srv):
    assert_problem(srv.get("/tasks/1"), 404, "not_found")
    create(srv, {"title": "x"})
    assert_problem(srv.get("/tasks/999"), 404, "not_found")


@pytest.mark.parametrize("rid", ["abc", "1.5", "1abc", "0x1", "99999999999999999999999", "0", "-1"])
def test_read_with_a_non_matching_id_is_404(shared, rid):
    create(shared, {"title": "x"})
    assert_problem(shared.get(f"/tasks/{rid}"), 404)


def test_index_lists_in_id_order_with_meta(srv):
    made = [create(srv, {"title": t, "spent_time": n}) for t, n in (("a", 3), ("b", 1), ("c", 2))]
    r = srv.get("/tasks")
    assert data_of(r) == made
    assert r.json()["meta"] == {"object": "list", "total_objects": 3, "has_more": False, "next_cursor": None}
    assert set(r.json()) == {"data", "meta"}


def test_index_of_an_empty_table(srv):
    r = srv.get("/tasks")
    assert r.status_code == 200
    assert r.json() == {"data": [], "meta": {"object": "list", "total_objects": 0, "has_more": False,
                                             "next_cursor": None}}


def test_patch_updates_only_the_given_fields(shared):
    j = create(shared, {"title": "patch me", "spent_time": 5})
    r = shared.request("PATCH", f"/tasks/{j['id']}", json={"spent_time": 50})
    assert r.status_code == 200, r.text
    u = r.json()
    assert u == dict(j, spent_time=50)
    assert shared.get(f"/tasks/{j['id']}").json() == u


def test_put_updates_only_the_given_fields(shared):
    j = create(shared, {"title": "put me", "spent_time": 5, "is_completed": False})
    # title is required on create, but an update needs only the fields it changes
    r = shared.request("PUT", f"/tasks/{j['id']}", json={"is_completed": True})
    assert r.status_code == 200, r.text
    u = r.json()
    assert u == dict(j, is_completed=True)
    assert shared.get(f"/tasks/{j['id']}").json() == u


def test_update_several_fields(shared):
    j = create(shared, {"title": "old"})
    for method in ("PUT", "PATCH"):
        r = shared.request(method, f"/tasks/{j['id']}", json={"title": f"new {method}", "spent_time": 9,
                                                               "is_completed": True})
        assert r.status_code == 200, r.text
        assert r.json() == dict(j, title=f"new {method}", spent_time=9, is_completed=True)


def test_update_leaves_other_rows_alone(shared):
    a = create(shared, {"title": "a"})
    b = create(shared, {"title": "b"})
    assert shared.request("PATCH", f"/tasks/{a['id']}", json={"title": "a2"}).status_code == 200
    assert shared.get(f"/tasks/{b['id']}").json() == b


def test_update_with_an_empty_object_changes_nothing(shared):
    j = create(shared, {"title": "same"})
    r = shared.request("PATCH", f"/tasks/{j['id']}", json={})
    assert r.status_code == 200, r.text
    assert r.json() == j


def test_update_does_not_touch_created_at(shared):
    j = create(shared, {"title": "t"})
    r = shared.request("PATCH", f"/tasks/{j['id']}", json={"title": "t2"})
    assert r.json()["created_at"] == j["created_at"]


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_missing_is_404(srv, method):
    create(srv, {"title": "x"})
    assert_problem(srv.request(method, "/tasks/999", json={"title": "y"}), 404, "not_found")


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_missing_is_404_even_with_an_invalid_body(srv, method):
    body = {"spent_time": -5, "title": 7, "nope": 1, "created_at": "2020-01-01T00:00:00Z"}
    assert_problem(srv.request(method, "/tasks/999", json=body), 404, "not_found")


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_with_a_non_integer_id_is_404(shared, method):
    assert_problem(shared.request(method, "/tasks/abc", json={"title": "y"}), 404)


def test_invalid_update_is_422_and_changes_nothing(shared):
    j = create(shared, {"title": "keep", "spent_time": 3})
    r = shared.request("PATCH", f"/tasks/{j['id']}", json={"spent_time": -1, "title": "changed"})
    p = assert_problem(r, 422, "validation_failed")
    assert "spent_time" in field_errors(p)
    assert shared.get(f"/tasks/{j['id']}").json() == j


def test_delete_is_204_then_404(shared):
    with creates(shared, 1):
        a = create(shared, {"title": "doomed"})
        b = create(shared, {"title": "kept"})
        r = shared.request("DELETE", f"/tasks/{a['id']}")
        assert r.status_code == 204
        assert r.content == b""
        assert_problem(shared.get(f"/tasks/{a['id']}"), 404, "not_found")
        assert_problem(shared.request("DELETE", f"/tasks/{a['id']}"), 404, "not_found")
        assert shared.get(f"/tasks/{b['id']}").json() == b


def test_delete_missing_is_404(srv):
    assert_problem(srv.request("DELETE", "/tasks/1"), 404, "not_found")
    assert_problem(srv.request("DELETE", "/tasks/abc"), 404)


def test_deleted_row_is_gone_from_index(srv):
    a = create(srv, {"title": "a"})
    create(srv, {"title": "b"})
    assert srv.request("DELETE", f"/tasks/{a['id']}").status_code == 204
    assert [o["title"] for o in data_of(srv.get("/tasks"))] == ["b"]


def test_wrong_method_on_an_item_is_405(shared):
    j = create(shared, {"title": "x"})
    r = shared.request("POST", f"/tasks/{j['id']}", json={"title": "y"})
    assert_problem(r, 405)
    assert {"GET", "PUT", "PATCH", "DELETE"} <= allow_of(r)
    assert "POST" not in allow_of(r)


def test_wrong_method_on_the_collection_is_405(shared):
    for method in ("DELETE", "PUT", "PATCH"):
        r = shared.request(method, "/tasks")
        assert_problem(r, 405)
        assert {"GET", "POST"} <= allow_of(r)
        assert method not in allow_of(r)


# ---------------------------------------------------------------- bulk create


def test_bulk_create_answers_201_with_a_list(shared):
    rows = [{"title": "b1", "spent_time": 1}, {"title": "b2", "is_completed": True}, {"title": "b3"}]
    with creates(shared, 3):
        r = shared.request("POST", "/tasks", json=rows)
    assert r.status_code == 201, r.text
    body = r.json()
    assert set(body) == {"data"}
    data = body["data"]
    assert [o["title"] for o in data] == ["b1", "b2", "b3"]
    assert [o["spent_time"] for o in data] == [1, 0, 0]
    assert [o["is_completed"] for o in data] == [False, True, False]
    ids = [o["id"] for o in data]
    assert len(set(ids)) == 3 and all(isinstance(i, int) for i in ids)
    for o in data:
        assert set(o) == TASK_KEYS
        assert shared.get(f"/tasks/{o['id']}").json() == o


@pytest.mark.parametrize("bad_at", [0, 1, 2])
def test_bulk_create_is_all_or_nothing(srv, bad_at):
    create(srv, {"title": "existing"})
    rows = [{"title": "r0"}, {"title": "r1"}, {"title": "r2"}]
    rows[bad_at] = {"title": "bad", "spent_time": -3}
    r = srv.request("POST", "/tasks", json=rows)
    assert_problem(r, 422)
    assert total(srv) == 1
    assert [o["title"] for o in data_of(srv.get("/tasks"))] == ["existing"]


def test_bulk_create_missing_required_rolls_back(shared):
    with creates(shared, 0):
        r = shared.request("POST", "/tasks", json=[{"title": "ok"}, {"spent_time": 4}])
    assert_problem(r, 422)


def test_bulk_create_unknown_key_rolls_back(shared):
    with creates(shared, 0):
        r = shared.request("POST", "/tasks", json=[{"title": "ok"}, {"title": "x", "colour": "red"}])
    assert_problem(r, 422)


def test_bulk_create_with_a_non_object_element_creates_nothing(shared):
    with creates(shared, 0):
        r = shared.request("POST", "/tasks", json=[{"title": "ok"}, 5])
    problem_in(r, 400, 422)


def test_bulk_then_single_ids_keep_growing(shared):
    r = shared.request("POST", "/tasks", json=[{"title": "a"}, {"title": "b"}])
    ids = [o["id"] for o in r.json()["data"]]
    j = create(shared, {"title": "c"})
    assert j["id"] > max(ids)


def test_content_is_persisted_in_the_sqlite_file(srv):
    j = create(srv, {"title": "on disk", "spent_time": 42})
    con = sqlite3.connect(srv.dir / "app.db")
    try:
        row = con.execute("SELECT title, spent_time FROM tasks WHERE id = ?", (j["id"],)).fetchone()
    finally:
        con.close()
    assert row == ("on disk", 42)


def test_raw_body_create(shared):
    r = post_raw(shared, "/tasks", '{"title":"raw"}', "application/json; charset=utf-8")
    assert r.status_code == 201, r.text
    assert r.json()["title"] == "raw"


# ---------------------------------------------------------------- foreign keys and rules of the database

# Tables made by startup_sql with a foreign key and a trigger; the models
# serve them (their columns are the models' fields).
RELATED_APP = """\
database: sqlite:rel.db
startup_sql:
""" + on_store(sqlite="""\
  - CREATE TABLE IF NOT EXISTS projects (id INTEGER PRIMARY KEY, name TEXT NOT NULL)
  - CREATE TABLE IF NOT EXISTS tasks (id INTEGER PRIMARY KEY, title TEXT NOT NULL,
      project_id INTEGER REFERENCES projects(id), owner_id INTEGER REFERENCES projects)
""", postgres="""\
  - CREATE TABLE IF NOT EXISTS projects (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, name text NOT NULL)
  - CREATE TABLE IF NOT EXISTS tasks (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, title text NOT NULL,
      project_id bigint REFERENCES projects(id), owner_id bigint REFERENCES projects)
""") + SESSIONS_RULE_SQL + on_store(sqlite="""\
  - CREATE TRIGGER IF NOT EXISTS sessions_no_huge BEFORE INSERT ON sessions WHEN new.used_quota > 1000
      BEGIN SELECT RAISE(ABORT, 'quota too large'); END
  - INSERT OR IGNORE INTO projects (id, name) VALUES (1, 'crest'), (2, 'other')
""", postgres="""\
  - CREATE OR REPLACE FUNCTION sessions_no_huge() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      IF new.used_quota > 1000 THEN RAISE EXCEPTION 'quota too large'; END IF; RETURN new; END $$
  - CREATE OR REPLACE TRIGGER sessions_no_huge BEFORE INSERT ON sessions FOR EACH ROW EXECUTE FUNCTION sessions_no_huge()
  - INSERT INTO projects (name) SELECT v FROM (VALUES ('crest'), ('other')) AS t(v) WHERE NOT EXISTS (SELECT 1 FROM projects)
""") + """\
models:
  Project:
    table: projects
    fields:
      name: {type: string, required: true}
  Task:
    table: tasks
    fields:
      title: {type: string, required: true}
      project_id: {type: int}
      owner_id: {type: int}
  Session:
    table: sessions
    fields:
      used_quota: {type: int, default: 0}
modules:
  projects: {model: Project}
  tasks: {model: Task}
  sessions: {model: Session}
"""


@pytest.fixture
def rel(crest):
    return crest(RELATED_APP)


def count_rows(s, table):
    return db_rows(s, "rel.db", f"SELECT count(*) FROM {table}")[0][0]


def test_foreign_keys_are_enforced_a_create_naming_a_missing_row_is_422_naming_the_field(rel):
    r = rel.request("POST", "/tasks", json={"title": "orphan", "project_id": 99})
    p = assert_problem(r, 422, "missing_reference")
    assert p["errors"] == {"project_id": "no projects row with this id"}
    assert count_rows(rel, "tasks") == 0
    # A key without a column names the parent's primary key; null refers to nothing.
    r = rel.request("POST", "/tasks", json={"title": "t", "project_id": 1, "owner_id": 7})
    assert assert_problem(r, 422, "missing_reference")["errors"] == {"owner_id": "no projects row with this id"}
    r = rel.request("POST", "/tasks", json={"title": "ok", "project_id": 1, "owner_id": None})
    assert r.status_code == 201, r.text


def test_foreign_keys_are_enforced_on_update_and_in_bulk_creates(rel):
    r = rel.request("POST", "/tasks", json={"title": "t", "project_id": 1})
    assert r.status_code == 201, r.text
    tid = r.json()["id"]
    r = rel.request("PATCH", f"/tasks/{tid}", json={"project_id": 42, "owner_id": 2})
    assert assert_problem(r, 422, "missing_reference")["errors"] == {"project_id": "no projects row with this id"}
    assert rel.get(f"/tasks/{tid}").json()["project_id"] == 1
    r = rel.request("POST", "/tasks", json=[{"title": "a", "project_id": 2}, {"title": "b", "project_id": 5}])
    assert assert_problem(r, 422, "missing_reference")["errors"] == {"[1].project_id": "no projects row with this id"}
    assert count_rows(rel, "tasks") == 1  # all or nothing


def test_deleting_a_row_others_refer_to_is_409(rel):
    r = rel.request("POST", "/tasks", json={"title": "t", "project_id": 1})
    assert r.status_code == 201, r.text
    assert_problem(rel.request("DELETE", "/projects/1"), 409, "still_referenced")
    assert rel.get("/projects/1").status_code == 200
    assert rel.request("DELETE", f"/tasks/{r.json()['id']}").status_code == 204
    assert rel.request("DELETE", "/projects/1").status_code == 204


# A unique key PostgreSQL checks only when the transaction commits.
DEFERRED_KEY_APP = """\
database: sqlite:deferred.db
startup_sql:
  - CREATE TABLE IF NOT EXISTS codes (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, code text NOT NULL,
      CONSTRAINT codes_code_key UNIQUE (code) DEFERRABLE INITIALLY DEFERRED)
models:
  Code:
    table: codes
    fields:
      code: {type: string, required: true}
modules:
  codes: {model: Code}
"""


def test_a_unique_key_checked_at_commit_is_409_not_a_500_durability_failure_postgres(crest):
    """A write whose COMMIT failed was answered 500 "the write could not be
    made durable" (SQLite's failed fsync) whatever the failure: a deferred key
    taken is the key's 409, as an immediate one is (a connection lost at the
    commit: 503, as anywhere else)."""
    s = crest(DEFERRED_KEY_APP)
    assert s.request("POST", "/codes", json={"code": "a"}).status_code == 201
    p = assert_problem(s.request("POST", "/codes", json={"code": "a"}), 409, "conflict")
    assert p["errors"] == {"code": "is already taken"}
    assert db_rows(s, "deferred.db", "SELECT count(*) FROM codes")[0][0] == 1


def test_a_trigger_raising_crest_status_answers_that_status_and_detail(rel):
    r = rel.request("POST", "/sessions", json={"used_quota": 5})
    assert r.status_code == 201, r.text
    sid = r.json()["id"]
    p = assert_problem(rel.request("DELETE", f"/sessions/{sid}"), 400, "raised")
    assert p["detail"] == "Cannot delete a session with used quota"
    assert "errors" not in p
    assert count_rows(rel, "sessions") == 1
    r = rel.request("POST", "/sessions", json={})
    assert r.status_code == 201, r.text
    assert rel.request("DELETE", f"/sessions/{r.json()['id']}").status_code == 204


def test_a_trigger_raising_a_plain_message_stays_the_generic_422(rel):
    p = assert_problem(rel.request("POST", "/sessions", json={"used_quota": 5000}), 422, "constraint_violated")
    assert p["detail"] == "the values break a rule of the table"
    assert count_rows(rel, "sessions") == 0
