-- wrk script of the etag_200 scenario (bench/etag.sh): GET /tasks/12345 with
-- no If-None-Match, the 200 that etag_304 is divided by. It reads each
-- answer's ETag like etag_304.lua does, so both pay for wrk's response
-- callback and differ only in the header sent.
local tag = nil

request = function()
  return wrk.format("GET", "/tasks/12345")
end

response = function(status, headers, body)
  if status == 200 then
    tag = headers["ETag"]
  end
end
