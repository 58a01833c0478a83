/** The option bags of {@link Filestore}'s methods. */
import type { PollOptions, TemporalOptions } from './handles';
import type { ByteRange, JournalStatus } from './types';

/**
 * How to reach Filestore (`new Filestore(options)`).
 * @example `new Filestore({ url: 'https://files.internal', token, temporal: { address: 'temporal:7233' } })`
 */
export interface FilestoreOptions {
  /** Base URL of the API, e.g. `http://127.0.0.1:8080`. */
  url: string | URL;
  /** Bearer token (`filestore token create`). */
  token?: string;
  /**
   * Await mutations through Temporal (`getHandle(workflowId).result()`) instead of polling
   * `GET /v1/runs/{id}`. Mutations still start through the API (see the module comment).
   */
  temporal?: TemporalOptions;
  /** Backoff of result() when it polls the API. */
  poll?: PollOptions;
  /** Extra headers on every request (tracing, a proxy's auth). */
  headers?: Record<string, string>;
  /** @defaultValue globalThis.fetch */
  fetch?: typeof fetch;
}

/**
 * Options every mutation accepts.
 * @example `await fs.remove('docs', 'old.txt', { idempotencyKey: 'cleanup-42', waitForLock: true })`
 */
export interface MutationOptions {
  /** Same key → same workflow and the same result; a random UUID when absent (read it off the handle to retry). */
  idempotencyKey?: string;
  /** Wait for a conflicting mutation of the same path to finish instead of failing with CONFLICT. @defaultValue false */
  waitForLock?: boolean;
  /** Mutate even where the catalog marks the path INCONSISTENT (else INCONSISTENT_NODE). @defaultValue false */
  force?: boolean;
  signal?: AbortSignal;
}

/**
 * Options of {@link Filestore.put}.
 * @example `await fs.put('docs', 'a.csv', stream, { size: 1_000_000, overwrite: true, mode: 0o640, expectedSha256: hex })`
 */
export interface PutOptions extends MutationOptions {
  /** Replace an existing file. @defaultValue false */
  overwrite?: boolean;
  /** Create missing parent directories. @defaultValue true */
  createParents?: boolean;
  /** POSIX mode of a new file, e.g. `0o644`. */
  mode?: number;
  /** Refuse the write unless the content hashes to this hex sha256. */
  expectedSha256?: string;
  /** Length of a streamed source in bytes, sent as Content-Length (lets the server refuse early). */
  size?: number;
  /** @defaultValue 'application/octet-stream' */
  contentType?: string;
}

/**
 * Options of {@link Filestore.copy} and {@link Filestore.move}.
 * @example `await fs.move('docs', 'inbox/a.pdf', 'a.pdf', { targetMount: 'archive', createParents: true })`
 */
export interface TransferOptions extends MutationOptions {
  /** Mount the target path is on. @defaultValue the source's mount */
  targetMount?: string;
  /** Replace an existing target. @defaultValue false */
  overwrite?: boolean;
  /** Create the target's missing parents. */
  createParents?: boolean;
}

/**
 * Options of {@link Filestore.list}.
 * @example `await fs.list('docs', 'reports', { recursive: true, limit: 500, cursor: page.nextCursor })`
 */
export interface ListOptions {
  /** The whole subtree, not just direct children. @defaultValue false */
  recursive?: boolean;
  /** Page size (≤ 10,000). @defaultValue 1000 */
  limit?: number;
  /** `nextCursor` of the previous page. */
  cursor?: string | null;
}

/**
 * Filter and page of {@link Filestore.journal}.
 * @example `await fs.journal({ mount: 'docs', status: 'ROLLED_BACK', limit: 20 })`
 */
export interface JournalQuery {
  mount?: string;
  status?: JournalStatus;
  limit?: number;
  cursor?: string | null;
}

/**
 * Filter and page of {@link Filestore.drift}.
 * @example `await fs.drift({ mount: 'docs', open: false })`
 */
export interface DriftQuery {
  mount?: string;
  /** Only events not yet resolved. @defaultValue true */
  open?: boolean;
  limit?: number;
  cursor?: string | null;
}

/**
 * A mount to register (`POST /v1/mounts`, admin token).
 * @example `{ kind: 's3', id: 'archive', bucket: 'acme-archive', prefix: 'filestore/', region: 'eu-west-1' }`
 */
export type AddMountInput =
  | { kind: 'local'; id: string; rootPath: string; readOnly?: boolean; watch?: boolean }
  | { kind: 's3'; id: string; bucket: string; prefix?: string; endpoint?: string; region?: string; readOnly?: boolean; watch?: boolean };

/**
 * Options of {@link Filestore.get} and {@link Filestore.openRead}.
 * @example `await fs.get('docs', 'big.bin', { range: { start: 0, end: 1023 } })`
 */
export interface ReadOptions {
  /** Bytes to read (`end` inclusive); absent reads the whole file. */
  range?: ByteRange;
  signal?: AbortSignal;
}
