-- pgbench script: what crest sends PostgreSQL for POST /tasks
-- {"title":"bench","spent_time":N} (seen with log_statement=all). Writes run
-- off the event loop on a blocking connection, one round trip a statement:
-- SET statement_timeout (what is left of the request's 5 s deadline) before
-- the transaction and before each statement, the INSERT, the new row read
-- back, COMMIT. spent_time random in 0..86399 like bench/tasks_post.lua;
-- -D title=bench -D is_completed=f -D created_at=<the run's start, ISO 8601>
-- (crest binds the time of the request). Run with -M prepared.
\set spent_time random(0, 86399)
SET statement_timeout = 5000;
BEGIN;
SET statement_timeout = 5000;
INSERT INTO "tasks" ("title", "is_completed", "spent_time", "created_at", "crest_version") VALUES (:title, :is_completed, :spent_time, :created_at, (floor(random() * 4503599627370496)::bigint)) RETURNING "id" \gset
SET statement_timeout = 5000;
SELECT "id", "title", "is_completed", "spent_time", "created_at", "crest_version" FROM "tasks" WHERE "id" = :id;
COMMIT;
