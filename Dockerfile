# syntax=docker/dockerfile:1
# Multi-stage build of cygni-usage and of the Grafana data-source plugin, for the target platform
# (BuildKit's TARGETOS/TARGETARCH: docker build --platform linux/arm64 … builds arm64 binaries,
# cross-compiled on the build machine's own platform; Go needs no emulation for that).
#   docker build -t cygni-usage .                          # the service (final stage)
#   docker build --target grafana-plugin -t cygni-plugin .  # the plugin, copied to /out by its CMD
# Both binaries are static (CGO_ENABLED=0): the plugin runs in Grafana's Alpine (musl) image.

# ---- Go: the service and the plugin's backend (two modules) ----
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
COPY grafana-plugin/go.mod grafana-plugin/go.sum ./grafana-plugin/
RUN go mod download && cd grafana-plugin && go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags='-s -w' -o /out/cygni-usage ./cmd/cygni-usage \
 && cd grafana-plugin \
 && CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath -ldflags='-s -w' -o /out/gpx_usage_${TARGETOS}_${TARGETARCH} ./cmd/gpx_usage

# ---- TypeScript: the plugin's frontend (platform-independent) ----
FROM --platform=$BUILDPLATFORM node:20 AS plugin-frontend
WORKDIR /src/grafana-plugin
COPY grafana-plugin/package.json grafana-plugin/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY grafana-plugin/ ./
RUN npm run build

# ---- The plugin directory Grafana loads (dist/ plus the backend for the target platform) ----
FROM busybox:1.37 AS grafana-plugin
ARG TARGETOS
ARG TARGETARCH
COPY --from=plugin-frontend /src/grafana-plugin/dist/ /plugin/
COPY --from=build /out/gpx_usage_${TARGETOS}_${TARGETARCH} /plugin/
# Copies the plugin into the volume mounted at /out (docker-compose's grafana-plugin service).
CMD ["sh", "-c", "rm -rf /out/* && cp -r /plugin/. /out/ && chmod 0755 /out/gpx_usage_*"]

# ---- The service: a small image, run as a non-root user ----
FROM debian:bookworm-slim AS service
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 cygni \
 && useradd --system --uid 10001 --gid cygni --home-dir /var/lib/cygni-usage --shell /usr/sbin/nologin cygni \
 && mkdir -p /var/lib/cygni-usage /etc/cygni-usage \
 && chown cygni:cygni /var/lib/cygni-usage
COPY --from=build /out/cygni-usage /usr/local/bin/cygni-usage
COPY deploy/cygni-usage.yml /etc/cygni-usage/config.yml
USER 10001:10001
WORKDIR /var/lib/cygni-usage
VOLUME ["/var/lib/cygni-usage"]
EXPOSE 8080
ENTRYPOINT ["cygni-usage"]
CMD ["serve", "--config", "/etc/cygni-usage/config.yml"]
