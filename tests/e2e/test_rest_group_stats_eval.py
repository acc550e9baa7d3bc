"""REST module aggregate routes: sample, group/{field}, stats, eval. Read-only: one seeded server per app."""
import json

import pytest

from conftest import assert_problem
from rest_apps import (ALL_TITLES, CONTRACT_APP, CONTRACT_ROWS, QUERY_APP, QUERY_ROWS, assert_names, data_of,
                       get_where, served, titles)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from served(tmp_path_factory, QUERY_APP, QUERY_ROWS, name="agg")


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    yield from served(tmp_path_factory, CONTRACT_APP, CONTRACT_ROWS, name="aggstrict")


SPENT = [r["spent_time"] for r in QUERY_ROWS]  # 10 20 30 40 0 55
SPENT_SUM = sum(SPENT)  # 155


# ---------------------------------------------------------------- sample


def test_sample_serves_a_list_body(srv):
    r = srv.get("/tasks/sample")
    assert titles(r) == ALL_TITLES  # at most page_size (20) rows: all 6, each once
    body = r.json()
    assert set(body) == {"data", "meta"}
    assert body["meta"]["object"] == "list"
    assert body["meta"]["total_objects"] == 6


def test_sample_objects_are_whole_rows(srv):
    by_title = {o["title"]: o for o in srv.get("/tasks").json()["data"]}
    for o in data_of(srv.get("/tasks/sample")):
        assert o == by_title[o["title"]]


@pytest.mark.parametrize("n", [1, 2, 5])
def test_sample_returns_page_size_rows_at_most(srv, n):
    got = titles(srv.get("/tasks/sample", params={"page_size": n}))
    assert len(got) == n and got <= ALL_TITLES


def test_sample_is_random(srv):
    seen = set()
    with srv.client() as c:
        for _ in range(40):
            r = c.get("/tasks/sample", params={"page_size": 1})
            seen |= titles(r)
    assert len(seen) >= 3, seen


def test_sample_order_varies(srv):
    orders = set()
    with srv.client() as c:
        for _ in range(20):
            orders.add(tuple(o["title"] for o in data_of(c.get("/tasks/sample"))))
    assert len(orders) > 1


def test_sample_with_where(srv):
    r = get_where(srv, {"is_completed": True}, path="/tasks/sample")
    assert titles(r) == {"alpha beta", "100% done"}
    assert r.json()["meta"]["total_objects"] == 2
    r = get_where(srv, {"is_completed": False}, path="/tasks/sample", page_size=2)
    got = titles(r)
    assert len(got) == 2 and got <= {"Alpha", "Gamma", "under_score", "underXscore"}
    assert r.json()["meta"]["total_objects"] == 4


def test_sample_of_an_empty_set(srv):
    r = get_where(srv, {"spent_time": {"$gt": 999}}, path="/tasks/sample")
    assert data_of(r) == []
    assert r.json()["meta"]["total_objects"] == 0


def test_sample_bad_page_size_is_400(srv):
    assert_problem(srv.get("/tasks/sample", params={"page_size": "abc"}), 400)
    assert_problem(srv.get("/tasks/sample", params={"page_size": "0"}), 400)


def test_sample_page_size_above_max_is_capped(srv):
    assert len(data_of(srv.get("/tasks/sample", params={"page_size": 100000}))) == 6


# ---------------------------------------------------------------- group


def groups(r, envelope="data"):
    rows = data_of(r, envelope)
    for g in rows:
        assert set(g) == {"value", "count"}, g
    return rows


def test_group_counts_each_value(srv):
    r = srv.get("/tasks/group/priority")
    got = groups(r)
    assert sorted((g["value"], g["count"]) for g in got) == [(1, 2), (2, 1), (3, 3)]
    assert isinstance(r.json().get("meta"), dict)
    assert set(r.json()) == {"data", "meta"}


def test_group_by_bool_serves_booleans(srv):
    got = {g["value"]: g["count"] for g in groups(srv.get("/tasks/group/is_completed"))}
    assert got == {False: 4, True: 2}
    for v in got:
        assert v is True or v is False


def test_group_by_a_nullable_field_has_a_null_group(srv):
    got = groups(srv.get("/tasks/group/tag"))
    assert sorted(((g["value"] or ""), g["count"]) for g in got) == [("", 2), ("blue", 1), ("green", 1), ("red", 2)]
    assert any(g["value"] is None and g["count"] == 2 for g in got)


@pytest.mark.parametrize("sort_by,values", [
    ("count", [2, 1, 3]),
    ("-count", [3, 1, 2]),
    ("value", [1, 2, 3]),
    ("-value", [3, 2, 1]),
])
def test_group_sort_by(srv, sort_by, values):
    got = groups(srv.get("/tasks/group/priority", params={"sort_by": sort_by}))
    assert [g["value"] for g in got] == values


def test_group_with_where(srv):
    got = groups(get_where(srv, {"is_completed": False}, path="/tasks/group/priority", sort_by="value"))
    assert [(g["value"], g["count"]) for g in got] == [(1, 1), (3, 3)]


def test_group_of_an_empty_set(srv):
    assert groups(get_where(srv, {"spent_time": {"$gt": 999}}, path="/tasks/group/priority")) == []


@pytest.mark.parametrize("sort_by,name", [("title", "title"), ("-priority", "priority"), ("counts", "counts")])
def test_group_bad_sort_by_is_400(srv, sort_by, name):
    p = assert_problem(srv.get("/tasks/group/priority", params={"sort_by": sort_by}), 400)
    assert_names(p, name)


def test_group_by_unknown_field_is_400(srv):
    p = assert_problem(srv.get("/tasks/group/nope"), 400)
    assert_names(p, "nope")


def test_group_outside_grouping_allowed_fields_is_400(strict):
    got = {g["value"]: g["count"] for g in groups(strict.get("/tasks/group/is_completed"))}
    assert got == {False: 2, True: 1}
    for field in ("title", "spent_time", "id"):
        p = assert_problem(strict.get(f"/tasks/group/{field}"), 400)
        assert_names(p, field)


# ---------------------------------------------------------------- stats


def test_stats_of_one_field(srv):
    r = srv.get("/tasks/stats", params={"fields": "spent_time"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"spent_time"}
    st = body["spent_time"]
    assert set(st) == {"min", "max", "avg"}
    assert st["min"] == 0 and st["max"] == 55
    assert isinstance(st["avg"], float)
    assert st["avg"] == pytest.approx(SPENT_SUM / 6)


def test_stats_of_several_fields(srv):
    body = srv.get("/tasks/stats", params={"fields": "spent_time,score"}).json()
    assert set(body) == {"spent_time", "score"}
    # nulls are left out: 1.5, 2.5, 4.0, 0.0
    assert body["score"]["min"] == 0.0 and body["score"]["max"] == 4.0
    assert body["score"]["avg"] == pytest.approx(2.0) and isinstance(body["score"]["avg"], float)


def test_stats_avg_is_a_float_even_when_whole(srv):
    r = get_where(srv, {"is_completed": True}, path="/tasks/stats", fields="spent_time")
    assert r.json() == {"spent_time": {"min": 20, "max": 40, "avg": 30.0}}
    assert isinstance(r.json()["spent_time"]["avg"], float)


def test_stats_of_an_empty_set_are_nulls(srv):
    r = get_where(srv, {"spent_time": {"$gt": 999}}, path="/tasks/stats", fields="spent_time,score")
    assert r.status_code == 200, r.text
    assert r.json() == {"spent_time": {"min": None, "max": None, "avg": None},
                        "score": {"min": None, "max": None, "avg": None}}


def test_stats_of_an_all_null_set_are_nulls(srv):
    r = get_where(srv, {"score": None}, path="/tasks/stats", fields="score")
    assert r.json() == {"score": {"min": None, "max": None, "avg": None}}


@pytest.mark.parametrize("fields,name", [("nope", "nope"), ("spent_time,nope", "nope")])
def test_stats_of_an_unknown_field_is_400(srv, fields, name):
    p = assert_problem(srv.get("/tasks/stats", params={"fields": fields}), 400)
    assert_names(p, name)


def test_stats_outside_stats_allowed_fields_is_400(strict):
    assert strict.get("/tasks/stats", params={"fields": "spent_time"}).json() == {
        "spent_time": {"min": 10, "max": 30, "avg": 20.0}}
    for fields, name in (("title", "title"), ("spent_time,is_completed", "is_completed"), ("id", "id")):
        p = assert_problem(strict.get("/tasks/stats", params={"fields": fields}), 400)
        assert_names(p, name)


# ---------------------------------------------------------------- eval


def ev(s, q):
    return s.get("/tasks/eval", params={"q": q if isinstance(q, str) else json.dumps(q)})


def fn(name, field=None):
    return {"name": name, "field": field} if field else {"name": name}


@pytest.mark.parametrize("name,expected", [
    ("sum", SPENT_SUM), ("min", 0), ("max", 55), ("count", 6),
])
def test_eval_one_function(srv, name, expected):
    r = ev(srv, {"functions": [fn(name, "spent_time")]})
    assert r.status_code == 200, r.text
    assert r.json() == {f"{name}__spent_time": expected}


def test_eval_avg_is_a_float(srv):
    body = ev(srv, {"functions": [fn("avg", "spent_time")]}).json()
    assert set(body) == {"avg__spent_time"}
    assert isinstance(body["avg__spent_time"], float)
    assert body["avg__spent_time"] == pytest.approx(SPENT_SUM / 6)


def test_eval_count_without_a_field(srv):
    assert ev(srv, {"functions": [fn("count")]}).json() == {"count": 6}


def test_eval_several_functions(srv):
    q = {"functions": [fn("sum", "spent_time"), fn("max", "priority"), fn("min", "score"), fn("count")]}
    assert ev(srv, q).json() == {"sum__spent_time": SPENT_SUM, "max__priority": 3, "min__score": 0.0, "count": 6}


def test_eval_sum_of_floats(srv):
    body = ev(srv, {"functions": [fn("sum", "score")]}).json()
    assert body == {"sum__score": pytest.approx(8.0)}


@pytest.mark.parametrize("q", [{"functions": []}, {}])
def test_eval_without_functions_is_an_empty_object(srv, q):
    r = ev(srv, q)
    assert r.status_code == 200, r.text
    assert r.json() == {}


@pytest.mark.parametrize("q,name", [
    ({"functions": [fn("median", "spent_time")]}, "median"),
    ({"functions": [fn("sum", "nope")]}, "nope"),
    ({"functions": [fn("sum", "spent_time"), fn("avg", "bogus")]}, "bogus"),
])
def test_eval_unknown_function_or_field_is_400(srv, q, name):
    p = assert_problem(ev(srv, q), 400)
    assert_names(p, name)


@pytest.mark.parametrize("q", ['{"functions":', "not json", "[1]", '{"functions": "sum"}', '{"functions": [5]}',
                               '{"functions": [{"field": "spent_time"}]}', '{"functions": [{"name": 5}]}'])
def test_eval_malformed_q_is_400(srv, q):
    assert_problem(ev(srv, q), 400)
