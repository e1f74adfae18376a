#!/usr/bin/env bash
# The CUDA emulator (kernels/cuda/emu, run by scripts/checks.d/cuda-emu.sh) is C++17:
# g++ and perl (its self-test's mutations).
set -euo pipefail
. "$(dirname "$0")/../lib/deps.sh"
apt_need cuda-emu g++ perl
