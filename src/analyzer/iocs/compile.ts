/**
 * Turns IOC sets into what the streaming pass asks per tar entry: "is this file a candidate (hash
 * it)?" and "which signatures scan it?". Both must be cheap, so globs are merged into one RegExp per
 * size bucket and the answers for signatures are cached per glob group.
 */
import { createHash } from 'node:crypto';
import { isPlainObject } from '../../core/plain-object.js';
import { compileGlobSet, type GlobSet, withMergedUsrTwins } from '../glob.js';
import { type CompiledSignature, compileSignature } from '../signatures.js';
import type { IocSet } from './schema.js';

/** The rule-derived selection the streaming pass consults for every regular file. */
export interface CompiledRules {
  /** Stable hash of set ids + versions + candidate globs + signature rules + hashAllFiles. */
  readonly fingerprint: string;
  /**
   * The selections whose facts hold everything this one's do: this one, and without hashAllFiles also the
   * same sets' hash-all selection (every regular file hashed; the same signatures and watched paths). A
   * layer analyzed under any of them needs no new download: a crawl after a `--hash-all-files` crawl of
   * the same sets must not pull every layer again. A crawl adds the dataset's recorded selections that
   * cover this one (SelectionStore.covering, by coveredByDefinition).
   */
  readonly coveredBy: readonly string[];
  /** The JSON the fingerprint hashes (a SelectionDefinition), kept in the dataset with the selection. */
  readonly definition: string;
  /**
   * Whether facts analyzed under the selection `stored` defines (its `definition` JSON) answer these rules
   * too: it hashed every file these rules would (the same path and size selectors, or every file), and
   * scanned with every signature these rules have, the same pattern under the same set and rule id. The
   * sets named beside them do not matter: a crawl with the built-in set after one with the built-in set
   * plus another need not download every layer again.
   */
  coveredByDefinition(stored: string): boolean;
  /**
   * What facts analyzed under the selection `stored` defines lack for these rules (empty when it covers
   * them): `files` (fewer files hashed: a new file rule matches only those), `paths` (every file hashed,
   * but symlinks at a new rule's paths not recorded: only in_final_fs can be off), `signatures` (bytes not
   * scanned for some of these patterns), `unknown` (no readable definition).
   */
  gapsOf(stored: string): SelectionGap[];
  /** Whether to hash this regular file (sha256 + md5) and keep it as a FileFact. */
  isCandidate(path: string, size: number): boolean;
  /** Signatures to scan this file with (empty for most files). */
  signatureRulesFor(path: string): CompiledSignature[];
  /** Whether any signature rule exists at all (lets the stream skip the scanner entirely). */
  readonly hasSignatures: boolean;
  /**
   * Whether some rule's path glob names this path, whatever the size: a file or symlink there that is
   * not a candidate is still recorded (without hashes), so a finding in a lower layer is known to be
   * replaced rather than wrongly reported as surviving in the final filesystem.
   */
  isWatchedPath(path: string): boolean;
}

export type SelectionGap = 'files' | 'paths' | 'signatures' | 'unknown';

interface Selector {
  paths: string[] | null;
  size: number | null;
}

/** What a selection chose: the JSON its fingerprint hashes. */
interface SelectionDefinition {
  sets: Array<[string, string]>;
  /** JSON of each Selector. */
  selectors: string[];
  /** [set id, rule id, normalized hex, elfOnly, paths] of each signature rule. */
  signatures: Array<[string, string, string, boolean, string[]]>;
  hashAllFiles: boolean;
}

function parseDefinition(json: string): SelectionDefinition | null {
  try {
    const d = JSON.parse(json) as Partial<SelectionDefinition>;
    if (!Array.isArray(d.selectors) || !Array.isArray(d.signatures) || typeof d.hashAllFiles !== 'boolean') {
      return null;
    }
    // Each selector is JSON of its own (read by gapsOf): one that is no object makes the whole unknown.
    const objectJson = (k: unknown) => typeof k === 'string' && isPlainObject(JSON.parse(k));
    if (!(d.selectors as unknown[]).every(objectJson)) return null;
    return d as SelectionDefinition;
  } catch {
    return null;
  }
}

const NONE: CompiledSignature[] = [];

/**
 * Compile the candidate selection of a list of sets. A file-* rule without `paths` makes every regular
 * file (of its `size`, when given) a candidate: every such file is hashed, which costs a full read of
 * each file in every layer — give `paths` or `size` whenever the indicator allows it.
 */
export function compileRules(sets: IocSet[], opts: { hashAllFiles?: boolean } = {}): CompiledRules {
  const hashAll = opts.hashAllFiles ?? false;
  const selectors = new Map<string, Selector>();
  const sigRules: Array<{ paths: string[]; sig: CompiledSignature }> = [];
  for (const set of sets) {
    for (const rule of set.rules) {
      if (rule.kind === 'file-sha256' || rule.kind === 'file-md5' || rule.kind === 'byte-signature') {
        const sel: Selector = {
          // Both spellings of a merged-/usr path (glob.ts): which one a layer's archive holds varies.
          paths: rule.paths ? withMergedUsrTwins(rule.paths).sort() : null,
          size: rule.kind === 'byte-signature' ? null : (rule.size ?? null),
        };
        selectors.set(JSON.stringify(sel), sel);
      }
      if (rule.kind === 'byte-signature') {
        const sig = compileSignature(rule.hex, { iocSetId: set.id, ruleId: rule.id, elfOnly: rule.elfOnly });
        sigRules.push({ paths: withMergedUsrTwins(rule.paths), sig });
      }
    }
  }

  // Buckets: any size (key -1) and per exact size; each bucket is "any path" or one merged RegExp.
  const bySize = new Map<number, { any: boolean; globs: string[] }>();
  for (const sel of selectors.values()) {
    const key = sel.size ?? -1;
    const b = bySize.get(key) ?? { any: false, globs: [] };
    if (sel.paths === null) b.any = true;
    else b.globs.push(...sel.paths);
    bySize.set(key, b);
  }
  const buckets = new Map<number, { any: boolean; re: GlobSet }>();
  for (const [size, b] of bySize) buckets.set(size, { any: b.any, re: compileGlobSet(b.globs) });
  const anySize = buckets.get(-1);

  // Group signatures by their glob list so each file tests each distinct glob list once.
  const groups = new Map<string, { re: GlobSet; sigs: CompiledSignature[] }>();
  for (const { paths, sig } of sigRules) {
    const key = JSON.stringify([...paths].sort());
    const g = groups.get(key) ?? { re: compileGlobSet(paths), sigs: [] };
    g.sigs.push(sig);
    groups.set(key, g);
  }
  const groupList = [...groups.values()];
  const anySig = compileGlobSet(sigRules.flatMap((r) => r.paths));

  const signatures = sigRules
    .map((r): SelectionDefinition['signatures'][number] => [
      r.sig.iocSetId,
      r.sig.ruleId,
      r.sig.hex,
      r.sig.elfOnly,
      r.paths,
    ])
    .sort();
  const definitionWith = (hashAllFiles: boolean) =>
    JSON.stringify({
      sets: sets.map((s): [string, string] => [s.id, s.version]).sort(),
      selectors: [...selectors.keys()].sort(),
      signatures,
      hashAllFiles,
    } satisfies SelectionDefinition);
  const fingerprintWith = (hashAllFiles: boolean) =>
    createHash('sha256').update(definitionWith(hashAllFiles)).digest('hex');
  const fingerprint = fingerprintWith(hashAll);
  const signatureKeys = signatures.map((sig) => JSON.stringify(sig));

  const watched = compileGlobSet([...selectors.values()].flatMap((sel) => sel.paths ?? []));

  const matchBucket = (b: { any: boolean; re: GlobSet } | undefined, path: string) =>
    b !== undefined && (b.any || b.re.test(path));

  const gapsOf = (stored: string): SelectionGap[] => {
    const d = parseDefinition(stored);
    if (d === null) return ['unknown'];
    const gaps: SelectionGap[] = [];
    const storedSelectors = new Set(d.selectors);
    const missing = [...selectors].filter(([key]) => !storedSelectors.has(key));
    if (!d.hashAllFiles && (hashAll || missing.length > 0)) gaps.push('files');
    else if (missing.length > 0) {
      // Paths a selection watches: a file or symlink there is recorded even when not hashed (in_final_fs).
      // Hashing every file does not watch more paths, so a hash-all selection covers a selector only when
      // it watched that selector's paths too (or the selector names none).
      const storedPaths = new Set(d.selectors.flatMap((k) => (JSON.parse(k) as Selector).paths ?? []));
      const watchedThen = ([, sel]: [string, Selector]) =>
        sel.paths === null || sel.paths.every((p) => storedPaths.has(p));
      if (!missing.every(watchedThen)) gaps.push('paths');
    }
    const storedSignatures = new Set(d.signatures.map((sig) => JSON.stringify(sig)));
    if (!signatureKeys.every((k) => storedSignatures.has(k))) gaps.push('signatures');
    return gaps;
  };

  return {
    fingerprint,
    coveredBy: hashAll ? [fingerprint] : [fingerprint, fingerprintWith(true)],
    definition: definitionWith(hashAll),
    coveredByDefinition(stored: string): boolean {
      return gapsOf(stored).length === 0;
    },
    gapsOf,
    hasSignatures: sigRules.length > 0,
    isCandidate(path: string, size: number): boolean {
      if (hashAll) return true;
      return matchBucket(anySize, path) || matchBucket(buckets.get(size), path);
    },
    isWatchedPath(path: string): boolean {
      return watched.test(path);
    },
    signatureRulesFor(path: string): CompiledSignature[] {
      if (!anySig.test(path)) return NONE;
      if (groupList.length === 1) return groupList[0]!.sigs;
      const out: CompiledSignature[] = [];
      for (const g of groupList) if (g.re.test(path)) out.push(...g.sigs);
      return out;
    },
  };
}
