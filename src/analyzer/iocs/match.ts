/**
 * Facts × rules → evidence. Pure and index-driven (hash and package-name lookups, never a scan of all
 * rules per fact), so a whole dataset can be re-matched against new sets without touching a registry.
 */

import { isPackageInstalled } from '../dpkg/status.js';
import { compareDebianVersions } from '../dpkg/version.js';
import type { Evidence, FileFact, LayerFacts, Md5sumsFact, PackageFact, SignatureHitFact } from '../facts.js';
import { compileGlobs, withMergedUsrTwins } from '../glob.js';
import { normalizeHex } from '../signatures.js';
import { sameLayerOrder } from './same-layer-order.js';
import type { DpkgVersionRule, IocSet } from './schema.js';

interface HashRule {
  ruleId: string;
  re: RegExp | null;
}

/** A byte-signature rule as a stored hit is checked against it (signatureHitCounts). */
interface SignatureRule {
  hex: string;
  elfOnly: boolean;
  re: RegExp | null;
}

interface SetIndex {
  set: IocSet;
  sha256: Map<string, HashRule[]>;
  md5: Map<string, HashRule[]>;
  packages: Map<string, DpkgVersionRule[]>;
  signatures: Map<string, SignatureRule>;
}

const indexes = new WeakMap<IocSet, SetIndex>();

function push<K, V>(m: Map<K, V[]>, k: K, v: V): void {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
}

function indexSet(set: IocSet): SetIndex {
  const cachedIndex = indexes.get(set);
  if (cachedIndex) return cachedIndex;
  const idx: SetIndex = {
    set,
    sha256: new Map(),
    md5: new Map(),
    packages: new Map(),
    signatures: new Map(),
  };
  for (const rule of set.rules) {
    switch (rule.kind) {
      case 'file-sha256':
        push(idx.sha256, rule.sha256, {
          ruleId: rule.id,
          re: compileGlobs(withMergedUsrTwins(rule.paths ?? [])),
        });
        break;
      case 'file-md5':
        push(idx.md5, rule.md5, {
          ruleId: rule.id,
          re: compileGlobs(withMergedUsrTwins(rule.paths ?? [])),
        });
        break;
      case 'dpkg-version':
        push(idx.packages, rule.package, rule);
        break;
      case 'byte-signature':
        idx.signatures.set(rule.id, {
          hex: normalizeHex(rule.hex),
          elfOnly: rule.elfOnly ?? false,
          re: compileGlobs(withMergedUsrTwins(rule.paths)),
        });
        break;
    }
  }
  indexes.set(set, idx);
  return idx;
}

/**
 * Whether a stored hit is evidence for `rule` of the same id: it was found by the rule's own pattern, in a
 * file the rule's paths cover (the file whose bytes were scanned: a hardlink elsewhere carries its
 * target's hits), and, for an elfOnly rule, in an ELF. A rule edited to another pattern or other paths (a
 * new set version, then `rematch`) must not take over hits it would not have found: the stored facts
 * cannot say whether the new pattern is in the file. Hits recorded before hubcrawl kept what they answer
 * (migration 0004) get their pattern from their layer's selection where it is known (LayerStore.loadFacts);
 * one whose pattern is still unknown (hex null) counts for any rule of its id, as it did.
 */
function signatureHitCounts(h: SignatureHitFact, rule: SignatureRule): boolean {
  if (h.hex === null) return true;
  // What an older hit does not say (inElf, scannedPath null) is no reason to drop it.
  if (h.hex !== rule.hex || (rule.elfOnly && h.inElf === false)) return false;
  return rule.re === null || h.scannedPath === null || rule.re.test(h.scannedPath);
}

function safeCompare(a: string, b: string): number | null {
  try {
    return compareDebianVersions(a, b);
  } catch {
    return null; // a corrupt Version field in an image never matches, never throws
  }
}

/** Whether a package's version (and architecture) is affected according to a dpkg-version rule. */
export function packageMatchesRule(pkg: PackageFact, rule: DpkgVersionRule): boolean {
  if (pkg.name !== rule.package || !isPackageInstalled(pkg)) return false;
  if (rule.architectures && (pkg.architecture === null || !rule.architectures.includes(pkg.architecture))) {
    return false;
  }
  if (rule.versions) return rule.versions.some((v) => safeCompare(pkg.version, v) === 0);
  if (rule.introduced !== undefined) {
    const c = safeCompare(pkg.version, rule.introduced);
    if (c === null || c < 0) return false;
  }
  if (rule.fixed !== undefined) {
    const c = safeCompare(pkg.version, rule.fixed);
    if (c === null || c >= 0) return false;
  }
  return true;
}

/** Evidence plus the paths that decide, at image level, whether it survives (used by image-view). */
export interface LocatedEvidence {
  evidence: Evidence;
  /**
   * A later entry of the same layer replaces what matched (see SameLayerOrder): the evidence is in no
   * unpacked filesystem, whatever the layers above do.
   */
  replacedInLayer: boolean;
  /** An upper-layer file at one of these paths replaces what matched. */
  overwritePaths: string[];
  /** An upper-layer whiteout (or opaque ancestor) of one of these paths removes what matched. */
  whiteoutPaths: string[];
}

/** A parsed database (status, md5sums) came from a copy with bytes: a symlink or an empty file lists nothing. */
const nonEmpty = (f: FileFact) => f.size > 0;

/**
 * Whether an md5sums line counts for a file-md5 rule: the rule's globs apply to the listed path (the list
 * has no sizes), as listed or as resolved through the image's symlinks (lower-links.ts). A hashed file
 * needs no such test: its hash equal to the rule's means the same bytes, and a renamed copy of a
 * known-bad library (behind a `liblzma.so.5` symlink, say) is what an attacker leaves, so `paths` and
 * `size` only choose which files are hashed (docs/iocs.md).
 */
const listedPathApplies = (r: HashRule, m: Md5sumsFact) =>
  r.re === null || r.re.test(m.path) || (m.listedPath !== undefined && r.re.test(m.listedPath));

/**
 * Like matchLayer, with the paths image-level survival depends on and whether a later entry of the
 * same layer replaces what matched (SameLayerOrder).
 */
export function matchLayerLocated(facts: LayerFacts, layerDigest: string, sets: IocSet[]): LocatedEvidence[] {
  const out: LocatedEvidence[] = [];
  const order = sameLayerOrder(facts);
  for (const set of sets) {
    const idx = indexSet(set);
    const ev = (kind: Evidence['kind'], ruleId: string, path: string, value: string): Evidence => ({
      kind,
      iocSetId: set.id,
      iocSetVersion: set.version,
      ruleId,
      path,
      value,
      layerDigest,
    });
    facts.files.forEach((f, i) => {
      for (const r of (f.sha256 && idx.sha256.get(f.sha256)) || []) {
        const e = ev('file-sha256', r.ruleId, f.path, f.sha256!);
        out.push({
          evidence: e,
          replacedInLayer: order.replaced(i),
          overwritePaths: [f.path],
          whiteoutPaths: [f.path],
        });
      }
      for (const r of (f.md5 && idx.md5.get(f.md5)) || []) {
        const e = ev('file-md5', r.ruleId, f.path, f.md5!);
        out.push({
          evidence: e,
          replacedInLayer: order.replaced(i),
          overwritePaths: [f.path],
          whiteoutPaths: [f.path],
        });
      }
    });
    for (const m of facts.md5sums) {
      for (const r of idx.md5.get(m.md5) ?? []) {
        if (!listedPathApplies(r, m)) continue;
        const e = ev('dpkg-md5sums', r.ruleId, m.path, m.md5);
        out.push({
          evidence: e,
          replacedInLayer: order.itemReplaced(m.infoFile, nonEmpty),
          overwritePaths: [m.infoFile],
          whiteoutPaths: [m.path, m.infoFile],
        });
      }
    }
    for (const p of facts.packages) {
      for (const rule of idx.packages.get(p.name) ?? []) {
        if (!packageMatchesRule(p, rule)) continue;
        const e = ev('dpkg-version', rule.id, p.statusFile, `${p.name}=${p.version}`);
        out.push({
          evidence: e,
          replacedInLayer: order.itemReplaced(p.statusFile, nonEmpty),
          overwritePaths: [p.statusFile],
          whiteoutPaths: [p.statusFile],
        });
      }
    }
    for (const h of facts.signatureHits) {
      const rule = h.iocSetId === set.id ? idx.signatures.get(h.ruleId) : undefined;
      if (rule === undefined || !signatureHitCounts(h, rule)) continue;
      const e = ev('byte-signature', h.ruleId, h.path, `offset=${h.offset}`);
      out.push({
        evidence: e,
        // A copy holds the hit when its bytes were read (hashed) and reach past the hit's offset.
        replacedInLayer: order.itemReplaced(h.path, (f) => f.sha256 !== null && h.offset < f.size),
        overwritePaths: [h.path],
        whiteoutPaths: [h.path],
      });
    }
  }
  return out;
}

/** Every piece of evidence the sets' rules find in one layer's facts. */
export function matchLayer(facts: LayerFacts, layerDigest: string, sets: IocSet[]): Evidence[] {
  return matchLayerLocated(facts, layerDigest, sets).map((l) => l.evidence);
}
