"""REST module options (Emmett-REST names): envelopes, meta, prefixes and paths, enabled/disabled methods,
default_sort, serializer, row scope."""
import json

import pytest

from conftest import STORE, assert_problem, db_rows
from rest_apps import (ALL_METHODS, CURSOR, OPTION_ROWS, allow_of, data_of, get_where, module_app, problem_in, seed,
                       served, title_list, titles, total)


def start(crest, opts, rows=OPTION_ROWS, name="tasks", prefix="/tasks"):
    s = crest(module_app(opts, name=name))
    s.seeded = seed(s, prefix, rows) if rows else []
    return s


# ---------------------------------------------------------------- paths


def test_url_prefix_defaults_to_the_module_name(crest):
    s = start(crest, "", name="todos", prefix="/todos")
    r = s.request("POST", "/todos", json={"title": "x"})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/todos/{r.json()['id']}"
    assert titles(s.get("/todos")) == {"a", "b", "c", "x"}
    assert s.get(f"/todos/{r.json()['id']}").json() == r.json()
    assert_problem(s.get("/tasks"), 404)


def test_nested_url_prefix(crest):
    s = start(crest, "url_prefix: /api/v1/tasks", prefix="/api/v1/tasks")
    r = s.request("POST", "/api/v1/tasks", json={"title": "x"})
    assert r.status_code == 201
    i = r.json()["id"]
    assert r.headers["location"] == f"/api/v1/tasks/{i}"
    assert s.get(f"/api/v1/tasks/{i}").json()["title"] == "x"
    assert s.request("PATCH", f"/api/v1/tasks/{i}", json={"spent_time": 5}).json()["spent_time"] == 5
    assert s.request("DELETE", f"/api/v1/tasks/{i}").status_code == 204
    assert_problem(s.get("/tasks"), 404)
    assert_problem(s.get("/tasks/1"), 404)


def test_base_path_and_id_path(crest):
    s = start(crest, """\
        url_prefix: /api
        base_path: /items
        id_path: /items/{id}
        """, prefix="/api/items")
    assert titles(s.get("/api/items")) == {"a", "b", "c"}
    r = s.request("POST", "/api/items", json={"title": "d"})
    assert r.status_code == 201, r.text
    j = r.json()
    assert r.headers["location"] == f"/api/items/{j['id']}"
    assert s.get(f"/api/items/{j['id']}").json() == j
    assert s.request("PUT", f"/api/items/{j['id']}", json={"title": "d2"}).json()["title"] == "d2"
    assert s.request("DELETE", f"/api/items/{j['id']}").status_code == 204
    assert_problem(s.get(f"/api/items/{j['id']}"), 404)
    assert_problem(s.get("/api/1"), 404)


def test_base_path_applies_to_sample_group_stats_and_eval(crest):
    # Issue 10 item 11: with base_path /list these stayed at /tasks/group/... (Emmett-REST: {base_path}/group/<field>).
    s = start(crest, """\
        base_path: /list
        enabled_methods: [index, read, create, sample, group, stats, eval]
        """, prefix="/tasks/list")
    first = s.seeded[0]
    assert titles(s.get("/tasks/list")) == {"a", "b", "c"}
    assert s.get(f"/tasks/{first['id']}").json() == first  # the id path stays under url_prefix
    r = s.get("/tasks/list/sample")
    assert r.status_code == 200, r.text
    assert len(data_of(r)) == 3
    r = s.get("/tasks/list/group/is_completed")
    assert r.status_code == 200, r.text
    assert sum(g["count"] for g in data_of(r)) == 3
    r = s.get("/tasks/list/stats", params={"fields": "spent_time"})
    assert r.status_code == 200, r.text
    assert set(r.json()) == {"spent_time"}
    r = s.get("/tasks/list/eval", params={"q": json.dumps({"functions": [{"name": "sum", "field": "spent_time"}]})})
    assert r.status_code == 200, r.text
    assert_problem(s.get("/tasks/group/is_completed"), 404)
    assert_problem(s.get("/tasks/stats", params={"fields": "spent_time"}), 404)
    assert_problem(s.get("/tasks/eval"), 404)
    # /tasks/sample is now GET /tasks/{id} with id "sample": not an integer, so no row.
    assert_problem(s.get("/tasks/sample"), 404)
    paths = s.get("/openapi.json").json()["paths"]
    for p in ("/tasks/list/sample", "/tasks/list/group/{field}", "/tasks/list/stats", "/tasks/list/eval"):
        assert "get" in paths[p], sorted(paths)
    for p in ("/tasks/sample", "/tasks/group/{field}", "/tasks/stats", "/tasks/eval"):
        assert p not in paths


def test_custom_id_path(crest):
    s = start(crest, "id_path: /item/{id}")
    first = s.seeded[0]
    assert s.get(f"/tasks/item/{first['id']}").json() == first
    r = s.request("POST", "/tasks", json={"title": "d"})
    assert r.headers["location"] == f"/tasks/item/{r.json()['id']}"
    assert s.request("PATCH", f"/tasks/item/{first['id']}", json={"spent_time": 1}).status_code == 200
    assert_problem(s.get(f"/tasks/{first['id']}"), 404)
    assert_problem(s.get("/tasks/item/abc"), 404)


def test_two_modules_side_by_side(crest):
    text = module_app("url_prefix: /one") + "  other:\n    model: Task\n    url_prefix: /two\n    page_size: {default: 1}\n"
    s = crest(text)
    seed(s, "/one", OPTION_ROWS)
    assert titles(s.get("/one")) == {"a", "b", "c"}
    assert title_list(s.get("/two")) == ["a"]  # same table, the other module's page size


# ---------------------------------------------------------------- methods


def test_default_methods_are_the_crud_five(crest):
    s = start(crest, "")
    i = s.seeded[0]["id"]
    assert s.get("/tasks").status_code == 200
    assert s.get(f"/tasks/{i}").status_code == 200
    assert s.request("PATCH", f"/tasks/{i}", json={"spent_time": 1}).status_code == 200
    assert s.request("PUT", f"/tasks/{i}", json={"spent_time": 2}).status_code == 200
    assert s.request("DELETE", f"/tasks/{i}").status_code == 204
    for path, params in (("/tasks/sample", {}), ("/tasks/group/is_completed", {}),
                         ("/tasks/stats", {"fields": "spent_time"}),
                         ("/tasks/eval", {"q": json.dumps({"functions": [{"name": "count"}]})})):
        assert_problem(s.get(path, params=params), 404)


def test_every_method_enabled(crest):
    s = start(crest, f"enabled_methods: {ALL_METHODS}")
    assert len(data_of(s.get("/tasks/sample"))) == 3
    assert s.get("/tasks/group/is_completed").status_code == 200
    assert s.get("/tasks/stats", params={"fields": "spent_time"}).json()["spent_time"]["max"] == 3600
    q = json.dumps({"functions": [{"name": "count"}]})
    assert s.get("/tasks/eval", params={"q": q}).json() == {"count": 3}


def test_disabled_delete_is_405(crest):
    s = start(crest, "disabled_methods: [delete]")
    i = s.seeded[0]["id"]
    r = s.request("DELETE", f"/tasks/{i}")
    assert_problem(r, 405)
    assert "GET" in allow_of(r) and "DELETE" not in allow_of(r)
    assert s.get(f"/tasks/{i}").status_code == 200
    assert total(s) == 3


def test_disabled_create_is_405(crest):
    s = crest(module_app("disabled_methods: [create]"))
    r = s.request("POST", "/tasks", json={"title": "x"})
    assert_problem(r, 405)
    assert "GET" in allow_of(r) and "POST" not in allow_of(r)
    assert total(s) == 0


def test_disabled_update_is_405_for_put_and_patch(crest):
    s = start(crest, "disabled_methods: [update]")
    i = s.seeded[0]["id"]
    for method in ("PUT", "PATCH"):
        r = s.request(method, f"/tasks/{i}", json={"title": "x"})
        assert_problem(r, 405)
        assert {"GET", "DELETE"} <= allow_of(r) and method not in allow_of(r)
    assert s.get(f"/tasks/{i}").json() == s.seeded[0]


def test_read_only_module(crest):
    s = crest(module_app("enabled_methods: [index, read]"))
    assert s.get("/tasks").json()["data"] == []
    assert_problem(s.get("/tasks/1"), 404)
    r = s.request("POST", "/tasks", json={"title": "x"})
    assert_problem(r, 405)
    assert allow_of(r) >= {"GET"}
    for method in ("PUT", "PATCH", "DELETE"):
        r = s.request(method, "/tasks/1", json={"title": "x"})
        assert_problem(r, 405)
        assert "GET" in allow_of(r)


def test_create_only_module(crest):
    s = crest(module_app("enabled_methods: [create]"))
    r = s.request("POST", "/tasks", json={"title": "x"})
    assert r.status_code == 201, r.text
    i = r.json()["id"]
    r = s.get("/tasks")
    assert_problem(r, 405)
    assert "POST" in allow_of(r)
    # no item route at all
    assert_problem(s.get(f"/tasks/{i}"), 404)
    assert_problem(s.request("DELETE", f"/tasks/{i}"), 404)


def test_sample_without_read(crest):
    s = start(crest, "enabled_methods: [index, create, sample]")
    assert len(data_of(s.get("/tasks/sample"))) == 3
    assert_problem(s.get(f"/tasks/{s.seeded[0]['id']}"), 404)


# ---------------------------------------------------------------- envelopes and meta


def test_list_envelope(crest):
    s = start(crest, f"list_envelope: items\nenabled_methods: {ALL_METHODS}")
    body = s.get("/tasks").json()
    assert set(body) == {"items", "meta"}
    assert [o["title"] for o in body["items"]] == ["a", "b", "c"]
    assert body["meta"] == {"object": "list", "total_objects": 3, "has_more": False, "next_cursor": None}
    assert set(s.get("/tasks/sample").json()) == {"items", "meta"}


def test_meta_envelope(crest):
    s = start(crest, "meta_envelope: pagination")
    body = s.get("/tasks", params={"page_size": 2}).json()
    assert set(body) == {"data", "pagination"}
    assert body["pagination"] == {"object": "list", "total_objects": 3, "has_more": True, "next_cursor": CURSOR}


def test_serialize_meta_false(crest):
    s = start(crest, "serialize_meta: false")
    body = s.get("/tasks").json()
    assert set(body) == {"data"}
    assert [o["title"] for o in body["data"]] == ["a", "b", "c"]
    body = s.get("/tasks", params={"page": 2, "page_size": 2}).json()
    assert body == {"data": [s.seeded[2]]}


def test_single_envelope(crest):
    s = start(crest, "single_envelope: task")
    first = s.seeded[0]
    assert set(first) == {"task"}  # create answered {"task": {...}}
    obj = first["task"]
    assert obj["title"] == "a" and isinstance(obj["id"], int)
    r = s.get(f"/tasks/{obj['id']}")
    assert r.json() == {"task": obj}
    r = s.request("PATCH", f"/tasks/{obj['id']}", json={"spent_time": 7})
    assert r.json() == {"task": dict(obj, spent_time=7)}
    # lists keep their list envelope, objects in it are bare
    assert s.get("/tasks").json()["data"][0] == dict(obj, spent_time=7)
    assert_problem(s.get("/tasks/999"), 404)


def test_use_envelope_on_parse(crest):
    s = crest(module_app("single_envelope: task\nuse_envelope_on_parse: true"))
    r = s.request("POST", "/tasks", json={"task": {"title": "wrapped", "spent_time": 3}})
    assert r.status_code == 201, r.text
    obj = r.json()["task"]
    assert obj["title"] == "wrapped" and obj["spent_time"] == 3
    r = s.request("PATCH", f"/tasks/{obj['id']}", json={"task": {"spent_time": 4}})
    assert r.status_code == 200, r.text
    assert r.json() == {"task": dict(obj, spent_time=4)}
    # a bare body is refused
    problem_in(s.request("POST", "/tasks", json={"title": "bare"}), 400, 422)
    problem_in(s.request("PATCH", f"/tasks/{obj['id']}", json={"spent_time": 5}), 400, 422)
    assert total(s) == 1
    assert s.get(f"/tasks/{obj['id']}").json()["task"]["spent_time"] == 4


def test_use_envelope_on_parse_validates_inside_the_envelope(crest):
    s = crest(module_app("single_envelope: task\nuse_envelope_on_parse: true"))
    p = assert_problem(s.request("POST", "/tasks", json={"task": {"spent_time": -1}}), 422)
    assert "spent_time" in json.dumps(p) and "title" in json.dumps(p)
    assert total(s) == 0


def test_groups_envelope(crest):
    s = start(crest, f"groups_envelope: groups\nenabled_methods: {ALL_METHODS}")
    body = s.get("/tasks/group/is_completed").json()
    assert "groups" in body and "data" not in body
    assert {g["value"]: g["count"] for g in body["groups"]} == {False: 2, True: 1}


# ---------------------------------------------------------------- default_sort


def test_default_sort_descending_id(crest):
    s = start(crest, "default_sort: -id")
    assert title_list(s.get("/tasks")) == ["c", "b", "a"]
    assert title_list(s.get("/tasks", params={"sort_by": "id"})) == ["a", "b", "c"]


def test_default_sort_on_a_field(crest):
    s = start(crest, "default_sort: -spent_time")
    assert title_list(s.get("/tasks")) == ["b", "a", "c"]
    assert title_list(s.get("/tasks", params={"page_size": 1, "page": 2})) == ["a"]


# ---------------------------------------------------------------- serializer


def test_serializer_attributes(crest):
    s = start(crest, "serializer: {attributes: [id, title]}")
    for o in s.seeded:
        assert set(o) == {"id", "title"}
    assert s.get(f"/tasks/{s.seeded[0]['id']}").json() == s.seeded[0]
    assert data_of(s.get("/tasks")) == s.seeded


def test_serializer_exclude(crest):
    s = start(crest, "serializer: {exclude: [spent_time]}")
    o = s.get(f"/tasks/{s.seeded[0]['id']}").json()
    assert set(o) == {"id", "title", "is_completed"}
    assert all(set(x) == {"id", "title", "is_completed"} for x in data_of(s.get("/tasks")))


def test_serializer_include_adds_to_attributes(crest):
    s = start(crest, "serializer: {attributes: [id, title], include: [spent_time]}")
    o = s.get(f"/tasks/{s.seeded[0]['id']}").json()
    assert o == {"id": s.seeded[0]["id"], "title": "a", "spent_time": 1800}


def test_serializer_computed_field(crest):
    s = start(crest, """\
        serializer:
          computed: {hours: "spent_time / 3600.0"}
        """)
    assert s.seeded[0]["hours"] == 0.5
    o = s.get(f"/tasks/{s.seeded[1]['id']}").json()
    assert o["hours"] == 1.0 and o["spent_time"] == 3600 and o["title"] == "b"
    assert [x["hours"] for x in data_of(s.get("/tasks"))] == [0.5, 1.0, 0.0]
    r = s.request("PATCH", f"/tasks/{s.seeded[2]['id']}", json={"spent_time": 900})
    assert r.json()["hours"] == 0.25


def test_computed_field_is_not_writable(crest):
    s = start(crest, """\
        serializer:
          computed: {hours: "spent_time / 3600.0"}
        """, rows=[])
    p = assert_problem(s.request("POST", "/tasks", json={"title": "x", "hours": 2}), 422)
    assert "hours" in json.dumps(p)


# ---------------------------------------------------------------- scope


def write_behind(server, name, sql):
    """Runs sql (a write both stores take) on the server's database sqlite:NAME behind crest's back, committed
    (db_rows reads; psql commits each statement)."""
    if STORE == "postgres":
        db_rows(server, name, sql)
        return
    import sqlite3
    con = sqlite3.connect(str(server.dir / name))
    try:
        con.execute(sql)
        con.commit()
    finally:
        con.close()


SCOPE_ROWS = [
    {"title": "a", "is_completed": False, "spent_time": 1800},
    {"title": "b", "is_completed": True, "spent_time": 3600},
    {"title": "c", "is_completed": False, "spent_time": 0},
    {"title": "d", "is_completed": True, "spent_time": 600},
]


@pytest.fixture(scope="module")
def scoped(tmp_path_factory):
    app = module_app(f"""\
        url_prefix: /tasks
        enabled_methods: {ALL_METHODS}
        scope: {{is_completed: false}}
        """)
    yield from served(tmp_path_factory, app, SCOPE_ROWS, name="scoped")


def outside(s):
    return [o["id"] for o in s.seeded if o.get("is_completed") is True] or pytest.fail(f"bad seed {s.seeded}")


def test_scope_filters_the_index(scoped):
    r = scoped.get("/tasks")
    assert title_list(r) == ["a", "c"]
    assert r.json()["meta"]["total_objects"] == 2


def test_scope_and_where(scoped):
    assert titles(get_where(scoped, {"is_completed": True})) == set()
    assert titles(get_where(scoped, {"spent_time": {"$lt": 1000}})) == {"c"}


def test_scope_read_update_delete_are_404_outside(scoped):
    for i in outside(scoped):
        assert_problem(scoped.get(f"/tasks/{i}"), 404)
        assert_problem(scoped.request("PATCH", f"/tasks/{i}", json={"title": "hijacked"}), 404)
        assert_problem(scoped.request("PUT", f"/tasks/{i}", json={"is_completed": False}), 404)
        assert_problem(scoped.request("DELETE", f"/tasks/{i}"), 404)
    assert titles(scoped.get("/tasks")) == {"a", "c"}  # nothing moved into the scope


def test_scope_read_inside(scoped):
    a = [o for o in scoped.seeded if o["title"] == "a"][0]
    assert scoped.get(f"/tasks/{a['id']}").json() == a


def test_scope_sample(scoped):
    with scoped.client() as c:
        for _ in range(10):
            r = c.get("/tasks/sample")
            assert titles(r) == {"a", "c"}
            assert r.json()["meta"]["total_objects"] == 2


def test_scope_group(scoped):
    r = scoped.get("/tasks/group/is_completed")
    assert [(g["value"], g["count"]) for g in data_of(r)] == [(False, 2)]


def test_scope_stats(scoped):
    assert scoped.get("/tasks/stats", params={"fields": "spent_time"}).json() == {
        "spent_time": {"min": 0, "max": 1800, "avg": 900.0}}


def test_scope_eval(scoped):
    q = json.dumps({"functions": [{"name": "count"}, {"name": "sum", "field": "spent_time"}]})
    assert scoped.get("/tasks/eval", params={"q": q}).json() == {"count": 2, "sum__spent_time": 1800}


def test_scope_may_use_a_field_clients_cannot_see(crest):
    # Regression: a module's scope on a `rest: none` field used to be refused
    # ("unknown field") as if it were a client's where.
    s = crest("""\
        database: sqlite:app.db
        models:
          Note:
            fields:
              title: string
              is_deleted: {type: bool, default: false, rest: none}
        modules:
          notes: {model: Note, scope: {is_deleted: false}}
        """)
    r = s.request("POST", "/notes", json={"title": "kept"})
    assert r.status_code == 201, r.text
    assert "is_deleted" not in r.json()
    write_behind(s, "app.db", "INSERT INTO note (title, is_deleted) VALUES ('gone', TRUE)")
    titles = [t["title"] for t in s.get("/notes").json()["data"]]
    assert titles == ["kept"]
    assert_problem(s.get("/notes", params={"where": '{"is_deleted": true}'}), 400)
