"""Relations between models (issue 13 item 1): a ref field is a real foreign
key column (<name>_id, indexed) on both stores; a body naming a missing row
is 422 naming the field; deleting a referenced row follows on_delete
(restrict: 409 naming the relation; cascade; set_null); the app file refuses
relations to unknown models or fields with file:line."""
import sqlite3

import pytest

import pg
from conftest import CREST_BIN, STORE, assert_problem, db_rows, on_store, run_cli
from relation_apps import RELATIONS_APP, post


@pytest.fixture
def srv(crest):
    return crest(RELATIONS_APP)


def test_a_ref_field_is_served_and_written_as_name_id(srv):
    p = post(srv, "/people", {"name": "Lincoln"})
    c = post(srv, "/computers", {"name": "lab", "owner_id": p["id"]})
    assert c == {"id": c["id"], "name": "lab", "owner_id": p["id"], "vendor_id": None}
    assert srv.get(f"/computers/{c['id']}").json() == c
    r = srv.request("PATCH", f"/computers/{c['id']}", json={"owner_id": None})
    assert r.status_code == 200 and r.json()["owner_id"] is None


def test_a_body_naming_the_relation_instead_of_its_column_is_422(srv):
    p = post(srv, "/people", {"name": "Lincoln"})
    r = srv.request("POST", "/computers", json={"name": "lab", "owner": p["id"]})
    prob = assert_problem(r, 422)
    assert "owner" in prob["errors"], prob


def test_a_ref_value_must_be_an_integer(srv):
    r = srv.request("POST", "/computers", json={"name": "lab", "owner_id": "one"})
    prob = assert_problem(r, 422, "validation_failed")
    assert prob["errors"] == {"owner_id": "must be an integer"}


def test_create_naming_a_missing_row_is_422_naming_the_field(srv):
    r = srv.request("POST", "/computers", json={"name": "lab", "owner_id": 999})
    prob = assert_problem(r, 422, "missing_reference")
    assert prob["errors"] == {"owner_id": "no Person with id 999"}
    assert srv.get("/computers").json()["data"] == []


def test_bulk_create_naming_a_missing_row_names_the_row_and_creates_none(srv):
    p = post(srv, "/people", {"name": "Lincoln"})
    r = srv.request("POST", "/computers", json=[{"name": "a", "owner_id": p["id"]}, {"name": "b", "owner_id": 998}])
    prob = assert_problem(r, 422, "missing_reference")
    assert prob["errors"] == {"[1].owner_id": "no Person with id 998"}
    assert srv.get("/computers").json()["data"] == []


def test_update_naming_a_missing_row_is_422_and_changes_nothing(srv):
    p = post(srv, "/people", {"name": "Lincoln"})
    c = post(srv, "/computers", {"name": "lab", "owner_id": p["id"]})
    for method in ("PATCH", "PUT"):
        r = srv.request(method, f"/computers/{c['id']}", json={"owner_id": 997})
        prob = assert_problem(r, 422, "missing_reference")
        assert prob["errors"] == {"owner_id": "no Person with id 997"}
    assert srv.get(f"/computers/{c['id']}").json()["owner_id"] == p["id"]


def test_a_required_ref_must_be_given(srv):
    t = post(srv, "/tasks", {"title": "t"})
    r = srv.request("POST", "/task_tags", json={"task_id": t["id"]})
    prob = assert_problem(r, 422, "validation_failed")
    assert prob["errors"] == {"tag_id": "is required"}


def test_deleting_a_row_others_refer_to_with_restrict_is_409_naming_the_relation(srv):
    p = post(srv, "/people", {"name": "Lincoln"})
    c = post(srv, "/computers", {"name": "lab", "owner_id": p["id"]})
    r = srv.request("DELETE", f"/people/{p['id']}")
    prob = assert_problem(r, 409, "still_referenced")
    assert prob["detail"] == f"Person {p['id']} is still referenced by Computer.owner"
    assert srv.get(f"/people/{p['id']}").status_code == 200
    assert srv.request("DELETE", f"/computers/{c['id']}").status_code == 204
    assert srv.request("DELETE", f"/people/{p['id']}").status_code == 204
    assert srv.get(f"/people/{p['id']}").status_code == 404


def test_deleting_a_row_with_cascade_deletes_the_rows_referring_to_it(srv):
    t = post(srv, "/tasks", {"title": "t"})
    g = post(srv, "/tags", {"name": "g"})
    post(srv, "/task_tags", {"task_id": t["id"], "tag_id": g["id"]})
    assert len(srv.get("/task_tags").json()["data"]) == 1
    assert srv.request("DELETE", f"/tasks/{t['id']}").status_code == 204
    assert srv.get("/task_tags").json()["data"] == []
    assert srv.get(f"/tags/{g['id']}").status_code == 200


def test_deleting_a_row_with_set_null_clears_the_references(srv):
    v = post(srv, "/vendors", {"name": "Dell"})
    c = post(srv, "/computers", {"name": "lab", "vendor_id": v["id"]})
    assert srv.request("DELETE", f"/vendors/{v['id']}").status_code == 204
    assert srv.get(f"/computers/{c['id']}").json()["vendor_id"] is None


def test_the_foreign_key_is_the_databases_and_its_column_is_indexed(srv):
    p = post(srv, "/people", {"name": "Lincoln"})
    post(srv, "/computers", {"name": "lab", "owner_id": p["id"]})
    fks = db_rows(srv, "rel.db", on_store(
        sqlite="SELECT \"from\", \"table\", \"to\", on_delete FROM pragma_foreign_key_list('computer') ORDER BY \"from\"",
        postgres="SELECT a.attname, p.relname, 'id', CASE k.confdeltype WHEN 'r' THEN 'RESTRICT' "
                 "WHEN 'n' THEN 'SET NULL' WHEN 'c' THEN 'CASCADE' END FROM pg_constraint k "
                 "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_class p ON p.oid = k.confrelid "
                 "JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1] "
                 "WHERE k.contype = 'f' AND c.relname = 'computer' ORDER BY a.attname"))
    assert fks == [("owner_id", "person", "id", "RESTRICT"), ("vendor_id", "vendor", "id", "SET NULL")]
    idx = db_rows(srv, "rel.db", on_store(
        sqlite="SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'computer' ORDER BY name",
        postgres="SELECT indexname FROM pg_indexes WHERE tablename = 'computer' AND indexname <> 'computer_pkey' "
                 "ORDER BY indexname"))
    assert idx == [("computer_owner_id_idx",), ("computer_vendor_id_idx",)]
    # Writing past crest is refused by the database itself.
    if STORE == "postgres":
        with pytest.raises(pg.pgcluster.ClusterError, match="computer_owner_id_fkey"):
            db_rows(srv, "rel.db", "INSERT INTO computer (name, owner_id) VALUES ('x', 12345)")
    else:
        con = sqlite3.connect(srv.dir / "rel.db")
        con.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY constraint failed"):
            con.execute("INSERT INTO computer (name, owner_id) VALUES ('x', 12345)")
        con.close()


def test_a_restart_keeps_the_relations_and_changes_nothing(srv, crest):
    p = post(srv, "/people", {"name": "Lincoln"})
    post(srv, "/computers", {"name": "lab", "owner_id": p["id"]})
    srv.stop()
    text = srv.app_path.read_text()
    s2 = crest(text)  # another folder: on SQLite a new file, on PostgreSQL the same database
    r = s2.request("POST", "/computers", json={"name": "x", "owner_id": 4242})
    assert_problem(r, 422, "missing_reference")


BAD = [
    ("a ref to an unknown model",
     "    fields:\n      owner: {type: ref, model: Persn}\n", 7, ["model Computer: field owner: there is no model 'Persn'"]),
    ("a ref without its model",
     "    fields:\n      owner: {type: ref}\n", 7, ["a ref needs the model"]),
    ("has_many via a field that is not a ref to the model",
     "    fields:\n      name: {type: string}\n      people: {has_many: Person, via: name}\n", 8,
     ["model Computer: field people: model Person has no ref field 'name' to Computer"]),
    ("has_many of a model without a ref back",
     "    fields:\n      people: {has_many: Person}\n", 7, ["model Computer: field people: model Person has no ref field to Computer: name it with via"]),
    ("has_many to an unknown model",
     "    fields:\n      parts: {has_many: Part}\n", 7, ["no model 'Part'"]),
    ("through a join model without a ref to each side",
     "    fields:\n      people: {has_many: Person, through: Person}\n", 7,
     ["the join model Person needs one ref field to Computer and one to Person"]),
    ("set_null on a required ref",
     "    fields:\n      owner: {type: ref, model: Person, on_delete: set_null, required: true}\n", None,
     ["on_delete set_null needs a field that is not required"]),
    ("an unknown on_delete",
     "    fields:\n      owner: {type: ref, model: Person, on_delete: nothing}\n", 7,
     ["expected restrict, cascade or set_null"]),
    ("has_many with a type",
     "    fields:\n      parts: {type: int, has_many: Person}\n", 7, ["has_many is a relation, without a type"]),
    ("a ref and a field of the same column",
     "    fields:\n      owner: {type: ref, model: Person}\n      owner_id: {type: int}\n", None,
     ["owner_id is defined twice"]),
]


@pytest.mark.parametrize("name,fields,line,words", BAD, ids=[b[0] for b in BAD])
def test_the_app_file_refuses_a_bad_relation_with_its_line(tmp_path, name, fields, line, words):
    text = ("database: sqlite:x.db\nmodels:\n  Person:\n    fields: {name: string}\n  Computer:\n" + fields)
    p = tmp_path / "app.yaml"
    p.write_text(text)
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 1, (r.returncode, r.out, r.err)
    assert f"{p}:{line}:" in r.err if line else f"{p}:" in r.err, r.err
    for w in words:
        assert w in r.err, (w, r.err)


# ---- a model gaining a relation on an existing database ----

V1 = """\
database: sqlite:{db}
models:
  Person:
    table: person
    fields: {{name: string}}
  Computer:
    table: computer
    fields:
      name: {{type: string}}
{extra}modules:
  people: {{model: Person}}
  computers: {{model: Computer}}
"""


def test_a_ref_field_added_to_an_existing_table_is_a_foreign_key(crest, tmp_path):
    db = str(tmp_path / "mig.db")
    s1 = crest(V1.format(db=db, extra=""))
    p = post(s1, "/people", {"name": "Ann"})
    c = post(s1, "/computers", {"name": "old"})
    s1.stop()
    s2 = crest(V1.format(db=db, extra="      owner: {type: ref, model: Person}\n"))
    assert s2.get(f"/computers/{c['id']}").json() == {"id": c["id"], "name": "old", "owner_id": None}
    assert_problem(s2.request("POST", "/computers", json={"name": "x", "owner_id": 999}), 422, "missing_reference")
    assert post(s2, "/computers", {"name": "new", "owner_id": p["id"]})["owner_id"] == p["id"]
    assert_problem(s2.request("DELETE", f"/people/{p['id']}"), 409, "still_referenced")


def test_an_existing_integer_column_becoming_a_ref(crest, tmp_path):
    """PostgreSQL adds the foreign key to the column; SQLite cannot add one to
    an existing column, and the start stops saying so."""
    db = str(tmp_path / "mig2.db")
    s1 = crest(V1.format(db=db, extra="      owner_id: {type: int}\n"))
    p = post(s1, "/people", {"name": "Ann"})
    post(s1, "/computers", {"name": "old", "owner_id": p["id"]})
    s1.stop()
    v2 = V1.format(db=db, extra="      owner: {type: ref, model: Person}\n")
    if STORE == "postgres":
        s2 = crest(v2)
        assert_problem(s2.request("POST", "/computers", json={"name": "x", "owner_id": 999}), 422,
                       "missing_reference")
        assert_problem(s2.request("DELETE", f"/people/{p['id']}"), 409, "still_referenced")
    else:
        app = tmp_path / "v2.yaml"
        app.write_text(v2)
        r = run_cli([CREST_BIN, "serve", str(app), "--listen", "127.0.0.1:0", "--workers", "1"], cwd=str(tmp_path),
                    timeout=30)
        assert r.returncode != 0 and '"listening"' not in r.err
        assert "model Computer: column computer.owner_id exists without a foreign key, and SQLite cannot add one " \
               "to a column" in r.err, r.err


def test_a_ref_whose_column_points_elsewhere_stops_the_start(crest, store_dbs, tmp_path):
    db = str(tmp_path / "mig3.db")
    s1 = crest(V1.format(db=db, extra="      owner: {type: ref, model: Computer}\n"))
    s1.stop()
    app = tmp_path / "v2.yaml"
    text = V1.format(db=db, extra="      owner: {type: ref, model: Person}\n")
    app.write_text(store_dbs.app_text(text) if STORE == "postgres" else text)
    r = run_cli([CREST_BIN, "serve", str(app), "--listen", "127.0.0.1:0"], cwd=str(tmp_path), timeout=30)
    assert r.returncode != 0 and '"listening"' not in r.err
    assert "model Computer: column computer.owner_id is a foreign key to computer, not to person (model Person)" \
        in r.err, r.err
