/**
 * The one prom-client registry and every metric definition. Labels are bounded — backend, op,
 * outcome, mount id — and never carry a path.
 */
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const registry = new Registry();
collectDefaultMetrics({ register: registry, prefix: 'filestore_process_' });

export const executorDuration = new Histogram({
  name: 'filestore_executor_duration_seconds',
  help: 'Time spent in one executor call, by backend, op and outcome',
  labelNames: ['backend', 'op', 'outcome'] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [registry],
});

export const executorOperations = new Counter({
  name: 'filestore_executor_operations_total',
  help: 'Executor calls, by backend, mount, op and outcome',
  labelNames: ['backend', 'mount', 'op', 'outcome'] as const,
  registers: [registry],
});

export const bytesWritten = new Counter({
  name: 'filestore_bytes_written_total',
  help: 'Bytes written to backends by mutations',
  labelNames: ['backend', 'mount'] as const,
  registers: [registry],
});

export const mutationOutcomes = new Counter({
  name: 'filestore_mutations_total',
  help: 'Mutation workflows that ended, by op and outcome (committed, rolled_back, failed)',
  labelNames: ['mount', 'op', 'outcome'] as const,
  registers: [registry],
});

export const activityDuration = new Histogram({
  name: 'filestore_activity_duration_seconds',
  help: 'Time spent in one activity attempt, by activity and outcome',
  labelNames: ['activity', 'outcome'] as const,
  buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
  registers: [registry],
});

/** Times `fn` into the executor histogram and operation counter. */
export async function timeExecutor<T>(backend: string, mount: string, op: string, fn: () => Promise<T>): Promise<T> {
  const end = executorDuration.startTimer({ backend, op });
  try {
    const result = await fn();
    end({ outcome: 'ok' });
    executorOperations.inc({ backend, mount, op, outcome: 'ok' });
    return result;
  } catch (err) {
    end({ outcome: 'error' });
    executorOperations.inc({ backend, mount, op, outcome: 'error' });
    throw err;
  }
}
