#!/usr/bin/python3
"""The change feed's benchmark (issue 14): events per second delivered to many subscribers while POST /tasks
runs, and the server's memory with many idle subscribers. A bounded client: fixed subscribers and writers,
a fixed duration, every subscriber checked to receive every event.

    bench/changes.py                                   # SQLite, 100 subscribers, 4 writers, 10 s, 1000 idle
    BENCH_DURATION=3s bench/changes.py                 # a quick check
    bench/changes.py --store postgres --pg DIR         # a cluster of tests/pg/cluster.py (DIR/conninfo)

It starts build/crest on a fresh database (a temporary SQLite file, or a fresh database of the cluster), opens
the subscribers (GET /tasks/changes, one socket each, read by one selector thread), runs the writers (each a
keep-alive connection posting one row at a time) for the duration, then waits until every subscriber has every
event. Printed: rows created/s, events delivered/s (subscribers x posts over the time from the first post to the last
event delivered), the latency of delivery (last event after last post), the server's CPU over that time (and per
event delivered), then the RSS of the server before and
with the idle subscribers open (KiB each), then the latency across processes: a second crest process B on the
same database, one subscriber on B, --latency posts to A one at a time, each timed from its POST to its event on
B's subscriber (median and 90th percentile: on PostgreSQL B's LISTEN connection wakes it, on SQLite B's look at
the log's end every 200 ms). With --tsv, the figures are also printed as `#changes<TAB>store<TAB>key<TAB>value`
lines (bench/run.sh's `changes` group, read by bench/report.py). Figures from a shared machine are provisional."""
import argparse
import http.client
import json
import os
import re
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

APP = """\
database: {db}
models:
  Task:
    table: tasks
    fields:
      title: {{type: string, required: true}}
      done: {{type: bool, default: false}}
modules:
  tasks:
    model: Task
    changes: {{subscribers: 5000, buffer: 4m}}
"""


def duration(text):
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text)
    if not m:
        raise SystemExit(f"bad duration {text!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[m.group(2)]


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    """The user + system CPU seconds pid has used."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(build, app_path, workers):
    p = subprocess.Popen([os.path.join(build, "crest"), "serve", app_path, "--listen", "127.0.0.1:0", "--workers",
                          str(workers)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    lines = []
    while time.monotonic() < deadline:
        line = p.stderr.readline()
        if not line:
            break
        lines.append(line)
        if '"listening"' in line:
            port = int(json.loads(line)["address"].rsplit(":", 1)[1])
            threading.Thread(target=lambda: [None for _ in p.stderr], daemon=True).start()  # drain the log
            return p, port
    p.kill()
    raise SystemExit("crest did not start:\n" + "".join(lines))


def stop(p):
    """Ends a crest process of start() (SIGTERM, then SIGKILL after 10 s)."""
    p.terminate()
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()


def subscribe(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=15)
    s.sendall(b"GET /tasks/changes HTTP/1.1\r\nHost: b\r\nAccept: text/event-stream\r\n\r\n")
    head = b""
    while b"\r\n\r\n" not in head:
        d = s.recv(4096)
        if not d:
            raise SystemExit("a subscriber was closed before its head")
        head += d
    if not head.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"subscribe: {head[:200]!r}")
    s.setblocking(False)
    return s, head.split(b"\r\n\r\n", 1)[1]


class Readers:
    """One thread reading every subscriber; counts the events each received (`event: ` lines)."""

    def __init__(self, socks):
        self.sel = selectors.DefaultSelector()
        self.count = {}
        self.tail = {}
        self.last_at = 0.0
        for s, rest in socks:
            self.count[s] = rest.count(b"\nevent: ")
            self.tail[s] = rest[-16:]
            self.sel.register(s, selectors.EVENT_READ)
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            for key, _ in self.sel.select(0.1):
                s = key.fileobj
                try:
                    d = s.recv(262144)
                except BlockingIOError:
                    continue
                if not d:
                    self.sel.unregister(s)
                    continue
                buf = self.tail[s] + d
                n = buf.count(b"\nevent: ")
                if n:
                    self.count[s] += n
                    self.last_at = time.monotonic()
                self.tail[s] = buf[-16:]

    def min_count(self):
        return min(self.count.values()) if self.count else 0


def cross_process(build, app_path, port_a, n):
    """The time from each of n POSTs to A to its event on a subscriber of a second process B (seconds)."""
    proc_b, port_b = start(build, app_path, 1)
    try:
        s, rest = subscribe(port_b)
        s.setblocking(True)
        s.settimeout(10)
        seen = rest.count(b"\nevent: ")
        tail = rest[-16:]
        time.sleep(0.3)  # (B's LISTEN connection is made at its first subscriber)
        c = http.client.HTTPConnection("127.0.0.1", port_a, timeout=30)
        took = []
        for _ in range(n):
            t0 = time.monotonic()
            c.request("POST", "/tasks", json.dumps({"title": "across"}), {"Content-Type": "application/json"})
            r = c.getresponse()
            r.read()
            if r.status != 201:
                raise SystemExit(f"POST /tasks: {r.status}")
            want = seen + 1
            while seen < want:
                d = s.recv(65536)
                if not d:
                    raise SystemExit("B's subscriber was closed")
                buf = tail + d
                seen += buf.count(b"\nevent: ")
                tail = buf[-16:]
            took.append(time.monotonic() - t0)
        c.close()
        s.close()
        return took
    finally:
        stop(proc_b)


def writer(port, until, counter, lock, bulk):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"title": "bench"} if bulk == 1 else [{"title": "bench"}] * bulk)
    n = 0
    while time.monotonic() < until:
        c.request("POST", "/tasks", body, {"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        if r.status != 201:
            raise SystemExit(f"POST /tasks: {r.status}")
        n += bulk
    c.close()
    with lock:
        counter[0] += n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--pg", help="a tests/pg/cluster.py cluster folder (its conninfo)")
    ap.add_argument("--duration", default=os.environ.get("BENCH_DURATION", "10s"))
    ap.add_argument("--subscribers", type=int, default=100)
    ap.add_argument("--writers", type=int, default=4)
    ap.add_argument("--bulk", type=int, default=1, help="rows per POST (a JSON array when more than 1)")
    ap.add_argument("--idle", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--latency", type=int, default=20, help="posts timed across two processes (0: none)")
    ap.add_argument("--tsv", action="store_true", help="also print the figures as #changes lines")
    a = ap.parse_args()
    figures = []

    def fig(key, value):
        figures.append((key, value))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < a.idle + a.subscribers + 64:
        raise SystemExit(f"the open-file limit ({hard}) is too low for {a.idle} idle subscribers")
    tmp = tempfile.mkdtemp(prefix="crest-bench-changes.")
    if a.store == "postgres":
        if not a.pg:
            raise SystemExit("--store postgres needs --pg DIR (tests/pg/cluster.py start DIR)")
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "pg"))
        conninfo = open(os.path.join(a.pg, "conninfo")).read().strip()
        name = f"bench_changes_{os.getpid()}"
        subprocess.run(["psql", conninfo, "-qc", f"CREATE DATABASE {name}"], check=True)
        kv = dict(x.split("=", 1) for x in conninfo.split())
        db = f"postgresql://{kv.get('user', 'crest')}@{kv['host']}:{kv['port']}/{name}"
    else:
        db = f"sqlite:{tmp}/changes.db"
    app_path = os.path.join(tmp, "app.yaml")
    with open(app_path, "w") as f:
        f.write(APP.format(db=db))
    proc, port = start(a.build, app_path, a.workers)
    try:
        # ---- events per second to many subscribers while POST /tasks runs
        subs = [subscribe(port) for _ in range(a.subscribers)]
        readers = Readers(subs)
        posts, lock = [0], threading.Lock()
        cpu0 = cpu_s(proc.pid)
        t0 = time.monotonic()
        until = t0 + duration(a.duration)
        ws = [threading.Thread(target=writer, args=(port, until, posts, lock, a.bulk)) for _ in range(a.writers)]
        for w in ws:
            w.start()
        for w in ws:
            w.join()
        t_posted = time.monotonic()
        deadline = t_posted + 60
        while readers.min_count() < posts[0] and time.monotonic() < deadline:
            time.sleep(0.02)
        got = readers.min_count()
        cpu = cpu_s(proc.pid) - cpu0
        readers.stop = True
        elapsed = max(readers.last_at, t_posted) - t0
        print(f"# crest change feed ({a.store}, {a.workers} workers; provisional: a shared machine)")
        print(f"rows created: {posts[0]} in {t_posted - t0:.1f} s = {posts[0] / (t_posted - t0):.0f}/s "
              f"({a.writers} writers, {a.bulk} rows per POST)")
        print(f"subscribers: {a.subscribers}, each received {got} of {posts[0]} events"
              + ("" if got == posts[0] else "  <-- MISSING EVENTS"))
        print(f"events delivered: {a.subscribers * got} in {elapsed:.1f} s = {a.subscribers * got / elapsed:.0f}/s; "
              f"the last {max(0.0, readers.last_at - t_posted) * 1000:.0f} ms after the last post")
        print(f"server CPU: {cpu:.2f} s, {cpu * 1e6 / max(1, a.subscribers * got):.1f} µs per event delivered")
        fig("subscribers", a.subscribers)
        fig("writers", a.writers)
        fig("workers", a.workers)
        fig("rows", posts[0])
        fig("rows_per_s", round(posts[0] / (t_posted - t0)))
        fig("received_min", got)
        fig("events_per_s", round(a.subscribers * got / elapsed))
        fig("tail_ms", round(max(0.0, readers.last_at - t_posted) * 1000))
        fig("cpu_s", round(cpu, 2))
        for s, _ in subs:
            s.close()
        time.sleep(0.5)
        # ---- memory with many idle subscribers
        before = rss_kib(proc.pid)
        idle = [subscribe(port) for _ in range(a.idle)]
        time.sleep(0.5)
        with_idle = rss_kib(proc.pid)
        print(f"RSS: {before} KiB, with {a.idle} idle subscribers {with_idle} KiB "
              f"(+{(with_idle - before) / max(1, a.idle):.1f} KiB each)")
        fig("idle", a.idle)
        fig("rss_kib", before)
        fig("rss_idle_kib", with_idle)
        for s, _ in idle:
            s.close()
        if a.latency:
            took = sorted(cross_process(a.build, app_path, port, a.latency))
            med, p90 = statistics.median(took) * 1000, took[int(0.9 * (len(took) - 1))] * 1000
            print(f"across processes: a POST to A reaches B's subscriber in {med:.1f} ms (median of {len(took)}), "
                  f"{p90:.1f} ms (90th percentile)")
            fig("xproc_n", len(took))
            fig("xproc_median_ms", round(med, 1))
            fig("xproc_p90_ms", round(p90, 1))
        if a.tsv:
            for k, v in figures:
                print(f"#changes\t{a.store}\t{k}\t{v}")
        return 0 if got == posts[0] else 1
    finally:
        stop(proc)
        if a.store == "postgres":
            subprocess.run(["psql", conninfo, "-qc", f"DROP DATABASE IF EXISTS {name}"])


if __name__ == "__main__":
    sys.exit(main())
