#!/usr/bin/env bash
# Test peers for encoders/audio: numpy (the float64 Whisper log-mel reference in
# encoders/audio/testdata/whisper_ref.py), espeak-ng (speech fixtures), sox, flac and lame
# (encoded fixtures made by the tests in a temp dir). Idempotent: does nothing when present.
set -euo pipefail
need=()
for p in python3-numpy espeak-ng sox flac lame; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -eq 0 ]; then
  echo "audio deps: present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
# Several installers may run at once on a shared machine: wait for the dpkg lock.
apt_get() {
  for i in $(seq 1 60); do
    if $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 "$@"; then
      return 0
    fi
    echo "apt-get $1 failed (try $i), retrying" >&2
    sleep 5
  done
  return 1
}
apt_get update -qq
apt_get install -y -qq --no-install-recommends "${need[@]}"
echo "audio deps: installed ${need[*]}"
