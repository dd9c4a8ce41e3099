import type { FrontierKind } from '../db/frontier-types.js';
import type { ReferencePayload, RepositoryPayload } from './payloads.js';

/**
 * Frontier keys. Discovery and resolution are per run (`<run>|…`), so each crawl re-lists tags and
 * re-resolves digests (tags move), and a resumed run finds its finished items done. Layers are keyed
 * by content and by what the analysis means, so a layer is analyzed once per analyzer version and
 * candidate selection, however many runs and images share it.
 */

/** The kinds keyed by content, shared by every run; every other kind is keyed by run (runKeyPrefix). */
export const CONTENT_KEYED_KINDS: readonly FrontierKind[] = ['layer'];

/** The kinds keyed by run: discovery and resolution, which each run (each study) does for itself. */
export const RUN_KEYED_KINDS: readonly FrontierKind[] = [
  'namespace',
  'search',
  'catalog',
  'repository',
  'reference',
  'manifest',
];

/** How every run-keyed item of a run begins. */
export function runKeyPrefix(runId: number): string {
  return `${runId}|`;
}

/**
 * A run's run-keyed items as a range of the frontier's (kind, key) index: from its prefix (inclusive) to
 * the same with '}', the character after '|' (exclusive).
 */
export function runKeyRange(runId: number): { low: string; high: string } {
  return { low: runKeyPrefix(runId), high: `${runId}}` };
}

export function namespaceKey(runId: number, ns: string): string {
  return `${runKeyPrefix(runId)}${ns}`;
}

export function searchKey(runId: number, query: string): string {
  return `${runKeyPrefix(runId)}${query}`;
}

export function catalogKey(runId: number, url: string): string {
  return `${runKeyPrefix(runId)}${url}`;
}

export function repositoryKey(runId: number, p: RepositoryPayload): string {
  return `${runKeyPrefix(runId)}${p.registry}/${p.repository}`;
}

export function referenceKey(runId: number, p: ReferencePayload): string {
  const tag = p.tag ?? '';
  return `${runKeyPrefix(runId)}${p.registry}/${p.repository}:${tag}@${p.digest ?? ''}`;
}

/**
 * One manifest item per digest and registry in a run, whichever repositories reference it: the frontier's
 * unique key is then what makes a manifest fetched once, even when several tags reach it at the same time.
 */
export function manifestKey(runId: number, registry: string, digest: string): string {
  return `${runKeyPrefix(runId)}${registry}@${digest}`;
}

export function layerKey(digest: string, analyzerVersion: string, selection: string): string {
  return `${digest}${layerKeySuffix(analyzerVersion, selection)}`;
}

/** What follows the layer's digest in its key: the same for every layer a run enqueues. */
export function layerKeySuffix(analyzerVersion: string, selection: string): string {
  return `|${analyzerVersion}|${selection}`;
}
