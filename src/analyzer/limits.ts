/**
 * Safety limits for one pass over a layer. Every layer is untrusted input: these bound the work
 * and memory an attacker (or a broken registry) can make us spend on one blob.
 */
import { LimitExceededError } from '../core/errors.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

export interface AnalyzerLimits {
  /** Stop when the decompressed stream grows past this many bytes (default 8 GiB). */
  maxUncompressedBytes: number;
  /** Stop after this many tar entries (default 1 000 000). */
  maxEntries: number;
  /** Files larger than this keep their size but get null hashes and no signature scan (default 512 MiB). */
  maxHashBytesPerFile: number;
  /** Largest PAX or GNU long-name/long-link record, and all such records before one entry (default 1 MiB). */
  maxHeaderBytes: number;
  /** Longest path (or link target) accepted, in characters (default 4096, Linux PATH_MAX). */
  maxPathLength: number;
  /** Largest file captured into memory for parsing: dpkg status, md5sums, os-release (default 64 MiB). */
  maxCaptureBytes: number;
  /**
   * Most memory a layer's facts may hold until they are recorded, estimated: the characters of every path
   * and link target recorded (files, directories, symlinks, whiteouts) and of every dpkg and os-release
   * file parsed, plus FACT_RECORD_BYTES (layer-stream.ts) per record (default 256 MiB). The facts stay in
   * memory until the layer ends; without this bound a small crafted layer (a million directory entries with 4096-character
   * names, or millions of md5sums lines, compressed under the ratio guard) made the analyzer hold
   * gigabytes and die out of memory, the crawl with it.
   */
  maxFactBytes: number;
  /** Decompression-bomb guard: uncompressed/compressed ratio allowed once past 64 MiB of output (default 200). */
  maxCompressionRatio: number;
  /**
   * Largest window a zstd frame may ask the decoder to allocate (default 32 MiB; rounded down to a
   * power of two between 1 KiB and 2 GiB). A frame header alone can demand 128 MiB or more
   * (`zstd --long`, levels 20–22); image builders write 8 MiB at most.
   */
  maxZstdWindowBytes: number;
}

/** Output below which the ratio guard stays quiet: small, highly compressible layers are normal. */
export const RATIO_GUARD_FLOOR_BYTES = 64 * MiB;

export const DEFAULT_LIMITS: AnalyzerLimits = Object.freeze({
  maxUncompressedBytes: 8 * GiB,
  maxEntries: 1_000_000,
  maxHashBytesPerFile: 512 * MiB,
  maxHeaderBytes: 1 * MiB,
  maxPathLength: 4096,
  maxCaptureBytes: 64 * MiB,
  maxFactBytes: 256 * MiB,
  maxCompressionRatio: 200,
  maxZstdWindowBytes: 32 * MiB,
});

/** zstd's bounds on windowLogMax (ZSTD_WINDOWLOG_ABSOLUTEMIN / _MAX_64). */
const ZSTD_WINDOW_LOG_MIN = 10;
const ZSTD_WINDOW_LOG_MAX = 31;

/** The zstd windowLogMax for a maxZstdWindowBytes value: log2 rounded down, within zstd's bounds. */
export function zstdWindowLog(maxWindowBytes: number): number {
  const log = Math.floor(Math.log2(maxWindowBytes));
  return Math.min(ZSTD_WINDOW_LOG_MAX, Math.max(ZSTD_WINDOW_LOG_MIN, log));
}

/** Defaults overlaid with the caller's values; rejects values that would disable a guard by accident. */
export function resolveLimits(partial: Partial<AnalyzerLimits> | undefined): AnalyzerLimits {
  const limits: AnalyzerLimits = { ...DEFAULT_LIMITS };
  for (const [key, value] of Object.entries(partial ?? {})) {
    if (!(key in DEFAULT_LIMITS)) throw new TypeError(`unknown analyzer limit "${key}"`);
    if (value === undefined) continue;
    if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) {
      throw new RangeError(`analyzer limit ${key} must be a positive number, got ${String(value)}`);
    }
    limits[key as keyof AnalyzerLimits] = value;
  }
  return limits;
}

/** Throws when the decompressed size or the compression ratio passes its limit. */
export function checkInflation(
  compressedBytes: number,
  uncompressedBytes: number,
  limits: AnalyzerLimits,
): void {
  if (uncompressedBytes > limits.maxUncompressedBytes) {
    throw new LimitExceededError(
      'maxUncompressedBytes',
      uncompressedBytes,
      `layer decompresses to more than ${limits.maxUncompressedBytes} bytes (maxUncompressedBytes); raise the limit to analyze it`,
    );
  }
  if (
    uncompressedBytes > RATIO_GUARD_FLOOR_BYTES &&
    uncompressedBytes > compressedBytes * limits.maxCompressionRatio
  ) {
    const ratio = Math.floor(uncompressedBytes / Math.max(1, compressedBytes));
    throw new LimitExceededError(
      'maxCompressionRatio',
      ratio,
      `layer inflated ${compressedBytes} compressed bytes to ${uncompressedBytes} (ratio ${ratio} > maxCompressionRatio ${limits.maxCompressionRatio}); looks like a decompression bomb`,
    );
  }
}
