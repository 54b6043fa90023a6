#!/usr/bin/env bash
# Install what pcr needs on Debian 12 (only what is missing), then configure and build.
#   scripts/setup.sh [BUILD_DIR]    (default: build)
# PCR_EXTRA_PACKAGES adds packages (scripts/test.sh uses it for the test tools).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${1:-build}

packages=(build-essential cmake ninja-build pkg-config libuv1-dev libyaml-cpp-dev libcli11-dev
          libfmt-dev nlohmann-json3-dev libre2-dev libxml2-dev libhiredis-dev libgtest-dev libgmock-dev bsdutils procps
          ${PCR_EXTRA_PACKAGES:-})
# Docker, Compose and debootstrap, for the compose example scripts/example.sh runs first
# (PCR_NO_DOCKER=1 leaves them out).
[ -n "${PCR_NO_DOCKER:-}" ] || packages+=(docker.io docker-compose debootstrap busybox-static)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" > /dev/null
fi

werror=OFF
[ "${CI:-}" = "true" ] && werror=ON
# PCR_CXX picks the compiler (scripts/test.sh --sanitize: clang++); PCR_CMAKE_ARGS adds options.
cmake -S . -B "$build_dir" -G Ninja -DPCR_WERROR=$werror ${PCR_CXX:+-DCMAKE_CXX_COMPILER=$PCR_CXX} \
  ${PCR_CMAKE_ARGS:-} > /dev/null
cmake --build "$build_dir"
