-- CreateAction with a unique name per request.
local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local name = string.format("bench_%d_%d_%d", tid or 0, counter, math.random(1, 1000000000))
  local body = string.format('{"name":"%s","script":"function %s(ctx, api) { api.v1.claims.setClaim(\\"k\\", \\"v\\") }","timeout":"5s"}', name, name)
  return wrk.format("POST", "/management/v1/actions", {["Content-Type"] = "application/json", ["Authorization"] = wrk.headers["Authorization"]}, body)
end
