#!/usr/bin/env bash
# npm run test:image: the image test (test/image.docker.ts), with what it needs.
# Starts dockerd when none answers (no iptables and no bridge: the container
# runs on the host's network, which this sandbox allows), builds the stand-in
# base image when the real one is absent (stand-in-base.sh), then runs the test.
# When dockerd cannot start, says why and the test skips.
set -euo pipefail
cd "$(dirname "$0")/../.."
base="$(sed -n 's/^ARG NODE_IMAGE=//p' Dockerfile)"

if ! docker info >/dev/null 2>&1; then
  if ! command -v dockerd >/dev/null 2>&1; then
    echo "test:image: no dockerd (apt-get install docker.io); the image test will skip" >&2
  else
    log="${TMPDIR:-/tmp}/blitz-lb-dockerd.log"
    echo "test:image: starting dockerd --iptables=false --bridge=none (log: $log)"
    nohup dockerd --iptables=false --ip6tables=false --bridge=none >"$log" 2>&1 &
    for _ in $(seq 1 60); do
      docker info >/dev/null 2>&1 && break
      kill -0 $! 2>/dev/null || break
      sleep 0.5
    done
    docker info >/dev/null 2>&1 || { echo "test:image: dockerd did not start:" >&2; tail -5 "$log" >&2; }
  fi
fi
if docker info >/dev/null 2>&1; then
  bash test/image/stand-in-base.sh "$base"
fi
exec ./node_modules/.bin/node --test --test-timeout=600000 dist/test/image.docker.js
