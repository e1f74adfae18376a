#!/usr/bin/env bash
# Test peers for ingest: sox, flac and lame (the probe tests encode wav/flac/mp3 and compare
# with soxi), GNU time (/usr/bin/time -v measures peak RSS in scripts/checks.d/ingest.sh) and
# DuckDB's Node client (@duckdb/node-api), the independent Parquet reader of
# scripts/checks.d/ingest-duckdb.mjs and shards-duckdb.mjs, in $IMMKIT_CACHE/npm-duckdb.
set -euo pipefail
. "$(dirname "$0")/../lib/deps.sh"
apt_need ingest sox flac lame time
npm_need ingest "$IMMKIT_CACHE/npm-duckdb" "@duckdb/node-api@1.5.6-r.1"
