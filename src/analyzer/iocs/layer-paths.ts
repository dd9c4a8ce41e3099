/**
 * The paths a layer's facts put something at, remove, or make directories: what the matcher asks of an
 * upper layer (image-view.ts, removedBy) and what ends a lower layer's symlink (lower-links.ts).
 */
import { cachedIn } from '../../core/cached.js';
import type { LayerFacts } from '../facts.js';
import { ancestors } from '../paths.js';

/** The paths one layer records. */
export interface LayerPaths {
  /** Paths this layer puts known content at: what lower layers had there is gone. */
  present: Set<string>;
  /** Hardlinks whose bytes were not recorded (FileFact.linkTarget): non-directories of unknown content. */
  links: Set<string>;
  whiteouts: Set<string>;
  opaque: Set<string>;
  /**
   * Every symlink the layer leaves (LayerFacts.symlinks, analyzer version 6), where it landed. A symlink is
   * no directory: it replaces a lower file or directory at its path. Only as sure as the path's resolution
   * (image-view.ts reads it only where that is exact).
   */
  symlinks: Set<string>;
  /**
   * Paths this layer makes directories: its directory entries (LayerFacts.dirs and lateDirs), the
   * proper ancestors of `present`, `links` and whiteouts, and opaque directories. Built on first use.
   */
  dirs(): Set<string>;
}

/** The paths a layer records; none for a failed layer, which is taken to remove nothing. */
function layerPaths(facts: LayerFacts | null): LayerPaths {
  const present = new Set<string>();
  const links = new Set<string>();
  const whiteouts = new Set<string>();
  const opaque = new Set<string>();
  const symlinks = new Set((facts?.symlinks ?? []).map((l) => l.path));
  if (facts) {
    // Parsed databases count as files too, whether or not the stream also recorded them as FileFacts.
    // A link to a lower layer's file (or to data this layer stored under an unrecorded name) may hold
    // the very bytes it lands on: umoci and containerd link it to what the lower layers left there.
    // Counting it as a replacement would hide a backdoor; it is kept apart, leaning "survives".
    for (const f of facts.files) (f.linkTarget === undefined ? present : links).add(f.path);
    for (const p of facts.packages) present.add(p.statusFile);
    for (const m of facts.md5sums) present.add(m.infoFile);
    for (const o of facts.osRelease) present.add(o.path);
    for (const w of facts.whiteouts) (w.opaque ? opaque : whiteouts).add(stripSlash(w.path));
  }
  let dirs: Set<string> | undefined;
  const dirsOf = (): Set<string> => {
    // A whiteout inside a path, or an opaque marker in it, makes the path a directory as a file below it does.
    dirs ??= new Set([
      ...(facts?.dirs ?? []),
      ...(facts?.lateDirs ?? []),
      ...[
        ...present,
        ...links,
        ...whiteouts,
        ...[...opaque].filter((d) => d !== '/').map((d) => `${d}/.`),
      ].flatMap(ancestors),
    ]);
    return dirs;
  };
  return { present, links, whiteouts, opaque, symlinks, dirs: dirsOf };
}

/** layerPaths by facts object: a shared base's sets of paths are built once, not per image. */
const pathsByLayer = new WeakMap<LayerFacts, LayerPaths>();
const FAILED_LAYER_PATHS = layerPaths(null);

export function pathsOf(facts: LayerFacts | null): LayerPaths {
  return facts === null ? FAILED_LAYER_PATHS : cachedIn(pathsByLayer, facts, () => layerPaths(facts));
}

function stripSlash(p: string): string {
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}
