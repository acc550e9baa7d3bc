"""pytest fixtures for tests that need PostgreSQL: the cluster and a fresh database per test.

pg_cluster (session): the cluster CTest's fixture started (tests/pg, file
named by CREST_TEST_PG_FILE) or, when that is not set (`pytest test_x.py`
alone), one started here in a temp folder and stopped at the session's end.
pg_db (test): a new database on it, dropped after the test with whatever
sessions are still connected to it. Registered in conftest.py.
"""
import contextlib
import itertools
import os
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "pg"))
import cluster as pgcluster  # noqa: E402  (tests/pg/cluster.py)

_serial = itertools.count(1)


class PgDb:
    """One database of the cluster: name, conninfo (a libpq key=value line),
    uri (postgresql://crest@127.0.0.1:PORT/NAME) and psql(sql)."""

    def __init__(self, cluster, name):
        self.cluster = cluster
        self.name = name
        self.conninfo = cluster.conninfo_for(name)
        self.uri = cluster.uri_for(name)

    def psql(self, sql):
        return self.cluster.psql(sql, db=self.name)


@contextlib.contextmanager
def fresh_database(cluster):
    """A database made for the block and dropped after it (sessions and all)."""
    name = f"crest_t{os.getpid()}_{next(_serial)}"
    cluster.create_database(name)
    try:
        yield PgDb(cluster, name)
    finally:
        cluster.drop_database(name)


@contextlib.contextmanager
def throwaway_cluster(prefix):
    """A cluster of its own, started in a temp folder for the block, then
    stopped and removed (also when the block fails)."""
    top = tempfile.mkdtemp(prefix=prefix)
    os.chmod(top, 0o711)  # reachable by the server's user when we are root (cluster.py)
    c = pgcluster.Cluster(os.path.join(top, "cluster"))
    try:
        c.start()
        yield c
    finally:
        try:
            c.stop()
        finally:
            os.rmdir(top)


@pytest.fixture(scope="session")
def pg_cluster():
    path = os.environ.get("CREST_TEST_PG_FILE")
    if path:
        try:
            c = pgcluster.Cluster.attach(path)
        except OSError as e:
            pytest.fail(f"CREST_TEST_PG_FILE={path}: {e} (did the pg.start test fail?)")
        yield c
        return
    with throwaway_cluster("crest-pgtest-") as c:
        yield c


@pytest.fixture
def pg_db(pg_cluster):
    with fresh_database(pg_cluster) as db:
        yield db
