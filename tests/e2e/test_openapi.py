"""The OpenAPI document (GET /openapi.json, `crest openapi`) and the docs page:
made from what the app declares, in 3.1 or 3.0.3, every served route in it."""
import json
import os

import pytest

from conftest import CREST_BIN, assert_problem, run_cli
from rest_apps import EXAMPLE_APP, example_app





@pytest.fixture
def srv(crest):
    return crest(example_app())


def test_served_document_is_the_cli_document(srv, tmp_path):
    served = srv.get("/openapi.json").json()
    r = run_cli([CREST_BIN, "openapi", EXAMPLE_APP], cwd=str(tmp_path))
    assert r.returncode == 0, r.err
    assert json.loads(r.out) == served
    assert served["openapi"] == "3.1.0"
    assert served["info"]["title"] == "Tasks API"


def test_every_route_is_documented(srv):
    doc = srv.get("/openapi.json").json()
    paths = doc["paths"]
    want = {"/tasks": {"get", "post"}, "/tasks/{id}": {"get", "put", "patch", "delete"},
            "/tasks/sample": {"get"}, "/tasks/group/{field}": {"get"}, "/tasks/stats": {"get"},
            "/tasks/eval": {"get"}, "/stats/spent": {"get"}, "/healthz": {"get"}, "/readyz": {"get"}, "/openapi.json": {"get"},
            "/docs": {"get"}, "/docs/{file}": {"get"}, "/metrics": {"get"}, "/projects/{id}": {"delete"},
            "/reports/by-state": {"get"}, "/reports/open": {"get"}, "/tasks/changes": {"get"}}
    assert set(paths) == set(want)
    for p, methods in want.items():
        assert set(paths[p]) == methods, p
    ids = [op["operationId"] for item in paths.values() for op in item.values()]
    assert len(ids) == len(set(ids)), "operationIds are unique"
    assert {t["name"] for t in doc["tags"]} >= {"tasks", "stats", "projects", "reports"}


def test_sql_endpoint_without_summary_gets_one(crest):
    # Issue 10 item 12: an operation without a summary is an error of @redocly/cli's recommended ruleset.
    s = crest("database: sqlite:s.db\nendpoints:\n  - path: /stats/{day}\n    sql: SELECT :day AS day\n"
              "  - method: DELETE\n    path: /stats\n    sql: SELECT 1\n    returns: none\n"
              "    summary: Forget the stats\n")
    paths = s.get("/openapi.json").json()["paths"]
    assert paths["/stats/{day}"]["get"]["summary"] == "GET /stats/{day}"
    assert paths["/stats"]["delete"]["summary"] == "Forget the stats"
    for p, item in paths.items():
        for m, op in item.items():
            assert op.get("summary"), (m, p)


def test_model_schemas(srv):
    s = srv.get("/openapi.json").json()["components"]["schemas"]
    task = s["Task"]
    assert set(task["properties"]) == {"id", "title", "is_completed", "spent_time", "created_at", "hours"}
    assert task["properties"]["created_at"]["format"] == "date-time"
    assert task["properties"]["title"]["maxLength"] == 200
    create = s["TaskCreate"]
    assert create["required"] == ["title"]
    assert "created_at" not in create["properties"] and create["additionalProperties"] is False
    assert "required" not in s["TaskUpdate"]
    assert s["Problem"]["required"] == ["status", "title", "code"]


def test_where_and_sort_by_describe_their_allowed_fields(srv):
    op = srv.get("/openapi.json").json()["paths"]["/tasks"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert "$icontains" in params["where"]["description"] and "is_completed" in params["where"]["description"]
    assert "spent_time" in params["sort_by"]["description"]
    assert params["count"]["schema"]["enum"] == ["exact", "estimated", "none"]
    for status in ("200", "400"):
        assert status in op["responses"]


def test_list_meta_says_whether_the_total_is_an_estimate(srv):
    meta = srv.get("/openapi.json").json()["components"]["schemas"]["ListMeta"]
    assert meta["properties"]["total_estimated"]["type"] == "boolean"
    assert "total_estimated" not in meta["required"]


def test_openapi_30_variant(tmp_path):
    r = run_cli([CREST_BIN, "openapi", EXAMPLE_APP, "--openapi", "3.0"], cwd=str(tmp_path))
    doc = json.loads(r.out)
    assert doc["openapi"] == "3.0.3"
    text = json.dumps(doc)
    assert '"null"' not in text, "3.0 has no null type: nullable is used"
    assert doc["components"]["schemas"]["Task"]["properties"]["spent_time"]["nullable"] is True
    p = tmp_path / "a.yaml"
    p.write_text(open(EXAMPLE_APP).read() + '\nopenapi: "3.0"\n')
    r = run_cli([CREST_BIN, "openapi", str(p)], cwd=str(tmp_path))
    assert json.loads(r.out)["openapi"] == "3.0.3"
    r = run_cli([CREST_BIN, "openapi", EXAMPLE_APP, "--openapi", "2.0"], cwd=str(tmp_path))
    assert r.returncode == 2


def test_docs_page_and_its_files(srv):
    r = srv.get("/docs")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "swagger-ui-bundle.js" in r.text and "Tasks API" in r.text
    r = srv.get("/docs/init.js")
    assert r.status_code == 200 and "/openapi.json" in r.text
    assert_problem(srv.get("/docs/..%2F..%2Fetc%2Fpasswd"), 404)
    assert_problem(srv.get("/docs/nope.js"), 404)


def test_docs_can_be_turned_off(crest):
    s = crest(example_app() + "\ndocs: false\n")
    assert_problem(s.get("/docs"), 404)
    doc = s.get("/openapi.json").json()
    assert "/docs" not in doc["paths"] and "/openapi.json" in doc["paths"]


def test_info_and_servers_from_the_app_file(crest):
    s = crest("database: sqlite:x.db\ninfo: {title: T, version: '2.1', description: D}\n"
              "servers: [https://api.example.com/, {url: /local, description: here}]\n"
              "endpoints:\n  - path: /one\n    sql: SELECT 1 AS one\n    returns: one\n")
    doc = s.get("/openapi.json").json()
    assert doc["info"] == {"title": "T", "version": "2.1", "description": "D"}
    assert doc["servers"] == [{"url": "https://api.example.com/"}, {"url": "/local", "description": "here"}]
    op = doc["paths"]["/one"]["get"]
    assert op["operationId"] == "get_one"
    assert "404" in op["responses"]
