#!/usr/bin/python3
"""A throwaway PostgreSQL 15 cluster for crest's tests, as a command and a module.

`cluster.py start [--durable] DIR` makes a cluster in DIR, starts it on a free
127.0.0.1 port with its socket in DIR, writes the line to connect with to
DIR/conninfo and prints it; `cluster.py stop DIR` stops that cluster and
removes DIR. The tests' cluster trades durability for speed (SETTINGS); with
--durable (bench/run.sh's) a commit is on disk when it is acknowledged, as
PostgreSQL's defaults have it (DURABLE_SETTINGS).
PostgreSQL refuses to run as root, so as root the server runs as `postgres`
(or `nobody`). Python's stdlib only; psql does the talking.
"""
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

PG_BIN = "/usr/lib/postgresql/15/bin"
START_TIMEOUT = 30.0  # seconds for the server to accept connections
PORT_TRIES = 5        # ports tried when the chosen one is taken meanwhile
MARK = ".crest-pg"    # in every folder this module made: only those are removed
SUN_PATH_MAX = 107    # a socket path's bytes, without the NUL of sun_path[108]

# Fast and throwaway: nothing here has to survive a crash.
SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "300",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "shared_buffers": "64MB",
}

# A benchmark's cluster: PostgreSQL's durable defaults (fsync, synchronous
# commit, full page writes), so a write costs what it costs in production.
# Only initdb's own files are written without syncing (--no-sync): a crash
# while the cluster is being made loses nothing anyone relies on.
DURABLE_SETTINGS = dict(SETTINGS, fsync="on", synchronous_commit="on", full_page_writes="on")


class ClusterError(Exception):
    pass


def _bin(name):
    path = os.path.join(PG_BIN, name)
    if not os.access(path, os.X_OK):
        raise ClusterError(f"{path} is missing: PostgreSQL 15 is not installed (scripts/deps.sh test)")
    return path


def _env():
    """The environment minus PG* variables, which would redirect the tools."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["LC_ALL"] = "C"
    return env


def _server_user():
    """The account to run PostgreSQL as when we are root, else None (ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            pass
    raise ClusterError("running as root, and neither 'postgres' nor 'nobody' exists to run PostgreSQL as")


def _run(argv, user=None, timeout=60, check=True, input=None):
    """Runs argv (as user, a pwd entry, when given) and returns the CompletedProcess."""
    if user is not None:
        argv = ["/usr/sbin/runuser", "-u", user.pw_name, "--"] + argv
    p = subprocess.run(argv, env=_env(), cwd="/", input=input, stdin=None if input is not None else subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise ClusterError(f"{' '.join(argv)} exited with {p.returncode}:\n{p.stdout}{p.stderr}")
    return p


def free_port():
    """A port of 127.0.0.1 free now (scaleout.py uses it too)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, lines=30):
    """The last lines of a log, or "(no log)" (scaleout.py uses it too)."""
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return "(no log)\n"


def _make_dir(path, user):
    """A new folder that is ours (marked) and the server user's, mode 0700."""
    os.makedirs(path, mode=0o700)
    open(os.path.join(path, MARK), "w").close()
    if user is not None:
        os.chown(path, user.pw_uid, user.pw_gid)
    os.chmod(path, 0o700)


def _remove_dir(path):
    if not os.path.exists(path):
        return
    if not os.path.exists(os.path.join(path, MARK)):
        raise ClusterError(f"{path} was not made by cluster.py (no {MARK} in it): not removing it")
    shutil.rmtree(path)


def _is_postmaster_of(pid, data):
    """Whether pid is alive and is the postmaster of data (its working folder)."""
    try:
        return os.path.realpath(os.readlink(f"/proc/{pid}/cwd")) == os.path.realpath(data)
    except OSError:
        return False


def _postmaster_pid(data):
    try:
        with open(os.path.join(data, "postmaster.pid")) as f:
            return int(f.readline())
    except (OSError, ValueError):
        return None


def _quote_conf(value):
    return "'" + value.replace("'", "''") + "'"


def _quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(text):
    return "'" + text.replace("'", "''") + "'"


def parse_conninfo(conninfo):
    """{"host": ..., "port": ..., ...} of a `key=value ...` line (no quoting)."""
    return dict(kv.split("=", 1) for kv in conninfo.split())


def psql(conninfo, sql):
    """Runs sql (statements, each in its own transaction) with psql on the
    database conninfo (a key=value line or a URI) names; returns psql's
    unaligned, tuples-only output. Raises ClusterError on an error."""
    return _run([_bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-f", "-"],
                input=sql, timeout=120).stdout


class Cluster:
    """A cluster in folder dir. start() makes and starts it, stop() ends it and
    removes dir; conninfo is the line to connect with once started.

    home is where the data (home/data), the log (home/log) and the socket
    are: dir itself, unless the server's user cannot reach dir (a checkout
    under /root) or the socket's path would be too long; then it is a new
    folder in the temp folder, named in dir/home. durable picks
    DURABLE_SETTINGS over SETTINGS."""

    def __init__(self, dir, durable=False):
        self.dir = os.path.abspath(dir)
        self.settings = DURABLE_SETTINGS if durable else SETTINGS
        self.home = self.dir
        self.conninfo = None
        self.port = None

    @classmethod
    def attach(cls, conninfo_file):
        """The cluster someone else started (cluster.py start), by its conninfo file."""
        c = cls(os.path.dirname(os.path.abspath(conninfo_file)))
        with open(conninfo_file) as f:
            c._set_conninfo(f.readline().strip())
        c.home = c._recorded_home()
        return c

    def _set_conninfo(self, conninfo):
        self.conninfo = conninfo
        self.port = int(parse_conninfo(conninfo)["port"])

    def _recorded_home(self):
        try:
            with open(os.path.join(self.dir, "home")) as f:
                return f.readline().strip() or self.dir
        except OSError:
            return self.dir

    def _home_fits(self, user):
        if len(os.path.join(self.dir, ".s.PGSQL.65535").encode()) > SUN_PATH_MAX:
            return False
        if user is None:
            return True
        return _run(["/usr/bin/test", "-w", self.dir, "-a", "-x", self.dir], user, check=False).returncode == 0

    # ---------------------------------------------------------------- start

    def start(self):
        """Makes dir and starts the cluster; returns its conninfo. A cluster
        left in dir by a killed earlier run is stopped first. On failure
        nothing is left running and dir is gone; the error has the log's tail."""
        initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
        self.stop()
        user = _server_user()
        try:
            _make_dir(self.dir, user)
            self.home = self.dir
            if not self._home_fits(user):
                self.home = tempfile.mkdtemp(prefix="crest-pg-")
                os.rmdir(self.home)
                _make_dir(self.home, user)
                with open(os.path.join(self.dir, "home"), "w") as f:
                    f.write(self.home + "\n")
            data = os.path.join(self.home, "data")
            log = os.path.join(self.home, "log")
            _run([initdb, "-D", data, "-U", "crest", "--auth=trust", "-E", "UTF8", "--locale=C",
                  "--no-sync", "--no-instructions"], user, timeout=120)
            with open(os.path.join(data, "postgresql.conf"), "a") as f:
                f.write("\n# cluster.py\n")
                for k, v in self.settings.items():
                    f.write(f"{k} = {_quote_conf(v)}\n")
                f.write(f"unix_socket_directories = {_quote_conf(self.home)}\n")
            self._start_server(pg_ctl, data, log, user)
            conninfo = f"host=127.0.0.1 port={self.port} user=crest dbname=postgres"
            tmp = os.path.join(self.dir, "conninfo.tmp")
            with open(tmp, "w") as f:
                f.write(conninfo + "\n")
            os.chmod(tmp, 0o644)
            os.rename(tmp, os.path.join(self.dir, "conninfo"))
            self._set_conninfo(conninfo)
            return conninfo
        except BaseException:
            try:
                self.stop()
            except ClusterError as e:
                print(f"cluster.py: while cleaning up: {e}", file=sys.stderr)
            raise

    def _start_server(self, pg_ctl, data, log, user):
        """Starts the server on a free port, another if that one was taken
        meanwhile, and waits until it accepts connections."""
        for _ in range(PORT_TRIES):
            port = free_port()
            if os.path.exists(log):
                os.unlink(log)
            deadline = time.monotonic() + START_TIMEOUT
            p = _run([pg_ctl, "start", "-D", data, "-l", log, "-w", "-t", str(int(START_TIMEOUT)),
                      "-o", f"-p {port}"], user, check=False, timeout=START_TIMEOUT + 30)
            if p.returncode != 0:
                text = tail(log)
                if "Address already in use" in text:
                    continue
                raise ClusterError(f"pg_ctl start failed ({p.returncode}): {p.stdout}{p.stderr}log {log}:\n{text}")
            self.port = port
            self._wait_ready(deadline, log)
            return
        raise ClusterError(f"no free port after {PORT_TRIES} tries; log {log}:\n{tail(log)}")

    def _wait_ready(self, deadline, log):
        isready = _bin("pg_isready")
        while True:
            p = _run([isready, "-q", "-h", "127.0.0.1", "-p", str(self.port), "-U", "crest", "-d", "postgres",
                      "-t", "2"], check=False)
            if p.returncode == 0:
                return
            if time.monotonic() > deadline:
                raise ClusterError(f"the server on 127.0.0.1:{self.port} did not accept connections within "
                                   f"{START_TIMEOUT:.0f} s; log {log}:\n{tail(log)}")
            time.sleep(0.1)

    # ---------------------------------------------------------------- stop

    def stop(self):
        """Stops the cluster in dir if one runs (only the process its
        postmaster.pid names, and only if that is its postmaster) and removes
        dir. Fine on a half-made, stopped or missing cluster."""
        homes = [self.dir]
        recorded = self._recorded_home()
        if recorded != self.dir:
            homes.append(recorded)
        for home in homes:
            self._stop_server(os.path.join(home, "data"))
        for home in reversed(homes):
            _remove_dir(home)
        self.conninfo = None
        self.port = None

    def _stop_server(self, data):
        pid = _postmaster_pid(data)
        if pid is None or not _is_postmaster_of(pid, data):
            return  # never started, or already gone (its pid may belong to another process now)
        user = None
        if os.geteuid() == 0:
            owner = os.stat(data).st_uid
            user = pwd.getpwuid(owner) if owner != 0 else None
        _run([_bin("pg_ctl"), "stop", "-D", data, "-m", "immediate", "-w", "-t", "30"], user, check=False, timeout=60)
        deadline = time.monotonic() + 10
        while _is_postmaster_of(pid, data):
            if time.monotonic() > deadline:
                raise ClusterError(f"the postmaster {pid} of {data} does not end")
            if _postmaster_pid(data) == pid:
                os.kill(pid, signal.SIGKILL)  # pg_ctl could not stop it
            time.sleep(0.1)

    # ---------------------------------------------------------------- outages (tests)

    def _server(self):
        """(pg_ctl's data folder, its log, the user it runs as)."""
        return os.path.join(self.home, "data"), os.path.join(self.home, "log"), _server_user()

    def halt(self, mode="fast"):
        """Stops the server and keeps the cluster, to be resumed (an outage)."""
        data, _, user = self._server()
        _run([_bin("pg_ctl"), "stop", "-D", data, "-m", mode, "-w", "-t", "30"], user, timeout=60)

    def resume(self, **settings):
        """Starts the halted server again on the same port, with extra
        server settings (name=value) for this run."""
        data, log, user = self._server()
        opts = f"-p {self.port}" + "".join(f" -c {k}={v}" for k, v in settings.items())
        _run([_bin("pg_ctl"), "start", "-D", data, "-l", log, "-w", "-t", "30", "-o", opts], user, timeout=60)
        self._wait_ready(time.monotonic() + START_TIMEOUT, log)

    def running(self):
        data, _, user = self._server()
        return _run([_bin("pg_ctl"), "status", "-D", data], user, check=False).returncode == 0

    # ---------------------------------------------------------------- SQL

    def conninfo_for(self, db):
        """The conninfo of database db on this cluster."""
        return re.sub(r"\bdbname=\S+", f"dbname={db}", self.conninfo)

    def uri_for(self, db):
        return f"postgresql://crest@127.0.0.1:{self.port}/{db}"

    def psql(self, sql, db="postgres"):
        """psql(conninfo, sql) on database db of this cluster."""
        if self.conninfo is None:
            raise ClusterError("the cluster is not started")
        return psql(self.conninfo_for(db), sql)

    def create_database(self, name):
        self.psql(f"CREATE DATABASE {_quote_ident(name)}")

    def drop_database(self, name):
        """Drops database name, ending the sessions still connected to it."""
        self.psql(f"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                  f"WHERE datname = {_quote_literal(name)};\n"
                  f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE);\n")


def main(argv):
    durable = argv[1:2] == ["start"] and argv[2:3] == ["--durable"]
    if durable:
        argv = argv[:2] + argv[3:]
    if len(argv) != 3 or argv[1] not in ("start", "stop"):
        print("usage: cluster.py start [--durable] DIR | stop DIR", file=sys.stderr)
        return 2
    c = Cluster(argv[2], durable=durable)
    try:
        if argv[1] == "start":
            print(c.start())
        else:
            c.stop()
    except (ClusterError, OSError, subprocess.TimeoutExpired) as e:
        print(f"cluster.py {argv[1]}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
