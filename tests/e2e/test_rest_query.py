"""REST module queries: every `where` operator (null semantics, wildcards, literal substrings), nesting,
sort_by, allow-lists, and the 400s for everything outside them. Read-only: one seeded server per app."""
import json
from urllib.parse import quote

import pytest

from conftest import assert_problem
from rest_apps import (ALL_TITLES, CONTRACT_APP, CONTRACT_ROWS, QUERY_APP, QUERY_ROWS, assert_names, get_where,
                       parse_utc, served, title_list, titles)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from served(tmp_path_factory, QUERY_APP, QUERY_ROWS, name="query")


@pytest.fixture(scope="module")
def strict(tmp_path_factory):
    yield from served(tmp_path_factory, CONTRACT_APP, CONTRACT_ROWS, name="strict")


FOUR_TAGGED = {"Alpha", "alpha beta", "100% done", "under_score"}

WHERE_CASES = [
    # (id, where, titles)
    ("bare_value_is_eq", {"tag": "red"}, {"Alpha", "100% done"}),
    ("eq", {"spent_time": {"$eq": 20}}, {"alpha beta"}),
    ("eq_is_case_sensitive", {"title": "alpha"}, set()),
    ("eq_string", {"title": {"$eq": "Gamma"}}, {"Gamma"}),
    ("eq_true", {"is_completed": True}, {"alpha beta", "100% done"}),
    ("eq_false", {"is_completed": False}, {"Alpha", "Gamma", "under_score", "underXscore"}),
    ("eq_float", {"score": 2.5}, {"alpha beta"}),
    ("eq_zero", {"spent_time": 0}, {"under_score"}),
    ("ne", {"spent_time": {"$ne": 10}}, ALL_TITLES - {"Alpha"}),
    ("null_is_null", {"tag": None}, {"Gamma", "underXscore"}),
    ("eq_null_is_null", {"tag": {"$eq": None}}, {"Gamma", "underXscore"}),
    ("ne_null_is_not_null", {"tag": {"$ne": None}}, FOUR_TAGGED),
    ("ne_value_keeps_nulls", {"tag": {"$ne": "red"}}, {"alpha beta", "Gamma", "under_score", "underXscore"}),
    ("null_float", {"score": None}, {"Gamma", "underXscore"}),
    ("in", {"tag": {"$in": ["red", "green"]}}, {"Alpha", "100% done", "under_score"}),
    ("in_ints", {"spent_time": {"$in": [0, 55, 999]}}, {"under_score", "underXscore"}),
    ("in_one", {"title": {"$in": ["Gamma"]}}, {"Gamma"}),
    ("in_empty_matches_nothing", {"tag": {"$in": []}}, set()),
    ("nin_keeps_nulls", {"tag": {"$nin": ["red"]}}, {"alpha beta", "Gamma", "under_score", "underXscore"}),
    ("nin_ints", {"spent_time": {"$nin": [0, 10, 20]}}, {"Gamma", "100% done", "underXscore"}),
    ("nin_empty_matches_everything", {"tag": {"$nin": []}}, ALL_TITLES),
    ("lt", {"spent_time": {"$lt": 20}}, {"Alpha", "under_score"}),
    ("le", {"spent_time": {"$le": 20}}, {"Alpha", "alpha beta", "under_score"}),
    ("gt", {"spent_time": {"$gt": 40}}, {"underXscore"}),
    ("ge", {"spent_time": {"$ge": 40}}, {"100% done", "underXscore"}),
    ("gt_float_skips_nulls", {"score": {"$gt": 2}}, {"alpha beta", "100% done"}),
    ("lt_float_skips_nulls", {"score": {"$lt": 2}}, {"Alpha", "under_score"}),
    ("operators_are_anded", {"spent_time": {"$gt": 10, "$lt": 40}}, {"alpha beta", "Gamma"}),
    ("keys_are_anded", {"tag": "red", "is_completed": True}, {"100% done"}),
    ("exists_true", {"tag": {"$exists": True}}, FOUR_TAGGED),
    ("exists_false", {"tag": {"$exists": False}}, {"Gamma", "underXscore"}),
    ("like_is_case_sensitive", {"title": {"$like": "alpha%"}}, {"alpha beta"}),
    ("like_without_wildcards_is_exact", {"title": {"$like": "Alpha"}}, {"Alpha"}),
    ("like_underscore_is_a_wildcard", {"title": {"$like": "under_score"}}, {"under_score", "underXscore"}),
    ("like_percent_is_a_wildcard", {"title": {"$like": "%a"}}, {"Alpha", "alpha beta", "Gamma"}),
    ("like_upper", {"title": {"$like": "ALPHA%"}}, set()),
    ("ilike_ignores_case", {"title": {"$ilike": "ALPHA%"}}, {"Alpha", "alpha beta"}),
    ("ilike_underscore_is_a_wildcard", {"title": {"$ilike": "UNDER_SCORE"}}, {"under_score", "underXscore"}),
    ("contains", {"title": {"$contains": "lpha"}}, {"Alpha", "alpha beta"}),
    ("contains_is_case_sensitive", {"title": {"$contains": "ALPHA"}}, set()),
    ("contains_percent_is_literal", {"title": {"$contains": "%"}}, {"100% done"}),
    ("contains_underscore_is_literal", {"title": {"$contains": "_"}}, {"under_score"}),
    ("contains_pattern_is_literal", {"title": {"$contains": "r_s"}}, {"under_score"}),
    ("contains_percent_pattern_is_literal", {"title": {"$contains": "a%a"}}, set()),
    ("icontains", {"title": {"$icontains": "ALPHA"}}, {"Alpha", "alpha beta"}),
    ("icontains_percent_is_literal", {"title": {"$icontains": "0% D"}}, {"100% done"}),
    ("icontains_underscore_is_literal", {"title": {"$icontains": "R_S"}}, {"under_score"}),
    ("or", {"$or": [{"tag": "blue"}, {"spent_time": {"$ge": 50}}]}, {"alpha beta", "underXscore"}),
    ("and", {"$and": [{"is_completed": False}, {"spent_time": {"$gt": 10}}]}, {"Gamma", "underXscore"}),
    ("not", {"$not": {"spent_time": {"$lt": 30}}}, {"Gamma", "100% done", "underXscore"}),
    ("not_or", {"$not": {"$or": [{"is_completed": True}, {"spent_time": 0}]}}, {"Alpha", "Gamma", "underXscore"}),
    ("not_null", {"$not": {"tag": None}}, FOUR_TAGGED),
    ("nested_or_and", {"$or": [{"$and": [{"is_completed": True}, {"spent_time": {"$lt": 30}}]}, {"title": "Gamma"}]},
     {"alpha beta", "Gamma"}),
    ("keys_and_or", {"tag": {"$ne": None}, "$or": [{"priority": 1}, {"priority": 2}]}, {"alpha beta", "100% done"}),
    ("and_or_not", {"$and": [{"$or": [{"tag": "red"}, {"tag": None}]}, {"$not": {"is_completed": True}}]},
     {"Alpha", "Gamma", "underXscore"}),
    ("id_in", {"id": {"$in": [1, 3]}}, {"Alpha", "Gamma"}),
    ("date_ge", {"due": {"$ge": "2024-03-01"}}, {"Alpha", "100% done"}),
    ("date_eq", {"due": "2024-02-29"}, {"alpha beta"}),
    ("date_null", {"due": None}, {"Gamma", "under_score", "underXscore"}),
    ("datetime_gt_with_offset", {"due_at": {"$gt": "2024-05-01T11:00:00+02:00"}}, {"alpha beta"}),
    ("datetime_lt_utc", {"due_at": {"$lt": "2024-05-01T09:00:00Z"}}, {"Alpha"}),
    ("datetime_eq_with_offset", {"due_at": "2024-05-01T12:30:00+02:00"}, {"alpha beta"}),
    ("datetime_eq_utc", {"due_at": "2024-05-01T10:30:00Z"}, {"alpha beta"}),
    ("created_at_gt", {"created_at": {"$gt": "2000-01-01T02:00:00+02:00"}}, ALL_TITLES),
    ("created_at_lt", {"created_at": {"$lt": "2000-01-01T00:00:00Z"}}, set()),
    ("empty_object", {}, ALL_TITLES),
]


@pytest.mark.parametrize("where,expected", [c[1:] for c in WHERE_CASES], ids=[c[0] for c in WHERE_CASES])
def test_where(srv, where, expected):
    r = get_where(srv, where)
    assert titles(r) == expected, r.text
    assert r.json()["meta"]["total_objects"] == len(expected)


def test_seeded_ids_are_in_order(srv):
    # WHERE_CASES' id_in relies on it
    assert [o["id"] for o in srv.seeded] == [1, 2, 3, 4, 5, 6]


def test_where_on_index_keeps_the_default_order(srv):
    assert title_list(get_where(srv, {"tag": {"$ne": None}})) == ["Alpha", "alpha beta", "100% done", "under_score"]


def test_created_at_is_served_in_utc(srv):
    for o in srv.get("/tasks").json()["data"]:
        parse_utc(o["created_at"])
        if o["due_at"] is not None:
            parse_utc(o["due_at"])
    assert srv.get("/tasks/2").json()["due_at"].startswith("2024-05-01T10:30:00")


def test_where_values_are_bound(srv):
    for evil in ("' OR '1'='1", "x\"); DROP TABLE tasks; --", "%' OR 1=1 --"):
        assert titles(get_where(srv, {"title": evil})) == set()
        assert titles(get_where(srv, {"title": {"$contains": evil}})) == set()
        assert titles(get_where(srv, {"title": {"$like": evil}})) == set()
    assert len(srv.get("/tasks").json()["data"]) == 6


# ---------------------------------------------------------------- where errors


@pytest.mark.parametrize("where,name", [
    ({"nope": 1}, "nope"),
    ({"$or": [{"tag": "red"}, {"nope": 1}]}, "nope"),
    ({"tag": {"$regex": "x"}}, "$regex"),
    ({"tag": {"$eq": "red", "$between": [1, 2]}}, "$between"),
    ({"$xor": [{"tag": "red"}]}, "$xor"),
    ({"$not": {"$and": [{"tag": {"$starts": "a"}}]}}, "$starts"),
], ids=["unknown_field", "unknown_field_nested", "unknown_operator", "unknown_operator_beside_a_known_one",
        "unknown_logical_operator", "unknown_operator_nested"])
def test_where_names_what_it_rejects(srv, where, name):
    p = assert_problem(get_where(srv, where), 400)
    assert_names(p, name)


@pytest.mark.parametrize("where", [
    {"tag": {"$in": "red"}},
    {"tag": {"$in": {"a": 1}}},
    {"tag": {"$nin": "red"}},
    {"spent_time": {"$lt": {"a": 1}}},
    {"spent_time": {"$gt": [1]}},
    {"spent_time": {"$le": None}},
    {"$and": {"tag": "red"}},
    {"$or": {"tag": "red"}},
    {"$or": "x"},
    {"$and": [1, 2]},
    {"$not": 5},
    {"$not": [{"tag": "red"}]},
    {"tag": {"$exists": "yes"}},
    {"title": {"$like": 5}},
    {"title": {"$ilike": None}},
    {"title": {"$contains": ["a"]}},
    {"title": {"$icontains": {"a": 1}}},
    {"tag": {"$in": [["red"]]}},
    {"tag": {"$eq": {"a": 1}}},
], ids=lambda w: json.dumps(w))
def test_wrong_operand_type_is_400(srv, where):
    assert_problem(get_where(srv, where), 400)


@pytest.mark.parametrize("where", [
    {"spent_time": "abc"},
    {"spent_time": {"$gt": "abc"}},
    {"is_completed": "yes"},
    {"due_at": {"$gt": "yesterday"}},
], ids=lambda w: json.dumps(w))
def test_operand_of_the_wrong_field_type_is_400(srv, where):
    p = assert_problem(get_where(srv, where), 400)
    assert_names(p, next(iter(where)))


@pytest.mark.parametrize("raw", ['{"tag":', "{tag: 1}", '{"tag": "red"} x', "not json", '{"a":1,"a":2}'])
def test_malformed_where_is_400(srv, raw):
    assert_problem(get_where(srv, raw), 400)


@pytest.mark.parametrize("raw", ["[1, 2]", "5", '"tag"', "null", "true"])
def test_where_must_be_an_object(srv, raw):
    assert_problem(get_where(srv, raw), 400)


def test_where_errors_apply_to_every_list_route(srv):
    for path in ("/tasks", "/tasks/sample", "/tasks/group/tag", "/tasks/stats"):
        params = {"fields": "spent_time"} if path.endswith("stats") else {}
        p = assert_problem(get_where(srv, {"nope": 1}, path=path, **params), 400)
        assert_names(p, "nope")


# ---------------------------------------------------------------- where limits


def nested_not(depth):
    w = {"spent_time": {"$ge": 0}}
    for _ in range(depth):
        w = {"$not": {"$not": w}}
    return w


def test_where_within_the_depth_limit(srv):
    assert titles(get_where(srv, nested_not(3))) == ALL_TITLES  # 6 nested $not


def test_where_too_deep_is_400(srv):
    assert_problem(get_where(srv, nested_not(10)), 400)  # 20 nested $not


def test_where_within_the_condition_limit(srv):
    w = {"$or": [{"spent_time": n} for n in range(1000, 1040)] + [{"title": "Gamma"}]}
    assert titles(get_where(srv, w)) == {"Gamma"}


def test_where_with_too_many_conditions_is_400(srv):
    w = {"$or": [{"spent_time": n} for n in range(1000, 1101)]}
    assert_problem(get_where(srv, w), 400)


def compact(obj):
    return json.dumps(obj, separators=(",", ":"))


def test_in_list_of_1000_items_is_accepted(srv):
    w = compact({"spent_time": {"$in": [7] * 999 + [55]}})
    r = srv.get("/tasks?where=" + quote(w, safe=",:"))
    assert titles(r) == {"underXscore"}


def test_in_list_of_1001_items_is_400(srv):
    w = compact({"spent_time": {"$in": [7] * 1000 + [55]}})
    assert_problem(srv.get("/tasks?where=" + quote(w, safe=",:")), 400)


def test_nin_list_of_1001_items_is_400(srv):
    w = compact({"spent_time": {"$nin": [7] * 1001}})
    assert_problem(srv.get("/tasks?where=" + quote(w, safe=",:")), 400)


# ---------------------------------------------------------------- sort_by


@pytest.mark.parametrize("sort_by,expected", [
    ("spent_time", ["under_score", "Alpha", "alpha beta", "Gamma", "100% done", "underXscore"]),
    ("-spent_time", ["underXscore", "100% done", "Gamma", "alpha beta", "Alpha", "under_score"]),
    ("id", ["Alpha", "alpha beta", "Gamma", "100% done", "under_score", "underXscore"]),
    ("-id", ["underXscore", "under_score", "100% done", "Gamma", "alpha beta", "Alpha"]),
    ("is_completed,-spent_time", ["underXscore", "Gamma", "Alpha", "under_score", "100% done", "alpha beta"]),
    ("-is_completed,spent_time", ["alpha beta", "100% done", "under_score", "Alpha", "Gamma", "underXscore"]),
    ("-priority,-id", ["under_score", "Gamma", "Alpha", "100% done", "underXscore", "alpha beta"]),
    ("priority,spent_time", ["alpha beta", "underXscore", "100% done", "under_score", "Alpha", "Gamma"]),
])
def test_sort_by(srv, sort_by, expected):
    assert title_list(srv.get("/tasks", params={"sort_by": sort_by})) == expected


def test_default_sort_is_id(srv):
    assert title_list(srv.get("/tasks")) == [r["title"] for r in QUERY_ROWS]


def test_sort_with_where(srv):
    r = get_where(srv, {"is_completed": False}, sort_by="-spent_time")
    assert title_list(r) == ["underXscore", "Gamma", "Alpha", "under_score"]


@pytest.mark.parametrize("sort_by,name", [("nope", "nope"), ("-nope", "nope"), ("spent_time,nope", "nope"),
                                          ("-spent_time,-bogus", "bogus")])
def test_sort_by_unknown_field_is_400_naming_it(srv, sort_by, name):
    p = assert_problem(srv.get("/tasks", params={"sort_by": sort_by}), 400)
    assert_names(p, name)


# ---------------------------------------------------------------- allow-lists (explicit, DESIGN.md's app)


def test_allowed_where_fields_work(strict):
    assert titles(get_where(strict, {"title": "two"})) == {"two"}
    assert titles(get_where(strict, {"is_completed": False, "spent_time": {"$gt": 10}})) == {"three"}


@pytest.mark.parametrize("where,name", [
    ({"created_at": {"$gt": "2000-01-01T00:00:00Z"}}, "created_at"),
    ({"id": 1}, "id"),
    ({"$or": [{"title": "one"}, {"created_at": None}]}, "created_at"),
    ({"$not": {"id": {"$in": [1]}}}, "id"),
])
def test_where_outside_query_allowed_fields_is_400(strict, where, name):
    p = assert_problem(get_where(strict, where), 400)
    assert_names(p, name)


def test_allowed_sorts_work(strict):
    assert title_list(strict.get("/tasks", params={"sort_by": "-spent_time"})) == ["three", "two", "one"]
    assert title_list(strict.get("/tasks", params={"sort_by": "-created_at,-id"})) == ["three", "two", "one"]
    assert title_list(strict.get("/tasks", params={"sort_by": "-id"})) == ["three", "two", "one"]


@pytest.mark.parametrize("sort_by,name", [("title", "title"), ("-is_completed", "is_completed"),
                                          ("spent_time,title", "title")])
def test_sort_outside_allowed_sorts_is_400(strict, sort_by, name):
    p = assert_problem(strict.get("/tasks", params={"sort_by": sort_by}), 400)
    assert_names(p, name)


# ---------------------------------------------------------------- repeated parameters


@pytest.mark.parametrize("path,query,param", [
    ("/tasks", "page=1&page=2", "page"),
    ("/tasks", "page_size=5&page_size=50", "page_size"),
    ("/tasks", "sort_by=title&sort_by=-id", "sort_by"),
    ("/tasks", "where=%7B%7D&where=%7B%22tag%22%3A%22red%22%7D", "where"),
    ("/tasks", "count=none&count=exact", "count"),
    ("/tasks", "count=none&page=1&count=none", "count"),
    ("/tasks/sample", "page_size=1&page_size=2", "page_size"),
    ("/tasks/group/tag", "sort_by=count&sort_by=value", "sort_by"),
    ("/tasks/stats", "fields=spent_time&fields=priority", "fields"),
    ("/tasks/eval", "q=%7B%7D&q=%7B%7D", "q"),
])
def test_repeated_single_valued_parameter_is_400_naming_it(srv, path, query, param):
    p = assert_problem(srv.get(f"{path}?{query}"), 400, "invalid_parameter")
    assert p["errors"] == {param: "is given more than once"}
    assert p["detail"] == f"query parameter '{param}' is given more than once"
