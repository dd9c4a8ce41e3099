import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loginForIdentityToken } from '../../../scripts/lib/token-oauth.js';
import { type StartedTokenService, startTokenService } from '../../../scripts/lib/token-service.js';
import { AuthError } from '../../core/errors.js';
import { HttpClient } from '../http.js';
import { parseWwwAuthenticate, pullScope, RegistryAuth } from './auth.js';
import { CredentialStore } from './credentials.js';

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

describe('RegistryAuth with an identity token (the real token service, in this process)', () => {
  const REGISTRY = 'registry.test:5000';
  let dir: string;
  let svc: StartedTokenService;
  let identityToken: string;
  const clients: HttpClient[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hubcrawl-idtoken-'));
    svc = await startTokenService({ username: 'alice', password: 'alice-pw', certDir: dir });
    identityToken = await loginForIdentityToken({
      realm: svc.realm,
      service: svc.service,
      username: 'alice',
      password: 'alice-pw',
    });
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await svc.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** RegistryAuth for REGISTRY with `token` as the identity token `docker login` left in config.json. */
  function authWith(token: string, http = new HttpClient({ maxRetries: 0 })): RegistryAuth {
    clients.push(http);
    const config = join(dir, `config-${clients.length}.json`);
    const auth = Buffer.from('alice:').toString('base64');
    writeFileSync(config, JSON.stringify({ auths: { [REGISTRY]: { auth, identitytoken: token } } }));
    const credentials = CredentialStore.fromSources({ dockerConfigPath: config, env: {} });
    return new RegistryAuth({ http, registry: REGISTRY, credentials });
  }

  const bearer = (realm: string) => ({
    'www-authenticate': `Bearer realm="${realm}",service="${svc.service}"`,
  });

  /** The claims of the JWT in a `Bearer …` header. */
  function claims(header: string): { sub: string; access: Array<{ name: string; actions: string[] }> } {
    const payload = header.slice('Bearer '.length).split('.')[1] ?? '';
    return JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  }

  it('trades it for a Bearer token through the refresh-token grant, all scopes in one form field', async () => {
    const n = svc.grants.length;
    const scope = `${pullScope('team/a')} ${pullScope('team/b')}`;
    const header = await authWith(identityToken).onUnauthorized(bearer(svc.realm), scope, undefined);
    expect([svc.grants.slice(n), svc.scopes.slice(n), svc.authorizations.slice(n)]).toEqual([
      ['refresh_token'],
      [scope],
      [undefined],
    ]);
    expect(claims(header)).toMatchObject({
      sub: 'alice',
      access: [
        { name: 'team/a', actions: ['pull'] },
        { name: 'team/b', actions: ['pull'] },
      ],
    });
  });

  it('says to docker login again when the token service refuses it, and asks only once', async () => {
    const n = svc.grants.length;
    const auth = authWith('revoked-or-never-issued');
    const tries = [pullScope('team/a'), pullScope('team/b')].map((scope) =>
      auth.onUnauthorized(bearer(svc.realm), scope, undefined).catch((err: unknown) => err),
    );
    for (const err of await Promise.all(tries)) {
      expect(err).toBeInstanceOf(AuthError);
      expect((err as Error).message).toMatch(
        /refused the identity token for registry\.test:5000 .*run `docker login registry\.test:5000` again/,
      );
      expect((err as Error).message).not.toContain('revoked-or-never-issued');
    }
    expect(svc.grants.slice(n)).toEqual(['refresh_token']);
  });

  it('never sends it over plain http to a token service on another host: that request is anonymous', async () => {
    // tokens.example resolves to this machine, so the real token service sees what would have left it.
    const toLoopback = ((_host, options, callback) => {
      if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
      else callback(null, '127.0.0.1', 4);
    }) as LookupFunction;
    const http = new HttpClient({
      maxRetries: 0,
      dispatcher: new Agent({ connect: { lookup: toLoopback } }),
    });
    const realm = svc.realm.replace('127.0.0.1', 'tokens.example');
    const n = svc.grants.length;
    const header = await authWith(identityToken, http).onUnauthorized(
      bearer(realm),
      pullScope('team/a'),
      undefined,
    );
    expect([svc.grants.slice(n), svc.authorizations.slice(n)]).toEqual([['get'], [undefined]]);
    expect(claims(header).sub).toBe('');
  });

  it('names a token service without the refresh-token grant (404 to the POST) rather than calling the token refused', async () => {
    const realm = svc.realm.replace(/\/token$/, '/no-oauth');
    const err = await authWith(identityToken)
      .onUnauthorized(bearer(realm), pullScope('team/a'), undefined)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as Error).message).toMatch(
      /does not take the OAuth2 refresh-token grant \(POST answered 404\).*username and password for registry\.test:5000/,
    );
  });

  it('cannot answer a Basic challenge with it, and says to give a username and password', async () => {
    const err = await authWith(identityToken)
      .onUnauthorized({ 'www-authenticate': 'Basic realm="registry"' }, pullScope('team/a'), undefined)
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as Error).message).toMatch(
      /Basic auth, which cannot carry the identity token .*username and password/,
    );
  });
});
