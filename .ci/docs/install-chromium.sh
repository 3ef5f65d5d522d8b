#!/usr/bin/env bash
# Installs headless Chromium (Debian package) for the /docs browser test
# (server/docs_browser_test.go, which expects /usr/bin/chromium). Idempotent:
# does nothing when chromium is already on PATH. Needs root and the apt mirror.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "chromium present: $(chromium --version 2>/dev/null || true)"
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
echo "installed: $(chromium --version 2>/dev/null || true)"
