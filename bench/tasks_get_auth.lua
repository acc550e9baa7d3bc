-- wrk script: bench/tasks_get.lua's requests (GET /tasks/{id}, a random id in
-- 1..100000 per request) with `Authorization: Bearer <token>` on every one.
-- bench/run.sh makes the token (crest token bench/tasks-auth-app.yaml) and
-- passes it in the environment variable BENCH_AUTH_TOKEN.
local token = os.getenv("BENCH_AUTH_TOKEN")
if token == nil or token == "" then
  error("BENCH_AUTH_TOKEN is not set: bench/run.sh passes the bearer token in it")
end
wrk.headers["Authorization"] = "Bearer " .. token

-- The same request function as the unauthenticated scenario, from the file
-- next to this one.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
dofile(here .. "tasks_get.lua")
