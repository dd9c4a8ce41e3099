import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Database } from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LayerFacts } from '../analyzer/facts.js';
import { layerFacts } from '../analyzer/test-fixtures/facts.js';
import { type LayerStack, rematchAll } from './rematch.js';
import type { ImageEvidence } from './rows.js';
import { createStores, type Stores } from './stores.js';
import { openTempDataset, type TempDataset } from './test-fixtures/temp-dataset.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const INDEX = d('1');
const A = d('a'); // linux/amd64 child of INDEX: tags latest and 1.0 of library/demo
const B = d('b'); // linux/arm64/v8 child of INDEX: clean
const C = d('c'); // reached by digest only in other/thing
const D = d('d'); // tagged directly (slim), clean
const ATT = d('e'); // attestation manifest in INDEX
const L0 = d('0'); // shared base layer carrying the affected dpkg status
const L1 = d('2'); // adds the backdoored library
const L2 = d('3'); // whites it out
const T1 = '2024-01-01T00:00:00.000Z';
const T2 = '2024-02-01T00:00:00.000Z';
const PUSHED = '2023-12-24T10:00:00.000Z';
const LIB = '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1';

/** Facts of a layer that recorded nothing, as analyzed with the `xz@1` selection. */
const emptyFacts = (): LayerFacts =>
  layerFacts({ compressedBytes: 10, uncompressedBytes: 20, entryCount: 1, selection: 'xz@1' });

const evR1 = (layer: string): ImageEvidence => ({
  kind: 'dpkg-version',
  iocSetId: 'xz',
  iocSetVersion: '1',
  ruleId: 'R1',
  path: '/var/lib/dpkg/status',
  value: 'liblzma5=5.6.1-1',
  layerDigest: layer,
  layerIndex: 0,
  inFinalFs: true,
});
const evR2: ImageEvidence = {
  kind: 'file-sha256',
  iocSetId: 'xz',
  iocSetVersion: '1',
  ruleId: 'R2',
  path: LIB,
  value: 'f'.repeat(64),
  layerDigest: L1,
  layerIndex: 1,
  inFinalFs: false,
};

/** The hand-built dataset: one image behind an index with two tags, an untagged digest, a lower-layer-only finding. */
function build(s: Stores): void {
  s.iocs.putSets([
    {
      id: 'xz',
      version: '1',
      title: 'XZ',
      rules: [
        { id: 'R1', kind: 'dpkg-version' },
        { id: 'R2', kind: 'file-sha256' },
      ],
    },
  ]);
  const run1 = s.runs.start({
    config: {},
    toolVersion: 't',
    analyzerVersion: 'a',
    iocSets: [{ id: 'xz', version: '1' }],
    startedAt: T1,
  });
  const run2 = s.runs.start({
    config: {},
    toolVersion: 't',
    analyzerVersion: 'a',
    iocSets: [{ id: 'xz', version: '1' }],
    startedAt: T2,
  });
  const demo = s.repositories.upsertRepository('docker.io', 'library/demo', {
    pullCount: 1000,
    starCount: 5,
    lastUpdated: PUSHED,
    isOfficial: true,
    description: 'demo',
  });
  const thing = s.repositories.upsertRepository('docker.io', 'other/thing');

  const raw = Buffer.from('{}');
  const man = (digest: string, kind: 'image' | 'index') =>
    s.manifests.put({
      digest,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      kind,
      raw,
      configDigest: null,
      runId: run1,
      fetchedAt: T1,
    });
  man(INDEX, 'index');
  s.manifests.putIndexChildren(INDEX, [
    {
      digest: A,
      mediaType: null,
      size: 1,
      os: 'linux',
      architecture: 'amd64',
      variant: null,
      isAttestation: false,
    },
    {
      digest: B,
      mediaType: null,
      size: 1,
      os: 'linux',
      architecture: 'arm64',
      variant: 'v8',
      isAttestation: false,
    },
    {
      digest: ATT,
      mediaType: null,
      size: 1,
      os: 'unknown',
      architecture: 'unknown',
      variant: null,
      isAttestation: true,
    },
  ]);
  for (const m of [A, B, C, D]) man(m, 'image');
  const layer = (digest: string) => ({
    digest,
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    size: 10,
  });
  s.images.put({
    digest: A,
    platform: { os: 'linux', architecture: 'amd64' },
    configDigest: null,
    layers: [layer(L0), layer(L1), layer(L2)],
    seenAt: T1,
  });
  s.images.put({
    digest: B,
    platform: { os: 'linux', architecture: 'arm64', variant: 'v8' },
    configDigest: null,
    layers: [layer(L0)],
    seenAt: T1,
  });
  s.images.put({
    digest: C,
    platform: { os: 'linux', architecture: 'amd64' },
    configDigest: null,
    layers: [layer(L0)],
    seenAt: T1,
  });
  s.images.put({
    digest: D,
    platform: { os: 'linux', architecture: 'amd64' },
    configDigest: null,
    layers: [layer(L0)],
    seenAt: T1,
  });

  s.tags.observeMany([
    { repositoryId: demo, tag: 'latest', digest: INDEX, pushedAt: PUSHED, seenAt: T1, runId: run1 },
    { repositoryId: demo, tag: '1.0', digest: INDEX, pushedAt: PUSHED, seenAt: T1, runId: run1 },
    { repositoryId: demo, tag: 'slim', digest: D, pushedAt: null, seenAt: T1, runId: run1 },
    { repositoryId: thing, tag: '', digest: C, pushedAt: null, seenAt: T1, runId: run1 },
    { repositoryId: demo, tag: 'latest', digest: INDEX, pushedAt: PUSHED, seenAt: T2, runId: run2 },
  ]);
  s.findings.replaceForImage(A, 'linux/amd64', [evR1(L0), evR2], run1);
  s.findings.replaceForImage(C, 'linux/amd64', [evR1(L0)], run1);
}

let dataset: TempDataset;
let path: string;
let db: Database;
let s: Stores;
beforeEach(() => {
  dataset = openTempDataset('hubcrawl-views-');
  path = dataset.path;
  db = dataset.db;
  s = createStores(db);
  build(s);
});
afterEach(() => dataset.remove());

/** Full scans that are siblings (two or more under one parent) in an EXPLAIN QUERY PLAN tree from the sqlite3 shell. */
function scansUnderOneParent(plan: string): string[][] {
  const children = new Map<number, string[]>();
  const parents: number[] = [];
  plan.split('\n').forEach((line, n) => {
    const m = /^([| ]*)[|`]--(.*)$/.exec(line);
    if (!m) return;
    const depth = m[1]!.length / 3;
    parents.length = depth;
    const parent = parents[depth - 1] ?? -1;
    parents[depth] = n;
    children.set(parent, [...(children.get(parent) ?? []), m[2]!]);
  });
  return [...children.values()]
    .map((c) => c.filter((l) => l.startsWith('SCAN ')))
    .filter((c) => c.length > 1);
}

const REPORT_COLUMNS =
  'registry,repository,tag,platform,manifest_digest,index_digest,ioc_set,rule_id,evidence_kind,path,evidence,layer_digest,in_final_fs,last_pushed,pull_count,first_seen,last_seen,tag_current';

describe('report_rows', () => {
  it('has exactly the publication CSV columns in order', () => {
    const cols = db
      .prepare('SELECT * FROM report_rows')
      .columns()
      .map((c) => c.name);
    expect(cols.join(',')).toBe(REPORT_COLUMNS);
  });

  it('gives one row per evidence item per tag, an empty tag for a digest-only image, and nothing for clean images', () => {
    const rows = db.prepare('SELECT * FROM report_rows').all();
    const common = { registry: 'docker.io', platform: 'linux/amd64', ioc_set: 'xz@1' };
    const r1 = {
      rule_id: 'R1',
      evidence_kind: 'dpkg-version',
      path: '/var/lib/dpkg/status',
      evidence: 'liblzma5=5.6.1-1',
      layer_digest: L0,
      in_final_fs: 'true',
    };
    const r2 = {
      rule_id: 'R2',
      evidence_kind: 'file-sha256',
      path: LIB,
      evidence: 'f'.repeat(64),
      layer_digest: L1,
      in_final_fs: 'false',
    };
    const demoA = {
      repository: 'library/demo',
      manifest_digest: A,
      index_digest: INDEX,
      last_pushed: PUSHED,
      pull_count: 1000,
    };
    expect(rows).toEqual([
      { ...common, ...demoA, tag: '1.0', ...r1, first_seen: T1, last_seen: T1, tag_current: 'true' },
      { ...common, ...demoA, tag: '1.0', ...r2, first_seen: T1, last_seen: T1, tag_current: 'true' },
      { ...common, ...demoA, tag: 'latest', ...r1, first_seen: T1, last_seen: T2, tag_current: 'true' },
      { ...common, ...demoA, tag: 'latest', ...r2, first_seen: T1, last_seen: T2, tag_current: 'true' },
      {
        ...common,
        repository: 'other/thing',
        tag: '',
        manifest_digest: C,
        index_digest: '',
        ...r1,
        last_pushed: '',
        pull_count: '',
        first_seen: T1,
        last_seen: T1,
        tag_current: '',
      },
    ]);
  });

  it('looks rows up by index inside every LEFT JOIN in the sqlite3 shell: a scan there is quadratic', () => {
    // Debian bookworm's sqlite3 (3.40) ran 0001's report_rows with a scan inside a LEFT JOIN: 25 s for
    // 20 000 images. better-sqlite3's newer SQLite plans around it, so only the shell shows it.
    db.pragma('wal_checkpoint(TRUNCATE)');
    for (const view of ['report_rows', 'affected_images', 'findings_final_fs', 'tag_heads']) {
      const plan = execFileSync('sqlite3', ['-readonly', path, `EXPLAIN QUERY PLAN SELECT * FROM ${view}`], {
        encoding: 'utf8',
      });
      expect(plan).toContain('LEFT-JOIN');
      expect(plan.split('\n').filter((line) => /SCAN .*LEFT-JOIN/.test(line))).toEqual([]);
    }
  });

  it('joins by index inside image_observations and image_tags in the sqlite3 shell: no nested loop of two scans', () => {
    // The same trap without a LEFT JOIN: two full scans under one parent of the plan tree are a nested
    // loop, quadratic (0001's report_rows showed `SCAN it` then `SCAN tg LEFT-JOIN`). These views have
    // inner joins and a recursive walk down nested indexes, which must look index_children up by key.
    db.pragma('wal_checkpoint(TRUNCATE)');
    for (const view of ['image_observations', 'image_tags', 'report_rows', 'affected_images']) {
      const plan = execFileSync('sqlite3', ['-readonly', path, `EXPLAIN QUERY PLAN SELECT * FROM ${view}`], {
        encoding: 'utf8',
      });
      expect(plan).toContain('RECURSIVE STEP');
      expect(scansUnderOneParent(plan), view).toEqual([]);
    }
  });

  it('reads the same through the sqlite3 command-line shell (views parse on older SQLite)', () => {
    db.pragma('wal_checkpoint(TRUNCATE)');
    const out = execFileSync(
      'sqlite3',
      ['-readonly', path, 'SELECT tag, rule_id, in_final_fs FROM report_rows'],
      {
        encoding: 'utf8',
      },
    );
    expect(out.trim().split('\n')).toEqual([
      '1.0|R1|true',
      '1.0|R2|false',
      'latest|R1|true',
      'latest|R2|false',
      '|R1|true',
    ]);
  });
});

describe('affected_images', () => {
  it('gives one row per image and rule with tags, index, pull count and seen dates', () => {
    const rows = db.prepare('SELECT * FROM affected_images ORDER BY manifest_digest, rule_id').all();
    const a = {
      registry: 'docker.io',
      repository: 'library/demo',
      tags: '1.0,latest',
      current_tags: '1.0,latest',
      index_digest: INDEX,
      manifest_digest: A,
      platform: 'linux/amd64',
      ioc_set: 'xz',
      ioc_set_version: '1',
      evidence_count: 1,
      last_pushed: PUSHED,
      pull_count: 1000,
      first_seen: T1,
      last_seen: T2,
    };
    expect(rows).toEqual([
      { ...a, rule_id: 'R1', evidence_kinds: 'dpkg-version', in_final_fs: 1 },
      { ...a, rule_id: 'R2', evidence_kinds: 'file-sha256', in_final_fs: 0 },
      {
        registry: 'docker.io',
        repository: 'other/thing',
        tags: '',
        current_tags: '',
        index_digest: '',
        manifest_digest: C,
        platform: 'linux/amd64',
        ioc_set: 'xz',
        ioc_set_version: '1',
        rule_id: 'R1',
        evidence_kinds: 'dpkg-version',
        evidence_count: 1,
        in_final_fs: 1,
        last_pushed: null,
        pull_count: null,
        first_seen: T1,
        last_seen: T1,
      },
    ]);
  });
});

describe('whether a tag still points at the image (tag_current, current_tags, tag_heads)', () => {
  // The fixture: library/demo tags latest and 1.0 name INDEX (image A, affected) in run 1; run 2 sees
  // latest on INDEX again. A run 3 at T3 looks again.
  const T3 = '2024-03-01T00:00:00.000Z';
  let run3: number;
  let demo: number;
  beforeEach(() => {
    run3 = s.runs.start({
      config: {},
      toolVersion: 't',
      analyzerVersion: 'a',
      iocSets: [{ id: 'xz', version: '1' }],
      startedAt: T3,
    });
    demo = s.repositories.get('docker.io', 'library/demo')!.id;
  });
  const currency = () => ({
    report: db
      .prepare(
        `SELECT DISTINCT repository, tag, tag_current FROM report_rows WHERE manifest_digest IN (?, ?)
          ORDER BY repository, tag`,
      )
      .all(A, C),
    affected: db
      .prepare(`SELECT DISTINCT repository, tags, current_tags FROM affected_images ORDER BY repository`)
      .all(),
  });

  it('is false on the old image once a later crawl sees the tag on another image, and history stays', () => {
    s.tags.observe({ repositoryId: demo, tag: 'latest', digest: D, pushedAt: null, seenAt: T3, runId: run3 });
    expect(currency()).toEqual({
      report: [
        { repository: 'library/demo', tag: '1.0', tag_current: 'true' },
        { repository: 'library/demo', tag: 'latest', tag_current: 'false' },
        { repository: 'other/thing', tag: '', tag_current: '' },
      ],
      affected: [
        { repository: 'library/demo', tags: '1.0,latest', current_tags: '1.0' },
        { repository: 'other/thing', tags: '', current_tags: '' },
      ],
    });
    const head = db.prepare(`SELECT digest, last_seen, gone_at FROM tag_heads WHERE tag = 'latest'`).get();
    expect(head).toEqual({ digest: D, last_seen: T3, gone_at: null });
  });

  it('is false once a complete listing after the last observation lacks the tag, true again when it comes back', () => {
    // A complete listing at T3 that holds only 1.0 and slim: latest is gone.
    expect(s.tags.recordCompleteListing(demo, ['1.0', 'slim'], run3, T3)).toEqual(['latest']);
    expect(currency().report[1]).toEqual({ repository: 'library/demo', tag: 'latest', tag_current: 'false' });
    expect(db.prepare(`SELECT digest, gone_at FROM tag_heads WHERE tag = 'latest'`).get()).toEqual({
      digest: null,
      gone_at: T3,
    });
    // Pushed again onto the same index and seen by a later run: current again.
    const run4 = s.runs.start({
      config: {},
      toolVersion: 't',
      analyzerVersion: 'a',
      iocSets: [],
      startedAt: '2024-04-01T00:00:00.000Z',
    });
    s.tags.observe({
      repositoryId: demo,
      tag: 'latest',
      digest: INDEX,
      pushedAt: null,
      seenAt: '2024-04-01T00:00:00.000Z',
      runId: run4,
    });
    expect(currency().affected[0]).toEqual({
      repository: 'library/demo',
      tags: '1.0,latest',
      current_tags: '1.0,latest',
    });
  });

  it('records a tag absent once while it stays gone, and never a tag the listing holds', () => {
    expect(s.tags.recordCompleteListing(demo, ['latest', 'slim'], run3, T3)).toEqual(['1.0']);
    const run4 = s.runs.start({ config: {}, toolVersion: 't', analyzerVersion: 'a', iocSets: [] });
    expect(s.tags.recordCompleteListing(demo, ['latest', 'slim'], run4)).toEqual([]);
    expect(db.prepare('SELECT tag, run_id FROM tag_absences').all()).toEqual([{ tag: '1.0', run_id: run3 }]);
    expect(currency().report).toEqual([
      { repository: 'library/demo', tag: '1.0', tag_current: 'false' },
      { repository: 'library/demo', tag: 'latest', tag_current: 'true' },
      { repository: 'other/thing', tag: '', tag_current: '' },
    ]);
  });

  it('stays true when a later crawl does not look at the tag (a filter left it out of the references)', () => {
    // A run that listed the repository completely, every tag held, but resolved only slim.
    expect(s.tags.recordCompleteListing(demo, ['1.0', 'latest', 'slim'], run3, T3)).toEqual([]);
    s.tags.observe({ repositoryId: demo, tag: 'slim', digest: D, pushedAt: null, seenAt: T3, runId: run3 });
    expect(currency().affected[0]).toEqual({
      repository: 'library/demo',
      tags: '1.0,latest',
      current_tags: '1.0,latest',
    });
  });

  it('stays true when the tag moves to another index that still lists the image', () => {
    const INDEX2 = d('9');
    s.manifests.put(
      {
        digest: INDEX2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        kind: 'index',
        raw: Buffer.from('{"i":2}'),
        configDigest: null,
        runId: run3,
      },
      [
        {
          digest: A,
          mediaType: null,
          size: 1,
          os: 'linux',
          architecture: 'amd64',
          variant: null,
          isAttestation: false,
        },
      ],
    );
    s.tags.observe({
      repositoryId: demo,
      tag: 'latest',
      digest: INDEX2,
      pushedAt: null,
      seenAt: T3,
      runId: run3,
    });
    expect(currency().report[1]).toEqual({ repository: 'library/demo', tag: 'latest', tag_current: 'true' });
  });

  it('an absence dated when its listing began does not beat an observation made while the listing ran', () => {
    // A listing of library/demo begins at T3 and runs for an hour; meanwhile another item observes latest on
    // INDEX (at T3 + 30 min). The listing lacked latest and a HEAD found it gone: the absence is dated T3.
    const during = '2024-03-01T00:30:00.000Z';
    expect(s.tags.absentFrom(demo, ['slim'])).toEqual(['1.0', 'latest']);
    s.tags.observe({
      repositoryId: demo,
      tag: 'latest',
      digest: INDEX,
      pushedAt: null,
      seenAt: during,
      runId: run3,
    });
    expect(s.tags.recordAbsences(demo, ['1.0', 'latest'], run3, T3)).toEqual(['1.0', 'latest']);
    expect(currency().report).toEqual([
      { repository: 'library/demo', tag: '1.0', tag_current: 'false' },
      { repository: 'library/demo', tag: 'latest', tag_current: 'true' },
      { repository: 'other/thing', tag: '', tag_current: '' },
    ]);
    expect(db.prepare(`SELECT digest, last_seen, gone_at FROM tag_heads WHERE tag = 'latest'`).get()).toEqual(
      {
        digest: INDEX,
        last_seen: during,
        gone_at: null,
      },
    );
    // The same observation, had it come at the listing's own instant, still counts the tag as present.
    s.tags.observe({
      repositoryId: demo,
      tag: '1.0',
      digest: INDEX,
      pushedAt: null,
      seenAt: T3,
      runId: run3,
    });
    expect(currency().report[0]).toEqual({ repository: 'library/demo', tag: '1.0', tag_current: 'true' });
  });

  it('records absent only the tags given that are present as of the write, each once', () => {
    expect(s.tags.recordAbsences(demo, ['1.0', 'never-seen'], run3, T3)).toEqual(['1.0']);
    // Already recorded absent since its last observation: no second row, in this run or a later one.
    const run4 = s.runs.start({ config: {}, toolVersion: 't', analyzerVersion: 'a', iocSets: [] });
    expect(s.tags.recordAbsences(demo, ['1.0'], run4, '2024-04-01T00:00:00.000Z')).toEqual([]);
    expect(s.tags.absentFrom(demo, ['slim'])).toEqual(['latest']);
    expect(db.prepare('SELECT tag, seen_at, run_id FROM tag_absences').all()).toEqual([
      { tag: '1.0', seen_at: T3, run_id: run3 },
    ]);
  });

  it('reads the same through the sqlite3 command-line shell', () => {
    s.tags.observe({ repositoryId: demo, tag: 'latest', digest: D, pushedAt: null, seenAt: T3, runId: run3 });
    s.tags.recordCompleteListing(demo, ['latest', 'slim'], run3, T3);
    db.pragma('wal_checkpoint(TRUNCATE)');
    const out = execFileSync(
      'sqlite3',
      [
        '-readonly',
        path,
        `SELECT DISTINCT tag, tag_current FROM report_rows;
         SELECT DISTINCT tags, current_tags FROM affected_images WHERE repository = 'library/demo';
         SELECT tag, digest IS NULL, gone_at IS NOT NULL FROM tag_heads ORDER BY tag`,
      ],
      { encoding: 'utf8' },
    );
    expect(out.trim().split('\n')).toEqual([
      '1.0|false',
      'latest|false',
      '|',
      '1.0,latest|',
      '1.0|1|1',
      'latest|0|0',
      'slim|0|0',
    ]);
  });
});

describe('an image below an index of an index', () => {
  // The crawler follows indexes of indexes (MAX_INDEX_DEPTH); 0001's view followed one level, so these
  // findings had no repository or tag. OUTER lists INNER lists image E; DEEP lists OUTER.
  const OUTER = d('4');
  const INNER = d('5');
  const E = d('6');
  const DEEP = d('7');
  let nested: number;
  let deep: number;

  beforeEach(() => {
    const child = (digest: string, os = 'linux', architecture = 'amd64') => ({
      digest,
      mediaType: null,
      size: 1,
      os,
      architecture,
      variant: null,
      isAttestation: false,
    });
    const man = (digest: string, kind: 'image' | 'index', children?: ReturnType<typeof child>[]) =>
      s.manifests.put(
        {
          digest,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          kind,
          raw: Buffer.from(digest),
          configDigest: null,
          runId: 2,
        },
        children,
      );
    man(DEEP, 'index', [child(OUTER)]);
    man(OUTER, 'index', [child(INNER)]);
    man(INNER, 'index', [child(E), child(d('8'), 'linux', 'arm64')]); // arm64 never fetched
    man(E, 'image');
    s.images.put({
      digest: E,
      platform: { os: 'linux', architecture: 'amd64' },
      configDigest: null,
      layers: [{ digest: L0, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', size: 10 }],
      seenAt: T2,
    });
    nested = s.repositories.upsertRepository('docker.io', 'acme/nested');
    deep = s.repositories.upsertRepository('docker.io', 'acme/deep');
    s.tags.observeMany([
      { repositoryId: nested, tag: 'v1', digest: OUTER, pushedAt: PUSHED, seenAt: T2, runId: 2 },
      { repositoryId: deep, tag: 'v2', digest: DEEP, pushedAt: null, seenAt: T2, runId: 2 },
    ]);
    s.findings.replaceForImage(E, 'linux/amd64', [evR1(L0)], 2);
  });

  it('reaches the image at any depth in image_observations and image_tags, index_digest being the top index', () => {
    const observed = db
      .prepare(
        `SELECT repository_id, tag, observed_digest, index_digest, run_id FROM image_observations
          WHERE image_digest = ? ORDER BY tag`,
      )
      .all(E);
    expect(observed).toEqual([
      { repository_id: nested, tag: 'v1', observed_digest: OUTER, index_digest: OUTER, run_id: 2 },
      { repository_id: deep, tag: 'v2', observed_digest: DEEP, index_digest: DEEP, run_id: 2 },
    ]);
    const tags = db
      .prepare('SELECT tag, index_digests, last_pushed FROM image_tags WHERE image_digest = ? ORDER BY tag')
      .all(E);
    expect(tags).toEqual([
      { tag: 'v1', index_digests: OUTER, last_pushed: PUSHED },
      { tag: 'v2', index_digests: DEEP, last_pushed: null },
    ]);
  });

  it('gives report_rows and affected_images their repository and tag', () => {
    const report = db
      .prepare(
        `SELECT registry, repository, tag, index_digest, rule_id, in_final_fs, last_pushed FROM report_rows
          WHERE manifest_digest = ?`,
      )
      .all(E);
    const r1 = { registry: 'docker.io', rule_id: 'R1', in_final_fs: 'true' };
    expect(report).toEqual([
      { ...r1, repository: 'acme/deep', tag: 'v2', index_digest: DEEP, last_pushed: '' },
      { ...r1, repository: 'acme/nested', tag: 'v1', index_digest: OUTER, last_pushed: PUSHED },
    ]);
    const affected = db
      .prepare(
        `SELECT registry, repository, tags, index_digest, rule_id FROM affected_images
          WHERE manifest_digest = ? ORDER BY repository`,
      )
      .all(E);
    expect(affected).toEqual([
      { registry: 'docker.io', repository: 'acme/deep', tags: 'v2', index_digest: DEEP, rule_id: 'R1' },
      { registry: 'docker.io', repository: 'acme/nested', tags: 'v1', index_digest: OUTER, rule_id: 'R1' },
    ]);
  });

  it('reads the same through the sqlite3 command-line shell', () => {
    db.pragma('wal_checkpoint(TRUNCATE)');
    const out = execFileSync(
      'sqlite3',
      [
        '-readonly',
        path,
        `SELECT repository, tag, index_digest FROM report_rows WHERE manifest_digest = '${E}'`,
      ],
      { encoding: 'utf8' },
    );
    expect(out.trim().split('\n')).toEqual([`acme/deep|v2|${DEEP}`, `acme/nested|v1|${OUTER}`]);
  });
});

describe('evidence below a layer that failed analysis', () => {
  // Image A is [L0, L1, L2]: R1 in L0 survives as far as the analyzed layers show, R2 in L1 is removed by L2.
  const readSurvival = () => ({
    rows: db
      .prepare(
        `SELECT rule_id, layer_digest, in_final_fs FROM findings_final_fs WHERE image_digest = ?
          ORDER BY rule_id, layer_position, path`,
      )
      .all(A),
    affected: db
      .prepare('SELECT rule_id, in_final_fs FROM affected_images WHERE manifest_digest = ? ORDER BY rule_id')
      .all(A),
    report: db
      .prepare(`SELECT DISTINCT rule_id, path, in_final_fs FROM report_rows WHERE manifest_digest = ?`)
      .all(A),
  });

  it('is unknown in the views, while evidence an analyzed layer above removed stays removed', () => {
    // L1 failed: it has no evidence; R2's copy in L0 is removed by L2, above the failed layer too.
    s.layers.markFailed(L1, 'CORRUPT_INPUT', 'truncated');
    const removedByL2: ImageEvidence = { ...evR2, layerDigest: L0, layerIndex: 0, inFinalFs: false };
    s.findings.replaceForImage(A, 'linux/amd64', [evR1(L0), removedByL2], 1);
    const { rows, affected, report } = readSurvival();
    expect(rows).toEqual([
      { rule_id: 'R1', layer_digest: L0, in_final_fs: null },
      { rule_id: 'R2', layer_digest: L0, in_final_fs: 0 },
    ]);
    expect(affected).toEqual([
      { rule_id: 'R1', in_final_fs: null },
      { rule_id: 'R2', in_final_fs: 0 },
    ]);
    expect(report).toEqual([
      { rule_id: 'R1', path: '/var/lib/dpkg/status', in_final_fs: 'unknown' },
      { rule_id: 'R2', path: LIB, in_final_fs: 'false' },
    ]);
  });

  it('is known above the failed layer; a rule with only removed and unknown evidence is unknown, not removed', () => {
    s.layers.markFailed(L1, 'CORRUPT_INPUT', 'truncated');
    const r2 = (layer: string, layerIndex: number, at: string, inFinalFs: boolean): ImageEvidence => ({
      ...evR2,
      path: at,
      layerDigest: layer,
      layerIndex,
      inFinalFs,
    });
    s.findings.replaceForImage(
      A,
      'linux/amd64',
      [evR1(L0), r2(L0, 0, LIB, false), r2(L0, 0, `${LIB}.2`, true)],
      1,
    );
    expect(readSurvival().affected).toEqual([
      { rule_id: 'R1', in_final_fs: null },
      { rule_id: 'R2', in_final_fs: null },
    ]);
    s.findings.replaceForImage(
      A,
      'linux/amd64',
      [evR1(L0), r2(L0, 0, LIB, false), r2(L2, 2, `${LIB}.2`, true)],
      1,
    );
    expect(readSurvival().affected).toEqual([
      { rule_id: 'R1', in_final_fs: null },
      { rule_id: 'R2', in_final_fs: 1 },
    ]);
  });

  it('reads the same through the sqlite3 command-line shell', () => {
    s.layers.markFailed(L2, 'CORRUPT_INPUT', 'truncated');
    db.pragma('wal_checkpoint(TRUNCATE)');
    const out = execFileSync(
      'sqlite3',
      [
        '-readonly',
        path,
        `SELECT DISTINCT rule_id, in_final_fs FROM report_rows WHERE manifest_digest = '${A}'`,
      ],
      { encoding: 'utf8' },
    );
    expect(out.trim().split('\n')).toEqual(['R1|unknown', 'R2|false']);
  });
});

describe('summary views', () => {
  it('counts images per layer and findings per run', () => {
    const base = db.prepare('SELECT image_count, finding_count FROM layer_summary WHERE digest = ?').get(L0);
    expect(base).toEqual({ image_count: 4, finding_count: 2 });
    const runs = db
      .prepare('SELECT run_id, ioc_sets, tag_observations, manifests_fetched, findings FROM run_summary')
      .all();
    expect(runs).toEqual([
      { run_id: 1, ioc_sets: 'xz@1', tag_observations: 4, manifests_fetched: 5, findings: 3 },
      { run_id: 2, ioc_sets: 'xz@1', tag_observations: 1, manifests_fetched: 0, findings: 0 },
    ]);
  });

  it.each(['schema.md', 'coverage.md'])('runs every example query of docs/%s', (page) => {
    const doc = readFileSync(new URL(`../../docs/${page}`, import.meta.url), 'utf8');
    const blocks = [...doc.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThan(5);
    for (const sql of blocks) {
      const code = sql
        .split('\n')
        .filter((l) => !l.trim().startsWith('--'))
        .join('\n');
      for (const stmt of code
        .split(/;\s*\n/)
        .map((x) => x.trim())
        .filter(Boolean)) {
        expect(() => db.prepare(stmt).all(), stmt).not.toThrow();
      }
    }
  });

  it('names only IOC sets that exist in the example queries of docs/schema.md', () => {
    // The fixture's set is 'xz', so a query filtering on it runs here and returns nothing on a real dataset.
    const doc = readFileSync(new URL('../../docs/schema.md', import.meta.url), 'utf8');
    const named = [...doc.matchAll(/ioc_set(?:_id)? = '([^']+)'/g)].map((m) => m[1]);
    const builtIn = JSON.parse(
      readFileSync(new URL('../../iocs/xz-cve-2024-3094.json', import.meta.url), 'utf8'),
    );
    expect(named.length).toBeGreaterThan(0);
    expect(new Set(named)).toEqual(new Set([builtIn.id]));
  });
});

describe('findings', () => {
  it('are idempotent: replacing an image with the same evidence twice leaves the same rows', () => {
    const before = s.findings.forImage(A);
    expect(before).toHaveLength(2);
    s.findings.replaceForImage(A, 'linux/amd64', [evR1(L0), evR2, evR2], 1);
    s.findings.replaceForImage(A, 'linux/amd64', [evR1(L0), evR2], 1);
    expect(s.findings.forImage(A)).toEqual(before);
    expect(db.prepare('SELECT count(*) FROM findings').pluck().get()).toBe(3);
  });

  it('keep the topmost copy of evidence from a layer the image holds twice, in whichever order it comes', () => {
    // Layers [L1, L2, L1]: the lower copy of L1's file is replaced by the upper one, which survives.
    const lower: ImageEvidence = { ...evR2, layerIndex: 0, inFinalFs: false };
    const upper: ImageEvidence = { ...evR2, layerIndex: 2, inFinalFs: true };
    for (const evidence of [
      [lower, upper],
      [upper, lower],
    ]) {
      s.findings.replaceForImage(C, 'linux/amd64', evidence, 1);
      expect(s.findings.forImage(C).map((f) => [f.layerIndex, f.inFinalFs])).toEqual([[2, true]]);
      const affected = db
        .prepare(`SELECT in_final_fs FROM affected_images WHERE manifest_digest = ? AND rule_id = 'R2'`)
        .pluck()
        .get(C);
      expect(affected).toBe(1);
    }
  });

  it('keep the surviving copy of evidence a layer holds twice (an archive with the same file twice)', () => {
    // Same layer, same key: the earlier entry is replaced by the later one, which survives.
    const replaced: ImageEvidence = { ...evR2, layerIndex: 1, inFinalFs: false };
    const surviving: ImageEvidence = { ...evR2, layerIndex: 1, inFinalFs: true };
    for (const evidence of [
      [replaced, surviving],
      [surviving, replaced],
    ]) {
      s.findings.replaceForImage(C, 'linux/amd64', evidence, 1);
      expect(s.findings.forImage(C).map((f) => [f.layerIndex, f.inFinalFs])).toEqual([[1, true]]);
      const affected = db
        .prepare(`SELECT in_final_fs FROM affected_images WHERE manifest_digest = ? AND rule_id = 'R2'`)
        .pluck()
        .get(C);
      expect(affected).toBe(1);
    }
  });

  it('replace only the named IOC sets when asked', () => {
    const other: ImageEvidence = { ...evR1(L0), iocSetId: 'other', ruleId: 'O1' };
    s.findings.replaceForImage(A, 'linux/amd64', [other], 2, { iocSetIds: ['other'] });
    expect(s.findings.forImage(A).map((f) => `${f.iocSetId}/${f.ruleId}`)).toEqual([
      'other/O1',
      'xz/R1',
      'xz/R2',
    ]);
    s.findings.replaceForImage(A, 'linux/amd64', [], 2, { iocSetIds: ['xz'] });
    expect(s.findings.forImage(A).map((f) => `${f.iocSetId}/${f.ruleId}`)).toEqual(['other/O1']);
  });
});

describe('rematchAll', () => {
  it('re-matches every fully analyzed image from stored facts and skips images with a pending layer', () => {
    const withPkg: LayerFacts = {
      ...emptyFacts(),
      packages: [
        {
          name: 'liblzma5',
          version: '5.6.1-1',
          architecture: 'amd64',
          source: 'xz-utils',
          status: 'install ok installed',
          statusFile: '/var/lib/dpkg/status',
        },
      ],
    };
    s.layers.markAnalyzed(L0, withPkg, 'a');
    s.layers.markAnalyzed(L1, emptyFacts(), 'a');
    // L2 stays pending: image A cannot be matched yet.
    const seen: string[][] = [];
    const match = (stack: LayerStack): ImageEvidence[] => {
      seen.push(stack.map((l) => l.digest));
      return stack.flatMap((l, i) =>
        (l.facts?.packages ?? []).map((p) => ({
          ...evR1(l.digest),
          iocSetVersion: '2',
          value: `${p.name}=${p.version}`,
          layerIndex: i,
        })),
      );
    };
    const result = rematchAll(db, match, 2, { matchFingerprint: 'xz@2' });
    expect(result).toEqual({ images: 3, withFailedLayers: 0, skipped: [A], findings: 3 });
    expect(seen).toEqual([[L0], [L0], [L0]]);
    expect(s.findings.forImage(C).map((f) => f.iocSetVersion)).toEqual(['2']);
    expect(s.findings.forImage(A)).toHaveLength(2); // untouched
    expect(s.images.needingMatch('xz@2')).toEqual([]);
  });

  it('matches an image without its failed layer, keeping every layer position, and counts it', () => {
    s.layers.markAnalyzed(L0, emptyFacts(), 'a');
    s.layers.markFailed(L1, 'CORRUPT_INPUT', 'truncated');
    s.layers.markAnalyzed(L2, emptyFacts(), 'a');
    const stacks: Array<Array<[string, boolean]>> = [];
    const match = (stack: LayerStack): ImageEvidence[] => {
      stacks.push(stack.map((l) => [l.digest, l.facts !== null]));
      return [];
    };
    // A layer never attempted wins over a failed one: the image waits for it.
    db.prepare(`UPDATE layers SET status = 'pending' WHERE digest = ?`).run(L2);
    expect(rematchAll(db, match, 2, { imageDigests: [A] })).toMatchObject({ images: 0, skipped: [A] });
    s.layers.markAnalyzed(L2, emptyFacts(), 'a');
    const result = rematchAll(db, match, 2, { matchFingerprint: 'xz@2', imageDigests: [A, B] });
    expect(result).toEqual({ images: 2, withFailedLayers: 1, skipped: [], findings: 0 });
    expect(stacks[0]).toEqual([
      [L0, true],
      [L1, false],
      [L2, true],
    ]);
    expect(s.images.needingMatch('xz@2')).toEqual([C, D]);
  });
});
