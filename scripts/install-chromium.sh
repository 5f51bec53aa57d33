#!/usr/bin/env bash
# Installs Debian's headless-capable Chromium for the dashboard's browser tests, if missing.
# Needs root (as on CI and the project's machines) and Debian's package mirror.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
echo "installing chromium for the browser tests" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null
