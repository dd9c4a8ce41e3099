import type { Database } from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FatalError } from '../core/errors.js';
import { Frontier } from './frontier.js';
import { IocStore } from './ioc-store.js';
import { RunStore } from './run-store.js';
import { openTempDataset, type TempDataset } from './test-fixtures/temp-dataset.js';

// A dataset edited by hand, or damaged: each JSON column read back names its row, and nothing is lost.

let dataset: TempDataset;
let db: Database;
beforeEach(() => {
  dataset = openTempDataset('hubcrawl-stored-json-');
  db = dataset.db;
});
afterEach(() => dataset.remove());

/** The FatalError `read` throws: a damaged row, named, and what to do. */
function damagedRowError(read: () => unknown): FatalError {
  let caught: unknown;
  try {
    read();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(FatalError);
  expect((caught as Error).message).toMatch(/the file was edited or damaged; restore it from a copy/);
  return caught as FatalError;
}

describe('stored JSON of a damaged dataset', () => {
  it('names a frontier row whose payload does not parse, and leaves every item pending when claiming it', () => {
    const frontier = new Frontier(db);
    const good = frontier.enqueue('repository', 'docker.io/library/debian', { registry: 'docker.io' });
    const bad = frontier.enqueue('repository', 'docker.io/library/ubuntu', { registry: 'docker.io' });
    db.prepare('UPDATE frontier SET payload_json = ? WHERE id = ?').run('{"registry": "docker.io"', bad);

    const err = damagedRowError(() => frontier.claim(['repository'], 10));
    expect(err.message).toBe(
      `the dataset's frontier row ${bad} (repository docker.io/library/ubuntu) holds no valid JSON in payload_json: ` +
        'the file was edited or damaged; restore it from a copy, or crawl into a new dataset',
    );
    // The claim rolled back: neither item is left in-progress by a claim that returned nothing.
    const states = db.prepare('SELECT id, state FROM frontier ORDER BY id').all();
    expect(states).toEqual([
      { id: good, state: 'pending' },
      { id: bad, state: 'pending' },
    ]);
    expect(() => frontier.claimIds([bad])).toThrow(FatalError);
    damagedRowError(() => frontier.get(bad));
    // The sound item is still claimed and read as written.
    expect(frontier.claimIds([good]).map((i) => i.payload)).toEqual([{ registry: 'docker.io' }]);
  });

  it('names a crawl_runs row whose config or stats is no JSON object', () => {
    const runs = new RunStore(db);
    const id = runs.start({
      config: { seeds: ['debian'] },
      toolVersion: '0',
      analyzerVersion: '7',
      iocSets: [],
    });
    runs.recordStats(id, { manifests: 3 });
    expect(runs.get(id)?.stats).toEqual({ manifests: 3 });

    db.prepare('UPDATE crawl_runs SET stats_json = ? WHERE id = ?').run('[3]', id);
    expect(damagedRowError(() => runs.get(id)).message).toMatch(
      new RegExp(`^the dataset's crawl_runs row ${id} holds no JSON object in stats_json: `),
    );
    db.prepare('UPDATE crawl_runs SET stats_json = NULL, config_json = ? WHERE id = ?').run('{seeds}', id);
    expect(damagedRowError(() => runs.latest()).message).toMatch(
      new RegExp(`^the dataset's crawl_runs row ${id} holds no JSON object in config_json: `),
    );
  });

  it('names a damaged stored IOC set, and a load of that set replaces it with a warning', () => {
    const iocs = new IocStore(db);
    const set = { id: 'xz', version: '1', title: 't', rules: [{ id: 'r', kind: 'file-sha256' }] };
    expect(iocs.putSets([set])).toEqual([]);
    db.prepare('UPDATE ioc_sets SET json = ? WHERE id = ?').run('{"id": "xz", "rules": 3}', 'xz');

    expect(damagedRowError(() => iocs.get('xz', '1')).message).toMatch(
      /^the dataset's ioc_sets row xz 1 holds no IOC set \(a JSON object with rules\) in json: /,
    );
    damagedRowError(() => iocs.list());
    // Loading the set again: the damaged copy cannot say its rules were these, so the caller warns, and
    // the stored copy is the set as loaded again.
    expect(iocs.putSets([set])).toEqual([{ id: 'xz', version: '1' }]);
    expect(iocs.get('xz', '1')?.set).toEqual(set);
    expect(iocs.putSets([set])).toEqual([]);
  });
});
