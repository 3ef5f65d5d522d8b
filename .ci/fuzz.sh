#!/usr/bin/env bash
# Runs every go test -fuzz target of the fuzzed packages, one after another,
# each for FUZZTIME (default 10s). Fails if any target finds a crasher; Go
# then writes the failing input to <pkg>/testdata/fuzz/<FuzzName>/, which is
# listed at the end (commit it once fixed: it becomes a regression seed).
#
#   FUZZTIME=1m .ci/fuzz.sh            # longer runs
#   FUZZ_PKGS="./server" .ci/fuzz.sh   # some packages only
#   FUZZ_PARALLEL=1 .ci/fuzz.sh        # fewer workers (default: GOMAXPROCS)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin"

FUZZTIME="${FUZZTIME:-10s}"
FUZZ_PKGS="${FUZZ_PKGS:-./internal/keys ./internal/auth ./internal/redact ./internal/store/sqlite ./server}"
parallel=()
if [[ -n "${FUZZ_PARALLEL:-}" ]]; then
  parallel=(-parallel "$FUZZ_PARALLEL")
fi

# Inputs already in testdata/fuzz before the run, so new crashers stand out.
before="$(mktemp)"
trap 'rm -f "$before"' EXIT
find . -path '*/testdata/fuzz/*' -type f | sort >"$before"

failed=()
ran=0
for pkg in $FUZZ_PKGS; do
  # The package's fuzz targets, as go test lists them.
  targets=$(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true)
  if [[ -z "$targets" ]]; then
    echo "fuzz.sh: no fuzz targets in $pkg" >&2
    failed+=("$pkg (no targets)")
    continue
  fi
  for target in $targets; do
    echo "== $pkg $target (fuzztime $FUZZTIME)"
    ran=$((ran + 1))
    # Go's fuzz coordinator (go1.26, golang/go#75804, fixed in go1.27) can
    # fail a target at the -fuzztime boundary with a bare "context deadline
    # exceeded" and no failing input. Such a run found nothing: it is run
    # again (twice at most). A run that writes an input, or fails any other
    # way, fails at once.
    attempt=1
    while true; do
      out="$(mktemp)"
      rc=0
      go test -run '^$' -fuzz "^${target}\$" -fuzztime "$FUZZTIME" "${parallel[@]}" "$pkg" 2>&1 | tee "$out" || rc=$?
      written="$(find . -path "*/testdata/fuzz/${target}/*" -type f | sort | comm -13 "$before" - || true)"
      if ((rc == 0)); then
        rm -f "$out"
        break
      fi
      if [[ -z "$written" ]] && ((attempt < 3)) &&
        grep -q '^    context deadline exceeded$' "$out" &&
        ! grep -q 'failing input written' "$out"; then
        echo "fuzz.sh: $pkg $target stopped on Go's fuzztime race (golang/go#75804), no input written: running it again"
        attempt=$((attempt + 1))
        rm -f "$out"
        continue
      fi
      rm -f "$out"
      failed+=("$pkg $target")
      break
    done
  done
done

# The credential-safety state machine (rapid, not go test -fuzz), 300 runs
# per store instead of make test's 30 and 15, when ./server is among the packages.
if [[ " $FUZZ_PKGS " == *" ./server "* ]]; then
  echo "== ./server TestCredentialSafetyModel (rapid, 300 runs per store)"
  ran=$((ran + 1))
  if ! go test ./server -run '^TestCredentialSafetyModel$' -rapid.checks=300 -count=1; then
    failed+=("./server TestCredentialSafetyModel")
  fi
fi

new="$(find . -path '*/testdata/fuzz/*' -type f | sort | comm -13 "$before" - || true)"
if [[ -n "$new" ]]; then
  echo "fuzz.sh: new failing inputs:"
  echo "$new" | sed 's/^/  /'
  failed+=("new inputs in testdata/fuzz")
fi
if ((${#failed[@]} > 0)); then
  echo "fuzz.sh: FAILED: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: $ran targets, no crasher"
