import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compareDebianVersions, isValidDebianVersion, parseDebianVersion } from './version.js';

/** Real version strings: every Version: in the apt lists (lz4 or plain), else the dpkg status. */
function realVersions(): string[] {
  const texts: string[] = [];
  const lists = '/var/lib/apt/lists';
  if (existsSync(lists)) {
    for (const f of readdirSync(lists).filter((n) => n.includes('_Packages'))) {
      // apt-helper cat-file decompresses whatever apt stored (.lz4, .gz, .xz, plain).
      texts.push(
        execFileSync('/usr/lib/apt/apt-helper', ['cat-file', `${lists}/${f}`], {
          maxBuffer: 1 << 30,
          encoding: 'utf8',
        }),
      );
    }
  }
  if (texts.length === 0) texts.push(readFileSync('/var/lib/dpkg/status', 'utf8'));
  const out = new Set<string>();
  for (const t of texts) for (const m of t.matchAll(/^Version: (\S+)$/gm)) out.add(m[1]!);
  return [...out];
}

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

type Rel = 'lt' | 'eq' | 'gt';
const rel = (c: number): Rel => (c < 0 ? 'lt' : c > 0 ? 'gt' : 'eq');

/** Ask dpkg about many (a, rel, b) triples; one `sh` per worker, one dpkg call per line. */
async function dpkgAgrees(triples: Array<[string, Rel, string]>, workers = 4): Promise<boolean[]> {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const size = Math.ceil(triples.length / workers);
  const parts = await Promise.all(
    Array.from({ length: workers }, (_, w) => {
      const slice = triples.slice(w * size, (w + 1) * size);
      const script = slice
        .map(([a, r, b]) => `dpkg --compare-versions ${q(a)} ${r} ${q(b)} 2>/dev/null && echo 1 || echo 0`)
        .join('\n');
      return new Promise<boolean[]>((resolve, reject) => {
        // The script goes to sh's stdin: thousands of lines exceed the argv size limit.
        const child = spawn('sh', ['-s']);
        let out = '';
        child.stdout.on('data', (d) => {
          out += d;
        });
        child.on('error', reject);
        child.on('close', () =>
          resolve(
            out
              .split('\n')
              .filter(Boolean)
              .map((l) => l === '1'),
          ),
        );
        child.stdin.end(`${script}\n`);
      });
    }),
  );
  return parts.flat();
}

describe('parseDebianVersion', () => {
  it('splits epoch, upstream and revision at the first colon and last hyphen', () => {
    expect(parseDebianVersion('1:2.38.1-5+deb12u3')).toEqual({
      epoch: 1,
      upstream: '2.38.1',
      revision: '5+deb12u3',
    });
    expect(parseDebianVersion('5.6.1+really5.4.5-1')).toEqual({
      epoch: 0,
      upstream: '5.6.1+really5.4.5',
      revision: '1',
    });
    expect(parseDebianVersion('1.2-3-4')).toEqual({ epoch: 0, upstream: '1.2-3', revision: '4' });
    expect(parseDebianVersion('2.6.1')).toEqual({ epoch: 0, upstream: '2.6.1', revision: '' });
  });

  it('rejects empty strings, whitespace and non-numeric epochs', () => {
    expect(() => parseDebianVersion('')).toThrow(TypeError);
    expect(() => parseDebianVersion('1.0 2')).toThrow(TypeError);
    expect(() => parseDebianVersion('a:1.0')).toThrow(TypeError);
    expect(isValidDebianVersion('abc')).toBe(false);
    expect(isValidDebianVersion('5.5.1alpha-0.1')).toBe(true);
  });
});

describe('compareDebianVersions', () => {
  it('orders the xz versions the way the Debian advisory needs', () => {
    expect(compareDebianVersions('5.6.1+really5.4.5-1', '5.6.1-1')).toBeGreaterThan(0);
    expect(compareDebianVersions('5.5.1alpha-0.1', '5.6.0-0.1')).toBeLessThan(0);
    expect(compareDebianVersions('5.4.5-0.2', '5.5.1alpha-0.1')).toBeLessThan(0);
  });

  it('sorts ~ before everything, even the end of the string', () => {
    expect(compareDebianVersions('1.0~rc1', '1.0')).toBeLessThan(0);
    expect(compareDebianVersions('1.0~~', '1.0~')).toBeLessThan(0);
    expect(compareDebianVersions('1.0-1~bpo12+1', '1.0-1')).toBeLessThan(0);
  });

  it('sorts letters before other characters and lets the epoch dominate', () => {
    expect(compareDebianVersions('1.0a', '1.0+')).toBeLessThan(0);
    expect(compareDebianVersions('1:0.1', '9.9')).toBeGreaterThan(0);
    expect(compareDebianVersions('0:1.0', '1.0')).toBe(0);
    expect(compareDebianVersions('1.001', '1.1')).toBe(0);
    expect(compareDebianVersions('1.0', '1.0-0')).toBe(0);
  });

  it("agrees with dpkg --compare-versions on every version in the machine's apt lists", async () => {
    // Sorted by our order, each version is checked against its neighbour: dpkg agreeing on every
    // adjacent pair means the whole list is in dpkg's order. Random pairs check far-apart versions too.
    const versions = realVersions();
    expect(versions.length).toBeGreaterThan(500);
    const rand = rng(20261128);
    versions.push(
      '5.6.1+really5.4.5-1',
      '5.6.1-1',
      '5.5.1alpha-0.1',
      '1.0~rc1',
      '1.0',
      '1.0a',
      '1.0+',
      '1:0.1',
    );
    versions.sort(compareDebianVersions);
    const triples: Array<[string, Rel, string]> = [];
    for (let i = 1; i < versions.length; i++) {
      const a = versions[i - 1]!;
      const b = versions[i]!;
      triples.push([a, rel(compareDebianVersions(a, b)), b]);
    }
    for (let i = 0; i < 3000; i++) {
      const a = versions[Math.floor(rand() * versions.length)]!;
      const b = versions[Math.floor(rand() * versions.length)]!;
      triples.push([a, rel(compareDebianVersions(a, b)), b]);
    }
    const answers = await dpkgAgrees(triples);
    expect(answers).toHaveLength(triples.length);
    const disagreements = triples.filter((_, i) => !answers[i]).slice(0, 10);
    expect(disagreements).toEqual([]);
    // About 25 000 dpkg runs: 17 s on an idle 2-core machine, more beside the rest of the suite.
  }, 180_000);
});

describe('compareDebianVersions as an order', () => {
  const part = fc.string({
    unit: fc.constantFrom('0', '1', '9', 'a', 'z', '.', '+', '~'),
    minLength: 0,
    maxLength: 6,
  });
  const version = fc
    .tuple(fc.nat(3), fc.nat(99), part, fc.option(part, { nil: undefined }))
    .map(([e, n, up, rev]) => `${e > 0 ? `${e}:` : ''}${n}${up}${rev !== undefined ? `-${rev}1` : ''}`);

  it('is antisymmetric and transitive on generated versions', () => {
    fc.assert(
      fc.property(version, version, version, (a, b, c) => {
        expect(Math.sign(compareDebianVersions(a, b))).toBe(-Math.sign(compareDebianVersions(b, a)));
        if (compareDebianVersions(a, b) <= 0 && compareDebianVersions(b, c) <= 0) {
          expect(compareDebianVersions(a, c)).toBeLessThanOrEqual(0);
        }
      }),
    );
  });
});
