/**
 * Wraps activities so a thrown FilestoreError reaches the workflow as an ApplicationFailure whose
 * type is the error's class name and whose first detail is its ErrorInfo (code, details): Temporal
 * would otherwise keep only name and message. Also times every attempt.
 */
import { ApplicationFailure } from '@temporalio/activity';
import { FilestoreError, NON_RETRYABLE } from '../src/errors';
import { activityDuration } from '../src/metrics';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyFn = (...args: any[]) => Promise<any>;

export function withTypedFailures<T extends Record<string, AnyFn>>(activities: T): T {
  const wrapped: Record<string, AnyFn> = {};
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] = async (...args: unknown[]) => {
      const end = activityDuration.startTimer({ activity: name });
      try {
        const result = await fn(...args);
        end({ outcome: 'ok' });
        return result;
      } catch (err) {
        end({ outcome: 'error' });
        if (err instanceof FilestoreError) {
          throw ApplicationFailure.create({
            type: err.name,
            message: err.message,
            nonRetryable: !err.retryable || NON_RETRYABLE.includes(err.name),
            details: [err.toJSON()],
          });
        }
        throw err;
      }
    };
  }
  return wrapped as T;
}
