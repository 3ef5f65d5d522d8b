-- POST /v1/api-keys/verify of a key drawn at random, per request, from FILE
-- (one secret per line, .ci/bench/seed's output), with the account's managed
-- secret as the caller. With many more keys than the credential cache holds,
-- most verifies miss it and look the key up in the store.
-- Thread t keeps lines t, t+THREADS, t+2*THREADS... of FILE (half the memory
-- with two threads; each still draws among FILE/THREADS keys).
-- wrk ... -s .ci/bench/verify_uncached.lua URL -- SECRET_TOKEN FILE THREADS
dofile(".ci/bench/report.lua")

local secrets, headers = {}, nil

function init(args)
   headers = { ["Authorization"] = "Bearer " .. args[1], ["Content-Type"] = "application/json" }
   local nthreads, n = tonumber(args[3]), 0
   for line in io.lines(args[2]) do
      if n % nthreads == tid - 1 then
         secrets[#secrets + 1] = line
      end
      n = n + 1
   end
   assert(#secrets > 0, "verify_uncached.lua: no secret for thread " .. tid)
   math.randomseed(os.time() * 100 + tid)
end

function request()
   return wrk.format("POST", "/v1/api-keys/verify", headers, '{"key":"' .. secrets[math.random(#secrets)] .. '"}')
end
