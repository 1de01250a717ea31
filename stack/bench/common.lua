-- Appended by the Python drivers to every wrk script (checkout.lua, reserve.lua, till_get.lua).
--
-- Think time: with `think_ms` > 0 (set by the driver) each connection pauses before each
-- request for an exponentially distributed time with that mean, as a till's cashier does
-- between scans; wrk's latency clock starts when the request is sent, so the pause is not
-- counted. With 0 (the default) connections send back to back: a closed loop that measures
-- the most the stack can do, where latency is the queue in front of it (Little's law).
think_ms = think_ms or 0

-- A random shop and three different products of it.
function three_products()
  local shop = shops[math.random(#shops)]
  local products = shop.products
  local n = #products
  local a = math.random(n)
  local b = (a + math.random(n - 1) - 1) % n + 1
  local c = b
  while c == a or c == b do c = math.random(n) end
  return shop, products[a], products[b], products[c]
end

function delay()
  if think_ms <= 0 then return 0 end
  return math.floor(-think_ms * math.log(1 - math.random()))
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"seconds":%.3f,"requests":%d,"errors":%d,"p50":%d,"p99":%d,"p999":%d,"max":%d}\n',
    summary.duration / 1e6, summary.requests, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
