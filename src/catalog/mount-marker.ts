/**
 * The identity marker of a local mount: `<root>/.filestore-mount.json` holding the mount's id and
 * the catalog row's `instance_id`. A path alone does not prove a disk is the mount — an empty mount
 * point (a disk that failed to mount) or another host with the same path looks just like it — so
 * workers serve a mount, and executors act on it, only where the marker matches the catalog.
 *
 * The marker guards against operator accidents, not against someone who can write the mount root
 * (they could copy it); Filestore itself never lets a mutation touch it (a reserved path).
 */
import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { MOUNT_MARKER } from '../paths';

export interface MountMarker {
  mountId: string;
  instanceId: string;
}

/** Result of comparing a root's marker with the catalog row. */
export type MarkerCheck = { ok: true } | { ok: false; reason: string; rootMissing: boolean };

/** Larger than any marker Filestore writes; anything bigger is not one. */
const MAX_MARKER_BYTES = 4096;

/**
 * The marker at `root`, or null when there is none. Opened without following a symlink and
 * without blocking (a FIFO under the marker's name cannot stall the caller), and only a small
 * regular file counts.
 *
 * @throws Error with a readable message when something is there that is not a marker.
 */
export async function readMountMarker(root: string): Promise<MountMarker | null> {
  let fh: fs.FileHandle;
  try {
    fh = await fs.open(path.join(root, MOUNT_MARKER), fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return null;
    if (code === 'ELOOP') throw new Error(`${MOUNT_MARKER} is a symlink, not a marker`);
    throw err;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() || st.size > MAX_MARKER_BYTES) throw new Error(`${MOUNT_MARKER} is not a small regular file`);
    const buf = Buffer.alloc(Math.max(0, st.size));
    const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
    const parsed = JSON.parse(buf.subarray(0, bytesRead).toString('utf8')) as Partial<MountMarker>;
    if (typeof parsed?.mountId !== 'string' || typeof parsed?.instanceId !== 'string') {
      throw new Error(`${MOUNT_MARKER} does not name a mount id and instance id`);
    }
    return { mountId: parsed.mountId, instanceId: parsed.instanceId };
  } catch (err) {
    if (err instanceof SyntaxError) throw new Error(`${MOUNT_MARKER} is not valid JSON`);
    throw err;
  } finally {
    await fh.close();
  }
}

/** Does `row.rootPath` carry this mount's marker (same mount id and instance id)? Never throws. */
export async function checkMountMarker(row: { id: string; rootPath: string | null; instanceId: string }): Promise<MarkerCheck> {
  if (!row.rootPath) return { ok: false, reason: 'it has no root path', rootMissing: true };
  const st = await fs.stat(row.rootPath).catch(() => null);
  if (!st?.isDirectory()) return { ok: false, reason: `its root ${row.rootPath} is not a directory on this host`, rootMissing: true };
  let marker: MountMarker | null;
  try {
    marker = await readMountMarker(row.rootPath);
  } catch (err) {
    return { ok: false, reason: `its root ${row.rootPath} has an unusable identity marker: ${(err as Error).message}`, rootMissing: false };
  }
  if (!marker) {
    return {
      ok: false,
      reason: `its root ${row.rootPath} has no identity marker (${MOUNT_MARKER}) — an empty mount point, or a disk that did not mount?`,
      rootMissing: false,
    };
  }
  if (marker.mountId !== row.id || marker.instanceId !== row.instanceId) {
    return {
      ok: false,
      reason: `the identity marker at ${row.rootPath} belongs to ${marker.mountId === row.id ? 'an earlier registration of this mount' : `mount ${JSON.stringify(marker.mountId)}`}, not this one`,
      rootMissing: false,
    };
  }
  return { ok: true };
}

/**
 * Writes the marker atomically: a temporary sibling (exclusive create, no symlink followed) is
 * written, fsynced and renamed over the marker, then the root directory is fsynced, so a crash
 * leaves the old marker or the new one, never a torn file. Mode 0644: any process may read it.
 */
export async function writeMountMarker(root: string, marker: MountMarker): Promise<void> {
  const tmp = path.join(root, `${MOUNT_MARKER}.${randomBytes(6).toString('hex')}.tmp`);
  const body = `${JSON.stringify({ mountId: marker.mountId, instanceId: marker.instanceId })}\n`;
  const fh = await fs.open(tmp, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW, 0o644);
  try {
    try {
      await fh.writeFile(body);
      // The umask may have narrowed the mode given to open.
      await fh.chmod(0o644);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, path.join(root, MOUNT_MARKER));
  } catch (err) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw err;
  }
  const dir = await fs.open(root, fsConstants.O_RDONLY | fsConstants.O_DIRECTORY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
