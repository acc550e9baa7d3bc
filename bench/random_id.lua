-- wrk script: GET /items/{id} with a random id in 1..100000 per request
-- (the SQL scenario's table holds exactly those ids).
local seeded = false

request = function()
  if not seeded then
    math.randomseed(os.time())
    seeded = true
  end
  return wrk.format("GET", "/items/" .. math.random(1, 100000))
end
