"""REST module field types on the wire: bool, int, float, text, date, datetime (UTC, RFC 3339), json."""
from datetime import datetime, timedelta, timezone

import pytest

from rest_apps import BODY_APP, module_server, parse_utc


@pytest.fixture
def srv(crest):
    """A fresh server, for the tests that filter or list the whole table."""
    return crest(BODY_APP)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server for the tests that read back only the rows they made."""
    yield from module_server(tmp_path_factory, BODY_APP, name="types")


def create(s, obj):
    r = s.request("POST", "/tasks", json=obj)
    assert r.status_code == 201, r.text
    return r.json()


def roundtrip(s, obj):
    """Creates obj (plus a title), checks the read answer equals the create answer, returns it."""
    j = create(s, dict({"title": "rt"}, **obj))
    assert s.get(f"/tasks/{j['id']}").json() == j
    return j


def test_created_at_defaults_to_now_in_utc(shared):
    before = datetime.now(timezone.utc) - timedelta(seconds=5)
    j = create(shared, {"title": "now"})
    after = datetime.now(timezone.utc) + timedelta(seconds=5)
    assert before <= parse_utc(j["created_at"]) <= after


@pytest.mark.parametrize("given,served", [
    ("2024-05-01T10:00:00Z", datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc)),
    ("2024-05-01T12:00:00+02:00", datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc)),
    ("2024-05-01T01:30:00-03:30", datetime(2024, 5, 1, 5, 0, 0, tzinfo=timezone.utc)),
    ("2024-01-01T01:00:00+02:00", datetime(2023, 12, 31, 23, 0, 0, tzinfo=timezone.utc)),
    ("2024-05-01T10:00:00+00:00", datetime(2024, 5, 1, 10, 0, 0, tzinfo=timezone.utc)),
])
def test_datetime_is_stored_in_utc_and_served_with_z(shared, given, served):
    j = roundtrip(shared, {"due_at": given})
    assert parse_utc(j["due_at"]) == served


def test_datetime_update_is_normalized_too(shared):
    j = create(shared, {"title": "u"})
    r = shared.request("PATCH", f"/tasks/{j['id']}", json={"due_at": "2030-06-15T23:45:00+05:00"})
    assert r.status_code == 200, r.text
    assert parse_utc(r.json()["due_at"]) == datetime(2030, 6, 15, 18, 45, tzinfo=timezone.utc)


def test_datetime_filter_with_an_offset_compares_instants(srv):
    a = create(srv, {"title": "early", "due_at": "2024-05-01T08:00:00Z"})
    b = create(srv, {"title": "late", "due_at": "2024-05-01T12:30:00+02:00"})  # 10:30Z
    r = srv.get("/tasks", params={"where": '{"due_at": {"$gt": "2024-05-01T11:00:00+02:00"}}'})  # 09:00Z
    assert r.status_code == 200, r.text
    assert [o["id"] for o in r.json()["data"]] == [b["id"]]
    r = srv.get("/tasks", params={"where": '{"due_at": {"$le": "2024-05-01T09:00:00Z"}}'})
    assert [o["id"] for o in r.json()["data"]] == [a["id"]]


def test_date_roundtrip(shared):
    for d in ("2024-02-29", "1999-12-31", "2024-01-01"):
        assert roundtrip(shared, {"due": d})["due"] == d


def test_bool_roundtrip(shared):
    assert roundtrip(shared, {"is_completed": True})["is_completed"] is True
    assert roundtrip(shared, {"is_completed": False})["is_completed"] is False


def test_int_roundtrip(shared):
    assert roundtrip(shared, {"spent_time": 9007199254740993})["spent_time"] == 9007199254740993


def test_float_roundtrip(shared):
    j = roundtrip(shared, {"rating": 2.5})
    assert j["rating"] == 2.5 and isinstance(j["rating"], float)
    j = roundtrip(shared, {"rating": 3})  # an integer is a valid float
    assert j["rating"] == 3


def test_text_keeps_unicode_and_newlines(shared):
    s = "line one\nline two\t\"quoted\" \\ é ✓ 𝄞"
    assert roundtrip(shared, {"notes": s})["notes"] == s


@pytest.mark.parametrize("value", [{"a": [1, 2, {"b": None}], "c": "d"}, [1, "two", 3.5, True, None], "str", 42,
                                   True, {}, []])
def test_json_field_keeps_any_value(shared, value):
    assert roundtrip(shared, {"data": value})["data"] == value


def test_list_serves_the_same_types(srv):
    j = create(srv, {"title": "all", "is_completed": True, "rating": 1.5, "due": "2024-02-29",
                     "due_at": "2024-05-01T12:00:00+02:00", "data": {"x": [1]}})
    r = srv.get("/tasks")
    assert r.json()["data"] == [j]


UUID_MODEL_APP = """\
database: sqlite:uuid.db
models:
  Session:
    fields:
      key: {type: uuid, required: true, unique: true}
      parent: uuid
modules:
  sessions:
    model: Session
    enabled_methods: [index, read, create, update, group]
"""


def test_uuid_field_is_validated_stored_lower_case_and_documented(crest):
    # Issue 10 item 27: a uuid field type (Hyperion and Inmanta use UUID ids).
    s = crest(UUID_MODEL_APP)
    r = s.request("POST", "/sessions", json={"key": "1B4E28BA-2FA1-11D2-883F-0016D3CCA427"})
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["key"] == "1b4e28ba-2fa1-11d2-883f-0016d3cca427" and j["parent"] is None
    assert s.get(f"/sessions/{j['id']}").json() == j
    # A filter in any case finds it: the operand is made canonical too.
    r = s.get("/sessions", params={"where": '{"key": "1B4E28BA-2FA1-11D2-883F-0016D3CCA427"}'})
    assert [x["id"] for x in r.json()["data"]] == [j["id"]]
    # The same UUID in another case is the same value: unique says so.
    r = s.request("POST", "/sessions", json={"key": "1b4e28ba-2fa1-11d2-883f-0016D3CCA427"})
    assert r.status_code == 409, r.text
    for bad in ("nope", "1b4e28ba-2fa1-11d2-883f-0016d3cca42", 7):
        r = s.request("POST", "/sessions", json={"key": "2b4e28ba-2fa1-11d2-883f-0016d3cca427", "parent": bad})
        assert r.status_code == 422, r.text
        assert r.json()["errors"] == {"parent": "must be a UUID (8-4-4-4-12 hex digits)"}
    props = s.get("/openapi.json").json()["components"]["schemas"]["Session"]["properties"]
    assert props["key"] == {"type": "string", "format": "uuid"}
    assert props["parent"]["format"] == "uuid"
