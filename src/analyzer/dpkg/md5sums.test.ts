import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { normalizeListedPath, packageFromInfoFile, parseMd5sums } from './md5sums.js';

const INFO = '/var/lib/dpkg/info/liblzma5:amd64.md5sums';
const real = readFileSync(new URL('../fixtures/dpkg/liblzma5:amd64.md5sums', import.meta.url), 'utf8');

describe('parseMd5sums', () => {
  it('reads every line of a real md5sums file with absolute paths', () => {
    const facts = parseMd5sums(real, INFO);
    expect(facts).toHaveLength(real.trim().split('\n').length);
    expect(facts[0]).toEqual({
      package: 'liblzma5',
      infoFile: INFO,
      md5: 'af0e525fd86aa1ea0899f6152cd6a756',
      path: '/lib/x86_64-linux-gnu/liblzma.so.5.4.1',
    });
    expect(facts.every((f) => f.path.startsWith('/') && f.package === 'liblzma5')).toBe(true);
  });

  it('matches the md5sums line of the backdoored 5.6.1-1 package from the reference notes', () => {
    const line = '53d82bb511b71a5d4794cf2d8a2072c1  usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1';
    expect(parseMd5sums(`${line}\n`, INFO)).toEqual([
      {
        package: 'liblzma5',
        infoFile: INFO,
        md5: '53d82bb511b71a5d4794cf2d8a2072c1',
        path: '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1',
      },
    ]);
  });

  it('skips malformed lines, lowercases md5s, accepts binary-mode markers and CRLF', () => {
    const text = [
      'not an md5 line',
      'AF0E525FD86AA1EA0899F6152CD6A756  ./usr/lib/a',
      '0123456789abcdef0123456789abcde  usr/short-md5',
      'af0e525fd86aa1ea0899f6152cd6a756 *usr/lib/b\r',
      'af0e525fd86aa1ea0899f6152cd6a756usr/lib/no-space',
      'af0e525fd86aa1ea0899f6152cd6a756  ',
      '',
    ].join('\n');
    expect(
      parseMd5sums(text, '/var/lib/dpkg/info/x.md5sums').map((f) => [f.md5.slice(0, 4), f.path]),
    ).toEqual([
      ['af0e', '/usr/lib/a'],
      ['af0e', '/usr/lib/b'],
    ]);
  });
});

describe('packageFromInfoFile', () => {
  it('strips the architecture qualifier and the extension', () => {
    expect(packageFromInfoFile(INFO)).toBe('liblzma5');
    expect(packageFromInfoFile('/var/lib/dpkg/info/bash.md5sums')).toBe('bash');
    expect(packageFromInfoFile('/var/lib/dpkg/status.d/libssl3.md5sums')).toBe('libssl3');
  });

  it('normalizes listed paths to absolute form', () => {
    expect(normalizeListedPath('./usr//lib/./x')).toBe('/usr/lib/x');
    expect(normalizeListedPath('usr/lib/x')).toBe('/usr/lib/x');
  });
});
