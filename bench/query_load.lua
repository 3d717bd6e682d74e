-- wrk script: about 1,000 queries/s (10 connections, each waiting 7 ms between requests),
-- 90 % GET of a random SIM of the fleet, 10 % the fleet's data usage.
--   wrk -t1 -c10 -d10s --latency -s bench/query_load.lua http://127.0.0.1:PORT
-- Environment: ICCIDS (a file of ICCIDs, e.g. from simcap-feed --write-iccids), TOKEN, PRODUCT.
local iccids = {}
local token = os.getenv("TOKEN") or "change-me-admin"
local product = os.getenv("PRODUCT") or "acme"

function init(args)
  local f = assert(io.open(os.getenv("ICCIDS") or "config/demo-iccids.txt"))
  for line in f:lines() do iccids[#iccids + 1] = line end
  f:close()
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function delay()
  return 7
end

function request()
  local path
  if math.random() < 0.1 then
    path = "/v1/products/" .. product .. "/sims/data_usage"
  else
    path = "/v1/sims/" .. iccids[math.random(#iccids)]
  end
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. token })
end

local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write(string.format("requests/s: %.0f, p50 %.2f ms, p99 %.2f ms, non-2xx %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, summary.errors.status))
end
