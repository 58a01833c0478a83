/**
 * The HTTP start path's encoding (src/client/temporal-http.ts) against the Temporal SDK's own: a
 * run started over HTTP must carry byte-for-byte the payloads the gRPC client would send, or the
 * workflow, the Web UI and the fingerprint check would read it differently. And where the CLI looks
 * for the HTTP API (temporalHttpUrlOf).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { encodeUnifiedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes';
import { decodeJsonPayload, jsonPayload, startBody } from '../../src/client/temporal-http';
import { devTemporalHttpFile, loadConfig, temporalHttpUrlOf } from '../../src/config';
import { SEARCH_ATTRIBUTES } from '../../src/search-attributes';

/** A proto Payload as protobuf JSON writes it: bytes as base64. */
function asJson(p: Payload): { metadata: Record<string, string>; data: string } {
  return {
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v as Uint8Array).toString('base64')])),
    data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
  };
}

const request = { idempotencyKey: 'k-1', mountId: 'docs', op: 'write' as const, path: 'a/ü b.txt', source: { kind: 'inline' as const, base64: 'aGk=' }, createParents: true };

test.each<[string, unknown]>([
  ['a request', request],
  ['a string', 'write docs:a/ü b.txt'],
  ['a number', 42],
  ['null', null],
])('jsonPayload(%s) is what the SDK payload converter writes', (_what, value) => {
  expect(jsonPayload(value)).toEqual(asJson(defaultPayloadConverter.toPayload(value)));
});

test('search attributes carry the SDK\'s Keyword encoding', () => {
  const sdk = encodeUnifiedSearchAttributes(undefined, [{ key: SEARCH_ATTRIBUTES.mount, value: 'docs' }]);
  expect(jsonPayload('docs', 'Keyword')).toEqual(asJson(sdk.FilestoreMount));
});

test('decodeJsonPayload reads json/plain back, and nothing else', () => {
  expect(decodeJsonPayload(jsonPayload(request))).toEqual({ value: request });
  expect(decodeJsonPayload(asJson(defaultPayloadConverter.toPayload(undefined)))).toBeUndefined();
  expect(decodeJsonPayload(undefined)).toBeUndefined();
});

test('startBody: the start the gRPC client makes (policies, queue, memo, search attributes, summary)', () => {
  const spec = {
    workflowId: 'filestore:docs:write:k-1',
    taskQueue: 'filestore',
    request,
    fingerprint: 'f',
    memo: { filestoreRequestSha256: 'f' },
    searchAttributes: { FilestoreMount: 'docs' },
    summary: 'write docs:a/ü b.txt',
    details: 'd',
  };
  const body = startBody(spec, 'default', 'me');
  expect(body).toMatchObject({
    namespace: 'default',
    workflowId: 'filestore:docs:write:k-1',
    workflowType: { name: 'mutationWorkflow' },
    taskQueue: { name: 'filestore', kind: 'TASK_QUEUE_KIND_NORMAL' },
    input: { payloads: [jsonPayload(request)] },
    workflowIdReusePolicy: 'WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE',
    workflowIdConflictPolicy: 'WORKFLOW_ID_CONFLICT_POLICY_FAIL',
    memo: { fields: { filestoreRequestSha256: jsonPayload('f') } },
    searchAttributes: { indexedFields: { FilestoreMount: jsonPayload('docs', 'Keyword') } },
    userMetadata: { summary: jsonPayload('write docs:a/ü b.txt'), details: jsonPayload('d') },
  });
  // Each start is its own request to the server.
  expect(startBody(spec, 'default', 'me').requestId).not.toBe(body.requestId);
});

describe('temporalHttpUrlOf', () => {
  let stateDir: string;
  beforeEach(() => {
    stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'filestore-http-url-'));
  });
  afterEach(() => fs.rmSync(stateDir, { recursive: true, force: true }));
  const of = (env: Record<string, string>) => temporalHttpUrlOf(loadConfig({ FILESTORE_STATE_DIR: stateDir, ...env }));
  const record = (r: Record<string, unknown>) => fs.writeFileSync(devTemporalHttpFile({ stateDir }), JSON.stringify(r));

  test('nothing set and no dev server recorded: gRPC only (no port is guessed)', () => expect(of({})).toBeNull());
  test('the dev server filestore dev started, while its process lives, for the address it serves', () => {
    record({ url: 'http://127.0.0.1:40123', pid: process.pid, temporalAddress: '127.0.0.1:7233' });
    expect(of({})).toBe('http://127.0.0.1:40123');
    // Another server configured: the record is not about it.
    expect(of({ TEMPORAL_ADDRESS: 'temporal.internal:7233' })).toBeNull();
  });
  test('a record whose dev server is gone is void', () => {
    const gone = spawnSync(process.execPath, ['-e', '0']).pid!;
    record({ url: 'http://127.0.0.1:40123', pid: gone, temporalAddress: '127.0.0.1:7233' });
    expect(of({})).toBeNull();
  });
  test('a malformed record is ignored', () => {
    for (const bad of [{ url: 'http://evil/path', pid: process.pid, temporalAddress: '127.0.0.1:7233' }, { url: 'http://127.0.0.1:1', temporalAddress: '127.0.0.1:7233' }]) {
      record(bad);
      expect(of({})).toBeNull();
    }
    fs.writeFileSync(devTemporalHttpFile({ stateDir }), 'not json');
    expect(of({})).toBeNull();
  });
  test('set explicitly: used as set, whatever is recorded', () => {
    record({ url: 'http://127.0.0.1:40123', pid: process.pid, temporalAddress: '127.0.0.1:7233' });
    expect(of({ FILESTORE_TEMPORAL_HTTP_URL: 'http://temporal.internal:7243' })).toBe('http://temporal.internal:7243');
    expect(of({ FILESTORE_TEMPORAL_HTTP_URL: 'off' })).toBeNull();
  });
  test('anything but http://host:port is a configuration error', () => {
    for (const bad of ['https://x:7243', 'ftp://x', 'http://x:7243/api', 'localhost:7243', 'http://h:99999', 'http://:7243', 'http://h :1', 'http://u:p@h:1', 'http://h:1/?q', 'http://h:1/#f', 'http:\\\\h:1']) {
      expect(() => of({ FILESTORE_TEMPORAL_HTTP_URL: bad })).toThrow(/FILESTORE_TEMPORAL_HTTP_URL/);
    }
    expect(of({ FILESTORE_TEMPORAL_HTTP_URL: 'http://[::1]:7243' })).toBe('http://[::1]:7243');
  });
});
