-- wrk script: the URL's path and query (GET /people?page_size=20, or with
-- include=computers) plus &page=N, a random page in 1..500 per request
-- (bench/run.sh fills 10,000 people: 500 pages of 20).
math.randomseed(os.time())   -- once per wrk thread, when it loads the script

request = function()
  return wrk.format("GET", wrk.path .. "&page=" .. math.random(1, 500))
end
