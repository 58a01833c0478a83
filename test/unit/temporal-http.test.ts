/**
 * The HTTP start path's encoding (src/client/temporal-http.ts) against the Temporal SDK's own: a
 * run started over HTTP must carry byte-for-byte the payloads the gRPC client would send, or the
 * workflow, the Web UI and the fingerprint check would read it differently. And where the CLI looks
 * for the HTTP API (temporalHttpUrlOf).
 */
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { encodeUnifiedSearchAttributes } from '@temporalio/common/lib/converter/payload-search-attributes';
import { decodeJsonPayload, jsonPayload, startBody } from '../../src/client/temporal-http';
import { loadConfig, temporalHttpUrlOf } from '../../src/config';
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
  const of = (env: Record<string, string>) => temporalHttpUrlOf(loadConfig(env));
  test('nothing set: the dev server\'s HTTP API beside the default address', () => expect(of({})).toBe('http://127.0.0.1:7243'));
  test('TEMPORAL_ADDRESS set elsewhere: never guessed', () => expect(of({ TEMPORAL_ADDRESS: 'temporal.internal:7233' })).toBeNull());
  test('set explicitly: used as set', () => expect(of({ TEMPORAL_ADDRESS: 'temporal.internal:7233', FILESTORE_TEMPORAL_HTTP_URL: 'http://temporal.internal:7243' })).toBe('http://temporal.internal:7243'));
  test('off: gRPC only', () => expect(of({ FILESTORE_TEMPORAL_HTTP_URL: 'off' })).toBeNull());
  test('anything else is a configuration error', () => {
    for (const bad of ['https://x:7243', 'ftp://x', 'http://x:7243/api', 'localhost:7243']) expect(() => of({ FILESTORE_TEMPORAL_HTTP_URL: bad })).toThrow(/FILESTORE_TEMPORAL_HTTP_URL/);
  });
});
