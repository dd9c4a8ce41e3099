import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { realPathOf } from './real-path.js';

let dir: string;
beforeAll(() => {
  dir = realpathSync(mkdtempSync(join(tmpdir(), 'hubcrawl-real-path-')));
  mkdirSync(join(dir, 'x', 'y'), { recursive: true });
  mkdirSync(join(dir, 'elsewhere', 'd'), { recursive: true });
  symlinkSync('x/y', join(dir, 'a'));
  symlinkSync('../target', join(dir, 'x', 'y', 'dangling'));
  symlinkSync('elsewhere/d', join(dir, 'sub'));
  symlinkSync(join(dir, 'x'), join(dir, 'abs'));
  symlinkSync('loop2', join(dir, 'loop1'));
  symlinkSync('loop1', join(dir, 'loop2'));
  writeFileSync(join(dir, 'plainfile'), 'x');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('realPathOf', () => {
  it('resolves as the kernel does, checked against GNU realpath -m', () => {
    for (const p of [
      'a/dangling', // a dangling relative link inside a symlinked folder: from the link's real folder
      'sub/../out.csv', // `..` after a symlinked folder: the real folder's parent
      'abs/y/../y/new.csv',
      'x/./y//z/../w',
      'missing/folder/file.csv',
      'a',
    ]) {
      const expected = execFileSync('realpath', ['-m', join(dir, p)], { encoding: 'utf8' }).trim();
      expect(realPathOf(join(dir, p)), p).toBe(expected);
    }
  });

  it('takes a relative path from the working directory, and keeps going past a loop or a file', () => {
    const cwd = process.cwd();
    try {
      process.chdir(dir);
      expect(realPathOf('sub/../r.csv')).toBe(join(dir, 'elsewhere', 'r.csv'));
    } finally {
      process.chdir(cwd);
    }
    expect(realPathOf(join(dir, 'plainfile', 'd.sqlite'))).toBe(join(dir, 'plainfile', 'd.sqlite'));
    expect(realPathOf(join(dir, 'loop1', 'x'))).toMatch(/\/loop[12]\/x$/);
  });
});
