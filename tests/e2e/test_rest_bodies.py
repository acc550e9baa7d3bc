"""REST module bodies: unknown and non-writable keys, required fields, constraints, unique, JSON and
content-type errors, rest: read/write/none visibility.

Most tests share one module-scoped server (`shared`): they read back only the rows they made, and a test
that checks a refused write made nothing compares the total before and after (`creates(s, n)`). Tests of
unique values and of the whole list start their own server (`srv`)."""
import pytest

from conftest import assert_problem, db_rows
from rest_apps import (BODY_APP, BODY_SERVED_KEYS, creates, data_of, field_errors, module_server, post_raw, problem_in,
                       total)


@pytest.fixture
def srv(crest):
    return crest(BODY_APP)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    yield from module_server(tmp_path_factory, BODY_APP, name="bodies")


def create(s, obj):
    r = s.request("POST", "/tasks", json=obj)
    assert r.status_code == 201, r.text
    return r.json()


def errors_422(r):
    p = assert_problem(r, 422, "validation_failed")
    return field_errors(p)


def test_minimal_create_serves_readable_fields_only(shared):
    j = create(shared, {"title": "t"})
    assert set(j) == BODY_SERVED_KEYS
    assert j["status"] == "todo"
    assert j["is_completed"] is False and j["spent_time"] == 0
    for k in ("code", "rating", "nick", "notes", "due", "due_at", "data"):
        assert j[k] is None, k
    assert "secret" not in j and "internal" not in j


# ---------------------------------------------------------------- keys


def test_unknown_key_is_422_naming_it(shared):
    with creates(shared, 0):
        errs = errors_422(shared.request("POST", "/tasks", json={"title": "x", "colour": "red"}))
    assert "colour" in errs


def test_every_unknown_key_is_named(shared):
    errs = errors_422(shared.request("POST", "/tasks", json={"title": "x", "colour": "red", "size": 3}))
    assert {"colour", "size"} <= set(errs)
    assert "title" not in errs


def test_read_only_key_is_422(shared):
    with creates(shared, 0):
        errs = errors_422(shared.request("POST", "/tasks", json={"title": "x", "created_at": "2020-01-01T00:00:00Z"}))
    assert "created_at" in errs


def test_id_is_not_writable(shared):
    with creates(shared, 0):
        errs = errors_422(shared.request("POST", "/tasks", json={"title": "x", "id": 77}))
    assert "id" in errs


def test_rest_none_key_is_422(shared):
    errs = errors_422(shared.request("POST", "/tasks", json={"title": "x", "internal": "mine"}))
    assert "internal" in errs


def test_unknown_and_invalid_keys_in_one_answer(shared):
    errs = errors_422(shared.request("POST", "/tasks", json={"colour": "red", "created_at": "2020-01-01T00:00:00Z",
                                                             "spent_time": -1}))
    assert {"colour", "created_at", "spent_time", "title"} <= set(errs)


def test_write_only_field_is_stored_but_never_served(srv):
    r = srv.request("POST", "/tasks", json={"title": "x", "secret": "s3cr3t"})
    assert r.status_code == 201, r.text
    j = r.json()
    assert "secret" not in j and "s3cr3t" not in r.text
    r = srv.get(f"/tasks/{j['id']}")
    assert "secret" not in r.json() and "s3cr3t" not in r.text
    r = srv.get("/tasks")
    assert "s3cr3t" not in r.text
    r = srv.request("PATCH", f"/tasks/{j['id']}", json={"secret": "other"})
    assert r.status_code == 200, r.text
    assert "secret" not in r.json() and "other" not in r.text
    assert db_rows(srv, "body.db", f"SELECT secret FROM tasks WHERE id = {int(j['id'])}") == [("other",)]


def test_rest_none_field_keeps_its_default_and_is_never_served(shared):
    j = create(shared, {"title": "x"})
    assert "internal" not in j and "hidden" not in shared.get(f"/tasks/{j['id']}").text
    assert db_rows(shared, "body.db", f"SELECT internal FROM tasks WHERE id = {int(j['id'])}") == [("hidden",)]


def test_write_only_and_hidden_fields_are_not_queryable(shared):
    create(shared, {"title": "x", "secret": "s"})
    for field in ("secret", "internal"):
        r = shared.get("/tasks", params={"where": f'{{"{field}": "s"}}'})
        p = assert_problem(r, 400)
        assert field in r.text, p
        r = shared.get("/tasks", params={"sort_by": field})
        assert_problem(r, 400)


# ---------------------------------------------------------------- required


def test_required_missing_is_422(shared):
    with creates(shared, 0):
        errs = errors_422(shared.request("POST", "/tasks", json={"spent_time": 3}))
    assert "title" in errs


def test_required_null_is_422(shared):
    errs = errors_422(shared.request("POST", "/tasks", json={"title": None}))
    assert "title" in errs


def test_empty_object_is_422_for_required(shared):
    errs = errors_422(shared.request("POST", "/tasks", json={}))
    assert "title" in errs


def test_empty_body_is_rejected(shared):
    with creates(shared, 0):
        problem_in(post_raw(shared, "/tasks", b""), 400, 422)


# ---------------------------------------------------------------- constraints


def test_max_length(shared):
    with creates(shared, 1):
        assert create(shared, {"title": "x" * 200})["title"] == "x" * 200
        errs = errors_422(shared.request("POST", "/tasks", json={"title": "x" * 201}))
    assert set(errs) == {"title"}


def test_max_length_counts_characters_not_bytes(shared):
    assert create(shared, {"title": "é" * 200})["title"] == "é" * 200


def test_min_and_max_length(shared):
    assert create(shared, {"title": "a", "nick": "ab"})["nick"] == "ab"
    assert create(shared, {"title": "b", "nick": "abcdefgh"})["nick"] == "abcdefgh"
    assert "nick" in errors_422(shared.request("POST", "/tasks", json={"title": "c", "nick": "a"}))
    assert "nick" in errors_422(shared.request("POST", "/tasks", json={"title": "d", "nick": "abcdefghi"}))


def test_int_min(shared):
    assert create(shared, {"title": "a", "spent_time": 0})["spent_time"] == 0
    errs = errors_422(shared.request("POST", "/tasks", json={"title": "b", "spent_time": -1}))
    assert set(errs) == {"spent_time"}


@pytest.mark.parametrize("value,ok", [(0, True), (5, True), (4.5, True), (5.01, False), (-0.1, False), (100, False)])
def test_float_min_max(shared, value, ok):
    r = shared.request("POST", "/tasks", json={"title": "r", "rating": value})
    if ok:
        assert r.status_code == 201, r.text
        assert r.json()["rating"] == value
    else:
        assert set(errors_422(r)) == {"rating"}


@pytest.mark.parametrize("code,ok", [
    ("ABC-1", True), ("XYZ-12345", True),
    ("ABC-", False), ("abc-1", False), ("AB-1", False),
    ("xABC-1", False), ("ABC-1x", False), ("ABC-1\n", False), ("ABCD-1", False),
])
def test_pattern_must_match_the_whole_value(shared, code, ok):
    r = shared.request("POST", "/tasks", json={"title": "p", "code": code})
    if ok:
        assert r.status_code == 201, r.text
        assert r.json()["code"] == code
    else:
        assert set(errors_422(r)) == {"code"}


@pytest.mark.parametrize("status,ok", [("todo", True), ("doing", True), ("done", True), ("Done", False),
                                       ("nope", False), ("", False)])
def test_enum_values(shared, status, ok):
    r = shared.request("POST", "/tasks", json={"title": "e", "status": status})
    if ok:
        assert r.status_code == 201, r.text
        assert r.json()["status"] == status
    else:
        assert set(errors_422(r)) == {"status"}


@pytest.mark.parametrize("field,value", [
    ("title", 5), ("title", ["a"]), ("title", {"a": 1}), ("title", True),
    ("is_completed", "yes"), ("is_completed", "true"),
    ("spent_time", "3"), ("spent_time", 1.5), ("spent_time", True),
    ("rating", "x"), ("rating", [1]),
    ("notes", 5),
    ("due", "2024-13-01"), ("due", "tomorrow"), ("due", "2024-1-5"), ("due", 20240105),
    ("due_at", "not a time"), ("due_at", "2024-05-01T25:00:00Z"), ("due_at", 1714550400),
])
def test_wrong_type_is_422_naming_the_field(shared, field, value):
    with creates(shared, 0):
        r = shared.request("POST", "/tasks",
                           json={"title": "typed", field: value} if field != "title" else {field: value})
    errs = errors_422(r)
    assert set(errs) == {field}, errs


def test_every_violation_in_one_answer(shared):
    r = shared.request("POST", "/tasks", json={"title": "x" * 300, "spent_time": -5, "status": "nope", "rating": 9,
                                               "code": "bad", "is_completed": "no"})
    p = assert_problem(r, 422, "validation_failed")
    assert set(field_errors(p)) == {"title", "spent_time", "status", "rating", "code", "is_completed"}


def test_null_for_a_nullable_field_is_accepted(shared):
    j = create(shared, {"title": "n", "rating": None, "notes": None, "due": None, "data": None})
    assert j["rating"] is None and j["notes"] is None and j["due"] is None and j["data"] is None


# ---------------------------------------------------------------- unique


def test_unique_violation_is_409(srv):
    create(srv, {"title": "a", "code": "ABC-1"})
    r = srv.request("POST", "/tasks", json={"title": "b", "code": "ABC-1"})
    p = assert_problem(r, 409)
    assert "UNIQUE" not in r.text and "tasks.code" not in r.text
    assert p["status"] == 409
    assert total(srv) == 1


def test_unique_allows_many_nulls(srv):
    create(srv, {"title": "a"})
    create(srv, {"title": "b"})
    assert total(srv) == 2


def test_unique_violation_on_update_is_409(srv):
    create(srv, {"title": "a", "code": "ABC-1"})
    b = create(srv, {"title": "b", "code": "ABC-2"})
    assert_problem(srv.request("PATCH", f"/tasks/{b['id']}", json={"code": "ABC-1"}), 409)
    assert srv.get(f"/tasks/{b['id']}").json() == b


def test_bulk_create_with_a_unique_clash_creates_nothing(srv):
    create(srv, {"title": "a", "code": "ABC-1"})
    r = srv.request("POST", "/tasks", json=[{"title": "b", "code": "ABC-2"}, {"title": "c", "code": "ABC-1"}])
    assert_problem(r, 409)
    assert total(srv) == 1


def test_bulk_create_with_a_clash_inside_the_batch_creates_nothing(srv):
    r = srv.request("POST", "/tasks", json=[{"title": "b", "code": "ABC-2"}, {"title": "c", "code": "ABC-2"}])
    assert_problem(r, 409)
    assert total(srv) == 0


# ---------------------------------------------------------------- JSON and content type


@pytest.mark.parametrize("body", ['{"title":', "{title: 1}", '{"title":"x"} trailing', "\xff", "nul",
                                  '{"title":"a","title":"b"}'])
def test_malformed_json_is_400(shared, body):
    with creates(shared, 0):
        r = post_raw(shared, "/tasks", body.encode("latin-1"))
    assert_problem(r, 400)


@pytest.mark.parametrize("ctype", ["text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_non_json_content_type_is_415(shared, ctype):
    with creates(shared, 0):
        assert_problem(post_raw(shared, "/tasks", '{"title":"x"}', ctype), 415)


def test_json_content_type_variants_are_accepted(shared):
    for ct in ("application/json; charset=utf-8", "APPLICATION/JSON"):
        assert post_raw(shared, "/tasks", '{"title":"ct"}', ct).status_code == 201, ct


@pytest.mark.parametrize("body", ["3", '"text"', "null", "true"])
def test_create_body_must_be_an_object_or_array(shared, body):
    with creates(shared, 0):
        problem_in(post_raw(shared, "/tasks", body), 400, 422)


@pytest.mark.parametrize("body", ['[{"title":"x"}]', "3", '"text"', "null"])
def test_update_body_must_be_an_object(shared, body):
    j = create(shared, {"title": "u"})
    for method in ("PUT", "PATCH"):
        problem_in(post_raw(shared, f"/tasks/{j['id']}", body, method=method), 400, 422)
    assert shared.get(f"/tasks/{j['id']}").json() == j


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
def test_update_errors(shared, method):
    j = create(shared, {"title": "u", "spent_time": 4})
    path = f"/tasks/{j['id']}"
    assert_problem(post_raw(shared, path, '{"title":', method=method), 400)
    assert_problem(post_raw(shared, path, '{"title":"x"}', "text/plain", method=method), 415)
    assert "created_at" in errors_422(shared.request(method, path, json={"created_at": "2020-01-01T00:00:00Z"}))
    assert "internal" in errors_422(shared.request(method, path, json={"internal": "x"}))
    assert "colour" in errors_422(shared.request(method, path, json={"colour": "x"}))
    assert "title" in errors_422(shared.request(method, path, json={"title": None}))
    assert "spent_time" in errors_422(shared.request(method, path, json={"spent_time": "4"}))
    assert "status" in errors_422(shared.request(method, path, json={"status": "nope"}))
    assert shared.get(path).json() == j


def test_update_can_set_a_nullable_field_to_null(shared):
    j = create(shared, {"title": "n", "rating": 3, "notes": "some"})
    r = shared.request("PATCH", f"/tasks/{j['id']}", json={"rating": None, "notes": None})
    assert r.status_code == 200, r.text
    assert r.json() == dict(j, rating=None, notes=None)


def test_update_checks_constraints_of_the_given_fields_only(shared):
    j = create(shared, {"title": "c"})
    r = shared.request("PATCH", f"/tasks/{j['id']}", json={"nick": "ok"})
    assert r.status_code == 200, r.text
    assert r.json()["nick"] == "ok"


def test_create_then_list_shows_the_same_objects(srv):
    a = create(srv, {"title": "a", "code": "ABC-1", "status": "done", "rating": 1.25, "nick": "nk",
                     "notes": "n" * 5000, "due": "2024-02-29", "data": {"k": [1, 2]}})
    assert data_of(srv.get("/tasks")) == [a]
