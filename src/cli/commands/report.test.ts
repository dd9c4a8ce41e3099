import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { layerFacts } from '../../analyzer/test-fixtures/facts.js';
import { openDatabase } from '../../db/open.js';
import type { ImageEvidence } from '../../db/rows.js';
import { createStores, type Stores } from '../../db/stores.js';
import { failedLayersNote, reportRows, unfinishedRunNote } from './report.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const IMAGE = d('a');
const BASE = d('0');
const FAILED = d('1');

const evidence = (inFinalFs: boolean): ImageEvidence => ({
  kind: 'dpkg-version',
  iocSetId: 'xz',
  iocSetVersion: '1',
  ruleId: 'R1',
  path: '/var/lib/dpkg/status',
  value: 'liblzma5=5.6.1-1',
  layerDigest: BASE,
  layerIndex: 0,
  inFinalFs,
});

let dir: string;
let path: string;
let s: Stores;
let close: () => void;
let db: ReturnType<typeof openDatabase>;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hubcrawl-report-'));
  path = join(dir, 'd.db');
  db = openDatabase(path);
  close = () => db.close();
  s = createStores(db);
  s.iocs.putSets([{ id: 'xz', version: '1', title: 'XZ', rules: [{ id: 'R1', kind: 'dpkg-version' }] }]);
  s.manifests.put({
    digest: IMAGE,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    kind: 'image',
    raw: Buffer.from('{}'),
    configDigest: null,
    runId: null,
  });
  const layer = (digest: string) => ({
    digest,
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    size: 1,
  });
  s.images.put({
    digest: IMAGE,
    platform: { os: 'linux', architecture: 'amd64' },
    configDigest: null,
    layers: [layer(BASE), layer(FAILED)],
  });
  s.layers.markFailed(FAILED, 'CORRUPT_INPUT', 'truncated');
  s.layers.markAnalyzed(BASE, layerFacts(), 'a');
});
afterEach(() => {
  close();
  rmSync(dir, { recursive: true, force: true });
});

describe('reportRows: images with a failed layer', () => {
  it('counts an image an older hubcrawl left unmatched, and the note says to rematch', () => {
    const counts = reportRows(path);
    expect(counts).toMatchObject({
      imagesWithFailedLayers: 1,
      imagesWithFailedLayersNotInReport: 1,
      imagesWithFailedLayersUnmatched: 1,
    });
    expect(failedLayersNote(counts)).toContain('`hubcrawl rematch` matches them');
  });

  it('does not count an image with a pending layer as left unmatched: it waits for that layer', () => {
    db.prepare(`INSERT INTO layers (digest, status) VALUES (?, 'pending')`).run(d('2'));
    db.prepare(
      `INSERT INTO image_layers (image_digest, position, layer_digest, media_type, size) VALUES (?, 2, ?, 'x', 1)`,
    ).run(IMAGE, d('2'));
    expect(reportRows(path)).toMatchObject({ imagesWithFailedLayers: 1, imagesWithFailedLayersUnmatched: 0 });
  });

  it('counts an image with only removed evidence as absent from a --final-only report alone', () => {
    s.findings.replaceForImage(IMAGE, 'linux/amd64', [evidence(false)], null, { matchFingerprint: 'f' });
    const all = reportRows(path);
    expect(all.rows).toHaveLength(1);
    expect(all).toMatchObject({ imagesWithFailedLayersNotInReport: 0, imagesWithFailedLayersUnmatched: 0 });
    expect(failedLayersNote(all)).not.toContain('rematch');
    const finalOnly = reportRows(path, { finalOnly: true });
    expect(finalOnly.rows).toHaveLength(0);
    expect(finalOnly.imagesWithFailedLayersNotInReport).toBe(1);
  });

  it('keeps evidence below the failed layer in a --final-only report, as unknown', () => {
    s.findings.replaceForImage(IMAGE, 'linux/amd64', [evidence(true)], null, { matchFingerprint: 'f' });
    const { rows, imagesWithFailedLayersNotInReport } = reportRows(path, { finalOnly: true });
    expect(rows.map((r) => r.in_final_fs)).toEqual(['unknown']);
    expect(imagesWithFailedLayersNotInReport).toBe(0);
  });

  it('says nothing when no layer failed', () => {
    expect(
      failedLayersNote({
        imagesWithFailedLayers: 0,
        imagesWithFailedLayersNotInReport: 0,
        imagesWithFailedLayersUnmatched: 0,
      }),
    ).toBeNull();
  });
});

describe('reportRows: the latest run', () => {
  const run = () => s.runs.start({ config: {}, toolVersion: 't', analyzerVersion: 'a', iocSets: [] });
  const frontierItem = (state: string, kind = 'layer', key = `k-${state}`) =>
    db
      .prepare(
        `INSERT INTO frontier (kind, key, payload_json, state, created_at, updated_at)
         VALUES (?, ?, '{}', ?, 'T', 'T')`,
      )
      .run(kind, key, state);

  it('says nothing without runs, or when the latest one completed', () => {
    expect(unfinishedRunNote(reportRows(path))).toBeNull();
    s.runs.finish(run(), 'completed', {});
    expect(unfinishedRunNote(reportRows(path))).toBeNull();
  });

  it('says when the latest run was aborted, failed or is still running, with its frontier items not done', () => {
    s.runs.finish(run(), 'aborted', {});
    const id = run();
    for (const state of ['pending', 'in-progress', 'done', 'failed']) frontierItem(state);
    // The run's own reference item counts; the earlier run's leftover does not.
    frontierItem('pending', 'reference', `${id}|r.example/a:1@`);
    frontierItem('pending', 'reference', `${id - 1}|r.example/b:1@`);
    expect(unfinishedRunNote(reportRows(path))).toBe(
      `the latest run (${id}) is still marked running (a crawl in progress now, or one that was killed): 3 items of its frontier are not done, so images it has not reached yet, and those with a layer still to analyze, are not in this report (an image is matched as soon as its last layer is analyzed); \`hubcrawl crawl\` on this dataset resumes it.`,
    );
    s.runs.finish(id, 'aborted', {});
    expect(unfinishedRunNote(reportRows(path))).toContain(
      `the latest run (${id}) was aborted (pull budget, rate limit, a host that stopped answering`,
    );
    db.prepare(`UPDATE crawl_runs SET status = 'failed' WHERE id = ?`).run(id);
    expect(unfinishedRunNote(reportRows(path))).toContain(`the latest run (${id}) failed (`);
    expect(unfinishedRunNote(reportRows(path))).toContain('a failed run is not resumed: the next');
  });

  it('says that a rematch not finished left images with their earlier findings, not that a crawl resumes it', () => {
    s.runs.finish(run(), 'completed', {});
    const rematch = () =>
      s.runs.start({ config: { command: 'rematch' }, toolVersion: 't', analyzerVersion: 'a', iocSets: [] });
    const killed = rematch();
    const note = unfinishedRunNote(reportRows(path));
    expect(note).toBe(
      `the latest run (${killed}) is a \`hubcrawl rematch\` that has not finished (running now, stopped, or killed): the images it had not reached keep the findings of their earlier match, so this report may mix findings of the IOC sets it loaded with findings of the sets loaded before; the same \`hubcrawl rematch\` again re-matches every image.`,
    );
    s.runs.finish(killed, 'aborted', {});
    expect(unfinishedRunNote(reportRows(path))).toBe(note);
    s.runs.finish(rematch(), 'completed', {});
    expect(unfinishedRunNote(reportRows(path))).toBeNull();
  });
});
