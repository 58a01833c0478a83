/**
 * The S3 error table (src/executors/s3/s3-errors.ts): SDK-shaped failures → typed errors, and the
 * client middleware that counts each failed request once. Pure logic: errors are built the way the
 * SDK builds them (name / Code, $metadata.httpStatusCode, a Node `code`, a message), and the
 * counting test drives a real S3Client over an in-process request handler (no network).
 */
import { Readable } from 'node:stream';
import { HeadObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { FilestoreError } from '../../src/errors';
import {
  countS3RequestErrors,
  httpStatusOf,
  isAbortError,
  isNoSuchUpload,
  isNotFound,
  isPreconditionFailed,
  mapS3Error,
  s3ErrorCode,
  s3ErrorLabel,
} from '../../src/executors/s3/s3-errors';
import { registry } from '../../src/metrics';

/** A service error as the SDK throws it: name and Code from the XML body, the HTTP status in $metadata. */
function s3Err(code: string | undefined, status: number, message = `${code ?? status} from S3`): Error {
  return Object.assign(new Error(message), {
    name: code ?? 'Unknown',
    ...(code ? { Code: code } : {}),
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status, requestId: 'r', attempts: 4 },
  });
}
/** A Node network error (no response at all). */
const netErr = (code: string, message = `read ${code}`): Error => Object.assign(new Error(message), { code });
/** What the SDK's retry middleware makes of a socket error from another realm (Jest): the code is gone, the text keeps it. */
const wrapped = (inner: string): Error => new Error(`AWS SDK error wrapper for ${inner}`);

const ctx = { bucket: 'b', mountId: 'm', key: 'pre/a.txt' };
function mapped(err: unknown, opts?: Parameters<typeof mapS3Error>[2]): { code?: string; retryable?: boolean; message?: string; details?: Record<string, unknown> } {
  const out = mapS3Error(err, ctx, opts);
  return out instanceof FilestoreError ? { code: out.code, retryable: out.retryable, message: out.message, details: out.details } : { code: undefined };
}

describe('classification', () => {
  const rows: Array<[string, Error, string, boolean]> = [
    // [what S3 said, the error, code, retryable]
    ['NoSuchBucket 404', s3Err('NoSuchBucket', 404), 'BUCKET_NOT_FOUND', false],
    ['InvalidAccessKeyId 403', s3Err('InvalidAccessKeyId', 403), 'INVALID_CREDENTIALS', false],
    ['SignatureDoesNotMatch 403', s3Err('SignatureDoesNotMatch', 403), 'INVALID_CREDENTIALS', false],
    ['ExpiredToken 400', s3Err('ExpiredToken', 400), 'INVALID_CREDENTIALS', false],
    ['AccessDenied 403', s3Err('AccessDenied', 403), 'ACCESS_DENIED', false],
    ['HEAD 403 without a body', s3Err(undefined, 403), 'ACCESS_DENIED', false],
    ['PreconditionFailed 412', s3Err('PreconditionFailed', 412), 'PRECONDITION_FAILED', false],
    ['412 without a body', s3Err(undefined, 412), 'PRECONDITION_FAILED', false],
    ['NoSuchKey 404', s3Err('NoSuchKey', 404), 'NOT_FOUND', false],
    ['HEAD 404 NotFound', s3Err('NotFound', 404), 'NOT_FOUND', false],
    ['404 without a body', s3Err(undefined, 404), 'NOT_FOUND', false],
    ['NoSuchUpload 404', s3Err('NoSuchUpload', 404), 'NOT_FOUND', false],
    ['InvalidStorageClass 400', s3Err('InvalidStorageClass', 400), 'INVALID_REQUEST', false],
    ['InvalidArgument 400', s3Err('InvalidArgument', 400), 'INVALID_REQUEST', false],
    ['InvalidPart 400', s3Err('InvalidPart', 400), 'INVALID_REQUEST', false],
    ['NotImplemented 501 (a code beats its 5xx status)', s3Err('NotImplemented', 501), 'INVALID_REQUEST', false],
    ['an unknown 4xx', s3Err('SomethingNew', 409), 'INVALID_REQUEST', false],
    ['KeyTooLongError 400', s3Err('KeyTooLongError', 400), 'KEY_TOO_LONG', false],
    ['EntityTooLarge 400', s3Err('EntityTooLarge', 400), 'BACKEND_LIMIT', false],
    ['SlowDown 503', s3Err('SlowDown', 503), 'BACKEND_IO', true],
    ['ServiceUnavailable 503', s3Err('ServiceUnavailable', 503), 'BACKEND_IO', true],
    ['InternalError 500', s3Err('InternalError', 500), 'BACKEND_IO', true],
    ['a bare 500', s3Err(undefined, 500), 'BACKEND_IO', true],
    ['a bare 503', s3Err(undefined, 503), 'BACKEND_IO', true],
    ['429', s3Err(undefined, 429), 'BACKEND_IO', true],
    ['RequestTimeout 400', s3Err('RequestTimeout', 400), 'BACKEND_IO', true],
    ['BadDigest 400 (bytes changed in flight)', s3Err('BadDigest', 400), 'BACKEND_IO', true],
    ['ECONNRESET', netErr('ECONNRESET'), 'BACKEND_IO', true],
    ['ETIMEDOUT', netErr('ETIMEDOUT'), 'BACKEND_IO', true],
    ['EPIPE', netErr('EPIPE', 'write EPIPE'), 'BACKEND_IO', true],
    ['socket hang up (Node gives it ECONNRESET)', netErr('ECONNRESET', 'socket hang up'), 'BACKEND_IO', true],
    ['the idle socket timeout', Object.assign(new Error('the request socket timed out after 60000 ms of inactivity'), { name: 'TimeoutError' }), 'BACKEND_IO', true],
    ['a wrapped ECONNRESET', wrapped('Error: read ECONNRESET'), 'BACKEND_IO', true],
    ['a wrapped socket hang up', wrapped('Error: socket hang up'), 'BACKEND_IO', true],
    ['a wrapped unknown socket failure', wrapped('Error: something odd'), 'BACKEND_IO', true],
  ];
  test.each(rows.map(([label, err, code, retryable]) => [label, code, err, retryable] as const))('%s → %s', (_label, code, err, retryable) => {
    expect(mapped(err)).toMatchObject({ code, retryable });
  });

  test('details name the bucket, the S3 code and status, and the SDK error is kept as a hidden cause', () => {
    const err = s3Err('SlowDown', 503, 'Please reduce your request rate.');
    const out = mapS3Error(err, { ...ctx, uploadId: 'u1' }) as FilestoreError;
    expect(out.details).toEqual({ bucket: 'b', mountId: 'm', uploadId: 'u1', s3Code: 'SlowDown', httpStatus: 503 });
    expect(out.message).toContain('Please reduce your request rate.');
    expect(out.message).toContain('"pre/a.txt"');
    expect((out as { cause?: unknown }).cause).toBe(err);
    expect(JSON.stringify(out.toJSON())).not.toContain('requestId');
  });

  test('what names the request in the message; a missing bucket names the bucket', () => {
    expect((mapS3Error(s3Err('AccessDenied', 403), { bucket: 'b', what: 'listing of "x"' }) as Error).message).toContain('listing of "x"');
    expect(mapped(s3Err('NoSuchBucket', 404)).details).toMatchObject({ bucket: 'b' });
  });

  test('a caller that recovers on retry maps its codes as retryable; only S3 answers, and only those codes', () => {
    const opts = { retryableCodes: ['NoSuchUpload', 'InvalidPart'] };
    expect(mapped(s3Err('NoSuchUpload', 404), opts)).toMatchObject({ code: 'BACKEND_IO', retryable: true });
    expect(mapped(s3Err('InvalidPart', 400), opts)).toMatchObject({ code: 'BACKEND_IO', retryable: true });
    expect(mapped(s3Err('NoSuchKey', 404), opts)).toMatchObject({ code: 'NOT_FOUND', retryable: false });
    expect(mapped(s3Err('AccessDenied', 403), opts)).toMatchObject({ code: 'ACCESS_DENIED' });
  });

  test('what is not an S3 failure passes through unchanged', () => {
    const typed = new FilestoreError('SOURCE_CHANGED', 'x');
    expect(mapS3Error(typed, ctx)).toBe(typed);
    const bug = new TypeError('x is undefined');
    expect(mapS3Error(bug, ctx)).toBe(bug);
    const enoent = Object.assign(new Error('no such file'), { code: 'ENOENT' });
    expect(mapS3Error(enoent, ctx)).toBe(enoent);
    const fence = Object.assign(new Error('fence lost'), { code: 'FENCE_LOST', retryable: true });
    expect(mapS3Error(fence, ctx)).toBe(fence);
    const abort = Object.assign(new Error('Request aborted'), { name: 'AbortError' });
    expect(mapS3Error(abort, ctx)).toBe(abort);
    // Credentials that could not be loaded never reach S3 (no $metadata) but are still ours.
    expect(mapped(Object.assign(new Error('Could not load credentials'), { name: 'CredentialsProviderError' }))).toMatchObject({ code: 'INVALID_CREDENTIALS' });
  });
});

describe('predicates and codes', () => {
  test('s3ErrorCode: Code, a Node code, a wrapped code, a meaningful name', () => {
    expect(s3ErrorCode(s3Err('SlowDown', 503))).toBe('SlowDown');
    expect(s3ErrorCode(s3Err(undefined, 403))).toBeUndefined();
    expect(s3ErrorCode(Object.assign(new Error('x'), { name: '403', $metadata: { httpStatusCode: 403 } }))).toBeUndefined();
    expect(s3ErrorCode(netErr('ECONNRESET'))).toBe('ECONNRESET');
    expect(s3ErrorCode(netErr('ERR_STREAM_PREMATURE_CLOSE', 'Premature close'))).toBe('ERR_STREAM_PREMATURE_CLOSE');
    expect(s3ErrorCode(wrapped('Error: read ECONNRESET'))).toBe('ECONNRESET');
    expect(s3ErrorCode(wrapped('Error: connect ETIMEDOUT 10.0.0.1:9000'))).toBe('ETIMEDOUT');
    expect(s3ErrorCode(wrapped('Error: socket hang up'))).toBe('ECONNRESET');
    expect(s3ErrorCode(new FilestoreError('NOT_FOUND', 'x'))).toBeUndefined();
    expect(s3ErrorCode(Object.assign(new Error('x'), { name: 'AbortError' }))).toBeUndefined();
    expect(s3ErrorCode(null)).toBeUndefined();
    expect(s3ErrorCode('boom')).toBeUndefined();
  });

  test('metric labels: the code, else HTTP<status>, else unknown', () => {
    expect(s3ErrorLabel(s3Err('SlowDown', 503))).toBe('SlowDown');
    expect(s3ErrorLabel(s3Err(undefined, 403))).toBe('HTTP403');
    expect(s3ErrorLabel(new Error('?'))).toBe('unknown');
  });

  test('isNotFound: any 404 but a missing bucket', () => {
    for (const c of ['NoSuchKey', 'NotFound', 'NoSuchUpload', 'NoSuchVersion']) expect(isNotFound(s3Err(c, 404))).toBe(true);
    expect(isNotFound(s3Err(undefined, 404))).toBe(true);
    expect(isNotFound(s3Err('NoSuchBucket', 404))).toBe(false);
    expect(isNotFound(s3Err('AccessDenied', 403))).toBe(false);
  });

  test('isNoSuchUpload: the upload, not a key', () => {
    expect(isNoSuchUpload(s3Err('NoSuchUpload', 404))).toBe(true);
    expect(isNoSuchUpload(s3Err('NotFound', 404))).toBe(true);
    expect(isNoSuchUpload(s3Err('NoSuchKey', 404))).toBe(false);
    expect(isNoSuchUpload(s3Err('SlowDown', 503))).toBe(false);
  });

  test('isPreconditionFailed: raw 412 or already typed', () => {
    expect(isPreconditionFailed(s3Err('PreconditionFailed', 412))).toBe(true);
    expect(isPreconditionFailed(s3Err(undefined, 412))).toBe(true);
    expect(isPreconditionFailed(mapS3Error(s3Err('PreconditionFailed', 412), ctx))).toBe(true);
    expect(isPreconditionFailed(s3Err('NoSuchKey', 404))).toBe(false);
  });

  test('httpStatusOf and isAbortError', () => {
    expect(httpStatusOf(s3Err('SlowDown', 503))).toBe(503);
    expect(httpStatusOf(netErr('ECONNRESET'))).toBeUndefined();
    expect(isAbortError(Object.assign(new Error('x'), { name: 'AbortError' }))).toBe(true);
    expect(isAbortError(s3Err('SlowDown', 503))).toBe(false);
  });
});

describe('counting failed requests (filestore_s3_request_errors_total)', () => {
  async function count(code: string): Promise<number> {
    const m = (await registry.getMetricsAsJSON()).find((x) => x.name === 'filestore_s3_request_errors_total');
    return Number(m?.values.find((v) => v.labels.code === code)?.value ?? 0);
  }

  /** A real S3Client whose transport is `handle` (no network): the SDK's retries and error parsing run as usual. */
  function clientWith(handle: () => Promise<unknown>, maxAttempts = 3): { client: S3Client; calls: () => number } {
    let calls = 0;
    const client = new S3Client({
      region: 'us-east-1',
      endpoint: 'http://s3.test',
      forcePathStyle: true,
      credentials: { accessKeyId: 'k', secretAccessKey: 's' },
      maxAttempts,
      retryMode: 'standard',
      requestHandler: {
        handle: async () => {
          calls++;
          return handle();
        },
      } as never,
    });
    return { client: countS3RequestErrors(client), calls: () => calls };
  }
  const response = (statusCode: number) => ({ response: { statusCode, headers: {}, body: Readable.from([]) } });

  test('a request that fails after the SDK retried it counts once, under its code', async () => {
    const { client, calls } = clientWith(async () => {
      throw netErr('ECONNRESET');
    }, 2);
    const before = await count('ECONNRESET');
    await expect(client.send(new HeadObjectCommand({ Bucket: 'b', Key: 'k' }))).rejects.toMatchObject({ code: 'ECONNRESET' });
    expect(calls()).toBe(2);
    expect(await count('ECONNRESET')).toBe(before + 1);
  });

  test('a 404 counts once; instrumenting twice does not count twice; a success counts nothing', async () => {
    let status = 404;
    const { client } = clientWith(async () => response(status));
    countS3RequestErrors(client);
    const before = await count('NotFound');
    await expect(client.send(new HeadObjectCommand({ Bucket: 'b', Key: 'k' }))).rejects.toMatchObject({ name: 'NotFound' });
    expect(await count('NotFound')).toBe(before + 1);
    status = 200;
    await client.send(new HeadObjectCommand({ Bucket: 'b', Key: 'k' }));
    expect(await count('NotFound')).toBe(before + 1);
  });

  test('an aborted request is not a failure', async () => {
    const { client } = clientWith(async () => {
      throw Object.assign(new Error('Request aborted'), { name: 'AbortError' });
    });
    const before = await count('AbortError');
    const unknown = await count('unknown');
    const ac = new AbortController();
    ac.abort();
    await expect(client.send(new HeadObjectCommand({ Bucket: 'b', Key: 'k' }), { abortSignal: ac.signal })).rejects.toBeDefined();
    expect(await count('AbortError')).toBe(before);
    expect(await count('unknown')).toBe(unknown);
  });
});
