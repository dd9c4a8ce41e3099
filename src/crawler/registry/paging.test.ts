import { describe, expect, it } from 'vitest';
import { CorruptInputError, LimitExceededError, PermanentError } from '../../core/errors.js';
import type { HttpClient, HttpRequest, HttpResponse } from '../http.js';
import { catalog } from './catalog.js';
import { paginate, type RegistryListingCut } from './paging.js';
import type { RegistryTransport } from './transport.js';

/** A transport that answers from a map of URL → [names (or a whole odd body), Link header, status]. */
function fake(
  pages: Record<string, [string[] | { body: unknown }, string?, number?]>,
): RegistryTransport & { urls: string[] } {
  const urls: string[] = [];
  return {
    registry: 'r.test',
    baseUrl: new URL('https://r.test'),
    http: {} as HttpClient,
    urls,
    async send(req: HttpRequest): Promise<HttpResponse> {
      const href = String(req.url);
      urls.push(href);
      const page = pages[href];
      if (!page) throw new Error(`unexpected ${href}`);
      const body = Array.isArray(page[0]) ? { repositories: page[0] } : page[0].body;
      return {
        status: page[2] ?? 200,
        headers: page[1] ? { link: page[1] } : {},
        url: new URL(href),
        body: (async function* () {})(),
        text: async () => JSON.stringify(body),
        json: async () => body,
        bytes: async () => Buffer.from(JSON.stringify(body)),
        dump: async () => {},
      };
    },
  };
}

const pick = (b: unknown) => (b as { repositories: string[] }).repositories;

async function collect(it: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Walks with a cut listener: the names listed and the cuts heard. */
async function walkHearingCuts(
  t: RegistryTransport,
  first: string,
  opts: { pageSize?: number; maxPages?: number; maxEntries?: number } = {},
): Promise<{ names: string[]; cuts: RegistryListingCut[] }> {
  const cuts: RegistryListingCut[] = [];
  const names = await collect(
    paginate(t, new URL(first), 's', pick, { ...opts, onCut: (c) => cuts.push(c) }),
  );
  return { names, cuts };
}

describe('paginate', () => {
  it('falls back to last when a full page has no Link', async () => {
    const t = fake({
      'https://r.test/l?n=2': [['a', 'b']],
      'https://r.test/l?n=2&last=b': [['c']],
    });
    expect(await collect(paginate(t, new URL('https://r.test/l?n=2'), 's', pick, { pageSize: 2 }))).toEqual([
      'a',
      'b',
      'c',
    ]);
  });

  it('stops without repeats when the registry ignores last', async () => {
    const t = fake({
      'https://r.test/l?n=2': [['a', 'b']],
      'https://r.test/l?n=2&last=b': [['a', 'b']],
    });
    expect(await collect(paginate(t, new URL('https://r.test/l?n=2'), 's', pick, { pageSize: 2 }))).toEqual([
      'a',
      'b',
    ]);
  });

  it('refuses a next link on another origin', async () => {
    const t = fake({ 'https://r.test/l': [['a'], '<https://evil.test/l?last=a>; rel="next"'] });
    await expect(collect(paginate(t, new URL('https://r.test/l'), 's', pick, {}))).rejects.toBeInstanceOf(
      PermanentError,
    );
  });

  it("refuses a next link to another path on the same origin: another repository's tags", async () => {
    const t = fake({
      'https://r.test/v2/a/tags/list': [['1'], '</v2/b/tags/list?last=1>; rel="next"'],
    });
    expect(await walkHearingCuts(t, 'https://r.test/v2/a/tags/list')).toEqual({
      names: ['1'],
      cuts: [
        {
          type: 'foreign-next',
          listing: 'https://r.test/v2/a/tags/list',
          url: 'https://r.test/v2/a/tags/list',
          next: 'https://r.test/v2/b/tags/list?last=1',
        },
      ],
    });
    expect(t.urls).toEqual(['https://r.test/v2/a/tags/list']);
  });

  it('stops with an error when the links go round in a circle', async () => {
    const t = fake({
      'https://r.test/l': [['a'], '</l?p=2>; rel="next"'],
      'https://r.test/l?p=2': [['b'], '</l>; rel="next"'],
    });
    await expect(collect(paginate(t, new URL('https://r.test/l'), 's', pick, {}))).rejects.toThrow(
      /came back/,
    );
  });

  it('throws LimitExceededError past maxPages', async () => {
    const t = fake({
      'https://r.test/l': [['a'], '</l?p=2>; rel="next"'],
      'https://r.test/l?p=2': [['b'], '</l?p=3>; rel="next"'],
    });
    await expect(
      collect(paginate(t, new URL('https://r.test/l'), 's', pick, { maxPages: 2 })),
    ).rejects.toBeInstanceOf(LimitExceededError);
  });

  it('throws CorruptInputError when the next link is not a URL', async () => {
    const t = fake({ 'https://r.test/l': [['a'], '<http://[nope>; rel="next"'] });
    await expect(collect(paginate(t, new URL('https://r.test/l'), 's', pick, {}))).rejects.toBeInstanceOf(
      CorruptInputError,
    );
  });
});

describe('paginate with a cut listener', () => {
  it('keeps the pages listed before a loop and reports the loop with the listing URL', async () => {
    const t = fake({
      'https://r.test/l': [['a'], '</l?p=2>; rel="next"'],
      'https://r.test/l?p=2': [['b'], '</l>; rel="next"'],
    });
    expect(await walkHearingCuts(t, 'https://r.test/l')).toEqual({
      names: ['a', 'b'],
      cuts: [
        {
          type: 'next-loop',
          listing: 'https://r.test/l',
          url: 'https://r.test/l?p=2',
          next: 'https://r.test/l',
        },
      ],
    });
    expect(t.urls).toEqual(['https://r.test/l', 'https://r.test/l?p=2']);
  });

  it('reports a cut without the userinfo of an endpoint or a token in a link: cuts reach logs and the dataset', async () => {
    const t = fake({
      'https://bob:pw@r.test/l': [['a'], '</l?p=2&token=t0p>; rel="next"'],
      'https://bob:pw@r.test/l?p=2&token=t0p': [['b'], '</l?p=2&token=t0p>; rel="next"'],
    });
    const { names, cuts } = await walkHearingCuts(t, 'https://bob:pw@r.test/l');
    expect(names).toEqual(['a', 'b']);
    expect(cuts).toMatchObject([{ type: 'next-loop', listing: 'https://r.test/l' }]);
    expect(JSON.stringify(cuts)).not.toMatch(/bob|pw@|t0p/);
  });

  it('keeps the page listed before a next link to another origin and never fetches it', async () => {
    const t = fake({ 'https://r.test/l': [['a'], '<https://evil.test/l?last=a>; rel="next"'] });
    expect(await walkHearingCuts(t, 'https://r.test/l')).toEqual({
      names: ['a'],
      cuts: [
        {
          type: 'foreign-next',
          listing: 'https://r.test/l',
          url: 'https://r.test/l',
          next: 'https://evil.test/l?last=a',
        },
      ],
    });
    expect(t.urls).toEqual(['https://r.test/l']);
  });

  it('reports a next link that is not a URL', async () => {
    const t = fake({ 'https://r.test/l': [['a'], '<http://[nope>; rel="next"'] });
    expect((await walkHearingCuts(t, 'https://r.test/l')).cuts).toEqual([
      { type: 'bad-next', listing: 'https://r.test/l', url: 'https://r.test/l', next: 'http://[nope' },
    ]);
  });

  it('stops at maxPages with the pages it fetched', async () => {
    const t = fake({
      'https://r.test/l': [['a'], '</l?p=2>; rel="next"'],
      'https://r.test/l?p=2': [['b'], '</l?p=3>; rel="next"'],
    });
    expect(await walkHearingCuts(t, 'https://r.test/l', { maxPages: 2 })).toEqual({
      names: ['a', 'b'],
      cuts: [{ type: 'page-cap', listing: 'https://r.test/l', url: 'https://r.test/l?p=2', maxPages: 2 }],
    });
  });

  it('stops at maxEntries names, the page that passes it cut where the cap falls', async () => {
    const t = fake({
      'https://r.test/l': [['a', 'b', 'c'], '</l?p=2>; rel="next"'],
      'https://r.test/l?p=2': [['d', 'e', 'f'], '</l?p=3>; rel="next"'],
      'https://r.test/l?p=3': [['g'], '</l?p=4>; rel="next"'],
    });
    expect(await walkHearingCuts(t, 'https://r.test/l', { maxEntries: 5 })).toEqual({
      names: ['a', 'b', 'c', 'd', 'e'],
      cuts: [{ type: 'entry-cap', listing: 'https://r.test/l', url: 'https://r.test/l?p=2', maxEntries: 5 }],
    });
    // Exactly at the cap with nothing after it is a whole listing.
    const whole = fake({ 'https://r.test/w': [['a', 'b']] });
    expect(await walkHearingCuts(whole, 'https://r.test/w', { maxEntries: 2 })).toEqual({
      names: ['a', 'b'],
      cuts: [],
    });
  });

  it('hears no cut when the registry ignores last: that listing is whole', async () => {
    const t = fake({
      'https://r.test/l?n=2': [['a', 'b']],
      'https://r.test/l?n=2&last=b': [['a', 'b']],
    });
    expect(await walkHearingCuts(t, 'https://r.test/l?n=2', { pageSize: 2 })).toEqual({
      names: ['a', 'b'],
      cuts: [],
    });
  });

  it('still throws on a page that answers other than 200', async () => {
    const t = fake({
      'https://r.test/l': [['a'], '</l?p=2>; rel="next"'],
      'https://r.test/l?p=2': [[], undefined, 500],
    });
    await expect(walkHearingCuts(t, 'https://r.test/l')).rejects.toBeInstanceOf(PermanentError);
  });

  it('still throws on a page that is not a listing', async () => {
    const t = fake({ 'https://r.test/v2/_catalog': [{ body: { repositories: 'all of them' } }] });
    const cuts: RegistryListingCut[] = [];
    await expect(collect(catalog(t, { onCut: (c) => cuts.push(c) }))).rejects.toBeInstanceOf(
      CorruptInputError,
    );
    expect(cuts).toEqual([]);
  });
});
