-- wrk script for scripts/bench: only a report. The request is the URL given to wrk (a GET), so wrk
-- keeps sending one pre-built request (no request() here: that would make wrk build each one).
--
-- Usage: wrk -t2 -c64 -d10s --latency -s bench/http_reads.lua http://HOST:PORT/v1/inventory/HOT
--
-- At the end prints one line "WRK_RESULT {json}"; same fields as bench/http_orders.lua's.

-- done(): the shared report.
dofile((debug.getinfo(1, "S").source:match("^@(.*/)") or "./") .. "http_report.lua")
