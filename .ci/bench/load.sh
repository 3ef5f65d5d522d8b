#!/usr/bin/env bash
# Loopback load test (issue 5). Builds the server and a bare-Echo baseline,
# then drives each with wrk at 32 connections and prints, per scenario, the
# median over RUNS runs of requests/s, p50 and p99, and the ratio to the
# baseline's median requests/s.
#
#   .ci/bench/load.sh                 # RUNS=3 DURATION=5s CONNS=32 THREADS=2
#   RUNS=1 DURATION=10s .ci/bench/load.sh
#   STRICT=1 .ci/bench/load.sh        # exit 1 when a target is missed
#   HSRCPAY_SQLITE_SYNCHRONOUS=FULL .ci/bench/load.sh   # durable against power loss too
#
# Besides requests/s and latency it reports the server process's CPU time per request
# (from /proc), which other load on a shared machine disturbs much less.
#
# Scenarios (each run starts the real server on a fresh SQLite directory with
# the demo account and every budget raised to 1000000: HSRCPAY_RATE_LIMIT_LIVE/TEST,
# HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE/TEST, HSRCPAY_AUTH_FAILURE_LIMIT, and the key cap
# HSRCPAY_MAX_ACTIVE_KEYS, since create runs make thousands of keys):
#   baseline        bare Echo handler: decode create body, random secret, SHA-256, encode
#   create          POST /v1/api-keys/, unique name per request
#   regenerate      POST /v1/api-keys/{managed publishable id}/regenerate, with the managed secret key
#   rejected_401    create with a checksum-broken key (rejected before any store access)
#   rejected_403    create with the publishable key (rejected after the key lookup)
#   create_novalid  create on a server started with HSRCPAY_VALIDATE_RESPONSES=false
# Client and server share this machine's cores: numbers are relative, not capacity.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

RUNS="${RUNS:-3}"
DURATION="${DURATION:-5s}"
CONNS="${CONNS:-32}"
THREADS="${THREADS:-2}"
SYNC="${HSRCPAY_SQLITE_SYNCHRONOUS:-NORMAL}"
ACCOUNT="acct_demo"
STRICT="${STRICT:-0}"
GO="${GO:-go}"
START_TS=$SECONDS
# Hermetic: no inherited setting (a Redis URL, a log level...) changes what is measured.
for v in $(compgen -e | grep '^HSRCPAY_' || true); do unset "$v"; done

log() { printf '%s\n' "$*" >&2; }
die() { log "load.sh: $*"; exit 1; }

# --- wrk ---------------------------------------------------------------------------------
if ! command -v wrk >/dev/null 2>&1; then
  log "installing wrk"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  if ! $SUDO apt-get install -y wrk >/dev/null 2>&1; then
    $SUDO apt-get update >/dev/null && $SUDO apt-get install -y wrk >/dev/null
  fi
fi
command -v wrk >/dev/null || die "wrk is not installed"
command -v jq >/dev/null || die "jq is needed to read the bootstrap output"
command -v curl >/dev/null || die "curl is needed for the pre-flight checks"

# --- processes: everything started here is stopped on exit ------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/hsrcpay-load.XXXXXX")"
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

stop_pid() { # pid: stop one process started here and forget it
  local pid="$1" keep=() p
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

free_port() { # first free port from $1
  local p="$1"
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

wait_http() { # url pid logfile
  local i
  for i in $(seq 1 100); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { tail -20 "$3" >&2; die "process for $1 exited"; }
    sleep 0.1
  done
  tail -20 "$3" >&2
  die "$1 did not answer within 10s"
}

# --- build ---------------------------------------------------------------------------------
log "building server and baseline"
"$GO" build -o "$TMP/hsrcpay-server" ./cmd/hsrcpay-server
"$GO" build -o "$TMP/baseline" .ci/bench/baseline/main.go

# --- servers -------------------------------------------------------------------------------
BASE_PORT="$(free_port 18480)"
"$TMP/baseline" -addr "127.0.0.1:$BASE_PORT" >"$TMP/baseline.log" 2>&1 &
BASE_PID=$!
PIDS+=("$BASE_PID")
wait_http "http://127.0.0.1:$BASE_PORT/healthz" "$BASE_PID" "$TMP/baseline.log"

# start_server NAME VALIDATE: fresh SQLite dir; bootstrap (for the managed key ids), then
# serve with the demo account (which rotates the managed keys and prints their secrets).
# Sets SRV_PID SRV_URL SECRET PUBLISHABLE PUB_ID.
start_server() {
  local name="$1" validate="$2" dir="$TMP/data-$1" port
  port="$(free_port $((BASE_PORT + 1)))"
  export HSRCPAY_DATABASE_URL="sqlite:$dir" HSRCPAY_SQLITE_SYNCHRONOUS="$SYNC"
  "$TMP/hsrcpay-server" bootstrap --account "$ACCOUNT" --mode test >"$TMP/$name.bootstrap.json"
  PUB_ID="$(jq -r '.keys[] | select(.type=="PUBLISHABLE") | .id' "$TMP/$name.bootstrap.json")"
  local secret_id
  secret_id="$(jq -r '.keys[] | select(.type=="SECRET") | .id' "$TMP/$name.bootstrap.json")"
  HSRCPAY_ADDR="127.0.0.1:$port" HSRCPAY_METRICS_ADDR= HSRCPAY_DEMO_ACCOUNT="$ACCOUNT" \
    HSRCPAY_RATE_LIMIT_LIVE=1000000 HSRCPAY_RATE_LIMIT_TEST=1000000 \
    HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE=1000000 HSRCPAY_RATE_LIMIT_ACCOUNT_TEST=1000000 \
    HSRCPAY_MAX_ACTIVE_KEYS=1000000 \
    HSRCPAY_AUTH_FAILURE_LIMIT=1000000 \
    HSRCPAY_VALIDATE_RESPONSES="$validate" HSRCPAY_LOG_LEVEL=info \
    "$TMP/hsrcpay-server" serve >"$TMP/$name.out" 2>"$TMP/$name.log" &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  SRV_URL="http://127.0.0.1:$port"
  wait_http "$SRV_URL/healthz" "$SRV_PID" "$TMP/$name.log"
  SECRET="$(sed -n 's/^export HSRCPAY_API_KEY=//p' "$TMP/$name.out")"
  PUBLISHABLE="$(sed -n 's/^export HSRCPAY_PUBLISHABLE_KEY=//p' "$TMP/$name.out")"
  [ -n "$SECRET" ] && [ -n "$PUBLISHABLE" ] && [ -n "$PUB_ID" ] || die "no demo keys in $name output"
  [ "$(sed -n 's/^export HSRCPAY_KEY_ID=//p' "$TMP/$name.out")" = "$secret_id" ] || die "demo key id differs from bootstrap's"
}

# expect STATUS METHOD URL TOKEN BODY: one request by curl before the load, so a scenario
# never measures the wrong answer.
expect() {
  local got
  got="$(curl -s -o "$TMP/expect.body" -w '%{http_code}' -X "$2" "$3" \
    -H "Authorization: Bearer $4" -H 'Content-Type: application/json' --data "$5")"
  [ "$got" = "$1" ] || { cat "$TMP/expect.body" >&2; die "$2 $3: want $1, got $got"; }
}

# check_log FILE: fail on a server error, except requests that wrk abandoned when its run
# ended (their context is canceled mid-query; the client is gone).
check_log() {
  local errs
  errs="$(grep '"level":"ERROR"' "$1" | grep -v 'context canceled' || true)"
  [ -z "$errs" ] || { head -5 <<<"$errs" >&2; die "server logged errors"; }
}

broken_checksum() { # change the last character
  local t="$1" last="${1: -1}"
  [ "$last" = "A" ] && echo "${t%?}B" || echo "${t%?}A"
}

cputicks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # user+system clock ticks of a pid

# run_wrk SCENARIO RUN SERVER_PID SCRIPT URL ARGS...: one wrk run; its RESULT line, plus the
# server's CPU time per request (less disturbed by other load than requests/s), goes to results
run_wrk() {
  local scenario="$1" run="$2" pid="$3" script="$4" url="$5"
  shift 5
  local out line t0 t1 cpu
  t0="$(cputicks "$pid")"
  out="$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$script" "$url" -- "$@" 2>&1)" ||
    { echo "$out" >&2; die "wrk failed for $scenario"; }
  t1="$(cputicks "$pid")"
  line="$(grep '^RESULT ' <<<"$out")" || { echo "$out" >&2; die "no RESULT from wrk for $scenario"; }
  cpu="$(awk -v t=$((t1 - t0)) -v hz="$HZ" -v l="$line" 'BEGIN { match(l, /requests=[0-9]+/); n = substr(l, RSTART + 9, RLENGTH - 9); printf "%.1f", (n > 0 ? t / hz / n * 1e6 : 0) }')"
  line="$line cpu_us=$cpu"
  echo "$scenario run=$run ${line#RESULT }" >>"$TMP/results"
  log "  $(printf '%-15s' "$scenario") ${line#RESULT }"
}

HZ="$(getconf CLK_TCK)"
WRK_CMD="wrk -t$THREADS -c$CONNS -d$DURATION --latency -s .ci/bench/<scenario>.lua"
log "load before: $(uptime)"
: >"$TMP/results"
for run in $(seq 1 "$RUNS"); do
  log "run $run/$RUNS"
  tag="r$run-$$"
  run_wrk baseline "$run" "$BASE_PID" .ci/bench/create.lua "http://127.0.0.1:$BASE_PORT" none "$ACCOUNT" "$tag"

  start_server "real$run" true
  BAD="$(broken_checksum "$SECRET")"
  CREATE_BODY='{"name":"preflight","permissions":{"payment":["read"]}}'
  expect 401 POST "$SRV_URL/v1/api-keys/?account_id=$ACCOUNT" "$BAD" "$CREATE_BODY"
  expect 403 POST "$SRV_URL/v1/api-keys/?account_id=$ACCOUNT" "$PUBLISHABLE" "$CREATE_BODY"
  expect 201 POST "$SRV_URL/v1/api-keys/?account_id=$ACCOUNT" "$SECRET" "$CREATE_BODY"
  run_wrk rejected_401 "$run" "$SRV_PID" .ci/bench/rejected.lua "$SRV_URL" "$BAD" "$ACCOUNT"
  run_wrk rejected_403 "$run" "$SRV_PID" .ci/bench/rejected.lua "$SRV_URL" "$PUBLISHABLE" "$ACCOUNT"
  run_wrk create "$run" "$SRV_PID" .ci/bench/create.lua "$SRV_URL" "$SECRET" "$ACCOUNT" "$tag"
  # Regenerating the publishable key invalidates it: this runs after rejected_403.
  expect 200 POST "$SRV_URL/v1/api-keys/$PUB_ID/regenerate" "$SECRET" '{}'
  run_wrk regenerate "$run" "$SRV_PID" .ci/bench/regenerate.lua "$SRV_URL" "$SECRET" "$PUB_ID"
  check_log "$TMP/real$run.log"
  stop_pid "$SRV_PID"

  start_server "novalid$run" false
  expect 201 POST "$SRV_URL/v1/api-keys/?account_id=$ACCOUNT" "$SECRET" "$CREATE_BODY"
  run_wrk create_novalid "$run" "$SRV_PID" .ci/bench/create.lua "$SRV_URL" "$SECRET" "$ACCOUNT" "$tag"
  check_log "$TMP/novalid$run.log"
  stop_pid "$SRV_PID"
done
log "load after:  $(uptime)"

# --- report --------------------------------------------------------------------------------
median() { # scenario field
  awk -v s="$1" -v f="$2" '$1 == s { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print kv[2] } }' \
    "$TMP/results" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
all_runs() { # scenario field: every run's value, comma-separated
  awk -v s="$1" -v f="$2" '$1 == s { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) printf "%s%.0f", (n++ ? "," : ""), kv[2] } }' "$TMP/results"
}
ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }

base_rps="$(median baseline rps)"
missed=0
echo
echo "Loopback load, median of $RUNS runs: $WRK_CMD (client and server share $(nproc) cores)"
echo "server CPU = the server process's user+system CPU time per request (median), which other load disturbs less than requests/s"
echo "Store: SQLite, WAL journal, synchronous=$SYNC$([ "$SYNC" = NORMAL ] && echo ' (a commit survives a process crash, not a power loss)')"
echo
printf '| %-15s | %10s | %9s | %9s | %8s | %11s | %-30s | %s |\n' scenario requests/s p50 p99 ratio "server CPU" "target" "runs (req/s)"
printf '|%s|%s|%s|%s|%s|%s|%s|%s|\n' "-----------------" "-----------:" "----------:" "----------:" "---------:" "------------:" "--------------------------------" "---"
for s in baseline create regenerate rejected_401 rejected_403 create_novalid; do
  rps="$(median "$s" rps)"; p50="$(median "$s" p50_us)"; p99="$(median "$s" p99_us)"; cpu="$(median "$s" cpu_us)"
  ratio="$(awk -v a="$rps" -v b="$base_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
  case "$s" in
    create | regenerate) min=0.40 ;;
    rejected_*) min=0.70 ;;
    *) min="" ;;
  esac
  target="-"
  if [ -n "$min" ]; then
    ok_ratio="$(awk -v r="$ratio" -v m="$min" 'BEGIN { print ((r >= m) ? "met" : "MISSED") }')"
    ok_p99="$(awk -v p="$p99" 'BEGIN { print ((p <= 10000) ? "met" : "MISSED") }')"
    target="≥$min×: $ok_ratio; p99≤10ms: $ok_p99"
    [ "$ok_ratio" = met ] && [ "$ok_p99" = met ] || missed=1
  fi
  non2xx="$(awk -v s="$s" '$1 == s { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "non2xx") n += kv[2] } } END { print n + 0 }' "$TMP/results")"
  sockerr="$(awk -v s="$s" '$1 == s { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == "socket_errors") n += kv[2] } } END { print n + 0 }' "$TMP/results")"
  note=""
  case "$s" in rejected_*) ;; *) [ "$non2xx" = 0 ] || note=" ($non2xx non-2xx!)" ;; esac
  [ "$sockerr" = 0 ] || note="$note ($sockerr socket errors)"
  printf '| %-15s | %10.0f | %9s | %9s | %8s | %8.0f µs | %-30s | %s%s |\n' "$s" "$rps" "$(ms "$p50")" "$(ms "$p99")" "$ratio" "$cpu" "$target" "$(all_runs "$s" rps)" "$note"
done
awk -v a="$(median create rps)" -v b="$(median create_novalid rps)" -v ca="$(median create cpu_us)" -v cb="$(median create_novalid cpu_us)" 'BEGIN {
  if (b > 0 && ca > 0) printf "\nResponse validation (HSRCPAY_VALIDATE_RESPONSES=true vs false), create: %.0f vs %.0f req/s (%+.0f%%); server CPU %.0f vs %.0f µs per request (%.0f%% of it).\n", a, b, (a / b - 1) * 100, ca, cb, (1 - cb / ca) * 100 }'
echo "Elapsed: $((SECONDS - START_TS))s"
if [ "$missed" = 1 ]; then
  echo "Some targets were missed (see the target column)."
  [ "$STRICT" = 1 ] && exit 1
fi
exit 0
