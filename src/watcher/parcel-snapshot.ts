/**
 * Where the parcel backend keeps a mount's snapshot across restarts, and how one is committed.
 *
 * @parcel/watcher writes a snapshot as a plain list of (path, mtime, is-directory) and, given one,
 * reports what changed since (`getEventsSince`). Its reader trusts the file (a truncated or
 * altered one gives wrong answers, or none), so a snapshot only counts with its manifest:
 * `<mount>.parcel-snapshot.json` names the format, the mount id, the catalog row's instance id,
 * the root, and the snapshot's size and sha256. A snapshot whose manifest is missing, of another
 * mount or instance, or does not match its bytes is not used: the caller then scans the mount.
 *
 * The folder is Filestore's (created 0700, files 0600), never inside a mount: someone who can
 * write the mount must not be able to hide their changes by editing the snapshot.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';

const FORMAT = 'filestore-parcel-snapshot/1';

interface Manifest {
  format: string;
  mountId: string;
  instanceId: string;
  root: string;
  bytes: number;
  sha256: string;
  writtenAt: string;
}

/** Identity of the mount a snapshot belongs to. */
export interface SnapshotIdentity {
  mountId: string;
  /** The catalog row's instance id: a mount removed and added again under the same id is another mount. */
  instanceId: string;
  rootReal: string;
}

async function sha256Of(file: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(file, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

/** True when `inner` is `outer` or lies below it (both absolute, resolved). */
function within(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith(path.sep) ? outer : outer + path.sep);
}

export class SnapshotStore {
  readonly snapshotPath: string;
  private readonly manifestPath: string;

  private constructor(
    private readonly dir: string,
    private readonly id: SnapshotIdentity,
  ) {
    this.snapshotPath = path.join(dir, `${id.mountId}.parcel-snapshot`);
    this.manifestPath = `${this.snapshotPath}.json`;
  }

  /**
   * Creates the folder (0700) if needed.
   * @throws Error when the folder is inside the mount (its users could then forge the snapshot).
   */
  static async open(dir: string, id: SnapshotIdentity): Promise<SnapshotStore> {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
    const real = await fs.realpath(dir);
    if (within(real, id.rootReal)) throw new Error(`the watch snapshot folder ${real} is inside mount ${id.mountId} (${id.rootReal}); choose one outside every mount`);
    return new SnapshotStore(real, id);
  }

  /** The committed snapshot if it is this mount's and intact, else why not. */
  async committed(): Promise<{ path: string } | { unusable: string }> {
    let manifest: Manifest;
    try {
      manifest = JSON.parse(await fs.readFile(this.manifestPath, 'utf8')) as Manifest;
    } catch (err) {
      return { unusable: (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no snapshot yet' : `manifest unreadable: ${(err as Error).message}` };
    }
    if (manifest?.format !== FORMAT) return { unusable: 'manifest of an unknown format' };
    if (manifest.mountId !== this.id.mountId || manifest.instanceId !== this.id.instanceId) return { unusable: 'snapshot of another mount instance' };
    if (manifest.root !== this.id.rootReal) return { unusable: `snapshot of another root (${manifest.root})` };
    try {
      const { sha256, bytes } = await sha256Of(this.snapshotPath);
      if (bytes !== manifest.bytes || sha256 !== manifest.sha256) return { unusable: 'snapshot does not match its manifest (truncated or altered)' };
    } catch (err) {
      return { unusable: `snapshot unreadable: ${(err as Error).message}` };
    }
    return { path: this.snapshotPath };
  }

  /** A fresh path in the folder for a snapshot being written (to commit or discard). */
  tempPath(kind = 'tmp'): string {
    return path.join(this.dir, `${this.id.mountId}.parcel-snapshot.${kind}-${process.pid}-${randomBytes(4).toString('hex')}`);
  }

  /**
   * Makes the snapshot written at `tmp` the committed one: synced, hashed, then renamed over the
   * old one, its manifest last. A crash between the two renames leaves a manifest that does not
   * match the snapshot: the next start scans instead of trusting either.
   */
  async commit(tmp: string): Promise<void> {
    await fs.chmod(tmp, 0o600);
    const fh = await fs.open(tmp, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    const { sha256, bytes } = await sha256Of(tmp);
    const { mountId, instanceId, rootReal } = this.id;
    const manifest: Manifest = { format: FORMAT, mountId, instanceId, root: rootReal, bytes, sha256, writtenAt: new Date().toISOString() };
    const manifestTmp = `${tmp}.json`;
    await fs.writeFile(manifestTmp, JSON.stringify(manifest), { mode: 0o600, flush: true });
    await fs.rename(tmp, this.snapshotPath);
    await fs.rename(manifestTmp, this.manifestPath);
  }

  /** Removes a snapshot that will not be committed (never throws). */
  async discard(tmp: string): Promise<void> {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    await fs.rm(`${tmp}.json`, { force: true }).catch(() => undefined);
  }

  /** Removes leftovers (temp snapshots, repair folders) of watchers that died before cleaning up (never throws). */
  async sweep(): Promise<void> {
    const prefix = `${this.id.mountId}.parcel-snapshot.`;
    for (const name of await fs.readdir(this.dir).catch(() => [] as string[])) {
      if (name.startsWith(prefix) && name !== `${this.id.mountId}.parcel-snapshot.json`) await fs.rm(path.join(this.dir, name), { recursive: true, force: true }).catch(() => undefined);
    }
  }
}
