#!/usr/bin/python3
"""Fills the person and computer tables crest created (bench/people-app.yaml)
for bench/relations.sh.

    fill_people.py DB PEOPLE PER                      # a SQLite file
    fill_people.py --postgres CONNINFO PEOPLE PER     # a PostgreSQL database (psql)

The tables must exist and be empty (relations.sh starts crest once on the empty
database so crest creates them, with their indexes, then stops it). Inserts
PEOPLE people with ids 1..PEOPLE, named 'person N' (unique, so bench/people_where.lua
can draw an existing name from N alone), ages 18..90, and PER computers each
(ids 1..PEOPLE*PER, computer k of person p has id (p-1)*PER+k, 'pc p-k', a vendor
of five), in one transaction (PostgreSQL: one COPY per table, then the id
sequences set past them, VACUUM ANALYZE and a CHECKPOINT). Seeded: every run and
both databases get the same rows. Leaves a SQLite file checkpointed (no -wal)
and prints, tab-separated, lines relations.sh copies into its raw results:
    rows <people> <computers>
    plan_<scenario> <EXPLAIN QUERY PLAN of each statement crest sends>  (SQLite)
    pg_plan_<scenario> <EXPLAIN of each statement, prepared>            (PostgreSQL)
"""
import io
import random
import sqlite3
import sys

from psql_run import run as psql

VENDORS = ["Dell", "Lenovo", "HP", "Apple", "Asus"]

# The statements crest sends for each scenario, as PostgreSQL's log shows them
# (log_statement=all; `?` for a bind here), with the binds of page 250 and of
# person 1234: list, GET /people?page_size=20&page=N: the count, then the page;
# include, the same with include=computers: the count, the page, then one
# statement for the embedded rows of the whole page (the parents' ids as one
# array bind on PostgreSQL, a list of binds on SQLite); where, GET
# /computers?where={"owner.name": …}: the count, then the page.
PAGE_IDS = list(range(4981, 5001))
COUNT_PEOPLE = ('SELECT count(*) FROM "person" WHERE TRUE', [])
PAGE_PEOPLE = ('SELECT "id", "name", "age" FROM "person" WHERE TRUE ORDER BY "id" LIMIT ? OFFSET ?', [20, 4980])
EMBED = ('SELECT * FROM (SELECT "id", "name", "vendor", "owner_id", ROW_NUMBER() OVER (PARTITION BY "owner_id" '
         'ORDER BY "id") AS "_crest_rn" FROM "computer" WHERE ("owner_id" IN_KEYS)) AS "_crest_e" '
         'WHERE "_crest_rn" <= ? ORDER BY "owner_id", "_crest_rn"')
WHERE = 'FROM "computer" WHERE "owner_id" IN (SELECT "id" FROM "person" WHERE "name" = ?)'
PLANS = {
    "list": [COUNT_PEOPLE, PAGE_PEOPLE],
    "include": [COUNT_PEOPLE, PAGE_PEOPLE, "embed"],
    "where": [(f"SELECT count(*) {WHERE}", ["person 1234"]),
              (f'SELECT "id", "name", "vendor", "owner_id" {WHERE} ORDER BY "id" LIMIT ? OFFSET ?',
               ["person 1234", 20, 0])],
}


def statements(scen, postgres):
    """The scenario's statements in the store's dialect: (sql with ? binds, binds)."""
    for st in PLANS[scen]:
        if st != "embed":
            yield st
        elif postgres:
            yield EMBED.replace("IN_KEYS", "= ANY(?)"), ["{" + ",".join(map(str, PAGE_IDS)) + "}", 101]
        else:
            yield EMBED.replace("IN_KEYS", "IN (" + ", ".join("?" * len(PAGE_IDS)) + ")"), PAGE_IDS + [101]


def people(n):
    rng = random.Random(13)
    for i in range(1, n + 1):
        yield (i, f"person {i}", 18 + rng.randrange(73))


def computers(n, per):
    rng = random.Random(31)
    for p in range(1, n + 1):
        for k in range(1, per + 1):
            yield ((p - 1) * per + k, f"pc {p}-{k}", VENDORS[rng.randrange(len(VENDORS))], p)


def csv(rows):
    buf = io.StringIO()
    for r in rows:
        buf.write(",".join(str(x) for x in r) + "\n")
    return buf.getvalue()


def fill_postgres(conninfo, n, per):
    have = psql(conninfo, "SELECT (SELECT count(*) FROM person) + (SELECT count(*) FROM computer)").strip()
    if have != "0":
        sys.exit(f"fill_people.py: {conninfo}: the tables already hold {have} rows")
    psql(conninfo, "COPY person (id, name, age) FROM STDIN (FORMAT csv)", csv(people(n)))
    psql(conninfo, "COPY computer (id, name, vendor, owner_id) FROM STDIN (FORMAT csv)", csv(computers(n, per)))
    psql(conninfo, "SELECT setval(pg_get_serial_sequence('person', 'id'), (SELECT max(id) FROM person));\n"
                   "SELECT setval(pg_get_serial_sequence('computer', 'id'), (SELECT max(id) FROM computer));\n"
                   "VACUUM ANALYZE person;\nVACUUM ANALYZE computer;\nCHECKPOINT;\n")
    got = psql(conninfo, "SELECT (SELECT count(*) FROM person), (SELECT count(*) FROM computer)").strip().split("|")
    if got != [str(n), str(n * per)]:
        sys.exit(f"fill_people.py: {conninfo}: {got} rows after the COPY, expected {n} and {n * per}")
    print(f"rows\t{got[0]}\t{got[1]}")
    for scen in PLANS:
        shown = []
        for sql, binds in statements(scen, True):
            i = 0
            while "?" in sql:
                i += 1
                sql = sql.replace("?", f"${i}", 1)
            args = ", ".join(f"'{b}'" if isinstance(b, str) else str(b) for b in binds)
            plan = psql(conninfo, f"PREPARE q AS {sql};\nEXPLAIN EXECUTE q{f'({args})' if binds else ''};\n"
                                  "DEALLOCATE q;\n")
            shown.append(" ".join(line.strip() for line in plan.splitlines() if line.strip()))
        print(f"pg_plan_{scen}\t" + " | ".join(shown))


if len(sys.argv) == 5 and sys.argv[1] == "--postgres":
    fill_postgres(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    sys.exit(0)
if len(sys.argv) != 4:
    sys.exit(__doc__)

db, n, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
c = sqlite3.connect(db, isolation_level=None)
have = c.execute("SELECT (SELECT count(*) FROM person) + (SELECT count(*) FROM computer)").fetchone()[0]
if have:
    sys.exit(f"fill_people.py: {db}: the tables already hold {have} rows")
c.execute("BEGIN")
c.executemany("INSERT INTO person (id, name, age) VALUES (?, ?, ?)", people(n))
c.executemany("INSERT INTO computer (id, name, vendor, owner_id) VALUES (?, ?, ?, ?)", computers(n, per))
c.execute("COMMIT")
got = c.execute("SELECT (SELECT count(*) FROM person), (SELECT count(*) FROM computer)").fetchone()
if got != (n, n * per):
    sys.exit(f"fill_people.py: {db}: {got} rows after the insert, expected {n} and {n * per}")
print(f"rows\t{got[0]}\t{got[1]}")
for scen in PLANS:
    shown = ["; ".join(r[3] for r in c.execute("EXPLAIN QUERY PLAN " + sql, binds))
             for sql, binds in statements(scen, False)]
    print(f"plan_{scen}\t" + " | ".join(shown))
c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
c.close()
