#!/usr/bin/env bash
# Set up (scripts/setup.sh), build, and run the whole test suite with CTest.
# Pass CTest options to narrow it down: scripts/test.sh -L unit
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
cd build
ctest --output-on-failure --timeout 600 "$@"
