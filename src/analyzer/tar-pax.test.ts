import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CorruptInputError } from '../core/errors.js';
import { applyMeta, freshPending, parsePax } from './tar-pax.js';

const ctx = { corrupt: (what: string) => new CorruptInputError(what) };

/** The typeflag and data of the first member (a metadata record here) GNU tar writes for `name`. */
function firstRecord(name: string, tarArgs: string[], setup: (path: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-tar-pax-'));
  try {
    setup(join(dir, name));
    const tar = execFileSync('tar', [...tarArgs, '-C', dir, '-cf', '-', name]);
    const size = Number.parseInt(tar.toString('latin1', 124, 135), 8);
    return { typeflag: String.fromCharCode(tar[156] as number), data: tar.subarray(512, 512 + size) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A 3 MiB file with two short runs of data in holes: tar --sparse stores three map segments. */
function sparseFile(path: string): void {
  execFileSync('truncate', ['-s', '3M', path]);
  for (const seek of [1_000_000, 2_000_000]) {
    execFileSync('dd', [`of=${path}`, 'bs=1', `seek=${seek}`, 'conv=notrunc'], {
      input: 'data',
      stdio: ['pipe', 'ignore', 'ignore'],
    });
  }
}

describe('parsePax', () => {
  it('reads the UTF-8 path record GNU tar writes for a non-ASCII name', () => {
    const { typeflag, data } = firstRecord('café', ['--format=pax'], (p) => writeFileSync(p, 'x'));
    expect(typeflag).toBe('x');
    const p = freshPending();
    parsePax(data, p, ctx);
    expect(p.pax.get('path')).toBe('café');
    expect(p.pax.get('mtime')).toMatch(/^\d+\.\d+$/);
  });

  it('keeps every GNU sparse 0.0 offset and numbytes record, in order', () => {
    const { data } = firstRecord('sp', ['--format=pax', '--sparse', '--sparse-version=0.0'], sparseFile);
    const p = freshPending();
    parsePax(data, p, ctx);
    expect(p.pax.get('GNU.sparse.numblocks')).toBe('3');
    expect(p.sparseOffsets).toEqual([999424, 1998848, 3145728]);
    expect(p.sparseNumbytes).toEqual([4096, 4096, 0]);
    expect(p.pax.has('GNU.sparse.offset')).toBe(false);
  });

  it('stops at NUL padding after the last record', () => {
    const { data } = firstRecord('café', ['--format=pax'], (p) => writeFileSync(p, 'x'));
    const p = freshPending();
    parsePax(Buffer.concat([data, Buffer.alloc(100)]), p, ctx);
    expect(p.pax.get('path')).toBe('café');
  });

  it('rejects a record with an empty key', () => {
    expect(() => parsePax(Buffer.from('8 =abcd\n'), freshPending(), ctx)).toThrow(/without a key/);
  });

  it('rejects a record whose length is not a number', () => {
    expect(() => parsePax(Buffer.from('1x path=a\n'), freshPending(), ctx)).toThrow(/is not a number/);
  });
});

describe('applyMeta', () => {
  it('takes a GNU long name from an L record without its trailing NUL', () => {
    const name = 'n'.repeat(150);
    const { typeflag, data } = firstRecord(name, ['--format=gnu'], (p) => writeFileSync(p, 'x'));
    expect(typeflag).toBe('L');
    const p = freshPending();
    applyMeta(p, typeflag, data, ctx);
    expect(p.longName).toBe(name);
  });

  it('leaves the pending records alone for a pax global header', () => {
    const p = freshPending();
    applyMeta(p, 'g', Buffer.from('16 path=ignored\n'), ctx);
    expect(p).toEqual(freshPending());
  });
});
