#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs dependencies, makes sure Redis and PostgreSQL
# answer (installing/starting them when missing), type-checks, then runs every test file with
# node's test runner against REAL Redis and Postgres. Provider traffic goes to the bundled
# provider simulator (the providers themselves are not reachable from CI).
#   npm test                       # everything
#   npm test -- path/to/x.test.ts  # some files
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib/services.sh

ensure_node_modules
ensure_redis
ensure_postgres
ensure_chromium || true  # the browser tests say so when it is missing

echo "== node $(node -v)"
if [ -z "${SIEVE_SKIP_TYPECHECK:-}" ]; then
  echo "== type-check"
  npx --no-install tsc -p tsconfig.json
fi

if [ "$#" -gt 0 ]; then
  files=("$@")
else
  # Benchmarks are programs (bench/*.ts), never *.test.ts; the unit tests of their helpers run here.
  mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.test.ts' | sort)
fi
echo "== ${#files[@]} test files"
# Every queue prefix of this run carries the run id (testPrefix), so the keys a suite forgot to
# delete can be counted afterwards without confusing them with other runs on the same Redis.
export SIEVE_TEST_RUN="${SIEVE_TEST_RUN:-$(date +%s)$$}"
# Two cores: two test files at a time. Each file isolates itself (own database, own queue prefix).
status=0
node --import tsx --test --test-concurrency="${SIEVE_TEST_CONCURRENCY:-2}" --test-timeout="${SIEVE_TEST_TIMEOUT_MS:-300000}" "${files[@]}" || status=$?
left=$(node --import tsx test/support/redis-leftovers.ts "sievetest-r$SIEVE_TEST_RUN-*") || left="an unknown number of (Redis did not answer the count)"
if [ "$left" != "0" ]; then
  echo "== FAIL: the suites left $left Redis keys behind (sievetest-r$SIEVE_TEST_RUN-*); each must delete its prefix in its after hook" >&2
  [ "$status" = 0 ] && status=1
fi
exit "$status"
