import { describe, expect, it } from 'vitest';
import { CorruptInputError } from '../../core/errors.js';
import {
  hubAuthTokenSchema,
  hubErrorBodySchema,
  hubRepositoryPageSchema,
  hubRepositorySchema,
  hubTagPageSchema,
  hubV2SearchPageSchema,
  hubV4SearchPageSchema,
  parseHubJson,
  parsePullCountText,
} from './schemas.js';

// Real responses transcribed from docker-hub-api.md §1.2–§1.5 (sources cited there).

/** §1.4: a real tag page recorded from GET …/tags?page_size=100. */
const realTagPage = {
  count: 2,
  next: null,
  previous: null,
  results: [
    {
      creator: 7483000,
      id: 765505602,
      images: [
        {
          architecture: 'amd64',
          features: '',
          variant: null,
          digest: 'sha256:755dd8586893c6ee7ebb649b1506653f036f7fe3c09e9a7f9725b21c939e4b07',
          os: 'linux',
          os_features: '',
          os_version: null,
          size: 17464159,
          status: 'active',
          last_pulled: '2025-08-29T09:30:26.034071986Z',
          last_pushed: '2021-09-01T16:03:27Z',
        },
      ],
      last_updated: '2024-09-30T12:03:00.807746Z',
      last_updater: 7483000,
      last_updater_username: 'vincenttr',
      name: 'latest',
      repository: 15269894,
      full_size: 17464159,
      v2: true,
      tag_status: 'active',
      tag_last_pulled: '2025-08-29T09:30:26.034071986Z',
      tag_last_pushed: '2024-09-30T12:03:00.807746Z',
      media_type: 'application/vnd.docker.distribution.manifest.list.v2+json',
      content_type: 'image',
      digest: 'sha256:091eb826823b707f924bbe4a453127967db71640690715401efaa18b86cdc6a4',
    },
  ],
};

/** §1.2: the namespace listing example from latest.yaml. */
const namespaceListing = {
  count: 287,
  next: 'https://hub.docker.com/v2/namespaces/docker/repositories?page=2&page_size=2',
  previous: null,
  results: [
    {
      name: 'highland_builder',
      namespace: 'docker',
      repository_type: 'image',
      status: 1,
      status_description: 'active',
      description: 'Image for performing Docker build requests',
      is_private: false,
      star_count: 7,
      pull_count: 15722123,
      last_updated: '2023-06-20T10:44:45.459826Z',
      last_modified: '2024-10-16T13:48:34.145251Z',
      date_registered: '2015-05-19T21:13:35.937763Z',
      affiliation: '',
      media_types: [
        'application/octet-stream',
        'application/vnd.docker.container.image.v1+json',
        'application/vnd.docker.distribution.manifest.v1+prettyjws',
      ],
      content_types: ['unrecognized', 'image'],
      categories: [{ name: 'Languages & frameworks', slug: 'languages-and-frameworks' }],
      storage_size: 488723114800,
    },
  ],
};

/** §1.3: repository details example (spec). */
const repositoryDetails = {
  name: 'my-app',
  namespace: 'myorganization',
  repository_type: 'image',
  status: 1,
  status_description: 'Active',
  description: 'A sample application repository',
  is_private: false,
  is_automated: false,
  star_count: 0,
  pull_count: 0,
  last_updated: '2025-01-20T10:30:00Z',
  date_registered: '2025-01-20T10:30:00Z',
  collaborator_count: 0,
  hub_user: 'myorganization',
  has_starred: false,
  full_description: 'This is a comprehensive description …',
  media_types: [],
  content_types: [],
  categories: [],
  immutable_tags_settings: { enabled: false, rules: [] },
  storage_size: null,
  source: null,
};

/** §1.5: v2 search fixture, with `previous: ""`. */
const v2Search = {
  count: 3,
  next: 'https://hub.docker.com/v2/search/repositories/?page=2&page_size=3&query=nginx',
  previous: '',
  results: [
    {
      repo_name: 'nginx',
      short_description: 'Official build of Nginx.',
      star_count: 21318,
      pull_count: 13114222271,
      repo_owner: '',
      is_automated: false,
      is_official: true,
    },
  ],
};

/** §1.5: v3/v4 catalog search, truncated real response. */
const v4Search = {
  total: 10000,
  results: [
    {
      id: 'library/golang',
      name: 'golang',
      slug: 'golang',
      type: 'image',
      publisher: { id: '33ef574274c011e4bea40242ac11001b', name: 'library' },
      created_at: '2014-08-05T15:28:00.692549Z',
      updated_at: '2024-12-01T00:00:00Z',
      pull_count: '1B+',
    },
  ],
};

describe('Hub API schemas', () => {
  it('accept the real tag page and keep index and per-platform digests apart', () => {
    const page = parseHubJson(hubTagPageSchema, realTagPage, 'https://hub.docker.com/x');
    const tag = page.results[0]!;
    expect(tag.digest).toBe('sha256:091eb826823b707f924bbe4a453127967db71640690715401efaa18b86cdc6a4');
    expect(tag.images[0]!.digest).toBe(
      'sha256:755dd8586893c6ee7ebb649b1506653f036f7fe3c09e9a7f9725b21c939e4b07',
    );
    expect(tag.images[0]!.last_pushed).toBe('2021-09-01T16:03:27Z');
    expect(tag.tag_last_pushed).toBe('2024-09-30T12:03:00.807746Z');
    expect(page.next).toBeNull();
  });

  it('accept the namespace listing and the legacy official listing', () => {
    const page = parseHubJson(hubRepositoryPageSchema, namespaceListing, 'u');
    expect(page.count).toBe(287);
    expect(page.next).toBe('https://hub.docker.com/v2/namespaces/docker/repositories?page=2&page_size=2');
    expect(page.results[0]!.pull_count).toBe(15722123);
    expect(page.results[0]!.content_types).toEqual(['unrecognized', 'image']);
  });

  it('accept repository details with null storage_size and empty media types', () => {
    const repo = parseHubJson(hubRepositorySchema, repositoryDetails, 'u');
    expect(repo).toMatchObject({ name: 'my-app', namespace: 'myorganization', pull_count: 0 });
    expect(repo.media_types).toEqual([]);
  });

  it('treat an empty-string previous/next as no link', () => {
    const page = parseHubJson(hubV2SearchPageSchema, { ...v2Search, next: '' }, 'u');
    expect(page.previous).toBeNull();
    expect(page.next).toBeNull();
  });

  it('accept the v4 search response whose pull_count is a rounded string', () => {
    const page = parseHubJson(hubV4SearchPageSchema, v4Search, 'u');
    expect(page.results[0]!.pull_count).toBe('1B+');
  });

  it('accept a tag without digest, as the spec single-tag example has none', () => {
    const page = parseHubJson(
      hubTagPageSchema,
      {
        count: 1,
        next: null,
        previous: null,
        results: [
          {
            name: 'old',
            full_size: 123456,
            images: [{ architecture: 'amd64', os: 'linux', variant: null, last_pushed: null, size: 1 }],
          },
        ],
      },
      'u',
    );
    expect(page.results[0]!.digest).toBeNull();
    expect(page.results[0]!.images[0]!.digest).toBeNull();
  });

  it('reject a wrongly typed field with the URL and the path of the field', () => {
    const bad = structuredClone(realTagPage);
    (bad.results[0]!.images[0] as Record<string, unknown>).digest = 12345;
    const fn = () => parseHubJson(hubTagPageSchema, bad, 'https://hub.docker.com/v2/x/tags?page=3');
    expect(fn).toThrow(CorruptInputError);
    expect(fn).toThrow(/https:\/\/hub\.docker\.com\/v2\/x\/tags\?page=3.*results\.0\.images\.0\.digest/);
  });

  it('reject a digest field that is not a digest', () => {
    const bad = structuredClone(realTagPage);
    bad.results[0]!.digest = 'sha256:nothex';
    expect(() => parseHubJson(hubTagPageSchema, bad, 'u')).toThrow(/results\.0\.digest: not a sha256/);
  });

  it('reject a pull_count given as a string in a repository listing', () => {
    const bad = structuredClone(namespaceListing);
    (bad.results[0] as Record<string, unknown>).pull_count = '15M';
    expect(() => parseHubJson(hubRepositoryPageSchema, bad, 'u')).toThrow(/results\.0\.pull_count/);
  });

  it('read the login and error bodies', () => {
    expect(parseHubJson(hubAuthTokenSchema, { access_token: 'a.b.c' }, 'u').access_token).toBe('a.b.c');
    const body = {
      message: 'pagination offset too large for anonymous requests; sign in to page further',
      errinfo: {},
    };
    expect(hubErrorBodySchema.parse(body).message).toMatch(/pagination offset too large/);
  });
});

describe('parsePullCountText', () => {
  it.each([
    ['1B+', 1_000_000_000],
    ['500M+', 500_000_000],
    ['10K+', 10_000],
    ['1.5M+', 1_500_000],
    ['523', 523],
    [42, 42],
    ['lots', null],
    [null, null],
  ])('reads %s as %s', (input, expected) => {
    expect(parsePullCountText(input)).toBe(expected);
  });
});
