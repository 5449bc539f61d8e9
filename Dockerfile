# Gantry image for docker-compose.yml and docker-compose.mariadb.yml (the
# tests run cargo's binary instead). The mariadb client does the health check.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update -q \
    && apt-get install -y -q --no-install-recommends mariadb-client \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/gantry /usr/local/bin/gantry
COPY conf/ /etc/gantry/
EXPOSE 1234 2345
ENTRYPOINT ["/usr/local/bin/gantry"]
