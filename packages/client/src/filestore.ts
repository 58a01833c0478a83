/**
 * `Filestore`: a service's client of the Filestore HTTP API. Reads the catalog, downloads and
 * uploads files (streamed both ways), and starts every mutation through the API — where the
 * bearer token's scope, the request's validation and the upload area are — then awaits it over the
 * API or, given `temporal`, through Temporal.
 *
 * Why mutations start over HTTP even with Temporal at hand: the API is the one place that checks
 * the token's scope, builds the request (workflow id, task queue, memo fingerprint, search
 * attributes) and owns the upload area a `put`'s bytes must pass through. A client starting
 * workflows itself would need none of the token's limits to write anywhere. Awaiting is harmless,
 * so that part may go straight to Temporal.
 */
import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { InvalidRequestError } from '../../../src/errors';
import { IDEMPOTENCY_KEY_PATTERN, type MutationResult } from '../../../src/mutations';
import { ResultWaiter, type MutationHandle } from './handles';
import { encodePath, HttpTransport, mountRoute, type Query } from './http';
import type { AddMountInput, DriftQuery, FilestoreOptions, JournalQuery, ListOptions, MutationOptions, PutOptions, ReadOptions, TransferOptions } from './options';
import type { ByteRange, CatalogNode, DriftPage, FileInfo, JournalEntry, JournalPage, Mount, MutationAccepted, NodePage, RunStatus } from './types';
import { uploadBodyOf, type PutSource } from './upload-body';

/**
 * Client of the Filestore HTTP API.
 *
 * @example
 * ```ts
 * import { Filestore } from '@filestore/client';
 *
 * const fs = new Filestore({ url: 'http://127.0.0.1:8080', token: process.env.FILESTORE_TOKEN });
 * const put = await fs.put('docs', 'reports/q3.pdf', { file: '/tmp/q3.pdf' });
 * const result = await put.result();              // MutationResult, or a typed FilestoreError
 * const bytes = await fs.get('docs', 'reports/q3.pdf');
 * ```
 */
export class Filestore {
  private readonly http: HttpTransport;
  private readonly waiter: ResultWaiter;

  constructor(options: FilestoreOptions) {
    const fetchImpl = options.fetch ?? globalThis.fetch;
    if (typeof fetchImpl !== 'function') throw new InvalidRequestError('no fetch: @filestore/client needs Node ≥ 20 (or pass options.fetch)');
    this.http = new HttpTransport(options.url, options.token, fetchImpl, options.headers ?? {});
    this.waiter = new ResultWaiter(this.http, options.temporal, options.poll ?? {});
  }

  /** Closes the Temporal connection this client opened (if any). Requests need no closing. */
  close(): Promise<void> {
    return this.waiter.close();
  }

  // ---- catalog reads ----------------------------------------------------------------------

  /**
   * The catalog's node at a path (`''` is the mount root); NOT_FOUND when the catalog has none.
   * @example `const node = await fs.stat('docs', 'reports/q3.pdf'); node.sha256;`
   */
  stat(mount: string, path: string): Promise<CatalogNode> {
    return this.http.json('GET', mountRoute(mount, `/nodes/${encodePath(path, { allowRoot: true })}`));
  }

  /**
   * One page of a directory's children (or, `recursive`, its subtree) in path order.
   * @example
   * ```ts
   * let page = await fs.list('docs', 'reports', { limit: 100 });
   * while (page.nextCursor) page = await fs.list('docs', 'reports', { limit: 100, cursor: page.nextCursor });
   * ```
   */
  list(mount: string, path = '', opts: ListOptions = {}): Promise<NodePage> {
    return this.http.json('GET', mountRoute(mount, `/list/${encodePath(path, { allowRoot: true })}`), {
      query: { recursive: opts.recursive, limit: opts.limit, cursor: opts.cursor },
    });
  }

  /**
   * Every node of a listing, page after page (`limit` is the page size).
   * @example `for await (const node of fs.listAll('docs', '', { recursive: true })) console.log(node.path);`
   */
  async *listAll(mount: string, path = '', opts: Omit<ListOptions, 'cursor'> = {}): AsyncGenerator<CatalogNode> {
    let cursor: string | null = null;
    do {
      const page: NodePage = await this.list(mount, path, { ...opts, cursor });
      yield* page.nodes;
      cursor = page.nextCursor;
    } while (cursor);
  }

  /**
   * One page of the journal, newest first.
   * @example `const { entries } = await fs.journal({ mount: 'docs', status: 'FAILED', limit: 20 });`
   */
  journal(q: JournalQuery = {}): Promise<JournalPage> {
    return this.http.json('GET', '/v1/journal', { query: { mount: q.mount, status: q.status, limit: q.limit, cursor: q.cursor } });
  }

  /**
   * Every journal entry matching `q`, page after page.
   * @example `for await (const e of fs.journalAll({ mount: 'docs' })) console.log(e.op, e.path, e.status);`
   */
  async *journalAll(q: Omit<JournalQuery, 'cursor'> = {}): AsyncGenerator<JournalEntry> {
    let cursor: string | null = null;
    do {
      const page: JournalPage = await this.journal({ ...q, cursor });
      yield* page.entries;
      cursor = page.nextCursor;
    } while (cursor);
  }

  /**
   * One journal entry by its id or its idempotency key.
   * @example `const entry = await fs.journalEntry(handle.idempotencyKey);`
   */
  journalEntry(idOrKey: string): Promise<JournalEntry> {
    return this.http.json('GET', `/v1/journal/${encodeURIComponent(idOrKey)}`);
  }

  /**
   * One page of drift events (changes made behind Filestore's back); open ones by default.
   * @example `const { events } = await fs.drift({ mount: 'docs' });`
   */
  drift(q: DriftQuery = {}): Promise<DriftPage> {
    return this.http.json('GET', '/v1/drift', { query: { mount: q.mount, open: q.open, limit: q.limit, cursor: q.cursor } });
  }

  /**
   * The mounts this token may see.
   * @example `for (const m of await fs.mounts()) console.log(m.id, m.kind, m.options.readOnly);`
   */
  async mounts(): Promise<Mount[]> {
    return (await this.http.json<{ mounts: Mount[] }>('GET', '/v1/mounts')).mounts;
  }

  /** One mount; UNKNOWN_MOUNT when there is none. @example `const m = await fs.mount('docs');` */
  mount(id: string): Promise<Mount> {
    return this.http.json('GET', mountRoute(id));
  }

  /**
   * Registers a mount (admin token): a directory on the host of a worker, or a bucket (+ prefix);
   * S3 credentials stay with the workers, never in the request.
   * @example `await fs.addMount({ id: 'docs', kind: 'local', rootPath: '/srv/docs' });`
   */
  addMount(input: AddMountInput): Promise<Mount> {
    return this.http.json('POST', '/v1/mounts', { json: input });
  }

  /** Changes a mount's options (admin token). @example `await fs.updateMount('docs', { readOnly: true });` */
  updateMount(id: string, patch: { readOnly?: boolean; watch?: boolean }): Promise<Mount> {
    return this.http.json('PATCH', mountRoute(id), { json: patch });
  }

  // ---- downloads --------------------------------------------------------------------------

  /**
   * A file's headers (size, ETag) without its bytes. NOT_FOUND when absent (a HEAD answer has no
   * body, so an unknown mount also comes back as NOT_FOUND here).
   * @example `const { size, etag } = await fs.head('docs', 'reports/q3.pdf');`
   */
  async head(mount: string, path: string, opts: { signal?: AbortSignal } = {}): Promise<FileInfo> {
    const res = await this.http.request('HEAD', fileRoute(mount, path), { signal: opts.signal });
    return {
      size: Number(res.headers.get('content-length') ?? 0),
      etag: res.headers.get('etag'),
      lastModified: res.headers.get('last-modified'),
      contentType: res.headers.get('content-type'),
    };
  }

  /**
   * A whole file (or `range` of it) in memory. For large files use {@link Filestore.openRead}.
   * @example `const text = (await fs.get('docs', 'notes/todo.md')).toString('utf8');`
   */
  async get(mount: string, path: string, opts: ReadOptions = {}): Promise<Buffer> {
    const res = await this.download(mount, path, opts);
    return Buffer.from(await res.arrayBuffer());
  }

  /**
   * A stream of a file (or `range` of it), read from its backend as it is consumed. Errors of the
   * request (NOT_FOUND, RANGE_NOT_SATISFIABLE, …) reject the promise; a web stream is
   * `Readable.toWeb(stream)` away.
   * @example
   * ```ts
   * import { pipeline } from 'node:stream/promises';
   * await pipeline(await fs.openRead('docs', 'video.mp4', { range: { start: 0, end: 1023 } }), createWriteStream('head.bin'));
   * ```
   */
  async openRead(mount: string, path: string, opts: ReadOptions = {}): Promise<Readable> {
    const res = await this.download(mount, path, opts);
    if (!res.body) return Readable.from([]);
    return Readable.fromWeb(res.body as import('node:stream/web').ReadableStream<Uint8Array>);
  }

  private download(mount: string, path: string, opts: ReadOptions): Promise<Response> {
    const headers: Record<string, string> = {};
    if (opts.range) headers.range = rangeHeader(opts.range);
    return this.http.request('GET', fileRoute(mount, path), { headers, signal: opts.signal });
  }

  // ---- mutations --------------------------------------------------------------------------

  /**
   * Writes a file of any size: the source is streamed as the PUT body (never held in memory whole,
   * except a Buffer you pass), the server stages it in its upload area, and the write mutation
   * runs from there. Resolves once the API accepted the upload and started the mutation.
   * @example
   * ```ts
   * const h = await fs.put('docs', 'big.iso', createReadStream('/data/big.iso'), { idempotencyKey: 'big-iso-v1', overwrite: true });
   * const { node } = await h.result();
   * ```
   */
  async put(mount: string, path: string, source: PutSource, opts: PutOptions = {}): Promise<MutationHandle> {
    const key = keyOf(opts);
    const upload = await uploadBodyOf(source, opts.size);
    const headers: Record<string, string> = { 'content-type': opts.contentType ?? 'application/octet-stream' };
    if (upload.length !== undefined) headers['content-length'] = String(upload.length);
    const query: Query = {
      overwrite: opts.overwrite,
      parents: opts.createParents,
      mode: opts.mode === undefined ? undefined : opts.mode.toString(8).padStart(3, '0'),
      sha256: opts.expectedSha256,
      force: opts.force,
      waitForLock: opts.waitForLock,
    };
    return this.mutate('PUT', fileRoute(mount, path), key, { query, headers, body: upload.body, signal: opts.signal });
  }

  /**
   * Creates a directory (and missing parents unless `parents: false`).
   * @example `await (await fs.mkdir('docs', 'reports/2026')).result();`
   */
  mkdir(mount: string, path: string, opts: MutationOptions & { parents?: boolean } = {}): Promise<MutationHandle> {
    return this.mutateJson(mount, 'mkdir', opts, { path, parents: opts.parents });
  }

  /**
   * Copies a file, or a directory with `recursive`, within a mount or (`targetMount`) to another.
   * @example `await (await fs.copy('docs', 'a.txt', 'b.txt', { overwrite: true })).result();`
   */
  copy(mount: string, from: string, to: string, opts: TransferOptions & { recursive?: boolean } = {}): Promise<MutationHandle> {
    return this.mutateJson(mount, 'copy', opts, {
      from,
      to,
      targetMount: opts.targetMount,
      overwrite: opts.overwrite,
      recursive: opts.recursive,
      createParents: opts.createParents,
    });
  }

  /**
   * Moves (renames) a file or directory within a mount, or a file to another mount (`targetMount`);
   * the source goes only after the target is verified.
   * @example `await (await fs.move('docs', 'inbox/a.pdf', 'archive/a.pdf', { targetMount: 'archive' })).result();`
   */
  move(mount: string, from: string, to: string, opts: TransferOptions = {}): Promise<MutationHandle> {
    return this.mutateJson(mount, 'move', opts, { from, to, targetMount: opts.targetMount, overwrite: opts.overwrite, createParents: opts.createParents });
  }

  /**
   * Deletes a file, or a directory tree with `recursive`.
   * @example `await (await fs.remove('docs', 'tmp', { recursive: true })).result();`
   */
  remove(mount: string, path: string, opts: MutationOptions & { recursive?: boolean } = {}): Promise<MutationHandle> {
    return this.mutateJson(mount, 'delete', opts, { path, recursive: opts.recursive });
  }

  /**
   * Accepts what is on the backend now as the catalog's truth for a path (or, `recursive`, a
   * subtree): re-captures metadata and hashes, resolves its drift events, clears INCONSISTENT.
   * @example `await (await fs.reconcile('docs', 'reports', { recursive: true })).result();`
   */
  reconcile(mount: string, path: string, opts: Omit<MutationOptions, 'force'> & { recursive?: boolean } = {}): Promise<MutationHandle> {
    // No `force`: reconciling is what clears INCONSISTENT.
    return this.mutateJson(mount, 'reconcile', opts, { path, recursive: opts.recursive });
  }

  /**
   * Where a mutation's run stands.
   * @example `const { status } = await fs.run('filestore:docs:write:big-iso-v1');`
   */
  run(workflowId: string): Promise<RunStatus> {
    return this.waiter.status(workflowId);
  }

  /**
   * The handle of a mutation started earlier (by this or another process).
   * @example `const result = await fs.handle('filestore:docs:write:big-iso-v1').result();`
   */
  handle(workflowId: string): MutationHandle {
    return this.waiter.handle(workflowId, workflowId.split(':').slice(3).join(':'));
  }

  private mutateJson(mount: string, verb: string, opts: MutationOptions, fields: Record<string, unknown>): Promise<MutationHandle> {
    const key = keyOf(opts);
    const json = { ...fields, force: opts.force, waitForLock: opts.waitForLock };
    return this.mutate('POST', mountRoute(mount, `/${verb}`), key, { json, signal: opts.signal });
  }

  /** Sends a mutation asynchronously and returns its handle (settled already if the API answered with the result). */
  private async mutate(method: string, route: string, key: string, init: Parameters<HttpTransport['request']>[2]): Promise<MutationHandle> {
    const res = await this.http.request(method, route, {
      ...init,
      headers: { ...init?.headers, accept: 'application/json', 'idempotency-key': key, prefer: 'respond-async' },
    });
    const body = (await res.json()) as MutationAccepted | MutationResult;
    if (res.status === 202) return this.waiter.handle(body.workflowId, (body as MutationAccepted).idempotencyKey ?? key);
    // A finished mutation under this key (or a server that ignored Prefer) answers with the result.
    return this.waiter.handle(body.workflowId, key, body as MutationResult);
  }
}

function keyOf(opts: MutationOptions): string {
  const key = opts.idempotencyKey ?? randomUUID();
  if (!IDEMPOTENCY_KEY_PATTERN.test(key)) throw new InvalidRequestError(`idempotency key must match ${IDEMPOTENCY_KEY_PATTERN}`, { key });
  return key;
}

function fileRoute(mount: string, path: string): string {
  return mountRoute(mount, `/files/${encodePath(path)}`);
}

function rangeHeader(r: ByteRange): string {
  const ok = Number.isSafeInteger(r.start) && r.start >= 0 && (r.end === undefined || (Number.isSafeInteger(r.end) && r.end >= r.start));
  if (!ok) throw new InvalidRequestError(`invalid range ${JSON.stringify(r)}: start ≥ 0 and end ≥ start (inclusive)`);
  return `bytes=${r.start}-${r.end ?? ''}`;
}
