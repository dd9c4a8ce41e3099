/**
 * Registry credentials from an explicit config map, env vars, and ~/.docker/config.json
 * (precedence in that order; within the Docker config, as the docker CLI does: `credHelpers` for
 * the registry, else `credsStore`, else `auths`). A credential is a username and password, or an
 * identity token that `docker login` left (`auths.<host>.identitytoken`, or a helper's `<token>`
 * answer). A credential never prints: its toJSON and inspect forms are redacted.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { z } from 'zod';
import { ConfigError } from '../../core/errors.js';
import { basicCredential, type Credential, identityTokenCredential } from './credential.js';
import { assertHelperName, type HelperContext, helperEnvironment, helperGet } from './credential-helpers.js';
import { DOCKER_HUB } from './reference.js';

export type { BasicCredential, Credential, IdentityTokenCredential } from './credential.js';

const HUB_KEYS = new Set([
  'docker.io',
  'index.docker.io',
  'registry-1.docker.io',
  'registry.hub.docker.com',
  'auth.docker.io',
]);

/** `https://index.docker.io/v1/` → `docker.io`; `https://host:5000/v2/` → `host:5000`. */
export function normalizeRegistryKey(key: string): string {
  let k = key.trim().toLowerCase();
  k = k.replace(/^[a-z][a-z0-9+.-]*:\/\//, '');
  k = k.split('/')[0] ?? k;
  return HUB_KEYS.has(k) ? DOCKER_HUB : k;
}

const dockerConfigSchema = z.object({
  credsStore: z.string().optional(),
  credHelpers: z.record(z.string(), z.string()).optional(),
  auths: z
    .record(
      z.string(),
      z.object({
        auth: z.string().optional(),
        username: z.string().optional(),
        password: z.string().optional(),
        identitytoken: z.string().optional(),
      }),
    )
    .optional(),
});

/** What a Docker config file says about credentials. */
interface DockerConfigCredentials {
  auths: Map<string, Credential>;
  /** `credsStore`: the helper for every registry without a `credHelpers` entry. */
  store: string | undefined;
  /** `credHelpers`, keyed by normalized registry; '' means "this registry uses `auths`, not `credsStore`". */
  helpers: Map<string, string>;
}

/**
 * Reads a Docker config file; a malformed one is a ConfigError. A missing file is fine where it was only
 * looked for (the default `~/.docker/config.json`), not where the user named it (`--docker-config`).
 */
function readDockerConfig(path: string, named: boolean): DockerConfigCredentials {
  const out: DockerConfigCredentials = { auths: new Map(), store: undefined, helpers: new Map() };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && !named) return out;
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new ConfigError(`Docker config ${path} does not exist; give the path of a Docker config.json`, {
        cause: err,
      });
    }
    throw new ConfigError(`cannot read Docker config ${path}`, { cause: err });
  }
  // As the docker CLI (LoadFromReader ignores io.EOF): an empty file, /dev/null say, holds no credentials.
  if (text.trim() === '') return out;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`Docker config ${path} is not valid JSON`, { cause: err });
  }
  const parsed = dockerConfigSchema.safeParse(json);
  if (!parsed.success) {
    throw new ConfigError(
      `Docker config ${path} has an unexpected "auths", "credsStore" or "credHelpers" section`,
    );
  }
  // An empty credsStore is what `docker logout` of the last registry can leave: no store.
  out.store = parsed.data.credsStore || undefined;
  for (const [key, helper] of Object.entries(parsed.data.credHelpers ?? {})) {
    out.helpers.set(normalizeRegistryKey(key), helper);
  }
  // Two keys may name one registry (`host:5000` and `https://host:5000`, left by an old `docker login
  // https://host:5000` and a later `docker login host:5000`). As the docker CLI's file store: the key it
  // looks up exactly wins; a key it has to convert counts only without one (then the first in the file).
  const exact = new Set<string>();
  for (const [key, entry] of Object.entries(parsed.data.auths ?? {})) {
    const registry = normalizeRegistryKey(key);
    const isExact = key === dockerLookupKey(registry);
    if (out.auths.has(registry) && (exact.has(registry) || !isExact)) continue;
    const cred = authsEntry(path, key, entry);
    if (cred === undefined) continue;
    out.auths.set(registry, cred);
    if (isExact) exact.add(registry);
  }
  return out;
}

/** The `auths` key the docker CLI looks a registry up under before converting legacy keys. */
function dockerLookupKey(registry: string): string {
  return registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry;
}

/** Standard base64 with its padding, as Go's base64.StdEncoding (which docker decodes `auth` with) wants it. */
const STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * The credential of one `auths` entry, or undefined when it holds none. A malformed `auth` is a
 * ConfigError, as docker refuses the file ("invalid auth configuration file"): dropping it would crawl
 * anonymously without a word. Neither the value nor what it decodes to is quoted.
 */
function authsEntry(
  path: string,
  key: string,
  entry: {
    auth?: string | undefined;
    username?: string | undefined;
    password?: string | undefined;
    identitytoken?: string | undefined;
  },
): Credential | undefined {
  let username = entry.username;
  let password = entry.password;
  if (entry.auth) {
    // `auth` is base64("user:password"); the password may itself contain colons.
    const decoded = STD_BASE64.test(entry.auth) ? Buffer.from(entry.auth, 'base64').toString('utf8') : '';
    const i = decoded.indexOf(':');
    if (i <= 0) {
      throw new ConfigError(
        `Docker config ${path}: auths["${key}"].auth is not base64 of "username:password"; run ` +
          `\`docker login ${normalizeRegistryKey(key)}\` again, or remove that entry`,
      );
    }
    username = decoded.slice(0, i);
    password = decoded.slice(i + 1).replace(/\0+$/, '');
  }
  // As the docker CLI: an identity token wins over a password in the same entry (`auth` then only
  // names the account, often as "user:" with no password at all).
  if (entry.identitytoken) return identityTokenCredential(entry.identitytoken, username || undefined);
  if (username && password) return basicCredential(username, password);
  return undefined;
}

const NO_DOCKER_CONFIG: DockerConfigCredentials = { auths: new Map(), store: undefined, helpers: new Map() };

export interface CredentialSources {
  env?: NodeJS.ProcessEnv;
  /** Path to a Docker config.json; default ~/.docker/config.json (or $DOCKER_CONFIG/config.json); null to skip. */
  dockerConfigPath?: string | null;
  explicit?: Record<string, { username: string; password: string }>;
  /** How long a credential helper may take to answer (default 30 s, enough for a keychain prompt). */
  helperTimeoutMs?: number;
}

/** Looks up credentials per registry host. */
export class CredentialStore {
  /**
   * Answers of credential helpers by registry: the credential, null (the helper holds none), or
   * the helper's failure, rethrown without running it again (a hung helper blocks for its timeout).
   */
  private readonly fromHelpers = new Map<string, Credential | null | { failure: unknown }>();

  private constructor(
    /** Explicit and env credentials: they win over anything in the Docker config. */
    private readonly overrides: Map<string, Credential>,
    private readonly docker: DockerConfigCredentials,
    private readonly helperContext: HelperContext | null,
  ) {}

  /** No credentials at all (anonymous everywhere). */
  static empty(): CredentialStore {
    return new CredentialStore(new Map(), NO_DOCKER_CONFIG, null);
  }

  /**
   * Builds a store. Env: HUBCRAWL_DOCKERHUB_USERNAME/HUBCRAWL_DOCKERHUB_TOKEN for docker.io;
   * HUBCRAWL_REGISTRY_USERNAME/PASSWORD for HUBCRAWL_REGISTRY_HOST (required with them).
   */
  static fromSources(opts: CredentialSources): CredentialStore {
    const env = opts.env ?? {};
    const map = new Map<string, Credential>();
    const configPath =
      opts.dockerConfigPath === null
        ? undefined
        : (opts.dockerConfigPath ?? join(env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json'));
    const named = typeof opts.dockerConfigPath === 'string';
    const docker = configPath ? readDockerConfig(configPath, named) : NO_DOCKER_CONFIG;
    // Helpers see the caller's environment (a keychain needs its session variables) and are found on its PATH.
    const helperContext = configPath
      ? { env: helperEnvironment({ ...process.env, ...env }), configPath, timeoutMs: opts.helperTimeoutMs }
      : null;
    if (helperContext !== null) {
      if (docker.store) assertHelperName(docker.store, helperContext, 'credsStore');
      for (const [registry, helper] of docker.helpers) {
        if (helper !== '') assertHelperName(helper, helperContext, `credHelpers["${registry}"]`);
      }
    }

    const ru = env.HUBCRAWL_REGISTRY_USERNAME;
    const rp = env.HUBCRAWL_REGISTRY_PASSWORD;
    const hu = env.HUBCRAWL_DOCKERHUB_USERNAME;
    const ht = env.HUBCRAWL_DOCKERHUB_TOKEN;
    // Half a pair would crawl anonymously, and the registry's refusal would not say why.
    for (const [user, secret, names] of [
      [ru, rp, 'HUBCRAWL_REGISTRY_USERNAME and HUBCRAWL_REGISTRY_PASSWORD'],
      [hu, ht, 'HUBCRAWL_DOCKERHUB_USERNAME and HUBCRAWL_DOCKERHUB_TOKEN'],
    ] as const) {
      if (Boolean(user) !== Boolean(secret))
        throw new ConfigError(`${names} go together: one of them is not set`);
    }
    if (ru && rp) {
      const host = env.HUBCRAWL_REGISTRY_HOST;
      if (!host) {
        // Without a host the password would go to every registry the crawl meets, including ones a
        // catalog or seed file names: a password is for one registry.
        throw new ConfigError(
          'HUBCRAWL_REGISTRY_USERNAME/PASSWORD need HUBCRAWL_REGISTRY_HOST, the registry host[:port] they belong to',
        );
      }
      map.set(normalizeRegistryKey(host), basicCredential(ru, rp));
    }
    if (hu && ht) map.set(DOCKER_HUB, basicCredential(hu, ht));

    for (const [k, v] of Object.entries(opts.explicit ?? {})) {
      map.set(normalizeRegistryKey(k), basicCredential(v.username, v.password));
    }
    return new CredentialStore(map, docker, helperContext);
  }

  /**
   * Credentials for a registry host (`docker.io`, `host:port`), if any. The first lookup of a
   * registry served by a credential helper runs the helper (FatalError if it fails; see
   * credential-helpers.ts); later lookups use its answer.
   */
  get(registry: string): Credential | undefined {
    const key = normalizeRegistryKey(registry);
    const override = this.overrides.get(key);
    if (override !== undefined) return override;
    const helper = this.docker.helpers.get(key) ?? this.docker.store;
    // As the docker CLI: a registry served by a helper takes its answer alone, `auths` is not consulted.
    if (helper === undefined || helper === '' || this.helperContext === null)
      return this.docker.auths.get(key);
    if (!this.fromHelpers.has(key)) {
      try {
        const answer = helperGet(helper, key, this.helperContext);
        this.fromHelpers.set(key, answer);
      } catch (failure) {
        this.fromHelpers.set(key, { failure });
      }
    }
    const cached = this.fromHelpers.get(key);
    if (cached !== null && cached !== undefined && 'failure' in cached) throw cached.failure;
    return cached ?? undefined;
  }

  /** Registry hosts with a credential or a credential helper (no secrets); `*` stands for a `credsStore`. */
  registries(): string[] {
    const hosts = new Set([
      ...this.overrides.keys(),
      ...this.docker.auths.keys(),
      ...this.docker.helpers.keys(),
    ]);
    if (this.docker.store !== undefined) hosts.add('*');
    return [...hosts];
  }

  toJSON(): unknown {
    return { registries: this.registries() };
  }

  [inspect.custom](): unknown {
    return this.toJSON();
  }
}
