#!/bin/sh
# Fails when BREAK is set: `not ok` with YAML diagnostics under it.
echo "1..2"
echo "ok 1 - fine"
if [ -n "${BREAK:-}" ]; then
  echo "not ok 2 - totals match"
  echo "  ---"
  echo "  expected: 10"
  echo "  got: 9"
  echo "  ..."
else
  echo "ok 2 - totals match"
fi
