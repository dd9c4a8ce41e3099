import { posix } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normalizeTarPath, whiteoutOf } from './paths.js';

describe('normalizeTarPath', () => {
  it('maps ./x, x and /x//./x spellings to one absolute path', () => {
    expect(normalizeTarPath('./usr/lib/x')).toBe('/usr/lib/x');
    expect(normalizeTarPath('usr/lib/x')).toBe('/usr/lib/x');
    expect(normalizeTarPath('/usr//lib/./x')).toBe('/usr/lib/x');
  });

  it('drops the trailing slash of a directory and names the root /', () => {
    expect(normalizeTarPath('./usr/lib/')).toBe('/usr/lib');
    expect(normalizeTarPath('./')).toBe('/');
    expect(normalizeTarPath('')).toBe('/');
  });

  it('never climbs above the root with ..', () => {
    expect(normalizeTarPath('../../etc/passwd')).toBe('/etc/passwd');
    expect(normalizeTarPath('usr/../../../../lib/x')).toBe('/lib/x');
  });

  it('ends a name at its first NUL', () => {
    expect(normalizeTarPath('usr/lib/liblzma.so\0/../../evil')).toBe('/usr/lib/liblzma.so');
  });

  it('agrees with path.posix.resolve from the root on any name', () => {
    const part = fc.constantFrom('a', 'b.c', '.', '..', '', '...', '.wh.x', 'é', ' ');
    fc.assert(
      fc.property(fc.array(part, { maxLength: 8 }), fc.boolean(), (parts, lead) => {
        const name = (lead ? './' : '') + parts.join('/');
        expect(normalizeTarPath(name)).toBe(posix.resolve('/', name));
      }),
      { numRuns: 2000 },
    );
  });
});

describe('whiteoutOf', () => {
  it('turns .wh.<name> into the removed path', () => {
    expect(whiteoutOf('/etc/.wh.passwd')).toEqual({ path: '/etc/passwd', opaque: false });
    expect(whiteoutOf('/.wh.tmp')).toEqual({ path: '/tmp', opaque: false });
  });

  it('turns the opaque marker into its directory', () => {
    expect(whiteoutOf('/opt/app/.wh..wh..opq')).toEqual({ path: '/opt/app', opaque: true });
    expect(whiteoutOf('/.wh..wh..opq')).toEqual({ path: '/', opaque: true });
  });

  it('ignores aufs bookkeeping names and does not treat ordinary names as whiteouts', () => {
    expect(whiteoutOf('/.wh..wh.plnk')).toBe('ignore');
    expect(whiteoutOf('/etc/.whatever')).toBeNull();
    expect(whiteoutOf('/etc/x.wh.y')).toBeNull();
  });
});
