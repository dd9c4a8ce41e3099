import { afterEach, describe, expect, it } from 'vitest';
import { type FakeHub, type FakeHubRepo, formatPullCount, startFakeHub } from './fake-hub.js';

const D = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

function repoWithTags(n: number, namespace = 'acme', name = 'app'): FakeHubRepo {
  return {
    namespace,
    name,
    pullCount: 1234,
    tags: Array.from({ length: n }, (_, i) => ({
      name: `t${i}`,
      digest: D(i + 1),
      mediaType: 'application/vnd.oci.image.index.v1+json',
      lastPushed: `2024-01-01T00:00:${String(i % 60).padStart(2, '0')}Z`,
      images: [{ os: 'linux', architecture: 'amd64', digest: D(10_000 + i), size: 100 }],
    })),
  };
}

let hub: FakeHub | undefined;
afterEach(async () => {
  await hub?.stop();
  hub = undefined;
});

// biome-ignore lint/suspicious/noExplicitAny: the tests read loose JSON bodies field by field
type Json = Record<string, any>;

async function get(path: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${hub!.url}${path}`, { headers });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Json };
}

describe('fake Docker Hub', () => {
  it('pages tags with absolute next URLs on its own origin and the real tag shape', async () => {
    hub = await startFakeHub({ repos: [repoWithTags(250)] });
    const p1 = await get('/v2/namespaces/acme/repositories/app/tags?page_size=100');
    expect(p1.body.count).toBe(250);
    expect(p1.body.previous).toBeNull();
    expect(p1.body.next).toBe(`${hub.url}/v2/namespaces/acme/repositories/app/tags?page=2&page_size=100`);
    const tag = p1.body.results[0];
    expect(Object.keys(tag)).toEqual(
      expect.arrayContaining([
        'images',
        'tag_status',
        'tag_last_pushed',
        'media_type',
        'content_type',
        'digest',
      ]),
    );
    expect(tag.images[0]).toMatchObject({
      os: 'linux',
      architecture: 'amd64',
      digest: D(10_000),
      variant: null,
    });
    const p3 = await get('/v2/namespaces/acme/repositories/app/tags?page=3&page_size=100');
    expect(p3.body.results).toHaveLength(50);
    expect(p3.body.next).toBeNull();
  });

  it('caps page_size at 100 and answers 404 past the last page', async () => {
    hub = await startFakeHub({ repos: [repoWithTags(150)] });
    expect((await get('/v2/repositories/acme/app/tags/?page_size=500')).body.results).toHaveLength(100);
    expect((await get('/v2/repositories/acme/app/tags/?page=3&page_size=100')).status).toBe(404);
  });

  it('refuses anonymous paging past the offset cap with the exact Hub body', async () => {
    hub = await startFakeHub({ repos: [repoWithTags(1200)] });
    const res = await get('/v2/namespaces/acme/repositories/app/tags?page=11&page_size=100');
    expect(res.status).toBe(403);
    expect(res.body).toEqual({
      message: 'pagination offset too large for anonymous requests; sign in to page further',
      errinfo: {},
    });
  });

  it('lets a token from /v2/auth/token page past the cap', async () => {
    hub = await startFakeHub({ repos: [repoWithTags(1200)], users: { alice: 'dckr_pat_x' } });
    const login = await fetch(`${hub.url}/v2/auth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ identifier: 'alice', secret: 'dckr_pat_x' }),
    });
    const { access_token } = (await login.json()) as { access_token: string };
    const res = await get('/v2/namespaces/acme/repositories/app/tags?page=11&page_size=100', {
      authorization: `Bearer ${access_token}`,
    });
    expect(res.status).toBe(200);
    expect(res.body.results).toHaveLength(100);
  });

  it('rejects a wrong PAT with 401', async () => {
    hub = await startFakeHub({ users: { alice: 'right' } });
    const res = await fetch(`${hub.url}/v2/auth/token`, {
      method: 'POST',
      body: JSON.stringify({ identifier: 'alice', secret: 'wrong' }),
    });
    expect(res.status).toBe(401);
  });

  it('sends X-RateLimit headers and a 429 with Retry-After once the window is spent, then recovers', async () => {
    let clock = 1_000_000;
    hub = await startFakeHub({
      repos: [repoWithTags(1)],
      rateLimit: { limitPerWindow: 2, retryAfterSec: 7 },
      now: () => clock,
    });
    const a = await get('/v2/namespaces/acme/repositories/app');
    expect(a.headers.get('x-ratelimit-limit')).toBe('2');
    expect(a.headers.get('x-ratelimit-remaining')).toBe('1');
    expect(a.headers.get('x-ratelimit-reset')).toBe(String(Math.ceil((1_000_000 + 60_000) / 1000)));
    await get('/v2/namespaces/acme/repositories/app');
    const limited = await get('/v2/namespaces/acme/repositories/app');
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('7');
    clock += 7_000;
    expect((await get('/v2/namespaces/acme/repositories/app')).status).toBe(200);
  });

  it('answers v4 search with rounded pull counts and v2 search with repo_name', async () => {
    hub = await startFakeHub({
      repos: [
        { ...repoWithTags(0, 'library', 'debian'), pullCount: 1_500_000_000 },
        { ...repoWithTags(0, 'acme', 'debian-tools'), pullCount: 10 },
      ],
    });
    const v4 = await get('/api/search/v4?query=debian&from=0&size=10');
    expect(v4.body.total).toBe(2);
    expect(v4.body.results[0]).toMatchObject({ id: 'library/debian', pull_count: '1B+', badge: 'official' });
    const v2 = await get('/v2/search/repositories/?query=debian&page_size=10');
    expect(v2.body.results.map((r: { repo_name: string }) => r.repo_name)).toEqual([
      'debian',
      'acme/debian-tools',
    ]);
  });

  it('records every request with its path, query and authorization', async () => {
    hub = await startFakeHub({ repos: [repoWithTags(1)] });
    await get('/v2/namespaces/acme/repositories?page_size=5', { authorization: 'Bearer nope' });
    expect(hub.requests).toEqual([
      {
        method: 'GET',
        path: '/v2/namespaces/acme/repositories',
        query: { page_size: '5' },
        authorization: 'Bearer nope',
      },
    ]);
  });

  it('rounds pull counts the way the v4 search does', () => {
    expect([formatPullCount(1_234_567_890), formatPullCount(15_722_123), formatPullCount(523)]).toEqual([
      '1B+',
      '15M+',
      '523',
    ]);
  });
});
