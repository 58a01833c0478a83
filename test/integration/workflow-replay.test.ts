/**
 * Workflow code changes must not break runs already in flight: a worker upgraded while a mutation
 * runs replays that mutation's history with the new code, and a nondeterminism error there fails
 * its workflow task again and again — the mutation never ends and its PENDING entry keeps its
 * path locked. These histories were recorded (`temporal workflow show -o json`) from the real
 * worker: `v1-*` at commit 9956f63, when every step was an activity through a task queue; `v2-*`
 * with begin, commit and publish as local activities behind the `catalog-steps-as-local-activities`
 * patch. Both must replay with today's workflows.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';
import { Worker } from '@temporalio/worker';
import { bundleWorkflows } from '../helpers/temporal-env';

/**
 * A history file (proto3 JSON, as the CLI writes it) as a History message. Not the SDK's
 * historyFromJSON: with the packages as installed, @temporalio/common and @temporalio/proto each
 * get their own copy of protobufjs 8, and common's parser rejects proto's types ("type must be a
 * Type"). The parser of the copy that built the types reads them.
 */
function loadHistory(file: string): proto.temporal.api.history.v1.History {
  const { fromJson } = createRequire(require.resolve('@temporalio/proto'))('protobufjs/ext/protojson') as {
    fromJson: (type: unknown, json: unknown, opts: { ignoreUnknownFields: boolean }) => proto.temporal.api.history.v1.History;
  };
  const root = patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown };
  return fromJson(root.lookupType('temporal.api.history.v1.History'), JSON.parse(fs.readFileSync(file, 'utf8')), { ignoreUnknownFields: true });
}

const DIR = path.join(__dirname, '..', 'fixtures', 'histories');
const histories = fs
  .readdirSync(DIR)
  .filter((f) => f.endsWith('.json'))
  .sort();

let code: string;
beforeAll(async () => {
  code = await bundleWorkflows(path.join(__dirname, '..', '..', 'workflows', 'index.ts'));
}, 120_000);

test('there are histories of both generations to replay', () => {
  expect(histories.filter((f) => f.startsWith('v1-')).length).toBeGreaterThanOrEqual(4);
  expect(histories.filter((f) => f.startsWith('v2-')).length).toBeGreaterThanOrEqual(4);
});

test.each(histories)('%s replays without a nondeterminism error', async (file) => {
  const history = loadHistory(path.join(DIR, file));
  expect(history.events?.length).toBeGreaterThan(0);
  await Worker.runReplayHistory({ workflowBundle: { code } }, history, `replay-${file}`);
}, 60_000);
