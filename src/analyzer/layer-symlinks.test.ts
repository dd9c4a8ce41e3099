import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
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

describe('LayerSymlinks.landing on a crafted chain of links', () => {
  it('seeks a path among its links only where a folder is a link, however many folders the targets walk', () => {
    // 50 links side by side 200 folders deep, each target climbing in and out of a folder 100 times
    // before it names the next link: 5 000 folders walked through, 50 of them links. Building and
    // seeking each folder's 400-character path took over a second per member at full size.
    const dir = `/${Array.from({ length: 200 }, () => 'd').join('/')}`;
    const links = Array.from(
      { length: 50 },
      (_, k) => [`${dir}/l${k}`, `${'a/../'.repeat(100)}${k + 1 < 50 ? `l${k + 1}` : 'real'}`] as const,
    );
    const s = new LayerSymlinks(links);
    const get = vi.spyOn(Map.prototype, 'get');
    try {
      expect(s.landing(`${dir}/l0/f`)).toBe(`${dir}/real/f`);
      const sought = get.mock.calls.filter(([key]) => typeof key === 'string');
      expect(sought.length).toBeLessThanOrEqual(links.length);
    } finally {
      get.mockRestore();
    }
  });
});

/**
 * Where `path` lands through `links`, walked the plain way: every component sought, nothing skipped (no
 * depth bound, no hash filter), so LayerSymlinks' shortcuts are checked against it.
 */
function referenceLanding(links: ReadonlyMap<string, string>, path: string): string {
  const slash = path.lastIndexOf('/');
  // The folders walked into so far, each as its whole path: `..` pops one, and never the root.
  const folders: string[] = [];
  const pending = path.slice(0, slash).split('/').reverse();
  for (let followed = 0; pending.length > 0; ) {
    const part = pending.pop()!;
    if (part === '' || part === '.') continue;
    if (part === '..') {
      folders.pop();
      continue;
    }
    const here = `${folders.at(-1) ?? ''}/${part}`;
    const target = links.get(here);
    if (target === undefined || followed >= 255) {
      folders.push(here);
      continue;
    }
    followed++;
    if (target.startsWith('/')) folders.length = 0;
    pending.push(...target.split('/').reverse());
  }
  return `${folders.at(-1) ?? ''}${path.slice(slash)}`;
}

describe('LayerSymlinks under links made and replaced', () => {
  // Few names, so that links nest, share prefixes, and are replaced and made again at one path.
  const name = fc.constantFrom('a', 'b', 'c');
  const path = fc.array(name, { minLength: 1, maxLength: 4 }).map((parts) => `/${parts.join('/')}`);
  const target = fc.oneof(
    fc.array(fc.constantFrom('a', 'b', 'c', '..'), { minLength: 1, maxLength: 3 }).map((p) => p.join('/')),
    path,
  );
  // A member landing: a symlink to a target, or with `null` anything else (which ends a link there).
  const member = fc.tuple(path, fc.option(target, { freq: 2 }));
  // Paths sought after each landing: a name under folders up to 4 deep (as deep as links go).
  const probes = fc.array(
    path.map((p) => `${p}/x`),
    { minLength: 1, maxLength: 5 },
  );

  it('lands every path as the plain walk does, whatever links were made and replaced before', () => {
    fc.assert(
      fc.property(
        fc.array(member, { maxLength: 12 }),
        fc.array(member, { maxLength: 40 }),
        probes,
        (first, then, sought) => {
          const reference = new Map<string, string>();
          const land = (s: LayerSymlinks, [p, t]: [string, string | null]) => {
            const at = referenceLanding(reference, p);
            if (t === null) reference.delete(at);
            else reference.set(at, t);
            s.landed(s.landing(p), t);
          };
          const before = new LayerSymlinks();
          for (const m of first) land(before, m);
          // Also made with links already there, as the image view makes a lower layer's resolver.
          const s = new LayerSymlinks(before.entries().map((l) => [l.path, l.target] as const));
          for (const m of then) {
            land(s, m);
            for (const probe of sought) expect(s.landing(probe)).toBe(referenceLanding(reference, probe));
          }
        },
      ),
      { numRuns: 200 },
    );
  });
});
