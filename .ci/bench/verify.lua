-- POST /v1/api-keys/verify of a valid key (a custom key created in load.sh's
-- pre-flight), with the managed secret key as the caller.
-- wrk ... -s .ci/bench/verify.lua URL -- SECRET_TOKEN KEY_TOKEN [EXTRA]
-- EXTRA: more of the body's JSON fields, e.g. ',"client_ip":"127.0.0.1"'.
dofile(".ci/bench/report.lua")

function init(args)
   wrk.method = "POST"
   wrk.path = "/v1/api-keys/verify"
   wrk.body = '{"key":"' .. args[2] .. '"' .. (args[3] or "") .. '}'
   wrk.headers["Authorization"] = "Bearer " .. args[1]
   wrk.headers["Content-Type"] = "application/json"
end
