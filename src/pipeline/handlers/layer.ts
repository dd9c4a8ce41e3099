import { ANALYZER_VERSION, analyzeLayer } from '../../analyzer/layer-stream.js';
import { isDebianDerived } from '../../analyzer/os-release.js';
import { parseDigest } from '../../core/digest.js';
import type { FrontierItem, NewFrontierItem } from '../../db/frontier-types.js';
import type { CrawlContext } from '../context.js';
import { fromAnyRepository } from '../fallback.js';
import { runKeyPrefix } from '../keys.js';
import type { LayerPayload } from '../payloads.js';
import { layerItemsFor } from './manifest.js';

/**
 * Streams one layer blob through the analyzer (digest verified as it streams, nothing on disk) and
 * records its facts. A layer is analyzed once per analyzer version and candidate selection; a later
 * image sharing it finds it done. The blob is fetched from the repository that first reached it, or from
 * another holding it when that one refuses. A debianOnly gate layer, once analyzed, releases the upper
 * layers of every image built on it (fetched, like any layer, from whichever repository serves them).
 */
export async function handleLayer(ctx: CrawlContext, item: FrontierItem<LayerPayload>, signal: AbortSignal) {
  const p = item.payload;
  const digest = parseDigest(p.digest, 'layer digest');
  const gateChildren = (): NewFrontierItem[] => {
    if (!p.gate) return [];
    if (!ctx.baseIsDebian(digest)) {
      ctx.log.debug({ layer: digest }, 'base layer is not Debian-derived; upper layers skipped');
      // The images of this run that waited for this verdict (their manifest items are done) skip their upper
      // layers now, read from the dataset so a resumed run counts those of its earlier invocations too; an
      // image whose manifest item comes later counts its own skip (layerItemsFor).
      ctx.counters.layersSkippedNotDebian += ctx.images.upperLayersOnBase(digest, runKeyPrefix(ctx.runId));
      return [];
    }
    return ctx.images
      .withBaseLayer(digest)
      .flatMap((image) => layerItemsFor(ctx, p, ctx.images.layers(image)).filter((c) => c.key !== item.key));
  };

  // A layer no image lists any more (an artifact's payload an older version recorded as an image, since
  // forgotten: forgetArtifactImages) is no one's to download; its retried item ends here.
  if (!ctx.images.isLayerListed(digest)) {
    ctx.log.debug({ layer: digest }, 'no image lists this layer any more; not downloaded');
    return { children: [] };
  }
  // Once the item is done (and a gate's upper layers queued), the images this layer completes are matched.
  const settle = () => ctx.matcher.afterLayer(digest);
  // Analyzed meanwhile (under a selection that covers this one): nothing to download. The run counted it
  // in layersReused, or in layersAnalyzed, when its images reached it (ctx.countKnownLayers).
  if (!ctx.layers.needsAnalysis(digest, ANALYZER_VERSION, ctx.rules.coveredBy)) {
    return { children: gateChildren, settle };
  }
  const {
    maxManifestBytes: _m,
    maxLayerBytes: _l,
    maxListingEntries: _e,
    ...analyzerLimits
  } = ctx.config.limits;
  const facts = await fromAnyRepository(
    p.repository,
    () => ctx.repositories.holdingLayer(p.registry, digest),
    async (repository) => {
      // The analyzer checks the digest (off the main thread for zstd); the blob stream need not hash it too.
      const blob = await ctx.registry(p.registry).openBlob(repository, digest, {
        maxBytes: ctx.config.limits.maxLayerBytes,
        maxBytesSetting: 'maxLayerBytes',
        signal,
        verify: false,
        size: p.size,
      });
      return analyzeLayer(blob, {
        rules: ctx.rules,
        limits: Object.fromEntries(Object.entries(analyzerLimits).filter(([, v]) => v !== undefined)),
        expectedDigest: digest,
        blobName: `blob ${p.registry}/${repository}@${digest}`,
        signal,
      });
    },
  );
  // Counted with the rows, in the completion's transaction (see manifest.ts `counted`).
  const write = () => {
    ctx.counters.layersAnalyzed += 1;
    ctx.layerAnalyzed(digest);
    ctx.counters.layerBytes += facts.compressedBytes;
    ctx.layers.markAnalyzed(digest, facts, ANALYZER_VERSION);
    if (p.gate) ctx.debianBaseKnown(digest, isDebianDerived(facts.osRelease, facts.packages));
  };
  return { write, children: gateChildren, settle };
}
