/**
 * Mutations with JSON bodies: mkdir, copy, move, delete, reconcile (uploads and `DELETE` on a file
 * path are in files.ts). Each is the SDK's call with the request's Idempotency-Key, answered by
 * answerMutation (waiting, or 202 with `Prefer: respond-async`).
 */
import { z } from 'zod';
import { AcceptedRun, DeleteBody, MkdirBody, MountParams, MutationHeaders, Problem, ReconcileBody, TransferBody } from '../../operations/schemas';
import { authorize } from '../auth';
import { answerMutation, idempotencyKeyOf } from '../mutation-reply';
import { principalOf, type ApiApp, type ApiDeps } from '../api-context';

/** Answers of every mutation route, for the OpenAPI document. */
export const MUTATION_RESPONSES = {
  200: z.any().describe('MutationResult: the committed mutation (journal id, workflow id, the node it left)'),
  202: AcceptedRun.describe('Started (Prefer: respond-async); poll statusUrl'),
  '4xx': Problem.describe('A typed refusal (application/problem+json)'),
  '5xx': Problem.describe('A server-side failure (application/problem+json)'),
};

export function registerMutationRoutes(app: ApiApp, deps: ApiDeps): void {
  const { client } = deps;
  const tags = ['mutations'];

  app.post(
    '/v1/mounts/:mount/mkdir',
    { schema: { tags, summary: 'Create a directory (and missing parents unless parents is false)', params: MountParams, headers: MutationHeaders, body: MkdirBody, response: MUTATION_RESPONSES } },
    async (req, reply) => {
      authorize(principalOf(req), { mountId: req.params.mount, write: true });
      const b = req.body;
      const handle = await client.mkdir(req.params.mount, b.path, { idempotencyKey: idempotencyKeyOf(req), parents: b.parents, force: b.force, waitForLock: b.waitForLock });
      return answerMutation(req, reply, handle);
    },
  );

  for (const op of ['copy', 'move'] as const) {
    app.post(
      `/v1/mounts/:mount/${op}`,
      {
        schema: {
          tags,
          summary: op === 'copy' ? 'Copy a file (or a tree with recursive) within a mount or to another mount' : 'Move a file or directory within a mount, or a file to another mount',
          params: MountParams,
          headers: MutationHeaders,
          body: TransferBody,
          response: MUTATION_RESPONSES,
        },
      },
      async (req, reply) => {
        const p = principalOf(req);
        const b = req.body;
        const target = b.targetMount ?? req.params.mount;
        // A move deletes its source; a copy only reads it.
        authorize(p, { mountId: req.params.mount, write: op === 'move' });
        authorize(p, { mountId: target, write: true });
        const opts = {
          idempotencyKey: idempotencyKeyOf(req),
          overwrite: b.overwrite,
          createParents: b.createParents,
          targetMountId: b.targetMount,
          force: b.force,
          waitForLock: b.waitForLock,
        };
        const handle = op === 'copy' ? await client.copy(req.params.mount, b.from, b.to, { ...opts, recursive: b.recursive }) : await client.move(req.params.mount, b.from, b.to, opts);
        return answerMutation(req, reply, handle);
      },
    );
  }

  app.post(
    '/v1/mounts/:mount/delete',
    { schema: { tags, summary: 'Delete a file, or a directory tree with recursive', params: MountParams, headers: MutationHeaders, body: DeleteBody, response: MUTATION_RESPONSES } },
    async (req, reply) => {
      authorize(principalOf(req), { mountId: req.params.mount, write: true });
      const b = req.body;
      const handle = await client.remove(req.params.mount, b.path, { idempotencyKey: idempotencyKeyOf(req), recursive: b.recursive, force: b.force, waitForLock: b.waitForLock });
      return answerMutation(req, reply, handle);
    },
  );

  app.post(
    '/v1/mounts/:mount/reconcile',
    {
      schema: {
        tags,
        summary: "Accept what is on the backend now as the catalog's truth for a path (or subtree): new node versions, drift resolved, INCONSISTENT cleared",
        params: MountParams,
        headers: MutationHeaders,
        body: ReconcileBody,
        response: MUTATION_RESPONSES,
      },
    },
    async (req, reply) => {
      // Reconcile writes only the catalog, but it rewrites what the catalog says: a writer's right.
      authorize(principalOf(req), { mountId: req.params.mount, write: true });
      const b = req.body;
      const handle = await client.reconcile(req.params.mount, b.path, { idempotencyKey: idempotencyKeyOf(req), recursive: b.recursive, waitForLock: b.waitForLock });
      return answerMutation(req, reply, handle);
    },
  );
}
