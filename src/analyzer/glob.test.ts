import { describe, expect, it } from 'vitest';
import { compileGlob, compileGlobSet, compileGlobs, globProblem, withMergedUsrTwins } from './glob.js';

const m = (glob: string, path: string) => compileGlob(glob).test(path);

describe('compileGlob', () => {
  it('lets ** span zero or more whole directories', () => {
    expect(m('/usr/lib/**/liblzma.so.5*', '/usr/lib/liblzma.so.5')).toBe(true);
    expect(m('/usr/lib/**/liblzma.so.5*', '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1')).toBe(true);
    expect(m('/usr/lib/**/liblzma.so.5*', '/usr/lib/a/b/c/liblzma.so.5.6.0')).toBe(true);
    expect(m('/**/xz-5.6.0.tar.gz', '/xz-5.6.0.tar.gz')).toBe(true);
    expect(m('/**/xz-5.6.0.tar.gz', '/root/src/xz-5.6.0.tar.gz')).toBe(true);
    expect(m('/opt/**', '/opt')).toBe(true);
    expect(m('/opt/**', '/opt/a/b')).toBe(true);
    expect(m('/opt/**', '/optional')).toBe(false);
  });

  it('reads repeated ** segments as one (/**/**/x as /**/x), as valid globs', () => {
    for (const glob of ['/**/**/ls', '/**/**/**/ls', '/usr/**/**/ls']) {
      expect(globProblem(glob)).toBeNull();
      const single = glob.replace(/(\/\*\*)+/, '/**');
      for (const path of ['/ls', '/usr/ls', '/usr/bin/ls', '/usr/a/b/c/ls', '/usr/bin/lsx', '/bin/ls'])
        expect({ glob, path, hit: m(glob, path) }).toEqual({ glob, path, hit: m(single, path) });
    }
    expect(m('/opt/**/**', '/opt')).toBe(true);
    expect(m('/opt/**/**', '/opt/a/b')).toBe(true);
  });

  it('keeps * and ? inside one path segment', () => {
    expect(m('/usr/lib/*/liblzma.so.5*', '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1')).toBe(true);
    expect(m('/usr/lib/*/liblzma.so.5*', '/usr/lib/a/b/liblzma.so.5.6.1')).toBe(false);
    expect(m('/usr/lib/liblzma.so.5*', '/usr/lib/liblzma.so.5/x')).toBe(false);
    expect(m('/etc/?s-release', '/etc/os-release')).toBe(true);
    expect(m('/etc/?s-release', '/etc//s-release')).toBe(false);
  });

  it('treats regex characters literally and anchors both ends', () => {
    expect(m('/a.b+c(d)', '/a.b+c(d)')).toBe(true);
    expect(m('/a.b', '/axb')).toBe(false);
    expect(m('/usr/lib/liblzma.so.5', '/usr/lib/liblzma.so.5.6.1')).toBe(false);
    expect(m('/usr/lib/liblzma.so.5', '/x/usr/lib/liblzma.so.5')).toBe(false);
  });

  it('supports [abc], ranges and negated classes that never match a slash', () => {
    expect(m('/lib/liblzma.so.[56]', '/lib/liblzma.so.5')).toBe(true);
    expect(m('/lib/liblzma.so.[0-4]', '/lib/liblzma.so.5')).toBe(false);
    expect(m('/lib/x[!a]', '/lib/xb')).toBe(true);
    expect(m('/lib/x[!a]', '/lib/xa')).toBe(false);
    expect(m('/lib/x[!a]y', '/lib/x/y')).toBe(false);
  });

  it('matches paths with newlines only as literal characters', () => {
    expect(m('/a/*', '/a/b\nc')).toBe(true);
    expect(m('/a/b', '/a/b\n')).toBe(false);
  });
});

describe('compileGlobs', () => {
  it('matches when any glob of the list matches, and is null for none', () => {
    const re = compileGlobs(['/usr/lib/**/liblzma.so.5*', '/**/xz-5.6.1.tar.gz'])!;
    expect(re.test('/usr/lib/liblzma.so.5.6.1')).toBe(true);
    expect(re.test('/home/u/xz-5.6.1.tar.gz')).toBe(true);
    expect(re.test('/etc/passwd')).toBe(false);
    expect(compileGlobs([])).toBeNull();
  });
});

describe('globProblem', () => {
  it('refuses relative globs and unterminated classes', () => {
    expect(globProblem('usr/lib/x')).toMatch(/absolute/);
    expect(globProblem('/usr/lib/[ab')).toMatch(/unterminated/);
    expect(globProblem('/usr/lib/**/x')).toBeNull();
  });

  it('refuses ** inside a segment, where it would cross a "/", naming the segment', () => {
    expect(globProblem('/usr/b**n/ls')).toBe(
      'the path glob "/usr/b**n/ls" has "**" inside the segment "b**n", but "**" stands for whole segments only (/a/**/b, /a/**); within a segment use "*"',
    );
    expect(globProblem('/lib/liblzma**')).toMatch(/inside the segment "liblzma\*\*"/);
    expect(globProblem('/***/x')).toMatch(/inside the segment "\*\*\*"/);
    expect(globProblem('/lib/liblzma*')).toBeNull();
  });

  it('refuses globs that a normalized stored path can never match, quoting the glob', () => {
    expect(globProblem('/usr/lib/')).toBe(
      'the path glob "/usr/lib/" ends with "/", and stored paths are normalized (no empty segment, no trailing "/"), so it could never match',
    );
    expect(globProblem('/usr/lib/**/')).toMatch(/ends with "\/"/);
    expect(globProblem('/usr//lib/x')).toMatch(/^the path glob "\/usr\/\/lib\/x" holds "\/\/"/);
    expect(globProblem('//x')).toMatch(/holds "\/\/"/);
    expect(globProblem('/usr/./lib/x')).toMatch(/holds a "\." segment/);
    expect(globProblem('/usr/lib/../x')).toMatch(/holds a "\.\." segment/);
    expect(globProblem('/usr/lib/..')).toMatch(/holds a "\.\." segment/);
    // Dots within a segment, and the root itself, are fine.
    expect(globProblem('/')).toBeNull();
    expect(globProblem('/etc/.profile')).toBeNull();
    expect(globProblem('/a/..b/.../x.')).toBeNull();
    expect(globProblem('/**/.wh..wh..opq')).toBeNull();
  });

  it('refuses braces, which would match themselves, and classes the RegExp engine refuses', () => {
    expect(globProblem('/usr/lib/{a,b}.so')).toMatch(/globs have no braces .*list several globs instead/);
    expect(globProblem('/usr/[z-a]')).toBe(
      'the path glob "/usr/[z-a]" is not usable: range out of order in character class',
    );
    expect(globProblem('/usr/{x}')).toBeNull();
    expect(globProblem('/usr/[a-z]x')).toBeNull();
  });
});

describe('compileGlobSet', () => {
  const globs = ['/**/liblzma.so.5*', '/usr/lib/*/x[0-9]', '/**/xz-5.6.1.tar.gz', '/opt/a?c'];
  const paths = [
    '/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1',
    '/liblzma.so.5',
    '/usr/lib/liblzma.so.4',
    '/usr/lib/q/x7',
    '/usr/lib/q/r/x7',
    '/usr/lib/q/xa',
    '/home/u/xz-5.6.1.tar.gz',
    '/home/u/xz-5.6.1.tar.gz/inner',
    '/opt/abc',
    '/opt/abcd',
    '/etc/passwd',
    '/',
  ];

  it('answers exactly like the plain alternation', () => {
    const full = compileGlobs(globs)!;
    const set = compileGlobSet(globs);
    for (const p of paths) expect(set.test(p), p).toBe(full.test(p));
  });

  it('falls back to the full match when a last segment is ** and matches nothing for no globs', () => {
    const set = compileGlobSet(['/opt/**']);
    expect(set.test('/opt/a/b/c')).toBe(true);
    expect(set.test('/etc/x')).toBe(false);
    expect(compileGlobSet([]).test('/x')).toBe(false);
  });
});

describe('withMergedUsrTwins', () => {
  it('adds the other spelling of a glob naming a merged-/usr folder, once', () => {
    expect(
      withMergedUsrTwins([
        '/lib/x86_64-linux-gnu/liblzma.so.5*',
        '/usr/sbin/sshd',
        '/lib64',
        '/usr/lib/**',
        '/lib/**',
      ]),
    ).toEqual([
      '/lib/x86_64-linux-gnu/liblzma.so.5*',
      '/usr/sbin/sshd',
      '/lib64',
      '/usr/lib/**',
      '/lib/**',
      '/usr/lib/x86_64-linux-gnu/liblzma.so.5*',
      '/sbin/sshd',
      '/usr/lib64',
    ]);
  });

  it('leaves every other glob alone: other folders, wildcards in the folder, /usr itself', () => {
    const others = [
      '/**/liblzma.so.5*',
      '/etc/os-release',
      '/l*/x',
      '/usr/share/doc/**',
      '/usr',
      '/libexec/x',
    ];
    expect(withMergedUsrTwins(others)).toEqual(others);
  });
});
