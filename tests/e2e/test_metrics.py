"""GET /metrics: Prometheus' text format, parsed strictly here; counts that
match the requests sent (across workers), a histogram whose buckets add up,
bounded labels (a client's path never becomes a label), the process
metrics, `metrics: off`, and auth on /metrics like on any route."""
import re
import time

import pytest

from conftest import CREST_BIN, JWT_ENV, assert_problem, bearer, run_cli

APP = """\
database: sqlite:m.db
models:
  Task:
    fields:
      title: {type: string, required: true}
modules:
  tasks:
    model: Task
endpoints:
  - path: /one
    sql: SELECT 1 AS one
    returns: one
"""

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (-?[0-9.e+]+|\+Inf|NaN)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse(text):
    """{(name, frozenset(labels)): value}, checking every line's syntax, that
    each family has one TYPE line before its samples, and the HELP lines."""
    assert text.endswith("\n")
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# HELP "):
            assert len(line.split(" ", 3)) == 4, line
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in ("counter", "gauge", "histogram"), line
            assert name not in types, f"two TYPE lines for {name}"
            types[name] = kind
            continue
        m = SAMPLE.match(line)
        assert m, f"not a sample line: {line!r}"
        name, _, labels, value = m.groups()
        family = re.sub(r"_(bucket|sum|count)$", "", name) if name not in types else name
        assert family in types, f"{name} has no TYPE line before it"
        got = {}
        rest = labels or ""
        while rest:
            lm = LABEL.match(rest)
            assert lm, f"bad labels in {line!r}"
            got[lm.group(1)] = lm.group(2)
            rest = rest[lm.end():]
        key = (name, frozenset(got.items()))
        assert key not in samples, f"duplicate series {line!r}"
        samples[key] = float(value)
    return samples, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def scrape(s, **kw):
    r = s.get("/metrics", **kw)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    return parse(r.text)


def test_counts_match_the_requests_across_workers(crest):
    s = crest(APP, workers=2)
    for _ in range(10):
        assert s.get("/one").status_code == 200
    for _ in range(3):
        assert s.get("/tasks/999").status_code == 404
    assert s.request("POST", "/tasks", json={"title": "x"}).status_code == 201
    assert s.request("POST", "/tasks", json={}).status_code == 422
    for i in range(4):  # four different paths, one series
        assert s.get(f"/nothing/here/{i}").status_code == 404
    samples, types = scrape(s)
    assert types["crest_http_requests_total"] == "counter"
    req = "crest_http_requests_total"
    assert value(samples, req, method="GET", route="/one", code="200") == 10
    assert value(samples, req, method="GET", route="/tasks/{id}", code="404") == 3
    assert value(samples, req, method="POST", route="/tasks", code="201") == 1
    assert value(samples, req, method="POST", route="/tasks", code="422") == 1
    assert value(samples, req, method="", route="(unmatched)", code="404") == 4
    routes = {dict(k[1]).get("route") for k in samples if k[0] == req}
    assert not any(r.startswith("/nothing") for r in routes), "a client's path never becomes a label"
    # A second scrape counts the first.
    samples2, _ = scrape(s)
    assert value(samples2, req, method="GET", route="/metrics", code="200") == 1


def test_histogram_is_consistent(crest):
    s = crest(APP)
    for _ in range(7):
        s.get("/one")
    samples, types = scrape(s)
    h = "crest_http_request_duration_seconds"
    assert types[h] == "histogram"
    lab = {"method": "GET", "route": "/one"}
    buckets = sorted(((float("inf") if dict(k[1])["le"] == "+Inf" else float(dict(k[1])["le"])), v)
                     for k, v in samples.items() if k[0] == h + "_bucket" and dict(k[1]).items() >= lab.items())
    assert len(buckets) >= 10 and buckets[-1][0] == float("inf")
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), "buckets are cumulative"
    assert buckets[-1][1] == 7 == value(samples, h + "_count", **lab)
    total = value(samples, h + "_sum", **lab)
    assert 0 < total < 7 * 5.0
    les = [dict(k[1])["le"] for k in samples if k[0] == h + "_bucket" and dict(k[1])["route"] == "/one"]
    assert "0.00025" in les and "10" in les and "+Inf" in les


def test_process_and_connection_metrics(crest):
    s = crest(APP)
    samples, types = scrape(s)
    assert types["process_resident_memory_bytes"] == "gauge"
    assert 1 << 20 < value(samples, "process_resident_memory_bytes") < 1 << 30
    assert value(samples, "process_virtual_memory_bytes") >= value(samples, "process_resident_memory_bytes")
    assert value(samples, "process_cpu_seconds_total") > 0
    assert 3 <= value(samples, "process_open_fds") <= value(samples, "process_max_fds")
    assert abs(value(samples, "process_start_time_seconds") - time.time()) < 120
    assert value(samples, "crest_http_connections") >= 1  # this scrape's own
    assert value(samples, "crest_build_info", version="0.1.0") == 1


def test_metrics_off(crest):
    s = crest("metrics: off\n" + APP)
    assert_problem(s.get("/metrics"), 404)
    assert "/metrics" not in s.get("/openapi.json").json()["paths"]


def test_a_route_of_the_app_named_metrics_wins(crest):
    s = crest(APP + "  - path: /metrics\n    sql: SELECT 42 AS answer\n    returns: one\n")
    assert s.get("/metrics").json() == {"answer": 42}


AUTH = """\
database: sqlite:m.db
auth:
  jwt:
    algorithms: [HS256]
    secret_env: CREST_JWT_SECRET
endpoints:
  - path: /one
    permission: public
    sql: SELECT 1 AS one
    returns: one
"""


def tok(*perms):
    return bearer("ops", permissions=list(perms))


def test_with_auth_metrics_are_denied_by_default(crest):
    s = crest(AUTH, env=JWT_ENV)
    assert_problem(s.get("/metrics"), 401)
    assert_problem(s.get("/metrics", headers=tok("anything")), 403)
    op = s.get("/openapi.json").json()["paths"]["/metrics"]["get"]
    assert op["security"] and "401" in op["responses"] and "403" in op["responses"]


def test_with_auth_metrics_take_a_permission(crest):
    s = crest(AUTH + "metrics: {permission: [ops.metrics]}\n", env=JWT_ENV)
    assert_problem(s.get("/metrics"), 401)
    assert_problem(s.get("/metrics", headers=tok("tasks.read")), 403)
    samples, _ = scrape(s, headers=tok("ops.metrics"))
    assert value(samples, "crest_http_requests_total", method="GET", route="/metrics", code="401") == 1
    assert value(samples, "crest_http_requests_total", method="GET", route="/metrics", code="403") == 1
    s2 = crest(AUTH + "metrics: {permission: public}\n", env=JWT_ENV)
    scrape(s2)


@pytest.mark.parametrize("text, msg", [
    ("metrics: maybe\n", "metrics: expected off, on"),
    ("metrics: [a]\n", "metrics: expected off, on"),
    ("metrics: {permission: nobody}\n", "metrics.permission"),
    ("metrics: {who: x}\n", "metrics"),
])
def test_bad_metrics_settings_are_refused(tmp_path, text, msg):
    (tmp_path / "app.yaml").write_text(APP + text)
    r = run_cli([CREST_BIN, "check", str(tmp_path / "app.yaml")], cwd=str(tmp_path))
    assert r.returncode != 0
    assert msg in r.err
