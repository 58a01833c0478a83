/**
 * The progress bar of a long `filestore put`: polls the mutation's heartbeat details (bytes done,
 * see MutationHandle.progress) while waiting for its result. Only on a TTY, never with --json:
 * scripts get clean output.
 */
import { SingleBar, Presets } from 'cli-progress';
import type { MutationHandle, MutationResult } from '../client';

/** How often the bar asks Temporal for the pending activity's details. */
const POLL_MS = 500;

/**
 * Waits for `handle`'s result, drawing a bar of `totalBytes` on `stream` meanwhile. Progress
 * lookups that fail (a server hiccup) only skip a frame; the result decides the outcome.
 */
export async function resultWithProgress(handle: MutationHandle, totalBytes: number, stream: NodeJS.WriteStream = process.stderr): Promise<MutationResult> {
  const bar = new SingleBar(
    { stream, format: 'uploading [{bar}] {percentage}% | {done} / {size} | {speed}', hideCursor: true, clearOnComplete: true, fps: 4 },
    Presets.shades_classic,
  );
  const started = Date.now();
  const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
  bar.start(totalBytes, 0, { done: mib(0), size: mib(totalBytes), speed: '' });
  let stopped = false;
  const poll = async () => {
    while (!stopped) {
      await new Promise((r) => setTimeout(r, POLL_MS));
      if (stopped) break;
      const p = await handle.progress().catch(() => null);
      if (!p || stopped) continue;
      const secs = (Date.now() - started) / 1000;
      bar.update(Math.min(p.bytes, totalBytes), { done: mib(p.bytes), size: mib(totalBytes), speed: secs > 0 ? `${mib(p.bytes / secs)}/s` : '' });
    }
  };
  const polling = poll();
  try {
    const result = await handle.result();
    bar.update(totalBytes, { done: mib(totalBytes), size: mib(totalBytes), speed: '' });
    return result;
  } finally {
    stopped = true;
    bar.stop();
    await polling;
  }
}
