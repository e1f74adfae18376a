#!/usr/bin/env bash
# Runs every Go fuzz target of the repository for a set time each and prints, per target,
# the executions, the new corpus entries and the crashers found.
#
#   scripts/fuzz.sh 10s                 # CI budget (scripts/checks.d/fuzz.sh)
#   scripts/fuzz.sh 10m                 # the figure published in docs/reliability.md
#   scripts/fuzz.sh 30s FuzzDecodeMP3   # only the targets whose name matches a regexp
#
# Environment:
#   FUZZ_JOBS     targets fuzzed at the same time (default 1)
#   FUZZ_WORKERS  fuzzing processes per target, go test -parallel (default: GOMAXPROCS)
#   FUZZ_LOGS     directory for one log per target (default: a temporary directory)
#   FUZZ_MINIMIZE go test -fuzzminimizetime (default 2s). Go minimizes every input that
#                 adds coverage for up to this long, counting none of those runs as execs; at
#                 the default 60s a target whose inputs take ~50 ms (the mp3 decoder under
#                 coverage instrumentation) spent most of a 10-minute run minimizing and
#                 showed "0/sec" for minutes (16 execs in 10 minutes; 182 with 2s).
#
# A crasher is written by go test to PKG/testdata/fuzz/TARGET/ (commit it with the fix: it
# then runs as a regression test in every `go test`). Exit status 1 when any target found
# a crasher or failed to run. Targets are found in the committed test files (git ls-files).
set -euo pipefail
cd "$(dirname "$0")/.."

budget="${1:-10s}"
filter="${2:-.}"
jobs="${FUZZ_JOBS:-1}"
workers="${FUZZ_WORKERS:-}"
minimize="${FUZZ_MINIMIZE:-2s}"

# Every `func FuzzX(f *testing.F)` in a committed test file, as "package target".
mapfile -t targets < <(git ls-files '*_test.go' | xargs grep -E '^func Fuzz[A-Za-z0-9_]*\(f \*testing\.F\)' \
  | sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)\(.*#\1 \2#' | sort)
[ "${#targets[@]}" -gt 0 ] || { echo "fuzz.sh: no fuzz targets found"; exit 1; }

logs="${FUZZ_LOGS:-}"
if [ -z "$logs" ]; then
  logs="$(mktemp -d)"
  trap 'rm -rf "$logs"' EXIT
fi
mkdir -p "$logs"

# Build each package's test binary once (fuzzing instrumentation on); the binary runs in
# its package directory so that testdata/ paths resolve, with go test's fuzz cache.
bins="$logs/bin"
mkdir -p "$bins"
gocache="$(go env GOCACHE)"
declare -A built=()
selected=()
for t in "${targets[@]}"; do
  read -r pkg name <<<"$t"
  [[ "$name" =~ $filter ]] || continue
  selected+=("$t")
  if [ -z "${built[$pkg]:-}" ]; then
    # -fuzz at build time gives the binary go test's coverage instrumentation.
    go test -c -fuzz=. -o "$bins/${pkg//\//_}.test" ./"$pkg"
    built[$pkg]=1
  fi
done
[ "${#selected[@]}" -gt 0 ] || { echo "fuzz.sh: no target matches $filter"; exit 1; }

run_one() {
  local pkg="$1" name="$2" log="$3"
  local bin
  bin="$(cd "$bins" && pwd)/${pkg//\//_}.test"
  local par=()
  [ -n "$workers" ] && par=(-test.parallel "$workers")
  (
    cd "$pkg"
    "$bin" -test.run '^$' -test.fuzz "^${name}\$" -test.fuzztime "$budget" -test.fuzzminimizetime "$minimize" "${par[@]}" \
      -test.fuzzcachedir "$gocache/fuzz/github.com/immkit/immkit/$pkg" >"$log" 2>&1
  )
}

pids=()
for t in "${selected[@]}"; do
  read -r pkg name <<<"$t"
  log="$logs/${pkg//\//_}.$name.log"
  run_one "$pkg" "$name" "$log" &
  pids+=("$!")
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
done
for p in "${pids[@]}"; do wait "$p" || true; done

status=0
printf '%-22s %-22s %12s %10s %8s %s\n' package target execs new_corpus crashers result
for t in "${selected[@]}"; do
  read -r pkg name <<<"$t"
  log="$logs/${pkg//\//_}.$name.log"
  last=$(grep -E '^fuzz: elapsed: .*execs: [0-9]+' "$log" | tail -n 1 || true)
  execs=$(sed -nE 's/.*execs: ([0-9]+).*/\1/p' <<<"$last")
  newc=$(sed -nE 's/.*new interesting: ([0-9]+).*/\1/p' <<<"$last")
  crash=0
  result=ok
  if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written to' "$log" \
    && ! grep -q 'panic:' "$log" && [ "$(grep -c -- '--- FAIL' "$log")" -eq 1 ]; then
    # The time ran out while go test was still running the seed corpus (baseline coverage):
    # nothing failed, the budget was too short for this target's corpus on this machine.
    printf '%-22s %-22s %12s %10s %8s %s\n' "$pkg" "$name" 0 0 0 "budget ended during the baseline run of the corpus"
    continue
  fi
  if grep -q -- '--- FAIL' "$log" || ! grep -q '^PASS' "$log"; then
    status=1
    crash=$(grep -c 'Failing input written to' "$log" || true)
    result="FAIL (log: $log)"
    [ "$crash" -gt 0 ] && result="FAIL: $(sed -nE 's/.*Failing input written to (.*)/\1/p' "$log" | head -n 1)"
  fi
  printf '%-22s %-22s %12s %10s %8s %s\n' "$pkg" "$name" "${execs:-0}" "${newc:-0}" "$crash" "$result"
done
if [ "$status" -ne 0 ]; then
  for t in "${selected[@]}"; do
    read -r pkg name <<<"$t"
    log="$logs/${pkg//\//_}.$name.log"
    if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written to' "$log" && ! grep -q 'panic:' "$log"; then
      continue
    fi
    if grep -q -- '--- FAIL' "$log" || ! grep -q '^PASS' "$log"; then
      echo "== $pkg $name"
      grep -v '^fuzz: elapsed' "$log" | tail -n 30
    fi
  done
  trap - EXIT
  echo "fuzz.sh: logs kept in $logs"
fi
exit "$status"
