#!/usr/bin/env bash
# Installs everything Filestore needs, from the registries only (no binary downloads):
#   npm packages (the locked versions, when the lock file is newer than node_modules),
#   the Temporal CLI (go install into the git-ignored .tools/bin, once, unless one is already available),
#   and the compiled dist/ that bin/filestore.js runs.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  # `npm install`, not `npm ci`: npm 11 writes lock files that record only this platform's optional
  # native packages (@swc/core-*, msgpackr-extract-*) and then `npm ci` refuses them as out of sync
  # (npm/cli#8669, #4828). With the lock file present, `npm install` installs exactly its versions.
  echo "bootstrap: npm install (locked versions)"
  npm install --no-audit --no-fund --loglevel=error
fi

TEMPORAL_CLI_VERSION=v1.5.1   # later tags carry a replace directive that go install refuses
if [ -n "${TEMPORAL_CLI_PATH:-}" ]; then
  [ -x "$TEMPORAL_CLI_PATH" ] || { echo "bootstrap: TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH is not executable" >&2; exit 1; }
elif ! command -v temporal >/dev/null 2>&1 && [ ! -x .tools/bin/temporal ]; then
  command -v go >/dev/null 2>&1 || { echo "bootstrap: Go is needed to build the Temporal CLI (or set TEMPORAL_CLI_PATH)" >&2; exit 1; }
  echo "bootstrap: go install github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION} (first run only, a few minutes)"
  GOBIN="$PWD/.tools/bin" GOFLAGS="${GOFLAGS:-} -buildvcs=false" go install "github.com/temporalio/cli/cmd/temporal@${TEMPORAL_CLI_VERSION}"
fi

echo "bootstrap: build"
npm run --silent build
