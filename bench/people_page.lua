-- wrk script: the URL's path and query (GET /people?page_size=20, or with
-- include=computers) plus &page=N, a random page in 1..500 per request
-- (bench/run.sh fills 10,000 people: 500 pages of 20).
local seeded = false

request = function()
  if not seeded then
    math.randomseed(os.time())
    seeded = true
  end
  return wrk.format("GET", wrk.path .. "&page=" .. math.random(1, 500))
end
