-- wrk script for scripts/bench: optional POST body, and a machine-readable summary line.
--
-- With PYBLOGD_POST_BODY=FILE set, every request is `POST` with that file as an urlencoded form
-- (a valid new post, with posts.py's CSRF token). done() prints one `WRK_JSON {...}` line with exact counts and latency
-- percentiles in microseconds, so nothing has to parse wrk's human-readable units.

local body_file = os.getenv("PYBLOGD_POST_BODY")
if body_file and body_file ~= "" then
  local f = assert(io.open(body_file, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  -- As our own page posts: its Origin (PYBLOGD_POST_ORIGIN, http://HOST:PORT as wrk's Host
  -- header names it) and the CSRF cookie whose value the body's csrf_token repeats.
  wrk.headers["Origin"] = os.getenv("PYBLOGD_POST_ORIGIN")
  wrk.headers["Cookie"] = "pyblogd_csrf=5c7a1f0e9b3d4c2a8e6f0b1d3c5a7e9f"
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"timeouts":%d,"bad_status":%d,' ..
    '"mean_us":%.1f,"p50_us":%.1f,"p90_us":%.1f,"p99_us":%.1f,"max_us":%.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.timeout, e.status,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
