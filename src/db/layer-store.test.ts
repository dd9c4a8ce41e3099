import { copyFileSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LayerFacts } from '../analyzer/facts.js';
import { FatalError } from '../core/errors.js';
import { Frontier } from './frontier.js';
import { ImageStore } from './image-store.js';
import { LayerStore } from './layer-store.js';
import { ManifestStore } from './manifest-store.js';
import { DEFAULT_MIGRATIONS_DIR } from './migrate.js';
import { openDatabase } from './open.js';
import { RepositoryStore } from './repository-store.js';
import { openTempDataset, type TempDataset } from './test-fixtures/temp-dataset.js';

const L = `sha256:${'a'.repeat(64)}`;

function facts(overrides: Partial<LayerFacts> = {}): LayerFacts {
  return {
    compression: 'gzip',
    compressedBytes: 1234,
    uncompressedBytes: 56789,
    entryCount: 42,
    // Deliberately not in path order: the store must keep the analyzer's order.
    files: [
      {
        path: '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1',
        size: 200,
        mode: 0o644,
        sha256: 'f'.repeat(64),
        md5: 'e'.repeat(32),
      },
      { path: '/big/file', size: 9e9, mode: 0o755, sha256: null, md5: null },
      { path: '/a', size: 0, mode: 0o100644, sha256: '0'.repeat(64), md5: '1'.repeat(32) },
      // A hardlink whose data was not recorded keeps its target (migration 0007); the rows above have none.
      {
        path: '/usr/lib/liblzma.so.5',
        size: 0,
        mode: 0o644,
        sha256: null,
        md5: null,
        linkTarget: '/opt/backup',
      },
    ],
    packages: [
      {
        name: 'liblzma5',
        version: '5.6.1-1',
        architecture: 'amd64',
        source: 'xz-utils',
        status: 'install ok installed',
        statusFile: '/var/lib/dpkg/status',
      },
      {
        name: 'base-files',
        version: '13',
        architecture: null,
        source: null,
        status: null,
        statusFile: '/var/lib/dpkg/status.d/base',
      },
    ],
    md5sums: [
      {
        package: 'liblzma5',
        infoFile: '/var/lib/dpkg/info/liblzma5:amd64.md5sums',
        md5: 'd'.repeat(32),
        path: '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1',
      },
    ],
    osRelease: [
      {
        path: '/etc/os-release',
        fields: { PRETTY_NAME: 'Debian GNU/Linux trixie/sid', ID: 'debian', VERSION_CODENAME: 'trixie' },
      },
      { path: '/etc/debian_version', fields: { VERSION: 'trixie/sid' } },
    ],
    whiteouts: [
      { path: '/usr/lib/x86_64-linux-gnu/liblzma.so.5', opaque: false },
      { path: '/var/cache', opaque: true },
    ],
    signatureHits: [
      {
        path: '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1',
        iocSetId: 'xz',
        ruleId: 'sig-1',
        offset: 4096,
        hex: 'f30f1efa??',
        inElf: true,
        scannedPath: '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1',
      },
    ],
    selection: 'xz@1;hashAll=false',
    ...overrides,
  };
}

let dataset: TempDataset;
let db: Database;
let layers: LayerStore;
beforeEach(() => {
  dataset = openTempDataset('hubcrawl-layer-');
  db = dataset.db;
  layers = new LayerStore(db);
});
afterEach(() => dataset.remove());

describe('LayerStore', () => {
  it('returns exactly the facts it was given', () => {
    const f = facts();
    layers.markAnalyzed(L, f, 'analyzer-1');
    expect(layers.loadFacts(L)).toStrictEqual(f);
  });

  it('stops with the damaged row named when a stored os-release row holds no JSON object', () => {
    layers.markAnalyzed(L, facts(), 'analyzer-1');
    for (const damaged of ['{"ID": "deb', '["debian"]', 'null', '{"ID": 5}']) {
      db.prepare('UPDATE layer_os_release SET fields_json = ? WHERE layer_digest = ?').run(damaged, L);
      let err: unknown;
      try {
        layers.loadFacts(L);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FatalError);
      expect((err as Error).message).toMatch(
        new RegExp(
          `^the dataset's layer_os_release row of layer ${L} \\(/etc/os-release\\) holds no JSON object`,
        ),
      );
    }
  });

  it('loads a signature hit stored before hits kept their pattern (migration 0004) with a null pattern', () => {
    // A schema-3 dataset (migrations 0001-0003) holding a hit, then opened by this version.
    const old = join(dataset.dir, 'schema3');
    mkdirSync(old);
    for (const f of readdirSync(DEFAULT_MIGRATIONS_DIR).filter((n) => /^000[123]_/.test(n))) {
      copyFileSync(join(DEFAULT_MIGRATIONS_DIR, f), join(old, f));
    }
    const path = join(dataset.dir, 'old.db');
    const v3 = openDatabase(path, { migrationsDir: old });
    v3.prepare(
      `INSERT INTO layers (digest, compression, compressed_size, uncompressed_size, entry_count, analyzer_version, selection, status)
       VALUES (?, 'gzip', 1, 1, 1, 'analyzer-1', 'sel', 'analyzed')`,
    ).run(L);
    v3.prepare(
      `INSERT INTO layer_signature_hits (layer_digest, seq, path, ioc_set_id, rule_id, "offset") VALUES (?, 0, '/x', 'xz', 'sig-1', 7)`,
    ).run(L);
    v3.close();
    const v4 = openDatabase(path);
    try {
      expect(new LayerStore(v4).loadFacts(L)?.signatureHits).toEqual([
        { path: '/x', iocSetId: 'xz', ruleId: 'sig-1', offset: 7, hex: null, inElf: null, scannedPath: null },
      ]);
    } finally {
      v4.close();
    }
  });

  it('loads a file row stored before hardlinks kept their target (migration 0007) without one', () => {
    // A schema-6 dataset holding a size-0 row, then opened by this version: no key, as before.
    const old = join(dataset.dir, 'schema6');
    mkdirSync(old);
    for (const f of readdirSync(DEFAULT_MIGRATIONS_DIR).filter((n) => /^000[1-6]_/.test(n))) {
      copyFileSync(join(DEFAULT_MIGRATIONS_DIR, f), join(old, f));
    }
    const path = join(dataset.dir, 'old6.db');
    const v6 = openDatabase(path, { migrationsDir: old });
    v6.prepare(
      `INSERT INTO layers (digest, compression, compressed_size, uncompressed_size, entry_count, analyzer_version, selection, status)
       VALUES (?, 'gzip', 1, 1, 1, 'analyzer-1', 'sel', 'analyzed')`,
    ).run(L);
    v6.prepare(
      `INSERT INTO layer_files (layer_digest, seq, path, size, mode, sha256, md5) VALUES (?, 0, '/x', 0, 420, NULL, NULL)`,
    ).run(L);
    v6.close();
    const v7 = openDatabase(path);
    try {
      expect(new LayerStore(v7).loadFacts(L)?.files).toStrictEqual([
        { path: '/x', size: 0, mode: 0o644, sha256: null, md5: null },
      ]);
    } finally {
      v7.close();
    }
  });

  it('keeps the symlinks an analyzer from version 6 gives, none known from an older one', () => {
    const symlinks = [
      { path: '/lib', target: 'usr/lib' },
      { path: '/etc/alternatives/awk', target: '/usr/bin/mawk' },
    ];
    layers.markAnalyzed(L, facts({ symlinks }), '6');
    expect(layers.loadFacts(L)).toStrictEqual(facts({ symlinks }));
    layers.markAnalyzed(L, facts({ symlinks: [] }), '6');
    expect(layers.loadFacts(L)?.symlinks).toEqual([]);
    // Stored by version 5, which kept none: not "no symlinks", but none known (LayerFacts.symlinks).
    layers.markAnalyzed(L, facts({ symlinks }), '5');
    expect(layers.loadFacts(L)).not.toHaveProperty('symlinks');
  });

  it('keeps the directory entries an analyzer from version 7 gives, none known from an older one', () => {
    const dirs = ['/usr/lib/x86_64-linux-gnu', '/opt', '/opt/tools'];
    const lateDirs = ['/srv/late'];
    layers.markAnalyzed(L, facts({ symlinks: [], dirs, lateDirs }), '7');
    expect(layers.loadFacts(L)).toStrictEqual(facts({ symlinks: [], dirs, lateDirs }));
    layers.markAnalyzed(L, facts({ dirs: [], lateDirs: [] }), '7');
    expect(layers.loadFacts(L)).toMatchObject({ dirs: [], lateDirs: [] });
    // Stored by version 6, which kept none: unknown (LayerFacts.dirs), never read as "no directories".
    layers.markAnalyzed(L, facts({ dirs, lateDirs }), '6');
    expect(layers.loadFacts(L)).not.toHaveProperty('dirs');
    expect(layers.loadFacts(L)).not.toHaveProperty('lateDirs');
    expect(db.prepare('SELECT count(*) FROM layer_dirs').pluck().get()).toBe(4);
  });

  it('round-trips empty facts', () => {
    const f = facts({
      files: [],
      packages: [],
      md5sums: [],
      osRelease: [],
      whiteouts: [],
      signatureHits: [],
      compression: 'none',
    });
    layers.markAnalyzed(L, f, 'analyzer-1');
    expect(layers.loadFacts(L)).toStrictEqual(f);
  });

  it('replaces the previous facts when a layer is analyzed again', () => {
    layers.markAnalyzed(L, facts(), 'analyzer-1');
    const second = facts({
      files: [{ path: '/only', size: 1, mode: 0o644, sha256: 'b'.repeat(64), md5: null }],
      selection: 's2',
    });
    layers.markAnalyzed(L, second, 'analyzer-2');
    expect(layers.loadFacts(L)).toStrictEqual(second);
    expect(db.prepare('SELECT count(*) FROM layer_files').pluck().get()).toBe(1);
  });

  it('needs analysis until analyzed by the same analyzer version and one of the selections', () => {
    expect(layers.needsAnalysis(L, 'analyzer-1', ['sel'])).toBe(true);
    layers.markAnalyzed(L, facts({ selection: 'sel' }), 'analyzer-1');
    expect(layers.needsAnalysis(L, 'analyzer-1', ['sel'])).toBe(false);
    expect(layers.needsAnalysis(L, 'analyzer-1', ['other', 'sel'])).toBe(false);
    expect(layers.needsAnalysis(L, 'analyzer-2', ['sel'])).toBe(true);
    expect(layers.needsAnalysis(L, 'analyzer-1', ['other'])).toBe(true);
  });

  it('counts analyzed layers chosen by none of the selections', () => {
    layers.markAnalyzed(L, facts({ selection: 'sel' }), 'analyzer-1');
    expect(layers.countByOtherSelection(['sel'])).toEqual([]);
    expect(layers.countByOtherSelection(['other', 'sel'])).toEqual([]);
    expect(layers.countByOtherSelection(['other'])).toEqual([{ selection: 'sel', layers: 1 }]);
  });

  it('records a failure of a layer never analyzed with its error and attempt, and no facts', () => {
    layers.markFailed(L, 'CORRUPT_INPUT', 'truncated gzip stream');
    expect(layers.get(L)).toMatchObject({
      status: 'failed',
      errorCode: 'CORRUPT_INPUT',
      errorMessage: 'truncated gzip stream',
      attempts: 1,
    });
    expect(layers.loadFacts(L)).toBeUndefined();
    expect(layers.needsAnalysis(L, 'analyzer-1', [facts().selection])).toBe(true);
  });

  it('keeps the facts of an analyzed layer whose re-analysis failed, noting the error', () => {
    layers.markAnalyzed(L, facts(), 'analyzer-1');
    layers.markFailed(L, 'PERMANENT', 'GET …/blobs/… answered 404');
    expect(layers.get(L)).toMatchObject({
      status: 'analyzed',
      errorCode: 'PERMANENT',
      errorMessage: 'GET …/blobs/… answered 404',
      attempts: 2,
    });
    expect(layers.loadFacts(L)).toStrictEqual(facts());
    expect(db.prepare('SELECT count(*) FROM layer_packages').pluck().get()).toBeGreaterThan(0);
  });

  it('marks images using a re-analyzed layer as needing a new match', () => {
    const manifests = new ManifestStore(db);
    const images = new ImageStore(db);
    const img = `sha256:${'9'.repeat(64)}`;
    manifests.put({
      digest: img,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      kind: 'image',
      raw: Buffer.from('{}'),
      configDigest: null,
      runId: null,
    });
    images.put({
      digest: img,
      platform: { os: 'linux', architecture: 'amd64' },
      configDigest: null,
      layers: [{ digest: L, mediaType: null, size: 1 }],
    });
    expect(images.needingMatch('fp')).toEqual([]);
    layers.markAnalyzed(L, facts(), 'analyzer-1');
    expect(images.needingMatch('fp')).toEqual([img]);
    db.prepare('UPDATE images SET match_fingerprint = ?').run('fp');
    expect(images.needingMatch('fp')).toEqual([]);
    layers.markAnalyzed(L, facts(), 'analyzer-2');
    expect(images.needingMatch('fp')).toHaveLength(1);
  });

  it('counts for a base the upper layers of the images whose manifest item of the run is done', () => {
    const manifests = new ManifestStore(db);
    const images = new ImageStore(db);
    const frontier = new Frontier(db);
    new RepositoryStore(db).upsertRepository('r.example', 'a/b');
    const layer = (c: string) => ({ digest: `sha256:${c.repeat(64)}`, mediaType: null, size: 1 });
    const image = (c: string, uppers: number, manifestItem: 'done' | 'pending' | 'other run') => {
      const digest = `sha256:${c.repeat(64)}`;
      const raw = Buffer.from(c);
      manifests.put({
        digest,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        kind: 'image',
        raw,
        configDigest: null,
        runId: null,
      });
      const upper = Array.from({ length: uppers }, (_v, k) => layer(String.fromCharCode(98 + k)));
      images.put({
        digest,
        platform: { os: 'linux', architecture: 'amd64' },
        configDigest: null,
        layers: [{ digest: L, mediaType: null, size: 1 }, ...upper],
      });
      const key = `${manifestItem === 'other run' ? 6 : 7}|r.example@${digest}`;
      const id = frontier.enqueue('manifest', key);
      if (manifestItem !== 'pending') {
        frontier.claim(['manifest'], 10);
        frontier.complete(id);
      }
    };
    image('1', 2, 'done');
    // Waits still: it will count itself when its item comes (layerItemsFor), so not here.
    image('2', 3, 'pending');
    // Known from another run only: not this run's to count.
    image('3', 4, 'other run');
    expect(images.upperLayersOnBase(L, '7|')).toBe(2);
    // It runs inside a gate item's completion, once per base: the frontier (one row per item of every run)
    // must be reached through its (kind, key) index, never scanned.
    const source = (images as unknown as { countUpperLayersOnBase: { source: string } })
      .countUpperLayersOnBase.source;
    const plan = (db.prepare(`EXPLAIN QUERY PLAN ${source}`).all(L, '7|') as Array<{ detail: string }>).map(
      (r) => r.detail,
    );
    expect(plan).toContain('SEARCH f USING INDEX sqlite_autoindex_frontier_1 (kind=? AND key=?)');
    expect(plan.some((d) => /^SCAN (f|frontier)\b/.test(d))).toBe(false);
    expect(plan.some((d) => d.startsWith('SEARCH base USING INDEX image_layers_layer'))).toBe(true);
  });
});
