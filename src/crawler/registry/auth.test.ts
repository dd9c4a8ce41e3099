import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, LookupFunction } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { Agent } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loginForIdentityToken } from '../../../scripts/lib/token-oauth.js';
import { type StartedTokenService, startTokenService } from '../../../scripts/lib/token-service.js';
import { AuthError, CredentialRefusedError } from '../../core/errors.js';
import { HttpClient } from '../http.js';
import { CATALOG_SCOPE, parseWwwAuthenticate, pullScope, RegistryAuth } from './auth.js';
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

  it("asks only to pull, whatever more the registry's challenge asks for with the credential", async () => {
    const n = svc.grants.length;
    const challenge = {
      'www-authenticate': `Bearer realm="${svc.realm}",service="${svc.service}",scope="repository:team/a:push,pull,delete registry:catalog:* repository:team/b:push"`,
    };
    const header = await authWith(identityToken).onUnauthorized(challenge, pullScope('team/a'), undefined);
    expect(svc.scopes.slice(n)).toEqual(['repository:team/a:pull']);
    expect(claims(header).access).toEqual([{ type: 'repository', name: 'team/a', actions: ['pull'] }]);
    // The catalog scope is asked for when the catalog is what the request wants.
    await authWith(identityToken).onUnauthorized(challenge, CATALOG_SCOPE, undefined);
    expect(svc.scopes.slice(n + 1)).toEqual(['repository:team/a:pull registry:catalog:*']);
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

  /**
   * The token service as `http://tokens.example:<port>`, a plain-http host that is not loopback to the
   * client's eyes; the name resolves to this machine, so the real service sees what would have left it.
   */
  function viaPlainHttpHost(): { http: HttpClient; realm: string } {
    const toLoopback = ((_host, options, callback) => {
      if (options.all) callback(null, [{ address: '127.0.0.1', family: 4 }]);
      else callback(null, '127.0.0.1', 4);
    }) as LookupFunction;
    const http = new HttpClient({
      maxRetries: 0,
      dispatcher: new Agent({ connect: { lookup: toLoopback } }),
    });
    return { http, realm: svc.realm.replace('127.0.0.1', 'tokens.example') };
  }

  it('never sends it over plain http to a token service on another host: that request is anonymous', async () => {
    const { http, realm } = viaPlainHttpHost();
    const n = svc.grants.length;
    const header = await authWith(identityToken, http).onUnauthorized(
      bearer(realm),
      pullScope('team/a'),
      undefined,
    );
    expect([svc.grants.slice(n), svc.authorizations.slice(n)]).toEqual([['get'], [undefined]]);
    expect(claims(header).sub).toBe('');
  });

  it('says, when access is then refused, that the credentials never went to the plain-http token service', async () => {
    const { http, realm } = viaPlainHttpHost();
    const auth = authWith(identityToken, http);
    const anonymous = await auth.onUnauthorized(bearer(realm), pullScope('team/a'), undefined);
    const tooWeak = { 'www-authenticate': `${bearer(realm)['www-authenticate']},error="insufficient_scope"` };
    const err = await auth.onUnauthorized(tooWeak, pullScope('team/a'), anonymous).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as Error).message).toMatch(
      /insufficient_scope\); credentials, if any are configured for registry\.test:5000, were not sent: its token service http:\/\/tokens\.example:\d+ is plain http/,
    );
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

describe('RegistryAuth with a username and password the token service refuses (the real token service)', () => {
  const REGISTRY = 'registry.test:5000';
  let dir: string;
  let svc: StartedTokenService;
  const http = new HttpClient({ maxRetries: 0 });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hubcrawl-basic-refused-'));
    svc = await startTokenService({ username: 'alice', password: 'alice-pw', certDir: dir });
  });
  afterAll(async () => {
    await http.close();
    await svc.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const authAs = (password: string) =>
    new RegistryAuth({
      http,
      registry: REGISTRY,
      credentials: CredentialStore.fromSources({
        explicit: { [REGISTRY]: { username: 'alice', password } },
        dockerConfigPath: null,
        env: {},
      }),
    });
  const challenge = () => ({ 'www-authenticate': `Bearer realm="${svc.realm}",service="${svc.service}"` });

  it('sends a wrong password once for all the scopes in flight and after, and says where to fix it', async () => {
    const auth = authAs('wrong-pw');
    const n = svc.grants.length;
    const scopes = ['a', 'b', 'c'].map((r) => pullScope(`team/${r}`));
    const errors = await Promise.all(
      scopes.map((scope) => auth.onUnauthorized(challenge(), scope, undefined).catch((e: unknown) => e)),
    );
    const later = await auth.onUnauthorized(challenge(), pullScope('team/d'), undefined).catch((e) => e);
    for (const err of [...errors, later]) {
      expect(err).toBeInstanceOf(AuthError);
      expect((err as Error).message).toMatch(
        /refused the username and password for registry\.test:5000; check the credentials configured for it/,
      );
      expect((err as Error).message).not.toContain('wrong-pw');
    }
    expect(svc.grants.slice(n)).toEqual(['get']);
    expect(auth.tokenRequests).toBe(1);
  });

  it('keeps asking per scope with a password the service accepts', async () => {
    const auth = authAs('alice-pw');
    const n = svc.grants.length;
    for (const r of ['a', 'b']) {
      expect(await auth.onUnauthorized(challenge(), pullScope(`team/${r}`), undefined)).toMatch(/^Bearer /);
    }
    expect(svc.grants.slice(n)).toEqual(['get', 'get']);
  });
});

/**
 * A hand-written token service for faults no real server here injects: `answer` sees each request's
 * query and body. Returns its realm URL and a stop function.
 */
async function startFaultyTokenService(
  answer: (query: URLSearchParams, body: string, res: ServerResponse) => void,
): Promise<{ realm: string; stop: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => answer(new URL(req.url ?? '/', 'http://x').searchParams, body, res));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    realm: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('RegistryAuth: a refusal of one scope is not a refusal of the credential', () => {
  // A token service that forbids one repository (403) and serves the rest.
  let svc: Awaited<ReturnType<typeof startFaultyTokenService>>;
  let realm: string;
  const http = new HttpClient({ maxRetries: 0 });
  beforeAll(async () => {
    svc = await startFaultyTokenService((query, body, res) => {
      const scope = query.get('scope') ?? new URLSearchParams(body).get('scope') ?? '';
      if (scope.includes('secret/')) res.writeHead(403).end();
      else res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"ok","expires_in":300}');
    });
    realm = svc.realm;
  });
  afterAll(async () => {
    await http.close();
    await svc.stop();
  });

  it.each([
    ['a username and password', { explicit: { 'registry.test': { username: 'alice', password: 'pw' } } }],
    ['an identity token', { identityToken: 'refresh-me' }],
  ])('with %s, a 403 for one repository leaves the others pulling', async (_what, source) => {
    const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-403-'));
    try {
      const dockerConfigPath = join(dir, 'config.json');
      const auths =
        'identityToken' in source ? { 'registry.test': { identitytoken: source.identityToken } } : {};
      writeFileSync(dockerConfigPath, JSON.stringify({ auths }));
      const credentials = CredentialStore.fromSources({
        ...('explicit' in source ? { explicit: source.explicit } : {}),
        dockerConfigPath,
        env: {},
      });
      const auth = new RegistryAuth({ http, registry: 'registry.test', credentials });
      const challenge = { 'www-authenticate': `Bearer realm="${realm}",service="test"` };
      const denied = await auth.onUnauthorized(challenge, pullScope('secret/x'), undefined).catch((e) => e);
      expect(denied).toBeInstanceOf(AuthError);
      expect(denied).not.toBeInstanceOf(CredentialRefusedError);
      expect(await auth.onUnauthorized(challenge, pullScope('team/a'), undefined)).toBe('Bearer ok');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('RegistryAuth with a token service that rotates refresh tokens', () => {
  // Each grant hands out a new refresh token and forgets the one it was given, as some OAuth2 servers do.
  let svc: Awaited<ReturnType<typeof startFaultyTokenService>>;
  let realm: string;
  let current = 'login-token';
  const sent: string[] = [];
  const http = new HttpClient({ maxRetries: 0 });
  beforeAll(async () => {
    svc = await startFaultyTokenService((_query, body, res) => {
      const presented = new URLSearchParams(body).get('refresh_token') ?? '';
      sent.push(presented);
      if (presented !== current) {
        res.writeHead(400, { 'content-type': 'application/json' }).end('{"error":"invalid_grant"}');
        return;
      }
      current = `rotated-${sent.length}`;
      const answer = JSON.stringify({ access_token: 'ok', expires_in: 300, refresh_token: current });
      // Slow enough that grants sent side by side would all carry the token this one replaces.
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(answer), 20);
    });
    realm = svc.realm;
  });
  afterAll(async () => {
    await http.close();
    await svc.stop();
  });

  it('sends the refresh token it was last given, one grant at a time, and never shows it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hubcrawl-rotate-'));
    try {
      const dockerConfigPath = join(dir, 'config.json');
      writeFileSync(
        dockerConfigPath,
        JSON.stringify({ auths: { 'registry.test': { identitytoken: current } } }),
      );
      const credentials = CredentialStore.fromSources({ dockerConfigPath, env: {} });
      const auth = new RegistryAuth({ http, registry: 'registry.test', credentials });
      const challenge = { 'www-authenticate': `Bearer realm="${realm}",service="test"` };
      // Three scopes at once, as a crawl asks: the grants go one after another, each with the latest token.
      const headers = await Promise.all(
        ['a', 'b', 'c'].map((r) => auth.onUnauthorized(challenge, pullScope(`team/${r}`), undefined)),
      );
      expect(headers).toEqual(['Bearer ok', 'Bearer ok', 'Bearer ok']);
      expect(sent).toEqual(['login-token', 'rotated-1', 'rotated-2']);
      expect(await auth.onUnauthorized(challenge, pullScope('team/d'), undefined)).toBe('Bearer ok');
      expect(sent.at(-1)).toBe('rotated-3');
      expect(`${inspect(auth)} ${JSON.stringify(auth)}`).not.toMatch(/rotated-|login-token/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('RegistryAuth with a Basic-only registry', () => {
  const http = new HttpClient({ maxRetries: 0 });
  afterAll(() => http.close());
  const basicChallenge = { 'www-authenticate': 'Basic realm="registry"' };
  const authAt = (endpoint: string) => {
    const registry = new URL(endpoint).host;
    const credentials = CredentialStore.fromSources({
      explicit: { [registry]: { username: 'alice', password: 'alice-pw' } },
      dockerConfigPath: null,
      env: {},
    });
    return new RegistryAuth({ http, registry, credentials, endpoint: new URL(endpoint) });
  };
  const basic = `Basic ${Buffer.from('alice:alice-pw').toString('base64')}`;

  it('sends the password over https and on loopback, never over plain http to another host', async () => {
    for (const endpoint of ['https://registry.internal', 'http://127.0.0.1:5000', 'http://localhost:5000']) {
      expect(await authAt(endpoint).onUnauthorized(basicChallenge, pullScope('a/b'), undefined)).toBe(basic);
    }
    const plain = authAt('http://registry.internal:5000');
    const err = await plain.onUnauthorized(basicChallenge, pullScope('a/b'), undefined).catch((e) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as Error).message).toMatch(
      /http:\/\/registry\.internal:5000, plain http: .*not sent in clear text/,
    );
    expect(String(err)).not.toContain('alice-pw');
  });

  it('says every way to give credentials when none are configured', async () => {
    const auth = new RegistryAuth({ http, registry: 'registry.internal:5000' });
    const err = await auth.onUnauthorized(basicChallenge, pullScope('a/b'), undefined).catch((e) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as Error).message).toBe(
      'registry.internal:5000 requires credentials (Basic auth) and none are configured: set HUBCRAWL_REGISTRY_HOST=registry.internal:5000 with HUBCRAWL_REGISTRY_USERNAME and HUBCRAWL_REGISTRY_PASSWORD, run `docker login registry.internal:5000`, or give registries."registry.internal:5000" a username and password in the config file',
    );
  });

  it('lets a request waiting for the first password’s answer go when it is aborted', async () => {
    const auth = authAt('https://registry.internal');
    // The first request learns the challenge and carries the password; its answer has not come yet.
    expect(await auth.onUnauthorized(basicChallenge, pullScope('a/b'), undefined)).toBe(basic);
    const stop = new AbortController();
    // The request's own signal is not the one that fires: the client's is (a run cut).
    const waiting = auth.headerFor(pullScope('c/d'), [new AbortController().signal, stop.signal]);
    const stopped = new Error('run cut');
    stop.abort(stopped);
    await expect(waiting).rejects.toBe(stopped);
    // An unaborted one still waits, and gets the password once the first is accepted.
    const next = auth.headerFor(pullScope('e/f'));
    auth.basicSettled(basic, 200);
    expect(await next).toBe(basic);
  });

  it('offers a refused password no more: later requests fail before sending it', async () => {
    const auth = authAt('https://registry.internal');
    const refused = await auth.onUnauthorized(basicChallenge, pullScope('a/b'), basic).catch((e) => e);
    expect(refused).toBeInstanceOf(CredentialRefusedError);
    expect((refused as Error).message).toMatch(/refused the configured username and password/);
    await expect(auth.headerFor(pullScope('c/d'))).rejects.toBe(refused);
  });
});

describe('RegistryAuth with a token service that answers expires_in under 60 s', () => {
  // token.md: a token "should never be returned with less than 60 seconds to live"; Docker's clients
  // raise a smaller expires_in to 60 (minimumTokenLifetimeSeconds), 0 included.
  let svc: Awaited<ReturnType<typeof startFaultyTokenService>>;
  let expiresIn = 0;
  let issued = 0;
  const http = new HttpClient({ maxRetries: 0 });
  beforeAll(async () => {
    svc = await startFaultyTokenService((_query, _body, res) => {
      issued += 1;
      const answer = JSON.stringify({ token: `t${issued}`, expires_in: expiresIn });
      res.writeHead(200, { 'content-type': 'application/json' }).end(answer);
    });
  });
  afterAll(async () => {
    await http.close();
    await svc.stop();
  });

  for (const seconds of [0, 1, -5]) {
    it(`takes expires_in ${seconds} as 60 s: the token is used, and kept for the next requests`, async () => {
      expiresIn = seconds;
      let clock = 1_000_000;
      const auth = new RegistryAuth({ http, registry: 'registry.test', now: () => clock });
      const challenge = { 'www-authenticate': `Bearer realm="${svc.realm}",service="test"` };
      const before = issued;
      const header = await auth.onUnauthorized(challenge, pullScope('a/b'), undefined);
      expect(header).toBe(`Bearer t${before + 1}`);
      clock += 30_000;
      expect(await auth.headerFor(pullScope('a/b'))).toBe(header);
      expect(issued - before).toBe(1);
      // Past 60 s (less the early refresh), a new one is fetched.
      clock += 30_000;
      expect(await auth.headerFor(pullScope('a/b'))).toBe(`Bearer t${before + 2}`);
    });
  }
});

describe('RegistryAuth with a token service whose token cannot be sent as a header', () => {
  let svc: Awaited<ReturnType<typeof startFaultyTokenService>>;
  let token = '';
  const http = new HttpClient({ maxRetries: 0 });
  beforeAll(async () => {
    svc = await startFaultyTokenService((_query, _body, res) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token }));
    });
  });
  afterAll(async () => {
    await http.close();
    await svc.stop();
  });

  for (const [what, bad] of [
    ['a line break', 'abc\r\nX-Injected: 1'],
    ['a space', 'abc def'],
    ['a byte outside ASCII', 'abcé'],
    ['a NUL', 'abc\u0000'],
  ]) {
    it(`refuses one holding ${what} as an AuthError naming the token service`, async () => {
      token = bad as string;
      const auth = new RegistryAuth({ http, registry: 'registry.test' });
      const challenge = { 'www-authenticate': `Bearer realm="${svc.realm}",service="test"` };
      const err = await auth.onUnauthorized(challenge, pullScope('a/b'), undefined).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AuthError);
      expect((err as Error).message).toBe(
        `token service ${new URL(svc.realm).origin} returned a token for repository:a/b:pull that is not a header value (it holds a space, a line break or a byte outside visible ASCII); the token service, or a proxy in front of it, is broken`,
      );
    });
  }
});
