#!/usr/bin/env bash
# Set up (scripts/setup.sh), build, and run the whole test suite with CTest.
# Pass CTest options to narrow it down: scripts/test.sh -L unit
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests' own tools: xmllint (JUnit schema), Chromium and ImageMagick (the HTML report
# rendered and looked at), script(1) for a pty (bsdutils, in setup.sh).
PCR_EXTRA_PACKAGES="libxml2-utils chromium imagemagick" scripts/setup.sh build
cd build
ctest --output-on-failure --timeout 600 "$@"
