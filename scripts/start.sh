#!/usr/bin/env bash
# Sieve's main job, from a fresh clone: installs dependencies, starts a local redis-server when
# none answers at REDIS_URL, and runs `sieve start` (apps/cli/src/start.ts): the API + workers +
# dashboard in one process, with an embedded Postgres (PGlite, under .sieve/) when DATABASE_URL is unset.
#   npm start                 # real providers: set OPENAI_API_KEY / ANTHROPIC_API_KEY / VLLM_BASE_URL+VLLM_MODEL
#   npm start -- --simulator  # the bundled provider SIMULATOR (a test tool: answers are synthetic), as its own process
#   npm start -- --simulator --answers FILE   # simulator answering from a JSONL reference file, with noise
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/services.sh
source scripts/lib/simulator.sh

while [ $# -gt 0 ]; do
  case "$1" in
    --simulator) export SIEVE_SIMULATOR=true ;;
    # Simulator reference mode (docs/quality.md): answers from a JSONL file, with noise.
    --answers)
      [ $# -ge 2 ] || { log "--answers needs a FILE"; exit 2; }
      export SIEVE_SIMULATOR_ANSWERS="$2"; shift ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) log "unknown option: $1 (see --help)"; exit 2 ;;
  esac
  shift
done

ensure_node_modules
case "$(redis_url)" in
  redis://127.0.0.1*|redis://localhost*) ensure_redis ;;
  *) redis_answers || { log "no Redis answers at $(redis_url)"; exit 1; } ;;
esac

SIEVE=(node --import tsx apps/cli/src/main.ts start)
if [ "${SIEVE_SIMULATOR:-}" != "true" ]; then exec "${SIEVE[@]}"; fi

# Demo credentials, only for the simulator run; never used with real providers.
export SIEVE_API_KEYS="${SIEVE_API_KEYS:-demo:sk-sieve-demo-key}"
export SIEVE_ADMIN_USER="${SIEVE_ADMIN_USER:-admin}"
export SIEVE_ADMIN_PASSWORD="${SIEVE_ADMIN_PASSWORD:-sieve-demo}"
log "demo mode: provider simulator, API key 'sk-sieve-demo-key' (tenant demo), dashboard admin/sieve-demo"
# A simulator someone already runs (SIEVE_SIMULATOR_URL) is used as it is.
if [ -n "${SIEVE_SIMULATOR_URL:-}" ]; then exec "${SIEVE[@]}"; fi

trap stop_simulator EXIT
start_simulator || exit 2
# Sieve runs as a child, so that this script stops the simulator after Sieve has drained.
"${SIEVE[@]}" &
sieve_pid=$!
trap 'kill -TERM "$sieve_pid" 2>/dev/null || true' INT TERM
while :; do
  status=0
  wait "$sieve_pid" || status=$?
  # A signal interrupts `wait` while Sieve still drains: wait again until it has exited.
  kill -0 "$sieve_pid" 2>/dev/null || break
done
exit "$status"
