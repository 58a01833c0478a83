/**
 * Starting mutations over Temporal's HTTP API (src/client/temporal-http.ts, what the CLI uses when
 * FILESTORE_TEMPORAL_HTTP_URL is set) against the run's real dev server: a run started this way is
 * the same run the SDK starts (input, memo, search attributes, Web UI summary), and every answer
 * that is not a plain start or a completed result — a key already used, a failed mutation, no HTTP
 * API at the URL — ends exactly as over gRPC.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { MutationStarter } from '../../src/client/mutation-starter';
import { HttpStartTransport } from '../../src/client/temporal-http';
import { AlreadyExistsError, IdempotencyKeyReusedError } from '../../src/errors';
import { FINGERPRINT_MEMO_KEY } from '../../src/request-fingerprint';
import { SEARCH_ATTRIBUTES } from '../../src/search-attributes';
import { FILESTORE_BIN, stackEnv } from '../helpers/cli';
import { createTestStack, type TestStack } from '../helpers/stack';

const run = promisify(execFile);

let stack: TestStack;
let root: string;
const transports: HttpStartTransport[] = [];

beforeAll(async () => {
  stack = await createTestStack();
  root = await stack.addMount('docs');
});
afterAll(async () => {
  for (const t of transports) t.close();
  await stack?.teardown();
});

/** A MutationStarter over HTTP at `url` (default: the run's HTTP API), handing over to this stack's gRPC client. */
function overHttp(url = stack.config.temporalHttpUrl!): { starter: MutationStarter; transport: HttpStartTransport } {
  const c = stack.client;
  const transport = new HttpStartTransport(url, stack.config.temporalNamespace, async () => ({ start: (spec) => c.startRun(spec), handleOf: (id) => c.handleOf(id) }));
  transports.push(transport);
  return { starter: new MutationStarter(stack.config, stack.client.db, transport), transport };
}

/** What the Web UI and the workflow see of a run: input, memo, search attributes, summary and details. */
async function runShape(workflowId: string) {
  const described = await stack.client.temporal.workflow.getHandle(workflowId).describe();
  const { history } = await stack.client.temporal.workflowService.getWorkflowExecutionHistory({
    namespace: stack.config.temporalNamespace,
    execution: { workflowId, runId: described.runId },
    maximumPageSize: 1,
  });
  const started = history!.events![0].workflowExecutionStartedEventAttributes!;
  const converter = stack.client.temporal.options.loadedDataConverter.payloadConverter;
  return {
    type: described.type,
    taskQueue: described.taskQueue,
    input: converter.fromPayload(started.input!.payloads![0]) as Record<string, unknown>,
    memo: described.memo,
    searchAttributes: Object.fromEntries(Object.values(SEARCH_ATTRIBUTES).map((k) => [k.name, described.typedSearchAttributes.get(k)])),
    summary: (await described.staticSummary()) ?? null,
    details: (await described.staticDetails()) ?? null,
  };
}

test('the stack has an HTTP API to test against', () => {
  expect(stack.config.temporalHttpUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
});

test('a put started over HTTP is the same run the SDK starts, and its result comes back over HTTP', async () => {
  const { starter, transport } = overHttp();
  const viaHttp = await starter.put('docs', 'same/a.txt', { content: 'alpha' }, { idempotencyKey: 'http-shape-1' });
  expect(transport.lastStartOverHttp).toBe(true);
  const result = await viaHttp.result();
  expect(transport.lastResultOverHttp).toBe(true);
  expect(result).toMatchObject({ status: 'COMMITTED', op: 'write', mountId: 'docs', path: 'same/a.txt', bytesWritten: 5, workflowId: viaHttp.workflowId });
  expect(await fs.readFile(path.join(root, 'same/a.txt'), 'utf8')).toBe('alpha');

  const viaSdk = await stack.client.put('docs', 'same/a.txt', { content: 'alpha' }, { idempotencyKey: 'http-shape-2', overwrite: true });
  await viaSdk.result();
  const [h, s] = await Promise.all([runShape(viaHttp.workflowId), runShape(viaSdk.workflowId)]);
  // Identical but for what differs by construction: the key (and with it the fingerprint) and the overwrite flag.
  expect(h.type).toBe(s.type);
  expect(h.taskQueue).toBe(s.taskQueue);
  expect(h.input).toEqual({ ...s.input, idempotencyKey: 'http-shape-1', overwrite: undefined });
  expect(Object.keys(h.memo ?? {})).toEqual([FINGERPRINT_MEMO_KEY]);
  expect(typeof h.memo![FINGERPRINT_MEMO_KEY]).toBe('string');
  expect(h.searchAttributes).toEqual({ ...s.searchAttributes, FilestoreKey: 'http-shape-1', FilestoreStatus: 'COMMITTED' });
  expect(s.searchAttributes.FilestoreStatus).toBe('COMMITTED');
  expect(h.summary).toBe(s.summary);
  expect(h.details).toBe(s.details!.replace('http-shape-2', 'http-shape-1'));
});

test('the same key again joins the same request, and is refused for another one', async () => {
  const { starter } = overHttp();
  const first = await starter.put('docs', 'keys/k.txt', { content: 'one' }, { idempotencyKey: 'http-key' });
  // Started again at once (the first run may still be going: ALREADY_STARTED, handed to gRPC, joined).
  const again = await starter.put('docs', 'keys/k.txt', { content: 'one' }, { idempotencyKey: 'http-key' });
  const [r1, r2] = await Promise.all([first.result(), again.result()]);
  expect(r2.journalId).toBe(r1.journalId);
  await expect(starter.put('docs', 'keys/other.txt', { content: 'one' }, { idempotencyKey: 'http-key' }).then((h) => h.result())).rejects.toBeInstanceOf(IdempotencyKeyReusedError);
  expect(await stack.client.getNode('docs', 'keys/other.txt')).toBeNull();
});

test('a failed mutation rejects with its typed error, read through the gRPC client', async () => {
  const { starter } = overHttp();
  await (await starter.put('docs', 'fail/x.txt', { content: 'first' })).result();
  const err = await (await starter.put('docs', 'fail/x.txt', { content: 'second' })).result().catch((e: unknown) => e);
  expect(err).toBeInstanceOf(AlreadyExistsError);
  expect(await fs.readFile(path.join(root, 'fail/x.txt'), 'utf8')).toBe('first');
});

test('no HTTP API at the URL: the start is made over gRPC, with the same result', async () => {
  const { starter, transport } = overHttp('http://127.0.0.1:1');
  const result = await (await starter.mkdir('docs', 'fallback/dir')).result();
  expect(transport.lastStartOverHttp).toBe(false);
  expect(result).toMatchObject({ status: 'COMMITTED', op: 'mkdir', path: 'fallback/dir' });
  expect((await fs.stat(path.join(root, 'fallback/dir'))).isDirectory()).toBe(true);
});

test('filestore put and rm (the CLI, over the HTTP API) print the committed results and exit 0; a refusal exits with its code\'s exit code (ERROR_STATUS)', async () => {
  const src = path.join(stack.tmp, 'cli-http.txt');
  await fs.writeFile(src, 'from the cli');
  const env = stackEnv(stack.config);
  expect(env.FILESTORE_TEMPORAL_HTTP_URL).toBe(stack.config.temporalHttpUrl);
  const put = await run(process.execPath, [FILESTORE_BIN, 'put', src, 'docs:cli/file.txt', '--json'], { env });
  expect(JSON.parse(put.stdout.trim().split('\n').at(-1)!)).toMatchObject({ status: 'COMMITTED', path: 'cli/file.txt', bytesWritten: 12 });
  const refused = await run(process.execPath, [FILESTORE_BIN, 'put', src, 'docs:cli/file.txt'], { env }).catch((e: { code: number; stderr: string }) => e);
  expect((refused as { code: number }).code).toBe(5); // ALREADY_EXISTS
  expect((refused as { stderr: string }).stderr).toMatch(/ALREADY_EXISTS/);
  await run(process.execPath, [FILESTORE_BIN, 'rm', 'docs:cli/file.txt'], { env });
  expect((await stack.client.getNode('docs', 'cli/file.txt'))?.state ?? 'DELETED').toBe('DELETED');
}, 60_000);
