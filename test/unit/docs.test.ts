/** docs/filestore.md must stay true to the code: every setting is documented with its default. */
import fs from 'node:fs';
import path from 'node:path';
import { ENV_NAMES, loadConfig } from '../../src/config';

const doc = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'filestore.md'), 'utf8');

test.each(Object.entries(ENV_NAMES))('%s (%s) has a row in the configuration table', (key, name) => {
  const row = doc.split('\n').find((line) => line.startsWith(`| \`${name}\` |`));
  expect(row).toBeDefined();
  const value = loadConfig({})[key as keyof typeof ENV_NAMES];
  if (typeof value === 'number' || typeof value === 'boolean') expect(row).toContain(`\`${String(value)}\``);
});
