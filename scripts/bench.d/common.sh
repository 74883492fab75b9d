# Shared by scripts/bench and scripts/bench-ab (sourced, not run).

# wait_ready PORT PID: waits up to 30 s for the node on PORT to answer /health/ready; fails
# at once if the process PID has exited.
wait_ready() {
  local port=$1 pid=$2
  for _ in $(seq 1 300); do
    curl -fs "http://127.0.0.1:$port/health/ready" >/dev/null 2>&1 && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# cpu_ticks PID: the process's user and system CPU time so far, in clock ticks.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# wait_idle PID [LIMIT]: waits until the process PID has used less than 5 % of a core in each
# of three seconds in a row (at most LIMIT seconds, default 120), then prints how many seconds
# it waited. After seeding, the node merges its search index in the background, starting a
# second after the last write; measuring before that ends would put the merge in the figures
# (the ceiling's above all).
wait_idle() {
  local pid=$1 limit=${2:-120} hz waited=0 quiet=0 t0 t1
  hz=$(getconf CLK_TCK)
  t0=$(cpu_ticks "$pid")
  while [ "$waited" -lt "$limit" ] && [ "$quiet" -lt 3 ]; do
    sleep 1
    waited=$((waited + 1))
    t1=$(cpu_ticks "$pid")
    if [ $(((t1 - t0) * 100)) -lt $((hz * 5)) ]; then quiet=$((quiet + 1)); else quiet=0; fi
    t0=$t1
  done
  echo "$waited"
}

# wrk_figures: reads wrk's output on stdin and prints "REQ/S P50 P99 ERRORS REQUESTS" (the
# latencies are "-" without --latency; errors are non-2xx/3xx answers plus socket errors).
wrk_figures() {
  awk '/Requests\/sec/ {rps = $2} /requests in/ {n = $1} $1 == "50%" {p50 = $2} $1 == "99%" {p99 = $2}
       /Non-2xx/ {e += $5} /Socket errors/ {e += $4 + $6 + $8 + $10}
       END {print rps, (p50 == "" ? "-" : p50), (p99 == "" ? "-" : p99), e + 0, n + 0}'
}
