#!/usr/bin/env bash
# Installs the two local emulators the integration tests run against: Google's Pub/Sub
# emulator (Debian packages google-cloud-cli + google-cloud-cli-pubsub-emulator, needs Java)
# and bqemulator (PyPI, in a venv at $MESH_VENV); promtool, for the tests of the alert
# rules (from Debian's prometheus package, into $MESH_PROMTOOL_DIR); and the Dataform CLI
# with the @dataform/core it compiles with (npm, into $MESH_DATAFORM_DIR), for the test that
# compiles the generated SQLX; datacontract-cli (PyPI, venv at $MESH_DATACONTRACT_VENV) and
# Debian's chromium, for the catalog of the ODCS exports. Idempotent: work already done is
# skipped.
#
# Environment:
#   MESH_VENV    venv for bqemulator (default: $HOME/.cache/mesh-ingest/venv)
#   MESH_PYTHON  Python (>= 3.11) that creates the venv (default: python3)
set -euo pipefail

BQEMULATOR_VERSION=1.4.0
DUCKDB_VERSION=1.5.5
VENV="${MESH_VENV:-$HOME/.cache/mesh-ingest/venv}"
PYTHON="${MESH_PYTHON:-python3}"

log() { echo "install-emulators: $*" >&2; }
die() {
    echo "install-emulators: ERROR: $*" >&2
    exit 1
}

# ---------------------------------------------------------------------------
# Pub/Sub emulator
# ---------------------------------------------------------------------------

# Prints the directory holding bin/cloud-pubsub-emulator, or nothing.
pubsub_emulator_dir() {
    local roots=()
    if command -v gcloud >/dev/null 2>&1; then
        roots+=("$(gcloud info --format='value(installation.sdk_root)' 2>/dev/null || true)")
    fi
    roots+=(/usr/lib/google-cloud-sdk /usr/share/google-cloud-sdk /opt/google-cloud-sdk)
    local r
    for r in "${roots[@]}"; do
        if [[ -n "$r" && -x "$r/platform/pubsub-emulator/bin/cloud-pubsub-emulator" ]] &&
            compgen -G "$r/platform/pubsub-emulator/lib/*.jar" >/dev/null; then
            echo "$r/platform/pubsub-emulator"
            return 0
        fi
    done
}

pubsub_ready() {
    command -v gcloud >/dev/null 2>&1 && command -v java >/dev/null 2>&1 &&
        java -version >/dev/null 2>&1 && [[ -n "$(pubsub_emulator_dir)" ]]
}

# True when apt knows an installable version of every package given.
apt_has() {
    local p cand
    for p in "$@"; do
        cand="$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')"
        [[ -n "$cand" && "$cand" != "(none)" ]] || return 1
    done
}

install_pubsub() {
    local pkgs=(google-cloud-cli google-cloud-cli-pubsub-emulator openjdk-17-jre-headless)
    if pubsub_ready; then
        log "Pub/Sub emulator present: $(pubsub_emulator_dir) ($(gcloud version 2>/dev/null | head -n1))"
        return 0
    fi
    log "Pub/Sub emulator, gcloud or Java missing; trying apt"
    local sudo=()
    [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
    if command -v apt-get >/dev/null 2>&1; then
        "${sudo[@]}" apt-get update -qq || log "apt-get update failed; using the package lists as they are"
    fi
    if command -v apt-cache >/dev/null 2>&1 && apt_has "${pkgs[@]}"; then
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${pkgs[@]}"
    else
        cat >&2 <<EOF
install-emulators: ERROR: the Pub/Sub emulator is not installed and apt cannot provide it
(apt-cache policy shows no candidate for one of: ${pkgs[*]}).
Install it by hand, then run this script again:
  * add Google Cloud's apt repository (Cloud SDK docs: "Install the gcloud CLI", Debian/Ubuntu),
    then: apt-get install ${pkgs[*]}
  * or, with a gcloud installed from Google's archive (not from apt):
    gcloud components install beta pubsub-emulator   (needs a Java 11+ runtime on PATH)
EOF
        exit 1
    fi
    pubsub_ready || die "apt installed ${pkgs[*]} but the Pub/Sub emulator is still not usable (no gcloud, java or platform/pubsub-emulator)"
    log "Pub/Sub emulator installed: $(pubsub_emulator_dir)"
}

# ---------------------------------------------------------------------------
# bqemulator (PyPI) in a venv, with DuckDB's spatial extension preinstalled
# ---------------------------------------------------------------------------

# Prints "ok" when the venv already has the pinned versions.
venv_versions_ok() {
    [[ -x "$VENV/bin/python" ]] || return 1
    "$VENV/bin/python" - "$BQEMULATOR_VERSION" "$DUCKDB_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
bq, duck = sys.argv[1], sys.argv[2]
assert version("bqemulator") == bq
assert version("duckdb") == duck
assert version("duckdb-extension-spatial") == duck
import numpy  # noqa: F401
import bqemulator.cli  # noqa: F401  (all runtime dependencies import)
EOF
}

install_bqemulator() {
    if [[ -x "$VENV/bin/python" ]] && ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        die "venv $VENV has Python $("$VENV/bin/python" -V 2>&1); bqemulator needs >= 3.11: remove the venv or set MESH_VENV"
    fi
    if venv_versions_ok; then
        log "bqemulator $BQEMULATOR_VERSION present in $VENV"
    else
        if [[ ! -x "$VENV/bin/python" ]]; then
            command -v "$PYTHON" >/dev/null 2>&1 || die "$PYTHON not found (set MESH_PYTHON to a Python >= 3.11)"
            "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
                die "$PYTHON is $("$PYTHON" -V 2>&1); bqemulator needs >= 3.11 (set MESH_PYTHON)"
            log "creating venv $VENV with $("$PYTHON" -V 2>&1)"
            mkdir -p "$(dirname "$VENV")"
            "$PYTHON" -m venv "$VENV"
        fi
        log "installing bqemulator==$BQEMULATOR_VERSION duckdb==$DUCKDB_VERSION into $VENV"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
            "bqemulator==$BQEMULATOR_VERSION" \
            "duckdb==$DUCKDB_VERSION" \
            "duckdb-extension-spatial==$DUCKDB_VERSION" \
            numpy
        venv_versions_ok || die "pip finished but the venv $VENV does not import bqemulator $BQEMULATOR_VERSION with duckdb $DUCKDB_VERSION"
    fi

    # DuckDB looks for extensions in ~/.duckdb/extensions/v<version>/<platform>/; bqemulator
    # runs INSTALL spatial + LOAD spatial at startup and would try to download it otherwise.
    local info src platform dest
    info="$("$VENV/bin/python" - <<'EOF'
import pathlib, duckdb, duckdb_extension_spatial
pkg = pathlib.Path(duckdb_extension_spatial.__file__).parent
files = sorted(pkg.rglob("spatial.duckdb_extension"))
platform = duckdb.sql("PRAGMA platform").fetchone()[0]
print(files[0] if files else "")
print(platform)
EOF
)"
    src="$(sed -n 1p <<<"$info")"
    platform="$(sed -n 2p <<<"$info")"
    [[ -n "$src" && -f "$src" ]] || die "spatial.duckdb_extension not found inside duckdb-extension-spatial in $VENV"
    dest="$HOME/.duckdb/extensions/v$DUCKDB_VERSION/${platform:-linux_amd64}"
    if cmp -s "$src" "$dest/spatial.duckdb_extension"; then
        log "DuckDB spatial extension present in $dest"
    else
        mkdir -p "$dest"
        cp "$src" "$dest/spatial.duckdb_extension.tmp"
        mv "$dest/spatial.duckdb_extension.tmp" "$dest/spatial.duckdb_extension"
        log "copied DuckDB spatial extension to $dest"
    fi
    # Proves the extension loads offline, as bqemulator's engine does at startup.
    "$VENV/bin/python" -c 'import duckdb; c = duckdb.connect(); c.execute("INSTALL spatial"); c.execute("LOAD spatial")' ||
        die "DuckDB cannot load the spatial extension from $dest"
}

# ---------------------------------------------------------------------------
# promtool
# ---------------------------------------------------------------------------

PROMTOOL_DIR="${MESH_PROMTOOL_DIR:-$HOME/.cache/mesh-ingest/promtool}"

# promtool is extracted from Debian's `prometheus` package rather than installed with it:
# installing would also set up (and on some machines start) a Prometheus server.
install_promtool() {
    if [[ -x "$PROMTOOL_DIR/promtool" ]] && "$PROMTOOL_DIR/promtool" --version >/dev/null 2>&1; then
        log "promtool present: $PROMTOOL_DIR/promtool"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "promtool is missing and apt-get is not available: put promtool on PATH or in $PROMTOOL_DIR"
    local tmp
    tmp="$(mktemp -d)"
    if ! (cd "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
        local sudo=()
        [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
        "${sudo[@]}" apt-get update -qq || log "apt-get update failed; using the package lists as they are"
        (cd "$tmp" && apt-get download prometheus) || die "apt-get download prometheus failed"
    fi
    dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
    mkdir -p "$PROMTOOL_DIR"
    cp "$tmp/x/usr/bin/promtool" "$PROMTOOL_DIR/promtool"
    rm -rf "$tmp"
    "$PROMTOOL_DIR/promtool" --version >/dev/null 2>&1 || die "the extracted promtool does not run"
    log "installed promtool: $("$PROMTOOL_DIR/promtool" --version 2>&1 | head -n1)"
}

# ---------------------------------------------------------------------------
# Dataform CLI (npm)
# ---------------------------------------------------------------------------

# The newest 3.0.x of each package on the registry when pinned; the core is what a project's
# node_modules holds (tests/it/dataform_cli.rs copies it there: compiling then needs no network).
DATAFORM_CLI_VERSION=3.0.69
DATAFORM_CORE_VERSION=3.0.62
DATAFORM_DIR="${MESH_DATAFORM_DIR:-$HOME/.cache/mesh-ingest/dataform}"

dataform_ok() {
    [[ -x "$DATAFORM_DIR/node_modules/.bin/dataform" ]] &&
        [[ "$("$DATAFORM_DIR/node_modules/.bin/dataform" --version 2>/dev/null)" == "$DATAFORM_CLI_VERSION" ]] &&
        [[ "$(node -p "require('$DATAFORM_DIR/node_modules/@dataform/core/package.json').version" 2>/dev/null)" == "$DATAFORM_CORE_VERSION" ]]
}

install_dataform() {
    if dataform_ok; then
        log "Dataform CLI $DATAFORM_CLI_VERSION (core $DATAFORM_CORE_VERSION) present in $DATAFORM_DIR"
        return 0
    fi
    command -v npm >/dev/null 2>&1 || die "the Dataform CLI is missing and npm is not available: install Node.js (>= 18) and npm"
    mkdir -p "$DATAFORM_DIR"
    log "installing @dataform/cli@$DATAFORM_CLI_VERSION and @dataform/core@$DATAFORM_CORE_VERSION into $DATAFORM_DIR"
    npm install --prefix "$DATAFORM_DIR" --no-audit --no-fund --save-exact --loglevel=error \
        "@dataform/cli@$DATAFORM_CLI_VERSION" "@dataform/core@$DATAFORM_CORE_VERSION"
    dataform_ok || die "npm finished but $DATAFORM_DIR does not hold dataform $DATAFORM_CLI_VERSION with core $DATAFORM_CORE_VERSION"
}

# ---------------------------------------------------------------------------
# datacontract-cli (PyPI) and Chromium (Debian): the catalog of the ODCS exports
# ---------------------------------------------------------------------------

# datacontract-cli lints our ODCS documents and renders the HTML catalog (scripts/catalog.sh);
# Chromium opens that catalog headless in tests/it/catalog.rs.
DATACONTRACT_VERSION=1.2.8
DATACONTRACT_VENV="${MESH_DATACONTRACT_VENV:-$HOME/.cache/mesh-ingest/datacontract-venv}"

install_datacontract() {
    if [[ "$("$DATACONTRACT_VENV/bin/datacontract" --version 2>/dev/null)" == "$DATACONTRACT_VERSION" ]]; then
        log "datacontract-cli $DATACONTRACT_VERSION present in $DATACONTRACT_VENV"
        return 0
    fi
    log "installing datacontract-cli $DATACONTRACT_VERSION into $DATACONTRACT_VENV"
    "$PYTHON" -m venv "$DATACONTRACT_VENV"
    "$DATACONTRACT_VENV/bin/pip" install -q "datacontract-cli==$DATACONTRACT_VERSION"
    [[ "$("$DATACONTRACT_VENV/bin/datacontract" --version 2>/dev/null)" == "$DATACONTRACT_VERSION" ]] ||
        die "pip finished but $DATACONTRACT_VENV has no datacontract $DATACONTRACT_VERSION"
}

install_chromium() {
    if command -v chromium >/dev/null 2>&1; then
        log "Chromium present: $(chromium --version 2>/dev/null)"
        return 0
    fi
    command -v apt-get >/dev/null 2>&1 || die "Chromium is missing and apt-get is not available"
    local sudo=()
    [[ "$(id -u)" -eq 0 ]] || sudo=(sudo)
    log "installing Debian's chromium"
    if ! DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium >/dev/null; then
        "${sudo[@]}" apt-get update -qq || log "apt-get update failed; using the package lists as they are"
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq chromium >/dev/null ||
            die "apt-get install chromium failed"
    fi
    command -v chromium >/dev/null 2>&1 || die "apt installed chromium but it is not on PATH"
}

install_pubsub
install_bqemulator
install_promtool
install_dataform
install_datacontract
install_chromium
log "done"
