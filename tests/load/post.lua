-- wrk script: POST one JPEG to /enhance, count statuses across threads, print percentiles.
local threads = {}
local path = os.getenv("LOAD_IMAGE")
local f = assert(io.open(path, "rb"))
local image = f:read("*all")
f:close()

wrk.method = "POST"
wrk.body = image
wrk.headers["Content-Type"] = "image/jpeg"

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  statuses = {}
  bad_bodies = 0
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  if status == 200 and string.sub(body, 1, 3) ~= "\255\216\255" then
    bad_bodies = bad_bodies + 1
  end
end

function done(summary, latency, requests)
  local agg, bad = {}, 0
  for _, t in ipairs(threads) do
    for k, v in pairs(t:get("statuses")) do agg[k] = (agg[k] or 0) + v end
    bad = bad + t:get("bad_bodies")
  end
  local total = 0
  for k, v in pairs(agg) do
    io.write(string.format("STATUS %d %d\n", k, v))
    total = total + v
  end
  local e = summary.errors
  io.write(string.format("TOTAL %d\nREQS_PER_SEC %.2f\nP50_MS %.1f\nP99_MS %.1f\nBAD_BODIES %d\n",
    total, total / (summary.duration / 1e6), latency:percentile(50) / 1000, latency:percentile(99) / 1000, bad))
  io.write(string.format("SOCKET_ERRORS connect=%d read=%d write=%d timeout=%d status=%d\n",
    e.connect, e.read, e.write, e.timeout, e.status))
end
