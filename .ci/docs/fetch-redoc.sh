#!/usr/bin/env bash
# Refreshes the Redoc bundle that the server embeds for GET /docs
# (server/docsassets/, served as /docs/redoc.standalone.js; see server/docs.go).
#
# The bundle is committed: building the server needs no network. Run this only
# to change the Redoc version, then update RedocVersion in server/docs.go, run
# `go test -run TestDocs ./server` (the Chromium test renders the page) and
# commit server/docsassets/.
#
#   .ci/docs/fetch-redoc.sh [VERSION]     # default 2.5.4
#
# 2.5.4 is the newest redoc that accepts Node 20. The file is npm's
# redoc@VERSION package, bundles/redoc.standalone.js, unchanged; the package's
# LICENSE (MIT) and the bundle's third-party license file are copied beside it.
set -euo pipefail
version="${1:-2.5.4}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
dest="$root/server/docsassets"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cd "$work"
tarball="$(npm pack --silent "redoc@$version")"
# npm has checked the tarball against the registry's integrity hash.
tar -xzf "$tarball"
mkdir -p "$dest"
cp package/bundles/redoc.standalone.js "$dest/redoc.standalone.js"
cp package/bundles/redoc.standalone.js.LICENSE.txt "$dest/redoc.standalone.js.LICENSE.txt"
cp package/LICENSE "$dest/LICENSE"
echo "redoc@$version -> $dest"
sha256sum "$dest/redoc.standalone.js"
