"""The tasks_c example: the Tasks API written in C on the public API — a model,
a REST module with C callbacks (computed field, hooks, scope, pipeline, meta)
and a custom archive endpoint beside it; on both stores (conftest's STORE: its
--db is then a database of the cluster).

Environment: CREST_TASKS_C (the program); by default it sits beside hello in
the build tree of CREST_BIN: <dir of CREST_BIN>/examples/tasks_c (or, when that
path is the example's CMake build directory, the program inside it)."""
import json
import os

import pytest

import conftest
from conftest import CREST_BIN, STORE, Server, _abs, _require, assert_problem, on_store
from rest_apps import CURSOR


def _default_tasks_c():
    if not CREST_BIN:
        return ""
    return os.path.join(os.path.dirname(CREST_BIN), "examples", "tasks_c")


CREST_TASKS_C = _abs(os.environ.get("CREST_TASKS_C", "")) or _default_tasks_c()

SERVED = {"id", "title", "is_completed", "spent_time", "created_at", "owner", "hours", "minutes"}
SEEDED = [("Write the README", True, 5400), ("Ship crest", False, 1800)]


@pytest.fixture
def tasks_c(store_dbs, servers, tmp_path):
    """tasks_c(db_path=None, workers=1, env=None, args=()) -> Server running the example on the SQLite
    file db_path or (STORE postgres) the database of the cluster its name stands for."""
    _require(CREST_TASKS_C, "CREST_TASKS_C")

    def start(db_path=None, workers=1, env=None, args=()):
        if db_path is None:
            db_path = tmp_path / "tasks_c.db"
        db = str(db_path)
        if STORE == "postgres":
            db = store_dbs.uri(db)
            conftest.store_dbs_of[0] = store_dbs
        argv = [CREST_TASKS_C, "--listen", "127.0.0.1:0", "--workers", str(workers), "--db", db]
        argv += list(args)
        s = servers.add(Server(argv, cwd=str(tmp_path), env=env))
        s.db_path = db_path
        s.wait_listening()
        return s

    return start


@pytest.fixture
def s(tasks_c):
    return tasks_c()


def as_user(user):
    return {"X-User": user} if user else {}


def create(s, user=None, **body):
    r = s.request("POST", "/tasks", json=body, headers=as_user(user))
    assert r.status_code == 201, r.text
    return r.json()


def ids(r):
    assert r.status_code == 200, r.text
    return [o["id"] for o in r.json()["data"]]


def db_rows(s):
    """{id: (owner, is_deleted)} as stored (is_deleted: SQLite's 0/1, PostgreSQL's booleans, equal in Python)."""
    return {i: (owner, deleted) for i, owner, deleted in
            conftest.db_rows(s, str(s.db_path), "SELECT id, owner, is_deleted FROM tasks ORDER BY id")}


def q(obj):
    return json.dumps(obj, separators=(",", ":"))


# ---------------------------------------------------------------- routes


def test_seed_rows_on_a_new_database(s):
    r = s.get("/tasks")
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert [(o["title"], o["is_completed"], o["spent_time"]) for o in data] == SEEDED[::-1]  # default_sort: -id
    for o in data:
        assert set(o) == SERVED
        assert o["owner"] == "anonymous"
        assert o["created_at"].endswith("Z")


def test_seed_only_when_the_table_is_created(tasks_c, tmp_path):
    db = tmp_path / "again.db"
    s1 = tasks_c(db)
    create(s1, title="third")
    assert s1.stop() == 0
    s2 = tasks_c(db)
    assert len(ids(s2.get("/tasks"))) == 3


def test_every_route(s):
    t = create(s, title="route", spent_time=60)
    i = t["id"]
    assert s.get(f"/tasks/{i}").json() == t
    r = s.request("PUT", f"/tasks/{i}", json={"title": "put", "is_completed": True})
    assert r.status_code == 200, r.text
    assert (r.json()["title"], r.json()["is_completed"]) == ("put", True)
    r = s.request("PATCH", f"/tasks/{i}", json={"spent_time": 120})
    assert r.status_code == 200, r.text
    assert (r.json()["title"], r.json()["spent_time"]) == ("put", 120)
    r = s.get("/tasks/sample", params={"page_size": 2})
    assert r.status_code == 200, r.text
    assert len(r.json()["data"]) == 2
    r = s.get("/tasks/group/is_completed")
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"value": False, "count": 1}, {"value": True, "count": 2}]
    r = s.get("/tasks/stats", params={"fields": "spent_time"})
    assert r.status_code == 200, r.text
    st = r.json()["spent_time"]
    assert (st["min"], st["max"]) == (120, 5400)
    assert st["avg"] == pytest.approx((120 + 5400 + 1800) / 3)
    r = s.get("/tasks/eval", params={"q": q({"functions": [{"name": "count"},
                                                             {"name": "sum", "field": "spent_time"}]})})
    assert r.status_code == 200, r.text
    assert r.json() == {"count": 3, "sum__spent_time": 5400 + 1800 + 120}
    r = s.request("DELETE", f"/tasks/{i}")
    assert r.status_code == 204, r.text
    assert_problem(s.get(f"/tasks/{i}"), 404, "not_found")
    r = s.request("POST", f"/tasks/{t['id'] - 1}/archive")  # seeded "Ship crest": not finished
    assert_problem(r, 400, "business_rule")


def test_index_query_options(s):
    for n in range(3):
        create(s, title=f"t{n}", spent_time=100 * n)
    r = s.get("/tasks", params={"where": q({"spent_time": {"$lt": 150}}), "sort_by": "spent_time"})
    assert [o["title"] for o in r.json()["data"]] == ["t0", "t1"]
    assert_problem(s.get("/tasks", params={"sort_by": "is_completed"}), 400, "invalid_parameter")
    r = s.get("/tasks", params={"page_size": 1000})
    assert len(r.json()["data"]) == 5  # page_size above max (50) is max


def test_model_validation(s):
    p = assert_problem(s.request("POST", "/tasks", json={"spent_time": 1}), 422, "validation_failed")
    assert "title" in p["errors"]
    p = assert_problem(s.request("POST", "/tasks", json={"title": "x" * 201}), 422, "validation_failed")
    assert "title" in p["errors"]
    p = assert_problem(s.request("POST", "/tasks", json={"title": "x", "spent_time": -1}), 422)
    assert "spent_time" in p["errors"]
    p = assert_problem(s.request("POST", "/tasks", json={"title": "x", "created_at": "2020-01-01T00:00:00Z"}), 422)
    assert "created_at" in p["errors"]
    assert len(ids(s.get("/tasks"))) == 2


# ---------------------------------------------------------------- serializer


@pytest.mark.parametrize("spent,hours,minutes", [(0, 0.0, 0), (90, 0.025, 1), (5400, 1.5, 90), (7259, 7259 / 3600, 120)])
def test_computed_fields(s, spent, hours, minutes):
    t = create(s, title="c", spent_time=spent)
    assert t["hours"] == pytest.approx(hours)
    assert isinstance(t["hours"], float)
    assert t["minutes"] == minutes and isinstance(t["minutes"], int)  # spent_time / 60 in SQL: integer division
    assert s.get(f"/tasks/{t['id']}").json() == t
    listed = [o for o in s.get("/tasks").json()["data"] if o["id"] == t["id"]]
    assert listed == [t]


def test_computed_fields_follow_updates(s):
    t = create(s, title="c", spent_time=60)
    r = s.request("PATCH", f"/tasks/{t['id']}", json={"spent_time": 3600})
    assert (r.json()["hours"], r.json()["minutes"]) == (1.0, 60)


def test_computed_fields_are_not_writable(s):
    p = assert_problem(s.request("POST", "/tasks", json={"title": "x", "hours": 3}), 422)
    assert "hours" in p["errors"]


# ---------------------------------------------------------------- hooks


def test_before_create_sets_owner_from_header(s):
    assert create(s, "alice", title="mine")["owner"] == "alice"
    assert create(s, title="nobody's")["owner"] == "anonymous"
    assert create(s, "", title="empty header")["owner"] == "anonymous"


def test_owner_is_read_only(s):
    for method, path in (("POST", "/tasks"), ("PATCH", "/tasks/1"), ("PUT", "/tasks/1")):
        p = assert_problem(s.request(method, path, json={"title": "x", "owner": "mallory"}), 422, "validation_failed")
        assert p["errors"].get("owner"), p
    assert {o["owner"] for o in s.get("/tasks").json()["data"]} == {"anonymous"}


def test_bulk_create_runs_the_hook_for_every_row(s):
    r = s.request("POST", "/tasks", json=[{"title": "a"}, {"title": "b"}], headers=as_user("bob"))
    assert r.status_code == 201, r.text
    assert [o["owner"] for o in r.json()["data"]] == ["bob", "bob"]
    r = s.request("POST", "/tasks", json=[{"title": "ok"}, {"title": "forbidden one"}])
    p = assert_problem(r, 422, "validation_failed")
    assert "title" in p["errors"]
    assert len(ids(s.get("/tasks"))) == 4  # nothing of the refused list


@pytest.mark.parametrize("title", ["forbidden", "forbidden fruit", "forbiddenness"])
def test_forbidden_title_is_refused(s, title):
    p = assert_problem(s.request("POST", "/tasks", json={"title": title}), 422, "validation_failed")
    assert set(p["errors"]) == {"title"}
    assert "forbidden" in p["errors"]["title"]
    assert len(ids(s.get("/tasks"))) == 2
    p = assert_problem(s.request("PATCH", "/tasks/1", json={"title": title}), 422, "validation_failed")
    assert set(p["errors"]) == {"title"}
    assert s.get("/tasks/1").json()["title"] == "Write the README"


def test_titles_like_forbidden_are_fine(s):
    for title in ("Forbidden", "not forbidden", "forbidde"):
        assert create(s, title=title)["title"] == title


# ---------------------------------------------------------------- scope


def test_scope_hides_other_users_rows(s):
    a = create(s, "alice", title="alice's", is_completed=True, spent_time=100)
    b = create(s, "bob", title="bob's", spent_time=200)
    alice = as_user("alice")
    i = b["id"]
    assert_problem(s.get(f"/tasks/{i}", headers=alice), 404, "not_found")
    assert_problem(s.request("PUT", f"/tasks/{i}", json={"title": "hijacked"}, headers=alice), 404)
    assert_problem(s.request("PATCH", f"/tasks/{i}", json={"title": "hijacked"}, headers=alice), 404)
    assert_problem(s.request("DELETE", f"/tasks/{i}", headers=alice), 404)
    assert_problem(s.request("POST", f"/tasks/{i}/archive", headers=alice), 404)
    assert s.get(f"/tasks/{i}", headers=as_user("bob")).json() == b  # untouched

    r = s.get("/tasks", headers=alice)
    assert ids(r) == [a["id"]]
    assert r.json()["meta"]["total_objects"] == 1
    assert ids(s.get("/tasks/sample", headers=alice)) == [a["id"]]
    assert s.get("/tasks/group/is_completed", headers=alice).json()["data"] == [{"value": True, "count": 1}]
    assert s.get("/tasks/group/owner", headers=alice).json()["data"] == [{"value": "alice", "count": 1}]
    st = s.get("/tasks/stats", params={"fields": "spent_time"}, headers=alice).json()["spent_time"]
    assert (st["min"], st["max"], st["avg"]) == (100, 100, 100)
    r = s.get("/tasks/eval", params={"q": q({"functions": [{"name": "count"}, {"name": "sum", "field": "spent_time"}]})},
              headers=alice)
    assert r.json() == {"count": 1, "sum__spent_time": 100}
    # A where cannot reach around the scope.
    r = s.get("/tasks", params={"where": q({"owner": "bob"})}, headers=alice)
    assert ids(r) == []


def test_without_user_every_row_is_visible(s):
    a = create(s, "alice", title="alice's")
    b = create(s, "bob", title="bob's")
    assert set(ids(s.get("/tasks"))) == {1, 2, a["id"], b["id"]}
    assert s.get(f"/tasks/{a['id']}").status_code == 200
    r = s.get("/tasks/group/owner")
    assert r.json()["data"] == [{"value": "alice", "count": 1}, {"value": "anonymous", "count": 2},
                                {"value": "bob", "count": 1}]


def test_seeded_rows_belong_to_anonymous(s):
    assert ids(s.get("/tasks", headers=as_user("anonymous"))) == [2, 1]
    assert ids(s.get("/tasks", headers=as_user("carol"))) == []


def test_own_rows_can_be_changed_and_deleted(s):
    t = create(s, "alice", title="mine")
    alice = as_user("alice")
    r = s.request("PATCH", f"/tasks/{t['id']}", json={"is_completed": True}, headers=alice)
    assert r.status_code == 200, r.text
    assert r.json()["owner"] == "alice"
    assert s.request("DELETE", f"/tasks/{t['id']}", headers=alice).status_code == 204
    assert t["id"] not in db_rows(s)


def test_user_header_that_is_not_utf8(s):
    """RFC 9110 5.5 lets a field value carry obs-text (bytes 0x80-0xFF), so
    the HTTP layer passes it on; the example's scope callback, which needs
    UTF-8 text for its JSON filter, answers 400 invalid_header."""
    with s.raw() as c:
        c.send(b"GET /tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nX-User: \xff\xfe\r\n\r\n")
        r = c.read_response()
    p = assert_problem(r, 400, "invalid_header")
    assert "UTF-8" in p["detail"]


# ---------------------------------------------------------------- archive


def test_archive_needs_a_finished_task(s):
    t = create(s, title="open")
    p = assert_problem(s.request("POST", f"/tasks/{t['id']}/archive"), 400, "business_rule")
    assert "finished" in p["detail"]
    assert s.get(f"/tasks/{t['id']}").status_code == 200
    assert db_rows(s)[t["id"]][1] == 0


def test_archive_hides_the_row_from_the_module(s):
    t = create(s, title="done", is_completed=True, spent_time=1000)
    i = t["id"]
    r = s.request("POST", f"/tasks/{i}/archive")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json() == {"archived": i}
    assert db_rows(s)[i] == ("anonymous", 1)  # still stored: a soft delete
    assert_problem(s.request("POST", f"/tasks/{i}/archive"), 404, "not_found")
    assert_problem(s.get(f"/tasks/{i}"), 404, "not_found")
    assert_problem(s.request("PATCH", f"/tasks/{i}", json={"title": "back"}), 404)
    assert_problem(s.request("PUT", f"/tasks/{i}", json={"title": "back"}), 404)
    assert_problem(s.request("DELETE", f"/tasks/{i}"), 404)
    r = s.get("/tasks")
    assert i not in ids(r)
    assert r.json()["meta"]["total_objects"] == 2
    assert i not in ids(s.get("/tasks/sample", params={"page_size": 50}))
    assert s.get("/tasks/group/is_completed").json()["data"] == [{"value": False, "count": 1},
                                                                 {"value": True, "count": 1}]
    assert s.get("/tasks/stats", params={"fields": "spent_time"}).json()["spent_time"]["max"] == 5400
    r = s.get("/tasks/eval", params={"q": q({"functions": [{"name": "count"}, {"name": "sum", "field": "spent_time"}]})})
    assert r.json() == {"count": 2, "sum__spent_time": 5400 + 1800}
    assert db_rows(s)[i] == ("anonymous", 1)  # the DELETE above did not reach it


def test_archive_of_a_seeded_finished_task(s):
    assert s.request("POST", "/tasks/1/archive").json() == {"archived": 1}
    assert ids(s.get("/tasks")) == [2]


def test_archive_missing_or_bad_id(s):
    assert_problem(s.request("POST", "/tasks/999/archive"), 404, "not_found")
    assert_problem(s.request("POST", "/tasks/abc/archive"), 400)
    assert_problem(s.request("GET", "/tasks/1/archive"), 405)


def test_archive_respects_the_owner(s):
    t = create(s, "alice", title="done", is_completed=True)
    assert_problem(s.request("POST", f"/tasks/{t['id']}/archive", headers=as_user("bob")), 404)
    assert db_rows(s)[t["id"]][1] == 0
    r = s.request("POST", f"/tasks/{t['id']}/archive", headers=as_user("alice"))
    assert r.json() == {"archived": t["id"]}


# ---------------------------------------------------------------- delete rule


def test_delete_refused_for_unfinished(s):
    t = create(s, title="open")
    p = assert_problem(s.request("DELETE", f"/tasks/{t['id']}"), 400, "business_rule")
    assert "finished" in p["detail"]
    assert s.get(f"/tasks/{t['id']}").json() == t
    assert_problem(s.request("DELETE", "/tasks/2"), 400, "business_rule")  # seeded, not finished


def test_delete_finished(s):
    t = create(s, title="done", is_completed=True)
    r = s.request("DELETE", f"/tasks/{t['id']}")
    assert r.status_code == 204
    assert r.content == b""
    assert t["id"] not in db_rows(s)  # a real delete
    assert_problem(s.request("DELETE", f"/tasks/{t['id']}"), 404, "not_found")
    assert_problem(s.request("DELETE", "/tasks/999"), 404, "not_found")


def test_delete_after_finishing(s):
    t = create(s, title="later")
    assert_problem(s.request("DELETE", f"/tasks/{t['id']}"), 400, "business_rule")
    s.request("PATCH", f"/tasks/{t['id']}", json={"is_completed": True})
    assert s.request("DELETE", f"/tasks/{t['id']}").status_code == 204


# ---------------------------------------------------------------- pipeline and meta


def test_pipeline_header_on_module_routes(s):
    t = create(s, title="h", is_completed=True)
    i = t["id"]
    calls = [
        ("GET", "/tasks", None, 200), ("GET", f"/tasks/{i}", None, 200),
        ("POST", "/tasks", {"title": "x"}, 201), ("PUT", f"/tasks/{i}", {"title": "y"}, 200),
        ("PATCH", f"/tasks/{i}", {"title": "z"}, 200), ("GET", "/tasks/sample", None, 200),
        ("GET", "/tasks/group/is_completed", None, 200), ("GET", "/tasks/stats?fields=spent_time", None, 200),
        ("GET", "/tasks/eval", None, 200), ("GET", "/tasks/999", None, 404),
        ("POST", "/tasks", {"title": "forbidden"}, 422), ("DELETE", "/tasks/2", None, 400),
        ("DELETE", f"/tasks/{i}", None, 204), ("POST", "/tasks/1/archive", None, 200),
    ]
    for method, path, body, status in calls:
        r = s.request(method, path, json=body)
        assert r.status_code == status, (method, path, r.text)
        assert r.headers.get("x-tasks-api") == "c", (method, path, r.headers)
    assert "x-tasks-api" not in s.get("/healthz").headers


def test_meta_fn(s):
    r = s.get("/tasks")
    assert r.json()["meta"] == {"object": "list", "total_objects": 2, "has_more": False, "source": "c",
                                 "next_cursor": None}
    r = s.get("/tasks", params={"page_size": 1})
    assert r.json()["meta"] == {"object": "list", "total_objects": 2, "has_more": True, "source": "c",
                                 "next_cursor": CURSOR}
    r = s.get("/tasks", params={"page_size": 1, "page": 2})
    assert r.json()["meta"] == {"object": "list", "total_objects": 2, "has_more": False, "source": "c",
                                 "next_cursor": None}


def test_meta_fn_without_count(s):
    r = s.get("/tasks", params={"count": "none", "page_size": 1})
    assert r.json()["meta"] == {"object": "list", "has_more": True, "source": "c",
                                 "next_cursor": CURSOR}
    r = s.get("/tasks", params={"count": "none", "page_size": 2})
    assert r.json()["meta"] == {"object": "list", "has_more": False, "source": "c",
                                 "next_cursor": None}


def test_meta_fn_on_groups(s):
    assert s.get("/tasks/group/is_completed").json()["meta"]["source"] == "c"


# ---------------------------------------------------------------- is_deleted


def test_is_deleted_is_never_served(s):
    t = create(s, title="x")
    objs = [t, s.get(f"/tasks/{t['id']}").json()] + s.get("/tasks").json()["data"]
    objs += s.get("/tasks/sample").json()["data"]
    objs.append(s.request("PATCH", f"/tasks/{t['id']}", json={"title": "y"}).json())
    for o in objs:
        assert set(o) == SERVED


@pytest.mark.parametrize("method,path", [("POST", "/tasks"), ("PUT", "/tasks/2"), ("PATCH", "/tasks/2")])
def test_is_deleted_is_not_writable(s, method, path):
    for value in (True, False, 1):
        p = assert_problem(s.request(method, path, json={"title": "x", "is_deleted": value}), 422, "validation_failed")
        assert "is_deleted" in p["errors"]
    assert db_rows(s) == {1: ("anonymous", 0), 2: ("anonymous", 0)}


def test_is_deleted_cannot_be_queried(s):
    assert_problem(s.get("/tasks", params={"where": q({"is_deleted": True})}), 400, "invalid_parameter")
    assert_problem(s.get("/tasks", params={"sort_by": "is_deleted"}), 400, "invalid_parameter")
    assert_problem(s.get("/tasks/group/is_deleted"), 400, "invalid_parameter")
    assert_problem(s.get("/tasks/stats", params={"fields": "is_deleted"}), 400, "invalid_parameter")
    r = s.get("/tasks/eval", params={"q": q({"functions": [{"name": "count", "field": "is_deleted"}]})})
    assert_problem(r, 400, "invalid_parameter")


# ---------------------------------------------------------------- the program


def test_crest_database_env(tmp_path, store_dbs):
    _require(CREST_TASKS_C, "CREST_TASKS_C")
    db = tmp_path / "from-env.db"
    srv = Server([CREST_TASKS_C, "--listen", "127.0.0.1:0", "--workers", "2"], cwd=str(tmp_path),
                 env={"CREST_DATABASE": on_store(sqlite=str(db), postgres=store_dbs.uri(str(db)))})
    try:
        srv.wait_listening()
        assert srv.workers == 2
        assert len(srv.get("/tasks").json()["data"]) == 2
    finally:
        assert srv.stop() == 0
    assert not srv.check_clean(), srv.stderr_text()
    if STORE == "postgres":
        assert store_dbs.psql(str(db), "SELECT count(*) FROM tasks").strip() == "2"
    else:
        assert db.exists()
    assert not (tmp_path / "tasks_c.db").exists()


def test_default_database_is_a_sqlite_file(tmp_path):
    _require(CREST_TASKS_C, "CREST_TASKS_C")
    srv = Server([CREST_TASKS_C, "--listen", "127.0.0.1:0", "--workers", "1"], cwd=str(tmp_path))
    try:
        srv.wait_listening()
        assert srv.get("/tasks").status_code == 200
    finally:
        assert srv.stop() == 0
    assert not srv.check_clean(), srv.stderr_text()
    assert (tmp_path / "tasks_c.db").exists()


def test_help_and_version(tmp_path):
    from conftest import run_cli
    _require(CREST_TASKS_C, "CREST_TASKS_C")
    p = run_cli([CREST_TASKS_C, "--version"], cwd=str(tmp_path))
    assert p.returncode == 0 and "0.1.0" in p.out + p.err
    p = run_cli([CREST_TASKS_C, "--help"], cwd=str(tmp_path))
    assert p.returncode == 0 and "--listen" in p.out + p.err
    assert not (tmp_path / "tasks_c.db").exists()


def test_several_workers(tasks_c):
    s = tasks_c(workers=3)
    made = [create(s, f"u{n % 2}", title=f"t{n}", is_completed=n % 3 == 0) for n in range(12)]
    assert len(ids(s.get("/tasks", params={"page_size": 50}))) == 14
    assert len(ids(s.get("/tasks", headers=as_user("u0")))) == 6
    for t in made:
        r = s.request("DELETE", f"/tasks/{t['id']}", headers=as_user(t["owner"]))
        assert r.status_code == (204 if t["is_completed"] else 400), r.text
