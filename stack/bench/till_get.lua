-- wrk request generator for stack/bench/load.py's look-ups and reads, which prepends `token`
-- and `paths` (the GET paths to spread requests over, picked at random).
function init(args)
  math.randomseed(os.time() * 1000 + math.random(1000000))
end

function request()
  local headers = { ["authorization"] = "Bearer " .. token }
  return wrk.format("GET", paths[math.random(#paths)], headers, nil)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"seconds":%.3f,"requests":%d,"errors":%d,"p50":%d,"p99":%d,"p999":%d,"max":%d}\n',
    summary.duration / 1e6, summary.requests, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
