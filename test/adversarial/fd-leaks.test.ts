/**
 * A worker runs for months: every call that stops early — a crash hook, a lost fence, a failed
 * undo — must still close the directory fds it held (the no-follow walk holds staging open for
 * the whole call). Counted in /proc/self/fd, so a leak shows before the garbage collector would
 * quietly close it.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalExecutor } from '../../src/executors/local/local-executor';
import { FenceLostError } from '../../src/errors';

const openFds = async (): Promise<number> => (await fs.readdir('/proc/self/fd')).length;
const hasProc = async (): Promise<boolean> => fs.stat('/proc/self/fd').then(() => true, () => false);

let root: string;
beforeAll(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'filestore-fds-'));
});
afterAll(async () => fs.rm(root, { recursive: true, force: true }));

test('calls stopped at their first durable step (crash, lost fence) and their undos leave no fd open', async () => {
  if (!(await hasProc())) return void console.warn('skipped: no /proc/self/fd on this system');
  const crashing = await LocalExecutor.open(
    { id: 'fds', kind: 'local', rootPath: root, readOnly: false },
    {
      afterStep: (step) => {
        if (step === 'plan-saved') throw new Error('crash');
      },
    },
  );
  const fenced = await LocalExecutor.open({ id: 'fds', kind: 'local', rootPath: root, readOnly: false });
  // Warm up whatever a first call opens once (the /proc probe).
  await fenced.write('warm.txt', { kind: 'inline', data: Buffer.from('w') }, { txId: 'warm' });
  const before = await openFds();
  for (let i = 0; i < 50; i++) {
    await crashing.write(`c/${i}.txt`, { kind: 'inline', data: Buffer.from('x') }, { txId: `crash-${i}` }).catch(() => undefined);
    await crashing.undo(`crash-${i}`);
    let calls = 0;
    const guard = async () => {
      // Passes while the plan is saved, fails from the first durable step on: a fence lost mid-call.
      if (++calls > 1) throw new FenceLostError(`fence-${i}`, 'session ended');
    };
    await fenced.write(`f/${i}.txt`, { kind: 'inline', data: Buffer.from('y') }, { txId: `fence-${i}`, guard }).catch(() => undefined);
    await fenced.undo(`fence-${i}`, { guard: async () => Promise.reject(new FenceLostError(`fence-${i}`, 'still lost')) }).catch(() => undefined);
  }
  expect(await openFds()).toBeLessThanOrEqual(before + 2);
});
