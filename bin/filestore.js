#!/usr/bin/env node
'use strict';
// The CLI runs from the compiled output so `filestore` starts fast and needs no TS loader at run time.
const path = require('node:path');
const fs = require('node:fs');
const module_ = require('node:module');

const dir = path.join(__dirname, '..', 'dist', 'src', 'cli');
const entry = path.join(dir, 'main.js');
const bundle = path.join(dir, 'filestore.bundle.js');
const mtime = (file) => {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return -1;
  }
};
const built = mtime(entry);
if (built < 0) {
  process.stderr.write('filestore: not built yet; run `npm run build` (npm run dev does it for you)\n');
  process.exit(1);
}
// The bundle (scripts/bundle-cli.js: the start-up path in one file) unless a later tsc run made it
// stale — then the compiled modules, which are always current.
const useBundle = mtime(bundle) >= built;
// Node ≥ 22.1 keeps V8's compiled code of the modules it loads on disk and reuses it on the next start
// (in Node's default cache folder; NODE_COMPILE_CACHE=<dir> picks another). Node 20 lacks the API:
// code-cache.js does the same for the two bundles. NODE_DISABLE_COMPILE_CACHE=1 turns both off.
if (typeof module_.enableCompileCache === 'function') {
  module_.enableCompileCache();
} else if (useBundle && !process.env.NODE_DISABLE_COMPILE_CACHE) {
  const verb = process.argv.slice(2).find((a) => !a.startsWith('-')) ?? 'none';
  require('./code-cache').useCodeCache(
    [bundle, path.join(dir, 'temporal-client.bundle.js')],
    path.join(dir, '.v8-cache'),
    /^[a-z][a-z-]{0,19}$/.test(verb) ? verb : 'other',
  );
}
const cli = require(useBundle ? bundle : entry);
// A verb whose work stalled with nothing left to wait on would otherwise end silently with 0.
let settled = false;
process.once('beforeExit', () => {
  if (settled) return;
  process.stderr.write('filestore: INTERNAL: the command stopped before it finished (nothing left to wait on)\n');
  process.exit(1);
});
cli.main(process.argv).finally(() => (settled = true)).then(
  () => process.exit(process.exitCode ?? 0),
  (err) => {
    process.stderr.write(`filestore: ${cli.errorLine(err)}\n`);
    // One exit code per error class (src/errors.ts ERROR_STATUS, listed in docs/cli.md).
    process.exit(cli.exitCodeOf(err));
  },
);
