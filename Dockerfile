# blitz-lb's image: one process (blitz-lb as PID 1), logs on stdout, the config
# mounted at /etc/blitz-lb/config.toml, nothing written inside the image at run
# time. See "Running in a container" in the README.
#
#   docker build -t blitz-lb .
#   docker run --rm -v "$PWD/config.toml:/etc/blitz-lb/config.toml:ro" -p 8080:8080 blitz-lb
#
# No init (tini, --init) is built in: blitz-lb installs SIGTERM, SIGINT and SIGHUP
# handlers, so as PID 1 it gets them; the only children it starts are its own
# [process] workers, which Node waits for. `docker run --init` still works.

ARG NODE_IMAGE=node:24-bookworm-slim

# --- build: TypeScript to JavaScript, with the dev dependencies ------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /src
COPY package.json package-lock.json ./
# --ignore-scripts: the `node` dev dependency (the host's pinned Node for npm scripts)
# would fetch a second Node binary; this stage runs the base image's node instead,
# calling tsc directly rather than through `npm run`, which would put node_modules/.bin
# (and that package's node) first on PATH.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN ./node_modules/.bin/tsc -p . --declaration false --sourceMap false

# --- run: production dependencies and the compiled code only ----------------------
FROM ${NODE_IMAGE}
ARG VERSION=0.2.0
ARG SOURCE=""
ARG REVISION=unknown
LABEL org.opencontainers.image.title="blitz-lb" \
      org.opencontainers.image.description="A Layer-4 TCP load balancer for Node.js: warm connection pools, health checks, retries with backoff." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="MIT"
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force \
 && rm -rf /root/.npm /tmp/*
COPY --from=build /src/dist/src ./dist/src
COPY LICENSE ./
RUN chmod 0755 dist/src/cli.js \
 && ln -s /app/dist/src/cli.js /usr/local/bin/blitz-lb \
 && mkdir -p /etc/blitz-lb
# The base image's unprivileged `node` user, by number so that Kubernetes'
# runAsNonRoot can verify it.
USER 1000:1000
EXPOSE 8080 9900
STOPSIGNAL SIGTERM
# /livez on the [admin] listen address when the config has one; without [admin] it passes.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["node", "/app/dist/src/container/healthcheck.js"]
CMD ["blitz-lb", "run", "--config", "/etc/blitz-lb/config.toml"]
