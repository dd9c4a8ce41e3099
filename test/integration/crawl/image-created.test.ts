/**
 * The build date an image's config claims (`created`), recorded in images.created: images built with
 * their own dates, pushed to the real distribution registry on loopback and crawled through a fault proxy
 * that only records the requests. A valid date is stored normalized; a missing or invalid one is NULL and
 * the image is recorded all the same; an image whose index gives its platform costs one config GET for its
 * date; and a dataset from before the column keeps its images, with NULL, without a request to fill it.
 * skopeo, which reads the config with Go's time parser, is the outside oracle for the valid date.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, startFaultProxy } from '../../../scripts/lib/fault-proxy.js';
import {
  type BuiltBlob,
  type BuiltImage,
  buildImage,
  buildIndex,
  buildLayer,
} from '../../../scripts/lib/image-builder.js';
import { pushImage } from '../../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../../scripts/lib/registry.js';
import { DEFAULT_MIGRATIONS_DIR, loadMigrations, schemaVersion } from '../../../src/db/migrate.js';
import { openDatabase } from '../../../src/db/open.js';
import { makeWorkspace, runTestCrawl, type Workspace } from '../../helpers/crawl-fixtures.js';
import { queryDataset } from '../../helpers/dataset.js';

/** A date in the backdoor's window, written with an offset and nanoseconds, as Go's RFC3339Nano does. */
const WRITTEN = '2024-02-27T19:31:25.123456789+01:00';
const STORED = '2024-02-27T18:31:25.123Z';

let registry: RunningRegistry;
let proxy: FaultProxy;
let ws: Workspace;
let layer: BuiltBlob;

/** An image of the one small layer, its config written with this `created` (null: none at all). */
const imageCreated = (created: unknown): Promise<BuiltImage> => buildImage({ layers: [layer], created });

const configGets = (image: BuiltImage) =>
  proxy.log.filter((e) => e.method === 'GET' && e.path.endsWith(`/blobs/${image.config.digest}`));

const createdOf = (dbPath: string, digest: string) =>
  queryDataset<{ created: string | null }>(dbPath, 'SELECT created FROM images WHERE digest = ?', digest);

beforeAll(async () => {
  registry = await startRegistry();
  layer = await buildLayer([{ type: 'file', path: 'etc/motd', content: 'dated\n' }]);
  proxy = await startFaultProxy(registry.url);
  ws = makeWorkspace('hubcrawl-created-');
});

afterAll(async () => {
  await proxy?.stop();
  await registry?.stop();
  ws?.cleanup();
});

const settings = (repos: string[]) => ({
  seeds: { repos: repos.map((r) => `${registry.host}/${r}`) },
  registries: { [registry.host]: { endpoint: proxy.url } },
});

describe('an image crawled for the first time', () => {
  let dated: BuiltImage;
  let epoch: BuiltImage;
  /** Tag → an image whose config holds no usable date. */
  let undated: Record<string, BuiltImage>;
  let child: BuiltImage;
  let index: ReturnType<typeof buildIndex>;
  let dbPath: string;

  beforeAll(async () => {
    dated = await imageCreated(WRITTEN);
    epoch = await imageCreated('1970-01-01T00:00:00Z');
    undated = {
      absent: await imageCreated(null),
      words: await imageCreated('last Tuesday'),
      feb30: await imageCreated('2024-02-30T12:00:00Z'),
      'no-zone': await imageCreated('2024-03-01T12:00:00'),
      number: await imageCreated(1709251200),
      object: await imageCreated({ $date: WRITTEN }),
    };
    child = await imageCreated('2024-03-05T00:00:00Z');
    index = buildIndex({ images: [child] });
    await pushImage(registry, 'dates/dated', 'v1', dated);
    await pushImage(registry, 'dates/epoch', 'v1', epoch);
    for (const [tag, image] of Object.entries(undated))
      await pushImage(registry, 'dates/undated', tag, image);
    await pushImage(registry, 'dates/multi', 'v1', index);
    proxy.reset();
    dbPath = ws.dbPath('first');
    const outcome = await runTestCrawl(
      dbPath,
      ws.iocFile,
      settings(['dates/dated', 'dates/epoch', 'dates/undated', 'dates/multi']),
    );
    expect(outcome.status).toBe('completed');
  });

  it('records the date its config claims, normalized to UTC and milliseconds: the instant skopeo reads with Go', () => {
    expect(createdOf(dbPath, dated.digest)).toEqual([{ created: STORED }]);
    const out = execFileSync(
      'skopeo',
      ['inspect', '--tls-verify=false', `docker://${registry.host}/dates/dated:v1`],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const { Created } = JSON.parse(out) as { Created: string };
    expect(Created).toBe(WRITTEN);
    expect(createdOf(dbPath, dated.digest)).toEqual([{ created: new Date(Created).toISOString() }]);
  });

  it('records a reproducible build’s 1970 date as it is: the builder’s claim, not a missing one', () => {
    expect(createdOf(dbPath, epoch.digest)).toEqual([{ created: '1970-01-01T00:00:00.000Z' }]);
  });

  it('records NULL for a config with no date or one that is no RFC 3339 date-time, and still records the image', () => {
    for (const image of Object.values(undated)) {
      expect(configGets(image)).toHaveLength(1);
      expect(
        queryDataset(dbPath, 'SELECT platform, created FROM images WHERE digest = ?', image.digest),
      ).toEqual([{ platform: 'linux/amd64', created: null }]);
    }
  });

  it('reads the date of an image whose index gives its platform: one GET of its config', () => {
    expect(createdOf(dbPath, child.digest)).toEqual([{ created: '2024-03-05T00:00:00.000Z' }]);
    expect(configGets(child)).toHaveLength(1);
  });
});

describe('an index child whose config cannot be read', () => {
  it('is analyzed all the same, its date unknown: the config is read for the date alone', async () => {
    // Two children the index names with their platforms: one's config answered 404, the other's corrupted.
    const gone = await imageCreated('2024-03-06T00:00:00Z');
    const corrupt = await imageCreated('2024-03-07T00:00:00Z');
    await pushImage(registry, 'dates/broken', 'v1', buildIndex({ images: [gone, corrupt] }));
    proxy.reset();
    proxy.addRule({
      method: 'GET',
      path: new RegExp(`/blobs/${gone.config.digest}$`),
      times: Infinity,
      action: { kind: 'respond', status: 404, body: '{"errors":[{"code":"BLOB_UNKNOWN"}]}' },
    });
    proxy.addRule({
      method: 'GET',
      path: new RegExp(`/blobs/${corrupt.config.digest}$`),
      times: Infinity,
      action: { kind: 'corrupt-body', atByte: 2 },
    });
    const dbPath = ws.dbPath('broken-configs');
    const outcome = await runTestCrawl(dbPath, ws.iocFile, settings(['dates/broken']));
    expect(outcome).toMatchObject({ status: 'completed', failedItems: 0 });
    for (const image of [gone, corrupt]) {
      expect(configGets(image).length).toBeGreaterThan(0);
      expect(
        queryDataset(dbPath, 'SELECT platform, created FROM images WHERE digest = ?', image.digest),
      ).toEqual([{ platform: 'linux/amd64', created: null }]);
    }
    expect(queryDataset(dbPath, `SELECT count(*) AS n FROM layers WHERE status = 'analyzed'`)).toEqual([
      { n: 1 },
    ]);
  });
});

describe('a dataset from before images.created', () => {
  let image: BuiltImage;
  let dbPath: string;

  beforeAll(async () => {
    image = await imageCreated('2024-03-10T08:00:00Z');
    await pushImage(registry, 'dates/old', 'v1', image);
    // Schema 9, as the hubcrawl before this column left it, holding the image as that hubcrawl recorded it.
    const old = join(ws.dir, 'schema9');
    mkdirSync(old);
    for (const f of readdirSync(DEFAULT_MIGRATIONS_DIR).filter((n) => /^000\d_/.test(n))) {
      copyFileSync(join(DEFAULT_MIGRATIONS_DIR, f), join(old, f));
    }
    dbPath = ws.dbPath('schema9');
    const db = openDatabase(dbPath, { migrationsDir: old });
    expect(schemaVersion(db)).toBe(9);
    db.prepare(
      `INSERT INTO manifests (digest, media_type, kind, size, raw, config_digest, fetched_at)
       VALUES (?, ?, 'image', ?, ?, ?, '2024-04-01T00:00:00.000Z')`,
    ).run(image.digest, image.mediaType, image.manifest.length, image.manifest, image.config.digest);
    db.prepare(
      `INSERT INTO images (digest, platform, os, architecture, config_digest, first_seen, last_seen)
       VALUES (?, 'linux/amd64', 'linux', 'amd64', ?, '2024-04-01T00:00:00.000Z', '2024-04-01T00:00:00.000Z')`,
    ).run(image.digest, image.config.digest);
    db.prepare('INSERT INTO layers (digest, media_type, compressed_size) VALUES (?, ?, ?)').run(
      layer.digest,
      layer.mediaType,
      layer.size,
    );
    db.prepare(
      'INSERT INTO image_layers (image_digest, position, layer_digest, media_type, size) VALUES (?, 0, ?, ?, ?)',
    ).run(image.digest, layer.digest, layer.mediaType, layer.size);
    db.close();
  });

  it('keeps its images, created NULL, once brought up to date', () => {
    const db = openDatabase(dbPath);
    try {
      expect(schemaVersion(db)).toBe(loadMigrations().length);
      expect(db.prepare('SELECT digest, first_seen, created FROM images').all()).toEqual([
        { digest: image.digest, first_seen: '2024-04-01T00:00:00.000Z', created: null },
      ]);
    } finally {
      db.close();
    }
  });

  it('keeps created NULL for such an image when a later crawl reaches it: its config is not fetched again', async () => {
    proxy.reset();
    const outcome = await runTestCrawl(dbPath, ws.iocFile, settings(['dates/old']));
    expect(outcome.status).toBe('completed');
    expect(createdOf(dbPath, image.digest)).toEqual([{ created: null }]);
    expect(configGets(image)).toEqual([]);
    expect(proxy.log.filter((e) => e.method === 'GET' && e.path.includes('/manifests/'))).toEqual([]);
  });
});
