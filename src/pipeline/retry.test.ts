/**
 * Which failed items a run retries. Run-keyed items (a tag to resolve, `<run>|…`) get their attempts in
 * their own run only: a new run re-creates the work under its own key, so an earlier run's failed item stays
 * as that run's record instead of being done (and counted) a second time. Content-keyed layers are shared by
 * every run and retried by each, up to maxAttempts. Crawls the real registry: a tag that does not exist
 * (PERMANENT) and an image whose only layer is a truncated gzip (CORRUPT_INPUT).
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { blobOf, buildImage, buildLayerTar, MEDIA_TYPES, sha256 } from '../../scripts/lib/image-builder.js';
import { pushImage } from '../../scripts/lib/push.js';
import { buildCliOnce, runCli } from '../../test/e2e/helpers/cli.js';
import {
  makeWorkspace,
  runTestCrawl,
  type TestCrawlOutcome,
  type Workspace,
} from '../../test/helpers/crawl-fixtures.js';
import { queryDataset } from '../../test/helpers/dataset.js';
import { openDatabase } from '../db/open.js';

const registry = inject('registries').none;
const REPO = 'retry-policy';
let ws: Workspace;
let layerDigest: string;
const outcomes: TestCrawlOutcome[] = [];
/** Attempts per frontier key after each run. */
const attemptsAfter: Array<Record<string, number>> = [];

const missingKey = (run: number) => `${run}|${registry.host}/${REPO}/missing:1@`;

beforeAll(async () => {
  const gz = gzipSync(await buildLayerTar([{ type: 'file', path: 'a', content: 'x'.repeat(5000) }]));
  // The diff_id is never checked by the crawler; a fixed value keeps a truncated blob pushable.
  const layer = blobOf(gz.subarray(0, gz.length >> 1), MEDIA_TYPES.dockerLayerGzip, sha256('retry diff-id'));
  layerDigest = layer.digest;
  await pushImage(registry, `${REPO}/broken`, '1', await buildImage({ layers: [layer] }));
  ws = makeWorkspace('hubcrawl-retry-');
  const dbPath = ws.dbPath('retry');
  const settings = {
    seeds: { images: [`${registry.host}/${REPO}/missing:1`, `${registry.host}/${REPO}/broken:1`] },
    maxAttempts: 3,
  };
  const crawl = async () => {
    outcomes.push(await runTestCrawl(dbPath, ws.iocFile, settings));
    const rows = queryDataset<{ kind: string; key: string; attempts: number }>(
      dbPath,
      `SELECT kind, key, attempts FROM frontier WHERE state = 'failed'`,
    );
    attemptsAfter.push(
      Object.fromEntries(
        rows.map((r) => [r.key.startsWith(`${layerDigest}|`) ? 'layer' : r.key, r.attempts]),
      ),
    );
  };
  await crawl();
  await crawl();
  // Run 2 as if it had been stopped early: the next crawl resumes it.
  const db = openDatabase(dbPath);
  db.prepare(`UPDATE crawl_runs SET status = 'aborted' WHERE id = 2`).run();
  db.close();
  await crawl();
});

afterAll(() => ws?.cleanup());

describe('failed items across runs', () => {
  it('fails the missing tag and the broken layer in the first run', () => {
    expect(outcomes[0]).toMatchObject({ runId: 1, resumed: false, failedItems: 2 });
    expect(attemptsAfter[0]).toEqual({ [missingKey(1)]: 1, layer: 1 });
  });

  it('retries a tag that failed in an earlier run under the new run key only, counting it once', () => {
    expect(outcomes[1]).toMatchObject({ runId: 2, resumed: false, failedItems: 2 });
    expect(attemptsAfter[1]).toMatchObject({ [missingKey(1)]: 1, [missingKey(2)]: 1 });
  });

  it('retries a layer that failed in an earlier run', () => {
    expect(attemptsAfter[1]?.layer).toBe(2);
  });

  it('retries its own failed tag when a run resumes, and still not an earlier run one', () => {
    expect(outcomes[2]).toMatchObject({ runId: 2, resumed: true, failedItems: 2 });
    expect(attemptsAfter[2]).toEqual({ [missingKey(1)]: 1, [missingKey(2)]: 2, layer: 3 });
  });
});

describe('a resumed run whose earlier invocation failed items for good', () => {
  it('ends completed-with-failures and counts them, though it retries none of them', async () => {
    const dbPath = ws.dbPath('retry-exhausted');
    // One attempt each: the failures of the first invocation are final, and the resumed one retries nothing.
    const settings = {
      seeds: { images: [`${registry.host}/${REPO}/missing:1`, `${registry.host}/${REPO}/broken:1`] },
      maxAttempts: 1,
    };
    const first = await runTestCrawl(dbPath, ws.iocFile, settings);
    expect(first).toMatchObject({ resumed: false, failedItems: 2, status: 'completed-with-failures' });
    const db = openDatabase(dbPath);
    db.prepare(`UPDATE crawl_runs SET status = 'aborted' WHERE id = ?`).run(first.runId);
    db.close();
    const resumed = await runTestCrawl(dbPath, ws.iocFile, settings);
    expect(resumed).toMatchObject({
      runId: first.runId,
      resumed: true,
      failedItems: 2,
      status: 'completed-with-failures',
    });
    expect(resumed.stats).toMatchObject({ itemsFailed: 0, itemsFailedBeforeResume: 2 });
    await buildCliOnce();
    const stats = await runCli(['stats', '--db', dbPath]);
    expect(stats.stdout).toMatch(/failed items \(whole run\)\s*│?\s*2 \(2 before the resume\)/);
  });
});
