/**
 * A test seam for crash and takeover tests that drive real `filestore worker` processes:
 * `FILESTORE_FAULT_PAUSE_AT=<op>:<step>:<marker-file>` makes a worker's local executors stop after
 * `<step>` of the first `<op>` that reaches it, write `<marker-file>` (its pid), and wait until the
 * test deletes the file — so a test can SIGSTOP or kill the worker at an exact point of a mutation.
 * Never set in production.
 */
import fs from 'node:fs/promises';
import { InvalidRequestError } from '../errors';
import type { LocalExecutorHooks, MutationStep } from './local/local-executor';

const STEPS: MutationStep[] = ['plan-saved', 'dirs-created', 'data-staged', 'backup-taken', 'committed'];

/** Hooks for `spec` (unset → none). */
export function faultInjectionHooks(spec: string | undefined): LocalExecutorHooks {
  if (!spec) return {};
  const [op, step, ...rest] = spec.split(':');
  const marker = rest.join(':');
  if (!op || !STEPS.includes(step as MutationStep) || !marker.startsWith('/')) {
    throw new InvalidRequestError(`FILESTORE_FAULT_PAUSE_AT must be <op>:<step>:<absolute marker path>, got ${JSON.stringify(spec)}`);
  }
  let fired = false;
  return {
    afterStep: async (at, ctx) => {
      if (fired || at !== step || ctx.op !== op) return;
      fired = true;
      await fs.writeFile(marker, String(process.pid));
      for (;;) {
        await new Promise((r) => setTimeout(r, 25));
        if (!(await fs.stat(marker).then(() => true, () => false))) return;
      }
    },
  };
}
