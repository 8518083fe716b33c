# The engine as a container image: built in a Rust image, run from a small
# Debian one as an unprivileged user. `compose.yaml` runs two of them behind
# a proxy, on PostgreSQL and Redis.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Without the line tables a local build keeps for profiling (cargo then
# strips the debug information): the binary is a fifth of the size. Panic
# messages and error reports keep their file and line.
ENV CARGO_PROFILE_RELEASE_DEBUG=false
RUN cargo build --release --locked -p coliseum \
 && cp target/release/coliseum /coliseum

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --create-home --home-dir /var/lib/coliseum coliseum
COPY --from=build /coliseum /usr/local/bin/coliseum
USER coliseum
WORKDIR /var/lib/coliseum
# Inside a container the engine listens on every interface; the SQLite
# default keeps its file in the working directory (a volume, if mounted).
ENV COLISEUM_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["coliseum"]
CMD ["serve"]
