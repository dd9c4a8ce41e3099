import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { limitsSchema } from '../config/schema.js';
import { LimitExceededError } from '../core/errors.js';
import {
  checkInflation,
  DEFAULT_LIMITS,
  RATIO_GUARD_FLOOR_BYTES,
  resolveLimits,
  zstdWindowLog,
} from './limits.js';

describe('resolveLimits', () => {
  it('overlays the given values on the defaults', () => {
    const limits = resolveLimits({ maxEntries: 10 });
    expect(limits.maxEntries).toBe(10);
    expect(limits.maxUncompressedBytes).toBe(DEFAULT_LIMITS.maxUncompressedBytes);
  });

  it('rejects zero, negative and NaN limits and unknown names', () => {
    expect(() => resolveLimits({ maxEntries: 0 })).toThrow(RangeError);
    expect(() => resolveLimits({ maxHeaderBytes: Number.NaN })).toThrow(RangeError);
    expect(() => resolveLimits({ maxEntriez: 1 } as never)).toThrow(TypeError);
  });

  it('has a setting in the config file for every analyzer limit, and the reverse', () => {
    const download = ['maxLayerBytes', 'maxManifestBytes', 'maxListingEntries'];
    const configurable = Object.keys(limitsSchema.shape).filter((k) => !download.includes(k));
    expect(configurable.sort()).toEqual(Object.keys(DEFAULT_LIMITS).sort());
  });

  it('is listed in docs/limits.md with the default the code has, each limit once', () => {
    const doc = readFileSync(new URL('../../docs/limits.md', import.meta.url), 'utf8');
    const rows = [...doc.matchAll(/^\| `(max\w+)`\s*\| `([\d.]+)`/gm)].map((m) => [m[1], Number(m[2])]);
    const download = limitsSchema.parse({});
    const defaults = {
      ...DEFAULT_LIMITS,
      maxLayerBytes: download.maxLayerBytes,
      maxManifestBytes: download.maxManifestBytes,
      maxListingEntries: download.maxListingEntries,
    };
    expect(Object.fromEntries(rows)).toEqual(defaults);
    expect(rows).toHaveLength(Object.keys(defaults).length);
  });
});

describe('zstdWindowLog', () => {
  it('rounds the window down to a power of two', () => {
    expect(zstdWindowLog(32 * 1024 * 1024)).toBe(25);
    expect(zstdWindowLog(48 * 1024 * 1024)).toBe(25);
    expect(zstdWindowLog(DEFAULT_LIMITS.maxZstdWindowBytes)).toBe(25);
  });

  it("keeps the result within zstd's bounds of 2^10 and 2^31", () => {
    expect(zstdWindowLog(1)).toBe(10);
    expect(zstdWindowLog(2 ** 40)).toBe(31);
  });
});

describe('checkInflation', () => {
  it('lets a highly compressible layer through while it is below the ratio floor', () => {
    expect(() => checkInflation(1000, RATIO_GUARD_FLOOR_BYTES, DEFAULT_LIMITS)).not.toThrow();
  });

  it('names maxCompressionRatio once past the floor with a bomb-like ratio', () => {
    const err = (() => {
      try {
        checkInflation(1000, RATIO_GUARD_FLOOR_BYTES + 1, DEFAULT_LIMITS);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(LimitExceededError);
    expect((err as LimitExceededError).limit).toBe('maxCompressionRatio');
  });

  it('names maxUncompressedBytes when the output passes it', () => {
    const limits = resolveLimits({ maxUncompressedBytes: 100 });
    expect(() => checkInflation(100, 101, limits)).toThrow(/maxUncompressedBytes/);
  });
});
