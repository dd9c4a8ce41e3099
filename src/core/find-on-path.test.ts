import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { findOnPath } from './find-on-path.js';

const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-path-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'tool'), '#!/bin/sh\n');
chmodSync(join(dir, 'tool'), 0o755);
writeFileSync(join(dir, 'plain'), 'not executable');

describe('findOnPath', () => {
  it('returns the absolute path from the first directory holding an executable of that name', () => {
    expect(findOnPath('tool', `/nonexistent:${dir}:/usr/bin`)).toBe(join(dir, 'tool'));
  });

  it('skips files that are not executable', () => {
    expect(findOnPath('plain', dir)).toBeNull();
  });

  it('never looks in the current directory through an empty or relative PATH entry', () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      expect(findOnPath('tool', '.::./')).toBeNull();
      expect(findOnPath('tool', `.:${dir}`)).toBe(join(dir, 'tool'));
    } finally {
      process.chdir(cwd);
    }
  });
});
