/**
 * setuid, setgid and sticky bits. A worker running as root that copies a user's setuid file, or
 * keeps the bits of a file it overwrites, or chmods to what a request asked, would create files
 * that run with the worker's rights. Filestore therefore never creates them unless the mount's
 * `allowSpecialModes` option says so: an explicit mode carrying them is refused, and modes
 * inherited from a source or from the replaced file lose them.
 */
import { InvalidRequestError } from '../../errors';

/** S_ISUID | S_ISGID | S_ISVTX. */
export const SPECIAL_MODE_BITS = 0o7000;

/** `mode`'s permission bits, without setuid / setgid / sticky unless `allowSpecialModes`. */
export function permittedMode(mode: number, allowSpecialModes = false): number {
  return mode & (allowSpecialModes ? 0o7777 : 0o777);
}

/** Refuses an explicit mode with special bits where the mount does not allow them (before anything moves). */
export function assertModeAllowed(mode: number | undefined, allowSpecialModes = false): void {
  if (mode === undefined || allowSpecialModes || (mode & SPECIAL_MODE_BITS) === 0) return;
  throw new InvalidRequestError(
    `mode 0o${mode.toString(8)} sets setuid, setgid or sticky bits, which this mount does not allow (mount option allowSpecialModes)`,
    { mode },
  );
}
