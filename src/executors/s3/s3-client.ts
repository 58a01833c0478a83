/**
 * The S3Client of a mount. Credentials come from the standard AWS provider chain (environment,
 * shared config and credentials files, SSO, container and instance roles) or, where the mount
 * names a profile, from that profile of the shared files — never from the catalog.
 */
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { S3Client } from '@aws-sdk/client-s3';
import { fromIni } from '@aws-sdk/credential-providers';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import type { S3Location } from '../executor';
import { countS3RequestErrors } from './s3-errors';

/** Settings that apply to every S3 mount unless the mount says otherwise. */
export interface S3ClientDefaults {
  /** FILESTORE_S3_ENDPOINT: endpoint of mounts that name none (unset: AWS). */
  endpoint?: string;
  /** FILESTORE_S3_FORCE_PATH_STYLE for that endpoint (unset: on for a custom endpoint, off for AWS). */
  forcePathStyle?: boolean;
  /** Region of mounts that name none. @defaultValue AWS_REGION, else us-east-1 */
  region?: string;
  /** Explicit credentials (tools and tests); absent uses the provider chain or the mount's profile. */
  credentials?: AwsCredentialIdentity | AwsCredentialIdentityProvider;
  /** Sockets per client: at least the upload concurrency of every transfer running at once. @defaultValue 64 */
  maxSockets?: number;
  /** Attempts per request with the SDK's standard retry strategy (exponential backoff with jitter). @defaultValue 4 */
  maxAttempts?: number;
  /**
   * A request whose connection moves no byte for this long fails with TimeoutError (retried like
   * any transient failure). Without it, a connection that goes silent — a dead peer, a NAT or load
   * balancer that dropped the flow, a response lost in flight — hangs the request for ever, and the
   * activity with it: its heartbeats come from a timer, so Temporal never sees it stuck. An idle
   * bound, not a request bound: a part that takes minutes but keeps moving is fine. @defaultValue 60000
   */
  socketTimeoutMs?: number;
}

/** Default of {@link S3ClientDefaults.socketTimeoutMs}: as boto3's read timeout (the AWS Java SDK's socket timeout is 50 s). */
export const DEFAULT_S3_SOCKET_TIMEOUT_MS = 60_000;

/**
 * Builds the client for a mount.
 *
 * Checksums: the SDK's "when supported" default would add a CRC32 trailer to every upload, which
 * needs chunked signing some S3-compatible servers reject; Filestore sends its own SHA-256
 * (`ChecksumSHA256` on PutObject and on each part), so the SDK adds only what a request requires.
 */
export function createS3Client(loc: S3Location, defaults: S3ClientDefaults = {}): S3Client {
  const endpoint = loc.endpoint ?? defaults.endpoint ?? undefined;
  const forcePathStyle = loc.pathStyle ?? (loc.endpoint ? true : (defaults.forcePathStyle ?? endpoint !== undefined));
  const credentials = defaults.credentials ?? (loc.profile ? fromIni({ profile: loc.profile }) : undefined);
  const maxSockets = defaults.maxSockets ?? 64;
  // Failed requests are counted by the client itself, once per send after the SDK's retries (s3-errors.ts).
  const client = new S3Client({
    region: loc.region ?? defaults.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(endpoint ? { endpoint } : {}),
    forcePathStyle,
    ...(credentials ? { credentials } : {}),
    retryMode: 'standard',
    maxAttempts: defaults.maxAttempts ?? 4,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    requestHandler: new NodeHttpHandler({
      httpAgent: new HttpAgent({ keepAlive: true, maxSockets }),
      httpsAgent: new HttpsAgent({ keepAlive: true, maxSockets }),
      connectionTimeout: 10_000,
      socketTimeout: defaults.socketTimeoutMs ?? DEFAULT_S3_SOCKET_TIMEOUT_MS,
    }),
  });
  return countS3RequestErrors(client);
}
