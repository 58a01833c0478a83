/**
 * The Executor of a directory on a local (or locally mounted) disk.
 *
 * Every mutation follows the same shape under `<root>/.filestore-staging/<txId>/` (see
 * local-staging.ts; local-transaction.ts drives it): validate → write the plan → create parents →
 * stage new bytes → back up what will be replaced → one atomic rename into place → fsync → mark
 * the plan applied with its outcome. A crash between any two steps leaves a plan from which a
 * retry finishes the op and an undo restores the state before it.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import {
  AlreadyExistsError,
  DirectoryNotEmptyError,
  InvalidRequestError,
  IsADirectoryError,
  MountUnavailableError,
  NotADirectoryError,
  NotFoundError,
  ReadOnlyMountError,
} from '../errors';
import { bytesWritten, timeExecutor } from '../metrics';
import { isStrictlyInside, normalizeMountPath, resolveInsideRoot } from '../paths';
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
  MutationOutcome,
  NodeMeta,
  TxControlOptions,
  WriteOptions,
  WriteSource,
} from './executor';
import { assertSourceUsable, entryExists, errnoOf, fsyncDir, listEntries, lstatOrNull, mapFsError, nodeMetaFromStats, statOrNull } from './local-fs';
import { copyFileData, hashFile, renameAnywhere, streamIntoFile } from './local-transfer';
import {
  type MutationStep,
  type Plan,
  TxStaging,
  commitStagedFile,
  listStagedTransactions,
  removeScratch,
  takeBackup,
  undoPlan,
} from './local-staging';
import { createPlanDirs, hostPath, missingParents, q, runTransaction } from './local-transaction';
import { MemoryPlanStore, type PlanStore } from './plan-store';
import { type TreeCopyContext, copyTreeInto } from './local-tree-copy';
import { assertModeAllowed } from './special-modes';

export type { MutationStep } from './local-staging';

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
  ) {}

  /** Guards of the calls in flight, by transaction id: every durable step checks its call's guard first. */
  private readonly guards = new Map<string, () => Promise<void>>();

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
    return { atomicRename: true, serverSideCopy: true, multipart: false, posixMode: true, directories: true };
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
      return hashFile(abs);
    });
  }

  async list(p: string, opts: ListOptions = {}): Promise<NodeMeta[]> {
    return this.run('list', p, async () => {
      const rel = normalizeMountPath(p, { allowRoot: true });
      const abs = await resolveInsideRoot(this.rootReal, rel);
      const st = await statOrNull(abs);
      if (!st) throw new NotFoundError(`directory ${q(rel)}`);
      if (!st.isDirectory()) throw new NotADirectoryError(q(rel));
      if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit >= 0)) {
        throw new InvalidRequestError('list limit must be a non-negative integer');
      }
      const out = await listEntries(this.rootReal, abs, rel, opts.recursive ?? false);
      out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      return opts.limit === undefined ? out : out.slice(0, opts.limit);
    });
  }

  async mkdir(p: string, opts: MkdirOptions): Promise<MutationOutcome> {
    return this.mutate('mkdir', p, opts, async () => {
      this.assertWritable();
      const rel = normalizeMountPath(p);
      const abs = await resolveInsideRoot(this.rootReal, rel);
      const parents = opts.parents ?? true;
      return runTransaction(this.tx(), { op: 'mkdir', target: rel }, opts, async () => {
        const st = await statOrNull(abs);
        if (st && (!st.isDirectory() || !parents)) throw new AlreadyExistsError(q(rel));
        const createdDirs = st ? [] : [...(await missingParents(this.rootReal, rel, parents)), rel];
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
      const rel = normalizeMountPath(p);
      const abs = await resolveInsideRoot(this.rootReal, rel);
      return runTransaction(this.tx(), { op: 'write', target: rel }, opts, async () => {
        const st = await statOrNull(abs);
        if (st?.isDirectory()) throw new IsADirectoryError(q(rel));
        if (st && !opts.overwrite) throw new AlreadyExistsError(q(rel));
        const createdDirs = await missingParents(this.rootReal, rel, opts.createParents ?? true);
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
        await commitStagedFile(staging, plan, abs, { bytes: staged.bytes, mode: opts.mode, allowSpecialModes: opts.allowSpecialModes }, this.stepper(plan));
        const file = nodeMetaFromStats(rel, await fs.stat(abs, { bigint: true }), staged.sha256);
        return { op: 'write', upserted: [...(await this.metas(plan.createdDirs)), file], removed: [], bytesWritten: staged.bytes };
      });
    });
  }

  async copy(src: string, dst: string, opts: CopyOptions): Promise<MutationOutcome> {
    return this.mutate('copy', src, opts, async () => {
      this.assertWritable();
      const from = normalizeMountPath(src);
      const to = normalizeMountPath(dst);
      const [fromAbs, toAbs] = [await resolveInsideRoot(this.rootReal, from), await resolveInsideRoot(this.rootReal, to)];
      if (from === to || isStrictlyInside(to, from)) throw new InvalidRequestError(`cannot copy ${q(from)} into itself (${q(to)})`);
      return runTransaction(this.tx(), { op: 'copy', target: to, src: from }, opts, async () => {
        const sst = await statOrNull(fromAbs);
        if (!sst) throw new NotFoundError(`copy source ${q(from)}`);
        const isDir = sst.isDirectory();
        if (isDir && !opts.recursive) throw new IsADirectoryError(`${q(from)} (pass recursive to copy a directory)`);
        const dstSt = await statOrNull(toAbs);
        if (dstSt && (isDir || dstSt.isDirectory())) {
          throw isDir ? new AlreadyExistsError(q(to)) : new IsADirectoryError(`copy destination ${q(to)}`);
        }
        if (dstSt && !opts.overwrite) throw new AlreadyExistsError(q(to));
        const createdDirs = await missingParents(this.rootReal, to, opts.createParents ?? true);
        return { kind: isDir ? 'directory' : 'file', hadPrevious: dstSt !== null, createdDirs };
      }, async (staging, plan) => {
        await createPlanDirs(this.tx(), plan);
        if (plan.kind === 'directory') return copyTreeInto(this.tx(), staging, plan, fromAbs, toAbs, opts);
        const sst = await statOrNull(fromAbs);
        if (!sst || sst.isDirectory()) throw new NotFoundError(`copy source file ${q(from)}`);
        const staged = await copyFileData(fromAbs, staging.dataTmp, sst, opts.known?.[''], opts);
        this.countBytes(staged.bytes);
        await commitStagedFile(staging, plan, toAbs, { bytes: staged.bytes, defaultMode: Number(sst.mode) & 0o7777, allowSpecialModes: opts.allowSpecialModes }, this.stepper(plan));
        const file = nodeMetaFromStats(to, await fs.stat(toAbs, { bigint: true }), staged.sha256);
        return { op: 'copy', upserted: [...(await this.metas(plan.createdDirs)), file], removed: [], bytesWritten: staged.bytes };
      });
    });
  }

  async move(src: string, dst: string, opts: MoveOptions): Promise<MutationOutcome> {
    return this.mutate('move', src, opts, async () => {
      this.assertWritable();
      const from = normalizeMountPath(src);
      const to = normalizeMountPath(dst);
      const [fromAbs, toAbs] = [await resolveInsideRoot(this.rootReal, from), await resolveInsideRoot(this.rootReal, to)];
      if (from === to || isStrictlyInside(to, from)) throw new InvalidRequestError(`cannot move ${q(from)} into itself (${q(to)})`);
      return runTransaction(this.tx(), { op: 'move', target: to, src: from }, opts, async () => {
        const sst = await statOrNull(fromAbs);
        if (!sst) throw new NotFoundError(`move source ${q(from)}`);
        const dstSt = await statOrNull(toAbs);
        if (dstSt && (!opts.overwrite || dstSt.isDirectory() || sst.isDirectory())) throw new AlreadyExistsError(q(to));
        const createdDirs = await missingParents(this.rootReal, to, opts.createParents ?? true);
        return { kind: sst.isDirectory() ? 'directory' : 'file', hadPrevious: dstSt !== null, createdDirs };
      }, async (staging, plan) => {
        await createPlanDirs(this.tx(), plan);
        let moved = 0;
        if (await entryExists(fromAbs)) {
          if (plan.hadPrevious) await takeBackup(staging, toAbs, 'rename', this.stepper(plan));
          if (!plan.hadPrevious && (await entryExists(toAbs))) {
            // Only our own half-finished cross-device copy may sit there (see moveAcrossDevices).
            if (!plan.staged) throw new AlreadyExistsError(q(to));
            await fs.rm(toAbs, { recursive: true, force: true });
          }
          if (!plan.staged) {
            plan.staged = { bytes: 0 };
            await staging.savePlan(plan);
          }
          moved = await renameAnywhere(fromAbs, toAbs, { allowSpecialModes: opts.allowSpecialModes });
          await fsyncDir(path.dirname(toAbs));
          await fsyncDir(path.dirname(fromAbs));
          this.countBytes(moved);
          await this.step('committed', plan);
        } else if (!(await entryExists(toAbs))) {
          throw new NotFoundError(`move source ${q(from)}`);
        }
        await removeScratch(this.rootReal, staging, plan);
        const target = nodeMetaFromStats(to, await fs.stat(toAbs, { bigint: true }));
        return { op: 'move', moved: { from, to }, removed: [from], upserted: [...(await this.metas(plan.createdDirs)), target], bytesWritten: moved };
      });
    });
  }

  async delete(p: string, opts: DeleteOptions): Promise<MutationOutcome> {
    return this.mutate('delete', p, opts, async () => {
      this.assertWritable();
      const rel = normalizeMountPath(p);
      const abs = await resolveInsideRoot(this.rootReal, rel);
      return runTransaction(this.tx(), { op: 'delete', target: rel }, opts, async () => {
        const st = await lstatOrNull(abs);
        if (!st) throw new NotFoundError(q(rel));
        if (st.isDirectory() && !opts.recursive && (await fs.readdir(abs)).length > 0) throw new DirectoryNotEmptyError(q(rel));
        return { kind: st.isDirectory() ? 'directory' : 'file', hadPrevious: true, createdDirs: [] };
      }, async (staging, plan) => {
        const there = await entryExists(abs);
        const backedUp = await entryExists(staging.backup);
        if (there) {
          // Both present only after a crashed cross-device backup; the original is still whole.
          if (backedUp) await fs.rm(staging.backup, { recursive: true, force: true });
          // Renaming into staging makes the path vanish atomically and keeps the bytes for undo.
          await renameAnywhere(abs, staging.backup);
          await fsyncDir(path.dirname(abs));
          await fsyncDir(staging.dir);
          await this.step('committed', plan);
        } else if (!backedUp) {
          throw new NotFoundError(q(rel));
        }
        await removeScratch(this.rootReal, staging, plan);
        return { op: 'delete', upserted: [], removed: [rel], bytesWritten: 0 };
      });
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
      return { undone: await undoPlan(this.rootReal, staging, plan) };
    });
  }

  async finalize(txId: string, opts: TxControlOptions = {}): Promise<void> {
    return this.run('finalize', txId, async () => {
      const staging = new TxStaging(this.rootReal, txId, this.mountId, this.plans, opts.guard);
      const plan = await staging.readPlan();
      if (plan?.finalized) return;
      await staging.guard();
      if (plan) await removeScratch(this.rootReal, staging, plan);
      await staging.remove();
      if (plan) {
        plan.finalized = true;
        await staging.savePlan(plan);
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

  private async metas(rels: string[]): Promise<NodeMeta[]> {
    return Promise.all(rels.map(async (rel) => nodeMetaFromStats(rel, await fs.stat(hostPath(this.rootReal, rel), { bigint: true }))));
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
    await this.guards.get(plan.txId)?.();
  }

  private stepper(plan: Plan): (step: MutationStep) => Promise<void> {
    return (step) => this.step(step, plan);
  }

  /** {@link run} for a mutation: its guard is checked at every durable step while it runs. */
  private async mutate<T>(op: string, subject: string, opts: { txId: string; guard?: () => Promise<void> }, fn: () => Promise<T>): Promise<T> {
    if (!opts.guard) return this.run(op, subject, fn);
    const guard = opts.guard;
    this.guards.set(opts.txId, guard);
    try {
      return await this.run(op, subject, fn);
    } finally {
      if (this.guards.get(opts.txId) === guard) this.guards.delete(opts.txId);
    }
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
