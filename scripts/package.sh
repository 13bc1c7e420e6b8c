#!/usr/bin/env bash
# Builds the release app and its packages: a .deb, and an AppImage where the
# AppImage tools can be downloaded (they come from GitHub).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
(cd ui && npm run build)
if ./ui/node_modules/.bin/tauri build --bundles deb,appimage; then
  exit 0
fi
echo "package: the AppImage could not be built (it needs linuxdeploy from GitHub); building the .deb only" >&2
./ui/node_modules/.bin/tauri build --bundles deb
