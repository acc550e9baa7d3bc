-- wrk script: POST /tasks, always the same body with the same
-- Idempotency-Key: the first request creates the row, every other one gets
-- its answer again (Idempotent-Replayed: true) without a write.
-- (the scenario's path is GET /tasks/1, for run.sh's sample request)
wrk.method = "POST"
wrk.path = "/tasks"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Idempotency-Key"] = "bench-replay"
wrk.body = '{"title":"bench","spent_time":1}'
