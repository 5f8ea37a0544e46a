# syntax=docker/dockerfile:1
#
# Build:  docker build -t actionsd .
# Run:    docker run -d --name actionsd -p 8080:8080 -v actionsd-data:/var/lib/actionsd actionsd
# Token:  docker exec actionsd cat actionsd-admin.token
# The SQLite database, its key file and the generated admin token live in /var/lib/actionsd
# (owned by uid 10001; a bind-mounted host directory must be writable by that uid).

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The cache mounts keep downloaded crates and compiled dependencies between builds;
# the binary is copied out in the same step because the target dir is not part of the layer.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && install -m 0755 target/release/actionsd /usr/local/bin/actionsd

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 actionsd \
    && useradd --system --uid 10001 --gid actionsd --home-dir /var/lib/actionsd --no-create-home \
       --shell /usr/sbin/nologin actionsd \
    && install -d -o actionsd -g actionsd -m 0750 /var/lib/actionsd
COPY --from=build /usr/local/bin/actionsd /usr/local/bin/actionsd
USER 10001:10001
WORKDIR /var/lib/actionsd
VOLUME ["/var/lib/actionsd"]
ENV ACTIONSD_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["actionsd"]
CMD ["serve"]
