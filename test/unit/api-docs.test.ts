/**
 * docs/api.md stays true to the code: every error code with its HTTP status, and every route the
 * route files register (read from their source) with a curl example.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ERROR_STATUS } from '../../src/errors';

const root = path.join(__dirname, '../..');
const doc = fs.readFileSync(path.join(root, 'docs/api.md'), 'utf8');

describe('docs/api.md', () => {
  const rows = new Map<string, number>();
  for (const line of doc.split('\n')) {
    const m = /^\| (\d{3}) \| (.+) \|$/.exec(line);
    if (m) for (const code of m[2]!.matchAll(/`([A-Z_]+)`/g)) rows.set(code[1]!, Number(m[1]));
  }

  it.each(Object.entries(ERROR_STATUS))('lists %s with its status', (code, { http }) => {
    expect(rows.get(code)).toBe(http);
  });

  const routeDir = path.join(root, 'src/api/routes');
  const routes = fs
    .readdirSync(routeDir)
    .flatMap((f) => [...fs.readFileSync(path.join(routeDir, f), 'utf8').matchAll(/app\.(get|put|post|patch|delete)\(\s*[`']([^`']+)[`']/g)])
    .map((m) => m[2]!.replace(/\$\{op\}/, 'copy'));

  it('finds the routes', () => {
    expect(routes.length).toBeGreaterThan(15);
  });

  it.each(routes)('shows a curl example for %s', (route) => {
    // `/v1/mounts/:mount/files/*` → a URL under $API with some mount and path.
    const pattern = route
      .replace(/[.?+^$|()[\]{}]/g, '\\$&')
      .replace(/:[a-zA-Z]+/g, '[^/ "]+')
      .replace(/\\\*|\*/g, '[^ "]*');
    expect(doc).toMatch(new RegExp(`\\$API${pattern}(["?\\s]|$)`, 'm'));
  });
});
