/**
 * RegistryClient: the Docker/OCI distribution API for one registry — manifests (HEAD for digests,
 * GET as a counted pull on Docker Hub), tags/list, _catalog and verified blob streams.
 */
import type { Digest } from '../../core/digest.js';
import { isDigest } from '../../core/digest.js';
import { CorruptInputError, LimitExceededError, PermanentError } from '../../core/errors.js';
import { redactUrl } from '../../core/url.js';
import type { HttpClient } from '../http.js';
import { headerValue, type PullQuota, parsePullQuota } from '../rate-limit.js';
import { pullScope, RegistryAuth } from './auth.js';
import { type OpenBlobOptions, openBlob } from './blobs.js';
import { catalog } from './catalog.js';
import { type CredentialStore, normalizeRegistryKey } from './credentials.js';
import { DEFAULT_MAX_MANIFEST_BYTES, type ParsedManifest, parseManifest } from './manifests.js';
import { bareMediaType, MANIFEST_ACCEPT } from './media-types.js';
import type { RegistryListingCut } from './paging.js';
import { DOCKER_HUB, isLoopbackHost } from './reference.js';
import { listTags } from './tags.js';
import { AuthedTransport } from './transport.js';

/** What a registry client reports as it goes: for now, a listing cut short (paging.ts). */
export type RegistryEvent = RegistryListingCut;

/** Docker Hub's registry API lives on another host than its name. */
export const DOCKER_HUB_ENDPOINT = 'https://registry-1.docker.io';

export interface RegistryClientOptions {
  /** `docker.io` or `host[:port]`. */
  registry: string;
  http: HttpClient;
  credentials?: CredentialStore;
  /** Default: http for loopback (127.0.0.0/8, localhost, ::1), https otherwise. */
  scheme?: 'http' | 'https';
  /** Base URL override (a mirror, a fault proxy); docker.io defaults to https://registry-1.docker.io. */
  endpoint?: string;
  /** Default 4 MiB. */
  maxManifestBytes?: number;
  /** Cap on pages for tags/list and _catalog. Default 1000. */
  maxPages?: number;
  /** Cap on the names one tags/list or _catalog listing yields. Default 500 000 (paging.ts). */
  maxListingEntries?: number;
  /** Count manifest GETs as pulls; default true for docker.io only. */
  countPulls?: boolean;
  /** Clock for token expiry (tests). */
  now?: () => number;
  /**
   * Hears the client's events. Given, a tags/list or _catalog walk cut short (a next link to another
   * origin, a loop, not a URL, the page cap) ends with what it listed and reports the cut here, as the
   * Hub client does; not given, the cut throws (PermanentError, CorruptInputError, LimitExceededError),
   * so a caller that did not ask never takes a partial listing for a complete one.
   */
  onEvent?: (e: RegistryEvent) => void;
}

export interface ManifestHead {
  /**
   * The Docker-Content-Digest header; for a HEAD by digest without one, that digest. null for a HEAD by
   * tag without one: the distribution spec makes the header optional, and only a GET of the bytes tells.
   */
  digest: Digest | null;
  mediaType: string;
  size: number;
  /** Docker Hub's pull quota headers, when sent. */
  rateLimit?: PullQuota;
}

export interface FetchedManifest {
  digest: Digest;
  mediaType: string;
  raw: Buffer;
  parsed: ParsedManifest;
  rateLimit?: PullQuota;
}

/** Base URL for a registry: explicit endpoint, Docker Hub's API host, or scheme://registry. */
export function registryBaseUrl(registry: string, scheme?: 'http' | 'https', endpoint?: string): URL {
  if (endpoint) return new URL(endpoint);
  if (registry === DOCKER_HUB && !scheme) return new URL(DOCKER_HUB_ENDPOINT);
  const s = scheme ?? (isLoopbackHost(registry) ? 'http' : 'https');
  return new URL(`${s}://${registry}`);
}

/**
 * Why a registry URL the user wrote (a `--catalog` seed) cannot be crawled as written: its scheme is
 * not the one its host is reached over (an `endpoint`, `scheme` / --insecure-registry, else http on
 * loopback and https elsewhere); undefined when they agree. The client is one per host, so one URL
 * cannot switch it, and crawling over another scheme than the one asked for would go unnoticed.
 */
export function schemeConflict(
  written: URL,
  settings: { scheme?: 'http' | 'https' | undefined; endpoint?: string | undefined } = {},
): string | undefined {
  const host = written.host;
  const reached = registryBaseUrl(host, settings.scheme, settings.endpoint);
  if (reached.protocol === written.protocol) return undefined;
  const shown = redactUrl(written);
  if (settings.endpoint !== undefined) {
    return `${shown} asks for ${written.protocol.slice(0, -1)}, but ${host} is reached through its endpoint ${redactUrl(reached)}; write ${reached.protocol}//${host}`;
  }
  if (written.protocol === 'https:') {
    const why = settings.scheme === 'http' ? '--insecure-registry or scheme: http' : 'a loopback host';
    return `${shown} asks for https, but ${host} is crawled over plain http (${why}); write http://${host}, or set registries."${host}".scheme: https in the config file`;
  }
  return `${shown} asks for plain http, but ${host} is crawled over https; add --insecure-registry ${host} to crawl it over http, or write https://${host}`;
}

/**
 * The registry whose credentials `baseUrl` may receive, and which auth messages name. A docker.io
 * mirror is another registry run by someone else: it gets the credentials configured for its own
 * host, never Docker Hub's (moby/moby#42022, the Hub credentials Docker once sent to mirrors). Any
 * other registry's `endpoint` is a proxy or tunnel the user set up for that registry, and signs in as it.
 */
export function signInAs(registry: string, baseUrl: URL): string {
  if (registry !== DOCKER_HUB) return registry;
  return normalizeRegistryKey(baseUrl.host) === DOCKER_HUB ? DOCKER_HUB : baseUrl.host;
}

export class RegistryClient {
  readonly registry: string;
  readonly baseUrl: URL;
  readonly auth: RegistryAuth;
  private readonly transport: AuthedTransport;
  private readonly maxManifestBytes: number;
  private readonly maxPages: number | undefined;
  private readonly maxListingEntries: number | undefined;
  private readonly countPulls: boolean;
  private readonly onEvent: ((e: RegistryEvent) => void) | undefined;

  constructor(opts: RegistryClientOptions) {
    this.registry = opts.registry;
    this.baseUrl = registryBaseUrl(opts.registry, opts.scheme, opts.endpoint);
    this.auth = new RegistryAuth({
      http: opts.http,
      registry: signInAs(opts.registry, this.baseUrl),
      credentials: opts.credentials,
      endpoint: this.baseUrl,
      ...(opts.now ? { now: opts.now } : {}),
    });
    this.transport = new AuthedTransport(opts.registry, this.baseUrl, opts.http, this.auth);
    this.maxManifestBytes = opts.maxManifestBytes ?? DEFAULT_MAX_MANIFEST_BYTES;
    this.maxPages = opts.maxPages;
    this.maxListingEntries = opts.maxListingEntries;
    this.countPulls = opts.countPulls ?? opts.registry === DOCKER_HUB;
    this.onEvent = opts.onEvent;
  }

  private manifestUrl(repository: string, ref: string): URL {
    return new URL(`/v2/${repository}/manifests/${ref}`, this.baseUrl);
  }

  /** HEAD a manifest to learn its digest, type and size; not a counted pull. */
  async headManifest(repository: string, ref: string, signal?: AbortSignal): Promise<ManifestHead> {
    const url = this.manifestUrl(repository, ref);
    const res = await this.transport.send(
      { method: 'HEAD', url, headers: { accept: MANIFEST_ACCEPT }, ...(signal ? { signal } : {}) },
      pullScope(repository),
    );
    await res.dump();
    if (res.status !== 200) {
      throw new PermanentError(`HEAD ${url.href} answered ${res.status}`, { status: res.status });
    }
    const header = headerValue(res.headers, 'docker-content-digest')?.trim();
    let digest: Digest | null;
    if (header && isDigest(header)) digest = header;
    else if (!header) digest = isDigest(ref) ? ref : null;
    else throw new CorruptInputError(`HEAD ${url.href} gave a malformed Docker-Content-Digest (${header})`);
    const out: ManifestHead = {
      digest,
      mediaType: bareMediaType(headerValue(res.headers, 'content-type')),
      size: Number(headerValue(res.headers, 'content-length') ?? -1),
    };
    const quota = parsePullQuota(res.headers);
    if (quota) out.rateLimit = quota;
    return out;
  }

  /** GET and verify a manifest; a counted pull on Docker Hub. */
  async getManifest(repository: string, ref: string, signal?: AbortSignal): Promise<FetchedManifest> {
    const url = this.manifestUrl(repository, ref);
    const source = `manifest ${this.registry}/${repository}:${ref}`;
    // The body limit is this client's maxManifestBytes: the error names that, not the HTTP layer's maxBodyBytes.
    const asManifestLimit = (err: unknown): never => {
      if (!(err instanceof LimitExceededError) || err.limit !== 'maxBodyBytes') throw err;
      throw new LimitExceededError(
        'maxManifestBytes',
        err.value,
        `${source} is more than maxManifestBytes (${this.maxManifestBytes} bytes)`,
      );
    };
    const res = await this.transport
      .send(
        {
          url,
          headers: { accept: MANIFEST_ACCEPT },
          counted: this.countPulls,
          buffer: true,
          maxBodyBytes: this.maxManifestBytes,
          ...(signal ? { signal } : {}),
        },
        pullScope(repository),
      )
      .catch(asManifestLimit);
    if (res.status !== 200) {
      await res.dump();
      throw new PermanentError(`GET ${url.href} answered ${res.status} where a manifest was expected`, {
        status: res.status,
      });
    }
    const raw = await res.bytes().catch(asManifestLimit);
    const parsed = parseManifest({
      raw,
      contentType: headerValue(res.headers, 'content-type'),
      requestedDigest: isDigest(ref) ? ref : undefined,
      headerDigest: headerValue(res.headers, 'docker-content-digest'),
      source,
      maxBytes: this.maxManifestBytes,
    });
    const out: FetchedManifest = { ...parsed, raw };
    const quota = parsePullQuota(res.headers);
    if (quota) out.rateLimit = quota;
    return out;
  }

  /** Tags of a repository via tags/list (n/last and Link paging, same origin, capped; cuts: see onEvent). */
  listTags(
    repository: string,
    opts: { pageSize?: number; signal?: AbortSignal } = {},
  ): AsyncIterable<string> {
    return listTags(this.transport, repository, { ...opts, ...this.paging() });
  }

  /** Repository names via _catalog (same paging rules). */
  catalog(opts: { pageSize?: number; signal?: AbortSignal } = {}): AsyncIterable<string> {
    return catalog(this.transport, { ...opts, ...this.paging() });
  }

  /** Streams a blob, verifying its digest as it goes; see blobs.ts. */
  openBlob(
    repository: string,
    digest: Digest,
    opts: OpenBlobOptions = {},
  ): Promise<AsyncIterable<Uint8Array>> {
    return openBlob(this.transport, repository, digest, opts);
  }

  /** The page and entry caps, and where a cut goes when someone listens (else paginate throws it). */
  private paging(): {
    maxPages?: number;
    maxEntries?: number;
    onCut?: (cut: RegistryListingCut) => void;
  } {
    const { onEvent } = this;
    return {
      ...(this.maxPages !== undefined ? { maxPages: this.maxPages } : {}),
      ...(this.maxListingEntries !== undefined ? { maxEntries: this.maxListingEntries } : {}),
      ...(onEvent ? { onCut: (cut: RegistryListingCut) => emitSafely(onEvent, cut) } : {}),
    };
  }
}

/** A listener's failure must not break a crawl. */
function emitSafely(onEvent: (e: RegistryEvent) => void, e: RegistryEvent): void {
  try {
    onEvent(e);
  } catch {
    // Ignored: the listing still ends at the cut.
  }
}
