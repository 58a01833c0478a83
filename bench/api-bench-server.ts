/**
 * Child process of bench/api-bench.ts: ONE `filestore api` server (the real startApi), configured
 * from the environment as `filestore api` is (test/helpers/cli.ts `stackEnv`), in its own process
 * so its resident set is its own. Prints one JSON line `{ "url": … }` on stdout once it listens
 * and runs until SIGTERM, which closes it gracefully.
 *
 * usage: node --import tsx bench/api-bench-server.ts
 */
import { startApi } from '../src/api/api-process';
import { loadConfig } from '../src/config';

async function main(): Promise<void> {
  const api = await startApi(loadConfig(process.env));
  process.stdout.write(`${JSON.stringify({ url: api.url })}\n`);
  process.once('SIGTERM', () => {
    void api.close().then(() => process.exit(0));
  });
}

main().catch((err: Error) => {
  process.stderr.write(`bench api server: ${err.stack ?? err.message}\n`);
  process.exit(1);
});
