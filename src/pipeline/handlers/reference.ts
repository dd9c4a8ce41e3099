import { isDigest } from '../../core/digest.js';
import type { FrontierItem } from '../../db/frontier-types.js';
import type { CrawlContext } from '../context.js';
import { itemForRepository } from '../fallback.js';
import { manifestKey } from '../keys.js';
import type { ManifestPayload, ReferencePayload } from '../payloads.js';

/**
 * Resolves a tag (or takes a digest) and records the observation "tag T pointed at D in this run".
 * The digest comes from the Hub listing or a HEAD, never a GET: HEADs are not counted pulls.
 */
export async function handleReference(ctx: CrawlContext, item: FrontierItem<ReferencePayload>) {
  const { registry, repository, tag, pushedAt } = item.payload;
  let digest = item.payload.digest;
  if (!digest || !isDigest(digest)) {
    const head = await ctx.registry(registry).headManifest(repository, tag ?? 'latest');
    digest = head.digest;
  }
  const resolved = digest;
  const write = () => {
    const repositoryId = ctx.repositories.upsertRepository(registry, repository);
    ctx.tags.observe({ repositoryId, tag: tag ?? '', digest: resolved, pushedAt, runId: ctx.runId });
    ctx.counters.tags += 1;
  };
  const payload: ManifestPayload = { registry, repository, digest, platform: null };
  const child = itemForRepository(
    ctx,
    { kind: 'manifest', key: manifestKey(ctx.runId, registry, digest), payload },
    repository,
  );
  return { write, children: [child] };
}
