import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CorruptInputError } from '../core/errors.js';
import { freshPending, parsePax } from './tar-pax.js';
import {
  readSparseEntries,
  SparseExpander,
  type SparseSegment,
  SparseV1MapReader,
  sparseFromPax,
} from './tar-sparse.js';

const ctx = { corrupt: (what: string) => new CorruptInputError(what) };

/** The map GNU tar writes for a 3 MiB file with 4 bytes of data at 1 000 000 and 2 000 000. */
const GNU_MAP: SparseSegment[] = [
  { offset: 999424, length: 4096 },
  { offset: 1998848, length: 4096 },
  { offset: 3145728, length: 0 },
];

/** GNU tar's archive of such a sparse file, in the given format (`--sparse` plus `extra` flags). */
function sparseArchive(extra: string[]): Buffer {
  const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-tar-sparse-'));
  try {
    const path = join(dir, 'sp');
    execFileSync('truncate', ['-s', '3M', path]);
    for (const seek of [1_000_000, 2_000_000]) {
      execFileSync('dd', [`of=${path}`, 'bs=1', `seek=${seek}`, 'conv=notrunc'], {
        input: 'data',
        stdio: ['pipe', 'ignore', 'ignore'],
      });
    }
    return execFileSync('tar', ['--sparse', ...extra, '-C', dir, '-cf', '-', 'sp']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The pax records of the first member, as the parser would have them pending. */
function paxRecords(tar: Buffer) {
  const size = Number.parseInt(tar.toString('latin1', 124, 136), 8);
  const p = freshPending();
  parsePax(tar.subarray(512, 512 + size), p, ctx);
  return p;
}

describe('readSparseEntries', () => {
  it('reads the map an old-GNU sparse header carries and stops at the first empty slot', () => {
    const blk = sparseArchive(['--format=gnu']).subarray(0, 512);
    expect(String.fromCharCode(blk[156] as number)).toBe('S');
    const map: SparseSegment[] = [];
    readSparseEntries(blk, 386, 4, map, ctx);
    expect(map).toEqual(GNU_MAP);
  });
});

describe('sparseFromPax', () => {
  it('pairs the repeated offset and numbytes records of GNU sparse 0.0', () => {
    const p = paxRecords(sparseArchive(['--format=pax', '--sparse-version=0.0']));
    expect(sparseFromPax(p.pax, ctx)).toEqual(GNU_MAP);
  });

  it('reads the comma-separated GNU.sparse.map of GNU sparse 0.1', () => {
    const p = paxRecords(sparseArchive(['--format=pax', '--sparse-version=0.1']));
    expect(sparseFromPax(p.pax, ctx)).toEqual(GNU_MAP);
  });

  it('rejects a 0.0 map with one offset more than sizes', () => {
    const pax = new Map([['GNU.sparse.map', '0,5,10']]);
    expect(() => sparseFromPax(pax, ctx)).toThrow(/odd number of values/);
  });

  it('reads the numbers only now, so a value that is not one fails here', () => {
    const pax = new Map([['GNU.sparse.map', 'x,y']]);
    expect(() => sparseFromPax(pax, ctx)).toThrow(/not a decimal number/);
  });

  it('rejects a 0.1 map with an odd number of values', () => {
    const pax = new Map([['GNU.sparse.map', '0,5,10']]);
    expect(() => sparseFromPax(pax, ctx)).toThrow(/odd number of values/);
  });
});

describe('SparseV1MapReader', () => {
  /** The block of decimal lines a GNU sparse 1.0 member's data starts with. */
  const v1MapBlock = () => {
    const tar = sparseArchive(['--format=pax', '--sparse-version=1.0']);
    const paxSize = Number.parseInt(tar.toString('latin1', 124, 136), 8);
    const member = 512 + Math.ceil(paxSize / 512) * 512;
    return tar.subarray(member + 512, member + 1024);
  };

  it('reads the map GNU tar writes at the start of a 1.0 member', () => {
    const reader = new SparseV1MapReader(ctx);
    reader.append(v1MapBlock());
    expect(reader.take()).toEqual(GNU_MAP);
  });

  it('returns null until the last line arrives, then the map, even when lines are cut', () => {
    const block = v1MapBlock();
    const lastNewline = block.toString('latin1').lastIndexOf('\n');
    const reader = new SparseV1MapReader(ctx);
    for (let i = 0; i < lastNewline; i += 5) reader.append(block.subarray(i, Math.min(i + 5, lastNewline)));
    expect(reader.take()).toBeNull();
    reader.append(block.subarray(lastNewline));
    expect(reader.take()).toEqual(GNU_MAP);
  });

  it('rejects a map line that is not a decimal number', () => {
    const reader = new SparseV1MapReader(ctx);
    reader.append(Buffer.from('1\n0x10\n4\n'));
    expect(() => reader.take()).toThrow(/not a decimal number/);
  });
});

describe('SparseExpander', () => {
  /** Expands `stored` through `map` fed in `chunk`-byte pieces and returns the logical content. */
  function expand(map: SparseSegment[], realSize: number, stored: string, chunk: number): string {
    const out: Buffer[] = [];
    let ended = false;
    const expander = new SparseExpander(
      map,
      realSize,
      stored.length,
      { write: (c) => out.push(Buffer.from(c)), end: () => (ended = true) },
      ctx,
    );
    const bytes = Buffer.from(stored, 'latin1');
    for (let i = 0; i < bytes.length; i += chunk) expander.write(bytes.subarray(i, i + chunk));
    expander.end();
    expect(ended).toBe(true);
    return Buffer.concat(out).toString('latin1').replaceAll('\0', '.');
  }

  it('puts each stored run at its offset, zeros in the holes, fed whole or byte by byte', () => {
    // A zero-length run in the middle and a hole at the end, as GNU maps can have.
    const map = [
      { offset: 2, length: 3 },
      { offset: 6, length: 0 },
      { offset: 7, length: 2 },
    ];
    expect(expand(map, 12, 'abcde', 5)).toBe('..abc..de...');
    expect(expand(map, 12, 'abcde', 1)).toBe('..abc..de...');
  });

  it('rejects runs that overlap', () => {
    const map = [
      { offset: 0, length: 4 },
      { offset: 3, length: 1 },
    ];
    expect(() => expand(map, 10, 'abcde', 5)).toThrow(/overlap or pass the file size/);
  });

  it('rejects a run that ends past the real size', () => {
    expect(() => expand([{ offset: 8, length: 5 }], 10, 'abcde', 5)).toThrow(/overlap or pass/);
  });

  it('rejects a map that covers other than the stored byte count', () => {
    expect(() => expand([{ offset: 0, length: 4 }], 10, 'abcde', 5)).toThrow(/covers 4 bytes/);
  });
});
