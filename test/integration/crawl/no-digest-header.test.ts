/**
 * The distribution spec makes Docker-Content-Digest optional, and some registries leave it out of the
 * answer to a HEAD. Such a tag used to fail as CORRUPT_INPUT in every run, so the registry could not be
 * crawled at all. Now the tag's manifest is fetched by tag (only the bytes tell the digest) and kept, so
 * its digest item reads it back instead of a second GET. Real registry behind the fault proxy, which
 * answers the HEADs of two tags without the header.
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

const REPO = 'nodcd/app';
let registry: RunningRegistry;
let proxy: FaultProxy;
let ws: Workspace;
let s: CrawlScenario;
let dbPath: string;

beforeAll(async () => {
  registry = await startRegistry();
  s = await buildCrawlScenario();
  await pushImage(registry, REPO, 'sid', s.multi);
  await pushImage(registry, REPO, '12', s.clean);
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace();
  dbPath = ws.dbPath('no-digest-header');
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  ws?.cleanup();
});

/**
 * The registry answers a HEAD of either tag with the manifest's type but no Docker-Content-Digest, and the
 * GET of tag 12 without it too: there only the bytes say the digest.
 */
const headsWithoutDigest = () => {
  proxy.addRule({
    method: 'GET',
    path: new RegExp(`^/v2/${REPO}/manifests/12$`),
    times: Number.POSITIVE_INFINITY,
    action: {
      kind: 'respond',
      status: 200,
      headers: { 'content-type': s.clean.mediaType },
      body: s.clean.manifest.toString('utf8'),
    },
  });
  for (const [tag, image] of [
    ['sid', s.multi],
    ['12', s.clean],
  ] as const) {
    proxy.addRule({
      method: 'HEAD',
      path: new RegExp(`^/v2/${REPO}/manifests/${tag}$`),
      times: Number.POSITIVE_INFINITY,
      action: { kind: 'respond', status: 200, headers: { 'content-type': image.mediaType } },
    });
  }
};

const crawl = () =>
  runTestCrawl(dbPath, ws.iocFile, {
    seeds: { repos: [`${registry.host}/${REPO}`] },
    registries: { [registry.host]: { endpoint: proxy.url } },
  });

const manifestGets = () =>
  proxy.log
    .filter((e) => e.method === 'GET' && e.path.includes('/manifests/'))
    .map((e) => e.path.slice(e.path.lastIndexOf('/') + 1))
    .sort();

describe('a registry whose HEAD gives no Docker-Content-Digest', () => {
  it('is crawled: each tag is resolved by one GET of its manifest, kept and not fetched again by digest', async () => {
    headsWithoutDigest();
    const outcome = await crawl();
    expect(outcome).toMatchObject({ status: 'completed', failedItems: 0 });
    const tags = queryDataset<{ tag: string; digest: string }>(
      dbPath,
      'SELECT tag, digest FROM tag_observations ORDER BY tag',
    );
    expect(tags).toEqual([
      { tag: '12', digest: s.clean.digest },
      { tag: 'sid', digest: s.multi.digest },
    ]);
    // By tag for the two tags; by digest only for the index's platform images, which no tag named.
    expect(manifestGets()).toEqual(['12', 'sid', s.multiAmd64.digest, s.multiArm64.digest].sort());
    expect(outcome.stats).toMatchObject({ manifestsFetched: 4, tagDigestsByGet: 2 });
    const rules = queryDataset<{ rule_id: string }>(
      dbPath,
      `SELECT DISTINCT rule_id FROM report_rows WHERE repository = ? AND tag = 'sid' ORDER BY rule_id`,
      REPO,
    ).map((r) => r.rule_id);
    expect(rules).toContain('dpkg-liblzma5-affected');
  });

  it('asks again by tag in the next run (the tag may have moved), and by digest for nothing', async () => {
    proxy.log.length = 0;
    const outcome = await crawl();
    expect(outcome).toMatchObject({ status: 'completed', failedItems: 0 });
    expect(manifestGets()).toEqual(['12', 'sid']);
  });
});
