#!/usr/bin/env bash
# Runs every check and test of DAN: formatting, clippy, the UI's unit tests,
# and all Rust tests (unit, property, multi-process and end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh

echo "== format"
cargo fmt --all -- --check
echo "== UI build and unit tests"
(cd ui && npm run build && npm test)
echo "== clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "== tests"
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked
else
  cargo test --workspace --locked
fi
