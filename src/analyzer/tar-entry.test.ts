import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CorruptInputError, LimitExceededError } from '../core/errors.js';
import { buildEntry } from './tar-entry.js';
import { applyMeta, freshPending, isMetaTypeflag, type Pending } from './tar-pax.js';

const ctx = { headerOffset: 0, corrupt: (what: string) => new CorruptInputError(what) };

/**
 * The first real member GNU tar writes for `name` (made by `setup` in a temp dir): its header
 * block, the records before it applied to a Pending, and its raw size field.
 */
function firstEntry(name: string, tarArgs: string[], setup: (path: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-tar-entry-'));
  let tar: Buffer;
  try {
    setup(join(dir, name));
    tar = execFileSync('tar', [...tarArgs, '-C', dir, '-cf', '-', name]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const pending: Pending = freshPending();
  for (let off = 0; off < tar.length; ) {
    const blk = tar.subarray(off, off + 512);
    const typeflag = String.fromCharCode(blk[156] as number);
    const rawSize = Number.parseInt(blk.toString('latin1', 124, 136), 8);
    if (!isMetaTypeflag(typeflag)) return { blk, typeflag, rawSize, pending };
    applyMeta(pending, typeflag, tar.subarray(off + 512, off + 512 + rawSize), ctx);
    off += 512 + Math.ceil(rawSize / 512) * 512;
  }
  throw new Error('GNU tar wrote no member');
}

function sparse10(path: string): void {
  execFileSync('truncate', ['-s', '3M', path]);
  execFileSync('dd', [`of=${path}`, 'bs=1', 'seek=1000000', 'conv=notrunc'], {
    input: 'data',
    stdio: ['pipe', 'ignore', 'ignore'],
  });
}
const sparseArgs = ['--format=pax', '--sparse', '--sparse-version=1.0'];

describe('buildEntry', () => {
  it('names a pax 1.0 sparse member by GNU.sparse.name and sizes it by its real size', () => {
    const { blk, typeflag, rawSize, pending } = firstEntry('sp', sparseArgs, sparse10);
    expect(blk.toString('latin1', 0, 40)).toMatch(/GNUSparseFile\.\d+\/sp\0/); // what old readers see
    expect(buildEntry(blk, typeflag, rawSize, pending, 4096, ctx).entry).toMatchObject({
      name: 'sp',
      type: 'file',
      size: 3 * 2 ** 20,
      sparse: true,
    });
  });

  it('reports the stored size of a pax sparse member apart from its real size', () => {
    const { blk, typeflag, rawSize, pending } = firstEntry('sp', sparseArgs, sparse10);
    expect(buildEntry(blk, typeflag, rawSize, pending, 4096, ctx).stored).toBe(rawSize);
    // Past 8 GiB a writer puts the stored size in a pax record; that is what the member stores.
    pending.pax.set('size', String(rawSize + 512));
    const { entry, stored } = buildEntry(blk, typeflag, rawSize, pending, 4096, ctx);
    expect(stored).toBe(rawSize + 512);
    expect(entry.size).toBe(3 * 2 ** 20);
  });

  it('rejects a pax size record that is not a decimal number', () => {
    const { blk, typeflag, rawSize, pending } = firstEntry('sp', sparseArgs, sparse10);
    pending.pax.set('size', '0x200');
    expect(() => buildEntry(blk, typeflag, rawSize, pending, 4096, ctx)).toThrow(
      /pax size "0x200" is not a decimal number/,
    );
  });

  it('sizes a pax sparse member whose records lost the real size by its stored size, as Go does', () => {
    const { blk, typeflag, rawSize, pending } = firstEntry('sp', sparseArgs, sparse10);
    pending.pax.delete('GNU.sparse.realsize');
    expect(buildEntry(blk, typeflag, rawSize, pending, 4096, ctx).entry).toMatchObject({
      size: rawSize,
      sparse: true,
    });
  });

  it('names the member as Go does: pax path over the header, the long name over both, then sparse name', () => {
    const { blk, typeflag, rawSize, pending } = firstEntry('sp', sparseArgs, sparse10);
    const nameWith = (records: Record<string, string | null>, longName: string | null = null) => {
      const pax = new Map(pending.pax);
      for (const [k, v] of Object.entries(records)) v === null ? pax.delete(k) : pax.set(k, v);
      return buildEntry(blk, typeflag, rawSize, { ...pending, pax, longName }, 4096, ctx).entry.name;
    };
    expect(nameWith({ path: 'pax' }, 'long')).toBe('sp');
    expect(nameWith({ 'GNU.sparse.name': null })).toMatch(/GNUSparseFile\.\d+\/sp$/);
    expect(nameWith({ 'GNU.sparse.name': null, path: 'pax' })).toBe('pax');
    expect(nameWith({ 'GNU.sparse.name': null, path: 'pax' }, 'long')).toBe('long');
    // Without its version records the member is not sparse, and GNU.sparse.name names nothing.
    expect(nameWith({ 'GNU.sparse.major': null, 'GNU.sparse.minor': null })).toMatch(/GNUSparseFile/);
  });

  it('refuses a header-only member with pax sparse records, as Go does', () => {
    const { blk, rawSize, pending } = firstEntry('sp', sparseArgs, sparse10);
    expect(() => buildEntry(blk, '2', rawSize, pending, 4096, ctx)).toThrow(/type '2' cannot be sparse/);
  });

  it('holds a GNU long link target to maxPathLength as it does names', () => {
    const target = 't'.repeat(150);
    const { blk, typeflag, rawSize, pending } = firstEntry('l', ['--format=gnu'], (path) =>
      symlinkSync(target, path),
    );
    expect(pending.longLink).toBe(target);
    expect(buildEntry(blk, typeflag, rawSize, pending, 150, ctx).entry.linkname).toBe(target);
    const err = (() => {
      try {
        buildEntry(blk, typeflag, rawSize, pending, 149, ctx);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(LimitExceededError);
    expect((err as LimitExceededError).message).toMatch(/link target of 150 characters/);
  });

  it('types the dumpdir member of a GNU incremental archive as a directory', () => {
    const { blk, typeflag, rawSize, pending } = firstEntry('d', ['--format=gnu', '--incremental'], (path) => {
      mkdirSync(path);
      writeFileSync(join(path, 'a'), 'x');
    });
    expect(typeflag).toBe('D');
    expect(buildEntry(blk, typeflag, rawSize, pending, 4096, ctx).entry).toMatchObject({
      name: 'd/',
      type: 'directory',
      mode: 0o755,
    });
  });
});
