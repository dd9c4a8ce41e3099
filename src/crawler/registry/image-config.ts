/**
 * The image config blob (OCI image-spec config.md; Docker's image JSON) at the trust boundary: the few
 * fields hubcrawl reads from it, the platform and the build date. The config is the publisher's JSON:
 * every field is optional and says only what its builder, or anyone after it, chose to write.
 */
import { z } from 'zod';
import { CorruptInputError } from '../../core/errors.js';
import type { Platform } from '../../core/platform.js';

/** What hubcrawl keeps of an image config. */
export interface ImageConfig {
  platform: Platform;
  /** `created` as normalizeCreated gives it: UTC text, or null when the config has no valid date. */
  created: string | null;
}

/**
 * An RFC 3339 date-time (section 5.6), as zod reads it: seconds and a time zone (`Z` or `±hh:mm`)
 * required, any number of fractional digits, the calendar checked (no 2023-02-29), no leap second, `T` and
 * `Z` in upper case (what builders write: Go's RFC3339Nano form).
 */
const CREATED = z.iso.datetime({ offset: true });

/**
 * The config's `created`, normalized to the dataset's own timestamp form (`2024-03-01T10:00:00.000Z`),
 * or null when it is absent, no string or no RFC 3339 date-time. Normalized rather than kept as written
 * because the only use of the column is to compare and sort it as text, like every timestamp of the
 * dataset: as written, `…T12:00:00+02:00` sorts after `…T11:00:00Z` though it is earlier, and
 * `…T12:00:00Z` after `…T12:00:00.5Z`. Digits past the millisecond are cut, and the builder's offset is
 * not kept: a date any publisher can set is worth no more precision. Informational, never an error.
 */
export function normalizeCreated(value: unknown): string | null {
  const parsed = CREATED.safeParse(value);
  if (!parsed.success) return null;
  // ECMAScript parses three fractional digits portably; more are implementation-defined.
  const ms = Date.parse(parsed.data.replace(/(\.\d{3})\d+/, '$1'));
  if (Number.isNaN(ms)) return null;
  const iso = new Date(ms).toISOString();
  // An offset can carry 0000-01-01 or 9999-12-31 past the four-digit years, where toISOString writes
  // `-000001-…` or `+010000-…`, which would not sort as text among the others.
  return /^\d{4}-/.test(iso) ? iso : null;
}

/** Reads the platform fields and `created` from a config blob's bytes; only bytes that are not JSON fail. */
export function parseImageConfig(bytes: Buffer, source: string): ImageConfig {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new CorruptInputError(`${source} is not JSON`, { cause: err });
  }
  const c = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' && v.length > 0 ? v : undefined);
  const variant = str(c.variant);
  return {
    platform: {
      os: str(c.os) ?? 'unknown',
      architecture: str(c.architecture) ?? 'unknown',
      ...(variant ? { variant } : {}),
    },
    created: normalizeCreated(c.created),
  };
}
