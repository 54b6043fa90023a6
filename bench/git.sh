#!/usr/bin/env bash
# git's own test suite (t0*, t1*, t2*: 244 scripts) on 2 workers, four ways in the same
# interleaved rounds: pcr (one for_each step, a job per script, results: tap, --json),
# git's own driver (make -C t -j2 -k T="..."), prove -j2 and GNU parallel -j2.
#   bench/git.sh GIT_CHECKOUT [PCR_BINARY]   (default: build/pcr; ROUNDS=2;
#                                            SCRIPTS='t[012]*.sh', a glob in t/)
# GIT_CHECKOUT is a built git (make -j2 NO_CURL=1 NO_GETTEXT=1 NO_TCLTK=1 NO_PYTHON=1).
# Every script runs from t/ as `sh ./tNNNN-name.sh`, one tool at a time (all four share
# t/'s trash directories and test-results/), output into a file. Like for like: no tool
# chain-lints the scripts (GIT_TEST_EXT_CHAIN_LINT=0, make's TEST_LINT=, as `make test`
# does for the scripts once it has linted them all), and every tool takes the list in the
# same order (pcr gets a fresh --timings file each round). PCR_TIMINGS=keep: each tool that
# can order scripts by what it recorded of earlier runs does, as a team running its suite
# every day would have it — pcr keeps one --timings file (longest first), prove runs with
# --state=slow,save; make and parallel take the list as it is. SEED=1 (with keep): one
# untimed run of pcr and of prove before the rounds records the first times, so every
# round is ordered. make runs with -k: without it, the
# first failing script stops it starting the rest. The tools take turns going first.
# Measured: each round's wall times and pcr/make, pcr/prove, pcr/parallel; the medians of
# the per-round ratios. Checked: every script's pass/fail under pcr (from --json) is the
# same as under make (its failed targets), prove (its per-script verdicts), parallel (its
# joblog) and, with SERIAL=1, a serial run taken once before the rounds, untimed.
# Exits 1 when pcr disagrees with the reference (SERIAL=1's run, else make's).
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh
[ $# -ge 1 ] || { echo "usage: bench/git.sh GIT_CHECKOUT [PCR_BINARY]" >&2; exit 2; }
src=$(realpath "$1")
pcr=$(realpath "${2:-build/pcr}")
rounds=${ROUNDS:-2}
pattern=${SCRIPTS:-'t[012]*.sh'}
tdir=$src/t
[ -x "$src/git" ] && [ -f "$src/GIT-BUILD-OPTIONS" ] && [ -f "$tdir/test-lib.sh" ] ||
  { echo "$src is not a built git checkout: make -j2 NO_CURL=1 NO_GETTEXT=1 NO_TCLTK=1 NO_PYTHON=1"; exit 1; }
for c in make prove parallel jq bc; do
  command -v $c > /dev/null || { echo "$c is missing (apt-get install make perl parallel jq bc)"; exit 1; }
done
mapfile -t list < <(cd "$tdir" && compgen -G "$pattern" | grep -E '^t[0-9]{4}-[^/ ]*\.sh$' | sort || true)
[ ${#list[@]} -gt 0 ] || { echo "no test script in $tdir matches $pattern"; exit 1; }
exec 9< "$tdir"
flock -n 9 || { echo "another bench/git.sh is running git's tests in $tdir"; exit 1; }

work=$(mktemp -d)
printf '%s\n' "${list[@]}" > "$work/list"
reset_t() { rm -rf "$tdir/test-results" "$tdir"/'trash directory.'*; }
trap 'reset_t; rm -rf "$work" "$tdir/chainlinttmp" "$tdir/greplinttmp" "$tdir/mesontmp" "$tdir/.prove"' EXIT
rm -f "$tdir/.prove"
keep=0
[ "${PCR_TIMINGS:-fresh}" = keep ] && keep=1
unset MAKEFLAGS MFLAGS MAKELEVEL GIT_TEST_OPTS
export GIT_TEST_EXT_CHAIN_LINT=0

{
  echo "steps:"
  echo "  - name: git-tests"
  echo "    workers: 2"
  echo "    workdir: $tdir"
  echo "    results: tap"
  echo "    for_each:"
  printf '      - "%s"\n' "${list[@]}"
  echo "    run: sh ./{items}"
} > "$work/ci.yaml"

# Each runner leaves "SCRIPT pass|fail" lines, one per script of the list, in $work/TOOL.res.
run_pcr() {
  local timings="$work/timings.$1.json"
  [ $keep = 1 ] && timings="$work/timings.json"
  rm -f "$work/pcr.json"
  "$pcr" run --no-color --timings "$timings" --json "$work/pcr.json" "$work/ci.yaml" > "$work/pcr.out" 2> "$work/pcr.err" || true
}
res_pcr() {
  jq -r 'select(.event == "job_end" and .kind == "job")
         | "\(.items[0]) \(if .status == "passed" then "pass" else "fail" end)"' "$work/pcr.json" || true
}
run_make() {
  make -C "$tdir" -k -j2 DEFAULT_TEST_TARGET=test TEST_LINT= T="${list[*]}" \
    > "$work/make.out" 2> "$work/make.err" || true
}
res_make() {  # "*** t0001-init.sh ***" as each starts; make[1]: *** [Makefile:81: t0001-init.sh] Error 1
  { grep -oE '^\*\*\* t[0-9]{4}-[^ ]*\.sh \*\*\*$' "$work/make.out" || true; } | awk '{ print $2, "pass" }'
  { grep -oE '\*\*\* \[([^]]*: )?t[0-9]{4}-[^] ]*\.sh\]' "$work/make.err" || true; } |
    { grep -oE 't[0-9]{4}-[^] ]*\.sh' || true; } | awk '{ print $1, "fail" }'
}
run_prove() {
  local state=()
  [ $keep = 1 ] && state=(--state=slow,save)
  (cd "$tdir" && prove -j2 "${state[@]}" --exec sh "${list[@]}") > "$work/prove.out" 2> "$work/prove.err" || true
}
res_prove() {  # "t0000-basic.sh .... ok" or ".... skipped: why"; anything else is a failure
  { grep -oE '^t[0-9]{4}-[^ ]*\.sh \.+ (ok|skipped:)' "$work/prove.out" || true; } | awk '{ print $1, "pass" }' |
    by_list fail
}
run_parallel() {
  rm -f "$work/parallel.log"
  (cd "$tdir" && parallel -j2 --joblog "$work/parallel.log" sh ./{} ::: "${list[@]}") \
    > "$work/parallel.out" 2> "$work/parallel.err" || true
}
res_parallel() {
  awk -F'\t' 'NR > 1 { sub(/^sh \.\//, "", $9); print $9, ($7 == 0 && $8 == 0 ? "pass" : "fail") }' "$work/parallel.log"
}

# A tool's results, in list order, with every script accounted for ("missing" if not).
results() { "res_$1" | by_list missing; }
# "SCRIPT VERDICT" lines on stdin, as one line per script of the list, in its order; DEFAULT
# for a script not on stdin.
by_list() {
  awk -v d="$1" 'FNR == NR { order[++n] = $1; next } { v[$1] = $2 }
    END { for (i = 1; i <= n; i++) print order[i], (order[i] in v ? v[order[i]] : d) }' "$work/list" -
}
timed() { local s e; s=$(date +%s.%N); "$@"; e=$(date +%s.%N); echo "$e - $s" | bc -l; }

echo "git $(git -C "$src" describe --always 2>/dev/null || echo '?') at $src: ${#list[@]} scripts ($pattern), 2 workers, $rounds round(s)"
ref=make
if [ "${SERIAL:-0}" = 1 ]; then
  reset_t
  s0=$(date +%s.%N)
  for s in "${list[@]}"; do
    if (cd "$tdir" && sh "./$s") > "$work/serial.out" 2>&1; then echo "$s pass"; else echo "$s fail"; fi
  done > "$work/serial.res"
  printf 'serial reference (once, before the rounds): %.1f s, %d of %d scripts pass\n' \
    "$(echo "$(date +%s.%N) - $s0" | bc -l)" "$(grep -c ' pass$' "$work/serial.res" || true)" "${#list[@]}"
  ref=serial
fi

if [ $keep = 1 ] && [ "${SEED:-0}" = 1 ]; then
  for tool in pcr prove; do
    reset_t
    printf 'seed: %s, untimed, to record times: %.1f s\n' "$tool" "$(timed "run_$tool" seed)"
  done
  reset_t
fi
[ $keep = 1 ] && echo "order: pcr from its kept timings (longest first), prove --state=slow,save; make and parallel as listed"

tools=(pcr make prove parallel)
declare -A times=()
mismatch=0
for ((r = 1; r <= rounds; r++)); do
  declare -A t=()
  for ((i = 0; i < 4; i++)); do
    tool=${tools[$(((r - 1 + i) % 4))]}
    reset_t
    t[$tool]=$(timed "run_$tool" "$r")
    results "$tool" > "$work/$tool.res"
    times[$tool]+=" ${t[$tool]}"
  done
  reset_t
  printf 'round %d: pcr %.1f s, make %.1f s, prove %.1f s, parallel %.1f s; pcr/make %s, pcr/prove %s, pcr/parallel %s\n' \
    "$r" "${t[pcr]}" "${t[make]}" "${t[prove]}" "${t[parallel]}" \
    "$(ratio "${t[pcr]}" "${t[make]}")" "$(ratio "${t[pcr]}" "${t[prove]}")" "$(ratio "${t[pcr]}" "${t[parallel]}")"
  printf '  scripts passing: pcr %d, make %d, prove %d, parallel %d of %d\n' \
    "$(grep -c ' pass$' "$work/pcr.res" || true)" "$(grep -c ' pass$' "$work/make.res" || true)" \
    "$(grep -c ' pass$' "$work/prove.res" || true)" "$(grep -c ' pass$' "$work/parallel.res" || true)" "${#list[@]}"
  jq -rs '[.[] | select(.event == "job_end" and .kind == "job") | .tests // {}]
          | "  pcr tests: \(map(.passed // 0) | add) passed, \(map(.failed // 0) | add) failed, \(map(.skipped // 0) | add) skipped, \(map(.todo // 0) | add) todo"' \
    "$work/pcr.json" || true
  for other in $(printf '%s\n' $ref make prove parallel | awk '!seen[$0]++'); do
    if d=$(diff "$work/$other.res" "$work/pcr.res"); then
      echo "  pcr = $other on every script"
    else
      echo "  pcr differs from $other ('<' $other, '>' pcr):"
      echo "$d" | grep '^[<>]' | sed 's/^/    /'
      [ "$other" = "$ref" ] && mismatch=1
    fi
  done
  for tool in "${tools[@]}"; do
    if grep -q ' missing$' "$work/$tool.res"; then
      echo "  $tool did not run $(grep -c ' missing$' "$work/$tool.res") script(s); the first lines of its stderr:"
      head -5 "$work/$tool.err" 2> /dev/null | sed 's/^/    /' || true
    fi
  done
  if [ $r = 1 ] && grep -q ' fail$' "$work/$ref.res"; then
    echo "  failing under $ref: $(grep ' fail$' "$work/$ref.res" | cut -d' ' -f1 | tr '\n' ' ')"
  fi
done
printf 'medians of %d round(s): pcr %.1f s, make %.1f s, prove %.1f s, parallel %.1f s; pcr/make %s, pcr/prove %s, pcr/parallel %s (paired)\n' \
  "$rounds" "$(printf '%s\n' ${times[pcr]} | median)" "$(printf '%s\n' ${times[make]} | median)" \
  "$(printf '%s\n' ${times[prove]} | median)" "$(printf '%s\n' ${times[parallel]} | median)" \
  "$(paired_ratio "${times[pcr]}" "${times[make]}")" "$(paired_ratio "${times[pcr]}" "${times[prove]}")" \
  "$(paired_ratio "${times[pcr]}" "${times[parallel]}")"
if [ $mismatch = 0 ]; then
  echo "results: pcr's pass/fail matched $ref's on all ${#list[@]} scripts in every round"
else
  echo "results: pcr's pass/fail differed from $ref's (above)"
  exit 1
fi
