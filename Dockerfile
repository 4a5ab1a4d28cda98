# meterwatch container image: a release build on distroless (glibc, CA certificates, no shell).
#
#   docker build -t meterwatch --build-arg METERWATCH_GIT_REVISION="$(git rev-parse --short=12 HEAD)" .
#   docker run --rm meterwatch check --config /etc/meterwatch/meterwatch.toml
#
# The image carries the example config (deploy/meterwatch.example.toml) at the default path and
# the shipped rules at /etc/meterwatch/rules; queue, topic and table come from METERWATCH_* env
# (see deploy/README.md). Mount a directory over /etc/meterwatch/rules to replace the rules.

# Registry-qualified image names, so podman and buildah resolve them without search registries.
FROM docker.io/library/rust:1.95-bookworm AS builder
WORKDIR /src

# Dependency layer: manifests plus empty targets, so this layer (crates.io downloads and the
# dependency build) is reused until Cargo.toml or Cargo.lock change. Every target a manifest
# declares must exist, or cargo refuses to read the manifest (a new workspace member needs its
# Cargo.toml copied here too). Tests are not needed to build the binary.
COPY Cargo.toml Cargo.lock build.rs ./
COPY crates/pattern/Cargo.toml crates/pattern/Cargo.toml
RUN mkdir -p src crates/pattern/src crates/pattern/benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs crates/pattern/src/lib.rs \
    && echo 'fn main() {}' > crates/pattern/benches/matching.rs \
    && cargo build --release --locked --bin meterwatch \
    && rm -rf src crates/pattern/src crates/pattern/benches

# Real sources. COPY keeps the files' own mtimes, which can be older than the placeholders
# built above: touch the crate roots so cargo rebuilds both workspace crates.
COPY src src
COPY crates/pattern crates/pattern
# The image has no .git: build.rs takes the revision for `--version` from here (else "unknown").
ARG METERWATCH_GIT_REVISION=""
RUN touch src/main.rs src/lib.rs crates/pattern/src/lib.rs \
    && cargo build --release --locked --bin meterwatch \
    && install -D -m 0755 target/release/meterwatch /out/meterwatch

# distroless/cc: glibc and libgcc for the Rust binary, CA certificates for AWS TLS, no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
# checkov:skip=CKV_DOCKER_2: distroless has no shell or curl for a HEALTHCHECK, and meterwatch has no health subcommand; ECS watches the process exit and Kubernetes probes /healthz and /readyz over HTTP.
LABEL org.opencontainers.image.title="meterwatch" \
      org.opencontainers.image.description="Watches AWS Marketplace metering calls and alerts through SNS" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/meterwatch/meterwatch"
COPY --from=builder /out/meterwatch /usr/local/bin/meterwatch
COPY deploy/meterwatch.example.toml /etc/meterwatch/meterwatch.toml
COPY rules/ /etc/meterwatch/rules/
# distroless "nonroot" (65532), spelled as numbers so runAsNonRoot can verify it.
USER 65532:65532
# /healthz /readyz /metrics
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/meterwatch"]
CMD ["run", "--config", "/etc/meterwatch/meterwatch.toml"]
