/**
 * What one pass over a layer learns. Facts are recorded per layer and never depend on IOC rules
 * except for signature hits (which need the bytes) and the choice of candidate files; both are
 * recorded with the rule-set fingerprint that chose them (`LayerFacts.selection`).
 */

export type Compression = 'gzip' | 'zstd' | 'none';

/**
 * A path worth remembering in a layer: a regular file chosen by an IOC rule's path glob and size (or
 * every file with `hashAllFiles`), a file parsed for facts (dpkg, os-release), or a symlink or hardlink
 * at such a path (docs/schema.md, "Which files layer_files holds").
 */
export interface FileFact {
  /** Absolute, normalized path (`/usr/lib/x86_64-linux-gnu/liblzma.so.5.6.1`). */
  path: string;
  size: number;
  mode: number;
  /**
   * Lowercase hex; null when the file was not read: larger than `maxHashBytesPerFile`, or recorded for
   * its presence only (a rule's path glob names it but its size rules it out; a symlink, size 0; a
   * hardlink to data stored earlier under a name that was not recorded or in a lower layer, size 0), so that an upper
   * layer replacing a lower layer's finding is seen.
   */
  sha256: string | null;
  md5: string | null;
  /**
   * Set only on a hardlink whose data was not recorded (size 0, null hashes), or that lands on a file the
   * analyzer parses (a dpkg status) and so was not parsed: the normalized path it names, in this layer or
   * a lower one. Its bytes are unknown, so matching does not count it as
   * replacing what was at its path (image-view.ts, same-layer-order.ts); absent on every other row.
   */
  linkTarget?: string;
}

/** One paragraph of `var/lib/dpkg/status` or a file in `var/lib/dpkg/status.d/`. */
export interface PackageFact {
  name: string;
  version: string;
  architecture: string | null;
  /** Source package name (without the version in parentheses); null when the paragraph has none. */
  source: string | null;
  /** The `Status:` field, e.g. `install ok installed`; status.d files have none (null). */
  status: string | null;
  /** The database file it came from (`/var/lib/dpkg/status`). */
  statusFile: string;
}

/** One line of `var/lib/dpkg/info/<pkg>[:<arch>].md5sums`. */
export interface Md5sumsFact {
  /** Package name taken from the file name (`liblzma5:amd64` → `liblzma5`). */
  package: string;
  /** The md5sums file it came from. */
  infoFile: string;
  md5: string;
  /** Absolute, normalized path of the listed file. */
  path: string;
  /**
   * Set by matching only (never stored), where `path` was resolved through the image's symlinks
   * (iocs/lower-links.ts): the path as the md5sums file lists it, which a rule's globs may name instead.
   */
  listedPath?: string;
}

/** `/etc/os-release`, `/usr/lib/os-release` (key → unquoted value) or `/etc/debian_version` (`{ VERSION: … }`). */
export interface OsReleaseFact {
  path: string;
  fields: Record<string, string>;
}

/**
 * A whiteout entry. For `.wh.<name>`, `path` is the removed path; for the opaque marker `.wh..wh..opq`,
 * `path` is the directory whose lower contents are hidden and `opaque` is true.
 */
export interface WhiteoutFact {
  path: string;
  opaque: boolean;
}

/**
 * A symlink the layer leaves behind: where it landed (`path`, resolved as every member is) and its target
 * as the archive wrote it. Every symlink is kept, watched or not: a member of an upper layer written
 * through one (`lib/x` over a lower `lib -> usr/lib`) lands at its target, which only the image's ordered
 * layers can tell (src/analyzer/iocs/lower-links.ts).
 */
export interface SymlinkFact {
  path: string;
  target: string;
}

/** A byte signature found inside a candidate file. */
export interface SignatureHitFact {
  path: string;
  iocSetId: string;
  ruleId: string;
  /** Byte offset of the first match in the file. */
  offset: number;
  /**
   * What the hit answers, kept since migration 0004 (null in hits recorded before, which count for any
   * rule of their id as they did): the pattern that found it (normalized hex), whether the file is an ELF,
   * and the path whose bytes were scanned (a hardlink's hits are its target's: `path` is the link's).
   */
  hex: string | null;
  inElf: boolean | null;
  scannedPath: string | null;
}

/** Everything the analyzer knows about one layer blob. */
export interface LayerFacts {
  compression: Compression;
  compressedBytes: number;
  uncompressedBytes: number;
  entryCount: number;
  files: FileFact[];
  packages: PackageFact[];
  md5sums: Md5sumsFact[];
  osRelease: OsReleaseFact[];
  whiteouts: WhiteoutFact[];
  signatureHits: SignatureHitFact[];
  /**
   * The symlinks the layer leaves, in archive order; undefined for a layer an analyzer before version 6
   * read, which did not keep them (matching then knows of none, as it did then).
   */
  symlinks?: SymlinkFact[];
  /**
   * Where each directory entry of the layer's archive landed (resolved as every member is), once each, in
   * archive order, the root left out; undefined for a layer an analyzer before version 7 read. A directory
   * entry replaces whatever a lower layer left at its path but a directory: a file, or a symlink, so that
   * the members below it land in the new directory, not through the link (iocs/lower-links.ts).
   */
  dirs?: string[];
  /**
   * Directory entries the archive lists after a member below them (dir-order.ts), apart from `dirs`, set
   * with it: what those members went through at the directory's path (a lower layer's symlink, say) cannot
   * be told, so matching reads such a layer's image both ways (iocs/image-view.ts, matchImage).
   */
  lateDirs?: string[];
  /**
   * Fingerprint of what chose the candidate files and signatures (IOC set ids, versions and the
   * hashAllFiles flag), so `rematch` knows whether stored facts can answer a new rule set.
   */
  selection: string;
}

/** One piece of evidence: an IOC rule matched a fact of a layer. */
export type EvidenceKind = 'file-sha256' | 'file-md5' | 'dpkg-version' | 'dpkg-md5sums' | 'byte-signature';

export interface Evidence {
  kind: EvidenceKind;
  iocSetId: string;
  iocSetVersion: string;
  ruleId: string;
  /** The file path (or dpkg status file for dpkg-version). */
  path: string;
  /** What matched: the hash, `package=version`, or `offset=N`. */
  value: string;
  layerDigest: string;
}
