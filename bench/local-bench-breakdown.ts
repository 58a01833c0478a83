/**
 * The time breakdown of bench/local-bench.ts: means over a sample of Temporal histories.
 *
 * Every step is read from the history, whichever way it was dispatched:
 *   - an activity through a task queue: ActivityTaskScheduled → Started (queue wait: the round trip
 *     through matching, ≈ 0 when the server handed it out eagerly with the workflow task's reply)
 *     → Completed (run);
 *   - a local activity: no task queue and no events of its own, only the MarkerRecorded
 *     `core_local_activity` that the workflow task completing it writes. sdk-core stamps its
 *     complete_time as the workflow time when it was scheduled (the workflow task's start, or the
 *     complete_time of a local activity before it in the same task) plus its run time, so its run
 *     (all attempts, in the worker) is complete_time − that base, and its queue wait 0. (A local
 *     activity outliving its workflow task, rare here, is charged from the later task's start.)
 * Workflow tasks are counted and timed the same way (scheduled → started → completed), so the
 * round trips of one workflow are visible: its workflow tasks plus its task-queue activities.
 */
import { temporal } from '@temporalio/proto';
import type { BenchStack } from './bench-stack';
import { round } from './local-bench-util';

/** Histories read per kind for the time breakdown. */
const BREAKDOWN_SAMPLE = 100;

/** The marker name sdk-core writes for a local activity's result (LOCAL_ACTIVITY_MARKER_NAME). */
const LOCAL_ACTIVITY_MARKER = 'core_local_activity';

interface StepTimes {
  local: boolean;
  count: number;
  queueMs: number;
  runMs: number;
}

/** One step of a workflow: how it was dispatched and its mean wait and run. */
export interface StepBreakdown {
  /** 'queue': an activity task through a task queue; 'local': a local activity inside a workflow task. */
  via: 'queue' | 'local';
  /** Mean times per workflow that ran it (usually once). */
  perWorkflow: number;
  /** Mean scheduled → started (0 for a local activity). */
  queueMs: number;
  /** Mean started → completed (a local activity: first scheduled → completed, all attempts). */
  runMs: number;
}

export interface Breakdown {
  sampled: number;
  /** Mean per workflow of first → last history event. */
  serverMs: number;
  /** Mean history events per workflow. */
  historyEvents: number;
  /** Per step (activity type), see {@link StepBreakdown}. */
  activities: Record<string, StepBreakdown>;
  /** Mean per workflow: how many went through a task queue, how many ran locally. */
  perWorkflow: { queueActivities: number; localActivities: number };
  /** Mean per workflow, summed over its workflow tasks. */
  workflowTasks: { perWorkflow: number; queueMs: number; runMs: number };
}

const E = temporal.api.enums.v1.EventType;

type Ts = temporal.api.history.v1.IHistoryEvent['eventTime'];

function eventMs(ts: Ts): number {
  const s = ts?.seconds ?? 0;
  return (typeof s === 'number' ? s : s.toNumber()) * 1000 + (ts?.nanos ?? 0) / 1e6;
}

/** An RFC 3339 timestamp or a {seconds, nanos} object, as the marker's JSON may spell it. */
function jsonTimeMs(t: unknown): number | null {
  if (typeof t === 'string') {
    const ms = Date.parse(t);
    return Number.isNaN(ms) ? null : ms;
  }
  if (t && typeof t === 'object' && 'seconds' in t) return Number((t as { seconds: unknown }).seconds) * 1000 + Number((t as { nanos?: unknown }).nanos ?? 0) / 1e6;
  return null;
}

/** The LocalActivityMarkerData (sdk-core external_data.proto) of a local-activity marker, as JSON. */
function localActivityData(attrs: temporal.api.history.v1.IMarkerRecordedEventAttributes): { type: string; completeMs: number | null } | null {
  if (attrs.markerName !== LOCAL_ACTIVITY_MARKER) return null;
  const payload = attrs.details?.data?.payloads?.[0];
  if (!payload?.data) return null;
  const data = JSON.parse(Buffer.from(payload.data).toString('utf8')) as Record<string, unknown>;
  return { type: String(data.activity_type ?? data.activityType ?? '?'), completeMs: jsonTimeMs(data.complete_time ?? data.completeTime) };
}

export async function breakdown(stack: BenchStack, workflowIds: string[]): Promise<Breakdown> {
  const step = Math.max(1, Math.floor(workflowIds.length / BREAKDOWN_SAMPLE));
  const sample = workflowIds.filter((_, i) => i % step === 0).slice(0, BREAKDOWN_SAMPLE);
  const acts = new Map<string, StepTimes>();
  const times = (name: string, local: boolean) => {
    const t = acts.get(name) ?? { local, count: 0, queueMs: 0, runMs: 0 };
    acts.set(name, t);
    return t;
  };
  const wft = { count: 0, queueMs: 0, runMs: 0 };
  let serverMs = 0;
  let historyEvents = 0;
  let queueActivities = 0;
  let localActivities = 0;
  for (const id of sample) {
    const events = (await stack.client.temporal.workflow.getHandle(id).fetchHistory()).events ?? [];
    historyEvents += events.length;
    const at = new Map<number, { ms: number; name?: string }>();
    for (const ev of events) at.set(Number(ev.eventId), { ms: eventMs(ev.eventTime), name: ev.activityTaskScheduledEventAttributes?.activityType?.name ?? undefined });
    serverMs += eventMs(events.at(-1)?.eventTime) - eventMs(events[0]?.eventTime);
    // Workflow time as sdk-core keeps it: the current task's start, moved on by each local activity.
    let workflowTimeMs = 0;
    for (const ev of events) {
      const ms = eventMs(ev.eventTime);
      if (ev.eventType === E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
        queueActivities++;
      } else if (ev.eventType === E.EVENT_TYPE_ACTIVITY_TASK_STARTED) {
        const sched = at.get(Number(ev.activityTaskStartedEventAttributes!.scheduledEventId))!;
        const t = times(sched.name!, false);
        t.count++;
        t.queueMs += ms - sched.ms;
      } else if (ev.eventType === E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED) {
        const a = ev.activityTaskCompletedEventAttributes!;
        times(at.get(Number(a.scheduledEventId))!.name!, false).runMs += ms - at.get(Number(a.startedEventId))!.ms;
      } else if (ev.eventType === E.EVENT_TYPE_MARKER_RECORDED) {
        const la = localActivityData(ev.markerRecordedEventAttributes!);
        if (!la) continue;
        localActivities++;
        const t = times(la.type, true);
        t.count++;
        if (la.completeMs !== null) {
          t.runMs += Math.max(0, la.completeMs - workflowTimeMs);
          workflowTimeMs = Math.max(workflowTimeMs, la.completeMs);
        }
      } else if (ev.eventType === E.EVENT_TYPE_WORKFLOW_TASK_STARTED) {
        workflowTimeMs = ms;
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
    historyEvents: round(historyEvents / n, 2),
    activities: Object.fromEntries(
      [...acts].map(([name, t]) => [
        name,
        { via: t.local ? 'local' : 'queue', perWorkflow: round(t.count / n, 2), queueMs: round(t.queueMs / t.count, 2), runMs: round(t.runMs / t.count, 2) } satisfies StepBreakdown,
      ]),
    ),
    perWorkflow: { queueActivities: round(queueActivities / n, 2), localActivities: round(localActivities / n, 2) },
    workflowTasks: { perWorkflow: round(wft.count / n, 2), queueMs: round(wft.queueMs / n, 2), runMs: round(wft.runMs / n, 2) },
  };
}
