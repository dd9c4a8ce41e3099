/**
 * Which of a layer's entries a later entry of the same layer replaces. A tar archive may hold a path
 * twice; unpacked, the later entry wins, so what the earlier one held is in no filesystem. (A layer's
 * own whiteouts never remove its own entries, OCI image spec "Whiteouts", so they play no part here.)
 * Decided at match time from stored facts, so `hubcrawl rematch` corrects existing datasets without
 * downloading a layer again.
 */
import type { FileFact, LayerFacts } from '../facts.js';

/** `/a/b/c` → [`/a`, `/a/b`] (proper ancestors, root excluded). */
export function ancestors(path: string): string[] {
  const out: string[] = [];
  for (let i = path.indexOf('/', 1); i > 0; i = path.indexOf('/', i + 1)) out.push(path.slice(0, i));
  return out;
}

/**
 * A file fact (`files[i]`) is known by its index. A fact parsed or scanned out of a file (a dpkg
 * paragraph, an md5sums line, a signature hit) is not: each fact array keeps stream order (`seq` in the
 * store), but nothing orders one array against another. It is tied to a copy of its file by aligning its
 * array with `files`: items come in the order of their files, one file gives a key (package and
 * architecture, listed path, rule) at most once, and only a file that fits can give it (a signature hit
 * needs a hashed file longer than its offset; a parsed database a non-empty one).
 *
 * Where that leaves a choice, an item is placed in the LATEST copy the alignment allows, so it counts as
 * replaced only when no later copy can have held it. Findings then lean the way every other gap of
 * `in_final_fs` leans (docs/schema.md): a backdoor that only a signature shows, placed after a clean
 * decoy at the same path, stays a surviving finding; the price is that a backdoored copy followed by a
 * clean one of at least the same size keeps its signature finding as surviving too (its hash findings,
 * tied to their copy by index, do say replaced). Linear in the facts; built once a layer gives evidence.
 */
export class SameLayerOrder {
  private lastAt: Map<string, number> | undefined;
  private lastBelow: Map<string, number> | undefined;
  private copies: Map<string, number[]> | undefined;
  private readonly attributed = new Map<readonly unknown[], Int32Array>();

  constructor(private readonly files: readonly FileFact[]) {}

  /**
   * Whether a later entry replaces `files[i]`: one at its path, at an ancestor (a file or symlink
   * replacing the directory) or below it (the path made a directory). -1 (no file known) is never replaced.
   */
  replaced(i: number): boolean {
    if (i < 0) return false;
    const path = this.files[i]!.path;
    if (this.lastAt === undefined) {
      this.lastAt = new Map();
      for (let j = 0; j < this.files.length; j++) this.lastAt.set(this.files[j]!.path, j);
    }
    if (this.lastAt.get(path)! > i) return true;
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
   * For each item of a fact array in stream order, the index in `files` of the copy of its file it is
   * taken from: the latest the alignment allows (-1 when no file at its path is recorded). Items the
   * rules cannot place at all (a status file listing a package twice) go to the last copy of their path.
   * Computed once per array, walking it from its end.
   */
  attribute<T>(
    items: readonly T[],
    pathOf: (item: T) => string,
    keyOf: (item: T) => string,
    usable: (f: FileFact) => boolean,
    fits: (item: T, f: FileFact) => boolean = () => true,
  ): Int32Array {
    const known = this.attributed.get(items);
    if (known !== undefined) return known;
    if (this.copies === undefined) this.copies = this.copiesByPath();
    const copies = this.copies;
    const usableCopies = new Map<string, number[]>();
    // Per path: the copy being filled (index into its usable list, walking down), the keys it gave.
    const state = new Map<string, { k: number; used: Set<string> | null; broken: boolean }>();
    const out = new Int32Array(items.length);
    // Every item earlier in the stream sits at or before the copy of the items after it.
    let ceiling = Number.POSITIVE_INFINITY;
    for (let j = items.length - 1; j >= 0; j--) {
      const item = items[j]!;
      const path = pathOf(item);
      const all = copies.get(path);
      if (all === undefined) {
        out[j] = -1;
        continue;
      }
      let list = usableCopies.get(path);
      if (list === undefined) {
        list = all.filter((c) => usable(this.files[c]!));
        usableCopies.set(path, list);
      }
      let st = state.get(path);
      if (st === undefined) {
        st = { k: list.length - 1, used: null, broken: false };
        state.set(path, st);
      }
      const key = keyOf(item);
      // Copies passed over are never needed again: every earlier item sits at or before this one's copy.
      while (!st.broken && st.k >= 0) {
        const c = list[st.k]!;
        if (c <= ceiling && !st.used?.has(key) && fits(item, this.files[c]!)) break;
        st.k--;
        st.used = null;
      }
      if (st.broken || st.k < 0) {
        st.broken = true;
        out[j] = all[all.length - 1]!;
        continue;
      }
      st.used ??= new Set();
      st.used.add(key);
      ceiling = list[st.k]!;
      out[j] = ceiling;
    }
    this.attributed.set(items, out);
    return out;
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
