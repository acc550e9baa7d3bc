"""Scale-out: several crest processes on one PostgreSQL database."""
import os

from pg import fresh_database

APP_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples", "scaleout", "app.yaml")


def test_processes_started_together_on_a_new_database_all_serve_no_duplicate_key_pg_type(crest, pg_cluster):
    """Regression: crest processes started at once on a new database raced
    to make the same tables, and all but one stopped with "duplicate key
    value violates unique constraint pg_type_typname_nsp_index" (4 rounds
    of 5 with 3 processes). Start-up now runs one process at a time."""
    with open(APP_FILE) as f:
        app = f.read()
    for _ in range(3):
        with fresh_database(pg_cluster) as db:
            procs = [crest(app, env={"CREST_DATABASE": db.uri}, wait=False) for _ in range(3)]
            for s in procs:
                s.wait_listening()
                assert s.get("/readyz").status_code == 200
            for s in procs:
                assert s.stop() == 0, s.stderr_text()
