"""Shared app texts and helpers for the REST module tests (test_rest_*.py).

The REST tests are black-box: they start `crest serve` on an app file with
`models:` and `modules:` and talk HTTP to it. Read-only tests share one
module-scoped server (see `served`); tests that write start their own through
conftest's function-scoped `crest` fixture. Both run on the test store
(conftest's STORE): on PostgreSQL each server's `sqlite:NAME` is a database of
the cluster.
"""
import contextlib
import json
import os
import re
import textwrap
from datetime import datetime, timezone

import pytest

from conftest import CREST_BIN, STORE, Server, StoreDbs, _require, assert_problem, on_store

# The app of DESIGN.md's "App file" section, with explicit allow-lists.
CONTRACT_APP = """\
database: sqlite:app.db
models:
  Task:
    table: tasks
    fields:
      title:        {type: string, required: true, max_length: 200}
      is_completed: {type: bool, default: false}
      spent_time:   {type: int, min: 0, default: 0}
      created_at:   {type: datetime, default: now, rest: read}
modules:
  tasks:
    model: Task
    url_prefix: /tasks
    enabled_methods: [index, create, read, update, delete, sample, group, stats, eval]
    allowed_sorts: [id, created_at, spent_time]
    query_allowed_fields: [is_completed, spent_time, title]
    grouping_allowed_fields: [is_completed]
    stats_allowed_fields: [spent_time]
    page_size: {default: 20, min: 1, max: 50}
"""

CONTRACT_ROWS = [
    {"title": "one", "is_completed": False, "spent_time": 10},
    {"title": "two", "is_completed": True, "spent_time": 20},
    {"title": "three", "is_completed": False, "spent_time": 30},
]

# Every field type, nullable fields, every method, default allow-lists.
QUERY_APP = """\
database: sqlite:query.db
models:
  Task:
    table: tasks
    fields:
      title:        {type: string, required: true, max_length: 200}
      tag:          {type: string}
      is_completed: {type: bool, default: false}
      spent_time:   {type: int, min: 0, default: 0}
      score:        {type: float}
      priority:     {type: int, default: 1}
      due:          {type: date}
      due_at:       {type: datetime}
      created_at:   {type: datetime, default: now, rest: read}
modules:
  tasks:
    model: Task
    url_prefix: /tasks
    enabled_methods: [index, create, read, update, delete, sample, group, stats, eval]
"""

# Seeded in this order (ids 1..6 in a fresh table). Titles are unique and name the rows in assertions.
QUERY_ROWS = [
    {"title": "Alpha", "tag": "red", "spent_time": 10, "is_completed": False, "score": 1.5, "priority": 3,
     "due": "2024-03-01", "due_at": "2024-05-01T08:00:00Z"},
    {"title": "alpha beta", "tag": "blue", "spent_time": 20, "is_completed": True, "score": 2.5, "priority": 1,
     "due": "2024-02-29", "due_at": "2024-05-01T12:30:00+02:00"},
    {"title": "Gamma", "tag": None, "spent_time": 30, "is_completed": False, "priority": 3},
    {"title": "100% done", "tag": "red", "spent_time": 40, "is_completed": True, "score": 4.0, "priority": 2,
     "due": "2024-12-31"},
    {"title": "under_score", "tag": "green", "spent_time": 0, "is_completed": False, "score": 0.0, "priority": 3},
    {"title": "underXscore", "spent_time": 55, "is_completed": False, "priority": 1},
]
ALL_TITLES = {r["title"] for r in QUERY_ROWS}

# Every option a body can violate.
BODY_APP = """\
database: sqlite:body.db
models:
  Task:
    table: tasks
    fields:
      title:        {type: string, required: true, max_length: 200}
      is_completed: {type: bool, default: false}
      spent_time:   {type: int, min: 0, default: 0}
      created_at:   {type: datetime, default: now, rest: read}
      code:         {type: string, unique: true, pattern: "[A-Z]{3}-[0-9]+"}
      status:       {type: string, values: [todo, doing, done], default: todo}
      rating:       {type: float, min: 0, max: 5}
      nick:         {type: string, min_length: 2, max_length: 8}
      notes:        {type: text}
      due:          {type: date}
      due_at:       {type: datetime}
      data:         {type: json}
      secret:       {type: string, rest: write}
      internal:     {type: string, rest: none, default: hidden}
modules:
  tasks:
    model: Task
    url_prefix: /tasks
"""

BODY_SERVED_KEYS = {"id", "title", "is_completed", "spent_time", "created_at", "code", "status", "rating",
                    "nick", "notes", "due", "due_at", "data"}

# A small model for the module-option tests; `module_app(opts)` adds the module.
OPTIONS_MODEL = """\
database: sqlite:opts.db
models:
  Task:
    table: tasks
    fields:
      title:        {type: string, required: true, max_length: 200}
      is_completed: {type: bool, default: false}
      spent_time:   {type: int, min: 0, default: 0}
"""

OPTION_ROWS = [
    {"title": "a", "is_completed": False, "spent_time": 1800},
    {"title": "b", "is_completed": True, "spent_time": 3600},
    {"title": "c", "is_completed": False, "spent_time": 0},
]

# Field-level access: salary is read with hr.read or hr.admin and written with hr.admin only
# (test_auth_fields.py, and fields= in test_rest_list_params.py).
FIELD_ACCESS_APP = """\
database: sqlite:f.db
auth:
  jwt: {algorithms: [HS256], secret_env: CREST_JWT_SECRET}
models:
  Person:
    fields:
      name: {type: string, required: true}
      salary: {type: int, read_permission: [hr.read, hr.admin], write_permission: hr.admin}
      rating: {type: int, default: 0, write_permission: hr.admin}
modules:
  people:
    model: Person
    enabled_methods: [index, read, create, update, sample, group, stats]
    permissions: {index: authenticated, read: authenticated, create: authenticated, update: authenticated,
                  sample: authenticated, group: authenticated, stats: authenticated}
"""

ALL_METHODS = "[index, create, read, update, delete, sample, group, stats, eval]"


def module_app(opts="", name="tasks", model=OPTIONS_MODEL):
    """OPTIONS_MODEL plus one module `name` over Task; opts: YAML lines of module keys (unindented)."""
    body = f"  {name}:\n    model: Task\n"
    if opts:
        body += textwrap.indent(textwrap.dedent(opts).strip("\n") + "\n", "    ")
    return model + "modules:\n" + body


RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def parse_utc(s):
    """An RFC 3339 string served by crest ("...Z") as an aware datetime."""
    assert isinstance(s, str) and RFC3339_UTC.match(s), f"not RFC 3339 UTC with Z: {s!r}"
    return datetime.fromisoformat(s[:-1]).replace(tzinfo=timezone.utc)


class _Cursor:
    """Equals a cursor crest made (meta.next_cursor when a page follows: base64url, opaque)."""

    def __eq__(self, other):
        return isinstance(other, str) and re.fullmatch(r"[A-Za-z0-9_-]{40,}", other) is not None

    def __repr__(self):
        return "<cursor>"


CURSOR = _Cursor()


def next_cursor(has_more):
    """meta.next_cursor of an index page: a cursor when a page follows, else null."""
    return CURSOR if has_more else None


# ---------------------------------------------------------------- servers


def start_server(tmp_path_factory, app_text, name="rest", env=None, workers=1):
    """A server on a fresh directory, outside conftest's function-scoped fixtures. On PostgreSQL (STORE) its
    SQLite databases are databases of the cluster of its own (s.store_dbs: close it once the server stops)."""
    _require(CREST_BIN, "CREST_BIN")
    d = tmp_path_factory.mktemp(name)
    path = d / "app.yaml"
    app_text = textwrap.dedent(app_text)
    dbs = StoreDbs(None)
    if STORE == "postgres":
        app_text, env = dbs.app_text(app_text), dbs.env(env)
    path.write_text(app_text)
    argv = [CREST_BIN, "serve", str(path), "--listen", "127.0.0.1:0", "--workers", str(workers)]
    s = Server(argv, cwd=str(d), env=env)
    s.dir = d
    s.app_path = path
    s.store_dbs = dbs
    try:
        s.wait_listening()
    except Exception:
        s.stop()
        dbs.close()
        raise
    return s


def served(tmp_path_factory, app_text, rows=(), prefix="/tasks", name="rest", bulk=False):
    """Body of a module-scoped fixture: `yield from served(...)` yields a running server seeded with rows
    (s.seeded: the created objects, in order; bulk: in one POST of an array), then stops it and fails on an
    unclean exit."""
    yield from module_server(tmp_path_factory, app_text, name=name,
                             setup=lambda s: setattr(s, "seeded", (seed_bulk if bulk else seed)(s, prefix, rows)
                                                     if rows else []))


def module_server(tmp_path_factory, app_text, name="rest", env=None, setup=None):
    """Body of a module-scoped fixture: `yield from module_server(...)` yields a running server, after
    setup(s) when given, then stops it and fails on an unclean exit (a sanitizer report included)."""
    s = start_server(tmp_path_factory, app_text, name=name, env=env)
    try:
        if setup:
            setup(s)
        yield s
    finally:
        s.stop()
        s.store_dbs.close()
    problems = s.check_clean()
    if problems:
        pytest.fail("\n".join(problems) + "\n--- stderr (tail) ---\n" + "\n".join(s.lines[-40:]), pytrace=False)


# ---------------------------------------------------------------- requests


def seed(s, prefix, rows):
    """Creates rows one POST at a time; returns the created objects."""
    out = []
    with s.client() as c:
        for row in rows:
            r = c.post(prefix, json=row)
            assert r.status_code == 201, f"seeding {row}: {r.status_code} {r.text}"
            out.append(r.json())
    return out


def seed_bulk(s, prefix, rows):
    """Creates rows with one POST of an array (one transaction: quicker than one sync per row)."""
    r = s.request("POST", prefix, json=list(rows))
    assert r.status_code == 201, f"bulk seeding: {r.status_code} {r.text[:500]}"
    data = r.json()["data"]
    assert len(data) == len(rows)
    return data


def post_raw(s, path, body, ctype="application/json", method="POST"):
    """A request with exact body bytes and content type (None: no Content-Type header)."""
    if isinstance(body, str):
        body = body.encode("utf-8")
    headers = {} if ctype is None else {"content-type": ctype}
    return s.request(method, path, content=body, headers=headers)


def get_where(s, where, path="/tasks", **params):
    """GET path with where=<json> (a str is sent as is)."""
    params = dict(params)
    params["where"] = where if isinstance(where, str) else json.dumps(where)
    return s.get(path, params=params)


def data_of(r, envelope="data"):
    assert r.status_code == 200, f"{r.status_code}: {r.text[:500]}"
    assert r.headers["content-type"].split(";")[0].strip() == "application/json", r.headers["content-type"]
    body = r.json()
    assert isinstance(body, dict) and isinstance(body.get(envelope), list), body
    return body[envelope]


def titles(r, envelope="data"):
    """The titles of a 200 list answer, as a set (checks they are distinct)."""
    ts = [o["title"] for o in data_of(r, envelope)]
    assert len(ts) == len(set(ts)), ts
    return set(ts)


def title_list(r, envelope="data"):
    return [o["title"] for o in data_of(r, envelope)]


def total(s, path="/tasks"):
    """meta.total_objects of GET path (count=exact)."""
    r = s.get(path, params={"count": "exact"})
    assert r.status_code == 200, r.text
    return r.json()["meta"]["total_objects"]


@contextlib.contextmanager
def creates(s, n, path="/tasks"):
    """Asserts the block adds exactly n rows to path's table (total before and after): on a shared server, what
    `total(s) == n` asserts on a fresh one."""
    before = total(s, path)
    yield
    assert total(s, path) == before + n


def mentions(p, name):
    """True when a problem names `name`: a key of "errors", inside one of its messages, or in "detail"."""
    errs = p.get("errors")
    if isinstance(errs, dict):
        if name in errs:
            return True
        if any(isinstance(v, str) and name in v for v in errs.values()):
            return True
    return name in (p.get("detail") or "")


def assert_names(p, *names):
    for n in names:
        assert mentions(p, n), f"problem does not name {n!r}: {p}"


def field_errors(p):
    """The "errors" object of a 422 problem (must be a non-empty object of strings)."""
    errs = p.get("errors")
    assert isinstance(errs, dict) and errs, f"problem without an errors object: {p}"
    for k, v in errs.items():
        assert isinstance(v, str) and v, (k, v)
    return errs


def allow_of(r):
    return {m.strip().upper() for m in r.headers.get("allow", "").split(",") if m.strip()}


def problem_in(r, *statuses):
    """assert_problem for an answer whose status may be any of statuses (where the contract allows several)."""
    st = r.status_code
    assert st in statuses, f"expected one of {statuses}, got {st}: {r.text[:500]}"
    return assert_problem(r, st)


EXAMPLE_APP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "examples", "tasks", "app.yaml"))

# The example's startup SQL (SQLite's) in PostgreSQL's form: the same table, rule and rows.
PG_STARTUP_SQL = """\
startup_sql:
  - CREATE TABLE IF NOT EXISTS projects (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
      name text NOT NULL UNIQUE, locked integer NOT NULL DEFAULT 0)
  - CREATE OR REPLACE FUNCTION projects_keep_locked() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      IF old.locked <> 0 THEN RAISE EXCEPTION 'crest:409:Cannot delete a locked project'; END IF; RETURN old; END $$
  - CREATE OR REPLACE TRIGGER projects_keep_locked BEFORE DELETE ON projects FOR EACH ROW
      EXECUTE FUNCTION projects_keep_locked()
  - INSERT INTO projects (id, name, locked) VALUES (1, 'crest', 1), (2, 'sandbox', 0) ON CONFLICT DO NOTHING
"""


# A sessions table and its rule, in each store's SQL (startup_sql lines): a
# session with used quota cannot be deleted, in the trigger form of crest's
# own status (400). Used by the REST and the SQL endpoint tests alike.
SESSIONS_RULE_SQL = on_store(sqlite="""\
  - CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY, used_quota INTEGER NOT NULL DEFAULT 0)
  - CREATE TRIGGER IF NOT EXISTS sessions_keep_used BEFORE DELETE ON sessions WHEN old.used_quota > 0
      BEGIN SELECT RAISE(ABORT, 'crest:400:Cannot delete a session with used quota'); END
""", postgres="""\
  - CREATE TABLE IF NOT EXISTS sessions (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
      used_quota bigint NOT NULL DEFAULT 0)
  - CREATE OR REPLACE FUNCTION sessions_keep_used() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
      IF old.used_quota > 0 THEN RAISE EXCEPTION 'crest:400:Cannot delete a session with used quota'; END IF;
      RETURN old; END $$
  - CREATE OR REPLACE TRIGGER sessions_keep_used BEFORE DELETE ON sessions FOR EACH ROW
      EXECUTE FUNCTION sessions_keep_used()
""")


def example_app():
    """The example app's text; on PostgreSQL with its startup SQL in that store's form."""
    text = open(EXAMPLE_APP).read()
    if on_store(sqlite=False, postgres=True):
        head, rest = text.split("startup_sql:\n", 1)
        rest = rest[rest.index("\nmodels:"):]
        text = head + PG_STARTUP_SQL + rest
    return text
