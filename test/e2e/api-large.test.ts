/**
 * A 1 GiB file up and down through the HTTP API in constant server memory (issue 9, Tests), on a
 * local mount and on an S3 mount (MinIO). The API runs in a child process
 * (test/helpers/api-child.ts) so its RSS is its own; the worker runs in this process. The body is
 * generated as a stream and hashed on the way (never held whole), PUT with node:http and
 * Content-Length 1073741824, then GET as a stream and hashed; the child's VmRSS is sampled every
 * 200 ms during both. A server that buffered the body would grow by 1 GiB.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { createToken } from '../../src/catalog/tokens';
import { uploadDirOf } from '../../src/config';
import type { MutationResult } from '../../src/mutations';
import type { TestBucket } from '../helpers/s3';
import { createTestStack, type TestStack } from '../helpers/stack';

const SIZE = 1024 ** 3; // 1 GiB
const CHUNK = 1024 * 1024;
const RSS_BOUND = 256 * 1024 * 1024;
const MOUNT = 'big';
const S3_MOUNT = 'big-s3';

jest.setTimeout(300_000);

let stack: TestStack;
let root: string;
let child: ChildProcess | null = null;
let apiUrl: string;
let apiPid: number;
let token: string;
let bucket: TestBucket;

beforeAll(async () => {
  stack = await createTestStack({ config: { apiPort: 0, apiHost: '127.0.0.1' } });
  root = await stack.addMount(MOUNT);
  bucket = await stack.addS3Mount(S3_MOUNT);
  token = (await createToken(stack.client.db, { admin: true, name: 'large-test' })).token;
  ({ url: apiUrl, pid: apiPid } = await startChildApi());
}, 120_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 10_000)))]);
    clearTimeout(timer);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  await stack?.teardown();
});

/** Spawns the API child on the stack's config; resolves with its URL once it listens. */
function startChildApi(): Promise<{ url: string; pid: number }> {
  const script = path.join(__dirname, '..', 'helpers', 'api-child.ts');
  child = spawn(process.execPath, ['--import', 'tsx', script], {
    cwd: path.join(__dirname, '..', '..'),
    env: { ...process.env, FILESTORE_TEST_API_CONFIG: JSON.stringify(stack.config) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the API child did not start in 60 s: ${stderr}`)), 60_000);
    child!.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.startsWith('{"url"'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line) as { url: string; pid: number });
      }
    });
    child!.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the API child exited (${code}): ${stderr}`));
    });
  });
}

/** VmRSS of `pid` in bytes. */
function rssOf(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** Samples the child's RSS every 200 ms until stopped; returns the peak. */
function sampleRss(pid: number): { stop(): number } {
  let peak = rssOf(pid);
  const timer = setInterval(() => {
    try {
      peak = Math.max(peak, rssOf(pid));
    } catch {
      // the process went away: the test fails elsewhere
    }
  }, 200);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, rssOf(pid));
    },
  };
}

/** `SIZE` bytes of a repeated random block, each 1 MiB chunk stamped with its index; hashed as it is read. */
function generatedBody(): { stream: Readable; digest(): string } {
  const block = randomBytes(CHUNK);
  const hash = createHash('sha256');
  let i = 0;
  const stream = new Readable({
    read() {
      if (i * CHUNK >= SIZE) return void this.push(null);
      const chunk = Buffer.from(block);
      chunk.writeUInt32BE(i, 0);
      i += 1;
      hash.update(chunk);
      this.push(chunk);
    },
  });
  return { stream, digest: () => hash.digest('hex') };
}

const mib = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

/** Size of `p` on the mount's backend (the local file, the S3 object). */
async function backendSize(mount: string, p: string): Promise<number> {
  if (mount === MOUNT) return fs.statSync(path.join(root, p)).size;
  return (await bucket.client.send(new HeadObjectCommand({ Bucket: bucket.bucket, Key: p }))).ContentLength!;
}

test.each([
  { name: 'local', mount: MOUNT },
  { name: 'S3', mount: S3_MOUNT },
])('$name mount: 1 GiB PUT then GET through the API: same sha256 both ways, server RSS stays flat', async ({ name, mount }) => {
  const headers = { authorization: `Bearer ${token}` };
  // Warm-up: a small upload and download, so lazily loaded code is in before the baseline.
  const warm = await fetch(`${apiUrl}/v1/mounts/${mount}/files/warm.txt`, { method: 'PUT', body: 'warm', headers: { ...headers, 'content-type': 'application/octet-stream' } });
  expect(warm.status).toBe(200);
  expect(await (await fetch(`${apiUrl}/v1/mounts/${mount}/files/warm.txt`, { headers })).text()).toBe('warm');

  const before = rssOf(apiPid);
  const { hostname, port } = new URL(apiUrl);

  // Upload.
  const upStarted = Date.now();
  const upSampler = sampleRss(apiPid);
  const body = generatedBody();
  const result = await new Promise<{ status: number; json: MutationResult }>((resolve, reject) => {
    const req = http.request(
      {
        host: hostname,
        port,
        method: 'PUT',
        path: `/v1/mounts/${mount}/files/large/one-gib.bin`,
        headers: { ...headers, 'content-type': 'application/octet-stream', 'content-length': String(SIZE) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode!, json: JSON.parse(text) as MutationResult });
          } catch (err) {
            reject(new Error(`PUT answered ${res.statusCode}: ${text}`, { cause: err }));
          }
        });
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    pipeline(body.stream, req).catch(reject);
  });
  const upPeak = upSampler.stop();
  const upSeconds = (Date.now() - upStarted) / 1000;
  const sentSha = body.digest();
  expect(result.status).toBe(200);
  expect(result.json).toMatchObject({ status: 'COMMITTED', node: { path: 'large/one-gib.bin', size: SIZE } });
  expect(result.json.node!.sha256).toBe(sentSha);
  expect(await backendSize(mount, 'large/one-gib.bin')).toBe(SIZE);

  // Download.
  const downStarted = Date.now();
  const downSampler = sampleRss(apiPid);
  const got = await new Promise<{ status: number; sha: string; bytes: number; length: string | undefined; etag: string | undefined }>((resolve, reject) => {
    http
      .get({ host: hostname, port, path: `/v1/mounts/${mount}/files/large/one-gib.bin`, headers }, (res) => {
        const hash = createHash('sha256');
        let bytes = 0;
        res.on('data', (d: Buffer) => {
          bytes += d.length;
          hash.update(d);
        });
        res.on('end', () => resolve({ status: res.statusCode!, sha: hash.digest('hex'), bytes, length: res.headers['content-length'], etag: res.headers.etag }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
  const downPeak = downSampler.stop();
  const downSeconds = (Date.now() - downStarted) / 1000;
  const after = rssOf(apiPid);

  console.log(
    [
      `[${name}] API child RSS: before ${mib(before)}, peak during upload ${mib(upPeak)} (+${mib(upPeak - before)}), ` +
        `peak during download ${mib(downPeak)} (+${mib(downPeak - before)}), after ${mib(after)}`,
      `upload+commit of 1 GiB: ${upSeconds.toFixed(1)} s (${(1024 / upSeconds).toFixed(0)} MiB/s); download: ${downSeconds.toFixed(1)} s (${(1024 / downSeconds).toFixed(0)} MiB/s)`,
      `sha256 sent ${sentSha}, committed ${result.json.node!.sha256}, downloaded ${got.sha}`,
    ].join('\n'),
  );

  expect(got.status).toBe(200);
  expect(got.length).toBe(String(SIZE));
  expect(got.bytes).toBe(SIZE);
  expect(got.sha).toBe(sentSha);
  expect(got.etag).toBe(`"${sentSha}"`);
  expect(upPeak - before).toBeLessThan(RSS_BOUND);
  expect(downPeak - before).toBeLessThan(RSS_BOUND);
  // The upload file was released once the run ended.
  expect(fs.readdirSync(uploadDirOf(stack.config))).toEqual([]);
});
