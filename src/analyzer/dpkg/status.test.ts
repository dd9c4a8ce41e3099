import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isPackageInstalled, parseControlParagraphs, parseDpkgStatus } from './status.js';

const fixture = (name: string) => readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8');
const STATUS = '/var/lib/dpkg/status';

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

  it('treats field names case-insensitively and joins continuation lines', () => {
    const [p] = parseControlParagraphs('PACKAGE: x\nversion: 1\nDescription: short\n long line one\n .\n');
    expect(p!.get('package')).toBe('x');
    expect(p!.get('description')).toBe('short\nlong line one\n.');
  });
});

describe('isPackageInstalled', () => {
  it('counts config-files and not-installed entries as absent, status.d entries as present', () => {
    const base = { name: 'x', version: '1', architecture: null, source: null, statusFile: STATUS };
    expect(isPackageInstalled({ ...base, status: 'install ok installed' })).toBe(true);
    expect(isPackageInstalled({ ...base, status: 'install ok half-configured' })).toBe(true);
    expect(isPackageInstalled({ ...base, status: 'deinstall ok config-files' })).toBe(false);
    expect(isPackageInstalled({ ...base, status: 'purge ok not-installed' })).toBe(false);
    expect(isPackageInstalled({ ...base, status: null })).toBe(true);
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
