/**
 * The real-world fixtures (src/analyzer/fixtures/README.md) through the whole streaming pass: archived
 * by GNU tar, compressed by the gzip and zstd CLIs, fed to analyzeLayer whole and one byte at a time.
 * The parser tests read these files as strings; here they must come out the same after being cut at
 * every byte by the decompressor and the tar parser, and the dpkg database must read as dpkg-query
 * reads it.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseMd5sums } from './dpkg/md5sums.js';
import { parseDpkgStatus } from './dpkg/status.js';
import type { LayerFacts } from './facts.js';
import { analyzeLayer } from './layer-stream.js';
import { parseOsRelease } from './os-release.js';
import { chunked, gzipCli, tarCli, testRules, zstdCli } from './test-fixtures/layers.js';

const FIXTURES = new URL('./fixtures/', import.meta.url);
const fixture = (rel: string) => readFileSync(new URL(rel, FIXTURES), 'utf8');
const rules = testRules(() => false);

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

/** A rootfs holding `files` (path → content) and `links` (path → symlink target). */
function tree(files: Record<string, string>, links: Record<string, string> = {}): string {
  const root = mkdtempSync(join(tmpdir(), 'hubcrawl-real-'));
  roots.push(root);
  for (const [rel, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), content);
  }
  for (const [rel, target] of Object.entries(links)) symlinkSync(target, join(root, rel));
  return root;
}

/** The layer's bytes for each compression the analyzer reads. */
function layers(root: string): Record<string, Buffer> {
  const tar = tarCli(root, 'gnu');
  return { tar, gzip: gzipCli(tar), zstd: zstdCli(tar) };
}

/** The facts of `data` read whole and in 1-byte chunks; both must agree before either is checked. */
async function analyzeBothWays(data: Buffer): Promise<LayerFacts> {
  const whole = await analyzeLayer(chunked(data), { rules });
  const byteByByte = await analyzeLayer(chunked(data, 1), { rules });
  expect(byteByByte).toEqual(whole);
  return whole;
}

const sortByName = <T extends { name: string }>(xs: T[]) =>
  [...xs].sort((a, b) => a.name.localeCompare(b.name));

describe('a Debian rootfs of real files through analyzeLayer', () => {
  const status = fixture('dpkg/status-debian-bookworm');
  const md5sums = fixture('dpkg/liblzma5:amd64.md5sums');
  const osRelease = fixture('os-release/debian-12');
  const debianVersion = fixture('os-release/debian_version');
  let bytes: Record<string, Buffer>;

  beforeAll(() => {
    bytes = layers(
      tree(
        {
          'var/lib/dpkg/status': status,
          'var/lib/dpkg/info/liblzma5:amd64.md5sums': md5sums,
          'usr/lib/os-release': osRelease,
          'etc/debian_version': debianVersion,
        },
        // As on Debian: /etc/os-release is a symlink, recorded as a link, its text read from /usr/lib.
        { 'etc/os-release': '../usr/lib/os-release' },
      ),
    );
  });

  for (const compression of ['tar', 'gzip', 'zstd'] as const) {
    it(`reads the dpkg database as dpkg-query does (${compression})`, async () => {
      const facts = await analyzeBothWays(bytes[compression] as Buffer);
      const admin = mkdtempSync(join(tmpdir(), 'hubcrawl-admindir-'));
      roots.push(admin);
      mkdirSync(join(admin, 'updates'));
      writeFileSync(join(admin, 'status'), status);
      // dpkg-query's own ${Field} format syntax, not a template literal.
      const fields = ['Package', 'Version', 'Architecture', 'source:Package', 'Status'];
      const format = `${fields.map((f) => `$\{${f}}`).join('\\t')}\\n`;
      const oracle = execFileSync('dpkg-query', [`--admindir=${admin}`, '-W', '-f', format], {
        encoding: 'utf8',
      })
        .trim()
        .split('\n')
        .map((line) => {
          const [name, version, architecture, source, st] = line.split('\t') as [
            string,
            string,
            string,
            string,
            string,
          ];
          return { name, version, architecture, source, status: st };
        });
      expect(oracle.length).toBeGreaterThan(100);
      const ours = facts.packages.map((p) => ({
        name: p.name,
        version: p.version,
        architecture: p.architecture,
        // dpkg-query names the package itself when a paragraph has no Source field.
        source: p.source ?? p.name,
        status: p.status,
      }));
      expect(sortByName(ours)).toEqual(sortByName(oracle));
      expect(new Set(facts.packages.map((p) => p.statusFile))).toEqual(new Set(['/var/lib/dpkg/status']));
      expect(facts.packages.find((p) => p.name === 'liblzma5')).toMatchObject({ source: 'xz-utils' });
    });
  }

  it('keeps every md5sums line and the os-release files as their parsers read them', async () => {
    const facts = await analyzeBothWays(bytes.zstd as Buffer);
    const info = '/var/lib/dpkg/info/liblzma5:amd64.md5sums';
    expect(facts.md5sums).toEqual(parseMd5sums(md5sums, info));
    // One fact per line of the list.
    expect(facts.md5sums).toHaveLength(md5sums.trim().split('\n').length);
    expect(facts.osRelease).toEqual(
      expect.arrayContaining([
        parseOsRelease(osRelease, '/usr/lib/os-release'),
        parseOsRelease(debianVersion, '/etc/debian_version'),
      ]),
    );
    expect(facts.osRelease).toHaveLength(2);
    expect(facts.osRelease.find((o) => o.path === '/usr/lib/os-release')?.fields.ID).toBe('debian');
  });
});

describe('a distroless status.d through analyzeLayer', () => {
  it('reads each package file and its md5sums list, whole and byte by byte', async () => {
    const libssl3 = fixture('status.d/libssl3');
    const tzdata = fixture('status.d/tzdata');
    const md5sums = fixture('dpkg/liblzma5:amd64.md5sums');
    const bytes = layers(
      tree({
        'var/lib/dpkg/status.d/libssl3': libssl3,
        'var/lib/dpkg/status.d/tzdata': tzdata,
        'var/lib/dpkg/status.d/liblzma5.md5sums': md5sums,
        // Deeper than status.d/<file>: not a status file, not parsed.
        'var/lib/dpkg/status.d/nested/other': 'Package: not-this-one\nVersion: 1\n',
      }),
    );
    for (const data of Object.values(bytes)) {
      const facts = await analyzeBothWays(data);
      expect(sortByName(facts.packages)).toEqual(
        sortByName([
          ...parseDpkgStatus(libssl3, '/var/lib/dpkg/status.d/libssl3'),
          ...parseDpkgStatus(tzdata, '/var/lib/dpkg/status.d/tzdata'),
        ]),
      );
      expect(facts.packages.map((p) => p.name).sort()).toEqual(['libssl3', 'tzdata']);
      expect(facts.packages.every((p) => p.status === null)).toBe(true);
      expect(facts.md5sums).toEqual(parseMd5sums(md5sums, '/var/lib/dpkg/status.d/liblzma5.md5sums'));
      expect(new Set(facts.md5sums.map((m) => m.package))).toEqual(new Set(['liblzma5']));
    }
  });
});

describe('os-release files of other distributions through analyzeLayer', () => {
  for (const [name, id] of [
    ['ubuntu-24.04', 'ubuntu'],
    ['kali-rolling', 'kali'],
    ['alpine-3.19', 'alpine'],
  ] as const) {
    it(`reads ${name}'s /etc/os-release whole and byte by byte`, async () => {
      const text = fixture(`os-release/${name}`);
      const facts = await analyzeBothWays(layers(tree({ 'etc/os-release': text })).gzip as Buffer);
      expect(facts.osRelease).toEqual([parseOsRelease(text, '/etc/os-release')]);
      expect(facts.osRelease[0]?.fields.ID).toBe(id);
    });
  }
});
