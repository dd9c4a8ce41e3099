import { describe, expect, it } from 'vitest';
import { builtinIocSets } from '../analyzer/iocs/builtin.js';
import { ANALYZER_VERSION } from '../analyzer/layer-stream.js';
import { loadConfig, redactConfig } from '../config/load.js';
import type { RunRow } from '../db/run-store.js';
import { sameStudy } from './study.js';

const sets = builtinIocSets();
const base = { seeds: { images: ['debian:sid-20240311'] }, filters: { platforms: ['linux/amd64'] } };

function lastRun(settings: Record<string, unknown>): RunRow {
  return {
    id: 1,
    startedAt: '2026-11-28T00:00:00Z',
    finishedAt: null,
    status: 'aborted',
    config: JSON.parse(JSON.stringify(redactConfig(loadConfig({ env: {}, flagSettings: settings })))),
    toolVersion: '0.1.0',
    analyzerVersion: ANALYZER_VERSION,
    stats: null,
    iocSets: sets.map((s) => ({ id: s.id, version: s.version })),
  };
}

describe('resuming an unfinished run', () => {
  it('resumes with the same seeds, filters and IOC sets, whatever the budget or concurrency', () => {
    const now = loadConfig({
      env: {},
      flagSettings: { ...base, maxPulls: 50, concurrency: 8, logLevel: 'debug' },
    });
    expect(sameStudy(lastRun(base), now, sets)).toBe(true);
  });

  it('starts a new run when the seeds changed', () => {
    const now = loadConfig({ env: {}, flagSettings: { ...base, seeds: { images: ['debian:trixie'] } } });
    expect(sameStudy(lastRun(base), now, sets)).toBe(false);
  });

  it('resumes with the same seeds in another order, or one given twice: seeds are a set', () => {
    const two = { ...base, seeds: { images: ['debian:sid-20240311', 'debian:trixie'] } };
    const reordered = {
      ...base,
      seeds: { images: ['debian:trixie', 'debian:sid-20240311', 'debian:trixie'] },
    };
    expect(sameStudy(lastRun(two), loadConfig({ env: {}, flagSettings: reordered }), sets)).toBe(true);
  });

  it('resumes when a seed is spelled another way that names the same seed item', () => {
    // A re-typed command after a Ctrl-C: a trailing slash, Docker Hub's implied registry and library/.
    const first = {
      ...base,
      seeds: {
        images: ['debian:sid-20240311', 'user/app'],
        repos: ['debian'],
        catalogs: ['http://127.0.0.1:5000'],
      },
    };
    const retyped = {
      ...base,
      seeds: {
        images: ['docker.io/library/debian:sid-20240311', 'docker.io/user/app:latest'],
        repos: ['docker.io/library/debian'],
        catalogs: ['http://127.0.0.1:5000/'],
      },
    };
    expect(sameStudy(lastRun(first), loadConfig({ env: {}, flagSettings: retyped }), sets)).toBe(true);
    // Another registry, tag or scheme is another study.
    for (const seeds of [
      { ...first.seeds, catalogs: ['http://127.0.0.1:5001/'] },
      { ...first.seeds, images: ['debian:sid-20240312', 'user/app'] },
      { ...first.seeds, repos: ['ghcr.io/debian'] },
    ]) {
      expect(sameStudy(lastRun(first), loadConfig({ env: {}, flagSettings: { ...base, seeds } }), sets)).toBe(
        false,
      );
    }
  });

  it('starts a new run when a filter or the IOC sets changed', () => {
    const now = loadConfig({ env: {}, flagSettings: { ...base, filters: { platforms: [] } } });
    expect(sameStudy(lastRun(base), now, sets)).toBe(false);
    const same = loadConfig({ env: {}, flagSettings: base });
    expect(sameStudy(lastRun(base), same, [{ ...sets[0]!, version: 'next' }])).toBe(false);
  });
});
