"""Idempotent creates (issue 14, item 4): the Idempotency-Key header on a module's
create routes (`idempotency: true | {expire, required}`), after the IETF draft "The
Idempotency-Key HTTP Header Field" and Stripe's behaviour.

What the tests pin (and the decisions behind them):
- a retry with the same key and the same request (method, target, JSON body; whitespace
  and key order do not count) gets the first answer again (status, Location, body) with
  `Idempotent-Replayed: true` and makes no row; bulk creates too;
- the same key with another body, or on another path of the same module (a nested
  create), is 422 idempotency_key_reused; keys are scoped per module and per user, so
  another module or another user has keys of its own;
- a duplicate while the first request still runs is 409 idempotency_key_in_use;
- failed creates are not kept: a 422 then a corrected retry with the same key creates;
- keys expire after `expire`; dead records are purged as keys are claimed;
- bad header values are 400 naming the header; modules without the option ignore it.
"""
import hashlib
import json
import os
import threading
import time

import httpx
import pytest

import conftest
from conftest import CREST_BIN, CREST_SLOW_APP, STORE, Server, _require, assert_problem, db_rows, run_cli
from rest_apps import module_server

APP = """\
database: sqlite:idem.db
models:
  Task:
    fields:
      title: {type: string, required: true, max_length: 50}
  Note:
    fields:
      text: {type: string, required: true}
  Plain:
    fields:
      title: {type: string, required: true}
  Person:
    fields:
      name: {type: string, required: true}
      computers: {has_many: Computer, via: owner}
  Computer:
    fields:
      vendor: {type: string, required: true}
      owner: {type: ref, model: Person}
modules:
  tasks:
    model: Task
    idempotency: true
    query_allowed_fields: [title]
  notes:
    model: Note
    idempotency: {expire: 1s}
    query_allowed_fields: [text]
  plain:
    model: Plain
    query_allowed_fields: [title]
  people:
    model: Person
    idempotency: {expire: 24h, required: false}
  computers:
    model: Computer
    idempotency: true
    query_allowed_fields: [vendor]
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, APP, name="idem")


def post(s, path, body, key=None, headers=None):
    h = dict(headers or {})
    if key is not None:
        h["Idempotency-Key"] = key
    return s.request("POST", path, json=body, headers=h)


def count(s, path, field, value):
    r = s.get(path, params={"where": json.dumps({field: value})})
    assert r.status_code == 200, r.text
    return r.json()["meta"]["total_objects"]


def test_retry_gets_the_same_answer_and_makes_no_row(srv):
    first = post(srv, "/tasks", {"title": "retry-one"}, key="k-retry-one")
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = post(srv, "/tasks", {"title": "retry-one"}, key="k-retry-one")
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"] == f"/tasks/{first.json()['id']}"
    assert again.content == first.content
    assert count(srv, "/tasks", "title", "retry-one") == 1


def test_whitespace_and_key_order_do_not_make_another_request(srv):
    first = srv.request("POST", "/tasks", content=b'{"title":"ws-one"}',
                        headers={"Content-Type": "application/json", "Idempotency-Key": "k-ws"})
    assert first.status_code == 201, first.text
    again = srv.request("POST", "/tasks", content=b'{\n  "title" :  "ws-one"\n}\n',
                        headers={"Content-Type": "application/json", "Idempotency-Key": "k-ws"})
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert count(srv, "/tasks", "title", "ws-one") == 1


def test_bulk_create_retry_gets_the_same_list(srv):
    rows = [{"title": "bulk-a"}, {"title": "bulk-b"}]
    first = post(srv, "/tasks", rows, key="k-bulk")
    assert first.status_code == 201, first.text
    assert [r["title"] for r in first.json()["data"]] == ["bulk-a", "bulk-b"]
    again = post(srv, "/tasks", rows, key="k-bulk")
    assert again.status_code == 201, again.text
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert count(srv, "/tasks", "title", "bulk-a") == 1
    assert count(srv, "/tasks", "title", "bulk-b") == 1


def test_same_key_with_another_body_is_422(srv):
    assert post(srv, "/tasks", {"title": "body-one"}, key="k-body").status_code == 201
    p = assert_problem(post(srv, "/tasks", {"title": "body-two"}, key="k-body"), 422, "idempotency_key_reused")
    assert "Idempotency-Key" in p["detail"]
    assert count(srv, "/tasks", "title", "body-two") == 0
    # the first answer is still kept
    assert post(srv, "/tasks", {"title": "body-one"}, key="k-body").headers["idempotent-replayed"] == "true"


def test_same_key_on_another_path_of_the_module_is_422(srv):
    ada = post(srv, "/people", {"name": "Ada"}).json()
    bob = post(srv, "/people", {"name": "Bob"}).json()
    r = post(srv, f"/people/{ada['id']}/computers", {"vendor": "path-v"}, key="k-nested")
    assert r.status_code == 201, r.text
    replay = post(srv, f"/people/{ada['id']}/computers", {"vendor": "path-v"}, key="k-nested")
    assert replay.headers["idempotent-replayed"] == "true" and replay.content == r.content
    assert_problem(post(srv, f"/people/{bob['id']}/computers", {"vendor": "path-v"}, key="k-nested"), 422,
                   "idempotency_key_reused")
    assert_problem(post(srv, "/computers", {"vendor": "path-v", "owner": ada["id"]}, key="k-nested"), 422,
                   "idempotency_key_reused")
    assert count(srv, "/computers", "vendor", "path-v") == 1


def test_same_key_on_another_module_is_its_own(srv):
    t = post(srv, "/tasks", {"title": "mod-one"}, key="k-module")
    p = post(srv, "/people", {"name": "mod-one"}, key="k-module")
    assert t.status_code == 201 and p.status_code == 201, (t.text, p.text)
    assert "idempotent-replayed" not in p.headers


def test_failed_create_is_not_kept_and_a_fixed_retry_creates(srv):
    bad = post(srv, "/tasks", {"title": "x" * 51}, key="k-fix")
    assert_problem(bad, 422, "validation_failed")
    fixed = post(srv, "/tasks", {"title": "fixed-one"}, key="k-fix")
    assert fixed.status_code == 201, fixed.text
    assert "idempotent-replayed" not in fixed.headers
    again = post(srv, "/tasks", {"title": "fixed-one"}, key="k-fix")
    assert again.headers["idempotent-replayed"] == "true" and again.content == fixed.content
    assert count(srv, "/tasks", "title", "fixed-one") == 1


def test_quoted_key_is_the_same_key(srv):
    # the draft writes the key as a structured-field string: "abc"; Stripe sends it bare
    first = post(srv, "/tasks", {"title": "quoted-one"}, key='"k-quoted"')
    assert first.status_code == 201, first.text
    again = post(srv, "/tasks", {"title": "quoted-one"}, key="k-quoted")
    assert again.headers["idempotent-replayed"] == "true" and again.content == first.content


def test_longest_key_is_accepted(srv):
    k = "k" * 255
    assert post(srv, "/tasks", {"title": "long-key"}, key=k).status_code == 201
    assert post(srv, "/tasks", {"title": "long-key"}, key=k).headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize("value,words", [
    (b"", "must not be empty"),
    (b'""', "must not be empty"),
    (b"k" * 256, "at most 255"),
    ("k\u00e9y".encode("utf-8"), "printable ASCII"),
    (b"a\tb", "printable ASCII"),
    (b'a"b', "without quotes"),
], ids=["empty", "empty-quoted", "too-long", "non-ascii", "tab", "quote"])
def test_bad_key_is_400_naming_the_header(srv, value, words):
    r = srv.request("POST", "/tasks", json={"title": "bad-key"}, headers=[("Idempotency-Key", value)])
    p = assert_problem(r, 400, "invalid_parameter")
    assert words in p["detail"], p
    assert "Idempotency-Key" in p["errors"], p
    assert count(srv, "/tasks", "title", "bad-key") == 0


def test_module_without_the_option_ignores_the_header(srv):
    a = post(srv, "/plain", {"title": "plain-one"}, key="k-plain")
    b = post(srv, "/plain", {"title": "plain-one"}, key="k-plain")
    assert a.status_code == b.status_code == 201
    assert "idempotent-replayed" not in b.headers and a.json()["id"] != b.json()["id"]
    assert count(srv, "/plain", "title", "plain-one") == 2


def test_no_key_creates_every_time(srv):
    assert post(srv, "/tasks", {"title": "no-key"}).status_code == 201
    assert post(srv, "/tasks", {"title": "no-key"}).status_code == 201
    assert count(srv, "/tasks", "title", "no-key") == 2


def test_expired_key_creates_a_new_row(srv):
    first = post(srv, "/notes", {"text": "expiring"}, key="k-expire")
    assert first.status_code == 201
    assert post(srv, "/notes", {"text": "expiring"}, key="k-expire").headers["idempotent-replayed"] == "true"
    time.sleep(1.1)
    later = post(srv, "/notes", {"text": "expiring"}, key="k-expire")
    assert later.status_code == 201, later.text
    assert "idempotent-replayed" not in later.headers
    assert later.json()["id"] != first.json()["id"]
    assert count(srv, "/notes", "text", "expiring") == 2


def test_openapi_declares_the_header_and_answers(srv):
    doc = srv.get("/openapi.json").json()
    for path in ("/tasks", "/people/{id}/computers"):
        op = doc["paths"][path]["post"]
        params = [p for p in op.get("parameters", []) if p["name"] == "Idempotency-Key"]
        assert len(params) == 1 and params[0]["in"] == "header" and params[0]["required"] is False, (path, params)
        assert "Idempotent-Replayed" in op["responses"]["201"]["headers"], path
        assert "409" in op["responses"] and "422" in op["responses"] and "400" in op["responses"], path
    plain = doc["paths"]["/plain"]["post"]
    assert not [p for p in plain.get("parameters", []) if p["name"] == "Idempotency-Key"]
    assert "Idempotent-Replayed" not in plain["responses"]["201"].get("headers", {})


# ---------------------------------------------------------------- servers of their own


def test_required_key_is_400_when_missing(crest):
    s = crest(APP.replace("idempotency: {expire: 24h, required: false}", "idempotency: {required: true}"))
    p = assert_problem(post(s, "/people", {"name": "Ann"}), 400, "missing_parameter")
    assert "Idempotency-Key" in json.dumps(p)
    assert post(s, "/people", {"name": "Ann"}, key="k-req").status_code == 201
    op = s.get("/openapi.json").json()["paths"]["/people"]["post"]
    assert [p["required"] for p in op["parameters"] if p["name"] == "Idempotency-Key"] == [True]


def db_exec(s, name, sql):
    """Runs sql (statements both stores take) on the database of server s's sqlite:NAME."""
    if STORE == "postgres":
        conftest.store_dbs_of[0].psql(name, sql)
        return
    import sqlite3
    con = sqlite3.connect(os.path.join(s.dir, name))
    try:
        con.executescript(sql)
    finally:
        con.close()


def test_dead_records_are_purged_a_few_per_claim(crest):
    s = crest(APP)
    assert post(s, "/tasks", {"title": "purge-first"}, key="k-purge-first").status_code == 201
    # 20 records dead long ago (their expiry in 1970), of other scopes and keys
    db_exec(s, "idem.db", "\n".join(
        f"INSERT INTO crest_idempotency (scope, key, fingerprint, state, expires_us) "
        f"VALUES ('old', 'k{i}', 'x', 1, {i + 1});" for i in range(20)))
    dead = "SELECT count(*) FROM crest_idempotency WHERE scope = 'old'"
    assert db_rows(s, "idem.db", dead) == [(20,)]
    # each claim removes at most 16, the oldest first
    assert post(s, "/tasks", {"title": "purge-a"}, key="k-purge-a").status_code == 201
    assert db_rows(s, "idem.db", "SELECT key FROM crest_idempotency WHERE scope = 'old' ORDER BY key") == \
        [("k16",), ("k17",), ("k18",), ("k19",)]
    assert post(s, "/tasks", {"title": "purge-b"}, key="k-purge-b").status_code == 201
    assert db_rows(s, "idem.db", dead) == [(0,)]
    # a replay claims nothing; the live records stay
    assert post(s, "/tasks", {"title": "purge-b"}, key="k-purge-b").headers["idempotent-replayed"] == "true"
    assert db_rows(s, "idem.db", "SELECT key, state FROM crest_idempotency ORDER BY key") == \
        [("k-purge-a", 1), ("k-purge-b", 1), ("k-purge-first", 1)]


def test_expired_record_is_taken_over_and_purged(crest):
    s = crest(APP)
    assert post(s, "/notes", {"text": "exp-1"}, key="k-exp-1").status_code == 201
    time.sleep(1.1)  # notes: expire 1s
    # the next claim purges the dead record; the same key again is a new request
    assert post(s, "/notes", {"text": "exp-2"}, key="k-exp-2").status_code == 201
    assert db_rows(s, "idem.db", "SELECT key FROM crest_idempotency") == [("k-exp-2",)]


def test_answer_past_the_response_limit_is_not_kept_and_makes_no_row(crest):
    # the answer kept is bounded by the response limit: one past it fails the create whole
    s = crest("limits: {response: 2KiB}\n" + APP)
    rows = [{"title": f"big-{i:02d}-" + "x" * 40} for i in range(40)]
    r = post(s, "/tasks", rows, key="k-big")
    assert_problem(r, 500, "response_too_large")
    assert count(s, "/tasks", "title", rows[0]["title"]) == 0
    # the key was given up: a smaller request under it creates
    small = post(s, "/tasks", rows[:2], key="k-big")
    assert small.status_code == 201, small.text
    assert post(s, "/tasks", rows[:2], key="k-big").headers["idempotent-replayed"] == "true"
    assert count(s, "/tasks", "title", rows[0]["title"]) == 1


KEYS_APP = """\
database: sqlite:idem_auth.db
auth:
  api_keys_file: KEYS
models:
  Task:
    fields:
      title: {type: string, required: true}
modules:
  tasks:
    model: Task
    idempotency: true
    permissions: {index: authenticated, create: authenticated}
"""


def sha(k):
    return hashlib.sha256(k.encode()).hexdigest()


def test_same_key_by_another_user_is_independent(crest, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text(f"ann {sha('ann-key-1234567890')}\nbob {sha('bob-key-1234567890')}\n")
    s = crest(KEYS_APP.replace("KEYS", str(keys)))
    ann, bob = {"X-API-Key": "ann-key-1234567890"}, {"X-API-Key": "bob-key-1234567890"}
    a = post(s, "/tasks", {"title": "shared"}, key="k-user", headers=ann)
    b = post(s, "/tasks", {"title": "shared"}, key="k-user", headers=bob)
    assert a.status_code == b.status_code == 201, (a.text, b.text)
    assert "idempotent-replayed" not in b.headers and a.json()["id"] != b.json()["id"]
    a2 = post(s, "/tasks", {"title": "shared"}, key="k-user", headers=ann)
    assert a2.headers["idempotent-replayed"] == "true" and a2.content == a.content
    # another user's body under the same key is that user's own request
    b2 = post(s, "/tasks", {"title": "bob-other"}, key="k-user", headers=bob)
    assert_problem(b2, 422, "idempotency_key_reused")
    r = s.get("/tasks", headers=ann)
    assert r.json()["meta"]["total_objects"] == 2


SLOW_APP = """\
database: sqlite:slow.db
models:
  Task:
    fields:
      title: {type: string, required: true}
"""


@pytest.fixture
def slow_creates(servers, store_dbs, tmp_path):
    """slow_app with /slow: a module with idempotency whose creates of a row titled "slow" sleep 2 s."""
    _require(CREST_SLOW_APP, "CREST_SLOW_APP")
    text = SLOW_APP
    if STORE == "postgres":
        text = store_dbs.app_text(text)
    conftest.store_dbs_of[0] = store_dbs
    (tmp_path / "app.yaml").write_text(text)

    def start():
        env = {"SLOW_APP_FILE": str(tmp_path / "app.yaml"), "SLOW_APP_SLOW_CREATES": "Task"}
        argv = [CREST_SLOW_APP, "--listen", "127.0.0.1:0", "--workers", "1"]
        s = servers.add(Server(argv, cwd=str(tmp_path), env=env)).wait_listening()
        s.dir = tmp_path
        return s

    return start


def wait_for(cond, what, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.02)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.parametrize("processes", [1, 2], ids=["one-process", "two-processes"])
def test_concurrent_duplicate_is_409_then_the_answer(slow_creates, processes):
    # two processes: the first request to one, the duplicate and the retry to the other (one database)
    s = slow_creates()
    other = slow_creates() if processes == 2 else s
    first = {}

    def slow():
        with httpx.Client(base_url=s.url, timeout=30) as c:
            first["r"] = c.post("/slow", json={"title": "slow"}, headers={"Idempotency-Key": "k-slow"})

    t = threading.Thread(target=slow)
    t.start()
    try:
        # the claim is committed before the create's transaction: wait for it, then send the duplicate
        wait_for(lambda: db_rows(s, "slow.db", "SELECT state FROM crest_idempotency") == [(0,)], "the claim")
        dup = post(other, "/slow", {"title": "slow"}, key="k-slow")
        assert_problem(dup, 409, "idempotency_key_in_use")
        assert dup.headers["retry-after"] == "1"
        # another body under the key being processed is still the wrong body
        assert_problem(post(other, "/slow", {"title": "other"}, key="k-slow"), 422, "idempotency_key_reused")
    finally:
        t.join(30)
    assert first["r"].status_code == 201, first["r"].text
    again = post(other, "/slow", {"title": "slow"}, key="k-slow")
    assert again.status_code == 201 and again.headers["idempotent-replayed"] == "true"
    assert again.content == first["r"].content
    assert again.headers["location"] == first["r"].headers["location"]
    assert db_rows(s, "slow.db", "SELECT count(*) FROM task") == [(1,)]


def test_crash_leaves_the_claim_and_no_row(slow_creates, servers):
    # kill -9 while the create runs: the claim was committed on its own, the rows with their
    # record were not, so nothing was made; the claim holds the key until its timeout
    s = slow_creates()
    def doomed():
        with pytest.raises(httpx.RemoteProtocolError):  # the server dies before it answers
            httpx.post(s.url + "/slow", json={"title": "slow"}, headers={"Idempotency-Key": "k-crash"}, timeout=30)

    t = threading.Thread(target=doomed, daemon=True)
    t.start()
    wait_for(lambda: db_rows(s, "slow.db", "SELECT state FROM crest_idempotency") == [(0,)], "the claim")
    s.proc.kill()
    assert s.stop() == -9
    servers.all.remove(s)  # (killed on purpose: not an unclean exit)
    t.join(10)
    assert db_rows(s, "slow.db", "SELECT count(*) FROM task") == [(0,)]
    s2 = slow_creates()
    assert_problem(post(s2, "/slow", {"title": "slow"}, key="k-crash"), 409, "idempotency_key_in_use")
    assert db_rows(s2, "slow.db", "SELECT count(*) FROM task") == [(0,)]


@pytest.mark.parametrize("opt,line,words", [
    ("idempotency: maybe", 8, ["modules.tasks.idempotency"]),
    ("idempotency: {expire: 5x}", 8, ["modules.tasks.idempotency.expire", "5x"]),
    ("idempotency: {expire: 0s}", 8, ["modules.tasks.idempotency.expire", "from 1s"]),
    ("idempotency: {expire: 400d}", 8, ["modules.tasks.idempotency.expire", "365d"]),
    ("idempotency: {ttl: 1h}", 8, ["ttl"]),
    ("idempotency: {required: perhaps}", 8, ["modules.tasks.idempotency.required"]),
], ids=["not-bool", "bad-unit", "zero", "too-long", "unknown-key", "required-not-bool"])
def test_bad_option_names_the_line(tmp_path, opt, line, words):
    p = tmp_path / "app.yaml"
    p.write_text("database: sqlite:x.db\nmodels:\n  Task:\n    fields:\n      title: {type: string}\n"
                 f"modules:\n  tasks:\n    {opt}\n    model: Task\n")
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 1, (r.out, r.err)
    assert f"{p}:{line}:" in r.err, r.err
    for w in words:
        assert w in r.err, (w, r.err)


@pytest.mark.parametrize("model,line", [
    ("  Keys:\n    table: crest_idempotency\n", 4),
    ("  Crest_Log:\n", 3),
], ids=["table", "default-table"])
def test_model_table_named_crest_is_refused(tmp_path, model, line):
    # crest's own tables (crest_idempotency, ...) start with crest_: no model may use such a name
    p = tmp_path / "app.yaml"
    p.write_text(f"database: sqlite:x.db\nmodels:\n{model}    fields:\n      title: {{type: string}}\n")
    r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
    assert r.returncode == 1, (r.out, r.err)
    assert f"{p}:{line}:" in r.err and "crest's own tables" in r.err, r.err
