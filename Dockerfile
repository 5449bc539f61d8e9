# Gantry image for docker-compose.yml (not used by the tests).
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
COPY --from=build /src/target/release/gantry /usr/local/bin/gantry
COPY conf/ /etc/gantry/
EXPOSE 1234 2345
ENTRYPOINT ["/usr/local/bin/gantry"]
