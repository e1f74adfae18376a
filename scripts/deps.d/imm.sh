#!/usr/bin/env bash
# Test peer for imm (scripts/checks.d/imm.sh): numpy reads the toy run's .npy samples and
# recomputes the energy distance; the safetensors header is parsed with the standard library.
set -euo pipefail
. "$(dirname "$0")/../lib/deps.sh"
apt_need imm python3-numpy
