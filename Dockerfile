# syntax=docker/dockerfile:1
#
# tradeauth container image.
#
#   docker build -t tradeauth .
#   docker run -d -p 8080:8080 -v tradeauth-data:/data tradeauth
#
# The default database is SQLite in the /data volume: one instance per volume. For several
# instances, set TRADEAUTH_DATABASE_URL=postgres://... and TRADEAUTH_REDIS_URL=redis://...
# (see docs/DEPLOYMENT.md).
#
# Environment variables win over a --config file, so the three TRADEAUTH_* values set below
# also override a mounted config file; change them with `-e` (an empty value means the
# built-in default, not the file's value).

ARG RUST_VERSION=1

# --- build -------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src

# Only what `cargo build` needs (the migrations are embedded from src/store/migrations).
COPY Cargo.toml Cargo.lock ./
COPY src ./src

# The registry and target directories are build caches, not image layers; the binary is
# copied out of the cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -D -m 0755 target/release/tradeauth /out/tradeauth

# The data directory, owned by the runtime image's non-root user (65532). A named volume
# mounted on /data starts with this ownership.
RUN install -d -m 0700 -o 65532 -g 65532 /out/data

# --- runtime -----------------------------------------------------------------------------
# distroless/cc: glibc, libgcc, CA certificates and tzdata, nothing else (no shell). The
# binary links only libc, libm and libgcc_s; SQLite is compiled in.
FROM gcr.io/distroless/cc-debian12:nonroot

COPY --from=build /out/tradeauth /usr/local/bin/tradeauth
COPY --from=build --chown=65532:65532 /out/data /data

ENV TRADEAUTH_LISTEN=0.0.0.0:8080 \
    TRADEAUTH_DATABASE_URL=sqlite:///data/tradeauth.db \
    TRADEAUTH_LOG_FORMAT=json

USER 65532:65532
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080

# No HEALTHCHECK: the distroless image has no shell, curl or wget to run one, and tradeauth
# has no health-check subcommand. Probe from outside instead: GET /healthz (liveness,
# always 200 while the process runs) and GET /readyz (200 "ready" or "degraded", 503 when
# the database is unreachable), e.g. as Kubernetes httpGet probes or a load balancer check.

# SIGTERM (docker stop) drains in-flight requests, closes WebSockets with 1001 and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["tradeauth"]
CMD ["serve"]
