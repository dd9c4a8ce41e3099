import type { ReferencePayload, RepositoryPayload } from './payloads.js';

/**
 * Frontier keys. Discovery and resolution are per run (`<run>|…`), so each crawl re-lists tags and
 * re-resolves digests (tags move), and a resumed run finds its finished items done. Layers are keyed
 * by content and by what the analysis means, so a layer is analyzed once per analyzer version and
 * candidate selection, however many runs and images share it.
 */

export function namespaceKey(runId: number, ns: string): string {
  return `${runId}|${ns}`;
}

export function searchKey(runId: number, query: string): string {
  return `${runId}|${query}`;
}

export function catalogKey(runId: number, url: string): string {
  return `${runId}|${url}`;
}

export function repositoryKey(runId: number, p: RepositoryPayload): string {
  return `${runId}|${p.registry}/${p.repository}`;
}

export function referenceKey(runId: number, p: ReferencePayload): string {
  const tag = p.tag ?? '';
  return `${runId}|${p.registry}/${p.repository}:${tag}@${p.digest ?? ''}`;
}

/**
 * One manifest item per digest and registry in a run, whichever repositories reference it: the frontier's
 * unique key is then what makes a manifest fetched once, even when several tags reach it at the same time.
 */
export function manifestKey(runId: number, registry: string, digest: string): string {
  return `${runId}|${registry}@${digest}`;
}

export function layerKey(digest: string, analyzerVersion: string, selection: string): string {
  return `${digest}|${analyzerVersion}|${selection}`;
}
