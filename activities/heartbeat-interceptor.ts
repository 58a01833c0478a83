/**
 * Heartbeats on a timer, whatever the progress. Temporal treats a missing heartbeat as a dead
 * attempt and starts another; activities that heartbeat only when bytes move (an in-kernel copy, a
 * long fsync, a rename of a huge tree, undo) would be declared dead while alive. This interceptor
 * heartbeats every third of the heartbeat timeout for as long as the activity runs, repeating the
 * last progress details it reported (so resumable state is never overwritten with nothing).
 */
import { Context } from '@temporalio/activity';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, ActivityInterceptorsFactory, Next } from '@temporalio/worker';

const lastDetails = new WeakMap<Context, unknown>();

/** Heartbeats `details` now and makes the timer repeat them from here on. */
export function reportProgress(ctx: Context, details: unknown): void {
  lastDetails.set(ctx, details);
  ctx.heartbeat(details);
}

/**
 * Progress reporting into the activity's heartbeat details: bytes done (at most once a second) and
 * the backend's resumable state (an S3 upload's `{ uploadId, partSize, … }`) as soon as it is
 * durable, so the Web UI's pending activity shows where a long upload stands. Liveness does not
 * depend on it: the timer heartbeat interceptor beats while the activity runs, repeating the last
 * details reported here.
 */
export function progressHeartbeat(): { onProgress: (bytes: number) => void; onCheckpoint: (state: Record<string, unknown>) => void } {
  let last = 0;
  let bytes = 0;
  let checkpoint: Record<string, unknown> | undefined;
  const report = () => reportProgress(Context.current(), checkpoint ? { bytes, checkpoint } : { bytes });
  return {
    onProgress: (done) => {
      bytes = done;
      const now = Date.now();
      if (now - last < 1000) return;
      last = now;
      report();
    },
    onCheckpoint: (state) => {
      checkpoint = state;
      report();
    },
  };
}

class TimerHeartbeat implements ActivityInboundCallsInterceptor {
  constructor(private readonly ctx: Context) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const timeout = this.ctx.info.heartbeatTimeoutMs;
    if (!timeout) return next(input);
    const beat = () => this.ctx.heartbeat(lastDetails.get(this.ctx));
    const timer = setInterval(beat, Math.max(100, Math.floor(timeout / 3)));
    try {
      return await next(input);
    } finally {
      clearInterval(timer);
    }
  }
}

/** Register in `Worker.create({ interceptors: { activity: [timerHeartbeats] } })`. */
export const timerHeartbeats: ActivityInterceptorsFactory = (ctx) => ({ inbound: new TimerHeartbeat(ctx) });
