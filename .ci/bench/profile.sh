#!/usr/bin/env bash
# CPU (and block/mutex) profile of the real server under wrk load.
#
#   .ci/bench/profile.sh [create|regenerate|rejected_401|rejected_403|verify|list|audit_list|get|verify_uncached] [seconds]
#   VALIDATE=false .ci/bench/profile.sh create 10   (true | false | a share; default: production's)
#   STORE=postgres .ci/bench/profile.sh create 10   (a fresh database hsrcpay_prof_<pid> on
#                                                    BENCH_POSTGRES_URL's server, dropped after)
#
# Runs .ci/bench/pprofserver (server.New on a fresh SQLite dir or PostgreSQL database, JSON access log,
# pprof on a side port), drives one scenario with the same wrk script as load.sh,
# and writes cpu.prof, block.prof, mutex.prof and the binary into OUT
# (default /tmp/hsrcpay-profile). Also prints the server's CPU time per request,
# which tells CPU-bound from waiting.
#
# verify_uncached (as load.sh's row): verify of a key drawn at random among VERIFY_KEYS
# (1000000) keys of one account, on a server whose credential cache holds VERIFY_CACHE_KEYS
# (10000), so most verifies miss it and read the store. Seeding takes minutes; with
# SEED_DIR=DIR the seeded store is kept there (SQLite: DIR/data; PostgreSQL: the database
# named in DIR/database, which is then not dropped) and reused by the next run with the
# same SEED_DIR and store (delete DIR, and drop the database, when done).
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
DROP_PG_DB=1
VERIFY_KEYS="${VERIFY_KEYS:-1000000}"
VERIFY_CACHE_KEYS="${VERIFY_CACHE_KEYS:-10000}"
SEED_DIR="${SEED_DIR:-}"
GO="${GO:-go}"
command -v wrk >/dev/null || { echo "profile.sh: wrk is missing (.ci/bench/load.sh installs it)" >&2; exit 1; }

echo "response validation: ${VALIDATE:-the production default}"
mkdir -p "$OUT"
TMP="$(mktemp -d "${TMPDIR:-/tmp}/hsrcpay-prof.XXXXXX")"
PID=""
cleanup() {
  if [ -n "$PID" ]; then kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
  if [ "$STORE" = postgres ] && [ "$DROP_PG_DB" = 1 ]; then psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $PG_DB" >/dev/null 2>&1 || true; fi
  if [ -n "${KEEP_TMP:-}" ]; then echo "kept $TMP" >&2; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { local p="$1"; while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done; echo "$p"; }
PORT="$(free_port 18580)"
PPORT="$(free_port $((PORT + 1)))"

"$GO" build -o "$OUT/pprofserver" .ci/bench/pprofserver/main.go
pg_url() { sed -E "s#^(postgres(ql)?://[^/]*)/[^?]*#\1/$1#" <<<"$PG_ADMIN"; } # the admin URL, another database
DATA="$TMP/data"
cache=()
if [ "$SCENARIO" = verify_uncached ]; then
  # The seeded account is acct_seed (its managed secret is the caller); the server
  # bootstraps an account of its own beside it, unused (a reused store has acct_seed).
  ACCOUNT="acct_prof_$$"
  cache=(-cache-keys "$VERIFY_CACHE_KEYS")
  SEEDS="${SEED_DIR:-$TMP/seed}/$STORE"
  mkdir -p "$SEEDS"
  case "$STORE" in
    sqlite) DATA="$SEEDS/data" ;;
    postgres)
      if [ -f "$SEEDS/database" ]; then PG_DB="$(cat "$SEEDS/database")"; fi
      if [ -n "$SEED_DIR" ]; then DROP_PG_DB=0; echo "$PG_DB" >"$SEEDS/database"; fi ;;
  esac
  if [ ! -s "$SEEDS/secrets" ]; then
    "$GO" build -o "$TMP/hsrcpay-server" ./cmd/hsrcpay-server
    "$GO" build -o "$TMP/seed" .ci/bench/seed/main.go
    case "$STORE" in
      sqlite) db="sqlite:$DATA" ;;
      postgres)
        psql "$PG_ADMIN" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $PG_DB" >/dev/null
        db="$(pg_url "$PG_DB")" ;;
    esac
    HSRCPAY_DATABASE_URL="$db" HSRCPAY_SQLITE_SYNCHRONOUS="$SYNC" "$TMP/hsrcpay-server" bootstrap --account acct_seed --mode test >"$SEEDS/bootstrap.json"
    echo "seeding $VERIFY_KEYS keys on $STORE"
    "$TMP/seed" -db "$db" -account acct_seed -mode test -n "$VERIFY_KEYS" -out "$SEEDS/secrets.tmp" -sqlite-synchronous "$SYNC"
    mv "$SEEDS/secrets.tmp" "$SEEDS/secrets"
  elif [ "$STORE" = postgres ]; then
    echo "reusing the seeded database $PG_DB ($(wc -l <"$SEEDS/secrets") keys)"
  else
    echo "reusing the seeded store $DATA ($(wc -l <"$SEEDS/secrets") keys)"
  fi
elif [ "$STORE" = postgres ]; then
  psql "$PG_ADMIN" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $PG_DB" >/dev/null
fi
case "$STORE" in
  sqlite) where=(-dir "$DATA") ;;
  postgres) where=(-postgres "$(pg_url "$PG_DB")") ;;
  *) echo "profile.sh: STORE is sqlite or postgres" >&2; exit 2 ;;
esac
"$OUT/pprofserver" -addr "127.0.0.1:$PORT" -pprof "127.0.0.1:$PPORT" "${where[@]}" "${cache[@]}" \
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
  verify_uncached)
    caller="$(jq -r '.keys[] | select(.type=="SECRET") | .secret' "$SEEDS/bootstrap.json")"
    args=(-s .ci/bench/verify_uncached.lua "$URL" -- "$caller" "$SEEDS/secrets" "$THREADS") ;;
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
