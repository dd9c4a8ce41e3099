/**
 * Which of a layer's entries a later entry of the same layer replaces. A tar archive may hold a path
 * twice; unpacked, the later entry wins, so what the earlier one held is in no filesystem. (A layer's
 * own whiteouts never remove its own entries, OCI image spec "Whiteouts", so they play no part here.)
 * Decided at match time from stored facts, so `hubcrawl rematch` corrects existing datasets without
 * downloading a layer again.
 */
import type { FileFact, LayerFacts } from '../facts.js';
import { ancestors } from '../paths.js';

/**
 * A file fact (`files[i]`) is known by its index. A fact parsed or scanned out of a file (a dpkg
 * paragraph, an md5sums line, a signature hit) is not: each fact array keeps stream order (`seq` in the
 * store), but nothing ties an item to one copy of its file when the layer holds that path twice. Its
 * order among the other items could suggest a copy, but only for well-formed files (one paragraph per
 * package…), and the layer's author writes those files: a decoy copy before the real one would move a
 * backdoored package onto the decoy. So only what a copy physically allows is used: a parsed database
 * must be non-empty, a signature hit must lie within a hashed file. An item counts as replaced only when
 * every copy that could hold it is replaced; otherwise it survives, as every other gap of `in_final_fs`
 * leans (docs/schema.md). The price: a backdoored copy followed by a clean one that could hold the same
 * item keeps that item's finding as surviving (the hash findings, tied to their copy, say replaced).
 */
export class SameLayerOrder {
  private lastAt: Map<string, number> | undefined;
  /** Like lastAt, without hardlinks whose bytes were not recorded (FileFact.linkTarget). */
  private lastKnownAt: Map<string, number> | undefined;
  private lastBelow: Map<string, number> | undefined;
  private copies: Map<string, number[]> | undefined;

  constructor(private readonly files: readonly FileFact[]) {}

  /**
   * Whether a later entry replaces `files[i]`: one at its path, at an ancestor (a file or symlink
   * replacing the directory) or below it (the path made a directory). A later hardlink at its path
   * whose bytes were not recorded does not count: they may be the same bytes (the link can name a
   * lower layer's copy of them), and the gaps lean "survives". At an ancestor it is still no directory.
   */
  replaced(i: number): boolean {
    const path = this.files[i]!.path;
    if (this.lastAt === undefined || this.lastKnownAt === undefined) {
      this.lastAt = new Map();
      this.lastKnownAt = new Map();
      for (let j = 0; j < this.files.length; j++) {
        const f = this.files[j]!;
        this.lastAt.set(f.path, j);
        if (f.linkTarget === undefined) this.lastKnownAt.set(f.path, j);
      }
    }
    if ((this.lastKnownAt.get(path) ?? -1) > i) return true;
    for (const a of ancestors(path)) if ((this.lastAt.get(a) ?? -1) > i) return true;
    if (this.lastBelow === undefined) {
      this.lastBelow = new Map();
      for (let j = 0; j < this.files.length; j++) {
        for (const a of ancestors(this.files[j]!.path)) this.lastBelow.set(a, j);
      }
    }
    return (this.lastBelow.get(path) ?? -1) > i;
  }

  /**
   * Whether a fact read out of the file at `path` is replaced: some copy there could hold it (`holds`),
   * and every such copy is replaced. No recorded copy, or none that could hold it: not replaced.
   */
  itemReplaced(path: string, holds: (f: FileFact) => boolean): boolean {
    if (this.copies === undefined) this.copies = this.copiesByPath();
    let any = false;
    for (const c of this.copies.get(path) ?? []) {
      if (!holds(this.files[c]!)) continue;
      if (!this.replaced(c)) return false;
      any = true;
    }
    return any;
  }

  /** The indexes in `files` of each path's copies, in stream order. */
  private copiesByPath(): Map<string, number[]> {
    const copies = new Map<string, number[]>();
    for (let j = 0; j < this.files.length; j++) {
      const path = this.files[j]!.path;
      const list = copies.get(path);
      if (list === undefined) copies.set(path, [j]);
      else list.push(j);
    }
    return copies;
  }
}

/** Per facts object, as a layer's facts are matched again for every image that holds the layer. */
const orders = new WeakMap<LayerFacts, SameLayerOrder>();

export function sameLayerOrder(facts: LayerFacts): SameLayerOrder {
  let order = orders.get(facts);
  if (order === undefined) {
    order = new SameLayerOrder(facts.files);
    orders.set(facts, order);
  }
  return order;
}
