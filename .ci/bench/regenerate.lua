-- POST /v1/api-keys/{id}/regenerate of the managed publishable key, authenticated
-- with the managed secret key (which stays valid throughout).
-- wrk ... -s .ci/bench/regenerate.lua URL -- SECRET_TOKEN PUBLISHABLE_KEY_ID
dofile(".ci/bench/report.lua")

function init(args)
   wrk.method = "POST"
   wrk.path = "/v1/api-keys/" .. args[2] .. "/regenerate"
   wrk.body = "{}"
   wrk.headers["Authorization"] = "Bearer " .. args[1]
   wrk.headers["Content-Type"] = "application/json"
end
