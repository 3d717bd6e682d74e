-- wrk script: queries paced at about 100/s per connection (9 ms between requests): GET of a
-- random SIM of the fleet, or the fleet's data usage, FLEET_SHARE of the time (default 0.1).
-- About 1,000 queries/s with a latency figure per route, as two wrk runs side by side:
--   FLEET_SHARE=0 wrk -t1 -c9 -d6s --latency -s bench/query_load.lua http://127.0.0.1:PORT &
--   FLEET_SHARE=1 wrk -t1 -c1 -d6s --latency -s bench/query_load.lua http://127.0.0.1:PORT
-- Environment: TOKEN, PRODUCT, and which SIMs to ask for: SIMS=N for simcap-feed's synthetic
-- fleet of N SIMs (computed here, as simcap-feed does), or ICCIDS, a file of ICCIDs (read by
-- every Lua state wrk makes: slow for big files, which is why SIMS exists).
local iccids = {}
local sims = tonumber(os.getenv("SIMS") or "0")
local token = os.getenv("TOKEN") or "change-me-admin"
local product = os.getenv("PRODUCT") or "acme"
local fleet_share = tonumber(os.getenv("FLEET_SHARE") or "0.1")

-- simcap-feed's i-th ICCID: 8901000, i zero-padded to 19 digits in all, a Luhn check digit.
local function fleet_iccid(i)
  local body = string.format("8901000%012d", i)
  local sum, double = 0, true
  for k = #body, 1, -1 do
    local d = body:byte(k) - 48
    if double then
      d = d * 2
      if d > 9 then d = d - 9 end
    end
    sum = sum + d
    double = not double
  end
  return body .. tostring((10 - sum % 10) % 10)
end

local function random_iccid()
  if sims > 0 then return fleet_iccid(math.random(0, sims - 1)) end
  return iccids[math.random(#iccids)]
end

function init(args)
  if sims == 0 and fleet_share < 1 then
    local f = assert(io.open(os.getenv("ICCIDS") or "config/demo-iccids.txt"))
    for line in f:lines() do iccids[#iccids + 1] = line end
    f:close()
  end
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end

function delay()
  return 9
end

function request()
  local path
  if math.random() < fleet_share then
    path = "/v1/products/" .. product .. "/sims/data_usage"
  else
    path = "/v1/sims/" .. random_iccid()
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
