import { PermanentError, stopsTheRun } from '../../core/errors.js';
import { isValidRepositoryPath, splitRepositoryName } from '../../core/repository-name.js';
import { HttpStatusError } from '../../crawler/http-errors.js';
import type { HubRepository } from '../../crawler/hub/repositories.js';
import { DOCKER_HUB, isValidTag } from '../../crawler/registry/reference.js';
import type { FrontierItem, NewFrontierItem } from '../../db/frontier-types.js';
import type { HubMetadata } from '../../db/repository-store.js';
import { nowIso } from '../../db/rows.js';
import type { CrawlContext } from '../context.js';
import { filterTags, pushDatesRequired, type TagCandidate } from '../filters.js';
import { referenceKey, repositoryKey } from '../keys.js';
import type {
  CatalogPayload,
  NamespacePayload,
  ReferencePayload,
  RepositoryPayload,
  SearchPayload,
} from '../payloads.js';

/** A repository to list, with what the listing that found it already says of it. */
function repositoryItem(
  ctx: CrawlContext,
  registry: string,
  repository: string,
  listedBy: { metadataListed?: true; catalogListed?: true } = {},
): NewFrontierItem {
  const payload: RepositoryPayload = { registry, repository, ...listedBy };
  return { kind: 'repository', key: repositoryKey(ctx.runId, payload), payload };
}

/**
 * Names a registry or the Hub listed, kept only when the reference grammar accepts them: they go into
 * request URLs, where `..`, `?` or `#` would steer our authenticated requests to other paths.
 */
function acceptedName(ctx: CrawlContext, what: 'repository' | 'tag', name: string, where: string): boolean {
  const ok = what === 'repository' ? isValidRepositoryPath(name) : isValidTag(name);
  if (!ok)
    ctx.log.warn({ where, name: name.slice(0, 200) }, `dropped an invalid ${what} name the server listed`);
  return ok;
}

function hubMetadata(r: HubRepository): HubMetadata {
  return {
    pullCount: r.pullCount,
    starCount: r.starCount,
    lastUpdated: r.lastUpdated,
    isOfficial: r.isOfficial,
    description: r.description,
  };
}

/**
 * Every repository of a Docker Hub namespace. Where anonymous paging hits the Hub's offset cap the
 * listing ends with an `offset-cap` event: the repositories listed so far are still enqueued, and the
 * item is recorded as a listing cut short (listing-cuts.ts) that says to sign in.
 */
export async function handleNamespace(ctx: CrawlContext, item: FrontierItem<NamespacePayload>) {
  const children: NewFrontierItem[] = [];
  const listed: Array<[full: string, meta: HubMetadata]> = [];
  for await (const repo of ctx.hub.listRepositories(item.payload.namespace)) {
    const full = `${repo.namespace}/${repo.name}`;
    if (!acceptedName(ctx, 'repository', full, `namespace ${item.payload.namespace}`)) continue;
    listed.push([full, hubMetadata(repo)]);
    children.push(repositoryItem(ctx, DOCKER_HUB, full, { metadataListed: true }));
  }
  const write = () => {
    for (const [full, meta] of listed) ctx.repositories.upsertRepository(DOCKER_HUB, full, meta);
  };
  return { write, children };
}

/** Docker Hub search hits, each crawled as a repository; a search the offset cap ends is a listing cut short. */
export async function handleSearch(ctx: CrawlContext, item: FrontierItem<SearchPayload>) {
  const children: NewFrontierItem[] = [];
  for await (const hit of ctx.hub.search(item.payload.query)) {
    const full = `${hit.namespace || 'library'}/${hit.name}`;
    if (acceptedName(ctx, 'repository', full, `search ${item.payload.query}`)) {
      children.push(repositoryItem(ctx, DOCKER_HUB, full));
    }
  }
  return { children };
}

/**
 * Every repository in a registry's `_catalog`. A repository the dataset holds tags of that the catalog no
 * longer names is looked at too (at most MAX_UNLISTED_CHECKS): deleted, its tags are no longer current.
 */
export async function handleCatalog(ctx: CrawlContext, item: FrontierItem<CatalogPayload>) {
  const { registry } = item.payload;
  const listingStartedAt = nowIso();
  const children: NewFrontierItem[] = [];
  const listed = new Set<string>();
  for await (const name of ctx.registry(registry).catalog()) {
    listed.add(name);
    if (acceptedName(ctx, 'repository', name, `${registry} catalog`)) {
      children.push(repositoryItem(ctx, registry, name, { catalogListed: true }));
    }
  }
  // A catalog cut short (its cuts so far) names too few repositories to say which are unlisted.
  const gone = ctx.listingCutsSoFar().length === 0 ? await goneUnlisted(ctx, registry, listed) : [];
  // Only a whole catalog proves a repository unlisted; one cut short proves nothing.
  const write = ({ listingComplete }: { listingComplete: boolean }) => {
    if (!listingComplete) return;
    for (const { repositoryId, tags } of gone)
      ctx.tags.recordAbsences(repositoryId, tags, ctx.runId, listingStartedAt);
  };
  return { write, children };
}

/**
 * The most repositories one catalog listing checks; the others, drawn at random each time, wait for a
 * later crawl, so that repositories hidden from the catalog (which keep answering) do not hold back the rest.
 */
const MAX_UNLISTED_CHECKS = 50;

/**
 * Of `registry`'s repositories with tags the dataset holds as present that the catalog did not list, the
 * tags the registry confirms gone: the repository's tags/list answers 404 NAME_UNKNOWN (deleted) or lacks
 * them (a repository hidden from the catalog, which a registry may do for what a token cannot see, but
 * still there), and each tag's HEAD answers 404 (confirmGone). Any other answer confirms nothing.
 */
async function goneUnlisted(
  ctx: CrawlContext,
  registry: string,
  listed: ReadonlySet<string>,
): Promise<GoneTags[]> {
  const unlisted = ctx.repositories.withPresentTags(registry).filter((name) => !listed.has(name));
  const out: GoneTags[] = [];
  for (const repository of sample(unlisted, MAX_UNLISTED_CHECKS)) {
    let names: string[];
    try {
      names = (await listedTags(ctx, registry, repository)).map((t) => t.name);
    } catch (err) {
      if (stopsTheRun(err)) throw err;
      if (!repositoryUnknown(err)) continue;
      names = [];
    }
    const gone = await confirmGone(ctx, registry, repository, names);
    if (gone) out.push(gone);
  }
  return out;
}

/** Up to `n` of `items`, drawn at random (all of them when there are no more). */
function sample<T>(items: readonly T[], n: number): T[] {
  const copy = [...items];
  for (let i = copy.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [copy[i], copy[j]] = [copy[j] as T, copy[i] as T];
  }
  return copy.slice(0, n);
}

/**
 * Tags of a Docker Hub repository from the Hub API (with digests and push dates); past the anonymous
 * offset cap, the rest by name from the registry's tags/list (no cap, no pull), resolved later by HEAD.
 * Under a date filter the undated rest is not listed: every one of them would pass the filter, and on a
 * repository like rayproject/ray (282,645 tags) that is a HEAD each and a pull per new digest. The
 * listing ends as cut short instead, saying to sign in (pushDatesRequired in filters.ts).
 */
async function hubTags(ctx: CrawlContext, repository: string): Promise<ListedTag[]> {
  const { namespace, name } = splitRepositoryName(repository);
  const out: ListedTag[] = [];
  const registryTags = () => ctx.registry(DOCKER_HUB).listTags(repository);
  const opts = { pushDatesRequired: pushDatesRequired(ctx.config.filters) };
  for await (const { tag } of ctx.hub.listTagsWithFallback(namespace, name, registryTags, opts)) {
    out.push({ name: tag.name, digest: tag.digest, pushedAt: tag.lastPushed, mediaType: tag.mediaType });
  }
  return out;
}

/** A tag candidate with the media type the Hub listed for it (none from a registry's tags/list). */
type ListedTag = TagCandidate & { mediaType?: string | null };

/** A repository: its Hub metadata (Docker Hub only) and its filtered tags as references to resolve. */
export async function handleRepository(ctx: CrawlContext, item: FrontierItem<RepositoryPayload>) {
  const { registry, repository } = item.payload;
  let meta: HubMetadata | undefined;
  if (registry === DOCKER_HUB && !item.payload.metadataListed) {
    const { namespace, name } = splitRepositoryName(repository);
    try {
      meta = hubMetadata(await ctx.hub.getRepository(namespace, name));
    } catch (err) {
      if (stopsTheRun(err)) throw err;
      // Metadata enriches the report; the tags are what the crawl needs, so go on without it.
      ctx.log.warn({ repository, err: (err as Error).message }, 'repository details unavailable');
    }
  }

  // An absence is dated when the listing began: a tag another item observes while a long listing runs
  // (rayproject/ray's 282,645 tags take many minutes) was seen after that, and its observation wins.
  const listingStartedAt = nowIso();
  let tags: ListedTag[];
  try {
    tags = await listedTags(ctx, registry, repository);
  } catch (err) {
    // Not on Docker Hub, whose registry answers 401 to the HEADs of a repository that is gone, which
    // confirms nothing.
    if (registry === DOCKER_HUB || !repositoryUnknown(err)) throw err;
    // The registry says the repository has no tags: as an empty listing of it, the tags the dataset holds as
    // present in it are gone, each as its HEAD confirms. Otherwise a deleted repository's tags would stay
    // current in every later report. A repository its catalog listed is there (with untagged manifests
    // only): listed, it has nothing to resolve. One a seed names may not be: its item fails, saying so.
    if (!item.payload.catalogListed) {
      const gone = await confirmGone(ctx, registry, repository, []);
      if (gone) ctx.tags.recordAbsences(gone.repositoryId, gone.tags, ctx.runId, listingStartedAt);
      throw new PermanentError(
        `${(err as Error).message}: the registry holds no repository of that name, or one without tags (untagged manifests only); an untagged image is crawled by digest (--image ${registry}/${repository}@sha256:…)`,
        { status: 404, cause: err },
      );
    }
    ctx.log.info(
      { repository: `${registry}/${repository}` },
      'the catalog lists a repository without tags (NAME_UNKNOWN for its tag list): nothing to resolve',
    );
    tags = [];
  }
  const gone = await confirmGone(
    ctx,
    registry,
    repository,
    tags.map((t) => t.name),
  );
  const named = tags.filter((t) => acceptedName(ctx, 'tag', t.name, `${registry}/${repository}`));
  const children: NewFrontierItem[] = filterTags(named, ctx.config.filters).map((t) => {
    const payload: ReferencePayload = {
      registry,
      repository,
      tag: t.name,
      digest: t.digest,
      pushedAt: t.pushedAt,
      ...(t.mediaType ? { mediaType: t.mediaType } : {}),
    };
    return { kind: 'reference', key: referenceKey(ctx.runId, payload), payload };
  });
  const write = ({ listingComplete }: { listingComplete: boolean }) => {
    const id = ctx.repositories.upsertRepository(registry, repository, meta);
    // A whole listing, and the registry's 404 for each tag it lacks, prove those tags gone; a listing cut
    // short proves nothing (migrations/0006_tag_currency.sql).
    if (listingComplete && gone) ctx.tags.recordAbsences(id, gone.tags, ctx.runId, listingStartedAt);
    ctx.counters.repositories += 1;
  };
  return { write, children };
}

async function listedTags(ctx: CrawlContext, registry: string, repository: string): Promise<ListedTag[]> {
  if (registry === DOCKER_HUB) return hubTags(ctx, repository);
  const tags: ListedTag[] = [];
  for await (const name of ctx.registry(registry).listTags(repository)) {
    tags.push({ name, digest: null, pushedAt: null });
  }
  return tags;
}

/**
 * The registry's own word that a repository does not exist: a 404 whose error body names NAME_UNKNOWN
 * (distribution-spec, "Error Codes"). A bare 404 may be a proxy's wrong path or a mirror that lacks the
 * repository, and proves nothing.
 */
function repositoryUnknown(err: unknown): boolean {
  return err instanceof HttpStatusError && err.status === 404 && err.registryCodes().includes('NAME_UNKNOWN');
}

/** Tags of a repository the registry confirmed gone (confirmGone). */
interface GoneTags {
  repositoryId: number;
  tags: string[];
}

/** The most absences one listing confirms; the rest wait for the next crawl (see confirmGone). */
const MAX_ABSENCE_HEADS = 200;
/** HEADs in flight at once for one listing's absences; the run's rate limiter paces them all. */
const ABSENCE_HEAD_CONCURRENCY = 4;

/**
 * Of the tags the dataset saw present in the repository and the listing lacks (TagStore.absentFrom), those
 * the registry confirms gone (null when none, or the dataset does not know the repository): a HEAD of the tag's manifest answers 404 (MANIFEST_UNKNOWN, NAME_UNKNOWN). A
 * listing can lack a tag that exists: Docker Hub pages tags by offset, sorted by update time, so a tag
 * re-pushed during the walk (`latest`, a nightly) moves to a page already read and is never listed, and no
 * cut says so. Recorded gone, it would drop a still-pullable image from `report --current-only`.
 *
 * Any other answer records nothing. 2xx: the tag exists (pointing elsewhere than its last observation or
 * not, the next crawl that lists it observes it; recording the digest here would make the next crawl take
 * the new image for one already fetched). 401, 403, 429, 5xx, no answer: unknown. An error that stops the
 * run (a spent pull budget, the host's rate limit, an unreachable host) stops it as the listing's would,
 * and the item is done again on resume.
 *
 * A HEAD is not a counted pull on Docker Hub ("version check"; docs: docker/docs
 * content/manuals/docker-hub/usage/pulls.md, in /work/shared/reference/docker-hub-api.md), and goes
 * through the run's registry client, so its rate limiting and auth. Bounded: only tags last seen present
 * that this listing lacks, which a tag that stays deleted leaves after one run, and at most
 * MAX_ABSENCE_HEADS per listing (a listing cut short, which the handler cannot tell, wastes no more);
 * the others stay present until a later crawl confirms them, the first ones by name each time.
 */
async function confirmGone(
  ctx: CrawlContext,
  registry: string,
  repository: string,
  listed: readonly string[],
): Promise<GoneTags | null> {
  const known = ctx.repositories.get(registry, repository);
  if (!known) return null;
  const lacked = ctx.tags.absentFrom(known.id, listed);
  if (lacked.length === 0) return null;
  const where = `${registry}/${repository}`;
  if (lacked.length > MAX_ABSENCE_HEADS) {
    ctx.log.info(
      { repository: where, lacked: lacked.length, checked: MAX_ABSENCE_HEADS },
      'the listing lacks more tags the dataset holds than one crawl checks: the rest stay current until a later crawl',
    );
  }
  const queue = lacked.slice(0, MAX_ABSENCE_HEADS);
  const client = ctx.registry(registry);
  const gone: string[] = [];
  const stillThere: string[] = [];
  const unknown: Array<{ tag: string; err: string }> = [];
  let next = 0;
  const check = async (tag: string): Promise<void> => {
    try {
      await client.headManifest(repository, tag);
      stillThere.push(tag);
    } catch (err) {
      if (stopsTheRun(err)) {
        next = queue.length; // the other workers start no more HEADs
        throw err;
      }
      if (err instanceof PermanentError && err.status === 404) gone.push(tag);
      else unknown.push({ tag, err: (err as Error).message });
    }
  };
  const worker = async (): Promise<void> => {
    while (next < queue.length) await check(queue[next++] as string);
  };
  await Promise.all(Array.from({ length: Math.min(ABSENCE_HEAD_CONCURRENCY, queue.length) }, worker));
  if (stillThere.length > 0) {
    ctx.log.info(
      { repository: where, tags: stillThere.sort().slice(0, 20), count: stillThere.length },
      'the tag listing lacked tags a HEAD still finds (a tag re-pushed while the listing paged): not recorded as deleted',
    );
  }
  if (unknown.length > 0) {
    ctx.log.warn(
      { repository: where, tags: unknown.slice(0, 20), count: unknown.length },
      'could not confirm that tags the listing lacked are deleted: not recorded as deleted',
    );
  }
  return gone.length > 0 ? { repositoryId: known.id, tags: gone.sort() } : null;
}
