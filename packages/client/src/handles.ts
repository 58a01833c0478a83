/**
 * Handles of started mutations, and the two ways to await one: over the HTTP API
 * (`GET /v1/runs/{workflowId}`, polled with backoff — needs nothing but the API) or through
 * Temporal (`getHandle(workflowId).result()` on `@temporalio/client` — one long poll instead of
 * many requests; for services that can reach the Temporal frontend).
 */
import type { Client, Connection, ConnectionOptions } from '@temporalio/client';
import { FilestoreError } from '../../../src/errors';
import type { MutationResult } from '../../../src/mutations';
import { errorFromInfoLike, errorFromWorkflowFailure } from './errors';
import type { HttpTransport } from './http';
import type { RunStatus } from './types';

/**
 * A started mutation.
 * @example
 * ```ts
 * const h = await fs.mkdir('docs', 'reports/2026');
 * console.log(h.workflowId);           // filestore:docs:mkdir:<key>
 * const { node } = await h.result();   // or a typed error (CONFLICT, READ_ONLY_MOUNT, …)
 * ```
 */
export interface MutationHandle {
  /** `filestore:<mount>:<op>:<idempotencyKey>` — the Temporal workflow id (find it in the Web UI). */
  readonly workflowId: string;
  /** Same key → same workflow, same journal entry, same result: retry a failed call with it. */
  readonly idempotencyKey: string;
  /** Waits for the mutation; resolves with its result or rejects with the typed error it failed with. */
  result(): Promise<MutationResult>;
  /** Where the run stands now (`GET /v1/runs/{workflowId}`). */
  status(): Promise<RunStatus>;
}

/**
 * How to await mutations through Temporal instead of polling the API.
 * @example `{ address: 'temporal.internal:7233', namespace: 'filestore', connection: { tls: true } }`
 */
export interface TemporalOptions {
  /** Temporal frontend, e.g. `127.0.0.1:7233`. */
  address?: string;
  /** @defaultValue 'default' */
  namespace?: string;
  /** TLS / API key etc. for the connection (see `@temporalio/client` ConnectionOptions). */
  connection?: Omit<ConnectionOptions, 'address'>;
  /** An existing client to use instead of connecting (it stays the caller's to close). */
  client?: Client;
}

/**
 * Backoff of {@link MutationHandle.result} when it polls the API.
 * @example `new Filestore({ url, token, poll: { initialMs: 200, maxMs: 5000 } })`
 */
export interface PollOptions {
  /** @defaultValue 50 */
  initialMs?: number;
  /** @defaultValue 1000 */
  maxMs?: number;
}

/** Run states in which the mutation is still going. */
const RUNNING = new Set(['RUNNING', 'PENDING', 'CONTINUED_AS_NEW']);

/** Awaits results; shared by every handle of one Filestore instance. */
export class ResultWaiter {
  private temporalClient: Promise<Client> | null = null;
  private connection: Connection | null = null;

  constructor(
    private readonly http: HttpTransport,
    private readonly temporal: TemporalOptions | undefined,
    private readonly poll: PollOptions,
  ) {}

  /** A handle for `workflowId`; `settled` is a result the API already answered with. */
  handle(workflowId: string, idempotencyKey: string, settled?: MutationResult): MutationHandle {
    return {
      workflowId,
      idempotencyKey,
      result: () => (settled ? Promise.resolve(settled) : this.temporal ? this.viaTemporal(workflowId) : this.viaPolling(workflowId)),
      status: () => this.status(workflowId),
    };
  }

  status(workflowId: string): Promise<RunStatus> {
    return this.http.json<RunStatus>('GET', `/v1/runs/${encodeURIComponent(workflowId)}`);
  }

  async close(): Promise<void> {
    const connection = this.connection;
    this.connection = null;
    this.temporalClient = null;
    await connection?.close();
  }

  private async viaPolling(workflowId: string): Promise<MutationResult> {
    let delay = this.poll.initialMs ?? 50;
    for (;;) {
      const run = await this.status(workflowId);
      if (run.result && !run.error) return run.result;
      if (!RUNNING.has(run.status)) throw runFailure(run);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, this.poll.maxMs ?? 1000);
    }
  }

  private async viaTemporal(workflowId: string): Promise<MutationResult> {
    const client = await this.client();
    try {
      return (await client.workflow.getHandle(workflowId).result()) as MutationResult;
    } catch (err) {
      throw errorFromWorkflowFailure(err);
    }
  }

  /** Loads `@temporalio/client` and connects on first use: callers that poll never load it. */
  private client(): Promise<Client> {
    const opts = this.temporal!;
    if (opts.client) return Promise.resolve(opts.client);
    this.temporalClient ??= (async () => {
      // require, not import(): the bundle is CommonJS, and a dynamic import() fails in hosts
      // without ESM loaders (Jest's module registry, some bundlers).
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const { Client, Connection } = require('@temporalio/client') as typeof import('@temporalio/client');
      this.connection = await Connection.connect({ ...opts.connection, address: opts.address ?? '127.0.0.1:7233' });
      return new Client({ connection: this.connection, namespace: opts.namespace ?? 'default' });
    })();
    // A failed connect is retried by the next call instead of being remembered.
    this.temporalClient.catch(() => (this.temporalClient = null));
    return this.temporalClient;
  }
}

/** The typed error of a run that ended without a result. */
function runFailure(run: RunStatus): FilestoreError {
  const e = run.error;
  if (e && typeof e.code === 'string') return errorFromInfoLike({ ...e, code: e.code });
  return errorFromInfoLike({
    code: 'INTERNAL',
    message: `mutation ${run.workflowId} ended ${run.status} without a result`,
    details: { workflowId: run.workflowId, status: run.status },
  });
}
