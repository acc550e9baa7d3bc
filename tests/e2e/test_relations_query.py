"""Filtering, sorting and grouping across relations (issue 13 item 3), on
both stores: dotted names in `where` (belongs_to: the one related row, a
missing or invisible one judged as all nulls; has_many / through: "some
visible related row", $ne / $nin / $not / $exists false: "none"), `sort_by`
and `group/` on belongs_to paths, the allow-lists with dotted names, the
related module's permissions, field access and scope (nothing leaks), and
the limits (3 relations, where's depth and conditions)."""
import json

import pytest

from conftest import CREST_BIN, JWT_ENV, assert_problem, bearer, run_cli
from relation_apps import RELATIONS_ALLOW_APP, RELATIONS_APP, RELATIONS_AUTH_APP, post
from rest_apps import module_server


def seed(s):
    """Lincoln (50) has lab (Dell) and home (Apple); Grant (40) has office
    (Dell); Lee (no age) has lee-pc (no vendor); Nobody has none; spare has
    no owner. Tasks: a [urgent, home], b [home], c []."""
    ppl = {n: post(s, "/people", {"name": n, **({"age": a} if a is not None else {})})["id"]
           for n, a in (("Lincoln", 50), ("Grant", 40), ("Lee", None), ("Nobody", 30))}
    ven = {n: post(s, "/vendors", {"name": n})["id"] for n in ("Dell", "Apple")}
    for name, owner, vendor in (("lab", "Lincoln", "Dell"), ("home", "Lincoln", "Apple"),
                                ("office", "Grant", "Dell"), ("spare", None, None), ("lee-pc", "Lee", None)):
        post(s, "/computers", {"name": name, "owner_id": ppl.get(owner), "vendor_id": ven.get(vendor)})
    tags = {n: post(s, "/tags", {"name": n})["id"] for n in ("urgent", "home")}
    for title, names in (("a", ["urgent", "home"]), ("b", ["home"]), ("c", [])):
        t = post(s, "/tasks", {"title": title})["id"]
        for n in names:
            post(s, "/task_tags", {"task_id": t, "tag_id": tags[n]})
    return s


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    """One seeded server: the tests here only read."""
    yield from module_server(tmp_path_factory, RELATIONS_APP, name="relq", setup=seed)


def names(s, path, where=None, key="name", **params):
    if where is not None:
        params["where"] = json.dumps(where)
    r = s.get(path, params={"page_size": 100, **params})
    assert r.status_code == 200, r.text
    return [o[key] for o in r.json()["data"]]


def nameset(s, path, where, key="name"):
    return set(names(s, path, where, key))


BELONGS_TO_CASES = [
    ("eq", {"owner.name": "Lincoln"}, {"lab", "home"}),
    ("eq_op", {"owner.name": {"$eq": "Grant"}}, {"office"}),
    ("ne_keeps_no_owner", {"owner.name": {"$ne": "Lincoln"}}, {"office", "spare", "lee-pc"}),
    ("in", {"owner.name": {"$in": ["Grant", "Lee"]}}, {"office", "lee-pc"}),
    ("in_null", {"owner.name": {"$in": ["Grant", None]}}, {"office", "spare"}),
    ("nin_keeps_no_owner", {"owner.name": {"$nin": ["Lincoln"]}}, {"office", "spare", "lee-pc"}),
    ("nin_null", {"owner.name": {"$nin": ["Lincoln", None]}}, {"office", "lee-pc"}),
    ("gt", {"owner.age": {"$gt": 45}}, {"lab", "home"}),
    ("lt", {"owner.age": {"$lt": 45}}, {"office"}),
    ("ge", {"owner.age": {"$ge": 40}}, {"lab", "home", "office"}),
    ("le", {"owner.age": {"$le": 40}}, {"office"}),
    ("gte_lte", {"owner.age": {"$gte": 41, "$lte": 50}}, {"lab", "home"}),
    ("like", {"owner.name": {"$like": "L%"}}, {"lab", "home", "lee-pc"}),
    ("ilike", {"owner.name": {"$ilike": "l%"}}, {"lab", "home", "lee-pc"}),
    ("contains", {"owner.name": {"$contains": "ran"}}, {"office"}),
    ("icontains", {"owner.name": {"$icontains": "RAN"}}, {"office"}),
    ("null_name_is_no_owner", {"owner.name": None}, {"spare"}),
    ("null_age", {"owner.age": None}, {"spare", "lee-pc"}),
    ("exists_false", {"owner.age": {"$exists": False}}, {"spare", "lee-pc"}),
    ("exists_true", {"owner.age": {"$exists": True}}, {"lab", "home", "office"}),
    ("ne_null", {"owner.name": {"$ne": None}}, {"lab", "home", "office", "lee-pc"}),
    ("not", {"owner.name": {"$not": {"$eq": "Lincoln"}}}, {"office", "spare", "lee-pc"}),
    ("top_not", {"$not": {"owner.name": "Lincoln"}}, {"office", "spare", "lee-pc"}),
    ("or", {"$or": [{"owner.name": "Grant"}, {"name": "spare"}]}, {"office", "spare"}),
    ("relation_exists_false", {"owner": {"$exists": False}}, {"spare"}),
    ("relation_exists_true", {"owner": {"$exists": True}}, {"lab", "home", "office", "lee-pc"}),
    ("two_deep", {"owner.computers.name": "home"}, {"lab", "home"}),
    ("vendor_and_owner", {"owner.name": "Lincoln", "vendor.name": "Dell"}, {"lab"}),
]


def check_cases(s, path, cases, key="name"):
    """Every case on one server (seeding is the slow part): the cases whose
    rows differ, named, with what came."""
    bad = [(name, got, want) for name, where, want in cases
           if (got := nameset(s, path, where, key)) != want]
    assert bad == []


def test_belongs_to_paths_take_every_operator(srv):
    check_cases(srv, "/computers", BELONGS_TO_CASES)


HAS_MANY_CASES = [
    ("any_eq", {"computers.name": "lab"}, {"Lincoln"}),
    ("any_in", {"computers.name": {"$in": ["lab", "office"]}}, {"Lincoln", "Grant"}),
    ("ne_is_none_equal", {"computers.name": {"$ne": "lab"}}, {"Grant", "Lee", "Nobody"}),
    ("nin_is_none_in", {"computers.name": {"$nin": ["lab", "office"]}}, {"Lee", "Nobody"}),
    ("not_is_none", {"computers.name": {"$not": {"$like": "l%"}}}, {"Grant", "Nobody"}),
    ("like", {"computers.name": {"$like": "%o%"}}, {"Lincoln", "Grant"}),
    ("no_related_rows", {"computers": {"$exists": False}}, {"Nobody"}),
    ("some_related_rows", {"computers": {"$exists": True}}, {"Lincoln", "Grant", "Lee"}),
    ("field_exists_false_is_none_has_it", {"computers.vendor_id": {"$exists": False}}, {"Lee", "Nobody"}),
    ("field_null_is_some_null", {"computers.vendor_id": None}, {"Lee"}),
    ("different_rows_may_meet_two_conditions", {"computers.name": "home", "computers.vendor.name": "Dell"},
     {"Lincoln"}),
    ("nested_two", {"computers.vendor.name": "Dell"}, {"Lincoln", "Grant"}),
    ("nested_two_ne", {"computers.vendor.name": {"$ne": "Dell"}}, {"Lee", "Nobody"}),
    ("nested_three", {"computers.vendor.computers.name": "office"}, {"Lincoln", "Grant"}),
    ("with_plain", {"computers.name": {"$ne": "lab"}, "age": {"$gt": 35}}, {"Grant"}),
]


def test_has_many_paths_mean_some_related_row(srv):
    check_cases(srv, "/people", HAS_MANY_CASES)


def test_through_paths(srv):
    check_cases(srv, "/tasks", [
        ("eq", {"tags.name": "urgent"}, {"a"}),
        ("in", {"tags.name": {"$in": ["home"]}}, {"a", "b"}),
        ("ne", {"tags.name": {"$ne": "urgent"}}, {"b", "c"}),
        ("none", {"tags": {"$exists": False}}, {"c"}),
        ("some", {"tags": {"$exists": True}}, {"a", "b"}),
    ], key="title")


def nulls_first(s):
    """Where this store puts NULLs in an ascending sort of a plain field
    (Lee has no age): the same place a missing related row must go."""
    ages = [p["age"] for p in s.get("/people", params={"sort_by": "age"}).json()["data"]]
    assert None in (ages[0], ages[-1])
    return ages[0] is None


def test_sort_by_a_belongs_to_path_puts_missing_rows_where_plain_nulls_go(srv):
    first = nulls_first(srv)
    by_owner = ["office", "lee-pc", "lab", "home"]  # Grant, Lee, Lincoln (lab before home: the id tie-break)
    want = (["spare"] + by_owner) if first else (by_owner + ["spare"])
    assert names(srv, "/computers", sort_by="owner.name") == want
    desc = ["home", "lab", "lee-pc", "office"]  # Lincoln, Lee, Grant; the tie-break goes the way of the last key
    want = (desc + ["spare"]) if first else (["spare"] + desc)
    assert names(srv, "/computers", sort_by="-owner.name") == want


def test_sort_by_a_path_then_a_plain_field(srv):
    got = names(srv, "/computers", {"owner.age": {"$exists": True}}, sort_by="owner.age,name")
    assert got == ["office", "home", "lab"]


def test_sort_by_a_has_many_path_is_400(srv):
    r = srv.get("/people", params={"sort_by": "computers.name"})
    prob = assert_problem(r, 400, "invalid_parameter")
    assert prob["detail"] == "sort_by: computers.name: only belongs_to relations sort"


def test_sort_by_an_unknown_path_is_400(srv):
    prob = assert_problem(srv.get("/computers", params={"sort_by": "owner.nope"}), 400, "invalid_parameter")
    assert prob["detail"] == "sort_by: unknown field 'owner.nope'"


def groups(s, path, **params):
    r = s.get(path, params=params)
    assert r.status_code == 200, r.text
    return [(g["value"], g["count"]) for g in r.json()["data"]], r.json()["meta"]


def test_group_by_a_belongs_to_path(srv):
    got, meta = groups(srv, "/computers/group/owner.name")
    named = [("Grant", 1), ("Lee", 1), ("Lincoln", 2)]
    assert got == ([(None, 1)] + named if nulls_first(srv) else named + [(None, 1)])
    assert meta["total_objects"] == 4
    got, _ = groups(srv, "/computers/group/owner.name", sort_by="-count")
    assert got[0] == ("Lincoln", 2)
    got, _ = groups(srv, "/computers/group/owner.name", where=json.dumps({"owner.age": {"$gt": 35}}))
    assert got == [("Grant", 1), ("Lincoln", 2)]
    got, meta = groups(srv, "/computers/group/owner.name", where=json.dumps({"owner.age": {"$gt": 35}}),
                       page_size=1, page=2)
    assert got == [("Lincoln", 2)] and meta["total_objects"] == 2 and meta["has_more"] is False
    got, _ = groups(srv, "/computers/group/owner.age", sort_by="-value", where=json.dumps({"owner": {"$exists": True}}))
    assert [v for v, _ in got if v is not None] == [50, 40]


def test_group_by_a_has_many_path_is_400(srv):
    prob = assert_problem(srv.get("/people/group/computers.name"), 400, "invalid_parameter")
    assert prob["detail"] == "group: computers.name: only belongs_to relations group"


def test_bad_paths_are_400_naming_them(crest):
    s = crest(RELATIONS_APP)
    for where, detail in [
        ({"owner.nope": 1}, "where: unknown field 'owner.nope'"),
        ({"nope.name": 1}, "where: unknown field 'nope.name'"),
        ({"owner.name.x": 1}, "where: unknown field 'owner.name.x'"),
        ({"computers": 1}, 'where: computers: a relation takes only {"$exists": true or false}'),
        ({"owner.age": {"$gt": "old"}}, "where: owner.age.$gt: the value must be an integer"),
        ({"owner.name": {"$bad": 1}}, "where: unknown operator '$bad' (on owner.name)"),
    ]:
        path = "/people" if "computers" in where else "/computers"
        prob = assert_problem(s.get(path, params={"where": json.dumps(where)}), 400, "invalid_parameter")
        assert prob["detail"] == detail


# ------------------------------------------------------------------ limits


def test_more_than_three_relations_is_400_naming_the_path(srv):
    where = {"owner.computers.vendor.computers.name": "x"}
    prob = assert_problem(srv.get("/computers", params={"where": json.dumps(where)}), 400, "invalid_parameter")
    assert prob["detail"] == "where: owner.computers.vendor.computers.name: crosses more than 3 relations"
    prob = assert_problem(srv.get("/computers", params={"sort_by": "owner.computers.vendor.computers.name"}), 400)
    assert "crosses more than 3 relations" in prob["detail"]
    # three is fine
    assert nameset(srv, "/computers", {"owner.computers.vendor.name": "Apple"}) == {"lab", "home"}


def test_the_conditions_inside_a_path_count_toward_the_where_limit(srv):
    plain = {"$and": [{"name": {"$ne": f"x{i}"}} for i in range(60)]}
    assert srv.get("/computers", params={"where": json.dumps(plain)}).status_code == 200
    dotted = {"$and": [{"owner.name": {"$ne": f"x{i}"}} for i in range(60)]}
    prob = assert_problem(srv.get("/computers", params={"where": json.dumps(dotted)}), 400, "invalid_parameter")
    assert prob["detail"] == "where: more than 100 conditions"


def test_the_relations_of_a_path_count_toward_the_depth_limit(srv):
    def nest(inner, n):
        for _ in range(n):
            inner = {"$not": inner}
        return inner
    ok = nest({"name": "lab"}, 15)
    assert srv.get("/computers", params={"where": json.dumps(ok)}).status_code == 200
    deep = nest({"owner.name": "Lincoln"}, 15)
    prob = assert_problem(srv.get("/computers", params={"where": json.dumps(deep)}), 400, "invalid_parameter")
    assert prob["detail"] == "where: nested deeper than 16"


# ------------------------------------------------------------ allow-lists


@pytest.fixture
def allow_srv(crest):
    return seed(crest(RELATIONS_ALLOW_APP))


def test_allow_lists_take_dotted_names(allow_srv):
    s = allow_srv
    assert nameset(s, "/lab", {"owner.name": "Lincoln"}) == {"lab", "home"}
    assert nameset(s, "/lab", {"owner": {"$exists": False}}) == {"spare"}
    assert names(s, "/lab", {"owner": {"$exists": True}, "owner.name": {"$ne": "Lee"}}, sort_by="-owner.name,id") == \
        ["lab", "home", "office"]
    got, _ = groups(s, "/lab/group/owner.name", where=json.dumps({"owner.name": "Grant"}))
    assert got == [("Grant", 1)]


def test_dotted_names_outside_the_allow_lists_are_400(crest):
    s = crest(RELATIONS_ALLOW_APP)
    for params, detail in [
        ({"where": json.dumps({"owner.age": 50})}, "where: field 'owner.age' is not allowed in queries"),
        ({"where": json.dumps({"vendor.name": "Dell"})}, "where: field 'vendor.name' is not allowed in queries"),
        ({"sort_by": "owner.age"}, "sort_by: sorting by 'owner.age' is not allowed"),
    ]:
        prob = assert_problem(s.get("/lab", params=params), 400, "invalid_parameter")
        assert prob["detail"] == detail
    prob = assert_problem(s.get("/lab/group/vendor.name"), 400, "invalid_parameter")
    assert prob["detail"] == "group: grouping by 'vendor.name' is not allowed"


@pytest.mark.parametrize("line,word", [
    ("    query_allowed_fields: [name, owner.nope]\n", "owner.nope"),
    ("    allowed_sorts: [nope.name]\n", "nope.name"),
    ("    grouping_allowed_fields: [owner.computers.name]\n", "owner.computers.name"),
    ("    allowed_sorts: [owner.computers.vendor.computers.name]\n", "crosses more than 3 relations"),
], ids=["unknown_field", "unknown_relation", "has_many_group", "too_deep"])
def test_an_allow_list_naming_no_relation_field_is_refused_at_start(tmp_path, line, word):
    text = RELATIONS_APP + "  lab:\n    model: Computer\n    url_prefix: /lab\n" + line
    p = tmp_path / "app.yaml"
    p.write_text(text)
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 1, (r.out, r.err)
    bad_line = text.splitlines().index(line.rstrip("\n")) + 1
    assert f"{p}:{bad_line}:" in r.err, r.err
    assert word in r.err, r.err


# ------------------------------------------------------------- permissions


@pytest.fixture
def auth_srv(crest):
    return crest(RELATIONS_AUTH_APP, env=JWT_ENV)


def who(user, *perms):
    return bearer(user, permissions=list(perms))


def people(s, where, user="alice", *perms):
    r = s.get("/people", params={"where": json.dumps(where)}, headers=who(user, *perms))
    assert r.status_code == 200, r.text
    return {p["name"] for p in r.json()["data"]}


def test_a_has_many_filter_sees_only_rows_the_user_may_see(auth_srv):
    s = auth_srv
    assert people(s, {"computers.name": "bob-pc"}, "alice") == set()
    assert people(s, {"computers.name": "bob-pc"}, "bob") == {"Grant"}
    assert people(s, {"computers.name": {"$ne": "bob-pc"}}, "alice") == {"Lincoln", "Grant"}
    assert people(s, {"computers": {"$exists": False}}, "alice") == {"Grant"}
    assert people(s, {"computers": {"$exists": False}}, "carol") == {"Lincoln", "Grant"}


def test_a_belongs_to_row_the_user_may_not_see_counts_as_missing(auth_srv):
    s = auth_srv
    h = who("alice")
    def comp(where, **params):
        r = s.get("/computers", params={"where": json.dumps(where), **params}, headers=h)
        assert r.status_code == 200, r.text
        return [c["name"] for c in r.json()["data"]]
    assert comp({"owner.name": "Ghost"}) == []
    assert comp({"owner.name": None}) == ["ghost-pc"]
    assert comp({"owner": {"$exists": False}}) == ["ghost-pc"]
    assert set(comp({"owner.name": {"$ne": "Lincoln"}})) == {"ghost-pc"}
    r = s.get("/computers/group/owner.name", headers=h)
    assert r.status_code == 200, r.text
    assert sorted(((g["value"] or ""), g["count"]) for g in r.json()["data"]) == [("", 1), ("Lincoln", 1)]
    ordered = comp({}, sort_by="owner.name")
    assert sorted(ordered) == ["alice-pc", "ghost-pc"]
    plain = [c["name"] for c in s.get("/computers", params={"sort_by": "vendor_id"}, headers=h).json()["data"]]
    assert ordered == plain  # ghost-pc's owner sorts as null, as its null vendor_id does


def test_a_field_the_user_may_not_read_is_unknown_across_a_relation(auth_srv):
    s = auth_srv
    for params in ({"where": json.dumps({"owner.salary": 10})}, {"sort_by": "owner.salary"}):
        prob = assert_problem(s.get("/computers", params=params, headers=who("alice")), 400, "invalid_parameter")
        assert "'owner.salary'" in prob["detail"], prob
    prob = assert_problem(s.get("/computers/group/owner.salary", headers=who("alice")), 400, "invalid_parameter")
    assert prob["detail"] == "group: unknown field 'owner.salary'"
    r = s.get("/computers", params={"where": json.dumps({"owner.salary": 10})}, headers=who("alice", "hr"))
    assert r.status_code == 200 and [c["name"] for c in r.json()["data"]] == ["alice-pc"]
    assert people(s, {"computers.created_by": "alice"}, "alice") == {"Lincoln"}


def test_a_module_the_user_may_not_call_is_unknown_across_a_relation(auth_srv):
    s = auth_srv
    where = {"params": {"where": json.dumps({"vendor.name": "Dell"})}}
    prob = assert_problem(s.get("/computers", headers=who("alice"), **where), 400, "invalid_parameter")
    assert prob["detail"] == "where: unknown field 'vendor.name'"
    r = s.get("/computers", headers=who("alice", "vendors.read"), **where)
    assert r.status_code == 200 and [c["name"] for c in r.json()["data"]] == ["alice-pc"]
