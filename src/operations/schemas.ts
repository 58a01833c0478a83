/**
 * Input schemas of Filestore's use cases (zod): the HTTP API validates every request with them,
 * and `/openapi.json` is generated from the same objects, so the document cannot drift from what
 * the server accepts. Paths are checked again by `normalizeMountPath` where they are used (the one
 * place the path rules live); here they are only strings of bounded length.
 */
import { z } from 'zod';
import { IDEMPOTENCY_KEY_PATTERN } from '../mutations';
import { MAX_PATH_BYTES } from '../paths';

/** Query-string booleans: `true`/`false`/`1`/`0` (anything else is refused, not taken as true). */
export const queryBool = z
  .enum(['true', 'false', '1', '0'])
  .transform((v) => v === 'true' || v === '1')
  .optional();

const mountId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a mount id: lowercase letters, digits, _ and -, at most 63 characters')
  .describe('Mount id');
/** A mount-relative path (no leading '/', no '..'); the root is ''. */
const mountPath = z.string().max(MAX_PATH_BYTES * 3).describe("Mount-relative path, e.g. 'reports/q3.pdf'");

export const MountParams = z.object({ mount: mountId });
export const MountPathParams = z.object({ mount: mountId, '*': mountPath });

/** Flags every mutation takes (query string of the file routes, JSON body of the others). */
const mutationFlags = {
  force: z.boolean().optional().describe('Mutate even if the catalog marks the path INCONSISTENT'),
  waitForLock: z.boolean().optional().describe('Wait for a conflicting mutation instead of failing with CONFLICT'),
};
const mutationQueryFlags = { force: queryBool, waitForLock: queryBool };

export const PutQuery = z
  .object({
    overwrite: queryBool.describe('Replace an existing file'),
    parents: queryBool.describe('Create missing parent directories (default true)'),
    mode: z
      .string()
      .regex(/^[0-7]{3,4}$/, 'an octal file mode such as 644')
      .optional()
      .describe('POSIX mode of a new file, octal'),
    sha256: z
      .string()
      .regex(/^[0-9a-fA-F]{64}$/, 'a hex sha256')
      .optional()
      .describe('Refuse the upload unless its content hashes to this'),
    ...mutationQueryFlags,
  })
  .strict();

export const DeleteQuery = z.object({ recursive: queryBool, ...mutationQueryFlags }).strict();

export const ListQuery = z
  .object({
    recursive: queryBool,
    limit: z.coerce.number().int().min(1).max(10_000).optional().describe('Nodes per page (default 1000)'),
    cursor: z.string().max(16_384).optional().describe('nextCursor of the previous page'),
  })
  .strict();

export const MkdirBody = z.object({ path: mountPath, parents: z.boolean().optional(), ...mutationFlags }).strict();

export const TransferBody = z
  .object({
    from: mountPath,
    to: mountPath,
    targetMount: mountId.optional().describe('Mount the target is on (default: the same mount)'),
    overwrite: z.boolean().optional(),
    recursive: z.boolean().optional().describe('copy only: a directory tree'),
    createParents: z.boolean().optional(),
    ...mutationFlags,
  })
  .strict();

export const DeleteBody = z.object({ path: mountPath, recursive: z.boolean().optional(), ...mutationFlags }).strict();

export const ReconcileBody = z
  .object({ path: mountPath, recursive: z.boolean().optional().describe('The whole subtree'), waitForLock: mutationFlags.waitForLock })
  .strict();

export const JournalQuery = z
  .object({
    mount: mountId.optional(),
    status: z.enum(['PENDING', 'COMMITTED', 'ROLLED_BACK', 'FAILED']).optional(),
    limit: z.coerce.number().int().min(1).max(1000).optional().describe('Entries per page (default 50)'),
    cursor: z.string().max(1024).optional(),
  })
  .strict();

export const DriftQuery = z
  .object({
    mount: mountId.optional(),
    open: queryBool.describe('Only unresolved events (default true)'),
    limit: z.coerce.number().int().min(1).max(1000).optional(),
    cursor: z.string().max(1024).optional(),
  })
  .strict();

export const AddMountBody = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('local'),
      id: mountId,
      rootPath: z.string().min(1).max(4096).describe('Absolute directory on the host that serves the mount'),
      readOnly: z.boolean().optional(),
      watch: z.boolean().optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('s3'),
      id: mountId,
      bucket: z.string().min(3).max(63),
      prefix: z.string().max(1024).optional(),
      endpoint: z.string().url().optional(),
      region: z.string().max(64).optional(),
      readOnly: z.boolean().optional(),
      watch: z.boolean().optional(),
    })
    .strict(),
]);

export const PatchMountBody = z.object({ readOnly: z.boolean().optional(), watch: z.boolean().optional() }).strict();

export const IdempotencyKeyHeader = z
  .string()
  .regex(IDEMPOTENCY_KEY_PATTERN, 'at most 128 characters of A-Z a-z 0-9 . _ : -')
  .describe('Same key → same mutation, same result; never a second execution');

export const MutationHeaders = z
  .object({
    'idempotency-key': IdempotencyKeyHeader.optional(),
    prefer: z.string().max(256).optional().describe('respond-async: answer 202 with the run instead of waiting'),
  })
  .passthrough();

/** RFC 9457 problem details, with Filestore's stable error code. */
export const Problem = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  code: z.string().describe('Stable Filestore error code (see docs/api.md)'),
  retryable: z.boolean(),
  details: z.record(z.string(), z.unknown()).optional(),
  instance: z.string().optional(),
});

export const AcceptedRun = z.object({ workflowId: z.string(), idempotencyKey: z.string(), statusUrl: z.string() });
