/**
 * Image references, normalized the way Docker does (distribution/reference `ParseNormalizedNamed`):
 * `debian` → `docker.io/library/debian:latest`; the first path component is a registry only when it
 * contains `.` or `:`, is `localhost`, or has upper case letters.
 */

import { type Digest, isDigest } from '../../core/digest.js';
import { ConfigError } from '../../core/errors.js';
import { isValidPathComponent, MAX_NAME_LENGTH } from '../../core/repository-name.js';

export interface ImageReference {
  /** `docker.io` or `host[:port]`. */
  registry: string;
  /** Full path inside the registry, e.g. `library/debian`. */
  repository: string;
  tag?: string;
  digest?: Digest;
}

export const DOCKER_HUB = 'docker.io';

// distribution/reference grammar (regexp.go); path components and the length cap live in core/repository-name.
const TAG = /^[\w][\w.-]{0,127}$/;
const HOST_PART = /^(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])$/;
const IPV6 = /^\[[a-fA-F0-9:]+\]$/;

/** `docker.io` and its legacy aliases. */
const HUB_ALIASES = new Set([
  'docker.io',
  'index.docker.io',
  'registry-1.docker.io',
  'registry.hub.docker.com',
]);

function looksLikeRegistry(first: string): boolean {
  return first.includes('.') || first.includes(':') || first === 'localhost' || first.toLowerCase() !== first;
}

function validRegistry(host: string): boolean {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d{1,5}))?$/.exec(host);
  if (!m) return false;
  const name = m[1]!;
  if (m[2] !== undefined && Number(m[2]) > 65535) return false;
  if (IPV6.test(name)) return true;
  return name.split('.').every((p) => HOST_PART.test(p));
}

function fail(input: string, why: string): never {
  throw new ConfigError(`image reference "${input.slice(0, 300)}" is invalid: ${why}`);
}

/** Splits a name (no tag or digest) into registry and repository, adding `library/` on Docker Hub. */
function splitName(input: string, name: string): { registry: string; repository: string } {
  if (name === '') fail(input, 'the repository name is empty');
  let registry = DOCKER_HUB;
  let path = name;
  const slash = name.indexOf('/');
  if (slash > 0 && looksLikeRegistry(name.slice(0, slash))) {
    registry = name.slice(0, slash);
    path = name.slice(slash + 1);
    if (!validRegistry(registry)) fail(input, `"${registry}" is not a valid registry host[:port]`);
  }
  if (HUB_ALIASES.has(registry.toLowerCase())) registry = DOCKER_HUB;
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  if (path.toLowerCase() !== path) fail(input, 'repository names must be lowercase');
  for (const c of path.split('/')) {
    if (!isValidPathComponent(c)) {
      fail(input, `path component "${c}" must be lowercase letters, digits and single separators (. _ __ -)`);
    }
  }
  if (`${registry}/${path}`.length > MAX_NAME_LENGTH) {
    fail(input, `the name is longer than ${MAX_NAME_LENGTH} characters`);
  }
  return { registry, repository: path };
}

/**
 * Whether a tag from the network is valid: registries list tags we then put into URLs, so discovery drops
 * what the reference grammar would refuse (repository paths: `isValidRepositoryPath` in core/repository-name.ts).
 */
export function isValidTag(tag: string): boolean {
  return TAG.test(tag);
}

/** Parses a user-typed reference; no tag and no digest means `:latest`. Invalid → ConfigError. */
export function parseReference(s: string): ImageReference {
  const input = s.trim();
  if (input === '') fail(s, 'it is empty');
  if (/\s/.test(input)) fail(s, 'it contains whitespace');
  let rest = input;
  let digest: Digest | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    const d = rest.slice(at + 1);
    if (!isDigest(d)) fail(s, `"${d}" is not a sha256:<64 hex> or sha512:<128 hex> digest`);
    digest = d;
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) fail(s, `tag "${tag}" must be 1–128 of [A-Za-z0-9_.-], not starting with . or -`);
  }
  const ref: ImageReference = splitName(s, rest);
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  if (tag === undefined && digest === undefined) ref.tag = 'latest';
  return ref;
}

/** Parses a repository name without tag or digest (`debian`, `ghcr.io/org/app`). */
export function parseRepository(s: string): { registry: string; repository: string } {
  const input = s.trim();
  if (input.includes('@')) fail(s, 'a repository name cannot carry a digest');
  const lastSlash = input.lastIndexOf('/');
  if (input.lastIndexOf(':') > lastSlash) fail(s, 'a repository name cannot carry a tag');
  return splitName(s, input);
}

/** Canonical `registry/repository[:tag][@digest]`. */
export function formatReference(r: ImageReference): string {
  let out = `${r.registry}/${r.repository}`;
  if (r.tag !== undefined) out += `:${r.tag}`;
  if (r.digest !== undefined) out += `@${r.digest}`;
  return out;
}

/** The registry-API reference for a manifest request: the digest when known, else the tag. */
export function manifestRef(r: ImageReference): string {
  return r.digest ?? r.tag ?? 'latest';
}

export { isLoopbackHost } from '../../core/host.js';
