-- pgbench script: what crest sends PostgreSQL for GET /tasks/{id}
-- (src/store/postgres_loop.c, seen with log_statement=all): one pipeline of
-- BEGIN READ ONLY, SET LOCAL statement_timeout (what is left of the
-- request's 5 s deadline), the prepared SELECT, COMMIT (the request's last
-- read ends its transaction: CREST__QF_LAST) and a sync: one round trip. A
-- random id in 1..100000 per transaction, like bench/tasks_get.lua. Run
-- with -M prepared.
\set id random(1, 100000)
\startpipeline
BEGIN READ ONLY;
SET LOCAL statement_timeout = 5000;
SELECT "id", "title", "is_completed", "spent_time", "created_at", "crest_version" FROM "tasks" WHERE "id" = :id;
COMMIT;
\endpipeline
