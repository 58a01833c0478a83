/**
 * When a verb draws a progress bar: only for transfers that take a while, and only where a person
 * watches — both stdout and stderr on a terminal, no --json — unless `--progress` forces it or
 * `--no-progress` turns it off. Kept apart from progress.ts so deciding costs no cli-progress load.
 */

/** Transfers at least this big get a bar (smaller ones finish before a bar would be read). */
export const PROGRESS_MIN_BYTES = 8 * 1024 * 1024;

/** The `--progress` / `--no-progress` pair as commander leaves it: undefined when neither was given. */
export interface ProgressFlags {
  progress?: boolean;
  json?: boolean;
}

/**
 * Whether to draw a bar for a transfer of `bytes` (undefined: size unknown, e.g. a directory).
 * `--progress` draws one for any known size; `--no-progress` never.
 */
export function wantsProgress(flags: ProgressFlags, bytes: number | undefined, tty: { stdout?: boolean; stderr?: boolean } = { stdout: process.stdout.isTTY, stderr: process.stderr.isTTY }): boolean {
  if (bytes === undefined || flags.progress === false) return false;
  if (flags.progress === true) return true;
  return !flags.json && tty.stdout === true && tty.stderr === true && bytes >= PROGRESS_MIN_BYTES;
}
