#!/usr/bin/env bash
# Builds a stand-in for the Dockerfile's base image when the real one cannot
# be pulled (this machine reaches Debian's archive and the npm registry, not
# Docker Hub): a Debian bookworm rootfs from debootstrap (minbase), with the
# Node 24 binary of the npm registry's `node` package (node_modules/node, the
# project's pinned dev dependency) and the host's npm, laid out as the
# official node:*-bookworm-slim image lays them out (/usr/local/bin/node,
# /usr/local/lib/node_modules/npm, a `node` user of uid/gid 1000). It is
# tagged with the base image's name, so the Dockerfile builds unchanged. The
# host's CA bundle goes in too, named by NODE_EXTRA_CA_CERTS as on the host:
# where egress passes a TLS-inspecting proxy, npm ci in the build needs it. The
# rootfs tarball is cached in $BLITZ_IMAGE_CACHE (default /var/cache/blitz-lb)
# and the image stays in Docker between runs: only the first run is slow.
set -euo pipefail
base="${1:?usage: stand-in-base.sh IMAGE:TAG}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${BLITZ_IMAGE_CACHE:-/var/cache/blitz-lb}"

if docker image inspect "$base" >/dev/null 2>&1; then
  echo "stand-in-base: $base is present"
  exit 0
fi
mkdir -p "$cache"
rootfs_tar="$cache/bookworm-minbase.tar"
if [ ! -s "$rootfs_tar" ]; then
  work="$(mktemp -d)"
  trap 'rm -rf "$work"' EXIT
  echo "stand-in-base: debootstrap --variant=minbase bookworm (a few minutes)"
  debootstrap --variant=minbase bookworm "$work/rootfs" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$cache/debootstrap.log" 2>&1 \
    || { tail -20 "$cache/debootstrap.log" >&2; exit 1; }
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  tar -C "$work/rootfs" -cf "$rootfs_tar.part" .
  mv "$rootfs_tar.part" "$rootfs_tar"
fi

node_bin="$root/node_modules/node/bin/node"
npm_dir="$(npm root -g)/npm"
[ -x "$node_bin" ] || { echo "stand-in-base: $node_bin missing (npm ci first)" >&2; exit 1; }
[ -f "$npm_dir/package.json" ] || { echo "stand-in-base: no npm at $npm_dir" >&2; exit 1; }
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$node_bin" "$ctx/node"
cp -a "$npm_dir" "$ctx/npm"
ca_bundle="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"
if [ -s "$ca_bundle" ]; then cp "$ca_bundle" "$ctx/ca-certificates.crt"; else : >"$ctx/ca-certificates.crt"; fi
tag_root="blitz-lb-stand-in-rootfs:bookworm"
docker import "$rootfs_tar" "$tag_root" >/dev/null
cat >"$ctx/Dockerfile" <<DOCKERFILE
FROM $tag_root
COPY node /usr/local/bin/node
COPY npm /usr/local/lib/node_modules/npm
COPY ca-certificates.crt /usr/local/share/stand-in-ca.crt
ENV NODE_EXTRA_CA_CERTS=/usr/local/share/stand-in-ca.crt
RUN ln -s ../lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm \\
 && ln -s ../lib/node_modules/npm/bin/npx-cli.js /usr/local/bin/npx \\
 && groupadd --gid 1000 node \\
 && useradd --uid 1000 --gid node --shell /bin/bash --create-home node \\
 && node --version && npm --version
ENV NODE_VERSION=$("$node_bin" --version | tr -d v)
CMD ["node"]
DOCKERFILE
DOCKER_BUILDKIT=0 docker build -q -t "$base" "$ctx" >/dev/null
docker rmi "$tag_root" >/dev/null
echo "stand-in-base: built $base (stand-in: debootstrap bookworm + node $("$node_bin" --version))"
