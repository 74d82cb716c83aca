#!/bin/bash
# The load generator against wrk on one core: the same hyper-baseline server on CPU 1, wrk and
# `clickstream loadtest` taking turns on CPU 0, in sets that each start once the machine is idle.
# usage: generator-vs-wrk.sh CLICKSTREAM_BIN POST_LUA [SETS]
#   POST_LUA: a wrk script that POSTs the file named by $BODY (the shared bench scripts have one).
#   BODY defaults to product-viewed.json beside this script: a 923-byte analytics.js event,
#   the mean size of the generator's single events, so both tools send as many bytes.
#   Each set runs wrk, a `--peak` run, then open-loop runs at FRACTIONS (default
#   "0.8 0.9 1.0 1.1") of the rate wrk just reached, then wrk again. Every run prints its CPU
#   per request. Runs at nice -15, since other builds share the machine; needs wrk, perf, bc.
set -u
B=$1; LUA=$2; SETS=${3:-3}
HERE=$(cd "$(dirname "$0")" && pwd)
BODY=${BODY:-$HERE/product-viewed.json}
OUT=$(mktemp -d)
nice -n -15 taskset -c 1 "$B" loadtest serve --kind hyper-baseline --listen 127.0.0.1:3901 >"$OUT/server.log" 2>&1 &
HB=$!; trap 'kill $HB' EXIT; sleep 1
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
idle() {
  read -r _ a b c d e f g _ </proc/stat; local t0=$((a+b+c+d+e+f+g)) i0=$d; sleep 1
  read -r _ a b c d e f g _ </proc/stat; echo $((100*(d-i0)/(a+b+c+d+e+f+g-t0)))
}
WRK_RPS=0
wrkrun() {
  local s0 s1 rps used; s0=$(cpu $HB)
  rps=$(BODY=$BODY nice -n -15 taskset -c 0 perf stat -e task-clock -o "$OUT/wrk.stat" -- \
    wrk -t1 -c256 -d5s -s "$LUA" http://127.0.0.1:3901/v1/t | grep RESULT | sed 's/.*rps=\([0-9.]*\).*/\1/')
  s1=$(cpu $HB)
  used=$(grep 'CPUs utilized' "$OUT/wrk.stat" | awk '{print $5}')
  WRK_RPS=${rps%.*}
  printf '  wrk -c256: %.0f req/s, cpu %s, %.1f us/req, server cpu %s\n' "$rps" "$used" \
    "$(echo "1000000*$used/$rps" | bc -l)" "$(echo "($s1-$s0)/500" | bc -l | cut -c1-4)"
}
phase() { python3 - "$1/report.json" "$2" <<'PY'
import json, sys
p = json.load(open(sys.argv[1]))['runs'][0]['phases'][0]
cpu = p['loadgen_cpu_cores'] or 0
print('  %s: offered %.0f, ok %.0f req/s, generator lag %.2f%%, late %d, dropped %d, p50 %.2f p99 %.2f ms, cpu %.2f, %.1f us/req'
      % (sys.argv[2], p['offered_rps'], p['achieved_rps'], 100 * p['generator_lag'] / max(p['scheduled'], 1),
         p['late'], p['dropped'], p['latency']['p50_ms'], p['latency']['p99_ms'], cpu,
         1e6 * cpu / max(p['achieved_rps'], 1)))
PY
}
for set in $(seq 1 "$SETS"); do
  for _ in $(seq 1 120); do [ "$(idle)" -ge 85 ] && break; done
  echo "set $set $(date +%T)"
  wrkrun
  nice -n -15 taskset -c 0 "$B" loadtest run --peak --url http://127.0.0.1:3901 --target hyper-baseline \
    --connections 256 --duration 5 --warmup-secs 1 --no-progress --report-dir "$OUT/peak" >/dev/null 2>&1
  phase "$OUT/peak" "clickstream --peak -c256"
  base=$WRK_RPS
  for f in ${FRACTIONS:-0.8 0.9 1.0 1.1}; do
    r=$(echo "$base*$f/1" | bc)
    nice -n -15 taskset -c 0 "$B" loadtest run --url http://127.0.0.1:3901 --target hyper-baseline --rate "$r" \
      --duration 5 --warmup-secs 1 --no-progress --report-dir "$OUT/open" >/dev/null 2>&1
    phase "$OUT/open" "open loop ${f}x wrk"
  done
  wrkrun
done
