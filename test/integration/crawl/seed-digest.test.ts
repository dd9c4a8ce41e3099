/**
 * A seed that names a digest (`repo@sha256:…`, `repo:tag@sha256:…`) is text, not an observation. When the
 * dataset already holds that digest from another repository, nothing but the registry can say whether this
 * repository serves it; without asking, a clean repository was reported as carrying a backdoored image,
 * under a tag that never pointed at it. The tests run in order on one dataset, on the real registry.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import {
  buildCrawlScenario,
  type CrawlScenario,
  makeWorkspace,
  runTestCrawl,
  type Workspace,
} from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';

let registry: RunningRegistry;
let proxy: FaultProxy;
let ws: Workspace;
let s: CrawlScenario;
let dbPath: string;
/** The backdoored multi-arch index, held by `held/sid` only. */
let backdoored: string;

beforeAll(async () => {
  registry = await startRegistry();
  s = await buildCrawlScenario();
  await pushImage(registry, 'held/sid', 'sid', s.multi);
  await pushImage(registry, 'held/sid', 'moved', s.clean);
  await pushImage(registry, 'clean/app', 'v1', s.clean);
  backdoored = s.multi.digest;
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace();
  dbPath = ws.dbPath('seed-digest');
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  ws?.cleanup();
});

const crawlImages = (...refs: string[]) =>
  runTestCrawl(dbPath, ws.iocFile, {
    seeds: { images: refs.map((r) => `${registry.host}/${r}`) },
    registries: { [registry.host]: { endpoint: proxy.url } },
  });

/** Repositories and tags the report attributes the backdoored index to. */
const reportedUnder = () =>
  queryDataset<{ repository: string; tag: string }>(
    dbPath,
    `SELECT DISTINCT repository, tag FROM report_rows WHERE index_digest = ? ORDER BY repository, tag`,
    [backdoored],
  );

describe('a seed naming a digest', () => {
  it('first: the dataset learns the backdoored index from the repository that holds it', async () => {
    const outcome = await crawlImages('held/sid:sid');
    expect(outcome.status).toBe('completed');
    expect(reportedUnder()).toEqual([{ repository: 'held/sid', tag: 'sid' }]);
  });

  it('in a repository that does not hold the digest fails, and records nothing under that repository', async () => {
    proxy.reset();
    const outcome = await crawlImages(`clean/app:v1@${backdoored}`, `nowhere/repo@${backdoored}`);
    expect(outcome.status).toBe('completed-with-failures');
    expect(outcome.failedItems).toBe(2);
    const errors = queryDataset<{ last_error: string }>(
      dbPath,
      "SELECT last_error FROM frontier WHERE state = 'failed' ORDER BY id",
    ).map((r) => r.last_error);
    expect(errors).toEqual([
      `${registry.host}/clean/app holds no manifest ${backdoored} (HEAD answered 404): the seed names an image this repository does not serve; nothing is recorded for it`,
      `${registry.host}/nowhere/repo holds no manifest ${backdoored} (HEAD answered 404): the seed names an image this repository does not serve; nothing is recorded for it`,
    ]);
    expect(reportedUnder()).toEqual([{ repository: 'held/sid', tag: 'sid' }]);
    const observed = queryDataset<{ repository: string; tag: string }>(
      dbPath,
      `SELECT r.full_name AS repository, t.tag FROM tag_observations t JOIN repositories r ON r.id = t.repository_id
        WHERE t.digest = ? ORDER BY r.full_name, t.tag`,
      [backdoored],
    );
    expect(observed).toEqual([{ repository: 'held/sid', tag: 'sid' }]);
    // HEADs only (not counted pulls on Docker Hub): the stored manifest was never read back for them.
    expect(proxy.log.filter((e) => e.path.includes('/manifests/')).map((e) => e.method)).toEqual([
      'HEAD',
      'HEAD',
      'HEAD',
    ]);
  });

  it('keeps the tag only where the tag points at the digest now; otherwise records the image untagged', async () => {
    proxy.reset();
    const outcome = await crawlImages(`held/sid:moved@${backdoored}`, `held/sid:sid@${backdoored}`);
    expect(outcome.status).toBe('completed');
    const seen = queryDataset<{ tag: string }>(
      dbPath,
      `SELECT DISTINCT t.tag FROM tag_observations t WHERE t.digest = ? AND t.run_id = (SELECT max(id) FROM crawl_runs)
        ORDER BY t.tag`,
      [backdoored],
    );
    expect(seen).toEqual([{ tag: '' }, { tag: 'sid' }]);
    // The report gives an image's untagged sighting a row only where no tag of that repository points at it.
    expect(reportedUnder()).toEqual([{ repository: 'held/sid', tag: 'sid' }]);
    // The manifests were already stored: no GET, one HEAD per tag and one for the digest of the moved tag.
    expect(proxy.log.some((e) => e.method === 'GET' && e.path.includes('/manifests/'))).toBe(false);
  });

  it('records the image untagged when the tag cannot be checked (its HEAD refused), the digest being held', async () => {
    proxy.reset();
    proxy.addRule({
      method: 'HEAD',
      path: /^\/v2\/held\/sid\/manifests\/sid$/,
      times: Number.POSITIVE_INFINITY,
      action: { kind: 'respond', status: 403, body: '{"errors":[{"code":"DENIED"}]}' },
    });
    const outcome = await crawlImages(`held/sid:sid@${backdoored}`);
    expect(outcome).toMatchObject({ status: 'completed', failedItems: 0 });
    const seen = queryDataset<{ tag: string }>(
      dbPath,
      `SELECT tag FROM tag_observations WHERE digest = ? AND run_id = (SELECT max(id) FROM crawl_runs)`,
      [backdoored],
    );
    expect(seen).toEqual([{ tag: '' }]);
  });
});
