import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CorruptInputError, LimitExceededError } from '../core/errors.js';
import { FileHasher } from './file-hasher.js';
import { DEFAULT_LIMITS } from './limits.js';
import { type TarEntry, TarParser } from './tar.js';
import {
  coreutilsHashes,
  END_OF_ARCHIVE,
  paxMember,
  rawHeader,
  rawMember,
  withChecksum,
} from './test-fixtures/layers.js';

interface Seen {
  entry: TarEntry;
  data: string;
}

/** Parses `tar` fed in `chunk`-byte pieces and returns every entry with its content. */
function parse(tar: Buffer, chunk = tar.length, limits = DEFAULT_LIMITS): Seen[] {
  const seen: Seen[] = [];
  const parser = new TarParser(
    {
      onEntry(entry) {
        const parts: Buffer[] = [];
        return {
          write: (c) => parts.push(Buffer.from(c)),
          end: () => seen.push({ entry, data: Buffer.concat(parts).toString('latin1') }),
        };
      },
    },
    limits,
  );
  for (let i = 0; i < tar.length; i += chunk) parser.push(tar.subarray(i, i + chunk));
  parser.end();
  return seen;
}

/** What parsing `tar` in blocks under `limits` throws. */
function parseError(tar: Buffer, limits: typeof DEFAULT_LIMITS): unknown {
  try {
    parse(tar, 512, limits);
  } catch (err) {
    return err;
  }
  throw new Error('the archive parsed without an error');
}

/**
 * Runs `check` on a 4 MiB file with 30 runs of data among holes and GNU tar's old-GNU sparse
 * archive of it, whose map of 31 runs needs two extension blocks after the header's 4.
 */
function withHoles(check: (path: string, tar: Buffer) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-sparse-'));
  try {
    const path = join(dir, 'holes');
    execFileSync('truncate', ['-s', '4M', path]);
    for (let i = 0; i < 30; i++) {
      execFileSync('dd', [`of=${path}`, 'bs=1', `seek=${i * 131072 + 7}`, 'conv=notrunc'], {
        input: `segment-${i}`,
        stdio: ['pipe', 'ignore', 'ignore'],
      });
    }
    const tar = execFileSync('tar', ['--format=gnu', '--sparse', '-C', dir, '-cf', '-', 'holes']);
    expect(tar.length).toBeLessThan(512 * 1024); // really stored sparse, not 4 MiB
    check(path, tar);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const file = (name: string, body: string, extra: Partial<Parameters<typeof rawHeader>[0]> = {}) =>
  rawMember(rawHeader({ name, size: Buffer.byteLength(body), ...extra }), body);

describe('TarParser', () => {
  it('reads GNU long names and long link targets from L and K records', () => {
    const long = `usr/lib/${'n'.repeat(300)}`;
    const target = `usr/lib/${'t'.repeat(200)}`;
    const tar = Buffer.concat([
      rawMember(rawHeader({ name: '././@LongLink', size: long.length + 1, typeflag: 'L' }), `${long}\0`),
      rawMember(rawHeader({ name: '././@LongLink', size: target.length + 1, typeflag: 'K' }), `${target}\0`),
      rawMember(rawHeader({ name: 'short', size: 0, typeflag: '2', linkname: 'short-target' })),
      file('after', 'x'),
      END_OF_ARCHIVE,
    ]);
    const seen = parse(tar, 1);
    expect(seen.map((s) => [s.entry.name, s.entry.type, s.entry.linkname])).toEqual([
      [long, 'symlink', target],
      ['after', 'file', ''],
    ]);
  });

  it('joins the ustar prefix and name fields', () => {
    const tar = Buffer.concat([file('name.txt', 'x', { prefix: 'some/prefix' }), END_OF_ARCHIVE]);
    expect(parse(tar)[0]?.entry.name).toBe('some/prefix/name.txt');
  });

  it('reads a GNU base-256 size field', () => {
    const header = rawHeader({ name: 'big', size: 0 });
    header.fill(0, 124, 136);
    header[124] = 0x80;
    header[135] = 5;
    const tar = Buffer.concat([rawMember(withChecksum(header), 'hello'), END_OF_ARCHIVE]);
    expect(parse(tar)[0]?.data).toBe('hello');
  });

  it('reads a v7 header without the ustar magic', () => {
    const header = rawHeader({ name: 'old', size: 2 });
    header.fill(0, 257, 265);
    const tar = Buffer.concat([rawMember(withChecksum(header), 'v7'), END_OF_ARCHIVE]);
    expect(parse(tar)[0]?.data).toBe('v7');
  });

  it('ignores the size field of header-only entries, as Go archive/tar does', () => {
    const tar = Buffer.concat([
      rawHeader({ name: 'link', size: 1024, typeflag: '2', linkname: 'x' }),
      file('next', 'still aligned'),
      END_OF_ARCHIVE,
    ]);
    expect(parse(tar).map((s) => s.data)).toEqual(['', 'still aligned']);
  });

  it('ignores whatever follows the two zero blocks that end the archive', () => {
    const tar = Buffer.concat([file('a', '1'), END_OF_ARCHIVE, Buffer.from('junk'.repeat(300))]);
    expect(parse(tar).map((s) => s.entry.name)).toEqual(['a']);
  });

  it('refuses a member hidden after a lone zero block, in any chunking', () => {
    const tar = Buffer.concat([file('a', '1'), Buffer.alloc(512), file('hidden', 'x'), END_OF_ARCHIVE]);
    for (const chunk of [tar.length, 512, 7, 1]) {
      expect(() => parse(tar, chunk)).toThrow(/lone zero block at byte 1024 is followed by more data/);
    }
  });

  it('ends cleanly at a lone zero block followed by nothing, but not by part of a block', () => {
    const lone = Buffer.concat([file('a', '1'), Buffer.alloc(512)]);
    expect(parse(lone, 7).map((s) => s.entry.name)).toEqual(['a']);
    const partial = Buffer.concat([lone, Buffer.alloc(100)]);
    expect(() => parse(partial, 7)).toThrow(/truncated.*after a lone zero block \(100 of 512 bytes\)/);
  });

  it('reports a stream that ends inside a member as truncated', () => {
    const tar = file('a', 'x'.repeat(2000)).subarray(0, 1500);
    expect(() => parse(tar)).toThrow(/truncated.*inside a member/);
  });

  it('rejects a pax record whose length does not match', () => {
    const bad = rawMember(rawHeader({ name: 'PaxHeader', size: 12, typeflag: 'x' }), '99 path=abc\n');
    expect(() => parse(Buffer.concat([bad, file('a', '1'), END_OF_ARCHIVE]))).toThrow(CorruptInputError);
  });

  it('rejects a size field that is not octal', () => {
    const header = rawHeader({ name: 'a', size: 1 });
    header.write('0000000009x\0', 124, 'latin1');
    expect(() => parse(Buffer.concat([withChecksum(header), END_OF_ARCHIVE]))).toThrow(/size field/);
  });

  it('bounds GNU long names by maxHeaderBytes before reading them', () => {
    const tar = Buffer.concat([
      rawHeader({ name: '././@LongLink', size: 5_000_000, typeflag: 'L' }),
      Buffer.alloc(1024),
    ]);
    const err = parseError(tar, { ...DEFAULT_LIMITS, maxHeaderBytes: 4096 });
    expect(err).toBeInstanceOf(LimitExceededError);
  });

  it('applies pax path and linkpath to the next entry only', () => {
    const tar = Buffer.concat([
      paxMember({ path: 'pax/name', linkpath: 'pax/target' }),
      rawHeader({ name: 'ignored', size: 0, typeflag: '1', linkname: 'ignored' }),
      file('plain', 'p'),
      END_OF_ARCHIVE,
    ]);
    expect(parse(tar).map((s) => [s.entry.name, s.entry.linkname])).toEqual([
      ['pax/name', 'pax/target'],
      ['plain', ''],
    ]);
  });

  it('reconstructs an old-GNU sparse file whose map needs extension blocks', () => {
    withHoles((path, tar) => {
      const hasher = new FileHasher();
      const parser = new TarParser(
        { onEntry: () => ({ write: (c) => hasher.update(c), end: () => {} }) },
        DEFAULT_LIMITS,
      );
      for (let i = 0; i < tar.length; i += 333) parser.push(tar.subarray(i, i + 333));
      parser.end();
      expect(hasher.digest()).toEqual(coreutilsHashes(path));
    });
  });

  it('reports the size an old-GNU sparse map reaches when it passes maxHeaderBytes', () => {
    withHoles((_path, tar) => {
      // 4 runs in the header, 21 in the first extension block: the second block's 21 slots
      // would take the map to 46 runs of 24 bytes.
      const err = parseError(tar, { ...DEFAULT_LIMITS, maxHeaderBytes: 1000 });
      expect(err).toBeInstanceOf(LimitExceededError);
      expect((err as LimitExceededError).limit).toBe('maxHeaderBytes');
      expect((err as LimitExceededError).value).toBe(46 * 24);
      expect((err as Error).message).toMatch(/reaches 1104 bytes, more than maxHeaderBytes \(1000\)/);
    });
  });

  it('counts the holes a sparse member expands into against maxUncompressedBytes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-sparse-'));
    try {
      // 64 MiB of holes around a few bytes: a tiny archive that would hand 64 MiB to a hasher.
      const path = join(dir, 'xz-5.6.0.tar.gz');
      execFileSync('truncate', ['-s', '64M', path]);
      execFileSync('dd', [`of=${path}`, 'bs=1', 'seek=1000', 'conv=notrunc'], {
        input: 'data',
        stdio: ['pipe', 'ignore', 'ignore'],
      });
      const tar = execFileSync('tar', ['--format=gnu', '--sparse', '-C', dir, '-cf', '-', 'xz-5.6.0.tar.gz']);
      expect(tar.length).toBeLessThan(64 * 1024);
      const limits = { ...DEFAULT_LIMITS, maxUncompressedBytes: 8 * 1024 * 1024 };
      const parser = new TarParser({ onEntry: () => ({ write: () => {}, end: () => {} }) }, limits);
      let error: unknown;
      try {
        parser.push(tar);
        parser.end();
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(LimitExceededError);
      expect((error as LimitExceededError).limit).toBe('maxUncompressedBytes');
      // A member nobody reads expands into nothing and costs nothing.
      const skipping = new TarParser({ onEntry: () => null }, limits);
      skipping.push(tar);
      skipping.end();
      expect(skipping.entryCount).toBe(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

/** Whether Go's archive/tar, through `umoci unpack`, reads `tar` as a layer to its end. */
function goUnpacks(tar: Buffer): boolean {
  const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-umoci-'));
  try {
    writeFileSync(join(dir, 'layer.tar'), tar);
    const umoci = (...args: string[]) => spawnSync('umoci', args, { cwd: dir, encoding: 'utf8' });
    for (const step of [
      ['init', '--layout', 'oci'],
      ['new', '--image', 'oci:t'],
      ['raw', 'add-layer', '--image', 'oci:t', 'layer.tar'],
    ]) {
      const r = umoci(...step);
      if (r.error !== undefined)
        throw new Error(`umoci could not run (apt-get install umoci): ${r.error.message}`);
      if (r.status !== 0) throw new Error(`umoci ${step.join(' ')} failed: ${r.stderr}`);
    }
    return umoci('unpack', '--rootless', '--image', 'oci:t', 'bundle').status === 0;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Whether our parser reads `tar` to its end (false: a CorruptInputError). */
function weParse(tar: Buffer): boolean {
  try {
    parse(tar, 512);
    return true;
  } catch (err) {
    if (err instanceof CorruptInputError) return false;
    throw err;
  }
}

// Docker, containerd and Podman apply layers with Go's archive/tar; umoci unpacks with it too.
describe("the end of an archive, as Go's archive/tar reads it (umoci unpack)", () => {
  const zero = Buffer.alloc(512);
  const cases: Record<string, Buffer> = {
    'two zero blocks': Buffer.concat([file('a', '1'), zero, zero]),
    'a lone zero block, then nothing': Buffer.concat([file('a', '1'), zero]),
    'a lone zero block, then 100 zero bytes': Buffer.concat([file('a', '1'), zero, Buffer.alloc(100)]),
    'a lone zero block, then a member': Buffer.concat([
      file('a', '1'),
      zero,
      file('hidden', 'x'),
      zero,
      zero,
    ]),
    'no end-of-archive marker': file('a', '1'),
    "an end inside the last member's padding": file('a', '1').subarray(0, 600),
    "an end inside a member's data": file('a', 'x'.repeat(600)).subarray(0, 1000),
    'an end inside a header': Buffer.concat([file('a', '1'), file('b', '2').subarray(0, 100)]),
    'a pax header and then nothing': Buffer.concat([file('a', '1'), paxMember({ path: 'b' })]),
    'nothing at all': Buffer.alloc(0),
  };
  for (const [name, tar] of Object.entries(cases)) {
    it(`agrees on ${name}`, () => {
      expect(weParse(tar)).toBe(goUnpacks(tar));
    });
  }
  it('is not agreement by accident: Go refuses the hidden member and a cut member', () => {
    expect(goUnpacks(cases['a lone zero block, then a member'] as Buffer)).toBe(false);
    expect(goUnpacks(cases["an end inside a member's data"] as Buffer)).toBe(false);
    expect(goUnpacks(cases['no end-of-archive marker'] as Buffer)).toBe(true);
  });
});
