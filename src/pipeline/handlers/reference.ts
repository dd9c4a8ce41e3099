import { isDigest } from '../../core/digest.js';
import { isSchema1MediaType } from '../../crawler/registry/media-types.js';
import { schema1Refusal } from '../../crawler/registry/schema1.js';
import type { FrontierItem } from '../../db/frontier-types.js';
import type { CrawlContext } from '../context.js';
import { itemForRepository } from '../fallback.js';
import { manifestKey } from '../keys.js';
import type { ManifestPayload, ReferencePayload } from '../payloads.js';

/**
 * Resolves a tag (or takes a digest) and records the observation "tag T pointed at D in this run".
 * The digest comes from the Hub listing or a HEAD, never a GET: HEADs are not counted pulls. A tag
 * either of them says is schema1 fails here, as UNSUPPORTED, without a GET.
 */
export async function handleReference(ctx: CrawlContext, item: FrontierItem<ReferencePayload>) {
  const { registry, repository, tag, pushedAt, mediaType: listed } = item.payload;
  const subject = `${registry}/${repository}${tag ? `:${tag}` : ''}`;
  let digest = item.payload.digest;
  // Schema1 is refused where its type is known before the GET, which would be a counted pull spent on a
  // manifest hubcrawl cannot read. An unknown, generic or missing type says nothing: the GET decides.
  if (listed && isSchema1MediaType(listed)) {
    throw schema1Refusal(
      digest ? `${subject}@${digest}` : subject,
      listed,
      'as the Docker Hub tag listing says',
    );
  }
  if (!digest || !isDigest(digest)) {
    const head = await ctx.registry(registry).headManifest(repository, tag ?? 'latest');
    // The HEAD's Content-Type is the stored manifest's type: distribution answers a stored schema1
    // manifest as schema1 although our Accept header does not list it (it has nothing else to serve).
    if (isSchema1MediaType(head.mediaType)) {
      throw schema1Refusal(
        `${subject}@${head.digest}`,
        head.mediaType,
        "as the registry's answer to a HEAD says",
      );
    }
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
