-- wrk script: POST /tasks, one new task per request:
-- {"title":"bench","spent_time":N} with a random N in 0..86399.
local seeded = false

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

request = function()
  if not seeded then
    math.randomseed(os.time())
    seeded = true
  end
  local body = '{"title":"bench","spent_time":' .. math.random(0, 86399) .. '}'
  return wrk.format(nil, "/tasks", nil, body)
end
