/**
 * Progress bars of long transfers, on stderr: `put`/`cp`/`mv` poll the mutation's heartbeat details
 * (bytes done, see MutationHandle.progress) while waiting for its result; `get` counts the bytes it
 * writes. Whether to draw one at all is progress-mode.ts's call (a TTY, no --json, --progress).
 */
import { SingleBar, Presets } from 'cli-progress';
import type { MutationHandle, MutationResult } from '../client';

/** How often the bar asks Temporal for the pending activity's details. */
const POLL_MS = 500;

const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;

/** A bar of `totalBytes` on `stream`; `update(done)` moves it, `stop()` clears it. */
export function byteBar(label: string, totalBytes: number, stream: NodeJS.WriteStream = process.stderr): { update(done: number): void; stop(): void } {
  const bar = new SingleBar(
    // noTTYOutput: --progress forces a bar on a pipe too (redrawn as lines rather than in place).
    { stream, format: `${label} [{bar}] {percentage}% | {done} / {size} | {speed}`, hideCursor: true, clearOnComplete: true, fps: 4, noTTYOutput: true, notTTYSchedule: 2000 },
    Presets.shades_classic,
  );
  const started = Date.now();
  bar.start(totalBytes, 0, { done: mib(0), size: mib(totalBytes), speed: '' });
  return {
    update(done: number) {
      const secs = (Date.now() - started) / 1000;
      const shown = Math.min(done, totalBytes);
      bar.update(shown, { done: mib(shown), size: mib(totalBytes), speed: secs > 0 ? `${mib(shown / secs)}/s` : '' });
    },
    stop: () => bar.stop(),
  };
}

/**
 * Waits for `handle`'s result, drawing a bar of `totalBytes` on `stream` meanwhile. Progress
 * lookups that fail (a server hiccup) only skip a frame; the result decides the outcome.
 *
 * @param label - what the bar says it does (`uploading`, `copying`, `moving`).
 */
export async function resultWithProgress(handle: MutationHandle, totalBytes: number, label = 'uploading', stream: NodeJS.WriteStream = process.stderr): Promise<MutationResult> {
  const bar = byteBar(label, totalBytes, stream);
  let stopped = false;
  const poll = async () => {
    while (!stopped) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      if (stopped) break;
      const p = await handle.progress().catch(() => null);
      if (!p || stopped) continue;
      bar.update(p.bytes);
    }
  };
  const polling = poll();
  try {
    const result = await handle.result();
    bar.update(totalBytes);
    return result;
  } finally {
    stopped = true;
    bar.stop();
    await polling;
  }
}
