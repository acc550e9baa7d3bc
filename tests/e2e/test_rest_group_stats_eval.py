"""REST module aggregate routes: sample, group/{field}, stats, eval. Read-only: one seeded server per app."""
import json

import pytest

from conftest import assert_problem, on_store
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


def test_eval_count_of_id_is_allowed(srv, strict):
    # Flask-Restless's own example; id is in none of strict's allow-lists.
    assert ev(strict, {"functions": [fn("count", "id")]}).json() == {"count__id": len(CONTRACT_ROWS)}
    assert ev(srv, {"functions": [fn("count", "id"), fn("count")]}).json() == {"count__id": 6, "count": 6}


def test_eval_count_of_a_readable_field_counts_its_non_null_values(srv, strict):
    assert ev(srv, {"functions": [fn("count", "tag")]}).json() == {"count__tag": 4}
    assert ev(srv, {"functions": [fn("count", "score")]}).json() == {"count__score": 4}
    # created_at is readable but in no allow-list of strict
    assert ev(strict, {"functions": [fn("count", "created_at")]}).json() == {"count__created_at": 3}
    # sum still needs the stats allow-list
    assert_names(assert_problem(ev(strict, {"functions": [fn("sum", "id")]}), 400), "id")


# ---------------------------------------------------------------- sums past 64 bits

INT64_MAX = 9223372036854775807

# SQLite's avg is a float; PostgreSQL's avg of integers is a numeric (whole when large), made a float here.
# t, the type of the sum: SQLite's storage class; PostgreSQL's sum of bigints is a numeric, of scale 0 when whole.
AVG = on_store(sqlite="avg({})", postgres="CAST(avg({}) AS double precision)")
SUM_APP = CONTRACT_APP + """\
endpoints:
  - path: /stats/spent
    sql: SELECT sum(spent_time) AS total, """ + AVG.format("spent_time") + """ AS mean FROM tasks
    returns: one
  - path: /exact
    sql: WITH v(x) AS (VALUES (9223372036854775807), (1), (-2)) SELECT sum(x) AS s, """ + AVG.format("x") + """ AS a,
      """ + on_store(sqlite="typeof(sum(x))", postgres="CASE WHEN scale(sum(x)) = 0 THEN 'integer' ELSE 'real' END") + """
      AS t FROM v
    returns: one
  - path: /window
    sql: WITH v(x) AS (VALUES (1), (2), (4)) SELECT x, sum(x) OVER (ORDER BY x ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
      AS s FROM v
    returns: many
  - path: /none
    sql: SELECT sum(x) AS s, avg(x) AS a FROM (SELECT 1 AS x) AS one WHERE x = 0
    returns: one
"""


def test_sum_of_a_huge_value_is_not_a_500(crest):
    s = crest(SUM_APP)
    for spent in (INT64_MAX, 10):
        r = s.request("POST", "/tasks", json={"title": "big", "spent_time": spent})
        assert r.status_code == 201, r.text
    r = ev(s, {"functions": [fn("sum", "spent_time"), fn("avg", "spent_time"), fn("max", "spent_time")]})
    assert r.status_code == 200, r.text
    got = r.json()
    # past 64 bits the sum is a float (documented): INT64_MAX + 10 rounds to 2^63
    assert got == {"sum__spent_time": float(INT64_MAX + 10), "avg__spent_time": (INT64_MAX + 10) / 2,
                   "max__spent_time": INT64_MAX}
    assert isinstance(got["sum__spent_time"], float)
    r = s.get("/stats/spent")
    assert r.status_code == 200, r.text
    assert r.json() == {"total": float(INT64_MAX + 10), "mean": (INT64_MAX + 10) / 2}
    r = s.get("/tasks/stats", params={"fields": "spent_time"})
    assert r.status_code == 200, r.text
    assert r.json() == {"spent_time": {"min": 10, "max": INT64_MAX, "avg": (INT64_MAX + 10) / 2}}


def test_sum_is_exact_when_the_total_fits_in_64_bits(crest):
    s = crest(SUM_APP)
    # SQLite's own sum fails here ("integer overflow" after the second value)
    assert s.get("/exact").json() == {"s": INT64_MAX - 1, "a": (INT64_MAX - 1) / 3, "t": "integer"}
    for spent in (INT64_MAX, 0, 5):
        assert s.request("POST", "/tasks", json={"title": "t", "spent_time": spent}).status_code == 201
    r = ev(s, {"functions": [fn("sum", "spent_time")]})
    assert r.json() == {"sum__spent_time": float(INT64_MAX + 5)}
    r = s.request("DELETE", "/tasks/3")
    assert r.status_code == 204
    assert ev(s, {"functions": [fn("sum", "spent_time")]}).json() == {"sum__spent_time": INT64_MAX}


def test_sum_and_avg_keep_their_meaning_in_windows_and_empty_sets(crest):
    s = crest(SUM_APP)
    assert s.get("/window").json() == {"data": [{"x": 1, "s": 1}, {"x": 2, "s": 3}, {"x": 4, "s": 6}]}
    assert s.get("/none").json() == {"s": None, "a": None}
