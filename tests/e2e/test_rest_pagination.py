"""REST module pagination: page, page_size (default/min/max), has_more, total_objects, count=exact|estimated|none."""
import json

import pytest

from conftest import assert_problem
from rest_apps import CURSOR, assert_names, data_of, get_where, module_app, next_cursor, served

N_PAGED = 25
N_PLAIN = 105


@pytest.fixture(scope="module")
def paged(tmp_path_factory):
    app = module_app("""\
        url_prefix: /tasks
        page_size: {default: 10, min: 3, max: 15}
        """)
    rows = [{"title": f"t{i:02d}", "spent_time": i, "is_completed": i % 2 == 0} for i in range(1, N_PAGED + 1)]
    yield from served(tmp_path_factory, app, rows, name="paged", bulk=True)


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    rows = [{"title": f"p{i:03d}", "spent_time": i} for i in range(1, N_PLAIN + 1)]
    yield from served(tmp_path_factory, module_app("url_prefix: /tasks"), rows, name="plain", bulk=True)


def page(s, **params):
    r = s.get("/tasks", params=params)
    rows = data_of(r)
    return [o["spent_time"] for o in rows], r.json()["meta"]


def test_first_page_by_default(paged):
    vals, meta = page(paged)
    assert vals == list(range(1, 11))
    assert meta == {"object": "list", "total_objects": N_PAGED, "has_more": True, "next_cursor": CURSOR}


@pytest.mark.parametrize("n,expected,has_more", [
    (1, list(range(1, 11)), True),
    (2, list(range(11, 21)), True),
    (3, list(range(21, 26)), False),
    (4, [], False),
    (1000, [], False),
])
def test_pages(paged, n, expected, has_more):
    vals, meta = page(paged, page=n)
    assert vals == expected
    assert meta == {"object": "list", "total_objects": N_PAGED, "has_more": has_more,
                    "next_cursor": next_cursor(has_more)}


def test_last_full_page_has_no_more(paged):
    vals, meta = page(paged, page=5, page_size=5)
    assert vals == [21, 22, 23, 24, 25]
    assert meta["has_more"] is False and meta["total_objects"] == N_PAGED
    vals, meta = page(paged, page=4, page_size=5)
    assert vals == [16, 17, 18, 19, 20]
    assert meta["has_more"] is True


def test_page_size_within_bounds(paged):
    for n in (3, 7, 15):
        vals, _ = page(paged, page_size=n)
        assert vals == list(range(1, n + 1))


@pytest.mark.parametrize("asked,served_n", [(16, 15), (100, 15), (1000000, 15)])
def test_page_size_above_max_is_max(paged, asked, served_n):
    vals, meta = page(paged, page_size=asked)
    assert vals == list(range(1, served_n + 1))
    assert meta["has_more"] is True


def test_page_size_above_max_pages_by_max(paged):
    vals, meta = page(paged, page_size=100, page=2)
    assert vals == list(range(16, 26))
    assert meta["has_more"] is False


@pytest.mark.parametrize("asked", [1, 2])
def test_page_size_below_min_is_min(paged, asked):
    vals, _ = page(paged, page_size=asked)
    assert vals == [1, 2, 3]


@pytest.mark.parametrize("value", ["0", "-1", "-10", "abc", "1.5", "2x", "1e3"])
def test_bad_page_is_400(paged, value):
    p = assert_problem(paged.get("/tasks", params={"page": value}), 400)
    assert_names(p, "page")


@pytest.mark.parametrize("value", ["0", "-5", "abc", "2.5", "ten"])
def test_bad_page_size_is_400(paged, value):
    p = assert_problem(paged.get("/tasks", params={"page_size": value}), 400)
    assert_names(p, "page_size")


def test_count_exact_is_the_default(paged):
    _, meta = page(paged, count="exact", page_size=4)
    assert meta == {"object": "list", "total_objects": N_PAGED, "has_more": True, "next_cursor": CURSOR}


@pytest.mark.parametrize("n,size,has_more", [(1, 10, True), (2, 10, True), (3, 10, False), (4, 10, False),
                                             (5, 5, False), (4, 5, True), (1, 15, True), (2, 15, False)])
def test_count_none_omits_the_total_and_keeps_has_more(paged, n, size, has_more):
    vals, meta = page(paged, count="none", page=n, page_size=size)
    assert vals == list(range((n - 1) * size + 1, min(n * size, N_PAGED) + 1))
    assert meta == {"object": "list", "has_more": has_more, "next_cursor": next_cursor(has_more)}


def test_count_none_with_where(paged):
    r = get_where(paged, {"is_completed": True}, count="none", page_size=12)
    assert [o["spent_time"] for o in data_of(r)] == list(range(2, 25, 2))
    assert r.json()["meta"] == {"object": "list", "has_more": False, "next_cursor": None}
    r = get_where(paged, {"is_completed": True}, count="none", page_size=11)
    assert r.json()["meta"] == {"object": "list", "has_more": True, "next_cursor": CURSOR}


@pytest.mark.parametrize("value", ["maybe", "planned", "Estimated", "estimate", "1"])
def test_bad_count_is_400(paged, value):
    p = assert_problem(paged.get("/tasks", params={"count": value}), 400)
    assert_names(p, "count")


# ---------------------------------------------------------------- count=estimated


@pytest.mark.parametrize("n,size,has_more", [(1, 10, True), (3, 10, False), (2, 15, False), (5, 5, False)])
def test_count_estimated_is_the_exact_count_sqlite(paged, n, size, has_more):
    """SQLite keeps no estimate: count=estimated counts, and says so."""
    vals, meta = page(paged, count="estimated", page=n, page_size=size)
    assert vals == list(range((n - 1) * size + 1, min(n * size, N_PAGED) + 1))
    assert meta == {"object": "list", "total_objects": N_PAGED, "total_estimated": False, "has_more": has_more,
                    "next_cursor": next_cursor(has_more)}
    r = get_where(paged, {"is_completed": True}, count="estimated", page_size=5)
    assert r.json()["meta"] == {"object": "list", "total_objects": 12, "total_estimated": False, "has_more": True,
                                "next_cursor": CURSOR}


@pytest.mark.parametrize("where,total", [({"spent_time": {"$gt": 10}}, 15), ({"spent_time": {"$gt": 20}}, 5),
                                         ({"spent_time": {"$gt": 99}}, 0)])
def test_count_estimated_is_exact_up_to_the_page_size_max_postgres(paged, where, total):
    """At most page_size's max (15 here) rows: counted, as PostgREST counts up to db-max-rows."""
    r = get_where(paged, where, count="estimated", page_size=4)
    assert len(data_of(r)) == min(4, total)
    assert r.json()["meta"] == {"object": "list", "total_objects": total, "total_estimated": False,
                                "has_more": total > 4, "next_cursor": next_cursor(total > 4)}


N_ESTIMATED = 200


@pytest.fixture(scope="module")
def estimated(tmp_path_factory):
    """200 rows where spent_time (0 or 1) and is_completed (spent_time is 0) always agree: the planner takes
    them for independent and estimates a set of both at half its size."""
    app = module_app("""\
        url_prefix: /tasks
        page_size: {default: 10, max: 15}
        """)
    rows = [{"title": f"e{i:03d}", "spent_time": i % 2, "is_completed": i % 2 == 0} for i in range(N_ESTIMATED)]
    for s in served(tmp_path_factory, app, rows, name="estimated", bulk=True):
        s.store_dbs.psql("opts.db", "ANALYZE tasks")
        yield s


def plan_rows(s, cond):
    """PostgreSQL's own estimate of the rows of tasks where cond (SQL)."""
    out = s.store_dbs.psql("opts.db", f"EXPLAIN (FORMAT JSON) SELECT 1 FROM tasks WHERE {cond}")
    return round(json.loads(out)[0]["Plan"]["Plan Rows"])


IN_TITLES = [f"e{i:03d}" for i in range(0, 60, 2)]


@pytest.mark.parametrize("where,cond,exact", [
    ({}, "TRUE", N_ESTIMATED),
    ({"spent_time": 1}, "spent_time = 1", N_ESTIMATED // 2),
    ({"is_completed": False}, "is_completed = false", N_ESTIMATED // 2),
    ({"title": {"$in": IN_TITLES}}, "title = ANY(ARRAY[" + ", ".join(f"'{t}'" for t in IN_TITLES) + "])",
     len(IN_TITLES)),
], ids=["all", "eq", "bool", "in"])
def test_count_estimated_is_the_planners_estimate_past_the_page_size_max_postgres(estimated, where, cond, exact):
    est = plan_rows(estimated, cond)
    r = get_where(estimated, where, count="estimated", page_size=10)
    assert len(data_of(r)) == 10
    assert r.json()["meta"] == {"object": "list", "total_objects": max(est, 16), "total_estimated": True,
                                "has_more": True, "next_cursor": CURSOR}
    # The same request counted exactly, for comparison: the estimate is the planner's, not the count.
    assert get_where(estimated, where, page_size=10).json()["meta"]["total_objects"] == exact


def test_count_estimated_is_never_below_the_rows_served_postgres(estimated):
    """Rows that always agree (spent_time 0 and is_completed): the planner estimates about 50 of the 100. A page
    past the estimate still has rows, and more after them: the total is then at least what was seen."""
    where = {"spent_time": 0, "is_completed": True}
    est = plan_rows(estimated, "spent_time = 0 AND is_completed")
    assert est < 90, est  # what the case is about
    first = get_where(estimated, where, count="estimated", page_size=15).json()["meta"]
    assert first == {"object": "list", "total_objects": max(est, 16), "total_estimated": True, "has_more": True,
                     "next_cursor": CURSOR}
    r = get_where(estimated, where, count="estimated", page_size=15, page=6)  # rows 76..90 of 100
    assert len(data_of(r)) == 15
    assert r.json()["meta"] == {"object": "list", "total_objects": max(est, 91), "total_estimated": True,
                                "has_more": True, "next_cursor": CURSOR}
    r = get_where(estimated, where, count="estimated", page_size=15, page=7)  # rows 91..100, the last
    assert len(data_of(r)) == 10
    assert r.json()["meta"] == {"object": "list", "total_objects": max(est, 100), "total_estimated": True,
                                "has_more": False, "next_cursor": None}


def test_count_estimated_on_an_empty_page_postgres(estimated):
    r = estimated.get("/tasks", params={"count": "estimated", "page": 1000})
    assert data_of(r) == []
    assert r.json()["meta"] == {"object": "list", "total_objects": max(plan_rows(estimated, "TRUE"), 16),
                                "total_estimated": True, "has_more": False, "next_cursor": None}


def test_total_counts_the_filtered_set(paged):
    r = get_where(paged, {"spent_time": {"$gt": 20}}, page_size=3)
    assert [o["spent_time"] for o in data_of(r)] == [21, 22, 23]
    assert r.json()["meta"] == {"object": "list", "total_objects": 5, "has_more": True, "next_cursor": CURSOR}
    r = get_where(paged, {"spent_time": {"$gt": 20}}, page_size=3, page=2)
    assert [o["spent_time"] for o in data_of(r)] == [24, 25]
    assert r.json()["meta"] == {"object": "list", "total_objects": 5, "has_more": False, "next_cursor": None}


def test_empty_filtered_set(paged):
    r = get_where(paged, {"spent_time": {"$gt": 1000}})
    assert r.json() == {"data": [], "meta": {"object": "list", "total_objects": 0, "has_more": False,
                                             "next_cursor": None}}


def test_sort_then_page(paged):
    vals, meta = page(paged, sort_by="-spent_time", page=2, page_size=5)
    assert vals == [20, 19, 18, 17, 16]
    assert meta["has_more"] is True


def test_pages_do_not_overlap_and_cover_everything(paged):
    seen = []
    for n in range(1, 10):
        vals, meta = page(paged, page=n, page_size=4)
        seen += vals
        if not meta["has_more"]:
            break
    assert seen == list(range(1, N_PAGED + 1))


def test_default_page_size_is_20(plain):
    vals, meta = page(plain)
    assert vals == list(range(1, 21))
    assert meta == {"object": "list", "total_objects": N_PLAIN, "has_more": True, "next_cursor": CURSOR}


def test_default_max_page_size_is_100(plain):
    vals, meta = page(plain, page_size=1000)
    assert vals == list(range(1, 101))
    assert meta["has_more"] is True
    vals, _ = page(plain, page_size=100, page=2)
    assert vals == list(range(101, N_PLAIN + 1))


def test_default_min_page_size_is_1(plain):
    vals, meta = page(plain, page_size=1, page=N_PLAIN)
    assert vals == [N_PLAIN]
    assert meta["has_more"] is False


def test_default_last_page(plain):
    vals, meta = page(plain, page=6)
    assert vals == list(range(101, N_PLAIN + 1))
    assert meta == {"object": "list", "total_objects": N_PLAIN, "has_more": False, "next_cursor": None}
