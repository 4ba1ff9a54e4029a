#!/usr/bin/env bash
# Installs the npm packages of the web console's browser test (ui/package-lock.json) with `npm ci`,
# unless ui/node_modules already matches the lock file. Run by scripts/setup after the Debian packages.
set -euo pipefail
cd "$(dirname "$0")/../../ui"
command -v npm >/dev/null || { echo "setup.d/ui: npm not found (Node.js 20+ with npm is needed for the UI test)" >&2; exit 1; }
stamp=node_modules/.vouch-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  echo "setup.d/ui: node_modules up to date"
  exit 0
fi
npm ci --no-audit --no-fund --ignore-scripts
echo "$want" >"$stamp"
