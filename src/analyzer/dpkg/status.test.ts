import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { importable, runInLimitedHeap } from '../test-fixtures/heap-limited.js';
import { controlParagraphs, isPackageInstalled, parseControlParagraphs, parseDpkgStatus } from './status.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');
const STATUS = '/var/lib/dpkg/status';

describe('controlParagraphs', () => {
  it('hands out one paragraph at a time, as parseControlParagraphs reads them all', () => {
    const text = fixture('dpkg/status-debian-bookworm');
    const paragraphs = controlParagraphs(text);
    expect(paragraphs.next().value?.get('package')).toBe(text.match(/^Package: (.*)$/m)?.[1]);
    expect([...controlParagraphs('Package: a\r\nVersion: 1\r\n\r\nPackage: b\nVersion: 2')]).toEqual([
      new Map([
        ['package', 'a'],
        ['version', '1'],
      ]),
      new Map([
        ['package', 'b'],
        ['version', '2'],
      ]),
    ]);
  });
});

describe('controlParagraphs keeping some fields', () => {
  it('reads past the others and their continuation lines, and skips a paragraph left with none', () => {
    const text =
      'Package: a\nDescription: x\n more\nVersion: 1\n\nDescription: y\n\nPackage: b\nPackage: c\n';
    expect([...controlParagraphs(text, new Set(['version']))]).toEqual([
      new Map([
        ['package', 'a'],
        ['version', '1'],
      ]),
      new Map([['package', 'b']]),
      new Map([['package', 'c']]),
    ]);
  });

  it('gives every paragraph as it is read whole, less the other fields, less those left empty', () => {
    const name = fc.constantFrom(
      'Package',
      'package',
      'PACKAGE',
      'Version',
      'Status',
      'Source',
      'Description',
      'X-Y',
      ' Version',
    );
    const line = fc.oneof(
      {
        weight: 4,
        arbitrary: fc
          .tuple(name, fc.constantFrom(':', ' :', ': '), fc.constantFrom('', 'v', ' 1 ', 'a: b'))
          .map((p) => p.join('')),
      },
      fc.constantFrom('', '', '\r', ' more', '\tmore', ' ', ' \r', '#c', 'junk', ':x'),
    );
    const fields = fc
      .subarray(['package', 'version', 'status', 'source', 'description', 'x-y'])
      .map((f) => new Set(f));
    fc.assert(
      fc.property(fc.array(line, { maxLength: 30 }), fields, (lines, kept) => {
        const text = lines.join('\n');
        const expected = parseControlParagraphs(text)
          .map((p) => new Map([...p].filter(([key]) => key === 'package' || kept.has(key))))
          .filter((p) => p.size > 0);
        expect([...controlParagraphs(text, kept)]).toEqual(expected);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('parseDpkgStatus', () => {
  it('reads every paragraph of a real Debian 12 status file', () => {
    const text = fixture('dpkg/status-debian-bookworm');
    const pkgs = parseDpkgStatus(text, STATUS);
    expect(pkgs).toHaveLength(text.match(/^Package: /gm)!.length);
    expect(pkgs.find((p) => p.name === 'liblzma5')).toEqual({
      name: 'liblzma5',
      version: '5.4.1-1',
      architecture: 'amd64',
      source: 'xz-utils',
      status: 'install ok installed',
      statusFile: STATUS,
    });
    expect(pkgs.every((p) => p.status === 'install ok installed' && p.statusFile === STATUS)).toBe(true);
  });

  it('keeps only the source name when the Source field carries a version in parentheses', () => {
    const pkgs = parseDpkgStatus(fixture('dpkg/status-debian-bookworm'), STATUS);
    const bash = pkgs.find((p) => p.name === 'bash')!;
    expect(bash.source).toBe('bash');
    expect(pkgs.filter((p) => p.source?.includes('('))).toEqual([]);
    expect(pkgs.find((p) => p.name === 'libc6')!.source).toBe('glibc');
  });

  it('keeps epochs in the version string', () => {
    const pkgs = parseDpkgStatus(fixture('dpkg/status-debian-bookworm'), STATUS);
    expect(pkgs.some((p) => /^\d+:/.test(p.version))).toBe(true);
  });

  it('parses a distroless status.d file that has no Status field', () => {
    const [pkg, ...rest] = parseDpkgStatus(fixture('status.d/libssl3'), '/var/lib/dpkg/status.d/libssl3');
    expect(rest).toEqual([]);
    expect(pkg).toEqual({
      name: 'libssl3',
      version: '3.0.15-1~deb12u1',
      architecture: 'amd64',
      source: 'openssl',
      status: null,
      statusFile: '/var/lib/dpkg/status.d/libssl3',
    });
    expect(
      parseDpkgStatus(fixture('status.d/tzdata'), '/var/lib/dpkg/status.d/tzdata')[0]!.source,
    ).toBeNull();
  });

  it('gives the same packages for CRLF line endings', () => {
    const text = fixture('dpkg/status-debian-bookworm');
    expect(parseDpkgStatus(text.replace(/\n/g, '\r\n'), STATUS)).toEqual(parseDpkgStatus(text, STATUS));
  });

  it('skips paragraphs without Package or Version and junk lines instead of failing', () => {
    const text = [
      'Package: gone',
      'Status: purge ok not-installed',
      'Architecture: amd64',
      '',
      'this line is not a field',
      ' orphan continuation after junk is ignored',
      'Package: ok',
      'Version: 1.0',
      '',
      '',
      'Version: 2.0',
      'Architecture: all',
      '',
    ].join('\n');
    expect(parseDpkgStatus(text, STATUS).map((p) => `${p.name}=${p.version}`)).toEqual(['ok=1.0']);
    expect(parseDpkgStatus('', STATUS)).toEqual([]);
    expect(parseDpkgStatus('\u0000\u0001 garbage:\n\n:::', STATUS)).toEqual([]);
  });

  it('continues the field above across a line holding only whitespace, as dpkg does', () => {
    for (const blank of [' ', '\t', ' \t ', '\f', '\v', ' \n\t']) {
      const text = `Package: liblzma5\nStatus: install ok installed\n${blank}\nArchitecture: amd64\nVersion: 5.6.1-1\n`;
      expect(parseControlParagraphs(text), JSON.stringify(blank)).toEqual([
        new Map([
          ['package', 'liblzma5'],
          ['status', 'install ok installed'],
          ['architecture', 'amd64'],
          ['version', '5.6.1-1'],
        ]),
      ]);
    }
    const [p] = parseControlParagraphs('Package: x\nDescription: short\n one\n \n two\nVersion: 1\n \n');
    expect(p!.get('description')).toBe('short\none\n\ntwo');
    expect(p!.get('version')).toBe('1');
  });

  it('starts a new paragraph at a repeated Package field, which dpkg refuses, so neither package is lost', () => {
    for (const between of ['', ' \n']) {
      const text = `Package: liblzma5\nVersion: 5.6.1-1\n${between}Package: zz\nVersion: 1\n`;
      expect(parseDpkgStatus(text, STATUS).map((p) => `${p.name}=${p.version}`)).toEqual([
        'liblzma5=5.6.1-1',
        'zz=1',
      ]);
    }
  });

  it('treats field names case-insensitively and joins continuation lines', () => {
    const [p] = parseControlParagraphs('PACKAGE: x\nversion: 1\nDescription: short\n long line one\n .\n');
    expect(p!.get('package')).toBe('x');
    expect(p!.get('description')).toBe('short\nlong line one\n.');
  });
});

describe('parseDpkgStatus on a crafted database', () => {
  it('parses a field of 30 million whitespace continuation lines in a 256 MiB heap', () => {
    // 60 MiB of text (61 KB gzipped), under maxCaptureBytes: grown a line at a time, the value held a
    // cons string per line, over 900 MiB, and the process died out of heap.
    const script = [
      `import { parseDpkgStatus } from ${importable('./status.ts', import.meta.url)};`,
      `const text = 'Package: liblzma5\\nVersion: 5.6.1-1\\nDescription: x\\n' + ' \\n'.repeat(30_000_000);`,
      `const [p] = parseDpkgStatus(text, '${STATUS}');`,
      "process.stdout.write(p.name + '=' + p.version);",
    ];
    const run = runInLimitedHeap(256, script);
    expect(run.stderr).not.toMatch(/heap/i);
    expect(run.stdout).toBe('liblzma5=5.6.1-1');
  });

  it('reads a paragraph of 6 million field names it does not read in a 256 MiB heap', () => {
    // 63 MiB of text (13 MB gzipped), under maxCaptureBytes: every field was kept in the paragraph's Map,
    // 2.7 GiB RSS, and the process died out of heap.
    const script = [
      `import { parseDpkgStatus } from ${importable('./status.ts', import.meta.url)};`,
      // Built 10 000 names at a time, so that the text, not its making, is what the heap holds.
      "const groups = Array.from({ length: 600 }, (_, g) => Array.from({ length: 10_000 }, (_, i) => 'x' + (g * 10_000 + i).toString(16) + ': \\n').join(''));",
      `const text = 'Package: liblzma5\\n' + groups.join('') + 'Version: 5.6.1-1\\n';`,
      `const [p] = parseDpkgStatus(text, '${STATUS}');`,
      "process.stdout.write(p.name + '=' + p.version);",
    ];
    const run = runInLimitedHeap(256, script);
    expect(run.stderr).not.toMatch(/heap/i);
    expect(run.stdout).toBe('liblzma5=5.6.1-1');
  });
});

describe('isPackageInstalled', () => {
  const base = { name: 'x', version: '1', architecture: null, source: null, statusFile: STATUS };

  it('counts config-files and not-installed entries as absent, status.d entries as present', () => {
    expect(isPackageInstalled({ ...base, status: 'install ok installed' })).toBe(true);
    expect(isPackageInstalled({ ...base, status: 'install ok half-configured' })).toBe(true);
    expect(isPackageInstalled({ ...base, status: 'deinstall ok config-files' })).toBe(false);
    expect(isPackageInstalled({ ...base, status: 'purge ok not-installed' })).toBe(false);
    expect(isPackageInstalled({ ...base, status: null, statusFile: '/var/lib/dpkg/status.d/x' })).toBe(true);
  });

  it('counts a paragraph of the main status file without a Status field as absent, as dpkg does', () => {
    const [pkg] = parseDpkgStatus('Package: liblzma5\nArchitecture: amd64\nVersion: 5.6.1-1\n', STATUS);
    expect(pkg!.status).toBeNull();
    expect(isPackageInstalled(pkg!)).toBe(false);
  });
});

describe('parseDpkgStatus against dpkg-query', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-dpkg-status-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const other = 'Package: base-files\nStatus: install ok installed\nVersion: 12.4\nArchitecture: amd64\n';
  const lzma = (lines: string) => `Package: liblzma5\n${lines}Architecture: amd64\nVersion: 5.6.1-1\n`;
  const ok = 'Status: install ok installed\n';
  // Files dpkg 1.21 reads, with the packages it calls installed.
  const read: Record<string, string> = {
    'a space line inside a paragraph': `${other}\n${lzma(`${ok} \n`)}`,
    'a tab line inside a paragraph': `${other}\n${lzma(`${ok}\t\n`)}`,
    'two whitespace lines inside a paragraph': `${other}\n${lzma(`${ok} \t\n\f\n`)}`,
    'a whitespace line ending the last value': `${lzma(ok)} \n\n${other}`,
    'a whitespace line inside a Description': `${other}\n${lzma(`${ok}Description: x\n more\n \n more\n`)}`,
    'a paragraph without Status': `${other}\n${lzma('')}`,
    'a paragraph without Status first': `${lzma('')}\n${other}`,
  };
  // Files dpkg refuses whole: hubcrawl keeps liblzma5 5.6.1-1 installed.
  const refused: Record<string, string> = {
    'a whitespace line between paragraphs': `${other}\n \n${lzma(ok)}`,
    'a whitespace line instead of the empty line': `${other} \n${lzma(ok)}`,
    'a whitespace line then the next package': `${lzma(ok)} \n${other}`,
    'a whitespace line at the start of the file': ` \n${lzma(ok)}`,
    'a second Package field in the paragraph': `${lzma(ok)}${other}`,
  };

  /** dpkg-query's installed packages (`name=version`) for a status file, or null when dpkg refuses it. */
  function dpkgInstalled(name: string, text: string): string[] | null {
    const admin = join(dir, name.replace(/\W+/g, '-'));
    mkdirSync(admin, { recursive: true });
    writeFileSync(join(admin, 'status'), text);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own ${Field} syntax, not a template
    const format = '-f=${Package}\t${Version}\t${Status}\n';
    const r = spawnSync('dpkg-query', [`--admindir=${admin}`, '-W', format], {
      encoding: 'utf8',
    });
    if (r.error !== undefined) throw r.error;
    if (r.status !== 0) return null;
    return r.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => l.split('\t'))
      .filter(([, , status]) => !/ (not-installed|config-files)$/.test(status ?? ''))
      .map(([name, version]) => `${name}=${version}`)
      .sort();
  }
  const hubcrawlInstalled = (text: string) =>
    parseDpkgStatus(text, STATUS)
      .filter(isPackageInstalled)
      .map((p) => `${p.name}=${p.version}`)
      .sort();

  it('calls the same packages installed as dpkg-query does where dpkg reads the file', () => {
    for (const [name, text] of Object.entries(read)) {
      const dpkg = dpkgInstalled(name, text);
      expect(dpkg, `dpkg-query refused the file with ${name}`).not.toBeNull();
      expect(hubcrawlInstalled(text), name).toEqual(dpkg);
    }
  });

  it('keeps the package installed where dpkg-query refuses the whole file', () => {
    for (const [name, text] of Object.entries(refused)) {
      expect(dpkgInstalled(name, text), `dpkg-query read the file with ${name}`).toBeNull();
      expect(hubcrawlInstalled(text), name).toContain('liblzma5=5.6.1-1');
    }
  });
});

describe('parseDpkgStatus on arbitrary input', () => {
  it('never throws and only returns paragraphs with a name and a version', () => {
    fc.assert(
      fc.property(
        fc.string({
          unit: fc.constantFrom('P', 'a', ':', ' ', '\n', '\r', 'Package: x\n', 'Version: 1\n', '\t', '#'),
        }),
        (text) => {
          for (const p of parseDpkgStatus(text, STATUS)) expect(p.name !== '' && p.version !== '').toBe(true);
        },
      ),
    );
  });
});
