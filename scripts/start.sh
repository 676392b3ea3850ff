#!/usr/bin/env bash
# Sieve's main job, from a fresh clone: installs dependencies, starts a local redis-server when
# none answers at REDIS_URL, and runs the API + workers + dashboard in one process, with an
# embedded Postgres (PGlite, under .sieve/) when DATABASE_URL is unset.
#   npm start                 # real providers: set OPENAI_API_KEY / ANTHROPIC_API_KEY / VLLM_BASE_URL+VLLM_MODEL
#   npm start -- --simulator  # the bundled provider SIMULATOR (a test tool: answers are synthetic)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/services.sh

for arg in "$@"; do
  case "$arg" in
    --simulator) export SIEVE_SIMULATOR=true ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) log "unknown option: $arg (see --help)"; exit 2 ;;
  esac
done

ensure_node_modules
case "$(redis_url)" in
  redis://127.0.0.1*|redis://localhost*) ensure_redis ;;
  *) redis_answers || { log "no Redis answers at $(redis_url)"; exit 1; } ;;
esac

if [ "${SIEVE_SIMULATOR:-}" = "true" ]; then
  # Demo credentials, only for the simulator run; never used with real providers.
  export SIEVE_API_KEYS="${SIEVE_API_KEYS:-demo:sk-sieve-demo-key}"
  export SIEVE_ADMIN_USER="${SIEVE_ADMIN_USER:-admin}"
  export SIEVE_ADMIN_PASSWORD="${SIEVE_ADMIN_PASSWORD:-sieve-demo}"
  log "demo mode: provider simulator, API key 'sk-sieve-demo-key' (tenant demo), dashboard admin/sieve-demo"
fi
exec node --import tsx apps/producer/src/main.ts
