#!/usr/bin/env bash
# Runs every test: installs what a fresh machine lacks (the two emulators, promtool, the Dataform CLI), starts the Pub/Sub
# emulator and bqemulator, runs the whole suite against them (cargo-nextest when present, so test
# binaries run in parallel; cargo test otherwise), then stops the emulators.
# Extra arguments go to the test runner (e.g. scripts/test.sh ingest_end_to_end).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export MESH_EMU_DIR="${MESH_EMU_DIR:-$ROOT/target/emulators-test}"

started=$(date +%s)
scripts/install-emulators.sh
# Where install-emulators.sh put promtool (tests/it/monitoring.rs runs it).
export MESH_PROMTOOL="${MESH_PROMTOOL:-${MESH_PROMTOOL_DIR:-$HOME/.cache/mesh-ingest/promtool}/promtool}"
# Where it put the Dataform CLI and core (tests/it/dataform_cli.rs compiles the SQLX with them).
export MESH_DATAFORM="${MESH_DATAFORM:-${MESH_DATAFORM_DIR:-$HOME/.cache/mesh-ingest/dataform}}"
trap 'scripts/stop-emulators.sh || true' EXIT
scripts/start-emulators.sh >/dev/null
# shellcheck disable=SC1091
source "$MESH_EMU_DIR/env"

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --no-fail-fast "$@"
else
    cargo test --no-fail-fast "$@"
fi
echo "test.sh: all tests passed in $(($(date +%s) - started)) s" >&2
