"""JWT bearer authentication and permissions (issue 5, first part): every row
of the token matrix, deny by default, 401 with WWW-Authenticate, 403 without
the permission, the secret's rules, `crest token`, and the OpenAPI document's
security declarations."""
import json
import time

import jwt as pyjwt
import pytest

from conftest import CREST_BIN, assert_problem, run_cli

SECRET = "0123456789abcdef0123456789abcdef-test-secret"
ENV = {"CREST_JWT_SECRET": SECRET}

APP = """\
database: sqlite:a.db
auth:
  jwt:
    algorithms: [HS256]
    secret_env: CREST_JWT_SECRET
    audience: tasks-api
    issuer: crest-demo
    leeway: 30
models:
  Task:
    fields:
      title: {type: string, required: true}
modules:
  tasks:
    model: Task
    permissions:
      index: public
      read: authenticated
      create: [tasks.manage, tasks.admin]
endpoints:
  - path: /open
    permission: public
    sql: SELECT 1 AS one
    returns: one
  - path: /closed
    sql: SELECT 1 AS one
    returns: one
  - path: /me
    permission: authenticated
    sql: SELECT 1 AS one
    returns: one
"""


def token(secret=SECRET, alg="HS256", **over):
    now = int(time.time())
    claims = {"sub": "alice", "iat": now, "exp": now + 600, "aud": "tasks-api", "iss": "crest-demo",
              "permissions": ["tasks.manage"]}
    claims.update(over)
    for k in [k for k, v in claims.items() if v is None]:
        del claims[k]
    return pyjwt.encode(claims, secret, algorithm=alg)


@pytest.fixture(scope="module")
def srv(request, tmp_path_factory):
    from conftest import Server
    d = tmp_path_factory.mktemp("auth")
    (d / "app.yaml").write_text(APP)
    s = Server([CREST_BIN, "serve", str(d / "app.yaml"), "--listen", "127.0.0.1:0", "--workers", "1"], cwd=str(d),
               env=ENV)
    s.wait_listening()
    yield s
    s.stop()


def auth(t):
    return {"Authorization": f"Bearer {t}"}


def unauthorized(r):
    p = assert_problem(r, 401)
    assert r.headers["www-authenticate"] == 'Bearer error="invalid_token"'
    return p


def test_public_routes_need_nothing(srv):
    assert srv.get("/tasks").status_code == 200
    assert srv.get("/open").json() == {"one": 1}
    assert srv.get("/healthz").status_code == 200
    assert srv.get("/openapi.json").status_code == 200


def test_missing_token_is_401(srv):
    unauthorized(srv.get("/me"))
    unauthorized(srv.get("/tasks/1"))


@pytest.mark.parametrize("header", ["Bearer", "Basic YWxpY2U6eA==", "Bearer not.a.token", "Bearer abc",
                                    "Bearer a.b.c.d"])
def test_malformed_is_401(srv, header):
    unauthorized(srv.get("/me", headers={"Authorization": header}))


def test_valid_token_is_200(srv):
    assert srv.get("/me", headers=auth(token())).json() == {"one": 1}


def test_bad_signature_is_401(srv):
    unauthorized(srv.get("/me", headers=auth(token(secret="another-secret-of-32-bytes-or-more!!"))))
    t = token()
    head, body, sig = t.split(".")
    unauthorized(srv.get("/me", headers=auth(f"{head}.{body}.{sig[:-2]}AA")))


def test_alg_none_is_401(srv):
    t = pyjwt.encode({"sub": "alice", "exp": int(time.time()) + 600, "aud": "tasks-api", "iss": "crest-demo"},
                     None, algorithm="none")
    unauthorized(srv.get("/me", headers=auth(t)))


def signed(payload_text, secret=SECRET):
    """An HS256 token over PAYLOAD_TEXT exactly as given (no JSON library in between)."""
    import base64
    import hashlib
    import hmac

    def b64(b):
        return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
    head = b64(b'{"alg":"HS256","typ":"JWT"}') + "." + b64(payload_text.encode())
    sig = hmac.new(secret.encode(), head.encode(), hashlib.sha256).digest()
    return head + "." + b64(sig)


def test_claims_naming_a_claim_twice_are_401(srv):
    """A payload that names "sub" twice is refused, not read one way or the
    other (a verifier that keeps the first and one that keeps the last would
    disagree on who the user is)."""
    now = int(time.time())
    base = f'"iat":{now},"exp":{now + 600},"aud":"tasks-api","iss":"crest-demo"'
    assert srv.get("/me", headers=auth(signed('{"sub":"alice",' + base + '}'))).status_code == 200
    p = unauthorized(srv.get("/me", headers=auth(signed('{"sub":"alice","sub":"admin",' + base + '}'))))
    assert "distinct names" in p["detail"]
    for payload in ('["not","an","object"]', '"alice"', '{"sub":"alice",' + base + ',}'):
        unauthorized(srv.get("/me", headers=auth(signed(payload))))


def test_numeric_dates_at_the_edges_of_int64(srv):
    """Regression (fuzz_token, claims signed with the secret): "exp":9999999e98
    was cast from double to int64_t (undefined: the sanitizer build aborted)
    and exp + leeway overflowed for exp near INT64_MAX. A real beyond 1e18 s
    is not a date; a huge integer is a far future; real dates are floored."""
    now = int(time.time())
    rest = f'"sub":"alice","iat":{now},"aud":"tasks-api","iss":"crest-demo"'
    for exp in ("9999999e98", "-1e300", "1e18"):
        p = unauthorized(srv.get("/me", headers=auth(signed('{"exp":' + exp + "," + rest + "}"))))
        assert "exp" in p["detail"]
    for exp in ("9223372036854775807", f"{now + 600}.75", "9.9e17"):
        r = srv.get("/me", headers=auth(signed('{"exp":' + exp + "," + rest + "}")))
        assert r.status_code == 200, (exp, r.text)
    unauthorized(srv.get("/me", headers=auth(signed('{"exp":' + f"{now - 100}.5," + rest + "}"))))
    t = signed('{"exp":' + str(now + 600) + ',"nbf":-9223372036854775808,"iat":-9223372036854775808,'
               '"sub":"alice","aud":"tasks-api","iss":"crest-demo"}')
    assert srv.get("/me", headers=auth(t)).status_code == 200


def test_an_algorithm_not_pinned_is_401(srv):
    unauthorized(srv.get("/me", headers=auth(token(alg="HS512"))))


def test_expired_beyond_leeway_is_401_within_is_200(srv):
    now = int(time.time())
    unauthorized(srv.get("/me", headers=auth(token(exp=now - 120, iat=now - 600))))
    assert srv.get("/me", headers=auth(token(exp=now - 10, iat=now - 600))).status_code == 200


def test_exp_is_required(srv):
    unauthorized(srv.get("/me", headers=auth(token(exp=None))))


def test_nbf_in_the_future_is_401(srv):
    unauthorized(srv.get("/me", headers=auth(token(nbf=int(time.time()) + 3600))))


def test_iat_in_the_future_is_401(srv):
    unauthorized(srv.get("/me", headers=auth(token(iat=int(time.time()) + 3600))))


@pytest.mark.parametrize("over", [{"aud": "other-api"}, {"aud": None}, {"iss": "someone-else"}, {"iss": None},
                                  {"sub": None}, {"sub": ""}])
def test_wrong_or_missing_claims_are_401(srv, over):
    unauthorized(srv.get("/me", headers=auth(token(**over))))


def test_audience_list_containing_ours_is_accepted(srv):
    assert srv.get("/me", headers=auth(token(aud=["x", "tasks-api"]))).status_code == 200


def test_token_line_over_the_header_limit_is_431(srv):
    """A header line over limits.header_line (8 KiB) is refused by the HTTP
    layer before auth sees it: 431, whatever the header is."""
    big = token(padding="x" * 9000)
    assert len("Authorization: Bearer " + big) > 8192
    assert_problem(srv.get("/me", headers=auth(big)), 431)


def test_token_over_the_token_cap_but_under_the_header_limit_is_401(crest):
    """auth.jwt.max_token below limits.header_line: a token between the two
    passes the HTTP layer and is refused by auth (401), and one just under
    the cap is accepted."""
    app = APP.replace("    leeway: 30\n", "    leeway: 30\n    max_token: 2048\n")
    s = crest(app, env=ENV)
    under = token(padding="x" * 1300)
    over = token(padding="x" * 3000)
    assert len(under) <= 2048 < len(over) and len("Authorization: Bearer " + over) < 8192
    assert s.get("/me", headers=auth(under)).status_code == 200
    p = unauthorized(s.get("/me", headers=auth(over)))
    assert "larger" in p["detail"]


def test_jwt_with_crit_naming_an_unknown_extension_is_401(srv):
    """Regression: RFC 7515 §4.1.11 says a recipient that does not understand
    an extension listed in `crit` must reject the JWS; crest accepted it. The
    same token without `crit` is accepted, so only the header differs."""
    ok = token()
    assert srv.get("/me", headers=auth(ok)).status_code == 200
    now = int(time.time())
    claims = {"sub": "alice", "iat": now, "exp": now + 600, "aud": "tasks-api", "iss": "crest-demo"}
    for headers in ({"crit": ["exp-ext"], "exp-ext": True}, {"crit": []}, {"crit": "b64"}):
        t = pyjwt.encode(claims, SECRET, algorithm="HS256", headers=headers)
        p = unauthorized(srv.get("/me", headers=auth(t)))
        assert "crit" in p["detail"], p


def test_two_authorization_headers_are_refused(srv):
    """Regression: with two Authorization headers (valid A, then valid B) the
    first won and the request was served as A. Ambiguous credentials are a
    400, as a second Host is; on a public route too."""
    a, b = token(sub="alice"), token(sub="bob")
    for path in ("/me", "/open"):
        r = srv.request("GET", path, headers=[("Authorization", f"Bearer {a}"), ("Authorization", f"Bearer {b}")])
        p = assert_problem(r, 400, "bad_request")
        assert "Authorization" in p["detail"]
    assert srv.get("/me", headers=auth(a)).status_code == 200


def test_two_api_key_headers_are_refused(srv):
    r = srv.request("GET", "/open", headers=[("X-API-Key", "one"), ("X-API-Key", "two")])
    p = assert_problem(r, 400, "bad_request")
    assert "X-API-Key" in p["detail"]


def test_permission_403_then_200(srv):
    t = token(permissions=[])
    p = assert_problem(srv.request("POST", "/tasks", json={"title": "x"}, headers=auth(t)), 403)
    assert "tasks.manage" in p["detail"]
    r = srv.request("POST", "/tasks", json={"title": "x"}, headers=auth(token()))
    assert r.status_code == 201
    r = srv.request("POST", "/tasks", json={"title": "y"}, headers=auth(token(permissions=["tasks.admin"])))
    assert r.status_code == 201
    assert srv.get(f"/tasks/{r.json()['id']}", headers=auth(t)).status_code == 200


def test_deny_by_default(srv):
    # An endpoint and module methods that declare no permission are closed.
    assert_problem(srv.get("/closed", headers=auth(token())), 403)
    assert_problem(srv.request("DELETE", "/tasks/1", headers=auth(token())), 403)
    unauthorized(srv.request("PATCH", "/tasks/1", json={"title": "z"}))


def test_auth_comes_before_parameter_checks(srv):
    unauthorized(srv.get("/tasks/not-a-number"))


def test_document_declares_security(srv):
    doc = srv.get("/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer",
                                                              "bearerFormat": "JWT"}
    assert doc["security"] == [{"bearer": []}]
    assert doc["paths"]["/open"]["get"]["security"] == []
    me = doc["paths"]["/me"]["get"]
    assert me["security"] == [{"bearer": []}] and {"401", "403"} <= set(me["responses"])
    create = doc["paths"]["/tasks"]["post"]
    assert {"401", "403"} <= set(create["responses"]) and create["x-permissions"] == "tasks.manage,tasks.admin"
    assert doc["paths"]["/tasks"]["get"]["security"] == []


def test_crest_token_makes_a_token_the_server_accepts(srv, tmp_path):
    (tmp_path / "app.yaml").write_text(APP)
    r = run_cli([CREST_BIN, "token", str(tmp_path / "app.yaml"), "--sub", "carol", "--perm", "tasks.manage",
                 "--ttl", "10m"], cwd=str(tmp_path), env=ENV)
    assert r.returncode == 0, r.err
    t = r.out.strip()
    claims = pyjwt.decode(t, SECRET, algorithms=["HS256"], audience="tasks-api", issuer="crest-demo")
    assert claims["sub"] == "carol" and claims["permissions"] == ["tasks.manage"]
    assert 590 <= claims["exp"] - claims["iat"] <= 600
    assert srv.request("POST", "/tasks", json={"title": "c"}, headers=auth(t)).status_code == 201
    r = run_cli([CREST_BIN, "token", str(tmp_path / "app.yaml")], cwd=str(tmp_path), env=ENV)
    assert r.returncode == 2


@pytest.mark.parametrize("env,word", [({"CREST_JWT_SECRET": "short"}, "32"), ({}, "CREST_JWT_SECRET")])
def test_weak_or_missing_secret_refuses_to_start(tmp_path, env, word):
    (tmp_path / "app.yaml").write_text(APP)
    r = run_cli([CREST_BIN, "check", str(tmp_path / "app.yaml")], cwd=str(tmp_path), env=env)
    assert r.returncode == 1 and word in r.err


def test_the_secret_cannot_be_written_in_the_app_file(tmp_path):
    (tmp_path / "app.yaml").write_text(APP.replace("secret_env: CREST_JWT_SECRET", "secret: " + SECRET))
    r = run_cli([CREST_BIN, "check", str(tmp_path / "app.yaml")], cwd=str(tmp_path), env=ENV)
    assert r.returncode == 1 and "secret" in r.err


def test_secret_file(tmp_path):
    (tmp_path / "secret.txt").write_text(SECRET + "\n")
    (tmp_path / "app.yaml").write_text(APP.replace("secret_env: CREST_JWT_SECRET", "secret_file: secret.txt"))
    r = run_cli([CREST_BIN, "token", str(tmp_path / "app.yaml"), "--sub", "d"], cwd=str(tmp_path))
    assert r.returncode == 0, r.err
    pyjwt.decode(r.out.strip(), SECRET, algorithms=["HS256"], audience="tasks-api")


def test_a_token_on_a_public_route_is_checked_and_names_the_user(srv):
    unauthorized(srv.get("/open", headers=auth(token(secret="another-secret-of-32-bytes-or-more!!"))))
    assert srv.get("/open", headers=auth(token())).status_code == 200


def test_the_c_example_reads_the_user(hello, tmp_path):
    s = hello(env={"CREST_JWT_SECRET": SECRET})
    assert s.get("/hello").json() == {"message": "hello"}
    unauthorized(s.get("/whoami"))
    t = pyjwt.encode({"sub": "erin", "exp": int(time.time()) + 60, "permissions": ["a", "b"]}, SECRET,
                     algorithm="HS256")
    assert s.get("/whoami", headers=auth(t)).json() == {"id": "erin", "permissions": ["a", "b"]}


def test_token_cache_honours_exp(crest):
    """Verified tokens are cached per worker; a cached token still expires."""
    s = crest(APP.replace("leeway: 30", "leeway: 0"), env=ENV)
    exp = int(time.time()) + 2
    t = token(exp=exp)
    for _ in range(3):  # the first verifies, the others hit the cache
        assert s.get("/me", headers=auth(t)).status_code == 200
    while time.time() < exp + 1.2:
        time.sleep(0.2)
    p = unauthorized(s.get("/me", headers=auth(t)))
    assert "expired" in p["detail"]


def test_token_cache_compares_the_whole_token(srv):
    t = token(sub="cached-user")
    assert srv.get("/me", headers=auth(t)).status_code == 200  # now cached
    head, payload, sig = t.split(".")
    flipped = sig[:-2] + ("A" if sig[-2] != "A" else "B") + sig[-1]
    unauthorized(srv.get("/me", headers=auth(f"{head}.{payload}.{flipped}")))
    unauthorized(srv.get("/me", headers=auth(t + "x")))
    unauthorized(srv.get("/me", headers=auth(t[:-1])))
    assert srv.get("/me", headers=auth(t)).status_code == 200
