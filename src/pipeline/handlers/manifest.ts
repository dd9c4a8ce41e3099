import { ANALYZER_VERSION } from '../../analyzer/layer-stream.js';
import { type Digest, parseDigest } from '../../core/digest.js';
import {
  CorruptInputError,
  DigestMismatchError,
  LimitExceededError,
  PermanentError,
  UnsupportedError,
} from '../../core/errors.js';
import type { Platform } from '../../core/platform.js';
import type { FetchedManifest } from '../../crawler/registry/client.js';
import { type ImageConfig, parseImageConfig } from '../../crawler/registry/image-config.js';
import {
  type ParsedManifest,
  parseManifest,
  Schema1ManifestError,
  selectPlatforms,
} from '../../crawler/registry/manifests.js';
import { isSchema1MediaType } from '../../crawler/registry/media-types.js';
import { schema1Refusal } from '../../crawler/registry/schema1.js';
import type { FrontierItem, NewFrontierItem } from '../../db/frontier-types.js';
import type { CrawlContext } from '../context.js';
import { fromAnyRepository, itemForRepository } from '../fallback.js';
import { layerKey, manifestKey } from '../keys.js';
import type { LayerPayload, ManifestPayload } from '../payloads.js';

type ImageManifest = Extract<ParsedManifest, { kind: 'image' }>;

/** Indexes below a tag: Docker Hub serves one level; OCI allows nesting, a hostile registry endless fresh digests. */
export const MAX_INDEX_DEPTH = 4;
/** Docker's overlay2 stops near 128 layers; thousands are a broken or hostile manifest, not an image. */
export const MAX_LAYERS_PER_IMAGE = 1000;

/** The image config's platform and build date (the config blob is small and its GET is not a counted pull). */
async function readImageConfig(
  ctx: CrawlContext,
  p: ManifestPayload,
  m: ImageManifest,
): Promise<ImageConfig> {
  const stream = await ctx.registry(p.registry).openBlob(p.repository, m.config.digest, {
    maxBytes: 8 << 20,
    maxBytesSetting: 'the fixed image-config bound',
    size: m.config.size,
  });
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c));
  return parseImageConfig(Buffer.concat(chunks), `image config ${m.config.digest} of ${p.repository}`);
}

/**
 * The build date of an image whose index entry named its platform: its config is read for the date alone,
 * which is never worth failing the image over, so a config that is gone, broken or past its bound gives
 * NULL (and a warning). A fault of the transport fails the item as any fetch does, to be tried again.
 */
async function dateOfConfig(ctx: CrawlContext, p: ManifestPayload, m: ImageManifest): Promise<string | null> {
  try {
    return (await readImageConfig(ctx, p, m)).created;
  } catch (err) {
    const ofTheConfig =
      err instanceof CorruptInputError ||
      err instanceof LimitExceededError ||
      err instanceof DigestMismatchError ||
      err instanceof PermanentError;
    if (!ofTheConfig) throw err;
    ctx.log.warn(
      { repository: p.repository, config: m.config.digest, err: (err as Error).message },
      'image config not read: its build date (images.created) is left unknown',
    );
    return null;
  }
}

/** `os/arch[/variant]` as recorded in the images table. */
function storedPlatform(s: string): Platform {
  const [os = 'unknown', architecture = 'unknown', variant] = s.split('/');
  return variant ? { os, architecture, variant } : { os, architecture };
}

/**
 * The layer items an image needs: every layer not yet analyzed under this analyzer version and
 * candidate selection. With `debianOnly`, only the base layer until it is known to be Debian-derived.
 */
export function layerItemsFor(
  ctx: CrawlContext,
  p: { registry: string; repository: string },
  layers: ReadonlyArray<{ digest: string; mediaType: string | null; size: number | null }>,
): NewFrontierItem[] {
  const { fingerprint, coveredBy: selections } = ctx.rules;
  const needed = (digest: string) => ctx.layers.needsAnalysis(digest, ANALYZER_VERSION, selections);
  const item = (l: (typeof layers)[number], gate: boolean): NewFrontierItem => {
    const payload: LayerPayload = {
      registry: p.registry,
      repository: p.repository,
      digest: l.digest,
      mediaType: l.mediaType,
      size: l.size,
      gate,
    };
    const key = layerKey(l.digest, ANALYZER_VERSION, fingerprint);
    return itemForRepository(ctx, { kind: 'layer', key, payload }, p.repository);
  };
  const base = layers[0];
  if (!base) return [];
  if (ctx.config.debianOnly) {
    if (needed(base.digest)) return [item(base, true)];
    if (!ctx.baseIsDebian(base.digest)) {
      ctx.counters.layersSkippedNotDebian += layers.length - 1;
      return [];
    }
  }
  return layers.filter((l) => needed(l.digest)).map((l) => item(l, false));
}

/**
 * Refuses, before its GET, a manifest known to be schema1: from an earlier GET (unsupported_manifests),
 * or from the type the index listing it declares (the manifest-v2-2 spec allows schema1 entries).
 */
function refuseKnownSchema1(ctx: CrawlContext, p: ManifestPayload, digest: Digest, source: string): void {
  const known = ctx.manifests.unsupported(digest);
  if (known) {
    const run = known.runId === null ? 'an earlier GET' : `the GET of run ${known.runId}`;
    throw schema1Refusal(source, known.mediaType, `as ${run} found (unsupported_manifests)`);
  }
  if (p.mediaType && isSchema1MediaType(p.mediaType)) {
    throw schema1Refusal(source, p.mediaType, 'as the index that lists it says');
  }
}

/**
 * A manifest GET (a counted pull on Docker Hub) whose verified bytes are kept at once, in their own
 * transaction, not with the item's completion: whatever fails later (the config blob, a fixed bound, an
 * interrupted run), the retry, the resumed run and the next run read them back instead of paying again.
 * Only the content-addressed row is written (idempotent by digest, frontier invariant 4); an image, its
 * layers and an index's entries wait for their item's `write`, so a manifest whose item fails is no image.
 * An artifact has the shape of an image manifest and is stored as one (`kind` is the shape): read back,
 * its bytes parse as an artifact again. A schema1 manifest is recorded in unsupported_manifests, so no
 * later run pays its GET either. `requested`: the digest asked for, when the GET was by digest.
 */
export async function fetchAndKeepManifest(
  ctx: CrawlContext,
  requested: Digest | null,
  get: () => Promise<FetchedManifest>,
): Promise<FetchedManifest> {
  const fetched = await get().catch((err: unknown) => {
    // A schema1 verdict on bytes checked against their digest holds for that digest everywhere.
    if (!(err instanceof Schema1ManifestError) || (requested !== null && err.digest !== requested)) throw err;
    // The GET was made: the run's stats say so like any other fetch.
    ctx.counters.manifestsFetched += 1;
    ctx.manifests.putUnsupported({ digest: err.digest, mediaType: err.mediaType, runId: ctx.runId });
    ctx.recordStats();
    throw new UnsupportedError(`${err.message}; recorded, so no later run pulls it again`, { cause: err });
  });
  ctx.counters.manifestsFetched += 1;
  const { digest, mediaType, parsed, raw } = fetched;
  ctx.manifests.put({
    digest,
    mediaType,
    kind: parsed.kind === 'index' ? 'index' : 'image',
    raw,
    configDigest: parsed.kind === 'index' ? null : parsed.config.digest,
    runId: ctx.runId,
  });
  // Committed on its own, before the item: the paid GET is in the recorded counts whatever happens next.
  ctx.recordStats();
  return fetched;
}

/**
 * A manifest by digest: read back from the dataset when it is already there (no GET, no pull),
 * else fetched once and stored at once. An index fans out to its selected platforms; an image is
 * recorded with its ordered layers, and the layers that need analysis are enqueued. An OCI artifact
 * (a signature, an SBOM, a Helm chart: `artifactVerdict`) is no image: it is skipped, not failed.
 */
export async function handleManifest(ctx: CrawlContext, item: FrontierItem<ManifestPayload>) {
  const p = item.payload;
  const digest: Digest = parseDigest(p.digest, 'manifest digest');
  const source = `manifest ${p.registry}/${p.repository}@${digest}`;
  let raw: Buffer;
  let mediaType: string;
  let parsed: ParsedManifest;
  const stored = ctx.manifests.get(digest);
  if (stored) {
    raw = ctx.manifests.getRaw(digest)!;
    mediaType = stored.mediaType;
    // Its size passed the limit of the run that fetched it; a later run's limit does not apply again.
    parsed = parseManifest({
      raw,
      contentType: mediaType,
      requestedDigest: digest,
      source,
      maxBytes: raw.length,
    }).parsed;
  } else {
    refuseKnownSchema1(ctx, p, digest, source);
    ({ raw, mediaType, parsed } = await fetchAndKeepManifest(ctx, digest, () =>
      fromAnyRepository(
        p.repository,
        () => ctx.repositories.reachingManifest(p.registry, digest),
        (repository) => ctx.registry(p.registry).getManifest(repository, digest),
      ),
    ));
  }

  // The item's counts go with its rows (`write`, in the completion's transaction): the run's recorded counts
  // never include an item that a kill or a failure then makes the run do again.
  const counted = (write?: () => void) => (): void => {
    write?.();
    if (stored) ctx.counters.manifestsReused += 1;
  };

  if (parsed.kind === 'artifact') {
    // No image row, no config GET, no layer items; nothing failed. Its tag is still observed (reference.ts).
    ctx.log.info(
      {
        registry: p.registry,
        repository: p.repository,
        digest,
        artifactType: parsed.artifactType,
        reason: parsed.reason,
      },
      `skipped an OCI artifact, not a container image: ${p.registry}/${p.repository}@${digest}, as ${parsed.reason}`,
    );
    return {
      write: counted(() => {
        ctx.counters.artifactsSkipped += 1;
      }),
      children: [],
    };
  }

  if (parsed.kind === 'index') {
    const depth = p.depth ?? 0;
    if (depth >= MAX_INDEX_DEPTH) {
      throw new LimitExceededError(
        'maxIndexDepth',
        depth + 1,
        `${source} is an index nested ${depth + 1} levels deep, more than ${MAX_INDEX_DEPTH}; not following it`,
      );
    }
    const selected = selectPlatforms(parsed, ctx.platforms);
    // A --platform that selects nothing here is said, not silent: the tag would look crawled and clean.
    const noneSelected = ctx.platforms !== 'all' && selected.length === 0;
    if (noneSelected) {
      const listed = parsed.manifests
        .filter((e) => !e.isAttestation)
        .map((e) =>
          e.platform
            ? [e.platform.os, e.platform.architecture, e.platform.variant].filter(Boolean).join('/')
            : '?',
        );
      ctx.log.warn(
        { index: source, lists: [...new Set(listed)].slice(0, 20) },
        'the index lists no platform --platform selects: nothing of it is analyzed',
      );
    }
    const children: NewFrontierItem[] = selected.map((e) => {
      const payload: ManifestPayload = {
        registry: p.registry,
        repository: p.repository,
        digest: e.digest,
        platform: e.platform
          ? {
              os: e.platform.os,
              architecture: e.platform.architecture,
              ...(e.platform.variant ? { variant: e.platform.variant } : {}),
            }
          : null,
        depth: depth + 1,
        mediaType: e.mediaType,
      };
      const key = manifestKey(ctx.runId, p.registry, e.digest);
      return itemForRepository(ctx, { kind: 'manifest', key, payload }, p.repository);
    });
    const write = () => {
      if (noneSelected) ctx.counters.indexesWithoutSelectedPlatform += 1;
      ctx.manifests.putIndexChildren(
        digest,
        parsed.manifests.map((e) => ({
          digest: e.digest,
          mediaType: e.mediaType,
          size: e.size,
          os: e.platform?.os ?? null,
          architecture: e.platform?.architecture ?? null,
          variant: e.platform?.variant ?? null,
          isAttestation: e.isAttestation,
        })),
      );
    };
    return { children, write: counted(write) };
  }

  if (parsed.layers.length > MAX_LAYERS_PER_IMAGE) {
    throw new LimitExceededError(
      'maxLayersPerImage',
      parsed.layers.length,
      `${source} lists ${parsed.layers.length} layers, more than ${MAX_LAYERS_PER_IMAGE}; refusing the image`,
    );
  }
  // A recorded image keeps the platform read from its config (content-addressed): no second config GET.
  // A stored manifest without an image row is one whose item failed after the GET: its config is read now.
  // A new image's config is read for its build date (`created`), and for its platform where no index entry
  // named it: one small blob GET per new image, as a pull makes, and no counted pull. An image already
  // recorded keeps what it has (created NULL when an older hubcrawl recorded it), so a crawl of a known
  // image spends nothing on it (docs/schema.md, `images`).
  const known = stored ? ctx.images.get(digest) : undefined;
  let platform: Platform;
  let created: string | null = null;
  if (known) platform = p.platform ?? storedPlatform(known.platform);
  else if (p.platform) {
    platform = p.platform;
    created = await dateOfConfig(ctx, p, parsed);
  } else ({ platform, created } = await readImageConfig(ctx, p, parsed));
  const layers = parsed.layers.map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size }));
  const write = counted(() => {
    ctx.images.put({
      digest,
      platform,
      configDigest: parsed.config.digest,
      created,
      layers,
    });
    ctx.counters.images += 1;
    ctx.countKnownLayers(digest, layers);
  });
  // Layer items are computed after `write` so that the image's layers exist for the debianOnly gate. Once
  // they are queued, an image whose layers are all done (analyzed before) is matched with the item.
  return {
    write,
    children: () => layerItemsFor(ctx, p, layers),
    settle: () => ctx.matcher.afterImage(digest),
  };
}
