import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeHub, startFakeHub } from '../../../test/helpers/fake-hub.js';
import { AuthError, RateLimitedError } from '../../core/errors.js';
import { createLogger } from '../../core/log.js';
import { HubAuth, hubCredentialsFromEnv, jwtExpiryMs } from './auth.js';

const creds = { username: 'alice', token: 'dckr_pat_s3cr3t' };
let hub: FakeHub | undefined;
afterEach(async () => {
  await hub?.stop();
  hub = undefined;
});

describe('HubAuth', () => {
  it('refuses to send the PAT over plain HTTP to another machine, before any request', async () => {
    const auth = new HubAuth({ baseUrl: new URL('http://hub.example.invalid'), credentials: creds });
    await expect(auth.authorization()).rejects.toThrowError(AuthError);
    await expect(auth.authorization()).rejects.toThrowError(/plain HTTP/);
  });

  it('exchanges the PAT at /v2/auth/token for a Bearer access token', async () => {
    hub = await startFakeHub({ users: { alice: creds.token } });
    const auth = new HubAuth({ baseUrl: new URL(hub.url), credentials: creds });
    expect(await auth.authorization()).toBe(`Bearer ${hub.issuedTokens[0]}`);
    expect(hub.requests).toEqual([{ method: 'POST', path: '/v2/auth/token', query: {} }]);
  });

  it('shares one login between concurrent callers', async () => {
    hub = await startFakeHub({ users: { alice: creds.token } });
    const auth = new HubAuth({ baseUrl: new URL(hub.url), credentials: creds });
    const all = await Promise.all([auth.authorization(), auth.authorization(), auth.authorization()]);
    expect(new Set(all).size).toBe(1);
    expect(hub.issuedTokens).toHaveLength(1);
  });

  it('keeps the PAT and the access token out of serialized, inspected and logged forms', async () => {
    hub = await startFakeHub({ users: { alice: creds.token } });
    const auth = new HubAuth({ baseUrl: new URL(hub.url), credentials: creds });
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

  it('refuses wrong credentials with an AuthError that names the user and the env variables only', async () => {
    hub = await startFakeHub({ users: { alice: 'other' } });
    const auth = new HubAuth({ baseUrl: new URL(hub.url), credentials: creds });
    const err = await auth.authorization().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as Error).message).toMatch(/"alice".*HUBCRAWL_DOCKERHUB_TOKEN/);
    expect((err as Error).message).not.toContain(creds.token);
  });

  it('turns a rate-limited login into RateLimitedError with the Retry-After wait', async () => {
    hub = await startFakeHub({
      users: { alice: creds.token },
      rateLimit: { limitPerWindow: 0, retryAfterSec: 30, windowSec: 3600 },
    });
    const auth = new HubAuth({ baseUrl: new URL(hub.url), credentials: creds });
    const err = await auth.authorization().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RateLimitedError);
    expect(err).toMatchObject({ retryAfterMs: 30_000 });
  });

  it('caches the token until a minute before its JWT exp when that comes sooner than 9 minutes', async () => {
    let clock = 1_000_000_000_000;
    const exp = Math.floor(clock / 1000) + 300;
    const jwt = `x.${Buffer.from(JSON.stringify({ exp })).toString('base64url')}.y`;
    expect(jwtExpiryMs(jwt)).toBe(exp * 1000);
    hub = await startFakeHub({ users: { alice: creds.token }, now: () => clock });
    const auth = new HubAuth({ baseUrl: new URL(hub.url), credentials: creds, now: () => clock });
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
