-- wrk script: GET /tasks/{id} with a random id in 1..100000 per request
-- (bench/run.sh fills the tasks table with exactly those ids).
local seeded = false

request = function()
  if not seeded then
    math.randomseed(os.time())
    seeded = true
  end
  return wrk.format("GET", "/tasks/" .. math.random(1, 100000))
end
