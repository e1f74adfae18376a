#!/usr/bin/env bash
# Hostile archives and trees through the real immdata binary: builds immdata and runs
# ingest/hostile_test.go's TestHostileInputs with IMMKIT_IMMDATA set, so the child process
# whose peak RSS is measured (getrusage of the child) is `immdata ingest`. The test builds
# the hostile inputs at run time: ../ and absolute tar members, symlink, hard-link, device
# and FIFO members, escaping and looping symlinks, a FIFO and a device file in the tree and
# named by a jsonl field, a 1 GB gzip bomb, a 10 GB sparse file, a 100000x100000 PNG, a
# 65535x65535 JPEG, a WAV declaring 2^32-2 bytes. Linux only (mkfifo, mknod, rusage).
set -euo pipefail
cd "$(dirname "$0")/../.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
go build -o "$work/immdata" ./cmd/immdata
IMMKIT_IMMDATA="$work/immdata" go test -count=1 -run '^TestHostileInputs$' -v ./ingest | grep -E '^(=== RUN|--- |\s+hostile_test|ok|FAIL|PASS)'
echo "hostile check: ok"
