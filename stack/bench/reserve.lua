-- wrk request generator for stack/bench/checkout.py's reservation cells, which prepends
-- `token` and `shops` ({id, products, customers} each). Each request: reserve three of a
-- shop's products, one each, for 5 s (the holds expire; each product has a million units),
-- straight at stock through nginx, as a till's "hold these" does.
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() * 1000 + tid)
end

function request()
  local shop, a, b, c = three_products()
  local body = string.format(
    '{"shopId":"%s","lines":[{"productId":"%s","quantity":1},{"productId":"%s","quantity":1},' ..
    '{"productId":"%s","quantity":1}],"ttlSeconds":5}',
    shop.id, a, b, c)
  local headers = {
    ["content-type"] = "application/json",
    ["authorization"] = "Bearer " .. token,
  }
  return wrk.format("POST", "/stock/reservations", headers, body)
end
