# The consumer-group worker's image: `lambda-stream run` (docs/deployment.md, "Many workers on
# Kubernetes"). Two stages: the release build with the default features (librdkafka, a vendored
# OpenSSL, the AWS SDK), then only the binary on a distroless base with glibc and CA certificates.
#
#   docker build -t REGISTRY/lambda-stream:0.1.0 .          (or podman / buildah / kaniko)
#   docker run --rm REGISTRY/lambda-stream:0.1.0 run --help
#
# The base images are pinned by tag; pin them by digest (IMAGE:TAG@sha256:…) for builds that must
# be reproducible.

FROM docker.io/library/rust:1.95-bookworm AS build
# librdkafka and OpenSSL are compiled from source by their crates (make, perl and the C compiler
# are in this image); cmake is the AWS crypto library's fallback build.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Cargo reads every target of the manifest (benches and tests included) and every member of the
# workspace (the engine, crates/engine) before it builds one.
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY crates crates
COPY data data
COPY schema schema
COPY benches benches
COPY tests tests
# zlib linked statically, as librdkafka and OpenSSL are: the runtime image has no libz.
ENV LIBZ_SYS_STATIC=1
RUN cargo build --release --locked --bin lambda-stream \
 && if ldd target/release/lambda-stream | grep -v -E 'linux-vdso|ld-linux|lib(c|m|dl|rt|pthread|gcc_s)\.so'; then \
      echo "lambda-stream links a library the runtime image lacks (above)" >&2; exit 1; \
    fi \
 && install -D -m 0755 target/release/lambda-stream /out/lambda-stream

# glibc and libgcc of Debian 12, like the build stage, and CA certificates; no shell.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/lambda-stream /usr/local/bin/lambda-stream
# The vendored OpenSSL that librdkafka uses looks for CA certificates under its build-time
# directory (/usr/local/ssl), which this image does not have: point it at Debian's bundle, or
# TLS to the brokers (MSK's 9094, 9096, 9098) fails verification. The AWS SDK reads it too.
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
# distroless's `nonroot` (65532), numeric so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# /metrics, /healthz and /readyz with --metrics-addr 0.0.0.0:9464.
EXPOSE 9464
# No HEALTHCHECK: Kubernetes ignores it and probes /healthz and /readyz itself
# (deploy/kubernetes/deployment.yaml), and the image has no shell or HTTP client to run one.
ENTRYPOINT ["/usr/local/bin/lambda-stream"]
CMD ["run", "--metrics-addr", "0.0.0.0:9464"]
