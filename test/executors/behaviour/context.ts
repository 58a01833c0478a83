/**
 * What every per-operation file of the behaviour suite shares: the fixture contract a backend's
 * test file implements, and the per-test context (fresh mount, seeding and content helpers).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { type Capabilities, type Executor, type MutationOutcome, type NodeMeta, listAll } from '../../../src/executors/executor';

/** One fresh, empty mount for one test, and a way to reach its bytes without the executor. */
export interface ExecutorFixture {
  executor: Executor;
  cleanup(): Promise<void>;
  /**
   * Puts `data` at mount path `path` straight on the backend, bypassing the executor (an
   * out-of-band writer: a user on the host, another S3 client). Creates missing parents where
   * the backend has real directories; replaces what is there.
   */
  writeRaw(path: string, data: Buffer | string): Promise<void>;
  /** The bytes at mount path `path` read straight from the backend, or null when nothing is there. */
  readRaw(path: string): Promise<Buffer | null>;
  /**
   * Plants a symbolic link at mount path `path` that leads out of the mount, to a file holding
   * `content`. Required when {@link BehaviourSetup.symlinks} is true.
   */
  linkOutside?(path: string, content: string): Promise<void>;
}

/**
 * A backend's entry into the suite. Everything here is known synchronously, when Jest collects
 * tests: the suite is built from it, so a backend's run simply does not contain the tests it
 * cannot pass (nothing is skipped at run time, nothing reported as passed that did not run).
 */
export interface BehaviourSetup {
  /** Exactly what the executor's `capabilities()` reports (a test checks it does). */
  capabilities: Capabilities;
  /** The backend has symbolic links the fixture can plant (see {@link ExecutorFixture.linkOutside}). @defaultValue false */
  symlinks?: boolean;
  /** A fresh, empty mount. */
  create(): Promise<ExecutorFixture>;
}

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

/** The `code` of the error a promise rejects with ('<resolved>' when it does not reject). */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return '<resolved>';
  } catch (err) {
    return String((err as { code?: unknown }).code ?? `<no code: ${(err as Error)?.name}>`);
  }
}

/** Every byte of a stream. */
export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array));
  return Buffer.concat(chunks);
}

export const pathsOf = (metas: NodeMeta[]): string[] => metas.map((m) => m.path);
export const fileOf = (out: MutationOutcome, p: string): NodeMeta | undefined => out.upserted.find((m) => m.path === p);

export interface SnapshotEntry {
  path: string;
  kind: string;
  size?: number;
  sha256?: string | null;
  mode?: number | null;
}

/**
 * The per-test state of one backend's run. Op files receive it while Jest collects tests and
 * read `ex` / `fx` only inside tests (they are set in `beforeEach`).
 */
export class BehaviourContext {
  private fixture: ExecutorFixture | null = null;
  private tmp: string | null = null;
  private seq = 0;

  constructor(
    readonly name: string,
    readonly setup: BehaviourSetup,
  ) {}

  /** The capabilities the suite was built for (declared by the backend's test file). */
  get caps(): Capabilities {
    return this.setup.capabilities;
  }

  get fx(): ExecutorFixture {
    if (!this.fixture) throw new Error('no fixture outside a test');
    return this.fixture;
  }

  get ex(): Executor {
    return this.fx.executor;
  }

  /** A host directory outside the mount, for `{ kind: 'file' }` write sources. */
  get hostTmp(): string {
    if (!this.tmp) throw new Error('no host temp directory outside a test');
    return this.tmp;
  }

  /** Registers the fresh-mount-per-test hooks in the enclosing describe. */
  install(): void {
    beforeEach(async () => {
      this.fixture = await this.setup.create();
      this.tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'filestore-src-'));
    });
    afterEach(async () => {
      await this.fixture?.cleanup();
      if (this.tmp) await fs.rm(this.tmp, { recursive: true, force: true });
      this.fixture = null;
      this.tmp = null;
    });
  }

  /** A transaction id unique in this process. */
  tx(label = 'tx'): string {
    return `${label}-${process.pid}-${++this.seq}`;
  }

  /** Seeds a committed file through the executor. */
  async put(p: string, content: string | Buffer, mode?: number): Promise<MutationOutcome> {
    const id = this.tx('seed');
    const out = await this.ex.write(p, { kind: 'inline', data: Buffer.from(content) }, { txId: id, overwrite: true, mode });
    await this.ex.finalize(id);
    return out;
  }

  /** Seeds a committed directory (with its parents) through the executor. */
  async mkdirs(p: string): Promise<void> {
    const id = this.tx('seed');
    await this.ex.mkdir(p, { txId: id });
    await this.ex.finalize(id);
  }

  /** sha256 of what the backend holds at `p`, read out of band (null when nothing is there). */
  async contentSha(p: string): Promise<string | null> {
    const data = await this.fx.readRaw(p);
    return data === null ? null : sha256(data);
  }

  /** `p` is a file holding exactly `content`: by stat, by the raw bytes, and through openRead. */
  async expectFile(p: string, content: string | Buffer): Promise<void> {
    expect(await this.ex.stat(p)).toMatchObject({ path: p, kind: 'file', size: Buffer.byteLength(content) });
    expect(await this.contentSha(p)).toBe(sha256(content));
    expect(sha256(await readAll(await this.ex.openRead(p)))).toBe(sha256(content));
  }

  /** Everything visible in the mount, sorted: paths, kinds, sizes, raw content hashes (and modes where the backend keeps them). */
  async snapshot(): Promise<SnapshotEntry[]> {
    const posix = this.caps.posixMode;
    const out: SnapshotEntry[] = [];
    for (const m of await listAll(this.ex, '', { recursive: true })) {
      const mode = posix ? { mode: m.mode } : {};
      if (m.kind === 'directory') out.push({ path: m.path, kind: m.kind, ...mode });
      else out.push({ path: m.path, kind: m.kind, size: m.size, sha256: await this.contentSha(m.path), ...mode });
    }
    return out;
  }
}
