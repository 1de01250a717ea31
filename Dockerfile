# Multi-stage build of every Cashvio binary into one small non-root image.
# Dependencies are cooked in their own layer (cargo-chef), so a code change rebuilds only
# the workspace crates.
FROM rust:1-bookworm AS chef
RUN cargo install cargo-chef --locked --version 0.1.71
WORKDIR /app

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
# Queries are checked against the committed .sqlx/ data: no database at build time.
ENV SQLX_OFFLINE=true
COPY --from=planner /app/recipe.json recipe.json
RUN cargo chef cook --release --recipe-path recipe.json
COPY . .
RUN cargo build --release --locked --bins \
 && mkdir /out \
 && cp target/release/cashvio-auth target/release/cashvio-stock target/release/cashvio-order \
       target/release/cashvio-mailer target/release/cashvio-admin /out/

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin cashvio
COPY --from=builder /out/ /usr/local/bin/
USER 10001:10001
ENV LOG_FORMAT=json HOST=0.0.0.0
# Each container picks its binary with `command:` (see compose.yaml).
CMD ["cashvio-auth"]
