-- wrk script for scripts/bench: POST /v1/orders, each order 1 unit of one SKU. Order ids are
-- unique per run, thread and request ("<run tag>-<thread>-<sequence>"), so no order is a replay.
--
-- Usage: wrk -t2 -c64 -d10s --latency -s bench/http_orders.lua http://HOST:PORT -- RUN_TAG [SKU]
--
-- At the end prints one line "WRK_RESULT {json}" (see done()); non_2xx_3xx counts answers with
-- status >= 400 (wrk's "Non-2xx or 3xx responses").

local next_thread_id = 0

-- Runs in wrk's main Lua state once per thread, before the thread starts.
function setup(thread)
  next_thread_id = next_thread_id + 1
  thread:set("thread_id", next_thread_id)
end

-- Runs in each thread's own Lua state; thread_id was set by setup().
function init(args)
  run_tag = args[1] or tostring(os.time())
  sku = args[2] or "HOT"
  sequence = 0
  headers = { ["Content-Type"] = "application/json" }
end

function request()
  sequence = sequence + 1
  local body = string.format('{"order_id":"%s-%d-%d","lines":[{"sku":"%s","quantity":1}]}',
    run_tag, thread_id, sequence, sku)
  return wrk.format("POST", "/v1/orders", headers, body)
end

-- done(): the shared report.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "http_report.lua")
