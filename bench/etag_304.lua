-- wrk script of the etag_304 scenario (bench/etag.sh): GET /tasks/12345 with
-- If-None-Match naming the ETag the first answer gave, so every later
-- answer is a 304 (bench/etag.sh's check_etag proves it before the load).
local tag = nil

request = function()
  if tag then
    return wrk.format("GET", "/tasks/12345", {["If-None-Match"] = tag})
  end
  return wrk.format("GET", "/tasks/12345")
end

response = function(status, headers, body)
  if status == 200 and not tag then
    tag = headers["ETag"]
  end
end
