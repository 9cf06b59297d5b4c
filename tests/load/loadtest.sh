#!/bin/bash
# loadtest.sh — `make loadtest`: loopback load test of `pimg serve` (not run in CI).
#   1. throughput: wrk posts a 3 MP JPEG to /enhance at 4x workers concurrency for LOAD_TIME s
#   2. flood: 4x (workers+queue) concurrency for 20 s — only 200 and 503 allowed
#   3. a normal request right after; peak RSS of the server over the whole run (< 1 GiB)
#   4. baseline: `pimg enhance` back to back with `workers` parallel loops, same image
#   5. SIGTERM under load: every answered request is complete (200 JPEG or 503), exit code 0
# Prints one summary block; exits non-zero when a "done" condition fails.
set -u
BIN=${PIMG_BIN:-build/pimg}
LOAD_TIME=${LOAD_TIME:-60}
FLOOD_TIME=${FLOOD_TIME:-20}
WORK=$(mktemp -d /tmp/pimg-load.XXXXXX)
CORES=$(nproc)
WORKERS=${PIMG_WORKERS:-$CORES}
QUEUE=$((4 * WORKERS))
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
URL=http://127.0.0.1:$PORT
SRC=../shared/data/public/lomiri-wallpapers-16.04__life_by_Aitzol_Berasategi.jpg
fail=0
cleanup() { [ -n "${SPID:-}" ] && kill -9 "$SPID" 2>/dev/null; [ -n "${RSSPID:-}" ] && kill "$RSSPID" 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

# a 3 MP JPEG (2121x1414) from a real photo, or a generated one without the data folder
if [ -f "$SRC" ]; then
  vips resize "$SRC" "$WORK/in.jpg[Q=90]" 0.6869 >/dev/null
else
  vips black "$WORK/b.v" 2121 1414 --bands 3 && vips gaussnoise "$WORK/n.v" 2121 1414 --mean 128 --sigma 50 &&
    vips add "$WORK/b.v" "$WORK/n.v" "$WORK/s.v" && vips cast "$WORK/s.v" "$WORK/in.jpg[Q=90]" uchar
fi
echo "image: $(vipsheader "$WORK/in.jpg") $(stat -c %s "$WORK/in.jpg") bytes; workers=$WORKERS queue=$QUEUE cores=$CORES"

start_server() {
  "$BIN" serve --bind 127.0.0.1 --port "$PORT" --workers "$WORKERS" --queue "$QUEUE" --access-log 0 \
    2>"$WORK/server.log" &
  SPID=$!
  for _ in $(seq 100); do curl -sf "$URL/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "server did not start"; cat "$WORK/server.log"; exit 1
}
sample_rss() { # peak VmHWM is per process lifetime; sample VmRSS too for the record
  while kill -0 "$SPID" 2>/dev/null; do
    awk '/VmRSS/ {print $2}' /proc/"$SPID"/status 2>/dev/null >>"$WORK/rss.txt"; sleep 0.5
  done
}

start_server
sample_rss & RSSPID=$!
export LOAD_IMAGE=$WORK/in.jpg
C=$((4 * WORKERS))
echo "== throughput: wrk -c $C -d ${LOAD_TIME}s"
wrk -t 2 -c "$C" -d "${LOAD_TIME}s" --timeout 60s -s tests/load/post.lua "$URL/enhance" >"$WORK/wrk1.txt" 2>&1
grep -E '^(STATUS|TOTAL|REQS|P50|P99|BAD|SOCKET)' "$WORK/wrk1.txt"
SVC_RPS=$(awk '/^REQS_PER_SEC/ {print $2}' "$WORK/wrk1.txt")

CF=$((4 * (WORKERS + QUEUE)))
echo "== flood: wrk -c $CF -d ${FLOOD_TIME}s (4x capacity)"
wrk -t 2 -c "$CF" -d "${FLOOD_TIME}s" --timeout 60s -s tests/load/post.lua "$URL/enhance" >"$WORK/wrk2.txt" 2>&1
grep -E '^(STATUS|TOTAL|REQS|P50|P99|BAD|SOCKET)' "$WORK/wrk2.txt"
for f in wrk1 wrk2; do
  if grep '^STATUS' "$WORK/$f.txt" | awk '$2 != 200 && $2 != 503 {bad=1} END {exit !bad}'; then
    echo "FAIL: $f saw a status other than 200/503"; fail=1; fi
  if ! grep -q '^BAD_BODIES 0' "$WORK/$f.txt"; then echo "FAIL: $f: a 200 without a JPEG body"; fail=1; fi
done
total2=$(awk '/^TOTAL/ {print $2}' "$WORK/wrk2.txt"); s503=$(awk '$1=="STATUS" && $2==503 {print $3}' "$WORK/wrk2.txt")
echo "flood 503 share: ${s503:-0}/${total2:-0}"
# the flood's accepted jobs finish first (a client would honour Retry-After meanwhile)
for _ in $(seq 300); do
  curl -s "$URL/metrics" | awk '/^pimg_(queue_depth|in_flight) / {n += $2} END {exit n != 0}' && break; sleep 0.1
done
code=$(curl -s -o "$WORK/after.jpg" -w '%{http_code}' --data-binary @"$WORK/in.jpg" -H 'Content-Type: image/jpeg' "$URL/enhance")
echo "normal request after the flood: $code $(file -b "$WORK/after.jpg" | cut -c1-40)"
[ "$code" = 200 ] || fail=1
curl -s "$URL/metrics" | grep -E '^pimg_(rejected_total|stage_duration_seconds_(sum|count))' >"$WORK/metrics.txt"
grep -E 'queue_full|decode"\}|encode"\}' "$WORK/metrics.txt"
PEAK_KB=$(awk '/VmHWM/ {print $2}' /proc/"$SPID"/status)
kill -TERM "$SPID"; wait "$SPID"; rc=$?; SPID=
wait "$RSSPID" 2>/dev/null; RSSPID=
MAX_RSS_KB=$(sort -n "$WORK/rss.txt" | tail -1)
echo "server peak RSS (VmHWM): $((PEAK_KB / 1024)) MiB; max sampled RSS: $((MAX_RSS_KB / 1024)) MiB; exit code after SIGTERM: $rc"
[ "$PEAK_KB" -lt $((1024 * 1024)) ] || { echo "FAIL: RSS above 1 GiB"; fail=1; }
[ "$rc" = 0 ] || fail=1

echo "== baseline: pimg enhance back to back, $WORKERS parallel loops, ${LOAD_TIME}s"
end=$(( $(date +%s) + LOAD_TIME ))
for w in $(seq "$WORKERS"); do
  ( n=0; while [ "$(date +%s)" -lt "$end" ]; do
      "$BIN" enhance "$WORK/in.jpg" "$WORK/cli-$w.jpg" >/dev/null 2>&1 || echo "cli error" >&2; n=$((n + 1)); done
    echo "$n" >"$WORK/cli-$w.count" ) &
done
t0=$(date +%s.%N); wait; t1=$(date +%s.%N)
CLI_N=$(cat "$WORK"/cli-*.count | paste -sd+ | bc)
CLI_RPS=$(echo "scale=2; $CLI_N / ($t1 - $t0)" | bc)
echo "cli: $CLI_N images in $(echo "$t1 - $t0" | bc | cut -c1-6) s = $CLI_RPS img/s"
RATIO=$(echo "scale=3; $CLI_RPS / $SVC_RPS" | bc)
echo "service: $SVC_RPS req/s; cli/service ratio: $RATIO (must be <= 1.3)"
[ "$(echo "$RATIO <= 1.3" | bc)" = 1 ] || { echo "FAIL: service slower than 1.3x cli"; fail=1; }

echo "== SIGTERM under load"
start_server
for i in $(seq "$C"); do
  ( k=0; while :; do
      k=$((k + 1))
      code=$(curl -s -o "$WORK/s-$i-$k.out" -w '%{http_code}' --data-binary @"$WORK/in.jpg" \
             -H 'Content-Type: image/jpeg' "$URL/enhance"); rcc=$?
      echo "$rcc $code $(head -c 3 "$WORK/s-$i-$k.out" 2>/dev/null | od -An -tx1 | tr -d ' ')" >>"$WORK/sig-$i.txt"
      rm -f "$WORK/s-$i-$k.out"
      [ "$rcc" = 7 ] && break   # connection refused: the server is gone
    done ) &
done
sleep 3
kill -TERM "$SPID"; wait "$SPID"; rc=$?; SPID=
wait
cat "$WORK"/sig-*.txt | awk '{print $1, $2, ($2==200 ? $3 : "")}' | sort | uniq -c
# allowed: curl ok with 200+JPEG, curl ok with 503, or connection refused after exit
bad=$(cat "$WORK"/sig-*.txt | awk '!(($1==0 && $2==200 && $3=="ffd8ff") || ($1==0 && $2==503) || $1==7)' | wc -l)
echo "SIGTERM under load: exit code $rc, incomplete/failed answers: $bad"
[ "$rc" = 0 ] && [ "$bad" = 0 ] || fail=1
[ $fail = 0 ] && echo "LOADTEST PASSED" || echo "LOADTEST FAILED"
exit $fail
