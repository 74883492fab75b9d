-- GET /api/v1/search with queries drawn from a list: common words (a few percent of all
-- things each), maker + device, model codes, other languages and scripts.
local queries = {"kettle", "coffee%20machine", "toaster", "lamp%20lumo", "radio%20soundhouse", "cafetera", "kaffeemaschine",
  "%E3%82%B1%E3%83%88%E3%83%AB", "%E6%8E%83%E9%99%A4%E6%A9%9F", "sewing", "drill%20voltix", "secador", "laptop", "ba-5", "fjord%20fan",
  "soldering%20iron", "n%C3%A4hmaschine", "headphones%20orion", "charger", "microwave%20tanaka"}
math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 1000)
request = function() return wrk.format("GET", "/api/v1/search?q=" .. queries[math.random(#queries)] .. "&limit=20") end
