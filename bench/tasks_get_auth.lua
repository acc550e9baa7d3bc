-- wrk script: GET /tasks/{id} with a random id in 1..100000 per request, like
-- bench/tasks_get.lua, with `Authorization: Bearer <token>` on every request.
-- bench/run.sh makes the token (crest token bench/tasks-auth-app.yaml) and
-- passes it in the environment variable BENCH_AUTH_TOKEN.
local token = os.getenv("BENCH_AUTH_TOKEN")
if token == nil or token == "" then
  error("BENCH_AUTH_TOKEN is not set: bench/run.sh passes the bearer token in it")
end
wrk.headers["Authorization"] = "Bearer " .. token

local seeded = false

request = function()
  if not seeded then
    math.randomseed(os.time())
    seeded = true
  end
  return wrk.format("GET", "/tasks/" .. math.random(1, 100000))
end
