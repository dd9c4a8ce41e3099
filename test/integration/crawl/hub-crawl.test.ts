/**
 * The Docker Hub path of a crawl: repositories named like Hub ones (`library/debian`) pushed into the
 * real registry, which stands in as the registry mirror behind a recording fault proxy; the fake Hub
 * web API describes the same images (same digests) with push dates and repository metadata. The
 * proxy log says which tags cost a HEAD and which manifests cost a counted pull. The fake's anonymous
 * offset cap cuts a tag listing, a namespace listing and a search, each in crawls of their own.
 */
import { writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { type BuiltImage, buildImage } from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import {
  buildCrawlScenario,
  type CrawlScenario,
  makeWorkspace,
  runTestCrawl,
  SIG_LIB_PATH,
  type TestCrawlOutcome,
  type Workspace,
} from '../../helpers/crawl-fixtures.js';
import { datasetSnapshot, queryDataset } from '../../helpers/dataset.js';
import { type FakeHub, type FakeHubTag, fakeHubTagFor, startFakeHub } from '../../helpers/fake-hub.js';

const MANY_TAGS = 105;
/**
 * The main crawl's second repository, under the cap: with library/many (past the cap) crawled on its own
 * below, it keeps the main crawl at two repositories listing at once, which the 429 test needs.
 */
const FEW_TAGS = 3;
/** A namespace with more repositories than the anonymous cap lets a listing or a search page through. */
const CROWD = 'crowd';
const CROWD_REPOS = 105;
const crowdRepo = (i: number) => `r${String(i).padStart(3, '0')}`;
/** What `docker login` left in a Docker config: signs the crawl in to the Hub API too. */
const DOCKER_LOGIN = { user: 'carol', pat: 'dckr_pat_from_docker_login' };
/** The fake Hub's anonymous cap: page 2 (offset 100) of the 100-per-page tag listing is refused. */
const OFFSET_CAP = 100;
const manyTag = (i: number) => `v${String(i).padStart(3, '0')}`;

let registry: RunningRegistry;
let proxy: FaultProxy;
let hub: FakeHub;
let ws: Workspace;
let s: CrawlScenario;
let tiny: BuiltImage;
let dbPath: string;
let outcome: TestCrawlOutcome;
let log: FaultProxy['log'];

const settings = (over: Record<string, unknown> = {}) => ({
  seeds: {
    repos: ['debian', 'docker.io/library/few'],
    // An untagged digest, as in Binarly's published list; its only tag is filtered out below.
    images: [`docker.io/library/debian@${s.sig.digest}`],
  },
  hubApiUrl: hub.url,
  registryMirror: proxy.url,
  filters: { tags: '^(?!skip-)', pushedAfter: '2020-01-01', pushedBefore: '2029-01-01' },
  ...over,
});

const heads = (l: FaultProxy['log']) => l.filter((e) => e.method === 'HEAD').map((e) => e.path);
const manifestGets = (l: FaultProxy['log']) =>
  l.filter((e) => e.method === 'GET' && e.path.includes('/manifests/')).map((e) => e.path);

beforeAll(async () => {
  registry = await startRegistry();
  s = await buildCrawlScenario();
  tiny = await buildImage({ layers: [{ entries: [{ type: 'file', path: 'etc/many', content: 'many\n' }] }] });
  const debianTags: Array<[string, BuiltImage | CrawlScenario['multi'], string]> = [
    ['12', s.clean, '2024-03-01T00:00:00.000000Z'],
    ['sid-20240311', s.multi, '2024-03-11T09:00:00.000000Z'],
    // Each of these would add findings if the filters let it through.
    ['buster', s.app, '2019-06-01T00:00:00.000000Z'],
    ['future', s.sig, '2030-01-01T00:00:00.000000Z'],
    ['skip-me', s.removed, '2024-03-02T00:00:00.000000Z'],
  ];
  const hubDebian: FakeHubTag[] = [];
  for (const [tag, image, pushed] of debianTags) {
    await pushImage(registry, 'library/debian', tag, image);
    hubDebian.push(fakeHubTagFor(tag, image, pushed));
  }
  const hubFew: FakeHubTag[] = [];
  for (let i = 0; i < FEW_TAGS; i++) {
    await pushImage(registry, 'library/few', `f${i}`, tiny);
    hubFew.push(fakeHubTagFor(`f${i}`, tiny, '2024-04-01T00:00:00.000000Z'));
  }
  const hubMany: FakeHubTag[] = [];
  for (let i = 0; i < MANY_TAGS; i++) {
    await pushImage(registry, 'library/many', manyTag(i), tiny);
    hubMany.push(
      fakeHubTagFor(manyTag(i), tiny, `2024-04-01T00:00:${String(i % 60).padStart(2, '0')}.000000Z`),
    );
  }
  hub = await startFakeHub({
    anonymousOffsetCap: OFFSET_CAP,
    users: { [DOCKER_LOGIN.user]: DOCKER_LOGIN.pat },
    repos: [
      {
        namespace: 'library',
        name: 'debian',
        pullCount: 123_456_789,
        starCount: 42,
        description: 'Debian is a Linux distribution',
        lastUpdated: '2024-03-11T09:00:00.000000Z',
        tags: hubDebian,
      },
      { namespace: 'library', name: 'few', pullCount: 7, tags: hubFew },
      { namespace: 'library', name: 'many', pullCount: 7, tags: hubMany },
      // Tagless: their repository items only show which repositories a cut listing still enqueued.
      ...Array.from({ length: CROWD_REPOS }, (_, i) => ({ namespace: CROWD, name: crowdRepo(i), tags: [] })),
    ],
  });
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace();
  dbPath = ws.dbPath('hub');
  outcome = await runTestCrawl(dbPath, ws.iocFile, settings());
  log = [...proxy.log];
});

afterAll(async () => {
  await proxy?.stop();
  await hub?.stop();
  await registry?.stop();
  ws?.cleanup();
});

describe('a crawl of Docker Hub repositories (fake Hub API, local registry as the mirror)', () => {
  it('finishes without failures', () => {
    expect(outcome.status).toBe('completed');
    expect(outcome.failedItems).toBe(0);
  });

  it('takes tag digests from the Hub listing: no HEAD for any tag the Hub listed', () => {
    // The one HEAD confirms the digest seed: a seed's text is no observation (seed-digest.test.ts).
    expect(heads(log)).toEqual([`/v2/library/debian/manifests/${s.sig.digest}`]);
  });

  it('applies the tag regex and pushed-after/before filters to Hub push dates', () => {
    const tags = queryDataset<{ tag: string; digest: string; pushed_at: string | null }>(
      dbPath,
      `SELECT t.tag, t.digest, t.pushed_at FROM tag_observations t
         JOIN repositories r ON r.id = t.repository_id WHERE r.full_name = 'library/debian' ORDER BY t.tag`,
    );
    expect(tags).toEqual([
      // The digest seed: untagged, no push date.
      { tag: '', digest: s.sig.digest, pushed_at: null },
      { tag: '12', digest: s.clean.digest, pushed_at: '2024-03-01T00:00:00.000000Z' },
      { tag: 'sid-20240311', digest: s.multi.digest, pushed_at: '2024-03-11T09:00:00.000000Z' },
    ]);
    for (const filtered of [s.app, s.removed]) {
      expect(log.filter((e) => e.path.includes(filtered.digest))).toEqual([]);
    }
  });

  it('spends one counted pull per new manifest, and none on HEADs or attestation manifests', () => {
    const expected = [
      `/v2/library/debian/manifests/${s.clean.digest}`,
      `/v2/library/debian/manifests/${s.multi.digest}`,
      `/v2/library/debian/manifests/${s.multiAmd64.digest}`,
      `/v2/library/debian/manifests/${s.multiArm64.digest}`,
      `/v2/library/debian/manifests/${s.sig.digest}`,
      `/v2/library/few/manifests/${tiny.digest}`,
    ].sort();
    expect(manifestGets(log).sort()).toEqual(expected);
    expect((outcome.stats.http as { countedPulls: number }).countedPulls).toBe(expected.length);
  });

  it('reports Hub metadata (pull count, push date) and the untagged digest seed with an empty tag', () => {
    const rows = queryDataset<Record<string, unknown>>(
      dbPath,
      `SELECT registry, repository, tag, platform, manifest_digest, index_digest, rule_id, evidence_kind, path,
              evidence, in_final_fs, last_pushed, pull_count
         FROM report_rows ORDER BY tag, rule_id`,
    );
    const sid = (rule_id: string, evidence: string) => ({
      registry: 'docker.io',
      repository: 'library/debian',
      tag: 'sid-20240311',
      platform: 'linux/amd64',
      manifest_digest: s.multiAmd64.digest,
      index_digest: s.multi.digest,
      rule_id,
      evidence_kind: 'dpkg-version',
      path: '/var/lib/dpkg/status',
      evidence,
      in_final_fs: 'true',
      last_pushed: '2024-03-11T09:00:00.000000Z',
      pull_count: 123_456_789,
    });
    expect(rows).toEqual([
      {
        registry: 'docker.io',
        repository: 'library/debian',
        tag: '',
        platform: 'linux/amd64',
        manifest_digest: s.sig.digest,
        index_digest: '',
        rule_id: 'sig-detect-sh-prologue',
        evidence_kind: 'byte-signature',
        path: SIG_LIB_PATH,
        evidence: 'offset=4008',
        in_final_fs: 'true',
        last_pushed: '',
        pull_count: 123_456_789,
      },
      sid('dpkg-liblzma5-affected', 'liblzma5=5.6.1-1'),
      sid('dpkg-liblzma5-payload-expected', 'liblzma5=5.6.1-1'),
      sid('dpkg-xz-utils-affected', 'xz-utils=5.6.1-1'),
    ]);
    const repo = queryDataset(
      dbPath,
      `SELECT full_name, pull_count, star_count, is_official, description FROM repositories ORDER BY full_name`,
    );
    expect(repo).toEqual([
      {
        full_name: 'library/debian',
        pull_count: 123_456_789,
        star_count: 42,
        is_official: 1,
        description: 'Debian is a Linux distribution',
      },
      { full_name: 'library/few', pull_count: 7, star_count: 0, is_official: 1, description: '' },
    ]);
  });

  it('stops at maxPulls with status aborted, and a resumed run spends exactly the remaining pulls', async () => {
    const budgetDb = ws.dbPath('budget');
    const total = manifestGets(log).length;
    const budget = 2;
    const stopped = await runTestCrawl(budgetDb, ws.iocFile, settings({ maxPulls: budget }));
    expect(stopped.status).toBe('aborted');
    expect(stopped.abortReason).toMatch(/budget/);
    expect((stopped.stats.http as { countedPulls: number }).countedPulls).toBe(budget);
    const resumed = await runTestCrawl(budgetDb, ws.iocFile, settings());
    expect(resumed.resumed).toBe(true);
    expect(resumed.runId).toBe(stopped.runId);
    expect(resumed.status).toBe('completed');
    expect((resumed.stats.http as { countedPulls: number }).countedPulls).toBe(total - budget);
    // The run's record also holds what both invocations did together: the counts a study cites.
    const analyzed = queryDataset(budgetDb, `SELECT digest FROM layers WHERE status = 'analyzed'`).length;
    expect(resumed.stats.wholeRun).toMatchObject({
      invocations: 2,
      layersAnalyzed: analyzed,
      http: { countedPulls: total },
    });
    expect(stopped.stats.wholeRun).toBeUndefined();
    // The same dataset as the uninterrupted crawl's.
    expect(datasetSnapshot(budgetDb)).toEqual(datasetSnapshot(dbPath));
  });

  it("pauses on the Hub API's 429 + Retry-After and still ends with the same dataset", async () => {
    const limitedDb = ws.dbPath('hub-429');
    const before = hub.rateLimitedCount;
    hub.rateLimit = { limitPerWindow: 2, retryAfterSec: 1, windowSec: 1 };
    try {
      const out = await runTestCrawl(limitedDb, ws.iocFile, settings());
      expect(out.status).toBe('completed');
      expect(hub.rateLimitedCount).toBeGreaterThan(before);
    } finally {
      hub.rateLimit = { limitPerWindow: null, retryAfterSec: 60, windowSec: 60 };
    }
    expect(datasetSnapshot(limitedDb)).toEqual(datasetSnapshot(dbPath));
  });
});

/** A crawl of its own on the shared fakes, with what the registry proxy and the Hub saw during it alone. */
async function crawlAlone(name: string, over: Record<string, unknown>) {
  const db = ws.dbPath(name);
  const proxyFrom = proxy.log.length;
  const hubFrom = hub.requests.length;
  const out = await runTestCrawl(db, ws.iocFile, { hubApiUrl: hub.url, registryMirror: proxy.url, ...over });
  return { db, out, log: proxy.log.slice(proxyFrom), hubRequests: hub.requests.slice(hubFrom) };
}

const failuresOf = (db: string) =>
  queryDataset<{ kind: string; error_code: string; message: string }>(
    db,
    'SELECT kind, error_code, message FROM failures ORDER BY id',
  );

/** Tags of library/many observed by the crawl, and how many of them carry a Hub push date. */
const manyObserved = (db: string) =>
  queryDataset<{ tag: string; pushed_at: string | null }>(
    db,
    `SELECT t.tag, t.pushed_at FROM tag_observations t
       JOIN repositories r ON r.id = t.repository_id WHERE r.full_name = 'library/many' ORDER BY t.tag`,
  );

/** The many tags pushed at or after second 30 of their minute: those a cutoff at :30 keeps. */
const manyFrom30 = (upTo: number) =>
  Array.from({ length: upTo }, (_, i) => i)
    .filter((i) => i % 60 >= 30)
    .map(manyTag);
const CUTOFF = '2024-04-01T00:00:30Z';

describe('a repository with more tags than the anonymous offset cap', () => {
  it('without a date filter, falls back to tags/list past the cap and HEADs exactly the tags the Hub did not list', async () => {
    const r = await crawlAlone('many-undated', { seeds: { repos: ['docker.io/library/many'] } });
    expect(r.out.status).toBe('completed');
    const capped = r.hubRequests.filter(
      (q) => q.path.endsWith('/library/repositories/many/tags') && q.query.page === '2',
    );
    expect(capped).toHaveLength(1);
    expect(
      r.log.filter((e) => e.method === 'GET' && e.path.startsWith('/v2/library/many/tags/list')),
    ).toHaveLength(1);
    const expected = Array.from(
      { length: MANY_TAGS - OFFSET_CAP },
      (_, i) => `/v2/library/many/manifests/${manyTag(OFFSET_CAP + i)}`,
    );
    expect(heads(r.log).sort()).toEqual(expected);
    expect(manifestGets(r.log)).toEqual([`/v2/library/many/manifests/${tiny.digest}`]);
    const observed = manyObserved(r.db);
    // Every tag observed; only the Hub-listed ones carry a push date.
    expect(observed).toHaveLength(MANY_TAGS);
    expect(observed.filter((t) => t.pushed_at !== null)).toHaveLength(OFFSET_CAP);
  });

  it('with --pushed-after, leaves the undated tags past the cap out instead of letting them all pass, and fails the listing as cut short', async () => {
    const r = await crawlAlone('many-dated', {
      seeds: { repos: ['docker.io/library/many'] },
      filters: { pushedAfter: CUTOFF },
    });
    // The Hub-listed tags are filtered by their dates; none of the five past the cap is crawled.
    expect(manyObserved(r.db).map((t) => t.tag)).toEqual(manyFrom30(OFFSET_CAP));
    expect(heads(r.log)).toEqual([]);
    // Names without dates are of no use to a date filter: the registry's tags/list is not even asked.
    expect(r.log.filter((e) => e.path.includes('/tags/list'))).toEqual([]);
    expect(r.out.status).toBe('completed-with-failures');
    expect(r.out.failedItems).toBe(1);
    const failures = failuresOf(r.db);
    expect(failures.map((f) => [f.kind, f.error_code])).toEqual([['repository', 'LISTING_INCOMPLETE']]);
    const message = failures[0]!.message;
    expect(message).toContain('Docker Hub tag listing stopped at');
    expect(message).toContain(`past item ${OFFSET_CAP} of ${MANY_TAGS}`);
    expect(message).toContain('--pushed-after/--pushed-before cannot be applied to them');
    expect(message).toContain('HUBCRAWL_DOCKERHUB_USERNAME and HUBCRAWL_DOCKERHUB_TOKEN');
  });

  it('signed in with the docker.io login of the Docker config, lists past the cap with push dates and filters every tag by them', async () => {
    const loginDb = ws.dbPath('docker-login');
    const dockerConfig = join(dirname(loginDb), 'docker-config.json');
    const auth = Buffer.from(`${DOCKER_LOGIN.user}:${DOCKER_LOGIN.pat}`).toString('base64');
    writeFileSync(dockerConfig, JSON.stringify({ auths: { 'https://index.docker.io/v1/': { auth } } }));
    const logins = hub.issuedTokens.length;
    const r = await crawlAlone('docker-login', {
      seeds: { repos: ['docker.io/library/many'] },
      filters: { pushedAfter: CUTOFF },
      dockerConfig,
    });
    expect(r.out.status).toBe('completed');
    expect(hub.issuedTokens.length).toBeGreaterThan(logins);
    // Signed in, the listing has no cap: the tags past offset 100 come with their Hub push dates too.
    const observed = manyObserved(r.db);
    expect(observed.map((t) => t.tag)).toEqual(manyFrom30(MANY_TAGS));
    expect(observed.every((t) => t.pushed_at !== null)).toBe(true);
    expect(heads(r.log)).toEqual([]);
  });
});

describe('a namespace with more repositories than the anonymous offset cap', () => {
  it('enqueues the repositories it listed and fails the namespace as a listing cut short, with advice to sign in', async () => {
    const r = await crawlAlone('crowd-namespace', { seeds: { namespaces: [CROWD] } });
    expect(r.out.status).toBe('completed-with-failures');
    expect(r.out.failedItems).toBe(1);
    const repos = queryDataset<{ name: string; state: string }>(
      r.db,
      `SELECT json_extract(payload_json, '$.repository') AS name, state FROM frontier
        WHERE kind = 'repository' ORDER BY name`,
    );
    expect(repos).toEqual(
      Array.from({ length: OFFSET_CAP }, (_, i) => ({ name: `${CROWD}/${crowdRepo(i)}`, state: 'done' })),
    );
    const failures = failuresOf(r.db);
    expect(failures.map((f) => [f.kind, f.error_code])).toEqual([['namespace', 'LISTING_INCOMPLETE']]);
    const message = failures[0]!.message;
    expect(message).toContain(
      `Docker Hub repository listing stopped at ${hub.url}/v2/namespaces/${CROWD}/repositories`,
    );
    expect(message).toContain(`past item ${OFFSET_CAP} of ${CROWD_REPOS}`);
    expect(message).toContain('HUBCRAWL_DOCKERHUB_USERNAME and HUBCRAWL_DOCKERHUB_TOKEN');
    expect(message).toContain('to list the other repositories');
    // Tags have nothing to do with a namespace listing.
    expect(message).not.toMatch(/tag/);
  });

  it('asks no repository for its details: the listing gave them', async () => {
    const r = await crawlAlone('crowd-namespace-details', { seeds: { namespaces: [CROWD] } });
    const detailGets = r.hubRequests.filter((q) =>
      new RegExp(`^/v2/(namespaces/${CROWD}/repositories|repositories/${CROWD})/[^/]+/?$`).test(q.path),
    );
    expect(detailGets).toEqual([]);
    const stored = queryDataset<{ n: number }>(
      r.db,
      `SELECT count(*) AS n FROM repositories WHERE full_name LIKE ? AND pull_count IS NOT NULL`,
      `${CROWD}/%`,
    );
    expect(stored).toEqual([{ n: OFFSET_CAP }]);
  });
});

describe('a search cut short by the anonymous offset cap', () => {
  it('ends the run completed-with-failures and shows the failed search in the stats', async () => {
    // The v2 search is the one reported to hit the cap (docker-hub-api.md §1.5); the fake caps it, not v4.
    hub.searchV4Disabled = true;
    let r: Awaited<ReturnType<typeof crawlAlone>>;
    try {
      r = await crawlAlone('crowd-search', { seeds: { searches: [`${CROWD}/`] } });
    } finally {
      hub.searchV4Disabled = false;
    }
    expect(r.out.status).toBe('completed-with-failures');
    const { datasetStats } = await import('../../../src/cli/commands/stats.js');
    const stats = datasetStats(r.db) as {
      lastRun: { status: string; stats: { itemsFailed: number } };
      frontier: Array<{ kind: string; state: string; items: number }>;
    };
    expect(stats.lastRun.status).toBe('completed-with-failures');
    expect(stats.lastRun.stats.itemsFailed).toBe(1);
    expect(stats.frontier).toContainEqual({ kind: 'search', state: 'failed', items: 1 });
    // The hits before the cap are still crawled.
    expect(stats.frontier).toContainEqual({ kind: 'repository', state: 'done', items: OFFSET_CAP });
    const failures = failuresOf(r.db);
    expect(failures.map((f) => [f.kind, f.error_code])).toEqual([['search', 'LISTING_INCOMPLETE']]);
    expect(failures[0]!.message).toContain('Docker Hub search stopped at');
    expect(failures[0]!.message).toContain('HUBCRAWL_DOCKERHUB_USERNAME and HUBCRAWL_DOCKERHUB_TOKEN');
  });
});
