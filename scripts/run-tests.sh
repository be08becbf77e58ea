#!/usr/bin/env bash
# Type-checks the sources, then runs every test file under test/ with Node's
# test runner. Node.js 20's --test takes no glob patterns, so find lists them.
set -euo pipefail
cd "$(dirname "$0")/.."
npx tsc -p tsconfig.check.json
mapfile -t files < <(find test -name '*.test.ts' | sort)
exec node --import tsx --test --test-reporter=spec "${files[@]}"
