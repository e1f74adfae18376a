#!/usr/bin/env bash
# Test peers for encoders/image: libturbojpeg0 (the fast JPEG path, loaded at run time),
# python3-numpy (the .npy interop test) and python3-pil (resize compared with Pillow).
# Idempotent: checks dpkg first, installs only what is missing (apt-get update once).
set -euo pipefail
need=()
for p in libturbojpeg0 python3-numpy python3-pil; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
# The turbo path is reached through cgo (dlopen at run time): the test build needs a C compiler.
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
if [ "${#need[@]}" -eq 0 ]; then
  echo "image deps: present"
  exit 0
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "image deps: installing ${need[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
