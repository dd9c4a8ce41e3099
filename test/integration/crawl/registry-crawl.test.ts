/**
 * The whole crawl against the real distribution registry on loopback, through a fault proxy with no
 * fault rules (it only records every request): six repositories on one shared Debian base layer, with
 * every kind of planted indicator. The findings are compared row by row with a list written out by
 * hand; the proxy log proves what went over the wire (one download of the shared base, no manifest
 * GET on a re-crawl, exactly the new manifest for a tag pushed in between).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { buildImage } from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import {
  buildCrawlScenario,
  builtinSetLabel,
  type CrawlScenario,
  DROPPER_PATH,
  DROPPER_SHA256,
  makeWorkspace,
  preloadBlobs,
  pushAll,
  runTestCrawl,
  SIG_LIB_PATH,
  TEST_IOC_SET_ID,
  TEST_IOC_SET_VERSION,
  TEST_RULE_ID,
  type TestCrawlOutcome,
  type Workspace,
} from '../../helpers/crawl-fixtures.js';
import { datasetSnapshot, queryDataset } from '../../helpers/dataset.js';

const XZ_SET = builtinSetLabel();
const TEST_SET = `${TEST_IOC_SET_ID}@${TEST_IOC_SET_VERSION}`;

let registry: RunningRegistry;
let proxy: FaultProxy;
let ws: Workspace;
let s: CrawlScenario;
let dbPath: string;
let first: TestCrawlOutcome;
let firstLog: FaultProxy['log'];
/** An image pushed only between the first crawls: base + the dropper layer + a new top layer. */
let appV2: Awaited<ReturnType<typeof buildImage>>;

const settings = () => ({
  seeds: { repos: s.images.map((i) => `${registry.host}/${i.repository}`) },
  registries: { [registry.host]: { endpoint: proxy.url } },
});

const manifestGets = (log: FaultProxy['log']) =>
  log.filter((e) => e.method === 'GET' && e.path.includes('/manifests/')).map((e) => e.path);
const blobGets = (log: FaultProxy['log'], digest: string) =>
  log.filter((e) => e.method === 'GET' && e.path.endsWith(`/blobs/${digest}`));

beforeAll(async () => {
  registry = await startRegistry();
  s = await buildCrawlScenario();
  await pushAll(registry, s.images);
  appV2 = await buildImage({
    layers: [
      s.base,
      s.layers.dropper,
      { entries: [{ type: 'file', path: 'opt/app/run.sh', content: 'v2\n' }] },
    ],
  });
  await preloadBlobs(registry, 'acme/app', appV2);
  await preloadBlobs(registry, 'acme/clean', s.sig);
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace();
  dbPath = ws.dbPath('crawl');
  first = await runTestCrawl(dbPath, ws.iocFile, settings());
  firstLog = [...proxy.log];
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  ws?.cleanup();
});

/** A report row as the report_rows view gives it, minus first_seen/last_seen (timestamps). */
function row(r: {
  repository: string;
  tag: string;
  platform?: string;
  manifest: string;
  index?: string;
  set: string;
  rule: string;
  kind: string;
  path: string;
  evidence: string;
  layer: string;
  final: boolean;
}) {
  return {
    registry: registry.host,
    repository: r.repository,
    tag: r.tag,
    platform: r.platform ?? 'linux/amd64',
    manifest_digest: r.manifest,
    index_digest: r.index ?? '',
    ioc_set: r.set,
    rule_id: r.rule,
    evidence_kind: r.kind,
    path: r.path,
    evidence: r.evidence,
    layer_digest: r.layer,
    in_final_fs: r.final ? 'true' : 'false',
    last_pushed: '',
    pull_count: '',
    // Every tag these tests report on still points at its image when they read it.
    tag_current: 'true',
  };
}

function reportRows(): Array<Record<string, unknown>> {
  return queryDataset(dbPath, 'SELECT * FROM report_rows').map(({ first_seen, last_seen, ...rest }) => {
    expect(first_seen).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(last_seen).toMatch(/^\d{4}-\d\d-\d\dT/);
    return rest;
  });
}

const sortRows = (rows: Array<Record<string, unknown>>) =>
  [...rows].sort((a, b) => JSON.stringify(Object.values(a)).localeCompare(JSON.stringify(Object.values(b))));

describe('a crawl of a local registry with planted indicators', () => {
  it('finishes with every frontier item done and no failure', () => {
    expect(first.status).toBe('completed');
    expect(first.failedItems).toBe(0);
  });

  it('records exactly the expected report rows: present, whited-out, opaque-hidden, signature and dpkg evidence', () => {
    const dropper = s.layers.dropper.digest;
    const dropperRow = (repository: string, manifest: string, final: boolean) =>
      row({
        repository,
        tag: repository === 'acme/app' ? '1.0' : '1',
        manifest,
        set: TEST_SET,
        rule: TEST_RULE_ID,
        kind: 'file-sha256',
        path: DROPPER_PATH,
        evidence: DROPPER_SHA256,
        layer: dropper,
        final,
      });
    const sidDpkg = (rule: string, evidence: string) =>
      row({
        repository: 'acme/multi',
        tag: '1',
        manifest: s.multiAmd64.digest,
        index: s.multi.digest,
        set: XZ_SET,
        rule,
        kind: 'dpkg-version',
        path: '/var/lib/dpkg/status',
        evidence,
        layer: s.layers.sidBase.digest,
        final: true,
      });
    const expected = [
      // The dropper in the image's final filesystem.
      dropperRow('acme/app', s.app.digest, true),
      // The same layer, under an upper layer's `.wh.dropper.bin`: evidence kept, but not in the final fs.
      dropperRow('acme/removed', s.removed.digest, false),
      // The same layer, under an upper layer's opaque marker on /opt/tools.
      dropperRow('acme/opaque', s.opaque.digest, false),
      // The detect.sh prologue at 8 (ELF header) + 4000 bytes into the stand-in library.
      row({
        repository: 'acme/sig',
        tag: '1',
        manifest: s.sig.digest,
        set: XZ_SET,
        rule: 'sig-detect-sh-prologue',
        kind: 'byte-signature',
        path: SIG_LIB_PATH,
        evidence: 'offset=4008',
        layer: s.layers.sigLayer.digest,
        final: true,
      }),
      // Only the amd64 image of the index is affected (liblzma5/xz-utils 5.6.1-1); arm64 has 5.4.1-0.2.
      sidDpkg('dpkg-liblzma5-affected', 'liblzma5=5.6.1-1'),
      sidDpkg('dpkg-liblzma5-payload-expected', 'liblzma5=5.6.1-1'),
      sidDpkg('dpkg-xz-utils-affected', 'xz-utils=5.6.1-1'),
    ];
    expect(sortRows(reportRows())).toEqual(sortRows(expected));
  });

  it('records both platform images of the index and neither attestation manifest', () => {
    const images = queryDataset<{ digest: string; platform: string; is_debian_derived: number }>(
      dbPath,
      'SELECT digest, platform, is_debian_derived FROM images ORDER BY digest',
    );
    const expected = [
      { digest: s.clean.digest, platform: 'linux/amd64', is_debian_derived: 1 },
      { digest: s.app.digest, platform: 'linux/amd64', is_debian_derived: 1 },
      { digest: s.removed.digest, platform: 'linux/amd64', is_debian_derived: 1 },
      { digest: s.opaque.digest, platform: 'linux/amd64', is_debian_derived: 1 },
      { digest: s.sig.digest, platform: 'linux/amd64', is_debian_derived: 1 },
      { digest: s.multiAmd64.digest, platform: 'linux/amd64', is_debian_derived: 1 },
      { digest: s.multiArm64.digest, platform: 'linux/arm64/v8', is_debian_derived: 1 },
    ].sort((a, b) => a.digest.localeCompare(b.digest));
    expect(images).toEqual(expected);
    for (const att of s.multi.extraChildren) {
      expect(firstLog.filter((e) => e.path.includes(att.digest))).toEqual([]);
    }
  });

  it('downloads the shared base layer blob exactly once although five images are built on it', () => {
    expect(blobGets(firstLog, s.base.digest)).toHaveLength(1);
    // …and every other layer blob once too.
    const layerDigests = new Set(
      [s.clean, s.app, s.removed, s.opaque, s.sig, s.multiAmd64, s.multiArm64].flatMap((i) =>
        i.layers.map((l) => l.digest),
      ),
    );
    for (const d of layerDigests) expect(blobGets(firstLog, d), d).toHaveLength(1);
  });

  it('GETs each manifest once, by digest, after learning the tag digests by HEAD', () => {
    const byDigest = [s.clean, s.app, s.removed, s.opaque, s.sig, s.multi, s.multiAmd64, s.multiArm64]
      .map((i) => {
        const repo = s.images.find((x) => x.image === i)?.repository ?? 'acme/multi';
        return `/v2/${repo}/manifests/${i.digest}`;
      })
      .sort();
    expect(manifestGets(firstLog).sort()).toEqual(byDigest);
  });

  it('re-crawls with zero manifest GETs and zero layer downloads, leaving the findings identical', async () => {
    const before = datasetSnapshot(dbPath, ['findings', 'report_rows', 'images', 'layers']);
    proxy.log.length = 0;
    const again = await runTestCrawl(dbPath, ws.iocFile, settings());
    expect(again.status).toBe('completed');
    expect(again.resumed).toBe(false);
    expect(manifestGets(proxy.log)).toEqual([]);
    expect(again.stats.layersAnalyzed).toBe(0);
    expect(again.stats.manifestsFetched).toBe(0);
    // Tag digests were learned again, by HEAD only.
    expect(proxy.log.filter((e) => e.method === 'HEAD').length).toBe(s.images.length);
    expect(proxy.log.filter((e) => e.method === 'GET' && e.path.includes('/blobs/'))).toEqual([]);
    expect(datasetSnapshot(dbPath, ['findings', 'report_rows', 'images', 'layers'])).toEqual(before);
  });

  it('picks up tags pushed between crawls, fetching exactly the one new manifest and analyzing only its new layer', async () => {
    // A new tag on a known digest, and a new tag on a new image that shares two layers with 1.0.
    await pushImage(registry, 'acme/clean', 'latest', s.clean);
    await pushImage(registry, 'acme/app', '2.0', appV2);
    proxy.log.length = 0;
    const third = await runTestCrawl(dbPath, ws.iocFile, settings());
    expect(third.status).toBe('completed');
    expect(manifestGets(proxy.log)).toEqual([`/v2/acme/app/manifests/${appV2.digest}`]);
    expect(third.stats.layersAnalyzed).toBe(1);
    const newLayer = appV2.layers[2]!.digest;
    expect(
      proxy.log
        .filter((e) => e.method === 'GET' && e.path.includes('/blobs/'))
        .map((e) => e.path.split('/').pop()),
    ).toEqual([appV2.config.digest, newLayer]);
    const tags = queryDataset<{ repository: string; tag: string; digest: string }>(
      dbPath,
      `SELECT r.full_name AS repository, t.tag, t.digest FROM tag_observations t
         JOIN repositories r ON r.id = t.repository_id WHERE t.run_id = ? ORDER BY 1, 2`,
      third.runId,
    );
    expect(tags).toEqual([
      { repository: 'acme/app', tag: '1.0', digest: s.app.digest },
      { repository: 'acme/app', tag: '2.0', digest: appV2.digest },
      { repository: 'acme/clean', tag: '1', digest: s.clean.digest },
      { repository: 'acme/clean', tag: 'latest', digest: s.clean.digest },
      { repository: 'acme/multi', tag: '1', digest: s.multi.digest },
      { repository: 'acme/opaque', tag: '1', digest: s.opaque.digest },
      { repository: 'acme/removed', tag: '1', digest: s.removed.digest },
      { repository: 'acme/sig', tag: '1', digest: s.sig.digest },
    ]);
    // The new image carries the dropper too: one new report row, under tag 2.0.
    const v2Rows = reportRows().filter((r) => r.manifest_digest === appV2.digest);
    expect(v2Rows).toEqual([
      row({
        repository: 'acme/app',
        tag: '2.0',
        manifest: appV2.digest,
        set: TEST_SET,
        rule: TEST_RULE_ID,
        kind: 'file-sha256',
        path: DROPPER_PATH,
        evidence: DROPPER_SHA256,
        layer: s.layers.dropper.digest,
        final: true,
      }),
    ]);
  });

  it('keeps the history of a moved tag, and a tag moved onto a known digest costs no manifest GET', async () => {
    await pushImage(registry, 'acme/clean', 'latest', s.sig);
    proxy.log.length = 0;
    const fourth = await runTestCrawl(dbPath, ws.iocFile, settings());
    expect(fourth.status).toBe('completed');
    expect(manifestGets(proxy.log)).toEqual([]);
    const history = queryDataset<{ digest: string; run_id: number }>(
      dbPath,
      `SELECT t.digest, t.run_id FROM tag_observations t JOIN repositories r ON r.id = t.repository_id
        WHERE r.full_name = 'acme/clean' AND t.tag = 'latest' ORDER BY t.run_id`,
    );
    expect(history).toEqual([
      { digest: s.clean.digest, run_id: fourth.runId - 1 },
      { digest: s.sig.digest, run_id: fourth.runId },
    ]);
    // The signature finding is now also reported under the tag that moved onto its image.
    const sigRows = reportRows()
      .filter((r) => r.manifest_digest === s.sig.digest)
      .map((r) => `${r.repository}:${r.tag}`)
      .sort();
    expect(sigRows).toEqual(['acme/clean:latest', 'acme/sig:1']);
  });
});
