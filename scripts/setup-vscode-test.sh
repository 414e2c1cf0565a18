#!/usr/bin/env bash
# Installs what the tests inside a real VS Code need, idempotently (each step is skipped when done):
#   - Debian's chromium (the browser that shows the workbench), ripgrep (code-server's search binary)
#     and libkrb5-dev (headers for code-server's native kerberos module);
#   - code-server (the VS Code server + workbench, npm package) in a cache folder of this machine,
#     outside the project: never in package.json, node_modules, git or the VSIX.
# code-server's install would download ripgrep from the internet, which these machines cannot reach:
# its download cache is pre-seeded with Debian's rg. See ../shared/docs/real-vscode.md.
# Prints the code-server folder on its last line. Override the cache with NAD_VSCODE_TEST_CACHE.
set -euo pipefail

CODE_SERVER_VERSION=4.100.3          # = VS Code 1.100.3, the last one that runs on Node 20
RIPGREP_CACHE_DIR=vscode-ripgrep-cache-1.15.11
RIPGREP_TARBALL=ripgrep-v13.0.0-10-x86_64-unknown-linux-musl.tar.gz

log() { echo "[setup-vscode-test] $*" >&2; }

cache="${NAD_VSCODE_TEST_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/nad-vscode-test}"
dest="$cache/code-server-$CODE_SERVER_VERSION"
mkdir -p "$cache"

# Two setups at once (two checkouts, CI and a developer) must not install over each other.
exec 9>"$cache/.lock"
if ! flock -w 900 9; then log "timed out waiting for another setup holding $cache/.lock"; exit 1; fi

# --- Debian packages --------------------------------------------------------------------------
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v rg >/dev/null 2>&1 || missing+=(ripgrep)
dpkg -s libkrb5-dev >/dev/null 2>&1 || missing+=(libkrb5-dev)
# Real Fashion-MNIST for the IDX reader and trigger tests (they skip without it, saying so).
dpkg -s dataset-fashion-mnist >/dev/null 2>&1 || missing+=(dataset-fashion-mnist)
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# --- code-server ------------------------------------------------------------------------------
if [[ -f "$dest/.complete" && -f "$dest/node_modules/code-server/lib/vscode/out/server-main.js" ]]; then
  log "code-server $CODE_SERVER_VERSION already in $dest"
else
  started=$(date +%s)
  log "installing code-server $CODE_SERVER_VERSION into $dest (about a minute)"
  work="$cache/.install-$$"
  rm -rf "$work" "$dest"
  mkdir -p "$work/tmp/$RIPGREP_CACHE_DIR"
  trap 'rm -rf "$work"' EXIT
  tar czf "$work/tmp/$RIPGREP_CACHE_DIR/$RIPGREP_TARBALL" -C "$(dirname "$(command -v rg)")" rg
  # Its own package.json, so that npm never walks up into the project's.
  echo '{ "name": "nad-vscode-test-code-server", "private": true }' >"$work/package.json"
  # npm_config_yes: a dependency's install runs `npx node-gyp`, which npm 11 cancels without a terminal.
  (cd "$work" && TMPDIR="$work/tmp" npm_config_unsafe_perm=true npm_config_yes=true npm_config_nodedir=/usr \
    npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false \
    npm install --no-save --loglevel=error "code-server@$CODE_SERVER_VERSION" >&2)
  rm -rf "$work/tmp"
  test -f "$work/node_modules/code-server/lib/vscode/out/server-main.js"
  touch "$work/.complete"
  mv "$work" "$dest"
  trap - EXIT
  log "code-server installed in $(($(date +%s) - started)) s"
fi

echo "$dest/node_modules/code-server"
