#!/usr/bin/env bash
# Loopback load test (issues 5 and 11). Builds the server and a bare-Echo baseline, drives
# each scenario with wrk at 32 connections on SQLite and on PostgreSQL, measures the
# cross-replica revocation delay, and prints ONE table: per scenario and store the median
# over RUNS runs of requests/s, p50, p99, the ratio to the baseline's median requests/s,
# the server's CPU time, allocated bytes and allocations per request, and the target.
#
#   .ci/bench/load.sh                 # RUNS=3 DURATION=4s CONNS=32 THREADS=2, both stores (~10-12 min)
#   QUICK=1 .ci/bench/load.sh         # RUNS=1 DURATION=2s VERIFY_KEYS=100000: a smoke test (~3.5 min)
#   STORES=sqlite .ci/bench/load.sh   # without PostgreSQL (and without the revocation row)
#   SCENARIOS="verify list" .ci/bench/load.sh   # only these rows (and the baseline, always):
#                                     # any of rejected_401 rejected_403 verify verify_allowlist
#                                     # verify_ratelimit verify_credits list audit_list get
#                                     # create regenerate regenerate_many create_validated
#                                     # verify_uncached revocation (default: all). A server or a
#                                     # seeding no selected row needs is skipped.
#   STRICT=1 .ci/bench/load.sh        # exit 1 when a target is missed or a row flagged
#   HSRCPAY_SQLITE_SYNCHRONOUS=FULL .ci/bench/load.sh   # durable against power loss too
#   VERIFY_KEYS=1000000 VERIFY_CACHE_KEYS=10000   # verify_uncached: keys seeded, credential cache size
#   FLOORS=0 .ci/bench/load.sh        # without the *_floor rows (default: with them, ~1 min a run)
#
# Services it uses (creating and dropping only what it made):
#   PostgreSQL  BENCH_POSTGRES_URL, else HSRCPAY_TEST_POSTGRES_URL, else
#               postgres://postgres@127.0.0.1:5432/test?sslmode=disable: a role that may
#               CREATE DATABASE. Every server start gets a fresh database hsrcpay_bench_<pid>_<n>,
#               dropped (WITH (FORCE)) when that server stops and again on exit.
#   Redis       BENCH_REDIS_URL, else redis://127.0.0.1:6379/0: only the revocation row's two
#               replicas use it (their shared rate-limit budgets and whatever cross-replica
#               invalidation the build has). Nothing is flushed; the service's keys carry its
#               own "hsrcpay:" prefix and ids that are random per run.
#
# Besides requests/s and latency it reports, per request, the server process's CPU time
# (from /proc, which other load on a shared machine disturbs much less than requests/s), and
# the bytes and objects it allocated (go_memstats_alloc_bytes_total and
# go_memstats_mallocs_total from its HSRCPAY_METRICS_ADDR, scraped before and after each wrk
# run). The same scrape counts the responses by status (hsrcpay_http_requests_total): any
# answer other than the scenario's expected status is counted and flagged, so no row
# silently measures the wrong thing. On SQLite, every scenario that writes also samples the
# data directory's largest *-wal file every 0.1 s while wrk runs, and again 5 s after it
# stops (issue 18: the WAL stays bounded under load and shrinks when it stops); a section
# under the table gives the largest of each over the runs.
#
# Scenarios. Each run starts the real server on a fresh store with the demo account,
# MANY_ACCOUNTS (64) more accounts for regenerate_many, and every budget raised to 1000000
# (HSRCPAY_RATE_LIMIT_LIVE/TEST, HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE/TEST,
# HSRCPAY_AUTH_FAILURE_LIMIT, and the key cap HSRCPAY_MAX_ACTIVE_KEYS, since create runs
# make thousands of keys):
#   baseline         bare Echo handler: decode create body, random secret, SHA-256, encode (no store)
#   create           POST /v1/api-keys/, unique name per request                      (201)
#   regenerate       POST /v1/api-keys/{managed publishable id}/regenerate, with the managed
#                    secret key: one hot key, every writer queues on its row (worst case)  (200)
#   regenerate_many  the same over MANY_ACCOUNTS accounts, round robin, each rotating its own
#                    managed publishable key with its own managed secret                  (200)
#   rejected_401     create with a checksum-broken key (rejected before any store access)  (401)
#   rejected_403     create with the publishable key (rejected after the key lookup)       (403)
#   verify           POST /v1/api-keys/verify of a valid custom key, managed secret as caller
#                    (200, valid)
#   verify_allowlist the same of a key restricted to 127.0.0.0/8, client_ip 127.0.0.1  (200, valid)
#   verify_ratelimit the same of a key with its own rate_limit (1000000 per second: never
#                    reached, so every verify spends the key's budget and is VALID)      (200, valid)
#   verify_credits   the same of a key with credits (10^12: never exhausted), cost 1: every
#                    verify spends one credit in the store                              (200, valid)
#                    (issue 22's targets: allowlist and rate limit within 10% of verify's
#                    requests/s in the same run, credits ≥ 0.3× the baseline)
#   list             GET /v1/api-keys/?account_id=…&limit=20: the first page of the account's
#                    keys (LIST_KEYS=120 keys created by curl before it, besides the managed)  (200)
#   audit_list       GET /v1/audit-events?account_id=…&limit=100: the first page of 100 events
#                    (the LIST_KEYS creates' events, bootstrap's and the demo rotation's)      (200)
#   get              GET /v1/api-keys/{id}, round robin over the LIST_KEYS keys               (200)
#   verify_uncached  verify of a key drawn at random per request among VERIFY_KEYS (1000000;
#                    QUICK=1: 100000) keys of one account, seeded once per store before the
#                    runs by .ci/bench/seed (the store's own insert on SQLite, COPY on
#                    PostgreSQL; the seeding time is printed), that account's managed secret
#                    as caller, on a server whose credential cache holds VERIFY_CACHE_KEYS
#                    (10000) keys (HSRCPAY_CREDENTIAL_CACHE_KEYS), so most verifies miss it and
#                    read the store; the row gives the cache misses per request and is flagged
#                    when fewer than half miss. The seeded store is kept across runs (a server
#                    restarted on it per run) and dropped after the last.           (200, valid)
#   create_validated create on a server checking EVERY response (HSRCPAY_VALIDATE_RESPONSES=true,
#                    as tests and CI run); every other row runs the production default   (201)
#   revocation       two replicas on one PostgreSQL database and Redis; .ci/bench/revocation
#                    measures how long a revoked key keeps working on the other replica
#                    (skipped with a note without PostgreSQL or Redis).
#   *_floor          (FLOORS=1, the default) the physical floor of a row that misses its target
#                    (issue 19): list, audit_list, get, create, regenerate and verify_uncached on
#                    both stores, regenerate_many on PostgreSQL. .ci/bench/floor, a bare Echo
#                    server on the same store, runs only the statements the operation cannot do
#                    without (no auth, validation, logging, idempotency, policy: see its routes)
#                    and answers the same shape; it starts beside the real server of the run,
#                    which stays idle while the floor row runs right after the real one, with
#                    the same wrk script, arguments and connections. The table gives each floor
#                    row's ratio against the real row's target (evidence, never a failure of
#                    STRICT, unless its answers were wrong) and, on the real row, "of floor":
#                    its requests/s as a share of the floor's.
# Client and server share this machine's cores: numbers are relative, not capacity.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

QUICK="${QUICK:-0}"
if [ "$QUICK" = 1 ]; then
  RUNS="${RUNS:-1}"
  DURATION="${DURATION:-2s}"
fi
RUNS="${RUNS:-3}"
DURATION="${DURATION:-4s}"
CONNS="${CONNS:-32}"
THREADS="${THREADS:-2}"
STORES="${STORES:-sqlite postgres}"
MANY_ACCOUNTS="${MANY_ACCOUNTS:-64}"
LIST_KEYS="${LIST_KEYS:-120}"
if [ "$QUICK" = 1 ]; then VERIFY_KEYS="${VERIFY_KEYS:-100000}"; fi
VERIFY_KEYS="${VERIFY_KEYS:-1000000}"
VERIFY_CACHE_KEYS="${VERIFY_CACHE_KEYS:-10000}"
SEED_ACCOUNT="acct_seed"
ALL_SCENARIOS="rejected_401 rejected_403 verify verify_allowlist verify_ratelimit verify_credits list audit_list get create regenerate regenerate_many create_validated verify_uncached revocation"
SCENARIOS="${SCENARIOS:-$ALL_SCENARIOS}"
SYNC="${HSRCPAY_SQLITE_SYNCHRONOUS:-NORMAL}"
PG_ADMIN="${BENCH_POSTGRES_URL:-${HSRCPAY_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}}"
REDIS_URL="${BENCH_REDIS_URL:-redis://127.0.0.1:6379/0}"
REVOCATION_TIMEOUT="${REVOCATION_TIMEOUT:-120}"
ACCOUNT="acct_demo"
STRICT="${STRICT:-0}"
FLOORS="${FLOORS:-1}"
GO="${GO:-go}"
START_TS=$SECONDS
# Hermetic: no inherited setting (a Redis URL, a log level...) changes what is measured.
for v in $(compgen -e | grep '^HSRCPAY_' || true); do unset "$v"; done

log() { printf '%s\n' "$*" >&2; }
die() { log "load.sh: $*"; exit 1; }

for s in $STORES; do
  case "$s" in sqlite | postgres) ;; *) die "STORES: unknown store $s (sqlite, postgres)" ;; esac
done
has_store() { [[ " $STORES " == *" $1 "* ]]; }
for s in $SCENARIOS; do
  [[ " $ALL_SCENARIOS " == *" $s "* ]] || die "SCENARIOS: unknown scenario $s ($ALL_SCENARIOS)"
done
want() { [[ " $SCENARIOS " == *" $1 "* ]]; } # whether a scenario is selected
# verify_allowlist's and verify_ratelimit's targets are relative to verify's rate in the same run.
if { want verify_allowlist || want verify_ratelimit; } && ! want verify; then SCENARIOS="verify $SCENARIOS"; fi
# Whether the scenarios run on the main server of one_store are (any of them).
want_main() {
  local s
  for s in rejected_401 rejected_403 verify verify_allowlist verify_ratelimit verify_credits list audit_list get create regenerate regenerate_many; do
    if want "$s"; then return 0; fi
  done
  return 1
}
[ "$LIST_KEYS" -ge 100 ] || die "LIST_KEYS must be at least 100 (audit_list reads a page of 100 events)"

# --- tools ---------------------------------------------------------------------------------
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
command -v curl >/dev/null || die "curl is needed for the pre-flight checks and the metrics"
if has_store postgres; then
  command -v psql >/dev/null || die "psql is needed to create the PostgreSQL databases (or STORES=sqlite)"
  psql "$PG_ADMIN" -qAtc 'SELECT 1' >/dev/null 2>&1 ||
    die "PostgreSQL unreachable at ${PG_ADMIN%%\?*} (set BENCH_POSTGRES_URL, or STORES=sqlite to leave it out)"
fi

# --- processes and databases: everything made here is removed on exit ----------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/hsrcpay-load.XXXXXX")"
PIDS=()
DBS=()
cleanup() {
  local pid db
  for pid in "${PIDS[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${PIDS[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  for db in "${DBS[@]}"; do
    psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 ||
      log "load.sh: could not drop database $db"
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

# new_db: a fresh, empty PostgreSQL database. Sets DB_NAME and DB_URL (the admin URL with
# its database replaced). Globals rather than output: DBS must be updated in this shell.
DB_SEQ=0
new_db() {
  DB_SEQ=$((DB_SEQ + 1))
  DB_NAME="hsrcpay_bench_$$_$DB_SEQ"
  psql "$PG_ADMIN" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE $DB_NAME" >/dev/null || die "CREATE DATABASE $DB_NAME failed"
  DBS+=("$DB_NAME")
  local base="${PG_ADMIN%%\?*}" query=""
  [ "$base" = "$PG_ADMIN" ] || query="?${PG_ADMIN#*\?}"
  DB_URL="${base%/*}/$DB_NAME$query"
}
drop_db() { # name
  local keep=() d
  psql "$PG_ADMIN" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" >/dev/null 2>&1 || log "load.sh: could not drop database $1"
  for d in "${DBS[@]}"; do [ "$d" = "$1" ] || keep+=("$d"); done
  DBS=("${keep[@]}")
}

free_port() { # first free port from $1
  local p="$1"
  while (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; do p=$((p + 1)); done
  echo "$p"
}

wait_http() { # url pid logfile
  local i
  for i in $(seq 1 150); do
    if curl -fsS -o /dev/null "$1" 2>/dev/null; then return 0; fi
    kill -0 "$2" 2>/dev/null || { tail -20 "$3" >&2; die "process for $1 exited"; }
    sleep 0.1
  done
  tail -20 "$3" >&2
  die "$1 did not answer within 15s"
}

# --- build ---------------------------------------------------------------------------------
log "building server and baseline"
"$GO" build -o "$TMP/hsrcpay-server" ./cmd/hsrcpay-server
"$GO" build -o "$TMP/baseline" .ci/bench/baseline/main.go
# Built from its file: an import path may not contain ".ci".
if want verify_uncached; then "$GO" build -o "$TMP/seed" .ci/bench/seed/main.go; fi
if [ "$FLOORS" = 1 ]; then "$GO" build -o "$TMP/floor" .ci/bench/floor/main.go; fi

# --- servers -------------------------------------------------------------------------------
BASE_PORT="$(free_port 18480)"
"$TMP/baseline" -addr "127.0.0.1:$BASE_PORT" >"$TMP/baseline.log" 2>&1 &
BASE_PID=$!
PIDS+=("$BASE_PID")
wait_http "http://127.0.0.1:$BASE_PORT/healthz" "$BASE_PID" "$TMP/baseline.log"

# Every budget raised: the load is one client, and the scenarios measure the work, not 429s.
BUDGETS=(
  HSRCPAY_RATE_LIMIT_LIVE=1000000 HSRCPAY_RATE_LIMIT_TEST=1000000
  HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE=1000000 HSRCPAY_RATE_LIMIT_ACCOUNT_TEST=1000000
  HSRCPAY_MAX_ACTIVE_KEYS=1000000 HSRCPAY_AUTH_FAILURE_LIMIT=1000000
)

# use_store NAME STORE: point HSRCPAY_DATABASE_URL at a fresh store (SQLite directory or
# PostgreSQL database). Sets SRV_DB (the database to drop, or empty) and SRV_DATA (the
# SQLite data directory, or empty).
use_store() {
  SRV_DB=""
  SRV_DATA=""
  case "$2" in
    sqlite)
      SRV_DATA="$TMP/data-$1"
      export HSRCPAY_DATABASE_URL="sqlite:$SRV_DATA" HSRCPAY_SQLITE_SYNCHRONOUS="$SYNC"
      ;;
    postgres)
      new_db
      export HSRCPAY_DATABASE_URL="$DB_URL"
      unset HSRCPAY_SQLITE_SYNCHRONOUS
      SRV_DB="$DB_NAME"
      ;;
  esac
}

# bootstrap_many NAME: MANY_ACCOUNTS accounts (sandbox only), four bootstraps at a time;
# writes "SECRET PUBLISHABLE_ID" per account to $TMP/NAME.many for regenerate_many.lua.
bootstrap_many() {
  local dir="$TMP/$1.many.d"
  mkdir -p "$dir"
  seq -f 'acct_many_%03g' 1 "$MANY_ACCOUNTS" |
    xargs -P4 -I{} sh -c '"$1" bootstrap --account "$2" --mode test >"$3/$2.json"' sh "$TMP/hsrcpay-server" {} "$dir" ||
    die "bootstrapping $MANY_ACCOUNTS accounts failed"
  jq -r '.keys | [(.[] | select(.type == "SECRET") | .secret), (.[] | select(.type == "PUBLISHABLE") | .id)] | join(" ")' \
    "$dir"/*.json >"$TMP/$1.many"
  [ "$(grep -c ' ' "$TMP/$1.many")" = "$MANY_ACCOUNTS" ] || die "expected $MANY_ACCOUNTS accounts in $TMP/$1.many"
}

# start_server NAME STORE VALIDATE MANY: fresh store; bootstrap (for the managed key ids;
# and, when MANY=1, the extra accounts), then serve with the demo account (which rotates
# its managed keys and prints their secrets) and metrics on a side port.
# Sets SRV_PID SRV_URL SRV_METRICS SRV_LOG SRV_DB SECRET PUBLISHABLE PUB_ID.
start_server() {
  local name="$1" store="$2" validate="$3" many="$4" secret_id
  use_store "$name" "$store"
  "$TMP/hsrcpay-server" bootstrap --account "$ACCOUNT" --mode test >"$TMP/$name.bootstrap.json"
  PUB_ID="$(jq -r '.keys[] | select(.type=="PUBLISHABLE") | .id' "$TMP/$name.bootstrap.json")"
  secret_id="$(jq -r '.keys[] | select(.type=="SECRET") | .id' "$TMP/$name.bootstrap.json")"
  [ "$many" = 1 ] && bootstrap_many "$name"
  # "default": the production setting (a sample of responses checked), as a deployment runs.
  local validation=()
  [ "$validate" = default ] || validation=(HSRCPAY_VALIDATE_RESPONSES="$validate")
  serve "$name" "${validation[@]}" HSRCPAY_DEMO_ACCOUNT="$ACCOUNT"
  SECRET="$(sed -n 's/^export HSRCPAY_API_KEY=//p' "$TMP/$name.out")"
  PUBLISHABLE="$(sed -n 's/^export HSRCPAY_PUBLISHABLE_KEY=//p' "$TMP/$name.out")"
  [ -n "$SECRET" ] && [ -n "$PUBLISHABLE" ] && [ -n "$PUB_ID" ] || die "no demo keys in $name output"
  [ "$(sed -n 's/^export HSRCPAY_KEY_ID=//p' "$TMP/$name.out")" = "$secret_id" ] || die "demo key id differs from bootstrap's"
}

# serve NAME [VAR=VALUE...]: start the server on the store HSRCPAY_DATABASE_URL names, with the
# budgets raised, metrics on a side port and the given settings. Sets SRV_PID SRV_URL
# SRV_METRICS SRV_LOG.
serve() {
  local name="$1" port mport
  shift
  port="$(free_port $((BASE_PORT + 1)))"
  mport="$(free_port $((port + 1)))"
  env "${BUDGETS[@]}" "$@" HSRCPAY_ADDR="127.0.0.1:$port" HSRCPAY_METRICS_ADDR="127.0.0.1:$mport" HSRCPAY_LOG_LEVEL=info \
    "$TMP/hsrcpay-server" serve >"$TMP/$name.out" 2>"$TMP/$name.log" &
  SRV_PID=$!
  PIDS+=("$SRV_PID")
  SRV_URL="http://127.0.0.1:$port"
  SRV_METRICS="http://127.0.0.1:$mport/metrics"
  SRV_LOG="$TMP/$name.log"
  wait_http "$SRV_URL/healthz" "$SRV_PID" "$TMP/$name.log"
  wait_http "$SRV_METRICS" "$SRV_PID" "$TMP/$name.log"
}

stop_server() { # NAME: stop the current server, check its log, drop its database
  stop_pid "$SRV_PID"
  check_log "$TMP/$1.log"
  [ -z "$SRV_DB" ] || drop_db "$SRV_DB"
}

# call METHOD URL TOKEN BODY: one request by curl (no body when BODY is empty); prints the
# status, body in $TMP/call.body.
call() {
  local body=()
  [ -z "$4" ] || body=(-H 'Content-Type: application/json' --data "$4")
  curl -s -o "$TMP/call.body" -w '%{http_code}' -X "$1" "$2" -H "Authorization: Bearer $3" "${body[@]}"
}

# expect_page PATH TOKEN N: GET PATH must answer 200 with a page of N items, more following.
expect_page() {
  expect 200 GET "$SRV_URL$1" "$2" ""
  jq -e --argjson n "$3" '.data.object == "list" and (.data.data | length) == $n and .data.has_more' "$TMP/call.body" >/dev/null ||
    { head -c 600 "$TMP/call.body" >&2; die "GET $1: want a page of $3 items"; }
}

# create_listed NAME: LIST_KEYS keys on the demo account by curl (the list, audit_list and
# get rows read them); their ids in $TMP/NAME.ids.
create_listed() {
  local i got
  : >"$TMP/$1.ids"
  for i in $(seq 1 "$LIST_KEYS"); do
    got="$(call POST "$SRV_URL/v1/api-keys/?account_id=$ACCOUNT" "$SECRET" \
      "{\"name\":\"listed $i\",\"permissions\":{\"payment\":[\"read\"]},\"metadata\":{\"team\":\"bench\"}}")"
    [ "$got" = 201 ] || { cat "$TMP/call.body" >&2; die "creating the listed keys: want 201, got $got"; }
    jq -er '.data.id' "$TMP/call.body" >>"$TMP/$1.ids" || die "creating the listed keys: no id"
  done
}

# expect STATUS METHOD URL TOKEN BODY: one request before the load, so a scenario never
# measures the wrong answer.
expect() {
  local got
  got="$(call "$2" "$3" "$4" "$5")"
  [ "$got" = "$1" ] || { cat "$TMP/call.body" >&2; die "$2 $3: want $1, got $got"; }
}

# check_log FILE: fail on a server error, except requests that wrk abandoned when its run
# ended (their context is canceled mid-query; the client is gone) and store calls that
# exceeded the store timeout (503 50300, "store call exceeded"): each of those answered a
# 503, which its row counts as an unexpected status and is flagged for; an overloaded store
# is a measurement, not a broken harness.
check_log() {
  local errs
  errs="$(grep '"level":"ERROR"' "$1" | grep -v 'context canceled' | grep -Ev '"code":50300,.*store call exceeded' || true)"
  [ -z "$errs" ] || { head -5 <<<"$errs" >&2; die "server logged errors ($1)"; }
}

broken_checksum() { # change the last character
  local t="$1" last="${1: -1}"
  [ "$last" = "A" ] && echo "${t%?}B" || echo "${t%?}A"
}

# wal_size DIR: the size in bytes of the largest SQLite WAL (*-wal) in DIR, 0 when none.
wal_size() {
  local f n max=0
  for f in "$1"/*-wal; do
    [ -e "$f" ] || continue
    n="$(stat -c %s "$f" 2>/dev/null || echo 0)"
    [ "$n" -le "$max" ] || max="$n"
  done
  echo "$max"
}

# wal_sampler DIR OUT: every 0.1 s, the largest WAL seen so far in DIR into OUT, until
# killed (issue 18: the WAL must stay bounded under load).
wal_sampler() {
  local max=0 n
  echo 0 >"$2"
  while :; do
    n="$(wal_size "$1")"
    if [ "$n" -gt "$max" ]; then max="$n"; echo "$max" >"$2.new" && mv "$2.new" "$2"; fi # never read half-written
    sleep 0.1
  done
}

# writes SCENARIO: whether the scenario writes (its WAL is sampled on SQLite).
writes() { case "$1" in create | create_validated | regenerate | regenerate_many) return 0 ;; *) return 1 ;; esac; }

cputicks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; } # user+system clock ticks of a pid

# scrape METRICS_URL: "ALLOC_BYTES MALLOCS CACHE_MISSES status:count status:count..." (counts
# summed over operations; CACHE_MISSES: credential cache lookups that read the store), or "-"
# for a process without metrics (the baseline).
scrape() {
  [ "$1" != - ] || { echo -; return; }
  curl -fsS "$1" | awk '
    /^go_memstats_alloc_bytes_total / { a = $2 }
    /^go_memstats_mallocs_total / { m = $2 }
    /^hsrcpay_credential_cache_lookups_total\{result="miss"\} / { miss = $2 }
    /^hsrcpay_http_requests_total\{/ {
      if (match($0, /status="[0-9]+"/)) c[substr($0, RSTART + 8, RLENGTH - 9)] += $NF
    }
    END { printf "%.0f %.0f %.0f", a, m, miss; for (s in c) printf " %s:%.0f", s, c[s]; print "" }'
}

gone() { # LOG: requests the server saw abandoned by their client so far ("-": none kept)
  [ "$1" != - ] || { echo 0; return; }
  grep -c 'client went away before the response' "$1" || true
}

# run_wrk SCENARIO STORE RUN PID METRICS LOG EXPECT SCRIPT URL ARGS...: one wrk run; its
# RESULT line, plus the server's CPU time, allocated bytes and allocations per request and
# the responses other than EXPECT (from the server's own counters), goes to $TMP/results.
# When wrk's time is up it closes its connections with requests in flight; the server
# answers those 500 (or 503) and logs "client went away" for each: they are counted as abandoned,
# not as unexpected answers.
run_wrk() {
  local scenario="$1" store="$2" run="$3" pid="$4" metrics="$5" slog="$6" want="$7" script="$8" url="$9"
  shift 9
  local out line t0 t1 m0 m1 g0 g1 extra sampler="" wal=""
  if [ "$store" = sqlite ] && [ -n "$SRV_DATA" ] && writes "$scenario"; then
    wal_sampler "$SRV_DATA" "$TMP/wal.max" &
    sampler=$!
    PIDS+=("$sampler")
  fi
  g0="$(gone "$slog")"
  m0="$(scrape "$metrics")"
  t0="$(cputicks "$pid")"
  out="$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$script" "$url" -- "$@" 2>&1)" ||
    { echo "$out" >&2; die "wrk failed for $scenario on $store"; }
  # Requests wrk abandoned when its time was up finish now: let them count where they ran.
  sleep 0.2
  t1="$(cputicks "$pid")"
  m1="$(scrape "$metrics")"
  g1="$(gone "$slog")"
  line="$(grep '^RESULT ' <<<"$out")" || { echo "$out" >&2; die "no RESULT from wrk for $scenario on $store"; }
  # Per request: divided by what the server counted when it has metrics (it also counts
  # the requests wrk abandoned, whose work is in the totals), else by wrk's count.
  extra="$(awk -v l="$line" -v m0="$m0" -v m1="$m1" -v t="$((t1 - t0))" -v hz="$HZ" -v want="$want" -v gone="$((g1 - g0))" 'BEGIN {
    match(l, /requests=[0-9]+/); n = substr(l, RSTART + 9, RLENGTH - 9) + 0
    if (m0 == "-") { printf "cpu_us=%.1f alloc_b=- allocs=- misses=- other=0 other_detail=- abandoned=0", (n > 0 ? t / hz / n * 1e6 : 0); exit }
    split(m0, a, " "); split(m1, b, " ")
    for (i = 4; i in a; i++) { split(a[i], kv, ":"); before[kv[1]] = kv[2] }
    served = 0; other = 0; detail = ""
    for (i = 4; i in b; i++) {
      split(b[i], kv, ":"); d = kv[2] - before[kv[1]]
      if (d <= 0) continue
      served += d
      if ((kv[1] == "500" || kv[1] == "503") && want != kv[1]) { x = (d < gone - ab ? d : gone - ab); ab += x; d -= x }
      if (kv[1] != want && d > 0) { other += d; detail = detail (detail == "" ? "" : ",") kv[1] ":" d }
    }
    if (served == 0) served = n
    printf "cpu_us=%.1f alloc_b=%.0f allocs=%.1f misses=%.3f other=%d other_detail=%s abandoned=%d", (served > 0 ? t / hz / served * 1e6 : 0),
      (b[1] - a[1]) / served, (b[2] - a[2]) / served, (b[3] - a[3]) / served, other, (detail == "" ? "-" : detail), ab + 0
  }')"
  line="${line#RESULT } $extra"
  if [ -n "$sampler" ]; then
    # The WAL's largest size while wrk ran, and its size 5 s after (idle).
    stop_pid "$sampler"
    sleep 5
    wal="wal_max_b=$(cat "$TMP/wal.max") wal_after_b=$(wal_size "$SRV_DATA")"
    line="$line $wal"
  fi
  echo "$scenario@$store run=$run $line" >>"$TMP/results"
  log "  $(printf '%-16s %-8s' "$scenario" "$store") $line"
}

# one_store STORE RUN TAG: every selected scenario but the baseline on fresh stores of that kind
# (verify_uncached on the store seed_store seeded).
one_store() {
  local store="$1" run="$2" tag="$3" name="real-$1-$2" bad custom create_body got many=0 paths id
  create_body='{"name":"preflight","permissions":{"payment":["read"]}}'
  if want_main; then
    if want regenerate_many; then many=1; fi
    start_server "$name" "$store" default "$many"
    bad="$(broken_checksum "$SECRET")"
    expect 401 POST "$SRV_URL/v1/api-keys/?account_id=$ACCOUNT" "$bad" "$create_body"
    expect 403 POST "$SRV_URL/v1/api-keys/?account_id=$ACCOUNT" "$PUBLISHABLE" "$create_body"
    expect 201 POST "$SRV_URL/v1/api-keys/?account_id=$ACCOUNT" "$SECRET" "$create_body"
    custom="$(jq -r '.data.key // empty' "$TMP/call.body")"
    [ -n "$custom" ] || die "pre-flight create returned no key"
    if want rejected_401; then
      run_wrk rejected_401 "$store" "$run" "$SRV_PID" "$SRV_METRICS" "$SRV_LOG" 401 .ci/bench/rejected.lua "$SRV_URL" "$bad" "$ACCOUNT"
    fi
    if want rejected_403; then
      run_wrk rejected_403 "$store" "$run" "$SRV_PID" "$SRV_METRICS" "$SRV_LOG" 403 .ci/bench/rejected.lua "$SRV_URL" "$PUBLISHABLE" "$ACCOUNT"
    fi
    if want verify; then
      expect_valid "$store" "$SECRET" "$custom"
      run_wrk verify "$store" "$run" "$SRV_PID" "$SRV_METRICS" "$SRV_LOG" 200 .ci/bench/verify.lua "$SRV_URL" "$SECRET" "$custom"
    fi
    # Issue 22's per-key controls: the same verify of a key carrying one control each.
    if want verify_allowlist; then
      control_key allowlist '"allowed_networks":["127.0.0.0/8"]'
      expect_valid "$store" "$SECRET" "$CONTROL_KEY" ',"client_ip":"127.0.0.1"'
      jq -e '.data.valid' "$TMP/call.body" >/dev/null || die "pre-flight verify_allowlist: not VALID"
      expect_verdict "$store" "$SECRET" "$CONTROL_KEY" ',"client_ip":"10.1.2.3"' NETWORK_NOT_ALLOWED
      run_wrk verify_allowlist "$store" "$run" "$SRV_PID" "$SRV_METRICS" "$SRV_LOG" 200 .ci/bench/verify.lua "$SRV_URL" "$SECRET" "$CONTROL_KEY" ',"client_ip":"127.0.0.1"'
    fi
    if want verify_ratelimit; then
      control_key ratelimit '"rate_limit":{"limit":1000000,"window":"1s"}'
      jq -e '.data.rate_limit.limit == 1000000' "$TMP/call.body" >/dev/null || die "pre-flight verify_ratelimit: the key has no rate_limit"
      expect_valid "$store" "$SECRET" "$CONTROL_KEY"
      run_wrk verify_ratelimit "$store" "$run" "$SRV_PID" "$SRV_METRICS" "$SRV_LOG" 200 .ci/bench/verify.lua "$SRV_URL" "$SECRET" "$CONTROL_KEY"
    fi
    if want verify_credits; then
      control_key credits '"credits":{"remaining":1000000000000}'
      expect_valid "$store" "$SECRET" "$CONTROL_KEY"
      jq -e '.data.credits_remaining == 999999999999' "$TMP/call.body" >/dev/null ||
        { cat "$TMP/call.body" >&2; die "pre-flight verify_credits: the verify spent no credit"; }
      local ok0 ok1 spent
      ok0="$(scrape "$SRV_METRICS" | tr ' ' '\n' | sed -n 's/^200://p')"
      run_wrk verify_credits "$store" "$run" "$SRV_PID" "$SRV_METRICS" "$SRV_LOG" 200 .ci/bench/verify.lua "$SRV_URL" "$SECRET" "$CONTROL_KEY"
      ok1="$(scrape "$SRV_METRICS" | tr ' ' '\n' | sed -n 's/^200://p')"
      # Exact: every VALID answer spent one credit, no more, no fewer (the server's count
      # of 200s during the load, plus the pre-flight's one spend; a cost-0 verify reads).
      expect_valid "$store" "$SECRET" "$CONTROL_KEY" ',"cost":0'
      spent=$((1000000000000 - $(jq -r '.data.credits_remaining' "$TMP/call.body")))
      log "  verify_credits $store: $spent credits spent, $((ok1 - ok0)) VALID answers and the pre-flight's"
      echo "verify_credits@$store $spent $((ok1 - ok0 + 1))" >>"$TMP/credits"
    fi

    # The read rows, on keys (and their audit events) made beforehand, before create adds thousands.
    if want list || want audit_list || want get; then
      create_listed "$name"
    fi
    if want list; then
      expect_page "/v1/api-keys/?account_id=$ACCOUNT&limit=20" "$SECRET" 20
      run_wrk list "$store" "$run" "$SRV_PID" "$SRV_METRICS" "$SRV_LOG" 200 .ci/bench/get.lua "$SRV_URL" "$SECRET" "/v1/api-keys/?account_id=$ACCOUNT&limit=20"
      if has_floor list "$store"; then
        ensure_floor "$name"
        floor_page "/v1/api-keys/?account_id=$ACCOUNT&limit=20" 20
        floor_row list "$store" "$run" 200 .ci/bench/get.lua "$SECRET" "/v1/api-keys/?account_id=$ACCOUNT&limit=20"
      fi
    fi
    if want audit_list; then
      expect_page "/v1/audit-events?account_id=$ACCOUNT&limit=100" "$SECRET" 100
      run_wrk audit_list "$store" "$run" "$SRV_PID" "$SRV_METRICS" "$SRV_LOG" 200 .ci/bench/get.lua "$SRV_URL" "$SECRET" "/v1/audit-events?account_id=$ACCOUNT&limit=100"
      if has_floor audit_list "$store"; then
        ensure_floor "$name"
        floor_page "/v1/audit-events?account_id=$ACCOUNT&limit=100" 100
        floor_row audit_list "$store" "$run" 200 .ci/bench/get.lua "$SECRET" "/v1/audit-events?account_id=$ACCOUNT&limit=100"
      fi
    fi
    if want get; then
      paths=()
      while read -r id; do paths+=("/v1/api-keys/$id"); done <"$TMP/$name.ids"
      expect 200 GET "$SRV_URL${paths[0]}" "$SECRET" ""
      jq -e --arg id "${paths[0]##*/}" '.data.id == $id' "$TMP/call.body" >/dev/null || die "pre-flight get: not the key asked for"
      run_wrk get "$store" "$run" "$SRV_PID" "$SRV_METRICS" "$SRV_LOG" 200 .ci/bench/get.lua "$SRV_URL" "$SECRET" "${paths[@]}"
      if has_floor get "$store"; then
        ensure_floor "$name"
        expect 200 GET "$FLOOR_URL${paths[0]}" - ""
        jq -e --arg id "${paths[0]##*/}" '.data.id == $id' "$TMP/call.body" >/dev/null || die "floor pre-flight get: not the key asked for"
        floor_row get "$store" "$run" 200 .ci/bench/get.lua "$SECRET" "${paths[@]}"
      fi
    fi

    if want create; then
      run_wrk create "$store" "$run" "$SRV_PID" "$SRV_METRICS" "$SRV_LOG" 201 .ci/bench/create.lua "$SRV_URL" "$SECRET" "$ACCOUNT" "$tag"
      if has_floor create "$store"; then
        ensure_floor "$name"
        expect 201 POST "$FLOOR_URL/v1/api-keys/?account_id=$ACCOUNT" - '{"name":"preflight floor","permissions":{"payment":["read"]}}'
        floor_row create "$store" "$run" 201 .ci/bench/create.lua "$SECRET" "$ACCOUNT" "$tag-floor"
      fi
    fi
    if want regenerate; then
      # Regenerating the publishable key invalidates it: this runs after rejected_403.
      expect 200 POST "$SRV_URL/v1/api-keys/$PUB_ID/regenerate" "$SECRET" '{}'
      run_wrk regenerate "$store" "$run" "$SRV_PID" "$SRV_METRICS" "$SRV_LOG" 200 .ci/bench/regenerate.lua "$SRV_URL" "$SECRET" "$PUB_ID"
      if has_floor regenerate "$store"; then
        ensure_floor "$name"
        expect 200 POST "$FLOOR_URL/v1/api-keys/$PUB_ID/regenerate" - '{}'
        floor_row regenerate "$store" "$run" 200 .ci/bench/regenerate.lua "$SECRET" "$PUB_ID"
      fi
    fi
    if want regenerate_many; then
      local first
      read -r -a first <"$TMP/$name.many"
      expect 200 POST "$SRV_URL/v1/api-keys/${first[1]}/regenerate" "${first[0]}" '{}'
      run_wrk regenerate_many "$store" "$run" "$SRV_PID" "$SRV_METRICS" "$SRV_LOG" 200 .ci/bench/regenerate_many.lua "$SRV_URL" "$TMP/$name.many" "$THREADS"
      if has_floor regenerate_many "$store"; then
        ensure_floor "$name"
        expect 200 POST "$FLOOR_URL/v1/api-keys/${first[1]}/regenerate" - '{}'
        floor_row regenerate_many "$store" "$run" 200 .ci/bench/regenerate_many.lua "$TMP/$name.many" "$THREADS"
      fi
    fi
    stop_floor
    stop_server "$name"
  fi

  if want create_validated; then
    name="validated-$store-$run"
    start_server "$name" "$store" true 0
    expect 201 POST "$SRV_URL/v1/api-keys/?account_id=$ACCOUNT" "$SECRET" "$create_body"
    run_wrk create_validated "$store" "$run" "$SRV_PID" "$SRV_METRICS" "$SRV_LOG" 201 .ci/bench/create.lua "$SRV_URL" "$SECRET" "$ACCOUNT" "$tag"
    stop_server "$name"
  fi

  if want verify_uncached; then
    name="seeded-$store-$run"
    use_seeded "$store"
    serve "$name" HSRCPAY_CREDENTIAL_CACHE_KEYS="$VERIFY_CACHE_KEYS"
    local secrets="${SEEDED_SECRETS[$store]}" caller="${SEEDED_CALLER[$store]}" n
    n="$(wc -l <"$secrets")"
    # Three of them (the first, one at random, the last) must be VALID: no row measures NOT_FOUND.
    for got in 1 $(((RANDOM * 32768 + RANDOM) % n + 1)) "$n"; do
      expect_valid "$store" "$caller" "$(sed -n "${got}p" "$secrets")"
    done
    run_wrk verify_uncached "$store" "$run" "$SRV_PID" "$SRV_METRICS" "$SRV_LOG" 200 .ci/bench/verify_uncached.lua "$SRV_URL" "$caller" "$secrets" "$THREADS"
    if has_floor verify_uncached "$store"; then
      # The same seeded store, the real server idle beside it.
      ensure_floor "$name"
      for got in 1 $(((RANDOM * 32768 + RANDOM) % n + 1)) "$n"; do
        floor_valid "$(sed -n "${got}p" "$secrets")"
      done
      floor_row verify_uncached "$store" "$run" 200 .ci/bench/verify_uncached.lua "$caller" "$secrets" "$THREADS"
      stop_floor
    fi
    stop_server "$name"
  fi
}

# --- floors (issue 19) ---------------------------------------------------------------------
# has_floor SCENARIO STORE: whether the scenario is selected and has a floor row on that store
# (FLOORS=1): the rows that miss a target of issue 19 (regenerate_many has one on PostgreSQL only).
has_floor() {
  [ "$FLOORS" = 1 ] && want "$1" || return 1
  case "$1@$2" in
    list@* | audit_list@* | get@* | create@* | regenerate@* | verify_uncached@* | regenerate_many@postgres) return 0 ;;
    *) return 1 ;;
  esac
}

# ensure_floor NAME: .ci/bench/floor on the store HSRCPAY_DATABASE_URL names (the running real
# server's: the floor reads what the real row read), metrics on a side port, unless it runs
# already. Sets FLOOR_PID FLOOR_URL FLOOR_METRICS FLOOR_LOG.
FLOOR_PID=""
ensure_floor() {
  [ -z "$FLOOR_PID" ] || return 0
  local port mport
  port="$(free_port $((BASE_PORT + 20)))"
  mport="$(free_port $((port + 1)))"
  FLOOR_LOG="$TMP/$1.floor.log"
  "$TMP/floor" -db "$HSRCPAY_DATABASE_URL" -mode test -sqlite-synchronous "$SYNC" \
    -addr "127.0.0.1:$port" -metrics "127.0.0.1:$mport" >"$FLOOR_LOG" 2>&1 &
  FLOOR_PID=$!
  PIDS+=("$FLOOR_PID")
  FLOOR_URL="http://127.0.0.1:$port"
  FLOOR_METRICS="http://127.0.0.1:$mport/metrics"
  wait_http "$FLOOR_URL/healthz" "$FLOOR_PID" "$FLOOR_LOG"
  wait_http "$FLOOR_METRICS" "$FLOOR_PID" "$FLOOR_LOG"
}

stop_floor() { # stop the floor server, if one runs; anything it logged (a failed usage flush) stops the script
  [ -n "$FLOOR_PID" ] || return 0
  stop_pid "$FLOOR_PID"
  FLOOR_PID=""
  [ ! -s "$FLOOR_LOG" ] || { head -5 "$FLOOR_LOG" >&2; die "the floor server logged errors ($FLOOR_LOG)"; }
}

# floor_row SCENARIO STORE RUN EXPECT SCRIPT ARGS...: the floor row of SCENARIO, as run_wrk
# runs the real one (same script and arguments), against the floor server.
floor_row() {
  local s="$1" store="$2" run="$3" want="$4" script="$5"
  shift 5
  run_wrk "${s}_floor" "$store" "$run" "$FLOOR_PID" "$FLOOR_METRICS" - "$want" "$script" "$FLOOR_URL" "$@"
}

# floor_page PATH N: the floor's GET PATH must answer 200 with a page of N items, more following.
floor_page() {
  expect 200 GET "$FLOOR_URL$1" - ""
  jq -e --argjson n "$2" '.data.object == "list" and (.data.data | length) == $n and .data.has_more' "$TMP/call.body" >/dev/null ||
    { head -c 600 "$TMP/call.body" >&2; die "floor GET $1: want a page of $2 items"; }
}

# floor_valid KEY: the floor's verify of KEY answers 200, VALID.
floor_valid() {
  expect 200 POST "$FLOOR_URL/v1/api-keys/verify" - "{\"key\":\"$1\"}"
  jq -e '.data.valid == true and .data.code == "VALID"' "$TMP/call.body" >/dev/null ||
    { cat "$TMP/call.body" >&2; die "floor pre-flight verify: the key is not VALID"; }
}

# control_key NAME FIELDS: creates a custom key with the create body's extra JSON FIELDS
# into CONTROL_KEY (its answer stays in $TMP/call.body).
control_key() {
  expect 201 POST "$SRV_URL/v1/api-keys/?account_id=$ACCOUNT" "$SECRET" "{\"name\":\"control-$1\",\"permissions\":{\"payment\":[\"read\"]},$2}"
  CONTROL_KEY="$(jq -r '.data.key // empty' "$TMP/call.body")"
  [ -n "$CONTROL_KEY" ] || die "pre-flight create of the $1 key returned no key"
}

# expect_verdict STORE CALLER KEY EXTRA CODE: verify of KEY (verify body's extra JSON EXTRA)
# by CALLER answers 200 with verdict CODE.
expect_verdict() {
  local got
  got="$(call POST "$SRV_URL/v1/api-keys/verify" "$2" "{\"key\":\"$3\"$4}")"
  [ "$got" = 200 ] && jq -e --arg c "$5" '.data.code == $c' "$TMP/call.body" >/dev/null ||
    { cat "$TMP/call.body" >&2; die "pre-flight verify on $1: want 200 $5, got $got"; }
}

# expect_valid STORE CALLER KEY [EXTRA]: verify of KEY by CALLER answers 200, VALID.
expect_valid() {
  local got
  got="$(call POST "$SRV_URL/v1/api-keys/verify" "$2" "{\"key\":\"$3\"${4:-}}")"
  [ "$got" = 200 ] || { cat "$TMP/call.body" >&2; die "pre-flight verify on $1: want 200, got $got"; }
  jq -e '.data.valid == true and .data.code == "VALID"' "$TMP/call.body" >/dev/null ||
    { cat "$TMP/call.body" >&2; die "pre-flight verify on $1: the key is not VALID"; }
}

# seed_store STORE: a fresh store of that kind with the account SEED_ACCOUNT (bootstrap) and
# VERIFY_KEYS keys on it (.ci/bench/seed), kept for every run's verify_uncached row and dropped
# after the last (drop_seeded). The secrets go to SEEDED_SECRETS[STORE], the account's
# managed secret (the caller) to SEEDED_CALLER[STORE]; SEED's line to $TMP/seeding.
declare -A SEEDED_URL SEEDED_DB SEEDED_DIR SEEDED_SECRETS SEEDED_CALLER
seed_store() {
  local store="$1" name="seeded-$1" out
  use_store "$name" "$store"
  SEEDED_URL[$store]="$HSRCPAY_DATABASE_URL"
  SEEDED_DB[$store]="$SRV_DB"
  SEEDED_DIR[$store]="$SRV_DATA"
  SEEDED_SECRETS[$store]="$TMP/$name.secrets"
  "$TMP/hsrcpay-server" bootstrap --account "$SEED_ACCOUNT" --mode test >"$TMP/$name.bootstrap.json"
  SEEDED_CALLER[$store]="$(jq -r '.keys[] | select(.type=="SECRET") | .secret' "$TMP/$name.bootstrap.json")"
  log "seeding $VERIFY_KEYS keys on $store for verify_uncached"
  out="$("$TMP/seed" -db "$HSRCPAY_DATABASE_URL" -account "$SEED_ACCOUNT" -mode test -n "$VERIFY_KEYS" \
    -out "${SEEDED_SECRETS[$store]}" -sqlite-synchronous "$SYNC")" || die "seeding $store failed"
  grep '^SEED ' <<<"$out" >>"$TMP/seeding" || die "no SEED line from the seeding of $store"
  log "  $(tail -1 "$TMP/seeding")"
}

use_seeded() { # STORE: point HSRCPAY_DATABASE_URL at the seeded store (stop_server keeps it)
  export HSRCPAY_DATABASE_URL="${SEEDED_URL[$1]}"
  if [ "$1" = sqlite ]; then export HSRCPAY_SQLITE_SYNCHRONOUS="$SYNC"; else unset HSRCPAY_SQLITE_SYNCHRONOUS; fi
  SRV_DB=""
  SRV_DATA=""
}

drop_seeded() { # STORE
  if [ -n "${SEEDED_DB[$1]}" ]; then drop_db "${SEEDED_DB[$1]}"; fi
  if [ -n "${SEEDED_DIR[$1]}" ]; then rm -rf "${SEEDED_DIR[$1]}"; fi
  rm -f "${SEEDED_SECRETS[$1]}"
}

# --- revocation delay ------------------------------------------------------------------------
redis_up() {
  local hostport="${REDIS_URL#*://}"
  hostport="${hostport#*@}"
  hostport="${hostport%%/*}"
  (exec 3<>"/dev/tcp/${hostport%:*}/${hostport##*:}") 2>/dev/null
}

# revocation: two replicas on one fresh PostgreSQL database sharing Redis; the program in
# .ci/bench/revocation (-a URL -b URL -key SECRET -account ID) prints
# "REVOCATION n=… p50_ms=… p99_ms=… max_ms=…", kept in $TMP/revocation.
revocation() {
  if ! has_store postgres; then
    echo "revocation@postgres+redis needs PostgreSQL (STORES has no postgres)" >>"$TMP/skipped"; return
  fi
  if ! redis_up; then
    echo "revocation@postgres+redis Redis unreachable at $REDIS_URL (set BENCH_REDIS_URL)" >>"$TMP/skipped"; return
  fi
  log "revocation delay: two replicas on one PostgreSQL database, Redis $REDIS_URL"
  local files=() f
  for f in .ci/bench/revocation/*.go; do [[ "$f" == *_test.go ]] || files+=("$f"); done
  # Built from its files: an import path may not contain ".ci".
  "$GO" build -o "$TMP/revocation" "${files[@]}"
  use_store revocation postgres
  local db="$SRV_DB" acct=acct_revocation secret a b pa pb out
  "$TMP/hsrcpay-server" bootstrap --account "$acct" --mode test >"$TMP/revocation.bootstrap.json"
  secret="$(jq -r '.keys[] | select(.type=="SECRET") | .secret' "$TMP/revocation.bootstrap.json")"
  a="$(free_port $((BASE_PORT + 1)))"
  env "${BUDGETS[@]}" HSRCPAY_ADDR="127.0.0.1:$a" HSRCPAY_METRICS_ADDR= HSRCPAY_REDIS_URL="$REDIS_URL" \
    "$TMP/hsrcpay-server" serve >"$TMP/replica-a.out" 2>"$TMP/replica-a.log" &
  pa=$!
  PIDS+=("$pa")
  wait_http "http://127.0.0.1:$a/healthz" "$pa" "$TMP/replica-a.log"
  b="$(free_port $((a + 1)))"
  env "${BUDGETS[@]}" HSRCPAY_ADDR="127.0.0.1:$b" HSRCPAY_METRICS_ADDR= HSRCPAY_REDIS_URL="$REDIS_URL" \
    "$TMP/hsrcpay-server" serve >"$TMP/replica-b.out" 2>"$TMP/replica-b.log" &
  pb=$!
  PIDS+=("$pb")
  wait_http "http://127.0.0.1:$b/healthz" "$pb" "$TMP/replica-b.log"
  out="$(timeout "$REVOCATION_TIMEOUT" "$TMP/revocation" -a "http://127.0.0.1:$a/v1" -b "http://127.0.0.1:$b/v1" \
    -key "$secret" -account "$acct" 2>"$TMP/revocation.log")" ||
    { tail -20 "$TMP/revocation.log" >&2; die "the revocation program failed"; }
  grep -m1 '^REVOCATION ' <<<"$out" >"$TMP/revocation" || { echo "$out" >&2; die "no REVOCATION line from the program"; }
  log "  $(cat "$TMP/revocation")"
  stop_pid "$pa"
  stop_pid "$pb"
  check_log "$TMP/replica-a.log"
  check_log "$TMP/replica-b.log"
  drop_db "$db"
}

# --- runs ----------------------------------------------------------------------------------
HZ="$(getconf CLK_TCK)"
WRK_CMD="wrk -t$THREADS -c$CONNS -d$DURATION --latency -s .ci/bench/<scenario>.lua"
log "load before: $(uptime)"
: >"$TMP/results"
: >"$TMP/skipped"
: >"$TMP/seeding"
if want verify_uncached; then
  for store in $STORES; do seed_store "$store"; done
fi
for run in $(seq 1 "$RUNS"); do
  log "run $run/$RUNS"
  tag="r$run-$$"
  run_wrk baseline - "$run" "$BASE_PID" - - - .ci/bench/create.lua "http://127.0.0.1:$BASE_PORT" none "$ACCOUNT" "$tag"
  for store in $STORES; do
    one_store "$store" "$run" "$tag"
  done
done
if want verify_uncached; then
  for store in $STORES; do drop_seeded "$store"; done
fi
if want revocation; then revocation; fi
log "load after:  $(uptime)"

# --- report --------------------------------------------------------------------------------
field_values() { # key field: every run's value, one per line
  awk -v s="$1" -v f="$2" '$1 == s { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print kv[2] } }' "$TMP/results"
}
median() { # key field
  field_values "$1" "$2" | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print 0; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
total() { field_values "$1" "$2" | awk '{ n += $1 } END { print n + 0 }'; }
all_runs() { field_values "$1" rps | awk '{ printf "%s%.0f", (NR > 1 ? "," : ""), $1 }'; }
ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }
# Character counts for the table's padding (${#v} counts bytes in the C locale).
if locale -a 2>/dev/null | grep -qix 'c.utf-\?8'; then export LC_ALL=C.UTF-8; fi

# target SCENARIO STORE: "MIN_RATIO MAX_P99_MS MAX_ALLOC_BYTES MAX_CPU_US" ("-" where none):
# issue 11's, as issue 19 revised them and with its read rows. A row meets its target when
# it meets every bound it has.
target() {
  case "$1@$2" in
    create@sqlite) echo "0.25 10 20000 -" ;;
    create@postgres) echo "0.10 50 20000 -" ;;
    regenerate@sqlite) echo "0.30 10 - -" ;;
    regenerate@postgres) echo "0.05 - - -" ;;
    regenerate_many@postgres) echo "0.15 - - -" ;;
    rejected_401@* | rejected_403@*) echo "0.85 - - -" ;;
    verify@*) echo "0.85 5 - -" ;;
    verify_allowlist@* | verify_ratelimit@*) echo "$(awk -v r="$(median "verify@$2" rps)" -v b="$base_rps" 'BEGIN { printf "%.2f", (b > 0 ? 0.9 * r / b : 0) }') - - -" ;;
    verify_credits@*) echo "0.3 - - -" ;;
    list@*) echo "0.25 - - -" ;;
    audit_list@*) echo "0.15 - - -" ;;
    get@*) echo "0.6 - - -" ;;
    verify_uncached@*) echo "- - - 80" ;;
    *) echo "- - - -" ;;
  esac
}

target_text() { # MIN_RATIO MAX_P99_MS MAX_ALLOC_BYTES MAX_CPU_US
  local t=()
  [ "$1" = - ] || t+=("≥$1×")
  [ "$2" = - ] || t+=("p99≤$2ms")
  [ "$3" = - ] || t+=("≤$(($3 / 1000))KB/req")
  [ "$4" = - ] || t+=("CPU≤$4µs")
  if [ "${#t[@]}" = 0 ]; then echo -; else (IFS=' '; echo "${t[*]}"); fi
}

# row CELLS...: one Markdown table row, padded by characters (not bytes: µ, ≥, ≤ and ×
# take two or three) so that it also reads as a table in a terminal.
WIDTHS=(21 14 10 9 9 5 8 8 9 10 29 23 0)
ALIGN=(l l r r r r r r r r l l l)
row() {
  local out="|" i=0 v sp
  for v in "$@"; do
    sp="$(printf '%*s' $((WIDTHS[i] > ${#v} ? WIDTHS[i] - ${#v} : 0)) '')"
    if [ "${ALIGN[i]}" = r ]; then out+=" $sp$v |"; else out+=" $v$sp |"; fi
    i=$((i + 1))
  done
  echo "$out"
}
rule() {
  local out="|" i w
  for i in "${!WIDTHS[@]}"; do
    w="$(printf '%*s' $((WIDTHS[i] > 3 ? WIDTHS[i] : 3)) '' | tr ' ' -)"
    if [ "${ALIGN[i]}" = r ]; then out+="-${w}:|"; else out+="-$w-|"; fi
  done
  echo "$out"
}

base_rps="$(median baseline@- rps)"
missed=0
notes=()
echo
echo "Loopback load, median of $RUNS runs: $WRK_CMD (client and server share $(nproc) cores; load average before/after on stderr)"
echo "Per request, on the server: CPU = process user+system time (less disturbed by other load than requests/s);"
echo "alloc/allocs = go_memstats_alloc_bytes_total / go_memstats_mallocs_total deltas (Go heap, all goroutines)."
if [ "$FLOORS" = 1 ]; then
  echo "*_floor: the physical floor of the row above it (.ci/bench/floor on the same store: only the statements the operation"
  echo "cannot do without, the same driver and pool, no auth, validation, logging, idempotency or policy); its result: whether the"
  echo "floor itself meets the real row's target. \"of floor\": the real row's requests/s over its floor's (FLOORS=0: no floor rows)."
fi
[ "$SCENARIOS" = "$ALL_SCENARIOS" ] || echo "Scenarios: $SCENARIOS (SCENARIOS); the baseline always."
echo "Stores: SQLite WAL, synchronous=$SYNC$([ "$SYNC" = NORMAL ] && echo ' (a commit survives a process crash, not a power loss)')$(has_store postgres && echo "; PostgreSQL $(psql "$PG_ADMIN" -qAtc 'SHOW server_version' 2>/dev/null | cut -d' ' -f1) on loopback, a fresh database per server")."
echo
row scenario store requests/s p50 p99 ratio "of floor" CPU/req alloc/req allocs/req target result "runs (req/s); notes"
rule
# report_row SCENARIO STORE: one row of the table (and its floor row after it, when there is one).
# A floor row (SCENARIO_floor) is held to its real row's bounds to show whether the floor
# itself could meet them; its result is evidence, not a target, so only wrong answers (statuses,
# socket errors) count as missed for STRICT.
report_row() {
  local s="$1" st="$2" key="$1@$2" base="${1%_floor}" floor=0 tmin tp99 talloc tcpu skip rps p50 p99 cpu ratio alloc allocs why note
  local other sockerr misses inexact result share=- frps fcpu
  [ "$base" = "$s" ] || floor=1
  read -r tmin tp99 talloc tcpu <<<"$(target "$base" "$st")"
  skip="$(awk -v k="$key" '$1 == k { $1 = ""; sub(/^ /, ""); print; exit }' "$TMP/skipped")"
  if [ -n "$skip" ]; then
    row "$s" "$st" - - - - - - - - "$(target_text "$tmin" "$tp99" "$talloc" "$tcpu")" skipped "$skip"
    notes+=("$key skipped: $skip")
    return
  fi
  rps="$(median "$key" rps)"; p50="$(median "$key" p50_us)"; p99="$(median "$key" p99_us)"; cpu="$(median "$key" cpu_us)"
  ratio="$(awk -v a="$rps" -v b="$base_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
  if [ "$s" = baseline ]; then
    alloc=-; allocs=-
  else
    alloc="$(awk -v b="$(median "$key" alloc_b)" 'BEGIN { printf "%.1f KB", b / 1000 }')"
    allocs="$(awk -v n="$(median "$key" allocs)" 'BEGIN { printf "%.0f", n }')"
  fi
  why=()
  [ "$tmin" = - ] || awk -v r="$ratio" -v m="$tmin" 'BEGIN { exit !(r >= m) }' || why+=("ratio")
  [ "$tp99" = - ] || awk -v p="$p99" -v m="$tp99" 'BEGIN { exit !(p <= m * 1000) }' || why+=("p99")
  [ "$talloc" = - ] || awk -v a="$(median "$key" alloc_b)" -v m="$talloc" 'BEGIN { exit !(a <= m) }' || why+=("alloc")
  [ "$tcpu" = - ] || awk -v c="$cpu" -v m="$tcpu" 'BEGIN { exit !(c <= m) }' || why+=("cpu")
  local bounds=("${why[@]}")
  # Answers other than the expected status (server counters) and wrk's socket errors:
  # either means the row did not measure (only) what it says.
  other="$(total "$key" other)"
  sockerr="$(total "$key" socket_errors)"
  note="$(all_runs "$key")"
  if [ "$other" != 0 ]; then
    note="$note; ! $other unexpected statuses ($(field_values "$key" other_detail | grep -v '^-$' | paste -sd, -))"
    why+=("statuses")
  fi
  if [ "$s" = verify_uncached ]; then
    # The row measures lookups that miss the cache: most must (each verify looks up the
    # caller's key too, which hits).
    misses="$(median "$key" misses)"
    note="$note; cache misses $(awk -v m="$misses" 'BEGIN { printf "%.2f", m }')/req"
    awk -v m="$misses" 'BEGIN { exit !(m >= 0.5) }' || { note="$note (! fewer than half miss)"; why+=("cache"); }
  fi
  if [ "$s" = verify_credits ]; then
    # Every run's spent credits against its VALID answers: a difference is a lost or
    # doubled spend, and voids the row.
    inexact="$(awk -v k="$key" '$1 == k && $2 != $3 { printf "%s%s spent for %s VALID", (n++ ? ", " : ""), $2, $3 }' "$TMP/credits" 2>/dev/null)"
    if [ -n "$inexact" ]; then note="$note; ! credits not exact: $inexact"; why+=("exactness"); else note="$note; credits exact"; fi
  fi
  if [ "$sockerr" != 0 ]; then
    note="$note; ! $sockerr socket errors"
    why+=("socket")
  fi
  # The real row's share of its floor: requests/s, and its CPU per request against the floor's.
  if [ "$floor" = 0 ] && [ -n "$(field_values "${s}_floor@$st" rps)" ]; then
    frps="$(median "${s}_floor@$st" rps)"; fcpu="$(median "${s}_floor@$st" cpu_us)"
    share="$(awk -v a="$rps" -v b="$frps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
    note="$note; CPU $(awk -v a="$cpu" -v b="$fcpu" 'BEGIN { printf "%.1f", (b > 0 ? a / b : 0) }')× the floor's"
  fi
  result=-
  if [ "$floor" = 1 ]; then
    local wrong=("${why[@]:${#bounds[@]}}")
    if [ "${#wrong[@]}" -gt 0 ]; then
      result="FLAGGED: $(IFS=,; echo "${wrong[*]}")"; missed=1
    elif [ "$(target_text "$tmin" "$tp99" "$talloc" "$tcpu")" != - ]; then
      if [ "${#bounds[@]}" = 0 ]; then result="floor met"; else result="floor MISSED: $(IFS=,; echo "${bounds[*]}")"; fi
    fi
  elif [ "$(target_text "$tmin" "$tp99" "$talloc" "$tcpu")" != - ]; then
    if [ "${#why[@]}" = 0 ]; then result=met; else result="MISSED: $(IFS=,; echo "${why[*]}")"; missed=1; fi
  elif [ "${#why[@]}" -gt 0 ]; then
    result="FLAGGED: $(IFS=,; echo "${why[*]}")"; missed=1
  fi
  row "$s" "$st" "$(printf '%.0f' "$rps")" "$(ms "$p50")" "$(ms "$p99")" "$ratio" "$share" "$(printf '%.0f µs' "$cpu")" "$alloc" "$allocs" \
    "$(target_text "$tmin" "$tp99" "$talloc" "$tcpu")" "$result" "$note"
}

for s in baseline $ALL_SCENARIOS; do
  [ "$s" != revocation ] || continue
  [ "$s" = baseline ] || want "$s" || continue
  stores="$STORES"
  [ "$s" != baseline ] || stores=-
  for st in $stores; do
    report_row "$s" "$st"
    if [ -n "$(field_values "${s}_floor@$st" rps)" ]; then report_row "${s}_floor" "$st"; fi
  done
done
# The revocation delay: the time from a key's revocation on replica A until replica B refuses it.
skip="$(awk '$1 == "revocation@postgres+redis" { $1 = ""; sub(/^ /, ""); print; exit }' "$TMP/skipped")"
if ! want revocation; then
  :
elif [ -n "$skip" ]; then
  row revocation postgres+redis - - - - - - - - "p99≤1s" skipped "$skip"
  notes+=("revocation skipped: $skip")
else
  rl="$(cat "$TMP/revocation")"
  kv() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" <<<" $rl"; }
  rp50="$(kv p50_ms)"; rp99="$(kv p99_ms)"
  if awk -v p="$rp99" 'BEGIN { exit !(p != "" && p <= 1000) }'; then result=met; else result="MISSED: p99"; missed=1; fi
  row revocation postgres+redis - "$rp50 ms" "$rp99 ms" - - - - - "p99≤1s" "$result" "n=$(kv n) max=$(kv max_ms) ms (delay until the other replica refuses a revoked key)"
fi
validation="$(for st in $STORES; do
  awk -v st="$st" -v a="$(median "create_validated@$st" rps)" -v b="$(median "create@$st" rps)" -v ca="$(median "create_validated@$st" cpu_us)" -v cb="$(median "create@$st" cpu_us)" 'BEGIN {
    if (b > 0 && ca > 0) printf "Response validation of every response (HSRCPAY_VALIDATE_RESPONSES=true) vs the production sample, create on %s: %.0f vs %.0f req/s (%+.0f%%); server CPU %.0f vs %.0f µs per request (%.0f%% of it).\n", st, a, b, (a / b - 1) * 100, ca, cb, (1 - cb / ca) * 100 }'
done)"
if [ -n "$validation" ]; then
  echo
  echo "$validation"
fi
if [ -s "$TMP/seeding" ]; then
  echo
  echo "verify_uncached: keys seeded once per store before the runs (.ci/bench/seed; all of it, minting the secrets included), credential cache of $VERIFY_CACHE_KEYS keys:"
  awk '{ for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "  %-8s %d keys in %.1f s (minting %.1f s)\n", v["store"], v["n"], v["seconds"], v["mint_seconds"] }' "$TMP/seeding"
fi
if has_store sqlite && { want create || want regenerate || want regenerate_many || want create_validated; }; then
  echo
  echo "SQLite WAL (issue 18), largest over runs: the largest *-wal file of the data directory, sampled every 0.1 s while wrk ran, and its size 5 s after wrk stopped:"
  for s in create regenerate regenerate_many create_validated; do
    awk -v s="$s" -v mx="$(field_values "$s@sqlite" wal_max_b | sort -g | tail -1)" -v af="$(field_values "$s@sqlite" wal_after_b | sort -g | tail -1)" \
      'BEGIN { if (mx != "") printf "  %-16s max %.1f MiB, 5 s after %.1f KiB\n", s, mx / 1048576, af / 1024 }'
  done
fi
if [ "${#notes[@]}" -gt 0 ]; then
  echo
  printf 'Note: %s\n' "${notes[@]}"
fi
echo "Elapsed: $((SECONDS - START_TS))s"
if [ "$missed" = 1 ]; then
  echo "Some targets were missed or rows flagged (see the result column)."
  [ "$STRICT" = 1 ] && exit 1
fi
exit 0
