import { copyFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Database } from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { builtinIocSets } from '../analyzer/iocs/builtin.js';
import { compileRules } from '../analyzer/iocs/compile.js';
import { parseIocSet } from '../analyzer/iocs/load.js';
import { CorruptInputError } from '../core/errors.js';
import { DEFAULT_MIGRATIONS_DIR, loadMigrations, schemaVersion } from './migrate.js';
import { openDatabase } from './open.js';
import { redactSecrets } from './run-store.js';
import { createStores, type Stores } from './stores.js';
import { openTempDataset, type TempDataset } from './test-fixtures/temp-dataset.js';

let dataset: TempDataset;
let db: Database;
let s: Stores;
beforeEach(() => {
  dataset = openTempDataset('hubcrawl-stores-');
  db = dataset.db;
  s = createStores(db);
});
afterEach(() => dataset.remove());

const d = (c: string) => `sha256:${c.repeat(64)}`;

describe('RunStore', () => {
  it('records a run with its IOC sets, stats and end, and returns the latest', () => {
    const id = s.runs.start({
      config: { seeds: ['debian'] },
      toolVersion: '0.1.0',
      analyzerVersion: 'a1',
      iocSets: [{ id: 'xz', version: '2' }],
      startedAt: 'T0',
    });
    s.runs.recordStats(id, { manifests: 3 });
    expect(s.runs.latest()).toMatchObject({
      id,
      status: 'running',
      stats: { manifests: 3 },
      finishedAt: null,
    });
    s.runs.finish(id, 'completed-with-failures', undefined, 'T1');
    expect(s.runs.get(id)).toEqual({
      id,
      startedAt: 'T0',
      finishedAt: 'T1',
      status: 'completed-with-failures',
      config: { seeds: ['debian'] },
      toolVersion: '0.1.0',
      analyzerVersion: 'a1',
      stats: { manifests: 3 },
      iocSets: [{ id: 'xz', version: '2' }],
    });
  });

  it('never stores a secret-looking config value', () => {
    const id = s.runs.start({
      config: {
        hub: { username: 'me', token: 'dckr_pat_x', password: 'p' },
        registries: [{ authorization: 'Bearer y' }],
      },
      toolVersion: 't',
      analyzerVersion: 'a',
    });
    const raw = db.prepare('SELECT config_json FROM crawl_runs WHERE id = ?').pluck().get(id) as string;
    expect(raw).not.toMatch(/dckr_pat_x|Bearer y|"p"/);
    expect(JSON.parse(raw)).toEqual({
      hub: { username: 'me', token: '[redacted]', password: '[redacted]' },
      registries: [{ authorization: '[redacted]' }],
    });
    expect(redactSecrets({ token: null })).toEqual({ token: null });
  });
});

describe('RepositoryStore', () => {
  it('creates a repository once and replaces Hub metadata only when given', () => {
    const id = s.repositories.upsertRepository('docker.io', 'library/debian');
    expect(s.repositories.upsertRepository('docker.io', 'library/debian')).toBe(id);
    const hub = { pullCount: 10, starCount: 2, lastUpdated: 'L', isOfficial: true, description: 'Debian' };
    s.repositories.upsertRepository('docker.io', 'library/debian', hub, 'F');
    s.repositories.upsertRepository('docker.io', 'library/debian');
    expect(s.repositories.get('docker.io', 'library/debian')).toEqual({
      id,
      registry: 'docker.io',
      fullName: 'library/debian',
      namespace: 'library',
      name: 'debian',
      ...hub,
      fetchedAt: 'F',
    });
  });

  it('keeps nested repository paths and single-segment names intact', () => {
    const a = s.repositories.upsertRepository('ghcr.io', 'org/team/tool');
    const b = s.repositories.upsertRepository('localhost:5000', 'plain');
    expect(s.repositories.getById(a)).toMatchObject({
      namespace: 'org/team',
      name: 'tool',
      fullName: 'org/team/tool',
    });
    expect(s.repositories.getById(b)).toMatchObject({ namespace: '', name: 'plain', fullName: 'plain' });
  });

  it('finds the repositories reaching a manifest directly or through indexes at any depth, in its registry', () => {
    const put = (digest: string, kind: 'image' | 'index', children: string[] = []) =>
      s.manifests.put(
        {
          digest,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          kind,
          raw: Buffer.from(digest),
          configDigest: null,
          runId: null,
        },
        children.map((c) => ({
          digest: c,
          mediaType: null,
          size: 1,
          os: 'linux',
          architecture: 'amd64',
          variant: null,
          isAttestation: false,
        })),
      );
    put(d('3'), 'index', [d('2')]); // top index → inner index → image
    put(d('2'), 'index', [d('1')]);
    const run = s.runs.start({ config: {}, toolVersion: 't', analyzerVersion: 'a', iocSets: [] });
    const observe = (registry: string, repo: string, digest: string) =>
      s.tags.observeMany([
        {
          repositoryId: s.repositories.upsertRepository(registry, repo),
          tag: 't',
          digest,
          pushedAt: null,
          seenAt: 'S',
          runId: run,
        },
      ]);
    observe('r.example', 'a/direct', d('1'));
    observe('r.example', 'a/inner', d('2'));
    observe('r.example', 'a/nested', d('3'));
    observe('r.example', 'a/other', d('9'));
    observe('elsewhere.example', 'a/direct', d('1'));
    expect(s.repositories.reachingManifest('r.example', d('1'))).toEqual(['a/direct', 'a/inner', 'a/nested']);
    expect(s.repositories.reachingManifest('r.example', d('2'))).toEqual(['a/inner', 'a/nested']);
    expect(s.repositories.reachingManifest('r.example', d('7'))).toEqual([]);
  });

  it('refuses a name the reference grammar refuses and stores nothing for it', () => {
    expect(() => s.repositories.upsertRepository('ghcr.io', 'Org/tool')).toThrow(CorruptInputError);
    expect(db.prepare('SELECT count(*) FROM registries').pluck().get()).toBe(0);
    expect(db.prepare('SELECT count(*) FROM repositories').pluck().get()).toBe(0);
  });
});

describe('TagStore', () => {
  it('keeps every observation across runs but one per run, and reports the latest', () => {
    const repo = s.repositories.upsertRepository('docker.io', 'library/debian');
    const r1 = s.runs.start({ config: {}, toolVersion: 't', analyzerVersion: 'a' });
    const r2 = s.runs.start({ config: {}, toolVersion: 't', analyzerVersion: 'a' });
    const o = { repositoryId: repo, tag: 'sid', pushedAt: 'P' };
    expect(s.tags.observe({ ...o, digest: d('1'), seenAt: 'T1', runId: r1 })).toBe(true);
    expect(s.tags.observe({ ...o, digest: d('1'), seenAt: 'T1b', runId: r1 })).toBe(false);
    expect(s.tags.observeMany([{ ...o, digest: d('2'), seenAt: 'T2', runId: r2 }])).toBe(1);
    expect(s.tags.latest(repo, 'sid')).toMatchObject({ digest: d('2'), seenAt: 'T2', runId: r2 });
    expect(s.tags.history(repo).map((h) => h.digest)).toEqual([d('1'), d('2')]);
  });

  it("fills a run's observation's missing push date from a later one of the same run, and changes nothing else", () => {
    // A tag reached by a seed (a HEAD gives no date) and then by the Docker Hub listing (which does).
    const repo = s.repositories.upsertRepository('docker.io', 'library/debian');
    const run = s.runs.start({ config: {}, toolVersion: 't', analyzerVersion: 'a' });
    const o = { repositoryId: repo, tag: 'bookworm', digest: d('1'), runId: run };
    expect(s.tags.observe({ ...o, pushedAt: null, seenAt: 'T1' })).toBe(true);
    expect(s.tags.observe({ ...o, pushedAt: '2024-03-01T00:00:00Z', seenAt: 'T2' })).toBe(true);
    expect(s.tags.observe({ ...o, pushedAt: '2025-01-01T00:00:00Z', seenAt: 'T3' })).toBe(false);
    expect(s.tags.observe({ ...o, pushedAt: null, seenAt: 'T4' })).toBe(false);
    expect(s.tags.history(repo)).toMatchObject([{ pushedAt: '2024-03-01T00:00:00Z', seenAt: 'T1' }]);
  });
});

describe('ManifestStore', () => {
  it('stores a manifest once with its exact bytes and its index children in order', () => {
    const raw = Buffer.from('{"schemaVersion":2}');
    const m = {
      digest: d('1'),
      mediaType: 'application/vnd.oci.image.index.v1+json',
      kind: 'index' as const,
      raw,
      configDigest: null,
      runId: null,
    };
    const children = [
      {
        digest: d('b'),
        mediaType: null,
        size: 5,
        os: 'linux',
        architecture: 'arm64',
        variant: 'v8',
        isAttestation: false,
      },
      {
        digest: d('a'),
        mediaType: null,
        size: 4,
        os: 'linux',
        architecture: 'amd64',
        variant: null,
        isAttestation: false,
      },
    ];
    expect(s.manifests.has(d('1'))).toBe(false);
    expect(s.manifests.put(m, children)).toBe(true);
    expect(s.manifests.put({ ...m, raw: Buffer.from('other') })).toBe(false);
    expect(s.manifests.has(d('1'))).toBe(true);
    expect(s.manifests.getRaw(d('1'))?.equals(raw)).toBe(true);
    expect(s.manifests.get(d('1'))).toMatchObject({ kind: 'index', size: raw.length });
    expect(s.manifests.children(d('1'))).toEqual(children);
    expect(s.manifests.parents(d('a'))).toEqual([d('1')]);
  });

  it('keeps the first record of an unsupported manifest, with the run that paid its GET', () => {
    const run = s.runs.start({ config: {}, toolVersion: '0.1.0', analyzerVersion: 'a1' });
    const schema1 = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
    expect(s.manifests.unsupported(d('5'))).toBeUndefined();
    s.manifests.putUnsupported({ digest: d('5'), mediaType: schema1, runId: run, fetchedAt: 'T1' });
    s.manifests.putUnsupported({ digest: d('5'), mediaType: 'other', runId: null, fetchedAt: 'T2' });
    expect(s.manifests.unsupported(d('5'))).toEqual({
      digest: d('5'),
      mediaType: schema1,
      fetchedAt: 'T1',
      runId: run,
    });
    // It is no manifest: no image, view or count of fetched manifests takes it for one.
    expect(s.manifests.has(d('5'))).toBe(false);
  });
});

describe('schema 2 (unsupported_manifests)', () => {
  it('is added to a dataset written at schema 1, which keeps its rows', () => {
    const v1 = join(dataset.dir, 'migrations-v1');
    mkdirSync(v1);
    copyFileSync(join(DEFAULT_MIGRATIONS_DIR, '0001_init.sql'), join(v1, '0001_init.sql'));
    const path = join(dataset.dir, 'old.db');
    const old = openDatabase(path, { migrationsDir: v1 });
    old.prepare(`INSERT INTO registries (host) VALUES ('docker.io')`).run();
    old.close();
    const upgraded = openDatabase(path);
    try {
      expect(schemaVersion(upgraded)).toBe(loadMigrations().length);
      expect(upgraded.prepare('SELECT host FROM registries').pluck().all()).toEqual(['docker.io']);
      expect(upgraded.prepare('SELECT count(*) FROM unsupported_manifests').pluck().get()).toBe(0);
    } finally {
      upgraded.close();
    }
  });
});

describe('ImageStore', () => {
  it('records layer order, starts new layers pending, and keeps first_seen while moving last_seen', () => {
    s.manifests.put({
      digest: d('i'),
      mediaType: 'm',
      kind: 'image',
      raw: Buffer.from('{}'),
      configDigest: d('c'),
      runId: null,
    });
    const layers = [
      { digest: d('0'), mediaType: 'gz', size: 1 },
      { digest: d('1'), mediaType: 'gz', size: 2 },
    ];
    const p = { os: 'linux', architecture: 'arm', variant: 'v7' };
    s.images.put({ digest: d('i'), platform: p, configDigest: d('c'), layers, seenAt: 'T1' });
    s.images.put({ digest: d('i'), platform: p, configDigest: d('c'), layers, seenAt: 'T2' });
    s.images.setOsFacts(d('i'), { isDebianDerived: true, osId: 'debian', osVersion: '12' });
    expect(s.images.get(d('i'))).toMatchObject({
      platform: 'linux/arm/v7',
      firstSeen: 'T1',
      lastSeen: 'T2',
      isDebianDerived: true,
      osId: 'debian',
      osVersion: '12',
    });
    expect(s.images.layers(d('i'))).toEqual([
      { position: 0, digest: d('0'), mediaType: 'gz', size: 1, status: 'pending' },
      { position: 1, digest: d('1'), mediaType: 'gz', size: 2, status: 'pending' },
    ]);
  });

  it('keeps the created an image was recorded with, and fills one recorded NULL, never changing it', () => {
    const image = (c: string) => {
      s.manifests.put({
        digest: d(c),
        mediaType: 'm',
        kind: 'image',
        raw: Buffer.from(c),
        configDigest: null,
        runId: null,
      });
      return {
        digest: d(c),
        platform: { os: 'linux', architecture: 'amd64' },
        configDigest: null,
        layers: [],
      };
    };
    const T = '2024-03-01T00:00:00.000Z';
    s.images.put(image('a'));
    expect(s.images.get(d('a'))?.created).toBeNull();
    s.images.put({ ...image('a'), created: T });
    expect(s.images.get(d('a'))?.created).toBe(T);
    s.images.put({ ...image('a'), created: null });
    s.images.put({ ...image('a'), created: '2025-01-01T00:00:00.000Z' });
    expect(s.images.get(d('a'))?.created).toBe(T);
  });
});

describe('IocStore', () => {
  it('stores sets with their rules, and re-putting a version replaces its rules', () => {
    const set = {
      id: 'xz',
      version: '1',
      title: 'XZ',
      rules: [
        { id: 'r1', kind: 'dpkg-version', extra: 1 },
        { id: 'r2', kind: 'file-sha256' },
      ],
    };
    s.iocs.putSets([set]);
    s.iocs.putSets([{ ...set, rules: [set.rules[0]!] }]);
    expect(s.iocs.get('xz', '1')).toMatchObject({ id: 'xz', version: '1', title: 'XZ', ruleCount: 1 });
    expect(s.iocs.list()).toHaveLength(1);
    const rule = db.prepare('SELECT json FROM ioc_rules WHERE rule_id = ?').pluck().get('r1') as string;
    expect(JSON.parse(rule)).toEqual({ id: 'r1', kind: 'dpkg-version', extra: 1 });
  });

  it('says which sets it replaced with other rules under the same version, and only those', () => {
    const set = {
      id: 'study',
      version: '1.1',
      title: 'A study',
      rules: [
        { id: 'a', kind: 'file-md5', md5: 'a'.repeat(32) },
        { id: 'b', kind: 'file-md5', md5: 'b'.repeat(32) },
      ],
    };
    expect(s.iocs.putSets([set])).toEqual([]);
    // The same rules in another order, with their fields in another order, and a new title: the same set.
    const reordered = {
      ...set,
      title: 'A study, retitled',
      rules: [
        { md5: 'b'.repeat(32), kind: 'file-md5', id: 'b' },
        { kind: 'file-md5', id: 'a', md5: 'a'.repeat(32) },
      ],
    };
    expect(s.iocs.putSets([reordered])).toEqual([]);
    // A rule dropped, the version kept: a finding cited as study@1.1 no longer means one thing.
    expect(s.iocs.putSets([{ ...set, rules: [set.rules[0]!] }])).toEqual([{ id: 'study', version: '1.1' }]);
    // A new version is a new set.
    expect(s.iocs.putSets([{ ...set, version: '1.2' }])).toEqual([]);
  });
});

describe('SelectionStore', () => {
  it('records each selection once, and lists those whose definition covers the rules with their own', () => {
    const xz = builtinIocSets();
    const own = parseIocSet(
      {
        id: 'own',
        version: '1',
        title: 't',
        references: [],
        rules: [{ id: 'srv', kind: 'file-sha256', sha256: 'a'.repeat(64), paths: ['/srv/**'] }],
      },
      'test',
    );
    const more = compileRules([...xz, own]);
    const fewer = compileRules(xz);
    s.selections.remember(more);
    s.selections.remember(more);
    expect(db.prepare('SELECT count(*) FROM selections').pluck().get()).toBe(1);
    expect(s.selections.covering(fewer)).toEqual([...fewer.coveredBy, more.fingerprint]);
    // The other way round only the selection's own fingerprints: `fewer` was never recorded as covering.
    s.selections.remember(fewer);
    expect(s.selections.covering(more)).toEqual([...more.coveredBy]);
  });
});
