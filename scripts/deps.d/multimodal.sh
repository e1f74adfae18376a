#!/usr/bin/env bash
# Test peer for immtrain multimodal (scripts/checks.d/multimodal.sh): Python's standard
# library (hashlib, struct, wave, zlib, json) reads the run's checkpoint, sheets and eval.
set -euo pipefail
. "$(dirname "$0")/../lib/deps.sh"
apt_need multimodal python3
