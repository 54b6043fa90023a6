#!/usr/bin/env bash
# Install pcr from BUILD_DIR into a fresh prefix, build examples/cpp against the
# installed package with find_package(pcr), and run the program it makes.
set -euo pipefail
build_dir=$1
source_dir=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" > /dev/null
test -x "$work/prefix/bin/pcr"
test -f "$work/prefix/include/pcr/pcr.hpp"
test -f "$work/prefix/include/pcr/pipeline/model.hpp"
cmake -S "$source_dir/examples/cpp" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$work/prefix" > /dev/null
cmake --build "$work/build" > /dev/null

"$work/build/ci" --dry-run > "$work/plan.txt"
grep -q "echo foobar && sleep 2 && echo ran command with 1" "$work/plan.txt"

set +e
"$work/build/ci" --no-color > "$work/run.txt" 2>&1
code=$?
set -e
cat "$work/run.txt"
# The basic example fails by design: its third parallel command outlives the 3 s timeout.
[ "$code" -eq 1 ] || { echo "expected exit 1, got $code"; exit 1; }
grep -q "ran command with 1" "$work/run.txt"
grep -q "command can be a string" "$work/run.txt"
grep -q "timed out after 3s" "$work/run.txt"
grep -q "cleaning up" "$work/run.txt"
grep -q "skipped" "$work/run.txt"   # the greeting step after the failed one
echo "installed package works"
