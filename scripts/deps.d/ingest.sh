#!/usr/bin/env bash
# Test peers for ingest: sox, flac and lame (the probe tests encode wav/flac/mp3 and compare
# with soxi), GNU time (/usr/bin/time -v measures peak RSS in scripts/checks.d/ingest.sh) and
# DuckDB's Node client (@duckdb/node-api), the independent Parquet reader of
# scripts/checks.d/ingest-duckdb.mjs, installed into $IMMKIT_CACHE/npm-duckdb.
# Idempotent: does nothing when everything is present.
set -euo pipefail
cd "$(dirname "$0")/../.."
IMMKIT_CACHE="${IMMKIT_CACHE:-$PWD/.cache}"
DUCKDB_VERSION="1.5.6-r.1"

need=()
for p in sox flac lame time; do
  dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if [ "${#need[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  apt_get() { # several installers may run at once: wait for the dpkg lock, retry
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
  echo "ingest deps: installed ${need[*]}"
fi

dir="$IMMKIT_CACHE/npm-duckdb"
if [ -f "$dir/node_modules/@duckdb/node-api/package.json" ] &&
  grep -q "\"version\": \"$DUCKDB_VERSION\"" "$dir/node_modules/@duckdb/node-api/package.json"; then
  echo "ingest deps: @duckdb/node-api $DUCKDB_VERSION present"
  exit 0
fi
mkdir -p "$dir"
for i in 1 2 3; do
  if npm install --silent --no-audit --no-fund --prefix "$dir" "@duckdb/node-api@$DUCKDB_VERSION"; then
    echo "ingest deps: installed @duckdb/node-api $DUCKDB_VERSION into $dir"
    exit 0
  fi
  echo "npm install failed (try $i), retrying" >&2
  sleep 5
done
exit 1
