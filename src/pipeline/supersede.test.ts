/**
 * A new study does not take over an unfinished one's discovery. Run 1 queues two images and stops before
 * crawling anything; run 2 has other seeds, so it is a new run, not a resume. Run 1's pending items are
 * closed as SUPERSEDED failures of run 1, and run 2 crawls and records only its own seed. Real registry.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { debianBaseEntries } from '../../scripts/lib/debian-fixtures.js';
import { buildImage } from '../../scripts/lib/image-builder.js';
import { pushImage } from '../../scripts/lib/push.js';
import {
  makeWorkspace,
  runTestCrawl,
  type TestCrawlOutcome,
  type Workspace,
} from '../../test/helpers/crawl-fixtures.js';
import { queryDataset } from '../../test/helpers/dataset.js';

const registry = inject('registries').none;
let ws: Workspace;
let dbPath: string;
let first: TestCrawlOutcome;
let second: TestCrawlOutcome;
const image = (name: string) => `${registry.host}/superseded/${name}:1`;

beforeAll(async () => {
  for (const name of ['a', 'b', 'c']) {
    const built = await buildImage({
      layers: [{ entries: debianBaseEntries({ codename: name === 'c' ? 'sid' : 'bookworm' }) }],
    });
    await pushImage(registry, `superseded/${name}`, '1', built);
  }
  ws = makeWorkspace('hubcrawl-supersede-');
  dbPath = ws.dbPath('supersede');
  // Interrupted before its first item: everything it queued stays pending.
  first = await runTestCrawl(
    dbPath,
    ws.iocFile,
    { seeds: { images: [image('a'), image('b')] } },
    {
      signal: AbortSignal.abort(new Error('stopped for the test')),
    },
  );
  second = await runTestCrawl(dbPath, ws.iocFile, { seeds: { images: [image('c')] } });
}, 120_000);

afterAll(() => ws?.cleanup());

describe('a new study after an unfinished run', () => {
  it('leaves the first run aborted with its work pending, and starts run 2 instead of resuming it', () => {
    expect(first).toMatchObject({ runId: 1, status: 'aborted' });
    expect(second).toMatchObject({ runId: 2, resumed: false, status: 'completed', failedItems: 0 });
  });

  it("closes run 1's pending items as SUPERSEDED failures of run 1", () => {
    const items = queryDataset<{ key: string; state: string; last_error_code: string }>(
      dbPath,
      `SELECT key, state, last_error_code FROM frontier WHERE key LIKE '1|%' ORDER BY key`,
    );
    expect(items.map((i) => [i.key.split('/').slice(-1)[0], i.state, i.last_error_code])).toEqual([
      ['a:1@', 'failed', 'SUPERSEDED'],
      ['b:1@', 'failed', 'SUPERSEDED'],
    ]);
    const failures = queryDataset<{ run_id: number; n: number }>(
      dbPath,
      `SELECT run_id, count(*) AS n FROM failures WHERE error_code = 'SUPERSEDED' GROUP BY run_id`,
    );
    expect(failures).toEqual([{ run_id: 1, n: 2 }]);
  });

  it('records only its own seed in run 2', () => {
    const seen = queryDataset<{ name: string; run_id: number }>(
      dbPath,
      `SELECT r.name, t.run_id FROM tag_observations t JOIN repositories r ON r.id = t.repository_id`,
    );
    expect(seen).toEqual([{ name: 'c', run_id: 2 }]);
  });
});
