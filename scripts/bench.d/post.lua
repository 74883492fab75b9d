-- POST /api/v1/things with a distinct body each time.
local counter = 0
local thread_tag = tostring({}):sub(8)
request = function()
  counter = counter + 1
  local body = '{"type":"device","name":{"default":"Bench device ' .. thread_tag .. '-' .. counter .. '","translations":{"es":"Aparato"}},"manufacturer":{"name":"Bench"},"properties":{"materials":["steel"]}}'
  return wrk.format("POST", "/api/v1/things", {["Content-Type"] = "application/json"}, body)
end
