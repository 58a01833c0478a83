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
require(entry).main(process.argv).catch((err) => {
  process.stderr.write(`filestore: ${err && err.message ? err.message : String(err)}\n`);
  process.exit(1);
});
