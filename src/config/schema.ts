import { z } from 'zod';
import { platformProblem } from '../core/platform.js';

/**
 * The one configuration schema. Config files (YAML or JSON) are validated strictly, so a typo is
 * an error naming the field; flags override the file; defaults are documented here and in the README.
 */

const isoDate = z.string().refine((s) => !Number.isNaN(Date.parse(s)), {
  message: 'expected a date such as 2024-03-01 or 2024-03-01T12:00:00Z',
});

/** A JavaScript regular expression; a refusal says why, and what to write for a flag other engines have. */
const regex = z.string().superRefine((s, ctx) => {
  try {
    new RegExp(s);
  } catch (err) {
    const why = (err as Error).message.replace(/^Invalid regular expression: /, '');
    const inline = /^\(\?[a-z]+\)/.test(s)
      ? '; inline flags such as (?i) are not JavaScript: write the cases out ([Vv]1)'
      : '';
    ctx.addIssue({ code: 'custom', message: `expected a JavaScript regular expression (${why})${inline}` });
  }
});

// Not of the form os/arch[/variant], or an architecture written the uname or dpkg way (`linux/x86_64`).
const platform = z.string().superRefine((p, ctx) => {
  const problem = platformProblem(p);
  if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
});

/** Where credentials for a registry go instead of its URL: the settings and variables of its host. */
const REGISTRY_SIGN_IN =
  'credentials with HUBCRAWL_REGISTRY_USERNAME/HUBCRAWL_REGISTRY_PASSWORD and HUBCRAWL_REGISTRY_HOST, a Docker config or registries.<host>.username/password';

/**
 * Where credentials for the Docker Hub web API go: it signs in with its own variables, not a registry's
 * (src/crawler/hub/auth.ts). The docker.io login is only ever sent to the official API.
 */
const HUB_API_SIGN_IN =
  'Docker Hub credentials with HUBCRAWL_DOCKERHUB_USERNAME/HUBCRAWL_DOCKERHUB_TOKEN (the official https://hub.docker.com also takes a docker login or registries."docker.io".username/password)';

/**
 * Why a URL the settings name carries a user name or password, or null. Every URL of the settings is
 * stored in the dataset (the run's config, the frontier) and can be logged, and none is used to sign in,
 * so `user:password@` would only leak the password: it is refused, naming where credentials go instead
 * (`signIn`, for the service the URL names).
 */
export function userInfoProblem(value: string, signIn: string): string | null {
  // Any `@`: a password with an unencoded `/`, `?` or `#` moves the `@` out of the authority where a URL
  // parser looks for user-info (`http://ci:4711/Zx@host` parses as host `ci:4711`), and no registry URL
  // needs one.
  if (!value.includes('@')) return null;
  return `a URL here must not carry a user name or password (it would be stored in the dataset and logs); give ${signIn}`;
}

const credentialFree = <T extends z.ZodType<string>>(schema: T, signIn = REGISTRY_SIGN_IN) =>
  schema.superRefine((v, ctx) => {
    const problem = userInfoProblem(v, signIn);
    if (problem !== null) ctx.addIssue({ code: 'custom', message: problem });
  });

export const registrySettingsSchema = z.strictObject({
  /** Override the scheme; loopback hosts default to http, everything else to https. */
  scheme: z.enum(['http', 'https']).optional(),
  /** Base URL to use instead of the registry's own (a mirror or a proxy). */
  endpoint: credentialFree(z.url()).optional(),
  /** Basic credentials; prefer environment variables or ~/.docker/config.json. */
  username: z.string().optional(),
  password: z.string().optional(),
});

export const seedsSchema = z.strictObject({
  /** Image references: `debian:sid-20240311`, `user/app@sha256:…`, `127.0.0.1:5000/a/b:tag`. */
  images: z.array(z.string().min(1)).default([]),
  /** Repositories whose every tag (after filters) is crawled. */
  repos: z.array(z.string().min(1)).default([]),
  /** Docker Hub namespaces whose every repository is crawled. */
  namespaces: z.array(z.string().min(1)).default([]),
  /** Docker Hub search queries; each hit is crawled as a repository. */
  searches: z.array(z.string().min(1)).default([]),
  /** Registry base URLs whose `_catalog` lists the repositories to crawl. */
  catalogs: z.array(credentialFree(z.string().min(1))).default([]),
  /** Files with one image reference or repository per line (`#` comments allowed). */
  files: z.array(z.string().min(1)).default([]),
});

/** Docker Hub's web API, where `hubApiUrl` points unless a mirror or a test server is given. */
export const DEFAULT_HUB_API_URL = 'https://hub.docker.com';

export const filtersSchema = z.strictObject({
  /** Only tags whose name matches this regular expression. */
  tags: regex.optional(),
  /** Only tags pushed at or after this date (Hub API push dates; tags without a date pass). */
  pushedAfter: isoDate.optional(),
  /** Only tags pushed before this date. */
  pushedBefore: isoDate.optional(),
  /** Platforms to analyze; empty = all (attestation manifests are always skipped). */
  platforms: z.array(platform).default([]),
  /** At most this many tags per repository (newest first where push dates are known). */
  maxTagsPerRepository: z.number().int().positive().optional(),
});

export const httpSchema = z.strictObject({
  /** Per-request timeout, and the longest a body may stall. */
  timeoutMs: z.number().int().positive().default(60_000),
  /**
   * Past timeoutMs of waiting for a body, the slowest it may come on average: a server trickling bytes
   * never stalls long enough for the timeout, and would hold an item for hours.
   */
  minBodyBytesPerSecond: z.number().int().positive().default(4096),
  /** Retries of a request after 5xx, resets or timeouts. */
  maxRetries: z.number().int().min(0).max(20).default(5),
  /** Request rate per remote host (a registry on loopback is not throttled). */
  requestsPerSecondPerHost: z.number().positive().default(10),
  /** A rate-limit pause longer than this stops the run (resumable) instead of sleeping. */
  maxPauseMs: z
    .number()
    .int()
    .positive()
    .default(15 * 60_000),
});

export const limitsSchema = z.strictObject({
  // Analyzer limits: a layer past one fails with LimitExceededError naming it. Defaults in
  // src/analyzer/limits.ts (DEFAULT_LIMITS), repeated here for readers of a config file.
  /** Uncompressed bytes per layer (default 8 GiB; sparse holes count). */
  maxUncompressedBytes: z.number().int().positive().optional(),
  /** Tar entries per layer (default 1 000 000). */
  maxEntries: z.number().int().positive().optional(),
  /** Larger candidate files are recorded without hashes (default 512 MiB). */
  maxHashBytesPerFile: z.number().int().positive().optional(),
  /** PAX / GNU long-name records and sparse maps (default 1 MiB). */
  maxHeaderBytes: z.number().int().positive().optional(),
  /** Longest member name or link target, in characters, as the tar stores it (default 4096). */
  maxPathLength: z.number().int().positive().optional(),
  /** dpkg status, md5sums and os-release files read into memory (default 64 MiB). */
  maxCaptureBytes: z.number().int().positive().optional(),
  /** Memory one layer's facts may hold until recorded, estimated from their paths, text and records (default 256 MiB). */
  maxFactBytes: z.number().int().positive().optional(),
  /** Decompression-bomb guard: uncompressed/compressed past 64 MiB of output (default 200). */
  maxCompressionRatio: z.number().positive().optional(),
  /** Window a zstd frame may make the decoder allocate (default 32 MiB, rounded down to a power of two). */
  maxZstdWindowBytes: z.number().int().positive().optional(),
  /** Largest manifest body accepted. */
  maxManifestBytes: z
    .number()
    .int()
    .positive()
    .default(4 * 1024 * 1024),
  /** Largest layer blob downloaded (compressed bytes). */
  maxLayerBytes: z
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024 * 1024),
  /** Most names one registry `_catalog` or `tags/list` listing is read for; past it, the listing is cut. */
  maxListingEntries: z.number().int().positive().default(500_000),
});

export const configSchema = z.strictObject({
  /** SQLite dataset file. */
  db: z.string().min(1).default('./hubcrawl.sqlite'),
  seeds: seedsSchema.default(seedsSchema.parse({})),
  filters: filtersSchema.default(filtersSchema.parse({})),
  /** IOC set files added to the built-in XZ set. */
  iocFiles: z.array(z.string().min(1)).default([]),
  /** Leave the built-in IOC sets out. */
  noBuiltinIocs: z.boolean().default(false),
  /** Hash every regular file, not only the candidates chosen by IOC rules (slower; lets rematch use any new hash). */
  hashAllFiles: z.boolean().default(false),
  /** Analyze only images whose base layer is Debian-derived (the base layer is always analyzed). */
  debianOnly: z.boolean().default(false),
  /** Items processed at once. */
  concurrency: z.number().int().min(1).max(64).default(4),
  /** Layers analyzed at once (CPU bound). */
  layerConcurrency: z.number().int().min(1).max(16).default(2),
  /**
   * Counted pulls (manifest GETs on Docker Hub) allowed in this invocation; unlimited when absent. A crawl
   * that resumes an unfinished run gets the whole budget again: that is how a scheduled crawl spreads a
   * study over several quota windows.
   */
  maxPulls: z.number().int().min(0).optional(),
  /** Failed items are retried on later runs up to this many attempts in all. */
  maxAttempts: z.number().int().min(1).default(3),
  /** Docker Hub web API base URL (a mirror or a test server). */
  hubApiUrl: credentialFree(z.url(), HUB_API_SIGN_IN).default(DEFAULT_HUB_API_URL),
  /** Registry base URL used for docker.io instead of https://registry-1.docker.io. */
  registryMirror: credentialFree(z.url()).optional(),
  /** Path of the Docker client config (`auths`, `credsStore`, `credHelpers`); null to ignore it. */
  dockerConfig: z.string().nullable().optional(),
  /** Per-registry settings keyed by host[:port] (`docker.io`, `127.0.0.1:5000`). */
  registries: z.record(z.string(), registrySettingsSchema).default({}),
  http: httpSchema.default(httpSchema.parse({})),
  limits: limitsSchema.default(limitsSchema.parse({})),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
