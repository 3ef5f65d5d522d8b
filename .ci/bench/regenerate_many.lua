-- POST /v1/api-keys/{id}/regenerate across many accounts: each account's managed
-- publishable key, rotated with that account's managed secret key, round robin.
-- Thread t takes lines t, t+THREADS, t+2*THREADS... of FILE, so no two threads share
-- an account and, with at least as many accounts as connections, no two requests in
-- flight rotate the same key: unlike regenerate.lua, writers do not queue on one row.
-- wrk ... -s .ci/bench/regenerate_many.lua URL -- FILE THREADS
-- FILE: one "SECRET_TOKEN PUBLISHABLE_KEY_ID" line per account.
dofile(".ci/bench/report.lua")

local reqs, i = {}, 0

function init(args)
   local nthreads, n = tonumber(args[2]), 0
   for line in io.lines(args[1]) do
      local secret, id = line:match("^(%S+)%s+(%S+)$")
      if secret then
         if n % nthreads == tid - 1 then
            table.insert(reqs, wrk.format("POST", "/v1/api-keys/" .. id .. "/regenerate",
               { ["Authorization"] = "Bearer " .. secret, ["Content-Type"] = "application/json" }, "{}"))
         end
         n = n + 1
      end
   end
   assert(#reqs > 0, "regenerate_many.lua: no account for thread " .. tid)
end

function request()
   i = i % #reqs + 1
   return reqs[i]
end
