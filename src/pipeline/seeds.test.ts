import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/load.js';
import { ConfigError } from '../core/errors.js';
import { parseSeedFile, seedItems } from './seeds.js';

describe('seed files', () => {
  it('reads images and repositories, one per line, with whole-line and trailing comments', () => {
    const text = [
      '# XZ study',
      'docker.io/library/debian@sha256:0aff2113f50451631f0f8c22d85c97aad855d73545b6018fcbe9f0a78ae26583  # sid-20240311',
      '',
      'debian:sid-20240311',
      'myoung34/github-runner',
      '127.0.0.1:5000/team/app',
    ].join('\n');
    expect(parseSeedFile(text, 'seeds.txt')).toEqual([
      {
        kind: 'image',
        ref: 'docker.io/library/debian@sha256:0aff2113f50451631f0f8c22d85c97aad855d73545b6018fcbe9f0a78ae26583',
      },
      { kind: 'image', ref: 'debian:sid-20240311' },
      { kind: 'repository', repo: 'myoung34/github-runner' },
      { kind: 'repository', repo: '127.0.0.1:5000/team/app' },
    ]);
  });

  it('names the file and line of a bad reference', () => {
    expect(() => parseSeedFile('debian:ok\nUPPER/Case:tag\n', 'list.txt')).toThrowError(/^list\.txt:2: /);
    expect(() => parseSeedFile('a:b c:d\n', 'list.txt')).toThrowError(/list\.txt:1: .*one per line/);
  });
});

describe('seed items', () => {
  it('takes a seed file of more lines than a spread can pass as arguments (a large study)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-seeds-'));
    const file = join(dir, 'many.txt');
    writeFileSync(file, Array.from({ length: 200_000 }, (_, i) => `study/repo-${i}`).join('\n'));
    const config = loadConfig({ env: {}, flagSettings: { seeds: { files: [file] } } });
    const items = seedItems(config, 1);
    expect(items).toHaveLength(200_000);
    expect(items.at(-1)?.key).toBe('1|docker.io/study/repo-199999');
  });

  it('turns every kind of seed into a frontier item keyed by run', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-seeds-'));
    const file = join(dir, 's.txt');
    writeFileSync(file, 'alpine\nbusybox:1.36\n');
    const config = loadConfig({
      env: {},
      flagSettings: {
        seeds: {
          images: ['debian', `user/app@sha256:${'a'.repeat(64)}`],
          repos: ['127.0.0.1:5000/team/app'],
          namespaces: ['library'],
          searches: ['xz'],
          catalogs: ['http://127.0.0.1:5000'],
          files: [file],
        },
      },
    });
    const items = seedItems(config, 7).map((i) => `${i.kind} ${i.key}`);
    expect(items).toEqual([
      'reference 7|docker.io/library/debian:latest@',
      `reference 7|docker.io/user/app:@sha256:${'a'.repeat(64)}`,
      'reference 7|docker.io/library/busybox:1.36@',
      'repository 7|127.0.0.1:5000/team/app',
      'repository 7|docker.io/library/alpine',
      'namespace 7|library',
      'search 7|xz',
      'catalog 7|http://127.0.0.1:5000/',
    ]);
  });

  it('refuses a catalog URL of another scheme than http(s), and takes a bare host as https', () => {
    const items = (catalogs: string[]) =>
      seedItems(loadConfig({ env: {}, flagSettings: { seeds: { catalogs } } }), 1);
    expect(() => items(['ftp://registry.example'])).toThrowError(
      new ConfigError(
        'seed catalog "ftp://registry.example" is not an http(s) URL; give https://host (or http:// for a plain-HTTP registry)',
      ),
    );
    expect(items(['registry.example:5000']).map((i) => i.payload)).toEqual([
      { url: 'https://registry.example:5000/', registry: 'registry.example:5000' },
    ]);
  });

  it('refuses a catalog URL whose scheme is not the one its host is crawled over', () => {
    const items = (catalogs: string[], registries = {}) =>
      seedItems(loadConfig({ env: {}, flagSettings: { seeds: { catalogs }, registries } }), 1);
    // Loopback is plain http unless configured: https://127.0.0.1 would have been crawled over http.
    expect(() => items(['https://127.0.0.1:5000'])).toThrowError(
      /^seed catalog https:\/\/127\.0\.0\.1:5000\/ asks for https, but 127\.0\.0\.1:5000 is crawled over plain http \(a loopback host\); write http:\/\/127\.0\.0\.1:5000/,
    );
    expect(() => items(['http://registry.example'])).toThrowError(
      /asks for plain http, but registry\.example is crawled over https; add --insecure-registry registry\.example/,
    );
    expect(items(['http://registry.example'], { 'registry.example': { scheme: 'http' } })).toHaveLength(1);
    expect(items(['https://127.0.0.1:5000'], { '127.0.0.1:5000': { scheme: 'https' } })).toHaveLength(1);
    expect(items(['127.0.0.1:5000'])).toHaveLength(1);
  });

  it('refuses a catalog URL with a path, which the registry-wide _catalog would ignore', () => {
    const items = (catalogs: string[]) =>
      seedItems(loadConfig({ env: {}, flagSettings: { seeds: { catalogs } } }), 1);
    // `--catalog 127.0.0.1:5000/team` crawled every repository of the registry, not those under team/.
    expect(() => items(['http://127.0.0.1:5000/team'])).toThrowError(
      new ConfigError(
        'seed catalog "http://127.0.0.1:5000/team" has a path or query (/team), but a catalog seed lists every repository of http://127.0.0.1:5000/, whatever follows the host; give that base URL, or crawl single repositories with --repo 127.0.0.1:5000/<name>',
      ),
    );
    expect(() => items(['registry.example/v2/_catalog?n=10'])).toThrowError(
      /has a path or query \(\/v2\/_catalog\?n=10\)/,
    );
    expect(() => items(['https://registry.example/artifactory/api/docker/x'])).toThrowError(ConfigError);
    // A bare host is named as written: it is reached as configured (http on loopback), not as https.
    expect(() => items(['127.0.0.1:5000/team'])).toThrowError(
      /lists every repository of 127\.0\.0\.1:5000, whatever follows the host/,
    );
    // The registry's root, written as the API's own paths, is the same catalog (and the same frontier item).
    const keys = (catalogs: string[]) => items(catalogs).map((i) => i.key);
    for (const written of [
      'http://127.0.0.1:5000',
      'http://127.0.0.1:5000/',
      'http://127.0.0.1:5000/v2',
      'http://127.0.0.1:5000/v2/',
      'http://127.0.0.1:5000/v2/_catalog',
    ]) {
      expect(keys([written])).toEqual(['1|http://127.0.0.1:5000/']);
    }
  });

  it('refuses a namespace that Docker Hub could not have', () => {
    const config = loadConfig({ env: {}, flagSettings: { seeds: { namespaces: ['Bad NS'] } } });
    expect(() => seedItems(config, 1)).toThrowError(ConfigError);
  });
});
