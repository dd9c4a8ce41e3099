/**
 * Frontier invariant 4 in a real crawl: an item's dataset rows are written in the transaction that
 * completes it, so a kill before that commit leaves none of them. A SQLite trigger makes the completion of
 * one kind of item fail inside that transaction (the moment a SIGKILL would have cut it short); whatever the
 * item wrote must then be gone with it. The fake Hub web API and the real registry (as the docker.io mirror)
 * serve one small image.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type BuiltImage, buildImage } from '../../scripts/lib/image-builder.js';
import { pushImage } from '../../scripts/lib/push.js';
import { makeWorkspace, runTestCrawl, type Workspace } from '../../test/helpers/crawl-fixtures.js';
import { queryDataset } from '../../test/helpers/dataset.js';
import { type FakeHub, fakeHubTagFor, startFakeHub } from '../../test/helpers/fake-hub.js';
import { openDatabase } from '../db/open.js';

const registry = inject('registries').none;
const NS = 'atomic';
let hub: FakeHub;
let ws: Workspace;
let image: BuiltImage;

beforeAll(async () => {
  image = await buildImage({ layers: [{ entries: [{ type: 'file', path: 'srv/atomic', content: 'x\n' }] }] });
  await pushImage(registry, `${NS}/app`, '1', image);
  hub = await startFakeHub({
    anonymousOffsetCap: null,
    repos: [{ namespace: NS, name: 'app', pullCount: 5, tags: [fakeHubTagFor('1', image)] }],
  });
  ws = makeWorkspace('hubcrawl-completion-');
});

afterAll(async () => {
  await hub?.stop();
  ws?.cleanup();
});

/** The seed that makes a crawl start with an item of this kind. */
type Kind = 'namespace' | 'repository' | 'reference';
const SEEDS: Record<Kind, Record<string, string[]>> = {
  namespace: { namespaces: [NS] },
  repository: { repos: [`${NS}/app`] },
  reference: { images: [`${NS}/app:1`] },
};

/** Crawls from one seed; with `failing`, completing any item of that kind fails inside its transaction. */
async function crawlWith(kind: Kind, name: string, failing: boolean) {
  const dbPath = ws.dbPath(name);
  if (failing) {
    const db = openDatabase(dbPath);
    db.exec(`CREATE TRIGGER fail_completion BEFORE UPDATE OF state ON frontier
               WHEN NEW.state = 'done' AND OLD.kind = '${kind}'
               BEGIN SELECT RAISE(ABORT, 'injected: the completing transaction fails'); END`);
    db.close();
  }
  const outcome = await runTestCrawl(dbPath, ws.iocFile, {
    seeds: SEEDS[kind],
    hubApiUrl: hub.url,
    registryMirror: registry.url,
  });
  const count = (table: string) =>
    queryDataset<{ n: number }>(dbPath, `SELECT count(*) AS n FROM ${table}`)[0]!.n;
  const failed = queryDataset<{ id: number; kind: string; state: string }>(
    dbPath,
    `SELECT id, kind, state FROM frontier WHERE kind = ?`,
    kind,
  );
  const children = queryDataset<{ n: number }>(
    dbPath,
    `SELECT count(*) AS n FROM frontier WHERE parent_id IN (SELECT id FROM frontier WHERE kind = ?)`,
    kind,
  )[0]!.n;
  const hubRows = queryDataset<{ full_name: string; pull_count: number | null }>(
    dbPath,
    'SELECT full_name, pull_count FROM repositories',
  );
  return {
    outcome,
    hubRows,
    failed,
    children,
    registries: count('registries'),
    repositories: count('repositories'),
    tags: count('tag_observations'),
  };
}

describe('an item whose completing transaction fails', () => {
  for (const kind of Object.keys(SEEDS) as Kind[]) {
    it(`leaves no repository, registry or tag row of a ${kind} item behind`, async () => {
      const r = await crawlWith(kind, `${kind}-failing`, true);
      expect(r.outcome.status).toBe('completed-with-failures');
      expect(r.failed.map((i) => i.state)).toEqual(['failed']);
      expect(r).toMatchObject({ children: 0, registries: 0, repositories: 0, tags: 0 });
      // Nor does the item's count: it goes back with its rows, or a redone item would be counted twice.
      expect(r.outcome.stats).toMatchObject({ repositories: 0, tags: 0 });
    });

    it(`writes those rows when a ${kind} item completes (the check above can see them)`, async () => {
      const r = await crawlWith(kind, `${kind}-ok`, false);
      expect(r.outcome.status).toBe('completed');
      expect(r.registries).toBe(1);
      expect(r.repositories).toBe(1);
      // The Hub's metadata, asked for by namespace and name (a reference alone does not ask).
      expect(r.hubRows).toEqual([{ full_name: `${NS}/app`, pull_count: kind === 'reference' ? null : 5 }]);
      expect(r.tags).toBe(1);
      expect(r.children).toBeGreaterThan(0);
    });
  }
});

describe('a manifest item whose completing transaction fails', () => {
  // Three images on one base layer. A first run analyzes it with `base`; the second reaches it first with
  // `broken`, whose write fails, then with `fine`. The layer is reused once in that run: the failed write
  // takes back the layer it marked reached along with its count, so `fine` counts it.
  it('takes back the layers it marked reached, so the next image sharing them counts them as reused', async () => {
    const shared = { entries: [{ type: 'file' as const, path: 'etc/shared-base', content: 'base\n' }] };
    const images: Record<string, BuiltImage> = {};
    for (const name of ['base', 'broken', 'fine']) {
      images[name] = await buildImage({
        layers: [shared, { entries: [{ type: 'file', path: `srv/${name}`, content: `${name}\n` }] }],
      });
      await pushImage(registry, `${NS}/${name}`, '1', images[name]!);
    }
    const dbPath = ws.dbPath('reached-rollback');
    const ref = (name: string) => `${registry.host}/${NS}/${name}:1`;
    const crawl = (names: string[]) =>
      // One item at a time, in seed order: `broken` reaches the base layer before `fine` does.
      runTestCrawl(dbPath, ws.iocFile, { seeds: { images: names.map(ref) }, concurrency: 1 });
    expect((await crawl(['base'])).status).toBe('completed');

    const db = openDatabase(dbPath);
    db.exec(`CREATE TRIGGER fail_broken BEFORE UPDATE OF state ON frontier
               WHEN NEW.state = 'done' AND OLD.kind = 'manifest' AND OLD.key LIKE '%@${images.broken!.digest}'
               BEGIN SELECT RAISE(ABORT, 'injected: the manifest write fails'); END`);
    db.close();
    const second = await crawl(['broken', 'fine']);
    expect(second.status).toBe('completed-with-failures');
    // `fine` was recorded, and its base layer counted reused; its own upper layer is new.
    expect(second.stats).toMatchObject({ layersReused: 1, layersAnalyzed: 1 });
  });
});
