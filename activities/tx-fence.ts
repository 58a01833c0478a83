/**
 * One live attempt per transaction. Temporal starts a new activity attempt once the old one
 * misses its heartbeat timeout — but the old one may still be running (a paused VM, SIGSTOP, a
 * network split). Every activity that touches a backend therefore holds a Postgres session-level
 * advisory lock on its journal id for its whole life, and checks it before every destructive step:
 *
 *  - the lock lives on a dedicated session; a second attempt cannot take it and retries later
 *    ({@link TransactionBusyError}, retryable);
 *  - the session pings the server on a timer, and `idle_session_timeout` makes the server end a
 *    session that stops pinging (a frozen process), which frees the lock for the next attempt;
 *  - {@link TxFence.check} makes a round trip on that session before each step: a frozen attempt
 *    that wakes up after its session was ended learns it here and stops, leaving its work for the
 *    attempt that holds the lock now. It also stops when Temporal cancelled the attempt.
 *
 * What stays racy: a process frozen between a passed check and the syscall right after it for
 * longer than the idle timeout. Local disks cannot check a fencing token; docs/security.md says so.
 */
import { Context } from '@temporalio/activity';
import { Pool, type PoolClient } from 'pg';
import { FenceLostError, TransactionBusyError } from '../src/errors';

export interface FenceOptions {
  /** A session that has not pinged for this long is ended by the server, releasing its locks. */
  idleTimeoutMs: number;
}

/** Dedicated sessions for fences: never the catalog pool, so a busy catalog cannot starve them. */
export class FencePool {
  private readonly pool: Pool;

  constructor(databaseUrl: string, readonly opts: FenceOptions) {
    this.pool = new Pool({
      connectionString: databaseUrl,
      max: 64,
      // Close idle sessions before the server's idle timeout would kill them in the pool.
      idleTimeoutMillis: Math.max(1000, Math.floor(opts.idleTimeoutMs / 2)),
      application_name: 'filestore-fence',
    });
    this.pool.on('error', () => undefined);
  }

  /**
   * Takes the fence of `journalId` or throws TransactionBusyError when another attempt holds it.
   * @param signal - the attempt's cancellation signal; a cancelled attempt fails its next check.
   */
  async acquire(journalId: string, signal?: AbortSignal): Promise<TxFence> {
    const client = await this.pool.connect();
    try {
      // idle_session_timeout exists from PostgreSQL 14; on older servers a frozen attempt keeps
      // its lock until its TCP connection dies (documented).
      await client.query(`SET idle_session_timeout = ${Math.floor(this.opts.idleTimeoutMs)}`).catch(() => undefined);
      const { rows } = await client.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtextextended($1, 0)) AS ok`, [fenceKey(journalId)]);
      if (!rows[0]?.ok) throw new TransactionBusyError(journalId);
    } catch (err) {
      client.release(err instanceof TransactionBusyError ? undefined : (err as Error));
      throw err;
    }
    return new TxFence(journalId, client, Math.max(200, Math.floor(this.opts.idleTimeoutMs / 4)), signal);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }
}

export function fenceKey(journalId: string): string {
  return `filestore:tx:${journalId}`;
}

/** The held fence of one transaction attempt. */
export class TxFence {
  private lost: Error | null = null;
  private released = false;
  private readonly timer: NodeJS.Timeout;
  // Sessions are pooled and reused: the listeners go with the fence, not with the session.
  private readonly onError = (err: Error) => (this.lost ??= err);
  private readonly onEnd = () => (this.lost ??= new Error('fence session ended'));

  constructor(
    readonly journalId: string,
    private readonly client: PoolClient,
    pingMs: number,
    private readonly signal?: AbortSignal,
  ) {
    client.on('error', this.onError);
    client.on('end', this.onEnd);
    this.timer = setInterval(() => void this.ping(), pingMs);
    this.timer.unref();
  }

  /** Throws unless this attempt still holds the transaction (a round trip on the fence's session). */
  readonly check = async (): Promise<void> => {
    this.signal?.throwIfAborted();
    if (!this.lost && !this.released) await this.ping();
    if (this.lost || this.released) throw new FenceLostError(this.journalId, this.lost?.message ?? 'released');
  };

  /** Unlocks and returns the session (a lost one is destroyed, which unlocks too). */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    clearInterval(this.timer);
    this.client.off('error', this.onError);
    this.client.off('end', this.onEnd);
    if (this.lost) {
      this.client.release(this.lost);
      return;
    }
    try {
      await this.client.query(`SELECT pg_advisory_unlock(hashtextextended($1, 0))`, [fenceKey(this.journalId)]);
      this.client.release();
    } catch (err) {
      this.client.release(err as Error);
    }
  }

  private async ping(): Promise<void> {
    if (this.lost || this.released) return;
    try {
      await this.client.query('SELECT 1');
    } catch (err) {
      this.lost ??= err as Error;
    }
  }
}

/**
 * Runs `fn` while holding the transaction's fence: a second attempt of the same transaction waits
 * (TX_BUSY, retried) until this one ends, and `fn` gets the guard it must pass to the executor.
 */
export async function fenced<T>(fences: FencePool, journalId: string, fn: (fence: TxFence) => Promise<T>): Promise<T> {
  const fence = await fences.acquire(journalId, Context.current().cancellationSignal);
  try {
    return await fn(fence);
  } finally {
    await fence.release();
  }
}
