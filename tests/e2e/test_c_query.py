"""crest_query and crest_rows, the store-neutral database API of C handlers,
black-box through tests/e2e/query_app.c: deferred answers, $n binding, every
value kind, failures as crest answers them (and a callback replacing one), a
slow read that leaves the worker free, the endpoint's deadline, and
crest_res_finish called twice; on both stores (conftest's STORE: query_app's
CREST_DATABASE is then a database of the cluster)."""
import statistics
import threading
import time

from conftest import assert_problem, http_request, on_store

# Counting to this with a recursive CTE takes seconds (about 8): far
# past the loop's budget of work, so the read goes on on the thread pool.
SLOW_N = 10_000_000


def test_deferred_handler_answers_from_the_callback_with_dollar_2_before_dollar_1(query_app):
    s = query_app()
    r = s.get("/swap", params={"a": "alpha", "b": 42})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    # crest_rows_write: the row as an object, columns in the statement's order.
    assert r.content == b'{"first":42,"second":"alpha"}'


def test_every_value_kind_round_trips_through_a_table(query_app):
    s = query_app()
    text = 'quote " backslash \\ unicode \u00e9\u4e2d \U0001F600'
    r = s.get("/kinds", params={"t": text})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["changes"] == 1
    assert j["last_id"] == 1
    assert j["count"] == 1 and j["more"] is False
    assert j["columns"] == ["id", "n", "b", "i", "f", "t", "d", "dt", "j", "u"]
    # SQLite stores booleans as 0/1 and the text kinds as text; PostgreSQL's columns are typed (crest.h).
    assert j["types"] == on_store(
        sqlite=["int", "null", "int", "int", "float", "text", "text", "text", "text", "text"],
        postgres=["int", "null", "bool", "int", "float", "text", "date", "datetime", "json", "uuid"])
    assert j["null"] == [False, True] + [False] * 8
    assert j["i"] == -4611686018427387904
    assert j["f"] == -2.5e-3
    assert j["t"] == text
    assert j["text_len"] == len(text.encode())
    assert j["out_of_range"] is True
    assert j["row"] == {"id": 1, "n": None, "i": -4611686018427387904, "f": -2.5e-3, "t": text,
                        "d": "2024-02-29", "u": "0190f2a4-8c3e-7d4b-9a51-2f6c1e0b7a93",
                        # as each store gives them back: SQLite as bound, PostgreSQL from its types
                        **on_store(sqlite={"b": 1, "dt": "2024-02-29T12:34:56Z", "j": '{"a":[1,2]}'},
                                   postgres={"b": True, "dt": "2024-02-29T12:34:56.000Z", "j": {"a": [1, 2]}})}
    r = s.get("/kinds", params={"t": ""})
    assert r.status_code == 200, r.text
    assert r.json()["last_id"] == 2 and r.json()["row"]["t"] == "" and r.json()["text_len"] == 0


def test_unique_violation_is_crests_409_conflict(query_app):
    s = query_app()
    r = s.request("POST", "/codes", params={"code": "a"})
    assert r.status_code == 201, r.text
    assert r.json() == {"id": 1}
    p = assert_problem(s.request("POST", "/codes", params={"code": "a"}), 409, "conflict")
    assert p["errors"] == {"code": "is already taken"}


def test_rows_last_id_is_the_inserted_rows_id_on_every_store(query_app):
    """Regression: on PostgreSQL crest_rows_last_id was always 0 (only SQLite's store set it, from its
    rowid). Now it is the id RETURNING gave there (crest.h), so an insert answers the same on both."""
    s = query_app()
    ids = [s.request("POST", "/codes", params={"code": c}).json() for c in ("x", "y", "z")]
    assert ids == [{"id": 1}, {"id": 2}, {"id": 3}]


def test_a_handlers_own_transaction_rolls_back_on_every_store(query_app):
    """README: a handler's own transaction (BEGIN through crest_query). On PostgreSQL each write crest_query
    sends on a worker's loop is its own transaction (BEGIN, the statement, COMMIT; postgres_loop.c), so the
    handler's ROLLBACK undoes nothing there: a known difference, left to the store's owner. strict: once
    fixed this passes, and the mark must go."""
    s = query_app()
    r = s.request("POST", "/undo", params={"code": "gone"})
    assert r.status_code == 200, r.text
    assert r.json() == {"count": 0}
    assert s.request("POST", "/codes", params={"code": "gone"}).status_code == 201  # (not taken either)


def test_callback_replaces_crests_answer(query_app):
    s = query_app()
    assert s.request("POST", "/codes", params={"code": "b"}).status_code == 201
    p = assert_problem(s.request("POST", "/codes", params={"code": "b", "replace": "true"}), 422, "code_taken")
    assert p["detail"] == "crest answered conflict"  # crest_res_error_code
    assert "errors" not in p
    assert s.request("POST", "/codes", params={"code": "c", "replace": "true"}).status_code == 201


def test_parameter_without_a_value_is_500(query_app):
    s = query_app()
    assert_problem(s.get("/missing"), 500, "internal_error")
    assert s.get("/fast").json() == {"count": 1}  # the worker goes on


def test_slow_read_leaves_the_worker_free(query_app):
    """One worker: a read counting to tens of millions is in flight, and
    other requests on the same worker answer at once meanwhile."""
    s = query_app(workers=1)
    assert s.workers == 1
    assert s.get("/fast").json() == {"count": 1}  # connections and caches warm
    out = {}

    def slow():
        t0 = time.monotonic()
        out["r"] = s.get("/count", params={"n": SLOW_N}, timeout=90)
        out["t"] = time.monotonic() - t0

    th = threading.Thread(target=slow)
    th.start()
    time.sleep(0.3)  # the read is past its budget and on the thread pool
    lat = []
    with s.raw() as c:
        for _ in range(5):
            t0 = time.monotonic()
            c.send(http_request("GET", "/fast?n=100"))
            r = c.read_response()
            lat.append(time.monotonic() - t0)
            assert r.status == 200 and r.json() == {"count": 100}
    assert th.is_alive(), "the slow read ended before the probes: SLOW_N is too small to prove anything"
    th.join(90)
    assert out["r"].status_code == 200, out["r"].text
    assert out["r"].json() == {"count": SLOW_N}
    assert statistics.median(lat) < 0.05, lat


def test_timeout_ms_interrupts_a_slow_query_with_504(query_app):
    s = query_app()
    t0 = time.monotonic()
    p = assert_problem(s.get("/count-short", params={"n": 10**10}), 504, "statement_timeout")
    took = time.monotonic() - t0
    assert took < 5, took  # 300 ms budget, not the count's minutes
    assert p["status"] == 504
    assert s.get("/fast").json() == {"count": 1}


def test_finish_twice_in_the_handler_does_nothing(query_app):
    s = query_app()
    with s.raw() as c:
        c.send(http_request("GET", "/twice-here") + http_request("GET", "/fast"))
        r = c.read_response()
        assert r.status == 200 and r.json() == {"finished": 2}
        r = c.read_response()
        assert r.status == 200 and r.json() == {"count": 1}
        assert c.still_open(0.2) and c.buf == b""  # one answer each, nothing more


def test_res_finish_twice_after_deferral_leaves_the_next_request_alone(query_app):
    """Regression: crest_res_finish called twice in a callback that ran after
    the handler had returned. The first call answered and recycled the
    request's state; the second marked the recycled state finished, so the
    worker's next deferred request was never answered (a 504 after its
    budget). Now the answer goes out when the callback returns, and the
    second call does nothing."""
    s = query_app(workers=1)
    n = 1_000_000  # far past the loop's budget: the callback runs later on the loop
    with s.raw(timeout=60) as c:
        for _ in range(3):
            c.send(http_request("GET", f"/twice?n={n}"))
            r = c.read_response()
            assert r.status == 200 and r.json() == {"count": n}, r
        t0 = time.monotonic()
        c.send(http_request("GET", f"/count?n={n}"))
        r = c.read_response()
        assert r.status == 200 and r.json() == {"count": n}, r
        assert time.monotonic() - t0 < 15
        assert c.buf == b""
