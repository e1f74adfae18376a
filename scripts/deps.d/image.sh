#!/usr/bin/env bash
# Test peers for encoders/image: libturbojpeg0 (the fast JPEG path, loaded at run time),
# python3-numpy (the .npy interop test) and python3-pil (resize compared with Pillow). The
# turbo path is reached through cgo (dlopen at run time): the test build needs a C compiler.
set -euo pipefail
. "$(dirname "$0")/../lib/deps.sh"
pkgs=(libturbojpeg0 python3-numpy python3-pil)
command -v gcc >/dev/null 2>&1 || pkgs+=(gcc libc6-dev)
apt_need image "${pkgs[@]}"
