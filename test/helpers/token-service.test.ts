/**
 * Self-tests of the token service, with the real registry as the judge of its tokens. This file
 * starts its own token-flavour registry so it can read the service's counters (the shared ones
 * live in the vitest main process). The token service runs in this process, so nothing here may
 * block the event loop (no execFileSync against this registry).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildImage } from '../../scripts/lib/image-builder.js';
import { pushImage } from '../../scripts/lib/push.js';
import { type RunningRegistry, startRegistry } from '../../scripts/lib/registry.js';
import { loginForIdentityToken } from '../../scripts/lib/token-oauth.js';
import type { StartedTokenService } from '../../scripts/lib/token-service.js';

let reg: RunningRegistry;
let svc: StartedTokenService;

beforeAll(async () => {
  reg = await startRegistry({ auth: 'token' });
  if (!reg.token) throw new Error('token flavour started without a token service');
  svc = reg.token;
});
afterAll(async () => {
  await reg.stop();
});

const basic = (): string => `Basic ${Buffer.from(`${reg.username}:${reg.password}`).toString('base64')}`;

async function getToken(scope: string, authorization?: string): Promise<Response> {
  const u = new URL(svc.realm);
  u.searchParams.set('service', svc.service);
  u.searchParams.set('scope', scope);
  return fetch(u, { headers: authorization ? { authorization } : {} });
}

function claims(token: string): {
  exp: number;
  iat: number;
  access: Array<{ name: string; actions: string[] }>;
} {
  return JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString());
}

/** An OAuth2 token request (oauth.md): a url-encoded form POSTed to the realm. */
async function postGrant(fields: Record<string, string>): Promise<Response> {
  return fetch(svc.realm, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ service: svc.service, client_id: 'selftest', ...fields }),
  });
}

const login = () =>
  loginForIdentityToken({
    realm: svc.realm,
    service: svc.service,
    username: reg.username!,
    password: reg.password!,
  });

async function tokenFor(scope: string, authorization?: string): Promise<string> {
  const body = (await (await getToken(scope, authorization)).json()) as {
    token: string;
    access_token: string;
  };
  expect(body.access_token).toBe(body.token);
  return body.token;
}

describe('token service', () => {
  it('grants an anonymous caller pull only, even when it asks for push', async () => {
    const token = await tokenFor('repository:selftest/t:pull,push');
    expect(claims(token).access).toEqual([{ type: 'repository', name: 'selftest/t', actions: ['pull'] }]);
  });

  it('grants the configured user the push it asks for', async () => {
    const token = await tokenFor('repository:selftest/t:pull,push', basic());
    expect(claims(token).access[0]?.actions).toEqual(['pull', 'push']);
  });

  it('refuses wrong credentials with 401', async () => {
    const res = await getToken(
      'repository:selftest/t:pull',
      `Basic ${Buffer.from('x:y').toString('base64')}`,
    );
    expect(res.status).toBe(401);
  });

  it('makes tokens the real registry accepts for pull and refuses for an unauthorised push', async () => {
    const image = await buildImage({ layers: [{ entries: [{ type: 'file', path: 'p', content: 'p' }] }] });
    await pushImage(reg, 'selftest/t', 'v1', image);
    const anon = await tokenFor('repository:selftest/t:pull');
    const pull = await fetch(`${reg.url}/v2/selftest/t/manifests/v1`, {
      headers: { authorization: `Bearer ${anon}`, accept: image.mediaType },
    });
    await pull.arrayBuffer();
    expect(pull.status).toBe(200);
    const push = await fetch(`${reg.url}/v2/selftest/t/blobs/uploads/`, {
      method: 'POST',
      headers: { authorization: `Bearer ${anon}` },
    });
    await push.arrayBuffer();
    expect(push.status).toBe(401);
  });

  it('counts requests and issued tokens and records the Authorization headers', async () => {
    const [requests, issued] = [svc.requests, svc.issued];
    await tokenFor('repository:selftest/t:pull', basic());
    await getToken('repository:selftest/t:pull', 'Basic bad');
    expect([svc.requests - requests, svc.issued - issued]).toEqual([2, 1]);
    expect(svc.authorizations.slice(-2)).toEqual([basic(), 'Basic bad']);
  });

  it('answers 503 while set down, and serves again when set up', async () => {
    svc.setDown(true);
    const down = await getToken('repository:selftest/t:pull');
    svc.setDown(false);
    const up = await getToken('repository:selftest/t:pull');
    expect([down.status, up.status]).toEqual([503, 200]);
  });

  it('issues tokens with the configured lifetime, and the registry refuses an already expired one', async () => {
    svc.setExpiresIn(-60);
    const res = await getToken('repository:selftest/t:pull');
    svc.setExpiresIn(300);
    const body = (await res.json()) as { token: string; expires_in: number };
    expect(body.expires_in).toBe(-60);
    const c = claims(body.token);
    expect(c.exp - c.iat).toBe(-60);
    const pull = await fetch(`${reg.url}/v2/selftest/t/tags/list`, {
      headers: { authorization: `Bearer ${body.token}` },
    });
    await pull.arrayBuffer();
    expect(pull.status).toBe(401);
  });

  it('gives docker login an identity token, which the refresh-token grant trades for access the registry accepts', async () => {
    const image = await buildImage({ layers: [{ entries: [{ type: 'file', path: 'q', content: 'q' }] }] });
    await pushImage(reg, 'selftest/private', 'v1', image);
    const identityToken = await login();
    const res = await postGrant({
      grant_type: 'refresh_token',
      refresh_token: identityToken,
      scope: 'repository:selftest/private:pull',
    });
    const body = (await res.json()) as { access_token: string; scope: string; refresh_token?: string };
    expect([res.status, body.scope, body.refresh_token]).toEqual([
      200,
      'repository:selftest/private:pull',
      undefined,
    ]);
    expect(claims(body.access_token)).toMatchObject({ sub: reg.username });
    svc.setAnonymousPull(false);
    try {
      const pull = await fetch(`${reg.url}/v2/selftest/private/manifests/v1`, {
        headers: { authorization: `Bearer ${body.access_token}`, accept: image.mediaType },
      });
      await pull.arrayBuffer();
      const anon = await tokenFor('repository:selftest/private:pull');
      const refused = await fetch(`${reg.url}/v2/selftest/private/manifests/v1`, {
        headers: { authorization: `Bearer ${anon}`, accept: image.mediaType },
      });
      await refused.arrayBuffer();
      expect([pull.status, refused.status]).toEqual([200, 401]);
    } finally {
      svc.setAnonymousPull(true);
    }
  });

  it('refuses an unknown refresh token with 401 invalid_grant, and records the grant', async () => {
    const n = svc.grants.length;
    const res = await postGrant({ grant_type: 'refresh_token', refresh_token: 'never-issued' });
    expect([res.status, ((await res.json()) as { error: string }).error]).toEqual([401, 'invalid_grant']);
    expect(svc.grants.slice(n)).toEqual(['refresh_token']);
  });

  it('refuses a wrong password in the password grant', async () => {
    const res = await postGrant({ grant_type: 'password', username: reg.username!, password: 'wrong' });
    await res.arrayBuffer();
    expect(res.status).toBe(401);
  });

  it('answers 400 to a grant without client_id, of an unknown type, or not sent as a form', async () => {
    const identityToken = await login();
    const noClient = await fetch(svc.realm, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        refresh_token: identityToken,
        service: svc.service,
      }),
    });
    const unknown = await postGrant({ grant_type: 'client_credentials' });
    const json = await fetch(svc.realm, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: identityToken }),
    });
    const errors = await Promise.all([noClient, unknown, json].map(async (r) => [r.status, await r.json()]));
    expect(errors.map(([status, body]) => [status, (body as { error: string }).error])).toEqual([
      [400, 'invalid_request'],
      [400, 'unsupported_grant_type'],
      [400, 'invalid_request'],
    ]);
  });
});
