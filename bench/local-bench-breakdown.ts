/**
 * The time breakdown of bench/local-bench.ts: means over a sample of Temporal histories.
 */
import { temporal } from '@temporalio/proto';
import type { BenchStack } from './bench-stack';
import { round } from './local-bench-util';

/** Histories read per kind for the time breakdown. */
const BREAKDOWN_SAMPLE = 100;

// Where a workflow's time goes, from its history: per step, the wait in the task queue
// (scheduled → started) and the run (started → completed); workflow tasks likewise.
interface StepTimes {
  count: number;
  queueMs: number;
  runMs: number;
}
export interface Breakdown {
  sampled: number;
  /** Mean per workflow of first → last history event. */
  serverMs: number;
  /** Mean per activity type, one activity per workflow. */
  activities: Record<string, { queueMs: number; runMs: number }>;
  /** Mean per workflow, summed over its workflow tasks. */
  workflowTasks: { perWorkflow: number; queueMs: number; runMs: number };
}

const E = temporal.api.enums.v1.EventType;

function eventMs(ts: temporal.api.history.v1.IHistoryEvent['eventTime']): number {
  const s = ts?.seconds ?? 0;
  return (typeof s === 'number' ? s : s.toNumber()) * 1000 + (ts?.nanos ?? 0) / 1e6;
}

export async function breakdown(stack: BenchStack, workflowIds: string[]): Promise<Breakdown> {
  const step = Math.max(1, Math.floor(workflowIds.length / BREAKDOWN_SAMPLE));
  const sample = workflowIds.filter((_, i) => i % step === 0).slice(0, BREAKDOWN_SAMPLE);
  const acts = new Map<string, StepTimes>();
  const wft: StepTimes = { count: 0, queueMs: 0, runMs: 0 };
  let serverMs = 0;
  for (const id of sample) {
    const events = (await stack.client.temporal.workflow.getHandle(id).fetchHistory()).events ?? [];
    const at = new Map<number, { type: number; ms: number; name?: string }>();
    for (const ev of events) at.set(Number(ev.eventId), { type: ev.eventType ?? 0, ms: eventMs(ev.eventTime), name: ev.activityTaskScheduledEventAttributes?.activityType?.name ?? undefined });
    serverMs += eventMs(events.at(-1)?.eventTime) - eventMs(events[0]?.eventTime);
    for (const ev of events) {
      const ms = eventMs(ev.eventTime);
      if (ev.eventType === E.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
        const sched = at.get(Number(ev.activityTaskStartedEventAttributes!.scheduledEventId));
        const t = acts.get(sched!.name!) ?? { count: 0, queueMs: 0, runMs: 0 };
        t.count++;
        t.queueMs += ms - sched!.ms;
        acts.set(sched!.name!, t);
      } else if (ev.eventType === E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) {
        const a = ev.activityTaskCompletedEventAttributes!;
        const sched = at.get(Number(a.scheduledEventId))!;
        acts.get(sched.name!)!.runMs += ms - at.get(Number(a.startedEventId))!.ms;
      } else if (ev.eventType === E.EVENT_TYPE_WORKFLOW_TASK_STARTED) {
        wft.count++;
        wft.queueMs += ms - at.get(Number(ev.workflowTaskStartedEventAttributes!.scheduledEventId))!.ms;
      } else if (ev.eventType === E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED) {
        wft.runMs += ms - at.get(Number(ev.workflowTaskCompletedEventAttributes!.startedEventId))!.ms;
      }
    }
  }
  const n = sample.length;
  return {
    sampled: n,
    serverMs: round(serverMs / n, 2),
    activities: Object.fromEntries([...acts].map(([name, t]) => [name, { queueMs: round(t.queueMs / t.count, 2), runMs: round(t.runMs / t.count, 2) }])),
    workflowTasks: { perWorkflow: round(wft.count / n, 2), queueMs: round(wft.queueMs / n, 2), runMs: round(wft.runMs / n, 2) },
  };
}
