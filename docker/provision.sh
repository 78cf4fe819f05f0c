#!/usr/bin/env bash
# The one provisioning script: CI, the Docker image and a new user's machine
# all run it. Installs the Debian packages tinyrrm needs (cross compiler,
# C libraries for the targets, QEMU, host toolchain, Python) and nothing else.
# Idempotent: packages already installed are not fetched again.
set -euo pipefail

PACKAGES=(
  make gcc g++ clang clang-format valgrind
  python3 python3-venv python3-pip
  gcc-arm-none-eabi libnewlib-arm-none-eabi picolibc-arm-none-eabi
  qemu-system-arm
)
# --container: also the tools that build and run the HIL image (make hil-docker)
if [ "${1:-}" = "--container" ]; then
  PACKAGES+=(buildah debootstrap)
fi

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "provision: all ${#PACKAGES[@]} Debian packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "provision: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "provision: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "provision: done"
