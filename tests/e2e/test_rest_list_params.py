"""Flask-Restless's query conveniences on a REST module (issue 13 item 5):
`limit`/`offset` as the alternative of `page`/`page_size` on lists, sparse
fieldsets (`fields=id,title`) on every route that answers rows, and unknown
query parameters on the list routes refused (400 naming them); and typed
computed fields (item 6): `{sql: ..., type: json|int|...}`, an aggregated
list served as a JSON array and typed in the OpenAPI document."""
import json
import re

import pytest

from conftest import CREST_BIN, JWT_ENV, STORE, assert_problem, bearer, on_store, run_cli
from rest_apps import FIELD_ACCESS_APP, data_of, next_cursor, served, start_server

N = 10

APP = """\
database: sqlite:lp.db
models:
  Task:
    table: tasks
    fields:
      title:      {type: string, required: true}
      spent_time: {type: int, default: 0}
      note:       {type: string}
      secret:     {type: string, rest: write}
      internal:   {type: string, rest: none}
modules:
  tasks:
    model: Task
    url_prefix: /tasks
    enabled_methods: [index, create, read, update, delete, sample, group, stats, eval]
    page_size: {default: 4, min: 2, max: 6}
    serializer:
      exclude: [note]
      computed:
        hours: {sql: "spent_time / 2.0", type: float}
"""

ROW_KEYS = ["id", "title", "spent_time", "hours"]  # the serializer's order


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    rows = [{"title": f"t{i:02d}", "spent_time": i, "note": "n", "secret": "s"} for i in range(1, N + 1)]
    yield from served(tmp_path_factory, APP, rows, name="listparams", bulk=True)


def spent(r):
    return [o["spent_time"] for o in data_of(r)]


def meta(r):
    return r.json()["meta"]


def bad_param(r, *names, in_detail=True):
    """A 400 invalid_parameter whose errors (and detail, unless in_detail is false) name each of names."""
    p = assert_problem(r, 400, "invalid_parameter")
    for n in names:
        assert n in p.get("errors", {}), (n, p)
        assert not in_detail or n in re.findall(r"[\w\[\]]+", p["detail"]), (n, p)
    return p


# ---------------------------------------------------------------- limit and offset


@pytest.mark.parametrize("limit,offset,expected,has_more", [
    (3, 0, [1, 2, 3], True),
    (3, 3, [4, 5, 6], True),
    (3, 7, [8, 9, 10], False),
    (3, 9, [10], False),
    (2, 1, [2, 3], True),
    (6, 4, [5, 6, 7, 8, 9, 10], False),
])
def test_limit_and_offset_page_through(srv, limit, offset, expected, has_more):
    r = srv.get("/tasks", params={"limit": limit, "offset": offset})
    assert spent(r) == expected
    assert meta(r) == {"object": "list", "total_objects": N, "has_more": has_more, "next_cursor": next_cursor(has_more)}


def test_offset_alone_takes_the_default_page_size(srv):
    r = srv.get("/tasks", params={"offset": 2})
    assert spent(r) == [3, 4, 5, 6]
    assert meta(r)["has_more"] is True


def test_limit_alone_starts_at_the_first_row(srv):
    assert spent(srv.get("/tasks", params={"limit": 5})) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("limit,served_n", [(7, 6), (100, 6), (9223372036854775807, 6)])
def test_limit_above_the_max_is_the_max(srv, limit, served_n):
    r = srv.get("/tasks", params={"limit": limit, "offset": 1})
    assert spent(r) == list(range(2, 2 + served_n))
    assert meta(r)["has_more"] is True


def test_limit_below_the_min_is_the_min_as_page_size_is(srv):
    assert spent(srv.get("/tasks", params={"limit": 1})) == [1, 2]
    assert spent(srv.get("/tasks", params={"page_size": 1})) == [1, 2]


@pytest.mark.parametrize("offset", [10, 11, 1000000, 9223372036854775807])
def test_offset_past_the_end_is_an_empty_page(srv, offset):
    r = srv.get("/tasks", params={"offset": offset, "limit": 3})
    assert spent(r) == []
    assert meta(r) == {"object": "list", "total_objects": N, "has_more": False, "next_cursor": None}


def test_limit_and_offset_follow_sort_and_where(srv):
    r = srv.get("/tasks", params={"sort_by": "-spent_time", "limit": 2, "offset": 1})
    assert spent(r) == [9, 8]
    r = srv.get("/tasks", params={"where": json.dumps({"spent_time": {"$gt": 5}}), "limit": 2, "offset": 3})
    assert spent(r) == [9, 10]
    assert meta(r) == {"object": "list", "total_objects": 5, "has_more": False, "next_cursor": None}


@pytest.mark.parametrize("offset,has_more", [(7, True), (8, False)])
def test_limit_and_offset_with_count_none(srv, offset, has_more):
    r = srv.get("/tasks", params={"limit": 2, "offset": offset, "count": "none"})
    assert spent(r) == [offset + 1, offset + 2]
    assert meta(r) == {"object": "list", "has_more": has_more, "next_cursor": next_cursor(has_more)}


@pytest.mark.parametrize("params", [
    {"limit": 2, "page": 1},
    {"limit": 2, "page_size": 3},
    {"offset": 2, "page": 2},
    {"offset": 0, "page_size": 3},
    {"limit": 2, "offset": 2, "page": 1, "page_size": 3},
])
def test_mixing_limit_offset_with_page_is_refused(srv, params):
    lo = "limit" if "limit" in params else "offset"
    pp = "page" if "page" in params else "page_size"
    bad_param(srv.get("/tasks", params=params), lo, pp)


@pytest.mark.parametrize("name,value", [
    ("limit", "0"), ("limit", "-1"), ("limit", "two"), ("limit", "1.5"), ("limit", ""),
    ("offset", "-1"), ("offset", "1.5"), ("offset", "x"), ("offset", "99999999999999999999"),
])
def test_bad_limit_or_offset_is_refused(srv, name, value):
    bad_param(srv.get("/tasks", params={name: value}), name)


def test_sample_takes_limit_as_its_page_size(srv):
    rows = data_of(srv.get("/tasks/sample", params={"limit": 3}))
    assert len(rows) == 3 and len({o["id"] for o in rows}) == 3
    assert len(data_of(srv.get("/tasks/sample", params={"limit": 100}))) == 6
    bad_param(srv.get("/tasks/sample", params={"limit": 2, "page_size": 2}), "limit", "page_size")
    bad_param(srv.get("/tasks/sample", params={"limit": 0}), "limit")


def test_sample_has_no_offset_nor_page(srv):
    bad_param(srv.get("/tasks/sample", params={"offset": 1}), "offset")
    bad_param(srv.get("/tasks/sample", params={"page": 2}), "page")


# ---------------------------------------------------------------- unknown parameters


@pytest.mark.parametrize("path", ["/tasks", "/tasks/sample"])
def test_unknown_parameter_on_a_list_is_refused_naming_it(srv, path):
    p = bad_param(srv.get(path, params={"limt": 1}), "limt")
    assert p["detail"] == "query parameter 'limt' is unknown"


def test_embed_fieldsets_are_unknown_parameters_for_now(srv):
    bad_param(srv.get("/tasks?fields[owner]=name"), "fields[owner]")


def test_several_unknown_parameters_are_all_named_once(srv):
    p = bad_param(srv.get("/tasks?a=1&b=2&a=3&page=1"), "a", "b", in_detail=False)
    assert p["detail"] == "2 parameters are invalid"
    assert set(p["errors"]) == {"a", "b"}


def test_unknown_and_badly_typed_parameters_are_named_together(srv):
    p = bad_param(srv.get("/tasks?page=x&colour=red"), "page", "colour", in_detail=False)
    assert set(p["errors"]) == {"page", "colour"}


def test_declared_parameters_still_pass(srv):
    r = srv.get("/tasks", params={"page": 2, "page_size": 3, "sort_by": "-id", "count": "exact",
                                  "where": "{}", "fields": "id"})
    assert [o["id"] for o in data_of(r)] == [7, 6, 5]


# ---------------------------------------------------------------- fields=


def keys(o):
    return list(o)


def test_fields_on_index_in_serializer_order(srv):
    rows = data_of(srv.get("/tasks", params={"fields": "hours,title,id", "limit": 2}))
    assert [keys(o) for o in rows] == [["id", "title", "hours"]] * 2
    assert rows[0] == {"id": 1, "title": "t01", "hours": 0.5}


def test_without_fields_every_served_field(srv):
    assert keys(data_of(srv.get("/tasks", params={"limit": 2}))[0]) == ROW_KEYS


def test_fields_on_sample_and_read(srv):
    rows = data_of(srv.get("/tasks/sample", params={"fields": "title", "limit": 3}))
    assert len(rows) == 3 and all(keys(o) == ["title"] for o in rows)
    r = srv.get("/tasks/3", params={"fields": "spent_time,hours"})
    assert r.status_code == 200 and r.json() == {"spent_time": 3, "hours": 1.5}


def test_fields_naming_a_field_twice(srv):
    assert srv.get("/tasks/3", params={"fields": "id,id"}).json() == {"id": 3}


@pytest.mark.parametrize("value,named", [
    ("nope", "nope"),          # not a field of the model
    ("id,secret", "secret"),   # rest: write
    ("internal", "internal"),  # rest: none
    ("note", "note"),          # excluded by the serializer
    ("Title", "Title"),        # names are exact
])
@pytest.mark.parametrize("path", ["/tasks", "/tasks/sample", "/tasks/1"])
def test_fields_naming_what_is_not_served_is_refused(srv, path, value, named):
    p = bad_param(srv.get(path, params={"fields": value}), "fields")
    assert p["detail"] == f"fields: unknown field '{named}'"


@pytest.mark.parametrize("value", ["", ",", "id,", "id,,title"])
def test_fields_empty_or_with_an_empty_name_is_refused(srv, value):
    bad_param(srv.get("/tasks", params={"fields": value}), "fields")


def test_stats_fields_keeps_its_meaning(srv):
    r = srv.get("/tasks/stats", params={"fields": "spent_time"})
    assert r.status_code == 200, r.text
    assert r.json() == {"spent_time": {"min": 1, "max": 10, "avg": 5.5}}


def test_fields_on_create_update_and_bulk_create(crest):
    s = crest(APP)
    r = s.request("POST", "/tasks?fields=id,title", json={"title": "a", "spent_time": 4})
    assert r.status_code == 201, r.text
    assert r.json() == {"id": 1, "title": "a"}
    assert r.headers["location"].endswith("/tasks/1")
    r = s.request("POST", "/tasks?fields=title", json=[{"title": "b"}, {"title": "c"}])
    assert r.status_code == 201, r.text
    assert r.json() == {"data": [{"title": "b"}, {"title": "c"}]}
    for method in ("PUT", "PATCH"):
        r = s.request(method, "/tasks/1?fields=hours", json={"spent_time": 6})
        assert r.status_code == 200, r.text
        assert r.json() == {"hours": 3.0}
    assert keys(s.get("/tasks/1").json()) == ROW_KEYS


def test_bad_fields_on_a_write_writes_nothing(crest):
    s = crest(APP)
    bad_param(s.request("POST", "/tasks?fields=secret", json={"title": "a"}), "fields")
    bad_param(s.request("POST", "/tasks?fields=", json=[{"title": "a"}]), "fields")
    assert s.get("/tasks").json()["meta"]["total_objects"] == 0
    assert s.request("POST", "/tasks", json={"title": "a"}).status_code == 201
    bad_param(s.request("PATCH", "/tasks/1?fields=nope", json={"title": "b"}), "fields")
    bad_param(s.request("PUT", "/tasks/1?fields=nope", json={"title": "b"}), "fields")
    assert s.get("/tasks/1").json()["title"] == "a"




@pytest.fixture(scope="module")
def people(tmp_path_factory):
    s = start_server(tmp_path_factory, FIELD_ACCESS_APP, name="fieldsauth", env=JWT_ENV)
    try:
        admin = bearer("u", permissions=["hr.admin"])
        r = s.request("POST", "/people", json={"name": "ann", "salary": 100}, headers=admin)
        assert r.status_code == 201, r.text
        yield s
    finally:
        s.stop()
        s.store_dbs.close()


@pytest.mark.parametrize("path", ["/people", "/people/sample", "/people/1"])
def test_fields_naming_a_field_the_user_may_not_read_is_refused(people, path):
    p = bad_param(people.get(path, params={"fields": "name,salary"}, headers=bearer("u")), "fields")
    assert p["detail"] == "fields: unknown field 'salary'"
    r = people.get(path, params={"fields": "name,salary"}, headers=bearer("u", permissions=["hr.read"]))
    assert r.status_code == 200, r.text
    row = r.json() if path == "/people/1" else data_of(r)[0]
    assert row == {"name": "ann", "salary": 100}


def test_fields_on_a_write_by_a_user_who_may_not_read_the_field(people):
    r = people.request("PATCH", "/people/1?fields=salary", json={"name": "ann"}, headers=bearer("u"))
    bad_param(r, "fields")


# ---------------------------------------------------------------- the OpenAPI document


def test_openapi_declares_the_list_parameters(srv):
    doc = srv.get("/openapi.json").json()
    paths = doc["paths"]

    def params(path, method):
        return {p["name"]: p for p in paths[path][method].get("parameters", []) if p["in"] == "query"}

    index = params("/tasks", "get")
    assert list(index) == ["page", "page_size", "limit", "offset", "sort_by", "where", "cursor", "count",
                           "fields"]
    assert index["limit"]["schema"]["minimum"] == 1 and index["offset"]["schema"]["minimum"] == 0
    assert "page" in index["limit"]["description"] and "page" in index["offset"]["description"]
    assert index["fields"]["description"].endswith("Fields: id, title, spent_time, hours.")
    assert list(params("/tasks/sample", "get")) == ["page_size", "limit", "where", "fields"]
    for path, method in (("/tasks/{id}", "get"), ("/tasks", "post"), ("/tasks/{id}", "put"),
                         ("/tasks/{id}", "patch")):
        assert list(params(path, method)) == ["fields"], (path, method)
        assert "hours" in params(path, method)["fields"]["description"]
    assert params("/tasks/{id}", "delete") == {}
    stats = params("/tasks/stats", "get")
    assert stats["fields"]["required"] is True and "spent_time" in stats["fields"]["description"]


# ---------------------------------------------------------------- typed computed fields

AGG_SQL = on_store(
    sqlite="(SELECT json_group_array(name) FROM (SELECT name FROM tags WHERE tags.task_id = tasks.id ORDER BY id))",
    postgres="(SELECT coalesce(json_agg(name ORDER BY id), '[]'::json) FROM tags WHERE tags.task_id = tasks.id)")
OBJ_SQL = on_store(sqlite="json_object('t', title, 'n', spent_time)",
                   postgres="json_build_object('t', title, 'n', spent_time)")
TEXT_SQL = on_store(sqlite="'not json'", postgres="'not json'::text")

TYPED_APP = f"""\
database: sqlite:typed.db
models:
  Task:
    table: tasks
    fields:
      title:      {{type: string, required: true}}
      spent_time: {{type: int, default: 0}}
  Tag:
    table: tags
    fields:
      task_id: {{type: int, required: true}}
      name:    {{type: string, required: true}}
modules:
  tasks:
    model: Task
    enabled_methods: [index, read, create, update]
    serializer:
      computed:
        tags:      {{sql: "{AGG_SQL}", type: json}}
        obj:       {{sql: "{OBJ_SQL}", type: json}}
        n_tags:    {{sql: "(SELECT count(*) FROM tags WHERE tags.task_id = tasks.id)", type: int}}
        digits:    {{sql: "'{{}}'", type: int}}
        half:      {{sql: "spent_time / 2", type: float}}
        long:      {{sql: "spent_time > 10", type: bool}}
        label:     {{sql: "spent_time", type: string}}
        untyped:   "spent_time + 1"
  tags:
    model: Tag
"""


@pytest.fixture(scope="module")
def typed(tmp_path_factory):
    app = TYPED_APP.replace("'{}'", on_store(sqlite="'42'", postgres="'42'::text"))
    s = start_server(tmp_path_factory, app, name="typed")
    try:
        for t in ({"title": "a", "spent_time": 30}, {"title": "b", "spent_time": 5}):
            assert s.request("POST", "/tasks", json=t).status_code == 201
        for name in ("x", "y", "z"):
            assert s.request("POST", "/tags", json={"task_id": 1, "name": name}).status_code == 201
        yield s
    finally:
        s.stop()
        s.store_dbs.close()


def test_a_json_typed_aggregate_is_an_array(typed):
    a = typed.get("/tasks/1").json()
    assert a["tags"] == ["x", "y", "z"]
    assert typed.get("/tasks/2").json()["tags"] == []
    assert a["obj"] == {"t": "a", "n": 30}
    rows = data_of(typed.get("/tasks"))
    assert [o["tags"] for o in rows] == [["x", "y", "z"], []]


def test_typed_computed_values(typed):
    a, b = data_of(typed.get("/tasks"))
    assert a["n_tags"] == 3 and b["n_tags"] == 0
    assert a["digits"] == 42 and type(a["digits"]) is int
    assert a["half"] == 15 and type(a["half"]) is float
    assert b["half"] == 2.0 and type(b["half"]) is float  # integer division on both stores, as a float
    assert a["long"] is True and b["long"] is False
    assert a["label"] == "30" and b["label"] == "5"
    assert a["untyped"] == 31


def test_typed_computed_fields_in_fields_and_after_a_write(typed):
    r = typed.get("/tasks/1", params={"fields": "tags,n_tags"})
    assert r.json() == {"tags": ["x", "y", "z"], "n_tags": 3}
    r = typed.request("PATCH", "/tasks/2?fields=long,half", json={"spent_time": 12})
    assert r.status_code == 200, r.text
    assert r.json() == {"half": 6.0, "long": True}


def test_openapi_types_computed_fields(typed):
    props = typed.get("/openapi.json").json()["components"]["schemas"]["Task"]["properties"]
    assert props["n_tags"]["type"] == ["integer", "null"] and props["n_tags"]["format"] == "int64"
    assert props["half"]["type"] == ["number", "null"]
    assert props["long"]["type"] == ["boolean", "null"]
    assert props["label"]["type"] == ["string", "null"]
    assert "type" not in props["tags"] and "type" not in props["untyped"]  # any JSON value; as the database gives
    for name in ("tags", "n_tags", "untyped"):
        assert props[name]["description"] == "computed from the row in SQL"


def test_invalid_json_in_a_json_typed_cell_is_a_500(crest):
    app = TYPED_APP.replace("'{}'", "'1'").replace(f'"{OBJ_SQL}"', f'"{TEXT_SQL}"')
    s = crest(app + "  plain:\n    model: Task\n")
    assert s.request("POST", "/plain", json={"title": "a"}).status_code == 201
    r = s.get("/tasks/1")
    p = assert_problem(r, 500, "internal_error")
    assert "not json" not in r.text
    ev = s.wait_for_line(lambda e: e.get("event") == "computed_type")
    assert ev["field"] == "obj" and ev["module"] == "tasks"
    assert_problem(s.get("/tasks"), 500, "internal_error")
    assert s.get("/tasks/1", params={"fields": "id,tags"}).json() == {"id": 1, "tags": []}


@pytest.mark.parametrize("type_,words", [("jsonb", ["unknown type 'jsonb'"]), ("[int]", ["computed.n"])])
def test_app_file_refuses_an_unknown_computed_type(tmp_path, type_, words):
    p = tmp_path / "app.yaml"
    p.write_text("database: sqlite:x.db\nmodels:\n  Task:\n    fields: {spent_time: int}\nmodules:\n  tasks:\n"
                 "    model: Task\n    serializer:\n      computed:\n        ok: spent_time\n"
                 f"        n: {{sql: spent_time, type: {type_}}}\n")
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 1, (r.out, r.err)
    assert f"{p}:11:" in r.err, r.err
    for w in words:
        assert w in r.err, r.err


def test_app_file_computed_map_needs_sql(tmp_path):
    p = tmp_path / "app.yaml"
    p.write_text("database: sqlite:x.db\nmodels:\n  Task:\n    fields: {spent_time: int}\nmodules:\n  tasks:\n"
                 "    model: Task\n    serializer:\n      computed:\n        n: {type: int}\n")
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 1 and f"{p}:10:" in r.err and "needs sql" in r.err, r.err


def test_an_unknown_parameter_of_group_is_400_naming_it(crest):
    """(a group answers a page of groups: a list route, which ignores nothing)"""
    from rest_apps import CONTRACT_APP
    s = crest(CONTRACT_APP)
    p = assert_problem(s.get("/tasks/group/is_completed", params={"limt": "2"}), 400, "invalid_parameter")
    assert p["errors"] == {"limt": "is unknown"}
    assert s.get("/tasks/group/is_completed", params={"page_size": "2"}).status_code == 200
