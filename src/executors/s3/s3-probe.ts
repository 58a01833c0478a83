/**
 * `mount add --s3` asks the bucket before anything is registered: a typo'd bucket, missing or
 * wrong credentials, or a policy that refuses listing fail there, in one typed line, with nothing
 * written — instead of at the mount's first mutation.
 *
 * HeadBucket answers a refusal with a bare status (403 says neither "wrong key" nor "denied"), so
 * an unclear answer is asked again with a one-key ListObjectsV2 under the mount's prefix, whose
 * error body names the cause — and which succeeds where a policy grants listing only there.
 */
import { HeadBucketCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { AccessDeniedError, BucketNotFoundError, FilestoreError, InvalidCredentialsError, InvalidRequestError, MountUnavailableError } from '../../errors';
import type { MountSpec, S3Location } from '../executor';
import { createS3Client, type S3ClientDefaults } from './s3-client';
import { listPrefixOf } from './s3-keys';

const AUTH_CODES = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'TokenRefreshRequired', 'InvalidClientTokenId']);
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ENOTFOUND', 'EAI_AGAIN', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EPIPE']);

interface SdkError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

/** A probe failure as the typed error `mount add` prints. */
function typed(err: unknown, spec: MountSpec, loc: S3Location, where: string): FilestoreError {
  if (err instanceof FilestoreError) return err;
  const e = (err ?? {}) as SdkError;
  const name = e.name ?? '';
  const status = e.$metadata?.httpStatusCode;
  const details = { mountId: spec.id, bucket: loc.bucket, endpoint: where };
  if (name === 'CredentialsProviderError' || /could not load credentials/i.test(e.message ?? '')) {
    return new InvalidCredentialsError(
      `no AWS credentials for ${loc.profile ? `profile ${JSON.stringify(loc.profile)}` : 'the default provider chain'} (environment, shared config, container or instance role): ${e.message}`,
      details,
    );
  }
  if (/region is missing/i.test(e.message ?? '')) return new InvalidRequestError(`no AWS region for bucket ${JSON.stringify(loc.bucket)}: pass --region or set AWS_REGION`, details);
  if (name === 'NotFound' || name === 'NoSuchBucket' || status === 404) return new BucketNotFoundError(loc.bucket, details);
  if (AUTH_CODES.has(name)) return new InvalidCredentialsError(`${where} refused the credentials (${name})${loc.profile ? ` of profile ${JSON.stringify(loc.profile)}` : ''}`, details);
  if (name === 'AccessDenied' || name === 'AllAccessDisabled' || name === 'Forbidden' || status === 403) return new AccessDeniedError(`listing bucket ${JSON.stringify(loc.bucket)} at ${where}`, details);
  // Where the SDK could not keep the socket error (it wraps a non-Error value), only its message names the code.
  const network = [e.code, name, /\b(E[A-Z]{4,})\b/.exec(e.message ?? '')?.[1]].find((c) => c !== undefined && NETWORK_CODES.has(c));
  if (network || name === 'TimeoutError') return new MountUnavailableError(spec.id, `cannot reach ${where} (${network ?? name})`);
  return new InvalidRequestError(`checking bucket ${JSON.stringify(loc.bucket)} at ${where} failed: ${name || 'error'}${status ? ` (HTTP ${status})` : ''}${e.message ? `: ${e.message}` : ''}`, details);
}

/**
 * Checks that an S3 mount's bucket exists and that the credentials the worker will use may list
 * it (HeadBucket, then — when its answer is a bare refusal — ListObjectsV2 of one key under the
 * prefix). Makes no change.
 *
 * @throws BucketNotFoundError, InvalidCredentialsError, AccessDeniedError, MountUnavailableError
 *   (server unreachable; retryable), InvalidRequestError (anything else, with S3's code).
 */
export async function probeS3Mount(spec: MountSpec, defaults: S3ClientDefaults = {}): Promise<void> {
  const loc = spec.s3;
  if (!loc) throw new InvalidRequestError(`mount ${JSON.stringify(spec.id)} is not an S3 mount`);
  const where = loc.endpoint ?? defaults.endpoint ?? 'AWS S3';
  // The worker's own client (same endpoint, addressing, region and credential rules), with few retries: a person waits.
  const client = createS3Client(loc, { maxAttempts: 2, ...defaults });
  try {
    await client.send(new HeadBucketCommand({ Bucket: loc.bucket }));
  } catch (err) {
    const first = typed(err, spec, loc, where);
    // A bare 403/400 from HEAD carries no code: ask a request whose error body says which it is.
    if (first.code !== 'ACCESS_DENIED' && first.code !== 'INVALID_REQUEST') throw first;
    try {
      await client.send(new ListObjectsV2Command({ Bucket: loc.bucket, Prefix: listPrefixOf(loc.prefix, '') || undefined, MaxKeys: 1 }));
    } catch (again) {
      throw typed(again, spec, loc, where);
    }
    // Listing under the prefix works (a policy scoped to it can refuse HEAD on the bucket): the mount can work.
  } finally {
    client.destroy();
  }
}
