/**
 * Catalog reads: a node's metadata, paged listings, the journal, drift events and the status of a
 * run. Scoped by the token: a mount token sees its mount only (journal and drift listings are
 * filtered to it; a run is visible when its workflow id names the mount).
 */
import { z } from 'zod';
import { listDriftPage } from '../../catalog/drift';
import { findJournalEntry, listJournalPage } from '../../catalog/journal';
import type { JournalRow } from '../../catalog/types';
import { toFilestoreError } from '../../client/filestore-client';
import { ForbiddenError, InvalidRequestError, NotFoundError, toErrorInfo } from '../../errors';
import { DriftQuery, JournalQuery, ListQuery, MountParams, MountPathParams, Problem } from '../../operations/schemas';
import { authorize, visibleMounts } from '../auth';
import { principalOf, type ApiApp, type ApiDeps } from '../api-context';
import { IDEMPOTENCY_KEY_PATTERN } from '../../mutations';

const problems = { '4xx': Problem, '5xx': Problem };

/**
 * A journal row as the API shows it: a write's source names a file on some host (the upload area,
 * a caller's disk) or carries inline bytes — neither is a reader's business, so only its kind
 * (and an inline source's size) remain.
 */
function redacted(row: JournalRow): JournalRow {
  const request = row.request as { source?: { kind?: string; base64?: string } } | null;
  if (!request?.source) return row;
  const src = request.source;
  const source = src.kind === 'inline' && typeof src.base64 === 'string' ? { kind: 'inline', bytes: Buffer.from(src.base64, 'base64').length } : { kind: src.kind };
  return { ...row, request: { ...request, source } } as JournalRow;
}

export function registerCatalogRoutes(app: ApiApp, deps: ApiDeps): void {
  const { client, db } = deps;
  const tags = ['catalog'];

  const nodeRoute = async (mount: string, p: string) => {
    await client.getMount(mount);
    const row = await client.getNode(mount, p);
    // A deleted node's row stays for history; to a reader the path does not exist.
    if (!row || row.state === 'DELETED') throw new NotFoundError(`${mount}:${p}`, { mountId: mount, path: p });
    return row;
  };
  app.get(
    '/v1/mounts/:mount/nodes/*',
    { schema: { tags, summary: "A node's catalog metadata (404 for a deleted path and for the mount root, which has no node)", params: MountPathParams, response: { 200: z.any(), ...problems } } },
    async (req) => {
      authorize(principalOf(req), { mountId: req.params.mount, write: false });
      return nodeRoute(req.params.mount, req.params['*']);
    },
  );

  const listRoute = async (mount: string, p: string, q: z.infer<typeof ListQuery>) => client.listPage(mount, p, { recursive: q.recursive, limit: q.limit, cursor: q.cursor });
  app.get(
    '/v1/mounts/:mount/list/*',
    {
      schema: {
        tags,
        summary: 'One page of a directory listing from the catalog, in path order (the mount root: /list/); pass nextCursor as cursor for the next',
        params: MountPathParams,
        querystring: ListQuery,
        response: { 200: z.object({ nodes: z.array(z.any()), nextCursor: z.string().nullable() }), ...problems },
      },
    },
    async (req) => {
      authorize(principalOf(req), { mountId: req.params.mount, write: false });
      return listRoute(req.params.mount, req.params['*'], req.query);
    },
  );
  app.get(
    '/v1/mounts/:mount/list',
    { schema: { tags, summary: 'The mount root listing (same as /list/)', params: MountParams, querystring: ListQuery, response: { 200: z.object({ nodes: z.array(z.any()), nextCursor: z.string().nullable() }), ...problems } } },
    async (req) => {
      authorize(principalOf(req), { mountId: req.params.mount, write: false });
      return listRoute(req.params.mount, '', req.query);
    },
  );

  /** The one mount a scoped token may ask about, or its refusal of another. */
  const scopedMount = (principal: ReturnType<typeof principalOf>, asked: string | undefined): string | undefined => {
    const visible = visibleMounts(principal);
    if (visible === null) return asked;
    if (asked !== undefined && !visible.includes(asked)) throw new ForbiddenError(`this token is not valid for mount ${JSON.stringify(asked)}`);
    return visible[0];
  };

  app.get(
    '/v1/journal',
    {
      schema: {
        tags,
        summary: 'Journal entries, newest first, one page at a time',
        querystring: JournalQuery,
        response: { 200: z.object({ entries: z.array(z.any()), nextCursor: z.string().nullable() }), ...problems },
      },
    },
    async (req) => {
      const mountId = scopedMount(principalOf(req), req.query.mount);
      const page = await listJournalPage(db, { mountId, status: req.query.status, limit: req.query.limit ?? 50, cursor: req.query.cursor });
      return { ...page, entries: page.entries.map(redacted) };
    },
  );

  app.get(
    '/v1/journal/:idOrKey',
    { schema: { tags, summary: 'One journal entry, by id or idempotency key', params: z.object({ idOrKey: z.string().regex(IDEMPOTENCY_KEY_PATTERN, 'a journal id (UUID) or an idempotency key') }), response: { 200: z.any(), ...problems } } },
    async (req) => {
      const row = await findJournalEntry(db, req.params.idOrKey);
      const principal = principalOf(req);
      const visible = visibleMounts(principal);
      // A scoped token learns nothing of another mount's entries, not even that they exist.
      if (!row || (visible !== null && !visible.includes(row.mountId) && !(row.targetMountId && visible.includes(row.targetMountId)))) {
        throw new NotFoundError(`journal entry ${JSON.stringify(req.params.idOrKey)}`);
      }
      return redacted(row);
    },
  );

  app.get(
    '/v1/drift',
    {
      schema: {
        tags,
        summary: 'Drift events (changes made behind Filestore), newest first; open ones unless open=false',
        querystring: DriftQuery,
        response: { 200: z.object({ events: z.array(z.any()), nextCursor: z.string().nullable() }), ...problems },
      },
    },
    async (req) => {
      const mountId = scopedMount(principalOf(req), req.query.mount);
      return listDriftPage(db, { mountId, all: req.query.open === false, limit: req.query.limit ?? 100, cursor: req.query.cursor });
    },
  );

  app.get(
    '/v1/runs/:workflowId',
    {
      schema: {
        tags,
        summary: "A mutation run's status; its result or error once it ended",
        params: z.object({ workflowId: z.string().min(1).max(512) }),
        response: {
          200: z.object({ workflowId: z.string(), status: z.string(), result: z.any().optional(), error: z.any().optional() }),
          ...problems,
        },
      },
    },
    async (req) => {
      const id = req.params.workflowId;
      const m = /^filestore:([a-z0-9][a-z0-9_-]{0,62}):[a-z]+:/.exec(id);
      if (!m) throw new InvalidRequestError(`${JSON.stringify(id)} is not a Filestore workflow id (filestore:<mount>:<op>:<key>)`);
      authorize(principalOf(req), { mountId: m[1]!, write: false });
      const handle = client.temporal.workflow.getHandle(id);
      let status: string;
      try {
        status = (await handle.describe()).status.name;
      } catch (err) {
        if ((err as Error).name === 'WorkflowNotFoundError') throw new NotFoundError(`run ${JSON.stringify(id)}`);
        throw err;
      }
      if (status === 'RUNNING') return { workflowId: id, status };
      try {
        return { workflowId: id, status: 'COMMITTED', result: await handle.result() };
      } catch (err) {
        return { workflowId: id, status, error: toErrorInfo(toFilestoreError(err)) };
      }
    },
  );
}
