/**
 * One mount's bucket: every S3 request the executor makes goes through here, so errors are typed
 * in one place (s3-errors.ts), each failed request is counted once in
 * `filestore_s3_request_errors_total` (by the client's middleware, see countS3RequestErrors), and
 * the mount's write settings (storage class, canned ACL, SSE / KMS) ride on every write and copy.
 */
import {
  CopyObjectCommand,
  type CopyObjectCommandInput,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketVersioningCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  type PutObjectCommandInput,
  type ObjectCannedACL,
  type S3Client,
  type ServerSideEncryption,
  type StorageClass,
} from '@aws-sdk/client-s3';
import { AccessDeniedError, BackendIoError, FilestoreError } from '../../errors';
import { countS3Error } from '../../metrics';
import type { S3Location } from '../executor';
import { countS3RequestErrors, httpStatusOf, isNotFound, isPreconditionFailed, mapS3Error, s3ErrorCode } from './s3-errors';
import { type ObjectRef, TX_META } from './s3-plan';

/** An object as HeadObject reports it. */
export interface ObjectHead {
  key: string;
  /** ETag without quotes. */
  etag: string;
  size: number;
  lastModified: Date;
  versionId: string | null;
  storageClass: string;
  metadata: Record<string, string>;
}

/** The write settings of a mount, as request parameters. */
export interface WriteParams {
  StorageClass?: StorageClass;
  ACL?: ObjectCannedACL;
  ServerSideEncryption?: ServerSideEncryption;
  SSEKMSKeyId?: string;
}

/** A condition on the destination of a write: create-only, or replace exactly this version. */
export type WriteCondition = { ifNoneMatch: '*' } | { ifMatch: string };

const unquote = (etag: string | undefined): string => (etag ?? '').replace(/^W\//, '').replace(/^"|"$/g, '');

/** `<bucket>/<key>` for x-amz-copy-source: the key URL-encoded (segments kept), optionally a version. */
function copySource(bucket: string, key: string, versionId?: string | null): string {
  const encoded = key.split('/').map(encodeURIComponent).join('/');
  return `${bucket}/${encoded}${versionId ? `?versionId=${encodeURIComponent(versionId)}` : ''}`;
}

export class S3Bucket {
  private versioned: Promise<boolean> | null = null;

  constructor(
    readonly client: S3Client,
    readonly loc: S3Location,
    readonly mountId: string,
  ) {
    // Counting lives in the client, not in send(): the requests made outside send() (head,
    // deletes, part copies, reads) count too, and a failure mapped twice on its way up counts once.
    countS3RequestErrors(client);
  }

  get name(): string {
    return this.loc.bucket;
  }

  get prefix(): string {
    return this.loc.prefix;
  }

  /** Storage class, ACL and encryption of the mount, sent on every write and copy. */
  writeParams(): WriteParams {
    const p: WriteParams = {};
    // The server validates the values (an unknown storage class is InvalidStorageClass → INVALID_REQUEST).
    if (this.loc.storageClass) p.StorageClass = this.loc.storageClass as StorageClass;
    if (this.loc.acl) p.ACL = this.loc.acl as ObjectCannedACL;
    if (this.loc.sse) p.ServerSideEncryption = this.loc.sse as ServerSideEncryption;
    if (this.loc.sse === 'aws:kms' && this.loc.kmsKeyId) p.SSEKMSKeyId = this.loc.kmsKeyId;
    return p;
  }

  /** Sends a request; failures come back typed (see s3-errors.ts). */
  async send<T>(what: { key?: string; what?: string }, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw mapS3Error(err, { bucket: this.name, mountId: this.mountId, ...what });
    }
  }

  /** Whether the bucket keeps versions (Enabled; Suspended counts as not), asked once per executor. */
  async isVersioned(): Promise<boolean> {
    this.versioned ??= this.send({ what: `versioning of bucket ${JSON.stringify(this.name)}` }, async () => {
      const res = await this.client.send(new GetBucketVersioningCommand({ Bucket: this.name }));
      return res.Status === 'Enabled';
    }).catch((err) => {
      // A policy may grant object access without s3:GetBucketVersioning: undo then keeps staging copies, which work everywhere.
      if ((err as { code?: string }).code === 'ACCESS_DENIED') return false;
      this.versioned = null;
      throw err;
    });
    return this.versioned;
  }

  /** HeadObject, or null when there is no such object (or version). */
  async head(key: string, versionId?: string | null): Promise<ObjectHead | null> {
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key, ...(versionId ? { VersionId: versionId } : {}) }));
      return {
        key,
        etag: unquote(res.ETag),
        size: Number(res.ContentLength ?? 0),
        lastModified: res.LastModified ?? new Date(0),
        versionId: res.VersionId && res.VersionId !== 'null' ? res.VersionId : null,
        storageClass: res.StorageClass ?? 'STANDARD',
        metadata: res.Metadata ?? {},
      };
    } catch (err) {
      if (isNotFound(err) || (err as { name?: string }).name === 'MethodNotAllowed') return null;
      if (httpStatusOf(err) === 403 && s3ErrorCode(err) === undefined) {
        // A HEAD refusal has no body to say why (bad key? denied?); a listing's error does.
        await this.listPage({ prefix: key, maxKeys: 1 });
        throw new AccessDeniedError(JSON.stringify(key), { bucket: this.name, mountId: this.mountId });
      }
      throw mapS3Error(err, { bucket: this.name, mountId: this.mountId, key });
    }
  }

  /**
   * The part size of an object uploaded in parts (its ETag ends in `-N`): the length of part 1
   * (HeadObject ?partNumber=1). Null for a single-part object.
   */
  async partSizeOf(key: string, etag: string): Promise<number | null> {
    if (!/-\d+$/.test(etag)) return null;
    const res = await this.send({ key }, () => this.client.send(new HeadObjectCommand({ Bucket: this.name, Key: key, PartNumber: 1, IfMatch: `"${etag}"` })));
    return res.ContentLength ? Number(res.ContentLength) : null;
  }

  /** One ListObjectsV2 page. */
  async listPage(input: { prefix: string; delimiter?: string; maxKeys?: number; token?: string; startAfter?: string }): Promise<ListObjectsV2CommandOutput> {
    return this.send({ what: `listing of ${JSON.stringify(input.prefix)}` }, () =>
      this.client.send(
        new ListObjectsV2Command({
          Bucket: this.name,
          Prefix: input.prefix,
          ...(input.delimiter ? { Delimiter: input.delimiter } : {}),
          MaxKeys: input.maxKeys ?? 1000,
          ...(input.token ? { ContinuationToken: input.token } : {}),
          ...(input.startAfter && !input.token ? { StartAfter: input.startAfter } : {}),
        }),
      ),
    );
  }

  /** Every key below `prefix` in key order, page by page (`startAfter` resumes a walk). */
  async *walk(prefix: string, opts: { startAfter?: string | null; pageSize?: number } = {}): AsyncGenerator<Array<{ key: string; etag: string; size: number; lastModified: Date }>> {
    let token: string | undefined;
    do {
      const page = await this.listPage({ prefix, maxKeys: opts.pageSize, token, startAfter: opts.startAfter ?? undefined });
      const items = (page.Contents ?? []).map((o) => ({ key: o.Key!, etag: unquote(o.ETag), size: Number(o.Size ?? 0), lastModified: o.LastModified ?? new Date(0) }));
      if (items.length > 0) yield items;
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** True when at least one key lies below `prefix` (a directory exists). */
  async hasKeysUnder(prefix: string): Promise<boolean> {
    const page = await this.listPage({ prefix, maxKeys: 1 });
    return (page.KeyCount ?? page.Contents?.length ?? 0) > 0;
  }

  /** Writes `body` under `condition`; the caller computed `sha256` (hex) and S3 checks it in flight. */
  async put(
    key: string,
    body: Buffer,
    sha256Hex: string,
    opts: { txId: string; condition?: WriteCondition; metadata?: Record<string, string>; signal?: AbortSignal; writeSettings?: boolean },
  ): Promise<ObjectRef> {
    const input: PutObjectCommandInput = {
      Bucket: this.name,
      Key: key,
      Body: body,
      ContentLength: body.byteLength,
      ChecksumSHA256: Buffer.from(sha256Hex, 'hex').toString('base64'),
      Metadata: { ...opts.metadata, [TX_META]: opts.txId },
      ...(opts.writeSettings === false ? {} : this.writeParams()),
      ...conditionHeaders(opts.condition),
    };
    return this.send({ key }, async () => {
      const res = await this.client.send(new PutObjectCommand(input), { abortSignal: opts.signal });
      return { etag: unquote(res.ETag), versionId: res.VersionId ?? null };
    });
  }

  /**
   * Server-side copy (≤ 5 GiB) of `src` (at `srcEtag`, optionally a version) to `dst`. `metadata`
   * replaces the source's (with the transaction tag); absent keeps it (backups).
   */
  async copy(
    src: { key: string; etag?: string; versionId?: string | null },
    dst: string,
    opts: { txId?: string; metadata?: Record<string, string>; condition?: WriteCondition; writeSettings?: boolean; signal?: AbortSignal },
  ): Promise<ObjectRef> {
    const input: CopyObjectCommandInput = {
      Bucket: this.name,
      Key: dst,
      CopySource: copySource(this.name, src.key, src.versionId),
      ...(src.etag ? { CopySourceIfMatch: `"${src.etag}"` } : {}),
      ...(opts.metadata ? { MetadataDirective: 'REPLACE', Metadata: { ...opts.metadata, ...(opts.txId ? { [TX_META]: opts.txId } : {}) } } : { MetadataDirective: 'COPY' }),
      ...(opts.writeSettings === false ? {} : this.writeParams()),
      ...conditionHeaders(opts.condition),
    };
    await this.precheck(dst, opts.condition);
    return this.send({ key: dst }, async () => {
      const res = await this.client.send(new CopyObjectCommand(input), { abortSignal: opts.signal });
      return { etag: unquote(res.CopyObjectResult?.ETag), versionId: res.VersionId ?? null };
    });
  }

  /**
   * Deletes `key` (only while it is at `ifMatch`, where S3 honours the condition); a missing key
   * is fine. In a versioned bucket S3 answers with the delete marker it made, returned here.
   */
  async deleteKey(key: string, opts: { ifMatch?: string } = {}): Promise<{ deleteMarker: string | null }> {
    if (opts.ifMatch) {
      const there = await this.head(key);
      if (!there) return { deleteMarker: null };
      if (there.etag !== opts.ifMatch) throw preconditionFailed(key);
    }
    try {
      const res = await this.client.send(new DeleteObjectCommand({ Bucket: this.name, Key: key, ...(opts.ifMatch ? { IfMatch: `"${opts.ifMatch}"` } : {}) }));
      return { deleteMarker: res.DeleteMarker && res.VersionId ? res.VersionId : null };
    } catch (err) {
      if (isNotFound(err)) return { deleteMarker: null };
      throw mapS3Error(err, { bucket: this.name, mountId: this.mountId, key });
    }
  }

  /**
   * Deletes one version of `key` for good (a versioned bucket): the version before it becomes
   * current again, with its own version id and ETag. Idempotent.
   */
  async deleteVersion(key: string, versionId: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.name, Key: key, VersionId: versionId }));
    } catch (err) {
      if (isNotFound(err)) return;
      throw mapS3Error(err, { bucket: this.name, mountId: this.mountId, key });
    }
  }

  /**
   * Deletes up to 1,000 keys in one request; any per-key failure other than "already gone" is
   * thrown. A key given with an `etag` is deleted only while it is that version where S3 honours
   * the per-object condition (AWS does; MinIO ignores it, so callers compare first).
   */
  async deleteKeys(keys: Array<string | { key: string; etag?: string }>): Promise<void> {
    if (keys.length === 0) return;
    if (keys.length > 1000) throw new Error('internal: DeleteObjects takes at most 1,000 keys');
    const objects = keys.map((k) => (typeof k === 'string' ? { Key: k } : { Key: k.key, ...(k.etag ? { ETag: `"${k.etag}"` } : {}) }));
    const res = await this.send({ what: `deletion of ${keys.length} objects` }, () =>
      this.client.send(new DeleteObjectsCommand({ Bucket: this.name, Delete: { Objects: objects, Quiet: true } })),
    );
    const failed = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
    // The request succeeded (200) but these deletions failed: each counts as the DeleteObject it stands for.
    for (const f of failed) countS3Error(f.Code ?? 'unknown');
    if (failed.length > 0) {
      const first = failed[0];
      const err = mapS3Error(Object.assign(new Error(first.Message ?? first.Code ?? 'delete failed'), { Code: first.Code, $metadata: {} }), {
        bucket: this.name,
        mountId: this.mountId,
        key: first.Key,
      });
      throw err instanceof FilestoreError ? err : new BackendIoError(`deleting ${failed.length} of ${keys.length} objects failed (${first.Code}: ${first.Message})`, { bucket: this.name });
    }
  }

  /**
   * The destination condition of a copy, checked with a HeadObject just before it. AWS enforces
   * If-None-Match / If-Match on CopyObject (and If-Match on DeleteObject) itself; MinIO ignores
   * them (it enforces them on PutObject and CompleteMultipartUpload only), so there this check
   * narrows the window to one round trip.
   */
  private async precheck(key: string, condition: WriteCondition | undefined): Promise<void> {
    if (!condition) return;
    const there = await this.head(key);
    if ('ifNoneMatch' in condition ? there !== null : there?.etag !== condition.ifMatch) throw preconditionFailed(key);
  }

  /** Whether `key` is an object this transaction wrote (its tag), and its head. */
  async ownedBy(key: string, txId: string): Promise<ObjectHead | null> {
    const head = await this.head(key);
    return head && head.metadata[TX_META] === txId ? head : null;
  }
}

/** A refused condition, shaped as S3's 412 (callers test it with isPreconditionFailed and map it like S3's own). */
function preconditionFailed(key: string): Error {
  return Object.assign(new Error(`the object at ${JSON.stringify(key)} is not the one expected`), {
    name: 'PreconditionFailed',
    Code: 'PreconditionFailed',
    $metadata: { httpStatusCode: 412 },
  });
}

function conditionHeaders(condition: WriteCondition | undefined): { IfNoneMatch?: string; IfMatch?: string } {
  if (!condition) return {};
  return 'ifNoneMatch' in condition ? { IfNoneMatch: '*' } : { IfMatch: `"${condition.ifMatch}"` };
}

export { isPreconditionFailed };
