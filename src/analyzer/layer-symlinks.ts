/**
 * The symlinks a layer's archive has made so far, and where its later members land through them.
 *
 * An unpacker opens each member's parent directory inside the rootfs, following symlinks but never
 * leaving the root (containerd resolves it with fs.RootPath, umoci with securejoin): after `lib ->
 * usr/lib`, a member `lib/x86_64-linux-gnu/liblzma.so.5.6.1` is written to
 * `/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1`. Recorded under its tar name, the file would sit at a
 * path that is not in the image: a whiteout of `/lib` in a later layer would seem to remove it (it removes
 * the link), and a clean file written later at the real path would seem to leave it.
 *
 * Only this layer's own symlinks are known: the analyzer reads one layer at a time. A member written
 * through a symlink that a lower layer made is recorded under its tar name (docs/schema.md, "Paths").
 */

/** As many as securejoin follows before it gives up on a path (a loop). */
const MAX_LINKS_FOLLOWED = 255;

export class LayerSymlinks {
  /** Resolved path → the link's target as the archive wrote it. */
  private readonly links: Map<string, string>;

  /**
   * The most components a link's path has. No deeper prefix of a path can be a link, so lookups stop
   * there: a member 2 000 components deep under `/lib` costs a few lookups, not 2 000 prefixes built and
   * sought (an archive may hold a million such members). Only grows: a link removed leaves it as it was.
   */
  private deepest = 0;

  /**
   * LINK for the hash (nextHash) of every link's path made so far, ABOVE_LINK for that of every folder above
   * one. Landing a path is the matcher's hottest step, and almost no path has a link above it: scanned once,
   * its prefixes hashed as it goes, it is settled at the first folder that holds no link
   * (`/usr/share/doc/dpkg`), and only a prefix whose hash is a link's is sliced out and sought in `links`.
   * Only grows, as `deepest`: the bits a removed link left, or a hash collision, cost time, never a wrong
   * answer; and no more lookups than `deepest` allows, however an archive's names collide.
   */
  private readonly prefixes = new Map<number, number>();

  /** Starts with `links` (path → target) already made: a lower layer's, when the image view resolves. */
  constructor(links: Iterable<readonly [string, string]> = []) {
    this.links = new Map(links);
    for (const path of this.links.keys()) this.noted(path);
  }

  /** Whether a symlink is there now at `path` (resolved). */
  has(path: string): boolean {
    return this.links.has(path);
  }

  /** The symlinks there now, in the order they were made. */
  entries(): Array<{ path: string; target: string }> {
    return [...this.links].map(([path, target]) => ({ path, target }));
  }

  /**
   * A member landed at `path` (already resolved with `landing`): a symlink to `target`, or with `null`
   * anything else, which replaces a symlink there.
   */
  landed(path: string, target: string | null): void {
    if (target !== null) {
      this.links.set(path, target);
      this.noted(path);
    } else if (this.links.size > 0) this.links.delete(path);
  }

  /**
   * Where a member named `path` (normalized, absolute) lands: its parent directory resolved, its own name
   * kept. Also where a hardlink's target is: containerd and umoci resolve the target's parent only, so a
   * link to a symlink is a link to the symlink (a symlink itself), not to the file it points at.
   */
  landing(path: string): string {
    if (this.links.size === 0 || !this.hasLinkedAncestor(path)) return path;
    const slash = path.lastIndexOf('/');
    const parent = this.walk(path.slice(0, slash));
    return parent === '/' ? path.slice(slash) : `${parent}${path.slice(slash)}`;
  }

  /** Keeps the derived bounds (`deepest`, `prefixes`) covering a link made at `path`. */
  private noted(path: string): void {
    // One pass: each slash after the first ends a folder above the link, and adds a component.
    let depth = 1;
    let hash = 0;
    for (let i = 0; i < path.length; i++) {
      const c = path.charCodeAt(i);
      if (c === SLASH && i > 0) {
        this.mark(hash, ABOVE_LINK);
        depth++;
      }
      hash = nextHash(hash, c);
    }
    this.mark(hash, LINK);
    this.deepest = Math.max(this.deepest, depth);
  }

  private mark(hash: number, bit: number): void {
    this.prefixes.set(hash, (this.prefixes.get(hash) ?? 0) | bit);
  }

  /** Whether a folder above `path` (among its first `deepest` components) is a link now. */
  private hasLinkedAncestor(path: string): boolean {
    let hash = 0;
    let depth = 0;
    for (let i = 0; i < path.length; i++) {
      const c = path.charCodeAt(i);
      // At a slash, `hash` is that of the folder before it: the same as `noted` gave it, were it a link's.
      if (c === SLASH && i > 0) {
        if (++depth > this.deepest) return false;
        const bits = this.prefixes.get(hash) ?? 0;
        if ((bits & LINK) !== 0 && this.links.has(path.slice(0, i))) return true;
        // Every folder above a link has ABOVE_LINK: without it here, no deeper prefix is a link.
        if ((bits & ABOVE_LINK) === 0) return false;
      }
      hash = nextHash(hash, c);
    }
    return false;
  }

  /**
   * Follows every symlink on `path`, relative targets from the link's directory, absolute ones from the root.
   * Each folder walked into is settled by its hash (as in hasLinkedAncestor), its path built and sought only
   * where the hash is a link's: a crafted layer's targets can add half a million components to one walk
   * (255 links of 2 000 each), and building every folder's path there cost seconds per member.
   */
  private walk(path: string): string {
    const resolved: string[] = [];
    /** The hash of each folder in `resolved` (as `noted` hashes a link's path) down to `deepest`, no further. */
    const hashes: number[] = [];
    // Components still to walk, the next one last.
    const pending = path.split('/').reverse();
    let followed = 0;
    while (pending.length > 0) {
      const part = pending.pop()!;
      if (part === '' || part === '.') continue;
      if (part === '..') {
        resolved.pop(); // never above the root
        if (hashes.length > resolved.length) hashes.pop();
        continue;
      }
      // Deeper than every link, the path cannot be one (see `deepest`): nothing to hash or seek.
      const depth = resolved.length;
      const shallow = depth < this.deepest;
      const hash = shallow ? extendHash(depth === 0 ? 0 : hashes[depth - 1]!, part) : 0;
      const target =
        shallow && ((this.prefixes.get(hash) ?? 0) & LINK) !== 0
          ? this.links.get(`/${depth === 0 ? '' : `${resolved.join('/')}/`}${part}`)
          : undefined;
      if (target === undefined || followed >= MAX_LINKS_FOLLOWED) {
        resolved.push(part);
        if (shallow) hashes.push(hash);
        continue;
      }
      followed += 1;
      if (target.startsWith('/')) {
        resolved.length = 0;
        hashes.length = 0;
      }
      const nul = target.indexOf('\0');
      const parts = (nul === -1 ? target : target.slice(0, nul)).split('/');
      for (let i = parts.length - 1; i >= 0; i--) pending.push(parts[i]!);
    }
    return `/${resolved.join('/')}`;
  }
}

const SLASH = 0x2f;

/** Bits of LayerSymlinks.prefixes: a link's path had this hash; a folder above a link's path had it. */
const LINK = 1;
const ABOVE_LINK = 2;

/** A 32-bit polynomial hash extended by one character code (collisions only cost a lookup). */
function nextHash(hash: number, code: number): number {
  return (Math.imul(hash, 31) + code) | 0;
}

/** The hash of the folder `part` inside the one whose hash is `hash` (0 for the root): `/` and `part` added. */
function extendHash(hash: number, part: string): number {
  let h = nextHash(hash, SLASH);
  for (let i = 0; i < part.length; i++) h = nextHash(h, part.charCodeAt(i));
  return h;
}
