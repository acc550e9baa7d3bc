"""Rate limits: a token bucket per client (user, or IP when anonymous) and
route group; 429 with Retry-After, then recovery; declared in the document."""
import time

import pytest

from conftest import JWT_ENV, STORE, assert_problem, bearer, http_request

APP = """\
database: sqlite:r.db
rate_limit: 1000/1m
auth:
  jwt: {algorithms: [HS256], secret_env: CREST_JWT_SECRET}
models:
  Note:
    fields: {title: string}
modules:
  notes:
    model: Note
    rate_limit: 3/2s
    permissions: {index: public, read: public}
endpoints:
  - path: /fast
    permission: public
    rate_limit: 2/1s
    sql: SELECT 1 AS one
    returns: one
  - path: /default
    permission: public
    sql: SELECT 1 AS one
    returns: one
"""


@pytest.fixture
def srv(crest):
    return crest(APP, env=JWT_ENV)





def burst(srv, paths, headers=()):
    """The responses to PATHS sent pipelined in one write on one connection:
    the server sees them within microseconds, so a bucket cannot refill in
    between however slow the machine (a sanitizer build under load took more
    than a second for three separate requests, and the third passed)."""
    with srv.raw() as c:
        c.send(b"".join(http_request("GET", p, list(headers)) for p in paths))
        return [c.read_response() for _ in paths]


def test_429_with_retry_after_then_recovery(srv):
    rs = burst(srv, ["/fast"] * 3)
    assert [r.status for r in rs[:2]] == [200, 200]
    r = rs[2]
    assert_problem(r, 429, "rate_limited")
    assert int(r.header("retry-after")) >= 1
    time.sleep(int(r.header("retry-after")) + 0.1)
    assert srv.get("/fast").status_code == 200


def test_a_module_is_one_group(srv):
    codes = [r.status for r in burst(srv, ["/notes", "/notes/1", "/notes", "/notes"])]
    assert codes == [200, 404, 200, 429]


def test_users_have_their_own_buckets(srv):
    alice = list(bearer("alice").items())
    assert [r.status for r in burst(srv, ["/notes"] * 4, alice)] == [200, 200, 200, 429]
    assert srv.get("/notes", headers=bearer("bob")).status_code == 200


def test_default_limit_applies_and_is_documented(srv):
    assert srv.get("/default").status_code == 200
    doc = srv.get("/openapi.json").json()
    assert "429" in doc["paths"]["/default"]["get"]["responses"]
    assert "429" in doc["paths"]["/notes"]["get"]["responses"]


def test_bad_limits_are_refused(tmp_path, store_dbs):
    from conftest import CREST_BIN, run_cli
    for bad in ("10", "x/1m", "10/week", "0/1s"):
        p = tmp_path / "app.yaml"
        p.write_text(on_this_store(store_dbs, f"database: sqlite:x.db\nrate_limit: {bad}\n"))
        r = run_cli([CREST_BIN, "check", str(p)], cwd=str(tmp_path))
        assert r.returncode == 1 and "rate_limit" in r.err, bad


def on_this_store(store_dbs, text):
    """An app file's text for `crest check`: on PostgreSQL its sqlite:NAME a database of the cluster."""
    return store_dbs.app_text(text) if STORE == "postgres" else text
