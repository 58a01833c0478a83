/**
 * The Executor of a directory on a local (or locally mounted) disk.
 *
 * Every mutation follows the same shape under `<root>/.filestore-staging/<txId>/` (see
 * local-staging.ts; local-transaction.ts drives it): validate → write the plan → create parents →
 * stage new bytes → back up what will be replaced → one atomic rename into place → fsync → mark
 * the plan applied with its outcome. A crash between any two steps leaves a plan from which a
 * retry finishes the op and an undo restores the state before it.
 */
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import type { Readable } from 'node:stream';
import path from 'node:path';
import {
  PathChangedError,
  AlreadyExistsError,
  DirectoryNotEmptyError,
  InvalidRequestError,
  IsADirectoryError,
  MountUnavailableError,
  NotADirectoryError,
  NotFoundError,
  PreconditionFailedError,
  ReadOnlyMountError,
} from '../../errors';
import { bytesWritten, timeExecutor } from '../../metrics';
import { isStrictlyInside, normalizeMountPath, resolveInsideRoot } from '../../paths';
import type {
  Capabilities,
  CopyOptions,
  DeleteOptions,
  Executor,
  ListOptions,
  ReadOptions,
  MkdirOptions,
  MountSpec,
  MoveOptions,
  MutationOp,
  MutationOutcome,
  NodeMeta,
  TxControlOptions,
  WriteOptions,
  WriteSource,
} from '../executor';
import { assertSourceUsable, errnoOf, iterateEntries, mapFsError, nodeMetaFromStats, statOrNull } from './local-fs';
import { sortedEntries } from './local-sorted-walk';
import { openNoFollow } from './local-dirfd';
import { MountDirs } from './local-mount-dirs';
import { applyDelete, applyMove, stageFileCopy } from './local-relocate';
import { hashFile, streamIntoFile } from './local-transfer';
import { type MutationStep, type Plan, TxStaging, commitStagedFile, guardOf, listStagedTransactions } from './local-staging';
import { removeScratch, undoPlan } from './local-undo';
import { createPlanDirs, hostPath, missingParents, q, runTransaction } from './local-transaction';
import { MemoryPlanStore, type PlanStore } from '../plan-store';
import { type TreeCopyContext, copyTreeInto } from './local-tree-copy';
import { assertModeAllowed } from './special-modes';

export type { MutationStep } from './local-staging';

const LOCAL_CAPABILITIES: Capabilities = Object.freeze({
  atomicRename: true,
  serverSideCopy: true,
  multipart: false,
  posixMode: true,
  directories: true,
  conditionalCreate: true,
  versioning: false,
  maxKeyBytes: null,
  multipartLimits: null,
});

/** Test seams of {@link LocalExecutor}. */
export interface LocalExecutorHooks {
  /** Runs after each durable step of a mutation; throwing aborts the call as a crash would. */
  afterStep?: (step: MutationStep, ctx: { op: MutationOp; txId: string }) => void | Promise<void>;
  /**
   * Where plans are kept. Workers pass the catalog's store (src/catalog/plans.ts); without one,
   * a store in this process's memory shared by every executor of the same root (executor-level
   * tests, one-shot tools) — never a file in the mount.
   */
  planStore?: PlanStore<Plan>;
}

/** Process-memory plan stores by mount root, for executors opened without a durable store. */
const memoryStores = new Map<string, MemoryPlanStore<Plan>>();
function memoryStoreOf(rootReal: string): MemoryPlanStore<Plan> {
  let store = memoryStores.get(rootReal);
  if (!store) memoryStores.set(rootReal, (store = new MemoryPlanStore<Plan>()));
  return store;
}

/** Executor for a local directory; every path it touches is proven to stay inside the mount root. */
export class LocalExecutor implements Executor {
  readonly backend = 'local' as const;

  private constructor(
    readonly mountId: string,
    /** The mount root after realpath; every containment check compares against it. */
    readonly rootReal: string,
    private readonly readOnly: boolean,
    private readonly hooks: LocalExecutorHooks,
    private readonly plans: PlanStore<Plan>,
  ) {
    this.dirs = new MountDirs(rootReal, mountId);
  }

  /** No-follow access to the mount (local-mount-dirs.ts): every mutation acts through it. */
  private readonly dirs: MountDirs;



  /**
   * Opens a local mount. The root is resolved once with realpath, so a symlinked root works and
   * later containment checks compare real paths.
   *
   * @throws MountUnavailableError when the root is missing, not absolute or not a directory.
   */
  static async open(spec: MountSpec, hooks: LocalExecutorHooks = {}): Promise<LocalExecutor> {
    if (!spec.rootPath || !path.isAbsolute(spec.rootPath)) {
      throw new MountUnavailableError(spec.id, 'a local mount needs an absolute root path');
    }
    let rootReal: string;
    try {
      rootReal = await fs.realpath(spec.rootPath);
    } catch (err) {
      throw new MountUnavailableError(spec.id, `root ${q(spec.rootPath)} cannot be resolved (${errnoOf(err) ?? String(err)})`);
    }
    const st = await fs.stat(rootReal);
    if (!st.isDirectory()) throw new MountUnavailableError(spec.id, `root ${q(spec.rootPath)} is not a directory`);
    return new LocalExecutor(spec.id, rootReal, spec.readOnly, hooks, hooks.planStore ?? memoryStoreOf(rootReal));
  }

  capabilities(): Capabilities {
    return { ...LOCAL_CAPABILITIES };
  }

  async stat(p: string): Promise<NodeMeta | null> {
    return this.run('stat', p, async () => {
      const rel = normalizeMountPath(p, { allowRoot: true });
      const st = await statOrNull(await resolveInsideRoot(this.rootReal, rel));
      return st ? nodeMetaFromStats(rel, st) : null;
    });
  }

  async checksum(p: string): Promise<string> {
    return this.run('checksum', p, async () => {
      const rel = normalizeMountPath(p);
      const abs = await resolveInsideRoot(this.rootReal, rel);
      const st = await statOrNull(abs);
      if (!st) throw new NotFoundError(JSON.stringify(rel), { path: rel });
      if (st.isDirectory()) throw new IsADirectoryError(JSON.stringify(rel), { path: rel });
      return hashFile(abs, q(rel));
    });
  }

  /**
   * Reads the file at its real in-mount location (symlinks inside the mount resolved as a copy's
   * source is; one leading out is SYMLINK_ESCAPE), opened no-follow in its held parent (see
   * local-mount-dirs.ts): a component swapped for a symlink since is refused, never read through.
   */
  async openRead(p: string, opts: ReadOptions = {}): Promise<Readable> {
    return this.run('openRead', p, async () => {
      const rel = await this.dirs.resolveTarget(normalizeMountPath(p));
      const mount = new MountDirs(this.rootReal, this.mountId);
      const fh = await mount.withParent(rel, (dir, name) => openNoFollow(dir, name, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK));
      try {
        const st = await fh.stat();
        if (st.isDirectory()) throw new IsADirectoryError(q(rel), { path: rel });
        if (!st.isFile()) throw new InvalidRequestError(`${q(rel)} is not a regular file`, { path: rel });
        if (opts.expect) {
          const opened = nodeMetaFromStats(rel, await fh.stat({ bigint: true }));
          if (opened.identity !== opts.expect.identity || opened.size !== opts.expect.size || opened.mtime !== opts.expect.mtime) {
            throw new PreconditionFailedError(q(rel), { path: rel, reason: 'not the version that was stat-ed' });
          }
        }
        const start = opts.range?.start ?? 0;
        const end = opts.range?.end;
        if (!Number.isInteger(start) || start < 0 || (end !== undefined && (!Number.isInteger(end) || end < start))) {
          throw new InvalidRequestError(`invalid byte range ${JSON.stringify(opts.range)}`);
        }
        return fh.createReadStream({ start, end, signal: opts.signal, autoClose: true });
      } catch (err) {
        await fh.close();
        throw err;
      }
    });
  }

  /**
   * Streams the listing as directories are read (see iterateEntries): a mount of millions of files
   * is walked with memory bounded by one read buffer per open directory. `pageSize` is the number
   * of entries asked of the kernel per directory read. `sorted` recursive listings come from
   * local-sorted-walk.ts (byte order, `concurrency` stats in flight).
   */
  async *list(p: string, opts: ListOptions = {}): AsyncIterable<NodeMeta> {
    const { rel, abs } = await this.run('list', p, async () => {
      const rel = normalizeMountPath(p, { allowRoot: true });
      const abs = await resolveInsideRoot(this.rootReal, rel);
      const st = await statOrNull(abs);
      if (!st) throw new NotFoundError(`directory ${q(rel)}`);
      if (!st.isDirectory()) throw new NotADirectoryError(q(rel));
      if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit >= 0)) {
        throw new InvalidRequestError('list limit must be a non-negative integer');
      }
      if (opts.pageSize !== undefined && !(Number.isInteger(opts.pageSize) && opts.pageSize > 0)) {
        throw new InvalidRequestError('list pageSize must be a positive integer');
      }
      return { rel, abs };
    });
    if (opts.limit === 0) return;
    let n = 0;
    const entries =
      opts.sorted && opts.recursive
        ? sortedEntries(this.rootReal, abs, rel, { onUnreadable: opts.onUnreadable, batchSize: opts.pageSize, concurrency: opts.concurrency })
        : iterateEntries(this.rootReal, abs, rel, opts.recursive ?? false, { onUnreadable: opts.onUnreadable, batchSize: opts.pageSize });
    try {
      for await (const meta of entries) {
        yield meta;
        // Returning here closes every directory the walk holds open (its finally blocks).
        if (opts.limit !== undefined && ++n >= opts.limit) return;
      }
    } catch (err) {
      throw mapFsError(err, q(rel), { mountId: this.mountId });
    }
  }

  /**
   * Where each path really is: canonical mount-relative paths with every symlinked parent
   * directory resolved to its real in-mount location and the final component kept (never
   * followed). Mutations act on exactly these paths and report them in their outcomes, so callers
   * lock real locations: two spellings of one place conflict.
   *
   * @throws SymlinkEscapeError when a parent (or a final link) leads outside the mount.
   */
  async resolve(paths: string[]): Promise<string[]> {
    return this.run('resolve', paths.join(', '), () => Promise.all(paths.map((p) => this.dirs.resolve(normalizeMountPath(p, { allowRoot: true })))));
  }

  async mkdir(p: string, opts: MkdirOptions): Promise<MutationOutcome> {
    return this.mutate('mkdir', p, opts, async () => {
      this.assertWritable();
      const rel = await this.real(normalizeMountPath(p), opts);
      const parents = opts.parents ?? true;
      return runTransaction(this.tx(), { op: 'mkdir', target: rel }, opts, async () => {
        const st = await this.dirs.lstat(rel);
        // A link to a directory inside the mount counts as the directory (mkdir -p changes nothing there).
        const isDir = !!st && (st.isDirectory() || (st.isSymbolicLink() && !!(await statOrNull(hostPath(this.rootReal, rel)))?.isDirectory()));
        if (st && (!isDir || !parents)) throw new AlreadyExistsError(q(rel));
        const createdDirs = st ? [] : [...(await missingParents(this.dirs, rel, parents)), rel];
        return { kind: 'directory', hadPrevious: st !== null, createdDirs };
      }, async (_staging, plan) => {
        await createPlanDirs(this.tx(), plan);
        const upserted = await this.metas(plan.createdDirs.length > 0 ? plan.createdDirs : [rel]);
        return { op: 'mkdir', upserted, removed: [], bytesWritten: 0 };
      });
    });
  }

  async write(p: string, source: WriteSource, opts: WriteOptions): Promise<MutationOutcome> {
    return this.mutate('write', p, opts, async () => {
      this.assertWritable();
      const rel = await this.real(normalizeMountPath(p), opts);
      return runTransaction(this.tx(), { op: 'write', target: rel }, opts, async () => {
        const st = await this.dirs.lstat(rel);
        if (st?.isDirectory()) throw new IsADirectoryError(q(rel));
        if (st && !opts.overwrite) throw new AlreadyExistsError(q(rel));
        const createdDirs = await missingParents(this.dirs, rel, opts.createParents ?? true);
        assertModeAllowed(opts.mode, opts.allowSpecialModes);
        await assertSourceUsable(source, opts);
        return { kind: 'file', hadPrevious: st !== null, createdDirs };
      }, async (staging, plan) => {
        await createPlanDirs(this.tx(), plan);
        let staged;
        try {
          staged = await streamIntoFile(source, staging.dataTmp, opts);
        } catch (err) {
          if (source.kind === 'file' && errnoOf(err) === 'ENOENT') throw new NotFoundError('source file');
          throw err;
        }
        if (opts.expectedSha256 !== undefined && staged.sha256 !== opts.expectedSha256.toLowerCase()) {
          throw new InvalidRequestError(`content hashes to ${staged.sha256}, not the expected ${opts.expectedSha256}`, { path: rel });
        }
        this.countBytes(staged.bytes);
        const landed = await commitStagedFile(staging, plan, rel, { bytes: staged.bytes, mode: opts.mode, allowSpecialModes: opts.allowSpecialModes }, this.stepper(plan));
        const file = nodeMetaFromStats(rel, landed, staged.sha256);
        return { op: 'write', upserted: [...(await this.metas(plan.createdDirs)), file], removed: [], bytesWritten: staged.bytes };
      });
    });
  }

  async copy(src: string, dst: string, opts: CopyOptions): Promise<MutationOutcome> {
    return this.mutate('copy', src, opts, async () => {
      this.assertWritable();
      // A copy reads content: a source that is an in-mount link is read at its real target.
      const from = await this.dirs.resolveTarget(await this.real(normalizeMountPath(src), opts));
      const to = await this.real(normalizeMountPath(dst), opts);
      if (from === to || isStrictlyInside(to, from)) throw new InvalidRequestError(`cannot copy ${q(from)} into itself (${q(to)})`);
      return runTransaction(this.tx(), { op: 'copy', target: to, src: from }, opts, async () => {
        const sst = await this.dirs.lstat(from);
        if (!sst) throw new NotFoundError(`copy source ${q(from)}`);
        const isDir = sst.isDirectory();
        if (isDir && !opts.recursive) throw new IsADirectoryError(`${q(from)} (pass recursive to copy a directory)`);
        const dstSt = await this.dirs.lstat(to);
        if (dstSt && (isDir || dstSt.isDirectory())) {
          throw isDir ? new AlreadyExistsError(q(to)) : new IsADirectoryError(`copy destination ${q(to)}`);
        }
        if (dstSt && !opts.overwrite) throw new AlreadyExistsError(q(to));
        const createdDirs = await missingParents(this.dirs, to, opts.createParents ?? true);
        return { kind: isDir ? 'directory' : 'file', hadPrevious: dstSt !== null, createdDirs };
      }, async (staging, plan) => {
        await createPlanDirs(this.tx(), plan);
        if (plan.kind === 'directory') return copyTreeInto(this.tx(), staging, plan, from, to, opts);
        const { staged, source } = await stageFileCopy(staging, from, opts.known?.[''], opts);
        this.countBytes(staged.bytes);
        const file = { bytes: staged.bytes, defaultMode: Number(source.mode) & 0o7777, allowSpecialModes: opts.allowSpecialModes };
        const landed = await commitStagedFile(staging, plan, to, file, this.stepper(plan));
        return { op: 'copy', upserted: [...(await this.metas(plan.createdDirs)), nodeMetaFromStats(to, landed, staged.sha256)], removed: [], bytesWritten: staged.bytes };
      });
    });
  }

  async move(src: string, dst: string, opts: MoveOptions): Promise<MutationOutcome> {
    return this.mutate('move', src, opts, async () => {
      this.assertWritable();
      const from = await this.real(normalizeMountPath(src), opts);
      const to = await this.real(normalizeMountPath(dst), opts);
      if (from === to || isStrictlyInside(to, from)) throw new InvalidRequestError(`cannot move ${q(from)} into itself (${q(to)})`);
      return runTransaction(this.tx(), { op: 'move', target: to, src: from }, opts, async () => {
        const sst = await this.dirs.lstat(from);
        if (!sst) throw new NotFoundError(`move source ${q(from)}`);
        const dstSt = await this.dirs.lstat(to);
        if (dstSt && (!opts.overwrite || dstSt.isDirectory() || sst.isDirectory())) throw new AlreadyExistsError(q(to));
        const createdDirs = await missingParents(this.dirs, to, opts.createParents ?? true);
        return { kind: sst.isDirectory() ? 'directory' : 'file', hadPrevious: dstSt !== null, createdDirs };
      }, async (staging, plan) => {
        await createPlanDirs(this.tx(), plan);
        return applyMove(this.tx(), staging, plan, opts);
      });
    });
  }

  async delete(p: string, opts: DeleteOptions): Promise<MutationOutcome> {
    return this.mutate('delete', p, opts, async () => {
      this.assertWritable();
      // The final component is never followed: deleting a link removes the link entry.
      const rel = await this.real(normalizeMountPath(p), opts);
      return runTransaction(this.tx(), { op: 'delete', target: rel }, opts, async () => {
        const st = await this.dirs.lstat(rel);
        if (!st) throw new NotFoundError(q(rel));
        if (st.isDirectory() && !opts.recursive && (await this.dirs.withDir(rel, (d) => fs.readdir(d.self()))).length > 0) {
          throw new DirectoryNotEmptyError(q(rel));
        }
        return { kind: st.isDirectory() ? 'directory' : 'file', hadPrevious: true, createdDirs: [] };
      }, (staging, plan) => applyDelete(this.tx(), staging, plan));
    });
  }

  async undo(txId: string, opts: TxControlOptions = {}): Promise<{ undone: boolean }> {
    return this.run('undo', txId, async () => {
      const staging = new TxStaging(this.rootReal, txId, this.mountId, this.plans, opts.guard);
      const plan = await staging.readPlan();
      if (!plan) {
        // No plan, nothing destructive ran (the plan is saved first); staging may hold scratch.
        await staging.guard();
        await staging.remove();
        return { undone: false };
      }
      try {
        return { undone: await undoPlan(this.rootReal, staging, plan) };
      } finally {
        await staging.release();
      }
    });
  }

  async finalize(txId: string, opts: TxControlOptions = {}): Promise<void> {
    return this.run('finalize', txId, async () => {
      const staging = new TxStaging(this.rootReal, txId, this.mountId, this.plans, opts.guard);
      const plan = await staging.readPlan();
      if (plan?.finalized) return;
      try {
        await staging.guard();
        if (plan) await removeScratch(staging, plan);
        await staging.remove();
        if (plan) {
          plan.finalized = true;
          await staging.savePlan(plan);
        }
      } finally {
        await staging.release();
      }
    });
  }

  async pendingTransactions(): Promise<string[]> {
    return this.run('pending', '', () => listStagedTransactions(this.rootReal));
  }

  /** The view of this executor that the transaction driver and the tree copy work through. */
  private tx(): TreeCopyContext {
    return {
      rootReal: this.rootReal,
      mountId: this.mountId,
      plans: this.plans,
      step: (step, plan) => this.step(step, plan),
      countBytes: (n) => this.countBytes(n),
      metas: (rels) => this.metas(rels),
    };
  }

  /** Metadata of existing real mount paths (created directories, a mkdir target), read through their held parents. */
  private async metas(rels: string[]): Promise<NodeMeta[]> {
    return Promise.all(rels.map(async (rel) => nodeMetaFromStats(rel, await this.dirs.withParent(rel, (d, n) => fs.stat(d.at(n), { bigint: true })))));
  }

  private assertWritable(): void {
    if (this.readOnly) throw new ReadOnlyMountError(this.mountId);
  }

  private countBytes(n: number): void {
    if (n > 0) bytesWritten.inc({ backend: 'local', mount: this.mountId }, n);
  }

  private async step(step: MutationStep, plan: Plan): Promise<void> {
    await this.hooks.afterStep?.(step, { op: plan.op, txId: plan.txId });
    // After the step = before the next one: a superseded attempt stops here, leaving its work as is.
    await guardOf(plan)?.();
  }

  private stepper(plan: Plan): (step: MutationStep) => Promise<void> {
    return (step) => this.step(step, plan);
  }

  /** {@link run} for a mutation (its guard travels with its plan, see attachGuard). */
  private mutate<T>(op: string, subject: string, _opts: { txId: string }, fn: () => Promise<T>): Promise<T> {
    return this.run(op, subject, fn);
  }

  /**
   * The real location of `p` (symlinked parents resolved). With `claimedPaths` the caller already
   * resolved and locked `p` as a real location: if it resolves elsewhere now — a directory on the
   * way was swapped for a symlink since — the mutation is refused instead of following it.
   */
  private async real(p: string, opts: { claimedPaths?: boolean }): Promise<string> {
    const rel = await this.dirs.resolve(p);
    if (opts.claimedPaths && rel !== p) throw new PathChangedError(p, { resolvesTo: rel });
    return rel;
  }

  /** Times the call and turns raw errno failures into typed errors. */
  private run<T>(op: string, subject: string, fn: () => Promise<T>): Promise<T> {
    return timeExecutor('local', this.mountId, op, async () => {
      try {
        return await fn();
      } catch (err) {
        throw mapFsError(err, q(String(subject)), { mountId: this.mountId });
      }
    });
  }
}
