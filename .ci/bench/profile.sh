#!/usr/bin/env bash
# CPU (and block/mutex) profile of the real server under wrk load.
#
#   .ci/bench/profile.sh [create|regenerate|rejected_401|rejected_403|verify|list|audit_list|get] [seconds]
#   VALIDATE=false .ci/bench/profile.sh create 10   (true | false | a share; default: production's)
#   STORE=postgres .ci/bench/profile.sh create 10   (a fresh database hsrcpay_prof_<pid> on
#                                                    BENCH_POSTGRES_URL's server, dropped after)
#
# Runs .ci/bench/pprofserver (server.New on a fresh SQLite dir or PostgreSQL database, JSON access log,
# pprof on a side port), drives one scenario with the same wrk script as load.sh,
# and writes cpu.prof, block.prof, mutex.prof and the binary into OUT
# (default /tmp/hsrcpay-profile). Also prints the server's CPU time per request,
# which tells CPU-bound from waiting.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

SCENARIO="${1:-create}"
SECS="${2:-10}"
OUT="${OUT:-/tmp/hsrcpay-profile}"
CONNS="${CONNS:-32}"
THREADS="${THREADS:-2}"
VALIDATE="${VALIDATE:-}"
LOG_LEVEL="${LOG_LEVEL:-info}"
SYNC="${HSRCPAY_SQLITE_SYNCHRONOUS:-NORMAL}"
ACCOUNT=acct_demo
STORE="${STORE:-sqlite}"
PG_ADMIN="${BENCH_POSTGRES_URL:-${HSRCPAY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}}"
PG_DB="hsrcpay_prof_$$"
GO="${GO:-go}"
command -v wrk >/dev/null || { echo "profile.sh: wrk is missing (.ci/bench/load.sh installs it)" >&2; exit 1; }

echo "response validation: ${VALIDATE:-the production default}"
mkdir -p "$OUT"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/hsrcpay-prof.XXXXXX")"
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  if [ "$STORE" = postgres ]; then psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true; fi
  if [ -n "${KEEP_TMP:-}" ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { local p="$1"; while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done; echo "$p"; }
PORT="$(free_port 18580)"
PPORT="$(free_port $((PORT + 1)))"

"$GO" build -o "$OUT/pprofserver" .ci/bench/pprofserver/main.go
case "$STORE" in
  sqlite) where=(-dir "$TMP/data") ;;
  postgres)
    psql "$PG_ADMIN" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $PG_DB" >/dev/null
    # The same server, another database: the admin URL's path replaced.
    where=(-postgres "$(sed -E "s#^(postgres(ql)?://[^/]*)/[^?]*#\1/$PG_DB#" <<<"$PG_ADMIN")") ;;
  *) echo "profile.sh: STORE is sqlite or postgres" >&2; exit 2 ;;
esac
"$OUT/pprofserver" -addr "127.0.0.1:$PORT" -pprof "127.0.0.1:$PPORT" "${where[@]}" \
  ${VALIDATE:+-validate-responses="$VALIDATE"} -synchronous="$SYNC" -log-level="$LOG_LEVEL" -account "$ACCOUNT" \
  >"$TMP/keys.json" 2>"$TMP/server.log" &
PID=$!
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || { tail "$TMP/server.log" >&2; exit 1; }
  sleep 0.1
done
key() { jq -r ".$1" "$TMP/keys.json"; }
URL="http://127.0.0.1:$PORT"
case "$SCENARIO" in
  create) args=(-s .ci/bench/create.lua "$URL" -- "$(key secret)" "$ACCOUNT" "prof$$") ;;
  regenerate) args=(-s .ci/bench/regenerate.lua "$URL" -- "$(key secret)" "$(key publishable_id)") ;;
  rejected_401)
    s="$(key secret)"; [ "${s: -1}" = A ] && bad="${s%?}B" || bad="${s%?}A"
    args=(-s .ci/bench/rejected.lua "$URL" -- "$bad" "$ACCOUNT") ;;
  rejected_403) args=(-s .ci/bench/rejected.lua "$URL" -- "$(key publishable)" "$ACCOUNT") ;;
  verify)
    # As load.sh's verify row: a custom key made here, verified with the managed secret.
    custom="$(curl -fsS -X POST "$URL/v1/api-keys/?account_id=$ACCOUNT" -H "Authorization: Bearer $(key secret)" \
      -H 'Content-Type: application/json' -d '{"name":"profile","permissions":{"payment":["read"]}}' | jq -r '.data.key')"
    [ -n "$custom" ] && [ "$custom" != null ] || { echo "profile.sh: could not create the key to verify" >&2; exit 1; }
    args=(-s .ci/bench/verify.lua "$URL" -- "$(key secret)" "$custom") ;;
  list | audit_list | get)
    # As load.sh's read rows: LIST_KEYS keys made here first (each with its audit event).
    ids=()
    for i in $(seq 1 "${LIST_KEYS:-120}"); do
      ids+=("$(curl -fsS -X POST "$URL/v1/api-keys/?account_id=$ACCOUNT" -H "Authorization: Bearer $(key secret)" \
        -H 'Content-Type: application/json' -d "{\"name\":\"listed $i\",\"permissions\":{\"payment\":[\"read\"]}}" | jq -r '.data.id')")
    done
    case "$SCENARIO" in
      list) paths=("/v1/api-keys/?account_id=$ACCOUNT&limit=20") ;;
      audit_list) paths=("/v1/audit-events?account_id=$ACCOUNT&limit=100") ;;
      get) paths=("${ids[@]/#//v1/api-keys/}") ;;
    esac
    args=(-s .ci/bench/get.lua "$URL" -- "$(key secret)" "${paths[@]}") ;;
  *) echo "profile.sh: unknown scenario $SCENARIO" >&2; exit 2 ;;
esac

cputicks() { awk '{ print $14 + $15 }' "/proc/$PID/stat"; }
curl -fsS -o "$TMP/block0.prof" "http://127.0.0.1:$PPORT/debug/pprof/block"
curl -fsS -o "$TMP/mutex0.prof" "http://127.0.0.1:$PPORT/debug/pprof/mutex"
t0="$(cputicks)"
curl -fsS -o "$OUT/cpu.prof" "http://127.0.0.1:$PPORT/debug/pprof/profile?seconds=$SECS" &
CURL=$!
wrk -t"$THREADS" -c"$CONNS" -d"${SECS}s" --latency "${args[@]}" | tee "$OUT/wrk.txt"
wait "$CURL"
t1="$(cputicks)"
curl -fsS -o "$OUT/block.prof" "http://127.0.0.1:$PPORT/debug/pprof/block"
curl -fsS -o "$OUT/mutex.prof" "http://127.0.0.1:$PPORT/debug/pprof/mutex"
reqs="$(sed -n 's/^RESULT requests=\([0-9]*\).*/\1/p' "$OUT/wrk.txt")"
hz="$(getconf CLK_TCK)"
awk -v t="$((t1 - t0))" -v hz="$hz" -v n="$reqs" -v s="$SECS" 'BEGIN {
  printf "server CPU: %.2f s over %d s (%.0f%% of one core), %.0f µs CPU per request\n", t / hz, s, t / hz / s * 100, n ? t / hz / n * 1e6 : 0 }'
echo
"$GO" tool pprof -top -nodecount=25 "$OUT/pprofserver" "$OUT/cpu.prof" 2>/dev/null | sed -n '1,32p'
echo
echo "block profile (time goroutines waited, top):"
"$GO" tool pprof -top -nodecount=12 -base "$TMP/block0.prof" "$OUT/pprofserver" "$OUT/block.prof" 2>/dev/null | sed -n '5,20p'
echo "profiles in $OUT: go tool pprof -http=: $OUT/pprofserver $OUT/cpu.prof"
