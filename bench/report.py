#!/usr/bin/python3
"""Turns bench/run.sh's raw TSV into the markdown report (medians and ratios).

Raw lines:
  '#meta KEY VALUE...'
  '#scenario NAME GROUP METHOD PATH LUA RPS_TARGET P99_TARGET VERSUS SERVERS'
      (VERSUS: 'SERVER:RATIO' or '-'; SERVERS space-separated, the first is the baseline)
  '#server NAME LABEL', '#cmd NAME COMMAND', '#durability NAME full|normal'
  '#skipped RUN SCENARIO SERVER REASON'
  '#writes RUN SCENARIO SERVER ROWS_CREATED OK_2XX RESPONSES'
  '#tls SERVER PROTOCOL CIPHER KEY_EXCHANGE' (what openssl s_client negotiated with the server)
  '#cpu RUN SCENARIO SERVER CONNS WALL_S BUSY TOTAL CREST NGINX POSTGRES PYTHON CLIENT' (CPU seconds over
      the load: the machine's busy and total over all cores, the server's and the cluster's processes by
      name, the load generator)
  '#sqlite_pair SCENARIO OTHER' (crest_pg in SCENARIO is compared with crest_tasks in OTHER)
  '#per SCENARIO OTHER RATIO' (each server's req/s in SCENARIO divided by its req/s in OTHER; target RATIO)
  '#stmts RUN SCENARIO SERVER PAGE_SIZE PER_REQUEST' (statements a request ran, from /metrics)
  '#gzip SERVER IDENTITY_BYTES GZIP_BYTES' (bench/gzip.sh: the body's bytes without and with gzip)
  measurements: 'RUN SCENARIO SERVER CONNS REQ/S P99_MS NON2XX SOCKET_ERRORS IDLE_RSS_KB PEAK_RSS_KB'
"""
import math
import statistics
import sys
import urllib.parse
from collections import OrderedDict, defaultdict

GROUP_TITLES = {
    "core": "Core: a static JSON answer and one SQL row",
    "tasks": "REST module: the Task model over a 100k-row SQLite table",
    "auth": "Authentication: JWT bearer tokens on the REST module",
    "https": "HTTPS: TLS keep-alive",
    "pg": "PostgreSQL: the Task model over a 100k-row table, against pgbench (the database's own ceiling) and FastAPI + asyncpg",
    "pgscale": "PostgreSQL scale-out: 1, 2 and 3 crest processes behind nginx",
    "idem": "Idempotent creates: POST /tasks with an Idempotency-Key (a new one per request, or one key replayed)",
    "relations": "Relations: 10,000 people × 5 computers (bench/people-app.yaml), crest on SQLite and on PostgreSQL",
    "gzip": "gzip: a 50-row page of the tasks list without and with Accept-Encoding: gzip",
    "etag": "Conditional requests: GET /tasks/12345 without and with a matching If-None-Match (304), SQLite and PostgreSQL",
    "cursor": "Cursor pagination: page N of the 100k-row tasks table (page_size 50, count=none) by page= "
              "(cursor_pageN) and by cursor (cursor_nextN), on SQLite and on PostgreSQL",
    "reload": "Hot reload: the REST module while the app file is reloaded (SIGHUP) every BENCH_RELOAD_EVERY seconds",
}


def num(s):
    try:
        return float(s)
    except ValueError:
        return math.nan


def median(xs):
    xs = [x for x in xs if not math.isnan(x)]
    return statistics.median(xs) if xs else math.nan


def fmt_rps(x):
    if math.isnan(x):
        return "n/a"
    return f"{x / 1000:.1f}k" if x >= 1000 else f"{x:.0f}"


def fmt_ms(x):
    return "n/a" if math.isnan(x) else f"{x:.2f} ms"


def fmt_mib(kb):
    return "n/a" if math.isnan(kb) else f"{kb / 1024:.1f} MiB"


def fmt_ratio(x):
    if math.isnan(x):
        return "n/a"
    return f"{x:.1f}×" if x >= 10 else f"{x:.2f}×"


def verdict(ok):
    return "✅" if ok else "❌"


def ratio(a, b):
    return a / b if b and not math.isnan(a) and not math.isnan(b) else math.nan


def main(path):
    meta = OrderedDict()
    scenarios = OrderedDict()
    labels, cmds, durability = {}, {}, {}
    skipped = defaultdict(list)  # (scenario, server) -> [(run, reason)]
    writes = defaultdict(list)  # (scenario, server) -> [(run, rows, ok2xx, responses)]
    shared = {}  # (scenario, server) -> the scenario whose measurements it reuses
    tls = OrderedDict()  # server -> (protocol, cipher, key exchange)
    rows = []
    cpu = defaultdict(list)  # (scenario, server, conns) -> [dict of CPU seconds]
    sqlite_pair = {}
    per = OrderedDict()  # scenario -> (other scenario, target ratio)
    stmts = defaultdict(list)  # (scenario, server, page size) -> [statements per request, by run]
    gz_bytes = {}  # server -> (identity bytes, gzip bytes) of the gzip scenario's answer
    changes = OrderedDict()  # store -> {key: value} of bench/changes.py (the group changes)
    for line in open(path, encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        if f[0] == "#meta":
            meta[f[1]] = f[2:]
        elif f[0] == "#scenario":
            name, group, method, upath, lua, rt, pt, vs, servers = f[1:10]
            vs_server, vs_target = (vs.split(":") + [""])[:2] if vs != "-" else (None, "")
            scenarios[name] = dict(group=group, method=method, path=upath, lua=lua,
                                   rps_target=None if rt == "-" else float(rt),
                                   p99_target=None if pt == "-" else float(pt),
                                   vs=vs_server, vs_target=float(vs_target) if vs_target else None,
                                   servers=servers.split())
        elif f[0] == "#server":
            labels[f[1]] = f[2]
        elif f[0] == "#cmd":
            cmds[f[1]] = f[2]
        elif f[0] == "#durability":
            durability[f[1]] = f[2]
        elif f[0] == "#skipped":
            skipped[(f[2], f[3])].append((int(f[1]), f[4]))
        elif f[0] == "#tls":
            tls[f[1]] = tuple(f[2:5])
        elif f[0] == "#cpu":
            keys = ("wall", "busy", "total", "crest", "nginx", "postgres", "python", "client")
            cpu[(f[2], f[3], int(f[4]))].append(dict(zip(keys, (num(x) for x in f[5:13]))))
        elif f[0] == "#sqlite_pair":
            sqlite_pair[f[1]] = f[2]
        elif f[0] == "#per":
            per[f[1]] = (f[2], float(f[3]))
        elif f[0] == "#stmts":
            stmts[(f[2], f[3], int(f[4]))].append(num(f[5]))
        elif f[0] == "#gzip":
            gz_bytes[f[1]] = (num(f[2]), num(f[3]))
        elif f[0] == "#changes":
            changes.setdefault(f[1], {})[f[2]] = num(f[3])
        elif f[0] == "#shared":
            shared[(f[2], f[3])] = f[4]
        elif f[0] == "#writes":
            writes[(f[2], f[3])].append((int(f[1]), num(f[4]), int(f[5]), int(f[6]),
                                         num(f[7]) if len(f) > 7 else math.nan))
        elif line.strip() and not f[0].startswith("#"):
            run, scen, server, conns = f[0], f[1], f[2], int(f[3])
            rows.append(dict(run=int(run), scen=scen, server=server, conns=conns, rps=num(f[4]), p99=num(f[5]),
                             non2xx=int(num(f[6]) or 0), sockerr=int(num(f[7]) or 0), idle=num(f[8]), peak=num(f[9])))

    by = defaultdict(list)  # (scenario, server, conns) -> rows
    for r in rows:
        by[(r["scen"], r["server"], r["conns"])].append(r)
    conns_list = sorted({r["conns"] for r in rows})
    top = max(conns_list) if conns_list else 0

    def med(scen, server, c, key):
        return median([r[key] for r in by.get((scen, server, c), [])])

    def what(sc):
        shown = urllib.parse.unquote(sc["path"])
        return f"`{sc['method']} {shown}`" + (f" ({sc['lua']})" if sc["lua"] != "-" else "")

    out = []
    w = out.append
    runs = meta.get("runs", ["?"])[0]
    w("# crest benchmark")
    w("")
    w(f"- date: {meta.get('date', ['?'])[0]}")
    w(f"- machine: {meta.get('machine', ['?'])[0]}")
    w(f"- versions: {meta.get('versions', ['?'])[0]}")
    if "fastapi" in meta:
        w(f"- FastAPI stack: {meta['fastapi'][0]}")
    if "fastapi_skipped" in meta:
        w(f"- FastAPI: skipped ({meta['fastapi_skipped'][0]})")
    w(f"- command: `{meta.get('command', ['?'])[0]}`" + (f", took {meta['elapsed'][0]}" if "elapsed" in meta else ""))
    w(f"- median of {runs} run(s) of {meta.get('duration', ['?'])[0]} each, server order alternated between runs; "
      "each server freshly started per scenario (with a fresh copy of its database), warmed up, then measured at "
      "each connection count")

    problems = []
    groups = OrderedDict()
    for name, sc in scenarios.items():
        groups.setdefault(sc["group"], []).append(name)
    for group, names in groups.items():
        w("")
        w(f"## {GROUP_TITLES.get(group, group)}")
        w("")
        if group == "tasks":
            if "tasks_rows" in meta:
                w(f"Table `tasks` created by crest from bench/tasks-app.yaml (fields `is_completed` and `spent_time` "
                  f"with `index: true`, plus the composite index `[is_completed, spent_time]`), then filled with "
                  f"{meta['tasks_rows'][0]} rows ({meta['tasks_rows'][1]}) by bench/fill_tasks.py; database files on "
                  f"{meta.get('db_dir', ['?'])[0]}.")
                w("")
            if "tasks_plan" in meta:
                w(f"- list query plan (SQLite, no ANALYZE): `{meta['tasks_plan'][0]}`")
            if "tasks_plan_single" in meta:
                w(f"- the same with only the single-column indexes (no composite): `{meta['tasks_plan_single'][0]}`")
            dur = sorted({(s, durability[s]) for n in names for s in scenarios[n]["servers"] if s in durability})
            if dur:
                w("- durability (SQLite WAL, synchronous): " + ", ".join(f"{s}: {d}" for s, d in dur))
            w("")
        if group == "relations":
            relations_intro(w, meta)
        if group == "gzip":
            gzip_intro(w, names, scenarios, conns_list, med, cpu, gz_bytes)
        if group == "auth" and "auth" in meta:
            w(f"- token: {meta['auth'][0]}")
            w("")
        if group == "https":
            if "tls" in meta:
                w(f"- TLS: {meta['tls'][0]}")
            if tls:
                w("- negotiated (openssl s_client with OpenSSL's defaults, as wrk): " + "; ".join(
                    f"{s}: {' '.join(v)}" for s, v in tls.items()))
            w("")
        base_names = {scenarios[n]["servers"][0] for n in names}
        bname = base_names.pop() if len(base_names) == 1 else "baseline"
        has_vs = any(scenarios[n]["vs"] for n in names)
        vs_names = {scenarios[n]["vs"] for n in names if scenarios[n]["vs"]}
        vname = vs_names.pop() if len(vs_names) == 1 else "reference"
        vlabel = "FastAPI" if vname.startswith("fastapi") else vname
        head = f"| scenario | conns | server | req/s | vs {bname} | p99 | vs {bname} |"
        if has_vs:
            head += f" crest / {vlabel} |"
        head += " target | errors |"
        w(head)
        w("|" + "---|" * (head.count("|") - 1))
        for name in names:
            sc = scenarios[name]
            base = sc["servers"][0]
            for server in sc["servers"]:
                if not any(by.get((name, server, c)) for c in conns_list) and skipped.get((name, server)):
                    reasons = sorted({r for _, r in skipped[(name, server)]})
                    w(f"| {name} {what(sc)} | — | {server} | skipped |" + " — |" * (5 + has_vs))
                    problems.append(f"{name} on {server}: skipped: {'; '.join(reasons)}")
            for c in conns_list:
                b_rps, b_p99 = med(name, base, c, "rps"), med(name, base, c, "p99")
                v_rps = med(name, sc["vs"], c, "rps") if sc["vs"] else math.nan
                for server in sc["servers"]:
                    rs = by.get((name, server, c), [])
                    if not rs:
                        continue
                    rps, p99 = med(name, server, c, "rps"), med(name, server, c, "p99")
                    errs = sum(r["non2xx"] + r["sockerr"] for r in rs)
                    if errs:
                        problems.append(f"{name} on {server}, c{c}: " + "; ".join(
                            f"run {r['run']}: {r['non2xx']} non-2xx, {r['sockerr']} socket errors"
                            for r in rs if r["non2xx"] or r["sockerr"]))
                    t = []
                    if server == base:
                        rr, pr = "baseline", "—"
                    else:
                        rps_r, p99_r = ratio(rps, b_rps), ratio(p99, b_p99)
                        rr, pr = fmt_ratio(rps_r), fmt_ratio(p99_r)
                        if sc["rps_target"] is not None and server.startswith("crest"):
                            t.append(f"≥ {sc['rps_target']:g}× {bname} {verdict(rps_r >= sc['rps_target'])}")
                        if sc["p99_target"] is not None and server.startswith("crest"):
                            t.append(f"p99 ≤ {sc['p99_target']:g}× {verdict(p99_r <= sc['p99_target'])}")
                    cell_vs = ""
                    if has_vs:
                        if not sc["vs"] or not server.startswith("crest"):
                            cell_vs = "—"
                        elif math.isnan(v_rps):
                            cell_vs = "n/a (skipped)" if skipped.get((name, sc["vs"])) else "n/a"
                        else:
                            vr = ratio(rps, v_rps)
                            cell_vs = fmt_ratio(vr)
                            if sc["vs_target"] is not None:
                                d1, d2 = durability.get(server), durability.get(sc["vs"])
                                if d1 == d2:
                                    t.append(f"≥ {sc['vs_target']:g}× {vlabel} {verdict(vr >= sc['vs_target'])}")
                                else:
                                    cell_vs += f" (durability {d1} vs {d2}: not held to a target)"
                    if server == base:
                        target = "baseline"
                    elif server == sc["vs"]:
                        target = "reference"
                    else:
                        target = "; ".join(t) or "—"
                    if server in durability and sc["method"] != "GET":
                        shown = f"{server} ({durability[server]})"
                    elif (name, server) in shared:
                        shown = f"{server} (measured in {shared[(name, server)]})"
                    else:
                        shown = server
                    row = f"| {name} {what(sc)} | {c} | {shown} | {fmt_rps(rps)} | {rr} | {fmt_ms(p99)} | {pr} |"
                    if has_vs:
                        row += f" {cell_vs} |"
                    w(row + f" {target} | {errs} |")
        wr = [(n, s) for n in names for s in scenarios[n]["servers"] if writes.get((n, s))]
        if wr:
            w("")
            w("Writes (all runs, warm-up included): rows the server added against the 2xx answers wrk counted; "
              "requests still in flight when wrk stops can add rows wrk never saw answered (at most one per "
              "connection and wrk run), fewer rows than 2xx answers would be lost writes. WAL: the size of the "
              "SQLite WAL file right after the load (largest of the runs); SQLite reuses it from the start after a "
              "complete checkpoint, so a size far above a few MiB means checkpoints could not keep up.")
            w("")
            w("| scenario | server | durability | rows created | 2xx counted | responses counted | check | WAL after load |")
            w("|---|---|---|---|---|---|---|---|")
            for n, s in wr:
                ws = writes[(n, s)]
                created = sum(x[1] for x in ws)
                ok, resp = sum(x[2] for x in ws), sum(x[3] for x in ws)
                if math.isnan(created):
                    check = "n/a"
                elif created < ok:
                    check = f"❌ {ok - int(created)} acknowledged writes missing"
                    problems.append(f"{n} on {s}: {ok - int(created)} rows fewer than 2xx answers")
                else:
                    check = f"✅ (+{int(created) - ok} unanswered)" if created > ok else "✅"
                wal = max((x[4] for x in ws if not math.isnan(x[4])), default=math.nan)
                w(f"| {n} | {s} | {durability.get(s, '?')} | {'n/a' if math.isnan(created) else int(created)} "
                  f"| {ok} | {resp} | {check} | {fmt_mib(wal / 1024)} |")

    if any(sc["group"] in ("pg", "pgscale") for sc in scenarios.values()):
        pg_sections(w, meta, scenarios, conns_list, med, cpu, sqlite_pair, problems)
    if per:
        per_section(w, scenarios, conns_list, med, by, per, stmts, problems)
    w("")
    w("## Memory")
    w("")
    idle_t, peak_t = (float(x) for x in meta.get("rss_target", ["nan", "nan"])[:2])
    w(f"| scenario | server | idle RSS (1 s after start) | peak RSS (VmHWM after c{top}) | target |")
    w("|---|---|---|---|---|")
    for name, sc in scenarios.items():
        for server in sc["servers"]:
            rs = by.get((name, server, top), [])
            if not rs:
                continue
            idle, peak = median([r["idle"] for r in rs]), median([r["peak"] for r in rs])
            if server.startswith("crest"):
                target = (f"idle ≤ {idle_t:g} MiB {verdict(idle / 1024 <= idle_t)}, "
                          f"peak ≤ {peak_t:g} MiB {verdict(peak / 1024 <= peak_t)}")
            else:
                target = "reference"
            shown = f"{server} (measured in {shared[(name, server)]})" if (name, server) in shared else server
            w(f"| {name} | {shown} | {fmt_mib(idle)} | {fmt_mib(peak)} | {target} |")
    w("")
    w("## Per run")
    w("")
    w("| scenario | conns | server | req/s by run | p99 by run |")
    w("|---|---|---|---|---|")
    for name, sc in scenarios.items():
        for c in conns_list:
            for server in sc["servers"]:
                rs = sorted(by.get((name, server, c), []), key=lambda r: r["run"])
                if rs:
                    w(f"| {name} | {c} | {server} | {' / '.join(fmt_rps(r['rps']) for r in rs)} "
                      f"| {' / '.join(fmt_ms(r['p99']) for r in rs)} |")
    w("")
    w("Servers:")
    w("")
    for server in sorted({s for sc in scenarios.values() for s in sc["servers"]}):
        w(f"- {server}: {labels.get(server, server)} — `{cmds.get(server, '?')}`")
    w("")
    w("Notes: everything on 127.0.0.1; one wrk thread (`-t1`), keep-alive connections. nginx: 1 worker, "
      "`access_log off`, `keepalive_requests 1000000`, answering every request (POST included) with its static "
      "`return 200`; its RSS is the worker process's. crest logs every request to stderr, which the benchmark sends "
      "to /dev/null. Every baseline and reference gets the same requests through the same Lua script. The sql "
      "scenario reads one row by primary key from a 100k-row SQLite table, a random id per request "
      "(bench/random_id.lua). A baseline marked \"measured in\" another scenario is that scenario's measurement "
      "of the same run, taken once because the baseline cannot tell the two request patterns apart (nginx's "
      "`return 200` for `GET /items/N` and `GET /tasks/N`). \"errors\" sums wrk's non-2xx responses and socket errors "
      "(connect/read/write/timeout) over all runs.")
    if any(sc["group"] == "tasks" for sc in scenarios.values()):
        w("")
        w("Tasks scenarios: tasks_get reads one task by a random id in 1..100000 (bench/tasks_get.lua); tasks_list "
          "asks for the first page of 20 open tasks by decreasing spent_time without a count; tasks_post creates "
          "one task per request (`{\"title\":\"bench\",\"spent_time\":N}`, bench/tasks_post.lua). Each server start "
          "works on its own copy of the filled file, so created rows never reach another server. FastAPI "
          "(bench/fastapi_tasks.py): SQLAlchemy ORM model of the same table, a session per request through a "
          "dependency, synchronous path operations (FastAPI's thread pool of 40), a pool of 40 kept SQLite "
          "connections (fewer than the threads deadlocks under 64 connections), Pydantic response models, SQLite "
          "WAL with synchronous=FULL like crest's `durability: full`; one uvicorn process with `--workers 1 "
          "--no-access-log --log-level warning`, loop and HTTP implementation left on auto, which picks uvloop and "
          "httptools only when they are installed (see the FastAPI stack line above; Debian's python3-uvicorn "
          "merely recommends python3-uvloop and python3-httptools). crest/FastAPI ratios are held to their target "
          "only between servers of the same durability.")
    if any(sc["group"] in ("pg", "pgscale") for sc in scenarios.values()):
        w("")
        w("PostgreSQL scenarios: one throwaway cluster for the run (tests/pg/cluster.py --durable: fsync, "
          "synchronous_commit and full_page_writes on), the tasks table crest creates, filled with the SQLite "
          "scenarios' rows; readers share one copy, every start of a server that writes gets a fresh copy. crest_pg "
          "is bench/tasks-app.yaml with `pool: {size: BENCH_PG_POOL}`, one worker; fastapi_pg is "
          "bench/fastapi_tasks_pg.py (async path operations, an asyncpg pool of the same size). pgbench runs "
          "bench/pg_get.sql, pg_list.sql or pg_post.sql: the statements crest sends for the request (taken from "
          "PostgreSQL's log with log_statement=all) in the same transaction shape (reads: BEGIN READ ONLY, SET LOCAL "
          "statement_timeout and the SELECT in one pipeline, then COMMIT; writes: one round trip per statement), "
          "prepared; its req/s column is its tps (connection set-up left out), its p99 from its per-transaction "
          "log; it has no RSS. pg_scale puts nginx (bench/nginx-proxy.conf.in: 1 worker, least_conn, keep-alive "
          "to the upstreams) in front of 1, 2 or 3 crest processes; its RSS is the first crest process's. Memory "
          "of crest_pg: its pool is open from the start (every connection made before the first request).")
    if any(sc["group"] == "relations" for sc in scenarios.values()):
        w("")
        w("Relations scenarios: crest_people serves bench/people-app.yaml from one filled SQLite file, "
          "crest_people_pg the same app (with `pool: {size: BENCH_PG_POOL}`) from the run's PostgreSQL cluster "
          "(tests/pg/cluster.py --durable), both with one worker; every scenario only reads, so each store's "
          "servers share one database. rel_list and rel_include ask for a random page of the 500 "
          "(bench/people_page.lua appends `&page=N` to the URL) with the default count (total_objects: a "
          "count of the 10,000 people per request) and OFFSET paging, in both; rel_where asks for the computers "
          "of a random existing person by name (bench/computers_where.lua), through the index on person.name. "
          "Before each load the server is checked (bench/relations.sh's check_relations): every answer has "
          "the rows it should (each person's 5 computers, in order, computers_has_more false), and /metrics "
          "counts the statements per request at three page sizes.")
    if "tasks_auth" in scenarios:
        w("")
        w("Auth scenario: tasks_auth is tasks_get (a random id in 1..100000 per request) sent with `Authorization: "
          "Bearer <token>` (bench/tasks_get_auth.lua) to crest_tasks_auth, bench/tasks-auth-app.yaml (bench/tasks-app.yaml "
          "plus `auth: jwt` HS256 and `permissions: authenticated` on the module), and to crest_tasks without auth, its "
          "baseline, which ignores the header: both get the same requests, so the ratio is the cost of checking the "
          "token. Both serve a fresh copy of the same filled database with --workers 1. Every connection sends the "
          "same token, so after the first request of a worker crest answers from its cache of verified tokens "
          "(exact match, exp re-checked) rather than recomputing the HMAC. Before the load each server is checked "
          "with curl: 200 with the token, and for crest_tasks_auth 401 without one and to a token signed with "
          "another secret.")
    if "https_hello" in scenarios:
        w("")
        w("HTTPS scenario: https_hello is hello over TLS, wrk (`https://`, keep-alive, so one handshake per "
          "connection and wrk run) against nginx_tls (bench/nginx-tls.conf.in: bench/nginx.conf.in with `listen ... "
          "ssl`, TLSv1.2 and 1.3, its `return 200` body) as the baseline and crest's hello example with "
          "`--tls-cert/--tls-key`, both serving the same self-signed certificate made for the run. Before the load "
          "each server is checked with `curl --cacert` (the certificate and address verify) and `openssl s_client`. "
          "wrk's one thread encrypts and decrypts too, so at high rates it may limit both servers alike and push "
          "the ratio towards 1.")
    if changes:
        changes_section(w, changes, problems)
    if problems:
        w("")
        w("**Errors and skips:**")
        w("")
        for p in problems:
            w(f"- {p}")
    print("\n".join(out))


def changes_section(w, changes, problems):
    """The change feed (bench/changes.py, once per store: the group changes)."""
    w("")
    w("## Change feed (bench/changes.py)")
    w("")
    w("| store | subscribers | rows created/s | events delivered/s | last event after last post | RSS | "
      "RSS with idle subscribers (each) | across processes: median | p90 |")
    w("|---|---|---|---|---|---|---|---|---|")
    for store, c in changes.items():
        g = lambda k: c.get(k, math.nan)
        each = (g("rss_idle_kib") - g("rss_kib")) / g("idle") if g("idle") else math.nan
        w(f"| {store} | {g('subscribers'):.0f} | {g('rows_per_s'):.0f} | {fmt_rps(g('events_per_s'))} | "
          f"{g('tail_ms'):.0f} ms | {fmt_mib(g('rss_kib'))} | {fmt_mib(g('rss_idle_kib'))} with {g('idle'):.0f} "
          f"({each:.1f} KiB) | {g('xproc_median_ms'):.1f} ms | {g('xproc_p90_ms'):.1f} ms |")
        if g("received_min") != g("rows"):
            problems.append(f"changes on {store}: a subscriber received {g('received_min'):.0f} of "
                            f"{g('rows'):.0f} events")
    w("")
    w("One measurement per store (not per run): 100 subscribers (one socket each, read by one thread) while 4 "
      "writers POST /tasks one row at a time for BENCH_DURATION, on 2 workers; events/s is subscribers x rows "
      "over the time from the first post to the last event delivered, every subscriber checked to get every "
      "event. Across processes: a second crest process, one subscriber on it, 20 POSTs to the first one at a "
      "time, each timed to its event (PostgreSQL: the second process's LISTEN connection wakes it at the "
      "commit; SQLite: its look at the log's end every 200 ms).")


def cores(xs, key):
    """The median over runs of CPU seconds of key per wall second: cores busy."""
    return median([x[key] / x["wall"] for x in xs if x["wall"] > 0])


def pg_sections(w, meta, scenarios, conns_list, med, cpu, sqlite_pair, problems):
    """The PostgreSQL ratio tables: crest against pgbench, crest on SQLite and FastAPI + asyncpg; the
    scale-out; where the CPU went."""
    pgs = [n for n, sc in scenarios.items() if sc["group"] == "pg"]
    w("")
    w("## PostgreSQL: ratios")
    w("")
    if "pg" in meta:
        w(f"- cluster: {meta['pg'][0]}")
    if "pg_rows" in meta:
        w(f"- table: created by crest from bench/tasks-app.yaml, {meta['pg_rows'][0]} rows "
          f"({meta['pg_rows'][1]}) by bench/fill_tasks.py --postgres (the SQLite scenarios' rows), VACUUM ANALYZE")
    if "pg_pg_plan" in meta:
        w(f"- list query plan (EXPLAIN of the prepared statement): `{meta['pg_pg_plan'][0]}`")
    if "fastapi_pg" in meta:
        w(f"- FastAPI + asyncpg stack: {meta['fastapi_pg'][0]}")
    w("")
    if pgs:
        w("crest on PostgreSQL (crest_pg) divided by each: pgbench with as many clients as wrk has connections "
          "(the issue's `-c 64` ceiling), pgbench with as many as crest's pool, crest on SQLite in the same run "
          "(crest_tasks of the matching tasks scenario, durability: full), FastAPI + asyncpg on the same cluster.")
        w("")
        w("| scenario | conns | crest PG req/s | ÷ pgbench -c conns | ÷ pgbench -c pool | ÷ crest SQLite | "
          "÷ FastAPI + asyncpg | targets |")
        w("|---|---|---|---|---|---|---|---|")
        for name in pgs:
            sc = scenarios[name]
            other = sqlite_pair.get(name)
            for c in conns_list:
                crest = med(name, "crest_pg", c, "rps")
                if math.isnan(crest):
                    continue
                pb, pp = med(name, "pgbench", c, "rps"), med(name, "pgbench_pool", c, "rps")
                sq = med(other, "crest_tasks", c, "rps") if other else math.nan
                fa = med(name, "fastapi_pg", c, "rps")
                t = []
                r_pb = ratio(crest, pb)
                if sc["rps_target"] is not None and c == 64:
                    t.append(f"≥ {sc['rps_target']:g}× pgbench -c 64 {verdict(r_pb >= sc['rps_target'])}")
                r_fa = ratio(crest, fa)
                if sc["vs_target"] is not None and not math.isnan(r_fa):
                    t.append(f"≥ {sc['vs_target']:g}× FastAPI {verdict(r_fa >= sc['vs_target'])}")
                w(f"| {name} | {c} | {fmt_rps(crest)} | {fmt_ratio(r_pb)} ({fmt_rps(pb)}) | "
                  f"{fmt_ratio(ratio(crest, pp))} ({fmt_rps(pp)}) | "
                  f"{fmt_ratio(ratio(crest, sq)) + f' ({fmt_rps(sq)})' if not math.isnan(sq) else 'n/a (not run)'} | "
                  f"{fmt_ratio(r_fa)} ({fmt_rps(fa)}) | {'; '.join(t) or '—'} |")
        w("")
    scale = [n for n, sc in scenarios.items() if sc["group"] == "pgscale"]
    for name in scale:
        sc = scenarios[name]
        base = sc["servers"][0]
        w(f"Scale-out ({name}): `GET /tasks/{{id}}` through nginx to N crest processes, `--workers 1` each, "
          "one cluster. CPU in cores (CPU seconds over the load ÷ its wall time, medians of the runs): crest's "
          "processes, nginx, PostgreSQL's (its backends and the postmaster's ended children), wrk, the machine "
          "as a whole (/proc/stat, all users), and \"others\": the machine minus those, i.e. what else ran on the "
          "shared machine meanwhile.")
        w("")
        w("| N | conns | req/s | × N=1 | p99 | crest | nginx | postgres | wrk | others | machine busy |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
        for c in conns_list:
            b = med(name, base, c, "rps")
            for server in sc["servers"]:
                rps = med(name, server, c, "rps")
                if math.isnan(rps):
                    continue
                xs = cpu.get((name, server, c), [])
                parts = {k: cores(xs, k) for k in ("crest", "nginx", "postgres", "client", "busy", "total")}
                others = median([(x["busy"] - x["crest"] - x["nginx"] - x["postgres"] - x["python"] - x["client"])
                                 / x["wall"] for x in xs if x["wall"] > 0])
                busy_pct = ratio(parts["busy"], parts["total"]) * 100
                w(f"| {server.rsplit('_x', 1)[-1]} | {c} | {fmt_rps(rps)} | {fmt_ratio(ratio(rps, b))} | "
                  f"{fmt_ms(med(name, server, c, 'p99'))} | {fmt_cores(parts['crest'])} | {fmt_cores(parts['nginx'])} | "
                  f"{fmt_cores(parts['postgres'])} | {fmt_cores(parts['client'])} | {fmt_cores(others)} | "
                  f"{fmt_cores(parts['busy'])} of {fmt_cores(parts['total'])} ({busy_pct:.0f}%) |")
        w("")
    if pgs:
        w("Where the CPU went in the PostgreSQL scenarios (cores, as above; python: FastAPI's process; client: "
          "wrk or pgbench), and CPU microseconds per request of the server (crest or python) and of PostgreSQL:")
        w("")
        w("| scenario | conns | server | req/s | server | postgres | client | others | machine busy | "
          "µs/req server | µs/req postgres |")
        w("|---|---|---|---|---|---|---|---|---|---|---|")
        for name in pgs:
            for c in conns_list:
                for server in scenarios[name]["servers"]:
                    xs = cpu.get((name, server, c), [])
                    rps = med(name, server, c, "rps")
                    if not xs or math.isnan(rps):
                        continue
                    key = "python" if server.startswith("fastapi") else "crest"
                    srv = cores(xs, key) if not server.startswith("pgbench") else 0.0
                    pg, cl = cores(xs, "postgres"), cores(xs, "client")
                    busy, total = cores(xs, "busy"), cores(xs, "total")
                    others = median([(x["busy"] - x["crest"] - x["nginx"] - x["postgres"] - x["python"]
                                      - x["client"]) / x["wall"] for x in xs if x["wall"] > 0])
                    w(f"| {name} | {c} | {server} | {fmt_rps(rps)} | {fmt_cores(srv)} | {fmt_cores(pg)} | "
                      f"{fmt_cores(cl)} | {fmt_cores(others)} | {fmt_cores(busy)} of {fmt_cores(total)} | "
                      f"{srv / rps * 1e6:.0f} | {pg / rps * 1e6:.0f} |")
        w("")


def gzip_intro(w, names, scenarios, conns_list, med, cpu, gz_bytes):
    """Bytes per answer and crest's CPU per request of each server; the gzip servers' extra CPU per KB of
    identity body compressed (their CPU per request minus the baseline's, which sends the identity body)."""
    w("| scenario | server | conns | req/s | body bytes per answer | crest CPU µs/request | extra CPU µs per KB compressed |")
    w("|---|---|---:|---:|---:|---:|---:|")
    for name in names:
        servers = scenarios[name]["servers"]
        base = servers[0]
        for c in conns_list:
            per_req = {}
            for server in servers:
                rps = med(name, server, c, "rps")
                xs = cpu.get((name, server, c), [])
                busy = cores(xs, "crest") if xs else math.nan
                per_req[server] = busy / rps * 1e6 if rps and rps == rps else math.nan
            for server in servers:
                ident, gz = gz_bytes.get(server, (math.nan, math.nan))
                sent = ident if server == base else gz
                extra = "–"
                if server != base and ident == ident and ident > 0:
                    extra = f"{(per_req[server] - per_req[base]) / (ident / 1024):.1f}"
                w(f"| {name} | {server} | {c} | {med(name, server, c, 'rps'):.0f} | {sent:.0f} | "
                  f"{per_req[server]:.1f} | {extra} |")
    w("")


def relations_intro(w, meta):
    """What the relations scenarios run on: the rows, the statements' plans on each store."""
    if "people_rows" in meta:
        w(f"Tables `person` (`name` with `index: true`) and `computer` (`owner_id`, indexed, the foreign key of "
          f"`owner: {{type: ref, model: Person}}`) created by crest, filled with {meta['people_rows'][0]} people and "
          f"{meta['people_rows'][1]} computers by bench/fill_people.py (the same rows on both stores; PostgreSQL: "
          f"COPY, VACUUM ANALYZE).")
        w("")
    if "pg" in meta:
        w(f"- cluster: {meta['pg'][0]}")
    for store, prefix in (("SQLite", "people_plan_"), ("PostgreSQL", "people_pg_plan_")):
        for key, v in meta.items():
            if key.startswith(prefix):
                w(f"- {store} plans of {key[len(prefix):]}'s statements (` | ` between statements): `{v[0]}`")
    w("")


def per_section(w, scenarios, conns_list, med, by, per, stmts, problems):
    """Each server's req/s in one scenario divided by its own req/s in another (the embed against the plain
    page), with the target, and the statements a request ran (/metrics' crest_db_statements_total)."""
    w("")
    w("## Within a server: one request pattern against another")
    w("")
    w("Each server's median req/s in the scenario divided by its own median req/s in the other scenario, "
      "measured in the same runs (p99 alongside); \"by run\": the same ratio within each run, which a load "
      "that changes from run to run on a shared machine moves less.")
    w("")
    w("| scenario ÷ other | conns | server | req/s | other req/s | ratio | by run | p99 | other p99 | target |")
    w("|---|---|---|---|---|---|---|---|---|---|")
    for name, (other, target) in per.items():
        if name not in scenarios or other not in scenarios:
            continue
        for c in conns_list:
            for server in scenarios[name]["servers"]:
                a, b = med(name, server, c, "rps"), med(other, server, c, "rps")
                if math.isnan(a) and math.isnan(b):
                    continue
                r = ratio(a, b)
                runs = {x["run"]: x["rps"] for x in by.get((other, server, c), [])}
                by_run = " / ".join(fmt_ratio(ratio(x["rps"], runs.get(x["run"], math.nan)))
                                    for x in sorted(by.get((name, server, c), []), key=lambda x: x["run"]))
                ok = r >= target
                if not ok:
                    problems.append(f"{name} ÷ {other} on {server}, c{c}: {fmt_ratio(r)} (target ≥ {target:g}×)")
                w(f"| {name} ÷ {other} | {c} | {server} | {fmt_rps(a)} | {fmt_rps(b)} | {fmt_ratio(r)} | "
                  f"{by_run} | {fmt_ms(med(name, server, c, 'p99'))} | {fmt_ms(med(other, server, c, 'p99'))} | "
                  f"≥ {target:g}× {verdict(ok)} |")
    if not stmts:
        return
    w("")
    w("Statements per request (crest_db_statements_total before and after 10 requests, checked before each "
      "run's load; the values of the runs): the same at every page size is the no-N+1 rule.")
    w("")
    w("| scenario | server | " + " | ".join(f"page_size {p}" for p in sorted({k[2] for k in stmts})) + " | constant |")
    sizes = sorted({k[2] for k in stmts})
    w("|---|---|" + "---|" * (len(sizes) + 1))
    for name in scenarios:
        for server in scenarios[name]["servers"]:
            got = {p: stmts.get((name, server, p), []) for p in sizes}
            if not any(got.values()):
                continue
            seen = {x for v in got.values() for x in v}
            const = len(seen) == 1
            if not const:
                problems.append(f"{name} on {server}: statements per request vary: {sorted(seen)}")
            w(f"| {name} | {server} | " + " | ".join(" / ".join(f"{x:g}" for x in got[p]) or "—" for p in sizes)
              + f" | {verdict(const)} |")


def fmt_cores(x):
    return "n/a" if math.isnan(x) else f"{x:.2f}"


if __name__ == "__main__":
    main(sys.argv[1])
