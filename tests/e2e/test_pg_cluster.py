"""The tests' PostgreSQL cluster itself (tests/pg/cluster.py, the pg_cluster
and pg_db fixtures of pg.py): where it answers, as whom, and that each test's
database is its own and is gone afterwards; and the durable cluster of
cluster.py start --durable (bench/run.sh's)."""
import os
import subprocess
import sys
import tempfile
import time

import pytest

from pg import fresh_database, pgcluster


def _listening(port):
    """The local addresses of the sockets listening on TCP port, from /proc/net."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.readlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            addr, p = local.split(":")
            if state == "0A" and int(p, 16) == port:
                found.append(addr)
    return found


def test_it_is_ctests_cluster_when_ctest_names_one(pg_cluster):
    path = os.environ.get("CREST_TEST_PG_FILE")
    if not path:
        pytest.skip("run alone: the cluster is this session's own")
    with open(path) as f:
        assert pg_cluster.conninfo == f.readline().strip()
    assert pg_cluster.dir == os.path.dirname(path)


def test_it_answers_over_tcp_on_127_0_0_1(pg_cluster):
    assert pg_cluster.conninfo == f"host=127.0.0.1 port={pg_cluster.port} user=crest dbname=postgres"
    out = pg_cluster.psql("SELECT 1, inet_server_addr(), current_user")
    assert out.strip() == "1|127.0.0.1|crest"


def test_it_answers_on_the_socket_in_its_folder(pg_cluster):
    folder = pg_cluster.psql("SHOW unix_socket_directories").strip()
    assert os.path.realpath(folder) == os.path.realpath(pg_cluster.home)
    assert os.path.exists(os.path.join(folder, f".s.PGSQL.{pg_cluster.port}"))
    out = pgcluster.psql(f"host={folder} port={pg_cluster.port} user=crest dbname=postgres",
                         "SELECT 1, inet_server_addr() IS NULL")
    assert out.strip() == "1|t"  # no server address: a Unix socket


def test_it_listens_on_127_0_0_1_only(pg_cluster):
    assert pg_cluster.psql("SHOW listen_addresses").strip() == "127.0.0.1"
    assert _listening(pg_cluster.port) == ["0100007F"]  # 127.0.0.1, little-endian hex


def test_the_server_is_not_root(pg_cluster):
    data = pg_cluster.psql("SHOW data_directory").strip()
    with open(os.path.join(data, "postmaster.pid")) as f:
        pid = int(f.readline())
    assert os.path.realpath(os.readlink(f"/proc/{pid}/cwd")) == os.path.realpath(data)
    with open(f"/proc/{pid}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert "0" not in uids, uids
    assert os.stat(data).st_uid != 0


# Two tests in a row: the second sees the first's database, and it is gone.
_seen = []


def test_pg_db_is_a_fresh_database(pg_db, pg_cluster):
    assert pg_db.conninfo == f"host=127.0.0.1 port={pg_cluster.port} user=crest dbname={pg_db.name}"
    assert pg_db.uri == f"postgresql://crest@127.0.0.1:{pg_cluster.port}/{pg_db.name}"
    assert pg_db.psql("SELECT current_database(), count(*) FROM pg_class WHERE relname = 't'").strip() \
        == f"{pg_db.name}|0"
    pg_db.psql("CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1), (2);")
    assert pgcluster.psql(pg_db.uri, "SELECT count(*) FROM t").strip() == "2"
    _seen.append(pg_db.name)


def test_pg_db_is_another_database_and_the_last_is_gone(pg_db, pg_cluster):
    if not _seen:
        pytest.skip("runs after test_pg_db_is_a_fresh_database")
    assert pg_db.name != _seen[0]
    names = pg_cluster.psql("SELECT datname FROM pg_database").split()
    assert pg_db.name in names
    assert _seen[0] not in names
    assert pg_db.psql("SELECT count(*) FROM pg_class WHERE relname = 't'").strip() == "0"


def test_a_database_is_dropped_with_sessions_still_on_it(pg_cluster):
    with fresh_database(pg_cluster) as a, fresh_database(pg_cluster) as b:
        assert a.name != b.name
        # A session that would outlive the test: it is ended by the drop.
        held = subprocess.Popen(["/usr/lib/postgresql/15/bin/psql", "-X", "-q", "-d", a.conninfo,
                                 "-c", "SELECT pg_sleep(60)"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 15
            while pg_cluster.psql(f"SELECT count(*) FROM pg_stat_activity WHERE datname = '{a.name}'").strip() == "0":
                assert time.monotonic() < deadline, "the held session never showed up"
                time.sleep(0.05)
        except BaseException:
            held.kill()
            raise
    try:
        assert held.wait(timeout=15) != 0  # its backend was terminated
    finally:
        if held.poll() is None:
            held.kill()
    names = pg_cluster.psql("SELECT datname FROM pg_database").split()
    assert a.name not in names and b.name not in names


_SYNC_SETTINGS = "SELECT current_setting('fsync') || current_setting('synchronous_commit') " \
                 "|| current_setting('full_page_writes')"


def test_the_tests_cluster_does_not_sync(pg_cluster):
    assert pg_cluster.psql(_SYNC_SETTINGS).strip() == "offoffoff"


def test_a_durable_cluster_syncs_every_commit():
    """`cluster.py start --durable DIR`, bench/run.sh's cluster: PostgreSQL's durable settings."""
    top = tempfile.mkdtemp(prefix="crest-pgdurable-")
    os.chmod(top, 0o711)  # reachable by the server's user when we are root
    folder = os.path.join(top, "cluster")
    try:
        start = subprocess.run([sys.executable, pgcluster.__file__, "start", "--durable", folder],
                               capture_output=True, text=True, timeout=120)
        assert start.returncode == 0, start.stderr
        conninfo = start.stdout.strip()
        with open(os.path.join(folder, "conninfo")) as f:
            assert f.readline().strip() == conninfo
        assert pgcluster.psql(conninfo, _SYNC_SETTINGS).strip() == "ononon"
    finally:
        stop = subprocess.run([sys.executable, pgcluster.__file__, "stop", folder],
                              capture_output=True, text=True, timeout=120)
        os.rmdir(top)
    assert stop.returncode == 0, stop.stderr
    assert not os.path.exists(folder)
