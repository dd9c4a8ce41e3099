import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isDebianDerived, parseOsRelease } from './os-release.js';

const fixture = (name: string) =>
  readFileSync(new URL(`./fixtures/os-release/${name}`, import.meta.url), 'utf8');
const parse = (name: string) => parseOsRelease(fixture(name), '/etc/os-release');

describe('parseOsRelease', () => {
  it('reads the real Debian 12 os-release', () => {
    const { fields } = parse('debian-12');
    expect(fields).toMatchObject({ ID: 'debian', VERSION_ID: '12', VERSION_CODENAME: 'bookworm' });
    expect(fields.PRETTY_NAME).toBe('Debian GNU/Linux 12 (bookworm)');
  });

  it('reads Ubuntu, Kali and Alpine os-release files', () => {
    expect(parse('ubuntu-24.04').fields).toMatchObject({
      ID: 'ubuntu',
      ID_LIKE: 'debian',
      VERSION_ID: '24.04',
    });
    expect(parse('kali-rolling').fields).toMatchObject({
      ID: 'kali',
      ID_LIKE: 'debian',
      VERSION_CODENAME: 'kali-rolling',
    });
    expect(parse('alpine-3.19').fields).toEqual({
      NAME: 'Alpine Linux',
      ID: 'alpine',
      VERSION_ID: '3.19.1',
      PRETTY_NAME: 'Alpine Linux v3.19',
      HOME_URL: 'https://alpinelinux.org/',
      BUG_REPORT_URL: 'https://gitlab.alpinelinux.org/alpine/aports/-/issues',
    });
  });

  it('applies the os-release(5) quoting rules and skips comments and junk lines', () => {
    expect(parse('quoting-edge-cases').fields).toEqual({
      NAME: 'Single Quoted "Distro"',
      ID: 'edge',
      PRETTY_NAME: 'Edge "Quoted" $HOME `cmd` back\\slash',
      VERSION: '1.0 (With Spaces)',
      UNQUOTED: 'plain word',
      TRAILING: 'value',
      INDENTED_KEY: 'indented',
      EMPTY: '',
      EQUALS_IN_VALUE: 'a=b=c',
    });
  });

  it('gives the same fields for CRLF line endings', () => {
    const text = fixture('ubuntu-24.04');
    expect(parseOsRelease(text.replace(/\n/g, '\r\n'), '/etc/os-release')).toEqual(
      parseOsRelease(text, '/etc/os-release'),
    );
  });

  it('reads /etc/debian_version as a VERSION field', () => {
    expect(parseOsRelease(fixture('debian_version'), '/etc/debian_version')).toEqual({
      path: '/etc/debian_version',
      fields: { VERSION: fixture('debian_version').trim() },
    });
    expect(parseOsRelease('trixie/sid\n', '/etc/debian_version').fields).toEqual({ VERSION: 'trixie/sid' });
    expect(parseOsRelease('', '/etc/debian_version').fields).toEqual({});
  });

  it('never throws on binary junk', () => {
    expect(parseOsRelease('\u0000\u0001=\u0002\n"=\'\nA="unterminated', '/etc/os-release').fields).toEqual({
      A: 'unterminated',
    });
  });
});

describe('isDebianDerived', () => {
  const osr = (name: string) => [parse(name)];
  it('says yes for Debian, Ubuntu and Kali and no for Alpine', () => {
    expect(isDebianDerived(osr('debian-12'), [])).toBe(true);
    expect(isDebianDerived(osr('ubuntu-24.04'), [])).toBe(true);
    expect(isDebianDerived(osr('kali-rolling'), [])).toBe(true);
    expect(isDebianDerived(osr('alpine-3.19'), [])).toBe(false);
  });

  it('says yes for a debian_version file or a dpkg database without os-release', () => {
    expect(isDebianDerived([{ path: '/etc/debian_version', fields: { VERSION: '12.5' } }], [])).toBe(true);
    const pkg = { name: 'x', version: '1', architecture: null, source: null, status: null, statusFile: '/s' };
    expect(isDebianDerived([], [pkg])).toBe(true);
    expect(isDebianDerived([], [])).toBe(false);
  });
});

describe('parseOsRelease on arbitrary input', () => {
  it('never throws and only returns well-formed keys', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom('A', '=', '"', "'", '\\', ' ', '\n', '#', '$', 'é') }),
        (text) => {
          for (const k of Object.keys(parseOsRelease(text, '/etc/os-release').fields)) {
            expect(k).toMatch(/^[A-Za-z_][A-Za-z0-9_]*$/);
          }
        },
      ),
    );
  });
});
