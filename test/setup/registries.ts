/**
 * vitest global setup: starts the three real registries once per run (anonymous, htpasswd, token)
 * and provides their JSON-serialisable coordinates to every test via `inject('registries')`.
 *
 * The token service lives in this (the main vitest) process; tests run in forks, so they may
 * block their own event loop (execFileSync skopeo) without starving it.
 */
import type { TestProject } from 'vitest/node';
import { type RegistryAuth, type RunningRegistry, startRegistry } from '../../scripts/lib/registry.js';

/** What a test gets for one registry (no handles: this crosses a process boundary). */
export interface ProvidedRegistry {
  url: string;
  host: string;
  auth: RegistryAuth;
  username?: string;
  password?: string;
  /** Token flavour only. */
  tokenRealm?: string;
  tokenService?: string;
}

export interface ProvidedRegistries {
  none: ProvidedRegistry;
  htpasswd: ProvidedRegistry;
  token: ProvidedRegistry;
}

declare module 'vitest' {
  export interface ProvidedContext {
    registries: ProvidedRegistries;
  }
}

function describeRegistry(r: RunningRegistry): ProvidedRegistry {
  return {
    url: r.url,
    host: r.host,
    auth: r.auth,
    ...(r.username !== undefined ? { username: r.username, password: r.password } : {}),
    ...(r.token ? { tokenRealm: r.token.realm, tokenService: r.token.service } : {}),
  };
}

export async function setup(project: TestProject): Promise<() => Promise<void>> {
  const started: RunningRegistry[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.allSettled(started.map((r) => r.stop()));
  };
  try {
    for (const auth of ['none', 'htpasswd', 'token'] as const) {
      started.push(await startRegistry({ auth, installIfMissing: true }));
    }
  } catch (err) {
    await stopAll();
    throw err;
  }
  const [none, htpasswd, token] = started.map(describeRegistry);
  if (!none || !htpasswd || !token) throw new Error('registries did not start');
  project.provide('registries', { none, htpasswd, token });
  return stopAll;
}
