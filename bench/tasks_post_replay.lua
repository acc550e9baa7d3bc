-- wrk script: POST /tasks, always the same body with the same
-- Idempotency-Key: the first request creates the row, every other one gets
-- its answer again (Idempotent-Replayed: true) without a write.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Idempotency-Key"] = "bench-replay"
wrk.body = '{"title":"bench","spent_time":1}'
