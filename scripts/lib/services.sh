# Shared by scripts/test.sh and scripts/start.sh: make the machine able to run Sieve.
# Every step is idempotent and only acts when something is missing.

log() { echo "[sieve] $*" >&2; }

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    log "cannot install $*: no apt-get on this machine; install it yourself"; return 1
  fi
  if [ -z "${SIEVE_APT_UPDATED:-}" ]; then $SUDO apt-get update -qq >/dev/null; export SIEVE_APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

ensure_node_modules() {
  if [ ! -d node_modules/.bin ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    log "installing npm dependencies"
    if [ -f package-lock.json ]; then npm ci --no-audit --no-fund --loglevel=error; else npm install --no-audit --no-fund --loglevel=error; fi
  fi
}

redis_url() { echo "${REDIS_URL:-redis://127.0.0.1:6379}"; }

redis_answers() {
  node -e '
    const net = require("node:net"); const u = new URL(process.argv[1]);
    const s = net.connect(Number(u.port || 6379), u.hostname, () => s.write("PING\r\n"));
    s.setTimeout(1500, () => process.exit(1)); s.on("error", () => process.exit(1));
    s.on("data", (d) => process.exit(String(d).includes("PONG") || String(d).includes("NOAUTH") ? 0 : 1));
  ' "$(redis_url)"
}

ensure_redis() {
  if redis_answers; then return 0; fi
  if ! command -v redis-server >/dev/null 2>&1; then log "installing redis-server"; apt_install redis-server; fi
  local port; port=$(node -e 'console.log(new URL(process.argv[1]).port || 6379)' "$(redis_url)")
  log "starting redis-server on 127.0.0.1:$port"
  mkdir -p .sieve
  redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
    --maxmemory-policy noeviction --dir "$PWD/.sieve" --logfile "$PWD/.sieve/redis.log"
  for _ in $(seq 1 50); do redis_answers && return 0; sleep 0.1; done
  log "redis did not start (see .sieve/redis.log)"; return 1
}

pg_admin_url() { echo "${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"; }

pg_answers() {
  node -e '
    const pg = require("pg"); const c = new pg.Client({ connectionString: process.argv[1], connectionTimeoutMillis: 2000 });
    c.connect().then(() => c.query("select 1")).then(() => c.end()).then(() => process.exit(0), () => process.exit(1));
  ' "$(pg_admin_url)"
}

ensure_postgres() {
  if pg_answers; then return 0; fi
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    log "installing postgresql"; apt_install postgresql
  fi
  local ver; ver=$(ls /etc/postgresql | sort -V | tail -n 1)
  local hba="/etc/postgresql/$ver/main/pg_hba.conf"
  # Tests connect as postgres over TCP without a password, as on the CI machines (trust auth on loopback).
  if ! grep -qE '^host\s+all\s+all\s+127\.0\.0\.1/32\s+trust' "$hba"; then
    log "allowing trust auth for loopback connections in $hba (test machine only)"
    $SUDO sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  log "starting postgresql $ver"
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main start || $SUDO pg_ctlcluster --skip-systemctl-redirect "$ver" main restart
  for _ in $(seq 1 50); do pg_answers && return 0; sleep 0.2; done
  log "postgresql did not start"; return 1
}

# Debian's Chromium for the console's browser tests (driven by playwright-core, which downloads no browser).
chromium_path() { echo "${SIEVE_CHROMIUM:-/usr/bin/chromium}"; }

ensure_chromium() {
  if [ -x "$(chromium_path)" ]; then return 0; fi
  log "installing chromium (browser tests)"
  apt_install chromium fonts-dejavu-core || { log "chromium could not be installed: the console browser tests will fail"; return 1; }
}
