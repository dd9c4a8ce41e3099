import { afterEach, describe, expect, it } from 'vitest';
import { type FakeHub, type FakeHubRepo, startFakeHub } from '../../../test/helpers/fake-hub.js';
import { AuthError, CorruptInputError, PermanentError } from '../../core/errors.js';
import { HttpClient, type HttpEvent } from '../http.js';
import { HubClient, type HubClientOptions, type HubEvent, HubOffsetCapError, type HubTag } from './client.js';
import { SEARCH_RESULT_CAP } from './search.js';

const D = (n: number) => `sha256:${n.toString(16).padStart(64, '0')}`;

function repo(tags: number, namespace = 'acme', name = 'app', pullCount = 1000): FakeHubRepo {
  return {
    namespace,
    name,
    pullCount,
    starCount: 3,
    description: `${namespace}/${name}`,
    tags: Array.from({ length: tags }, (_, i) => ({
      name: `t${i}`,
      digest: D(i + 1),
      mediaType: 'application/vnd.oci.image.index.v1+json',
      lastPushed: '2024-03-01T00:00:00Z',
      images: [
        {
          os: 'linux',
          architecture: 'amd64',
          digest: D(100_000 + i),
          size: 10,
          lastPushed: '2024-02-01T00:00:00Z',
        },
        { os: 'linux', architecture: 'arm64', variant: 'v8', digest: D(200_000 + i), size: 11 },
        { os: 'unknown', architecture: 'unknown', digest: D(300_000 + i), size: 1 },
      ],
    })),
  };
}

let hub: FakeHub;
let http: HttpClient;
let hubEvents: HubEvent[];
let httpEvents: HttpEvent[];
let sleeps: number[];
/** Virtual time skipped by injected sleeps; the fake and the token cache read real time plus this. */
let skipped: number;
const now = () => Date.now() + skipped;

async function setup(repos: FakeHubRepo[], fake: Parameters<typeof startFakeHub>[0] = {}) {
  skipped = 0;
  hubEvents = [];
  httpEvents = [];
  sleeps = [];
  hub = await startFakeHub({ repos, now, ...fake });
  // Backoffs and 429 pauses skip virtual time instead of taking wall-clock time. The HTTP layer
  // reads X-RateLimit-Reset against the real clock, so virtual time must never run behind it.
  http = new HttpClient({
    onEvent: (e) => httpEvents.push(e),
    sleep: async (ms) => {
      sleeps.push(ms);
      skipped += ms;
    },
  });
}

function client(opts: Partial<HubClientOptions> = {}): HubClient {
  return new HubClient({
    http,
    baseUrl: hub.url,
    onEvent: (e) => hubEvents.push(e),
    now,
    ...opts,
  });
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

const tagGets = () => hub.requests.filter((r) => r.path.includes('/tags'));

afterEach(async () => {
  await http?.close();
  await hub?.stop();
});

describe('HubClient.listTags', () => {
  it('pages through 250 tags in 3 pages of 100', async () => {
    await setup([repo(250)]);
    const tags = await collect(client().listTags('acme', 'app'));
    expect(tags).toHaveLength(250);
    expect(new Set(tags.map((t) => t.name)).size).toBe(250);
    expect(tagGets().map((r) => [r.query.page, r.query.page_size])).toEqual([
      ['1', '100'],
      ['2', '100'],
      ['3', '100'],
    ]);
  });

  it('maps index and platform digests and push dates, leaving out attestation entries', async () => {
    await setup([repo(1)]);
    const [tag] = await collect(client().listTags('acme', 'app'));
    expect(tag).toEqual<HubTag>({
      name: 't0',
      digest: D(1) as HubTag['digest'],
      mediaType: 'application/vnd.oci.image.index.v1+json',
      contentType: 'image',
      lastPushed: '2024-03-01T00:00:00Z',
      lastUpdated: '2024-03-01T00:00:00Z',
      images: [
        {
          os: 'linux',
          architecture: 'amd64',
          variant: null,
          digest: D(100_000) as HubTag['digest'],
          lastPushed: '2024-02-01T00:00:00Z',
          size: 10,
        },
        {
          os: 'linux',
          architecture: 'arm64',
          variant: 'v8',
          digest: D(200_000) as HubTag['digest'],
          lastPushed: '2024-03-01T00:00:00Z',
          size: 11,
        },
      ],
    });
  });

  it('follows next verbatim even when it switches to the legacy path', async () => {
    await setup([repo(250)]);
    hub.injectLegacyNext = true;
    expect(await collect(client().listTags('acme', 'app'))).toHaveLength(250);
    expect(tagGets().map((r) => r.path)).toEqual([
      '/v2/namespaces/acme/repositories/app/tags',
      '/v2/repositories/acme/app/tags/',
      '/v2/repositories/acme/app/tags/',
    ]);
  });

  it('stops at a next on another origin without fetching it', async () => {
    await setup([repo(250)]);
    hub.injectForeignNext = true;
    expect(await collect(client().listTags('acme', 'app'))).toHaveLength(100);
    expect(tagGets()).toHaveLength(1);
    expect(hubEvents).toContainEqual(expect.objectContaining({ type: 'foreign-next' }));
    expect(httpEvents.every((e) => !('url' in e) || e.url.startsWith(hub.url))).toBe(true);
  });

  it('stops when next points back at a page already fetched', async () => {
    await setup([repo(250)]);
    hub.injectNextLoop = true;
    expect(await collect(client().listTags('acme', 'app'))).toHaveLength(250);
    expect(tagGets()).toHaveLength(3);
    expect(hubEvents).toContainEqual(expect.objectContaining({ type: 'next-loop' }));
  });

  it('keeps the pages it read and reports a cut when the next page answers 404 because the listing shrank', async () => {
    await setup([repo(250)]);
    const names: string[] = [];
    for await (const tag of client().listTags('acme', 'app')) {
      names.push(tag.name);
      // Tags deleted while the walk pages: the Hub answers 404 past its new last page (§1.2).
      if (names.length === 1) hub.setRepos([repo(90)]);
    }
    expect(names).toHaveLength(100);
    expect(tagGets().map((r) => r.query.page)).toEqual(['1', '2']);
    expect(hubEvents).toContainEqual({
      type: 'next-gone',
      url: expect.stringContaining('page=1'),
      next: expect.stringContaining('page=2'),
    });
  });

  it('stops after maxPages and says so', async () => {
    await setup([repo(250)]);
    expect(await collect(client({ maxPages: 2 }).listTags('acme', 'app'))).toHaveLength(200);
    expect(tagGets()).toHaveLength(2);
    expect(hubEvents).toContainEqual({ type: 'page-cap', url: expect.any(String), maxPages: 2 });
  });

  it('resumes a walk at a given page and reports each page with its URL', async () => {
    await setup([repo(250)]);
    const pages = await collect(client().listTagPages('acme', 'app', { fromPage: 2 }));
    expect(pages.map((p) => [new URL(p.url).searchParams.get('page'), p.count, p.results.length])).toEqual([
      ['2', 250, 100],
      ['3', 250, 50],
    ]);
  });

  it('passes the name filter and ordering through to the Hub', async () => {
    await setup([repo(30)]);
    const tags = await collect(client().listTags('acme', 'app', { nameFilter: 't2', ordering: 'name' }));
    expect(tags.map((t) => t.name)).toEqual([
      't2',
      't20',
      't21',
      't22',
      't23',
      't24',
      't25',
      't26',
      't27',
      't28',
      't29',
    ]);
    expect(tagGets()[0]!.query).toMatchObject({ name: 't2', ordering: 'name' });
  });

  it('throws HubOffsetCapError at the anonymous offset cap after the pages it could read', async () => {
    await setup([repo(1200)]);
    const seen: string[] = [];
    let error: unknown;
    try {
      for await (const t of client().listTags('acme', 'app')) seen.push(t.name);
    } catch (err) {
      error = err;
    }
    expect(seen).toHaveLength(1000);
    expect(error).toBeInstanceOf(HubOffsetCapError);
    expect(error).toBeInstanceOf(PermanentError);
    expect(error).toMatchObject({ status: 403, offset: 1000, authenticated: false });
    expect((error as Error).message).toMatch(/HUBCRAWL_DOCKERHUB_USERNAME and HUBCRAWL_DOCKERHUB_TOKEN/);
    // The error is shared by every capped listing; only the tag listing's fallback may mention tags/list.
    expect((error as Error).message).not.toContain('tags/list');
  });

  it('continues past the offset cap with the registry tag names the Hub did not deliver', async () => {
    await setup([repo(1200)]);
    const registryNames = async function* () {
      yield* ['t0', 't999', 't1000', 't1199', 'only-in-registry'];
    };
    const out = await collect(client().listTagsWithFallback('acme', 'app', registryNames));
    expect(out.filter((t) => t.source === 'hub')).toHaveLength(1000);
    expect(out.filter((t) => t.source === 'registry').map((t) => [t.tag.name, t.tag.digest])).toEqual([
      ['t1000', null],
      ['t1199', null],
      ['only-in-registry', null],
    ]);
    expect(hubEvents).toContainEqual(
      expect.objectContaining({
        type: 'tags-fallback',
        offset: 1000,
        message: expect.stringContaining("the registry's tags/list"),
      }),
    );
  });

  it('with pushDatesRequired, ends at the offset cap with an offset-cap event and never asks the registry for undated names', async () => {
    await setup([repo(1200)]);
    let registryAsked = false;
    const registryNames = async function* () {
      registryAsked = true;
      yield 't1000';
    };
    const out = await collect(
      client().listTagsWithFallback('acme', 'app', registryNames, { pushDatesRequired: true }),
    );
    expect(out).toHaveLength(1000);
    expect(out.every((t) => t.source === 'hub' && t.tag.lastPushed !== null)).toBe(true);
    expect(registryAsked).toBe(false);
    expect(hubEvents.filter((e) => e.type === 'offset-cap' || e.type === 'tags-fallback')).toEqual([
      {
        type: 'offset-cap',
        what: 'tags',
        url: `${hub.url}/v2/namespaces/acme/repositories/app/tags?page=11&page_size=100`,
        offset: 1000,
        total: 1200,
        authenticated: false,
      },
    ]);
  });

  it('turns a wrongly typed field into CorruptInputError naming the URL and field, and goes on with the next repository', async () => {
    await setup([repo(3), repo(2, 'acme', 'other')]);
    hub.injectWrongTypes = true;
    const hc = client();
    const err = await collect(hc.listTags('acme', 'app')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CorruptInputError);
    expect((err as Error).message).toContain(`${hub.url}/v2/namespaces/acme/repositories/app/tags?page=1`);
    expect((err as Error).message).toContain('results.0.digest');
    hub.injectWrongTypes = false;
    expect(await collect(hc.listTags('acme', 'other'))).toHaveLength(2);
  });

  it('answers a missing repository with a 404 PermanentError', async () => {
    await setup([repo(1)]);
    const err = await collect(client().listTags('acme', 'nope')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect(err).toMatchObject({ status: 404 });
  });
});

describe('HubClient with a personal access token', () => {
  const creds = { username: 'alice', token: 'dckr_pat_s3cr3t' };

  it('logs in once, sends the token as Bearer and pages past the anonymous cap', async () => {
    await setup([repo(1200)], { users: { alice: creds.token } });
    const tags = await collect(client({ credentials: creds }).listTags('acme', 'app'));
    expect(tags).toHaveLength(1200);
    expect(hub.requests[0]).toMatchObject({ method: 'POST', path: '/v2/auth/token' });
    expect(hub.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
    expect(tagGets().every((r) => r.authorization === `Bearer ${hub.issuedTokens[0]}`)).toBe(true);
  });

  it('asks a credentials function once, at the first request, and not at all for a client never used', async () => {
    await setup([repo(120)], { users: { alice: creds.token } });
    let asked = 0;
    const lazy = () => {
      asked++;
      return creds;
    };
    client({ credentials: lazy });
    const hc = client({ credentials: lazy });
    expect(asked).toBe(0);
    expect(await collect(hc.listTags('acme', 'app'))).toHaveLength(120);
    expect(asked).toBe(1);
    expect(hub.requests.filter((r) => r.method === 'POST')).toHaveLength(1);
  });

  it('surfaces a credentials function that fails at the request that needed it, and stays anonymous on undefined', async () => {
    await setup([repo(3)]);
    const failing = client({
      credentials: () => {
        throw new Error('the credential helper failed');
      },
    });
    await expect(collect(failing.listTags('acme', 'app'))).rejects.toThrow('the credential helper failed');
    const anonymous = client({ credentials: () => undefined });
    expect(await collect(anonymous.listTags('acme', 'app'))).toHaveLength(3);
    expect(anonymous.authenticated).toBe(false);
    expect(hub.requests.every((r) => r.authorization === undefined)).toBe(true);
  });

  it('never puts the PAT or the access token into events or errors', async () => {
    await setup([repo(3)], { users: { alice: creds.token } });
    const hc = client({ credentials: creds });
    await collect(hc.listTags('acme', 'app'));
    const missing = await collect(hc.listTags('acme', 'nope')).catch((e: unknown) => e);
    const wrong = await collect(
      client({ credentials: { username: 'alice', token: 'dckr_pat_wrong' } }).listTags('acme', 'app'),
    ).catch((e: unknown) => e);
    expect(wrong).toBeInstanceOf(AuthError);
    const text = JSON.stringify([
      hubEvents,
      httpEvents,
      String(missing),
      String(wrong),
      (wrong as Error).stack,
    ]);
    for (const secret of [creds.token, 'dckr_pat_wrong', ...hub.issuedTokens])
      expect(text).not.toContain(secret);
  });

  it('falls back to /v2/users/login when /v2/auth/token is missing', async () => {
    await setup([repo(2)], { users: { alice: creds.token } });
    hub.authTokenDisabled = true;
    expect(await collect(client({ credentials: creds }).listTags('acme', 'app'))).toHaveLength(2);
    expect(hub.requests.filter((r) => r.method === 'POST').map((r) => r.path)).toEqual([
      '/v2/auth/token',
      '/v2/users/login',
    ]);
    expect(hubEvents).toContainEqual({ type: 'login', endpoint: '/v2/users/login', username: 'alice' });
  });

  it('reuses the token for 9 minutes and logs in again after that', async () => {
    await setup([repo(2)], { users: { alice: creds.token } });
    const hc = client({ credentials: creds });
    await collect(hc.listTags('acme', 'app'));
    skipped += 8 * 60_000;
    await collect(hc.listTags('acme', 'app'));
    expect(hub.issuedTokens).toHaveLength(1);
    skipped += 2 * 60_000;
    await collect(hc.listTags('acme', 'app'));
    expect(hub.issuedTokens).toHaveLength(2);
  });

  it('logs in again once when the Hub answers 401 to a cached token', async () => {
    await setup([repo(2)], { users: { alice: creds.token } });
    const hc = client({ credentials: creds });
    await collect(hc.listTags('acme', 'app'));
    hub.revokeTokens();
    expect(await collect(hc.listTags('acme', 'app'))).toHaveLength(2);
    expect(hub.issuedTokens).toHaveLength(2);
  });
});

describe('HubClient and the Hub rate limit', () => {
  it('waits out a 429 for its Retry-After seconds and then succeeds', async () => {
    // A long window keeps X-RateLimit-Reset beyond the pause we would take pre-emptively,
    // so the budget runs out with a real 429 (as when other clients share the IP).
    await setup([repo(250)], { rateLimit: { limitPerWindow: 2, retryAfterSec: 5, windowSec: 3600 } });
    expect(await collect(client().listTags('acme', 'app'))).toHaveLength(250);
    expect(hub.rateLimitedCount).toBe(1);
    expect(httpEvents).toContainEqual(
      expect.objectContaining({ type: 'rate-limited', pauseMs: 5000, reason: 'retry-after' }),
    );
    // The fake answers 200 again only once the Retry-After has passed in virtual time.
  });

  it('pauses before the next request when X-RateLimit-Remaining reaches 0, avoiding the 429', async () => {
    await setup([repo(250)], { rateLimit: { limitPerWindow: 2, retryAfterSec: 5, windowSec: 30 } });
    expect(await collect(client().listTags('acme', 'app'))).toHaveLength(250);
    expect(hub.rateLimitedCount).toBe(0);
    expect(sleeps.reduce((a, b) => a + b, 0)).toBeGreaterThan(0);
  });
});

describe('HubClient repositories', () => {
  it('lists every repository of a namespace across pages', async () => {
    const many = Array.from({ length: 150 }, (_, i) => repo(1, 'acme', `r${i}`));
    await setup([...many, repo(1, 'other', 'x')]);
    const repos = await collect(client().listRepositories('acme'));
    expect(repos).toHaveLength(150);
    expect(repos[0]).toEqual({
      namespace: 'acme',
      name: 'r0',
      pullCount: 1000,
      starCount: 3,
      lastUpdated: '2024-03-01T00:00:00Z',
      isOfficial: false,
      description: 'acme/r0',
      mediaTypes: ['application/vnd.oci.image.index.v1+json'],
      contentTypes: ['image'],
    });
  });

  it('ends a namespace listing at the anonymous offset cap with the repositories so far and an offset-cap event', async () => {
    const many = Array.from({ length: 150 }, (_, i) => repo(0, 'acme', `r${i}`));
    await setup(many, { anonymousOffsetCap: 100 });
    const repos = await collect(client().listRepositories('acme'));
    expect(repos.map((r) => r.name)).toEqual(many.slice(0, 100).map((r) => r.name));
    expect(hubEvents).toContainEqual({
      type: 'offset-cap',
      what: 'repositories',
      url: `${hub.url}/v2/namespaces/acme/repositories?page=2&page_size=100`,
      offset: 100,
      total: 150,
      authenticated: false,
    });
  });

  it('reads repository details and marks library images official', async () => {
    await setup([repo(1, 'library', 'debian', 5_000_000_000)]);
    expect(await client().getRepository('library', 'debian')).toMatchObject({
      namespace: 'library',
      name: 'debian',
      pullCount: 5_000_000_000,
      isOfficial: true,
    });
  });

  it('falls back to the legacy /v2/repositories routes when /v2/namespaces answers 404', async () => {
    await setup([repo(1, 'acme', 'a'), repo(1, 'acme', 'b')]);
    hub.legacyOnly = true;
    const hc = client();
    expect((await collect(hc.listRepositories('acme'))).map((r) => r.name)).toEqual(['a', 'b']);
    expect(hubEvents).toContainEqual(expect.objectContaining({ type: 'fallback', what: 'repositories' }));
    // The 404 probe is an expected answer, not a failed request.
    expect(http.stats.failures).toBe(0);
    hub.requests.length = 0;
    expect((await hc.getRepository('acme', 'b')).name).toBe('b');
    expect(await collect(hc.listTags('acme', 'a'))).toHaveLength(1);
    // Once the legacy routes are known to be the ones that work, the client goes there directly.
    expect(hub.requests.map((r) => r.path)).toEqual([
      '/v2/repositories/acme/b/',
      '/v2/repositories/acme/a/tags/',
    ]);
  });

  it('answers a repository that does not exist with a 404 PermanentError', async () => {
    await setup([repo(1)]);
    await expect(client().getRepository('acme', 'nope')).rejects.toMatchObject({ status: 404 });
  });
});

describe('HubClient.search', () => {
  const repos = [
    repo(0, 'library', 'debian', 1_500_000_000),
    repo(0, 'acme', 'debian-slim', 12_345),
    repo(0, 'acme', 'alpine', 99),
  ];

  it('uses the v4 search and reads its rounded pull counts', async () => {
    await setup(repos);
    const hits = await collect(client().search('debian'));
    expect(hits).toEqual([
      expect.objectContaining({
        namespace: 'library',
        name: 'debian',
        pullCount: 1_000_000_000,
        pullCountApproximate: true,
        isOfficial: true,
        source: 'v4',
      }),
      expect.objectContaining({
        namespace: 'acme',
        name: 'debian-slim',
        pullCount: 12_000,
        isOfficial: false,
        source: 'v4',
      }),
    ]);
    expect(hub.requests.map((r) => r.path)).toEqual(['/api/search/v4']);
  });

  it('pages the v4 search by from/size and stops at the limit', async () => {
    const many = Array.from({ length: 250 }, (_, i) => repo(0, 'acme', `debian-${i}`, i));
    await setup(many);
    const hits = await collect(client().search('debian', { limit: 150 }));
    expect(hits).toHaveLength(150);
    expect(hub.requests.map((r) => [r.query.from, r.query.size])).toEqual([
      ['0', '100'],
      ['100', '50'],
    ]);
  });

  it('ends a search at the anonymous offset cap with the hits so far and an event', async () => {
    await setup(
      Array.from({ length: 150 }, (_, i) => repo(0, 'acme', `debian-${i}`, i)),
      { anonymousOffsetCap: 100 },
    );
    hub.searchV4Disabled = true;
    expect(await collect(client().search('debian'))).toHaveLength(100);
    expect(hubEvents).toContainEqual(
      expect.objectContaining({ type: 'offset-cap', what: 'search', offset: 100, authenticated: false }),
    );
  });

  it('lists a search whose total reached the Hub’s cap to its end, and says it is cut', async () => {
    const many = Array.from({ length: SEARCH_RESULT_CAP + 50 }, (_, i) => repo(0, 'acme', `debian-${i}`, i));
    await setup(many);
    expect(await collect(client().search('debian'))).toHaveLength(SEARCH_RESULT_CAP);
    expect(hubEvents).toContainEqual(
      expect.objectContaining({ type: 'result-cap', total: SEARCH_RESULT_CAP }),
    );
    // One hit fewer than the cap: the listing is whole.
    await setup(many.slice(0, SEARCH_RESULT_CAP - 1));
    expect(await collect(client().search('debian'))).toHaveLength(SEARCH_RESULT_CAP - 1);
    expect(hubEvents.map((e) => e.type)).not.toContain('result-cap');
  });

  it('skips a hit whose name the reference grammar refuses and reports it', async () => {
    await setup([...repos, repo(0, 'acme', 'debian..x', 5_000)]);
    const hits = await collect(client().search('debian'));
    expect(hits.map((h) => `${h.namespace}/${h.name}`)).toEqual(['library/debian', 'acme/debian-slim']);
    expect(hubEvents).toContainEqual(
      expect.objectContaining({ type: 'invalid-name', name: 'acme/debian..x' }),
    );
  });

  it('falls back to /v2/search/repositories when v4 is missing, with exact pull counts', async () => {
    await setup(repos);
    hub.searchV4Disabled = true;
    const hc = client();
    const hits = await collect(hc.search('debian'));
    expect(hits.map((h) => [h.namespace, h.name, h.pullCount, h.isOfficial, h.source])).toEqual([
      ['library', 'debian', 1_500_000_000, true, 'v2'],
      ['acme', 'debian-slim', 12_345, false, 'v2'],
    ]);
    expect(hubEvents).toContainEqual(expect.objectContaining({ type: 'fallback', what: 'search' }));
    hub.requests.length = 0;
    await collect(hc.search('alpine'));
    expect(hub.requests.map((r) => r.path)).toEqual(['/v2/search/repositories/']);
  });
});
