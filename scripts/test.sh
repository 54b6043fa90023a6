#!/usr/bin/env bash
# Set up (scripts/setup.sh), build, and run the whole test suite with CTest.
# Pass CTest options to narrow it down: scripts/test.sh -L unit
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests' own tools: xmllint (JUnit schema), Chromium and ImageMagick (the HTML report
# rendered and looked at), script(1) for a pty (bsdutils, in setup.sh), and a Docker
# engine with Compose v1 and a static busybox for the compose tests (the `docker.ready`
# test starts dockerd when it is not running), and an sshd (openssh-server) for the
# test of a docker host over ssh:// (Compose v1 needs paramiko for ssh:// hosts).
PCR_EXTRA_PACKAGES="libxml2-utils chromium imagemagick docker.io docker-compose busybox-static debootstrap openssh-server python3-paramiko" \
  scripts/setup.sh build
cd build
ctest --output-on-failure --timeout 600 "$@"
