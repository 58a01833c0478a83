/**
 * The one behaviour suite every Executor must pass, split per operation (as OpenDAL's
 * core/tests/behavior is) and gated by capability: a backend's test file declares its
 * capabilities synchronously (see {@link BehaviourSetup}), and tests that only hold where a
 * capability is present (POSIX modes, atomic rename, real directories, symlinks, a key length
 * limit, multipart) are only part of the suite where it is. Nothing is skipped at run time.
 *
 * Usage: `describeExecutorBehaviour('s3', { capabilities, create: async () => ({ executor, cleanup, writeRaw, readRaw }) })`.
 */
import { BehaviourContext, type BehaviourSetup } from './context';
import { copyBehaviour } from './copy';
import { deleteBehaviour } from './delete';
import { mkdirBehaviour } from './mkdir';
import { moveBehaviour } from './move';
import { pathsBehaviour } from './paths';
import { readBehaviour } from './read';
import { statListBehaviour } from './stat-list';
import { undoFinalizeBehaviour } from './undo-finalize';
import { writeBehaviour } from './write';

export { codeOf, readAll, sha256, type BehaviourSetup, type ExecutorFixture } from './context';

export function describeExecutorBehaviour(name: string, setup: BehaviourSetup): void {
  describe(`Executor behaviour: ${name}`, () => {
    const c = new BehaviourContext(name, setup);
    c.install();

    describe('capabilities', () => {
      it('reports exactly what the test file declared (the suite was built from that)', () => {
        expect(c.ex.capabilities()).toEqual(setup.capabilities);
        const caps = c.ex.capabilities();
        for (const key of ['atomicRename', 'serverSideCopy', 'multipart', 'posixMode', 'directories', 'conditionalCreate', 'versioning'] as const) {
          expect(typeof caps[key]).toBe('boolean');
        }
        expect(caps.multipartLimits === null).toBe(!caps.multipart);
      });
    });

    statListBehaviour(c);
    readBehaviour(c);
    writeBehaviour(c);
    mkdirBehaviour(c);
    copyBehaviour(c);
    moveBehaviour(c);
    deleteBehaviour(c);
    undoFinalizeBehaviour(c);
    pathsBehaviour(c);
  });
}
