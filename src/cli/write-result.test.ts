import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.js';
import { refuseDatasetAsOutput } from './write-result.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'hubcrawl-out-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('refuseDatasetAsOutput', () => {
  it('refuses the dataset and its SQLite files, by any path that leads there, existing yet or not', () => {
    const data = join(dir, 'data');
    mkdirSync(data);
    const dataset = join(data, 'study.sqlite');
    writeFileSync(dataset, 'x');
    const linked = join(dir, 'linked');
    symlinkSync(data, linked);
    for (const out of [
      dataset,
      join(dir, 'data', '..', 'data', 'study.sqlite'),
      join(linked, 'study.sqlite'),
      // Not there yet, through the symlinked folder: the WAL SQLite would create.
      join(linked, 'study.sqlite-wal'),
      `${dataset}-journal`,
    ]) {
      expect(() => refuseDatasetAsOutput(out, dataset), out).toThrow(ConfigError);
    }
    // A dangling symlink to the WAL: writing through it would create the WAL.
    const dangling = join(dir, 'out.csv');
    symlinkSync(join(data, 'study.sqlite-wal'), dangling);
    expect(() => refuseDatasetAsOutput(dangling, dataset)).toThrow(ConfigError);
    expect(() => refuseDatasetAsOutput(join(linked, 'report.csv'), dataset)).not.toThrow();
    expect(() => refuseDatasetAsOutput(join(dir, 'missing', 'report.csv'), dataset)).not.toThrow();
  });
});
