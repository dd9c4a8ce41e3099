/**
 * zod schemas of the Docker Hub web API responses, modelled on the real payloads (reference
 * docker-hub-api.md §1.2–§1.5, §1.9), not only the OpenAPI spec: the tag object carries
 * `tag_status`, `media_type` and `digest`, which the spec omits. Objects strip unknown keys, so
 * new fields from Docker never break a crawl; fields we read must have the right type.
 */
import { z } from 'zod';
import { isDigest } from '../../core/digest.js';
import { CorruptInputError } from '../../core/errors.js';
import { redactUrl } from '../../core/url.js';

/** `next`/`previous`: an absolute URL, `null`, or `""` (seen in tests) which also means "no more". */
const pageLink = z
  .string()
  .nullish()
  .transform((s) => (s ? s : null));

const nullableString = z
  .string()
  .nullish()
  .transform((s) => s ?? null);

const nullableCount = z
  .number()
  .nullish()
  .transform((n) => n ?? null);

/** A digest the registry can serve; anything else in a digest field is corrupt input. */
const digestField = z
  .string()
  .refine((s) => s === '' || isDigest(s), { message: 'not a sha256/sha512 digest' })
  .nullish()
  .transform((s) => (s ? (s as `${string}:${string}`) : null));

/** One entry of `results` in the namespace listing and the body of repository details. */
export const hubRepositorySchema = z.object({
  name: z.string().min(1),
  namespace: z.string().min(1),
  description: nullableString,
  star_count: nullableCount,
  pull_count: nullableCount,
  last_updated: nullableString,
  is_private: z.boolean().optional(),
  media_types: z
    .array(z.string())
    .nullish()
    .transform((a) => a ?? []),
  content_types: z
    .array(z.string())
    .nullish()
    .transform((a) => a ?? []),
});
export type HubRepositoryJson = z.output<typeof hubRepositorySchema>;

/** `images[]` of a tag: one per platform manifest (attestations show as unknown/unknown). */
export const hubTagImageSchema = z.object({
  architecture: nullableString,
  os: nullableString,
  variant: nullableString,
  digest: digestField,
  size: nullableCount,
  status: z.string().nullish(),
  last_pushed: nullableString,
  last_pulled: nullableString,
});

/** A tag in `…/tags` results (real shape: tag_status, media_type, content_type, digest). */
export const hubTagSchema = z.object({
  name: z.string().min(1),
  digest: digestField,
  media_type: nullableString,
  content_type: nullableString,
  last_updated: nullableString,
  tag_last_pushed: nullableString,
  tag_last_pulled: nullableString,
  tag_status: z.string().nullish(),
  full_size: nullableCount,
  images: z
    .array(hubTagImageSchema)
    .nullish()
    .transform((a) => a ?? []),
});
export type HubTagJson = z.output<typeof hubTagSchema>;

/** The `{count, next, previous, results}` envelope shared by the v2 listings. */
export function pageSchema<T extends z.ZodType>(item: T) {
  return z.object({
    count: z.number().nullish(),
    next: pageLink,
    previous: pageLink,
    results: z.array(item),
  });
}

export const hubRepositoryPageSchema = pageSchema(hubRepositorySchema);
export const hubTagPageSchema = pageSchema(hubTagSchema);

/** `/v2/search/repositories/` result: `repo_name` is `nginx` for official images, else `ns/name`. */
export const hubV2SearchResultSchema = z.object({
  repo_name: z.string().min(1),
  repo_owner: nullableString,
  short_description: nullableString,
  star_count: nullableCount,
  pull_count: nullableCount,
  is_official: z.boolean().nullish(),
  is_automated: z.boolean().nullish(),
});
export const hubV2SearchPageSchema = pageSchema(hubV2SearchResultSchema);

/** `/api/search/v4` result. `pull_count` is a rounded string such as "1B+" (§1.5). */
export const hubV4SearchResultSchema = z.object({
  id: z.string().min(1),
  name: z.string().min(1),
  slug: nullableString,
  type: nullableString,
  publisher: z.object({ id: nullableString, name: nullableString }).nullish(),
  badge: nullableString,
  star_count: nullableCount,
  pull_count: z.union([z.string(), z.number()]).nullish(),
  short_description: nullableString,
  updated_at: nullableString,
});
export const hubV4SearchPageSchema = z.object({
  total: z.number().nullish(),
  results: z.array(hubV4SearchResultSchema),
});

/** `POST /v2/auth/token` → `{access_token}` (a JWT that lives 10 minutes, §1.9). */
export const hubAuthTokenSchema = z.object({ access_token: z.string().min(1) });
/** Deprecated `POST /v2/users/login` → `{token, refresh_token?}`. */
export const hubLegacyLoginSchema = z.object({ token: z.string().min(1) });

/** Error bodies: `{"message": …, "errinfo": {}}`, or `{"detail": …}` on older routes. */
export const hubErrorBodySchema = z.object({
  message: z.string().optional(),
  detail: z.string().optional(),
});

/**
 * Parses untrusted JSON from `url` with `schema`; throws CorruptInputError naming the URL and
 * the path of every offending field (e.g. `results.3.images.0.digest`).
 */
export function parseHubJson<T extends z.ZodType>(schema: T, body: unknown, url: string | URL): z.output<T> {
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : '(root)'}: ${i.message}`)
    .join('; ');
  throw new CorruptInputError(
    `Docker Hub API response from ${redactUrl(url)} does not have the expected shape (${issues}); skipping it`,
    { cause: parsed.error },
  );
}

/** A URL fit for messages (shared with the registry client). */
export { redactUrl } from '../../core/url.js';

/**
 * Reads the rounded pull counts of the v4 search ("1B+", "500M+", "10K+", "523").
 * Returns the lower bound the string states, or null when it is not a count.
 */
export function parsePullCountText(value: string | number | null | undefined): number | null {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? value : null;
  if (typeof value !== 'string') return null;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMB])?\+?\s*$/i.exec(value.replace(/,/g, ''));
  if (!m) return null;
  const scale = { K: 1e3, M: 1e6, B: 1e9 }[(m[2] ?? '').toUpperCase() as 'K' | 'M' | 'B'] ?? 1;
  return Math.round(Number(m[1]) * scale);
}
