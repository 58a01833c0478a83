#!/usr/bin/env bash
# Installs everything Filestore needs, from the registries only (no binary downloads):
#   npm packages (the locked versions, when the lock file is newer than node_modules),
#   the Temporal CLI, MinIO (the S3 server of `filestore dev` and the tests), Toxiproxy (the tests'
#   connection faults) and promtool (the tests' /metrics checks) — each built once with go install
#   into the git-ignored .tools/bin unless one is already available — and the compiled dist/ that
#   bin/filestore.js runs.
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

# go install <module>@<version> into .tools/bin (first run only; Go is needed then), optionally
# renaming the binary (go install names it after the package's folder).
go_tool() {
  local what=$1 module=$2 hint=$3 rename_from=${4:-} rename_to=${5:-}
  command -v go >/dev/null 2>&1 || { echo "bootstrap: Go is needed to build $what (or $hint)" >&2; exit 1; }
  echo "bootstrap: go install $module (first run only, a few minutes)"
  if [ -z "$rename_from" ]; then
    GOBIN="$PWD/.tools/bin" GOFLAGS="${GOFLAGS:-} -buildvcs=false" go install "$module"
  else
    local tmp
    tmp=$(mktemp -d "$PWD/.tools/gobin.XXXXXX")
    GOBIN="$tmp" GOFLAGS="${GOFLAGS:-} -buildvcs=false" go install "$module"
    mv "$tmp/$rename_from" ".tools/bin/$rename_to"
    rm -rf "$tmp"
  fi
}

# The repository is in maintenance mode; the module proxy refuses its bare commit hash but serves
# this pseudo-version of it.
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
if [ -n "${MINIO_PATH:-}" ]; then
  [ -x "$MINIO_PATH" ] || { echo "bootstrap: MINIO_PATH=$MINIO_PATH is not executable" >&2; exit 1; }
elif [ ! -x .tools/bin/minio ]; then
  go_tool MinIO "github.com/minio/minio@${MINIO_VERSION}" "set MINIO_PATH"
fi

# At v2.5.0 the server's package is cmd/server (go install names the binary `server`).
TOXIPROXY_VERSION=v2.5.0
if [ -n "${TOXIPROXY_PATH:-}" ]; then
  [ -x "$TOXIPROXY_PATH" ] || { echo "bootstrap: TOXIPROXY_PATH=$TOXIPROXY_PATH is not executable" >&2; exit 1; }
elif [ ! -x .tools/bin/toxiproxy-server ]; then
  go_tool Toxiproxy "github.com/Shopify/toxiproxy/v2/cmd/server@${TOXIPROXY_VERSION}" "set TOXIPROXY_PATH" server toxiproxy-server
fi

# promtool checks every /metrics endpoint's output in the tests. Prometheus v3.7.3 is Go module
# version v0.307.3 (its v3 tags carry no /v3 module path). `go install` refuses it (its go.mod has
# exclude directives), so it is built inside the downloaded module, as its own main module.
PROMTOOL_VERSION=v0.307.3
if [ -n "${PROMTOOL_PATH:-}" ]; then
  [ -x "$PROMTOOL_PATH" ] || { echo "bootstrap: PROMTOOL_PATH=$PROMTOOL_PATH is not executable" >&2; exit 1; }
elif [ ! -x .tools/bin/promtool ]; then
  command -v go >/dev/null 2>&1 || { echo "bootstrap: Go is needed to build promtool (or set PROMTOOL_PATH)" >&2; exit 1; }
  echo "bootstrap: go build github.com/prometheus/prometheus/cmd/promtool@${PROMTOOL_VERSION} (first run only, a few minutes)"
  promtool_src=$(go mod download -json "github.com/prometheus/prometheus@${PROMTOOL_VERSION}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -n "$promtool_src" ] || { echo "bootstrap: go mod download of prometheus ${PROMTOOL_VERSION} failed" >&2; exit 1; }
  mkdir -p .tools/bin
  promtool_out="$PWD/.tools/bin/promtool"
  (cd "$promtool_src" && GOFLAGS="${GOFLAGS:-} -buildvcs=false" go build -o "$promtool_out" ./cmd/promtool)
fi

echo "bootstrap: build"
npm run --silent build
