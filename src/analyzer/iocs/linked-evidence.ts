/**
 * What a layer's hardlinks to lower files carry. A link whose bytes the analyzer did not read
 * (FileFact.linkTarget) names a file of a lower layer, and unpacking (containerd, umoci) links it to
 * that file: the path holds those very bytes. Evidence found at the target, still there when the layer
 * is applied, is evidence at the link's path too, in the link's layer. Without it, a backdoored library
 * linked from an upper layer and then whited out at its own path survives at the link with no finding
 * that says so (test/integration/crawl/final-fs-oracle.test.ts, the hardlink cases).
 */
import type { LayerFacts } from '../facts.js';
import type { LocatedEvidence } from './match.js';
import { sameLayerOrder } from './same-layer-order.js';

/**
 * The evidence `facts` (layer `layerDigest`) carries through its links, given `below`: the located
 * evidence of the lower layers still there when this layer is applied (asked for only when the layer has
 * such a link, as most have none). Only evidence tied to its file (a hash, a signature hit, a dpkg status
 * file's listing) moves with the bytes: an md5sums line names another path than the file it was read from.
 */
export function carriedByLinks(
  facts: LayerFacts,
  layerDigest: string,
  below: () => readonly LocatedEvidence[],
): LocatedEvidence[] {
  const out: LocatedEvidence[] = [];
  let order: ReturnType<typeof sameLayerOrder> | undefined;
  let lower: readonly LocatedEvidence[] | undefined;
  let firstAt: Map<string, number> | undefined;
  facts.files.forEach((link, i) => {
    const target = link.linkTarget;
    // With hashes, its target's bytes were read in this layer (a dpkg status linked to a file of its own).
    if (target === undefined || link.sha256 !== null) return;
    // A target this layer wrote before the link is its own file, not the lower one: nothing to carry.
    if (firstAt === undefined) {
      firstAt = new Map();
      facts.files.forEach((f, j) => {
        if (!firstAt!.has(f.path)) firstAt!.set(f.path, j);
      });
    }
    if ((firstAt.get(target) ?? i) < i) return;
    lower ??= below();
    for (const l of lower) {
      if (l.evidence.path !== target || l.overwritePaths.length !== 1 || l.overwritePaths[0] !== target)
        continue;
      order ??= sameLayerOrder(facts);
      out.push({
        evidence: { ...l.evidence, path: link.path, layerDigest },
        replacedInLayer: order.replaced(i),
        overwritePaths: [link.path],
        whiteoutPaths: [link.path],
      });
    }
  });
  return out;
}
