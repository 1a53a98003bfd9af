-- wrk script: POST /v1/ping with varied bodies read from a file, one JSON body a line.
local bodies = {}
local counter = 0

function init(args)
  for line in io.lines(args[1]) do
    bodies[#bodies + 1] = line
  end
  -- each wrk thread starts at another place in the fleet
  counter = math.random(#bodies)
end

function request()
  counter = counter % #bodies + 1
  return wrk.format("POST", "/v1/ping", {["Content-Type"] = "application/json"}, bodies[counter])
end
