/**
 * Whether a tag still points at a reported image (report_rows.tag_current, affected_images.current_tags).
 * Tags move and get deleted between the runs of a scheduled study; the report kept naming `repo:latest`
 * on the backdoored image after `latest` had moved to a clean one. A later observation of the tag, or a
 * later complete listing of the repository without it, makes the old row not current; a run that does
 * not look at the tag (a --tags filter, a listing cut short) changes nothing. On the real registry, the
 * tests in order on one dataset.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import type { ConfigInput } from '../../../src/config/schema.js';
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

beforeAll(async () => {
  registry = await startRegistry();
  s = await buildCrawlScenario();
  // s.sig carries the liblzma byte signature of the built-in set; s.clean has no finding.
  await pushImage(registry, 'acme/moved', 'latest', s.sig);
  await pushImage(registry, 'acme/moved', 'v1', s.sig);
  await pushImage(registry, 'acme/deleted', 'latest', s.sig);
  await pushImage(registry, 'acme/deleted', 'keep', s.clean);
  await pushImage(registry, 'acme/emptied', 'latest', s.sig);
  await pushImage(registry, 'acme/filtered', 'latest', s.sig);
  await pushImage(registry, 'acme/filtered', 'v1', s.clean);
  await pushImage(registry, 'acme/cut', 'latest', s.sig);
  await pushImage(registry, 'acme/bydigest', undefined, s.sig);
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace('hubcrawl-tag-currency-');
  dbPath = ws.dbPath('tag-currency');
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  ws?.cleanup();
});

const crawl = (seeds: { repos?: string[]; images?: string[] }, more: ConfigInput = {}) =>
  runTestCrawl(dbPath, ws.iocFile, {
    seeds: {
      repos: (seeds.repos ?? []).map((r) => `${registry.host}/${r}`),
      images: (seeds.images ?? []).map((r) => `${registry.host}/${r}`),
    },
    registries: { [registry.host]: { endpoint: proxy.url } },
    ...more,
  });

/** Deletes a manifest from one repository; distribution drops the repository's tags that named it. */
async function deleteManifest(repository: string, digest: string): Promise<void> {
  const res = await fetch(`${registry.url}/v2/${repository}/manifests/${digest}`, { method: 'DELETE' });
  expect(res.status).toBe(202);
}

/** Each (repository, tag) the report names the backdoored image under, with tag_current. */
const currency = (repository?: string) =>
  queryDataset<{ repository: string; tag: string; tag_current: string }>(
    dbPath,
    `SELECT DISTINCT repository, tag, tag_current FROM report_rows
      WHERE manifest_digest = ? AND (? IS NULL OR repository = ?) ORDER BY repository, tag`,
    [s.sig.digest, repository ?? null, repository ?? null],
  );

const row = (repository: string, tag: string, current: string) => ({
  repository,
  tag,
  tag_current: current,
});

describe('tag_current across crawls of a study', () => {
  it('first: every tag a crawl saw on the image is current, and a digest-only row has no tag to be current', async () => {
    const outcome = await crawl({
      repos: ['acme/moved', 'acme/deleted', 'acme/emptied', 'acme/filtered', 'acme/cut'],
      images: [`acme/bydigest@${s.sig.digest}`],
    });
    expect(outcome.status).toBe('completed');
    expect(currency()).toEqual([
      row('acme/bydigest', '', ''),
      row('acme/cut', 'latest', 'true'),
      row('acme/deleted', 'latest', 'true'),
      row('acme/emptied', 'latest', 'true'),
      row('acme/filtered', 'latest', 'true'),
      row('acme/moved', 'latest', 'true'),
      row('acme/moved', 'v1', 'true'),
    ]);
  });

  it('a tag re-pointed at a clean image: the old row stays, not current; the other tag on it stays current', async () => {
    await pushImage(registry, 'acme/moved', 'latest', s.clean);
    const outcome = await crawl({ repos: ['acme/moved'] });
    expect(outcome.status).toBe('completed');
    expect(currency('acme/moved')).toEqual([
      row('acme/moved', 'latest', 'false'),
      row('acme/moved', 'v1', 'true'),
    ]);
    const affected = queryDataset(
      dbPath,
      `SELECT DISTINCT tags, current_tags FROM affected_images WHERE repository = 'acme/moved'`,
    );
    expect(affected).toEqual([{ tags: 'latest,v1', current_tags: 'v1' }]);
    const head = queryDataset(
      dbPath,
      `SELECT h.digest, h.gone_at FROM tag_heads h JOIN repositories r ON r.id = h.repository_id
        WHERE r.full_name = 'acme/moved' AND h.tag = 'latest'`,
    );
    expect(head).toEqual([{ digest: s.clean.digest, gone_at: null }]);
  });

  it('a deleted tag, and every tag of a repository emptied, are not current once the repository is listed again', async () => {
    await deleteManifest('acme/deleted', s.sig.digest);
    await deleteManifest('acme/emptied', s.sig.digest);
    const outcome = await crawl({ repos: ['acme/deleted', 'acme/emptied'] });
    expect(outcome.status).toBe('completed');
    expect(currency('acme/deleted')).toEqual([row('acme/deleted', 'latest', 'false')]);
    expect(currency('acme/emptied')).toEqual([row('acme/emptied', 'latest', 'false')]);
    const absences = queryDataset(
      dbPath,
      `SELECT r.full_name AS repository, a.tag FROM tag_absences a JOIN repositories r ON r.id = a.repository_id
        ORDER BY repository`,
    );
    expect(absences).toEqual([
      { repository: 'acme/deleted', tag: 'latest' },
      { repository: 'acme/emptied', tag: 'latest' },
    ]);
  });

  it('a crawl whose --tags filter leaves the tag out changes nothing: a tag filtered out is not deleted', async () => {
    const outcome = await crawl({ repos: ['acme/filtered'] }, { filters: { tags: '^v' } });
    expect(outcome.status).toBe('completed');
    expect(currency('acme/filtered')).toEqual([row('acme/filtered', 'latest', 'true')]);
  });

  it('a tags/list cut short that lacks the tag changes nothing: only a complete listing proves it gone', async () => {
    proxy.addRule({
      path: /^\/v2\/acme\/cut\/tags\/list/,
      action: {
        kind: 'respond',
        status: 200,
        headers: {
          'content-type': 'application/json; charset=utf-8',
          link: '<http://127.0.0.1:9/v2/acme/cut/tags/list?last=a>; rel="next"',
        },
        body: JSON.stringify({ name: 'acme/cut', tags: [] }),
      },
    });
    try {
      const outcome = await crawl({ repos: ['acme/cut'] });
      expect(outcome.status).toBe('completed-with-failures');
    } finally {
      proxy.clearRules();
    }
    expect(currency('acme/cut')).toEqual([row('acme/cut', 'latest', 'true')]);
  });

  it('report --current-only keeps what a pull gives today: current tags and digest-only rows', async () => {
    const { reportRows } = await import('../../../src/cli/commands/report.js');
    const kept = reportRows(dbPath, { currentOnly: true }).rows.filter(
      (r) => r.manifest_digest === s.sig.digest,
    );
    const refs = [...new Set(kept.map((r) => `${r.repository}:${r.tag}:${r.tag_current}`))].sort();
    expect(refs).toEqual([
      'acme/bydigest::',
      'acme/cut:latest:true',
      'acme/filtered:latest:true',
      'acme/moved:v1:true',
    ]);
  });
});
