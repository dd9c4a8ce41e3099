/**
 * Whether a tag still points at a reported image (report_rows.tag_current, affected_images.current_tags).
 * Tags move and get deleted between the runs of a scheduled study; the report kept naming `repo:latest`
 * on the backdoored image after `latest` had moved to a clean one. A later observation of the tag, or a
 * later complete listing of the repository without it, makes the old row not current; a run that does
 * not look at the tag (a --tags filter, a listing cut short) changes nothing, and neither does a listing
 * that lacks a tag the registry still serves (a HEAD of the tag confirms each absence). On the real
 * registry, the tests in order on one dataset.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
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
  await pushImage(registry, 'acme/skipped', 'latest', s.sig);
  await pushImage(registry, 'acme/skipped', 'v1', s.clean);
  await pushImage(registry, 'acme/during', 'keep', s.clean);
  await pushImage(registry, 'acme/during', 'new', s.sig);
  await pushImage(registry, 'acme/removed', 'latest', s.sig);
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
  it('a complete listing that lacks a tag a HEAD still finds changes nothing: the tag was skipped, not deleted', async () => {
    // Docker Hub's offset paging can skip a tag re-pushed while it walks, and no cut says so: here the
    // registry's tags/list lacks `latest`, complete, while the manifest is still served.
    expect((await crawl({ repos: ['acme/skipped'] })).status).toBe('completed');
    expect(currency('acme/skipped')).toEqual([row('acme/skipped', 'latest', 'true')]);
    proxy.reset();
    proxy.addRule({
      method: 'GET',
      path: /^\/v2\/acme\/skipped\/tags\/list/,
      action: {
        kind: 'respond',
        status: 200,
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify({ name: 'acme/skipped', tags: ['v1'] }),
      },
    });
    try {
      expect((await crawl({ repos: ['acme/skipped'] })).status).toBe('completed');
    } finally {
      proxy.clearRules();
    }
    // `latest` was not listed, so no reference resolved it: this HEAD is the absence's confirmation.
    const heads = proxy.log.filter((e) => e.method === 'HEAD' && e.path.endsWith('/manifests/latest'));
    expect(heads.map((e) => [e.path, e.status])).toEqual([['/v2/acme/skipped/manifests/latest', 200]]);
    expect(currency('acme/skipped')).toEqual([row('acme/skipped', 'latest', 'true')]);
    expect(absences('acme/skipped')).toEqual([]);
  });

  it('nor does one whose absence the HEAD cannot confirm (a 5xx): unknown is not gone', async () => {
    proxy.reset();
    proxy.addRule({
      method: 'GET',
      path: /^\/v2\/acme\/skipped\/tags\/list/,
      action: {
        kind: 'respond',
        status: 200,
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify({ name: 'acme/skipped', tags: ['v1'] }),
      },
    });
    proxy.addRule({
      method: 'HEAD',
      path: /^\/v2\/acme\/skipped\/manifests\/latest$/,
      times: Number.POSITIVE_INFINITY,
      action: { kind: 'respond', status: 503 },
    });
    try {
      expect((await crawl({ repos: ['acme/skipped'] })).status).toBe('completed');
    } finally {
      proxy.clearRules();
    }
    expect(proxy.log.some((e) => e.method === 'HEAD' && e.status === 503)).toBe(true);
    expect(currency('acme/skipped')).toEqual([row('acme/skipped', 'latest', 'true')]);
    expect(absences('acme/skipped')).toEqual([]);
  });

  it('a tag observed while the listing runs stays current: its absence dates from when the listing began', async () => {
    // One crawl: the repository's tags/list is held until the seed acme/during:new has been observed (its
    // HEAD waits for the listing to have begun) and its image fetched; then `new` is deleted, so the
    // listing lacks it and a HEAD confirms it gone. The observation came after the listing began and wins.
    proxy.reset();
    let listingBegan!: () => void;
    const began = new Promise<void>((resolve) => {
      listingBegan = resolve;
    });
    proxy.addRule({
      method: 'HEAD',
      path: /^\/v2\/acme\/during\/manifests\/new$/,
      action: { kind: 'hold', until: () => began },
    });
    proxy.addRule({
      method: 'GET',
      path: /^\/v2\/acme\/during\/tags\/list/,
      action: {
        kind: 'hold',
        until: async () => {
          listingBegan();
          await waitFor(
            `SELECT 1 FROM frontier WHERE kind = 'manifest' AND state = 'done'
                AND json_extract(payload_json, '$.repository') = 'acme/during'`,
          );
          await deleteManifest('acme/during', s.sig.digest);
        },
      },
    });
    try {
      const outcome = await crawl({ repos: ['acme/during'], images: ['acme/during:new'] });
      expect(outcome.status).toBe('completed');
    } finally {
      proxy.clearRules();
    }
    // The listing lacked `new` and the registry confirmed it gone: the absence is recorded, dated earlier.
    expect(absences('acme/during')).toEqual([{ repository: 'acme/during', tag: 'new' }]);
    expect(currency('acme/during')).toEqual([row('acme/during', 'new', 'true')]);
    // The next crawl's listing, begun after that observation, proves it gone.
    expect((await crawl({ repos: ['acme/during'] })).status).toBe('completed');
    expect(currency('acme/during')).toEqual([row('acme/during', 'new', 'false')]);
  });

  it('every tag of a repository the registry no longer has (404) is not current, though its item fails', async () => {
    expect((await crawl({ repos: ['acme/removed'] })).status).toBe('completed');
    expect(currency('acme/removed')).toEqual([row('acme/removed', 'latest', 'true')]);
    // Bare 404s (a proxy's wrong path, say), without the registry's NAME_UNKNOWN, prove nothing, even
    // when the HEADs of the tags answer 404 too.
    proxy.reset();
    for (const [method, path] of [
      ['GET', /^\/v2\/acme\/removed\/tags\/list/],
      ['HEAD', /^\/v2\/acme\/removed\/manifests\//],
    ] as const) {
      proxy.addRule({
        method,
        path,
        times: Number.POSITIVE_INFINITY,
        action: { kind: 'respond', status: 404, body: '404 page not found' },
      });
    }
    try {
      expect((await crawl({ repos: ['acme/removed'] })).status).toBe('completed-with-failures');
    } finally {
      proxy.clearRules();
    }
    expect(absences('acme/removed')).toEqual([]);
    // distribution has no API to delete a repository: its storage goes, as an operator would remove it.
    rmSync(join(registry.dataDir, 'docker/registry/v2/repositories/acme/removed'), { recursive: true });
    const outcome = await crawl({ repos: ['acme/removed'] });
    // The seed names a repository that is not there: that stays a failure of its item.
    expect(outcome.status).toBe('completed-with-failures');
    expect(absences('acme/removed')).toEqual([{ repository: 'acme/removed', tag: 'latest' }]);
    expect(currency('acme/removed')).toEqual([row('acme/removed', 'latest', 'false')]);
  });
});

/** The tags recorded absent in a repository. */
const absences = (repository: string) =>
  queryDataset(
    dbPath,
    `SELECT DISTINCT r.full_name AS repository, a.tag FROM tag_absences a
       JOIN repositories r ON r.id = a.repository_id WHERE r.full_name = ? ORDER BY a.tag`,
    [repository],
  );

/** Waits (up to 15 s, under the client's 20 s timeout of a held request) until `sql` returns a row. */
async function waitFor(sql: string): Promise<void> {
  for (let i = 0; i < 300; i++) {
    if (queryDataset(dbPath, sql).length > 0) return;
    await sleep(50);
  }
  throw new Error(`timed out waiting for: ${sql}`);
}
