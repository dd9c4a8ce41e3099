/**
 * A loopback imitation of the Docker Hub web API (hub.docker.com/v2, /api/search/v4), which has
 * no open-source server. Responses copy the real shapes in docker-hub-api.md §1: tag objects with
 * images[], tag_status, media_type and digest; `{count,next,previous,results}` pages with absolute
 * `next` URLs on the server's own origin; 404 past the last page; the anonymous offset cap (403);
 * X-RateLimit-* on every response and 429 + Retry-After (seconds) once the window's budget is spent.
 * The digests it reports are whatever the test configures, normally those of images pushed into
 * the real local registry.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  type FakeHubRepo,
  type HubRoute,
  matching,
  orderTags,
  repoJson,
  routeHubRequest,
  searchV2Json,
  searchV4Json,
  tagJson,
} from './fake-hub-shapes.js';

export {
  type FakeHubImage,
  type FakeHubRepo,
  type FakeHubTag,
  fakeHubTagFor,
  formatPullCount,
} from './fake-hub-shapes.js';

export interface FakeHubRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  authorization?: string;
}

export interface FakeHubOptions {
  repos?: FakeHubRepo[];
  /**
   * Anonymous paging of repository and tag listings and of the v2 search stops at this offset
   * ((page-1)*page_size); null = no cap. Default 1000, as on the Hub since 2026-08. The v4 search is not
   * capped: docker-hub-api.md §1.5 names the other three as hitting the cap, v4 not.
   */
  anonymousOffsetCap?: number | null;
  /** The v4 search lists at most this many hits and reports at most this `total`. Default 10 000, as the Hub (§1.5). */
  searchResultCap?: number;
  rateLimit?: { limitPerWindow?: number | null; retryAfterSec?: number; windowSec?: number };
  users?: Record<string, string>;
  /** Clock in ms; tests that inject the HttpClient's sleep advance it instead of waiting. */
  now?: () => number;
}

export interface FakeHub {
  /** `http://127.0.0.1:<port>` — pass as the Hub client's baseUrl. */
  readonly url: string;
  readonly requests: FakeHubRequest[];
  setRepos(repos: FakeHubRepo[]): void;
  anonymousOffsetCap: number | null;
  /** Requests allowed per window (null = unlimited); a spent window answers 429 + Retry-After. */
  rateLimit: { limitPerWindow: number | null; retryAfterSec: number; windowSec: number };
  /** The last page's `next` points back at page 1 (a server bug the client must survive). */
  injectNextLoop: boolean;
  /** `next` points at another origin, which the client must never fetch. */
  injectForeignNext: boolean;
  /** `next` links use the legacy `/v2/repositories/…` form whatever form was asked (both occur, §1.1). */
  injectLegacyNext: boolean;
  /** Repositories report `pull_count` as a string and tags report `digest` as a number. */
  injectWrongTypes: boolean;
  /** Answer 404 on `/v2/namespaces/...` so only the legacy `/v2/repositories/...` paths work. */
  legacyOnly: boolean;
  /** Answer 404 on `/api/search/v4` so the client has to fall back to `/v2/search/repositories/`. */
  searchV4Disabled: boolean;
  /** Answer 404 on `/v2/auth/token` so the client has to fall back to `/v2/users/login`. */
  authTokenDisabled: boolean;
  /** username → personal access token accepted by the login endpoints. */
  users: Record<string, string>;
  /** Access tokens issued so far (to check that none leaks into logs or errors). */
  readonly issuedTokens: string[];
  /** Invalidates every issued token, so the next authenticated request gets 401. */
  revokeTokens(): void;
  /** How many 429s were answered. */
  readonly rateLimitedCount: number;
  stop(): Promise<void>;
}

const OFFSET_CAP_BODY = {
  message: 'pagination offset too large for anonymous requests; sign in to page further',
  errinfo: {},
};

/** Starts the fake on 127.0.0.1 and a free port. */
export async function startFakeHub(opts: FakeHubOptions = {}): Promise<FakeHub> {
  const now = opts.now ?? Date.now;
  const signingKey = randomBytes(16);
  const validTokens = new Set<string>();
  let repos: FakeHubRepo[] = opts.repos ?? [];
  let limiter: { start: number; used: number; blockedUntil: number | null } = {
    start: now(),
    used: 0,
    blockedUntil: null,
  };

  const state = {
    url: '',
    requests: [] as FakeHubRequest[],
    setRepos(r: FakeHubRepo[]) {
      repos = r;
    },
    anonymousOffsetCap: opts.anonymousOffsetCap === undefined ? 1000 : opts.anonymousOffsetCap,
    rateLimit: {
      limitPerWindow: opts.rateLimit?.limitPerWindow ?? null,
      retryAfterSec: opts.rateLimit?.retryAfterSec ?? 60,
      windowSec: opts.rateLimit?.windowSec ?? 60,
    },
    injectNextLoop: false,
    injectForeignNext: false,
    injectLegacyNext: false,
    injectWrongTypes: false,
    legacyOnly: false,
    searchV4Disabled: false,
    authTokenDisabled: false,
    users: { ...(opts.users ?? {}) },
    issuedTokens: [] as string[],
    revokeTokens() {
      validTokens.clear();
    },
    rateLimitedCount: 0,
    stop: async () => {},
  };

  function issueToken(subject: string): string {
    // A JWT-shaped token so the client can read `exp` as it would from the Hub.
    const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const head = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64({ sub: subject, exp: Math.floor(now() / 1000) + 600 })}`;
    const token = `${head}.${createHmac('sha256', signingKey).update(head).digest('base64url')}`;
    validTokens.add(token);
    state.issuedTokens.push(token);
    return token;
  }

  function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
    const text = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': String(Buffer.byteLength(text)),
      ...headers,
    });
    res.end(text);
  }

  /** X-RateLimit-* per §1.8; answers 429 + Retry-After and returns false when the window is spent. */
  function rateLimitGate(res: ServerResponse, headers: Record<string, string>): boolean {
    const { limitPerWindow, retryAfterSec, windowSec } = state.rateLimit;
    if (limitPerWindow === null) return true;
    const t = now();
    if (limiter.blockedUntil !== null ? t >= limiter.blockedUntil : t - limiter.start >= windowSec * 1000) {
      limiter = { start: t, used: 0, blockedUntil: null };
    }
    headers['x-ratelimit-limit'] = String(limitPerWindow);
    headers['x-ratelimit-reset'] = String(Math.ceil((limiter.start + windowSec * 1000) / 1000));
    if (limiter.blockedUntil === null && limiter.used >= limitPerWindow) {
      limiter.blockedUntil = t + retryAfterSec * 1000;
    }
    if (limiter.blockedUntil !== null) {
      headers['x-ratelimit-remaining'] = '0';
      headers['retry-after'] = String(Math.max(0, Math.ceil((limiter.blockedUntil - t) / 1000)));
      state.rateLimitedCount += 1;
      send(res, 429, { detail: 'Rate limit exceeded', error: false }, headers);
      return false;
    }
    limiter.used += 1;
    headers['x-ratelimit-remaining'] = String(limitPerWindow - limiter.used);
    return true;
  }

  async function readBody(req: IncomingMessage): Promise<unknown> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const c of req) {
      size += (c as Buffer).length;
      if (size > 64 * 1024) return null;
      chunks.push(c as Buffer);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return null;
    }
  }

  async function login(
    route: HubRoute,
    req: IncomingMessage,
    res: ServerResponse,
    headers: Record<string, string>,
  ) {
    if (req.method !== 'POST') return send(res, 405, { detail: 'Method not allowed' }, headers);
    const body = ((await readBody(req)) ?? {}) as Record<string, unknown>;
    const legacy = route.kind === 'users-login';
    const user = String((legacy ? body.username : body.identifier) ?? '');
    const secret = String((legacy ? body.password : body.secret) ?? '');
    if (!user || state.users[user] === undefined || state.users[user] !== secret) {
      return send(res, 401, { detail: 'Incorrect authentication credentials', errinfo: {} }, headers);
    }
    const token = issueToken(user);
    return send(
      res,
      200,
      legacy ? { token, refresh_token: issueToken(user) } : { access_token: token },
      headers,
    );
  }

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const origin = state.url;
    const u = new URL(req.url ?? '/', origin);
    const query = Object.fromEntries(u.searchParams.entries());
    const authorization = req.headers.authorization;
    state.requests.push({
      method: req.method ?? 'GET',
      path: u.pathname,
      query,
      ...(authorization ? { authorization } : {}),
    });
    const headers: Record<string, string> = {};
    if (!rateLimitGate(res, headers)) return;

    const route = routeHubRequest(u.pathname);
    if (!route) return send(res, 404, { message: 'object not found', errinfo: {} }, headers);
    if (route.kind === 'auth-token' && state.authTokenDisabled) {
      return send(res, 404, { message: 'object not found', errinfo: {} }, headers);
    }
    if (route.kind === 'auth-token' || route.kind === 'users-login') return login(route, req, res, headers);
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return send(res, 405, { detail: 'Method not allowed' }, headers);
    }
    if (route.style === 'namespaces' && state.legacyOnly) {
      return send(res, 404, { message: 'object not found', errinfo: {} }, headers);
    }
    if (route.kind === 'search-v4' && state.searchV4Disabled) {
      return send(res, 404, { message: 'object not found', errinfo: {} }, headers);
    }

    let authenticated = false;
    if (authorization !== undefined) {
      const m = /^Bearer (.+)$/.exec(authorization);
      if (!m || !validTokens.has(m[1]!)) {
        return send(
          res,
          401,
          { detail: 'Authentication credentials were not provided or are invalid.' },
          headers,
        );
      }
      authenticated = true;
    }

    const findRepo = (ns: string, name: string) => repos.find((r) => r.namespace === ns && r.name === name);

    if (route.kind === 'search-v4') {
      const from = intParam(query.from, 0);
      const size = Math.min(intParam(query.size, 25), 100);
      const hits = matching(repos, query.query ?? '').slice(0, opts.searchResultCap ?? 10_000);
      return send(res, 200, searchV4Json(hits.slice(from, from + size), hits.length), headers);
    }

    const page = intParam(query.page, 1);
    const pageSize = Math.max(1, Math.min(intParam(query.page_size, 10), 100));
    const isList = route.kind === 'repos' || route.kind === 'tags' || route.kind === 'search-v2';
    if (isList && !authenticated && state.anonymousOffsetCap !== null) {
      if ((page - 1) * pageSize >= state.anonymousOffsetCap) return send(res, 403, OFFSET_CAP_BODY, headers);
    }

    /** One page of `items` with absolute next/previous URLs on this server's origin. */
    const paged = <T>(items: T[], render: (t: T) => unknown) => {
      const start = (page - 1) * pageSize;
      if (page < 1 || (page > 1 && start >= items.length)) {
        return send(res, 404, { message: 'Page not found', errinfo: {} }, headers);
      }
      const link = (p: number) => {
        let path = u.pathname;
        if (state.injectLegacyNext && route.style === 'namespaces') {
          path = path.replace(/^\/v2\/namespaces\/([^/]+)\/repositories\/?/, '/v2/repositories/$1/');
          if (!path.endsWith('/')) path += '/';
        }
        const l = new URL(path, origin);
        for (const [k, v] of u.searchParams) if (k !== 'page' && k !== 'page_size') l.searchParams.set(k, v);
        l.searchParams.set('page', String(p));
        l.searchParams.set('page_size', String(pageSize));
        return l.toString();
      };
      let next: string | null = start + pageSize < items.length ? link(page + 1) : null;
      if (state.injectForeignNext && next) next = next.replace(origin, 'http://foreign.invalid:81');
      if (state.injectNextLoop && next === null) next = link(1);
      const body = {
        count: items.length,
        next,
        previous: page > 1 ? link(page - 1) : null,
        results: items.slice(start, start + pageSize).map(render),
      };
      return send(res, 200, body, headers);
    };

    switch (route.kind) {
      case 'repos': {
        const list = repos.filter((r) => r.namespace === route.namespace);
        if (list.length === 0) return send(res, 404, { message: 'object not found', errinfo: {} }, headers);
        const nameFilter = query.name ?? '';
        const filtered = list.filter((r) => r.name.includes(nameFilter));
        return paged(filtered, (r) => repoJson(r, state.injectWrongTypes));
      }
      case 'repo': {
        const repo = findRepo(route.namespace, route.name);
        if (!repo) return send(res, 404, { message: 'object not found', errinfo: {} }, headers);
        return send(res, 200, repoJson(repo, state.injectWrongTypes, true), headers);
      }
      case 'tags': {
        const repo = findRepo(route.namespace, route.name);
        if (!repo) return send(res, 404, { message: 'object not found', errinfo: {} }, headers);
        const tags = orderTags(
          repo.tags.filter((t) => t.name.includes(query.name ?? '')),
          query.ordering,
        );
        return paged(tags, (t) => tagJson(t, state.injectWrongTypes));
      }
      case 'tag': {
        const tag = findRepo(route.namespace, route.name)?.tags.find((t) => t.name === route.tag);
        if (!tag) return send(res, 404, { message: 'object not found', errinfo: {} }, headers);
        return send(res, 200, tagJson(tag, state.injectWrongTypes), headers);
      }
      case 'search-v2': {
        return paged(matching(repos, query.query ?? ''), searchV2Json);
      }
    }
  }

  const server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) send(res, 500, { detail: String(err) });
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  state.stop = () =>
    new Promise<void>((resolve, reject) => {
      server.closeAllConnections();
      server.close((err) => (err ? reject(err) : resolve()));
    });
  return state;
}

function intParam(v: string | undefined, fallback: number): number {
  if (v === undefined || !/^-?\d+$/.test(v)) return fallback;
  return Number(v);
}
