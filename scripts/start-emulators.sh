#!/usr/bin/env bash
# Starts the Pub/Sub emulator and bqemulator (REST + gRPC Storage API) in the background on
# 127.0.0.1, waits until both are ready and writes what clients need to $MESH_EMU_DIR/env.
# Install them first with scripts/install-emulators.sh; stop them with scripts/stop-emulators.sh.
#
# Environment (all optional):
#   MESH_EMU_DIR       state dir: PID files, logs, env file (default: <repo>/target/emulators)
#   PUBSUB_PORT        Pub/Sub emulator port (default: a free port)
#   BQ_REST_PORT       bqemulator REST port  (default: a free port)
#   BQ_GRPC_PORT       bqemulator gRPC port  (default: a free port)
#   EMU_PROJECT        project id (default: mesh-local)
#   BQ_DATA_DIR        if set, bqemulator runs --persistent with its DuckDB file in this dir
#   BQ_LOG_LEVEL       bqemulator log level (debug|info|warning|error; default: its own, info)
#   EMU_START_TIMEOUT  seconds to wait for each emulator (default: 60)
#   MESH_VENV          venv holding bqemulator (default: $HOME/.cache/mesh-ingest/venv)
#
# Output: $MESH_EMU_DIR/env (and stdout) holds
#   export PUBSUB_EMULATOR_HOST=127.0.0.1:<pubsub port>
#   export BIGQUERY_EMULATOR_HOST=http://127.0.0.1:<rest port>
#   export BIGQUERY_STORAGE_EMULATOR_HOST=http://127.0.0.1:<grpc port>
#   export EMU_PROJECT=<project>
#   export MESH_BQEMULATOR_PYTHON=<venv>/bin/python         (to start a private bqemulator:
#   export MESH_BQEMULATOR_LAUNCHER=<repo>/scripts/bqemulator_launcher.py   $PYTHON $LAUNCHER start …)
# so `source "$MESH_EMU_DIR/env"` or `eval "$(scripts/start-emulators.sh)"` both work.
# Logs: $MESH_EMU_DIR/pubsub.log, pubsub-proxy.log, bqemulator.log; PIDs: *.pid beside them.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${MESH_EMU_DIR:-$ROOT/target/emulators}"
VENV="${MESH_VENV:-$HOME/.cache/mesh-ingest/venv}"
PROJECT="${EMU_PROJECT:-mesh-local}"
TIMEOUT="${EMU_START_TIMEOUT:-60}"

log() { echo "start-emulators: $*" >&2; }
die() {
    echo "start-emulators: ERROR: $*" >&2
    exit 1
}

# --- prerequisites ----------------------------------------------------------
pubsub_dir=""
for r in "$(gcloud info --format='value(installation.sdk_root)' 2>/dev/null || true)" \
    /usr/lib/google-cloud-sdk /usr/share/google-cloud-sdk /opt/google-cloud-sdk; do
    if [[ -n "$r" && -x "$r/platform/pubsub-emulator/bin/cloud-pubsub-emulator" ]]; then
        pubsub_dir="$r/platform/pubsub-emulator"
        break
    fi
done
[[ -n "$pubsub_dir" ]] || die "Pub/Sub emulator not found: run scripts/install-emulators.sh"
command -v java >/dev/null 2>&1 || die "java not found (the Pub/Sub emulator needs it): run scripts/install-emulators.sh"
[[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import bqemulator' 2>/dev/null ||
    die "bqemulator not installed in $VENV: run scripts/install-emulators.sh"
command -v curl >/dev/null 2>&1 || die "curl not found (needed to probe bqemulator)"

mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
# Emulators this state dir started before are ours: stop them (frees their ports too).
"$ROOT/scripts/stop-emulators.sh" >/dev/null 2>&1 || true
rm -f "$DIR/env"

# --- ports --------------------------------------------------------------------
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
free_ports() { # prints N distinct ports free on 127.0.0.1 right now
    "$VENV/bin/python" - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}
read -r p1 p2 p3 p4 < <(free_ports 4)
PUBSUB_PORT="${PUBSUB_PORT:-$p1}"
BQ_REST_PORT="${BQ_REST_PORT:-$p2}"
BQ_GRPC_PORT="${BQ_GRPC_PORT:-$p3}"
for v in PUBSUB_PORT BQ_REST_PORT BQ_GRPC_PORT; do
    [[ "${!v}" =~ ^[0-9]+$ ]] || die "$v=${!v} is not a port number"
    ! port_in_use "${!v}" || die "$v=${!v}: something already listens on 127.0.0.1:${!v}"
done

bq_args=(start --rest-host 127.0.0.1 --rest-port "$BQ_REST_PORT"
    --grpc-host 127.0.0.1 --grpc-port "$BQ_GRPC_PORT" --project "$PROJECT")
if [[ -n "${BQ_DATA_DIR:-}" ]]; then
    mkdir -p "$BQ_DATA_DIR" 2>/dev/null && [[ -w "$BQ_DATA_DIR" ]] ||
        die "BQ_DATA_DIR=$BQ_DATA_DIR is not a writable directory"
    bq_args+=(--persistent --data-dir "$(cd "$BQ_DATA_DIR" && pwd)")
fi
[[ -z "${BQ_LOG_LEVEL:-}" ]] || bq_args+=(--log-level "$BQ_LOG_LEVEL")

# --- start ------------------------------------------------------------------------
# Whatever goes wrong from here on, no half-started emulator is left behind.
ready=0
trap '[[ $ready == 1 ]] || "$ROOT/scripts/stop-emulators.sh" >/dev/null 2>&1 || true' EXIT
# setsid: each emulator leads its own process group, so stop-emulators.sh can end it whole.
# The PID recorded is the emulator's own process (setsid and the Pub/Sub wrapper exec).
started_at=$(date +%s.%N)
# The emulator listens on an inner port; clients reach it on $PUBSUB_PORT through
# scripts/pubsub_emulator_proxy.py, which fixes its REST gateway's one difference from Pub/Sub
# (numeric enum query parameters; see the script). gRPC passes through unchanged.
PUBSUB_INNER_PORT=$p4
setsid "$pubsub_dir/bin/cloud-pubsub-emulator" --host=127.0.0.1 --port="$PUBSUB_INNER_PORT" \
    </dev/null >"$DIR/pubsub.log" 2>&1 &
echo $! >"$DIR/pubsub.pid"
setsid "$VENV/bin/python" "$ROOT/scripts/pubsub_emulator_proxy.py" "$PUBSUB_PORT" "$PUBSUB_INNER_PORT" \
    </dev/null >"$DIR/pubsub-proxy.log" 2>&1 &
echo $! >"$DIR/pubsub-proxy.pid"

# No DuckDB avro extension: it would be downloaded at startup, and only Avro load jobs use it.
BQEMU_ENABLE_FORMAT_EXTENSIONS="${BQEMU_ENABLE_FORMAT_EXTENSIONS:-false}" \
    setsid "$VENV/bin/python" "$ROOT/scripts/bqemulator_launcher.py" "${bq_args[@]}" \
    </dev/null >"$DIR/bqemulator.log" 2>&1 &
echo $! >"$DIR/bqemulator.pid"

# --- wait -------------------------------------------------------------------------
fail() { # name, log, reason
    echo "start-emulators: ERROR: $1 $3; last lines of $2:" >&2
    tail -n 40 "$2" | sed 's/^/    /' >&2
    exit 1 # the EXIT trap stops both emulators
}
wait_until() { # name, log, pidfile, probe command...
    local name=$1 logf=$2 pid
    pid="$(cat "$3")"
    shift 3
    local deadline=$((SECONDS + TIMEOUT))
    until "$@" >/dev/null 2>&1; do
        kill -0 "$pid" 2>/dev/null || fail "$name" "$logf" "exited during startup"
        ((SECONDS < deadline)) || fail "$name" "$logf" "was not ready within ${TIMEOUT}s"
        sleep 0.2
    done
    log "$name ready after $(awk -v s="$started_at" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')s"
}
grpc_listens() { port_in_use "$BQ_GRPC_PORT"; }
wait_until "Pub/Sub emulator" "$DIR/pubsub.log" "$DIR/pubsub.pid" grep -q "Server started" "$DIR/pubsub.log"
wait_until "Pub/Sub emulator proxy" "$DIR/pubsub-proxy.log" "$DIR/pubsub-proxy.pid" port_in_use "$PUBSUB_PORT"
wait_until "bqemulator REST" "$DIR/bqemulator.log" "$DIR/bqemulator.pid" \
    curl -fsS --max-time 2 "http://127.0.0.1:$BQ_REST_PORT/readyz"
wait_until "bqemulator gRPC" "$DIR/bqemulator.log" "$DIR/bqemulator.pid" grpc_listens

ready=1
cat >"$DIR/env" <<EOF
export PUBSUB_EMULATOR_HOST=127.0.0.1:$PUBSUB_PORT
export BIGQUERY_EMULATOR_HOST=http://127.0.0.1:$BQ_REST_PORT
export BIGQUERY_STORAGE_EMULATOR_HOST=http://127.0.0.1:$BQ_GRPC_PORT
export EMU_PROJECT=$PROJECT
export MESH_BQEMULATOR_PYTHON=$VENV/bin/python
export MESH_BQEMULATOR_LAUNCHER=$ROOT/scripts/bqemulator_launcher.py
EOF
log "Pub/Sub 127.0.0.1:$PUBSUB_PORT (pid $(cat "$DIR/pubsub.pid")), bqemulator REST 127.0.0.1:$BQ_REST_PORT gRPC 127.0.0.1:$BQ_GRPC_PORT (pid $(cat "$DIR/bqemulator.pid"))"
log "logs in $DIR; variables: source $DIR/env"
cat "$DIR/env"
