/**
 * `filestore mount …`: register, mark, list and change mounts. Catalog only (no Temporal); the AWS
 * SDK is loaded only to probe a new S3 mount.
 */
import path from 'node:path';
import type { Command } from 'commander';
import { parseS3Url, S3_CANNED_ACLS, S3_SSE_MODES, S3_STORAGE_CLASSES, s3UrlOf } from '../catalog/s3-location';
import { InvalidRequestError } from '../errors';
import type { CommandContext } from './context';
import { formatMounts, positiveInt } from './format';

/** Flags of `mount add` (local or S3). */
interface MountAddFlags {
  local?: string;
  s3?: string;
  endpoint?: string;
  region?: string;
  pathStyle?: boolean;
  profile?: string;
  storageClass?: string;
  acl?: string;
  sse?: string;
  kmsKeyId?: string;
  probe?: boolean;
  readOnly?: boolean;
  watch?: boolean;
  allowSpecialModes?: boolean;
}

/** Registers `mount` and its verbs on `program`; returns the group. */
export function registerMountCommands(program: Command, ctx: CommandContext): Command {
  const { cfg, out } = ctx;
  const mount = program.command('mount').description('manage mounts');

  mount
    .command('add <id>')
    .description('register a mount: a directory on this host (--local) or an S3 bucket and prefix (--s3)')
    .option('--local <dir>', 'directory on this host that the mount exposes')
    .option('--s3 <url>', 's3://bucket[/prefix]: the mount is that bucket (below that key prefix); credentials come from the AWS provider chain')
    .option('--endpoint <url>', 'S3: endpoint of an S3-compatible server (MinIO, …); default AWS, or FILESTORE_S3_ENDPOINT')
    .option('--region <region>', 'S3: the bucket\'s region (default: AWS_REGION, else us-east-1)')
    .option('--path-style', 'S3: path-style addressing (http://host/bucket/key); default on for a custom endpoint')
    .option('--profile <name>', 'S3: shared-config profile whose credentials the mount uses (on every worker)')
    // Checked by the catalog (a typed INVALID_REQUEST in one line), not commander's choices.
    .option('--storage-class <class>', `S3: storage class of every write (${S3_STORAGE_CLASSES.join(', ')})`)
    .option('--acl <canned>', `S3: canned ACL of every write (${S3_CANNED_ACLS.join(', ')})`)
    .option('--sse <mode>', `S3: server-side encryption of every write (${S3_SSE_MODES.join(' or ')})`)
    .option('--kms-key-id <id>', 'S3: KMS key (id, alias or ARN) for --sse aws:kms')
    .option('--no-probe', "S3: register without checking the bucket and credentials first")
    .option('--read-only', 'refuse every mutation')
    .option('--watch', 'watch the mount for changes made behind Filestore (drift detection)')
    .option('--allow-special-modes', 'local: let mutations keep or set setuid, setgid and sticky bits (off: they are stripped, and refused in an explicit mode)')
    .option('--json', 'print the registered mount as JSON')
    .action(async (id: string, o: MountAddFlags & { json?: boolean }) => {
      const [db, { addLocalMount, addS3Mount }] = await Promise.all([ctx.db(), import('../catalog/mounts')]);
      if (o.s3 !== undefined && o.local !== undefined) throw new InvalidRequestError('mount add takes --local <dir> or --s3 <url>, not both');
      if (o.s3 !== undefined) {
        if (o.allowSpecialModes) throw new InvalidRequestError('--allow-special-modes applies to local mounts only');
        const { bucket, prefix } = parseS3Url(o.s3);
        const defaults = { endpoint: cfg().s3Endpoint, forcePathStyle: cfg().s3ForcePathStyle };
        const row = await addS3Mount(db, {
          id,
          bucket,
          prefix,
          endpoint: o.endpoint,
          region: o.region,
          pathStyle: o.pathStyle,
          profile: o.profile,
          storageClass: o.storageClass,
          acl: o.acl,
          sse: o.sse,
          kmsKeyId: o.kmsKeyId,
          readOnly: o.readOnly,
          watch: o.watch,
          // A typo'd bucket or bad credentials fail here, with nothing registered.
          probe: o.probe === false ? undefined : async (spec) => (await import('../executors/s3/s3-probe')).probeS3Mount(spec, defaults),
        });
        if (o.json) return out(JSON.stringify(row));
        out(`mount ${row.id} → ${s3UrlOf({ bucket: row.bucket!, prefix: row.prefix ?? '' })}${row.endpoint ? ` at ${row.endpoint}` : ''}${row.options.readOnly ? ' (read-only)' : ''}`);
        return;
      }
      if (o.local === undefined) throw new InvalidRequestError('mount add needs --local <dir> or --s3 s3://bucket[/prefix]');
      const s3Only = (['endpoint', 'region', 'pathStyle', 'profile', 'storageClass', 'acl', 'sse', 'kmsKeyId'] as const).filter((k) => o[k] !== undefined);
      if (s3Only.length > 0) throw new InvalidRequestError(`--${s3Only[0].replace(/[A-Z]/g, (ch) => `-${ch.toLowerCase()}`)} applies to --s3 mounts only`);
      const row = await addLocalMount(db, { id, rootPath: path.resolve(o.local), readOnly: o.readOnly, watch: o.watch, allowSpecialModes: o.allowSpecialModes });
      if (o.json) return out(JSON.stringify(row));
      out(`mount ${row.id} → ${row.rootPath}${row.options.readOnly ? ' (read-only)' : ''}`);
    });

  mount
    .command('mark <id>')
    .description(
      "(re)write a local mount's identity marker into its root — run it ONLY on the host whose disk is the mount: workers serve a mount only where its marker is",
    )
    .option('--json', 'print the mount as JSON')
    .action(async (id: string, o: { json?: boolean }) => {
      const [db, { markLocalMount }] = await Promise.all([ctx.db(), import('../catalog/mounts')]);
      const row = await markLocalMount(db, id);
      if (o.json) return out(JSON.stringify(row));
      out(`mount ${row.id} → ${row.rootPath}: identity marker written`);
    });

  mount
    .command('ls')
    .description('the mounts, by id, one page at a time')
    .option('--limit <n>', 'mounts per page', positiveInt, 1000)
    .option('--cursor <cursor>', 'continue where the previous page ended (its "next cursor")')
    .option('--json', 'print JSON: {"mounts": [...], "nextCursor": "…" | null}')
    .action(async (o: { json?: boolean; limit: number; cursor?: string }) => {
      // Mounts are few (a catalog holds tens, not millions): one query, paged here by id.
      const after = o.cursor === undefined ? undefined : decodeMountCursor(o.cursor);
      const rows = (await (await ctx.reader()).listMounts()).filter((m) => after === undefined || m.id > after);
      const page = rows.slice(0, o.limit);
      const nextCursor = rows.length > o.limit ? Buffer.from(JSON.stringify({ m: page[page.length - 1].id }), 'utf8').toString('base64url') : null;
      if (o.json) return out(JSON.stringify({ mounts: page, nextCursor }));
      out(formatMounts(page));
      if (nextCursor) out(`next cursor: ${nextCursor}  (filestore mount ls --limit ${o.limit} --cursor ${nextCursor})`);
    });

  mount
    .command('set <id>')
    .description('change a mount\'s options')
    .option('--watch', 'watch the mount for changes made behind Filestore')
    .option('--no-watch', 'stop watching it')
    .option('--read-only', 'refuse every mutation')
    .option('--no-read-only', 'allow mutations again')
    .option('--allow-special-modes', 'let mutations keep or set setuid, setgid and sticky bits')
    .option('--no-allow-special-modes', 'strip them again (and refuse them in an explicit mode)')
    .option('--json', 'print the changed mount as JSON')
    .action(async (id: string, o: { watch?: boolean; readOnly?: boolean; allowSpecialModes?: boolean; json?: boolean }) => {
      const patch: { watch?: boolean; readOnly?: boolean; allowSpecialModes?: boolean } = {};
      if (o.watch !== undefined) patch.watch = o.watch;
      if (o.readOnly !== undefined) patch.readOnly = o.readOnly;
      if (o.allowSpecialModes !== undefined) patch.allowSpecialModes = o.allowSpecialModes;
      if (Object.keys(patch).length === 0) {
        throw new InvalidRequestError('nothing to set: pass --watch, --no-watch, --read-only, --no-read-only, --allow-special-modes or --no-allow-special-modes');
      }
      const [db, { setMountOptions }] = await Promise.all([ctx.db(), import('../catalog/mounts')]);
      const row = await setMountOptions(db, id, patch);
      out(o.json ? JSON.stringify(row) : formatMounts([row]));
    });

  return mount;
}

/** The mount id a `mount ls` cursor continues after. */
function decodeMountCursor(cursor: string): string {
  try {
    const body = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { m?: unknown };
    if (typeof body?.m === 'string') return body.m;
  } catch {
    // Falls through to the typed refusal.
  }
  throw new InvalidRequestError('cursor is not one `mount ls` returned');
}
