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
  local shop, a, b, c = three_products()
  local body = string.format(
    '{"shopId":"%s","customerId":"%s","items":[{"productId":"%s","quantity":1},' ..
    '{"productId":"%s","quantity":1},{"productId":"%s","quantity":1}],' ..
    '"payments":[{"method":"WALLET","amount":"10.00"},{"method":"CASH","amount":"25.00"}],' ..
    '"sendReceiptEmail":false}',
    shop.id, shop.customers[math.random(#shop.customers)], a, b, c)
  local headers = {
    ["content-type"] = "application/json",
    ["authorization"] = "Bearer " .. token,
    ["idempotency-key"] = string.format("bench-%s-%d-%d", run, tid, counter),
  }
  return wrk.format("POST", nil, headers, body)
end
