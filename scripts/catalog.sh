#!/usr/bin/env bash
# Writes the browsable catalog of a configuration's data contracts: one ODCS document per
# object and major (`mesh-ingest contract export --all`), each linted by datacontract-cli
# (exit 1 on a finding), then rendered by `datacontract catalog` as HTML (index.html and a page
# per contract). CI publishes it as a build artifact; tests/it/catalog.rs opens it in Chromium.
#
#   scripts/catalog.sh OUT_DIR [CONFIG_DIR]
#
# Environment: MESH_BIN (the mesh-ingest binary; default target/debug/mesh-ingest, built if
# missing), MESH_DATACONTRACT_VENV (where install-emulators.sh put datacontract-cli).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:?usage: scripts/catalog.sh OUT_DIR [CONFIG_DIR]}"
CONFIG="${2:-$ROOT/config}"
VENV="${MESH_DATACONTRACT_VENV:-$HOME/.cache/mesh-ingest/datacontract-venv}"
DATACONTRACT="$VENV/bin/datacontract"
[[ -x "$DATACONTRACT" ]] || { echo "catalog: $DATACONTRACT missing: run scripts/install-emulators.sh" >&2; exit 2; }
BIN="${MESH_BIN:-$ROOT/target/debug/mesh-ingest}"
[[ -x "$BIN" ]] || (cd "$ROOT" && cargo build --quiet --bin mesh-ingest)

mkdir -p "$OUT/contracts"
OUT="$(cd "$OUT" && pwd)"
"$BIN" --config "$CONFIG" contract export --all --out "$OUT/contracts" >/dev/null
status=0
for f in "$OUT"/contracts/*.yaml; do
    if ! "$DATACONTRACT" lint "$f" >"$f.lint.txt" 2>&1; then
        echo "catalog: datacontract lint found problems in $f:" >&2
        cat "$f.lint.txt" >&2
        status=1
    fi
done
[[ $status == 0 ]] || exit 1
# `datacontract catalog` takes only a pattern relative to where it runs.
(cd "$OUT/contracts" && "$DATACONTRACT" catalog --files "*.yaml" --output "$OUT/catalog" >/dev/null)
echo "catalog: $(ls "$OUT"/contracts/*.yaml | wc -l) contract(s) linted; $OUT/catalog/index.html"
