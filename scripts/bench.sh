#!/usr/bin/env bash
# Runs every benchmark and rewrites docs/BENCHMARKS.md: criterion micro-benchmarks, the load
# harness against the release build and against the Python peer, and a cross-check on the real
# emulators. BENCH_QUICK=1 runs smaller loads (a minute or two instead of several).
# BENCH_BASELINE=<git revision> also builds that revision (with today's benchmarks and harness)
# and measures it in the same run, for the before/after tables.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
PEER_VENV="${MESH_PEER_VENV:-$HOME/.cache/mesh-ingest/peer-venv}"
if [[ ! -x "$PEER_VENV/bin/python" ]]; then
    python3 -m venv "$PEER_VENV"
    "$PEER_VENV/bin/pip" install --quiet google-cloud-pubsub google-cloud-bigquery-storage pyarrow
fi
export MESH_PEER_PYTHON="$PEER_VENV/bin/python"
if [[ -n "${BENCH_BASELINE:-}" ]]; then
    src="$ROOT/target/baseline-src"
    git worktree remove --force "$src" 2>/dev/null || rm -rf "$src"
    git worktree add --detach "$src" "$BENCH_BASELINE"
    # The baseline's src/, measured with this tree's benchmarks (and their Cargo entries).
    cp Cargo.toml Cargo.lock "$src/"
    rm -rf "$src/benches" && cp -r benches "$src/benches"
    mkdir -p target/baseline
    (cd "$src" && export CARGO_TARGET_DIR="$ROOT/target" &&
        cargo build --release --locked --bin mesh-ingest &&
        cargo bench --locked --bench envelope &&
        cargo bench --locked --bench heap_profile | tail -1 > "$ROOT/target/baseline/heap_profile.json")
    cp target/release/mesh-ingest target/baseline/mesh-ingest
    # Its own configuration (defaults, the `order` object and schema) for the memory runs.
    rm -rf target/baseline/config && cp -r "$src/config" target/baseline/config
    rm -rf target/criterion-baseline && mv target/criterion target/criterion-baseline
    git worktree remove --force "$src"
fi
cargo build --release --locked --bin mesh-ingest --bin mesh-load
cargo bench --locked --bench envelope
cargo bench --locked --bench heap_profile | tail -1 > target/heap_profile.json
scripts/install-emulators.sh
export MESH_EMU_DIR="$ROOT/target/emulators-bench"
trap 'scripts/stop-emulators.sh || true' EXIT
scripts/start-emulators.sh >/dev/null
# shellcheck disable=SC1091
source "$MESH_EMU_DIR/env"
python3 benches/run_benchmarks.py
