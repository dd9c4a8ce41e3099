import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../core/errors.js';
import { formatReference, isLoopbackHost, parseReference, parseRepository } from './reference.js';

const D = `sha256:${'a'.repeat(64)}`;

describe('parseReference', () => {
  it.each([
    ['debian', 'docker.io/library/debian:latest'],
    ['debian:bookworm-slim', 'docker.io/library/debian:bookworm-slim'],
    ['library/debian:12', 'docker.io/library/debian:12'],
    ['docker.io/debian', 'docker.io/library/debian:latest'],
    ['index.docker.io/library/debian', 'docker.io/library/debian:latest'],
    ['registry-1.docker.io/user/app:v1', 'docker.io/user/app:v1'],
    ['user/app', 'docker.io/user/app:latest'],
    [`user/app@${D}`, `docker.io/user/app@${D}`],
    [`user/app:v2@${D}`, `docker.io/user/app:v2@${D}`],
    ['127.0.0.1:5000/a/b:tag', '127.0.0.1:5000/a/b:tag'],
    ['localhost:5000/x', 'localhost:5000/x:latest'],
    ['localhost/x', 'localhost/x:latest'],
    ['ghcr.io/org/team/app:1.0', 'ghcr.io/org/team/app:1.0'],
    ['[::1]:5000/app', '[::1]:5000/app:latest'],
    ['Example.com/app', 'Example.com/app:latest'],
    ['my-registry:8443/ns/app', 'my-registry:8443/ns/app:latest'],
    ['a/b__c/d-e.f', 'docker.io/a/b__c/d-e.f:latest'],
  ])('normalizes %s to %s', (input, expected) => {
    expect(formatReference(parseReference(input))).toBe(expected);
  });

  it('splits a Hub reference into registry, repository and tag', () => {
    expect(parseReference('debian')).toEqual({
      registry: 'docker.io',
      repository: 'library/debian',
      tag: 'latest',
    });
  });

  it('keeps a digest-only reference without inventing a tag', () => {
    expect(parseReference(`debian@${D}`)).toEqual({
      registry: 'docker.io',
      repository: 'library/debian',
      digest: D,
    });
  });

  it.each([
    ['', /empty/],
    ['Debian', /lowercase/],
    ['user/App', /lowercase/],
    ['debian:', /tag/],
    ['debian:-x', /tag/],
    [`debian:${'x'.repeat(129)}`, /tag/],
    ['debian@sha256:abc', /digest/],
    ['debian@md5:0123', /digest/],
    ['a//b', /path component/],
    ['a/-b', /path component/],
    ['a b', /whitespace/],
    ['host:99999/x', /registry/],
    ['-bad.host/x', /registry/],
    [`${'a'.repeat(250)}/b/c`, /longer than/],
  ])('rejects %j with a ConfigError', (input, why) => {
    expect(() => parseReference(input)).toThrow(ConfigError);
    expect(() => parseReference(input)).toThrow(why);
  });
});

describe('parseRepository', () => {
  it('adds library/ for single-component Hub names', () => {
    expect(parseRepository('debian')).toEqual({ registry: 'docker.io', repository: 'library/debian' });
  });

  it('keeps a registry with a port', () => {
    expect(parseRepository('127.0.0.1:5000/a/b')).toEqual({ registry: '127.0.0.1:5000', repository: 'a/b' });
  });

  it('rejects a tag', () => {
    expect(() => parseRepository('debian:12')).toThrow(ConfigError);
  });
});

describe('isLoopbackHost', () => {
  it.each([
    ['127.0.0.1:5000', true],
    ['127.1.2.3', true],
    ['localhost:80', true],
    ['[::1]:5000', true],
    ['docker.io', false],
    ['10.0.0.1:5000', false],
    ['127.example.com', false],
  ])('%s → %s', (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
  });
});

describe('names listed by a server', () => {
  it('accepts repository paths and tags of the reference grammar only', async () => {
    const { isValidTag } = await import('./reference.js');
    const { isValidRepositoryPath } = await import('../../core/repository-name.js');
    expect(isValidRepositoryPath('library/debian')).toBe(true);
    expect(isValidRepositoryPath('team/sub/app_x.y-z')).toBe(true);
    for (const bad of ['', '../etc', 'a//b', 'A/b', 'a/b?x', 'a/b#c', 'a/.b'])
      expect(isValidRepositoryPath(bad)).toBe(false);
    expect(isValidTag('sid-20240311-slim')).toBe(true);
    for (const bad of ['', '-x', '.x', 'a/b', 'a?b', 'a#b', 'x'.repeat(129)])
      expect(isValidTag(bad)).toBe(false);
  });
});
