import { describe, expect, it } from 'vitest';
import { LayerSymlinks } from './layer-symlinks.js';

/** A layer's symlinks, made in this order: [path, target]. */
function layer(...links: Array<[string, string]>): LayerSymlinks {
  const s = new LayerSymlinks();
  for (const [path, target] of links) s.landed(s.landing(path), target);
  return s;
}

describe('LayerSymlinks.landing', () => {
  it('writes a member through a symlinked parent, relative to the link or from the root', () => {
    const s = layer(['/lib', 'usr/lib'], ['/opt/alias', '/srv/real']);
    expect(s.landing('/lib/x86_64-linux-gnu/liblzma.so.5.6.1')).toBe(
      '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1',
    );
    expect(s.landing('/opt/alias/tool')).toBe('/srv/real/tool');
  });

  it('keeps the member’s own name: a member at a symlink’s path replaces the link', () => {
    const s = layer(['/lib', 'usr/lib']);
    expect(s.landing('/lib')).toBe('/lib');
    expect(s.landing('/usr/lib/x')).toBe('/usr/lib/x');
  });

  it('follows links inside targets and links made through links', () => {
    const s = layer(['/a', 'b'], ['/b', 'c/d'], ['/a/e', '../f']);
    // `/a/e` was made at /c/d/e, pointing at /c/f.
    expect(s.landing('/a/x')).toBe('/c/d/x');
    expect(s.landing('/a/e/y')).toBe('/c/f/y');
  });

  it('never leaves the root, as securejoin does', () => {
    const s = layer(['/opt/up', '../../../../etc'], ['/opt/abs', '/../../usr']);
    expect(s.landing('/opt/up/passwd')).toBe('/etc/passwd');
    expect(s.landing('/opt/abs/lib')).toBe('/usr/lib');
  });

  it('stops following a link once another member replaced it', () => {
    const s = layer(['/lib', 'usr/lib']);
    s.landed('/lib', null); // a `lib/` directory entry
    expect(s.landing('/lib/x')).toBe('/lib/x');
  });

  it('ends on a loop instead of hanging, as an unpacker refuses it', () => {
    const s = layer(['/a', 'b'], ['/b', 'a']);
    expect(s.landing('/a/x')).toMatch(/^\/[ab]\/x$/);
  });

  it('leaves a NUL and what follows out of a target, as for names', () => {
    expect(layer(['/lib', 'usr/lib\0junk']).landing('/lib/x')).toBe('/usr/lib/x');
  });

  it('resolves a path thousands of components deep, and links deeper than the first ones made', () => {
    const deep = Array.from({ length: 2000 }, () => 'a').join('/');
    const s = new LayerSymlinks([['/lib', 'usr/lib']]);
    expect(s.landing(`/lib/${deep}/x`)).toBe(`/usr/lib/${deep}/x`);
    // A link landed later, deeper than any before it, is followed too.
    s.landed('/usr/lib/a/a/a', '/opt');
    expect(s.landing(`/lib/${deep}/x`)).toBe(`/opt/${deep.slice(6)}/x`);
    // And one reached through a link's target, below the depth it was sought at.
    expect(
      new LayerSymlinks([
        ['/l', 'usr/lib/x86_64'],
        ['/usr/lib/x86_64/cur', 'v2'],
      ]).landing('/l/cur/f'),
    ).toBe('/usr/lib/x86_64/v2/f');
  });
});
