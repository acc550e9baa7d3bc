#!/usr/bin/python3
"""Turns bench/run.sh's raw TSV into the markdown report (medians and ratios).

Raw lines: '#meta KEY VALUE...', '#scenario NAME PATH LUA RPS_TARGET P99_TARGET SERVERS',
'#server NAME LABEL', '#cmd NAME COMMAND', and measurements
'RUN SCENARIO SERVER CONNS REQ/S P99_MS NON2XX SOCKET_ERRORS IDLE_RSS_KB PEAK_RSS_KB'.
"""
import math
import statistics
import sys
from collections import OrderedDict, defaultdict


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
    return "n/a" if math.isnan(x) else f"{x:.2f}×"


def verdict(ok):
    return "✅" if ok else "❌"


def main(path):
    meta = OrderedDict()
    scenarios = OrderedDict()
    labels, cmds = {}, {}
    rows = []
    for line in open(path, encoding="utf-8"):
        f = line.rstrip("\n").split("\t")
        if f[0] == "#meta":
            meta[f[1]] = f[2:]
        elif f[0] == "#scenario":
            name, upath, lua, rt, pt, servers = f[1:7]
            scenarios[name] = dict(path=upath, lua=lua, rps_target=None if rt == "-" else float(rt),
                                   p99_target=None if pt == "-" else float(pt), servers=servers.split())
        elif f[0] == "#server":
            labels[f[1]] = f[2]
        elif f[0] == "#cmd":
            cmds[f[1]] = f[2]
        elif line.strip():
            run, scen, server, conns = f[0], f[1], f[2], int(f[3])
            rows.append(dict(run=int(run), scen=scen, server=server, conns=conns, rps=num(f[4]), p99=num(f[5]),
                             non2xx=int(num(f[6]) or 0), sockerr=int(num(f[7]) or 0), idle=num(f[8]), peak=num(f[9])))

    by = defaultdict(list)  # (scenario, server, conns) -> rows
    for r in rows:
        by[(r["scen"], r["server"], r["conns"])].append(r)
    conns_list = sorted({r["conns"] for r in rows})
    out = []
    w = out.append
    runs = meta.get("runs", ["?"])[0]
    w("# crest benchmark")
    w("")
    w(f"- date: {meta.get('date', ['?'])[0]}")
    w(f"- machine: {meta.get('machine', ['?'])[0]}")
    w(f"- versions: {meta.get('versions', ['?'])[0]}")
    w(f"- command: `{meta.get('command', ['?'])[0]}`")
    w(f"- median of {runs} run(s) of {meta.get('duration', ['?'])[0]} each, server order alternated between runs; "
      "each server freshly started per scenario, warmed up, then measured at each connection count")
    w("")
    w("## Throughput and latency")
    w("")
    w("| scenario | conns | server | req/s | vs baseline | p99 | vs baseline | target | errors |")
    w("|---|---|---|---|---|---|---|---|---|")
    problems = []
    for name, sc in scenarios.items():
        base = sc["servers"][0]
        for c in conns_list:
            b = by.get((name, base, c), [])
            b_rps, b_p99 = median([r["rps"] for r in b]), median([r["p99"] for r in b])
            for server in sc["servers"]:
                rs = by.get((name, server, c), [])
                if not rs:
                    continue
                rps, p99 = median([r["rps"] for r in rs]), median([r["p99"] for r in rs])
                errs = sum(r["non2xx"] + r["sockerr"] for r in rs)
                if errs:
                    problems.append(f"{name} on {server}, c{c}: "
                                    + "; ".join(f"run {r['run']}: {r['non2xx']} non-2xx, {r['sockerr']} socket errors"
                                                for r in rs if r["non2xx"] or r["sockerr"]))
                if server == base:
                    target, rr, pr = "baseline", "—", "—"
                else:
                    rps_r, p99_r = rps / b_rps if b_rps else math.nan, p99 / b_p99 if b_p99 else math.nan
                    rr, pr = fmt_ratio(rps_r), fmt_ratio(p99_r)
                    t = []
                    if sc["rps_target"] is not None:
                        t.append(f"req/s ≥ {sc['rps_target']:g}× {verdict(rps_r >= sc['rps_target'])}")
                    if sc["p99_target"] is not None:
                        t.append(f"p99 ≤ {sc['p99_target']:g}× {verdict(p99_r <= sc['p99_target'])}")
                    target = ", ".join(t) or "—"
                what = f"`GET {sc['path']}`" if sc["lua"] == "-" else f"`{sc['lua']}`"
                w(f"| {name} {what} | {c} "
                  f"| {server} | {fmt_rps(rps)} | {rr} | {fmt_ms(p99)} | {pr} | {target} | {errs} |")
    w("")
    w("## Memory")
    w("")
    idle_t, peak_t = (float(x) for x in meta.get("rss_target", ["nan", "nan"])[:2])
    top = max(conns_list) if conns_list else 0
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
            w(f"| {name} | {server} | {fmt_mib(idle)} | {fmt_mib(peak)} | {target} |")
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
      "`access_log off`, `keepalive_requests 1000000`; its RSS is the worker process's. crest logs every request "
      "to stderr, which the benchmark sends to /dev/null. The sql scenario reads one row by primary key from a "
      "100k-row SQLite table, a random id per request (bench/random_id.lua); its baseline is nginx answering the "
      "same requests through the same Lua script. \"errors\" sums wrk's non-2xx responses and socket errors "
      "(connect/read/write/timeout) over all runs.")
    if problems:
        w("")
        w("**Errors reported by wrk:**")
        w("")
        for p in problems:
            w(f"- {p}")
    print("\n".join(out))


if __name__ == "__main__":
    main(sys.argv[1])
