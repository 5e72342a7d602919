#!/usr/bin/env bash
# Stops the emulators scripts/start-emulators.sh started, from the PID files in $MESH_EMU_DIR
# (default: <repo>/target/emulators): SIGTERM to each one's process group, SIGKILL after 10 s.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${MESH_EMU_DIR:-$ROOT/target/emulators}"

log() { echo "stop-emulators: $*" >&2; }

# What the command line of each emulator's process contains (guards against a reused PID).
declare -A marker=([pubsub]=pubsub-emulator [pubsub-proxy]=pubsub_emulator_proxy.py
    [bqemulator]=bqemulator_launcher.py)

for name in pubsub-proxy pubsub bqemulator; do
    f="$DIR/$name.pid"
    [[ -f "$f" ]] || continue
    pid="$(cat "$f")"
    if [[ "$pid" =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "${marker[$name]}"; then
        # The emulator leads its own process group (setsid); fall back to the PID alone.
        kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "$name (pid $pid) ignored SIGTERM for 10 s; killing it"
            kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $name (pid $pid)"
    fi
    rm -f "$f"
done
rm -f "$DIR/env"
