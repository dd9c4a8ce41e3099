import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type CompiledSignature, compileSignature, hexProblem, SignatureScanner } from './signatures.js';

/** Deterministic PRNG (mulberry32) so a failure reproduces. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-sig-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const xzHex: string[] = JSON.parse(
  readFileSync(new URL('../../iocs/xz-cve-2024-3094.json', import.meta.url), 'utf8'),
)
  .rules.filter((r: { kind: string }) => r.kind === 'byte-signature')
  .map((r: { hex: string }) => r.hex);

/** Random patterns: literal first and last byte (YARA's own requirement), ~25% `??` inside. */
function randomPatterns(rand: () => number, n: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const len = 3 + Math.floor(rand() * 30);
    const toks: string[] = [];
    for (let k = 0; k < len; k++) {
      const wild = k > 0 && k < len - 1 && rand() < 0.25;
      toks.push(
        wild
          ? '??'
          : Math.floor(rand() * 256)
              .toString(16)
              .padStart(2, '0'),
      );
    }
    out.push(toks.join(rand() < 0.5 ? ' ' : ''));
  }
  return out;
}

/** Concrete bytes for a pattern, wildcards filled at random. */
function instantiate(hex: string, rand: () => number): Buffer {
  const compact = hex.replace(/\s+/g, '');
  const b = Buffer.alloc(compact.length / 2);
  for (let i = 0; i < b.length; i++) {
    const t = compact.slice(i * 2, i * 2 + 2);
    b[i] = t === '??' ? Math.floor(rand() * 256) : Number.parseInt(t, 16);
  }
  return b;
}

function yaraRule(name: string, patterns: string[], condition: string): string {
  const strings = patterns.map(
    (p, i) => `    $s${i} = { ${p.replace(/\s+/g, '').replace(/(..)/g, '$1 ').trim()} }`,
  );
  return `rule ${name} {\n  strings:\n${strings.join('\n')}\n  condition:\n    ${condition}\n}\n`;
}

/** YARA's first offset per string index, per file (yara takes one target: the folder holding them). */
function yaraFirstOffsets(
  rulesFile: string,
  folder: string,
  files: string[],
): Map<string, Map<number, number>> {
  const out = execFileSync('yara', ['-s', rulesFile, folder], { encoding: 'utf8', maxBuffer: 1 << 28 });
  const result = new Map<string, Map<number, number>>(files.map((f) => [f, new Map()]));
  let current: Map<number, number> | undefined;
  for (const line of out.split('\n')) {
    const m = /^0x([0-9a-f]+):\$s(\d+):/.exec(line);
    if (m) {
      const idx = Number(m[2]);
      const off = Number.parseInt(m[1]!, 16);
      if (current && (current.get(idx) ?? Number.POSITIVE_INFINITY) > off) current.set(idx, off);
    } else if (line.trim() !== '') {
      current = result.get(line.slice(line.indexOf(' ') + 1));
    }
  }
  return result;
}

function scan(
  sigs: CompiledSignature[],
  data: Buffer,
  chunking: (remaining: number) => number,
): Map<number, number> {
  const s = new SignatureScanner(sigs);
  for (let i = 0; i < data.length; ) {
    const n = Math.max(1, Math.min(chunking(data.length - i), data.length - i));
    // Copy each chunk so the scanner cannot rely on memory beyond what it was given.
    s.push(Uint8Array.from(data.subarray(i, i + n)));
    i += n;
  }
  return new Map(s.finish().map((h) => [Number(h.ruleId), h.offset]));
}

describe('SignatureScanner against the yara binary', () => {
  const rand = rng(424242);
  const patterns = [...xzHex, ...randomPatterns(rand, 40), '41 41 41 42', '41 ?? 41 ?? 42', '7f 45 4c 46'];
  const sigs = patterns.map((hex, i) => compileSignature(hex, { iocSetId: 'test', ruleId: String(i) }));
  const rulesFile = join(dir, 'oracle.yar');
  writeFileSync(rulesFile, yaraRule('oracle', patterns, 'any of them'));

  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  const files: Array<{ path: string; data: Buffer }> = [];
  for (let f = 0; f < 12; f++) {
    const size = 1 + Math.floor(rand() * 150_000);
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i++) data[i] = Math.floor(rand() * 256);
    // Plant patterns at random offsets, at both ends, and straddling 4 KiB / 64 KiB chunk boundaries.
    for (let k = 0; k < 25; k++) {
      const bytes = instantiate(patterns[Math.floor(rand() * patterns.length)]!, rand);
      if (bytes.length > size) continue;
      const spots = [0, size - bytes.length, Math.floor(rand() * (size - bytes.length + 1))];
      for (const boundary of [4096, 65536]) {
        const at =
          boundary * (1 + Math.floor(rand() * Math.floor(size / boundary))) - Math.floor(bytes.length / 2);
        if (at >= 0 && at + bytes.length <= size) spots.push(at);
      }
      bytes.copy(data, spots[Math.floor(rand() * spots.length)]!);
    }
    if (f === 0) Buffer.from('AAAAB').copy(data, 100); // self-overlapping prefix of 41 41 41 42
    const path = join(dataDir, `f${f}.bin`);
    writeFileSync(path, data);
    files.push({ path, data });
  }
  const oracle = yaraFirstOffsets(
    rulesFile,
    dataDir,
    files.map((f) => f.path),
  );

  it('finds the same first offsets as yara when the file arrives whole', () => {
    for (const f of files) expect(scan(sigs, f.data, (r) => r)).toEqual(oracle.get(f.path));
  });

  it('finds the same first offsets as yara when the file arrives one byte at a time', () => {
    for (const f of files.slice(0, 4)) expect(scan(sigs, f.data, () => 1)).toEqual(oracle.get(f.path));
  });

  it('finds the same first offsets as yara with random, 4 KiB and large random chunk sizes', () => {
    const sizes = rng(7);
    for (const f of files) {
      expect(scan(sigs, f.data, () => 1 + Math.floor(sizes() * 9000))).toEqual(oracle.get(f.path));
      expect(scan(sigs, f.data, () => 4096)).toEqual(oracle.get(f.path));
      // Chunks above the scanner's 16 KiB batching threshold go straight to the boundary logic.
      expect(scan(sigs, f.data, () => 16_384 + Math.floor(sizes() * 50_000))).toEqual(oracle.get(f.path));
    }
  });

  it('planted at least one hit of most patterns, so the comparison means something', () => {
    const seen = new Set<number>();
    for (const m of oracle.values()) for (const k of m.keys()) seen.add(k);
    expect(seen.size).toBeGreaterThan(patterns.length / 2);
  });
});

describe('elfOnly signatures', () => {
  const hex = xzHex[0]!;
  const sig = compileSignature(hex, { iocSetId: 'xz', ruleId: 'prologue', elfOnly: true });
  const body = instantiate(hex, rng(1));
  const elf = Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(300), body]);
  const notElf = Buffer.concat([Buffer.from('#!/bin/sh\n'), Buffer.alloc(298), body]);
  const rulesFile = join(dir, 'elf.yar');
  writeFileSync(rulesFile, yaraRule('elf_only', [hex], 'uint32be(0) == 0x7F454C46 and $s0'));
  writeFileSync(join(dir, 'elf.bin'), elf);
  writeFileSync(join(dir, 'not-elf.bin'), notElf);

  const yaraMatches = (name: string) =>
    execFileSync('yara', [rulesFile, join(dir, name)], { encoding: 'utf8' }).includes('elf_only');
  const ours = (data: Buffer, chunk: number) => {
    const s = new SignatureScanner([sig]);
    for (let i = 0; i < data.length; i += chunk) s.push(data.subarray(i, i + chunk));
    return s.finish();
  };

  it('reports a hit in an ELF file, as yara does, even when the magic arrives byte by byte', () => {
    expect(yaraMatches('elf.bin')).toBe(true);
    const hit = { iocSetId: 'xz', ruleId: 'prologue', offset: 308 };
    expect(ours(elf, 1)).toMatchObject([hit]);
    expect(ours(elf, 1 << 20)).toMatchObject([hit]);
  });

  it('reports nothing for the same bytes in a non-ELF file, as yara does', () => {
    expect(yaraMatches('not-elf.bin')).toBe(false);
    expect(ours(notElf, 1)).toEqual([]);
    expect(ours(notElf, 1 << 20)).toEqual([]);
  });

  it('reports nothing for a file shorter than the ELF magic', () => {
    expect(ours(Buffer.from([0x7f, 0x45]), 1)).toEqual([]);
  });
});

describe('compileSignature', () => {
  it('accepts spaces and mixed case and anchors on the longest literal run', () => {
    const s = compileSignature('48 8D 7c ?? 08 f3 ab 48 8d ?? 24', { iocSetId: 'a', ruleId: 'b' });
    expect(s.hex).toBe('488d7c??08f3ab488d??24');
    expect(s.anchor.toString('hex')).toBe('08f3ab488d');
    expect(s.anchorOffset).toBe(4);
    expect(s.elfOnly).toBe(false);
  });

  it('rejects odd digit counts, bad tokens and all-wildcard patterns', () => {
    expect(hexProblem('488')).toMatch(/even number/);
    expect(hexProblem('4g')).toMatch(/neither a hex byte/);
    expect(hexProblem('?? ??')).toMatch(/at least one literal/);
    expect(hexProblem('')).toMatch(/non-empty/);
    expect(() => compileSignature('zz', { iocSetId: 'a', ruleId: 'b' })).toThrow(/a\/b/);
  });

  it('keeps scanning cheap once every signature is found', () => {
    const s = new SignatureScanner([compileSignature('41', { iocSetId: 'a', ruleId: 'b' })]);
    s.push(Buffer.from('xxA'));
    s.push(Buffer.from('AAAA'));
    expect(s.finish()).toEqual([{ iocSetId: 'a', ruleId: 'b', offset: 2, hex: '41', inElf: false }]);
  });
});
