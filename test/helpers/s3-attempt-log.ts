/**
 * What an S3 client really sent: every attempt (inside the SDK's retry loop, so one record per
 * try, not per call), with its duration and, when it failed, the error code. Fault tests use it to
 * prove that the fault they set up actually reached the client under test.
 */
import type { S3Client } from '@aws-sdk/client-s3';

/** Answers S3 gives in normal operation (probes of absent keys, refused conditions): not faults. */
const NOT_A_FAULT = new Set(['NotFound', 'NoSuchKey', 'PreconditionFailed', 'NoSuchUpload']);

export interface AttemptLog {
  /** Failed attempts that were faults (not a 404 probe or a 412), optionally of one command (`UploadPart`) and one code (`TimeoutError`). */
  faults(command?: string, code?: string): number;
  /** Durations (ms) of every attempt of `command`. */
  durations(command: string): number[];
  /** `<command> <code>×<n>, …` of every failed attempt, for a log line. */
  summary(): string;
  /** Forgets what was recorded so far. */
  reset(): void;
}

/**
 * Starts recording the attempts of `client` (adds a middleware; the client keeps working as before).
 * Commands are named without their `Command` suffix.
 */
export function recordAttempts(client: S3Client): AttemptLog {
  const failures = new Map<string, number>();
  const durations = new Map<string, number[]>();
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const command = (context.commandName ?? '?').replace(/Command$/, '');
      const t0 = Date.now();
      try {
        return await next(args);
      } catch (err) {
        const e = err as { name?: string; code?: string; Code?: string };
        const k = `${command} ${e.Code ?? e.code ?? e.name ?? 'unknown'}`;
        failures.set(k, (failures.get(k) ?? 0) + 1);
        throw err;
      } finally {
        const d = durations.get(command) ?? [];
        d.push(Date.now() - t0);
        durations.set(command, d);
      }
    },
    // Outermost in the deserialize step: below the retry middleware (one record per attempt),
    // above the deserializer (S3 error answers arrive here as thrown service errors).
    { step: 'deserialize', priority: 'high', name: 'testAttemptLog' },
  );
  return {
    faults(command, code) {
      let n = 0;
      for (const [k, v] of failures) {
        const [cmd, c] = k.split(' ');
        if (NOT_A_FAULT.has(c) || (command && cmd !== command) || (code && c !== code)) continue;
        n += v;
      }
      return n;
    },
    durations: (command) => durations.get(command) ?? [],
    summary: () => [...failures].map(([k, n]) => `${k}×${n}`).join(', ') || 'none',
    reset() {
      failures.clear();
      durations.clear();
    },
  };
}
