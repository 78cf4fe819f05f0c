#!/usr/bin/env bash
# Build the lean HIL image with buildah and run the HIL suite inside it.
# No Docker engine runs on these machines; buildah does (chroot isolation).
# The base image is made once with debootstrap, as no registry is reachable.
#   docker/hil-docker.sh [TARGET]
set -euo pipefail
TARGET="${1:-cortex-m4}"
BASE="localhost/debian:bookworm"
IMAGE="localhost/tinyrrm-hil:latest"
cd "$(dirname "$0")/.."

for tool in buildah debootstrap; do
  command -v "$tool" >/dev/null || { echo "hil-docker: $tool missing (bash docker/provision.sh --container)" >&2; exit 1; }
done
[ -f "build/hil/$TARGET/reference.json" ] || { echo "hil-docker: run tinyrrm hil-prepare --target $TARGET first" >&2; exit 1; }

if ! buildah inspect --type image "$BASE" >/dev/null 2>&1; then
  echo "hil-docker: making $BASE with debootstrap (minbase bookworm)"
  ctr=$(buildah from scratch)
  mnt=$(buildah mount "$ctr")
  debootstrap --variant=minbase bookworm "$mnt" http://deb.debian.org/debian >/dev/null
  buildah umount "$ctr" >/dev/null
  buildah commit -q "$ctr" "$BASE" >/dev/null
  buildah rm "$ctr" >/dev/null
fi

# behind a TLS-intercepting proxy pip needs the host's CA bundle: mounted read-only for the build only
CA_ARGS=()
HOST_CA="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
if [ -f "$HOST_CA" ]; then
  CA_ARGS=(--volume "$HOST_CA:/run/host-ca.crt:ro" --build-arg PIP_CERT=/run/host-ca.crt)
fi

echo "hil-docker: building $IMAGE from docker/Dockerfile (base $BASE)"
buildah bud -q --isolation chroot --build-arg BASE="$BASE" --build-arg TARGET="$TARGET" "${CA_ARGS[@]}" \
  -f docker/Dockerfile -t "$IMAGE" . >/dev/null

echo "hil-docker: running the HIL suite for $TARGET inside the image"
ctr=$(buildah from "$IMAGE")
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah run --isolation chroot "$ctr" -- sh -c \
  "cd /work && /opt/venv/bin/python -m pytest -q -p no:cacheprovider hil_tests --target $TARGET"
