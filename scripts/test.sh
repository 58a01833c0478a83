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
exec npx jest --ci --runInBand "$@"
