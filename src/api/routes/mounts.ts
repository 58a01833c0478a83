/**
 * Mounts: list and show (a scoped token sees its own mount only); add and update need an admin
 * token. Mount rows hold no credentials (S3 mounts take them from the worker's AWS provider chain).
 */
import { z } from 'zod';
import { addLocalMount, addS3Mount, getMount, listMounts, setMountOptions } from '../../catalog/mounts';
import { AddMountBody, MountParams, PatchMountBody, Problem } from '../../operations/schemas';
import { assertUploadAreaApart } from '../../operations/upload-store';
import { authorize, visibleMounts } from '../auth';
import { principalOf, type ApiApp, type ApiDeps } from '../api-context';

const problems = { '4xx': Problem, '5xx': Problem };

export function registerMountRoutes(app: ApiApp, deps: ApiDeps): void {
  const { db } = deps;
  const tags = ['mounts'];

  app.get('/v1/mounts', { schema: { tags, summary: 'The mounts this token may use', response: { 200: z.object({ mounts: z.array(z.any()) }), ...problems } } }, async (req) => {
    const visible = visibleMounts(principalOf(req));
    const rows = await listMounts(db);
    return { mounts: visible === null ? rows : rows.filter((r) => visible.includes(r.id)) };
  });

  app.get('/v1/mounts/:mount', { schema: { tags, summary: 'One mount', params: MountParams, response: { 200: z.any(), ...problems } } }, async (req) => {
    authorize(principalOf(req), { mountId: req.params.mount, write: false });
    return getMount(db, req.params.mount);
  });

  app.post('/v1/mounts', { schema: { tags, summary: 'Register a mount (admin)', body: AddMountBody, response: { 201: z.any(), ...problems } } }, async (req, reply) => {
    authorize(principalOf(req), { admin: true });
    const b = req.body;
    assertUploadAreaApart(deps.uploads, [b.kind === 'local' ? { id: b.id, kind: 'local', rootPath: b.rootPath, bucket: null, prefix: null } : { id: b.id, kind: 's3', rootPath: null, bucket: b.bucket, prefix: b.prefix ?? '' }]);
    const row =
      b.kind === 'local'
        ? await addLocalMount(db, { id: b.id, rootPath: b.rootPath, readOnly: b.readOnly, watch: b.watch })
        : await addS3Mount(db, { id: b.id, bucket: b.bucket, prefix: b.prefix, endpoint: b.endpoint, region: b.region, readOnly: b.readOnly, watch: b.watch });
    return reply.code(201).send(row);
  });

  app.patch('/v1/mounts/:mount', { schema: { tags, summary: "Change a mount's options (admin)", params: MountParams, body: PatchMountBody, response: { 200: z.any(), ...problems } } }, async (req) => {
    authorize(principalOf(req), { admin: true });
    return setMountOptions(db, req.params.mount, req.body);
  });
}
