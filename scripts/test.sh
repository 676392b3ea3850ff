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

echo "== type-check"
npx --no-install tsc -p tsconfig.json

if [ "$#" -gt 0 ]; then
  files=("$@")
else
  mapfile -t files < <(git ls-files --cached --others --exclude-standard -- '*.test.ts' | grep -v '^bench/' | sort)
fi
echo "== ${#files[@]} test files"
# Two cores: two test files at a time. Each file isolates itself (own database, own queue prefix).
exec node --import tsx --test --test-concurrency="${SIEVE_TEST_CONCURRENCY:-2}" --test-timeout="${SIEVE_TEST_TIMEOUT_MS:-300000}" "${files[@]}"
