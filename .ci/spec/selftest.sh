#!/usr/bin/env bash
# Self-test of the spec gates (`make spec-selftest`): proves that `make lint-spec` and
# `make breaking` pass on the spec and FAIL, for the intended reason, on deliberately broken
# copies of it. Works on copies in a temp dir; never touches the repository's files.
#
#   .ci/spec/selftest.sh [SPEC]     SPEC defaults to openapi.yaml at the repository root
#   (or `make spec-selftest [SPEC=...]`)
#
# Lint: one copy carries one edit per project rule (and a few spectral:oas ones); a single
# Spectral run must fail and report every expected rule code. Breaking: one copy per edit,
# each compared with the unmodified copy; oasdiff must fail with the expected change id.
# Every edit must actually apply (otherwise the spec has drifted and this test needs updating).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
SRC="$(cd "$(dirname "${1:-$ROOT/openapi.yaml}")" && pwd)/$(basename "${1:-$ROOT/openapi.yaml}")"
MAKE="${MAKE:-make}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/spec-selftest.XXXXXX")"
# SPEC_SELFTEST_KEEP=1 keeps the broken copies and the logs for inspection.
if [[ -n "${SPEC_SELFTEST_KEEP:-}" ]]; then echo "spec-selftest: keeping $tmp"; else trap 'rm -rf "$tmp"' EXIT; fi
failures=0

gate() { "$MAKE" --no-print-directory -C "$ROOT" "$@"; }

# edit FILE [LABEL REGEX REPLACEMENT]... : regex replace (JS syntax; `$<p>` = named group p)
# on FILE, first match only; exits non-zero if any edit changes nothing.
edit() {
  node -e '
    const fs = require("fs");
    const [file, ...rest] = process.argv.slice(1);
    let text = fs.readFileSync(file, "utf8");
    for (let i = 0; i < rest.length; i += 3) {
      const [label, re, rep] = rest.slice(i, i + 3);
      const next = text.replace(new RegExp(re), rep);
      if (next === text) { console.error(`selftest: edit "${label}" did not apply to ${file}`); process.exit(3); }
      text = next;
    }
    fs.writeFileSync(file, text);
  ' "$@"
}

ok() { printf '  ok    %s\n' "$1"; }
bad() { printf '  FAIL  %s\n' "$1"; failures=$((failures + 1)); [[ -z "${2:-}" ]] || sed 's/^/        | /' "$2"; }

# expect_pass NAME LOG CMD...
expect_pass() {
  local name="$1" log="$2"; shift 2
  if "$@" >"$log" 2>&1; then ok "$name"; else bad "$name: expected to pass" "$log"; fi
}

# expect_fail NAME LOG "CODE..." CMD... : must fail and mention every code in the output
expect_fail() {
  local name="$1" log="$2" codes="$3" missing=(); shift 3
  if "$@" >"$log" 2>&1; then bad "$name: expected to FAIL but passed" "$log"; return; fi
  for code in $codes; do grep -Eq "(^|[^a-z0-9-])${code}([^a-z0-9-]|$)" "$log" || missing+=("$code"); done
  if ((${#missing[@]})); then bad "$name: failed, but without ${missing[*]}" "$log"; else ok "$name (${codes// /, })"; fi
}

cp "$SRC" "$tmp/openapi.yaml"
empty_ignore="$tmp/no-accepted-changes.txt"
: >"$empty_ignore"

echo "spec-selftest: unmodified spec ($SRC)"
expect_pass "lint-spec passes" "$tmp/lint-ok.log" gate lint-spec SPEC="$tmp/openapi.yaml"
expect_pass "breaking passes against the released baseline" "$tmp/breaking-ok.log" \
  gate breaking SPEC="$tmp/openapi.yaml"

echo "spec-selftest: lint-breaking edits (one Spectral run)"
cp "$tmp/openapi.yaml" "$tmp/lint-broken.yaml"
edit "$tmp/lint-broken.yaml" \
  "drop createApiKey summary" \
  '\n {6}summary: Create API key\n' $'\n' \
  "drop regenerateApiKey description" \
  '(?<p>operationId: regenerateApiKey\n {6}summary: [^\n]*\n) {6}description: \|\n(?: {8}[^\n]*\n)+' '$<p>' \
  "409 with an inline, non-envelope schema" \
  "(?<p>'409':\n {10}description: A key with this name[^\n]*\n[^]*?schema:\n {16})\\\$ref: '#/components/schemas/ErrorEnvelope'" '$<p>type: object' \
  "components/responses/InternalError with a non-envelope schema" \
  "(?<p>\n {4}InternalError:\n[^]*?schema:\n {12}\\\$ref: )'#/components/schemas/ErrorEnvelope'" "\$<p>'#/components/schemas/ApiKeyEnvelope'" \
  "404 response without an example" \
  "(?<p>'404':\n {10}description: The account does not exist\\.\n[^]*? {14})example:" '$<p>x-not-an-example:' \
  "components/responses/PayloadTooLarge without content" \
  "(?<p>\n {4}PayloadTooLarge:\n[^]*? {6})content:" '$<p>x-content:' \
  "permission not in the catalog" \
  'x-hsrcpay-permission: account:api:key:update' 'x-hsrcpay-permission: account:api:key:rotate' \
  "permission with a malformed name" \
  'x-hsrcpay-permission: account:api:key:create' 'x-hsrcpay-permission: Account.Create' \
  "component schema without a description" \
  '(?<p>\n {4}ErrorEnvelope:\n {6}type: object\n) {6}description: [^\n]*\n' '$<p>' \
  "parameter without a description" \
  '\n {10}description: API key ID\.\n' $'\n' \
  "new path with a trailing slash" \
  '\n  /api-keys/\{id\}/regenerate:\n' $'\n  /api-keys/{id}/regenerate/:\n'
expect_fail "lint-spec fails on the broken copy" "$tmp/lint-broken.log" \
  "hsrcpay-operation-summary operation-description hsrcpay-error-response-envelope hsrcpay-response-content hsrcpay-response-example hsrcpay-permission-in-catalog hsrcpay-operation-permission hsrcpay-schema-description oas3-parameter-description hsrcpay-path-keys-no-trailing-slash" \
  gate lint-spec SPEC="$tmp/lint-broken.yaml"

cp "$tmp/openapi.yaml" "$tmp/no-catalog.yaml"
edit "$tmp/no-catalog.yaml" "drop the permission catalog" \
  '\n {2}x-hsrcpay-permission-catalog:\n' $'\n  x-renamed-catalog:\n'
expect_fail "lint-spec fails without info.x-hsrcpay-permission-catalog" "$tmp/no-catalog.log" \
  "hsrcpay-info-permission-catalog" gate lint-spec SPEC="$tmp/no-catalog.yaml"

echo "spec-selftest: breaking edits (each against the unmodified copy)"
breaking_case() { # NAME ID LABEL REGEX REPLACEMENT
  local f="$tmp/breaking-$2.yaml"
  cp "$tmp/openapi.yaml" "$f"
  edit "$f" "$3" "$4" "$5"
  expect_fail "$1" "$tmp/breaking-$2.log" "$2" \
    gate breaking SPEC="$f" SPEC_BASELINE="$tmp/openapi.yaml" BREAKING_IGNORE="$empty_ignore"
}
breaking_case "breaking fails when the 201 response is removed" response-success-status-removed \
  "remove 201" "\n {8}'201':\n(?: {10}[^\n]*\n)+" $'\n'
breaking_case "breaking fails when an optional request field becomes required" request-property-became-required \
  "expires_at required" 'required: \[name, permissions\]' 'required: [name, permissions, expires_at]'
breaking_case "breaking fails when a request maximum is lowered" request-property-max-decreased \
  "lower grace_period_minutes maximum" 'maximum: 10080' 'maximum: 60'
breaking_case "breaking fails when a path is removed" api-path-removed-without-deprecation \
  "rename regenerate path" '\n  /api-keys/\{id\}/regenerate:\n' $'\n  /api-keys/{id}/rotate:\n'

breaking_case "breaking fails when a response enum other than error.code grows" response-property-enum-value-added \
  "add a key status (ApiKey.status, a response)" 'enum: \[ACTIVE, INACTIVE, EXPIRED\]\n(\s+)last_used_at:' $'enum: [ACTIVE, INACTIVE, EXPIRED, FROZEN]\n$1last_used_at:'

echo "spec-selftest: error codes are an open set"
codes="$tmp/new-code.yaml"
cp "$tmp/openapi.yaml" "$codes"
edit "$codes" "add an error code" 'enum: \[40000, ' 'enum: [40000, 40009, ' "add its name" 'x-enum-varnames:\n(\s+)- CodeValidationFailed\n' $'x-enum-varnames:\n$1- CodeValidationFailed\n$1- CodeSelftest\n'
expect_pass "breaking passes when only error.code grows" "$tmp/new-code.log" \
  gate breaking SPEC="$codes" SPEC_BASELINE="$tmp/openapi.yaml" BREAKING_IGNORE="$empty_ignore"

echo "spec-selftest: accepting an intended breaking change"
accept="$tmp/accepted.txt"
printf '%s\n' '# accepted in this PR' 'POST /api-keys/ removed the success response with the status `201`' >"$accept"
expect_pass "breaking passes when the change is listed in the ignore file" "$tmp/accepted.log" \
  gate breaking SPEC="$tmp/breaking-response-success-status-removed.yaml" \
  SPEC_BASELINE="$tmp/openapi.yaml" BREAKING_IGNORE="$accept"

if ((failures)); then
  echo "spec-selftest: $failures check(s) FAILED"
  exit 1
fi
echo "spec-selftest: all checks passed"
