/**
 * The reading side of an S3 mount: stat, list, checksum, openRead, and the probes mutations plan
 * with (what sits at a path, which parents are missing). Directories are key prefixes: one exists
 * while any key (a `dir/` marker included) lies below it. A name that is both an object and a
 * prefix is refused with NAME_CONFLICT: a file tree cannot hold both.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { InvalidRequestError, IsADirectoryError, NameConflictError, NotADirectoryError, NotFoundError } from '../../errors';
import { ancestorsOf, parentPath } from '../../paths';
import type { ListOptions, NodeMeta, ReadOptions } from '../executor';
import type { ObjectHead, S3Bucket } from './s3-bucket';
import { httpStatusOf, mapS3Error, s3ErrorCode } from './s3-errors';
import { entryOfKey, keyOf, listPrefixOf } from './s3-keys';
import { SHA256_META } from './s3-plan';

/** Directories have no time of their own on S3 (a prefix is not an object): one fixed value, so stat and list agree. */
export const DIRECTORY_MTIME = new Date(0).toISOString();

const q = (p: string): string => JSON.stringify(p);
const HEX64 = /^[0-9a-f]{64}$/;

/** Metadata of a directory (a prefix). */
export function dirMeta(path: string): NodeMeta {
  return { path, kind: 'directory', size: 0, sha256: null, etag: null, storageClass: null, versionId: null, mode: null, uid: null, gid: null, mtime: DIRECTORY_MTIME, identity: null };
}

/** The hex sha256 an object carries in its metadata (null when absent or malformed). */
export function storedSha256(head: Pick<ObjectHead, 'metadata'>): string | null {
  const value = head.metadata[SHA256_META]?.toLowerCase();
  return value && HEX64.test(value) ? value : null;
}

/** Metadata of a file from its HeadObject; sha256 is what the writer stored (x-amz-meta-sha256), identity the ETag (and version). */
export function fileMeta(path: string, head: ObjectHead): NodeMeta {
  return {
    path,
    kind: 'file',
    size: head.size,
    sha256: storedSha256(head),
    etag: head.etag,
    storageClass: head.storageClass,
    versionId: head.versionId,
    mode: null,
    uid: null,
    gid: null,
    mtime: head.lastModified.toISOString(),
    identity: head.versionId ? `${head.etag}:${head.versionId}` : head.etag,
  };
}

/** What sits at a (non-root) path: the object of that name, and whether a prefix of that name holds keys. */
export interface Probe {
  file: ObjectHead | null;
  dir: boolean;
}

export async function probe(bucket: S3Bucket, path: string): Promise<Probe> {
  if (path === '') return { file: null, dir: true };
  const [file, dir] = await Promise.all([bucket.head(keyOf(bucket.prefix, path)), bucket.hasKeysUnder(listPrefixOf(bucket.prefix, path))]);
  return { file, dir };
}

/** {@link probe}, refusing a name that is both. */
export async function probeOne(bucket: S3Bucket, path: string): Promise<Probe> {
  const p = await probe(bucket, path);
  if (p.file && p.dir) throw new NameConflictError(q(path), { path });
  return p;
}

/**
 * The ancestors of `path` that do not exist (parents first). An ancestor that is a file is
 * NOT_A_DIRECTORY; missing ones with `mayCreate` false are NOT_FOUND. Walks up from the parent and
 * stops at the first existing directory (everything above it exists too).
 */
export async function missingParents(bucket: S3Bucket, path: string, mayCreate: boolean): Promise<string[]> {
  const ancestors = ancestorsOf(path);
  const missing: string[] = [];
  for (let i = ancestors.length - 1; i >= 0; i--) {
    const dir = ancestors[i];
    const p = await probe(bucket, dir);
    if (p.dir) break;
    if (p.file) throw new NotADirectoryError(q(dir), { path: dir });
    missing.unshift(dir);
  }
  if (missing.length > 0 && !mayCreate) throw new NotFoundError(`parent directory ${q(parentPath(path))}`, { path: parentPath(path) });
  return missing;
}

/** stat: HeadObject for a file, a one-key listing for a directory; null when neither. */
export async function statPath(bucket: S3Bucket, path: string): Promise<NodeMeta | null> {
  if (path === '') {
    // The root always exists, but a missing bucket or bad credentials must show here too.
    await bucket.listPage({ prefix: listPrefixOf(bucket.prefix, ''), maxKeys: 1 });
    return dirMeta('');
  }
  const p = await probeOne(bucket, path);
  // The sha256 the object carries in its metadata (x-amz-meta-sha256: what Filestore's writes
  // store), from the HeadObject already made; null when it has none (written out of band, or a
  // streamed upload). Never computed by reading. It is the writer's claim (anyone who may write
  // the object may set it), so what needs the truth asks checksum().
  if (p.file) return fileMeta(path, p.file);
  return p.dir ? dirMeta(path) : null;
}

/**
 * Children of `dir` (or its whole subtree), page by page. Recursive listings synthesise each
 * intermediate directory once: keys come in order, so the keys below one directory are
 * contiguous and a stack of the current ancestors is all the memory needed.
 */
export async function* listPath(bucket: S3Bucket, dir: string, opts: ListOptions): AsyncGenerator<NodeMeta> {
  if (opts.limit !== undefined && !(Number.isInteger(opts.limit) && opts.limit >= 0)) throw new InvalidRequestError('list limit must be a non-negative integer');
  const pageSize = opts.pageSize ?? 1000;
  if (!(Number.isInteger(pageSize) && pageSize >= 1 && pageSize <= 1000)) throw new InvalidRequestError('list pageSize must be an integer from 1 to 1000');
  const prefix = listPrefixOf(bucket.prefix, dir);
  const limit = opts.limit ?? Infinity;
  const recursive = opts.recursive ?? false;
  let emitted = 0;
  let token: string | undefined;
  let first = true;
  const open: string[] = [];
  do {
    const page = await bucket.listPage({ prefix, delimiter: recursive ? undefined : '/', maxKeys: pageSize, token });
    if (first) {
      first = false;
      const empty = (page.KeyCount ?? 0) === 0 && !page.Contents?.length && !page.CommonPrefixes?.length;
      if (empty && dir !== '') {
        if (await bucket.head(keyOf(bucket.prefix, dir))) throw new NotADirectoryError(q(dir), { path: dir });
        throw new NotFoundError(`directory ${q(dir)}`, { path: dir });
      }
    }
    const out: NodeMeta[] = [];
    if (!recursive) {
      for (const cp of page.CommonPrefixes ?? []) {
        const entry = cp.Prefix ? entryOfKey(bucket.prefix, cp.Prefix) : null;
        if (entry) out.push(dirMeta(entry.path));
      }
    }
    for (const o of page.Contents ?? []) {
      const entry = entryOfKey(bucket.prefix, o.Key!);
      if (!entry || entry.path === dir) continue;
      if (recursive) {
        // The directories this entry needs shown (its ancestors below `dir`, and itself for a
        // marker), outermost first; `open` keeps those already shown for the current run of keys.
        const needed = ancestorsOf(entry.path).filter((a) => a.length > dir.length);
        if (entry.kind === 'directory') needed.push(entry.path);
        while (open.length > 0 && !needed.includes(open[open.length - 1])) open.pop();
        for (const a of needed.slice(open.length)) {
          open.push(a);
          out.push(dirMeta(a));
        }
        if (entry.kind === 'directory') continue;
      } else if (entry.kind === 'directory') {
        // A child's marker rolls up into CommonPrefixes; only odd keys reach here.
        continue;
      }
      out.push({
        ...dirMeta(entry.path),
        kind: 'file',
        size: Number(o.Size ?? 0),
        etag: (o.ETag ?? '').replace(/^"|"$/g, ''),
        storageClass: o.StorageClass ?? 'STANDARD',
        mtime: (o.LastModified ?? new Date(0)).toISOString(),
        identity: (o.ETag ?? '').replace(/^"|"$/g, ''),
      });
    }
    // Key order and CommonPrefixes order interleave in S3; within one page the caller sorts if it needs to.
    for (const meta of out) {
      if (emitted >= limit) return;
      emitted++;
      yield meta;
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token && emitted < limit);
}

/** GetObject of a file, optionally a byte range; a missing object that is a prefix is IS_A_DIRECTORY. */
export async function openObject(bucket: S3Bucket, path: string, opts: ReadOptions = {}): Promise<Readable> {
  const key = keyOf(bucket.prefix, path);
  const start = opts.range?.start ?? 0;
  const end = opts.range?.end;
  if (!Number.isInteger(start) || start < 0 || (end !== undefined && (!Number.isInteger(end) || end < start))) {
    throw new InvalidRequestError(`invalid byte range ${JSON.stringify(opts.range)}`);
  }
  const range = start === 0 && end === undefined ? undefined : `bytes=${start}-${end ?? ''}`;
  try {
    const pin = opts.expect
      ? { ...(opts.expect.etag ? { IfMatch: `"${opts.expect.etag.replace(/^"|"$/g, '')}"` } : {}), ...(opts.expect.versionId ? { VersionId: opts.expect.versionId } : {}) }
      : {};
    const res = await bucket.client.send(new GetObjectCommand({ Bucket: bucket.name, Key: key, Range: range, ...pin }), { abortSignal: opts.signal });
    return res.Body as Readable;
  } catch (err) {
    // A range that starts past the end reads nothing, as a file read there would.
    if (s3ErrorCode(err) === 'InvalidRange' || httpStatusOf(err) === 416) return Readable.from([]);
    const mapped = mapS3Error(err, { bucket: bucket.name, mountId: bucket.mountId, what: q(path), key });
    if ((mapped as { code?: string }).code === 'NOT_FOUND') {
      if (await bucket.hasKeysUnder(listPrefixOf(bucket.prefix, path))) throw new IsADirectoryError(q(path), { path });
      throw new NotFoundError(q(path), { path });
    }
    throw mapped;
  }
}

/** Hex sha256 of a file's current content, streamed (never buffered whole). */
export async function checksumObject(bucket: S3Bucket, path: string, signal?: AbortSignal): Promise<string> {
  const body = await openObject(bucket, path, { signal });
  const hash = createHash('sha256');
  for await (const chunk of body) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
