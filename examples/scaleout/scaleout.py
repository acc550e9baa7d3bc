#!/usr/bin/python3
"""crest scaled out on loopback: a throwaway PostgreSQL cluster, three `crest
serve --workers 1` processes on it and nginx in front (nginx.conf.in), as a
command and as the module the scale-out test uses (tests/e2e/test_pg_scaleout.py).

    examples/scaleout/scaleout.py [--crest PATH] [--port N]

starts everything, prints nginx's URL and waits; Ctrl-C (SIGINT) or SIGTERM
stops nginx, the crest processes and the cluster, and removes the temp
folder that held them. A failure while starting stops what had started.
Python's stdlib only; the cluster is tests/pg/cluster.py's.
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APP_FILE = os.path.join(HERE, "app.yaml")
NGINX_TEMPLATE = os.path.join(HERE, "nginx.conf.in")
DATABASE = "scaleout"     # the database made on a cluster of our own
START_TIMEOUT = 30.0      # seconds for a crest process or nginx to be ready
STOP_TIMEOUT = 15.0       # seconds for a SIGTERM to end one (crest drains up to 10 s), then SIGKILL
PORT_TRIES = 5            # nginx ports tried when the one chosen is taken meanwhile

sys.path.insert(0, os.path.join(ROOT, "tests", "pg"))
import cluster as pgcluster  # noqa: E402  (tests/pg/cluster.py)


class ScaleOutError(Exception):
    pass


def find_crest():
    """The crest command: $CREST_BIN, the checkout's build/crest, or crest on the PATH."""
    for path in (os.environ.get("CREST_BIN"), os.path.join(ROOT, "build", "crest"), shutil.which("crest")):
        if path and os.access(path, os.X_OK):
            return os.path.abspath(path)
    raise ScaleOutError("no crest command: build it (make build), or set CREST_BIN or --crest")


def find_nginx():
    """nginx on the PATH, or Debian's /usr/sbin/nginx (not on a user's PATH)."""
    for path in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if path and os.access(path, os.X_OK):
            return path
    raise ScaleOutError("nginx is not installed (Debian: apt-get install nginx-light, or scripts/deps.sh test)")


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


def http_get(url, timeout=5.0):
    """(status, body bytes) of a GET; status 0 when nothing answered."""
    try:
        with _OPENER.open(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (OSError, ValueError):
        return 0, b""


def stop_process(proc, sig=signal.SIGTERM, timeout=STOP_TIMEOUT):
    """Sends sig to proc (a Popen we started), SIGKILL after timeout; returns its exit status."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def _children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


class Crest:
    """One `crest serve APP --workers 1` process; its stderr (events and
    access log, JSON lines) goes to log."""

    def __init__(self, index, proc, log):
        self.index = index
        self.proc = proc
        self.log = log
        self.port = None

    @property
    def pid(self):
        return self.proc.pid

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def events(self):
        """The JSON lines of its stderr so far."""
        out = []
        try:
            with open(self.log, errors="replace") as f:
                for line in f:
                    if line.startswith("{"):
                        try:
                            out.append(json.loads(line))
                        except ValueError:
                            pass
        except OSError:
            pass
        return out

    def wait_ready(self, deadline, checkpoint):
        """Waits for its listening event (the port) and a 200 from /readyz;
        checkpoint() runs between tries."""
        while self.port is None:
            for ev in self.events():
                if ev.get("event") == "listening":
                    self.port = int(ev["address"].rsplit(":", 1)[1])
            if self.port is None:
                self._check_alive(deadline, "listening")
                checkpoint()
                time.sleep(0.05)
        while http_get(self.url + "/readyz")[0] != 200:
            self._check_alive(deadline, "ready (/readyz 200)")
            checkpoint()
            time.sleep(0.05)

    def _check_alive(self, deadline, what):
        if self.proc.poll() is not None:
            raise ScaleOutError(f"crest {self.index} exited with {self.proc.returncode} before it was {what}; "
                                f"{self.log}:\n{pgcluster.tail(self.log)}")
        if time.monotonic() > deadline:
            raise ScaleOutError(f"crest {self.index} was not {what} within {START_TIMEOUT:.0f} s; "
                                f"{self.log}:\n{pgcluster.tail(self.log)}")


class ScaleOut:
    """nginx in front of N crest processes on one PostgreSQL database.

    crest_bin: the crest command (default: find_crest()). app: the app file.
    cluster: a running tests/pg/cluster.py Cluster and dbname one of its
    databases (the caller's: made and dropped by it); without them start()
    starts a cluster of its own in the temp folder, with the database
    DATABASE, and stop() removes it. N is the number of @CREST_PORT_n@ in
    nginx.conf.in. Use it as a context manager, or call start() and stop()
    (stop() is fine after a failed or partial start, and twice).
    interrupted: a function start() asks between steps (never inside one,
    such as initdb); when it returns true, start() stops what it started
    and raises KeyboardInterrupt (main(): Ctrl-C, SIGTERM).

    Once started: url (nginx's), crests (Crest, in the order of nginx's
    `server` lines), database_uri, psql(sql), dir (the temp folder: logs,
    nginx.conf, access.log), timings (seconds each stage took)."""

    def __init__(self, crest_bin=None, app=APP_FILE, cluster=None, dbname=None, port=0, log=None,
                 interrupted=None):
        if (cluster is None) != (dbname is None):
            raise ValueError("give both cluster and dbname, or neither")
        self.crest_bin = crest_bin or find_crest()
        if not os.access(self.crest_bin, os.X_OK):
            raise ScaleOutError(f"{self.crest_bin}: not an executable crest command")
        self.nginx_bin = find_nginx()
        self.app = os.path.abspath(app)
        self.cluster = cluster
        self.dbname = dbname
        self.own_cluster = cluster is None
        self.port = port
        self.log = log or (lambda msg: None)
        self.interrupted = interrupted or (lambda: False)
        with open(NGINX_TEMPLATE) as f:
            self.template = f.read()
        self.processes = len(set(re.findall(r"@CREST_PORT_(\d+)@", self.template)))
        self.dir = None
        self.crests = []
        self.nginx = None
        self.timings = {}
        self.crest_logs = {}

    # ---------------------------------------------------------------- start

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def _checkpoint(self):
        if self.interrupted():
            raise KeyboardInterrupt

    def start(self):
        """Starts the cluster (unless given), the crest processes, then nginx,
        each once the one before is ready. On any failure (or interrupted())
        everything started is stopped again and the error raised."""
        t0 = time.monotonic()
        try:
            # 0711: the cluster's server user (postgres, when we are root) reaches its folder inside.
            self.dir = tempfile.mkdtemp(prefix="crest-scaleout-")
            os.chmod(self.dir, 0o711)
            if self.own_cluster:
                self.log("starting PostgreSQL ...")
                self.cluster = pgcluster.Cluster(os.path.join(self.dir, "pg"))
                self.cluster.start()
                self._checkpoint()
                self.dbname = DATABASE
                self.cluster.create_database(self.dbname)
            self._checkpoint()
            self.database_uri = self.cluster.uri_for(self.dbname)
            t1 = time.monotonic()
            self.timings["postgresql"] = t1 - t0
            self.log(f"starting {self.processes} crest processes on {self.database_uri} ...")
            self._start_crests()
            self._checkpoint()
            t2 = time.monotonic()
            self.timings["crest"] = t2 - t1
            self.log("starting nginx ...")
            self._start_nginx()
            self.timings["nginx"] = time.monotonic() - t2
            self.timings["total"] = time.monotonic() - t0
        except BaseException:
            self.stop()
            raise
        return self

    def _start_crests(self):
        """All at once, as an orchestrator would (crest makes the schema one
        process at a time, under a lock on the database)."""
        env = dict(os.environ, CREST_DATABASE=self.database_uri)
        env.pop("CREST_LISTEN", None)
        for i in range(1, self.processes + 1):
            log = os.path.join(self.dir, f"crest-{i}.log")
            with open(log, "wb") as f:
                proc = subprocess.Popen([self.crest_bin, "serve", self.app, "--workers", "1",
                                         "--listen", "127.0.0.1:0", "--wait-for-db"],
                                        cwd=self.dir, env=env, stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                                        start_new_session=True)  # Ctrl-C reaches us only: we stop them in order
            self.crests.append(Crest(i, proc, log))
        deadline = time.monotonic() + START_TIMEOUT
        for c in self.crests:
            c.wait_ready(deadline, self._checkpoint)

    def _nginx_conf(self, port):
        conf = self.template.replace("@PREFIX@", os.path.join(self.dir, "nginx")).replace("@PORT@", str(port))
        for c in self.crests:
            conf = conf.replace(f"@CREST_PORT_{c.index}@", str(c.port))
        return conf

    def _start_nginx(self):
        prefix = os.path.join(self.dir, "nginx")
        os.makedirs(os.path.join(prefix, "tmp"))
        conf_path = os.path.join(prefix, "nginx.conf")
        err_log = os.path.join(prefix, "error.log")
        for _ in range(PORT_TRIES):
            port = self.port or pgcluster.free_port()
            with open(conf_path, "w") as f:
                f.write(self._nginx_conf(port))
            with open(os.path.join(prefix, "stderr.log"), "wb") as f:
                self.nginx = subprocess.Popen([self.nginx_bin, "-p", prefix, "-e", err_log, "-c", conf_path],
                                              cwd=prefix, stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                                              start_new_session=True)
            deadline = time.monotonic() + START_TIMEOUT
            while self.nginx.poll() is None and http_get(f"http://127.0.0.1:{port}/healthz")[0] != 200:
                if time.monotonic() > deadline:
                    raise ScaleOutError(f"nginx did not answer within {START_TIMEOUT:.0f} s; "
                                        f"{err_log}:\n{pgcluster.tail(err_log)}")
                self._checkpoint()
                time.sleep(0.05)
            if self.nginx.poll() is None:
                self.url = f"http://127.0.0.1:{port}"
                return
            text = pgcluster.tail(err_log) + pgcluster.tail(os.path.join(prefix, "stderr.log"))
            if "Address already in use" not in text or self.port:
                raise ScaleOutError(f"nginx exited with {self.nginx.returncode}:\n{text}")
        raise ScaleOutError(f"nginx found no free port in {PORT_TRIES} tries")

    # ---------------------------------------------------------------- use

    def psql(self, sql):
        """psql's unaligned, tuples-only output of sql on the database."""
        return self.cluster.psql(sql, db=self.dbname)

    def kill_crest(self, index):
        """SIGKILL (kill -9) crest process index (1-based); returns once it is gone."""
        c = self.crests[index - 1]
        c.proc.kill()
        c.proc.wait()

    def nginx_access_log(self):
        """The lines of nginx's access log so far."""
        try:
            with open(os.path.join(self.dir, "nginx", "access.log"), errors="replace") as f:
                return f.read().splitlines()
        except OSError:
            return []

    # ---------------------------------------------------------------- stop

    def stop(self):
        """Stops nginx, the crest processes and the cluster (ours only) and
        removes the temp folder. Returns {"nginx": status, "crest 1": ...}:
        the exit status of each process it stopped (negative: killed);
        crest_logs then holds each crest process's stderr by index."""
        status = {}
        if self.nginx is not None:
            master = self.nginx.pid
            workers = _children(master)
            status["nginx"] = stop_process(self.nginx)
            for w in workers:  # gone with their master, unless it had to be killed
                try:
                    os.kill(w, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.nginx = None
        for c in self.crests:
            status[f"crest {c.index}"] = stop_process(c.proc)
            with open(c.log, errors="replace") as f:
                self.crest_logs[c.index] = f.read()
        self.crests = []
        error = None
        if self.own_cluster and self.cluster is not None:
            try:
                self.cluster.stop()
            except (pgcluster.ClusterError, OSError, subprocess.SubprocessError) as e:
                error = e  # the temp folder goes all the same
            self.cluster = None
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
        if error is not None:
            raise ScaleOutError(f"stopping the cluster: {error}")
        return status


def main(argv):
    ap = argparse.ArgumentParser(description="crest scaled out on loopback: PostgreSQL, three crest processes, "
                                             "nginx in front. Ctrl-C stops them all.")
    ap.add_argument("--crest", help="the crest command (default: $CREST_BIN, build/crest, crest on the PATH)")
    ap.add_argument("--port", type=int, default=0, help="nginx's port on 127.0.0.1 (default: a free one)")
    ap.add_argument("--app", default=APP_FILE, help="the app file (default: examples/scaleout/app.yaml)")
    args = ap.parse_args(argv[1:])
    # Ctrl-C and SIGTERM only set a flag, seen between steps: a step (initdb,
    # a process starting) is never cut in half, so what it started is known
    # and stopped. SIGINT is set too when started in the background, where
    # the shell has it ignored.
    stop = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.append(signum))
    so = None
    rc = 0
    try:
        so = ScaleOut(args.crest, app=args.app, port=args.port, log=lambda m: print(m, flush=True),
                      interrupted=lambda: bool(stop))
        so.start()
        for c in so.crests:
            print(f"crest {c.index}: {c.url} (pid {c.pid}, log {c.log})", flush=True)
        t = so.timings
        print(f"up in {t['total']:.1f} s (PostgreSQL {t['postgresql']:.1f} s, crest {t['crest']:.1f} s, "
              f"nginx {t['nginx']:.1f} s)\n"
              f"nginx: {so.url} (config {so.dir}/nginx/nginx.conf, access log {so.dir}/nginx/access.log)\n"
              f"try:   curl -s {so.url}/tasks\n"
              f"Ctrl-C stops everything.", flush=True)
        while not stop:
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("\ninterrupted: stopped what had started.", flush=True)  # (start() did)
    except (ScaleOutError, pgcluster.ClusterError, OSError, subprocess.SubprocessError) as e:
        if not stop:  # (a terminal's Ctrl-C also reaches initdb or pg_ctl while they run: their failure is ours)
            print(f"scaleout.py: {e}", file=sys.stderr)
            rc = 1
    finally:
        if so is not None and so.dir is not None:
            print("\nstopping ...", flush=True)
            try:
                so.stop()
                print("stopped.", flush=True)
            except ScaleOutError as e:
                print(f"scaleout.py: {e}", file=sys.stderr)
                rc = 1
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
