/**
 * The CLI's HTTP start path (src/client/temporal-http.ts) facing bad luck and a lying peer: a
 * start whose answer is lost, answers that are not Temporal's, an address that swallows packets.
 * Between the client and the run's real HTTP API sits a proxy of this test's own, which passes
 * requests on or misbehaves; the real stack (Temporal, Postgres, the worker) does the mutations,
 * and every outcome must be the one the gRPC path gives: one run, the right result, no hang.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { MutationStarter } from '../../src/client/mutation-starter';
import { HttpStartTransport } from '../../src/client/temporal-http';
import { createTestStack, type TestStack } from '../helpers/stack';

let stack: TestStack;
const transports: HttpStartTransport[] = [];

beforeAll(async () => {
  stack = await createTestStack();
  await stack.addMount('docs');
});
afterAll(async () => {
  for (const t of transports) t.close();
  await stack?.teardown();
});

type Mode = (req: http.IncomingMessage, body: Buffer, res: http.ServerResponse, forward: () => Promise<{ status: number; body: Buffer }>) => Promise<void> | void;

/** A proxy in front of the run's HTTP API; `mode` decides per request. Records every request. */
async function proxy(mode: Mode): Promise<{ url: string; seen: Array<{ method: string; path: string; body: string }>; close(): Promise<void> }> {
  const target = new URL(stack.config.temporalHttpUrl!);
  const seen: Array<{ method: string; path: string; body: string }> = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      seen.push({ method: req.method!, path: req.url!, body: body.toString('utf8') });
      const forward = () =>
        new Promise<{ status: number; body: Buffer }>((resolve, reject) => {
          const out = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } }, (r) => {
            const parts: Buffer[] = [];
            r.on('data', (c: Buffer) => parts.push(c));
            r.on('end', () => resolve({ status: r.statusCode ?? 0, body: Buffer.concat(parts) }));
          });
          out.on('error', reject);
          out.end(body);
        });
      void Promise.resolve(mode(req, body, res, forward)).catch(() => res.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function overHttp(url: string): { starter: MutationStarter; transport: HttpStartTransport } {
  const c = stack.client;
  const transport = new HttpStartTransport(url, stack.config.temporalNamespace, async () => ({ start: (spec) => c.startRun(spec), handleOf: (id) => c.handleOf(id) }));
  transports.push(transport);
  return { starter: new MutationStarter(stack.config, stack.client.db, transport), transport };
}

async function runsOf(workflowId: string): Promise<string[]> {
  const runs: string[] = [];
  for await (const w of stack.client.temporal.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs.push(w.runId);
  return runs;
}

test('a start whose answer is lost is sent again with the same request id: one run, its result over HTTP', async () => {
  let posts = 0;
  const p = await proxy(async (req, _body, res, forward) => {
    const answer = await forward();
    // The first start reaches Temporal, but its answer never reaches the client.
    if (req.method === 'POST' && ++posts === 1) return void res.destroy();
    res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
  });
  try {
    const { starter, transport } = overHttp(p.url);
    const handle = await starter.put('docs', 'lost/answer.txt', { content: 'once' }, { idempotencyKey: 'lost-answer' });
    expect(transport.lastStartOverHttp).toBe(true);
    const result = await handle.result();
    expect(transport.lastResultOverHttp).toBe(true);
    expect(result).toMatchObject({ status: 'COMMITTED', path: 'lost/answer.txt' });
    const starts = p.seen.filter((r) => r.method === 'POST').map((r) => JSON.parse(r.body) as { requestId: string });
    expect(starts).toHaveLength(2);
    expect(starts[1].requestId).toBe(starts[0].requestId);
    // Visibility is eventually consistent: wait until the run is listed, then there is exactly one.
    let runs: string[] = [];
    for (let i = 0; i < 50 && runs.length === 0; i++) {
      runs = await runsOf(handle.workflowId);
      if (runs.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(runs).toHaveLength(1);
  } finally {
    await p.close();
  }
});

test('a server that answers 200 with nothing Temporal-like to everything: started and awaited over gRPC, no spinning', async () => {
  const p = await proxy((_req, _body, res) => void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>hello</html>'));
  try {
    const { starter, transport } = overHttp(p.url);
    const result = await (await starter.put('docs', 'garbage/start.txt', { content: 'x' })).result();
    expect(transport.lastStartOverHttp).toBe(false);
    expect(transport.lastResultOverHttp).toBe(false);
    expect(result).toMatchObject({ status: 'COMMITTED', path: 'garbage/start.txt' });
    // One start, sent once (an answer came, so it is not sent again); the wait never asked it.
    expect(p.seen.map((r) => r.method)).toEqual(['POST']);
  } finally {
    await p.close();
  }
});

test.each<[string, (res: http.ServerResponse) => void]>([
  ['{} (no history)', (res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{}')],
  ['empty pages with a token, at once', (res) => void res.writeHead(200, { 'content-type': 'application/json' }).end('{"history":{"events":[]},"nextPageToken":"AAAA"}')],
  ['an answer of 9 MiB', (res) => void res.writeHead(200, { 'content-type': 'application/json' }).end(Buffer.alloc(9 * 1024 * 1024, 0x20))],
])('the start goes through, then the wait gets %s: the result comes from gRPC, without spinning', async (_what, lie) => {
  const p = await proxy(async (req, _body, res, forward) => {
    if (req.method === 'POST') {
      const answer = await forward();
      return void res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body);
    }
    lie(res);
  });
  try {
    const { starter, transport } = overHttp(p.url);
    const result = await (await starter.mkdir('docs', `lying-wait/${Math.random().toString(36).slice(2)}`)).result();
    expect(transport.lastStartOverHttp).toBe(true);
    expect(transport.lastResultOverHttp).toBe(false);
    expect(result).toMatchObject({ status: 'COMMITTED', op: 'mkdir' });
    expect(p.seen.filter((r) => r.method === 'GET').length).toBeLessThanOrEqual(3);
    // The wait asked for the run it started, not the latest run of the id.
    expect(p.seen.find((r) => r.method === 'GET')!.path).toMatch(/execution\.runId=[0-9a-f-]{36}/);
  } finally {
    await p.close();
  }
});

test('an address that never answers a connection costs the connect timeouts, then gRPC does it', async () => {
  // A non-routable address: connecting hangs until the connect timeout (or fails at once where there is no route).
  const { starter, transport } = overHttp('http://10.255.255.1:7243');
  const result = await (await starter.put('docs', 'blackhole/x.txt', { content: 'y' })).result();
  expect(transport.lastStartOverHttp).toBe(false);
  expect(result).toMatchObject({ status: 'COMMITTED', path: 'blackhole/x.txt' });
}, 30_000);
