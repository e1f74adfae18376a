#!/usr/bin/env bash
# Test peer for imm (scripts/checks.d/imm.sh): numpy reads the toy run's .npy samples and
# recomputes the energy distance; the safetensors header is parsed with the standard
# library. Idempotent: does nothing when present.
set -euo pipefail
if /usr/bin/python3 -c "import numpy" >/dev/null 2>&1; then
  echo "imm deps: present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
for i in $(seq 1 60); do
  if $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 update -qq &&
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 install -y -qq --no-install-recommends python3-numpy; then
    echo "imm deps: installed python3-numpy"
    exit 0
  fi
  echo "apt-get failed (try $i), retrying" >&2
  sleep 5
done
exit 1
