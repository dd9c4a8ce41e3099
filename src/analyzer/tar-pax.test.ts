import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CorruptInputError } from '../core/errors.js';
import { applyMeta, freshPending, parsePax } from './tar-pax.js';

const ctx = { corrupt: (what: string) => new CorruptInputError(what) };

/** The data of a pax header holding `pairs` in order, each record's length counted in bytes. */
function records(...pairs: Array<[string, string]>): Buffer {
  return Buffer.concat(
    pairs.map(([k, v]) => {
      const tail = ` ${k}=${v}\n`;
      let len = Buffer.byteLength(tail) + 1;
      while (String(len).length + Buffer.byteLength(tail) !== len)
        len = String(len).length + Buffer.byteLength(tail);
      return Buffer.from(`${len}${tail}`);
    }),
  );
}

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

  it('joins every GNU sparse 0.0 offset and numbytes record, in order, into GNU.sparse.map (as Go)', () => {
    const { data } = firstRecord('sp', ['--format=pax', '--sparse', '--sparse-version=0.0'], sparseFile);
    const p = freshPending();
    parsePax(data, p, ctx);
    expect(p.pax.get('GNU.sparse.numblocks')).toBe('3');
    expect(p.pax.get('GNU.sparse.map')).toBe('999424,4096,1998848,4096,3145728,0');
    expect(p.pax.has('GNU.sparse.offset')).toBe(false);
  });

  it('leaves the numbers of 0.0 records unread, so a member Go reads as a plain file keeps its records', () => {
    const p = freshPending();
    parsePax(records(['GNU.sparse.offset', 'x'], ['GNU.sparse.numbytes', 'y']), p, ctx);
    expect(p.pax.get('GNU.sparse.map')).toBe('x,y');
  });

  it('rejects 0.0 records out of order or holding a comma, as Go parsePAX does', () => {
    const bad = [
      [['GNU.sparse.numbytes', '1']],
      [
        ['GNU.sparse.offset', '1'],
        ['GNU.sparse.offset', '2'],
      ],
      [['GNU.sparse.offset', '1,2']],
    ] as Array<Array<[string, string]>>;
    for (const list of bad)
      expect(() => parsePax(records(...list), freshPending(), ctx)).toThrow(/order|comma/);
  });

  it('lets joined 0.0 records replace a GNU.sparse.map given outright, as Go does', () => {
    const p = freshPending();
    parsePax(
      records(['GNU.sparse.map', '0,1'], ['GNU.sparse.offset', '5'], ['GNU.sparse.numbytes', '6']),
      p,
      ctx,
    );
    expect(p.pax.get('GNU.sparse.map')).toBe('5,6');
  });

  it('stops at NUL padding after the last record', () => {
    const { data } = firstRecord('café', ['--format=pax'], (p) => writeFileSync(p, 'x'));
    const p = freshPending();
    parsePax(Buffer.concat([data, Buffer.alloc(100)]), p, ctx);
    expect(p.pax.get('path')).toBe('café');
  });

  it('replaces the records of an earlier x header, sparse records included', () => {
    const p = freshPending();
    parsePax(
      records(['path', 'decoy.bin'], ['GNU.sparse.offset', '10'], ['GNU.sparse.numbytes', '20']),
      p,
      ctx,
    );
    p.longName = 'long';
    parsePax(records(['mtime', '1']), p, ctx);
    expect([...p.pax]).toEqual([['mtime', '1']]);
    expect(p.longName).toBe('long');
  });

  it('drops a key whose value is empty, an earlier value of it included', () => {
    const p = freshPending();
    parsePax(records(['path', 'a'], ['path', ''], ['size', '']), p, ctx);
    expect(p.pax.size).toBe(0);
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

  it('clears every pending record at a pax global header, which Go returns as an entry of its own', () => {
    const p = freshPending();
    applyMeta(p, 'x', records(['path', 'decoy']), ctx);
    applyMeta(p, 'L', Buffer.from('long\0'), ctx);
    applyMeta(p, 'K', Buffer.from('link\0'), ctx);
    applyMeta(p, 'g', Buffer.from('16 path=ignored\n'), ctx);
    expect(p).toEqual(freshPending());
  });

  it('keeps an empty GNU long name, which cancels an earlier one', () => {
    const p = freshPending();
    applyMeta(p, 'L', Buffer.from('long\0'), ctx);
    applyMeta(p, 'L', Buffer.from('\0'), ctx);
    expect(p.longName).toBe('');
  });
});
