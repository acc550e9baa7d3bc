#!/usr/bin/python3
"""Fills the tasks table crest created (bench/tasks-app.yaml) for bench/run.sh.

    fill_tasks.py DB ROWS

The table must exist and be empty (run.sh starts crest once on the empty file so
crest creates it, then stops it). Inserts ROWS tasks with ids 1..ROWS in one
transaction: title 'task N', is_completed true for about half of them (random),
spent_time uniform in 0..86399 s, created_at every 5 minutes from 2025-01-01 in
crest's stored form 'YYYY-MM-DDTHH:MM:SS.sssZ'. Seeded, so every run gets the
same rows. Leaves the file checkpointed (no -wal) and prints, tab-separated,
lines run.sh copies into its raw results:
    plan <EXPLAIN QUERY PLAN of the list scenario's query>
    plan_single <the same plan with only the single-column indexes>
"""
import datetime
import random
import sqlite3
import sys

db, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(3)
base = datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)


def rows():
    for i in range(1, n + 1):
        t = base + datetime.timedelta(minutes=5 * i, milliseconds=rng.randrange(1000))
        yield (i, f"task {i}", int(rng.random() < 0.5), rng.randrange(86400),
               t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z")


c = sqlite3.connect(db, isolation_level=None, cached_statements=0)  # plans after DROP INDEX too
have = c.execute("SELECT count(*) FROM tasks").fetchone()[0]
if have:
    sys.exit(f"fill_tasks.py: {db}: the tasks table already holds {have} rows")
c.execute("BEGIN")
c.executemany("INSERT INTO tasks (id, title, is_completed, spent_time, created_at) VALUES (?, ?, ?, ?, ?)", rows())
c.execute("COMMIT")
got = c.execute("SELECT count(*), sum(is_completed = 0) FROM tasks").fetchone()
if got[0] != n:
    sys.exit(f"fill_tasks.py: {db}: {got[0]} rows after the insert, expected {n}")

# The list scenario's query as crest builds it (tests/golden/query/where_and_sort,
# plus the id tie-break crest appends in the direction of the last sort key).
query = ('SELECT "id", "title", "is_completed", "spent_time", "created_at" FROM "tasks" '
         'WHERE "is_completed" = ? ORDER BY "spent_time" DESC, "id" DESC LIMIT ? OFFSET ?')


def plan():
    return "; ".join(r[3] for r in c.execute("EXPLAIN QUERY PLAN " + query, (0, 21, 0)))


print(f"rows\t{got[0]}\t{got[1]} open (is_completed false)")
print(f"plan\t{plan()}")
composite = [r[0] for r in c.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'tasks' "
                                     "AND sql LIKE '%,%'")]
c.execute("BEGIN")  # what the query would do with only `index: true` on the fields
for name in composite:
    c.execute(f'DROP INDEX "{name}"')
print(f"plan_single\t{plan()}")
c.execute("ROLLBACK")
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.close()
