-- wrk script: cycles requests over the paths <prefix>0 .. <prefix><count - 1>.
-- Arguments: method, prefix, count, and for PUT the body size in bytes.
local method, prefix, count
local counter = 0

function init(args)
  method = args[1]
  prefix = args[2]
  count = tonumber(args[3])
  if method == "PUT" then
    wrk.body = string.rep("b", tonumber(args[4]))
  end
  -- Threads start at different offsets so they do not write the same key in step.
  counter = math.random(count) - 1
end

function request()
  counter = (counter + 1) % count
  if method == "PUT" then
    return wrk.format("PUT", prefix .. counter, nil, wrk.body)
  end
  return wrk.format("GET", prefix .. counter)
end
