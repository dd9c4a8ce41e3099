import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { countLayersFailedBeforeRun, countLayersFailedForGood } from './failed-layers.js';
import type { Database } from './open.js';
import { openTempDataset, type TempDataset } from './test-fixtures/temp-dataset.js';

let dataset: TempDataset;
let db: Database;
beforeEach(() => {
  dataset = openTempDataset('hubcrawl-failed-layers-');
  db = dataset.db;
  db.prepare(
    `INSERT INTO crawl_runs (id, started_at, status, config_json, tool_version, analyzer_version)
     VALUES (1, 't', 'completed', '{}', 't', '3'), (2, 't', 'completed', '{}', 't', '4')`,
  ).run();
});
afterEach(() => dataset.remove());

const L = 'sha256:aaaa';

/** A layer item as the pipeline keys it: digest, analyzer version, selection. */
function item(
  version: string,
  state: string,
  opts: { attempts?: number; failedInRun?: number } = {},
): number {
  const id = db
    .prepare(
      `INSERT INTO frontier (kind, key, payload_json, state, attempts, retryable, created_at, updated_at)
       VALUES ('layer', ?, '{}', ?, ?, 0, 't', 't')`,
    )
    .run(`${L}|${version}|sel`, state, opts.attempts ?? 3).lastInsertRowid as number;
  if (opts.failedInRun !== undefined) {
    db.prepare(
      `INSERT INTO failures (frontier_id, kind, key, run_id, error_code, message, retryable, at)
       VALUES (?, 'layer', 'k', ?, 'CORRUPT_INPUT', 'm', 0, 't')`,
    ).run(id, opts.failedInRun);
  }
  return id;
}

/** A failed layer under an image that run 2 observed by a tag. */
function failedLayerOfRun2Image(): void {
  db.prepare(
    `INSERT INTO layers (digest, media_type, compressed_size, status) VALUES (?, 'm', 1, 'failed')`,
  ).run(L);
  db.prepare(
    `INSERT INTO manifests (digest, media_type, kind, size, raw, fetched_at) VALUES ('sha256:img', 'm', 'image', 1, x'00', 't')`,
  ).run();
  db.prepare(
    `INSERT INTO images (digest, platform, first_seen, last_seen) VALUES ('sha256:img', 'linux/amd64', 't', 't')`,
  ).run();
  db.prepare(
    `INSERT INTO image_layers (image_digest, position, layer_digest) VALUES ('sha256:img', 0, ?)`,
  ).run(L);
  db.prepare(`INSERT INTO registries (id, host) VALUES (1, 'r')`).run();
  db.prepare(`INSERT INTO repositories (id, registry_id, namespace, name) VALUES (1, 1, 'a', 'b')`).run();
  db.prepare(
    `INSERT INTO tag_observations (repository_id, tag, digest, seen_at, run_id) VALUES (1, 'v1', 'sha256:img', 't', 2)`,
  ).run();
}

describe('layers failed for good', () => {
  it('counts a layer whose only item failed for good', () => {
    failedLayerOfRun2Image();
    item('3', 'failed', { failedInRun: 1 });
    expect(countLayersFailedForGood(db, 3)).toBe(1);
    expect(countLayersFailedForGood(db, 4)).toBe(0);
  });

  it('does not count an older version item once a newer one was queued, retried or not', () => {
    failedLayerOfRun2Image();
    item('3', 'failed', { failedInRun: 1 });
    item('4', 'pending', { attempts: 0 });
    expect(countLayersFailedForGood(db, 3)).toBe(0);
  });
});

describe('layers of a run failed in earlier runs', () => {
  it('counts a layer of the run whose newest item failed before it, not one the run tried', () => {
    failedLayerOfRun2Image();
    const old = item('3', 'failed', { failedInRun: 1 });
    expect(countLayersFailedBeforeRun(db, 2)).toBe(1);
    db.prepare(
      `INSERT INTO failures (frontier_id, kind, key, run_id, error_code, message, retryable, at)
       VALUES (?, 'layer', 'k', 2, 'CORRUPT_INPUT', 'm', 0, 't')`,
    ).run(old);
    expect(countLayersFailedBeforeRun(db, 2)).toBe(0);
  });

  it('does not count an older version item when the run analyzed, or failed, the newer one itself', () => {
    failedLayerOfRun2Image();
    item('3', 'failed', { failedInRun: 1 });
    item('4', 'failed', { failedInRun: 2 });
    expect(countLayersFailedBeforeRun(db, 2)).toBe(0);
  });
});
