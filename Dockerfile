# plantao in a container: a build stage with the Rust toolchain, and a small Debian runtime
# with the binary, a shell for the steps, tini as PID 1 and the health check.
#   docker build -t plantao .
#   docker run -d --name plantao -p 8077:8077 -v plantao-data:/var/lib/plantao \
#     -v "$PWD/config:/etc/plantao:ro" --env-file plantao.env plantao
# docs/deploy.md explains the choices. (Written for Docker; no engine was at hand to build it
# where it was written, so the build itself is untested.)

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p plantao \
 && strip target/release/plantao \
 && target/release/plantao man --dir /out/man/man1 \
 && target/release/plantao completions bash > /out/plantao.bash

FROM debian:bookworm-slim
# ca-certificates: HTTPS steps, probes and channels; tini: reaps the processes steps leave
# behind and forwards SIGTERM; the rest is what steps commonly call. Add your steps' own tools
# (Node.js, Python…) in an image built FROM this one.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --home-dir /var/lib/plantao --create-home --shell /usr/sbin/nologin plantao
COPY --from=build /src/target/release/plantao /usr/local/bin/plantao
COPY --from=build /out/man/man1/ /usr/local/share/man/man1/
COPY --from=build /out/plantao.bash /usr/share/bash-completion/completions/plantao
USER plantao
WORKDIR /var/lib/plantao
VOLUME /var/lib/plantao
# The configuration is /etc/plantao/plantao.toml, mounted (docs/deploy.md has one to start from):
# its server.listen must be 0.0.0.0:8077 for -p to reach it, and its storage.url an absolute path
# in the volume (sqlite:///var/lib/plantao/plantao.db) or a PostgreSQL URL. Without it plantao
# exits at once, saying which file it could not read.
ENV PLANTAO_CONFIG=/etc/plantao/plantao.toml
EXPOSE 8077
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["plantao", "healthcheck"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "plantao"]
CMD ["serve", "--log-format", "json"]
