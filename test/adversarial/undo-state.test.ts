/**
 * Undo state out of reach. The reported attack: a mount user writes a forged `plan.json` into a
 * pending transaction's staging folder (directly, or through an in-mount symlink that reaches
 * `.filestore-staging`), and undo executes it — `rm -rf` of an unrelated directory. Plans now live
 * in the plan store (the catalog, for a worker); whatever a user puts into staging can only make a
 * mutation fail, never make undo touch anything else.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { LocalExecutor } from '../../src/executors/local/local-executor';
import type { Plan } from '../../src/executors/local/local-staging';
import { MemoryPlanStore } from '../../src/executors/plan-store';
import { STAGING_DIR } from '../../src/paths';
import { listTree } from '../helpers/files';

let root: string;
let store: MemoryPlanStore<Plan>;

beforeEach(async () => {
  root = await fs.realpath(await fs.mkdtemp(path.join(os.tmpdir(), 'filestore-undo-state-')));
  store = new MemoryPlanStore<Plan>();
  await fs.mkdir(path.join(root, 'unrelated'));
  await fs.writeFile(path.join(root, 'unrelated', 'important.txt'), 'do not delete');
});
afterEach(async () => fs.rm(root, { recursive: true, force: true }));

const open = (hooks = {}) => LocalExecutor.open({ id: 'us', kind: 'local', rootPath: root, readOnly: false }, { planStore: store, ...hooks });

const forged = (txId: string): Plan => ({
  version: 1,
  txId,
  op: 'copy',
  target: 'unrelated',
  kind: 'directory',
  hadPrevious: false,
  createdDirs: ['unrelated'],
  staged: { bytes: 0 },
  applied: false,
});

test('a forged plan.json in a pending transaction\'s staging folder is never executed by undo', async () => {
  const crashing = await open({
    afterStep: (step: string) => {
      if (step === 'data-staged') throw new Error('crash');
    },
  });
  await expect(crashing.write('new/file.txt', { kind: 'inline', data: Buffer.from('x') }, { txId: 'victim-tx' })).rejects.toThrow('crash');
  const staging = path.join(root, STAGING_DIR, 'victim-tx');
  expect(await fs.readdir(staging)).not.toContain('plan.json');
  // The attacker (root can write anywhere here) plants a plan that names an unrelated directory.
  await fs.writeFile(path.join(staging, 'plan.json'), JSON.stringify(forged('victim-tx')));

  const ex = await open();
  await ex.undo('victim-tx');
  expect(await fs.readFile(path.join(root, 'unrelated', 'important.txt'), 'utf8')).toBe('do not delete');
  // The real plan was undone: the write's new parent is gone, the unrelated tree is whole.
  expect(await listTree(root)).toEqual([STAGING_DIR, 'unrelated', 'unrelated/important.txt']);
  expect(await fs.readdir(path.join(root, STAGING_DIR))).toEqual([]);
});

test('a staging folder a user made for a transaction Filestore never planned: undo touches nothing outside it', async () => {
  await fs.mkdir(path.join(root, STAGING_DIR, 'planted'), { recursive: true, mode: 0o700 });
  await fs.chmod(path.join(root, STAGING_DIR), 0o700);
  await fs.writeFile(path.join(root, STAGING_DIR, 'planted', 'plan.json'), JSON.stringify(forged('planted')));
  const ex = await open();
  expect(await ex.undo('planted')).toEqual({ undone: false });
  expect(await fs.readFile(path.join(root, 'unrelated', 'important.txt'), 'utf8')).toBe('do not delete');
});

test('staging folders are created 0700', async () => {
  const ex = await open();
  await ex.write('a.txt', { kind: 'inline', data: Buffer.from('a') }, { txId: 'mode-tx' });
  expect((await fs.stat(path.join(root, STAGING_DIR))).mode & 0o777).toBe(0o700);
  expect((await fs.stat(path.join(root, STAGING_DIR, 'mode-tx'))).mode & 0o777).toBe(0o700);
});

test('a move that crashed after recording its plan, before its rename: a file a user put at the target is neither removed by the retry nor by undo', async () => {
  await fs.writeFile(path.join(root, 'src.txt'), 'mine to move');
  const crashing = await open({
    afterStep: (step: string) => {
      if (step === 'dirs-created') throw new Error('crash');
    },
  });
  await expect(crashing.move('src.txt', 'dst/moved.txt', { txId: 'mv-tx' })).rejects.toThrow('crash');
  // The crash point right after the plan recorded `staged` and right before the rename: exactly
  // what the plan store then holds.
  const plan = (await store.load('mv-tx'))!;
  await store.save({ ...plan, staged: { bytes: 0 } });
  await fs.writeFile(path.join(root, 'dst', 'moved.txt'), "a user's own file");

  const ex = await open();
  await expect(ex.move('src.txt', 'dst/moved.txt', { txId: 'mv-tx' })).rejects.toMatchObject({ code: 'ALREADY_EXISTS' });
  expect(await fs.readFile(path.join(root, 'dst', 'moved.txt'), 'utf8')).toBe("a user's own file");
  await ex.undo('mv-tx');
  expect(await fs.readFile(path.join(root, 'dst', 'moved.txt'), 'utf8')).toBe("a user's own file");
  expect(await fs.readFile(path.join(root, 'src.txt'), 'utf8')).toBe('mine to move');
});

test('an undo that crashed after recording itself, before dropping staging: the retry finishes the cleanup and answers the same', async () => {
  const ex = await open();
  await ex.write('u/f.txt', { kind: 'inline', data: Buffer.from('u') }, { txId: 'undo-tx' });
  expect(await ex.undo('undo-tx')).toEqual({ undone: true });
  // The state that crash leaves: the plan says undone, the staging folder is still there.
  await fs.mkdir(path.join(root, STAGING_DIR, 'undo-tx'), { mode: 0o700 });
  await fs.writeFile(path.join(root, STAGING_DIR, 'undo-tx', 'backup'), 'left over');
  expect(await ex.undo('undo-tx')).toEqual({ undone: true });
  expect(await fs.readdir(path.join(root, STAGING_DIR))).toEqual([]);
});
