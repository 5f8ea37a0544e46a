-- CreateAction with a unique name per request (unique across threads and runs).
local counter = 0
local prefix

function init(args)
  prefix = string.format("bench_%d_%s", os.time(), tostring({}):gsub("table: 0x", ""))
end

function request()
  counter = counter + 1
  local name = string.format("%s_%d", prefix, counter)
  local body = string.format('{"name":"%s","script":"function %s(ctx, api) { api.v1.claims.setClaim(\\"k\\", \\"v\\") }","timeout":"5s"}', name, name)
  return wrk.format("POST", "/management/v1/actions", {["Content-Type"] = "application/json", ["Authorization"] = wrk.headers["Authorization"]}, body)
end
