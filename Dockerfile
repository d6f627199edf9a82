# syntax=docker/dockerfile:1
# falco-analyst: multi-stage build; a minimal runtime image (distroless cc: glibc and
# libgcc only, no shell), running as a non-root user.
#
#   docker build -t falco-analyst .
#   docker run --rm -p 2802:2802 -e FALCO_ANALYST_TOKEN=... -v fa-data:/var/lib/falco-analyst \
#     falco-analyst serve --listen 0.0.0.0:2802 --db /var/lib/falco-analyst/falco-analyst.db

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The knowledge base and data files are compiled in (include_str!): the binary is all it needs.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p falco-analyst \
 && install -D -m 0755 target/release/falco-analyst /out/falco-analyst \
 && install -d -m 0750 /out/data

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/falco-analyst /usr/local/bin/falco-analyst
# The state directory, owned by the image's non-root user (65532).
COPY --from=build --chown=65532:65532 /out/data /var/lib/falco-analyst
USER 65532:65532
WORKDIR /var/lib/falco-analyst
VOLUME ["/var/lib/falco-analyst"]
EXPOSE 2802
ENTRYPOINT ["/usr/local/bin/falco-analyst"]
CMD ["serve", "--listen", "0.0.0.0:2802", "--db", "/var/lib/falco-analyst/falco-analyst.db"]
