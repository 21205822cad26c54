-- Replays pre-generated requests, one line each: "METHOD\tPATH\tHeader: v\x1fHeader: v\tBODY".
-- Every wrk thread takes every n-th line (no two threads send the same request) and wraps
-- around only when it runs out (the harness makes enough lines for the run, and says so).
-- done() prints one JSON line the harness reads: requests, errors, latency percentiles.
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(os.getenv("WRK_THREADS") or "1")
  local file = assert(io.open(os.getenv("WRK_REQUESTS"), "r"))
  reqs, n, wrapped, i = {}, 0, 0, 0
  for line in file:lines() do
    if i % nthreads == tid then
      local method, path, headers, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      local h = {}
      for pair in headers:gmatch("[^\031]+") do
        local k, v = pair:match("^([^:]+):%s*(.*)$")
        if k then h[k] = v end
      end
      table.insert(reqs, wrk.format(method, path, h, body))
    end
    i = i + 1
  end
  file:close()
end

-- WRK_MARK: count the answers whose body contains one of its \x1f-separated strings (e.g.
-- Feishu's "working on it" toast, raw or JSON-escaped), so
-- a fast "later" is not read as a shown result. Only then are bodies looked at.
local marks = {}
for m in (os.getenv("WRK_MARK") or ""):gmatch("[^\031]+") do table.insert(marks, m) end
marked = 0
if #marks > 0 then
  function response(status, headers, body)
    if not body then return end
    for _, m in ipairs(marks) do
      if body:find(m, 1, true) then marked = marked + 1; return end
    end
  end
end

function request()
  n = n + 1
  if n > #reqs then n, wrapped = 1, wrapped + 1 end
  return reqs[n]
end

function done(summary, latency, requests)
  local e = summary.errors
  local total_marked = 0
  for _, thread in ipairs(threads) do total_marked = total_marked + (thread:get("marked") or 0) end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"status": %d, "timeout": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"marked": %d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    total_marked))
end
