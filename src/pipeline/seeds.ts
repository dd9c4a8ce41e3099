import { readFileSync } from 'node:fs';
import type { Config } from '../config/schema.js';
import { appendAll } from '../core/arrays.js';
import { ConfigError } from '../core/errors.js';
import { redactUrl } from '../core/url.js';
import { schemeConflict } from '../crawler/registry/client.js';
import { parseReference, parseRepository } from '../crawler/registry/reference.js';
import type { NewFrontierItem } from '../db/frontier-types.js';
import { catalogKey, namespaceKey, referenceKey, repositoryKey, searchKey } from './keys.js';
import type { ReferencePayload, RepositoryPayload } from './payloads.js';

/** One line of a seed file: an image (it names a tag or digest) or a repository (every tag). */
export type SeedLine = { kind: 'image'; ref: string } | { kind: 'repository'; repo: string };

/**
 * Parses a seed file: one reference or repository per line; `#` starts a comment (whole line or
 * trailing); blank lines ignored. A line with `:tag` or `@digest` after its last `/` is an image; a bare
 * name is a repository. Bad lines are errors naming the file and line, so no seed is silently dropped.
 */
export function parseSeedFile(text: string, source: string): SeedLine[] {
  const out: SeedLine[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/(^|\s)#.*$/, '').trim();
    if (!line) continue;
    if (/\s/.test(line)) {
      throw new ConfigError(
        `${source}:${i + 1}: "${line}" holds more than one reference; write one per line`,
      );
    }
    const lastSegment = line.slice(line.lastIndexOf('/') + 1);
    const isImage = lastSegment.includes(':') || lastSegment.includes('@');
    try {
      if (isImage) {
        parseReference(line);
        out.push({ kind: 'image', ref: line });
      } else {
        parseRepository(line);
        out.push({ kind: 'repository', repo: line });
      }
    } catch (err) {
      throw new ConfigError(`${source}:${i + 1}: ${(err as Error).message}`, { cause: err });
    }
  }
  return out;
}

/** Reads every seed file named in the config. */
export function readSeedFiles(files: readonly string[]): SeedLine[] {
  const out: SeedLine[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read seed file ${file}: ${(err as Error).message}`, { cause: err });
    }
    appendAll(out, parseSeedFile(text, file));
  }
  return out;
}

/** The paths a registry's base URL may be written with: its root, or the API's own. */
const REGISTRY_ROOT_PATHS = new Set(['/', '/v2', '/v2/', '/v2/_catalog']);

/**
 * A `--catalog` seed as the registry root whose `_catalog` is listed (a bare `host[:port]` is written
 * https, and reached as configured). The catalog is the registry's whole list and the registry API sits
 * at the host's root, so a path (`host/team`, an Artifactory-style prefix) or a query would be dropped
 * without a word, crawling every repository of the registry: one is refused, saying what to write.
 */
export function catalogSeedUrl(url: string): URL {
  let u: URL;
  try {
    u = new URL(url.includes('://') ? url : `https://${url}`);
  } catch (err) {
    throw new ConfigError(`seed catalog "${redactUrl(url)}" is not a registry URL`, { cause: err });
  }
  // The registry API is HTTP: another scheme would be crawled over HTTP as if it had been asked for.
  if (u.protocol !== 'https:' && u.protocol !== 'http:') {
    throw new ConfigError(
      `seed catalog "${url}" is not an http(s) URL; give https://host (or http:// for a plain-HTTP registry)`,
    );
  }
  const root = new URL(`${u.protocol}//${u.host}/`);
  if (!REGISTRY_ROOT_PATHS.has(u.pathname) || u.search !== '' || u.hash !== '') {
    const shown = new URL(redactUrl(u));
    // A bare host is reached as configured (http on loopback): name it as written, without a scheme.
    const registry = url.includes('://') ? root.href : u.host;
    throw new ConfigError(
      `seed catalog "${redactUrl(url)}" has a path or query (${shown.pathname}${shown.search}${shown.hash}), but a catalog seed lists every repository of ${registry}, whatever follows the host; give that base URL, or crawl single repositories with --repo ${u.host}/<name>`,
    );
  }
  return root;
}

/** The run's first frontier items, from the config's seeds. Validates every seed before any is enqueued. */
export function seedItems(config: Config, runId: number): NewFrontierItem[] {
  const items: NewFrontierItem[] = [];
  const images = [...config.seeds.images];
  const repos = [...config.seeds.repos];
  for (const line of readSeedFiles(config.seeds.files)) {
    if (line.kind === 'image') images.push(line.ref);
    else repos.push(line.repo);
  }
  for (const s of images) {
    let ref: ReturnType<typeof parseReference>;
    try {
      ref = parseReference(s);
    } catch (err) {
      throw new ConfigError(`seed image "${s}": ${(err as Error).message}`, { cause: err });
    }
    const payload: ReferencePayload = {
      registry: ref.registry,
      repository: ref.repository,
      tag: ref.digest ? (ref.tag ?? null) : (ref.tag ?? 'latest'),
      digest: ref.digest ?? null,
      pushedAt: null,
      seed: true,
    };
    items.push({ kind: 'reference', key: referenceKey(runId, payload), payload });
  }
  for (const s of repos) {
    let r: ReturnType<typeof parseRepository>;
    try {
      r = parseRepository(s);
    } catch (err) {
      throw new ConfigError(`seed repository "${s}": ${(err as Error).message}`, { cause: err });
    }
    const payload: RepositoryPayload = { registry: r.registry, repository: r.repository };
    items.push({ kind: 'repository', key: repositoryKey(runId, payload), payload });
  }
  for (const ns of config.seeds.namespaces) {
    if (!/^[a-z0-9][a-z0-9._-]*$/.test(ns)) {
      throw new ConfigError(
        `seed namespace "${ns}" is not a Docker Hub namespace (lowercase letters, digits, . _ -)`,
      );
    }
    items.push({ kind: 'namespace', key: namespaceKey(runId, ns), payload: { namespace: ns } });
  }
  for (const q of config.seeds.searches) {
    items.push({ kind: 'search', key: searchKey(runId, q), payload: { query: q } });
  }
  for (const url of config.seeds.catalogs) {
    const u = catalogSeedUrl(url);
    // A written scheme is a request: crawling the host over the other one would go unnoticed.
    if (url.includes('://')) {
      const conflict = schemeConflict(u, config.registries[u.host] ?? {});
      if (conflict) throw new ConfigError(`seed catalog ${conflict}`);
    }
    items.push({
      kind: 'catalog',
      key: catalogKey(runId, u.href),
      payload: { url: u.href, registry: u.host },
    });
  }
  return items;
}
