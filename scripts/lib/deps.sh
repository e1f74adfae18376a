# Shared helpers for scripts/deps.d/*.sh (sourced, not run). Each helper installs only what
# is missing, so a deps script is fast and silent when its peers are present.
#
#   apt_need AREA PKG...              Debian packages (as root, or through sudo); waits for the
#                                     dpkg lock and retries, runs apt-get update once per run
#   npm_need AREA DIR PKG@VERSION...  npm packages into the prefix DIR (skips those whose
#                                     installed version already matches)

IMMKIT_CACHE="${IMMKIT_CACHE:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.cache}"
export IMMKIT_CACHE

_sudo() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

_apt_get() {
  local i
  for i in $(seq 1 30); do
    if _sudo env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=120 "$@"; then
      return 0
    fi
    echo "apt-get $1 failed (try $i), retrying" >&2
    sleep 5
  done
  return 1
}

apt_need() {
  local area=$1 need=() p
  shift
  for p in "$@"; do
    dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
  done
  if [ "${#need[@]}" -eq 0 ]; then
    echo "$area deps: Debian packages present ($*)"
    return 0
  fi
  local stamp="$IMMKIT_CACHE/.apt-updated"
  mkdir -p "$IMMKIT_CACHE"
  if [ ! -f "$stamp" ] || [ -n "$(find "$stamp" -mmin +60 2>/dev/null)" ]; then
    _apt_get update -qq && touch "$stamp"
  fi
  _apt_get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  echo "$area deps: installed ${need[*]}"
}

npm_need() {
  local area=$1 dir=$2 need=() spec name version
  shift 2
  for spec in "$@"; do
    name=${spec%@*} version=${spec##*@}
    if ! grep -qs "\"version\": \"$version\"" "$dir/node_modules/$name/package.json"; then
      need+=("$spec")
    fi
  done
  if [ "${#need[@]}" -eq 0 ]; then
    echo "$area deps: npm packages present in $dir"
    return 0
  fi
  mkdir -p "$dir"
  [ -f "$dir/package.json" ] || echo '{"name":"immkit-test-peers","private":true}' >"$dir/package.json"
  local i
  for i in 1 2 3; do
    if npm install --prefix "$dir" --no-audit --no-fund --loglevel=error "${need[@]}"; then
      echo "$area deps: installed ${need[*]} into $dir"
      return 0
    fi
    echo "npm install failed (try $i), retrying" >&2
    sleep 5
  done
  return 1
}
