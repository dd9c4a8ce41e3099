/** The analyzer's public surface: one streaming pass over a layer, plus the parsers and rules it uses. */
export { type DecompressOptions, detectCompression } from './decompress.js';
export { parseMd5sums } from './dpkg/md5sums.js';
export { parseDpkgStatus } from './dpkg/status.js';
export type {
  Compression,
  Evidence,
  EvidenceKind,
  FileFact,
  LayerFacts,
  Md5sumsFact,
  OsReleaseFact,
  PackageFact,
  SignatureHitFact,
  WhiteoutFact,
} from './facts.js';
export { type CompiledRules, compileRules } from './iocs/compile.js';
export { ANALYZER_VERSION, type AnalyzeOptions, analyzeLayer } from './layer-stream.js';
export { type AnalyzerLimits, DEFAULT_LIMITS, resolveLimits } from './limits.js';
export { parseOsRelease } from './os-release.js';
export { normalizeTarPath, whiteoutOf } from './paths.js';
export { type CompiledSignature, SignatureScanner } from './signatures.js';
