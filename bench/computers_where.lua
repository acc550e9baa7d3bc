-- wrk script: GET /computers?where={"owner.name":"person N"} (URL-encoded)
-- with N a random existing person in 1..10000 per request (bench/run.sh fills
-- 10,000 people named 'person 1' to 'person 10000', 5 computers each).
math.randomseed(os.time())   -- once per wrk thread, when it loads the script

request = function()
  return wrk.format("GET", "/computers?where=%7B%22owner.name%22%3A%22person%20" .. math.random(1, 10000) .. "%22%7D")
end
