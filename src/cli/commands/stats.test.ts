import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { IocStore } from '../../db/ioc-store.js';
import { openTempDataset, type TempDataset } from '../../db/test-fixtures/temp-dataset.js';
import { datasetStats } from './stats.js';

let dataset: TempDataset;
beforeEach(() => {
  dataset = openTempDataset('hubcrawl-stats-');
});
afterEach(() => dataset.remove());

describe('datasetStats', () => {
  it('gives every IOC set the dataset holds its counts of affected images, 0 / 0 / 0 for one that matched none', () => {
    const rule = { id: 'r', kind: 'file-md5', md5: 'b'.repeat(32) };
    new IocStore(dataset.db).putSets([
      { id: 'mine', version: '1', rules: [rule] },
      { id: 'xz', version: '2', rules: [rule] },
    ]);
    dataset.db.close();
    const holds = datasetStats(dataset.path).holds as Record<string, unknown>;
    // No finding at all: a set that matched nothing is said so, not left out.
    expect(holds.affectedImagesBySet).toEqual([
      { iocSet: 'mine@1', images: 0, finalFs: 0, finalFsUnknown: 0 },
      { iocSet: 'xz@2', images: 0, finalFs: 0, finalFsUnknown: 0 },
    ]);
  });
});
