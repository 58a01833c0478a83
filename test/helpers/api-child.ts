/**
 * The HTTP API in a process of its own, for tests that measure the server (its RSS is then its
 * own, not the test runner's). Run as `node --import tsx test/helpers/api-child.ts` with the test
 * stack's config as JSON in FILESTORE_TEST_API_CONFIG; prints one JSON line
 * `{"url": "...", "pid": n}` once listening, and closes gracefully on SIGTERM.
 */
import { startApi } from '../../src/api/api-process';
import { loadConfig, type Config } from '../../src/config';

async function main(): Promise<void> {
  const raw = process.env.FILESTORE_TEST_API_CONFIG;
  if (!raw) throw new Error('FILESTORE_TEST_API_CONFIG is not set');
  const config = loadConfig({}, JSON.parse(raw) as Partial<Config>);
  const api = await startApi(config);
  process.stdout.write(`${JSON.stringify({ url: api.url, pid: process.pid })}\n`);
  process.once('SIGTERM', () => {
    void api.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  });
}

main().catch((err: unknown) => {
  process.stderr.write(`api-child: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
