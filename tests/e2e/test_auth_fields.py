"""Field-level access: a field readable or writable only with a permission —
hidden from serializers, filters, sorts, groups and stats of other users, and
read-only (422) for them."""

import pytest

from conftest import JWT_ENV, assert_problem, bearer
from rest_apps import FIELD_ACCESS_APP as APP


def h(*perms):
    return bearer("u", permissions=list(perms))


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    from conftest import CREST_BIN, Server
    d = tmp_path_factory.mktemp("fields")
    (d / "app.yaml").write_text(APP)
    s = Server([CREST_BIN, "serve", str(d / "app.yaml"), "--listen", "127.0.0.1:0", "--workers", "1"], cwd=str(d),
               env=JWT_ENV)
    s.wait_listening()
    r = s.request("POST", "/people", json={"name": "ann", "salary": 100, "rating": 3}, headers=h("hr.admin"))
    assert r.status_code == 201, r.text
    s.id = r.json()["id"]
    yield s
    s.stop()


def test_admin_sees_and_writes_everything(srv):
    p = srv.get(f"/people/{srv.id}", headers=h("hr.admin")).json()
    assert p["salary"] == 100 and p["rating"] == 3


def test_reader_sees_salary_but_cannot_write_it(srv):
    assert srv.get(f"/people/{srv.id}", headers=h("hr.read")).json()["salary"] == 100
    p = assert_problem(srv.request("PATCH", f"/people/{srv.id}", json={"salary": 1}, headers=h("hr.read")), 422)
    assert "salary" in p["errors"]


def test_others_do_not_see_it_anywhere(srv):
    o = h()
    assert "salary" not in srv.get(f"/people/{srv.id}", headers=o).json()
    assert all("salary" not in p for p in srv.get("/people", headers=o).json()["data"])
    assert_problem(srv.get("/people", params={"where": '{"salary": {"$gt": 50}}'}, headers=o), 400)
    assert_problem(srv.get("/people", params={"sort_by": "-salary"}, headers=o), 400)
    assert_problem(srv.get("/people/group/salary", headers=o), 400)
    assert_problem(srv.get("/people/stats", params={"fields": "salary"}, headers=o), 400)
    assert srv.get("/people/stats", params={"fields": "salary"}, headers=h("hr.read")).json()["salary"]["max"] == 100


def test_readable_but_not_writable_field(srv):
    o = h()
    assert srv.get(f"/people/{srv.id}", headers=o).json()["rating"] == 3
    p = assert_problem(srv.request("POST", "/people", json={"name": "bob", "rating": 5}, headers=o), 422)
    assert "rating" in p["errors"]
    r = srv.request("POST", "/people", json={"name": "bob"}, headers=o)
    assert r.status_code == 201 and r.json()["rating"] == 0
