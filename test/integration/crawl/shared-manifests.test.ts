/**
 * One index pushed under four repositories (as Docker Hub mirrors and re-tags do): the crawl resolves
 * all four tags concurrently, yet fetches each manifest digest once, and still reports the findings
 * under every repository that carries the image.
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
  type TestCrawlOutcome,
  type Workspace,
} from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';

const REPOS = ['mirror/one', 'mirror/two', 'mirror/three', 'mirror/four'];

let registry: RunningRegistry;
let proxy: FaultProxy;
let ws: Workspace;
let s: CrawlScenario;
let dbPath: string;
let outcome: TestCrawlOutcome;

beforeAll(async () => {
  registry = await startRegistry();
  s = await buildCrawlScenario();
  for (const repo of REPOS) await pushImage(registry, repo, 'sid', s.multi);
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace();
  dbPath = ws.dbPath('shared');
  outcome = await runTestCrawl(dbPath, ws.iocFile, {
    concurrency: 8,
    seeds: { repos: REPOS.map((r) => `${registry.host}/${r}`) },
    registries: { [registry.host]: { endpoint: proxy.url } },
  });
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  ws?.cleanup();
});

describe('a manifest shared by several repositories', () => {
  it('is fetched once per digest however many repositories reference it', () => {
    expect(outcome.status).toBe('completed');
    const gets = proxy.log
      .filter((e) => e.method === 'GET' && e.path.includes('/manifests/'))
      .map((e) => e.path.slice(e.path.lastIndexOf('/') + 1))
      .sort();
    expect(gets).toEqual([s.multi.digest, s.multiAmd64.digest, s.multiArm64.digest].sort());
  });

  it('is reported under every repository and tag that points at it', () => {
    const rows = queryDataset<{ repository: string; tag: string; rule_id: string; manifest_digest: string }>(
      dbPath,
      'SELECT repository, tag, rule_id, manifest_digest FROM report_rows ORDER BY repository, rule_id',
    );
    const rules = ['dpkg-liblzma5-affected', 'dpkg-liblzma5-payload-expected', 'dpkg-xz-utils-affected'];
    const expected = [...REPOS]
      .sort()
      .flatMap((repository) =>
        rules.map((rule_id) => ({ repository, tag: 'sid', rule_id, manifest_digest: s.multiAmd64.digest })),
      );
    expect(rows).toEqual(expected);
  });
});
