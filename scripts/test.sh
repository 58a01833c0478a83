#!/usr/bin/env bash
# Quick start, command 2: install what is missing, make sure Postgres answers (a private cluster
# otherwise), type-check, then run every unit and integration test against real services.
# The tests start their own Temporal dev server and create and drop their own databases.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
node -e "
  const { loadConfig } = require('./dist/src/config');
  const { ensurePostgres } = require('./dist/src/dev/private-postgres');
  const c = loadConfig();
  ensurePostgres(c.databaseUrl, c.stateDir).then((pg) => { if (pg) console.log('test: started a private Postgres in ' + pg.dataDir); })
    .catch((e) => { console.error('test: ' + e.message); process.exit(1); });
"
echo "test: typecheck"
npm run --silent typecheck
echo "test: jest"
exec npx jest --ci --runInBand "$@"
