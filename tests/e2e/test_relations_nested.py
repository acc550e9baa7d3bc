"""Nested routes (issue 13 item 4): GET /people/{id}/computers takes every
list parameter, POST /people/{id}/computers sets the foreign key (the body
may not name it); 404 when the parent is missing or not visible. They are
the related module's index and create: its permissions and scope hold.
Both stores."""
import pytest

from conftest import JWT_ENV, assert_problem, bearer, statements
from relation_apps import RELATIONS_APP, post, seeded, seeded_module_server
from rest_apps import CURSOR


@pytest.fixture
def srv(crest):
    """A seeded server of the test's own, for tests that write."""
    return seeded(crest(RELATIONS_APP))


@pytest.fixture(scope="module")
def ro(tmp_path_factory):
    """One seeded server for the tests that only read."""
    yield from seeded_module_server(tmp_path_factory, "nested")


def names(r):
    assert r.status_code == 200, r.text
    return [c["name"] for c in r.json()["data"]]


def test_get_lists_the_parents_related_rows(ro):
    ann, bob, cy = ro.rows["ann"], ro.rows["bob"], ro.rows["cy"]
    assert names(ro.get(f"/people/{ann['id']}/computers")) == ["a1", "a2", "a3"]
    assert names(ro.get(f"/people/{bob['id']}/computers")) == ["b1"]
    r = ro.get(f"/people/{cy['id']}/computers")
    assert r.json() == {"data": [], "meta": {"object": "list", "total_objects": 0, "has_more": False,
                                             "next_cursor": None}}


def test_get_takes_every_list_parameter(ro):
    ann = ro.rows["ann"]
    r = ro.get(f"/people/{ann['id']}/computers", params={"sort_by": "-name", "page_size": 2, "page": 1})
    assert names(r) == ["a3", "a2"] and r.json()["meta"] == {"object": "list", "total_objects": 3, "has_more": True,
                                                             "next_cursor": CURSOR}
    r = ro.get(f"/people/{ann['id']}/computers", params={"where": '{"vendor_id": null}'})
    assert names(r) == ["a2"]
    r = ro.get(f"/people/{ann['id']}/computers", params={"count": "none", "page_size": 1, "page": 3})
    assert names(r) == ["a3"] and r.json()["meta"] == {"object": "list", "has_more": False, "next_cursor": None}
    r = ro.get(f"/people/{ann['id']}/computers", params={"include": "vendor"})
    assert [c["vendor"]["name"] if c["vendor"] else None for c in r.json()["data"]] == ["Dell", None, "HP"]
    assert_problem(ro.get(f"/people/{ann['id']}/computers", params={"sort_by": "nope"}), 400, "invalid_parameter")
    assert_problem(ro.get(f"/people/{ann['id']}/computers", params={"where": "{"}), 400, "invalid_parameter")


def test_a_where_cannot_reach_another_parents_rows(ro):
    ann, bob = ro.rows["ann"], ro.rows["bob"]
    r = ro.get(f"/people/{ann['id']}/computers", params={"where": f'{{"owner_id": {bob["id"]}}}'})
    assert names(r) == []
    r = ro.get(f"/people/{ann['id']}/computers",
                params={"where": f'{{"$or": [{{"owner_id": {bob["id"]}}}, {{"name": "b1"}}]}}'})
    assert names(r) == []


@pytest.mark.parametrize("pid", ["999", "abc", "0", "-1"])
def test_a_missing_parent_is_404(ro, pid):
    p = assert_problem(ro.get(f"/people/{pid}/computers"), 404, "not_found")
    assert p["detail"] == "no Person with this id"
    p = assert_problem(ro.request("POST", f"/people/{pid}/computers", json={"name": "n"}), 404, "not_found")
    assert p["detail"] == "no Person with this id"


def test_post_sets_the_foreign_key_from_the_path(srv):
    cy = srv.rows["cy"]
    r = srv.request("POST", f"/people/{cy['id']}/computers", json={"name": "c1"})
    assert r.status_code == 201, r.text
    c = r.json()
    assert c["owner_id"] == cy["id"] and c["name"] == "c1"
    assert r.headers["location"] == f"/computers/{c['id']}"
    assert srv.get(f"/computers/{c['id']}").json() == c
    assert names(srv.get(f"/people/{cy['id']}/computers")) == ["c1"]


def test_post_many_sets_the_foreign_key_of_each_row(srv):
    cy = srv.rows["cy"]
    r = srv.request("POST", f"/people/{cy['id']}/computers", params={"include": "owner"},
                    json=[{"name": "c1"}, {"name": "c2", "vendor_id": srv.rows["dell"]["id"]}])
    assert r.status_code == 201, r.text
    assert [(c["name"], c["owner_id"], c["owner"]["name"]) for c in r.json()["data"]] == \
        [("c1", cy["id"], "Cy"), ("c2", cy["id"], "Cy")]


def test_post_whose_body_names_the_foreign_key_is_422_and_writes_nothing(srv):
    cy, bob = srv.rows["cy"], srv.rows["bob"]
    for owner in (bob["id"], cy["id"], None):
        r = srv.request("POST", f"/people/{cy['id']}/computers", json={"name": "c1", "owner_id": owner})
        p = assert_problem(r, 422, "validation_failed")
        assert p["errors"] == {"owner_id": "is set by the path"}
    r = srv.request("POST", f"/people/{cy['id']}/computers", json=[{"name": "ok"}, {"name": "c1", "owner_id": 1}])
    p = assert_problem(r, 422, "validation_failed")
    assert p["errors"] == {"[1].owner_id": "is set by the path"}
    assert names(srv.get(f"/people/{cy['id']}/computers")) == []


def test_post_validates_the_body_as_the_related_modules_create(srv):
    cy = srv.rows["cy"]
    p = assert_problem(srv.request("POST", f"/people/{cy['id']}/computers", json={}), 422, "validation_failed")
    assert p["errors"] == {"name": "is required"}
    p = assert_problem(srv.request("POST", f"/people/{cy['id']}/computers", json={"name": "x", "vendor_id": 404}),
                       422, "missing_reference")
    assert p["errors"] == {"vendor_id": "no Vendor with id 404"}


def test_nested_get_costs_the_parent_check_and_the_list(ro):
    ann = ro.rows["ann"]
    for size in (1, 3):
        before = statements(ro)
        assert ro.get(f"/people/{ann['id']}/computers", params={"page_size": size, "include": "vendor"}).status_code == 200
        assert statements(ro) - before == 4  # the parent, the count, the page, the vendors


def test_nested_routes_are_in_the_openapi_document(ro):
    doc = ro.get("/openapi.json").json()
    ops = doc["paths"]["/people/{id}/computers"]
    assert set(ops) >= {"get", "post"}
    params = {p["name"]: p["in"] for p in ops["get"]["parameters"]}
    assert params["id"] == "path"
    assert {"page", "page_size", "sort_by", "where", "include"} <= set(params)


AUTH_APP = """\
database: sqlite:nest.db
auth:
  jwt:
    algorithms: [HS256]
    secret_env: CREST_JWT_SECRET
models:
  Team:
    table: team
    fields:
      name: {type: string, required: true}
      owner_id: {type: string, rest: read}
      notes: {has_many: Note, via: team}
  Note:
    table: note
    fields:
      text: {type: string, required: true}
      team: {type: ref, model: Team, on_delete: cascade}
      author: {type: string, rest: read}
modules:
  teams:
    model: Team
    owner: owner_id
    permissions: {index: authenticated, read: authenticated, create: authenticated}
  notes:
    model: Note
    owner: author
    permissions: {index: authenticated, read: authenticated, create: [notes.write]}
"""


@pytest.fixture
def asrv(crest):
    s = crest(AUTH_APP, env=JWT_ENV)
    r = s.request("POST", "/teams", json={"name": "alice's"}, headers=bearer("alice"))
    assert r.status_code == 201, r.text
    s.team = r.json()
    return s


def test_a_parent_the_user_may_not_see_is_404(asrv):
    tid = asrv.team["id"]
    assert asrv.get(f"/teams/{tid}/notes", headers=bearer("alice")).status_code == 200
    p = assert_problem(asrv.get(f"/teams/{tid}/notes", headers=bearer("bob")), 404, "not_found")
    assert p["detail"] == "no Team with this id"
    r = asrv.request("POST", f"/teams/{tid}/notes", json={"text": "t"}, headers=bearer("bob", permissions=["notes.write"]))
    assert_problem(r, 404, "not_found")


def test_the_related_modules_permission_holds(asrv):
    tid = asrv.team["id"]
    assert_problem(asrv.get(f"/teams/{tid}/notes"), 401)
    r = asrv.request("POST", f"/teams/{tid}/notes", json={"text": "t"}, headers=bearer("alice"))
    assert_problem(r, 403, "forbidden")
    r = asrv.request("POST", f"/teams/{tid}/notes", json={"text": "t"},
                     headers=bearer("alice", permissions=["notes.write"]))
    assert r.status_code == 201 and r.json()["author"] == "alice" and r.json()["team_id"] == tid


def test_the_related_modules_row_ownership_holds(asrv):
    tid = asrv.team["id"]
    for who in ("alice", "carol"):
        r = asrv.request("POST", "/notes", json={"text": who, "team_id": tid},
                         headers=bearer(who, permissions=["notes.write"]))
        assert r.status_code == 201, r.text
    r = asrv.get(f"/teams/{tid}/notes", headers=bearer("alice"))
    assert [n["text"] for n in r.json()["data"]] == ["alice"]


def test_get_lists_the_rows_a_through_relation_links(ro):
    t1, t2 = ro.rows["t1"], ro.rows["t2"]
    assert names(ro.get(f"/tasks/{t1['id']}/tags")) == ["red", "blue"]
    assert names(ro.get(f"/tasks/{t2['id']}/tags", params={"where": '{"name": {"$ne": "blue"}}'})) == []
    assert names(ro.get(f"/tasks/{t1['id']}/tags", params={"sort_by": "-name", "page_size": 1})) == ["red"]
    assert_problem(ro.get("/tasks/999/tags"), 404, "not_found")
    # a through relation's rows are linked by the join model: no POST here
    assert ro.request("POST", f"/tasks/{t1['id']}/tags", json={"name": "x"}).status_code == 405


SELF_APP = """\
database: sqlite:self.db
models:
  Employee:
    table: employee
    fields:
      name: {type: string, required: true}
      manager: {type: ref, model: Employee, on_delete: set_null}
      reports: {has_many: Employee, via: manager}
modules:
  employees: {model: Employee, enabled_methods: [index, create, read, update, delete, group]}
"""


def test_a_relation_of_a_model_to_itself(crest):
    s = crest(SELF_APP)
    boss = post(s, "/employees", {"name": "boss"})
    a = post(s, f"/employees/{boss['id']}/reports", {"name": "a"})
    b = post(s, f"/employees/{boss['id']}/reports", {"name": "b"})
    post(s, f"/employees/{a['id']}/reports", {"name": "a1"})
    assert names(s.get(f"/employees/{boss['id']}/reports")) == ["a", "b"]
    r = s.get(f"/employees/{boss['id']}", params={"include": "reports.reports,manager"}).json()
    assert r["manager"] is None
    assert [(e["name"], [x["name"] for x in e["reports"]]) for e in r["reports"]] == [("a", ["a1"]), ("b", [])]
    assert names(s.get("/employees", params={"where": '{"manager.name": "boss"}'})) == ["a", "b"]
    assert names(s.get("/employees", params={"where": '{"reports": {"$exists": false}}'})) == ["b", "a1"]
    assert names(s.get("/employees", params={"where": '{"reports.name": "a1"}'})) == ["a"]
    r = s.get("/employees", params={"sort_by": "manager.name,name", "where": '{"manager": {"$exists": true}}'})
    assert names(r) == ["a1", "a", "b"]  # managers: a, boss, boss
    g = s.get("/employees/group/manager.name", params={"sort_by": "value"}).json()["data"]
    assert {(x["value"], x["count"]) for x in g} == {(None, 1), ("a", 1), ("boss", 2)}
    assert s.request("DELETE", f"/employees/{boss['id']}").status_code == 204
    assert s.get(f"/employees/{a['id']}").json()["manager_id"] is None


def test_a_nested_creates_documented_body_leaves_the_foreign_key_out(ro):
    doc = ro.get("/openapi.json").json()
    op = doc["paths"]["/people/{id}/computers"]["post"]
    schema = op["requestBody"]["content"]["application/json"]["schema"]
    refs = [x.get("$ref") or x.get("items", {}).get("$ref") for x in schema["anyOf"]]
    assert refs == ["#/components/schemas/Person_computers_Create"] * 2
    body = doc["components"]["schemas"]["Person_computers_Create"]
    assert "owner_id" not in body["properties"] and "name" in body["properties"] and "vendor_id" in body["properties"]
    assert body["additionalProperties"] is False
    assert "owner_id" in doc["components"]["schemas"]["ComputerCreate"]["properties"]
    assert len({o["operationId"] for p in doc["paths"].values() for o in p.values() if isinstance(o, dict)
                and "operationId" in o}) == sum(1 for p in doc["paths"].values() for o in p.values()
                                                  if isinstance(o, dict) and "operationId" in o)
