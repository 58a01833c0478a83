/**
 * What the watcher benchmarks read about their own process from /proc: the kernel's peak resident
 * set (VmHWM), the inotify watches it holds, and a forced GC (a no-op unless run with --expose-gc).
 * Shared by bench/watcher-rss.ts and bench/drift-bench-watcher-child.ts.
 */
import fs from 'node:fs';

/** VmHWM: the kernel's peak resident set of this process, in bytes (NaN if unreadable). */
export function peakRss(): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN) * 1024;
}

/** Inotify watches held by this process (every inotify fd's `inotify wd:` lines); null if /proc cannot tell. */
export function inotifyWatches(): number | null {
  try {
    let n = 0;
    for (const fd of fs.readdirSync('/proc/self/fd')) {
      let target = '';
      try {
        target = fs.readlinkSync(`/proc/self/fd/${fd}`);
      } catch {
        continue;
      }
      if (target === 'anon_inode:inotify') n += fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').split('\n').filter((l) => l.startsWith('inotify wd:')).length;
    }
    return n;
  } catch {
    return null;
  }
}

/** A full GC when the process runs with --expose-gc. */
export const gc = (): void => (globalThis as { gc?: () => void }).gc?.();
