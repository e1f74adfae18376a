#!/usr/bin/env bash
# Test peers for shards (scripts/checks.d/shards.sh): python3-numpy (reads the webdataset
# export) and DuckDB through @duckdb/node-api in $IMMKIT_CACHE/npm-duckdb (the same package
# and prefix as scripts/deps.d/ingest.sh).
set -euo pipefail
. "$(dirname "$0")/../lib/deps.sh"
apt_need shards python3-numpy
npm_need shards "$IMMKIT_CACHE/npm-duckdb" "@duckdb/node-api@1.5.6-r.1"
