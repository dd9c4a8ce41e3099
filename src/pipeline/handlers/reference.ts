import { type Digest, isDigest } from '../../core/digest.js';
import { CorruptInputError, PermanentError } from '../../core/errors.js';
import type { ManifestHead } from '../../crawler/registry/client.js';
import { isSchema1MediaType } from '../../crawler/registry/media-types.js';
import { schema1Refusal } from '../../crawler/registry/schema1.js';
import type { FrontierItem } from '../../db/frontier-types.js';
import type { CrawlContext } from '../context.js';
import { itemForRepository } from '../fallback.js';
import { manifestKey } from '../keys.js';
import type { ManifestPayload, ReferencePayload } from '../payloads.js';
import { fetchAndKeepManifest } from './manifest.js';

/**
 * Resolves a tag (or takes a digest) and records the observation "tag T pointed at D in this run".
 * The digest comes from the Hub listing or a HEAD (not a counted pull); only where a registry answers a
 * HEAD without Docker-Content-Digest (Docker Hub always sends it) from a GET of the tag, kept for its
 * item. A tag either of them says is schema1 fails here, as UNSUPPORTED, without a GET. A digest written
 * in a seed is checked against the registry first (confirmSeedDigest): the seed's text is no observation.
 */
export async function handleReference(ctx: CrawlContext, item: FrontierItem<ReferencePayload>) {
  const { registry, repository, pushedAt, mediaType: listed } = item.payload;
  let { tag, digest } = item.payload;
  const subject = `${registry}/${repository}${tag ? `:${tag}` : ''}`;
  // Schema1 is refused where its type is known before the GET, which would be a counted pull spent on a
  // manifest hubcrawl cannot read. An unknown, generic or missing type says nothing: the GET decides.
  if (listed && isSchema1MediaType(listed)) {
    throw schema1Refusal(
      digest ? `${subject}@${digest}` : subject,
      listed,
      'as the Docker Hub tag listing says',
    );
  }
  let head: ManifestHead | null = null;
  if (item.payload.seed && digest && isDigest(digest)) {
    ({ tag, head } = await confirmSeedDigest(ctx, item.payload, digest));
  } else if (!digest || !isDigest(digest)) {
    head = await ctx.registry(registry).headManifest(repository, tag ?? 'latest');
    digest = head.digest;
  }
  // The HEAD's Content-Type is the stored manifest's type: distribution answers a stored schema1
  // manifest as schema1 although our Accept header does not list it (it has nothing else to serve).
  if (head && isSchema1MediaType(head.mediaType)) {
    const ref = digest ? `${subject}@${digest}` : subject;
    throw schema1Refusal(ref, head.mediaType, "as the registry's answer to a HEAD says");
  }
  // A registry may answer a HEAD without Docker-Content-Digest (the spec makes it optional): only the bytes
  // tell, so the tag's manifest is fetched now and kept, and its item reads it back instead of a second GET.
  // Every run pays that GET again (the tag may have moved): counted apart, and said once per registry.
  if (digest === null) {
    if (ctx.firstTime(`no-digest-header:${registry}`)) {
      ctx.log.warn(
        { registry },
        'the registry answers HEAD without Docker-Content-Digest: each tag is resolved by a GET of its manifest, in every run',
      );
    }
    const get = async () => {
      const fetched = await ctx.registry(registry).getManifest(repository, tag ?? 'latest');
      // A paid GET: counted before fetchAndKeepManifest records the stats with it.
      ctx.counters.tagDigestsByGet += 1;
      return fetched;
    };
    digest = (await fetchAndKeepManifest(ctx, null, get)).digest;
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

/**
 * A seed naming a digest (`repo@sha256:…`, `repo:tag@sha256:…`) says nothing the registry confirmed: the
 * dataset may already hold that digest from another repository, and its findings would be reported under
 * this one. So this repository must answer a HEAD for the digest (not a counted pull), or the item fails.
 * A tag beside the digest is kept only where the tag points at that digest now; otherwise the image is
 * recorded untagged, as `docker pull` too ignores such a tag.
 */
async function confirmSeedDigest(
  ctx: CrawlContext,
  p: ReferencePayload,
  digest: Digest,
): Promise<{ tag: string | null; head: ManifestHead }> {
  const client = ctx.registry(p.registry);
  const where = `${p.registry}/${p.repository}`;
  if (p.tag) {
    // Whatever keeps the tag from being confirmed (gone, refused, no digest header), the digest still is.
    let refused: string | null = null;
    const atTag = await client.headManifest(p.repository, p.tag).catch((err: unknown) => {
      if (!(err instanceof PermanentError)) throw err;
      if (err.status !== 404) refused = err.message;
      return null;
    });
    if (atTag?.digest === digest) return { tag: p.tag, head: atTag };
    ctx.log.warn(
      {
        seed: `${where}:${p.tag}@${digest}`,
        tagDigest: atTag?.digest ?? null,
        ...(refused ? { err: refused } : {}),
      },
      refused !== null
        ? 'the seed tag could not be checked: the seed digest is recorded untagged'
        : atTag === null
          ? 'the seed tag is not in the repository: the seed digest is recorded untagged'
          : atTag.digest === null
            ? 'the registry does not say which digest the seed tag points at (no Docker-Content-Digest): the seed digest is recorded untagged'
            : 'the seed tag points at another digest now: the seed digest is recorded untagged',
    );
  }
  const held = await client.headManifest(p.repository, digest).catch(notFoundAsNull);
  if (held === null) {
    throw new PermanentError(
      `${where} holds no manifest ${digest} (HEAD answered 404): the seed names an image this repository does not serve; nothing is recorded for it`,
      { status: 404 },
    );
  }
  if (held.digest !== digest) {
    throw new CorruptInputError(`HEAD ${where}@${digest} answered with another digest, ${held.digest}`);
  }
  return { tag: null, head: held };
}

/** A HEAD's 404 as null: the caller decides what "not there" means. */
function notFoundAsNull(err: unknown): null {
  if (err instanceof PermanentError && err.status === 404) return null;
  throw err;
}
