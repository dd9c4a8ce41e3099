import { describe, expect, it } from 'vitest';
import { schemeConflict, signInAs } from './client.js';

describe('schemeConflict (the scheme a --catalog URL asks for against the one its host is reached over)', () => {
  it('accepts a URL whose scheme is the one its host is reached over', () => {
    expect(schemeConflict(new URL('http://127.0.0.1:5000'))).toBeUndefined();
    expect(schemeConflict(new URL('https://registry.example'))).toBeUndefined();
    expect(schemeConflict(new URL('http://registry.example:5000'), { scheme: 'http' })).toBeUndefined();
    expect(schemeConflict(new URL('https://127.0.0.1:5000'), { scheme: 'https' })).toBeUndefined();
  });

  it('refuses https for a loopback registry reached over plain http, saying what to write or set', () => {
    expect(schemeConflict(new URL('https://127.0.0.1:5000'))).toBe(
      'https://127.0.0.1:5000/ asks for https, but 127.0.0.1:5000 is crawled over plain http (a loopback host); ' +
        'write http://127.0.0.1:5000, or set registries."127.0.0.1:5000".scheme: https in the config file',
    );
  });

  it('refuses plain http for a remote registry reached over https, naming --insecure-registry', () => {
    expect(schemeConflict(new URL('http://192.0.2.2:5000'))).toMatch(
      /asks for plain http, but 192\.0\.2\.2:5000 is crawled over https; add --insecure-registry 192\.0\.2\.2:5000/,
    );
  });
});

describe('signInAs (whose credentials a registry endpoint may receive)', () => {
  it('is Docker Hub for its own API host, and the mirror host for a docker.io mirror', () => {
    expect(signInAs('docker.io', new URL('https://registry-1.docker.io'))).toBe('docker.io');
    expect(signInAs('docker.io', new URL('https://mirror.gcr.io'))).toBe('mirror.gcr.io');
    expect(signInAs('docker.io', new URL('http://127.0.0.1:5000'))).toBe('127.0.0.1:5000');
  });

  it("is the registry itself for another registry's endpoint (a proxy or tunnel set up for it)", () => {
    expect(signInAs('registry.example', new URL('http://127.0.0.1:5000'))).toBe('registry.example');
  });
});
