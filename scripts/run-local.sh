#!/usr/bin/env bash
# The main job, locally: installs and starts the emulators, builds mesh-ingest, provisions the
# shipped configuration (config/) plus the schema'd shipment object of examples/schemad/,
# starts the service, publishes the sample domain events from examples/ (orders zstd-compressed,
# shipments as Avro records the topic schema checks), then prints the rows that landed in the
# ingest and dead-letter tables and where /metrics is. Everything is stopped at the end; with --keep the service and emulators stay up.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
KEEP=0
[[ "${1:-}" == "--keep" ]] && KEEP=1
export MESH_EMU_DIR="${MESH_EMU_DIR:-$ROOT/target/emulators}"
PORT="${APP__APPLICATION__PORT:-8080}"
export APP__APPLICATION__PORT="$PORT"
log() { echo "run-local: $*" >&2; }

scripts/install-emulators.sh
scripts/start-emulators.sh >/dev/null
# shellcheck disable=SC1091
source "$MESH_EMU_DIR/env"

log "building mesh-ingest"
cargo build --quiet --bin mesh-ingest
BIN="$ROOT/target/debug/mesh-ingest"
# The shipped configuration, and beside it the schema'd topic of examples/schemad/.
RUN_CONFIG="$MESH_EMU_DIR/config"
rm -rf "$RUN_CONFIG"
cp -r "$ROOT/config" "$RUN_CONFIG"
cp examples/schemad/shipment.yaml "$RUN_CONFIG/objects/"
cp examples/schemad/shipment.avsc "$RUN_CONFIG/schemas/"
export MESH_CONFIG_DIR="$RUN_CONFIG" APP_ENVIRONMENT=local

"$BIN" check >/dev/null
"$BIN" provision

"$BIN" run >"$MESH_EMU_DIR/mesh-ingest.log" 2>&1 &
APP_PID=$!
cleanup() {
    if [[ $KEEP == 0 ]]; then
        kill -TERM "$APP_PID" 2>/dev/null && wait "$APP_PID" 2>/dev/null || true
        scripts/stop-emulators.sh || true
    fi
}
trap cleanup EXIT
for _ in $(seq 1 300); do
    curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
    kill -0 "$APP_PID" 2>/dev/null || { tail -n 30 "$MESH_EMU_DIR/mesh-ingest.log" >&2; exit 1; }
    sleep 0.1
done
curl -fsS "http://127.0.0.1:$PORT/readyz" >/dev/null || { log "service not ready"; exit 1; }
log "service ready on :$PORT (log: $MESH_EMU_DIR/mesh-ingest.log)"

"$BIN" publish --object order --file examples/orders.jsonl --lines body --compress zstd
"$BIN" publish --object customer --file examples/customers.jsonl --lines message
"$BIN" publish --object shipment --file examples/schemad/shipments.jsonl --lines body

want=$(cat examples/orders.jsonl examples/customers.jsonl examples/schemad/shipments.jsonl | grep -c .)
query() { # SQL -> JSON response of jobs.query
    curl -fsS -X POST -H 'content-type: application/json' \
        "$BIGQUERY_EMULATOR_HOST/bigquery/v2/projects/$EMU_PROJECT/queries" \
        -d "$(python3 -c 'import json,sys; print(json.dumps({"query": sys.argv[1], "useLegacySql": False}))' "$1")"
}
count_sql="SELECT (SELECT COUNT(*) FROM order_ingest.order_events) + (SELECT COUNT(*) FROM order_ingest.order_dead_letter)
  + (SELECT COUNT(*) FROM customer_ingest.customer_events) + (SELECT COUNT(*) FROM customer_ingest.customer_dead_letter)
  + (SELECT COUNT(*) FROM shipment_ingest.shipment_events) + (SELECT COUNT(*) FROM shipment_ingest.shipment_dead_letter) AS n"
for _ in $(seq 1 120); do
    n=$(query "$count_sql" | python3 -c 'import json,sys; print(json.load(sys.stdin)["rows"][0]["f"][0]["v"])')
    [[ "$n" -ge "$want" ]] && break
    sleep 0.25
done
log "$n of $want published events landed"
log "materializing the semantic state tables (what the CronJob does every few minutes)"
"$BIN" materialize

show() { # title, SQL
    echo
    echo "== $1"
    query "$2" | python3 -c '
import json, sys
r = json.load(sys.stdin)
cols = [f["name"] for f in r["schema"]["fields"]]
rows = [[("NULL" if c["v"] is None else str(c["v"]))[:70] for c in row["f"]] for row in r.get("rows", [])]
w = [max([len(c)] + [len(x[i]) for x in rows]) for i, c in enumerate(cols)]
print("  ".join(c.ljust(w[i]) for i, c in enumerate(cols)))
for x in rows:
    print("  ".join(v.ljust(w[i]) for i, v in enumerate(x)))
print(f"({len(rows)} rows)")'
}
show "$EMU_PROJECT.order_ingest.order_events (ingest)" \
    "SELECT event_id, event_type, FORMAT_TIMESTAMP('%FT%TZ', event_time) AS event_time, object_id, TO_JSON_STRING(payload) AS payload FROM order_ingest.order_events ORDER BY event_time"
show "$EMU_PROJECT.order_ingest.order_dead_letter (dead letters)" \
    "SELECT message_id, reason_code, reason FROM order_ingest.order_dead_letter ORDER BY message_id"
show "$EMU_PROJECT.customer_ingest.customer_events (ingest)" \
    "SELECT event_id, event_type, FORMAT_TIMESTAMP('%FT%TZ', event_time) AS event_time, object_id, TO_JSON_STRING(payload) AS payload FROM customer_ingest.customer_events ORDER BY event_time"
show "$EMU_PROJECT.customer_ingest.customer_dead_letter (dead letters)" \
    "SELECT message_id, reason_code, reason FROM customer_ingest.customer_dead_letter ORDER BY message_id"
show "$EMU_PROJECT.shipment_ingest.shipment_events (ingest; Avro records of a schema'd topic, as JSON)" \
    "SELECT event_id, event_type, FORMAT_TIMESTAMP('%FT%TZ', event_time) AS event_time, object_id, JSON_VALUE(attributes, '$.googclient_schemarevisionid') AS schema_revision, TO_JSON_STRING(payload) AS payload FROM shipment_ingest.shipment_events ORDER BY event_time"
show "$EMU_PROJECT.order_semantic.order_v2 (data product, major 2: latest valid state per order; total is a STRUCT)" \
    "SELECT object_id, status, total.amount AS total_amount, total.currency AS total_currency, FORMAT_TIMESTAMP('%FT%TZ', updated_at) AS updated_at, event_id FROM order_semantic.order_v2 ORDER BY object_id"
show "$EMU_PROJECT.order_semantic.order_v1 (data product, major 1, deprecated: total NUMERIC; sunset in config/objects/order.yaml)" \
    "SELECT object_id, status, total, currency, FORMAT_TIMESTAMP('%FT%TZ', updated_at) AS updated_at, event_id FROM order_semantic.order_v1 ORDER BY object_id"
show "$EMU_PROJECT.customer_semantic.customer_v1 (data product)" \
    "SELECT object_id, name, tier, event_id FROM customer_semantic.customer_v1 ORDER BY object_id"

echo
echo "metrics: http://127.0.0.1:$PORT/metrics"
curl -fsS "http://127.0.0.1:$PORT/metrics" | grep -E '^mesh_ingest_(rows_written|rows_dead_lettered|messages_acked)_total' | grep -v ' 0$' || true
echo "BigQuery REST (bqemulator): $BIGQUERY_EMULATOR_HOST   Pub/Sub emulator: $PUBSUB_EMULATOR_HOST"
if [[ $KEEP == 1 ]]; then
    echo "still running: mesh-ingest (pid $APP_PID) and the emulators; stop with: kill $APP_PID; scripts/stop-emulators.sh"
fi
