-- GET /api/v1/things/{id} with ids drawn at random from IDS_FILE.
local ids = {}
for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
request = function() return wrk.format("GET", "/api/v1/things/" .. ids[math.random(#ids)]) end
