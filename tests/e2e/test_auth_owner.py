"""Row ownership (OWASP BOLA): `owner:` makes create set the field from the
user and scopes every route to the user's rows (someone else's row is 404,
never 403); a scope may name $user.id and $user.<claim>."""
import json

import pytest

from conftest import CREST_BIN, JWT_ENV, Server, assert_problem, bearer


APP = """\
database: sqlite:o.db
auth:
  jwt:
    algorithms: [HS256]
    secret_env: CREST_JWT_SECRET
models:
  Note:
    table: notes
    fields:
      title: {type: string, required: true}
      n: {type: int, default: 0}
      owner_id: {type: string, rest: read}
      team: {type: string}
modules:
  notes:
    model: Note
    owner: owner_id
    enabled_methods: [index, read, create, update, delete, sample, group, stats, eval]
    permissions: {index: authenticated, read: authenticated, create: authenticated, update: authenticated,
                  delete: authenticated, sample: authenticated, group: authenticated, stats: authenticated,
                  eval: authenticated}
  team_notes:
    model: Note
    url_prefix: /team
    scope: {team: $user.team}
    permissions: {index: authenticated}
endpoints:
  - path: /me/notes/count
    permission: authenticated
    sql: SELECT count(*) AS n FROM notes WHERE owner_id = :user.id
    returns: one
  - path: /me/claims
    permission: public
    # every way to name the user: :user.<claim>, $user. and @user., a list
    # claim as JSON text; the same words inside quotes and comments are text
    sql: >-
      SELECT :user.id AS id, $user.team AS team, @user.level AS level,
             :user.admin AS admin, :user.groups AS groups, :user.missing AS missing,
             ':user.id' AS quoted, "x"."y" AS "a:user.id" -- :user.id in a comment
      FROM (SELECT 1 AS y) AS "x" /* :user.team */
    returns: one
"""


tok = bearer


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("owner")
    (d / "app.yaml").write_text(APP)
    s = Server([CREST_BIN, "serve", str(d / "app.yaml"), "--listen", "127.0.0.1:0", "--workers", "1"], cwd=str(d),
               env=JWT_ENV)
    s.wait_listening()
    a = s.request("POST", "/notes", json={"title": "alice's", "n": 5, "team": "red"}, headers=tok("alice")).json()
    b = s.request("POST", "/notes", json={"title": "bob's", "n": 7, "team": "blue"}, headers=tok("bob")).json()
    s.ids = {"alice": a["id"], "bob": b["id"]}
    s.first = a
    yield s
    s.stop()


def test_sql_endpoint_reads_the_user(srv):
    """An SQL endpoint names the user as :user.id (the token's sub) and
    :user.<claim>, as DESIGN.md's /me/tasks/count does."""
    assert srv.get("/me/notes/count", headers=tok("alice")).json() == {"n": 1}
    assert srv.get("/me/notes/count", headers=tok("carol")).json() == {"n": 0}
    assert_problem(srv.get("/me/notes/count"), 401)
    got = srv.get("/me/claims", headers=tok("alice", team="red", level=3, admin=True, groups=["a", "b"])).json()
    assert got == {"id": "alice", "team": "red", "level": 3, "admin": 1, "groups": '["a","b"]', "missing": None,
                   "quoted": ":user.id", "a:user.id": 1}
    anon = srv.get("/me/claims").json()  # public: no user, every :user. is null
    assert anon["id"] is None and anon["team"] is None and anon["quoted"] == ":user.id"
    doc = srv.get("/openapi.json").json()
    params = doc["paths"]["/me/claims"]["get"].get("parameters", [])
    assert not any("user" in p["name"] for p in params)  # the user is not a request parameter


def test_more_tokens_than_the_cache_holds_each_name_their_user(srv):
    """The worker's cache of verified tokens holds 512 (128 sets of 4): with
    700 users, each asked for twice in an interleaved order, entries are
    replaced all the time, and every answer still names its own user."""
    heads = [tok(f"user{i}") for i in range(700)]
    with srv.client() as c:  # one keep-alive connection: one worker, one cache
        for rnd in range(2):
            order = range(700) if rnd == 0 else reversed(range(700))
            for i in order:
                assert c.get("/me/claims", headers=heads[i]).json()["id"] == f"user{i}"


def test_sql_user_parameter_needs_auth(tmp_path):
    from conftest import run_cli
    (tmp_path / "app.yaml").write_text("database: sqlite:x.db\nendpoints:\n  - path: /mine\n"
                                       "    sql: SELECT :user.id AS id\n    returns: one\n")
    r = run_cli([CREST_BIN, "check", str(tmp_path / "app.yaml")], cwd=str(tmp_path))
    assert r.returncode != 0
    assert ":user.id" in r.err and "auth" in r.err


def test_create_sets_the_owner_from_the_user(srv):
    assert srv.first["owner_id"] == "alice"
    p = assert_problem(srv.request("POST", "/notes", json={"title": "x", "owner_id": "bob"}, headers=tok("alice")),
                       422)
    assert "owner_id" in p["errors"]


def test_someone_elses_row_is_404_everywhere(srv):
    bob = srv.ids["bob"]
    for method, body in (("GET", None), ("PATCH", {"n": 1}), ("PUT", {"n": 1}), ("DELETE", None)):
        r = srv.request(method, f"/notes/{bob}", json=body, headers=tok("alice"))
        assert_problem(r, 404)
    assert srv.get(f"/notes/{bob}", headers=tok("bob")).json()["title"] == "bob's"


def test_lists_and_aggregates_see_only_the_users_rows(srv):
    h = tok("alice")
    titles = [n["title"] for n in srv.get("/notes", headers=h).json()["data"]]
    assert titles == ["alice's"]
    assert srv.get("/notes/sample", headers=h).json()["meta"]["total_objects"] == 1
    groups = srv.get("/notes/group/team", headers=h).json()["data"]
    assert groups == [{"value": "red", "count": 1}]
    assert srv.get("/notes/stats", params={"fields": "n"}, headers=h).json()["n"]["max"] == 5
    q = json.dumps({"functions": [{"name": "count"}, {"name": "sum", "field": "n"}]})
    assert srv.get("/notes/eval", params={"q": q}, headers=h).json() == {"count": 1, "sum__n": 5}


def test_update_cannot_move_a_row_to_someone_else(srv):
    a = srv.ids["alice"]
    r = srv.request("PATCH", f"/notes/{a}", json={"title": "still alice's"}, headers=tok("alice"))
    assert r.status_code == 200 and r.json()["owner_id"] == "alice"


def test_scope_with_a_user_claim(srv):
    titles = [n["title"] for n in srv.get("/team", headers=tok("carol", team="blue")).json()["data"]]
    assert titles == ["bob's"]
    assert srv.get("/team", headers=tok("dave")).json()["data"] == []  # no team claim: null matches nothing set
