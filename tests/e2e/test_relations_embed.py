"""Embedding related rows (issue 13 item 2): ?include= on read, list, create
and update answers, belongs_to as an object (or null), has_many and through
as lists capped per parent with <name>_has_more, nested to a depth of 3;
related rows are served through their own module, so its permissions, row
ownership, scope and field access hold for embedded rows too. Both stores."""
import pytest

from conftest import CREST_BIN, JWT_ENV, assert_problem, bearer, run_cli, statements
from relation_apps import RELATIONS_APP, post, seed, seeded, seeded_module_server
from rest_apps import module_server


@pytest.fixture
def srv(crest):
    """A seeded server of the test's own, for tests that write and count a parent's related rows."""
    return seeded(crest(RELATIONS_APP))


@pytest.fixture(scope="module")
def rw(tmp_path_factory):
    """One seeded server for the tests that write but read back only their own rows, the seeded ones they
    leave alone, and statement counts."""
    yield from seeded_module_server(tmp_path_factory, "embed_rw")


@pytest.fixture(scope="module")
def ro(tmp_path_factory):
    """One seeded server for the tests that only read."""
    yield from seeded_module_server(tmp_path_factory, "embed")


def test_include_belongs_to_on_a_list_embeds_the_row_or_null(ro):
    r = ro.get("/computers", params={"include": "owner"})
    assert r.status_code == 200, r.text
    got = {c["name"]: c["owner"] for c in r.json()["data"]}
    ann, bob = ro.rows["ann"], ro.rows["bob"]
    assert got == {"a1": ann, "a2": ann, "a3": ann, "b1": bob, "x": None}


def test_include_has_many_on_a_list_embeds_every_related_row_in_order(ro):
    r = ro.get("/people", params={"include": "computers"})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    names = {p["name"]: [c["name"] for c in p["computers"]] for p in data}
    assert names == {"Ann": ["a1", "a2", "a3"], "Bob": ["b1"], "Cy": []}
    assert all(p["computers_has_more"] is False for p in data)
    assert data[0]["computers"][0] == ro.rows["c"][0]


def test_include_through_a_join_model(ro):
    r = ro.get("/tasks", params={"include": "tags"})
    assert r.status_code == 200, r.text
    got = {t["title"]: [g["name"] for g in t["tags"]] for t in r.json()["data"]}
    assert got == {"t1": ["red", "blue"], "t2": ["blue"]}  # in the tags module's order: by id


def test_include_nested_to_three_levels(ro):
    r = ro.get(f"/people/{ro.rows['ann']['id']}", params={"include": "computers.vendor.computers"})
    assert r.status_code == 200, r.text
    j = r.json()
    assert [c["vendor"]["name"] if c["vendor"] else None for c in j["computers"]] == ["Dell", None, "HP"]
    dell = j["computers"][0]["vendor"]
    assert [c["name"] for c in dell["computers"]] == ["a1", "b1"]
    assert "owner" not in dell["computers"][0]


def test_include_several_paths_sharing_a_relation(ro):
    r = ro.get("/computers", params={"include": "owner,vendor,owner.computers"})
    assert r.status_code == 200, r.text
    a1 = r.json()["data"][0]
    assert a1["vendor"]["name"] == "Dell"
    assert [c["name"] for c in a1["owner"]["computers"]] == ["a1", "a2", "a3"]


def test_include_on_read_create_and_update_answers(rw):
    ann = rw.rows["ann"]
    r = rw.request("POST", "/computers", params={"include": "owner"}, json={"name": "n", "owner_id": ann["id"]})
    assert r.status_code == 201 and r.json()["owner"] == ann
    cid = r.json()["id"]
    for method in ("PATCH", "PUT"):
        r = rw.request(method, f"/computers/{cid}", params={"include": "owner,vendor"},
                        json={"vendor_id": rw.rows["hp"]["id"]})
        assert r.status_code == 200, r.text
        assert r.json()["owner"] == ann and r.json()["vendor"] == rw.rows["hp"]
    r = rw.get(f"/computers/{cid}", params={"include": "vendor"})
    assert r.json()["vendor"] == rw.rows["hp"] and "owner" not in r.json()


def test_without_include_nothing_is_embedded(ro):
    j = ro.get(f"/people/{ro.rows['ann']['id']}").json()
    assert j == ro.rows["ann"]


CAPPED_APP = RELATIONS_APP.replace("computers: {has_many: Computer, via: owner}",
                                   "computers: {has_many: Computer, via: owner, embed_max: 2}")


def test_a_has_many_embed_is_capped_per_parent_with_has_more(crest):
    s = crest(CAPPED_APP)
    rows = seed(s)
    r = s.get("/people", params={"include": "computers"})
    got = {p["name"]: ([c["name"] for c in p["computers"]], p["computers_has_more"]) for p in r.json()["data"]}
    assert got == {"Ann": (["a1", "a2"], True), "Bob": (["b1"], False), "Cy": ([], False)}
    r = s.get(f"/people/{rows['ann']['id']}", params={"include": "computers"})
    assert [c["name"] for c in r.json()["computers"]] == ["a1", "a2"] and r.json()["computers_has_more"] is True


SORTED_CAPPED_APP = CAPPED_APP.replace(
    "  computers: {model: Computer, enabled_methods: [index, create, read, update, delete, group]}",
    "  computers: {model: Computer, enabled_methods: [index, create, read, update, delete, group], "
    "default_sort: -name}")


def test_a_capped_has_many_embed_takes_each_parents_first_rows_in_the_targets_sort(crest):
    """The cap keeps the first rows of the related module's default_sort (here by name, descending), not the
    first by id, and the embedded rows come in that order, whatever the parents' order."""
    s = crest(SORTED_CAPPED_APP)
    rows = seed(s)
    post(s, "/computers", {"name": "b2", "owner_id": rows["bob"]["id"]})
    r = s.get("/people", params={"include": "computers", "sort_by": "-id"})
    assert r.status_code == 200, r.text
    got = [(p["name"], [c["name"] for c in p["computers"]], p["computers_has_more"]) for p in r.json()["data"]]
    assert got == [("Cy", [], False), ("Bob", ["b2", "b1"], False), ("Ann", ["a3", "a2"], True)]
    r = s.get(f"/people/{rows['ann']['id']}", params={"include": "computers"})
    assert [c["name"] for c in r.json()["computers"]] == ["a3", "a2"] and r.json()["computers_has_more"] is True


def test_the_default_cap_is_100_rows_per_parent(srv):
    ann = srv.rows["ann"]
    srv.request("POST", "/computers", json=[{"name": f"m{i}", "owner_id": ann["id"]} for i in range(98)])
    r = srv.get(f"/people/{ann['id']}", params={"include": "computers"}).json()
    assert len(r["computers"]) == 100 and r["computers_has_more"] is True
    srv.request("DELETE", f"/computers/{r['computers'][-1]['id']}")
    r = srv.get(f"/people/{ann['id']}", params={"include": "computers"}).json()
    assert len(r["computers"]) == 100 and r["computers_has_more"] is False


@pytest.mark.parametrize("include,words", [
    ("nope", "'nope' is not a relation you may read"),
    ("owner.nope", "'owner.nope' is not a relation you may read"),
    ("name", "'name' is not a relation you may read"),
    ("owner_id", "'owner_id' is not a relation you may read"),
    ("", "an empty relation name"),
    ("owner,", "an empty relation name"),
    ("owner.computers.owner.computers", "'owner.computers.owner.computers' is deeper than 3 relations"),
])
def test_a_bad_include_is_400_naming_it(ro, include, words):
    r = ro.get("/computers", params={"include": include})
    p = assert_problem(r, 400, "invalid_parameter")
    assert words in p["detail"], p


HUB_APP = """\
database: sqlite:hub.db
models:
  Leaf:
    fields: {name: string}
  Hub:
    fields:
""" + "".join(f"      r{i}: {{type: ref, model: Leaf}}\n" for i in range(11)) + """\
modules:
  leaves: {model: Leaf}
  hubs: {model: Hub}
"""


def test_more_than_ten_relations_in_one_include_is_400(crest):
    s = crest(HUB_APP)
    leaf = post(s, "/leaves", {"name": "l"})
    post(s, "/hubs", {f"r{i}_id": leaf["id"] for i in range(11)})
    ten = ",".join(f"r{i}" for i in range(10))
    r = s.get("/hubs", params={"include": ten + ",r0,r9"})  # a relation named twice counts once
    assert r.status_code == 200, r.text
    assert all(r.json()["data"][0][f"r{i}"] == leaf for i in range(10)) and "r10" not in r.json()["data"][0]
    p = assert_problem(s.get("/hubs", params={"include": ten + ",r10"}), 400, "invalid_parameter")
    assert p["detail"] == "include: more than 10 relations"


ALLOWED_APP = RELATIONS_APP.replace(
    "  computers: {model: Computer, enabled_methods: [index, create, read, update, delete, group]}",
    "  computers: {model: Computer, enabled_methods: [index, create, read, update, delete, group], "
    "allowed_includes: [owner.computers]}")


def test_allowed_includes_limits_the_paths(crest):
    s = crest(ALLOWED_APP)
    seed(s)
    assert s.get("/computers", params={"include": "owner"}).status_code == 200
    assert s.get("/computers", params={"include": "owner.computers"}).status_code == 200
    p = assert_problem(s.get("/computers", params={"include": "vendor"}), 400, "invalid_parameter")
    assert "'vendor' is not a relation you may read" in p["detail"]
    p = assert_problem(s.get("/computers", params={"include": "owner.computers.vendor"}), 400)
    assert "'owner.computers.vendor'" in p["detail"]


def test_allowed_includes_naming_no_relation_is_refused_with_its_line(tmp_path):
    p = tmp_path / "app.yaml"
    text = ALLOWED_APP.replace("allowed_includes: [owner.computers]", "allowed_includes: [owner.laptops]")
    p.write_text(text)
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 1
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "owner.laptops" in l)
    assert f"{p}:{line}: module computers: allowed_includes: 'owner.laptops' is not a path of relations of " \
           "Computer" in r.err, r.err


# ---- permissions, ownership, scope and field access of the related module ----

AUTH_APP = """\
database: sqlite:authrel.db
auth:
  jwt:
    algorithms: [HS256]
    secret_env: CREST_JWT_SECRET
models:
  Person:
    table: person
    fields:
      name: {type: string, required: true}
      salary: {type: int, read_permission: hr}
      notes: {has_many: Note, via: person}
      badges: {has_many: Badge, via: person}
  Note:
    table: note
    fields:
      text: {type: string}
      person: {type: ref, model: Person}
      owner_id: {type: string, rest: read}
      secret: {type: string, read_permission: notes.secret}
  Badge:
    table: badge
    fields:
      label: {type: string}
      person: {type: ref, model: Person}
modules:
  people:
    model: Person
    permissions: {index: public, read: public, create: public}
  notes:
    model: Note
    owner: owner_id
    permissions: {index: authenticated, read: authenticated, create: authenticated}
  badges:
    model: Badge
    scope: {label: {$ne: hidden}}
    permissions: {index: [badges.read], read: [badges.read], create: public}
"""


@pytest.fixture(scope="module")
def asrv(tmp_path_factory):
    """One server for the (reading) tests of the related module's rules."""
    def setup(s):
        p = post(s, "/people", {"name": "Ann", "salary": 10})
        for who, text in (("alice", "alice's"), ("bob", "bob's")):
            r = s.request("POST", "/notes", json={"text": text, "person_id": p["id"], "secret": "s-" + who},
                          headers=bearer(who))
            assert r.status_code == 201, r.text
        for label in ("gold", "hidden"):
            post(s, "/badges", {"label": label, "person_id": p["id"]})
        s.person = p
    yield from module_server(tmp_path_factory, AUTH_APP, name="embed_auth", env=JWT_ENV, setup=setup)


def test_embedded_rows_follow_the_related_modules_row_ownership(asrv):
    r = asrv.get(f"/people/{asrv.person['id']}", params={"include": "notes"}, headers=bearer("alice"))
    assert r.status_code == 200, r.text
    assert [n["text"] for n in r.json()["notes"]] == ["alice's"]
    r = asrv.get("/people", params={"include": "notes"}, headers=bearer("carol"))
    assert r.json()["data"][0]["notes"] == []


def test_embedding_needs_the_related_modules_permission(asrv):
    # anonymous: the notes module needs an authenticated user
    p = assert_problem(asrv.get("/people", params={"include": "notes"}), 400, "invalid_parameter")
    assert "'notes' is not a relation you may read" in p["detail"]
    p = assert_problem(asrv.get("/people", params={"include": "badges"}, headers=bearer("alice")), 400)
    assert "'badges'" in p["detail"]
    r = asrv.get("/people", params={"include": "badges"}, headers=bearer("alice", permissions=["badges.read"]))
    assert r.status_code == 200


def test_embedded_rows_follow_the_related_modules_scope(asrv):
    r = asrv.get("/people", params={"include": "badges"}, headers=bearer("alice", permissions=["badges.read"]))
    assert [b["label"] for b in r.json()["data"][0]["badges"]] == ["gold"]


def test_embedded_rows_follow_field_access(asrv):
    r = asrv.get("/people", params={"include": "notes"}, headers=bearer("alice"))
    note = r.json()["data"][0]["notes"][0]
    assert "secret" not in note and "salary" not in r.json()["data"][0]
    r = asrv.get("/people", params={"include": "notes"}, headers=bearer("alice", permissions=["notes.secret", "hr"]))
    assert r.json()["data"][0]["notes"][0]["secret"] == "s-alice"
    assert r.json()["data"][0]["salary"] == 10


def test_a_belongs_to_row_the_user_may_not_see_is_null(asrv):
    r = asrv.get("/notes", params={"include": "person"}, headers=bearer("alice"))
    assert r.json()["data"][0]["person"]["name"] == "Ann"


def test_include_on_a_bulk_create_answer_keeps_the_bodys_order(rw):
    ann, bob = rw.rows["ann"], rw.rows["bob"]
    r = rw.request("POST", "/computers", params={"include": "owner"},
                    json=[{"name": "n1", "owner_id": bob["id"]}, {"name": "n2"}, {"name": "n3", "owner_id": ann["id"]}])
    assert r.status_code == 201, r.text
    assert [(c["name"], c["owner"]) for c in r.json()["data"]] == [("n1", bob), ("n2", None), ("n3", ann)]


@pytest.mark.parametrize("method,path,body", [
    ("POST", "/computers", {"name": "new"}),
    ("POST", "/computers", [{"name": "new"}]),
    ("PATCH", "/computers/{id}", {"name": "new"}),
    ("PUT", "/computers/{id}", {"name": "new"}),
])
def test_a_bad_include_on_a_write_is_400_and_writes_nothing(ro, method, path, body):
    before = ro.get("/computers", params={"page_size": 100}).json()["data"]
    r = ro.request(method, path.format(id=before[0]["id"]), params={"include": "nope"}, json=body)
    assert_problem(r, 400, "invalid_parameter")
    assert ro.get("/computers", params={"page_size": 100}).json()["data"] == before


# ---- no N+1: a bounded number of statements whatever the page's size ----

def test_a_list_with_embeds_costs_one_statement_per_relation_whatever_its_page_size(rw):
    ann = rw.rows["ann"]
    rw.request("POST", "/computers", json=[{"name": f"m{i}", "owner_id": ann["id"], "vendor_id": rw.rows["hp"]["id"]}
                                            for i in range(30)])
    rw.request("POST", "/people", json=[{"name": f"p{i}"} for i in range(30)])
    for path, include, per_request in (
            ("/people", "computers", 3),                 # count, page, computers
            ("/people", "computers.vendor", 4),          # + vendors
            ("/computers", "owner,vendor,owner.computers", 5),
            ("/tasks", "tags", 3)):
        for size in (1, 5, 30):
            before = statements(rw)
            r = rw.get(path, params={"include": include, "page_size": size})
            assert r.status_code == 200, r.text
            assert len(r.json()["data"]) >= 1
            assert statements(rw) - before == per_request, (path, include, size)


def test_a_read_with_embeds_costs_one_statement_per_relation(ro):
    before = statements(ro)
    assert ro.get(f"/computers/{ro.rows['c'][0]['id']}", params={"include": "owner,vendor"}).status_code == 200
    assert statements(ro) - before == 3


def test_a_bulk_create_reads_its_rows_back_in_one_statement(rw):
    for n in (1, 10):
        before = statements(rw)
        r = rw.request("POST", "/computers", params={"include": "owner"},
                        json=[{"name": f"b{i}", "owner_id": rw.rows["bob"]["id"]} for i in range(n)])
        assert r.status_code == 201
        assert statements(rw) - before == n + 2  # n inserts, the read back, the owners


# ---- sparse fieldsets of embedded rows: fields[<path>]= ----

def test_fields_of_embedded_rows_at_each_level(ro):
    r = ro.get(f"/people/{ro.rows['ann']['id']}", params={
        "include": "computers.vendor", "fields": "name", "fields[computers]": "name",
        "fields[computers.vendor]": "name"})
    assert r.status_code == 200, r.text
    assert r.json() == {"name": "Ann", "computers": [{"name": "a1", "vendor": {"name": "Dell"}},
                                                     {"name": "a2", "vendor": None},
                                                     {"name": "a3", "vendor": {"name": "HP"}}],
                        "computers_has_more": False}


def test_fields_of_embedded_rows_on_a_list_and_a_write(rw):
    r = rw.get("/computers", params={"include": "owner", "fields[owner]": "id", "page_size": 1})
    assert r.json()["data"][0]["owner"] == {"id": rw.rows["ann"]["id"]}
    r = rw.request("POST", "/computers", params={"include": "owner", "fields[owner]": "name"},
                    json={"name": "n", "owner_id": rw.rows["bob"]["id"]})
    assert r.status_code == 201 and r.json()["owner"] == {"name": "Bob"}


@pytest.mark.parametrize("params,name,detail", [
    ({"fields[owner]": "name"}, "fields[owner]", "fields[owner]: 'owner' is not an included relation"),
    ({"include": "owner", "fields[vendor]": "name"}, "fields[vendor]", "fields[vendor]: 'vendor' is not an included relation"),
    ({"include": "owner", "fields[owner]": "nope"}, "fields[owner]", "fields[owner]: unknown field 'nope'"),
    ({"include": "owner", "fields[owner]": ""}, "fields[owner]", "fields[owner]: name at least one field (fields[owner]=a,b)"),
    ({"include": "owner", "fieldz[owner]": "name"}, "fieldz[owner]", "query parameter 'fieldz[owner]' is unknown"),
])
def test_bad_fields_of_embedded_rows_are_400_naming_the_parameter(ro, params, name, detail):
    p = assert_problem(ro.get("/computers", params=params), 400, "invalid_parameter")
    assert p["detail"] == detail and name in p["errors"], p


def test_fields_of_embedded_rows_hide_what_the_user_may_not_read(crest):
    s = crest(AUTH_APP, env=JWT_ENV)
    p = post(s, "/people", {"name": "Ann", "salary": 10})
    s.request("POST", "/notes", json={"text": "t", "person_id": p["id"], "secret": "s"}, headers=bearer("alice"))
    r = s.get("/people", params={"include": "notes", "fields[notes]": "secret"}, headers=bearer("alice"))
    assert_problem(r, 400, "invalid_parameter")
    r = s.get("/people", params={"include": "notes", "fields[notes]": "secret"},
              headers=bearer("alice", permissions=["notes.secret"]))
    assert r.json()["data"][0]["notes"] == [{"secret": "s"}]


# ---- OpenAPI ----

def test_openapi_declares_relation_fields_embedded_rows_and_the_include_enum(ro):
    doc = ro.get("/openapi.json").json()
    comp = doc["components"]["schemas"]["Computer"]["properties"]
    assert comp["owner_id"]["type"] == ["integer", "null"]
    assert "Person" in comp["owner_id"]["description"] and "include=owner" in comp["owner_id"]["description"]
    assert comp["owner"] == {"anyOf": [{"$ref": "#/components/schemas/Person"}, {"type": "null"}]}
    person = doc["components"]["schemas"]["Person"]
    assert person["properties"]["computers"]["items"] == {"$ref": "#/components/schemas/Computer"}
    assert person["properties"]["computers"]["maxItems"] == 100
    assert person["properties"]["computers_has_more"]["type"] == "boolean"
    assert "computers" not in person["required"] and "computers_has_more" not in person["required"]
    assert "owner" not in doc["components"]["schemas"]["ComputerCreate"]["properties"]
    params = {p["name"]: p for p in doc["paths"]["/computers"]["get"]["parameters"]}
    inc = params["include"]
    assert inc["style"] == "form" and inc["explode"] is False
    assert inc["schema"]["items"]["enum"] == [
        "owner", "owner.computers", "owner.computers.owner", "owner.computers.vendor",
        "vendor", "vendor.computers", "vendor.computers.owner", "vendor.computers.vendor"]
    assert "fields[*]" not in params
    tasks = {p["name"]: p for p in doc["paths"]["/tasks/{id}"]["get"]["parameters"]}
    assert tasks["include"]["schema"]["items"]["enum"] == ["tags"]


def test_openapi_include_enum_follows_allowed_includes(crest):
    s = crest(ALLOWED_APP)
    doc = s.get("/openapi.json").json()
    params = {p["name"]: p for p in doc["paths"]["/computers"]["get"]["parameters"]}
    assert params["include"]["schema"]["items"]["enum"] == ["owner", "owner.computers"]


def test_openapi_3_0_declares_a_nullable_embedded_row(crest):
    s = crest(RELATIONS_APP + "openapi: \"3.0\"\n")
    doc = s.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.0")
    assert doc["components"]["schemas"]["Computer"]["properties"]["owner"] == {
        "allOf": [{"$ref": "#/components/schemas/Person"}], "type": "object", "nullable": True}
