-- wrk script: the URL's path and query (GET /tasks?page_size=50&count=none)
-- plus the query bench/cursor.sh's check_cursor wrote for the scenario
-- ("&page=N" or "&cursor=..."), read once when wrk loads the script.
local f = assert(io.open(os.getenv("CREST_BENCH_CURSOR_FILE"), "r"))
local extra = f:read("*l")
f:close()

request = function()
  return wrk.format("GET", wrk.path .. extra)
end
