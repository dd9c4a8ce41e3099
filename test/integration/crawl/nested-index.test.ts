/**
 * An index whose only entry is another index, against the real registry: the crawler follows indexes
 * of indexes (MAX_INDEX_DEPTH), and the views must too. 0001's image_observations followed one level,
 * so the affected image below was analyzed and matched, yet report_rows had no registry, repository
 * or tag for it, affected_images no repository, and `scan` no line.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { MEDIA_TYPES, sha256 } from '../../../scripts/lib/image-builder.js';
import { pushImage, registryFetch } from '../../../scripts/lib/push.js';
import {
  buildCrawlScenario,
  builtinSetLabel,
  type CrawlScenario,
  makeWorkspace,
  runTestCrawl,
  type TestCrawlOutcome,
  type Workspace,
} from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';

const registry = inject('registries').none;
// The registry is shared by every test file: a repository name of its own.
const REPO = 'nested-index/app';

let s: CrawlScenario;
let ws: Workspace;
let dbPath: string;
let outcome: TestCrawlOutcome;
/** The tagged index: its one entry is the scenario's `multi` index (sid amd64 image, clean arm64). */
let top: string;

beforeAll(async () => {
  s = await buildCrawlScenario();
  await pushImage(registry, REPO, undefined, s.multi);
  // No platform on the entry: it names an index, and the crawler follows every platform by default.
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA_TYPES.ociIndex,
      manifests: [{ mediaType: s.multi.mediaType, size: s.multi.manifest.length, digest: s.multi.digest }],
    }),
  );
  top = sha256(body);
  const put = await registryFetch(registry, REPO, `${registry.url}/v2/${REPO}/manifests/1`, {
    method: 'PUT',
    headers: { 'content-type': MEDIA_TYPES.ociIndex },
    body,
  });
  await put.arrayBuffer();
  expect(put.status).toBe(201);
  ws = makeWorkspace('hubcrawl-nested-');
  dbPath = ws.dbPath('nested');
  outcome = await runTestCrawl(dbPath, ws.iocFile, { seeds: { repos: [`${registry.host}/${REPO}`] } });
});

afterAll(() => {
  ws?.cleanup();
});

const AFFECTED_RULES = [
  ['dpkg-liblzma5-affected', 'liblzma5=5.6.1-1'],
  ['dpkg-liblzma5-payload-expected', 'liblzma5=5.6.1-1'],
  ['dpkg-xz-utils-affected', 'xz-utils=5.6.1-1'],
];

describe('a tag on an index of an index', () => {
  it('is crawled down to both platform images, recording both index levels', () => {
    expect(outcome.status).toBe('completed');
    expect(outcome.failedItems).toBe(0);
    const children = queryDataset(
      dbPath,
      'SELECT index_digest, child_digest FROM index_children WHERE is_attestation = 0 ORDER BY index_digest, position',
    );
    expect(children).toEqual(
      [
        { index_digest: top, child_digest: s.multi.digest },
        { index_digest: s.multi.digest, child_digest: s.multiAmd64.digest },
        { index_digest: s.multi.digest, child_digest: s.multiArm64.digest },
      ].sort((a, b) => a.index_digest.localeCompare(b.index_digest)),
    );
    const images = queryDataset(dbPath, 'SELECT digest FROM images ORDER BY digest').map((r) => r.digest);
    expect(images).toEqual([s.multiAmd64.digest, s.multiArm64.digest].sort());
  });

  it('gives the affected image its registry, repository and tag in report_rows, the top index as its index', () => {
    const rows = queryDataset(
      dbPath,
      `SELECT registry, repository, tag, platform, manifest_digest, index_digest, ioc_set, rule_id, evidence,
              layer_digest, in_final_fs
         FROM report_rows`,
    );
    expect(rows).toEqual(
      AFFECTED_RULES.map(([rule, evidence]) => ({
        registry: registry.host,
        repository: REPO,
        tag: '1',
        platform: 'linux/amd64',
        manifest_digest: s.multiAmd64.digest,
        index_digest: top,
        ioc_set: builtinSetLabel(),
        rule_id: rule,
        evidence,
        layer_digest: s.layers.sidBase.digest,
        in_final_fs: 'true',
      })),
    );
  });

  it('gives it its repository and tag in affected_images', () => {
    const rows = queryDataset(
      dbPath,
      'SELECT registry, repository, tags, index_digest, manifest_digest, rule_id FROM affected_images ORDER BY rule_id',
    );
    expect(rows).toEqual(
      AFFECTED_RULES.map(([rule]) => ({
        registry: registry.host,
        repository: REPO,
        tags: '1',
        index_digest: top,
        manifest_digest: s.multiAmd64.digest,
        rule_id: rule,
      })),
    );
  });

  it("lists both images under the run's tag, as `scan` selects its lines", () => {
    const rows = queryDataset(
      dbPath,
      `SELECT DISTINCT r.full_name AS repository, o.tag, o.image_digest
         FROM image_observations o JOIN repositories r ON r.id = o.repository_id
        WHERE o.run_id = (SELECT max(id) FROM crawl_runs)
        ORDER BY o.image_digest`,
    );
    expect(rows).toEqual(
      [s.multiAmd64.digest, s.multiArm64.digest].sort().map((image_digest) => ({
        repository: REPO,
        tag: '1',
        image_digest,
      })),
    );
  });
});
