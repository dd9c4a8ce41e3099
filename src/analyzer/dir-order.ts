/**
 * Whether a layer's archive lists a directory entry after something below it.
 *
 * A directory entry replaces a lower layer's symlink at its path, so the members written after it land in
 * a new directory. Those written before it went through the link (an unpacker applies entries in archive
 * order): `lib/x` then `lib/` over a lower `lib -> usr/lib` leaves `x` in /usr/lib and an empty /lib. Tar
 * writers list a directory before what it holds; an archive that does not is told apart so that matching
 * does not place such a layer's members as if it did (LayerFacts.lateDirs).
 *
 * Memory stays small whatever the archive: only a 32-bit hash of each ancestor is kept, to a depth of
 * MAX_DEPTH, and at most MAX_TRACKED of them. Past either bound, or on a hash collision, a directory is
 * taken to be late: that only makes matching read the image both ways, as for a layer whose directory
 * entries are not known.
 */

/** Components of a path whose prefixes are kept: deeper directory entries are taken to be late. */
const MAX_DEPTH = 32;
/**
 * Ancestor hashes kept at most: 2^18, about 10 MiB in a Set (2^20 measured 40 MiB on Node 20). A layer
 * has one per directory its entries sit in, a few thousand for a distribution's base; past the bound,
 * every directory entry is taken to be late.
 */
const MAX_TRACKED = 1 << 18;

const FNV_OFFSET = 0x811c9dc5 | 0;
const FNV_PRIME = 0x01000193;

export class DirectoryOrder {
  /** FNV-1a hashes of the proper ancestors (to MAX_DEPTH components) of every entry seen so far. */
  private readonly ancestors = new Set<number>();
  private full = false;

  /** An entry landed at `path` (normalized, absolute): each of its ancestors now has something below it. */
  saw(path: string): void {
    if (this.full) return;
    let hash = FNV_OFFSET;
    let depth = 0;
    for (let i = 1; i < path.length; i++) {
      const c = path.charCodeAt(i);
      if (c === 0x2f) {
        this.ancestors.add(hash);
        if (++depth >= MAX_DEPTH) break;
      }
      hash = Math.imul(hash ^ c, FNV_PRIME) | 0;
    }
    if (this.ancestors.size > MAX_TRACKED) this.full = true;
  }

  /** Whether an entry below `dir` (normalized, absolute, not the root) came before it, or that cannot be told. */
  seenBelow(dir: string): boolean {
    if (this.full) return true;
    let hash = FNV_OFFSET;
    let depth = 1;
    for (let i = 1; i < dir.length; i++) {
      const c = dir.charCodeAt(i);
      if (c === 0x2f && ++depth > MAX_DEPTH) return true;
      hash = Math.imul(hash ^ c, FNV_PRIME) | 0;
    }
    return this.ancestors.has(hash);
  }
}
