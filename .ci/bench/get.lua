-- GET of one path or several, round robin (each thread starting at its own),
-- with a bearer token: the list, audit_list and get rows.
-- wrk ... -s .ci/bench/get.lua URL -- TOKEN PATH [PATH...]
dofile(".ci/bench/report.lua")

local reqs, i = {}, 0

function init(args)
   local headers = { ["Authorization"] = "Bearer " .. args[1] }
   for j = 2, #args do
      table.insert(reqs, wrk.format("GET", args[j], headers))
   end
   assert(#reqs > 0, "get.lua: no path")
   i = (tid - 1) % #reqs
end

function request()
   i = i % #reqs + 1
   return reqs[i]
end
