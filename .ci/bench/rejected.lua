-- A create that authentication or authorization rejects: a checksum-broken
-- key (401, no store access) or the publishable key (403, after a store lookup).
-- wrk ... -s .ci/bench/rejected.lua URL -- TOKEN ACCOUNT
dofile(".ci/bench/report.lua")

function init(args)
   wrk.method = "POST"
   wrk.path = "/v1/api-keys/?account_id=" .. args[2]
   wrk.body = '{"name":"rejected","permissions":{"payment":["read"]}}'
   wrk.headers["Authorization"] = "Bearer " .. args[1]
   wrk.headers["Content-Type"] = "application/json"
end
