-- wrk request generator for stack/bench/checkout.py, which prepends `token`, `run` and
-- `shops` ({id, products, customers} each). Each request: a shop, three of its products, one
-- of its customers, 10.00 from the wallet and 25.00 cash, and an Idempotency-Key of its own.
local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + tid)
  -- Keys of their own in every wrk run (the warm-up runs the same script).
  run = string.format("%s-%d-%d", run, os.time(), math.random(1000000000))
end

function request()
  counter = counter + 1
  local shop = shops[math.random(#shops)]
  local products = shop.products
  local n = #products
  local a = math.random(n)
  local b = (a + math.random(n - 1) - 1) % n + 1
  local c = b
  while c == a or c == b do c = math.random(n) end
  local body = string.format(
    '{"shopId":"%s","customerId":"%s","items":[{"productId":"%s","quantity":1},' ..
    '{"productId":"%s","quantity":1},{"productId":"%s","quantity":1}],' ..
    '"payments":[{"method":"WALLET","amount":"10.00"},{"method":"CASH","amount":"25.00"}],' ..
    '"sendReceiptEmail":false}',
    shop.id, shop.customers[math.random(#shop.customers)], products[a], products[b], products[c])
  local headers = {
    ["content-type"] = "application/json",
    ["authorization"] = "Bearer " .. token,
    ["idempotency-key"] = string.format("bench-%s-%d-%d", run, tid, counter),
  }
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"seconds":%.3f,"requests":%d,"errors":%d,"p50":%d,"p99":%d,"p999":%d,"max":%d}\n',
    summary.duration / 1e6, summary.requests, e.connect + e.read + e.write + e.status + e.timeout,
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9), latency.max))
end
