import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeHub, startFakeHub } from '../../../test/helpers/fake-hub.js';
import { AuthError, LimitExceededError, RateLimitedError } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import { HttpClient, type HttpClientOptions, type HttpEvent } from '../http.js';
import { CredentialStore } from '../registry/credentials.js';
import {
  HubAuth,
  type HubAuthOptions,
  hubCredentialsFromEnv,
  hubCredentialsFromStore,
  jwtExpiryMs,
} from './auth.js';

const creds = { username: 'alice', token: 'dckr_pat_s3cr3t' };
let hub: FakeHub | undefined;
let server: Server | undefined;
let http: HttpClient | undefined;
/** The fake Hub's clock; the HttpClient's sleeps advance it instead of waiting. */
let clock = 1_000_000_000_000;
let sleeps: number[] = [];
let events: HttpEvent[] = [];
afterEach(async () => {
  await http?.close();
  await hub?.stop();
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  hub = server = http = undefined;
});

/** A HubAuth on a fresh HttpClient whose backoffs and 429 pauses move `clock` instead of waiting. */
function makeAuth(
  baseUrl: string,
  opts: Partial<HubAuthOptions> = {},
  httpOpts: HttpClientOptions = {},
): HubAuth {
  sleeps = [];
  events = [];
  http = new HttpClient({
    sleep: async (ms) => {
      sleeps.push(ms);
      clock += ms;
    },
    onEvent: (e) => events.push(e),
    ...httpOpts,
  });
  return new HubAuth({ baseUrl: new URL(baseUrl), credentials: creds, http, ...opts });
}

/** The fake Hub on `clock`, with alice's PAT accepted unless `users` says otherwise. */
async function startHub(opts: Parameters<typeof startFakeHub>[0] = {}): Promise<FakeHub> {
  hub = await startFakeHub({ users: { alice: creds.token }, now: () => clock, ...opts });
  return hub;
}

describe('HubAuth', () => {
  it('refuses to send the PAT over plain HTTP to another machine, before any request', async () => {
    const auth = makeAuth('http://hub.example.invalid');
    await expect(auth.authorization()).rejects.toThrowError(AuthError);
    await expect(auth.authorization()).rejects.toThrowError(/plain HTTP/);
    expect(http?.stats.requests).toBe(0);
  });

  it('exchanges the PAT at /v2/auth/token for a Bearer access token', async () => {
    const hub = await startHub();
    const auth = makeAuth(hub.url);
    expect(await auth.authorization()).toBe(`Bearer ${hub.issuedTokens[0]}`);
    expect(hub.requests).toEqual([{ method: 'POST', path: '/v2/auth/token', query: {} }]);
    expect(http?.stats.byMethod).toEqual({ POST: 1 });
  });

  it('shares one login between concurrent callers', async () => {
    const hub = await startHub();
    const auth = makeAuth(hub.url);
    const all = await Promise.all([auth.authorization(), auth.authorization(), auth.authorization()]);
    expect(new Set(all).size).toBe(1);
    expect(hub.issuedTokens).toHaveLength(1);
  });

  it('keeps the PAT and the access token out of serialized, inspected and logged forms', async () => {
    const hub = await startHub();
    const auth = makeAuth(hub.url);
    await auth.authorization();
    const lines: string[] = [];
    const log = createLogger({
      level: 'info',
      destination: { write: (s: string) => lines.push(s) } as never,
    });
    log.info({ auth, headers: { authorization: await auth.authorization() } }, 'request');
    const text = [JSON.stringify(auth), inspect(auth, { depth: 10, showHidden: true }), ...lines].join('\n');
    expect(lines).toHaveLength(1);
    for (const secret of [creds.token, ...hub.issuedTokens]) expect(text).not.toContain(secret);
  });

  it('asks the Hub once: a refused login is rethrown to every later caller without posting the token again', async () => {
    const hub = await startHub({ users: { alice: 'other' } });
    const auth = makeAuth(hub.url);
    const first = await auth.authorization().catch((e: unknown) => e);
    const later = await Promise.all([1, 2, 3].map(() => auth.authorization().catch((e: unknown) => e)));
    expect(first).toBeInstanceOf(AuthError);
    for (const err of later) expect(err).toBe(first);
    expect(hub.requests).toHaveLength(1);
  });

  it('refuses wrong credentials with an AuthError that names the user, the status and the env variables', async () => {
    const hub = await startHub({ users: { alice: 'other' } });
    const err = await makeAuth(hub.url)
      .authorization()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as Error).message).toMatch(
      /refused the login of "alice" .* with 401 \(the Hub says: Incorrect authentication credentials\).*HUBCRAWL_DOCKERHUB_TOKEN/,
    );
    expect((err as Error).message).not.toContain(creds.token);
    expect(hub.requests).toHaveLength(1);
  });

  it('logs in again after a 429, waiting the Retry-After through the shared HttpClient', async () => {
    const hub = await startHub({ rateLimit: { limitPerWindow: 1, retryAfterSec: 30, windowSec: 3600 } });
    await fetch(`${hub.url}/v2/repositories/acme/`); // spends the window, so the login meets a 429
    const auth = makeAuth(hub.url);
    expect(await auth.authorization()).toBe(`Bearer ${hub.issuedTokens[0]}`);
    expect(sleeps).toEqual([30_000]);
    expect(hub.rateLimitedCount).toBe(1);
    expect(hub.requests.filter((r) => r.method === 'POST')).toHaveLength(2);
    expect(http?.stats.rateLimitPauses).toBe(1);
  });

  it('gives up with RateLimitedError and the Retry-After wait when every login is answered 429', async () => {
    const hub = await startHub({ rateLimit: { limitPerWindow: 0, retryAfterSec: 30, windowSec: 3600 } });
    const err = await makeAuth(hub.url, {}, { max429Waits: 2 })
      .authorization()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitedError);
    expect(err).toMatchObject({ retryAfterMs: 30_000 });
    expect((err as Error).message).toMatch(/^Docker Hub login was rate limited/);
    expect(sleeps).toEqual([30_000, 30_000]);
  });

  it('stops at once with RateLimitedError when the Hub asks for a longer wait than maxPauseMs', async () => {
    const hub = await startHub({ rateLimit: { limitPerWindow: 0, retryAfterSec: 3600, windowSec: 3600 } });
    const err = await makeAuth(hub.url)
      .authorization()
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ retryAfterMs: 3_600_000 });
    expect(hub.requests).toHaveLength(1);
  });

  it('never writes the PAT or an access token to the log while logging in through a 429 and a refusal', async () => {
    const lines: string[] = [];
    const log = createLogger({
      level: 'debug',
      destination: { write: (s: string) => lines.push(s) } as never,
    });
    const hub = await startHub({ rateLimit: { limitPerWindow: 1, retryAfterSec: 5, windowSec: 3600 } });
    await fetch(`${hub.url}/v2/repositories/acme/`);
    const onLogin: HubAuthOptions['onLogin'] = (e) => log.debug({ hub: e }, 'docker hub: login');
    const auth = makeAuth(hub.url, { onLogin }, { onEvent: (e) => log.debug({ http: e }, 'http') });
    await auth.authorization();
    const refused = await makeAuth(hub.url, { credentials: { username: 'alice', token: 'dckr_pat_wrong' } })
      .authorization()
      .catch((e: unknown) => e);
    log.warn({ err: refused }, 'login failed');
    expect(refused).toBeInstanceOf(AuthError);
    expect(lines.join('\n')).toMatch(/"status":429[\s\S]*docker hub: login[\s\S]*login failed/);
    for (const secret of [creds.token, 'dckr_pat_wrong', ...hub.issuedTokens])
      expect(lines.join('\n')).not.toContain(secret);
  });

  it('refuses a login answer over 64 KiB and still names a refusal whose body is that large', async () => {
    let status = 200;
    server = createServer((_q, res) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(`{"detail":"${'x'.repeat(100 * 1024)}"}`);
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await expect(makeAuth(url).authorization()).rejects.toThrowError(LimitExceededError);
    status = 401;
    await expect(makeAuth(url).authorization()).rejects.toThrowError(/with 401; check/);
  });

  it('logs in again when the connection drops after the login was sent (a second login only issues a second token)', async () => {
    let logins = 0;
    server = createServer((req, res) => {
      logins += 1;
      req.resume();
      req.on('end', () => {
        if (logins === 1) req.socket.destroy();
        else res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"second"}');
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect(await makeAuth(url).authorization()).toBe('Bearer second');
    expect(logins).toBe(2);
    expect(sleeps).toHaveLength(1);
  });

  it('caches the token until a minute before its JWT exp when that comes sooner than 9 minutes', async () => {
    clock = 1_000_000_000_000;
    const exp = Math.floor(clock / 1000) + 300;
    const jwt = `x.${Buffer.from(JSON.stringify({ exp })).toString('base64url')}.y`;
    expect(jwtExpiryMs(jwt)).toBe(exp * 1000);
    const hub = await startHub();
    const auth = makeAuth(hub.url, { now: () => clock });
    await auth.authorization();
    clock += 8 * 60_000 + 59_000;
    await auth.authorization();
    expect(hub.issuedTokens).toHaveLength(1);
    clock += 2_000;
    await auth.authorization();
    expect(hub.issuedTokens).toHaveLength(2);
  });
});

describe('hubCredentialsFromEnv', () => {
  it('reads HUBCRAWL_DOCKERHUB_USERNAME and HUBCRAWL_DOCKERHUB_TOKEN together or not at all', () => {
    expect(
      hubCredentialsFromEnv({ HUBCRAWL_DOCKERHUB_USERNAME: 'a', HUBCRAWL_DOCKERHUB_TOKEN: 't' }),
    ).toEqual({
      username: 'a',
      token: 't',
    });
    expect(hubCredentialsFromEnv({ HUBCRAWL_DOCKERHUB_USERNAME: 'a' })).toBeUndefined();
    expect(hubCredentialsFromEnv({})).toBeUndefined();
  });

  it('reads no exp from a token that is not a JWT', () => {
    expect(jwtExpiryMs('opaque-token')).toBeUndefined();
  });
});

describe('hubCredentialsFromStore', () => {
  const store = CredentialStore.fromSources({
    dockerConfigPath: null,
    explicit: { 'index.docker.io': { username: 'bob', password: 'dckr_pat_from_config' } },
  });

  it("signs in to the official Hub API, or a loopback test server, with the store's docker.io credential", () => {
    expect(hubCredentialsFromStore(store, 'https://hub.docker.com')).toMatchObject({
      username: 'bob',
      token: 'dckr_pat_from_config',
      source: expect.stringContaining('docker login'),
    });
    expect(hubCredentialsFromStore(store, 'http://127.0.0.1:8080')?.username).toBe('bob');
  });

  it('never hands a docker.io password to another Hub API URL, such as a mirror', () => {
    expect(hubCredentialsFromStore(store, 'https://hub-mirror.example.com')).toBeUndefined();
    expect(hubCredentialsFromStore(store, 'http://hub.docker.com')).toBeUndefined();
  });

  it('is anonymous when the store has no docker.io credential', () => {
    expect(hubCredentialsFromStore(CredentialStore.empty(), 'https://hub.docker.com')).toBeUndefined();
  });

  it('names its source when the Hub refuses the login', async () => {
    await startHub({ users: { bob: 'another' } });
    const fromConfig = hubCredentialsFromStore(store, hub!.url)!;
    const err = await makeAuth(hub!.url, { credentials: fromConfig })
      .authorization()
      .catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      /refused the login of "bob" .*check the docker.io login of the Docker config/,
    );
  });
});
