import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../core/errors.js';
import { checkEnvSettings, loadConfig, redactConfig } from './load.js';

const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-config-'));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe('loadConfig', () => {
  it('fills documented defaults when nothing is given', () => {
    const c = loadConfig({ env: {} });
    expect(c.db).toBe('./hubcrawl.sqlite');
    expect(c.concurrency).toBe(4);
    expect(c.filters.platforms).toEqual([]);
    expect(c.hubApiUrl).toBe('https://hub.docker.com');
  });

  it('reads YAML and lets flags override the file', () => {
    const p = file('a.yml', 'db: from-file.sqlite\nconcurrency: 8\nseeds:\n  images: [debian:sid]\n');
    const c = loadConfig({ file: p, flagSettings: { concurrency: 2 }, env: {} });
    expect(c.db).toBe('from-file.sqlite');
    expect(c.concurrency).toBe(2);
    expect(c.seeds.images).toEqual(['debian:sid']);
  });

  it('lets the environment sit between the file and the flags', () => {
    const p = file('b.json', '{"db": "file.sqlite"}');
    expect(loadConfig({ file: p, env: { HUBCRAWL_DB: 'env.sqlite' } }).db).toBe('env.sqlite');
    expect(
      loadConfig({ file: p, env: { HUBCRAWL_DB: 'env.sqlite' }, flagSettings: { db: 'flag.sqlite' } }).db,
    ).toBe('flag.sqlite');
  });

  it('names the file and the field of a typo', () => {
    const p = file('typo.yml', 'seeds:\n  imagez: [debian]\n');
    expect(() => loadConfig({ file: p, env: {} })).toThrowError(ConfigError);
    expect(() => loadConfig({ file: p, env: {} })).toThrowError(
      /^invalid config file .*typo\.yml: seeds\.imagez: unknown setting \(did you mean seeds\.images\?\)$/,
    );
  });

  it('suggests the setting a misspelt key most likely meant, at its own level, and none when none is near', () => {
    const p = file(
      'typos.yml',
      'maxPull: 3\nregistries:\n  "r.example:5000":\n    usernme: alice\nlimits:\n  maxEntrys: 5\nzzz: 1\n',
    );
    let message = '';
    try {
      loadConfig({ file: p, env: {} });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toContain('typos.yml: maxPull: unknown setting (did you mean maxPulls?)');
    expect(message).toContain(
      'typos.yml: registries.r.example:5000.usernme: unknown setting (did you mean registries.r.example:5000.username?)',
    );
    expect(message).toContain(
      'typos.yml: limits.maxEntrys: unknown setting (did you mean limits.maxEntries?)',
    );
    expect(message).toMatch(/typos\.yml: zzz: unknown setting(;|$)/);
  });

  it('names the field of a wrong type with its index', () => {
    const p = file('type.yml', 'filters:\n  platforms: [linux/amd64, "linux amd64"]\n');
    expect(() => loadConfig({ file: p, env: {} })).toThrowError(
      /type\.yml: filters\.platforms\[1\]: platform "linux amd64" is not of the form os\/arch/,
    );
  });

  it('refuses a uname architecture name in a platform, from the file or a flag, naming the OCI name', () => {
    const p = file('uname.yml', 'filters:\n  platforms: [linux/amd64, linux/x86_64]\n');
    expect(() => loadConfig({ file: p, env: {} })).toThrowError(
      /uname\.yml: filters\.platforms\[1\]: platform "linux\/x86_64": "x86_64" is not how an image index names the architecture .*"amd64"\); use linux\/amd64$/,
    );
    expect(() =>
      loadConfig({ flagSettings: { filters: { platforms: ['linux/aarch64'] } }, env: {} }),
    ).toThrowError(
      /filters\.platforms\[0\]: platform "linux\/aarch64": .*use linux\/arm64; run with --help for usage$/,
    );
    expect(
      loadConfig({ flagSettings: { filters: { platforms: ['linux/amd64/v1'] } }, env: {} }).filters.platforms,
    ).toEqual(['linux/amd64/v1']);
  });

  it('names the environment variable of a bad value, not the flags', () => {
    expect(() => loadConfig({ env: { HUBCRAWL_LOG_LEVEL: 'bogus' } })).toThrowError(
      /^invalid settings: environment variable HUBCRAWL_LOG_LEVEL: /,
    );
    expect(() => loadConfig({ env: { HUBCRAWL_LOG_LEVEL: 'bogus' } })).not.toThrowError(/flags/);
    expect(() => loadConfig({ env: { HUBCRAWL_HUB_API: 'not a url' } })).toThrowError(
      /environment variable HUBCRAWL_HUB_API: /,
    );
    expect(() => loadConfig({ env: { HUBCRAWL_REGISTRY_MIRROR: 'nope' } })).toThrowError(
      /environment variable HUBCRAWL_REGISTRY_MIRROR: /,
    );
    // Refused although a flag would override it, as a config file is checked whole.
    expect(() =>
      loadConfig({ env: { HUBCRAWL_LOG_LEVEL: 'bogus' }, flagSettings: { logLevel: 'info' } }),
    ).toThrowError(/HUBCRAWL_LOG_LEVEL/);
    expect(loadConfig({ env: { HUBCRAWL_LOG_LEVEL: 'debug', HUBCRAWL_LOG_LEVEL_X: 'x' } }).logLevel).toBe(
      'debug',
    );
  });

  it('checks the environment alone for commands that read no config (checkEnvSettings)', () => {
    expect(() => checkEnvSettings({ HUBCRAWL_LOG_LEVEL: 'bogus' })).toThrowError(ConfigError);
    expect(() => checkEnvSettings({ HUBCRAWL_LOG_LEVEL: 'warn', HUBCRAWL_DB: 'x.sqlite' })).not.toThrow();
    expect(() => checkEnvSettings({ HUBCRAWL_LOG_LEVEL: '' })).not.toThrow();
  });

  it('refuses an invalid tag regular expression, saying why', () => {
    expect(() => loadConfig({ flagSettings: { filters: { tags: '(' } }, env: {} })).toThrowError(
      'invalid settings: flags: filters.tags: expected a JavaScript regular expression (/(/: Unterminated group); run with --help for usage',
    );
    // Another engine's inline flag gets the JavaScript way to write it.
    expect(() => loadConfig({ flagSettings: { filters: { tags: '(?i)v1' } }, env: {} })).toThrowError(
      /\(\/\(\?i\)v1\/: Invalid group\); inline flags such as \(\?i\) are not JavaScript: write the cases out \(\[Vv\]1\)/,
    );
  });

  it('names a refused flag as the user wrote it, when told which flag sets the setting', () => {
    const flagOf = (path: string) =>
      ({ layerConcurrency: '--layer-concurrency', 'filters.platforms': '--platform' })[path];
    expect(() =>
      loadConfig({
        flagSettings: { layerConcurrency: 100, filters: { platforms: ['linux/amd64', 'linux amd64'] } },
        flagOf,
        env: {},
      }),
    ).toThrowError(
      'invalid settings: --platform: platform "linux amd64" is not of the form os/arch[/variant], for example linux/amd64; --layer-concurrency: too big: expected number to be <=16; run with --help for usage',
    );
  });

  it('says when the file is not YAML', () => {
    const p = file('bad.yml', 'a: [1, 2\n');
    expect(() => loadConfig({ file: p, env: {} })).toThrowError(/not valid YAML or JSON/);
  });

  it('refuses a URL with a user name or password, without repeating the password', () => {
    const url = 'http://alice:CaTaLoGpw@127.0.0.1:5000';
    for (const flagSettings of [
      { seeds: { catalogs: [url] } },
      { seeds: { catalogs: ['alice:CaTaLoGpw@127.0.0.1:5000'] } },
      // Unencoded `/`, `?` or `#` in the password: no URL parses, and the message must still not repeat it.
      { seeds: { catalogs: ['http://alice:CaTaLoGpw/x@127.0.0.1:5000'] } },
      { seeds: { catalogs: ['http://alice:CaTaLoGpw?x@127.0.0.1:5000'] } },
      { registryMirror: 'http://alice:CaTaLoGpw#x@127.0.0.1:5000' },
      // Parses, but as host `ci:…` with the password in the path.
      { registryMirror: 'http://ci:4711/CaTaLoGpw@127.0.0.1:5000' },
      { hubApiUrl: url },
      { registryMirror: url },
      { registries: { '127.0.0.1:5000': { endpoint: url } } },
    ]) {
      let message = '';
      try {
        loadConfig({ flagSettings, env: {} });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/must not carry a user name or password/);
      expect(message).not.toContain('CaTaLoGpw');
    }
    expect(() => loadConfig({ env: { HUBCRAWL_REGISTRY_MIRROR: url } })).toThrowError(
      /environment variable HUBCRAWL_REGISTRY_MIRROR: a URL here must not carry a user name or password/,
    );
    expect(
      loadConfig({ flagSettings: { seeds: { catalogs: ['127.0.0.1:5000'] } }, env: {} }).seeds.catalogs,
    ).toEqual(['127.0.0.1:5000']);
  });

  it('sends a password in the Hub API URL to the Docker Hub variables, not the registry ones', () => {
    const url = 'http://alice:CaTaLoGpw@127.0.0.1:9';
    const p = file('hub-api.yml', `hubApiUrl: ${url}\n`);
    for (const load of [
      () => loadConfig({ flagSettings: { hubApiUrl: url }, env: {} }),
      () => loadConfig({ file: p, env: {} }),
      () => loadConfig({ env: { HUBCRAWL_HUB_API: url } }),
    ]) {
      expect(load).toThrowError(
        /give Docker Hub credentials with HUBCRAWL_DOCKERHUB_USERNAME\/HUBCRAWL_DOCKERHUB_TOKEN/,
      );
      expect(load).not.toThrowError(/HUBCRAWL_REGISTRY_/);
    }
    expect(() => loadConfig({ flagSettings: { registryMirror: url }, env: {} })).toThrowError(
      /give credentials with HUBCRAWL_REGISTRY_USERNAME\/HUBCRAWL_REGISTRY_PASSWORD and HUBCRAWL_REGISTRY_HOST/,
    );
  });

  it('keeps credentials out of the recorded config', () => {
    const c = loadConfig({
      flagSettings: { registries: { 'r.example:5000': { username: 'alice', password: 's3cret' } } },
      env: {},
    });
    const recorded = JSON.stringify(redactConfig(c));
    expect(recorded).not.toContain('s3cret');
    expect(recorded).not.toContain('alice');
  });
});
