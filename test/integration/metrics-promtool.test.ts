/**
 * Every /metrics endpoint Filestore serves passes `promtool check metrics` (Prometheus's own
 * exposition parser and linter), after real mutations and real drift filled the series in: the
 * worker's metrics server, the watcher's, and the API's. The default process metrics keep their
 * standard names (process_…, nodejs_…).
 *
 * The worker, the watcher and the API run in this process, so the endpoints serve the one registry
 * of src/metrics.ts — the definitions each of their own processes serves.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { startApi } from '../../src/api/api-process';
import { createToken } from '../../src/catalog/tokens';
import { loadConfig } from '../../src/config';
import { startHttpRequest } from '../../src/metrics';
import { startWatcherService, type RunningWatcher } from '../../src/watcher/watcher-service';
import { startWorker } from '../../src/worker';
import { dropQueueKeys } from '../helpers/redis';
import { createTestStack, type TestStack } from '../helpers/stack';
import { waitFor } from '../helpers/wait';

/** PROMTOOL_PATH, else .tools/bin/promtool (scripts/bootstrap.sh builds it). */
const PROMTOOL = process.env.PROMTOOL_PATH || path.join(__dirname, '..', '..', '.tools', 'bin', 'promtool');

interface PromtoolResult {
  code: number | null;
  /** stdout and stderr, one problem per line. */
  lines: string[];
}

/** Pipes an exposition body into `promtool check metrics`. */
function promtoolCheck(body: string): Promise<PromtoolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, lines: out.split('\n').filter((l) => l.trim() !== '') }));
    child.stdin.end(body);
  });
}

/** Scrapes `url` and checks the body: exit 0, no lint line at all (ours and the process defaults). */
async function scrapeAndCheck(url: string): Promise<string> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const body = await res.text();
  const result = await promtoolCheck(body);
  // Our own series first, so a failure names them.
  expect(result.lines.filter((l) => /\bfilestore_/.test(l))).toEqual([]);
  expect(result.lines).toEqual([]);
  expect(result.code).toBe(0);
  // Standard names for the defaults, never the old doubled prefix.
  expect(body).toMatch(/^process_cpu_user_seconds_total \d/m);
  expect(body).toMatch(/^process_resident_memory_bytes \d/m);
  expect(body).toMatch(/^nodejs_heap_size_used_bytes \d/m);
  expect(body).not.toContain('filestore_process_');
  // The per-type gauge stays; its misnamed `_total` sum (a gauge) is dropped (src/metrics.ts).
  expect(body).toMatch(/^nodejs_active_handles\{type="\w+"\} \d/m);
  expect(body).not.toContain('nodejs_active_handles_total');
  return body;
}

let stack: TestStack;
let watcher: RunningWatcher | null = null;
let driftQueue: string;
let workerMetricsUrl: string;
let watchedRoot: string;

beforeAll(async () => {
  if (!fs.existsSync(PROMTOOL)) throw new Error(`promtool not found at ${PROMTOOL}: run scripts/bootstrap.sh or set PROMTOOL_PATH`);
  stack = await createTestStack({ worker: false });
  // The stack's own worker serves no /metrics; this one does (metricsPort 0: a free port).
  stack.worker = await startWorker(stack.config, { workflowBundle: { codePath: process.env.FILESTORE_TEST_WORKFLOW_BUNDLE! }, metrics: true });
  workerMetricsUrl = stack.worker.metricsUrl!;
  await stack.addMount('docs');
  await stack.addS3Mount('bucket');
  const dir = path.join(stack.tmp, 'mounts', 'watched');
  await fsp.mkdir(dir, { recursive: true });
  await stack.client.addLocalMount({ id: 'watched', rootPath: dir, watch: true });
  await stack.worker.refreshMounts();
  watchedRoot = await fsp.realpath(dir);
  driftQueue = `drift-promtool-${randomBytes(4).toString('hex')}`;
});
afterAll(async () => {
  await watcher?.shutdown();
  if (stack) await dropQueueKeys(stack.config.redisUrl, driftQueue);
  await stack?.teardown();
});

test('promtool reports a badly named counter (the check can fail)', async () => {
  const bad = '# HELP filestore_bad_things Things without the suffix\n# TYPE filestore_bad_things counter\nfilestore_bad_things 1\n';
  const result = await promtoolCheck(bad);
  expect(result.lines.some((l) => l.includes('filestore_bad_things'))).toBe(true);
  expect(result.code).not.toBe(0);
});

test("the worker's /metrics passes promtool after mutations on local and S3 mounts", async () => {
  const c = stack.client;
  await (await c.put('docs', 'a/one.txt', { content: 'one' })).result();
  await (await c.mkdir('docs', 'b')).result();
  await (await c.copy('docs', 'a/one.txt', 'b/two.txt')).result();
  await (await c.move('docs', 'b/two.txt', 'b/three.txt')).result();
  await (await c.remove('docs', 'b/three.txt')).result();
  await (await c.put('bucket', 'x/obj.bin', { content: randomBytes(4096) })).result();
  await (await c.copy('docs', 'a/one.txt', 'x/from-local.txt', { targetMountId: 'bucket' })).result();
  // A refused mutation too, so error outcomes carry samples.
  await expect(c.remove('docs', 'missing.txt').then((h) => h.result())).rejects.toMatchObject({ code: 'NOT_FOUND' });

  const body = await scrapeAndCheck(workerMetricsUrl);
  // The series were filled in (the check above is not over an empty registry).
  expect(body).toMatch(/^filestore_mutations_total\{mount="docs",op="write",outcome="committed"\} [1-9]/m);
  expect(body).toMatch(/^filestore_executor_duration_seconds_bucket\{[^}]*backend="s3"[^}]*\} [1-9]/m);
  expect(body).toMatch(/^filestore_activity_duration_seconds_count\{/m);
  expect(body).not.toContain('one.txt');
});

test("the watcher's /metrics passes promtool after drift was detected", async () => {
  const config = loadConfig(process.env, {
    ...stack.config,
    enableWatchers: true,
    driftQueue,
    driftDebounceMs: 200,
    driftMaxWaitMs: 500,
    watcherMetricsPort: 0,
  });
  watcher = await startWatcherService(config);
  expect(watcher.metricsUrl).toBeTruthy();
  // chokidar needs a moment after start to have the mount under watch.
  await new Promise((r) => setTimeout(r, 1000));
  await fsp.writeFile(path.join(watchedRoot, 'by-hand.txt'), 'nobody told Filestore');
  await waitFor('the drift event', async () => (await stack.client.getNode('watched', 'by-hand.txt'))?.state === 'INCONSISTENT', 15_000);

  const body = await scrapeAndCheck(watcher.metricsUrl!);
  expect(body).toMatch(/^filestore_drift_detected_total\{mount="watched",kind="added"\} [1-9]/m);
  expect(body).toMatch(/^filestore_drift_detection_latency_seconds_bucket\{[^}]*mount="watched"[^}]*\} [1-9]/m);
  expect(body).toMatch(/^filestore_drift_queue_depth\{state="waiting"\} \d/m);
  expect(body).not.toContain('by-hand.txt');
});

test("the API's /metrics passes promtool after uploads, downloads and refusals", async () => {
  const api = await startApi(loadConfig(process.env, { ...stack.config, apiHost: '127.0.0.1', apiPort: 0 }), { client: stack.client });
  try {
    const { token } = await createToken(stack.client.db, { admin: true });
    const auth = { authorization: `Bearer ${token}` };
    const files = `${api.url}/v1/mounts/docs/files`;
    const put = await fetch(`${files}/up/loaded.bin`, { method: 'PUT', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: randomBytes(10_000) });
    expect(put.status).toBe(200);
    expect((await fetch(`${files}/up/loaded.bin`, { headers: auth })).status).toBe(200);
    const ranged = await fetch(`${files}/up/loaded.bin`, { headers: { ...auth, range: 'bytes=0-99' } });
    expect(ranged.status).toBe(206);
    expect((await ranged.arrayBuffer()).byteLength).toBe(100);
    expect((await fetch(`${api.url}/v1/mounts/docs/list/up`, { headers: auth })).status).toBe(200);
    expect((await fetch(`${files}/up/loaded.bin`)).status).toBe(401);
    expect((await fetch(`${api.url}/no/such/route/secret-name.txt`, { headers: auth })).status).toBe(404);

    const body = await scrapeAndCheck(`${api.url}/metrics`);
    const route = 'route="\\/v1\\/mounts\\/:mount\\/files\\/\\*"';
    expect(body).toMatch(new RegExp(`^filestore_http_request_duration_seconds_count\\{method="PUT",${route},status="200"\\} 1$`, 'm'));
    expect(body).toMatch(new RegExp(`^filestore_http_request_duration_seconds_count\\{method="GET",${route},status="206"\\} 1$`, 'm'));
    expect(body).toMatch(new RegExp(`^filestore_http_request_duration_seconds_count\\{method="GET",${route},status="401"\\} 1$`, 'm'));
    expect(body).toMatch(/^filestore_http_request_duration_seconds_count\{method="GET",route="unmatched",status="404"\} 1$/m);
    expect(body).toMatch(/^filestore_http_upload_bytes_total\{mount="docs"\} 10000$/m);
    expect(body).toMatch(/^filestore_http_download_bytes_total\{mount="docs"\} 10100$/m);
    // The scrape itself is in flight while it is rendered.
    expect(body).toMatch(/^filestore_http_requests_in_flight 1$/m);
    expect(body).not.toContain('loaded.bin');
    expect(body).not.toContain('secret-name');
  } finally {
    await api.close();
  }
});

test('HTTP labels stay bounded: odd methods become OTHER, unrouted requests `unmatched`', async () => {
  startHttpRequest()({ method: 'brew', route: '/v1/mounts/:mount/mkdir', status: 418 });
  startHttpRequest()({ method: 'post', route: 'not-a-pattern', status: 1000 });
  const body = await scrapeAndCheck(workerMetricsUrl);
  expect(body).toMatch(/^filestore_http_request_duration_seconds_count\{method="OTHER",route="\/v1\/mounts\/:mount\/mkdir",status="418"\} 1$/m);
  expect(body).toMatch(/^filestore_http_request_duration_seconds_count\{method="POST",route="unmatched",status="other"\} 1$/m);
});
