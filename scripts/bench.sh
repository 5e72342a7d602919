#!/usr/bin/env bash
# Runs every benchmark and rewrites docs/BENCHMARKS.md: criterion micro-benchmarks, the load
# harness against the release build and against the Python peer, and a cross-check on the real
# emulators. BENCH_QUICK=1 runs smaller loads (a minute or two instead of several).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PEER_VENV="${MESH_PEER_VENV:-$HOME/.cache/mesh-ingest/peer-venv}"
if [[ ! -x "$PEER_VENV/bin/python" ]]; then
    python3 -m venv "$PEER_VENV"
    "$PEER_VENV/bin/pip" install --quiet google-cloud-pubsub google-cloud-bigquery-storage pyarrow
fi
export MESH_PEER_PYTHON="$PEER_VENV/bin/python"
cargo build --release --locked --bin mesh-ingest --bin mesh-load
cargo bench --locked --bench envelope
scripts/install-emulators.sh
export MESH_EMU_DIR="$ROOT/target/emulators-bench"
trap 'scripts/stop-emulators.sh || true' EXIT
scripts/start-emulators.sh >/dev/null
# shellcheck disable=SC1091
source "$MESH_EMU_DIR/env"
python3 benches/run_benchmarks.py
