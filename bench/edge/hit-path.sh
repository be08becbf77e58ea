#!/usr/bin/env bash
# Bundles bench/edge/hit-path.ts with esbuild and runs it with plain node, so the measured code
# runs as built JavaScript does, without the tsx loader (which made the same loop about a third
# slower on a 2-core test machine).
#   bench/edge/hit-path.sh [REQUESTS_PER_ROUND] [ROUNDS]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# The bundle sits in the repository, so its imports of packages resolve from node_modules.
BUNDLE="$ROOT/bench/edge/.hit-path.mjs"
trap 'rm -f "$BUNDLE"' EXIT
cd "$ROOT"
npx esbuild bench/edge/hit-path.ts --bundle --format=esm --platform=node --packages=external \
  --outfile="$BUNDLE" --log-level=warning
node "$BUNDLE" "$@"
