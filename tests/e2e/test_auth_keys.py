"""API keys (X-API-Key): stored hashed in a key file, compared in constant
time; valid, invalid and revoked keys; permissions from the file."""
import hashlib

import pytest

from conftest import CREST_BIN, assert_problem, run_cli


def sha(k):
    return hashlib.sha256(k.encode()).hexdigest()


APP = """\
database: sqlite:k.db
auth:
  api_keys_file: keys.txt
endpoints:
  - path: /open
    permission: public
    sql: SELECT 1 AS one
    returns: one
  - path: /reports
    permission: [reports.read]
    sql: SELECT 2 AS two
    returns: one
  - path: /any
    permission: authenticated
    sql: SELECT 3 AS three
    returns: one
"""

KEYS = f"""# id  sha256(key)  permissions  [revoked]
svc-a {sha('key-a-1234567890')} reports.read
svc-b {sha('key-b-1234567890')}
old   {sha('key-old-123456789')} reports.read revoked
"""


@pytest.fixture
def srv(crest, tmp_path):
    (tmp_path / "keys.txt").write_text(KEYS)
    return crest(APP.replace("api_keys_file: keys.txt", f"api_keys_file: {tmp_path / 'keys.txt'}"))


def key(k):
    return {"X-API-Key": k}


def test_valid_key_with_the_permission(srv):
    assert srv.get("/reports", headers=key("key-a-1234567890")).json() == {"two": 2}
    assert srv.get("/any", headers=key("key-b-1234567890")).json() == {"three": 3}


def test_valid_key_without_the_permission_is_403(srv):
    assert_problem(srv.get("/reports", headers=key("key-b-1234567890")), 403)


@pytest.mark.parametrize("k", ["nope", "key-a-123456789", "KEY-A-1234567890", ""])
def test_invalid_key_is_401(srv, k):
    assert_problem(srv.get("/any", headers=key(k)), 401)


def test_revoked_key_is_401(srv):
    p = assert_problem(srv.get("/reports", headers=key("key-old-123456789")), 401)
    assert "revoked" in p["detail"]


def test_no_key_is_401_public_is_open(srv):
    assert_problem(srv.get("/any"), 401)
    assert srv.get("/open").status_code == 200


def test_bad_key_file_lines_are_refused(tmp_path):
    (tmp_path / "keys.txt").write_text("svc nothex reports\n")
    (tmp_path / "app.yaml").write_text(APP)
    r = run_cli([CREST_BIN, "check", str(tmp_path / "app.yaml")], cwd=str(tmp_path))
    assert r.returncode == 1 and "line 1" in r.err
