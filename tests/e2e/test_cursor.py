"""Cursor (keyset) pagination (issue 14, item 2), on both stores: every index
answer has meta.next_cursor and, when a page follows, a Link rel="next"
header; ?cursor= continues after the previous page's last row with the same
where and sort_by. Walks by cursor equal the offset walk for every kind of
sort (default, each allowed one both ways, several keys, nullable columns,
a dotted name, with where, include and fields); a walk while another client
inserts and deletes rows returns every row that was there throughout exactly
once; a cursor whose row was deleted still continues; a tampered, truncated,
garbage, foreign (other list, other database) or mismatched cursor is a 400
invalid_cursor saying what is wrong."""
import threading
from urllib.parse import urlencode

import pytest

from conftest import assert_problem
from rest_apps import module_server, start_server

APP = """\
database: sqlite:cursor.db
models:
  Person:
    table: person
    fields:
      name: {type: string, required: true}
      items: {has_many: Item, via: owner}
  Item:
    table: item
    fields:
      title: {type: string, required: true}
      rank:  {type: int}
      score: {type: float}
      due:   {type: date}
      at:    {type: datetime}
      done:  {type: bool, default: false}
      created_at: {type: datetime, default: now, rest: read}
      owner: {type: ref, model: Person, on_delete: set_null}
modules:
  people:
    model: Person
  items:
    model: Item
    allowed_sorts: [id, title, rank, score, due, at, done, created_at, owner.name]
    query_allowed_fields: [done, rank, title]
    page_size: {default: 3, max: 50}
"""

PEOPLE = ["Zoe", "Ann", "Bob", "Ann"]  # two Anns: ties on owner.name


def item(i):
    """Row i of the seed: ties and NULLs in every sortable column."""
    return {
        "title": f"t{i % 7:02d}-{i:02d}",
        "rank": None if i % 5 == 0 else i % 4,
        "score": None if i % 6 == 1 else [0.5, 1.25, -3.0, 1e-9][i % 4],
        "due": None if i % 3 == 0 else f"2026-0{1 + i % 3}-1{i % 2}",
        "at": None if i % 4 == 2 else f"2026-05-0{1 + i % 3}T10:00:0{i % 2}.{i % 3}5Z",
        "done": i % 3 == 1,
        "owner_id": None if i % 7 == 3 else 1 + i % 4,
    }


N = 23


def seed(s):
    for name in PEOPLE:
        assert s.request("POST", "/people", json={"name": name}).status_code == 201
    with s.client() as c:  # one at a time: created_at differs in sub-milliseconds on PostgreSQL
        for i in range(N):
            r = c.post("/items", json=item(i))
            assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    yield from module_server(tmp_path_factory, APP, name="cursor", setup=seed)


def ids(r):
    assert r.status_code == 200, r.text
    return [row["id"] for row in r.json()["data"]]


def offset_walk(s, params, path="/items"):
    """The rows of the list in its order, by page (the reference)."""
    with s.client() as c:
        return offset_walk_on(c, params, path)


def offset_walk_on(c, params, path="/items"):
    out, page = [], 1
    while True:
        r = c.get(path, params={**params, "page": page, "page_size": 50})
        got = ids(r)
        out += got
        if not r.json()["meta"]["has_more"]:
            return out
        page += 1


def link_of(r):
    """The URL of Link rel="next" (RFC 8288 syntax), or None."""
    v = r.headers.get("link")
    if v is None:
        return None
    assert v.startswith("<") and v.endswith('>; rel="next"'), v
    return v[1:-len('>; rel="next"')]


def cursor_walk(s, params, size=3, follow_link=False, path="/items"):
    """Walks the list by next_cursor (or by following Link as is); checks Link against next_cursor on each
    page; returns the ids and the pages' rows."""
    with s.client() as c:
        return cursor_walk_on(c, params, size, follow_link, path)


def cursor_walk_on(c, params, size, follow_link, path):
    out, pages = [], []
    r = c.get(path + "?" + urlencode({**params, "page_size": size}))
    while True:
        got = ids(r)
        pages.append(r.json()["data"])
        out += got
        meta = r.json()["meta"]
        nxt = meta["next_cursor"]
        link = link_of(r)
        if nxt is None:
            assert link is None and not meta["has_more"]
            return out, pages
        assert meta["has_more"] and len(got) == size
        assert link == path + "?" + urlencode({**params, "page_size": size}) + "&cursor=" + nxt
        r = c.get(link) if follow_link else c.get(path, params={**params, "page_size": size, "cursor": nxt})
        assert len(out) <= 2 * N, "the walk does not end"


SORTS = ["id", "-id", "title", "-title", "rank", "-rank", "score", "-score", "due", "-due", "at", "-at", "done",
         "-done", "created_at", "-created_at", "rank,-title", "-done,score,-due", "owner.name", "-owner.name",
         "owner.name,-rank"]


def test_default_sort_walk_equals_offset_walk(srv):
    got, _ = cursor_walk(srv, {})
    assert got == offset_walk(srv, {}) == list(range(1, N + 1))


@pytest.mark.parametrize("sort", SORTS)
def test_sorted_walk_equals_offset_walk(srv, sort):
    ref = offset_walk(srv, {"sort_by": sort})
    assert sorted(ref) == list(range(1, N + 1))
    for size in (2, 5):
        got, _ = cursor_walk(srv, {"sort_by": sort}, size=size)
        assert got == ref, f"page_size {size}"


def test_walk_by_link_header_as_is(srv):
    params = {"sort_by": "-score", "where": '{"done": false}'}
    got, _ = cursor_walk(srv, params, size=2, follow_link=True)
    assert got == offset_walk(srv, params)
    assert len(got) == sum(not item(i)["done"] for i in range(N))


def test_walk_with_where(srv):
    for where in ('{"rank": {"$ne": 1}}', '{"done": true}', '{"rank": null}'):
        params = {"sort_by": "rank,-at", "where": where}
        got, _ = cursor_walk(srv, params)
        assert got == offset_walk(srv, params)


def test_walk_with_include_and_fields(srv):
    params = {"sort_by": "-owner.name,title", "include": "owner", "fields": "id,title"}
    got, pages = cursor_walk(srv, params, size=4)
    assert got == offset_walk(srv, params)
    rows = [row for p in pages for row in p]
    assert all(set(row) == {"id", "title", "owner"} for row in rows)
    names = {1: "Zoe", 2: "Ann", 3: "Bob", 4: "Ann"}
    for row in rows:
        o = item(row["id"] - 1)["owner_id"]
        assert (row["owner"] or {}).get("name") == names.get(o)


def test_nested_index_walk(srv):
    """/people/{id}/items: the related module's index under its parent, cursor bound to that parent."""
    for pid, params in ((2, {}), (4, {"sort_by": "-score,title"}), (1, {"sort_by": "due"})):
        path = f"/people/{pid}/items"
        got, _ = cursor_walk(srv, params, size=2, path=path, follow_link=pid == 2)
        assert got == offset_walk(srv, params, path=path)
        assert sorted(got) == [i + 1 for i in range(N) if item(i)["owner_id"] == pid]
    c = first_cursor(srv, "/people/2/items")
    problem(srv.get("/people/4/items", params={"cursor": c}), "cursor: made for another list than /people/4/items")


def test_page_size_may_change_between_pages(srv):
    r = srv.get("/items", params={"sort_by": "title", "page_size": 2})
    first = ids(r)
    r = srv.get("/items", params={"sort_by": "title", "page_size": 5, "cursor": r.json()["meta"]["next_cursor"]})
    assert first + ids(r) == offset_walk(srv, {"sort_by": "title"})[:7]
    # limit sets the page's size too
    r = srv.get("/items", params={"sort_by": "title", "limit": 1, "cursor": r.json()["meta"]["next_cursor"]})
    assert ids(r) == offset_walk(srv, {"sort_by": "title"})[7:8]


def test_last_page_has_null_cursor_and_no_link(srv):
    r = srv.get("/items", params={"page_size": 50})
    assert r.json()["meta"]["next_cursor"] is None and "link" not in r.headers
    r = srv.get("/items", params={"where": '{"title": "none"}'})
    assert r.json()["data"] == [] and r.json()["meta"]["next_cursor"] is None and "link" not in r.headers
    # a page ending with the last row: has_more is exact, so no cursor to an empty page
    r = srv.get("/items", params={"page_size": 23})
    assert len(ids(r)) == N and r.json()["meta"]["next_cursor"] is None


def test_counts_with_a_cursor(srv):
    """The module's count stays (of the whole list); count=none skips it."""
    r = srv.get("/items", params={"sort_by": "rank"})
    c = r.json()["meta"]["next_cursor"]
    r = srv.get("/items", params={"sort_by": "rank", "cursor": c})
    assert r.json()["meta"]["total_objects"] == N
    r = srv.get("/items", params={"sort_by": "rank", "cursor": c, "count": "none"})
    assert "total_objects" not in r.json()["meta"] and r.json()["meta"]["has_more"] is True
    assert r.json()["meta"]["next_cursor"]


def test_link_keeps_other_parameters_and_drops_page(srv):
    r = srv.get("/items?page=2&sort_by=-rank&page_size=2&fields=id%2Ctitle")
    assert link_of(r) == ("/items?sort_by=-rank&page_size=2&fields=id%2Ctitle&cursor="
                          + r.json()["meta"]["next_cursor"])
    assert ids(srv.get(link_of(r))) == offset_walk(srv, {"sort_by": "-rank"})[4:6]
    r = srv.get("/items?offset=3&limit=2")
    assert link_of(r) == "/items?limit=2&cursor=" + r.json()["meta"]["next_cursor"]
    assert ids(srv.get(link_of(r))) == [6, 7]


def test_openapi_declares_cursor_link_and_next_cursor(srv):
    doc = srv.get("/openapi.json").json()
    for path in ("/items", "/people/{id}/items"):
        op = doc["paths"][path]["get"]
        cursor = [p for p in op["parameters"] if p["name"] == "cursor"]
        assert len(cursor) == 1 and cursor[0]["in"] == "query" and cursor[0]["schema"]["type"] == "string"
        link = op["responses"]["200"]["headers"]["Link"]
        assert link["schema"] == {"type": "string"} and 'rel="next"' in link["description"]
    meta = doc["components"]["schemas"]["ListMeta"]["properties"]["next_cursor"]
    assert meta["type"] == ["string", "null"]


# ---------------------------------------------------------------- errors


def problem(r, detail):
    p = assert_problem(r, 400, "invalid_cursor")
    assert p["detail"] == detail, p
    return p


ALTERED = "cursor: altered, truncated, or made by a server on another database"
NOT_B64 = "cursor: not a cursor of crest's (not base64url text of at most 4096 characters)"


def first_cursor(s, path="/items", **params):
    r = s.get(path, params={"page_size": 2, **params})
    return r.json()["meta"]["next_cursor"]


def test_tampered_cursor(srv):
    c = first_cursor(srv, sort_by="rank")
    for i in (0, len(c) // 2, len(c) - 2):
        flipped = c[:i] + ("A" if c[i] != "A" else "B") + c[i + 1:]
        problem(srv.get("/items", params={"sort_by": "rank", "cursor": flipped}), ALTERED)


def test_truncated_cursor(srv):
    c = first_cursor(srv, sort_by="rank")
    problem(srv.get("/items", params={"sort_by": "rank", "cursor": c[:20]}), ALTERED)
    problem(srv.get("/items", params={"sort_by": "rank", "cursor": c[:-4]}), ALTERED)
    problem(srv.get("/items", params={"sort_by": "rank", "cursor": c[:-1]}), NOT_B64 if len(c) % 4 == 2 else ALTERED)


def test_garbage_cursor(srv):
    for bad in ("not a cursor!", "a", "====", "x" * 4097, "é", ""):
        problem(srv.get("/items", params={"cursor": bad}), NOT_B64)
    for short in ("AAAA", "x" * 4096):  # base64url, but no cursor's bytes
        problem(srv.get("/items", params={"cursor": short}), ALTERED)


def test_foreign_module_cursor(srv):
    c = first_cursor(srv, "/people", sort_by="id")
    assert c
    problem(srv.get("/items", params={"sort_by": "id", "cursor": c}), "cursor: made for another list than /items")


def test_changed_where_or_sort(srv):
    c = first_cursor(srv, sort_by="rank", where='{"done": false}')
    tail = " from the cursor's page (a cursor continues the same where and sort_by; leave cursor out to start again)"
    problem(srv.get("/items", params={"sort_by": "rank", "cursor": c}), "cursor: where differs" + tail)
    problem(srv.get("/items", params={"sort_by": "rank", "where": '{"done": true}', "cursor": c}),
            "cursor: where differs" + tail)
    problem(srv.get("/items", params={"sort_by": "-rank", "where": '{"done": false}', "cursor": c}),
            "cursor: sort_by differs" + tail)
    problem(srv.get("/items", params={"cursor": c}), "cursor: where and sort_by differ" + tail)
    # the same where written otherwise is the same where
    r = srv.get("/items", params={"sort_by": "rank", "where": '{ "done" :false }', "cursor": c})
    assert r.status_code == 200, r.text


def test_cursor_with_page_or_offset(srv):
    c = first_cursor(srv)
    problem(srv.get("/items", params={"cursor": c, "page": 2}),
            "cursor cannot be used with page: the cursor is the position (page_size or limit sets the page's size)")
    problem(srv.get("/items", params={"cursor": c, "offset": 2}),
            "cursor cannot be used with offset: the cursor is the position (page_size or limit sets the page's "
            "size)")


def test_cursor_from_another_database(srv, tmp_path_factory):
    """A server on another database has another secret: its cursors are refused, and the other way round."""
    other = start_server(tmp_path_factory, APP.replace("cursor.db", "cursor2.db"), name="cursor2")
    try:
        seed(other)
        c = first_cursor(other)
        problem(srv.get("/items", params={"cursor": c}), ALTERED)
        problem(other.get("/items", params={"cursor": first_cursor(srv)}), ALTERED)
    finally:
        other.stop()
        other.store_dbs.close()
    assert not other.check_clean()


def test_processes_on_one_database_accept_each_others_cursors(crest, tmp_path):
    """Scale-out: every crest process on a database signs with the secret kept in it (crest_meta)."""
    app = APP.replace("sqlite:cursor.db", f"sqlite:{tmp_path / 'shared.db'}")
    one, two = crest(app), crest(app)
    for i in range(5):
        assert one.request("POST", "/items", json={**item(i), "owner_id": None}).status_code == 201
    r = one.get("/items", params={"sort_by": "-title", "page_size": 2})
    c = r.json()["meta"]["next_cursor"]
    assert ids(two.get("/items", params={"sort_by": "-title", "page_size": 2, "cursor": c})) == \
        ids(one.get("/items", params={"sort_by": "-title", "page_size": 2, "cursor": c})) == \
        offset_walk(one, {"sort_by": "-title"})[2:4]


# ---------------------------------------------------------------- writes between pages

WRITE_APP = APP.replace("cursor.db", "cursorw.db")


@pytest.fixture
def wsrv(tmp_path_factory):
    yield from module_server(tmp_path_factory, WRITE_APP, name="cursorw", setup=seed)


def test_cursor_row_deleted_continues(wsrv):
    s = wsrv
    ref = offset_walk(s, {"sort_by": "rank,title"})
    r = s.get("/items", params={"sort_by": "rank,title", "page_size": 4})
    c = r.json()["meta"]["next_cursor"]
    last = ids(r)[-1]
    assert s.request("DELETE", f"/items/{last}").status_code == 204
    r = s.get("/items", params={"sort_by": "rank,title", "page_size": 4, "cursor": c})
    assert ids(r) == ref[4:8]


@pytest.mark.parametrize("sort", ["", "-rank,title", "owner.name,-at"])
def test_walk_while_rows_are_written(tmp_path_factory, sort):
    """Rows inserted and deleted between and during page fetches: every row there throughout comes exactly
    once, and no row twice."""
    s = start_server(tmp_path_factory, WRITE_APP, name="cursorc")
    try:
        seed(s)
        stable = set(range(1, N + 1, 2))  # odd ids stay; even ones may be deleted
        volatile = [i for i in range(2, N + 1, 2)]
        lock = threading.Lock()
        stop = threading.Event()
        errors = []

        def take(k):
            with lock:
                return volatile.pop(k % len(volatile)) if volatile else None

        def writer():
            with s.client() as c:
                for k in range(1, 25):  # bounded: a walk by id must reach the end
                    if stop.is_set():
                        return
                    r = c.post("/items", json={**item(k), "title": f"new{k:03d}"})
                    if r.status_code != 201:
                        errors.append(r.text)
                        return
                    with lock:
                        volatile.append(r.json()["id"])
                    victim = take(k) if k % 2 == 0 else None
                    if victim is not None and c.delete(f"/items/{victim}").status_code != 204:
                        errors.append(f"delete {victim}")
                        return

        t = threading.Thread(target=writer)
        t.start()
        try:
            params = {"sort_by": sort} if sort else {}
            seen = []
            cl = s.client()
            r = cl.get("/items", params={**params, "page_size": 2})
            pages = 0
            while True:
                seen += ids(r)
                c = r.json()["meta"]["next_cursor"]
                if c is None:
                    break
                # a write of our own between pages, too
                x = cl.post("/items", json={"title": f"between{pages}", "rank": pages % 3})
                assert x.status_code == 201
                v = take(0)
                if v is not None:
                    assert cl.delete(f"/items/{v}").status_code == 204
                pages += 1
                assert pages < 500, "the walk does not end"
                r = cl.get("/items", params={**params, "page_size": 2, "cursor": c})
        finally:
            stop.set()
            t.join()
            cl.close()
        assert not errors, errors
        assert len(seen) == len(set(seen)), "a row came twice"
        missing = stable - set(seen)
        assert not missing, f"rows there throughout were skipped: {sorted(missing)}"
    finally:
        s.stop()
        s.store_dbs.close()
    assert not s.check_clean()
