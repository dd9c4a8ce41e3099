import { describe, expect, it } from 'vitest';
import { parseWwwAuthenticate } from './auth.js';

describe('parseWwwAuthenticate', () => {
  it('parses the Docker Hub Bearer challenge', () => {
    expect(
      parseWwwAuthenticate(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:ahmet/wagl:pull"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:ahmet/wagl:pull',
        },
      },
    ]);
  });

  it('keeps commas inside quoted values', () => {
    const [c] = parseWwwAuthenticate(
      'Bearer realm="r",scope="repository:a/b:pull,push",error="insufficient_scope"',
    );
    expect(c?.params.scope).toBe('repository:a/b:pull,push');
    expect(c?.params.error).toBe('insufficient_scope');
  });

  it('parses a Basic challenge', () => {
    expect(parseWwwAuthenticate('Basic realm="Registry Realm"')).toEqual([
      { scheme: 'basic', params: { realm: 'Registry Realm' } },
    ]);
  });

  it('parses several challenges in one header and across headers', () => {
    const cs = parseWwwAuthenticate([
      'Basic realm="x", Bearer realm="https://t/token", service=reg',
      'Negotiate',
    ]);
    expect(cs.map((c) => c.scheme)).toEqual(['basic', 'bearer', 'negotiate']);
    expect(cs[1]?.params).toEqual({ realm: 'https://t/token', service: 'reg' });
  });

  it('unescapes backslashes in quoted values and lowercases names', () => {
    const [c] = parseWwwAuthenticate('BEARER Realm="a\\"b", SERVICE = "s"');
    expect(c).toEqual({ scheme: 'bearer', params: { realm: 'a"b', service: 's' } });
  });

  it('returns nothing for an absent or empty header', () => {
    expect(parseWwwAuthenticate(undefined)).toEqual([]);
    expect(parseWwwAuthenticate('')).toEqual([]);
  });

  it('survives an unterminated quote', () => {
    expect(parseWwwAuthenticate('Bearer realm="https://x')[0]?.params.realm).toBe('https://x');
  });
});
