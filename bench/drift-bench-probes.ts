/**
 * Probes of bench/drift-bench.ts: node states read back from Postgres, the drift queue's state and
 * its kept completed jobs, and the watcher's prom-client counters and latency histogram (read in
 * this process, not through Redis).
 */
import type { Queue } from 'bullmq';
import { driftDetectionLatency, driftJobs } from '../src/metrics';
import type { Ctx } from './drift-bench-context';
import { now, sleep, waitFor } from './drift-bench-helpers';

export async function stateOf(ctx: Ctx, mountId: string, p: string): Promise<string | null> {
  const r = await ctx.pg.query<{ state: string }>({ name: 'bench-state', text: 'SELECT state FROM nodes WHERE mount_id = $1 AND path = $2', values: [mountId, p] });
  return r.rows[0]?.state ?? null;
}

export async function inconsistentAmong(ctx: Ctx, mountId: string, paths: string[]): Promise<number> {
  const r = await ctx.pg.query<{ n: number }>(`SELECT count(*)::int AS n FROM nodes WHERE mount_id = $1 AND state = 'INCONSISTENT' AND path = ANY($2)`, [mountId, paths]);
  return r.rows[0].n;
}

export async function inconsistentFilesLike(ctx: Ctx, mountId: string, like: string): Promise<number> {
  const r = await ctx.pg.query<{ n: number }>({
    name: 'bench-count',
    text: `SELECT count(*)::int AS n FROM nodes WHERE mount_id = $1 AND state = 'INCONSISTENT' AND kind = 'file' AND path LIKE $2`,
    values: [mountId, like],
  });
  return r.rows[0].n;
}

/** No job waiting or running, and nothing delayed but the schedulers' next periodic scans. */
export async function queueIdle(queue: Queue): Promise<boolean> {
  const c = await queue.getJobCounts('waiting', 'active', 'prioritized');
  if (c.waiting + c.active + c.prioritized > 0) return false;
  return (await queue.getDelayed()).every((j) => (j.data as { reason?: string }).reason === 'periodic');
}

/** Lets the aggregator's window close (max wait) and the queue drain. */
export async function settle(ctx: Ctx, timeoutMs = 120_000): Promise<boolean> {
  await sleep(ctx.config.driftMaxWaitMs + 250);
  return (await waitFor(() => queueIdle(ctx.watcher!.queue), timeoutMs, 100)) !== null;
}

/** Time of the last change of any drift-job counter, once none moved for `quietMs` (null after `timeoutMs`). */
export async function jobsQuiet(quietMs: number, timeoutMs: number): Promise<number | null> {
  const deadline = now() + timeoutMs;
  let last = -1;
  let lastChange = now();
  for (;;) {
    const total = Object.values(await counterSnapshot(driftJobs, jobsKey)).reduce((a, v) => a + v, 0);
    if (total !== last) {
      last = total;
      lastChange = now();
    }
    if (now() - lastChange >= quietMs) return lastChange;
    if (now() > deadline) return null;
    await sleep(20);
  }
}

export type Labels = Partial<Record<string, string | number>>;
export async function counterSnapshot(metric: { get(): Promise<{ values: Array<{ value: number; labels: Labels }> }> }, key: (l: Labels) => string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const v of (await metric.get()).values) out[key(v.labels)] = (out[key(v.labels)] ?? 0) + v.value;
  return out;
}
export const jobsKey = (l: Labels) => `${l.kind}/${l.stage}`;
export const eventKey = (l: Labels) => `${l.event}`;
export function counterDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(after)) if (v - (before[k] ?? 0) > 0) out[k] = v - (before[k] ?? 0);
  return out;
}
export const sumWhere = (d: Record<string, number>, pred: (k: string) => boolean) => Object.entries(d).reduce((s, [k, v]) => (pred(k) ? s + v : s), 0);

export async function latencyHistogram(mountId: string): Promise<{ sum: number; count: number }> {
  let sum = 0;
  let count = 0;
  for (const v of (await driftDetectionLatency.get()).values) {
    if (v.labels.mount !== mountId) continue;
    if (v.metricName?.endsWith('_sum')) sum += v.value;
    if (v.metricName?.endsWith('_count')) count += v.value;
  }
  return { sum, count };
}

/** Completed jobs still kept by BullMQ (driftJobsKept), with their timings. */
export async function completedJobs(queue: Queue) {
  const jobs = await queue.getJobs(['completed'], 0, -1);
  return jobs.map((j) => {
    const data = j.data as { kind: string; mountId: string; paths?: string[]; dir?: string; firstEventAt: number; reason?: string };
    return {
      name: j.name,
      id: j.id,
      data,
      /** Aggregator window: first event → job added. */
      enqueueMs: data.firstEventAt ? j.timestamp - data.firstEventAt : null,
      waitMs: (j.processedOn ?? NaN) - j.timestamp,
      runMs: (j.finishedOn ?? NaN) - (j.processedOn ?? NaN),
      /** Clock time it finished. */
      finishedAt: j.finishedOn ?? null,
      returnvalue: j.returnvalue as { detected?: number; deferred?: number } | undefined,
    };
  });
}
