-- wrk request generator for stack/bench/load.py's look-ups and reads, which prepends `token`
-- and `paths` (the GET paths to spread requests over, picked at random).
function init(args)
  math.randomseed(os.time() * 1000 + math.random(1000000))
end

function request()
  local headers = { ["authorization"] = "Bearer " .. token }
  return wrk.format("GET", paths[math.random(#paths)], headers, nil)
end
