/**
 * Validation of an S3 mount's location and write settings, before anything reaches the catalog:
 * every refusal is an INVALID_REQUEST with one line that names the value and what would be
 * accepted. Credentials are never part of a location — they come from the AWS provider chain
 * (env, shared config / `profile`, container or instance role) where the worker runs.
 */
import { InvalidRequestError } from '../errors';
import type { S3Location } from '../executors/executor';
import { STAGING_DIR } from '../paths';

/** Storage classes S3 accepts in `x-amz-storage-class`. */
export const S3_STORAGE_CLASSES = [
  'STANDARD',
  'REDUCED_REDUNDANCY',
  'STANDARD_IA',
  'ONEZONE_IA',
  'INTELLIGENT_TIERING',
  'GLACIER',
  'DEEP_ARCHIVE',
  'GLACIER_IR',
  'OUTPOSTS',
  'EXPRESS_ONEZONE',
] as const;
export type S3StorageClass = (typeof S3_STORAGE_CLASSES)[number];

/** S3's canned ACLs (`x-amz-acl`). */
export const S3_CANNED_ACLS = [
  'private',
  'public-read',
  'public-read-write',
  'authenticated-read',
  'aws-exec-read',
  'bucket-owner-read',
  'bucket-owner-full-control',
  'log-delivery-write',
] as const;
export type S3CannedAcl = (typeof S3_CANNED_ACLS)[number];

export const S3_SSE_MODES = ['AES256', 'aws:kms'] as const;

/**
 * Longest mount prefix, in UTF-8 bytes. A key is at most 1,024 bytes; what is left after the
 * prefix must hold the mount's paths and its staging keys (`.filestore-staging/<uuid>/…`).
 */
export const MAX_S3_PREFIX_BYTES = 900;

/** What `mount add --s3` (or the API) asks for, before validation. */
export interface S3LocationInput {
  bucket: string;
  prefix?: string | null;
  endpoint?: string | null;
  region?: string | null;
  pathStyle?: boolean;
  profile?: string | null;
  storageClass?: string | null;
  acl?: string | null;
  sse?: string | null;
  kmsKeyId?: string | null;
}

const invalid = (message: string, details: Record<string, unknown> = {}) => new InvalidRequestError(message, details);
const empty = (v: string | null | undefined): v is null | undefined => v === undefined || v === null || v === '';

/**
 * S3's bucket naming rules (general-purpose buckets; S3 Express directory buckets, which end in
 * `--x-s3`, pass too): 3–63 characters of a–z, 0–9, '.' and '-', starting and ending with a letter
 * or digit, no '..', not an IP address, and none of the prefixes and suffixes AWS reserves.
 */
export function assertBucketName(bucket: unknown): string {
  if (typeof bucket !== 'string' || bucket === '') throw invalid('an S3 mount needs a bucket name');
  const bad = (why: string) => invalid(`bucket name ${JSON.stringify(bucket)} is not valid: ${why}`, { bucket });
  if (bucket.length < 3 || bucket.length > 63) throw bad('it must be 3 to 63 characters long');
  if (!/^[a-z0-9.-]+$/.test(bucket)) throw bad("only lower-case letters, digits, '.' and '-' are allowed");
  if (!/^[a-z0-9]/.test(bucket) || !/[a-z0-9]$/.test(bucket)) throw bad('it must begin and end with a letter or digit');
  if (bucket.includes('..')) throw bad("it may not contain '..'");
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(bucket)) throw bad('it may not look like an IP address');
  for (const p of ['xn--', 'sthree-']) if (bucket.startsWith(p)) throw bad(`the prefix '${p}' is reserved by AWS`);
  for (const s of ['-s3alias', '--ol-s3', '.mrap']) if (bucket.endsWith(s)) throw bad(`the suffix '${s}' is reserved by AWS`);
  return bucket;
}

/**
 * A mount prefix in canonical form: leading and trailing '/' dropped ('' = the whole bucket).
 * Refuses what would make keys ambiguous or unreachable: empty segments ('a//b'), '.' and '..'
 * segments, NUL and other control characters, Filestore's staging folder name, and more than
 * {@link MAX_S3_PREFIX_BYTES} bytes.
 */
export function normalizeS3Prefix(prefix: unknown): string {
  if (prefix === undefined || prefix === null) return '';
  if (typeof prefix !== 'string') throw invalid(`S3 prefix must be a string, got ${typeof prefix}`);
  const shown = JSON.stringify(prefix.replace(/\0/g, '\\0'));
  if (/[\x00-\x1f\x7f]/.test(prefix)) throw invalid(`S3 prefix ${shown} contains a NUL or control character`, { prefix });
  const p = prefix.replace(/^\/+/, '').replace(/\/+$/, '');
  if (p === '') return '';
  for (const segment of p.split('/')) {
    if (segment === '') throw invalid(`S3 prefix ${shown} has an empty segment ('//')`, { prefix });
    if (segment === '.' || segment === '..') throw invalid(`S3 prefix ${shown} has a '${segment}' segment`, { prefix });
    if (segment === STAGING_DIR) throw invalid(`S3 prefix ${shown} names Filestore's staging folder ${STAGING_DIR}`, { prefix });
  }
  const bytes = Buffer.byteLength(p, 'utf8');
  if (bytes > MAX_S3_PREFIX_BYTES) {
    throw invalid(`S3 prefix is ${bytes} bytes; at most ${MAX_S3_PREFIX_BYTES} leave room for paths within S3's 1,024-byte keys`, { bytes });
  }
  return p;
}

/**
 * An endpoint URL in canonical form (`http(s)://host[:port][/path]`, no trailing '/'), so two
 * spellings of one server compare equal. Refuses credentials in the URL — they never go in the
 * catalog — and query strings or fragments.
 */
export function normalizeEndpoint(endpoint: unknown): string | null {
  if (endpoint === undefined || endpoint === null || endpoint === '') return null;
  if (typeof endpoint !== 'string') throw invalid(`S3 endpoint must be a URL string, got ${typeof endpoint}`);
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch {
    throw invalid(`S3 endpoint ${JSON.stringify(endpoint)} is not a URL (expected e.g. http://127.0.0.1:9000)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(`S3 endpoint must be http:// or https://, got ${JSON.stringify(url.protocol)}`);
  if (url.username || url.password) {
    throw invalid('S3 endpoint may not carry credentials; they come from the AWS provider chain (environment, --profile, container or instance role)');
  }
  if (url.search || url.hash) throw invalid(`S3 endpoint ${JSON.stringify(endpoint)} may not have a query or fragment`);
  return url.toString().replace(/\/+$/, '');
}

function optionalToken(name: string, value: string | null | undefined, pattern: RegExp, hint: string): string | null {
  if (empty(value)) return null;
  if (typeof value !== 'string' || !pattern.test(value)) throw invalid(`${name} ${JSON.stringify(value)} is not valid: ${hint}`);
  return value;
}

function oneOf<T extends string>(name: string, key: string, value: string | null | undefined, allowed: readonly T[]): T | null {
  if (empty(value)) return null;
  if (!(allowed as readonly string[]).includes(value)) throw invalid(`unknown ${name} ${JSON.stringify(value)}; expected one of ${allowed.join(', ')}`, { [key]: value });
  return value as T;
}

/**
 * Validates and normalises everything an S3 mount stores.
 *
 * @throws InvalidRequestError naming the first bad value.
 */
export function validateS3Location(input: S3LocationInput): S3Location {
  const bucket = assertBucketName(input.bucket);
  const prefix = normalizeS3Prefix(input.prefix);
  const endpoint = normalizeEndpoint(input.endpoint);
  const region = optionalToken('S3 region', input.region, /^[a-z0-9][a-z0-9-]{0,62}$/, 'expected e.g. us-east-1');
  const profile = optionalToken('AWS profile', input.profile, /^[A-Za-z0-9_.@+/-]{1,128}$/, "letters, digits and _ . @ + / - only");
  const storageClass = oneOf('storage class', 'storageClass', input.storageClass, S3_STORAGE_CLASSES);
  const acl = oneOf('canned ACL', 'acl', input.acl, S3_CANNED_ACLS);
  const sse = oneOf('server-side encryption', 'sse', input.sse, S3_SSE_MODES);
  const kmsKeyId = optionalToken('KMS key id', input.kmsKeyId, /^[A-Za-z0-9:/_.+=@-]{1,2048}$/, 'expected a key id, alias or ARN');
  if (kmsKeyId !== null && sse !== 'aws:kms') throw invalid('a KMS key id needs --sse aws:kms', { kmsKeyId });
  if (input.pathStyle !== undefined && typeof input.pathStyle !== 'boolean') throw invalid('pathStyle must be a boolean');
  return { bucket, prefix, endpoint, region, pathStyle: input.pathStyle, profile, storageClass, acl, sse, kmsKeyId };
}

/**
 * Parses `s3://bucket[/prefix]` into its bucket and (normalised) prefix.
 *
 * @throws InvalidRequestError for another scheme or a bad bucket / prefix.
 */
export function parseS3Url(url: string): { bucket: string; prefix: string } {
  const m = /^s3:\/\/([^/]*)(?:\/(.*))?$/s.exec(url);
  if (!m) throw invalid(`expected s3://bucket[/prefix], got ${JSON.stringify(url)}`);
  return { bucket: assertBucketName(m[1]), prefix: normalizeS3Prefix(m[2] ?? '') };
}

/** `s3://bucket/prefix` (no trailing '/'), for messages and listings. */
export function s3UrlOf(loc: Pick<S3Location, 'bucket' | 'prefix'>): string {
  return `s3://${loc.bucket}${loc.prefix ? `/${loc.prefix}` : ''}`;
}

/** True when two locations can address one object: same bucket on the same server, and one prefix is (inside) the other. */
export function s3LocationsOverlap(a: Pick<S3Location, 'bucket' | 'prefix' | 'endpoint'>, b: Pick<S3Location, 'bucket' | 'prefix' | 'endpoint'>): boolean {
  if (a.bucket !== b.bucket || (a.endpoint ?? null) !== (b.endpoint ?? null)) return false;
  const [x, y] = [a.prefix, b.prefix];
  return x === y || x === '' || y === '' || x.startsWith(`${y}/`) || y.startsWith(`${x}/`);
}
