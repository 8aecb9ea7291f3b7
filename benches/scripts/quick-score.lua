-- getQuickScore as `nexus-bench http` sends it, without a request id (no deduplication), for
-- wrk (`-s`); prints a RESULT line: requests, duration (µs), p50 latency (µs), errors.
wrk.method = "POST"
wrk.path = "/fraud.v1/getQuickScore"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"userId":"user-ada"}'
function done(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), summary.errors.status + summary.errors.connect
      + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
