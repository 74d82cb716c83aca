#!/bin/bash
# The load generator against wrk on one core: the same hyper-baseline server on CPU 1, wrk and
# `clickstream loadtest` taking turns on CPU 0, in sets that each start once the machine is idle.
# usage: generator-vs-wrk.sh CLICKSTREAM_BIN POST_LUA [SETS]
#   POST_LUA: a wrk script that POSTs the file named by $BODY (the shared bench scripts have one).
#   RATES="60000 70000" sets the open-loop rates. Runs at nice -15, since other builds share the
#   machine; needs wrk, perf and bc.
set -u
B=$1; LUA=$2; SETS=${3:-3}
OUT=$(mktemp -d)
echo '{"type":"track","event":"Product Viewed","anonymousId":"u-1","properties":{"product_id":"p1","price":9.5,"currency":"USD"},"context":{"page":{"url":"https://shop.example.com/p/1","referrer":"https://www.google.com/"}}}' >"$OUT/one.json"
nice -n -15 taskset -c 1 "$B" loadtest serve --kind hyper-baseline --listen 127.0.0.1:3901 >"$OUT/server.log" 2>&1 &
HB=$!; trap 'kill $HB' EXIT; sleep 1
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
idle() {
  read -r _ a b c d e f g _ </proc/stat; local t0=$((a+b+c+d+e+f+g)) i0=$d; sleep 1
  read -r _ a b c d e f g _ </proc/stat; echo $((100*(d-i0)/(a+b+c+d+e+f+g-t0)))
}
wrkrun() {
  local s0 s1; s0=$(cpu $HB)
  BODY=$OUT/one.json nice -n -15 taskset -c 0 perf stat -e task-clock -o "$OUT/wrk.stat" -- \
    wrk -t1 -c256 -d5s -s "$LUA" http://127.0.0.1:3901/v1/t | grep RESULT | awk '{print $4}' | sed 's/^/  wrk -c256: /' | tr '\n' ' '
  s1=$(cpu $HB)
  echo "wrk cpu $(grep 'CPUs utilized' "$OUT/wrk.stat" | awk '{print $5}') server cpu $(echo "($s1-$s0)/500" | bc -l | cut -c1-4)"
}
phase() { python3 -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))['runs'][0]['phases'][0]))" "$1/report.json"; }
for set in $(seq 1 "$SETS"); do
  for _ in $(seq 1 120); do [ "$(idle)" -ge 85 ] && break; done
  echo "set $set $(date +%T)"
  wrkrun
  nice -n -15 taskset -c 0 "$B" loadtest run --peak --url http://127.0.0.1:3901 --target hyper-baseline \
    --connections 256 --duration 5 --warmup-secs 1 --no-progress --report-dir "$OUT/peak" >/dev/null 2>&1
  phase "$OUT/peak" | python3 -c "import json,sys; p=json.load(sys.stdin); print('  clickstream --peak -c256: %.0f req/s, generator cpu %s' % (p['achieved_rps'], p['loadgen_cpu_cores']))"
  for r in ${RATES:-60000 70000 80000 90000}; do
    nice -n -15 taskset -c 0 "$B" loadtest run --url http://127.0.0.1:3901 --target hyper-baseline --rate "$r" \
      --duration 5 --warmup-secs 1 --no-progress --report-dir "$OUT/open" >/dev/null 2>&1
    phase "$OUT/open" | python3 -c "import json,sys; p=json.load(sys.stdin); print('  open loop --rate $r: ok %.0f req/s, generator lag %d, late %d, dropped %d, p50 %.2f p99 %.2f ms, generator cpu %s' % (p['achieved_rps'], p['generator_lag'], p['late'], p['dropped'], p['latency']['p50_ms'], p['latency']['p99_ms'], p['loadgen_cpu_cores']))"
  done
  wrkrun
done
