/**
 * Repositories of a namespace and repository details (docker-hub-api.md §1.2, §1.3), on the
 * current `/v2/namespaces/…` routes with the deprecated `/v2/repositories/…` ones as fallback.
 */
import { HubOffsetCapError, isNotFound } from './errors.js';
import { type HubApi, hubUrl, offsetCapEvent, seg, walkWithFallback } from './paging.js';
import { type HubRepositoryJson, hubRepositoryPageSchema, hubRepositorySchema } from './schemas.js';

/** A repository as the Hub API describes it. */
export interface HubRepository {
  namespace: string;
  name: string;
  pullCount: number | null;
  starCount: number | null;
  lastUpdated: string | null;
  /** Official images are those of the `library` namespace; repository details carry no flag. */
  isOfficial: boolean;
  description: string | null;
  mediaTypes: string[];
  contentTypes: string[];
}

/** The Hub's JSON → our shape. */
export function toHubRepository(r: HubRepositoryJson): HubRepository {
  return {
    namespace: r.namespace,
    name: r.name,
    pullCount: r.pull_count,
    starCount: r.star_count,
    lastUpdated: r.last_updated,
    isOfficial: r.namespace === 'library',
    description: r.description,
    mediaTypes: r.media_types,
    contentTypes: r.content_types,
  };
}

/**
 * Every repository of `namespace`, page by page. Anonymous paging ends at the Hub's offset cap
 * (§1.7; one report puts it at offset 100 for repository listings, lower than for tags) with an
 * `offset-cap` event rather than an error: no other source lists a namespace, and the repositories
 * delivered so far are good, so the caller keeps them and records the listing as cut short.
 */
export async function* listRepositories(api: HubApi, namespace: string): AsyncGenerator<HubRepository> {
  const page = { page: 1, page_size: api.pageSize };
  const routes = {
    current: hubUrl(api, `/v2/namespaces/${seg(namespace)}/repositories`, page),
    legacy: hubUrl(api, `/v2/repositories/${seg(namespace)}/`, page),
  };
  let total: number | null = null;
  try {
    for await (const p of walkWithFallback(api, 'repositories', routes, hubRepositoryPageSchema)) {
      total = p.count;
      for (const r of p.results) yield toHubRepository(r);
    }
  } catch (err) {
    if (!(err instanceof HubOffsetCapError)) throw err;
    api.emit(offsetCapEvent('repositories', err, total));
  }
}

/** Details of one repository; a PermanentError with status 404 when it does not exist. */
export async function getRepository(api: HubApi, namespace: string, name: string): Promise<HubRepository> {
  const current = hubUrl(api, `/v2/namespaces/${seg(namespace)}/repositories/${seg(name)}`, {});
  const legacy = hubUrl(api, `/v2/repositories/${seg(namespace)}/${seg(name)}/`, {});
  if (!api.preferLegacy) {
    try {
      return toHubRepository(await api.getJson(current, hubRepositorySchema));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      api.emit({ type: 'fallback', what: 'repository', from: current.href, to: legacy.href });
    }
  }
  const repo = toHubRepository(await api.getJson(legacy, hubRepositorySchema));
  api.preferLegacy = true;
  return repo;
}
