-- wrk script: POST /tasks with a new Idempotency-Key per request (every
-- request claims its key and records its answer): {"title":"bench",
-- "spent_time":N}, N random in 0..86399.
local seeded = false
local n = 0
local tag

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  if not seeded then
    math.randomseed(os.time())
    seeded = true
    tag = os.time() .. "-" .. math.random(0, 1000000000)
  end
  n = n + 1
  local body = '{"title":"bench","spent_time":' .. math.random(0, 86399) .. '}'
  -- (headers given to wrk.format replace wrk.headers: Content-Type again)
  return wrk.format(nil, "/tasks", {["Content-Type"] = "application/json",
                                    ["Idempotency-Key"] = "bench-" .. tag .. "-" .. n}, body)
end
