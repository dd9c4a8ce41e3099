/**
 * What the fake Docker Hub (fake-hub.ts) answers, apart from serving it: the data a test configures
 * (repositories, tags, images), the routing of Hub API paths in their current and legacy forms, and
 * the JSON shapes of docker-hub-api.md §1, wrong types and rounded pull counts included.
 */

export interface FakeHubImage {
  os: string;
  architecture: string;
  variant?: string;
  digest: string;
  lastPushed?: string;
  size?: number;
}

export interface FakeHubTag {
  name: string;
  digest: string;
  mediaType: string;
  lastPushed: string;
  images: FakeHubImage[];
}

export interface FakeHubRepo {
  namespace: string;
  name: string;
  pullCount?: number;
  starCount?: number;
  lastUpdated?: string;
  description?: string;
  tags: FakeHubTag[];
}

/** Search hits: substring of `ns/name`, most pulled first (like the Hub's relevance for tests). */
export function matching(repos: FakeHubRepo[], q: string): FakeHubRepo[] {
  return repos
    .filter((r) => `${r.namespace}/${r.name}`.includes(q))
    .sort((a, b) => (b.pullCount ?? 0) - (a.pullCount ?? 0));
}

export function orderTags(tags: FakeHubTag[], ordering: string | undefined): FakeHubTag[] {
  const copy = [...tags];
  if (ordering === 'name') copy.sort((a, b) => a.name.localeCompare(b.name));
  if (ordering === '-name') copy.sort((a, b) => b.name.localeCompare(a.name));
  if (ordering === 'last_updated') copy.sort((a, b) => a.lastPushed.localeCompare(b.lastPushed));
  if (ordering === '-last_updated') copy.sort((a, b) => b.lastPushed.localeCompare(a.lastPushed));
  return copy;
}

export type HubRoute =
  | { kind: 'repos'; style: RouteStyle; namespace: string }
  | { kind: 'repo' | 'tags'; style: RouteStyle; namespace: string; name: string }
  | { kind: 'tag'; style: RouteStyle; namespace: string; name: string; tag: string }
  | { kind: 'search-v4' | 'search-v2' | 'auth-token' | 'users-login'; style: 'other' };
export type RouteStyle = 'namespaces' | 'legacy' | 'other';

/** Maps a path to an endpoint of §1.1, in its current (`/v2/namespaces/…`) or legacy form. */
export function routeHubRequest(pathname: string): HubRoute | null {
  const seg = pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const at = (i: number) => seg[i] ?? '';
  const fixed: Record<string, HubRoute> = {
    'api/search/v4': { kind: 'search-v4', style: 'other' },
    'v2/search/repositories': { kind: 'search-v2', style: 'other' },
    'v2/auth/token': { kind: 'auth-token', style: 'other' },
    'v2/users/login': { kind: 'users-login', style: 'other' },
  };
  const fixedRoute = fixed[seg.join('/')];
  if (fixedRoute) return fixedRoute;
  if (at(0) !== 'v2') return null;
  let style: RouteStyle;
  let rest: string[];
  if (at(1) === 'namespaces' && at(3) === 'repositories') {
    style = 'namespaces';
    rest = [at(2), ...seg.slice(4)];
  } else if (at(1) === 'repositories') {
    style = 'legacy';
    rest = seg.slice(2);
  } else return null;
  const [namespace, name, tagsWord, tag, ...extra] = rest as [string, ...string[]];
  if (!namespace || extra.length > 0) return null;
  if (name === undefined) return { kind: 'repos', style, namespace };
  if (tagsWord === undefined) return { kind: 'repo', style, namespace, name };
  if (tagsWord !== 'tags') return null;
  if (tag === undefined) return { kind: 'tags', style, namespace, name };
  return { kind: 'tag', style, namespace, name, tag };
}

const ZERO_TIME = '2024-01-01T00:00:00.000000Z';

/** A repository as in §1.2/§1.3 (list entry, or details with the extra `repository_info` fields). */
export function repoJson(r: FakeHubRepo, wrongTypes: boolean, details = false): Record<string, unknown> {
  const mediaTypes = [...new Set(r.tags.map((t) => t.mediaType))].sort();
  const base: Record<string, unknown> = {
    name: r.name,
    namespace: r.namespace,
    repository_type: 'image',
    status: 1,
    status_description: 'active',
    description: r.description ?? '',
    is_private: false,
    star_count: r.starCount ?? 0,
    pull_count: wrongTypes ? String(r.pullCount ?? 0) : (r.pullCount ?? 0),
    last_updated: r.lastUpdated ?? r.tags[0]?.lastPushed ?? null,
    last_modified: r.lastUpdated ?? ZERO_TIME,
    date_registered: ZERO_TIME,
    affiliation: '',
    media_types: mediaTypes,
    content_types: r.tags.length > 0 ? ['image'] : [],
    categories: [],
    storage_size: r.tags.reduce((n, t) => n + t.images.reduce((m, i) => m + (i.size ?? 0), 0), 0),
  };
  if (!details) return base;
  return {
    user: r.namespace,
    ...base,
    is_automated: false,
    collaborator_count: 0,
    hub_user: r.namespace,
    has_starred: false,
    full_description: r.description ?? '',
    permissions: { read: true, write: false, admin: false },
    immutable_tags_settings: { enabled: false, rules: [] },
    source: null,
  };
}

/** A tag exactly as real `…/tags` results carry it (§1.4), not as the spec describes it. */
export function tagJson(t: FakeHubTag, wrongTypes: boolean): Record<string, unknown> {
  const fullSize = t.images.reduce((n, i) => n + (i.size ?? 0), 0);
  return {
    creator: 7483000,
    id: idFor(t.digest + t.name),
    images: t.images.map((i) => ({
      architecture: i.architecture,
      features: '',
      variant: i.variant ?? null,
      digest: i.digest,
      os: i.os,
      os_features: '',
      os_version: null,
      size: i.size ?? 0,
      status: 'active',
      last_pulled: null,
      last_pushed: i.lastPushed ?? t.lastPushed,
    })),
    last_updated: t.lastPushed,
    last_updater: 7483000,
    last_updater_username: 'hubcrawl-test',
    name: t.name,
    repository: 15269894,
    full_size: fullSize,
    v2: true,
    tag_status: 'active',
    tag_last_pulled: null,
    tag_last_pushed: t.lastPushed,
    media_type: t.mediaType,
    content_type: 'image',
    digest: wrongTypes ? idFor(t.digest) : t.digest,
  };
}

/** `/v2/search/repositories/` result (§1.5): `repo_name` is bare for official images. */
export function searchV2Json(r: FakeHubRepo): Record<string, unknown> {
  const official = r.namespace === 'library';
  return {
    repo_name: official ? r.name : `${r.namespace}/${r.name}`,
    short_description: r.description ?? '',
    star_count: r.starCount ?? 0,
    pull_count: r.pullCount ?? 0,
    repo_owner: '',
    is_automated: false,
    is_official: official,
  };
}

/** `/api/search/v4` page (§1.5): pull counts come back as rounded strings. */
export function searchV4Json(hits: FakeHubRepo[], total: number): Record<string, unknown> {
  return {
    total,
    results: hits.map((r) => ({
      id: `${r.namespace}/${r.name}`,
      name: r.name,
      slug: r.name,
      type: 'image',
      publisher: { id: idFor(r.namespace).toString(16), name: r.namespace },
      created_at: ZERO_TIME,
      updated_at: r.lastUpdated ?? ZERO_TIME,
      short_description: r.description ?? '',
      badge: r.namespace === 'library' ? 'official' : 'none',
      star_count: r.starCount ?? 0,
      pull_count: formatPullCount(r.pullCount ?? 0),
      operating_systems: [{ name: 'linux', label: 'Linux' }],
      architectures: [{ name: 'amd64', label: 'x86-64' }],
      logo_url: {},
      extension_reviewed: false,
      categories: [],
      archived: false,
    })),
  };
}

/** The Hub's rounding: 1234567890 → "1B+", 15722123 → "15M+", 523 → "523". */
export function formatPullCount(n: number): string {
  for (const [scale, suffix] of [
    [1e9, 'B'],
    [1e6, 'M'],
    [1e3, 'K'],
  ] as const) {
    if (n >= scale) return `${Math.floor(n / scale)}${suffix}+`;
  }
  return String(n);
}

function idFor(s: string): number {
  let h = 0;
  for (const c of s) h = (h * 31 + c.charCodeAt(0)) % 2_000_000_000;
  return h;
}

/** The parts of scripts/lib/image-builder's BuiltImage/BuiltIndex the fake needs (kept structural). */
interface PushedImageLike {
  kind: 'image';
  digest: string;
  mediaType: string;
  layers: Array<{ size: number }>;
  config: { size: number };
  platform: { os: string; architecture: string; variant?: string };
}
interface PushedIndexLike {
  kind: 'index';
  digest: string;
  mediaType: string;
  children: PushedImageLike[];
  extraChildren: PushedImageLike[];
}

/**
 * A fake Hub tag describing an image or index pushed into the real local registry, so the Hub
 * API and the registry agree on every digest. Index children become `images[]`; attestation
 * children show as unknown/unknown, as the Hub lists them.
 */
export function fakeHubTagFor(
  name: string,
  pushed: PushedImageLike | PushedIndexLike,
  lastPushed = '2024-03-01T00:00:00.000000Z',
): FakeHubTag {
  const image = (i: PushedImageLike): FakeHubImage => ({
    os: i.platform.os,
    architecture: i.platform.architecture,
    ...(i.platform.variant ? { variant: i.platform.variant } : {}),
    digest: i.digest,
    lastPushed,
    size: i.layers.reduce((n, l) => n + l.size, 0),
  });
  const images =
    pushed.kind === 'image' ? [image(pushed)] : [...pushed.children, ...pushed.extraChildren].map(image);
  return { name, digest: pushed.digest, mediaType: pushed.mediaType, lastPushed, images };
}
