#!/usr/bin/env bash
# Short fuzzing pass over every Go fuzz target (scripts/fuzz.sh): 10 s each, two targets at
# a time with one fuzzing process each (CI has 2 cores), about 3-4 minutes in all with the
# instrumented builds. Fails on any crasher; the crasher's input is left in
# PKG/testdata/fuzz/TARGET/ and the log printed. The published figure is `scripts/fuzz.sh 10m`
# (docs/reliability.md).
set -euo pipefail
cd "$(dirname "$0")/../.."
FUZZ_JOBS="${FUZZ_JOBS:-2}" FUZZ_WORKERS="${FUZZ_WORKERS:-1}" bash scripts/fuzz.sh "${FUZZ_CI_TIME:-10s}"
