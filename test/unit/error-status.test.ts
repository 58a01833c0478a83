/**
 * Every error code a Filestore error class can raise has one row in ERROR_STATUS (HTTP status and
 * CLI exit code): the API's problem responses and the CLI's exit codes come from that table.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ERROR_STATUS, statusOf } from '../../src/errors';

const source = fs.readFileSync(path.join(__dirname, '../../src/errors.ts'), 'utf8');
const raised = [...source.matchAll(/super\('([A-Z_]+)'/g)].map((m) => m[1]!);

describe('ERROR_STATUS', () => {
  it('finds the codes the classes raise', () => {
    expect(raised.length).toBeGreaterThan(40);
    expect(raised).toContain('UNAUTHORIZED');
  });

  it.each(raised)('%s has an HTTP status and an exit code', (code) => {
    const row = ERROR_STATUS[code];
    expect(row).toBeDefined();
    expect(row!.http).toBeGreaterThanOrEqual(400);
    expect(row!.http).toBeLessThan(600);
    expect(row!.exit).toBeGreaterThanOrEqual(1);
  });

  it('has no rows for codes nothing raises', () => {
    expect(Object.keys(ERROR_STATUS).filter((c) => !raised.includes(c))).toEqual([]);
  });

  it('answers unknown codes as internal', () => {
    expect(statusOf('NO_SUCH_CODE')).toEqual({ http: 500, exit: 1 });
  });
});
