#!/usr/bin/env bash
# Set up (scripts/setup.sh), build, and run the whole test suite with CTest.
# Pass CTest options to narrow it down: scripts/test.sh -L unit
#
#   scripts/test.sh --sanitize [CTEST OPTIONS]
# builds everything with clang, AddressSanitizer + UndefinedBehaviorSanitizer (leak
# detection on) and the libFuzzer targets in build-sanitize/, runs the unit, proc, e2e and
# fuzz-corpus tests there, then fuzzes each target for PCR_FUZZ_SECONDS (default 60).
set -euo pipefail
cd "$(dirname "$0")/.."
# The tests' own tools: xmllint (JUnit schema), Chromium and ImageMagick (the HTML report
# rendered and looked at), script(1) for a pty (bsdutils, in setup.sh), and a Docker
# engine with Compose v1 and a static busybox for the compose tests (the `docker.ready`
# test starts dockerd when it is not running), and an sshd (openssh-server) for the
# test of a docker host over ssh:// (Compose v1 needs paramiko for ssh:// hosts); pytest
# (a real JUnit writer for `results: {junit: ...}`); redis-server (the shared queue's tests); clang
# and its sanitizer and libFuzzer runtimes for --sanitize.
export PCR_EXTRA_PACKAGES="libxml2-utils chromium imagemagick docker.io docker-compose busybox-static debootstrap openssh-server python3-paramiko python3-pytest redis-server clang libclang-rt-dev"

if [ "${1:-}" = "--sanitize" ]; then
  shift
  PCR_CXX=clang++ PCR_CMAKE_ARGS="-DPCR_FUZZ=ON" scripts/setup.sh build-sanitize
  export ASAN_OPTIONS="detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=1"
  export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
  cd build-sanitize
  if [ "$#" -eq 0 ]; then set -- -L 'unit|proc|e2e|queue|fuzz'; fi
  ctest --output-on-failure --timeout 600 "$@"
  seconds=${PCR_FUZZ_SECONDS:-60}
  for target in loader template mask results; do
    # New inputs go to a scratch folder; the corpus in tests/fuzz/ is read, never written.
    # A crash leaves its input in build-sanitize/fuzz-crashes/ and fails the run: keep it
    # in tests/fuzz/$target/ as a regression input once fixed.
    scratch=$(mktemp -d)
    mkdir -p fuzz-crashes
    echo "fuzz: $target for ${seconds}s"
    tests/fuzz_$target -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix=fuzz-crashes/$target- \
      "$scratch" "../tests/fuzz/$target" > "fuzz-crashes/$target.log" 2>&1 || true
    grep -E "^(stat::|#[0-9]+[[:space:]]+DONE)" "fuzz-crashes/$target.log" || true
    rm -rf "$scratch"
    if ls fuzz-crashes/$target-* > /dev/null 2>&1; then
      # CI keeps only this log: print the finding's report and the input that caused it,
      # so it can be reproduced from the log alone (base64 -d > input; fuzz_$target input).
      sed -n '/^==[0-9]*==/,$p' "fuzz-crashes/$target.log" | head -n 80 >&2
      for input in fuzz-crashes/$target-*; do
        echo "fuzz: input $input ($(wc -c < "$input") bytes), base64:" >&2
        head -c 16384 "$input" | base64 -w 0 >&2
        echo >&2
      done
      echo "fuzz: $target crashed; inputs in build-sanitize/fuzz-crashes/" >&2
      exit 1
    fi
  done
  exit 0
fi

scripts/setup.sh build
cd build
ctest --output-on-failure --timeout 600 "$@"
