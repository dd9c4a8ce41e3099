/**
 * Registry credentials from an explicit config map, env vars, and ~/.docker/config.json `auths`
 * (precedence in that order). A credential never prints: its toJSON and inspect forms are redacted.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { z } from 'zod';
import { ConfigError } from '../../core/errors.js';
import { DOCKER_HUB } from './reference.js';

export interface Credential {
  username: string;
  password: string;
}

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

/** A credential object whose secret stays out of JSON, util.inspect and template strings. */
function sealed(username: string, password: string): Credential {
  const cred = { username } as Credential;
  Object.defineProperty(cred, 'password', { value: password, enumerable: false });
  const redacted = () => ({ username, password: '[redacted]' });
  Object.defineProperty(cred, 'toJSON', { value: redacted, enumerable: false });
  Object.defineProperty(cred, inspect.custom, { value: () => redacted(), enumerable: false });
  Object.defineProperty(cred, 'toString', { value: () => `${username}:[redacted]`, enumerable: false });
  return Object.freeze(cred);
}

const dockerConfigSchema = z.object({
  auths: z
    .record(
      z.string(),
      z.object({
        auth: z.string().optional(),
        username: z.string().optional(),
        password: z.string().optional(),
      }),
    )
    .optional(),
});

/** Reads `auths` from a Docker config file; a missing file is fine, a malformed one is a ConfigError. */
function readDockerConfig(path: string): Map<string, Credential> {
  const out = new Map<string, Credential>();
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return out;
    throw new ConfigError(`cannot read Docker config ${path}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`Docker config ${path} is not valid JSON`, { cause: err });
  }
  const parsed = dockerConfigSchema.safeParse(json);
  if (!parsed.success) throw new ConfigError(`Docker config ${path} has an unexpected "auths" section`);
  for (const [key, entry] of Object.entries(parsed.data.auths ?? {})) {
    let username = entry.username;
    let password = entry.password;
    if (entry.auth) {
      // `auth` is base64("user:password"); the password may itself contain colons.
      const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (i > 0) {
        username = decoded.slice(0, i);
        password = decoded.slice(i + 1);
      }
    }
    if (username && password) out.set(normalizeRegistryKey(key), sealed(username, password));
  }
  return out;
}

export interface CredentialSources {
  env?: NodeJS.ProcessEnv;
  /** Path to a Docker config.json; default ~/.docker/config.json (or $DOCKER_CONFIG/config.json); null to skip. */
  dockerConfigPath?: string | null;
  explicit?: Record<string, { username: string; password: string }>;
}

/** Looks up credentials per registry host. */
export class CredentialStore {
  private constructor(private readonly byRegistry: Map<string, Credential>) {}

  /** No credentials at all (anonymous everywhere). */
  static empty(): CredentialStore {
    return new CredentialStore(new Map());
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
    if (configPath) for (const [k, v] of readDockerConfig(configPath)) map.set(k, v);

    const ru = env.HUBCRAWL_REGISTRY_USERNAME;
    const rp = env.HUBCRAWL_REGISTRY_PASSWORD;
    if (ru && rp) {
      const host = env.HUBCRAWL_REGISTRY_HOST;
      if (!host) {
        // Without a host the password would go to every registry the crawl meets, including ones a
        // catalog or seed file names: a password is for one registry.
        throw new ConfigError(
          'HUBCRAWL_REGISTRY_USERNAME/PASSWORD need HUBCRAWL_REGISTRY_HOST, the registry host[:port] they belong to',
        );
      }
      map.set(normalizeRegistryKey(host), sealed(ru, rp));
    }
    const hu = env.HUBCRAWL_DOCKERHUB_USERNAME;
    const ht = env.HUBCRAWL_DOCKERHUB_TOKEN;
    if (hu && ht) map.set(DOCKER_HUB, sealed(hu, ht));

    for (const [k, v] of Object.entries(opts.explicit ?? {})) {
      map.set(normalizeRegistryKey(k), sealed(v.username, v.password));
    }
    return new CredentialStore(map);
  }

  /** Credentials for a registry host (`docker.io`, `host:port`), if any. */
  get(registry: string): Credential | undefined {
    return this.byRegistry.get(normalizeRegistryKey(registry));
  }

  /** Registry hosts that have credentials (no secrets). */
  registries(): string[] {
    return [...this.byRegistry.keys()];
  }

  toJSON(): unknown {
    return { registries: this.registries() };
  }

  [inspect.custom](): unknown {
    return this.toJSON();
  }
}
