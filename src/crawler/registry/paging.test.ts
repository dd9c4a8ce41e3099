import { describe, expect, it } from 'vitest';
import { LimitExceededError, PermanentError } from '../../core/errors.js';
import type { HttpClient, HttpRequest, HttpResponse } from '../http.js';
import { paginate } from './tags.js';
import type { RegistryTransport } from './transport.js';

/** A transport that answers from a map of URL → [names, Link header]. */
function fake(pages: Record<string, [string[], string?]>): RegistryTransport & { urls: string[] } {
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
      const body = { repositories: page[0] };
      return {
        status: 200,
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
});
