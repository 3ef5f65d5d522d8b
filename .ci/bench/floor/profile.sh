#!/usr/bin/env bash
# CPU profiles of the floor server (.ci/bench/floor) on a fresh SQLite store, under the same
# wrk load as load.sh's *_floor rows: where a floor's CPU goes (HTTP, database/sql and the
# driver, SQLite itself, the runtime).
#
#   .ci/bench/floor/profile.sh [get|list|audit_list|create|regenerate ...]   (default: get create)
#   SECS=8 OUT=/tmp/hsrcpay-floor-profile   (profile length; where SCENARIO.prof and the binary go)
#
# The store: the demo account bootstrapped by the real binary, then LIST_KEYS (120) keys created
# through the floor (load.sh creates them through the real server). Prints, per scenario, wrk's
# RESULT line, the floor's CPU per request (/proc, over the whole wrk run) and `go tool pprof -top`.
# Wrap it in `flock /tmp/hsrcpay-bench.lock` on the shared machine, as every measurement.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
cd "$ROOT"

SECS="${SECS:-8}"
OUT="${OUT:-/tmp/hsrcpay-floor-profile}"
CONNS="${CONNS:-32}"
THREADS="${THREADS:-2}"
LIST_KEYS="${LIST_KEYS:-120}"
ACCOUNT=acct_demo
SCENARIOS=("$@")
[ "${#SCENARIOS[@]}" -gt 0 ] || SCENARIOS=(get create)
for s in "${SCENARIOS[@]}"; do
  case "$s" in get | list | audit_list | create | regenerate) ;; *) echo "profile.sh: unknown scenario $s" >&2; exit 2 ;; esac
done
for v in $(compgen -e | grep '^HSRCPAY_' || true); do unset "$v"; done

mkdir -p "$OUT"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/hsrcpay-floor-prof.XXXXXX")"
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

go build -o "$TMP/server" ./cmd/hsrcpay-server
go build -o "$OUT/floor" .ci/bench/floor/main.go
HSRCPAY_DATABASE_URL="sqlite:$TMP/data" "$TMP/server" bootstrap --account "$ACCOUNT" --mode test >"$TMP/bootstrap.json"
PUB_ID="$(jq -r '.keys[] | select(.type=="PUBLISHABLE") | .id' "$TMP/bootstrap.json")"

free_port() { local p="$1"; while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done; echo "$p"; }
PORT="$(free_port 18590)"
PPROF="$(free_port $((PORT + 1)))"
"$OUT/floor" -db "sqlite:$TMP/data" -mode test -addr "127.0.0.1:$PORT" -pprof "127.0.0.1:$PPROF" >"$TMP/floor.log" 2>&1 &
PID=$!
URL="http://127.0.0.1:$PORT"
for _ in $(seq 1 150); do curl -fsS -o /dev/null "$URL/healthz" 2>/dev/null && break; sleep 0.1; done
curl -fsS -o /dev/null "$URL/healthz" || { cat "$TMP/floor.log" >&2; exit 1; }

: >"$TMP/ids"
for i in $(seq 1 "$LIST_KEYS"); do
  curl -fsS -X POST "$URL/v1/api-keys/?account_id=$ACCOUNT" \
    -d "{\"name\":\"listed $i\",\"permissions\":{\"payment\":[\"read\"]},\"metadata\":{\"team\":\"bench\"}}" | jq -er .data.id >>"$TMP/ids"
done
paths=()
while read -r id; do paths+=("/v1/api-keys/$id"); done <"$TMP/ids"

HZ="$(getconf CLK_TCK)"
for s in "${SCENARIOS[@]}"; do
  case "$s" in
    get) args=(.ci/bench/get.lua "$URL" -- none "${paths[@]}") ;;
    list) args=(.ci/bench/get.lua "$URL" -- none "/v1/api-keys/?account_id=$ACCOUNT&limit=20") ;;
    audit_list) args=(.ci/bench/get.lua "$URL" -- none "/v1/audit-events?account_id=$ACCOUNT&limit=100") ;;
    create) args=(.ci/bench/create.lua "$URL" -- none "$ACCOUNT" "prof-$$") ;;
    regenerate) args=(.ci/bench/regenerate.lua "$URL" -- none "$PUB_ID") ;;
  esac
  t0="$(awk '{ print $14 + $15 }' "/proc/$PID/stat")"
  # wrk runs a second past the profile on each side, so the profile sees only the steady load.
  wrk -t"$THREADS" -c"$CONNS" -d"$((SECS + 2))s" --latency -s "${args[@]}" >"$TMP/$s.wrk" 2>&1 &
  wrk_pid=$!
  sleep 1
  curl -fsS -o "$OUT/$s.prof" "http://127.0.0.1:$PPROF/debug/pprof/profile?seconds=$SECS"
  wait "$wrk_pid"
  t1="$(awk '{ print $14 + $15 }' "/proc/$PID/stat")"
  line="$(grep '^RESULT ' "$TMP/$s.wrk")" || { cat "$TMP/$s.wrk" >&2; exit 1; }
  n="$(sed -n 's/.*requests=\([0-9]*\).*/\1/p' <<<"$line")"
  echo "== ${s}_floor (sqlite): $line"
  awk -v t="$((t1 - t0))" -v hz="$HZ" -v n="$n" 'BEGIN { printf "floor CPU per request: %.1f µs (whole wrk run)\n", t / hz / n * 1e6 }'
  go tool pprof -top -nodecount=25 "$OUT/floor" "$OUT/$s.prof" 2>/dev/null | sed -n '4,$p'
  echo
done
echo "profiles: $OUT/<scenario>.prof (go tool pprof $OUT/floor $OUT/<scenario>.prof)"
