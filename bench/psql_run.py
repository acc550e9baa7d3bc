"""psql for the benchmark's fill scripts (bench/fill_tasks.py, bench/fill_people.py):
one function, run(), that sends SQL (or a COPY's data) to a PostgreSQL database
with PostgreSQL 15's psql and ends the calling script with psql's message when
it fails."""
import os
import subprocess
import sys

PSQL = "/usr/lib/postgresql/15/bin/psql"


def run(conninfo, sql, data=None):
    """psql's unaligned, tuples-only output of sql (with COPY FROM STDIN: data on stdin)."""
    argv = [PSQL, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", conninfo]
    argv += ["-c", sql] if data is not None else ["-f", "-"]
    p = subprocess.run(argv, input=data if data is not None else sql, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"{os.path.basename(sys.argv[0])}: psql: {p.stderr.strip()}")
    return p.stdout
