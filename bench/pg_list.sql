-- pgbench script: what crest sends PostgreSQL for the list scenario,
-- GET /tasks?where={"is_completed":false}&sort_by=-spent_time&page_size=20&count=none
-- (the planner's SQL, tests/golden/query; seen with log_statement=all): the
-- shape of bench/pg_get.sql, the page of 20 plus one row to tell has_more.
-- -D is_completed=f (bound as a parameter, as crest binds it). Run with -M prepared.
\set limit 21
\set offset 0
\startpipeline
BEGIN READ ONLY;
SET LOCAL statement_timeout = 5000;
SELECT "id", "title", "is_completed", "spent_time", "created_at" FROM "tasks" WHERE "is_completed" = :is_completed ORDER BY "spent_time" DESC, "id" DESC LIMIT :limit OFFSET :offset;
COMMIT;
\endpipeline
