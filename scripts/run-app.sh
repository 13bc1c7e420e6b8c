#!/usr/bin/env bash
# Builds and starts the DAN desktop app (embedded SQLite in the platform data
# directory). Installs what it needs first.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
(cd ui && npm run build)
cargo run --locked -p dan-desktop -- "$@"
