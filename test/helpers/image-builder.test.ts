/**
 * Self-tests of the layer builder and the Debian fixtures with GNU tar, zstd and dpkg-query as
 * the oracles: what we write must read back the way real tools see it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { debianBaseEntries } from '../../scripts/lib/debian-fixtures.js';
import {
  buildLayer,
  buildLayerTar,
  compressLayer,
  decompressLayer,
  sha256,
} from '../../scripts/lib/image-builder.js';

const tmp = mkdtempSync(join(tmpdir(), 'hubcrawl-builder-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function tarList(tar: Buffer): string[] {
  const f = join(tmp, `l-${sha256(tar).slice(7, 19)}.tar`);
  writeFileSync(f, tar);
  return execFileSync('tar', ['-tvf', f], { encoding: 'utf8' }).trim().split('\n');
}

describe('buildLayerTar', () => {
  it('writes every entry kind the way GNU tar lists it, with ./ paths and whiteout markers', async () => {
    const tar = await buildLayerTar([
      { type: 'dir', path: '/etc' },
      { type: 'file', path: '/etc/passwd', content: 'root:x:0:0::/root:/bin/sh\n', mode: 0o600 },
      { type: 'symlink', path: 'etc/mtab', target: '/proc/mounts' },
      { type: 'hardlink', path: 'etc/passwd-', target: 'etc/passwd' },
      { type: 'whiteout', path: 'etc/shadow' },
      { type: 'opaque', dir: 'var/cache' },
    ]);
    const lines = tarList(tar);
    expect(lines[0]).toMatch(/^drwxr-xr-x root\/root +0 2024-03-01 00:00 \.\/etc\/$/);
    expect(lines[1]).toMatch(/^-rw------- root\/root +26 .* \.\/etc\/passwd$/);
    expect(lines[2]).toMatch(/^lrwxrwxrwx .* \.\/etc\/mtab -> \/proc\/mounts$/);
    expect(lines[3]).toMatch(/^hrw-r--r-- .* \.\/etc\/passwd- link to \.\/etc\/passwd$/);
    expect(lines[4]).toMatch(/ \.\/etc\/\.wh\.shadow$/);
    expect(lines[5]).toMatch(/ \.\/var\/cache\/\.wh\.\.wh\.\.opq$/);
  });

  it('keeps paths longer than 100 bytes intact', async () => {
    const long = `usr/share/${'d'.repeat(120)}/file.txt`;
    const lines = tarList(await buildLayerTar([{ type: 'file', path: long, content: 'x' }]));
    expect(lines[0]?.endsWith(`./${long}`)).toBe(true);
  });
});

describe('compressLayer', () => {
  it('makes zstd frames the zstd CLI decompresses to the same tar', async () => {
    const tar = await buildLayerTar(debianBaseEntries());
    const f = join(tmp, 'layer.tar.zst');
    writeFileSync(f, compressLayer(tar, 'zstd'));
    expect(execFileSync('zstd', ['-d', '-c', f]).equals(tar)).toBe(true);
  });

  it('records as diffId the sha256 of the tar that gunzip gives back', async () => {
    const layer = await buildLayer(debianBaseEntries(), 'gzip');
    const f = join(tmp, 'layer.tar.gz');
    writeFileSync(f, layer.data);
    expect(layer.diffId).toBe(sha256(execFileSync('gzip', ['-d', '-c', f])));
    expect(sha256(decompressLayer(layer.data))).toBe(layer.diffId);
  });
});

describe('debianBaseEntries', () => {
  function extract(entries: ReturnType<typeof debianBaseEntries>): Promise<string> {
    return buildLayerTar(entries).then((tar) => {
      const dir = mkdtempSync(join(tmp, 'root-'));
      const f = join(dir, '..', `${dir.split('/').pop()}.tar`);
      writeFileSync(f, tar);
      execFileSync('tar', ['-xf', f, '-C', dir]);
      return dir;
    });
  }

  it('writes a dpkg status database that dpkg-query reads, with liblzma5 at the asked version from xz-utils', async () => {
    const root = await extract(
      debianBaseEntries({ liblzmaVersion: '5.6.0-0.2', extraPackages: [{ name: 'foo', version: '1.0-1' }] }),
    );
    // dpkg-query's own ${Field} format syntax, not a template literal.
    const format = ['Package', 'Version', 'source:Package'].map((f) => `$\{${f}}`).join(' ');
    const out = execFileSync(
      'dpkg-query',
      [`--admindir=${join(root, 'var/lib/dpkg')}`, '-W', '-f', `${format}\\n`],
      { encoding: 'utf8' },
    );
    expect(out).toContain('liblzma5 5.6.0-0.2 xz-utils\n');
    expect(out).toContain('xz-utils 5.6.0-0.2 xz-utils\n');
    expect(out).toContain('foo 1.0-1 foo\n');
  });

  it('writes md5sums that md5sum -c verifies against the library it ships', async () => {
    const root = await extract(debianBaseEntries({ liblzmaVersion: '5.6.1-1' }));
    const out = execFileSync('md5sum', ['-c', 'var/lib/dpkg/info/liblzma5:amd64.md5sums'], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(out).toContain('usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1: OK');
  });

  it('names the library after the real upstream version of a +really revert', () => {
    const paths = debianBaseEntries({ liblzmaVersion: '5.6.1+really5.4.5-1' }).map((e) =>
      'path' in e ? e.path : '',
    );
    expect(paths).toContain('usr/lib/x86_64-linux-gnu/liblzma.so.5.4.5');
  });
});
