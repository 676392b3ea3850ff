# Demo mode of scripts/start.sh: the provider simulator (tools/simulator, a test tool) as its own
# process, as a real provider would be. start_simulator runs it, waits until it answers and exports
# SIEVE_SIMULATOR_URL for Sieve; stop_simulator stops it once Sieve has exited.
# It runs in its own session: a Ctrl-C meant for Sieve does not stop it under Sieve's last calls.

SIM_PID=""

# Whether $1 answers 200 within a second.
http_ok() {
  node -e 'fetch(process.argv[1], { signal: AbortSignal.timeout(1000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' "$1"
}

start_simulator() {
  local dir="${SIEVE_DATA_DIR:-.sieve}"
  mkdir -p "$dir"
  local sim_log="$dir/simulator.log"
  local args=(--host 127.0.0.1 --port "${SIEVE_SIMULATOR_PORT:-4010}")
  # Reference mode (docs/quality.md): known answers with noise instead of hashed ones.
  if [ -n "${SIEVE_SIMULATOR_ANSWERS:-}" ]; then
    args+=(--answers "$SIEVE_SIMULATOR_ANSWERS")
    if [ -n "${SIEVE_SIMULATOR_NOISE:-}" ]; then args+=(--noise "$SIEVE_SIMULATOR_NOISE"); fi
  fi
  if [ -n "${VLLM_MODEL:-}" ]; then args+=(--vllm-model "$VLLM_MODEL"); fi
  local session=()
  if command -v setsid >/dev/null 2>&1; then session=(setsid); fi
  ${session[@]+"${session[@]}"} node --import tsx tools/simulator/src/main.ts "${args[@]}" >"$sim_log" 2>&1 &
  SIM_PID=$!
  local url=""
  for _ in $(seq 1 600); do
    if ! kill -0 "$SIM_PID" 2>/dev/null; then
      log "the provider simulator did not start:"
      cat "$sim_log" >&2
      SIM_PID=""
      return 1
    fi
    # Its banner names its URL (with --port 0, the port it was given).
    if [ -z "$url" ]; then url=$(sed -n 's/^Sieve provider SIMULATOR .* on \(http:[^ ]*\)$/\1/p' "$sim_log" | head -n 1); fi
    if [ -n "$url" ] && http_ok "$url/_sim"; then
      export SIEVE_SIMULATOR_URL="$url"
      grep -v '^{' "$sim_log" >&2 || true
      if [ -n "${SIEVE_SIMULATOR_ANSWERS:-}" ]; then log "simulator in reference mode: answers from $SIEVE_SIMULATOR_ANSWERS"; fi
      log "provider SIMULATOR running as its own process (pid $SIM_PID) at $url, log in $sim_log"
      return 0
    fi
    sleep 0.1
  done
  log "the provider simulator did not answer within 60 s (see $sim_log)"
  stop_simulator
  return 1
}

stop_simulator() {
  [ -n "$SIM_PID" ] || return 0
  kill -TERM "$SIM_PID" 2>/dev/null || true
  # It closes in well under a second; a hung one is killed after 5 s.
  (sleep 5 && kill -KILL "$SIM_PID" 2>/dev/null) &
  local watchdog=$!
  wait "$SIM_PID" 2>/dev/null || true
  kill "$watchdog" 2>/dev/null || true
  SIM_PID=""
}
