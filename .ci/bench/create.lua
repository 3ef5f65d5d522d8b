-- POST /v1/api-keys/ with a name unique per request (run id, thread, counter).
-- wrk ... -s .ci/bench/create.lua URL -- TOKEN ACCOUNT RUN_ID
dofile(".ci/bench/report.lua")

local n = 0
local path, headers, prefix

function init(args)
   local token, account, run = args[1], args[2], args[3] or tostring(os.time())
   path = "/v1/api-keys/?account_id=" .. account
   headers = { ["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json" }
   prefix = "bench " .. run .. "-" .. tostring(tid) .. "-"
end

function request()
   n = n + 1
   local body = '{"name":"' .. prefix .. n ..
      '","permissions":{"payment":["create","read"],"refund":["read"]},"metadata":{"team":"bench"}}'
   return wrk.format("POST", path, headers, body)
end
