#!/usr/bin/env bash
# Test peers for shards (scripts/checks.d/shards.sh): python3-numpy (Debian; reads the
# webdataset export) and DuckDB through the npm package @duckdb/node-api, installed into
# $IMMKIT_CACHE/npm-duckdb. Other areas may install the same package into the same prefix;
# this script only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
if ! dpkg -s python3-numpy >/dev/null 2>&1; then
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
  apt_get install -y -qq --no-install-recommends python3-numpy
  echo "shards deps: installed python3-numpy"
fi
CACHE="${IMMKIT_CACHE:-$PWD/.cache}"
DIR="$CACHE/npm-duckdb"
PKG="@duckdb/node-api@1.5.6-r.1" # the version scripts/deps.d/ingest.sh installs
if [ -f "$DIR/node_modules/@duckdb/node-api/package.json" ] &&
  node -e "require('$DIR/node_modules/@duckdb/node-api')" >/dev/null 2>&1; then
  echo "shards deps: present ($DIR)"
  exit 0
fi
mkdir -p "$DIR"
[ -f "$DIR/package.json" ] || echo '{"name":"immkit-duckdb-peer","private":true}' >"$DIR/package.json"
for i in 1 2 3; do
  if npm install --prefix "$DIR" --no-audit --no-fund --loglevel=error "$PKG"; then
    echo "shards deps: installed $PKG into $DIR"
    exit 0
  fi
  echo "npm install failed (try $i), retrying" >&2
  sleep 5
done
exit 1
