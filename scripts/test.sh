#!/usr/bin/env bash
# Quick start, command 2: install what is missing, make sure Postgres and Redis answer (private ones
# otherwise), type-check, then run every unit and integration test against real services.
# The tests start their own Temporal dev server and MinIO (unless FILESTORE_TEST_S3_ENDPOINT names an
# S3 server, with AWS credentials in the environment) and create and drop their own databases and buckets.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
node bin/filestore.js services up
echo "test: typecheck"
npm run --silent typecheck
echo "test: jest"
# One test file at a time (they share one Temporal server, one MinIO and the machine's 2 cores), each
# in a fresh process: --workerIdleMemoryLimit=1MB recycles the single worker after every file. In one
# long-lived process (--runInBand) the workers, watchers and native Temporal runtimes of 70 files
# reached 3.4 GB of RSS by the end, and the last file (drift.parcel) took 130 s instead of 26 s alone and timed out.
exec npx jest --ci --maxWorkers=1 --workerIdleMemoryLimit=1MB --logHeapUsage "$@"
