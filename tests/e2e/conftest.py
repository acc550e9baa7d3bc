"""Black-box harness for crest: starts the real binaries, talks HTTP to them.

Environment: CREST_BIN (the `crest` command), CREST_HELLO (the hello
example), CREST_SLOW_APP (tests/e2e/slow_app.c, handlers that sleep) and
CREST_QUERY_APP (tests/e2e/query_app.c, handlers on crest_query). Every
server started here listens on 127.0.0.1 with an ephemeral port, is stopped
with SIGTERM at teardown (SIGKILL after 5 s) and must then exit 0 with no
sanitizer report on its stderr. The PostgreSQL fixtures, pg_cluster and
pg_db, are pg.py's.

The store: CREST_TEST_STORE=postgres (CTest's e2e.pg.<file> tests) runs the
same tests with crest on PostgreSQL. The crest fixture then gives every
`database: sqlite:NAME` of an app file (and every CREST_DATABASE=sqlite:...
of a server's environment) a database of the cluster, the same one for the
same NAME within a test (a restart finds its data), dropped after the test;
the C programs' fixtures (hello, query_app; tasks_c in test_tasks_c.py)
give theirs the same way, as --db or CREST_DATABASE.
Tests that hold for one store only have "sqlite" or "postgres" in their
names and are skipped on the other; `STORE` and `on_store(sqlite=...,
postgres=...)` pick what differs (the SQL of an app file).
"""
import json
import os
import re
import select
import signal
import socket
import ssl
import subprocess
import textwrap
import threading
import time

import httpx
import pytest

from pg import pg_cluster, pg_db  # noqa: F401  (fixtures, registered by being here)

def _abs(p):
    return os.path.abspath(p) if p else ""


CREST_BIN = _abs(os.environ.get("CREST_BIN", ""))
CREST_HELLO = _abs(os.environ.get("CREST_HELLO", ""))
CREST_SLOW_APP = _abs(os.environ.get("CREST_SLOW_APP", ""))
CREST_QUERY_APP = _abs(os.environ.get("CREST_QUERY_APP", ""))

STORE = os.environ.get("CREST_TEST_STORE", "sqlite")
assert STORE in ("sqlite", "postgres"), f"CREST_TEST_STORE={STORE}: sqlite or postgres"


def on_store(sqlite, postgres):
    """What differs by store: the SQLite form, or the PostgreSQL one."""
    return postgres if STORE == "postgres" else sqlite


def pytest_collection_modifyitems(config, items):
    other = "postgres" if STORE == "sqlite" else "sqlite"
    for item in items:
        # (test_pg_* files are PostgreSQL's whatever the store: they start
        # crest on a database of a cluster themselves)
        if other in item.name.lower() and not os.path.basename(str(item.fspath)).startswith("test_pg_"):
            item.add_marker(pytest.mark.skip(reason=f"a test of the {other} store"))


# Generous: the suite also runs against an ASan+UBSan build.
START_TIMEOUT = 30.0
IO_TIMEOUT = 15.0

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


def _require(path, what):
    if not path or not os.access(path, os.X_OK):
        pytest.fail(f"{what} is not set to an executable (got {path!r})")
    return path


def sanitizer_report(text):
    """The first sanitizer mark found in text, or None."""
    for m in SANITIZER_MARKS:
        if m in text:
            return m
    return None


# ---------------------------------------------------------------- servers

_default_ssl = []


def default_ssl_context():
    """httpx's default context (verify=True), made once: each new one reads the CA bundle (~50 ms), and
    Server.get/request make a client per call."""
    if not _default_ssl:
        _default_ssl.append(httpx.create_ssl_context())
    return _default_ssl[0]


class Server:
    """One running server process; stderr is read by a thread and kept."""

    def __init__(self, argv, cwd, env=None, preexec_fn=None):
        self.argv = argv
        self.cwd = cwd
        full_env = dict(os.environ)
        for k in ("CREST_LISTEN", "CREST_DATABASE"):
            full_env.pop(k, None)
        if env:
            full_env.update(env)
        self.lines = []
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self.proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, preexec_fn=preexec_fn)
        self.stdout = b""
        self._t_err = threading.Thread(target=self._read_err, daemon=True)
        self._t_err.start()
        self._t_out = threading.Thread(target=self._read_out, daemon=True)
        self._t_out.start()
        self.port = None
        self.workers = None
        self.returncode = None
        self.stopped = False
        self.tls = None  # an ssl.SSLContext trusting the server's certificate when it serves HTTPS

    def _read_err(self):
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._cond:
                self.lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def _read_out(self):
        data = self.proc.stdout.read()
        self.stdout = data or b""

    # -- startup
    def wait_listening(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    ev = _json_or_none(line)
                    if ev and ev.get("event") == "listening":
                        addr = ev["address"]
                        self.port = int(addr.rsplit(":", 1)[1])
                        self.workers = ev.get("workers")
                        self.listen_event = ev
                        return self
                if self.proc.poll() is not None and not self._t_err.is_alive():
                    raise RuntimeError(f"server exited with {self.proc.returncode} before listening:\n"
                                       + "\n".join(self.lines))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("server did not print a listening event in time:\n" + "\n".join(self.lines))
                self._cond.wait(min(left, 0.2))

    @property
    def url(self):
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def client(self, **kw):
        kw.setdefault("timeout", IO_TIMEOUT)
        kw.setdefault("verify", self.tls or default_ssl_context())
        if os.environ.get("CREST_OPENAPI_CHECK", "1") != "0":
            hooks = kw.setdefault("event_hooks", {})
            hooks.setdefault("response", []).append(self._check_openapi)
        return httpx.Client(base_url=self.url, **kw)

    def _check_openapi(self, response):
        """Every response must be what the server's own OpenAPI document says (oacheck.py)."""
        from oacheck import Checker
        if getattr(self, "_oacheck", None) is None:
            self._oacheck = Checker(self.url, verify=self.tls or default_ssl_context())
        response.read()
        req = response.request
        self._oacheck.check(req.method, req.url.raw_path.decode(), response.status_code,
                            response.headers.get("content-type", ""), response.content)

    def get(self, path, **kw):
        with self.client() as c:
            return c.get(path, **kw)

    def request(self, method, path, **kw):
        with self.client() as c:
            return c.request(method, path, **kw)

    def raw(self, timeout=IO_TIMEOUT):
        return RawConn(self.port, timeout=timeout, tls=self.tls)

    # -- memory
    def status_kib(self, field):
        """A field of /proc/PID/status in KiB: "VmRSS" (resident now), "VmHWM" (its peak)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def rss_kib(self):
        return self.status_kib("VmRSS")

    # -- logs
    def stderr_text(self):
        with self._lock:
            return "\n".join(self.lines)

    def events(self):
        with self._lock:
            lines = list(self.lines)
        return [e for e in (_json_or_none(l) for l in lines) if e is not None]

    def access_log(self):
        return [e for e in self.events() if "request_id" in e and "status" in e and "event" not in e]

    def wait_for_line(self, pred, timeout=IO_TIMEOUT):
        """Waits until some stderr line (parsed as JSON when it is) satisfies pred."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines:
                    ev = _json_or_none(line)
                    if ev is not None and pred(ev):
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("no matching stderr line; stderr was:\n" + "\n".join(self.lines))
                self._cond.wait(min(left, 0.2))

    def wait_access(self, request_id, timeout=IO_TIMEOUT):
        return self.wait_for_line(lambda e: e.get("request_id") == request_id and "status" in e, timeout)

    # -- shutdown
    def signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        try:
            self.returncode = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self._t_err.join(5)
        self._t_out.join(5)
        return self.returncode

    def stop(self):
        """SIGTERM, then SIGKILL after 5 s. Returns the exit status (negative: killed)."""
        if self.stopped:
            return self.returncode
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.returncode = self.proc.returncode
        self._t_err.join(5)
        self._t_out.join(5)
        for s in (self.proc.stdout, self.proc.stderr):
            try:
                s.close()
            except Exception:
                pass
        return self.returncode

    def check_clean(self):
        """The problems found at teardown (empty when the server behaved)."""
        problems = []
        if self.returncode != 0:
            problems.append(f"server {self.argv[0]} exited with {self.returncode} on SIGTERM")
        mark = sanitizer_report(self.stderr_text())
        if mark:
            problems.append(f"server stderr holds a sanitizer report ({mark})")
        return problems


def _json_or_none(line):
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        v = json.loads(line)
    except ValueError:
        return None
    return v if isinstance(v, dict) else None


class _Servers:
    def __init__(self):
        self.all = []

    def add(self, s):
        self.all.append(s)
        return s

    def teardown(self):
        problems = []
        for s in self.all:
            s.stop()
            for p in s.check_clean():
                problems.append(p + "\n--- stderr (tail) ---\n" + "\n".join(s.lines[-40:]))
        return problems


@pytest.fixture
def servers():
    reg = _Servers()
    yield reg
    problems = reg.teardown()
    if problems:
        pytest.fail("\n\n".join(problems), pytrace=False)


session_pg_cluster = [None]  # on PostgreSQL (STORE): the session's cluster, for StoreDbs(None)


@pytest.fixture(scope="session", autouse=True)
def _session_pg_cluster(request):
    """On PostgreSQL (STORE), the cluster for the servers started outside the
    crest fixture (rest_apps.served, module-scoped), which have no request."""
    if STORE == "postgres":
        session_pg_cluster[0] = request.getfixturevalue("pg_cluster")
    yield


class StoreDbs:
    """On PostgreSQL: a database of the cluster for each SQLite file name a
    test's servers use (the same name, the same database), dropped after.
    request: the test's (its pg_cluster fixture), or None for the session's
    cluster (servers outside a test, rest_apps.served)."""

    def __init__(self, request):
        self.request = request
        self.dbs = {}

    def uri(self, sqlite_name):
        key = os.path.basename(sqlite_name)
        if key not in self.dbs:
            from pg import fresh_database
            cluster = self.request.getfixturevalue("pg_cluster") if self.request else session_pg_cluster[0]
            assert cluster is not None, "no PostgreSQL cluster in this session"
            cm = fresh_database(cluster)
            self.dbs[key] = (cm, cm.__enter__())
        return self.dbs[key][1].uri

    def app_text(self, text):
        text = re.sub(r"^(\s*)database:\s*sqlite:(\S+)", lambda m: f"{m.group(1)}database: {self.uri(m.group(2))}",
                      text, flags=re.M)
        # the JSON form of an app file: "database": "sqlite:NAME"
        return re.sub(r'"database"(\s*):(\s*)"sqlite:([^"]+)"',
                      lambda m: f'"database"{m.group(1)}:{m.group(2)}{json.dumps(self.uri(m.group(3)))}', text)

    def env(self, env):
        db = (env or {}).get("CREST_DATABASE", "")
        if db.startswith("sqlite:"):
            env = dict(env)
            env["CREST_DATABASE"] = self.uri(db[len("sqlite:"):])
        return env

    def close(self):
        for cm, _ in self.dbs.values():
            cm.__exit__(None, None, None)

    def psql(self, sqlite_name, sql):
        return self.dbs[os.path.basename(sqlite_name)][1].psql(sql)


store_dbs_of = [None]  # the running test's StoreDbs (db_rows reads through it)


def _value(text):
    if text == "":
        return None
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return {"t": True, "f": False}.get(text, text)


def db_rows(server, name, sql):
    """The rows of sql (a SELECT both stores take) on the database the app file
    of server calls sqlite:NAME: its SQLite file, or (STORE postgres) its
    database of the cluster. Tuples of Python values (PostgreSQL's text read
    back: integers, floats, t/f as booleans, empty as None; a module-scoped
    server's through its own s.store_dbs, rest_apps.start_server)."""
    if STORE == "postgres":
        dbs = getattr(server, "store_dbs", None) or store_dbs_of[0]
        out = dbs.psql(name, f"\\pset fieldsep '\\x1f'\n{sql}")
        return [tuple(_value(v) for v in line.split("\x1f")) for line in out.splitlines() if line]
    import sqlite3
    con = sqlite3.connect(os.path.join(server.dir, name) if not os.path.isabs(name) else name)
    try:
        return [tuple(r) for r in con.execute(sql).fetchall()]
    finally:
        con.close()


def statements(server, **kw):
    """crest_db_statements_total of server's /metrics (kw: for the GET, as
    headers=...): the statements it ran on the database for requests so far.
    A scrape runs none; with workers: 1 the count is exact the moment an
    answer is in."""
    r = server.get("/metrics", **kw)
    assert r.status_code == 200, r.text
    found = [line.split(" ")[1] for line in r.text.splitlines() if line.startswith("crest_db_statements_total ")]
    assert len(found) == 1, f"crest_db_statements_total once in /metrics: {found}"
    return int(found[0])


@pytest.fixture
def store_dbs(request):
    """The test's databases on PostgreSQL (STORE), torn down after its servers."""
    dbs = StoreDbs(request)
    yield dbs
    dbs.close()


@pytest.fixture
def crest(store_dbs, servers, tmp_path):
    """crest(app_text, workers=1, env=None, args=(), name='app.yaml', wait=True) -> Server.

    Writes the app file into a fresh directory (also the server's working
    directory) and serves it on 127.0.0.1, an ephemeral port. On PostgreSQL
    (STORE) its SQLite database is one of the cluster's (StoreDbs)."""
    _require(CREST_BIN, "CREST_BIN")
    counter = [0]

    def start(app_text, workers=1, env=None, args=(), name=None, wait=True, listen="127.0.0.1:0"):
        counter[0] += 1
        d = tmp_path / f"srv{counter[0]}"
        d.mkdir()
        if name is None:
            name = "app.yaml"
        path = d / name
        app_text = textwrap.dedent(app_text) if "\t" not in app_text else app_text
        if STORE == "postgres":
            app_text = store_dbs.app_text(app_text)
            env = store_dbs.env(env)
        path.write_text(app_text)
        store_dbs_of[0] = store_dbs
        argv = [CREST_BIN, "serve", str(path)]
        if listen is not None:
            argv += ["--listen", listen]
        if workers is not None:
            argv += ["--workers", str(workers)]
        argv += list(args)
        s = servers.add(Server(argv, cwd=str(d), env=env))
        s.dir = d
        s.app_path = path
        if wait:
            s.wait_listening()
        return s

    return start


@pytest.fixture
def hello(store_dbs, servers, tmp_path):
    """hello(db_path=None, workers=1) -> Server running the hello example on
    the SQLite file db_path or (STORE postgres) the database of the cluster
    its name stands for (StoreDbs)."""
    _require(CREST_HELLO, "CREST_HELLO")

    def start(db_path=None, workers=1, env=None, args=()):
        if db_path is None:
            db_path = tmp_path / "hello.db"
        if STORE == "postgres":
            db_path = store_dbs.uri(str(db_path))
            store_dbs_of[0] = store_dbs
        argv = [CREST_HELLO, "--listen", "127.0.0.1:0", "--workers", str(workers), "--db", str(db_path)]
        argv += list(args)
        s = servers.add(Server(argv, cwd=str(tmp_path), env=env))
        s.wait_listening()
        return s

    return start


@pytest.fixture
def slow_app(servers, tmp_path):
    """slow_app(workers=1, env=None) -> Server running tests/e2e/slow_app.c (handlers that sleep)."""
    _require(CREST_SLOW_APP, "CREST_SLOW_APP")

    def start(workers=1, env=None, args=()):
        argv = [CREST_SLOW_APP, "--listen", "127.0.0.1:0", "--workers", str(workers)] + list(args)
        return servers.add(Server(argv, cwd=str(tmp_path), env=env)).wait_listening()

    return start


@pytest.fixture
def query_app(store_dbs, servers, tmp_path):
    """query_app(workers=1) -> Server running tests/e2e/query_app.c (handlers on crest_query), on
    query_app.db or (STORE postgres) a database of the cluster (CREST_DATABASE)."""
    _require(CREST_QUERY_APP, "CREST_QUERY_APP")

    def start(workers=1, env=None, args=()):
        if STORE == "postgres":
            env = dict(env or {}, CREST_DATABASE=store_dbs.uri("query_app.db"))
            store_dbs_of[0] = store_dbs
        argv = [CREST_QUERY_APP, "--listen", "127.0.0.1:0", "--workers", str(workers)] + list(args)
        return servers.add(Server(argv, cwd=str(tmp_path), env=env)).wait_listening()

    return start


def sanitized(path=None):
    """True when the binary (default: CREST_BIN) is built with AddressSanitizer:
    its allocator keeps freed memory in quarantine, so memory bounds do not apply."""
    with open(path or CREST_BIN, "rb") as f:
        return b"__asan_init" in f.read()


def raise_open_files(n):
    """Raises this process' open-file limit (and so its children's) to n or the
    hard limit; returns the limit now in force."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft == resource.RLIM_INFINITY or soft >= want:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return want


def run_cli(argv, cwd=None, env=None, timeout=60):
    """Runs a command to completion; fails the test on a sanitizer report."""
    full_env = dict(os.environ)
    for k in ("CREST_LISTEN", "CREST_DATABASE"):
        full_env.pop(k, None)
    if env:
        full_env.update(env)
    p = subprocess.run(argv, cwd=cwd, env=full_env, stdin=subprocess.DEVNULL, capture_output=True,
                       timeout=timeout)
    p.out = p.stdout.decode("utf-8", "replace")
    p.err = p.stderr.decode("utf-8", "replace")
    mark = sanitizer_report(p.err)
    if mark:
        pytest.fail(f"{argv}: sanitizer report ({mark}):\n{p.err}", pytrace=False)
    return p


# ---------------------------------------------------------------- raw HTTP


class Response:
    def __init__(self, status_line, headers, body):
        self.status_line = status_line
        parts = status_line.split(" ", 2)
        self.version = parts[0]
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.header_list = headers  # [(name, value)] as received
        self.body = body

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.header_list:
            if k.lower() == name:
                return v
        return default

    def headers_named(self, name):
        name = name.lower()
        return [v for k, v in self.header_list if k.lower() == name]

    @property
    def headers(self):
        return {k.lower(): v for k, v in self.header_list}

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<Response {self.status_line!r} {self.header_list} {self.body[:200]!r}>"


class RawConn:
    """A plain TCP connection for protocol tests: exact bytes out, parsed responses in."""

    def __init__(self, port, timeout=IO_TIMEOUT, tls=None):
        self.timeout = timeout
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:  # an ssl.SSLContext: the same protocol tests over HTTPS
            self.sock = tls.wrap_socket(self.sock, server_hostname="127.0.0.1")
        self.buf = b""
        self.eof = False

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.sock.sendall(data)

    def _fill(self, deadline):
        """Reads more bytes into buf; returns False on EOF."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"timed out; have {self.buf[:300]!r}")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError(f"timed out; have {self.buf[:300]!r}")
        except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
            chunk = b""
        if not chunk:
            self.eof = True
            return False
        self.buf += chunk
        return True

    def read_head(self, timeout=None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(deadline):
                raise EOFError(f"connection closed before a full response head; have {self.buf!r}")
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        headers = []
        for l in lines[1:]:
            k, _, v = l.partition(":")
            headers.append((k.strip(), v.strip()))
        return lines[0], headers

    def read_response(self, head=False, timeout=None):
        """One response. head=True: the request was HEAD (no body whatever the headers say)."""
        deadline = time.monotonic() + (timeout or self.timeout)
        status_line, headers = self.read_head(timeout)
        r = Response(status_line, headers, b"")
        if head or r.status in (204, 304) or 100 <= r.status < 200:
            return r
        cl = r.header("content-length")
        if cl is not None:
            n = int(cl)
            while len(self.buf) < n:
                if not self._fill(deadline):
                    raise EOFError(f"connection closed inside a body ({len(self.buf)}/{n} bytes)")
            r.body, self.buf = self.buf[:n], self.buf[n:]
        else:
            while self._fill(deadline):
                pass
            r.body, self.buf = self.buf, b""
        return r

    def read_all(self, timeout=None):
        """Everything until the peer closes."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while self._fill(deadline):
            pass
        data, self.buf = self.buf, b""
        return data

    def closed_by_peer(self, timeout=None):
        """True when the server closes (EOF or reset) within timeout with no more data."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        try:
            while self._fill(deadline):
                pass
        except TimeoutError:
            return False
        return True

    def still_open(self, wait=0.3):
        """True unless the peer closes the connection within `wait` seconds."""
        if self.eof:
            return False
        r, _, _ = select.select([self.sock], [], [], wait)
        if not r:
            return True
        try:
            data = self.sock.recv(65536, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except (BlockingIOError, InterruptedError):
            return True
        except OSError:
            return False
        return bool(data)


def http_request(method, path, headers=None, body=b"", version="HTTP/1.1", host=True):
    """Bytes of one request. headers: list of (name, value)."""
    if isinstance(body, str):
        body = body.encode()
    lines = [f"{method} {path} {version}"]
    hs = list(headers or [])
    if host and not any(k.lower() == "host" for k, _ in hs):
        hs.insert(0, ("Host", "127.0.0.1"))
    if body and not any(k.lower() in ("content-length", "transfer-encoding") for k, _ in hs):
        hs.append(("Content-Length", str(len(body))))
    for k, v in hs:
        lines.append(f"{k}: {v}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunked(*parts):
    out = b""
    for p in parts:
        if isinstance(p, str):
            p = p.encode()
        out += b"%x\r\n" % len(p) + p + b"\r\n"
    return out + b"0\r\n\r\n"


# ---------------------------------------------------------------- checks


# ---------------------------------------------------------------- tokens

JWT_SECRET = "0123456789abcdef0123456789abcdef-test-secret"  # apps read it from CREST_JWT_SECRET
JWT_ENV = {"CREST_JWT_SECRET": JWT_SECRET}


def bearer(sub, secret=JWT_SECRET, ttl=600, **claims):
    """Headers with `Authorization: Bearer <an HS256 token for sub, valid ttl
    seconds, with the extra claims>` (the test apps' auth.jwt)."""
    import jwt as pyjwt
    t = pyjwt.encode({"sub": sub, "exp": int(time.time()) + ttl, **claims}, secret, algorithm="HS256")
    return {"Authorization": f"Bearer {t}"}


def assert_problem(r, status, code=None):
    """r: an httpx response or a raw Response. Checks the problem+json shape."""
    st = r.status_code if hasattr(r, "status_code") else r.status
    body = r.content if hasattr(r, "content") else r.body
    ctype = r.headers.get("content-type") if hasattr(r, "status_code") else r.header("content-type")
    assert st == status, f"expected {status}, got {st}: {body[:500]!r}"
    assert ctype is not None and ctype.split(";")[0].strip() == "application/problem+json", ctype
    p = json.loads(body)
    for k in ("status", "title", "code"):
        assert k in p, f"problem without '{k}': {p}"
    assert p["status"] == status
    assert isinstance(p["title"], str) and p["title"]
    assert isinstance(p["code"], str) and p["code"]
    if "detail" in p:
        assert isinstance(p["detail"], str)
    if code is not None:
        assert p["code"] == code, p
    rid = r.headers.get("x-request-id") if hasattr(r, "status_code") else r.header("x-request-id")
    assert rid, "error response without X-Request-Id"
    return p


# A small app most tests can share: a tasks table like the example's, in
# the SQL of the test store (the same table and rows on both).
TASKS_APP = """\
database: sqlite:tasks.db
startup_sql:
""" + on_store(sqlite="""\
  - CREATE TABLE IF NOT EXISTS tasks (id INTEGER PRIMARY KEY, title TEXT NOT NULL UNIQUE,
      spent_time INTEGER NOT NULL DEFAULT 0)
  - INSERT OR IGNORE INTO tasks (id, title, spent_time) VALUES (1, 'first', 10), (2, 'second', 20)
""", postgres="""\
  - CREATE TABLE IF NOT EXISTS tasks (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
      title text NOT NULL UNIQUE, spent_time bigint NOT NULL DEFAULT 0)
  - INSERT INTO tasks (title, spent_time) SELECT * FROM (VALUES ('first', 10), ('second', 20)) AS v
      WHERE NOT EXISTS (SELECT 1 FROM tasks)
""") + """\
endpoints:
  - path: /tasks/{id}
    params: {id: int}
    sql: SELECT id, title, spent_time FROM tasks WHERE id = :id
    returns: one
  - path: /tasks
    sql: SELECT id, title FROM tasks ORDER BY id
    returns: many
  - method: POST
    path: /tasks
    status: 201
    params:
      title: {type: string, required: true, min_length: 1, max_length: 200}
      spent_time: {type: int, default: 0, min: 0}
    sql: INSERT INTO tasks (title, spent_time) VALUES (:title, :spent_time) RETURNING id, title, spent_time
    returns: one
"""
