# syntax=docker/dockerfile:1
#
# mesh-ingest container image: `docker build -t mesh-ingest .`
#
# Two stages: a Rust builder, and a distroless runtime holding only the binary, CA certificates
# (distroless ships them) and the default configuration. Pure Rust TLS (rustls): no OpenSSL.
# Pin both base images by digest in production (Renovate/Dependabot can keep the digests fresh).

# --- builder -----------------------------------------------------------------------------------
# Bookworm to match the runtime's glibc (distroless cc-debian12 is Debian 12).
FROM rust:1.95-slim-bookworm AS builder
# The slim image has gcc + libc6-dev, which aws-lc-sys (rustls' crypto provider) compiles with.
WORKDIR /build
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

# Dependency layer: build every dependency against stub sources, so that editing src/ reuses
# this layer and recompiles only the mesh-ingest crate. It changes only with Cargo.toml/lock.
COPY Cargo.toml Cargo.lock ./
# Both builds use a manifest without explicit [[bench]]/[[test]]/[[example]] targets: their files
# are not in the build context (.dockerignore) and cargo refuses a manifest naming missing target
# files. Dependencies, features and profiles are untouched (so Cargo.lock still matches under
# --locked), and the binary does not depend on those targets.
RUN awk '/^\[\[(bench|test|example)\]\]/ { skip = 1; next } /^\[/ { skip = 0 } !skip' \
        Cargo.toml > Cargo.toml.bin \
 && mv Cargo.toml.bin Cargo.toml \
 && mkdir -p src/bin/mesh-load \
 && echo 'fn main() {}' > src/main.rs \
 && echo 'fn main() {}' > src/bin/mesh-load/main.rs \
 && : > src/lib.rs \
 && cargo build --release --locked --bin mesh-ingest \
 && rm -rf src

# The real sources.
COPY src ./src
# COPY keeps the files' own mtimes, which may be older than the stub build's outputs: touch the
# crate roots so cargo cannot mistake the stub library and binary for up-to-date ones.
RUN touch src/main.rs src/lib.rs \
 && cargo build --release --locked --bin mesh-ingest \
 && install -D -m 0755 target/release/mesh-ingest /out/mesh-ingest

# --- runtime -----------------------------------------------------------------------------------
# glibc + libgcc + CA certificates + tzdata, no shell, runs as uid/gid 65532 (nonroot).
FROM gcr.io/distroless/cc-debian12:nonroot

COPY --from=builder /out/mesh-ingest /usr/local/bin/mesh-ingest
# Defaults baked in: base.yaml, production.yaml, objects/ and schemas/. On Kubernetes the team's
# objects/ and schemas/ are ConfigMaps mounted over /etc/mesh-ingest/objects and .../schemas
# (deploy/README.md), and single settings are overridden with APP__… variables.
COPY config/ /etc/mesh-ingest/

ENV MESH_CONFIG_DIR=/etc/mesh-ingest \
    APP_ENVIRONMENT=production

USER 65532:65532
# /healthz, /readyz, /metrics (config/production.yaml: application.port).
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/mesh-ingest"]
CMD ["run"]
