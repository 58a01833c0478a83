#!/usr/bin/env bash
# Runs one benchmark: `bash scripts/bench.sh bench/local-bench.ts` (npm run bench:local).
# Installs and builds what is missing, makes sure Postgres answers (a private cluster otherwise),
# then runs the TypeScript file with tsx. The benchmark starts its own Temporal dev server and
# creates and drops its own database. Everything else goes to stderr (the Temporal dev server
# prints its banner on the stdout it inherits): this script's stdout is only the benchmark's
# report, whose last line is one JSON object. The benchmark writes it to BENCH_REPORT_FILE when set.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: bash scripts/bench.sh <bench-file.ts> [args...]" >&2; exit 2; }
bash scripts/bootstrap.sh >&2
node bin/filestore.js services up >&2
file="$1"
shift
report="$(mktemp)"
trap 'rm -f "$report"' EXIT
BENCH_REPORT_FILE="$report" npx tsx "$file" "$@" >&2
cat "$report"
