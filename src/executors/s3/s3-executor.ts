/**
 * The Executor of a bucket + prefix on S3 or an S3-compatible server (MinIO, …).
 *
 * Paths map to keys `<prefix>/<path>` (s3-keys.ts); directories are key prefixes, an explicit
 * mkdir writes a `dir/` marker. Every mutation is one transaction of the backend-neutral driver
 * (tx-driver.ts): its plan — typed S3 state: ETags and version ids seen, backup keys, upload ids,
 * batch cursors (s3-plan.ts) — is saved in the plan store before anything destructive happens,
 * every request that changes the bucket is conditional and preceded by the call's guard, and
 * undo / finalize act only on what the plan names (s3-undo.ts).
 *
 * S3 has no rename (`atomicRename` false: a move is copy + verify + delete), no POSIX modes and no
 * real directories; conditional create, server-side copy and resumable multipart it has.
 */
import type { Readable } from 'node:stream';
import type { S3Client } from '@aws-sdk/client-s3';
import { AccessDeniedError, FilestoreError, InvalidRequestError, MountUnavailableError, ReadOnlyMountError } from '../../errors';
import { timeExecutor } from '../../metrics';
import { STAGING_DIR, isStrictlyInside, normalizeMountPath } from '../../paths';
import type {
  Capabilities,
  CopyOptions,
  DeleteOptions,
  Executor,
  ListOptions,
  MkdirOptions,
  MountSpec,
  MoveOptions,
  MutationOp,
  MutationOptions,
  MutationOutcome,
  NodeMeta,
  ReadOptions,
  TxControlOptions,
  WriteOptions,
  WriteSource,
} from '../executor';
import { MemoryPlanStore, type PlanStore } from '../plan-store';
import { type TxBackend, type TxRequest, finalizeTransaction, runTransaction, undoTransaction } from '../tx-driver';
import { type UploadSweepOptions, sweepStaleUploads } from './s3-upload-sweep';
import { S3Bucket } from './s3-bucket';
import { type S3ClientDefaults, createS3Client } from './s3-client';
import { mapS3Error } from './s3-errors';
import { S3_MAX_KEY_BYTES, stagingRootPrefix, stagingTxPrefix, txIdOfStagingKey } from './s3-keys';
import type { S3Plan } from './s3-plan';
import { checksumObject, listPath, openObject, statPath } from './s3-read';
import { applyRelocateFile, applyRelocateTree, prepareRelocate } from './s3-relocate';
import { applyDeleteFile, applyDeleteTree, prepareDelete } from './s3-remove';
import type { S3OpContext, S3TransferSettings } from './s3-steps';
import { dropS3Staging, revertS3 } from './s3-undo';
import { applyMkdir, applyWrite, prepareMkdir, prepareWrite } from './s3-write';

const MiB = 1024 * 1024;

/** Defaults of FILESTORE_S3_MULTIPART_THRESHOLD, FILESTORE_S3_PART_SIZE, FILESTORE_S3_CONCURRENCY (src/config.ts). */
export const DEFAULT_S3_TRANSFER: S3TransferSettings = Object.freeze({ multipartThreshold: 64 * MiB, partSize: 16 * MiB, concurrency: 4 });

/** How an {@link S3Executor} is opened. */
export interface S3ExecutorOptions {
  /** Where plans are kept: the catalog's store in a worker; without one, this process's memory (tests, tools). */
  planStore?: PlanStore<S3Plan>;
  /** Multipart threshold, part size and concurrency. @defaultValue {@link DEFAULT_S3_TRANSFER} */
  transfer?: Partial<S3TransferSettings>;
  /** Endpoint / addressing defaults and credentials for the client (see s3-client.ts). */
  client?: S3ClientDefaults;
  /** Test seam: runs after each durable step of a mutation; throwing stops the call as a crash would. */
  afterStep?: (step: string, ctx: { op: MutationOp; txId: string }) => void | Promise<void>;
}

/** Process-memory plan stores by bucket + prefix, for executors opened without a durable store. */
const memoryStores = new Map<string, MemoryPlanStore<S3Plan>>();

const q = (p: string): string => JSON.stringify(p);

/**
 * An ACCESS_DENIED names the mutation (op, path, mount, bucket) rather than the request S3
 * refused: the first request of every mutation is Filestore's own staging marker, whose key means
 * nothing to the caller, while "no write access to bucket b for path p" tells them what to grant.
 */
function accessDeniedForRequest(err: unknown, req: TxRequest, bucket: string, mountId: string): unknown {
  if (!(err instanceof FilestoreError) || err.code !== 'ACCESS_DENIED') return err;
  const refused = typeof err.details.key === 'string' ? err.details.key : null;
  const internal = refused !== null && refused.includes(`${STAGING_DIR}/`);
  const s3Code = typeof err.details.s3Code === 'string' ? err.details.s3Code : '403';
  const what = `${req.op} of ${q(req.target)} on mount ${mountId} (bucket ${JSON.stringify(bucket)}${refused && !internal ? `, key ${JSON.stringify(refused)}` : ''}; S3 ${s3Code}): the mount's credentials lack the permission`;
  return new AccessDeniedError(what, { ...err.details, path: req.target });
}

export class S3Executor implements Executor {
  readonly backend = 's3' as const;
  private readonly ctx: S3OpContext;
  private readonly driver: TxBackend<S3Plan>;
  private versioning = false;

  private constructor(
    readonly mountId: string,
    private readonly bucket: S3Bucket,
    private readonly readOnly: boolean,
    settings: S3TransferSettings,
    plans: PlanStore<S3Plan>,
    afterStep: S3ExecutorOptions['afterStep'],
  ) {
    this.ctx = { bucket, settings };
    this.driver = {
      plans,
      mapError: (err, req) => accessDeniedForRequest(mapS3Error(err, { bucket: bucket.name, mountId, what: q(req.target) }), req, bucket.name, mountId),
      revert: (tx) => revertS3(this.ctx, tx),
      dropStaging: (txId, tx) => dropS3Staging(this.ctx, txId, tx),
      afterStep: afterStep ? (step, plan) => afterStep(step, { op: plan.op, txId: plan.txId }) : undefined,
    };
  }

  /**
   * Opens an S3 mount. Asks once whether the bucket is versioned (for {@link capabilities}); a
   * failure there does not fail the open — the mount's first request reports it, typed.
   *
   * @throws MountUnavailableError when the spec has no bucket.
   */
  static async open(spec: MountSpec, opts: S3ExecutorOptions = {}): Promise<S3Executor> {
    const loc = spec.s3;
    if (!loc?.bucket) throw new MountUnavailableError(spec.id, 'an S3 mount needs a bucket');
    const client: S3Client = createS3Client(loc, opts.client);
    const bucket = new S3Bucket(client, { ...loc, prefix: loc.prefix ?? '' }, spec.id);
    const storeKey = `${loc.endpoint ?? opts.client?.endpoint ?? 'aws'}|${loc.bucket}|${loc.prefix}`;
    let plans = opts.planStore;
    if (!plans) {
      if (!memoryStores.has(storeKey)) memoryStores.set(storeKey, new MemoryPlanStore<S3Plan>());
      plans = memoryStores.get(storeKey)!;
    }
    const ex = new S3Executor(spec.id, bucket, spec.readOnly, { ...DEFAULT_S3_TRANSFER, ...opts.transfer }, plans, opts.afterStep);
    ex.versioning = await bucket.isVersioned().catch(() => false);
    return ex;
  }

  /** The mount's client (for tools that need the same endpoint and credentials). */
  get client(): S3Client {
    return this.bucket.client;
  }

  capabilities(): Capabilities {
    return {
      atomicRename: false,
      serverSideCopy: true,
      multipart: true,
      posixMode: false,
      directories: false,
      conditionalCreate: true,
      versioning: this.versioning,
      maxKeyBytes: S3_MAX_KEY_BYTES,
      multipartLimits: { maxParts: 10_000, minPartBytes: 5 * MiB, maxPartBytes: 5 * 1024 * MiB },
    };
  }

  async stat(p: string): Promise<NodeMeta | null> {
    return this.run('stat', () => statPath(this.bucket, normalizeMountPath(p, { allowRoot: true })));
  }

  async checksum(p: string): Promise<string> {
    return this.run('checksum', () => checksumObject(this.bucket, normalizeMountPath(p)));
  }

  async openRead(p: string, opts: ReadOptions = {}): Promise<Readable> {
    return this.run('openRead', () => openObject(this.bucket, normalizeMountPath(p), opts));
  }

  async *list(p: string, opts: ListOptions = {}): AsyncIterable<NodeMeta> {
    const dir = normalizeMountPath(p, { allowRoot: true });
    try {
      yield* listPath(this.bucket, dir, opts);
    } catch (err) {
      throw mapS3Error(err, { bucket: this.bucket.name, mountId: this.mountId, what: `listing of ${q(dir)}` });
    }
  }

  async mkdir(p: string, opts: MkdirOptions): Promise<MutationOutcome> {
    return this.mutate('mkdir', opts, () => {
      const path = normalizeMountPath(p);
      return runTransaction(this.driver, { op: 'mkdir', target: path }, opts, () => prepareMkdir(this.ctx, path, opts), (tx) => applyMkdir(this.ctx, tx, path));
    });
  }

  async write(p: string, source: WriteSource, opts: WriteOptions): Promise<MutationOutcome> {
    return this.mutate('write', opts, () => {
      const path = normalizeMountPath(p);
      return runTransaction(
        this.driver,
        { op: 'write', target: path },
        opts,
        () => prepareWrite(this.ctx, path, source, opts),
        (tx) => applyWrite(this.ctx, tx, path, source, opts),
      );
    });
  }

  async copy(src: string, dst: string, opts: CopyOptions): Promise<MutationOutcome> {
    return this.relocate('copy', src, dst, opts);
  }

  async move(src: string, dst: string, opts: MoveOptions): Promise<MutationOutcome> {
    return this.relocate('move', src, dst, opts);
  }

  private relocate(op: 'copy' | 'move', src: string, dst: string, opts: CopyOptions | MoveOptions): Promise<MutationOutcome> {
    return this.mutate(op, opts, () => {
      const from = normalizeMountPath(src);
      const to = normalizeMountPath(dst);
      if (from === to || isStrictlyInside(to, from)) throw new InvalidRequestError(`cannot ${op} ${q(from)} into itself (${q(to)})`);
      const req: TxRequest = { op, target: to, src: from };
      return runTransaction(
        this.driver,
        req,
        opts,
        () => prepareRelocate(this.ctx, op, from, to, opts),
        (tx) => (tx.plan.state.kind === 'directory' ? applyRelocateTree(this.ctx, tx, op, from, to, opts) : applyRelocateFile(this.ctx, tx, op, from, to, opts)),
      );
    });
  }

  async delete(p: string, opts: DeleteOptions): Promise<MutationOutcome> {
    return this.mutate('delete', opts, () => {
      const path = normalizeMountPath(p);
      return runTransaction(
        this.driver,
        { op: 'delete', target: path },
        opts,
        () => prepareDelete(this.ctx, path, opts),
        (tx) => (tx.plan.state.kind === 'directory' ? applyDeleteTree(this.ctx, tx, path, opts.signal) : applyDeleteFile(this.ctx, tx, path)),
      );
    });
  }

  async undo(txId: string, opts: TxControlOptions = {}): Promise<{ undone: boolean }> {
    return this.run('undo', () => {
      stagingTxPrefix(this.bucket.prefix, txId);
      return undoTransaction(this.driver, txId, opts);
    });
  }

  async finalize(txId: string, opts: TxControlOptions = {}): Promise<void> {
    return this.run('finalize', () => {
      stagingTxPrefix(this.bucket.prefix, txId);
      return finalizeTransaction(this.driver, txId, opts);
    });
  }

  /** Transactions that still have staging objects (each has its `open` marker until finalize or undo drops it). */
  /** See {@link Executor.sweepStaleUploads} and s3-upload-sweep.ts. */
  async sweepStaleUploads(opts: UploadSweepOptions): Promise<number> {
    return sweepStaleUploads(this.bucket, opts);
  }

  async pendingTransactions(): Promise<string[]> {
    return this.run('pending', async () => {
      const root = stagingRootPrefix(this.bucket.prefix);
      const out = new Set<string>();
      let token: string | undefined;
      do {
        const page = await this.bucket.listPage({ prefix: root, delimiter: '/', token });
        for (const cp of page.CommonPrefixes ?? []) {
          // `<root><txId>/`: the txId is what lies between the root and the trailing slash.
          const txId = cp.Prefix?.startsWith(root) ? cp.Prefix.slice(root.length, -1) : null;
          if (txId && txIdOfStagingKey(this.bucket.prefix, `${root}${txId}/open`) === txId) out.add(txId);
        }
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      return [...out].sort();
    });
  }

  /** Refuses writes on a read-only mount and malformed transaction ids, then times the call. */
  private mutate<T>(op: string, opts: MutationOptions, fn: () => Promise<T>): Promise<T> {
    return this.run(op, async () => {
      if (this.readOnly) throw new ReadOnlyMountError(this.mountId);
      stagingTxPrefix(this.bucket.prefix, opts.txId);
      return fn();
    });
  }

  /** Times the call and types S3 failures. */
  private run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    return timeExecutor('s3', this.mountId, op, async () => {
      try {
        return await fn();
      } catch (err) {
        throw mapS3Error(err, { bucket: this.bucket.name, mountId: this.mountId });
      }
    });
  }
}
