#!/usr/bin/env bash
# Installs what the dashboard's browser tests drive, if missing: Debian's Chromium, and
# playwright-core from the npm registry (into .browser/; it drives that Chromium, it does not
# download a browser). Needs root (as on CI and the project's machines), Debian's package
# mirror, Node.js and npm.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing chromium for the browser tests" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
  command -v chromium >/dev/null
fi
if [ ! -f "$repo_root/.browser/node_modules/playwright-core/package.json" ]; then
  echo "installing playwright-core for the browser tests" >&2
  mkdir -p "$repo_root/.browser"
  [ -f "$repo_root/.browser/package.json" ] || echo '{"private": true}' > "$repo_root/.browser/package.json"
  npm install --prefix "$repo_root/.browser" --no-audit --no-fund --silent playwright-core@1.64.1 >&2
fi
