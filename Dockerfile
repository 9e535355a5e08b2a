# syntax=docker/dockerfile:1
#
# wirechat as one binary (`bun run compile`) in a small image with no shell,
# running as a non-root user. docs/operations.md has the details.
#
#   docker build -t wirechat .
#   docker run -d --name wirechat -p 8000:8000 -v wirechat-data:/data \
#     -e ALLOWED_ORIGINS=https://chat.example.com wirechat
#
# Health: `wirechat healthcheck` (the binary itself: the image has no curl).
# Backup while it runs: docker exec wirechat wirechat backup /data/backup-$(date +%F).db
# Stop: docker stop -t 15 wirechat (SHUTDOWN_TIMEOUT below is 8s: the server
# drains and exits before Docker's default 10 s are up).

# 1. Compile. The binary is for the platform this stage runs on (with buildx,
#    --platform linux/arm64 builds an arm64 one).
FROM oven/bun:1.4.5 AS build
WORKDIR /src
COPY package.json bun.lock bunfig.toml ./
RUN bun install --frozen-lockfile --production --ignore-scripts
COPY tsconfig.json ./
COPY src/ src/
COPY scripts/ scripts/
RUN bun run compile --outfile /out/wirechat \
 && /out/wirechat version \
 && mkdir -p /out/data

# 2. Run: glibc and CA certificates (for JWT_JWKS_URL and rediss://), nothing else.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/wirechat /usr/local/bin/wirechat
# A named volume starts with this folder's owner: the nonroot user (65532) can write it.
# A bind mount must be writable by uid 65532 (chown 65532:65532 the host folder).
COPY --from=build --chown=65532:65532 /out/data /data
USER 65532:65532
WORKDIR /data
ENV HOST=0.0.0.0 \
    PORT=8000 \
    DB_PATH=/data/wirechat.db \
    AUTH=accounts \
    SHUTDOWN_TIMEOUT=8s \
    LOG_LEVEL=info
# AUTH must be written out for a non-loopback HOST (README "Security"):
# accounts is the built-in login; use -e AUTH=jwt -e JWT_SECRET=... (or
# JWT_JWKS_URL) with your own identity provider. AUTH=open on 0.0.0.0 lets
# anyone connect as anyone.
VOLUME ["/data"]
EXPOSE 8000
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["/usr/local/bin/wirechat", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/wirechat"]
