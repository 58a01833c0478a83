/**
 * sha256 of the chunks of the pipelined copy (local-pipelined-copy.ts), in order, either on this
 * thread or on a worker thread of its own.
 *
 * Why a worker for large files: hashing is the slowest stage (~1 GiB/s with SHA-NI). On the
 * event-loop thread each chunk's update blocks it for several milliseconds, during which no read
 * can be issued into a buffer that became free, so the hash then waits for data and the copy
 * drifts above hash speed (1 GiB, best of 5 on a shared, loaded 2-core machine: 1.75 s on
 * a worker, 1.99 s on the event loop; medians 3.2 s and 4.0 s). On a worker the event loop only
 * hands out chunks, and the activity's heartbeat timer is never held up at all. The chunks are not
 * copied to the worker: the buffers live in SharedArrayBuffers the worker was given once, and a
 * chunk is handed over by slot number. A copy takes the worker the last one left (see
 * IDLE_WORKER_MS) or starts its own, so concurrent copies hash in parallel on as many cores as
 * there are (hand-written rather than a pool library: one kept worker is all the pooling needed).
 *
 * Small files hash on this thread: starting a worker costs more than hashing a few MiB.
 */
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** Hashes the slots of a buffer pool in the order they are given. */
export interface ChunkHasher {
  /** The buffers to read into (backed by SharedArrayBuffers for a worker hasher). */
  readonly pool: readonly Buffer[];
  /** Adds `pool[slot][0, length)` to the hash; resolves once the slot may be overwritten. */
  update(slot: number, length: number): Promise<void>;
  /** Hex digest of everything added; the hasher cannot be used after. */
  digest(): Promise<string>;
  /** Releases the worker (idempotent; after a failure, instead of digest). */
  close(): Promise<void>;
}

/** Buffers of this size each, `count` of them. */
export interface PoolShape {
  count: number;
  bytes: number;
}

class ThreadHasher implements ChunkHasher {
  readonly pool: Buffer[];
  private readonly hash = createHash('sha256');

  constructor(shape: PoolShape) {
    // allocUnsafeSlow: not a slice of Node's shared small-buffer pool; every byte used is read into first.
    this.pool = Array.from({ length: shape.count }, () => Buffer.allocUnsafeSlow(shape.bytes));
  }

  async update(slot: number, length: number): Promise<void> {
    this.hash.update(this.pool[slot].subarray(0, length));
  }

  async digest(): Promise<string> {
    return this.hash.digest('hex');
  }

  async close(): Promise<void> {}
}

/** The worker's whole program (evaluated, so it needs no file next to the compiled or the TypeScript source). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const pool = workerData.pool.map((sab) => Buffer.from(sab));
let hash = createHash('sha256');
parentPort.on('message', (m) => {
  if (m.slot !== undefined) {
    hash.update(pool[m.slot].subarray(0, m.length));
    parentPort.postMessage({});
  } else {
    parentPort.postMessage({ digest: hash.digest('hex') });
    hash = createHash('sha256');
  }
});
`;

/**
 * How long a hash worker is kept after its copy for the next one: starting one takes ~50 ms (a
 * new V8 isolate), 4 % of a 1 GiB copy. An idle worker holds its buffers (32 MiB) and does not
 * keep the process alive.
 */
const IDLE_WORKER_MS = 30_000;

/** A hash worker and the shared buffers it reads, reusable by one copy after another. */
class HashThread {
  readonly pool: Buffer[];
  /** Set once the worker failed or exited on its own: it is never used again. */
  failure: unknown = null;
  /** Callbacks of the updates (and the digest) sent and not answered yet, in order. */
  private readonly waiting: Array<{ resolve: (value: unknown) => void; reject: (err: unknown) => void }> = [];
  private readonly worker: Worker;
  private ending = false;
  private idleTimer: NodeJS.Timeout | null = null;

  constructor(readonly shape: PoolShape) {
    const shared = Array.from({ length: shape.count }, () => new SharedArrayBuffer(shape.bytes));
    this.pool = shared.map((sab) => Buffer.from(sab));
    this.worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { pool: shared } });
    // The worker answers in order: each message settles the oldest request.
    this.worker.on('message', (m: { digest?: string }) => this.waiting.shift()?.resolve(m.digest));
    this.worker.on('error', (err) => this.fail(err));
    this.worker.on('exit', (code) => {
      if (!this.ending) this.fail(new Error(`internal: the hash worker exited (code ${code}) before the copy ended`));
    });
  }

  get busy(): boolean {
    return this.waiting.length > 0;
  }

  ask(message: object): Promise<unknown> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.worker.postMessage(message);
    });
  }

  /** Keeps the worker for the next copy, for {@link IDLE_WORKER_MS}. */
  park(): void {
    this.worker.unref();
    this.idleTimer = setTimeout(() => void this.end(), IDLE_WORKER_MS).unref();
  }

  unpark(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.idleTimer = null;
    this.worker.ref();
  }

  async end(): Promise<void> {
    if (idle === this) idle = null;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    this.ending = true;
    await this.worker.terminate();
  }

  private fail(err: unknown): void {
    this.failure ??= err;
    if (idle === this) idle = null;
    for (const w of this.waiting.splice(0)) w.reject(this.failure);
  }
}

/** The worker kept from the last copy, if any (one: concurrent copies beyond it start their own). */
let idle: HashThread | null = null;

/** Ends the kept hash worker now (tests; a process that wants its threads gone at once). */
export async function endIdleHashWorker(): Promise<void> {
  await idle?.end();
}

class WorkerHasher implements ChunkHasher {
  private readonly thread: HashThread;
  private digested = false;
  private closed = false;

  constructor(shape: PoolShape) {
    const kept = idle;
    if (kept && kept.shape.count === shape.count && kept.shape.bytes === shape.bytes) {
      idle = null;
      kept.unpark();
      this.thread = kept;
    } else {
      this.thread = new HashThread(shape);
    }
  }

  get pool(): readonly Buffer[] {
    return this.thread.pool;
  }

  async update(slot: number, length: number): Promise<void> {
    await this.thread.ask({ slot, length });
  }

  async digest(): Promise<string> {
    const hex = (await this.thread.ask({})) as string;
    this.digested = true;
    return hex;
  }

  /** After a digest, with nothing in flight, the worker (its hash reset) is kept for the next copy; otherwise it ends. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const thread = this.thread;
    if (!this.digested || thread.failure || thread.busy) return thread.end();
    const previous = idle;
    idle = thread;
    thread.park();
    await previous?.end();
  }
}

/** A hasher over a pool of `shape`; on a worker thread of its own when `onWorker`. */
export function createChunkHasher(shape: PoolShape, onWorker: boolean): ChunkHasher {
  return onWorker ? new WorkerHasher(shape) : new ThreadHasher(shape);
}
