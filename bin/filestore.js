#!/usr/bin/env node
'use strict';
// The CLI runs from the compiled output so `filestore` starts fast and needs no TS loader at run time.
const path = require('node:path');
const fs = require('node:fs');
const entry = path.join(__dirname, '..', 'dist', 'src', 'cli', 'main.js');
if (!fs.existsSync(entry)) {
  process.stderr.write('filestore: not built yet; run `npm run build` (npm run dev does it for you)\n');
  process.exit(1);
}
const cli = require(entry);
cli.main(process.argv).then(
  () => process.exit(process.exitCode ?? 0),
  (err) => {
    process.stderr.write(`filestore: ${cli.errorLine(err)}\n`);
    process.exit(1);
  },
);
