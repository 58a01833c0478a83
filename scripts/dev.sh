#!/usr/bin/env bash
# Quick start, command 1: install what is missing, then run the whole dev stack in the foreground.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
exec node bin/filestore.js dev
