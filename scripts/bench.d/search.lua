-- GET /api/v1/search with queries drawn from a list (several languages and scripts).
local queries = {"coffee", "kettle", "toaster%20123", "vacuum", "lamp", "radio", "maquina", "kaffeemaschine", "%E3%82%B1%E3%83%88%E3%83%AB", "sewing", "drill%204", "secador", "laptop"}
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
request = function() return wrk.format("GET", "/api/v1/search?q=" .. queries[math.random(#queries)] .. "&limit=20") end
